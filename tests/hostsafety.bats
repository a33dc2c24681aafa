#!/usr/bin/env bats
# Host safety: discovery never freezes the host. A process is stopped only at the
# gate (a TCP receive while a file it mapped is not examined yet), only while the
# daemon and its watchdog beat, and never longer than the bound (--discover-timeout)
# whatever becomes of the daemon: killed, stopped, starting up, blocked on its log,
# busy with a hostile file. Interactive shells and debuggers never see a stop.
# Stops are measured from outside: tests/tools/hostsafety/tstate.c samples /proc
# every 2 ms for processes in state T of the session the test's clients run in.

# shellcheck disable=SC2154
load helpers

HS=$BATS_TEST_DIRNAME/tools/hostsafety
BOUND_MS=200
SLACK_MS=150	# sampling, and scheduling on a busy two-CPU host

setup() {
	requires bpf
	pki
	FRESH=$BATS_FILE_TMPDIR/fresh
	TSTATE=$BATS_FILE_TMPDIR/tstate
	[ -x "$FRESH" ] || cc -O2 -Wall -Werror -o "$FRESH" "$HS/fresh.c" -lssl -lcrypto
	[ -x "$TSTATE" ] || cc -O2 -Wall -Werror -o "$TSTATE" "$HS/tstate.c"
	FRESHLIB=$BATS_FILE_TMPDIR/freshlib.so
	[ -f "$FRESHLIB" ] || cc -shared -fPIC -O2 -Wall -Werror -o "$FRESHLIB" "$HS/freshlib.c"
	EXTRA_PIDS=()
}

teardown() {
	local p
	[ -n "${STORM_DIR:-}" ] && touch "$STORM_DIR/stop"
	for p in "${EXTRA_PIDS[@]}"; do
		kill -CONT "$p" 2>/dev/null
		kill "$p" 2>/dev/null
	done
	[ -n "${PW_PID:-}" ] && kill -CONT "$PW_PID" 2>/dev/null
	[ -n "${TMUX_SOCK:-}" ] && tmux -L "$TMUX_SOCK" kill-server 2>/dev/null
	wait "${EXTRA_PIDS[@]}" 2>/dev/null
	pw_teardown
}

# tcp_server_start: a server that sends a byte to each connection; exports TCP_PORT
tcp_server_start() {
	"$PYTHON" "$HS/tcp_server.py" "$BATS_TEST_TMPDIR/tcp.port" 3>&- &
	EXTRA_PIDS+=($!)
	retry 50 0.1 test -s "$BATS_TEST_TMPDIR/tcp.port"
	TCP_PORT=$(cat "$BATS_TEST_TMPDIR/tcp.port")
}

# storm_start NAME MODE PORT SECONDS PARALLEL [LIB]: fresh executables in a session of
# their own (storm.sh), watched by tstate from the start; exports STORM_DIR, STORM_SID
storm_start() {
	STORM_DIR=$BATS_TEST_TMPDIR/$1
	mkdir -p "$STORM_DIR"
	setsid "$HS/storm.sh" "$FRESH" "$STORM_DIR" "$2" "$3" "$4" "$5" ${6:+"$6"} 3>&- </dev/null &
	STORM_PID=$!
	EXTRA_PIDS+=($STORM_PID)
	retry 50 0.1 test -s "$STORM_DIR/sid"
	STORM_SID=$(cat "$STORM_DIR/sid")
	"$TSTATE" watch "$STORM_SID" "$STORM_DIR/stops" 3>&- &
	WATCH_PID=$!
}

# storm_end: wait for the storm, stop watching; every run exited 0, and the longest
# stop seen is at most the bound (plus slack). Exports LONGEST_MS and RUNS.
storm_end() {
	wait "$STORM_PID" || true
	kill -TERM "$WATCH_PID"
	wait "$WATCH_PID" || true
	RUNS=$(wc -l <"$STORM_DIR/started")
	LONGEST_MS=$(awk '$1 == "longest_ms" { print int($2) }' "$STORM_DIR/stops")
	echo "$1: $RUNS runs, $(awk '$1 == "stopped_processes" { print $2 }' "$STORM_DIR/stops") seen" \
		"stopped, longest stop $LONGEST_MS ms, slowest run" \
		"$(sort -k3 -n "$STORM_DIR/done" | tail -n 1 | cut -d' ' -f3) ms"
	cat "$STORM_DIR/errors" 2>/dev/null | head -n 5
	[ "$RUNS" -gt 0 ]
	[ "$(wc -l <"$STORM_DIR/done")" -eq "$RUNS" ]
	[ "$(awk '$2 != 0' "$STORM_DIR/done" | wc -l)" -eq 0 ]
	[ "$LONGEST_MS" -le $((BOUND_MS + SLACK_MS)) ]
	! grep -q still_stopped "$STORM_DIR/stops" || false
}

# fresh_copies DIR N: N copies of the fresh executable (new inodes), DIR/fresh.1...
fresh_copies() {
	local i
	mkdir -p "$1"
	for i in $(seq "$2"); do cp "$FRESH" "$1/fresh.$i"; done
}

@test "SIGKILL of the daemon at random moments under an exec storm, 50 times: within 1 s nothing is left stopped" {
	tcp_server_start
	# each run also maps a new shared object: held while the daemon examines it, so
	# that kills find processes stopped
	storm_start storm tcp "$TCP_PORT" 0 4 "$FRESHLIB"
	local i delay pid t0 t worst=0 kills=0 stopped stops=0 n st=$BATS_TEST_TMPDIR/st.json pids=()
	local startup
	# how long start-up takes here (the verifier's work: seconds, more on a busy host), so
	# that the random moments cover start-up and the running daemon alike
	t0=$(now_ms)
	pw_start
	startup=$(($(now_ms) - t0))
	pw_stop
	echo "start-up took $startup ms"
	for i in $(seq 50); do
		rm -f "$st"
		"$PW" run --log "$BATS_TEST_TMPDIR/events.$i.jsonl" --status "$st" \
			--dedup 0 3>&- >/dev/null 2>>"$BATS_TEST_TMPDIR/daemon.err" &
		pid=$!
		pids+=("$pid")
		# a random moment of start-up or of the daemon's first second running (where
		# it holds processes)
		delay=$(((RANDOM * 32768 + RANDOM) % (startup + 1000)))
		sleep "$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"
		# the kernel's count of stops at the gate, as of the daemon's last status (1 s)
		n=$(jq .counters.discovery_stops "$st" 2>/dev/null) || n=0
		stops=$((stops + ${n:-0}))
		kill -KILL "$pid"
		t0=$(now_ms)
		kills=$((kills + 1))
		# (its probes take seconds to go: it is reaped at the end)
		while :; do
			stopped=$("$TSTATE" now "$STORM_SID")
			t=$(($(now_ms) - t0))
			[ -z "$stopped" ] && break
			if [ "$t" -ge 1000 ]; then
				echo "kill $i (after $delay ms): still stopped after $t ms: $stopped"
				return 1
			fi
			sleep 0.01
		done
		[ "$t" -le "$worst" ] || worst=$t
	done
	wait "${pids[@]}" || true
	touch "$STORM_DIR/stop"
	storm_end "storm"
	echo "$kills kills; slowest return to no stopped process after a kill: $worst ms;" \
		"stops counted by the daemons' last status files: $stops"
	# processes were held under every state of the daemon: stops did happen
	[ "$(($(awk '$1 == "stopped_processes" { print $2 }' "$STORM_DIR/stops") + stops))" -gt 0 ]
	# and no watchdog outlived its daemon by more than a second
	sleep 1
	local w mine=()
	for w in $(pgrep -x pw-watchdog); do
		# `pinwarden watchdog BOUND DAEMON`: ours if DAEMON is one of the killed daemons
		read -r -a argv < <(tr '\0' ' ' <"/proc/$w/cmdline" 2>/dev/null) || true
		if [[ " ${pids[*]} " == *" ${argv[3]:-none} "* ]]; then
			mine+=("$w (daemon ${argv[3]})")
		fi
	done
	echo "watchdogs left of the killed daemons: ${mine[*]:-none}"
	[ "${#mine[@]}" -eq 0 ]
}

@test "the daemon stopped (SIGSTOP) for 5 s: fresh TLS clients run, none stopped longer than the bound" {
	pin_test_servers
	local met=$BATS_TEST_TMPDIR/metrics.prom
	pw_start --discover-timeout "$BOUND_MS" --metrics "$met"
	local ev
	storm_start clients tls "$legit_PORT" 6 2
	sleep 0.5
	# clients on their way to the gate now find the daemon's heartbeat still fresh for
	# up to 100 ms: stopped, and continued by the watchdog at the bound; later ones
	# are not stopped at all
	kill -STOP "$PW_PID"
	storm_end "daemon stopped"
	kill -CONT "$PW_PID"
	# back, the daemon says what ran unexamined, and why
	ev=$(events_wait '.event == "discovery_timeout" and .reason == "daemon_unresponsive"' 20)
	[ "$(event_field "$ev" .stopped)" = false ]
	[ "$(event_field "$ev" .comm)" != null ]
	[ "$(event_field "$ev" .file.inode)" -gt 0 ]
	# any stop the watchdog ended is reported with its wait, within the bound
	[ "$(_events_count ".event == \"discovery_timeout\" and .stopped and .wait_ms > $((BOUND_MS + SLACK_MS))")" -eq 0 ]
	echo "stops ended at the bound: $(_events_count '.event == "discovery_timeout" and .reason == "bound"')"
	# the stall is counted and said: the loop's, not the watchdog's (which ran on)
	retry 30 0.1 grep -q '^pinwarden_daemon_loop_stalls_total [1-9]' "$met"
	grep -E '^pinwarden_(daemon_loop|watchdog)_' "$met"
	grep -E '^pinwarden_daemon_loop_longest_stall_seconds ([1-9]|[1-9][0-9])\.' "$met"
	grep '^pinwarden_watchdog_stalls_total 0$' "$met"
	grep 'the loop gave no heartbeat for [0-9]* ms' "$PW_ERR"
	pw_stop
	events_lint
}

@test "the daemon starting up: fresh TLS clients run, none stopped longer than the bound" {
	pin_test_servers
	PW_LOG=$BATS_TEST_TMPDIR/events.jsonl
	PW_ERR=$BATS_TEST_TMPDIR/daemon.err
	"$PW" run --log "$PW_LOG" --dedup 0 --discover-timeout "$BOUND_MS" 3>&- >/dev/null 2>"$PW_ERR" &
	PW_PID=$!
	storm_start clients tls "$legit_PORT" 6 2
	events_wait '.event == "ready"' 30
	storm_end "start-up"
	pw_stop
}

@test "the daemon's stdout a pipe nobody reads: the loop goes on, stops stay short, lost events are counted and reported" {
	pin_test_servers
	local fifo=$BATS_TEST_TMPDIR/stdout st=$BATS_TEST_TMPDIR/status.json i
	mkfifo "$fifo"
	exec 7<>"$fifo"		# open at both ends: nobody reads
	PW_ERR=$BATS_TEST_TMPDIR/daemon.err
	"$PW" run --status "$st" --dedup 0 --log-buffer 64 --discover-timeout "$BOUND_MS" \
		3>&- 7>&- >"$fifo" 2>"$PW_ERR" &
	PW_PID=$!
	retry 100 0.1 test -s "$st"
	# fill the pipe (64 KiB) and the daemon's queue (64 KiB): about 1.5 KiB a chain event
	for i in $(seq 150); do
		curl_pin pin.test "$legit_PORT" -k -o /dev/null || true
	done
	retry 50 0.1 bash -c "[ \$(jq .counters.events_dropped '$st') -gt 0 ]"
	storm_start clients tls "$legit_PORT" 3 2
	storm_end "stdout not read"
	# the loop kept answering: the status file is fresh, no stop waited for the bound
	retry 30 0.1 bash -c "[ \$(( \$(date +%s%N) - \$(jq .updated_unix_ns '$st') )) -lt 2000000000 ]"
	[ "$(jq .discovery.timeouts "$st")" -eq 0 ]
	# read it now: the lost event comes once there is room again
	timeout 20 cat "$fifo" >"$BATS_TEST_TMPDIR/events.jsonl" &
	local reader=$!
	PW_LOG=$BATS_TEST_TMPDIR/events.jsonl
	ev=$(events_wait '.event == "lost" and .events > 0' 15)
	echo "$ev"
	[ "$(event_field "$ev" .count)" -ge "$(event_field "$ev" .events)" ]
	pw_stop
	kill "$reader" 2>/dev/null || true
	exec 7>&-
}

@test "the daemon examining a hostile file: within its budget, fresh TLS clients run, none stopped longer than the bound" {
	pin_test_servers
	pw_start --discover-timeout "$BOUND_MS"
	local slow=$BATS_TEST_TMPDIR/libslow.so t0 ev
	cc -shared -fPIC -O2 -o "$slow" "$HS/slowlib.c" -lcrypto
	# a live process that maps it (held where its dynamic linker maps it, and examined
	# through /proc/PID/map_files)
	t0=$(now_ms)
	LD_PRELOAD=$slow sleep 60 3>&- &
	slowpid=$!
	EXTRA_PIDS+=($slowpid)
	storm_start clients tls "$legit_PORT" 4 2
	# 64 MiB of code to disassemble: over the budget of a file, said at once (it took
	# seconds of the daemon's time before the budgets)
	ev=$(events_wait ".event == \"library_uncovered\" and .path == \"$slow\"" 20)
	echo "reported uncovered $(($(now_ms) - t0)) ms after it was mapped: $ev"
	[ "$(event_field "$ev" .reason)" = budget ]
	[ "$(event_field "$ev" .library)" = openssl ]
	storm_end "hostile file"
	[ "$(awk '{ print $3 }' "/proc/$slowpid/stat")" = S ]
	# examined within the bound: its process was continued by the daemon, not the watchdog
	[ "$(_events_count "select(.event == \"discovery_timeout\" and .pid == $slowpid)")" -eq 0 ]
	pw_stop
}

@test "bash in tmux: 21 fresh executables in a loop, no job reported stopped, every status 0" {
	command -v tmux >/dev/null || skip "tmux is not installed (make deps)"
	tcp_server_start
	pw_start
	local dir=$BATS_TEST_TMPDIR/jobs
	fresh_copies "$dir" 21
	TMUX_SOCK=pw-hostsafety-$$
	tmux -L "$TMUX_SOCK" -f /dev/null new-session -d -x 200 -y 60 "bash --norc --noprofile -i" 3>&-
	# each one connects and receives: the gate, with its file not examined yet
	tmux -L "$TMUX_SOCK" send-keys "for i in \$(seq 21); do $dir/fresh.\$i tcp $TCP_PORT; echo \"rc=\$?\"; done; echo LOOP-DONE" Enter
	retry 300 0.1 bash -c "tmux -L '$TMUX_SOCK' capture-pane -p -S -1000 | grep -q '^LOOP-DONE'"
	tmux -L "$TMUX_SOCK" capture-pane -p -S -1000 >"$BATS_TEST_TMPDIR/pane.txt"
	cat "$BATS_TEST_TMPDIR/pane.txt"
	! grep -q Stopped "$BATS_TEST_TMPDIR/pane.txt" || false
	[ "$(grep -c '^rc=0$' "$BATS_TEST_TMPDIR/pane.txt")" -eq 21 ]
	[ "$(grep -c '^rc=' "$BATS_TEST_TMPDIR/pane.txt")" -eq 21 ]
	pw_stop
	# no stop at all: jobs of an interactive shell are never stopped
	[ "$(_events_count '.event == "discovery_timeout" and .reason != "terminal_job"')" -eq 0 ]
}

@test "strace -f of fresh executables: no SIGSTOP seen" {
	command -v strace >/dev/null || skip "strace is not installed"
	tcp_server_start
	pw_start
	local dir=$BATS_TEST_TMPDIR/traced i
	fresh_copies "$dir" 5
	for i in 1 2 3 4 5; do
		run strace -f -o "$dir/trace.$i" "$dir/fresh.$i" tcp "$TCP_PORT"
		[ "$status" -eq 0 ]
		grep -q 'read([0-9]*, "x"' "$dir/trace.$i"
		! grep -q SIGSTOP "$dir/trace.$i" || false
	done
	pw_stop
}
