#!/bin/sh
# OpenSSL's libssl and libcrypto built for musl (musl-gcc), from the source of the
# OpenSSL Debian ships (its orig tarball, from the pool the host's libssl3 came
# from), and a musl-linked TLS client against them: what an Alpine-style process
# loads. Built once and cached outside the clone, so a second run needs no network.
#
#   tests/tools/musl-openssl.sh     prints the directory: lib/libssl.so.3,
#                                   lib/libcrypto.so.3, bin/client; exit 3 when it
#                                   cannot be built (no musl-gcc, no mirror), with why
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=${PW_TEST_CACHE:-/var/cache/pinwarden-tests}
out=$cache/musl-openssl
if [ -f "$out/.pinwarden-complete" ]; then
	echo "$out"
	exit 0
fi
command -v musl-gcc >/dev/null || { echo "musl-openssl.sh: musl-gcc is not installed (musl-tools)" >&2; exit 3; }
mkdir -p "$cache"
exec 9>"$cache/.musl-openssl.lock"
flock 9
if [ -f "$out/.pinwarden-complete" ]; then
	echo "$out"
	exit 0
fi
# the .deb's address names its pool and version: the orig tarball sits beside it
uri=$(apt-get download --print-uris libssl3 2>/dev/null | head -n 1 | cut -d"'" -f2)
ver=$(echo "$uri" | sed -n 's|.*/libssl3_\([0-9.]*\)-.*|\1|p')
[ -n "$ver" ] || { echo "musl-openssl.sh: cannot tell where libssl3's source is (apt-get download --print-uris libssl3)" >&2; exit 3; }
src=${uri%/*}/openssl_$ver.orig.tar.gz
rm -rf "$cache/.musl-openssl".??????
tmp=$(mktemp -d "$cache/.musl-openssl.XXXXXX")
log=$cache/musl-openssl.log
trap 'rm -rf "$tmp"' EXIT
if ! timeout 120 curl -fsS -o "$tmp/src.tar.gz" "$src" 2>"$log"; then
	echo "musl-openssl.sh: cannot download $src: $(tail -n 1 "$log")" >&2
	exit 3
fi
tar -C "$tmp" -xzf "$tmp/src.tar.gz"
# musl-gcc has no kernel headers: the host's uapi ones (linux-libc-dev), alone
mkdir "$tmp/kinc"
ln -s /usr/include/linux /usr/include/asm-generic "$tmp/kinc/"
ln -s "/usr/include/$(gcc -print-multiarch)/asm" "$tmp/kinc/asm"
cd "$tmp/openssl-$ver"
# only the two libraries: no apps, tests, engines or modules; musl has no
# <linux/...> headers of its own, so no kernel TLS or afalg; no-asm keeps the
# build to C only
if ! { ./Configure linux-x86_64 no-asm no-tests no-engine no-module \
	no-afalgeng no-ktls no-dso no-async --prefix="$tmp/inst" --libdir=lib \
	CC="musl-gcc -idirafter $tmp/kinc" && make -j"$(nproc)" build_libs && make install_dev; } >"$log" 2>&1; then
	echo "musl-openssl.sh: building OpenSSL $ver for musl failed (see $log): $(tail -n 1 "$log")" >&2
	exit 3
fi
mkdir -p "$tmp/out/lib" "$tmp/out/bin"
cp -L "$tmp/inst/lib/libssl.so.3" "$tmp/inst/lib/libcrypto.so.3" "$tmp/out/lib/"
# the client loads them from its own folder's lib/, through musl's dynamic linker
# shellcheck disable=SC2016
if ! musl-gcc -O2 -o "$tmp/out/bin/client" "$here/musl_client.c" -I"$tmp/inst/include" \
	-L"$tmp/inst/lib" -lssl -lcrypto -Wl,-rpath,'$ORIGIN/../lib' >>"$log" 2>&1; then
	echo "musl-openssl.sh: the musl client does not build (see $log)" >&2
	exit 3
fi
touch "$tmp/out/.pinwarden-complete"
rm -rf "$out"
mv "$tmp/out" "$out"
echo "$out"
