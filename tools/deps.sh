#!/bin/sh
# Install every Debian/Ubuntu package pinwarden's build, tests and benchmark need:
# the lists in tools/deps.d/*.txt (one file per concern; '#' starts a comment).
# Safe to run twice: apt-get only adds what is missing.
set -eu
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: run as root (it calls apt-get)" >&2
	exit 1
fi
dir=$(dirname "$0")/deps.d
pkgs=$(cat "$dir"/*.txt | sed 's/#.*//' | tr -s ' \t\n' '\n' | sort -u)
# Ubuntu ships bpftool in linux-tools; Debian 12 has its own package.
if ! apt-cache show bpftool >/dev/null 2>&1; then
	pkgs=$(echo "$pkgs" | sed 's/^bpftool$/linux-tools-common linux-tools-generic/')
fi
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "deps: everything is installed"
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
