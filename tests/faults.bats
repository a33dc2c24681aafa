#!/usr/bin/env bats
# Faults and churn: the daemon killed, restarted, stopped; a library replaced on disk;
# ten thousand short-lived clients.

# shellcheck disable=SC2154
load helpers

setup() {
	requires bpf
	pki
	pin_test_servers
	pin_test_policy enforce
	LIBDIR=$(dirname "$(readlink -f "$(ldconfig -p | awk '/libssl.so.3 .*x86-64/ { print $NF; exit }')")")
}

# BPF programs of pinwarden's loaded in the kernel (any daemon's)
pw_progs() {
	bpftool -j prog show | jq '[.[] | select(.name | test("^(ossl_|pw_|gnutls_|nss_|go_|bssl_)"))] | length'
}

# no program of pinwarden's is loaded (the kernel frees them shortly after their last
# reference goes: re-counted on every try of retry)
no_pw_progs() {
	[ "$(pw_progs)" -eq 0 ]
}

# the state letter of process PID (bash only: no new program runs)
proc_state() {
	local l
	read -r l <"/proc/$1/stat"
	l=${l##*) }
	echo "${l%% *}"
}

# map entries of every map called NAME
map_entries() {
	bpftool -j map dump name "$1" 2>/dev/null | jq -s 'flatten | length'
}

@test "SIGKILL: the probes go with the daemon (fail open); a restart attaches one set, SIGTERM leaves none" {
	retry 50 0.1 no_pw_progs
	pw_start --policy "$POLICY"
	local loaded
	loaded=$(pw_progs)
	[ "$loaded" -gt 5 ]
	kill -KILL "$PW_PID"
	wait "$PW_PID" || true
	PW_PID=
	# fail open, as documented: nothing judges or enforces any more
	retry 50 0.1 no_pw_progs
	run tls_client --host pin.test --port "$evil_PORT" --insecure --secret unguarded
	[ "$status" -eq 0 ]
	grep -q unguarded "$evil_RECORD"
	# (that nothing is left stopped by discovery, whenever the daemon is killed, is
	# tests/hostsafety.bats's business)
	# a restart attaches one set of probes, not two
	pw_start --policy "$POLICY"
	[ "$(pw_progs)" -eq "$loaded" ]
	run tls_client --host pin.test --port "$evil_PORT" --insecure --secret guarded
	[ "$status" -eq 137 ]
	! grep -qw guarded "$evil_RECORD" || false
	pw_stop
	retry 50 0.1 no_pw_progs
}

@test "the verdict program taken from under the probes: every chain fails closed, flagged and counted" {
	pw_start --policy "$POLICY" --metrics "$BATS_TEST_TMPDIR/metrics.prom"
	# the pinned server passes while the verdict program is in place
	run tls_client --host pin.test --port "$legit_PORT" --insecure --secret before
	echo "status $status: $output"
	[ "$status" -eq 0 ]
	# root empties the program array every probe tail-calls (a bug of ours would too):
	# this daemon's, the newest by id (an earlier daemon's may outlive it: this host's
	# kernel was seen keeping an empty verdict_prog that nothing referenced)
	local vp
	vp=$(bpftool -j map show | jq '[.[] | select(.name == "verdict_prog") | .id] | max // empty')
	echo "verdict_prog of daemon $PW_PID: map ${vp:-none}"
	[ -n "$vp" ]
	bpftool map delete id "$vp" key 0 0 0 0
	run bpftool -j map dump id "$vp"
	echo "$output"
	[ "$(echo "$output" | jq 'flatten | length')" -eq 0 ]
	# the same pinned server: nothing can be judged, so under enforce it is killed
	run tls_client --host pin.test --port "$legit_PORT" --insecure --secret after-removal
	echo "status $status: $output"
	[ "$status" -eq 137 ]
	run grep -c after-removal "$legit_RECORD"
	[ "$output" = 0 ]
	local ev
	ev=$(events_wait '.event == "tls_chain" and (.errors // [] | any(test("verdict program was not reachable")))')
	echo "$ev" | jq -c .
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	[ "$(event_field "$ev" .action)" = killed ]
	retry 30 0.1 grep -q '^pinwarden_kernel_failures_total{reason="verdict_unreachable"} 1$' \
		"$BATS_TEST_TMPDIR/metrics.prom"
}

# hex bytes of N (little-endian, WIDTH bytes) for bpftool
le_hex() {
	python3 -c 'import sys; print(" ".join(f"{b:02x}" for b in int(sys.argv[1]).to_bytes(int(sys.argv[2]), "little")))' "$1" "$2"
}

# park_chain MAP TGID SSL TS: a parked chain of TGID's, last certificate at boot ns TS
park_chain() {
	local vsize zeros
	vsize=$(bpftool -j map show name "$1" | jq '.bytes_value')
	zeros=$(python3 -c 'import sys; print(" ".join(["00"] * (int(sys.argv[1]) - 8)))' "$vsize")
	# shellcheck disable=SC2046
	bpftool map update name "$1" key hex $(le_hex "$2" 4) 00 00 00 00 $(le_hex "$3" 8) \
		value hex $(le_hex "$4" 8) $zeros
}

@test "chains parked by processes that died, or by a pid's earlier owner, are swept; a live one's stays" {
	pw_start
	local live dead now map keys want
	sleep 300 &
	live=$!
	sh -c 'exit 0' &
	dead=$!
	wait "$dead"
	now=$(python3 -c 'import time; print(time.clock_gettime_ns(time.CLOCK_BOOTTIME))')
	# (each update must succeed: the daemon may sweep between them)
	for map in parked_chains go_pending; do
		park_chain "$map" "$dead" 4096 "$now"	# its process is gone
		park_chain "$map" "$live" 8192 1000	# parked before this process started: a reused pid
		park_chain "$map" "$live" 12288 "$now"	# parked by the live process
	done
	want="$(le_hex "$live" 4) 00 00 00 00 $(le_hex 12288 8)"
	want=${want// /}
	for map in parked_chains go_pending; do
		retry 50 0.2 bash -c "[ \$(bpftool -j map dump name $map | jq length) -eq 1 ]"
		keys=$(bpftool -j map dump name "$map" | jq -r '.[] | .key | map(ltrimstr("0x")) | join("")')
		echo "$map: $keys (want $want)"
		[ "$keys" = "$want" ]
	done
	# the live process's chain is kept while it lives, through several sweeps
	sleep 3
	[ "$(bpftool -j map dump name parked_chains | jq length)" -eq 1 ]
	kill "$live"
	wait "$live" || true
	retry 50 0.2 bash -c "[ \$(bpftool -j map dump name parked_chains | jq length) -eq 0 ]"
}

@test "daemon and watchdog killed together while a process is stopped: the next daemon continues it" {
	local dir=$BATS_TEST_TMPDIR/left wd client ev i
	mkdir -p "$dir"
	cc -O2 -Wall -Werror -o "$dir/fresh" "$BATS_TEST_DIRNAME/tools/hostsafety/fresh.c" -lssl -lcrypto
	pw_start --policy "$POLICY"
	wd=$(jq -r .discovery.watchdog_pid /run/pinwarden/status.json)
	[ "$wd" -gt 0 ]
	[ "$(cat "/proc/$wd/comm")" = pw-watchdog ]
	# the daemon frozen, its heartbeat still fresh for 100 ms: a fresh client that
	# reaches the gate now is stopped, and only the watchdog would end that stop
	for i in 1 2 3 4 5; do
		cp "$dir/fresh" "$dir/fresh.$i"
		# from here, nothing the daemon has not seen runs before the client (cp's new
		# libraries, say, would be held until the bound, and the heartbeat go stale)
		kill -STOP "$PW_PID"
		"$dir/fresh.$i" tls "$legit_PORT" 3>&- &
		client=$!
		sleep 0.03
		[ "$(proc_state "$client")" = T ] && break
		kill -CONT "$PW_PID"
		wait "$client"
		client=
	done
	[ -n "$client" ]
	# both killed before the bound (200 ms): nobody is left to continue it
	kill -KILL "$PW_PID" "$wd"
	wait "$PW_PID" || true
	PW_PID=
	sleep 1
	[ "$(proc_state "$client")" = T ]
	# the stop was pinned (/sys/fs/bpf/pinwarden/stops): the next daemon continues it first
	pw_start --policy "$POLICY"
	wait "$client"
	ev=$(events_wait ".event == \"discovery_timeout\" and .reason == \"previous_daemon\" and .pid == $client")
	[ "$(event_field "$ev" .stopped)" = true ]
	[ "$(jq -n "$(event_field "$ev" .wait_ms) >= 1000")" = true ]
	pw_stop
}

@test "a library replaced on disk (new inode) while the daemon runs is picked up" {
	local dir=$BATS_TEST_TMPDIR/lib old new
	mkdir -p "$dir"
	cp "$LIBDIR/libssl.so.3" "$LIBDIR/libcrypto.so.3" "$dir/"
	pw_start --policy "$POLICY"
	run env LD_LIBRARY_PATH="$dir" "$PYTHON" "$TLS_CLIENT" --host pin.test --port "$evil_PORT" --insecure
	[ "$status" -eq 137 ]
	old=$(stat -c %i "$dir/libssl.so.3")
	retry 30 0.1 bash -c "jq -e '.libraries[] | select(.inode == $old)' /run/pinwarden/status.json"
	# an upgrade: a new file renamed over the old one, as dpkg does
	cp "$LIBDIR/libssl.so.3" "$dir/libssl.so.3.new"
	mv "$dir/libssl.so.3.new" "$dir/libssl.so.3"
	new=$(stat -c %i "$dir/libssl.so.3")
	[ "$new" != "$old" ]
	run env LD_LIBRARY_PATH="$dir" "$PYTHON" "$TLS_CLIENT" --host pin.test --port "$evil_PORT" --insecure
	[ "$status" -eq 137 ]
	retry 30 0.1 bash -c "jq -e '.libraries[] | select(.inode == $new)' /run/pinwarden/status.json"
	[ ! -s "$evil_RECORD" ]
	[ "$(_events_count '.event == "tls_chain" and .action == "killed"')" -eq 2 ]
}

@test "churn: 10,000 short-lived clients, every one judged or counted lost; maps back to baseline; memory flat" {
	pw_start --status "$BATS_TEST_TMPDIR/status.json"
	local base_ssl base_pending rss0 rss1 i pids=()
	sleep 1.5
	base_ssl=$(map_entries ssl_state)
	base_pending=$(map_entries pending)
	rss0=$(awk '/^VmRSS/ { print $2 }' "/proc/$PW_PID/status")
	# four loops of 2,500 curl processes each
	for i in 1 2 3 4; do
		(
			for _ in $(seq 2500); do
				curl --silent --max-time 20 -k --resolve "pin.test:$legit_PORT:127.0.0.1" \
					"https://pin.test:$legit_PORT/" >/dev/null || echo fail
			done
		) 3>&- >"$BATS_TEST_TMPDIR/loop$i.out" &
		pids+=($!)
	done
	# the loops only: a bare `wait` would wait for the daemon and the servers too
	wait "${pids[@]}"
	cat "$BATS_TEST_TMPDIR"/loop*.out
	local lost
	retry 100 0.2 events_count_ge 10000 '.event == "tls_chain" or .event == "lost"'
	lost=$(jq -s '[.[] | select(.event == "lost") | .chains] | add // 0' "$PW_LOG")
	echo "chains: $(_events_count '.event == "tls_chain"'), reported lost: $lost"
	[ "$(($(_events_count '.event == "tls_chain" and .comm == "curl"') + lost))" -eq 10000 ]
	# the per-connection state is gone again (SSL_free, process exit, the daemon's sweep)
	retry 60 0.5 bash -c "[ \$(bpftool -j map dump name ssl_state | jq -s 'flatten | length') -le $((base_ssl + 5)) ]"
	retry 60 0.5 bash -c "[ \$(bpftool -j map dump name pending | jq -s 'flatten | length') -le $((base_pending + 5)) ]"
	[ "$(map_entries reset_conns)" -eq 0 ]
	echo "ssl_state entries: $base_ssl before, $(map_entries ssl_state) after;" \
		"pending notes: $base_pending before, $(map_entries pending) after"
	rss1=$(awk '/^VmRSS/ { print $2 }' "/proc/$PW_PID/status")
	echo "daemon RSS: $rss0 kB before, $rss1 kB after"
	[ "$rss1" -lt $((rss0 + 8192)) ]
	pw_stop
	events_lint
}
