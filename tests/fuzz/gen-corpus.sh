#!/bin/bash
# gen-corpus.sh: the committed seed corpus of tests/fuzz/, made once with the
# openssl CLI (and kept: fuzzing starts from it and replays it on every run).
#
#   corpus/der, corpus/cert  EC (P-256) and RSA-2048 leaves with SANs, a v1
#                            certificate, a leaf with a 250-name SAN list, an
#                            Ed25519 CA, the EC leaf re-encoded as BER (a
#                            non-minimal and an indefinite outer length: OpenSSL
#                            reads both, the kernel's walker refuses both), and
#                            with non-zero unused bits in its key's BIT STRING
#   corpus/policy            tests/policy/*.yaml and the README's example
#   corpus/json              strings with quotes, controls, UTF-8 and broken UTF-8
#
# Run from the repository root: tests/fuzz/gen-corpus.sh
set -euo pipefail

dir=tests/fuzz/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$dir"
mkdir -p "$dir/der" "$dir/cert" "$dir/policy" "$dir/json"

q() { "$@" >/dev/null 2>&1 || { echo "gen-corpus: failed: $*" >&2; exit 1; }; }

q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ca.key"
q openssl req -x509 -new -key "$work/ca.key" -subj "/O=pinwarden fuzz/CN=fuzz CA" -days 3650 \
	-out "$work/ca.pem"
leaf() { # leaf NAME KEYALG SANS [extra x509 args...]
	local name=$1 alg=$2 sans=$3
	shift 3
	case $alg in
	ec) q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/$name.key" ;;
	rsa) q openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/$name.key" ;;
	esac
	q openssl req -new -key "$work/$name.key" -subj "/O=pinwarden fuzz/CN=$name.pin.test" \
		-out "$work/$name.csr"
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$sans" >"$work/$name.ext"
	q openssl x509 -req -in "$work/$name.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
		-set_serial 7 -days 3650 -extfile "$work/$name.ext" -outform der -out "$dir/der/$name.der" "$@"
}
leaf ec ec "DNS:ec.pin.test,IP:127.0.0.1,email:a@pin.test,URI:https://pin.test/"
leaf rsa rsa "DNS:rsa.pin.test,DNS:*.pin.test"
sans=DNS:pin.test
for i in $(seq 250); do sans="$sans,DNS:n$i.pin.test"; done
leaf longsan ec "$sans"
# v1: x509 -req without extensions writes no version field
q openssl x509 -req -in "$work/ec.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -set_serial 1 \
	-days 3650 -outform der -out "$dir/der/v1.der"
q openssl genpkey -algorithm ED25519 -out "$work/ed.key"
q openssl req -x509 -new -key "$work/ed.key" -subj "/CN=ed25519 CA" -days 3650 -outform der \
	-out "$dir/der/ed25519-ca.der"
# BER versions of the EC leaf: 30 82 LL LL -> 30 83 00 LL LL, and 30 80 ... 00 00
python3 - "$dir/der/ec.der" "$dir/der" <<'EOF'
import sys
der = open(sys.argv[1], "rb").read()
assert der[0] == 0x30 and der[1] == 0x82
body = der[4:]
open(sys.argv[2] + "/ec-ber-long.der", "wb").write(b"\x30\x83\x00" + der[2:4] + body)
open(sys.argv[2] + "/ec-ber-indefinite.der", "wb").write(b"\x30\x80" + body + b"\x00\x00")
# the SPKI's BIT STRING with 3 unused bits that are not zero: OpenSSL reads it and
# re-encodes the key with those bits cleared (the daemon's hash then differs from the
# kernel's, which hashes the bytes as sent); fuzzing found this one
i = der.index(b"\x03\x42\x00\x04")
open(sys.argv[2] + "/ec-spki-unused-bits.der", "wb").write(der[:i + 2] + b"\x03" + der[i + 3:])
EOF
cp "$dir/der/"*.der "$dir/cert/"

cp tests/policy/*.yaml "$dir/policy/"
cat >"$dir/policy/readme.yaml" <<'EOF'
mode: audit
action: kill
log: all
pinsets:
  bank:
    expires: 2027-06-30
    pins:
      - sha256/r/mIkG3eEpVdm+u/ko/cwxzOMo1bk4TyHIlByibiA5E=
      - cert-sha256/1f0c6fd2ba7cbf48cbdd9e1d7dfa2ed4ec3cf2d39a3ee1ea3cb5ab10e3e1d0e3
rules:
  - host: api.bank.example
    port: 443
    pinset: bank
    mode: enforce
    name: bank-api
    scope:
      exe: /usr/bin/curl
      cgroup: /system.slice/app.service
  - host: 192.0.2.7
    pinset: bank
  - host: "*.bank.example"
    pinset: bank
    action: reset
  - side: server
    port: 8443
    pinset: bank
EOF
printf 'pinsets: &a {x: *a}\n' >"$dir/policy/alias.yaml"

printf 'CN=pin.test,O=pinwarden test' >"$dir/json/plain"
printf 'a"b\\c\nd\re\tf\0g\x01\x1f\x7f' >"$dir/json/controls"
printf 'caf\xc3\xa9 \xe2\x80\xa8 \xe2\x80\xa9 \xf0\x9f\x94\x92 \xef\xbf\xbd' >"$dir/json/utf8"
printf '\xff\xc3\x28\xe2\x80\x41\xed\xa0\x80\xf4\x90\x80\x80\xc0\xaf\xf0\x8f\xbf\xbf' >"$dir/json/broken"
du -sh "$dir"
