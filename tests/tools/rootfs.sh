#!/bin/sh
# A minimal Debian root filesystem for the container tests, built once with
# debootstrap and cached outside the clone, so a second run needs no network.
#
#   tests/tools/rootfs.sh SUITE     prints the root's path; exit 3 when it cannot
#                                   be built (no debootstrap, no mirror), with why
#
# The cache is $PW_TEST_CACHE (default /var/cache/pinwarden-tests)/rootfs/SUITE.
# A root is built in a temporary directory and renamed into place only when
# complete, so an interrupted build never leaves a half root that looks done.
set -eu
suite=${1:?usage: rootfs.sh SUITE}
case $suite in
bullseye | bookworm | trixie) ;;
*) echo "rootfs.sh: unknown suite '$suite'" >&2; exit 2 ;;
esac
cache=${PW_TEST_CACHE:-/var/cache/pinwarden-tests}/rootfs
root=$cache/$suite
# The clients the coverage tests run inside the container.
pkgs=curl,wget,python3,gnutls-bin,libnss3-tools,ca-certificates,openssl
if [ -f "$root/.pinwarden-complete" ]; then
	echo "$root"
	exit 0
fi
command -v debootstrap >/dev/null || { echo "rootfs.sh: debootstrap is not installed" >&2; exit 3; }
mkdir -p "$cache"
exec 9>"$cache/.$suite.lock"
flock 9
if [ -f "$root/.pinwarden-complete" ]; then
	echo "$root"
	exit 0
fi
# what an interrupted build left (we hold the lock: no build of this suite runs)
rm -rf "$cache/.$suite".??????
tmp=$(mktemp -d "$cache/.$suite.XXXXXX")
log=$cache/$suite.log
mirror=${PW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
if ! timeout 1200 debootstrap --variant=minbase --include="$pkgs" "$suite" "$tmp" "$mirror" >"$log" 2>&1; then
	rm -rf "$tmp"
	echo "rootfs.sh: debootstrap $suite from $mirror failed (see $log): $(tail -1 "$log")" >&2
	exit 3
fi
# The tests' names resolve the way the host's do; nothing else is taken from the host.
cp /etc/hosts "$tmp/etc/hosts"
touch "$tmp/.pinwarden-complete"
rm -rf "$root"
mv "$tmp" "$root"
echo "$root"
