#!/usr/bin/env bats
# OpenSSL 3 end to end: the real daemon, the real BPF programs, real clients (curl,
# python3, openssl s_client) against real servers on 127.0.0.1, PKIs made at test time.

# server_start exports NAME_PORT, NAME_RECORD...
# shellcheck disable=SC2154

load helpers

setup() {
	requires bpf
	pki
	server_start legit --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" --reply
	server_start legitrsa --cert "$PKI/legit-rsa/chain.pem" --key "$PKI/legit-rsa/leaf.key" --reply
	server_start evil --cert "$PKI/evil/chain.pem" --key "$PKI/evil/leaf.key" --reply
}

# The one chain event of process COMM for HOST (null: no SNI) that arrives next.
chain_event() {
	local comm=$1 host=$2
	if [ "$host" = null ]; then
		events_wait ".event == \"tls_chain\" and .comm == \"$comm\" and .host == null"
	else
		events_wait ".event == \"tls_chain\" and .comm == \"$comm\" and .host == \"$host\""
	fi
}

nchains() {
	_events_count '.event == "tls_chain"'
}

@test "audit, default policy: every client's chain is logged unpinned, hashes as the openssl CLI computes them" {
	pw_start
	curl_pin pin.test "$legit_PORT" --cacert "$PKI/legit-ec/root.pem"
	tls_client --host pin.test --port "$legit_PORT" --cafile "$PKI/legit-ec/root.pem"
	openssl s_client -connect "127.0.0.1:$legit_PORT" -servername pin.test \
		-CAfile "$PKI/legit-ec/root.pem" -verify_return_error </dev/null >/dev/null 2>&1
	local comm ev
	for comm in curl python3 openssl; do
		ev=$(chain_event "$comm" pin.test)
		[ "$(event_field "$ev" .verdict)" = unpinned ]
		[ "$(event_field "$ev" .mode)" = audit ]
		[ "$(event_field "$ev" .action)" = none ]
		[ "$(event_field "$ev" .library)" = openssl ]
		[ "$(event_field "$ev" .side)" = client ]
		[ "$(event_field "$ev" .peer)" = "127.0.0.1:$legit_PORT" ]
		[ "$(event_field "$ev" '.chain | length')" -eq 2 ]
		[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/legit-ec/leaf.spki")" ]
		[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(cat "$PKI/legit-ec/leaf.certsha")" ]
		[ "$(event_field "$ev" '.chain[1].spki_sha256')" = "$(cat "$PKI/legit-ec/int.spki")" ]
		[ "$(event_field "$ev" '.chain[1].cert_sha256')" = "$(cat "$PKI/legit-ec/int.certsha")" ]
		[ "$(event_field "$ev" '.chain[0].subject')" = "CN=pin.test,O=pinwarden test" ]
		[ "$(event_field "$ev" '.chain[1].subject')" = "CN=pinwarden test intermediate EC,O=pinwarden test" ]
		[ "$(event_field "$ev" '.chain[0].issuer')" = "$(event_field "$ev" '.chain[1].subject')" ]
		event_field "$ev" '.chain[0].sans' | grep -qx '  "DNS:pin.test",'
		[ "$(event_field "$ev" '.chain[0].not_after')" = \
			"$(date -u -d "$(openssl x509 -in "$PKI/legit-ec/leaf.pem" -noout -enddate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ)" ]
		[ "$(event_field "$ev" .exe)" = "$(readlink -f "$(command -v "$comm")")" ] ||
			[ "$comm" = python3 ]
		[ "$(event_field "$ev" .uid)" -eq 0 ]
		[[ $(event_field "$ev" .time) =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$ ]]
	done
	# python3 binds its socket with SSL_set_fd: its peer is exact, not guessed
	ev=$(chain_event python3 pin.test)
	[ "$(event_field "$ev" '.notes // [] | length')" -eq 0 ]
	# the RSA chain too
	curl_pin pin.test "$legitrsa_PORT" --cacert "$PKI/legit-rsa/root.pem"
	ev=$(events_wait ".event == \"tls_chain\" and .peer == \"127.0.0.1:$legitrsa_PORT\"")
	[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/legit-rsa/leaf.spki")" ]
	[ "$(event_field "$ev" '.chain[1].cert_sha256')" = "$(cat "$PKI/legit-rsa/int.certsha")" ]
	events_lint
	pw_stop
	# the daemon re-hashed every certificate with OpenSSL: no disagreement with the kernel
	! grep -q hash_disagreement "$PW_LOG" || false
}

# connect COMM NAME PORT: one handshake by curl, python3 or openssl s_client, without
# verification (the careless client pinning protects), sending a request after it.
connect() {
	case $1 in
	curl) curl_pin "$2" "$3" -k >/dev/null ;;
	python3) tls_client --host "$2" --port "$3" --insecure >/dev/null ;;
	# s_client exits 1 when the server closes without close_notify: only a kill counts
	openssl)
		local rc=0
		printf 'GET / HTTP/1.0\r\n\r\n' |
			openssl s_client -connect "127.0.0.1:$3" -servername "$2" -quiet >/dev/null 2>&1 ||
			rc=$?
		[ "$rc" -le 1 ]
		;;
	esac
}

@test "audit: match, mismatch and unpinned for curl, python3 and openssl s_client, with the RFC 7469 report" {
	policy "
pinsets:
  legit:
    pins:
      - $(cat "$PKI/legit-ec/leaf.spki")
      - $(cat "$PKI/backup.spki")
rules:
  - host: pin.test
    pinset: legit"
	pw_start --policy "$POLICY"
	local comm ev
	for comm in curl python3 openssl; do
		connect "$comm" pin.test "$legit_PORT"
		ev=$(events_wait ".event == \"tls_chain\" and .comm == \"$comm\" and .verdict == \"match\"")
		[ "$(event_field "$ev" .rule)" = pin.test ]
		[ "$(event_field "$ev" .pinset)" = legit ]
		[ "$(event_field "$ev" '.chain[0].matched')" = true ]
		[ "$(event_field "$ev" '.chain[1].matched')" = false ]
		[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/legit-ec/leaf.spki")" ]
		[ "$(event_field "$ev" '.report')" = null ]

		# the impostor: audit reports it and lets the client through
		connect "$comm" pin.test "$evil_PORT"
		ev=$(events_wait ".event == \"tls_chain\" and .comm == \"$comm\" and .verdict == \"mismatch\"")
		[ "$(event_field "$ev" .mode)" = audit ]
		[ "$(event_field "$ev" .action)" = would-kill ]
		[ "$(event_field "$ev" '.chain | length')" -eq 1 ]
		[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/evil/leaf.spki")" ]
		[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(cat "$PKI/evil/leaf.certsha")" ]
		[ "$(event_field "$ev" '.chain[0].issuer')" = "CN=pinwarden evil root,O=pinwarden test" ]
		[ "$(event_field "$ev" '.report | keys | join(",")')" = \
			"date-time,effective-expiration-date,hostname,include-subdomains,known-pins,noted-hostname,port,served-certificate-chain,validated-certificate-chain" ]
		[ "$(event_field "$ev" '.report.hostname')" = pin.test ]
		[ "$(event_field "$ev" '.report.port')" -eq "$evil_PORT" ]
		[ "$(event_field "$ev" '.report."noted-hostname"')" = pin.test ]
		[ "$(event_field "$ev" '.report."include-subdomains"')" = false ]
		[ "$(event_field "$ev" '.report."effective-expiration-date"')" = null ]
		[ "$(event_field "$ev" '.report."known-pins"[0]')" = \
			"pin-sha256=\"$(cut -d/ -f2- "$PKI/legit-ec/leaf.spki")\"" ]
		[ "$(event_field "$ev" '.report."known-pins" | length')" -eq 2 ]
		# the served chain, as PEM, is the impostor's leaf byte for byte
		event_field "$ev" '.report."served-certificate-chain"[0]' >"$BATS_TEST_TMPDIR/served.pem"
		[ "$(openssl x509 -in "$BATS_TEST_TMPDIR/served.pem" -outform der | sha256sum | cut -d' ' -f1)" = \
			"$(cat "$PKI/evil/leaf.certsha")" ]
		[[ $(event_field "$ev" '.report."date-time"') =~ ^[0-9-]{10}T[0-9:]{8}Z$ ]]

		# a host no rule names
		connect "$comm" other.test "$legit_PORT"
		ev=$(events_wait ".event == \"tls_chain\" and .comm == \"$comm\" and .host == \"other.test\"")
		[ "$(event_field "$ev" .verdict)" = unpinned ]
		[ "$(event_field "$ev" .rule)" = null ]
		[ "$(event_field "$ev" '.chain[1].cert_sha256')" = "$(cat "$PKI/legit-ec/int.certsha")" ]
	done
	# audit let every client through: the impostor received all three requests
	[ -s "$evil_RECORD" ]
	[ "$(_events_count '.event == "tls_chain"')" -eq 9 ]
	events_lint
}

@test "pins: the intermediate's key matches, a backup pin matches, a cert-sha256 pin matches" {
	policy "
pinsets:
  int:
    pins:
      - $(cat "$PKI/legit-ec/int.spki")
      - $(cat "$PKI/backup.spki")
  backup_only:
    pins:
      - $(cat "$PKI/backup.spki")
      - $(cat "$PKI/legit-rsa/leaf.spki")
  certpin:
    pins:
      - cert-sha256/$(cat "$PKI/legit-ec/int.certsha")
      - $(cat "$PKI/backup.spki")
rules:
  - host: pin.test
    pinset: int
  - host: other.test
    pinset: backup_only
  - host: a.b.c.pin.test
    pinset: certpin"
	pw_start --policy "$POLICY"
	local ev
	curl_pin pin.test "$legit_PORT" --cacert "$PKI/legit-ec/root.pem"
	ev=$(chain_event curl pin.test)
	[ "$(event_field "$ev" .verdict)" = match ]
	[ "$(event_field "$ev" .validation)" = verified ]
	[ "$(event_field "$ev" '.chain | map(.validated | tostring) | join(",")')" = true,true ]
	[ "$(event_field "$ev" '.chain | map(.matched | tostring) | join(",")')" = false,true ]
	# backup_only holds the RSA leaf's key (the pin that is not the primary one)
	curl_pin other.test "$legitrsa_PORT" --cacert "$PKI/legit-rsa/root.pem"
	ev=$(chain_event curl other.test)
	[ "$(event_field "$ev" .verdict)" = match ]
	[ "$(event_field "$ev" .pinset)" = backup_only ]
	[ "$(event_field "$ev" '.chain[0].matched')" = true ]
	# the EC chain is not in backup_only
	curl_pin other.test "$legit_PORT" -k
	ev=$(events_wait ".event == \"tls_chain\" and .host == \"other.test\" and .verdict == \"mismatch\"")
	[ "$(event_field "$ev" .pinset)" = backup_only ]
	curl_pin a.b.c.pin.test "$legit_PORT" --cacert "$PKI/legit-ec/root.pem"
	ev=$(chain_event curl a.b.c.pin.test)
	[ "$(event_field "$ev" .verdict)" = match ]
	[ "$(event_field "$ev" .pinset)" = certpin ]
	[ "$(event_field "$ev" '.chain[1].matched')" = true ]
}

@test "hosts: exact, *. and **. as SPEC.md defines them, the most specific wins, port and IP rules" {
	local legit_pin evil_pin
	# the leaf's key: these clients do not verify, and only a leaf pin counts then
	legit_pin=$(cat "$PKI/legit-ec/leaf.spki")
	evil_pin=$(cat "$PKI/evil/leaf.spki")
	policy "
pinsets:
  legit: { pins: [ $legit_pin, $(cat "$PKI/backup.spki") ] }
  evil:  { pins: [ $evil_pin, $(cat "$PKI/backup.spki") ] }
rules:
  - host: '*.pin.test'
    pinset: legit
    name: one-label
  - host: '**.a.pin.test'
    pinset: legit
    name: any-depth
  - host: 'x.a.pin.test'
    pinset: evil
    name: exact-beats-wildcards
  - host: '**.b.c.pin.test'
    pinset: legit
    name: any-self
  - host: other.test
    port: 1
    pinset: legit
    name: wrong-port
  - host: 127.0.0.1
    port: $legit_PORT
    pinset: legit
    name: by-address"
	pw_start --policy "$POLICY"
	local name want ev
	# name -> the rule that must judge it ("-" = none); "*." beats "**." whatever the
	# suffix lengths (exact > *. > **., then the longer suffix)
	for pair in pin.test=- b.pin.test=one-label a.pin.test=one-label b.a.pin.test=any-depth \
		c.b.a.pin.test=any-depth x.a.pin.test=exact-beats-wildcards c.b.pin.test=- other.test=- \
		b.c.pin.test=any-self x.b.c.pin.test=any-self; do
		name=${pair%%=*} want=${pair#*=}
		curl_pin "$name" "$legit_PORT" -k >/dev/null
		ev=$(chain_event curl "$name")
		if [ "$want" = - ]; then
			[ "$(event_field "$ev" .verdict)" = unpinned ] || {
				echo "$name: $ev"
				false
			}
		else
			[ "$(event_field "$ev" .rule)" = "$want" ] || {
				echo "$name: want $want: $ev"
				false
			}
		fi
	done
	# the exact rule holds the impostor's key: the legitimate chain mismatches it
	ev=$(chain_event curl x.a.pin.test)
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	ev=$(chain_event curl c.b.a.pin.test)
	[ "$(event_field "$ev" .verdict)" = match ]
	# upper case and a final dot in the SNI are the same name
	tls_client --host B.PIN.Test. --port "$legit_PORT" --insecure
	ev=$(events_wait '.event == "tls_chain" and .comm == "python3"')
	[ "$(event_field "$ev" .rule)" = one-label ]
	# no SNI (an address): judged by the rule naming the destination address and port
	curl --silent --max-time 20 -k "https://127.0.0.1:$legit_PORT/" >/dev/null
	ev=$(chain_event curl null)
	[ "$(event_field "$ev" .rule)" = by-address ]
	[ "$(event_field "$ev" .verdict)" = match ]
	[ "$(event_field "$ev" '.notes | index("no SNI") != null')" = true ]
}

@test "enforce + kill: a client meeting the impostor dies before its secret leaves; the real server gets it" {
	policy "
mode: enforce
action: kill
pinsets:
  legit:
    pins:
      - $(cat "$PKI/legit-ec/int.spki")
      - $(cat "$PKI/backup.spki")
rules:
  - host: pin.test
    pinset: legit"
	pw_start --policy "$POLICY"
	local secret=s3cret-$RANDOM ev
	# python: handshake (verification off, as a careless client would), then the secret
	run tls_client --host pin.test --port "$evil_PORT" --insecure --secret "$secret"
	[ "$status" -eq 137 ]
	ev=$(chain_event python3 pin.test)
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	[ "$(event_field "$ev" .action)" = killed ]
	[ "$(event_field "$ev" .mode)" = enforce ]
	# curl sends its request right after the handshake
	run curl_pin pin.test "$evil_PORT" -k -H "X-Secret: $secret"
	[ "$status" -eq 137 ]
	ev=$(events_wait '.event == "tls_chain" and .comm == "curl" and .action == "killed"')
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	# openssl s_client with data on stdin
	run bash -c "echo $secret | openssl s_client -connect 127.0.0.1:$evil_PORT -servername pin.test -quiet"
	[ "$status" -eq 137 ]
	events_wait '.event == "tls_chain" and .comm == "openssl" and .action == "killed"'
	# the impostor received not one byte of application data
	[ ! -s "$evil_RECORD" ]

	# the legitimate server: the same clients live, and the secret arrives
	run tls_client --host pin.test --port "$legit_PORT" --cafile "$PKI/legit-ec/root.pem" --secret "$secret"
	[ "$status" -eq 0 ]
	[ "$output" = ok ]
	run curl_pin pin.test "$legit_PORT" --cacert "$PKI/legit-ec/root.pem" -H "X-Secret: $secret"
	[ "$status" -eq 0 ]
	grep -q "$secret" "$legit_RECORD"
	[ "$(grep -c "$secret" "$legit_RECORD")" -eq 2 ]
	ev=$(events_wait '.event == "tls_chain" and .comm == "python3" and .verdict == "match"')
	[ "$(event_field "$ev" .action)" = none ]
	events_lint
}

@test "enforce: a rule in audit mode reports, another host is not touched" {
	policy "
mode: enforce
pinsets:
  legit: { pins: [ $(cat "$PKI/legit-ec/int.spki"), $(cat "$PKI/backup.spki") ] }
rules:
  - host: pin.test
    pinset: legit
    mode: audit"
	pw_start --policy "$POLICY"
	run tls_client --host pin.test --port "$evil_PORT" --insecure
	[ "$status" -eq 0 ]
	ev=$(chain_event python3 pin.test)
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	[ "$(event_field "$ev" .action)" = would-kill ]
	run tls_client --host other.test --port "$evil_PORT" --insecure
	[ "$status" -eq 0 ]
	[ "$(event_field "$(chain_event python3 other.test)" .verdict)" = unpinned ]
	[ -s "$evil_RECORD" ]
}

@test "check: each error with its line and column, exit 2; a good policy exits 0 with a summary" {
	run "$PW" check "$BATS_TEST_DIRNAME/policy/good.yaml"
	[ "$status" -eq 0 ]
	[[ $output == *": ok: "* ]]
	policy "
mode: enforce
pinsets:
  legit:
    pins:
      - sha256/not-base64!
      - unknown/AAAA
rules:
  - host: 'a*.pin.test'
    pinset: legit
  - host: pin.test
    pinset: nosuch
    colour: red"
	run --separate-stderr "$PW" check "$POLICY"
	[ "$status" -eq 2 ]
	[[ $stderr == *"policy.yaml:7:9: error: "*"unknown"* ]]
	[[ $stderr == *"policy.yaml:9:11: error: "* ]]
	[[ $stderr == *"policy.yaml:12:13: error: "*"nosuch"* ]]
	[[ $stderr == *"policy.yaml:13:5: error: unknown key 'colour'"* ]]
	# lint warnings alone exit 0, or 2 with --strict
	run "$PW" check "$BATS_TEST_DIRNAME/policy/warnings.yaml"
	[ "$status" -eq 0 ]
	run "$PW" check --strict "$BATS_TEST_DIRNAME/policy/warnings.yaml"
	[ "$status" -eq 2 ]
}

@test "run with a bad policy exits 2 and attaches nothing" {
	policy "
pinsets:
  legit: { pins: [ $(cat "$PKI/legit-ec/int.spki") ] }
rules:
  - host: pin.test
    pinset: missing"
	local before
	before=$(bpftool prog show 2>/dev/null | grep -c ossl_ || true)
	run --separate-stderr "$PW" run --policy "$POLICY" --log "$BATS_TEST_TMPDIR/events.jsonl"
	[ "$status" -eq 2 ]
	[[ $stderr == *"policy.yaml:6:13: error: "*"missing"* ]]
	[ "$(bpftool prog show 2>/dev/null | grep -c ossl_ || true)" -eq "$before" ]
	# nothing was written to the event log either: the kernel was never touched
	[ ! -s "$BATS_TEST_TMPDIR/events.jsonl" ]
	# a policy others can write is refused the same way
	chmod 0666 "$POLICY"
	run --separate-stderr "$PW" run --policy "$POLICY"
	[ "$status" -eq 2 ]
	[[ $stderr == *"writable by group or others"* ]]
}

@test "pin: prints the pins of PEM files and of a live server, matching the openssl CLI" {
	run "$PW" pin "$PKI/legit-ec/fullchain.pem"
	[ "$status" -eq 0 ]
	grep -qx -- "- $(cat "$PKI/legit-ec/leaf.spki")" <<<"$output"
	grep -qx -- "- $(cat "$PKI/legit-ec/int.spki")" <<<"$output"
	grep -qx -- "- cert-sha256/$(cat "$PKI/legit-ec/root.certsha")" <<<"$output"
	[ "$(grep -c '^- sha256/' <<<"$output")" -eq 3 ]
	openssl x509 -in "$PKI/legit-rsa/leaf.pem" -outform der -out "$BATS_TEST_TMPDIR/leaf.der"
	run "$PW" pin "$BATS_TEST_TMPDIR/leaf.der"
	[ "$status" -eq 0 ]
	grep -qx -- "- $(cat "$PKI/legit-rsa/leaf.spki")" <<<"$output"
	run "$PW" pin "127.0.0.1:$legit_PORT" --sni pin.test
	[ "$status" -eq 0 ]
	grep -qx -- "- $(cat "$PKI/legit-ec/leaf.spki")" <<<"$output"
	grep -qx -- "- $(cat "$PKI/legit-ec/int.spki")" <<<"$output"
	run "$PW" pin /nonexistent.pem
	[ "$status" -ne 0 ]
}

@test "session table: 200 handshakes in a row under enforce, swept meanwhile: every one keeps its SNI and matches" {
	pin_test_policy enforce
	pw_start --policy "$POLICY" --metrics "$BATS_TEST_TMPDIR/metrics.prom"
	local i
	# each handshake makes and frees one entry while the daemon recounts the table every
	# second: a count that drifted would refuse entries, and the chains would fail closed
	for i in $(seq 200); do
		curl_pin pin.test "$legit_PORT" --cacert "$PKI/legit-ec/root.pem" >/dev/null
	done
	retry 50 0.1 events_count_ge 200 '.event == "tls_chain"'
	[ "$(_events_count '.event == "tls_chain" and .verdict == "match" and .host == "pin.test"')" -eq 200 ]
	retry 30 0.1 grep -q '^pinwarden_chains_judged_total 200$' "$BATS_TEST_TMPDIR/metrics.prom"
	grep -q '^pinwarden_kernel_failures_total{reason="ssl_state_full"} 0$' "$BATS_TEST_TMPDIR/metrics.prom"
	grep -q '^pinwarden_rule_unknown_failed_closed_total 0$' "$BATS_TEST_TMPDIR/metrics.prom"
}

@test "the daemon exits 0 on SIGTERM and reports every chain it judged" {
	pw_start
	local i
	for i in 1 2 3 4 5; do
		tls_client --host pin.test --port "$legit_PORT" --insecure >/dev/null
	done
	retry 50 0.1 events_count_ge 5 '.event == "tls_chain"'
	pw_stop
	[ "$(nchains)" -eq 5 ]
	events_lint
}

# run_cnt of pinwarden's uprobe programs (needs kernel.bpf_stats_enabled=1)
prog_runs() {
	bpftool -j prog show | jq '[.[] | select(.name | test("^ossl_")) | .run_cnt // 0] | add // 0'
}

@test "loading the CA bundle at process start fires no probe; a handshake fires a handful" {
	local old
	old=$(sysctl -n kernel.bpf_stats_enabled)
	sysctl -qw kernel.bpf_stats_enabled=1
	pw_start --metrics "$BATS_TEST_TMPDIR/metrics.prom"
	local before after i
	before=$(prog_runs)
	for i in $(seq 20); do
		# what every TLS client does first: a default context with the system CA bundle
		"$PYTHON" -c 'import ssl; c = ssl.create_default_context(); assert c.cert_store_stats()["x509_ca"] > 50'
		openssl verify -CAfile /etc/ssl/certs/ca-certificates.crt "$PKI/legit-ec/root.pem" >/dev/null 2>&1 || true
	done
	after=$(prog_runs)
	sysctl -qw kernel.bpf_stats_enabled="$old"
	echo "probe runs during 40 CA bundle loads: $((after - before))"
	[ "$((after - before))" -eq 0 ]
	# one handshake: 2 certificates, the SSL*, the verdict, SNI, fd, free
	sysctl -qw kernel.bpf_stats_enabled=1
	before=$(prog_runs)
	tls_client --host pin.test --port "$legit_PORT" --insecure >/dev/null
	after=$(prog_runs)
	sysctl -qw kernel.bpf_stats_enabled="$old"
	echo "probe runs for one python handshake: $((after - before))"
	[ "$((after - before))" -ge 5 ]
	[ "$((after - before))" -le 20 ]
	# and no certificate was taken for part of a chain when it was not
	retry 30 0.1 grep -q '^pinwarden_chains_judged_total 1$' "$BATS_TEST_TMPDIR/metrics.prom"
	grep -q '^pinwarden_orphan_certificates_total 0$' "$BATS_TEST_TMPDIR/metrics.prom"
	grep -q '^pinwarden_certificates_captured_total 2$' "$BATS_TEST_TMPDIR/metrics.prom"
}

@test "resumption: a resumed session carries its full handshake's verdict and is reported as resumed; an enforced mismatch leaves nothing to resume" {
	server_start legit12 --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" --reply --tls 1.2
	pin_test_policy enforce
	pw_start --policy "$POLICY"
	local port n=0 ev
	for port in "$legit_PORT" "$legit12_PORT"; do
		run "$PYTHON" "$TOOLS/resume.py" "$port" "again$port"
		[ "$status" -eq 0 ]
		[ "$output" = resumed ]
		# both exchanges went through; one chain was presented and judged (the full
		# handshake), and the resumed connection is reported as such when it ends
		grep -rq "again$port-full" "$legit_RECORD" "$legit12_RECORD"
		grep -rq "again$port-resumed" "$legit_RECORD" "$legit12_RECORD"
		n=$((n + 1))
		retry 50 0.1 events_count_ge "$n" '.event == "tls_chain" and .verdict == "match"'
		retry 50 0.1 events_count_ge "$n" '.event == "tls_chain" and .verdict == "resumed"'
	done
	sleep 0.5
	[ "$(_events_count '.event == "tls_chain"')" -eq 4 ]
	ev=$(_events_select '.event == "tls_chain" and .verdict == "resumed"' | tail -n 1)
	[ "$(event_field "$ev" .host)" = pin.test ]
	[ "$(event_field "$ev" .rule)" = pin.test ]
	[ "$(event_field "$ev" .action)" = none ]
	[ "$(event_field "$ev" '.chain | length')" -eq 0 ]
	[ "$(event_field "$ev" '.notes | map(select(startswith("resumed session"))) | length')" -eq 1 ]
	# against the impostor the full handshake is the end: killed before any session exists
	run "$PYTHON" "$TOOLS/resume.py" "$evil_PORT" never
	[ "$status" -eq 137 ]
	[ ! -s "$evil_RECORD" ]
}

@test "TLS 1.2 and 1.3: curl, python3 and s_client judged and enforced on both versions" {
	server_start legit12 --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" --reply --tls 1.2
	server_start evil12 --cert "$PKI/evil/chain.pem" --key "$PKI/evil/leaf.key" --reply --tls 1.2
	pin_test_policy enforce
	pw_start --policy "$POLICY"
	local v good bad
	for v in 1.2 1.3; do
		if [ "$v" = 1.2 ]; then good=$legit12_PORT bad=$evil12_PORT; else good=$legit_PORT bad=$evil_PORT; fi
		run tls_client --host pin.test --port "$good" --insecure --tls "$v" --secret "py$v"
		[ "$status" -eq 0 ]
		run curl_pin pin.test "$good" -k --tlsv"$v" --tls-max "$v" -H "X-Secret: curl$v"
		[ "$status" -eq 0 ]
		run tls_client --host pin.test --port "$bad" --insecure --tls "$v" --secret "py$v"
		[ "$status" -eq 137 ]
		run curl_pin pin.test "$bad" -k --tlsv"$v" --tls-max "$v" -H "X-Secret: curl$v"
		[ "$status" -eq 137 ]
		run bash -c "printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -connect 127.0.0.1:$bad -servername pin.test -tls${v/./_} -quiet"
		[ "$status" -eq 137 ]
	done
	grep -q "py1.2" "$legit12_RECORD" && grep -q "curl1.2" "$legit12_RECORD"
	grep -q "py1.3" "$legit_RECORD" && grep -q "curl1.3" "$legit_RECORD"
	[ ! -s "$evil12_RECORD" ]
	[ ! -s "$evil_RECORD" ]
	# the servers really spoke the versions asked for
	grep -q "TLSv1.2" "$legit12_LOG" && grep -q "TLSv1.3" "$legit_LOG"
	[ "$(_events_count '.event == "tls_chain" and .verdict == "match"')" -eq 4 ]
	[ "$(_events_count '.event == "tls_chain" and .action == "killed"')" -eq 6 ]
}

@test "renegotiation: a TLS 1.2 renegotiation is judged again, by the policy in force then" {
	local dir=$BATS_TEST_TMPDIR port cpid rc=0 deadline=$((SECONDS + 10))
	pin_test_policy audit
	pw_start --policy "$POLICY"
	# openssl s_server renegotiates when "r" arrives on its stdin (a FIFO held open on
	# fd 5); no tickets and no cache, so that the renegotiation is a full handshake
	mkfifo "$dir/sin" "$dir/cin"
	openssl s_server -accept 127.0.0.1:0 -naccept 1 -tls1_2 -no_ticket -no_cache \
		-cert "$PKI/legit-ec/leaf.pem" -cert_chain "$PKI/legit-ec/int.pem" \
		-key "$PKI/legit-ec/leaf.key" 3>&- <"$dir/sin" >"$dir/sserver.out" 2>&1 &
	S_PID=$!
	exec 5>"$dir/sin"
	until port=$(grep -o 'ACCEPT 127.0.0.1:[0-9]*' "$dir/sserver.out" | cut -d: -f2) && [ -n "$port" ]; do
		[ $SECONDS -lt $deadline ] && kill -0 "$S_PID"
		sleep 0.05
	done
	openssl s_client -connect "127.0.0.1:$port" -servername pin.test -tls1_2 \
		3>&- <"$dir/cin" >"$dir/sclient.out" 2>&1 &
	cpid=$!
	exec 4>"$dir/cin"
	events_wait '.event == "tls_chain" and .comm == "openssl" and .verdict == "match"'
	echo first-secret >&4
	retry 50 0.1 grep -q first-secret "$dir/sserver.out"
	# audit: the renegotiation presents the chain again and it is judged again
	echo r >&5
	retry 50 0.1 events_count_ge 2 '.event == "tls_chain" and .comm == "openssl" and .verdict == "match"'
	echo second-secret >&4
	retry 50 0.1 grep -q second-secret "$dir/sserver.out"
	# now enforce a pinset the server's chain does not satisfy: the next renegotiation
	# is judged by it and the client dies there
	policy "
mode: enforce
pinsets:
  other: { pins: [ $(cat "$PKI/backup.spki") ] }
rules:
  - host: pin.test
    pinset: other"
	kill -HUP "$PW_PID"
	events_wait '.event == "policy_loaded" and .generation == 2'
	echo r >&5
	wait "$cpid" || rc=$?
	exec 4>&- 5>&-
	[ "$rc" -eq 137 ]
	events_wait '.event == "tls_chain" and .comm == "openssl" and .action == "killed" and .generation == 2'
	[ "$(_events_count '.event == "tls_chain" and .comm == "openssl"')" -eq 3 ]
	# the server saw the client go in the middle of the renegotiation
	retry 50 0.1 grep -q "CONNECTION CLOSED" "$dir/sserver.out"
	wait "$S_PID" 2>/dev/null || true
}

@test "the executable in events follows an exec: one thread judged as python, then, having exec'd curl, as curl" {
	pw_start
	# the same task (thread) makes a handshake as python, then execs curl, which
	# makes another: the kernel keeps the path of the thread's executable between
	# its verdicts and must see the exec
	"$PYTHON" -c '
import os, socket, ssl, sys
port, ca = sys.argv[1], sys.argv[2]
c = ssl.create_default_context(cafile=ca)
s = c.wrap_socket(socket.create_connection(("127.0.0.1", int(port))), server_hostname="pin.test")
s.close()
os.execv("/usr/bin/curl", ["curl", "--silent", "--max-time", "20", "--cacert", ca, "--resolve",
	"exec.pin.test:%s:127.0.0.1" % port, "https://exec.pin.test:%s/" % port])
' "$legit_PORT" "$PKI/legit-ec/root.pem" >/dev/null
	local py cu
	py=$(events_wait '.event == "tls_chain" and .host == "pin.test"')
	cu=$(events_wait '.event == "tls_chain" and .host == "exec.pin.test"')
	echo "$py" | jq -c '{comm, pid, tid, exe}'
	echo "$cu" | jq -c '{comm, pid, tid, exe}'
	[ "$(jq .tid <<<"$py")" = "$(jq .tid <<<"$cu")" ]
	[ "$(jq -r .exe <<<"$py")" = "$(readlink -f "$PYTHON")" ]
	[ "$(jq -r .exe <<<"$cu")" = /usr/bin/curl ]
}
