#!/usr/bin/env bats
# Examination in workers: a file whose reads never return (on a FUSE file system that
# does not answer the daemon, as a hung NFS or FUSE mount would, or a hostile one)
# holds one worker, never the daemon's loop. Past --examine-timeout it is reported
# uncovered (reason timeout), its worker abandoned and replaced; meanwhile other
# processes' files are examined and attached, and status and metrics stay fresh.

# shellcheck disable=SC2154
load helpers

setup() {
	requires bpf
	if [ ! -c /dev/fuse ]; then
		skip "no /dev/fuse: FUSE is unavailable on this host"
	fi
	if ! command -v fusermount3 >/dev/null || ! pkg-config --exists fuse3; then
		skip "fuse3 and libfuse3-dev are not installed (make deps)"
	fi
	pki
	pin_test_servers
	LIBDIR=$(dirname "$(readlink -f "$(ldconfig -p | awk '/libssl.so.3 .*x86-64/ { print $NF; exit }')")")
	HANGFS=$BATS_FILE_TMPDIR/hangfs
	[ -x "$HANGFS" ] || cc -O2 -Wall -Werror -o "$HANGFS" \
		"$BATS_TEST_DIRNAME/tools/examine/hangfs.c" $(pkg-config --cflags --libs fuse3)
}

teardown() {
	# answer the daemon first: nothing stays blocked in the mount
	[ -n "${FS_STATE:-}" ] && touch "$FS_STATE/release"
	if [ -n "${MAPPER_PID:-}" ]; then
		kill "$MAPPER_PID" 2>/dev/null
		wait "$MAPPER_PID" 2>/dev/null
	fi
	[ -n "${MNT:-}" ] && fusermount3 -u -z "$MNT" 2>/dev/null
	if [ -n "${FS_PID:-}" ]; then
		kill "$FS_PID" 2>/dev/null
		wait "$FS_PID" 2>/dev/null
	fi
	pw_teardown
}

# age_ms FILE: how old the status file's own timestamp is
age_ms() {
	echo $((($(date +%s%N) - $(jq .updated_unix_ns "$1")) / 1000000))
}

@test "a file whose reads never return: the loop goes on, other files are attached, it is reported uncovered (timeout)" {
	local st=$BATS_TEST_TMPDIR/status.json met=$BATS_TEST_TMPDIR/metrics.prom
	local src=$BATS_TEST_TMPDIR/hung.so t0 t1 age max_age=0 ev
	pin_test_policy
	# a bound on stops wide enough that a loaded CI host examines the namespace's libssl
	# within it: what is tested here is that the loop is free, not how fast it works
	pw_start --policy "$POLICY" --status "$st" --metrics "$met" --examine-timeout 3000 \
		--discover-timeout 1500
	# a shared object built now, served by a FUSE file system that answers everyone
	# but the daemon
	echo 'int hung_answer(void) { return 42; }' >"$BATS_TEST_TMPDIR/hung.c"
	cc -shared -fPIC -o "$src" "$BATS_TEST_TMPDIR/hung.c"
	MNT=$BATS_TEST_TMPDIR/mnt
	FS_STATE=$BATS_TEST_TMPDIR/fs
	mkdir -p "$MNT" "$FS_STATE"
	"$HANGFS" "$src" "$PW_PID" "$FS_STATE" "$MNT" 3>&- 2>"$BATS_TEST_TMPDIR/hangfs.err" &
	FS_PID=$!
	retry 50 0.1 test -e "$MNT/lib.so"
	# a process maps it (dlopen); the daemon's worker opens it and gets no answer
	"$PYTHON" -c 'import ctypes, sys, time
assert ctypes.CDLL(sys.argv[1]).hung_answer() == 42
time.sleep(120)' "$MNT/lib.so" 3>&- &
	MAPPER_PID=$!
	retry 100 0.05 test -e "$FS_STATE/hung"
	t0=$(now_ms)
	# the process that maps it is not frozen with it: held at its dynamic linker at most
	# the bound, then continued by the watchdog (its file examined later, or never)
	ev=$(events_wait ".event == \"discovery_timeout\" and .pid == $MAPPER_PID" 5)
	[ "$(event_field "$ev" .reason)" = bound ]
	[ "$(awk '{ print $3 }' "/proc/$MAPPER_PID/stat")" = S ]
	# meanwhile: a private libssl in a mount namespace is examined, attached and judged
	# before its first handshake (the impostor's server: killed, nothing sent)
	mkdir -p "$BATS_TEST_TMPDIR/ns"
	cp "$LIBDIR/libssl.so.3" "$LIBDIR/libcrypto.so.3" "$BATS_TEST_TMPDIR/ns/"
	run unshare -m sh -c "mount --bind '$BATS_TEST_TMPDIR/ns/libssl.so.3' '$LIBDIR/libssl.so.3' &&
		mount --bind '$BATS_TEST_TMPDIR/ns/libcrypto.so.3' '$LIBDIR/libcrypto.so.3' &&
		exec '$PYTHON' '$TLS_CLIENT' --host pin.test --port $evil_PORT --insecure --secret boxed"
	t1=$(now_ms)
	echo "namespace client done $((t1 - t0)) ms into the hang"
	[ "$status" -eq 137 ]
	ev=$(events_wait '.event == "tls_chain" and .action == "killed"')
	[ "$(event_field "$ev" .comm)" = python3 ]
	[ ! -s "$evil_RECORD" ]
	# it ran while the worker was still blocked: not yet given up
	_events_select '.event == "library_uncovered"' >&2
	[ "$(_events_count ".event == \"library_uncovered\" and .path == \"$MNT/lib.so\"")" -eq 0 ]
	# the loop answers all along: the status file's own clock never falls behind
	while [ "$(_events_count ".event == \"library_uncovered\" and .path == \"$MNT/lib.so\"")" -eq 0 ] && [ $(($(now_ms) - t0)) -lt 10000 ]; do
		age=$(age_ms "$st")
		[ "$age" -gt "$max_age" ] && max_age=$age
		sleep 0.1
	done
	echo "status file at most $max_age ms old during the hang"
	[ "$max_age" -lt 2000 ]
	ev=$(events_wait ".event == \"library_uncovered\" and .path == \"$MNT/lib.so\"" 1)
	echo "reported $(($(now_ms) - t0)) ms into the hang: $ev"
	[ "$(event_field "$ev" .reason)" = timeout ]
	[ "$(event_field "$ev" .library)" = unknown ]
	retry 30 0.1 grep -q '^pinwarden_libraries_uncovered{library="unknown",reason="timeout"} 1$' "$met"
	retry 30 0.1 grep -q '^pinwarden_examine_workers_stuck 1$' "$met"
	# the metrics file stays valid (promcheck: prometheus_client's parser and more)
	run "$PYTHON" "$TOOLS/promcheck.py" "$met" pinwarden_examine_timeouts_total \
		'pinwarden_libraries_uncovered{reason=timeout}'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[*]}" = "1 1" ]
	retry 30 0.1 bash -c "[ \$(jq .discovery.examination.workers_stuck '$st') -eq 1 ]"
	# a fresh worker took the stuck one's place
	[ "$(jq .discovery.examination.workers "$st")" -eq 4 ]
	# still hung: a second process that maps it gets no second worker, no second report
	"$PYTHON" -c 'import ctypes, sys; ctypes.CDLL(sys.argv[1])' "$MNT/lib.so"
	sleep 0.5
	[ "$(_events_count ".event == \"library_uncovered\" and .path == \"$MNT/lib.so\"")" -eq 1 ]
	[ "$(age_ms "$st")" -lt 2000 ]
	# the mount answers again: the abandoned worker comes back and ends
	touch "$FS_STATE/release"
	retry 50 0.1 bash -c "[ \$(jq .discovery.examination.workers_stuck '$st') -eq 0 ]"
	[ "$(jq .discovery.examination.workers_returned "$st")" -eq 1 ]
	kill "$MAPPER_PID"
	wait "$MAPPER_PID" || true
	MAPPER_PID=
	fusermount3 -u "$MNT"
	wait "$FS_PID"
	FS_PID=
	pw_stop
}
