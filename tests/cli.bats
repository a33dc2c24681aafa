#!/usr/bin/env bats
# The other commands against a live daemon: status and learn.

# shellcheck disable=SC2154
load helpers

setup() {
	requires bpf
	pki
	server_start legit --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" --reply
}

@test "status: lists the attached libraries and counters of the running daemon; fails without one" {
	local st=$BATS_TEST_TMPDIR/run/status.json
	run "$PW" status --status "$st"
	[ "$status" -eq 1 ]
	[[ $output == *"no running daemon"* ]]
	pw_start --status "$st"
	tls_client --host pin.test --port "$legit_PORT" --insecure >/dev/null
	events_wait '.event == "tls_chain"'
	retry 30 0.1 bash -c "jq -e '.counters.chains_judged == 1' '$st' >/dev/null"
	run "$PW" status --status "$st" --json
	[ "$status" -eq 0 ]
	[ "$(jq -r '.libraries[0].library' <<<"$output")" = openssl ]
	[ "$(jq -r '.libraries[0].inode' <<<"$output")" = "$(stat -L -c %i "$(jq -r '.libraries[0].path' <<<"$output")")" ]
	[ "$(jq -r '.pid' <<<"$output")" = "$PW_PID" ]
	[ "$(jq -r '.policy.generation' <<<"$output")" = 1 ]
	[ "$(stat -c %a "$st")" = 600 ]
	[ "$(stat -c %a "$(dirname "$st")")" = 700 ]
	run "$PW" status --status "$st"
	[ "$status" -eq 0 ]
	[[ $output == *"library=openssl path="*"probes="* ]]
	[[ $output == *"chains_judged: 1"* ]]
	pw_stop
	# a clean stop removes it
	[ ! -e "$st" ]
}

@test "learn: watches for a while, then writes a draft policy that check accepts" {
	local out=$BATS_TEST_TMPDIR/learned.yaml
	"$PW" learn --duration 4 --output "$out" 2>"$BATS_TEST_TMPDIR/learn.err" &
	local lpid=$!
	# the daemon needs a moment to attach (longer on a busy host): connect until it ends
	local n=0
	while kill -0 "$lpid" 2>/dev/null && [ "$n" -lt 120 ]; do
		sleep 0.5
		tls_client --host pin.test --port "$legit_PORT" --insecure >/dev/null
		n=$((n + 1))
	done
	wait "$lpid"
	grep -qx "  - host: \"pin.test\"" "$out"
	grep -q -- "- $(cat "$PKI/legit-ec/leaf.spki")    # leaf" "$out"
	grep -q -- "- $(cat "$PKI/legit-ec/int.spki")    # intermediate" "$out"
	chmod 0644 "$out"
	run "$PW" check "$out"
	echo "$output"
	cat "$out"
	[ "$status" -eq 0 ]
}
