#!/usr/bin/env bats
# action: reset — only the offending connection dies, before any application data
# reaches the peer; the process and its other connections live on.

# shellcheck disable=SC2154
load helpers

setup() {
	requires bpf
	pki
	pin_test_servers
	pin_test_policy enforce reset
}

@test "reset, python: two connections at once; the impostor's gets nothing, the other completes" {
	pw_start --policy "$POLICY"
	run "$PYTHON" "$TOOLS/two_conns.py" "$legit_PORT" "$evil_PORT" s3cret
	echo "$output"
	# the process lived, caught the error on the second connection, finished the first
	[ "$status" -eq 0 ]
	# the aborted connection failed (an error, or closed without a reply: depending on
	# whether the destroy lands in the handshake or in the read), the other completed
	[[ $output == *"second failed: "* || $output == *"second: closed"* ]]
	[[ $output == *"first: ok"* ]]
	# not one byte of application data reached the impostor
	[ ! -s "$evil_RECORD" ]
	grep -q "s3cret-first" "$legit_RECORD"
	ev=$(events_wait '.event == "tls_chain" and .action == "reset"')
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	[ "$(event_field "$ev" .peer)" = "127.0.0.1:$evil_PORT" ]
	ev=$(events_wait '.event == "tls_chain" and .verdict == "match"')
	[ "$(event_field "$ev" .action)" = none ]
	# the mark was removed once the socket was destroyed
	retry 30 0.1 bash -c "bpftool -j map dump name reset_conns | jq -se 'flatten | length == 0' >/dev/null"
}

@test "reset, curl: two transfers in parallel; the impostor's fails, the other succeeds, curl lives" {
	pw_start --policy "$POLICY"
	run curl --silent --show-error --max-time 20 -k --parallel --parallel-immediate \
		--resolve "pin.test:$legit_PORT:127.0.0.1" --resolve "pin.test:$evil_PORT:127.0.0.1" \
		-H "X-Secret: curl-secret" \
		"https://pin.test:$legit_PORT/" "https://pin.test:$evil_PORT/"
	echo "status $status: $output"
	# an error for the impostor's transfer, not a kill
	[ "$status" -ne 0 ] && [ "$status" -ne 137 ]
	[[ $output == *"ok"* ]]
	[ ! -s "$evil_RECORD" ]
	grep -q "curl-secret" "$legit_RECORD"
	ev=$(events_wait '.event == "tls_chain" and .comm == "curl" and .action == "reset"')
	# curl's own BIO has no fd binding: the socket came from its last read
	[ "$(event_field "$ev" '.notes | index("socket from the thread'"'"'s last read") != null')" = true ]
	[ "$(event_field "$ev" .peer)" = "127.0.0.1:$evil_PORT" ]
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
