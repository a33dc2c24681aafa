#!/usr/bin/env bats
# Other distributions, as containers (issue 13): minimal Debian 11 (bullseye) and
# Debian 13 (trixie) root filesystems made with debootstrap --variant=minbase,
# cached outside the clone (tests/tools/rootfs.sh), and their own clients run in
# a new mount and PID namespace chrooted there. Each TLS library of those
# distributions is judged in audit and killed in enforce, the impostor receiving
# 0 bytes:
#
#   bullseye: OpenSSL 1.1.1 (curl, python3), GnuTLS 3.7.1 (wget, gnutls-cli), NSS 3.61
#   trixie:   OpenSSL 3.5 (curl, python3), GnuTLS 3.8 (wget, gnutls-cli), NSS 3.110
#
# And an Alpine-style process: a client linked with musl, loading a libssl built for
# musl through musl's dynamic linker (tests/tools/musl-openssl.sh).
#
# A root or build that cannot be made (no network on the first run) skips, with why.

# server_start exports NAME_PORT, NAME_RECORD...
# shellcheck disable=SC2154
load helpers

setup_file() {
	local s
	# built once (minutes: side by side, they are mostly downloads and dpkg), then
	# taken from the cache; the reason when one cannot be
	for s in bullseye trixie; do
		"$BATS_TEST_DIRNAME/tools/rootfs.sh" "$s" >"$BATS_FILE_TMPDIR/$s.root" \
			2>"$BATS_FILE_TMPDIR/$s.why" &
	done
	# OpenSSL built for musl, and a musl-linked client
	"$BATS_TEST_DIRNAME/tools/musl-openssl.sh" >"$BATS_FILE_TMPDIR/musl.dir" \
		2>"$BATS_FILE_TMPDIR/musl.why" &
	wait || true
}

setup() {
	requires bpf
	pki
}

teardown() {
	pw_teardown
}

# rootfs SUITE: ROOT is its cached root filesystem, or the test skips with the reason
rootfs() {
	ROOT=$(cat "$BATS_FILE_TMPDIR/$1.root")
	[ -n "$ROOT" ] || skip "no $1 root filesystem: $(cat "$BATS_FILE_TMPDIR/$1.why")"
	# what the clients read inside: the test roots, and pin.test at 127.0.0.1
	CT=$BATS_TEST_TMPDIR/ct-$1
	mkdir -p "$CT"
	cp "$PKI/legit-ec/root.pem" "$CT/root.pem"
	printf '127.0.0.1 localhost\n127.0.0.1 pin.test\n' >"$CT/hosts"
	printf 'GET / HTTP/1.0\r\nHost: pin.test\r\n\r\n' >"$CT/request"
}

# in_ct CMD...: run CMD (at most 20 s) in the container: a new mount and PID namespace,
# chrooted in ROOT, its /tmp the test's $CT, its /etc/hosts ours. CMD's status is
# ours: the container's shell (its PID 1) writes it, since unshare --fork cannot pass
# on a SIGKILL (it fails re-raising it and exits 1).
in_ct() {
	rm -f "$CT/status"
	# shellcheck disable=SC2016
	timeout 20 unshare --mount --pid --fork sh -c '
		root=$1 ct=$2
		shift 2
		mount --bind "$ct" "$root/tmp" &&
		mount --bind "$ct/hosts" "$root/etc/hosts" &&
		mount -t proc proc "$root/proc" &&
		exec chroot "$root" /bin/sh -c "\"\$@\"; echo \$? >/tmp/status" sh "$@"' \
		sh "$ROOT" "$CT" "$@" </dev/null
	[ -s "$CT/status" ] || return 124
	return "$(cat "$CT/status")"
}

# client NAME PORT: the container's client NAME, verifying against the test root,
# one request to https://pin.test:PORT/
client() {
	local port=$2
	case $1 in
	curl) in_ct curl -sS --max-time 15 --cacert /tmp/root.pem "https://pin.test:$port/" ;;
	python3)
		in_ct python3 -c '
import socket, ssl, sys
ctx = ssl.create_default_context(cafile="/tmp/root.pem")
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15) as s:
    with ctx.wrap_socket(s, server_hostname="pin.test") as t:
        t.sendall(b"GET / HTTP/1.0\r\nHost: pin.test\r\n\r\n")
        print(t.recv(100).decode(errors="replace"))
' "$port"
		;;
	wget) in_ct wget -q -O - --timeout=15 --tries=1 --ca-certificate=/tmp/root.pem "https://pin.test:$port/" ;;
	gnutls-cli)
		# shellcheck disable=SC2016
		in_ct sh -c 'gnutls-cli --x509cafile /tmp/root.pem -p "$1" pin.test </tmp/request' sh "$port" ;;
	tstclnt)
		# no database: verification off (-o), the careless client pinning protects
		in_ct tstclnt -h 127.0.0.1 -p "$port" -a pin.test -o -D -A /tmp/request ;;
	esac
}

# library CLIENT: the family pinwarden should judge CLIENT's chains with
library() {
	case $1 in
	curl | python3) echo openssl ;;
	wget | gnutls-cli) echo gnutls ;;
	tstclnt) echo nss ;;
	esac
}

# judged LIB CMD...: audit, then enforce, for one client: `CMD PORT` makes one request
# to https://pin.test:PORT/; LIB is the family its chains are judged by
judged() {
	local lib=$1 ev rc
	shift
	pin_test_servers
	pin_test_policy audit
	pw_start --policy "$POLICY"
	# audit: the legitimate server's chain matches, the impostor's does not; both run
	run "$@" "$legit_PORT"
	echo "legit: $output"
	ev=$(events_wait ".event == \"tls_chain\" and .peer == \"127.0.0.1:$legit_PORT\"" 20)
	LEGIT_EVENT=$ev
	[ "$(event_field "$ev" .library)" = "$lib" ]
	[ "$(event_field "$ev" .verdict)" = match ]
	[ "$(event_field "$ev" .host)" = pin.test ]
	run "$@" "$evil_PORT"
	ev=$(events_wait ".event == \"tls_chain\" and .peer == \"127.0.0.1:$evil_PORT\"" 20)
	echo "$ev" | jq -c '{library, verdict, action, exe, pid, mode}'
	[ "$(event_field "$ev" .library)" = "$lib" ]
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	[ "$(event_field "$ev" .action)" = would-kill ]
	pw_stop
	# enforce, a fresh daemon (the files unseen again): killed before its request
	# leaves, the impostor records nothing
	: >"$evil_RECORD"
	pin_test_policy enforce kill
	pw_start --policy "$POLICY"
	rc=0
	"$@" "$evil_PORT" >/dev/null 2>&1 || rc=$?
	echo "enforce: $* exited $rc"
	ev=$(events_wait ".event == \"tls_chain\" and .peer == \"127.0.0.1:$evil_PORT\"" 20)
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	[ "$(event_field "$ev" .action)" = killed ]
	[ "$rc" -eq 137 ]
	[ ! -s "$evil_RECORD" ]
	events_lint
	pw_stop
}

# in_suite SUITE CLIENT: one client of one distribution, audit and enforce
in_suite() {
	rootfs "$1"
	judged "$(library "$2")" client "$2"
	# the container's own program, by the host's path to it
	[[ $(event_field "$LEGIT_EVENT" .exe) == "$ROOT"/usr/bin/* ]]
}

@test "the GnuTLS session layouts of Debian 11 (3.7.1) and 13 (3.8) are read out of their code" {
	local t=$BATS_TEST_DIRNAME/../build/tests/test_gnutls s libs=()
	[ -x "$t" ] || skip "build/tests/test_gnutls is not built (make unit)"
	for s in bullseye trixie; do
		rootfs "$s"
		libs+=("$ROOT"/usr/lib/x86_64-linux-gnu/libgnutls.so.30)
	done
	run "$t" "${libs[@]}"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *" 0 failed"* ]]
}

@test "Debian 11 container: curl (OpenSSL 1.1.1) judged in audit, killed in enforce before a byte" {
	in_suite bullseye curl
}

@test "Debian 11 container: python3 (OpenSSL 1.1.1) judged in audit, killed in enforce before a byte" {
	in_suite bullseye python3
}

@test "Debian 11 container: wget (GnuTLS 3.7.1) judged in audit, killed in enforce before a byte" {
	in_suite bullseye wget
}

@test "Debian 11 container: gnutls-cli (GnuTLS 3.7.1) judged in audit, killed in enforce before a byte" {
	in_suite bullseye gnutls-cli
}

@test "Debian 11 container: tstclnt (NSS 3.61) judged in audit, killed in enforce before a byte" {
	in_suite bullseye tstclnt
}

@test "Debian 13 container: curl (OpenSSL 3.5) judged in audit, killed in enforce before a byte" {
	in_suite trixie curl
}

@test "Debian 13 container: python3 (OpenSSL 3.5) judged in audit, killed in enforce before a byte" {
	in_suite trixie python3
}

@test "Debian 13 container: wget (GnuTLS 3.8) judged in audit, killed in enforce before a byte" {
	in_suite trixie wget
}

@test "Debian 13 container: gnutls-cli (GnuTLS 3.8) judged in audit, killed in enforce before a byte" {
	in_suite trixie gnutls-cli
}

@test "Debian 13 container: tstclnt (NSS 3.110) judged in audit, killed in enforce before a byte" {
	in_suite trixie tstclnt
}

# musl_client PORT: the musl-linked client, verifying against the test root
musl_client() {
	"$MUSL/bin/client" pin.test "$1" "$PKI/legit-ec/root.pem"
}

@test "musl: a musl-linked client's own libssl, loaded by musl's dynamic linker, is probed before its first handshake: judged in audit, killed in enforce before a byte" {
	MUSL=$(cat "$BATS_FILE_TMPDIR/musl.dir")
	[ -n "$MUSL" ] || skip "no OpenSSL built for musl: $(cat "$BATS_FILE_TMPDIR/musl.why")"
	# what the client is: musl's loader, and the libssl beside it
	run readelf -l "$MUSL/bin/client"
	[[ $output == *"ld-musl-"* ]]
	judged openssl musl_client
	# the first handshake of a file the daemon had never seen was judged, the file
	# attached at its mapping (not found later by the look every 10 s)
	[ "$(event_field "$LEGIT_EVENT" .exe)" = "$MUSL/bin/client" ]
	[ "$(_events_count '.event == "unseen_mapping"')" -eq 0 ]
}

@test "Debian 11 and 13 containers: tstclnt verifying with its database (NSS 3.61, 3.110): a pin on the intermediate alone counts; the impostor is killed before a byte" {
	local s ev rc
	pki
	pin_test_servers
	pin_int_policy enforce kill
	pw_start --policy "$POLICY"
	for s in bullseye trixie; do
		rootfs "$s"
		# the container's NSS database trusts the legitimate root
		mkdir -p "$CT/nssdb"
		certutil -N -d "sql:$CT/nssdb" --empty-password
		certutil -A -d "sql:$CT/nssdb" -n legit-ec -t C,, -i "$PKI/legit-ec/root.pem"
		chmod -R a+rX "$CT/nssdb"
		run in_ct tstclnt -h 127.0.0.1 -p "$legit_PORT" -a pin.test -d sql:/tmp/nssdb -A /tmp/request
		echo "$s legit: $output"
		[ "$status" -eq 0 ]
		ev=$(events_wait ".event == \"tls_chain\" and .peer == \"127.0.0.1:$legit_PORT\" and (.exe | startswith(\"$ROOT/\"))" 20)
		echo "$ev" | jq -c '{verdict, validation, chain: [.chain[] | {subject, matched}]}'
		[ "$(event_field "$ev" .library)" = nss ]
		[ "$(event_field "$ev" .verdict)" = match ]
		[ "$(event_field "$ev" .validation)" = verified ]
		rc=0
		in_ct tstclnt -h 127.0.0.1 -p "$evil_PORT" -a pin.test -d sql:/tmp/nssdb -A /tmp/request >/dev/null 2>&1 || rc=$?
		[ "$rc" -eq 137 ]
		ev=$(events_wait ".event == \"tls_chain\" and .peer == \"127.0.0.1:$evil_PORT\" and (.exe | startswith(\"$ROOT/\"))" 20)
		[ "$(event_field "$ev" .action)" = killed ]
		[ ! -s "$evil_RECORD" ]
	done
	pw_stop
}
