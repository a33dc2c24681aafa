#!/usr/bin/env bats
# action: reset — only the offending connection dies, before any application data
# reaches the peer; the application gets an error on it (ECONNABORTED), never an
# end of stream; the process and its other connections live on; a connection is
# destroyed in its own network namespace; a reset that cannot be done says so.

# shellcheck disable=SC2154
load helpers

# The Go client (tests/tools/go/client.go), built once per file when Go is there.
setup_file() {
	GO_BIN=$BATS_FILE_TMPDIR/gobin
	export GO_BIN
	command -v go >/dev/null || return 0
	mkdir -p "$GO_BIN"
	GOCACHE=$BATS_FILE_TMPDIR/gocache GOPATH=$BATS_FILE_TMPDIR/gopath GOFLAGS= GOPROXY=off \
		GOTOOLCHAIN=local CGO_ENABLED=0 go build -o "$GO_BIN/goclient" \
		"$BATS_TEST_DIRNAME/tools/go/client.go"
}

setup() {
	requires bpf
	pki
	pin_test_servers
	pin_test_policy enforce reset
}

RESET_CLIENT=$TOOLS/reset_client.py

@test "reset, python: two connections at once; the impostor's fails with ECONNABORTED, the other completes" {
	pw_start --policy "$POLICY"
	run "$PYTHON" "$TOOLS/two_conns.py" "$legit_PORT" "$evil_PORT" s3cret
	echo "$output"
	# the process lived, caught the error on the second connection, finished the first
	[ "$status" -eq 0 ]
	[[ $output == *"second failed: ConnectionAbortedError"* ]]
	[[ $output == *"first: ok"* ]]
	# not one byte of application data reached the impostor
	[ ! -s "$evil_RECORD" ]
	grep -q "s3cret-first" "$legit_RECORD"
	ev=$(events_wait '.event == "tls_chain" and .action == "reset"')
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	[ "$(event_field "$ev" .peer)" = "127.0.0.1:$evil_PORT" ]
	[ "$(event_field "$ev" .socket)" = destroyed ]
	[ "$(event_field "$ev" .netns)" = "$(stat -L -c %i /proc/self/ns/net)" ]
	[ "$(event_field "$ev" .reset_error)" = null ]
	ev=$(events_wait '.event == "tls_chain" and .verdict == "match"')
	[ "$(event_field "$ev" .action)" = none ]
	# the mark was removed once the socket was destroyed
	retry 30 0.1 bash -c "bpftool -j map dump name reset_conns | jq -se 'flatten | length == 0' >/dev/null"
}

@test "reset is an error to the application, never an end of stream: python ssl (read or write first, 8 threads at once), Go (read or write first) and curl (beside a transfer that completes), TLS 1.2 and 1.3" {
	pw_start --policy "$POLICY"
	local tls first n=0 out
	for tls in 1.2 1.3; do
		for first in write read; do
			# python: the handshake (ssl's default) meets the destroyed socket
			out=$("$PYTHON" "$RESET_CLIENT" --port "$evil_PORT" --tls "$tls" --first "$first" \
				--secret "py-$tls-$first")
			echo "python $tls $first: $out"
			[[ $out == "handshake: error ECONNABORTED "* ]]
			n=$((n + 1))
			if [ -x "$GO_BIN/goclient" ]; then
				# Go: the first Read or Write drives the handshake; both fail
				out=$("$GO_BIN/goclient" -connect "127.0.0.1:$evil_PORT" -servername pin.test \
					-insecure -tls "$tls" -first "$first" -secret "go-$tls-$first")
				echo "go $tls $first: $out"
				[ "$(grep -c ": error ECONNABORTED: " <<<"$out")" -eq 2 ]
				n=$((n + 1))
			fi
		done
		# eight threads of one process at once: each is held, each gets the error
		out=$("$PYTHON" "$RESET_CLIENT" --port "$evil_PORT" --tls "$tls" --parallel 8 \
			--secret "threads-$tls")
		echo "python $tls, 8 threads: $out"
		[ "$(grep -c "^handshake: error ECONNABORTED " <<<"$out")" -eq 8 ]
		n=$((n + 8))
		# curl: two transfers in parallel; the impostor's fails, not curl
		run curl --silent --show-error --max-time 20 -k "--tlsv$tls" --tls-max "$tls" \
			--parallel --parallel-immediate -H "X-Secret: curl-$tls" \
			--resolve "pin.test:$legit_PORT:127.0.0.1" --resolve "pin.test:$evil_PORT:127.0.0.1" \
			"https://pin.test:$legit_PORT/" "https://pin.test:$evil_PORT/"
		echo "curl $tls: status $status: $output"
		[ "$status" -eq 35 ]
		[[ $output == *"Software caused connection abort"* ]]
		[[ $output == *"ok"* ]]
		grep -q "curl-$tls" "$legit_RECORD"
		n=$((n + 1))
	done
	[ -x "$GO_BIN/goclient" ] || echo "# Go not installed: the Go client was not run" >&3
	# not one byte of application data reached the impostor
	[ ! -s "$evil_RECORD" ]
	# every connection was reset, its socket destroyed, with the process held until then
	retry 50 0.1 events_count_ge "$n" '.event == "tls_chain" and .action == "reset"'
	[ "$(_events_count '.event == "tls_chain" and .action == "reset"')" -eq "$n" ]
	[ "$(_events_count '.event == "tls_chain" and .action == "reset" and .socket == "destroyed" and .reset_error == null')" -eq "$n" ]
	[ "$(_events_count '.event == "tls_chain" and .verdict == "mismatch" and .action != "reset"')" -eq 0 ]
	# curl's own BIO has no fd binding: the socket came from its last read
	ev=$(events_wait '.event == "tls_chain" and .comm == "curl" and .action == "reset"')
	[ "$(event_field "$ev" '.notes | index("socket from the thread'"'"'s last read") != null')" = true ]
	[ "$(event_field "$ev" .peer)" = "127.0.0.1:$evil_PORT" ]
}

@test "reset in a network namespace of its own: destroyed there; the host's connection with the same 4-tuple is untouched" {
	command -v unshare >/dev/null || skip "needs unshare (util-linux)"
	pw_start --policy "$POLICY"
	local src go=$BATS_TEST_TMPDIR/go host pod=$BATS_TEST_TMPDIR/pod
	src=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	# the host's connection from 127.0.0.1:$src to the legitimate server: handshake done
	# (a match), its request held until the pod's connection has been reset
	"$PYTHON" "$RESET_CLIENT" --port "$legit_PORT" --bind-port "$src" --wait-for "$go" \
		--secret host-secret >"$BATS_TEST_TMPDIR/host.out" 2>&1 &
	host=$!
	retry 100 0.1 grep -q "handshake: ok" "$BATS_TEST_TMPDIR/host.out"
	# a pod: its own loopback, an impostor on the same port, a client from the same port
	run unshare --net sh -c '
		ip link set lo up || exit 1
		"$1" "$2" --port "$3" --port-file "$4.port" --record "$4.record" --reply \
			--cert "$PKI/evil/chain.pem" --key "$PKI/evil/leaf.key" 2>"$4.log" &
		while [ ! -s "$4.port" ]; do sleep 0.05; done
		"$1" "$5" --port "$3" --bind-port "$6" --first read --secret pod-secret
		kill $!' sh "$PYTHON" "$TLS_SERVER" "$legit_PORT" "$pod" "$RESET_CLIENT" "$src"
	echo "pod: $output"
	touch "$go"
	wait "$host"
	echo "host: $(cat "$BATS_TEST_TMPDIR/host.out")"
	# the pod's client got the error at once (not its 10 s timeout), and lived
	[ "$status" -eq 0 ]
	[[ $output =~ "handshake: error ECONNABORTED ".*" after "[0-2]\.[0-9]" s" ]]
	[ ! -s "$pod.record" ]
	# the host's connection, the same 4-tuple in another namespace, was not touched
	grep -qx "write: ok" "$BATS_TEST_TMPDIR/host.out"
	grep -qx "read: data b'ok\\\\n'" "$BATS_TEST_TMPDIR/host.out"
	grep -q "host-secret" "$legit_RECORD"
	ev=$(events_wait '.event == "tls_chain" and .action == "reset"')
	[ "$(event_field "$ev" .socket)" = destroyed ]
	[ "$(event_field "$ev" .netns)" != "$(stat -L -c %i /proc/self/ns/net)" ]
	[ "$(event_field "$ev" .peer)" = "127.0.0.1:$legit_PORT" ]
}

@test "a full reset table is no silent fallback: the process is killed instead, and the event and the metrics say so" {
	pw_start --policy "$POLICY" --metrics "$BATS_TEST_TMPDIR/metrics.prom"
	run "$PYTHON" "$TOOLS/fill_reset_marks.py" "$PW_PID"
	echo "filled: $output"
	[ "$status" -eq 0 ]
	[ "$output" -eq 65536 ]
	run "$PYTHON" "$RESET_CLIENT" --port "$evil_PORT" --secret full-table
	echo "status $status: $output"
	# killed: the only way left to keep the secret from the impostor
	[ "$status" -eq 137 ]
	[ ! -s "$evil_RECORD" ]
	ev=$(events_wait '.event == "tls_chain" and .verdict == "mismatch"')
	[ "$(event_field "$ev" .action)" = killed ]
	[[ $(event_field "$ev" .reset_error) == *"table of connections to reset is full"* ]]
	retry 30 0.1 grep -qx 'pinwarden_kernel_failures_total{reason="reset_table_full"} 1' \
		"$BATS_TEST_TMPDIR/metrics.prom"
	run "$PYTHON" "$TOOLS/fill_reset_marks.py" "$PW_PID" --clear
	[ "$output" -eq 65536 ]
}

@test "reset in audit mode reports would-reset and touches nothing" {
	sed -i 's/^mode: enforce/mode: audit/' "$POLICY"
	pw_start --policy "$POLICY"
	run "$PYTHON" "$TOOLS/two_conns.py" "$legit_PORT" "$evil_PORT" audited
	[ "$status" -eq 0 ]
	[[ $output == *"second: ok"* ]]
	grep -q "audited-second" "$evil_RECORD"
	ev=$(events_wait '.event == "tls_chain" and .verdict == "mismatch"')
	[ "$(event_field "$ev" .action)" = would-reset ]
}

# The host first: a reset holds its process (SIGSTOP) until the daemon has destroyed the
# socket, but that hold is a stop like discovery's, bounded by the watchdog. Here the
# daemon stalls (SIGSTOP) just before the verdict: the client must go on at the bound,
# the impostor must still get nothing (the egress filter holds), and once the daemon
# is back it destroys the socket, so the client fails on it.
@test "a process held for a reset goes on at the bound when the daemon stalls; the impostor still gets nothing" {
	local hs=$BATS_TEST_DIRNAME/tools/hostsafety fresh=$BATS_TEST_TMPDIR/fresh
	local tstate=$BATS_TEST_TMPDIR/tstate fifo=$BATS_TEST_TMPDIR/go i client watch longest st ev
	local -a statuses=() longests=()
	cc -O2 -Wall -Werror -o "$fresh" "$hs/fresh.c" -lssl -lcrypto
	cc -O2 -Wall -Werror -o "$tstate" "$hs/tstate.c"
	pw_start --policy "$POLICY" --discover-timeout 200
	# examined once, while the daemon runs: the held runs below wait for nothing else
	"$fresh" tls "$legit_PORT"
	for i in 1 2 3; do
		rm -f "$fifo" "$BATS_TEST_TMPDIR/sid"
		mkfifo "$fifo"
		# a session of its own, so that tstate watches only it; it waits for the go
		setsid bash -c 'echo $$ >"$1"; read -r _ <"$2"; exec "$3" tls "$4"' _ \
			"$BATS_TEST_TMPDIR/sid" "$fifo" "$fresh" "$evil_PORT" 3>&- &
		client=$!
		retry 50 0.1 test -s "$BATS_TEST_TMPDIR/sid"
		"$tstate" watch "$(cat "$BATS_TEST_TMPDIR/sid")" "$BATS_TEST_TMPDIR/stops.$i" 3>&- &
		watch=$!
		# the daemon's last beat is at most 20 ms old: the verdict still holds the client
		kill -STOP "$PW_PID"
		echo go >"$fifo"
		sleep 1.5
		kill -CONT "$PW_PID"
		st=0
		wait "$client" || st=$?
		statuses+=("$st")
		kill -TERM "$watch"
		wait "$watch" || true
		longest=$(awk '$1 == "longest_ms" { print int($2) }' "$BATS_TEST_TMPDIR/stops.$i")
		longests+=("$longest")
		cat "$BATS_TEST_TMPDIR/stops.$i"
	done
	echo "client statuses: ${statuses[*]}; longest stops (ms): ${longests[*]}"
	# the impostor got no byte of application data
	[ ! -s "$evil_RECORD" ]
	for i in 0 1 2; do
		# each client failed on its connection (destroyed once the daemon was back) ...
		[ "${statuses[$i]}" -eq 1 ]
		# ... and was never stopped longer than the bound (200 ms, plus sampling slack)
		[ "${longests[$i]}" -le 350 ]
	done
	# the holds the watchdog ended are reported, within the bound
	ev=$(events_wait '.event == "discovery_timeout" and .hold == "reset" and .reason == "bound"')
	[ "$(event_field "$ev" .file)" = null ]
	[ "$(_events_count '.event == "discovery_timeout" and .hold == "reset" and .wait_ms > 350')" -eq 0 ]
	[ "$(_events_count '.event == "tls_chain" and .action == "reset"')" -ge 3 ]
	# nothing is left in the table of stops
	retry 30 0.1 bash -c "bpftool -j map dump name stops | jq -se 'flatten | length == 0' >/dev/null"
}
