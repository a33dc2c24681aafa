#!/bin/sh
# Install every Debian/Ubuntu package pinwarden's build, tests and benchmark need.
# Safe to run twice: apt-get only adds what is missing.
set -eu
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: run as root (it calls apt-get)" >&2
	exit 1
fi
build="make gcc clang llvm pkg-config libbpf-dev libelf-dev zlib1g-dev libssl-dev
       libyaml-dev libcapstone-dev bpftool"
tests="bats jq openssl curl wget ca-certificates python3 procps iproute2 util-linux"
fuzz="libclang-rt-14-dev"
# Ubuntu ships bpftool in linux-tools; Debian 12 has its own package.
if ! apt-cache show bpftool >/dev/null 2>&1; then
	build=$(echo "$build" | sed 's/bpftool/linux-tools-common linux-tools-generic/')
fi
missing=
for p in $build $tests $fuzz; do
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
