#!/usr/bin/env bats
# BoringSSL (Debian's android-libboringssl) end to end: the real daemon, the real BPF
# programs, a real BoringSSL client (tests/tools/boringssl/client.c, compiled here)
# against real servers on 127.0.0.1, PKIs made at test time. The library lives
# outside ld.so.cache: the daemon is pointed at it with --attach.

# server_start exports NAME_PORT, NAME_RECORD...
# shellcheck disable=SC2154

load helpers

# The BoringSSL development files, or a reason to skip.
bssl_paths() {
	BSSL_INC=${BSSL_INC:-/usr/include/android}
	BSSL_LIBDIR=${BSSL_LIBDIR:-/usr/lib/x86_64-linux-gnu/android}
	# a predicate, not an assertion: its status is the function's
	if [ ! -e "$BSSL_INC/openssl/is_boringssl.h" ] || [ ! -e "$BSSL_LIBDIR/libssl.so" ]; then
		return 1
	fi
}

setup_file() {
	bssl_paths || return 0
	# compiled at test time, never committed
	cc -Wall -Wextra -Werror -O2 -I"$BSSL_INC" -o "$BATS_FILE_TMPDIR/bssl_client" \
		"$BATS_TEST_DIRNAME/tools/boringssl/client.c" -L"$BSSL_LIBDIR" \
		-Wl,-rpath,"$BSSL_LIBDIR" -lssl -lcrypto
}

setup() {
	requires bpf
	bssl_paths || skip "needs android-libboringssl-dev (BoringSSL headers in $BSSL_INC)"
	BSSL=$BATS_FILE_TMPDIR/bssl_client
	# the libssl the client really loads is the one to attach
	BSSL_LIB=$(ldd "$BSSL" | awk '$1 == "libssl.so.0" { print $3 }')
	[ -n "$BSSL_LIB" ]
	pki
	server_start legit --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" --reply
	server_start legitrsa --cert "$PKI/legit-rsa/chain.pem" --key "$PKI/legit-rsa/leaf.key" --reply
	server_start evil --cert "$PKI/evil/chain.pem" --key "$PKI/evil/leaf.key" --reply
}

bssl() {
	"$BSSL" "$@"
}

# pw_bssl [run args...]: the daemon, with the BoringSSL libssl attached
pw_bssl() {
	pw_start --attach "$BSSL_LIB" "$@"
}

# The last chain event for PORT (each test talks to a server at most once per mode).
chain_at() {
	events_wait ".event == \"tls_chain\" and .peer == \"127.0.0.1:$1\" $2"
}

# The n-th (1-based) chain event of the log.
nth_chain() {
	_events_select '.event == "tls_chain"' | sed -n "${1}p"
}

@test "ready: the BoringSSL libssl is attached by --attach, with its probes; a file that is no TLS library is refused" {
	pw_bssl
	local ev
	ev=$(events_wait '.event == "ready"')
	[ "$(event_field "$ev" '.libraries | map(select(.library == "boringssl")) | length')" -eq 1 ]
	[ "$(event_field "$ev" '.libraries[] | select(.library == "boringssl") | .path')" = "$BSSL_LIB" ]
	[ "$(event_field "$ev" '.libraries[] | select(.library == "boringssl") | .inode')" -eq \
		"$(stat -c %i "$BSSL_LIB")" ]
	# certificate call sites (>= 2: TLS 1.2 and 1.3 parsers), SSL*, verdict, custom verify, SNI, fd, free
	[ "$(event_field "$ev" '.libraries[] | select(.library == "boringssl") | .probes')" -ge 8 ]
	pw_stop
	# asked for by name, a file pinwarden cannot attach stops the daemon with the reason
	run --separate-stderr "$PW" run --attach /bin/true --log "$BATS_TEST_TMPDIR/x.jsonl"
	[ "$status" -eq 1 ]
	[[ $stderr == *"--attach /bin/true: not a TLS library or program pinwarden knows"* ]]
	run --separate-stderr "$PW" run --attach /nonexistent/libssl.so.0 --log "$BATS_TEST_TMPDIR/x.jsonl"
	[ "$status" -eq 1 ]
	[[ $stderr == *"/nonexistent/libssl.so.0"* ]]
}

@test "discovery: without --attach, the BoringSSL libssl a new client maps is probed before its first handshake" {
	pin_test_policy enforce
	pw_start --policy "$POLICY"
	run bssl --host pin.test --port "$evil_PORT" --insecure --secret leaked
	[ "$status" -eq 137 ]
	[ ! -s "$evil_RECORD" ]
	local ev
	ev=$(events_wait '.event == "tls_chain" and .comm == "bssl_client"')
	[ "$(event_field "$ev" .library)" = boringssl ]
	[ "$(event_field "$ev" .action)" = killed ]
	run bssl --host pin.test --port "$legit_PORT" --custom-verify --secret fine
	[ "$status" -eq 0 ]
	grep -q fine "$legit_RECORD"
}

@test "audit, default policy: TLS 1.2 and 1.3, verified, unverified and custom-verified handshakes are all logged with the chain's hashes" {
	pw_bssl
	local v mode n=0 ev
	for v in 1.2 1.3; do
		for mode in "--cafile $PKI/legit-ec/root.pem" --insecure --custom-verify; do
			# shellcheck disable=SC2086
			run bssl --host pin.test --port "$legit_PORT" --tls "$v" $mode --secret "s-$v"
			[ "$status" -eq 0 ]
			[ "$output" = ok ]
			n=$((n + 1))
			retry 50 0.1 events_count_ge "$n" '.event == "tls_chain"'
			ev=$(nth_chain "$n")
			[ "$(event_field "$ev" .library)" = boringssl ]
			[ "$(event_field "$ev" .verdict)" = unpinned ]
			[ "$(event_field "$ev" .mode)" = audit ]
			[ "$(event_field "$ev" .action)" = none ]
			[ "$(event_field "$ev" .side)" = client ]
			[ "$(event_field "$ev" .host)" = pin.test ]
			[ "$(event_field "$ev" .comm)" = bssl_client ]
			[ "$(event_field "$ev" .exe)" = "$BSSL" ]
			# SSL_set_fd names the socket: the peer is exact, not guessed
			[ "$(event_field "$ev" .peer)" = "127.0.0.1:$legit_PORT" ]
			[ "$(event_field "$ev" '.notes // [] | length')" -eq 0 ]
			[ "$(event_field "$ev" '.errors // [] | length')" -eq 0 ]
			[ "$(event_field "$ev" '.chain | length')" -eq 2 ]
			[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/legit-ec/leaf.spki")" ]
			[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(cat "$PKI/legit-ec/leaf.certsha")" ]
			[ "$(event_field "$ev" '.chain[1].spki_sha256')" = "$(cat "$PKI/legit-ec/int.spki")" ]
			[ "$(event_field "$ev" '.chain[1].cert_sha256')" = "$(cat "$PKI/legit-ec/int.certsha")" ]
			[ "$(event_field "$ev" '.chain[0].subject')" = "CN=pin.test,O=pinwarden test" ]
		done
	done
	[ "$(grep -o 's-1.2' "$legit_RECORD" | wc -l)" -eq 3 ]
	[ "$(grep -o 's-1.3' "$legit_RECORD" | wc -l)" -eq 3 ]
	# the RSA chain, and the impostor's one-certificate chain
	bssl --host pin.test --port "$legitrsa_PORT" --cafile "$PKI/legit-rsa/root.pem" >/dev/null
	ev=$(chain_at "$legitrsa_PORT")
	[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/legit-rsa/leaf.spki")" ]
	[ "$(event_field "$ev" '.chain[1].cert_sha256')" = "$(cat "$PKI/legit-rsa/int.certsha")" ]
	bssl --host pin.test --port "$evil_PORT" --insecure >/dev/null
	ev=$(chain_at "$evil_PORT")
	[ "$(event_field "$ev" '.chain | length')" -eq 1 ]
	[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(cat "$PKI/evil/leaf.certsha")" ]
	events_lint
	pw_stop
	# the daemon re-hashed every certificate with OpenSSL: no disagreement with the kernel
	run ! grep -q hash_disagreement "$PW_LOG"
}

@test "audit: match, mismatch with the RFC 7469 report, and unpinned, in TLS 1.2 and 1.3" {
	policy "
pinsets:
  legit:
    pins:
      - $(cat "$PKI/legit-ec/leaf.spki")
      - $(cat "$PKI/backup.spki")
rules:
  - host: pin.test
    pinset: legit"
	pw_bssl --policy "$POLICY"
	local v ev n=0
	for v in 1.2 1.3; do
		bssl --host pin.test --port "$legit_PORT" --tls "$v" --insecure >/dev/null
		n=$((n + 1))
		retry 50 0.1 events_count_ge "$n" '.event == "tls_chain"'
		ev=$(nth_chain "$n")
		[ "$(event_field "$ev" .verdict)" = match ]
		[ "$(event_field "$ev" .library)" = boringssl ]
		[ "$(event_field "$ev" .rule)" = pin.test ]
		[ "$(event_field "$ev" .pinset)" = legit ]
		[ "$(event_field "$ev" '.chain | map(.matched | tostring) | join(",")')" = true,false ]
		[ "$(event_field "$ev" .report)" = null ]

		# the impostor: audit reports it and lets the client through
		run bssl --host pin.test --port "$evil_PORT" --tls "$v" --custom-verify --secret "leak-$v"
		[ "$status" -eq 0 ]
		n=$((n + 1))
		retry 50 0.1 events_count_ge "$n" '.event == "tls_chain"'
		ev=$(nth_chain "$n")
		[ "$(event_field "$ev" .verdict)" = mismatch ]
		[ "$(event_field "$ev" .library)" = boringssl ]
		[ "$(event_field "$ev" .mode)" = audit ]
		[ "$(event_field "$ev" .action)" = would-kill ]
		[ "$(event_field "$ev" .peer)" = "127.0.0.1:$evil_PORT" ]
		[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/evil/leaf.spki")" ]
		[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(cat "$PKI/evil/leaf.certsha")" ]
		[ "$(event_field "$ev" '.report.hostname')" = pin.test ]
		[ "$(event_field "$ev" '.report.port')" -eq "$evil_PORT" ]
		[ "$(event_field "$ev" '.report."known-pins" | length')" -eq 2 ]
		event_field "$ev" '.report."served-certificate-chain"[0]' >"$BATS_TEST_TMPDIR/served.pem"
		[ "$(openssl x509 -in "$BATS_TEST_TMPDIR/served.pem" -outform der | sha256sum | cut -d' ' -f1)" = \
			"$(cat "$PKI/evil/leaf.certsha")" ]
		grep -q "leak-$v" "$evil_RECORD"

		# a host no rule names
		bssl --host other.test --port "$legit_PORT" --tls "$v" --insecure >/dev/null
		n=$((n + 1))
		retry 50 0.1 events_count_ge "$n" '.event == "tls_chain"'
		ev=$(nth_chain "$n")
		[ "$(event_field "$ev" .host)" = other.test ]
		[ "$(event_field "$ev" .verdict)" = unpinned ]
		[ "$(event_field "$ev" .rule)" = null ]
	done
	events_lint
}

@test "enforce + kill, TLS 1.2 and 1.3, X509 verification off and custom verify: the client meeting the impostor dies before its secret leaves; the real server gets it" {
	policy "
mode: enforce
action: kill
pinsets:
  legit:
    pins:
      - $(cat "$PKI/legit-ec/leaf.spki")
      - $(cat "$PKI/legit-ec/int.spki")
      - $(cat "$PKI/backup.spki")
rules:
  - host: pin.test
    pinset: legit"
	pw_bssl --policy "$POLICY"
	local secret=s3cret-$RANDOM v mode n=0 ev
	for v in 1.2 1.3; do
		for mode in --insecure --custom-verify; do
			run bssl --host pin.test --port "$evil_PORT" --tls "$v" "$mode" --secret "$secret"
			[ "$status" -eq 137 ]
			n=$((n + 1))
			retry 50 0.1 events_count_ge "$n" '.event == "tls_chain" and .action == "killed"'
			ev=$(_events_select '.event == "tls_chain" and .action == "killed"' | sed -n "${n}p")
			[ "$(event_field "$ev" .verdict)" = mismatch ]
			[ "$(event_field "$ev" .mode)" = enforce ]
			[ "$(event_field "$ev" .library)" = boringssl ]
			[ "$(event_field "$ev" .host)" = pin.test ]
		done
	done
	# a client that does verify with a CA the impostor does not chain to fails on its own
	# (exit 1) or is killed first: either way nothing is sent
	run bssl --host pin.test --port "$evil_PORT" --cafile "$PKI/legit-ec/root.pem" --secret "$secret"
	[ "$status" -ne 0 ]
	# the impostor received not one byte of application data
	[ ! -s "$evil_RECORD" ]

	# the legitimate server: the same clients live, and the secret arrives
	for v in 1.2 1.3; do
		for mode in --insecure --custom-verify "--cafile=$PKI/legit-ec/root.pem"; do
			run bssl --host pin.test --port "$legit_PORT" --tls "$v" "$mode" --secret "$secret-$v"
			[ "$status" -eq 0 ]
			[ "$output" = ok ]
		done
	done
	[ "$(grep -o "$secret-1.2" "$legit_RECORD" | wc -l)" -eq 3 ]
	[ "$(grep -o "$secret-1.3" "$legit_RECORD" | wc -l)" -eq 3 ]
	retry 50 0.1 events_count_ge 6 '.event == "tls_chain" and .verdict == "match" and .action == "none"'
	[ "$(_events_count '.event == "tls_chain" and .verdict == "match"')" -eq 6 ]
	[ "$(_events_count '.event == "tls_chain" and .verdict == "mismatch"')" -eq 5 ]
	events_lint
}

@test "enforce + reset: of two connections driven at once, the impostor's is reset before its secret leaves; the other completes and the client lives" {
	policy "
mode: enforce
action: reset
pinsets:
  legit: { pins: [ $(cat "$PKI/legit-ec/leaf.spki"), $(cat "$PKI/legit-ec/int.spki"), $(cat "$PKI/backup.spki") ] }
rules:
  - host: pin.test
    pinset: legit"
	pw_bssl --policy "$POLICY"
	local v mode n=0 ev
	for v in 1.2 1.3; do
		for mode in --insecure --custom-verify; do
			run bssl --tls "$v" "$mode" --secret "s3cret-$v" \
				--target "pin.test@$legit_PORT" --target "pin.test@$evil_PORT"
			echo "$output"
			# an error on one connection, not a kill
			[ "$status" -eq 1 ]
			[[ $output == *"pin.test@$evil_PORT: failed: "* ]]
			[[ $output == *"pin.test@$legit_PORT: ok"* ]]
			n=$((n + 1))
			retry 50 0.1 events_count_ge "$n" '.event == "tls_chain" and .action == "reset"'
		done
	done
	[ ! -s "$evil_RECORD" ]
	[ "$(grep -o 's3cret-1.3' "$legit_RECORD" | wc -l)" -eq 2 ]
	# SSL_set_fd names the socket: exactly the impostor's connection was reset
	[ "$(_events_count ".event == \"tls_chain\" and .action == \"reset\" and .peer == \"127.0.0.1:$evil_PORT\"")" -eq 4 ]
	[ "$(_events_count '.event == "tls_chain" and .action == "reset" and (.notes // [] | length) > 0')" -eq 0 ]
	[ "$(_events_count '.event == "tls_chain" and .verdict == "match" and .action == "none"')" -eq 4 ]
}

@test "no SNI: the rule naming the destination address judges; no SSL_set_fd: the peer is the thread's last connect()" {
	policy "
mode: enforce
pinsets:
  legit: { pins: [ $(cat "$PKI/legit-ec/leaf.spki"), $(cat "$PKI/legit-ec/int.spki"), $(cat "$PKI/backup.spki") ] }
rules:
  - host: 127.0.0.1
    pinset: legit
  - host: pin.test
    port: $legit_PORT
    pinset: legit"
	pw_bssl --policy "$POLICY"
	local ev
	run bssl --host pin.test --port "$legit_PORT" --insecure --no-sni
	[ "$status" -eq 0 ]
	ev=$(events_wait '.event == "tls_chain" and .host == null')
	[ "$(event_field "$ev" .rule)" = 127.0.0.1 ]
	[ "$(event_field "$ev" .verdict)" = match ]
	[ "$(event_field "$ev" '.notes | index("no SNI") != null')" = true ]
	run bssl --host pin.test --port "$evil_PORT" --insecure --no-sni --secret leaked
	[ "$status" -eq 137 ]
	# a BIO pair instead of SSL_set_fd: the rule with the port still applies
	run bssl --host pin.test --port "$legit_PORT" --insecure --no-fd
	[ "$status" -eq 0 ]
	ev=$(events_wait '.event == "tls_chain" and .host == "pin.test"')
	[ "$(event_field "$ev" .rule)" = "pin.test:$legit_PORT" ]
	[ "$(event_field "$ev" .peer)" = "127.0.0.1:$legit_PORT" ]
	[ "$(event_field "$ev" '.notes | index("peer from the thread'"'"'s last connect()") != null')" = true ]
	[ ! -s "$evil_RECORD" ]
}

PROXY_PIDS=()

teardown() {
	local pid
	for pid in "${PROXY_PIDS[@]}"; do
		_stop_pid "$pid" 5 || true
		wait "$pid" 2>/dev/null || true
	done
	pw_teardown
}

# proxy_start NAME TO_PORT DELAY: a proxy on 127.0.0.1 to TO_PORT that holds the
# server's CertificateVerify back DELAY seconds; exports NAME_PORT.
proxy_start() {
	local f=$BATS_TEST_TMPDIR/$1.port deadline=$((SECONDS + 10))
	rm -f "$f"
	"$PYTHON" "$BATS_TEST_DIRNAME/tools/boringssl/slow_proxy.py" --to "$2" --delay "$3" \
		--port-file "$f" 3>&- </dev/null 2>"$BATS_TEST_TMPDIR/$1.log" &
	PROXY_PIDS+=($!)
	until [ -s "$f" ]; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.05
	done
	export "$1_PORT=$(cat "$f")"
}

@test "interleaved TLS 1.3 handshakes in one thread, CertificateVerify held back: each connection is judged with its own chain" {
	# A: the impostor, its CertificateVerify 1 s late; B: the real server, 2 s late. The
	# client drives both at once: B's certificates arrive while A's chain waits for
	# its verification, and A's verification comes first.
	proxy_start pa "$evil_PORT" 1
	proxy_start pb "$legit_PORT" 2
	policy "
pinsets:
  legit: { pins: [ $(cat "$PKI/legit-ec/leaf.spki"), $(cat "$PKI/legit-ec/int.spki"), $(cat "$PKI/backup.spki") ] }
rules:
  - host: pin.test
    pinset: legit"
	pw_bssl --policy "$POLICY"
	local mode ev n=0
	for mode in --insecure --custom-verify; do
		run bssl --tls 1.3 "$mode" --target "pin.test@$pa_PORT" --target "pin.test@$pb_PORT"
		[ "$status" -eq 0 ]
		n=$((n + 2))
		retry 50 0.1 events_count_ge "$n" '.event == "tls_chain"'
		ev=$(_events_select ".event == \"tls_chain\" and .peer == \"127.0.0.1:$pa_PORT\"" | tail -n 1)
		[ "$(event_field "$ev" .verdict)" = mismatch ]
		[ "$(event_field "$ev" '.chain | length')" -eq 1 ]
		[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(cat "$PKI/evil/leaf.certsha")" ]
		ev=$(_events_select ".event == \"tls_chain\" and .peer == \"127.0.0.1:$pb_PORT\"" | tail -n 1)
		[ "$(event_field "$ev" .verdict)" = match ]
		[ "$(event_field "$ev" '.chain | length')" -eq 2 ]
		[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(cat "$PKI/legit-ec/leaf.certsha")" ]
		[ "$(_events_count '.event == "tls_chain" and (.errors // [] | length) > 0')" -eq 0 ]
	done
	pw_stop
	# enforced: the client dies at A's verification, before A's secret or B's leaves
	pin_test_policy enforce
	: >"$evil_RECORD"
	pw_bssl --policy "$POLICY"
	for mode in --insecure --custom-verify; do
		run bssl --tls 1.3 "$mode" --secret leaked --target "pin.test@$pa_PORT" \
			--target "pin.test@$pb_PORT"
		[ "$status" -eq 137 ]
	done
	retry 50 0.1 events_count_ge 2 '.event == "tls_chain" and .action == "killed"'
	[ "$(_events_count ".event == \"tls_chain\" and .action == \"killed\" and .peer == \"127.0.0.1:$pa_PORT\"")" -eq 2 ]
	[ ! -s "$evil_RECORD" ]
}

@test "an impostor stalling its CertificateVerify past the chain's 5 s age limit meets a fail-closed verdict, custom verify included" {
	proxy_start slow "$evil_PORT" 6
	pin_test_policy enforce
	pw_bssl --policy "$POLICY"
	local ev
	run bssl --host pin.test --port "$slow_PORT" --tls 1.3 --custom-verify --secret leaked
	[ "$status" -eq 137 ]
	ev=$(events_wait '.event == "tls_chain" and .action == "killed"')
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	[ "$(event_field "$ev" '.errors | length')" -ge 1 ]
	[ ! -s "$evil_RECORD" ]
}

# run_cnt of pinwarden's BoringSSL programs (needs kernel.bpf_stats_enabled=1)
bssl_prog_runs() {
	bpftool -j prog show | jq '[.[] | select(.name | test("^bssl_")) | .run_cnt // 0] | add // 0'
}

@test "loading the system CA bundle fires no probe; a handshake fires a handful, and no buffer is mistaken for a certificate" {
	local old before after
	old=$(sysctl -n kernel.bpf_stats_enabled)
	pw_bssl --metrics "$BATS_TEST_TMPDIR/metrics.prom"
	sysctl -qw kernel.bpf_stats_enabled=1
	before=$(bssl_prog_runs)
	# the system bundle (140+ CAs) and a handshake whose verification then fails
	run bssl --host pin.test --port "$legit_PORT" --cafile /etc/ssl/certs/ca-certificates.crt
	after=$(bssl_prog_runs)
	sysctl -qw kernel.bpf_stats_enabled="$old"
	[ "$status" -eq 1 ]
	echo "probe runs for a process loading $(grep -c BEGIN /etc/ssl/certs/ca-certificates.crt) CAs and making one handshake: $((after - before))"
	# SNI, fd, 2 certificates, SSL*, verdict, free
	[ "$((after - before))" -ge 6 ]
	[ "$((after - before))" -le 10 ]
	retry 30 0.1 grep -q '^pinwarden_chains_judged_total 1$' "$BATS_TEST_TMPDIR/metrics.prom"
	grep -q '^pinwarden_certificates_captured_total 2$' "$BATS_TEST_TMPDIR/metrics.prom"
	grep -q '^pinwarden_orphan_certificates_total 0$' "$BATS_TEST_TMPDIR/metrics.prom"
}
