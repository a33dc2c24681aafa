#!/usr/bin/env bats
# NSS (libssl3.so) end to end: the real daemon, the real BPF programs, NSS's own
# client (tstclnt) over TLS 1.2 and 1.3 against real servers on 127.0.0.1, PKIs
# made at test time.

# server_start exports NAME_PORT, NAME_RECORD...
# shellcheck disable=SC2154

load helpers

setup() {
	requires bpf
	command -v tstclnt >/dev/null || skip "needs tstclnt (apt-get install libnss3-tools)"
	pki
	server_start legit --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" --reply
	server_start legitrsa --cert "$PKI/legit-rsa/chain.pem" --key "$PKI/legit-rsa/leaf.key" --reply
	server_start evil --cert "$PKI/evil/chain.pem" --key "$PKI/evil/leaf.key" --reply
	SECRET=s3cret-$RANDOM$RANDOM
}

# An NSS database that trusts the two legitimate test roots (what a careful client has).
nssdb() {
	NSSDB=$BATS_TEST_TMPDIR/nssdb
	mkdir -p "$NSSDB"
	certutil -N -d "sql:$NSSDB" --empty-password
	certutil -A -d "sql:$NSSDB" -n legit-ec -t C,, -i "$PKI/legit-ec/root.pem"
	certutil -A -d "sql:$NSSDB" -n legit-rsa -t C,, -i "$PKI/legit-rsa/root.pem"
}

# nss_client VERSION NAME PORT [tstclnt args...]: one handshake by tstclnt over TLS
# VERSION (1.2 or 1.3) with NAME as its URL (the SNI, unless NAME is an address),
# then an HTTP request that carries $SECRET. Without args: no verification (-D -o),
# the careless client that pinning protects. Its stderr goes to $BATS_TEST_TMPDIR/tstclnt.err.
nss_client() {
	local v=tls$1 name=$2 port=$3
	shift 3
	[ $# -gt 0 ] || set -- -D -o
	printf 'GET / HTTP/1.0\r\nX-Secret: %s\r\n\r\n' "$SECRET" >"$BATS_TEST_TMPDIR/request"
	timeout 20 tstclnt -h 127.0.0.1 -p "$port" -a "$name" -V "$v:$v" \
		-A "$BATS_TEST_TMPDIR/request" "$@" </dev/null 2>>"$BATS_TEST_TMPDIR/tstclnt.err"
}

# The last chain event of tstclnt with the server on PORT.
chain_event() {
	events_wait ".event == \"tls_chain\" and .comm == \"tstclnt\" and .peer == \"127.0.0.1:$1\"${2:+ and $2}"
}

# check_chain EVENT PKI-DIR: the event's chain is PKI-DIR's leaf and intermediate,
# hashed as the openssl CLI hashes them.
check_chain() {
	local ev=$1 d=$PKI/$2
	[ "$(event_field "$ev" '.chain | length')" -eq 2 ]
	[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$d/leaf.spki")" ]
	[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(cat "$d/leaf.certsha")" ]
	[ "$(event_field "$ev" '.chain[1].spki_sha256')" = "$(cat "$d/int.spki")" ]
	[ "$(event_field "$ev" '.chain[1].cert_sha256')" = "$(cat "$d/int.certsha")" ]
}

@test "nss: the daemon attaches the host's libssl3.so and libnss3.so, not OpenSSL's libssl.so.3" {
	pw_start
	local ev
	ev=$(events_wait '.event == "ready"')
	# libssl3 (the chain, the verdict) and libnss3 (the signature checks of its verification)
	[ "$(jq '[.libraries[] | select(.library == "nss")] | length' <<<"$ev")" -eq 2 ]
	[ "$(jq '[.libraries[] | select(.library == "nss") | .path | select(endswith("/libssl3.so"))] | length' <<<"$ev")" -eq 1 ]
	[ "$(jq '[.libraries[] | select(.library == "nss") | .path | select(endswith("/libnss3.so"))] | length' <<<"$ev")" -eq 1 ]
	# libssl3: certificates and their objects, the chain, the verification, the auth callback's return
	[ "$(event_field "$ev" '.libraries[] | select(.path | endswith("/libssl3.so")) | .probes')" -ge 12 ]
	[ "$(event_field "$ev" '.libraries[] | select(.path | endswith("/libnss3.so")) | .probes')" -ge 2 ]
	[[ $(event_field "$ev" '.libraries[] | select(.library == "openssl") | .path') == */libssl.so.3 ]]
	# the verdict waits for NSS's own verification: not left to leaf pins only
	run ! grep -q "NSS's verification is not read" "$PW_ERR"
}

@test "nss audit, default policy: TLS 1.2 and 1.3 chains logged unpinned, with SNI, exact peer and the openssl CLI's hashes" {
	nssdb
	pw_start
	local v ev
	for v in 1.2 1.3; do
		# a verifying client this time: the NSS database trusts the test root
		nss_client "$v" pin.test "$legit_PORT" -d "sql:$NSSDB" >"$BATS_TEST_TMPDIR/out"
		grep -q '^ok$' "$BATS_TEST_TMPDIR/out"
		ev=$(chain_event "$legit_PORT")
		[ "$(event_field "$ev" .library)" = nss ]
		[ "$(event_field "$ev" .verdict)" = unpinned ]
		[ "$(event_field "$ev" .mode)" = audit ]
		[ "$(event_field "$ev" .action)" = none ]
		[ "$(event_field "$ev" .side)" = client ]
		[ "$(event_field "$ev" .host)" = pin.test ]
		# the peer comes from the NSPR socket itself, not from a guess
		[ "$(event_field "$ev" '.notes // [] | length')" -eq 0 ]
		[ "$(event_field "$ev" .exe)" = "$(readlink -f "$(command -v tstclnt)")" ]
		check_chain "$ev" legit-ec
		[ "$(event_field "$ev" '.chain[0].subject')" = "CN=pin.test,O=pinwarden test" ]
		[ "$(event_field "$ev" '.chain[0].issuer')" = "$(event_field "$ev" '.chain[1].subject')" ]
		nss_client "$v" pin.test "$legitrsa_PORT" -d "sql:$NSSDB" >/dev/null
		check_chain "$(chain_event "$legitrsa_PORT")" legit-rsa
		events_lint
		: >"$PW_LOG"
	done
	pw_stop
	# the daemon re-hashed every certificate with OpenSSL: no disagreement with the kernel
	! grep -q hash_disagreement "$PW_LOG" || false
}

@test "nss audit: match, mismatch with its RFC 7469 report, and unpinned, TLS 1.2 and 1.3, verification off" {
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
	local v ev
	for v in 1.2 1.3; do
		nss_client "$v" pin.test "$legit_PORT" >/dev/null
		ev=$(chain_event "$legit_PORT" ".verdict == \"match\"")
		[ "$(event_field "$ev" .rule)" = pin.test ]
		[ "$(event_field "$ev" .pinset)" = legit ]
		[ "$(event_field "$ev" .library)" = nss ]
		[ "$(event_field "$ev" '.chain[0].matched')" = true ]
		[ "$(event_field "$ev" '.chain[1].matched')" = false ]
		check_chain "$ev" legit-ec
		[ "$(event_field "$ev" .report)" = null ]

		# the impostor: audit reports it and lets the client through
		nss_client "$v" pin.test "$evil_PORT" >/dev/null
		ev=$(chain_event "$evil_PORT" ".verdict == \"mismatch\"")
		[ "$(event_field "$ev" .host)" = pin.test ]
		[ "$(event_field "$ev" .action)" = would-kill ]
		[ "$(event_field "$ev" '.chain | length')" -eq 1 ]
		[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/evil/leaf.spki")" ]
		[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(cat "$PKI/evil/leaf.certsha")" ]
		[ "$(event_field "$ev" '.report.hostname')" = pin.test ]
		[ "$(event_field "$ev" '.report.port')" -eq "$evil_PORT" ]
		[ "$(event_field "$ev" '.report."known-pins"[0]')" = \
			"pin-sha256=\"$(cut -d/ -f2- "$PKI/legit-ec/leaf.spki")\"" ]
		event_field "$ev" '.report."served-certificate-chain"[0]' >"$BATS_TEST_TMPDIR/served.pem"
		[ "$(openssl x509 -in "$BATS_TEST_TMPDIR/served.pem" -outform der | sha256sum | cut -d' ' -f1)" = \
			"$(cat "$PKI/evil/leaf.certsha")" ]

		# a host no rule names
		nss_client "$v" other.test "$legit_PORT" >/dev/null
		ev=$(events_wait ".event == \"tls_chain\" and .comm == \"tstclnt\" and .host == \"other.test\"")
		[ "$(event_field "$ev" .verdict)" = unpinned ]
		[ "$(event_field "$ev" .rule)" = null ]
		retry 30 0.1 events_count_ge 3 '.event == "tls_chain"'
		: >"$PW_LOG"
	done
	# audit let the client through: the impostor received both requests
	[ "$(grep -c "$SECRET" "$evil_RECORD")" -eq 2 ]
}

@test "nss enforce + kill: tstclnt meeting the impostor dies before its request leaves, TLS 1.2 and 1.3; the real server gets it" {
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
	pw_start --policy "$POLICY"
	local v ev
	for v in 1.2 1.3; do
		run nss_client "$v" pin.test "$evil_PORT"
		[ "$status" -eq 137 ]
		ev=$(chain_event "$evil_PORT" ".action == \"killed\"")
		[ "$(event_field "$ev" .verdict)" = mismatch ]
		[ "$(event_field "$ev" .mode)" = enforce ]
		[ "$(event_field "$ev" .library)" = nss ]
		[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(cat "$PKI/evil/leaf.certsha")" ]
		: >"$PW_LOG"

		run nss_client "$v" pin.test "$legit_PORT"
		[ "$status" -eq 0 ]
		[[ $output == *ok* ]]
		ev=$(chain_event "$legit_PORT" ".verdict == \"match\"")
		[ "$(event_field "$ev" .action)" = none ]
		: >"$PW_LOG"
	done
	# not one byte of application data reached the impostor; both requests reached the real server
	[ ! -s "$evil_RECORD" ]
	[ "$(grep -c "$SECRET" "$legit_RECORD")" -eq 2 ]
}

@test "nss enforce: between reading the impostor's chain and the kill, tstclnt sends no application data, nothing at all when its callback verifies (strace)" {
	command -v strace >/dev/null || skip "needs strace"
	pin_test_policy enforce
	pw_start --policy "$POLICY"
	local v mode trace fd opts only
	for v in 1.2 1.3; do
		for mode in deferred callback; do
			trace=$BATS_TEST_TMPDIR/strace.$v.$mode
			opts=(-D -o)
			# what may be written after the server's flight: nothing when the verdict is
			# taken as the auth callback returns (-O: tstclnt verifies in it); when
			# tstclnt defers its verification (SSL_AuthCertificateComplete, the
			# verdict), NSS sends TLS 1.2's second handshake flight meanwhile, never an
			# application data record (type 0x17; awk -v unescapes it once, to the regex
			# of the text strace -xx prints)
			only='\\\\x17'
			if [ "$mode" = callback ]; then
				opts+=(-O)
				only=''
			fi
			printf 'GET / HTTP/1.0\r\nX-Secret: %s\r\n\r\n' "$SECRET" >"$BATS_TEST_TMPDIR/request"
			run strace -f -qq -xx -o "$trace" -e trace=network,read,write,writev,sendmsg,sendto,recvfrom \
				tstclnt -h 127.0.0.1 -p "$evil_PORT" -a pin.test -V "tls$v:tls$v" "${opts[@]}" \
				-A "$BATS_TEST_TMPDIR/request"
			[ "$status" -eq 137 ]
			grep -q 'killed by SIGKILL' "$trace"
			# the socket: the fd connect() was called on
			fd=$(sed -n 's/.*connect(\([0-9]*\),.*/\1/p' "$trace" | head -n 1)
			[ -n "$fd" ]
			# the ClientHello went out, the server's flight came in...
			grep -Eq "(write|sendto)\($fd, \"\\\\x16\\\\x03" "$trace"
			grep -Eq "(read|recvfrom)\($fd, \"\\\\x16\\\\x03" "$trace"
			# ... and after the first read of the server's flight, nothing (of that type) was
			# written to it
			awk -v fd="$fd" -v only="$only" '
				$0 ~ "(read|recvfrom)\\(" fd ", \"\\\\x16" { seen = 1; next }
				seen && $0 ~ "(write|writev|sendto|sendmsg)\\(" fd ", \"" only {
					print "written after the flight: " $0; bad = 1 }
				END { exit bad }' "$trace"
		done
	done
	[ ! -s "$evil_RECORD" ]
}

@test "nss: a Certificate message over several records (a 25 KB chain) is judged in full and matches" {
	# NSS parses such a message from a copy of its body, without the handshake header
	local d=$BATS_TEST_TMPDIR/big sans=DNS:pin.test i
	mkdir -p "$d"
	for i in $(seq 900); do sans="$sans,DNS:host-$i.padding.pin.test"; done
	printf '[v3]\nsubjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$sans" >"$d/ext.cnf"
	openssl ecparam -name prime256v1 -genkey -noout -out "$d/leaf.key"
	openssl req -new -key "$d/leaf.key" -subj "/O=pinwarden test/CN=pin.test" -out "$d/leaf.csr"
	openssl x509 -req -in "$d/leaf.csr" -CA "$PKI/legit-ec/int.pem" -CAkey "$PKI/legit-ec/int.key" \
		-set_serial 77 -days 2 -extfile "$d/ext.cnf" -extensions v3 -out "$d/leaf.pem" 2>/dev/null
	[ "$(openssl x509 -in "$d/leaf.pem" -outform der | wc -c)" -gt 16384 ]
	cat "$d/leaf.pem" "$PKI/legit-ec/int.pem" >"$d/chain.pem"
	local certsha spki
	certsha=$(openssl x509 -in "$d/leaf.pem" -outform der | sha256sum | cut -d' ' -f1)
	spki=sha256/$(openssl x509 -in "$d/leaf.pem" -noout -pubkey | openssl pkey -pubin -outform der |
		openssl dgst -sha256 -binary | base64)
	server_start big --cert "$d/chain.pem" --key "$d/leaf.key" --reply
	# the big leaf's own key: tstclnt does not verify here (-D -o), only the leaf counts
	policy "
mode: enforce
pinsets:
  big: { pins: [ $spki, $(cat "$PKI/backup.spki") ] }
rules:
  - host: pin.test
    pinset: big"
	pw_start --policy "$POLICY"
	local v ev
	for v in 1.2 1.3; do
		run nss_client "$v" pin.test "$big_PORT"
		[ "$status" -eq 0 ]
		ev=$(chain_event "$big_PORT")
		[ "$(event_field "$ev" .verdict)" = match ]
		[ "$(event_field "$ev" '.errors // [] | length')" -eq 0 ]
		[ "$(event_field "$ev" '.chain | length')" -eq 2 ]
		[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$certsha" ]
		[ "$(event_field "$ev" '.chain[0].matched')" = true ]
		[ "$(event_field "$ev" .validation)" = unverified ]
		: >"$PW_LOG"
	done
	[ "$(grep -c "$SECRET" "$big_RECORD")" -eq 2 ]
}

@test "nss: an intermediate pin counts when NSS verified chain and name (callback or deferred); a name the leaf lacks, overridden (-o), is unverified" {
	nssdb
	policy "
mode: audit
pinsets:
  int: { pins: [ $(cat "$PKI/legit-ec/int.spki"), $(cat "$PKI/backup.spki") ] }
rules:
  - { host: pin.test, pinset: int }
  - { host: wrong.example, pinset: int }"
	pw_start --policy "$POLICY"
	local v mode ev opts
	for v in 1.2 1.3; do
		# tstclnt verifies after its callback deferred (SSL_AuthCertificateComplete), or
		# in the callback itself (-O)
		for mode in deferred callback; do
			opts=(-d "sql:$NSSDB")
			if [ "$mode" = callback ]; then
				opts+=(-O)
			fi
			run nss_client "$v" pin.test "$legit_PORT" "${opts[@]}"
			[ "$status" -eq 0 ]
			ev=$(chain_event "$legit_PORT" '.host == "pin.test"')
			[ "$(event_field "$ev" .validation)" = verified ]
			[ "$(event_field "$ev" .verdict)" = match ]
			[ "$(event_field "$ev" '.chain[0].validated')" = true ]
			[ "$(event_field "$ev" '.chain[1].validated')" = true ]
			[ "$(event_field "$ev" '.chain[1].matched')" = true ]
			: >"$PW_LOG"
		done
		# the chain verifies, the name does not: tstclnt -o goes on regardless
		run nss_client "$v" wrong.example "$legit_PORT" -d "sql:$NSSDB" -o
		[ "$status" -eq 0 ]
		ev=$(chain_event "$legit_PORT" '.host == "wrong.example"')
		[ "$(event_field "$ev" .validation)" = unverified ]
		[ "$(event_field "$ev" .verdict)" = mismatch ]
		[ "$(event_field "$ev" '.chain[1].validated')" = false ]
		[ "$(event_field "$ev" .reason)" = "pinned key only in certificates the client did not validate" ]
		: >"$PW_LOG"
	done
}

@test "nss: a URL that is an address sends no SNI: judged by the rule naming the address" {
	policy "
mode: enforce
pinsets:
  legit: { pins: [ $(cat "$PKI/legit-ec/leaf.spki"), $(cat "$PKI/backup.spki") ] }
rules:
  - host: 127.0.0.1
    port: $evil_PORT
    pinset: legit
    name: by-address"
	pw_start --policy "$POLICY"
	local v ev
	for v in 1.2 1.3; do
		run nss_client "$v" 127.0.0.1 "$evil_PORT"
		[ "$status" -eq 137 ]
		ev=$(chain_event "$evil_PORT")
		[ "$(event_field "$ev" .host)" = null ]
		[ "$(event_field "$ev" .rule)" = by-address ]
		[ "$(event_field "$ev" .action)" = killed ]
		[ "$(event_field "$ev" '.notes | index("no SNI") != null')" = true ]
		: >"$PW_LOG"
	done
	[ ! -s "$evil_RECORD" ]
}

# run_cnt of pinwarden's NSS programs (needs kernel.bpf_stats_enabled=1)
nss_runs() {
	bpftool -j prog show | jq '[.[] | select(.name | test("^nss_")) | .run_cnt // 0] | add // 0'
}

@test "nss: NSS database loads fire no probe; a handshake fires one per certificate, NSS's verification and the verdict" {
	nssdb
	local old before after i
	old=$(sysctl -n kernel.bpf_stats_enabled)
	pw_start --metrics "$BATS_TEST_TMPDIR/metrics.prom"
	sysctl -qw kernel.bpf_stats_enabled=1
	before=$(nss_runs)
	for i in $(seq 10); do
		# the database and its trust objects, decoded by libnss3 (not libssl3)
		certutil -L -d "sql:$NSSDB" >/dev/null
		certutil -V -d "sql:$NSSDB" -n legit-ec -u L >/dev/null
	done
	after=$(nss_runs)
	echo "NSS probe runs during 20 database loads: $((after - before))"
	[ "$((after - before))" -eq 0 ]
	before=$(nss_runs)
	nss_client 1.3 pin.test "$legit_PORT" -d "sql:$NSSDB" >/dev/null
	after=$(nss_runs)
	sysctl -qw kernel.bpf_stats_enabled="$old"
	echo "NSS probe runs for one TLS 1.3 handshake with a 2-certificate chain: $((after - before))"
	# each certificate and its object (4), the chain complete (1), the auth callback's
	# return (1: tstclnt defers its verification), CERT_VerifyCert and its result (2), the
	# name check and its result (2), the signatures of the leaf and the intermediate and
	# their results in libnss3 (4), SSL_AuthCertificateComplete: the verdict (1)
	[ "$((after - before))" -eq 15 ]
	retry 30 0.1 grep -q '^pinwarden_chains_judged_total 1$' "$BATS_TEST_TMPDIR/metrics.prom"
	grep -q '^pinwarden_orphan_certificates_total 0$' "$BATS_TEST_TMPDIR/metrics.prom"
	grep -q '^pinwarden_certificates_captured_total 2$' "$BATS_TEST_TMPDIR/metrics.prom"
}

# selfserv_start: NSS's test server on a free port of 127.0.0.1, presenting the legitimate
# EC chain from an NSS database and requiring a client certificate (-r -r) issued by the
# legitimate RSA root; exports SELFSERV_PORT. Stopped by its pid in teardown.
selfserv_start() {
	local db=$BATS_TEST_TMPDIR/srvdb i
	mkdir -p "$db"
	certutil -N -d "sql:$db" --empty-password
	openssl pkcs12 -export -in "$PKI/legit-ec/leaf.pem" -inkey "$PKI/legit-ec/leaf.key" \
		-certfile "$PKI/legit-ec/int.pem" -name server -passout pass: -out "$db/server.p12"
	pk12util -i "$db/server.p12" -d "sql:$db" -W '' >/dev/null
	certutil -A -d "sql:$db" -n clients -t T,, -i "$PKI/legit-rsa/root.pem"
	SELFSERV_PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	selfserv -d "sql:$db" -n server -p "$SELFSERV_PORT" -r -r -V tls1.2:tls1.3 \
		-i "$BATS_TEST_TMPDIR/selfserv.pid" >"$BATS_TEST_TMPDIR/selfserv.log" 2>&1 </dev/null 3>&- &
	SELFSERV_PID=$!
	for i in $(seq 100); do
		ss -ltnH "sport = :$SELFSERV_PORT" | grep -q . && return 0
		sleep 0.05
	done
	cat "$BATS_TEST_TMPDIR/selfserv.log" >&2
	return 1
}

teardown() {
	if [ -n "${SELFSERV_PID:-}" ]; then
		_stop_pid "$SELFSERV_PID" 5 || true
		wait "$SELFSERV_PID" 2>/dev/null || true
	fi
	pw_teardown
}

@test "nss server (mTLS): selfserv judges its clients' chains as side server, TLS 1.2 and 1.3" {
	selfserv_start
	policy "
pinsets:
  clients: { pins: [ $(cat "$PKI/legit-rsa/leaf.spki"), $(cat "$PKI/backup.spki") ] }
rules:
  - side: server
    port: $SELFSERV_PORT
    pinset: clients
    name: mtls"
	pw_start --policy "$POLICY"
	cat "$PKI/legit-rsa/leaf.pem" "$PKI/legit-rsa/int.pem" >"$BATS_TEST_TMPDIR/client.pem"
	local v ev
	for v in 1.2 1.3; do
		tls_client --host pin.test --port "$SELFSERV_PORT" --insecure --tls "$v" \
			--cert "$BATS_TEST_TMPDIR/client.pem" --key "$PKI/legit-rsa/leaf.key" >/dev/null || true
		ev=$(events_wait '.event == "tls_chain" and .comm == "selfserv"')
		[ "$(event_field "$ev" .library)" = nss ]
		[ "$(event_field "$ev" .side)" = server ]
		[ "$(event_field "$ev" .rule)" = mtls ]
		[ "$(event_field "$ev" .verdict)" = match ]
		[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/legit-rsa/leaf.spki")" ]
		[ "$(event_field "$ev" '.chain[1].cert_sha256')" = "$(cat "$PKI/legit-rsa/int.certsha")" ]
		: >"$PW_LOG"
		# a client presenting the impostor's certificate
		tls_client --host pin.test --port "$SELFSERV_PORT" --insecure --tls "$v" \
			--cert "$PKI/evil/leaf.pem" --key "$PKI/evil/leaf.key" >/dev/null 2>&1 || true
		ev=$(events_wait '.event == "tls_chain" and .comm == "selfserv"')
		[ "$(event_field "$ev" .side)" = server ]
		[ "$(event_field "$ev" .verdict)" = mismatch ]
		[ "$(event_field "$ev" .action)" = would-kill ]
		[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(cat "$PKI/evil/leaf.certsha")" ]
		: >"$PW_LOG"
	done
}

@test "nss enforce: a chain the kernel cannot judge in full fails closed (a 40 KB leaf, pinned by its own key)" {
	# larger than the kernel's 32 KiB copy buffer: its hashes cannot be computed
	local d=$BATS_TEST_TMPDIR/huge sans=DNS:pin.test i
	mkdir -p "$d"
	for i in $(seq 1500); do sans="$sans,DNS:host-$i.padding.pin.test"; done
	printf '[v3]\nsubjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$sans" >"$d/ext.cnf"
	openssl ecparam -name prime256v1 -genkey -noout -out "$d/leaf.key"
	openssl req -new -key "$d/leaf.key" -subj "/O=pinwarden test/CN=pin.test" -out "$d/leaf.csr"
	openssl x509 -req -in "$d/leaf.csr" -CA "$PKI/legit-ec/int.pem" -CAkey "$PKI/legit-ec/int.key" \
		-set_serial 78 -days 2 -extfile "$d/ext.cnf" -extensions v3 -out "$d/leaf.pem" 2>/dev/null
	[ "$(openssl x509 -in "$d/leaf.pem" -outform der | wc -c)" -gt 32768 ]
	cat "$d/leaf.pem" "$PKI/legit-ec/int.pem" >"$d/chain.pem"
	local spki
	spki=$(openssl x509 -in "$d/leaf.pem" -noout -pubkey | openssl pkey -pubin -outform der |
		openssl dgst -sha256 -binary | base64)
	server_start huge --cert "$d/chain.pem" --key "$d/leaf.key" --reply
	policy "
mode: enforce
pinsets:
  leaf: { pins: [ sha256/$spki, $(cat "$PKI/backup.spki") ] }
rules:
  - host: pin.test
    pinset: leaf"
	pw_start --policy "$POLICY"
	run nss_client 1.3 pin.test "$huge_PORT"
	[ "$status" -eq 137 ]
	local ev
	ev=$(chain_event "$huge_PORT")
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	[ "$(event_field "$ev" .action)" = killed ]
	[ "$(event_field "$ev" '.errors | length')" -ge 1 ]
	[ ! -s "$huge_RECORD" ]
}
