#!/usr/bin/env bats
# GnuTLS 3 end to end: the real daemon, the real BPF programs, real GnuTLS clients (wget,
# gnutls-cli) against real servers on 127.0.0.1 speaking TLS 1.2 or 1.3, PKIs made at test
# time; a GnuTLS server of our own (tools/gnutls/gtls.c) for client certificates.

# server_start exports NAME_PORT, NAME_RECORD...
# shellcheck disable=SC2154

load helpers

setup() {
	requires bpf
	command -v gnutls-cli >/dev/null || skip "needs gnutls-cli (gnutls-bin)"
	ldd "$(command -v wget)" 2>/dev/null | grep -q libgnutls || skip "needs a wget linked with GnuTLS"
	pki
	local v
	for v in 12 13; do
		server_start "legit$v" --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" \
			--reply --tls "${v:0:1}.${v:1}"
		server_start "evil$v" --cert "$PKI/evil/chain.pem" --key "$PKI/evil/leaf.key" \
			--reply --tls "${v:0:1}.${v:1}"
	done
}

# port NAME: the port of server NAME (legit12, evil13, ...).
port() {
	local var=${1}_PORT
	echo "${!var}"
}

# wget_pin NAME PORT [wget args...]: GET https://NAME:PORT/, the body on stdout.
wget_pin() {
	local name=$1 port=$2
	shift 2
	in_pin_ns "$name" wget --quiet --output-document=- --tries=1 --timeout=15 "$@" \
		"https://$name:$port/"
}

# gcli NAME PORT [gnutls-cli args...]: gnutls-cli to 127.0.0.1:PORT with SNI NAME; what
# it reads on stdin is the application data it sends after the handshake.
gcli() {
	local name=$1 port=$2
	shift 2
	timeout 20 gnutls-cli --port "$port" --sni-hostname "$name" "$@" 127.0.0.1
}

# connect CLIENT NAME PORT [SECRET]: one handshake by wget or gnutls-cli without
# verification (the careless client pinning protects), then an HTTP request carrying
# SECRET. Returns the client's status (137: killed); gnutls-cli's 1 for a server that
# closes without close_notify, as tls_server.py does, counts as 0.
connect() {
	local client=$1 name=$2 port=$3 secret=${4:-none} rc=0
	case $client in
	wget)
		wget_pin "$name" "$port" --no-check-certificate --header "X-Secret: $secret" \
			>"$BATS_TEST_TMPDIR/out" 2>&1 || rc=$?
		;;
	gnutls-cli)
		printf 'GET / HTTP/1.0\r\nX-Secret: %s\r\n\r\n' "$secret" |
			gcli "$name" "$port" --insecure >"$BATS_TEST_TMPDIR/out" 2>&1 || rc=$?
		[ "$rc" -eq 1 ] && rc=0
		;;
	esac
	return "$rc"
}

# log_count_is N PATTERN FILE: FILE has exactly N lines matching PATTERN.
log_count_is() {
	[ "$(grep -c "$2" "$3")" -eq "$1" ]
}

# chain_event CLIENT PORT HOST: the last chain event of CLIENT against 127.0.0.1:PORT for HOST.
chain_event() {
	events_wait ".event == \"tls_chain\" and .comm == \"$1\" and .peer == \"127.0.0.1:$2\" and .host == \"$3\""
}

@test "audit, default policy: wget and gnutls-cli over TLS 1.2 and 1.3, verifying: each chain logged unpinned with the openssl CLI's hashes, SNI and exact peer" {
	pw_start
	[ "$(events_wait '.event == "ready"' | jq -r '.libraries | map(.library) | index("gnutls") != null')" = true ]
	local v port ev comm
	for v in 12 13; do
		port=$(port "legit$v")
		run wget_pin pin.test "$port" --ca-certificate="$PKI/legit-ec/root.pem"
		[ "$status" -eq 0 ]
		[ "$output" = ok ]
		run bash -c "printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 gnutls-cli --port $port \
			--sni-hostname pin.test --x509cafile '$PKI/legit-ec/root.pem' 127.0.0.1"
		[ "$status" -le 1 ]
		grep -q '^- Status: The certificate is trusted' <<<"$output"
		grep -q '^- Handshake was completed' <<<"$output"
		for comm in wget gnutls-cli; do
			ev=$(chain_event "$comm" "$port" pin.test)
			[ "$(event_field "$ev" .library)" = gnutls ]
			[ "$(event_field "$ev" .side)" = client ]
			[ "$(event_field "$ev" .verdict)" = unpinned ]
			[ "$(event_field "$ev" .mode)" = audit ]
			[ "$(event_field "$ev" .action)" = none ]
			# the socket came from the session, not from a guess
			[ "$(event_field "$ev" '.notes // [] | length')" -eq 0 ]
			[ "$(event_field "$ev" '.errors // [] | length')" -eq 0 ]
			[ "$(event_field "$ev" '.chain | length')" -eq 2 ]
			[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/legit-ec/leaf.spki")" ]
			[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(cat "$PKI/legit-ec/leaf.certsha")" ]
			[ "$(event_field "$ev" '.chain[1].spki_sha256')" = "$(cat "$PKI/legit-ec/int.spki")" ]
			[ "$(event_field "$ev" '.chain[1].cert_sha256')" = "$(cat "$PKI/legit-ec/int.certsha")" ]
			[ "$(event_field "$ev" '.chain[0].subject')" = "CN=pin.test,O=pinwarden test" ]
			[ "$(event_field "$ev" '.chain[1].subject')" = "CN=pinwarden test intermediate EC,O=pinwarden test" ]
			[ "$(event_field "$ev" .exe)" = "$(readlink -f "$(command -v "$comm")")" ]
			[ "$(event_field "$ev" .uid)" -eq 0 ]
		done
	done
	# the servers really spoke the version each loop meant
	[ "$(grep -c ': TLSv1.2 ' "$legit12_LOG")" -eq 2 ]
	[ "$(grep -c ': TLSv1.3 ' "$legit13_LOG")" -eq 2 ]
	# an RSA chain, without a server-side version limit
	server_start legitrsa --cert "$PKI/legit-rsa/chain.pem" --key "$PKI/legit-rsa/leaf.key" --reply
	connect gnutls-cli pin.test "$legitrsa_PORT"
	ev=$(chain_event gnutls-cli "$legitrsa_PORT" pin.test)
	[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/legit-rsa/leaf.spki")" ]
	[ "$(event_field "$ev" '.chain[1].cert_sha256')" = "$(cat "$PKI/legit-rsa/int.certsha")" ]
	[ "$(_events_count '.event == "tls_chain" and (.comm == "wget" or .comm == "gnutls-cli")')" -eq 5 ]
	events_lint
	pw_stop
	# the daemon re-hashed every certificate with OpenSSL: no disagreement with the kernel
	! grep -q hash_disagreement "$PW_LOG" || false
}

@test "audit: match, mismatch (with its RFC 7469 report) and unpinned for wget and gnutls-cli, TLS 1.2 and 1.3" {
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
	local client v ev port
	for client in wget gnutls-cli; do
		for v in 12 13; do
			port=$(port "legit$v")
			connect "$client" pin.test "$port"
			ev=$(chain_event "$client" "$port" pin.test)
			[ "$(event_field "$ev" .verdict)" = match ]
			[ "$(event_field "$ev" .library)" = gnutls ]
			[ "$(event_field "$ev" .rule)" = pin.test ]
			[ "$(event_field "$ev" .pinset)" = legit ]
			[ "$(event_field "$ev" '.chain | map(.matched | tostring) | join(",")')" = true,false ]
			[ "$(event_field "$ev" .report)" = null ]

			# the impostor: audit reports it and lets the client through
			port=$(port "evil$v")
			connect "$client" pin.test "$port"
			ev=$(chain_event "$client" "$port" pin.test)
			[ "$(event_field "$ev" .verdict)" = mismatch ]
			[ "$(event_field "$ev" .mode)" = audit ]
			[ "$(event_field "$ev" .action)" = would-kill ]
			[ "$(event_field "$ev" '.chain | length')" -eq 1 ]
			[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/evil/leaf.spki")" ]
			[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(cat "$PKI/evil/leaf.certsha")" ]
			[ "$(event_field "$ev" '.chain[0].issuer')" = "CN=pinwarden evil root,O=pinwarden test" ]
			[ "$(event_field "$ev" '.report.hostname')" = pin.test ]
			[ "$(event_field "$ev" '.report.port')" -eq "$port" ]
			[ "$(event_field "$ev" '.report."known-pins" | length')" -eq 2 ]
			[ "$(event_field "$ev" '.report."known-pins"[0]')" = \
				"pin-sha256=\"$(cut -d/ -f2- "$PKI/legit-ec/leaf.spki")\"" ]
			event_field "$ev" '.report."served-certificate-chain"[0]' >"$BATS_TEST_TMPDIR/served.pem"
			[ "$(openssl x509 -in "$BATS_TEST_TMPDIR/served.pem" -outform der | sha256sum | cut -d' ' -f1)" = \
				"$(cat "$PKI/evil/leaf.certsha")" ]

			# a host no rule names
			port=$(port "legit$v")
			connect "$client" other.test "$port"
			ev=$(chain_event "$client" "$port" other.test)
			[ "$(event_field "$ev" .verdict)" = unpinned ]
			[ "$(event_field "$ev" .rule)" = null ]
		done
	done
	# audit let every client through: each impostor received both requests
	[ "$(grep -c '^X-Secret: none' "$evil12_RECORD")" -eq 2 ]
	[ "$(grep -c '^X-Secret: none' "$evil13_RECORD")" -eq 2 ]
	[ "$(_events_count '.event == "tls_chain" and (.comm == "wget" or .comm == "gnutls-cli")')" -eq 12 ]
	events_lint
}

@test "enforce + kill: wget and gnutls-cli meeting the impostor over TLS 1.2 and 1.3 die before their secret leaves; the real server gets it" {
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
	local secret=s3cret-$RANDOM client v ev port
	for client in wget gnutls-cli; do
		for v in 12 13; do
			port=$(port "evil$v")
			run connect "$client" pin.test "$port" "$secret"
			[ "$status" -eq 137 ]
			ev=$(chain_event "$client" "$port" pin.test)
			[ "$(event_field "$ev" .verdict)" = mismatch ]
			[ "$(event_field "$ev" .mode)" = enforce ]
			[ "$(event_field "$ev" .action)" = killed ]
			[ "$(event_field "$ev" .library)" = gnutls ]
			[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/evil/leaf.spki")" ]
		done
	done
	# the impostors received not one byte of application data
	[ -e "$evil12_RECORD" ]
	[ ! -s "$evil12_RECORD" ]
	[ -e "$evil13_RECORD" ]
	[ ! -s "$evil13_RECORD" ]
	# ... though each saw both handshakes start, and end
	retry 30 0.1 log_count_is 2 'handshake failed' "$evil12_LOG"
	retry 30 0.1 log_count_is 2 'handshake failed' "$evil13_LOG"

	# the legitimate server: the same clients live, and the secret arrives
	for client in wget gnutls-cli; do
		for v in 12 13; do
			port=$(port "legit$v")
			run connect "$client" pin.test "$port" "$secret"
			[ "$status" -eq 0 ]
			# (gnutls-cli stops reading when its stdin ends: only wget shows the reply)
			[ "$client" = gnutls-cli ] || grep -qx ok "$BATS_TEST_TMPDIR/out"
			ev=$(chain_event "$client" "$port" pin.test)
			[ "$(event_field "$ev" .verdict)" = match ]
			[ "$(event_field "$ev" .action)" = none ]
		done
	done
	[ "$(grep -c "^X-Secret: $secret" "$legit12_RECORD")" -eq 2 ]
	[ "$(grep -c "^X-Secret: $secret" "$legit13_RECORD")" -eq 2 ]
	events_lint
}

# sends_before_kill TRACE PORT: from an `strace -f -xx` TRACE of a client killed by
# the verdict, check that on its connection to PORT it sent nothing but its
# ClientHello (and, TLS 1.3, the middlebox-compatibility ChangeCipherSpec, which
# GnuTLS sends before the server's certificate arrives) and that its last socket call
# was a receive. Prints the first bytes of every socket call, for the log.
sends_before_kill() {
	local trace=$1 port=$2
	grep -q '+++ killed by SIGKILL +++' "$trace" || {
		echo "no SIGKILL in $trace"
		return 1
	}
	awk -v port="$port" '
		function first6(line,   s) {
			if (!match(line, /"(\\x[0-9a-f][0-9a-f])+/))
				return ""
			s = substr(line, RSTART + 1, RLENGTH - 1)
			gsub(/\\x/, "", s)
			return substr(s, 1, 12)
		}
		fd == "" && $0 ~ "connect\\([0-9]+, .*htons\\(" port "\\)" {
			match($0, /connect\([0-9]+/); fd = substr($0, RSTART + 8, RLENGTH - 8); next
		}
		fd == "" { next }
		$0 ~ "(sendmsg|sendto|send|write|writev)\\(" fd ", " {
			b = first6($0); print "send " b
			if (b !~ /^160303....01$/ && b !~ /^160301....01$/ && b != "140303000101") bad = 1
			last = "send"; sends++; next
		}
		$0 ~ "(recvmsg|recvfrom|recv|read|readv)\\(" fd ", " && $0 !~ /= -1 EAGAIN/ {
			print "recv " first6($0); last = "recv"; recvs++; next
		}
		END {
			if (fd == "" || !sends || !recvs || bad || last != "recv") {
				print "FAIL: fd " fd ", " sends " sends, " recvs " receives, last " last
				exit 1
			}
		}' "$trace"
}

@test "syscall traces: between the server's certificate and the kill, the client sends nothing (wget, gnutls-cli, TLS 1.2 and 1.3)" {
	command -v strace >/dev/null || skip "needs strace"
	pin_test_policy enforce
	pw_start --policy "$POLICY"
	local v port trace
	for v in 12 13; do
		port=$(port "evil$v")
		trace=$BATS_TEST_TMPDIR/wget$v.strace
		run in_pin_ns pin.test strace -f -xx -o "$trace" \
			wget -q -O /dev/null --tries=1 --no-check-certificate --header "X-Secret: s" \
			"https://pin.test:$port/"
		[ "$status" -eq 137 ]
		run sends_before_kill "$trace" "$port"
		echo "$output"
		[ "$status" -eq 0 ]
		# TLS 1.2: the last thing received is the Certificate message (type 0b), in clear
		[ "$v" = 13 ] || [[ $(grep '^recv' <<<"$output" | tail -n 1) == "recv 0b"* ]]

		trace=$BATS_TEST_TMPDIR/gnutls-cli$v.strace
		run bash -c "printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 strace -f -xx -o '$trace' \
			gnutls-cli --port $port --sni-hostname pin.test --insecure 127.0.0.1"
		[ "$status" -eq 137 ]
		run sends_before_kill "$trace" "$port"
		echo "$output"
		[ "$status" -eq 0 ]
		[ "$v" = 13 ] || [[ $(grep '^recv' <<<"$output" | tail -n 1) == "recv 0b"* ]]
	done
	[ ! -s "$evil12_RECORD" ]
	[ ! -s "$evil13_RECORD" ]
}

@test "fail closed: a certificate larger than the kernel's buffer, or a chain longer than 32, under enforce is a mismatch that kills" {
	local d=$BATS_TEST_TMPDIR/big sans i bigspki
	mkdir -p "$d"
	# a leaf of about 40 KiB: 2000 names
	sans=$(for i in $(seq 2000); do printf 'DNS:host-%04d.pin.test,' "$i"; done)DNS:pin.test
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$sans" >"$d/ext"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/leaf.key" 2>/dev/null
	openssl req -new -key "$d/leaf.key" -subj "/O=pinwarden test/CN=pin.test" -out "$d/leaf.csr"
	openssl x509 -req -in "$d/leaf.csr" -CA "$PKI/legit-ec/int.pem" -CAkey "$PKI/legit-ec/int.key" \
		-days 2 -extfile "$d/ext" -out "$d/leaf.pem" 2>/dev/null
	[ "$(openssl x509 -in "$d/leaf.pem" -outform der | wc -c)" -gt 32768 ]
	cat "$d/leaf.pem" "$PKI/legit-ec/int.pem" >"$d/chain.pem"
	bigspki=sha256/$(openssl x509 -in "$d/leaf.pem" -noout -pubkey | openssl pkey -pubin -outform der |
		openssl dgst -sha256 -binary | base64)
	# 34 certificates: the pinned root comes last, beyond what the kernel judges
	{
		cat "$PKI/legit-ec/leaf.pem"
		for i in $(seq 32); do cat "$PKI/legit-ec/int.pem"; done
		cat "$PKI/legit-ec/root.pem"
	} >"$d/long.pem"
	server_start big --cert "$d/chain.pem" --key "$d/leaf.key" --reply
	server_start long --cert "$d/long.pem" --key "$PKI/legit-ec/leaf.key" --reply
	policy "
mode: enforce
pinsets:
  big: { pins: [ $bigspki, $(cat "$PKI/backup.spki") ] }
  root: { pins: [ $(cat "$PKI/legit-ec/root.spki"), $(cat "$PKI/backup.spki") ] }
rules:
  - host: pin.test
    pinset: big
  - host: other.test
    pinset: root"
	pw_start --policy "$POLICY"
	local client ev
	for client in wget gnutls-cli; do
		# the pinned key is the big leaf's own: it would match, were it judged
		run connect "$client" pin.test "$big_PORT" secret
		[ "$status" -eq 137 ]
		ev=$(chain_event "$client" "$big_PORT" pin.test)
		[ "$(event_field "$ev" .verdict)" = mismatch ]
		[ "$(event_field "$ev" .action)" = killed ]
		[ "$(event_field "$ev" '.chain[0].der_bytes')" -gt 32768 ]
		[ "$(event_field "$ev" '.chain[0].kernel_error')" = "larger than the kernel's copy buffer: not hashed" ]
		[ "$(event_field "$ev" .reason)" = "chain could not be judged in full: failed closed" ]

		run connect "$client" other.test "$long_PORT" secret
		[ "$status" -eq 137 ]
		ev=$(chain_event "$client" "$long_PORT" other.test)
		[ "$(event_field "$ev" .verdict)" = mismatch ]
		[ "$(event_field "$ev" .action)" = killed ]
		[ "$(event_field "$ev" '.chain | length')" -eq 32 ]
		event_field "$ev" '.errors[]' | grep -q 'more certificates than the kernel judges'
	done
	[ ! -s "$big_RECORD" ]
	[ ! -s "$long_RECORD" ]
}

@test "resumption: a resumed TLS 1.2 session is judged again on its original chain; a resumed TLS 1.3 session presents none and is not reported" {
	pw_start
	local v port
	for v in 12 13; do
		port=$(port "legit$v")
		run bash -c "printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 gnutls-cli --resume --port $port \
			--sni-hostname pin.test --insecure 127.0.0.1"
		grep -q '^\*\*\* This is a resumed session' <<<"$output"
	done
	sleep 0.5
	retry 30 0.1 events_count_ge 2 ".event == \"tls_chain\" and .peer == \"127.0.0.1:$legit12_PORT\""
	retry 30 0.1 events_count_ge 1 ".event == \"tls_chain\" and .peer == \"127.0.0.1:$legit13_PORT\""
	[ "$(_events_count ".event == \"tls_chain\" and .peer == \"127.0.0.1:$legit12_PORT\" and .chain[0].spki_sha256 == \"$(cat "$PKI/legit-ec/leaf.spki")\"")" -eq 2 ]
	[ "$(_events_count ".event == \"tls_chain\" and .peer == \"127.0.0.1:$legit13_PORT\"")" -eq 1 ]
}

# gtls_build: GTLS, our GnuTLS tool (tools/gnutls/gtls.c), compiled once per file
gtls_build() {
	GTLS=$BATS_FILE_TMPDIR/gtls
	[ -x "$GTLS" ] || cc -O2 -Wall -pthread -o "$GTLS" "$TOOLS/gnutls/gtls.c" -lgnutls
}

# gtls_start NAME [gtls server args...]: our GnuTLS server (tools/gnutls/gtls.c) on an
# ephemeral port of 127.0.0.1; exports NAME_PORT, NAME_PID, NAME_RECORD; stopped by pid
# in teardown like the others.
gtls_start() {
	local name=$1 base=$BATS_TEST_TMPDIR/$1 pid deadline=$((SECONDS + 10))
	shift
	gtls_build
	: >"$base.record"
	rm -f "$base.port"	# a server of the same name may have run before in this test
	"$GTLS" server --port-file "$base.port" --record "$base.record" "$@" 3>&- </dev/null \
		>"$base.log" 2>&1 &
	pid=$!
	_server_pid[$name]=$pid
	while [ ! -s "$base.port" ]; do
		kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ] || {
			cat "$base.log" >&2
			return 1
		}
		sleep 0.05
	done
	export "${name}_PORT=$(cat "$base.port")" "${name}_PID=$pid" "${name}_RECORD=$base.record" \
		"${name}_LOG=$base.log"
}

@test "server side (mTLS): a GnuTLS server judges its clients' certificates, TLS 1.2 and 1.3; enforce kills the server that meets a wrong one" {
	gtls_start mtls12 --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" \
		--client-ca "$PKI/legit-rsa/root.pem" --tls 1.2
	gtls_start mtls13 --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" \
		--client-ca "$PKI/legit-rsa/root.pem" --tls 1.3
	policy "
pinsets:
  clients: { pins: [ $(cat "$PKI/legit-rsa/leaf.spki"), $(cat "$PKI/backup.spki") ] }
rules:
  - side: server
    port: $mtls12_PORT
    pinset: clients
  - side: server
    port: $mtls13_PORT
    pinset: clients
    mode: enforce"
	pw_start --policy "$POLICY"
	local port ev n=0 match='.event == "tls_chain" and .comm == "gtls" and .verdict == "match"'
	for port in "$mtls12_PORT" "$mtls13_PORT"; do
		run tls_client --host pin.test --port "$port" --insecure --cert "$PKI/legit-rsa/chain.pem" \
			--key "$PKI/legit-rsa/leaf.key" --secret mtls-ok
		[ "$status" -eq 0 ]
		n=$((n + 1))
		retry 50 0.1 events_count_ge "$n" "$match"
		ev=$(_events_select "$match" | tail -n 1)
		[ "$(event_field "$ev" .side)" = server ]
		[ "$(event_field "$ev" .library)" = gnutls ]
		[ "$(event_field "$ev" '.chain | length')" -eq 2 ]
		[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/legit-rsa/leaf.spki")" ]
		[ "$(event_field "$ev" '.chain[1].cert_sha256')" = "$(cat "$PKI/legit-rsa/int.certsha")" ]
	done
	grep -q mtls-ok "$mtls12_RECORD"
	grep -q mtls-ok "$mtls13_RECORD"
	# audit (TLS 1.2 rule): a client presenting the impostor's certificate is reported
	run tls_client --host pin.test --port "$mtls12_PORT" --insecure --cert "$PKI/evil/chain.pem" \
		--key "$PKI/evil/leaf.key" --secret mtls-evil
	ev=$(events_wait '.event == "tls_chain" and .comm == "gtls" and .verdict == "mismatch"')
	[ "$(event_field "$ev" .action)" = would-kill ]
	[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/evil/leaf.spki")" ]
	# enforce (TLS 1.3 rule): the server process that received it is killed
	run tls_client --host pin.test --port "$mtls13_PORT" --insecure --cert "$PKI/evil/chain.pem" \
		--key "$PKI/evil/leaf.key" --secret mtls-evil
	echo "$output"
	[[ $output != *ok* ]]
	ev=$(events_wait '.event == "tls_chain" and .comm == "gtls" and .action == "killed"')
	[ "$(event_field "$ev" .side)" = server ]
	local rc=0
	wait "$mtls13_PID" || rc=$?
	[ "$rc" -eq 137 ]
	! grep -q mtls-evil "$mtls13_RECORD" || false
}

# run_cnt of pinwarden's GnuTLS programs (needs kernel.bpf_stats_enabled=1)
# runs_of CMD...: RUNS[prog]=runs of each GnuTLS program while CMD ran (its status: ours)
runs_of() {
	local -A before=()
	local p n rc=0
	while read -r p n; do before[$p]=$n; done < <(bpftool -j prog show |
		jq -r '.[] | select(.name | test("^gnutls_")) | "\(.name) \(.run_cnt // 0)"')
	"$@" || rc=$?
	RUNS=()
	while read -r p n; do RUNS[$p]=$((n - ${before[$p]:-0})); done < <(bpftool -j prog show |
		jq -r '.[] | select(.name | test("^gnutls_")) | "\(.name) \(.run_cnt // 0)"')
	declare -p RUNS
	return "$rc"
}

@test "cost: GnuTLS loading and verifying with a CA bundle reads no chain; a verifying handshake fires a fixed set of probes and judges one chain" {
	local old ev
	declare -gA RUNS
	old=$(sysctl -n kernel.bpf_stats_enabled)
	sysctl -qw kernel.bpf_stats_enabled=1
	pw_start --metrics "$BATS_TEST_TMPDIR/metrics.prom"
	bundle_verify() {
		local i
		for i in $(seq 10); do
			# GnuTLS parses every certificate of the system bundle, then verifies one
			certtool --verify --load-ca-certificate /etc/ssl/certs/ca-certificates.crt \
				--infile "$PKI/legit-ec/root.pem" >/dev/null 2>&1 || true
		done
	}
	runs_of bundle_verify
	# no session: nothing read, no SNI, no verification of a session's peers; the
	# probes of the trust list's verification return at once (no session waits)
	[ "${RUNS[gnutls_sni]}" -eq 0 ]
	[ "${RUNS[gnutls_vpeers]}" -eq 0 ]
	[ "${RUNS[gnutls_vissuer]}" -eq 0 ]
	[ "${RUNS[gnutls_vcrt]}" -le 10 ]
	[ "${RUNS[gnutls_verify]}" -le 10 ]
	one_handshake() {
		printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 gnutls-cli --port "$legit13_PORT" \
			--sni-hostname pin.test --x509cafile "$PKI/legit-ec/root.pem" 127.0.0.1 || true
	}
	runs_of one_handshake
	sysctl -qw kernel.bpf_stats_enabled="$old"
	# SNI; GnuTLS's verification of the session's peers (leaf + intermediate): its
	# entry, the trust list's entry, one pass, two issuers (the intermediate and the
	# root); the verdict program at the runner, at the trust list's return, at deinit
	# and at each record sent or received (the reply: a few)
	[ "${RUNS[gnutls_sni]}" -eq 1 ]
	[ "${RUNS[gnutls_vpeers]}" -eq 1 ]
	[ "${RUNS[gnutls_vcrt]}" -eq 1 ]
	[ "${RUNS[gnutls_vpass]}" -eq 1 ]
	[ "${RUNS[gnutls_vissuer]}" -eq 2 ]
	[ "${RUNS[gnutls_verify]}" -ge 4 ]
	[ "${RUNS[gnutls_verify]}" -le 12 ]
	retry 30 0.1 grep -q '^pinwarden_chains_judged_total 1$' "$BATS_TEST_TMPDIR/metrics.prom"
	grep -q '^pinwarden_certificates_captured_total 2$' "$BATS_TEST_TMPDIR/metrics.prom"
	grep -q '^pinwarden_orphan_certificates_total 0$' "$BATS_TEST_TMPDIR/metrics.prom"
	ev=$(events_wait '.event == "tls_chain" and .comm == "gnutls-cli"')
	echo "$ev" | jq -e '.validation == "verified" and ([.chain[] | .validated] == [true, true])'
}

@test "a connection handed to another thread: verified there, its intermediate pin matches; never verified, only its leaf counts and it is killed (TLS 1.2 and 1.3)" {
	# only the intermediate is pinned: the verdict needs GnuTLS's verification. The
	# handshake thread hands the session to another thread, which (with --ca)
	# verifies the chain and then sends, or sends at once: the chain parked by the
	# handshake is taken by the thread that comes to it
	pin_int_policy enforce kill
	pw_start --policy "$POLICY" --metrics "$BATS_TEST_TMPDIR/metrics.prom"
	gtls_build
	local v port ev n=0 sel='.event == "tls_chain" and .comm == "gtls"'
	for v in 12 13; do
		port=$(port "legit$v")
		# verified on the other thread: a match, the secret delivered
		run timeout 20 "$GTLS" handoff --port "$port" --sni pin.test --secret verified-secret \
			--tls "${v:0:1}.${v:1}" --ca "$PKI/legit-ec/root.pem"
		echo "TLS $v, verified: status $status: $output"
		[ "$status" -eq 0 ]
		n=$((n + 1))
		retry 30 0.1 events_count_ge "$n" "$sel"
		ev=$(_events_select "$sel" | tail -n 1)
		echo "$ev" | jq -c .
		echo "$ev" | jq -e '.verdict == "match" and .validation == "verified"'
		# never verified: only the leaf counts, which is not pinned
		run timeout 20 "$GTLS" handoff --port "$port" --sni pin.test --secret handoff-secret \
			--tls "${v:0:1}.${v:1}"
		echo "TLS $v, unverified: status $status: $output"
		[ "$status" -eq 137 ]
		n=$((n + 1))
		retry 30 0.1 events_count_ge "$n" "$sel"
		ev=$(_events_select "$sel" | tail -n 1)
		echo "$ev" | jq -c .
		echo "$ev" | jq -e '.verdict == "mismatch" and .action == "killed" and .validation == "unverified"'
		echo "$ev" | jq -e '.reason == "pinned key only in certificates the client did not validate"'
	done
	local r
	for r in "$legit12_RECORD" "$legit13_RECORD"; do
		run grep -c verified-secret "$r"
		[ "$output" = 1 ]
		run grep -c handoff-secret "$r"
		[ "$output" = 0 ]
	done
	retry 30 0.1 grep -q '^pinwarden_kernel_failures_total{reason="pending_chain_lost"} 0$' \
		"$BATS_TEST_TMPDIR/metrics.prom"
}
