#!/usr/bin/env bats
# Go crypto/tls end to end: the real daemon and BPF programs, Go clients built at test
# time from tests/tools/go/client.go with the distribution's Go (stdlib only, offline),
# as a plain static build, a stripped one (-ldflags="-s -w": no .symtab, no DWARF) and
# a cgo one and a position-independent one, against real servers on 127.0.0.1, TLS 1.2
# and 1.3; and the server side (mTLS) with a Go server from tests/tools/go/server.go.

# server_start exports NAME_PORT, NAME_RECORD...
# shellcheck disable=SC2154

load helpers

# Build the clients once per file, with every Go cache under the file's tmpdir.
setup_file() {
	GO_BIN=$BATS_FILE_TMPDIR/gobin
	export GO_BIN
	command -v go >/dev/null || return 0
	mkdir -p "$GO_BIN"
	local src=$BATS_TEST_DIRNAME/tools/go/client.go
	export GOCACHE=$BATS_FILE_TMPDIR/gocache GOPATH=$BATS_FILE_TMPDIR/gopath GOFLAGS= \
		GOPROXY=off GOTOOLCHAIN=local
	CGO_ENABLED=0 go build -o "$GO_BIN/goclient" "$src"
	CGO_ENABLED=0 go build -ldflags="-s -w" -o "$GO_BIN/goclient-strip" "$src"
	CGO_ENABLED=1 go build -o "$GO_BIN/goclient-cgo" "$src"
	CGO_ENABLED=0 go build -buildmode=pie -ldflags="-s -w" -o "$GO_BIN/goclient-pie" "$src"
	CGO_ENABLED=0 go build -ldflags="-s -w" -o "$GO_BIN/goserver" "$BATS_TEST_DIRNAME/tools/go/server.go"
}

setup() {
	requires bpf
	[ -x "$GO_BIN/goclient" ] || skip "needs Go (Debian: golang-go) to build the test clients"
	pki
	pin_test_servers
}

pinned_policy() {
	policy "
mode: ${1:-audit}
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
}

# goclient BUILD PORT SERVERNAME TLS [client args...]: one handshake and a write; its
# stdout is the server's reply, its stderr (kept in $BATS_TEST_TMPDIR/goclient.err)
# names the negotiated version.
goclient() {
	local build=$1 port=$2 name=$3 tls=$4
	shift 4
	"$GO_BIN/$build" -connect "127.0.0.1:$port" -servername "$name" -tls "$tls" "$@" \
		2>"$BATS_TEST_TMPDIR/goclient.err"
}

# The last chain event of process COMM that matches the jq FILTER.
go_event() {
	events_wait ".event == \"tls_chain\" and .library == \"go\" and .comm == \"$1\" and ($2)"
}

@test "audit, default policy: plain, stripped, cgo and PIE builds, TLS 1.2 and 1.3: the chain, hashes, host, peer" {
	pw_start
	local build v ev n=0
	for build in goclient goclient-strip goclient-cgo goclient-pie; do
		for v in 1.2 1.3; do
			run goclient "$build" "$legit_PORT" pin.test "$v" \
				-cafile "$PKI/legit-ec/root.pem" -secret "audit-$build-$v"
			[ "$status" -eq 0 ]
			[ "$output" = ok ]
			grep -qx "go-client: TLS $v" "$BATS_TEST_TMPDIR/goclient.err"
			n=$((n + 1))
			retry 50 0.1 events_count_ge "$n" ".event == \"tls_chain\" and .comm == \"$build\""
			ev=$(go_event "$build" 'true')
			[ "$(_events_count ".event == \"tls_chain\" and .comm == \"$build\"")" -eq "$n" ]
			[ "$(event_field "$ev" .library)" = go ]
			[ "$(event_field "$ev" .side)" = client ]
			[ "$(event_field "$ev" .host)" = pin.test ]
			# the socket came from the Conn itself, not from a guess
			[ "$(event_field "$ev" .peer)" = "127.0.0.1:$legit_PORT" ]
			[ "$(event_field "$ev" '.notes // [] | length')" -eq 0 ]
			[ "$(event_field "$ev" .exe)" = "$GO_BIN/$build" ]
			[ "$(event_field "$ev" .verdict)" = unpinned ]
			[ "$(event_field "$ev" .mode)" = audit ]
			[ "$(event_field "$ev" .action)" = none ]
			[ "$(event_field "$ev" '.chain | length')" -eq 2 ]
			[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/legit-ec/leaf.spki")" ]
			[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(cat "$PKI/legit-ec/leaf.certsha")" ]
			[ "$(event_field "$ev" '.chain[1].spki_sha256')" = "$(cat "$PKI/legit-ec/int.spki")" ]
			[ "$(event_field "$ev" '.chain[1].cert_sha256')" = "$(cat "$PKI/legit-ec/int.certsha")" ]
			[ "$(event_field "$ev" '.chain[0].subject')" = "CN=pin.test,O=pinwarden test" ]
			[ "$(event_field "$ev" '.errors')" = null ]
			# Go verified the chain, and the kernel read what it built
			[ "$(event_field "$ev" .validation)" = verified ]
			[ "$(event_field "$ev" '.chain | map(.validated | tostring) | join(",")')" = true,true ]
		done
		n=0
	done
	grep -qx "audit-goclient-strip-1.3" "$legit_RECORD"
	# an RSA chain, through the stripped build
	server_start legitrsa --cert "$PKI/legit-rsa/chain.pem" --key "$PKI/legit-rsa/leaf.key" --reply
	run goclient goclient-strip "$legitrsa_PORT" pin.test 1.3 -cafile "$PKI/legit-rsa/root.pem"
	[ "$status" -eq 0 ]
	ev=$(go_event goclient-strip ".peer == \"127.0.0.1:$legitrsa_PORT\"")
	[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/legit-rsa/leaf.spki")" ]
	[ "$(event_field "$ev" '.chain[1].cert_sha256')" = "$(cat "$PKI/legit-rsa/int.certsha")" ]
	# discovery attached each build when it was first run
	for build in goclient goclient-strip goclient-cgo goclient-pie; do
		grep -q "attached $GO_BIN/$build (go)" "$PW_ERR"
	done
	events_lint
	pw_stop
	# the daemon re-hashed every certificate with OpenSSL: no disagreement with the kernel
	! grep -q hash_disagreement "$PW_LOG" || false
}

@test "audit: match, mismatch with its RFC 7469 report, unpinned; the impostor gets the data" {
	pinned_policy audit
	pw_start --policy "$POLICY"
	local build v ev
	for build in goclient goclient-strip; do
		for v in 1.2 1.3; do
			# verifying: Go's verified chain counts, the intermediate's pin with it
			run goclient "$build" "$legit_PORT" pin.test "$v" -cafile "$PKI/legit-ec/root.pem"
			[ "$status" -eq 0 ]
			ev=$(go_event "$build" ".verdict == \"match\" and .peer == \"127.0.0.1:$legit_PORT\" and .validation == \"verified\"")
			[ "$(event_field "$ev" .rule)" = pin.test ]
			[ "$(event_field "$ev" .pinset)" = legit ]
			[ "$(event_field "$ev" '.chain | map(.validated | tostring) | join(",")')" = true,true ]
			[ "$(event_field "$ev" '.chain | map(.matched | tostring) | join(",")')" = true,true ]
			[ "$(event_field "$ev" .report)" = null ]
			# not verifying: only the leaf counts
			run goclient "$build" "$legit_PORT" pin.test "$v" -insecure
			[ "$status" -eq 0 ]
			ev=$(go_event "$build" ".verdict == \"match\" and .peer == \"127.0.0.1:$legit_PORT\" and .validation == \"unverified\"")
			[ "$(event_field "$ev" '.chain | map(.pinned | tostring) | join(",")')" = true,true ]
			[ "$(event_field "$ev" '.chain | map(.matched | tostring) | join(",")')" = true,false ]

			run goclient "$build" "$evil_PORT" pin.test "$v" -insecure -secret "audit-$build-$v"
			[ "$status" -eq 0 ]
			grep -qx "go-client: TLS $v" "$BATS_TEST_TMPDIR/goclient.err"
			ev=$(go_event "$build" ".verdict == \"mismatch\" and .report.\"date-time\" != null")
			[ "$(event_field "$ev" .mode)" = audit ]
			[ "$(event_field "$ev" .action)" = would-kill ]
			[ "$(event_field "$ev" .peer)" = "127.0.0.1:$evil_PORT" ]
			[ "$(event_field "$ev" '.chain | length')" -eq 1 ]
			[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/evil/leaf.spki")" ]
			[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(cat "$PKI/evil/leaf.certsha")" ]
			[ "$(event_field "$ev" '.report.hostname')" = pin.test ]
			[ "$(event_field "$ev" '.report.port')" -eq "$evil_PORT" ]
			[ "$(event_field "$ev" '.report."known-pins"[0]')" = \
				"pin-sha256=\"$(cut -d/ -f2- "$PKI/legit-ec/leaf.spki")\"" ]
			[ "$(event_field "$ev" '.report."known-pins"[1]')" = \
				"pin-sha256=\"$(cut -d/ -f2- "$PKI/legit-ec/int.spki")\"" ]
			event_field "$ev" '.report."served-certificate-chain"[0]' >"$BATS_TEST_TMPDIR/served.pem"
			[ "$(openssl x509 -in "$BATS_TEST_TMPDIR/served.pem" -outform der | sha256sum | cut -d' ' -f1)" = \
				"$(cat "$PKI/evil/leaf.certsha")" ]
			# audit let it through
			grep -qx "audit-$build-$v" "$evil_RECORD"

			run goclient "$build" "$legit_PORT" other.test "$v" -insecure
			[ "$status" -eq 0 ]
			ev=$(go_event "$build" '.host == "other.test"')
			[ "$(event_field "$ev" .verdict)" = unpinned ]
			[ "$(event_field "$ev" .rule)" = null ]
		done
	done
	[ "$(_events_count '.event == "tls_chain" and .library == "go"')" -eq 16 ]
	events_lint
}

@test "enforce + kill: a Go client meeting the impostor dies before its secret leaves; the real server gets it" {
	pinned_policy enforce
	pw_start --policy "$POLICY"
	local build v ev secret
	for build in goclient goclient-strip; do
		for v in 1.2 1.3; do
			secret=s3cret-$build-$v-$RANDOM
			run goclient "$build" "$evil_PORT" pin.test "$v" -insecure -secret "$secret"
			[ "$status" -eq 137 ]
			ev=$(go_event "$build" ".action == \"killed\" and .peer == \"127.0.0.1:$evil_PORT\"")
			[ "$(event_field "$ev" .verdict)" = mismatch ]
			[ "$(event_field "$ev" .mode)" = enforce ]
			[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/evil/leaf.spki")" ]
			# a client that verifies would refuse the impostor too; pinning kills it first
			run goclient "$build" "$evil_PORT" pin.test "$v" -cafile "$PKI/legit-ec/root.pem"
			[ "$status" -eq 137 ]

			run goclient "$build" "$legit_PORT" pin.test "$v" -cafile "$PKI/legit-ec/root.pem" \
				-secret "$secret"
			[ "$status" -eq 0 ]
			[ "$output" = ok ]
			grep -qx "go-client: TLS $v" "$BATS_TEST_TMPDIR/goclient.err"
			grep -qx "$secret" "$legit_RECORD"
			ev=$(go_event "$build" ".verdict == \"match\" and .peer == \"127.0.0.1:$legit_PORT\"")
			[ "$(event_field "$ev" .action)" = none ]
		done
	done
	[ "$(_events_count '.event == "tls_chain" and .library == "go" and .action == "killed"')" -eq 8 ] || {
		_events_select '.event == "tls_chain"' | jq -c '[.comm, .pid, .host, .peer, .verdict, .action]'
		false
	}
	# the impostor received not one byte of application data
	[ ! -s "$evil_RECORD" ]
	events_lint
}

@test "hosts: an IP literal sends no SNI and is judged by the address rule; case and final dots do not count" {
	policy "
pinsets:
  legit: { pins: [ $(cat "$PKI/legit-ec/leaf.spki"), $(cat "$PKI/backup.spki") ] }
rules:
  - host: '*.pin.test'
    pinset: legit
    name: one-label
  - host: 127.0.0.1
    port: $evil_PORT
    pinset: legit
    name: by-address"
	pw_start --policy "$POLICY"
	local ev
	run goclient goclient-strip "$legit_PORT" B.PIN.Test.. 1.3 -insecure
	[ "$status" -eq 0 ]
	ev=$(go_event goclient-strip 'true')
	[ "$(event_field "$ev" .host)" = b.pin.test ]
	[ "$(event_field "$ev" .rule)" = one-label ]
	[ "$(event_field "$ev" .verdict)" = match ]
	# Go sends no SNI for an address: the rule naming the destination address applies
	run goclient goclient "$evil_PORT" 127.0.0.1 1.2 -insecure
	[ "$status" -eq 0 ]
	ev=$(go_event goclient '.host == null')
	[ "$(event_field "$ev" .rule)" = by-address ]
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	[ "$(event_field "$ev" .peer)" = "127.0.0.1:$evil_PORT" ]
	[ "$(event_field "$ev" '.notes | index("no SNI") != null')" = true ]
	# a name that only looks numeric is a name
	run goclient goclient "$legit_PORT" 1.2.3.4.pin.test 1.3 -insecure
	[ "$status" -eq 0 ]
	ev=$(go_event goclient '.host == "1.2.3.4.pin.test"')
	[ "$(event_field "$ev" .rule)" = null ]
}

@test "goroutines: 64 concurrent handshakes in one process, each judged with its own SNI and peer" {
	pinned_policy audit
	pw_start --policy "$POLICY"
	run "$GO_BIN/goclient" -insecure -parallel 32 \
		-target "127.0.0.1:$legit_PORT=pin.test" -target "127.0.0.1:$evil_PORT=a.pin.test"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^pin.test ok$' <<<"$output")" -eq 32 ]
	[ "$(grep -c '^a.pin.test ok$' <<<"$output")" -eq 32 ]
	retry 50 0.1 events_count_ge 64 '.event == "tls_chain" and .comm == "goclient"'
	# every pin.test handshake went to the legitimate server and matched; every
	# a.pin.test one to the impostor, unpinned: no SNI was given to another connection
	[ "$(_events_count ".comm == \"goclient\" and .host == \"pin.test\" and .verdict == \"match\" and .peer == \"127.0.0.1:$legit_PORT\" and .chain[0].cert_sha256 == \"$(cat "$PKI/legit-ec/leaf.certsha")\"")" -eq 32 ]
	[ "$(_events_count ".comm == \"goclient\" and .host == \"a.pin.test\" and .verdict == \"unpinned\" and .peer == \"127.0.0.1:$evil_PORT\" and .chain[0].cert_sha256 == \"$(cat "$PKI/evil/leaf.certsha")\"")" -eq 32 ]
	[ "$(_events_count '.event == "tls_chain" and .comm == "goclient"')" -eq 64 ]
}

@test "fail closed: a pinned certificate past the 32 the kernel judges does not save the chain" {
	# the impostor's leaf, 32 copies of its root, then the legitimate pinned intermediate
	local chain=$BATS_TEST_TMPDIR/long-chain.pem i
	cat "$PKI/evil/leaf.pem" >"$chain"
	for i in $(seq 1 32); do cat "$PKI/evil/root.pem" >>"$chain"; done
	cat "$PKI/legit-ec/int.pem" >>"$chain"
	server_start long --cert "$chain" --key "$PKI/evil/leaf.key" --reply
	pinned_policy enforce
	pw_start --policy "$POLICY"
	run goclient goclient-strip "$long_PORT" pin.test 1.3 -insecure -secret leaked
	[ "$status" -eq 137 ]
	ev=$(go_event goclient-strip '.action == "killed"')
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	[ "$(event_field "$ev" '.chain | length')" -eq 32 ]
	[ "$(event_field "$ev" '.reason')" = "chain could not be judged in full: failed closed" ]
	event_field "$ev" '.errors[]' | grep -q "more certificates than the kernel judges"
	[ ! -s "$long_RECORD" ]
}

@test "--attach: a Go program attached by path (discovery off); anything else is refused" {
	pw_start --no-discover --attach "$GO_BIN/goclient-strip"
	local ready
	ready=$(events_wait '.event == "ready"')
	[ "$(event_field "$ready" ".libraries | map(select(.library == \"go\")) | length")" -eq 1 ]
	[ "$(event_field "$ready" ".libraries[] | select(.library == \"go\") | .path")" = "$GO_BIN/goclient-strip" ]
	[ "$(event_field "$ready" ".libraries[] | select(.library == \"go\") | .inode")" -eq \
		"$(stat -c %i "$GO_BIN/goclient-strip")" ]
	# the SNI, the chain, and Go's verification: its chains, its next message, its alert
	[ "$(event_field "$ready" ".libraries[] | select(.library == \"go\") | .probes")" -eq 5 ]
	run goclient goclient-strip "$legit_PORT" pin.test 1.2 -insecure
	[ "$status" -eq 0 ]
	go_event goclient-strip '.host == "pin.test"'
	# with discovery off, the build nobody named is not watched
	run goclient goclient "$legit_PORT" pin.test 1.2 -insecure
	[ "$status" -eq 0 ]
	sleep 0.5
	[ "$(_events_count '.event == "tls_chain" and .comm == "goclient"')" -eq 0 ]
	pw_stop
	# a file that is no TLS library or program: the daemon says so and exits 1
	run --separate-stderr "$PW" run --no-discover --attach /bin/true --log "$BATS_TEST_TMPDIR/x.jsonl"
	[ "$status" -eq 1 ]
	[[ $stderr == *"--attach /bin/true: not a TLS library or program pinwarden knows"* ]]
}

# go_server_start NAME TLS: the Go server on an ephemeral port of 127.0.0.1, requiring
# client certificates from the legitimate RSA CA or the impostor's (only pins tell them
# apart); exports NAME_PORT, NAME_PID, NAME_RECORD like server_start.
go_server_start() {
	local name=$1 tls=$2 base=$BATS_TEST_TMPDIR/$1 pid deadline=$((SECONDS + 10))
	cat "$PKI/legit-rsa/root.pem" "$PKI/evil/root.pem" >"$BATS_TEST_TMPDIR/client-cas.pem"
	rm -f "$base.port"	# a server of the same name before this one left its port there
	"$GO_BIN/goserver" -cert "$PKI/legit-ec/chain.pem" -key "$PKI/legit-ec/leaf.key" \
		-client-ca "$BATS_TEST_TMPDIR/client-cas.pem" -tls "$tls" -port-file "$base.port" \
		-record "$base.record" 3>&- </dev/null >"$base.log" 2>&1 &
	pid=$!
	_server_pid[$name]=$pid
	while [ ! -s "$base.port" ]; do
		if ! kill -0 "$pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
			cat "$base.log" >&2
			return 1
		fi
		sleep 0.05
	done
	touch "$base.record"
	export "${name}_PORT=$(cat "$base.port")" "${name}_PID=$pid" "${name}_RECORD=$base.record"
}

server_policy() {
	policy "
mode: $1
pinsets:
  clients: { pins: [ $(cat "$PKI/legit-rsa/int.spki"), $(cat "$PKI/backup.spki") ] }
rules:
  - side: server
    port: $2
    pinset: clients"
}

@test "mTLS audit: a Go server's client chains are judged (match, mismatch), TLS 1.2 and 1.3, Go and Python clients" {
	local v ev
	for v in 1.2 1.3; do
		go_server_start "gos${v/./}" "$v"
	done
	policy "
pinsets:
  clients: { pins: [ $(cat "$PKI/legit-rsa/int.spki"), $(cat "$PKI/backup.spki") ] }
rules:
  - side: server
    port: $gos12_PORT
    pinset: clients
  - side: server
    port: $gos13_PORT
    pinset: clients"
	pw_start --policy "$POLICY"
	for v in 1.2 1.3; do
		local port_var=gos${v/./}_PORT pid_var=gos${v/./}_PID rec_var=gos${v/./}_RECORD
		local port=${!port_var} pid=${!pid_var}
		run tls_client --host pin.test --port "$port" --cafile "$PKI/legit-ec/root.pem" --tls "$v" \
			--cert "$PKI/legit-rsa/chain.pem" --key "$PKI/legit-rsa/leaf.key" --secret "good-$v"
		[ "$status" -eq 0 ]
		ev=$(events_wait ".event == \"tls_chain\" and .library == \"go\" and .side == \"server\" and .pid == $pid and .verdict == \"match\"")
		[ "$(event_field "$ev" .comm)" = goserver ]
		[ "$(event_field "$ev" .local_port)" -eq "$port" ]
		[ "$(event_field "$ev" .rule)" = "server:$port" ]
		[[ $(event_field "$ev" .peer) == 127.0.0.1:* ]]
		[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/legit-rsa/leaf.spki")" ]
		[ "$(event_field "$ev" '.chain[1].cert_sha256')" = "$(cat "$PKI/legit-rsa/int.certsha")" ]
		[ "$(event_field "$ev" '.chain[1].matched')" = true ]

		# a Go client with the impostor's certificate: both sides of one handshake in Go
		run goclient goclient-strip "$port" pin.test "$v" -cafile "$PKI/legit-ec/root.pem" \
			-cert "$PKI/evil/chain.pem" -key "$PKI/evil/leaf.key" -secret "bad-$v"
		[ "$status" -eq 0 ]
		ev=$(events_wait ".event == \"tls_chain\" and .side == \"server\" and .pid == $pid and .verdict == \"mismatch\"")
		[ "$(event_field "$ev" .action)" = would-kill ]
		[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/evil/leaf.spki")" ]
		ev=$(go_event goclient-strip ".side == \"client\" and .peer == \"127.0.0.1:$port\"")
		[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/legit-ec/leaf.spki")" ]
		[ "$(event_field "$ev" .verdict)" = unpinned ]
		# audit: the server read both
		grep -qx "good-$v" "${!rec_var}"
		grep -qx "bad-$v" "${!rec_var}"
	done
	events_lint
}

@test "mTLS enforce: the Go server is killed before it reads a byte from a client the pins refuse" {
	local v ev
	for v in 1.2 1.3; do
		go_server_start gos "$v"
		server_policy enforce "$gos_PORT"
		pw_start --policy "$POLICY"
		run goclient goclient "$gos_PORT" pin.test "$v" -cafile "$PKI/legit-ec/root.pem" \
			-cert "$PKI/legit-rsa/chain.pem" -key "$PKI/legit-rsa/leaf.key" -secret "good-$v"
		[ "$status" -eq 0 ] || {
			sleep 0.5	# the daemon's next drain
			echo "TLS $v: status $status, output '$output'"
			cat "$BATS_TEST_TMPDIR/goclient.err" "$BATS_TEST_TMPDIR/gos.log"
			jq -c 'select(.event == "tls_chain") | del(.chain[].sans, .report)' "$PW_LOG"
			false
		}
		[ "$output" = ok ]
		grep -qx "good-$v" "$gos_RECORD"
		run tls_client --host pin.test --port "$gos_PORT" --cafile "$PKI/legit-ec/root.pem" \
			--tls "$v" --cert "$PKI/evil/chain.pem" --key "$PKI/evil/leaf.key" --secret "bad-$v"
		ev=$(events_wait ".event == \"tls_chain\" and .side == \"server\" and .action == \"killed\" and .pid == $gos_PID")
		[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/evil/leaf.spki")" ]
		[ "$(event_field "$ev" .library)" = go ]
		retry 50 0.1 bash -c "! kill -0 $gos_PID 2>/dev/null"
		! grep -q "bad-$v" "$gos_RECORD" || false
		server_stop gos || true
		pw_stop
	done
}
