#!/usr/bin/env bats
# The daemon's own safety (issue 12, items 3 and 5): it runs only in the host's PID
# namespace; the files it writes as root (--log, --status, --metrics, learn
# --output) are never written through a trap an unprivileged user set first; it
# takes the open files it needs and says when a library is left uncovered; files
# crafted to cost an examiner seconds and gigabytes cost it milliseconds.
# The attacker is uid 65534 (nobody), working in a sticky world-writable directory
# like /tmp.

# shellcheck disable=SC2154
load helpers

CRAFTED=$BATS_TEST_DIRNAME/tools/crafted

setup() {
	requires bpf
	pw_lock
	# the attacker's playground: root's, sticky and world-writable, as /tmp is
	TRAP=$(mktemp -d /tmp/pw-selfsafety.XXXXXX)
	chmod 1777 "$TRAP"
	VICTIM=$BATS_TEST_TMPDIR/victim
	printf 'keep\n' >"$VICTIM"
	chmod 0600 "$VICTIM"
	EXTRA_PIDS=()
}

teardown() {
	local p
	for p in "${EXTRA_PIDS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$TRAP"
	pw_teardown
}

ATTACKER=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --)

attacker() {
	"${ATTACKER[@]}" "$@"
}

# refused WHAT ARGS...: the daemon, given ARGS, exits 1 at once saying why (WHAT);
# the victim is as it was
refused() {
	local what=$1
	shift
	run --separate-stderr timeout 20 "$PW" run --dedup 0 "$@"
	echo "$stderr"
	[ "$status" -eq 1 ]
	[[ $stderr == *"$what"* ]]
	[ "$(cat "$VICTIM")" = keep ]
}

@test "outside the host's PID namespace: refused, with its own /proc or the host's" {
	command -v unshare >/dev/null || skip "unshare is not installed"
	run --separate-stderr timeout 20 unshare --pid --fork --mount-proc "$PW" run --log "$BATS_TEST_TMPDIR/e.jsonl"
	echo "$stderr"
	[ "$status" -eq 1 ]
	[[ $stderr == *"not in the host's PID namespace"* ]]
	[[ $stderr == *"--pid=host"* ]]
	run --separate-stderr timeout 20 unshare --pid --fork "$PW" run --log "$BATS_TEST_TMPDIR/e.jsonl"
	[ "$status" -eq 1 ]
	[[ $stderr == *"not in the host's PID namespace"* ]]
	[ ! -s "$BATS_TEST_TMPDIR/e.jsonl" ]
}

@test "traps set by another user where --log goes: symlink, hard link, FIFO, their file, a symlinked directory; none written through" {
	local root_link=$BATS_TEST_TMPDIR/rootlink
	attacker ln -s "$VICTIM" "$TRAP/sym.log"
	refused "is a symbolic link: refused" --log "$TRAP/sym.log"
	# their own file with a second name (protected_hardlinks keeps them off root's)
	attacker sh -c "echo theirs > '$TRAP/own.log' && echo two > '$TRAP/two' && ln '$TRAP/two' '$TRAP/hard.log'"
	refused "hard links" --log "$TRAP/hard.log"
	refused "owned by uid 65534" --log "$TRAP/own.log"
	[ "$(cat "$TRAP/own.log")" = theirs ]
	# a hard link to a file of root's, as a host without protected_hardlinks allows
	ln "$VICTIM" "$root_link"
	refused "hard links" --log "$root_link"
	attacker mkfifo "$TRAP/fifo.log"
	refused "refused" --log "$TRAP/fifo.log"
	# a reader on the FIFO: opened at once (O_NONBLOCK), then refused on its type
	# setpriv itself, not a function in a subshell: $! is then the program's own pid
	"${ATTACKER[@]}" sh -c "exec 3<>'$TRAP/fifo.log'; exec sleep 30" &
	EXTRA_PIDS+=($!)
	sleep 0.2
	refused "not a regular file" --log "$TRAP/fifo.log"
	# a directory of theirs on the way that is a symlink to root's
	attacker ln -s "$BATS_TEST_TMPDIR" "$TRAP/dir"
	refused "symbolic link owned by uid 65534" --log "$TRAP/dir/victim"
}

@test "traps where --status, --metrics and learn --output go: refused at start, before any learning" {
	attacker ln -s "$VICTIM" "$TRAP/status.json"
	refused "is a symbolic link: refused" --status "$TRAP/status.json" --log "$BATS_TEST_TMPDIR/e.jsonl"
	attacker sh -c "echo theirs > '$TRAP/m.prom'"
	refused "owned by uid 65534" --metrics "$TRAP/m.prom" --log "$BATS_TEST_TMPDIR/e.jsonl"
	attacker ln -s "$BATS_TEST_TMPDIR" "$TRAP/d"
	refused "symbolic link owned by uid 65534" --metrics "$TRAP/d/victim" --log "$BATS_TEST_TMPDIR/e.jsonl"
	attacker ln -s "$VICTIM" "$TRAP/draft.yaml"
	run --separate-stderr timeout 20 "$PW" learn --duration 30 --output "$TRAP/draft.yaml"
	echo "$stderr"
	[ "$status" -eq 1 ]
	[[ $stderr == *"--output"*"is a symbolic link: refused"* ]]
	[ "$(cat "$VICTIM")" = keep ]
	[ ! -s "$BATS_TEST_TMPDIR/e.jsonl" ]
}

@test "the open files limit: raised to the hard limit and reported; past it, each library left out is an event and a metric" {
	local st=$BATS_TEST_TMPDIR/status.json metrics=$BATS_TEST_TMPDIR/m.prom ev
	# a soft limit as a shell gives, a hard limit too low for the host's libraries
	PW_PRLIMIT=(prlimit --nofile=64:"${SELFSAFETY_NOFILE:-320}")
	pw_start_limited --status "$st" --metrics "$metrics"
	ev=$(events_wait '.event == "ready"')
	[ "$(event_field "$ev" .open_files_limit)" -eq "${SELFSAFETY_NOFILE:-320}" ]
	retry 30 0.1 test -s "$metrics"
	grep -qx "pinwarden_open_files_limit ${SELFSAFETY_NOFILE:-320}" "$metrics"
	[ "$(jq .open_files_limit "$st")" -eq "${SELFSAFETY_NOFILE:-320}" ]
	# private copies of libssl, each a new file to attach (a descriptor for it and one per
	# probe program), until the descriptors run out
	local i lib=/lib/x86_64-linux-gnu/libssl.so.3
	for i in $(seq 1 40); do
		mkdir -p "$BATS_TEST_TMPDIR/copy$i"
		cp "$lib" "$BATS_TEST_TMPDIR/copy$i/"
		LD_PRELOAD=$BATS_TEST_TMPDIR/copy$i/libssl.so.3 sleep 30 3>&- &
		EXTRA_PIDS+=($!)
	done
	# (with so few descriptors the host's own libraries may be left out first)
	ev=$(events_wait '.event == "library_uncovered" and .reason == "file_limit" and .library == "openssl"' 20)
	echo "$ev"
	[ "$(event_field "$ev" .library)" = openssl ]
	[ "$(event_field "$ev" .open_files_limit)" -eq "${SELFSAFETY_NOFILE:-320}" ]
	[[ $(event_field "$ev" .error) == *"Too many open files"* ]]
	retry 30 0.1 grep -Eq '^pinwarden_libraries_uncovered\{library="openssl",reason="file_limit"\} [1-9]' "$metrics"
	retry 30 0.1 bash -c "[ \$(jq .uncovered.file_limit '$st') -ge 1 ]"
	pw_stop
}

# pw_start_limited ARGS...: pw_start, the daemon under "${PW_PRLIMIT[@]}"
pw_start_limited() {
	local real=$PW
	PW=$BATS_TEST_TMPDIR/pw-limited
	printf '#!/bin/sh\nexec %s %s "$@"\n' "${PW_PRLIMIT[*]}" "$real" >"$PW"
	chmod 0755 "$PW"
	pw_start "$@"
	PW=$real
}

@test "crafted files an unprivileged user runs: each examined within its budget, reported uncovered, the daemon small and beating" {
	local k pid t0 ev hwm kinds=(itab-storm fat-libssl many-sections huge-section sparse truncated)
	for k in "${kinds[@]}"; do
		attacker "$PYTHON" "$CRAFTED/mkelf.py" "$k" "$TRAP/$k"
		chmod 0755 "$TRAP/$k"
	done
	pw_start --metrics "$TRAP/pinwarden.prom" --status "$TRAP/status.json"
	for k in "${kinds[@]}"; do
		t0=$(date +%s%N)
		"${ATTACKER[@]}" "$TRAP/$k" 3>&- &
		pid=$!
		EXTRA_PIDS+=($pid)
		# not a TLS library: examined and let be
		[ "$k" = truncated ] && continue
		ev=$(events_wait ".event == \"library_uncovered\" and (.path | endswith(\"/$k\"))" 20)
		echo "$k: $(( ($(date +%s%N) - t0) / 1000000 )) ms: $ev"
		case $k in
		itab-storm) [ "$(event_field "$ev" .reason)" = attach_failed ] ;;
		*) [ "$(event_field "$ev" .reason)" = budget ] ;;
		esac
	done
	# each within its budget: the daemon never went quiet long enough for the kernel to
	# stop believing in it (PW_BEAT_MAX_NS, 100 ms)
	[ "$(_events_count 'select(.event == "discovery_timeout" and .reason == "daemon_unresponsive")')" -eq 0 ]
	hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$PW_PID/status")
	echo "daemon VmHWM: $hwm kB"
	[ "$hwm" -lt 262144 ]
	retry 30 0.1 grep -Eq '^pinwarden_libraries_uncovered\{library="unknown",reason="budget"\} [3-9]' "$TRAP/pinwarden.prom"
	retry 30 0.1 grep -Eq '^pinwarden_libraries_uncovered\{library="openssl",reason="budget"\} 1$' "$TRAP/pinwarden.prom"
	# the daemon is root's, in the attacker's directory: its files are its own, fresh
	[ "$(stat -c %u "$TRAP/pinwarden.prom")" -eq 0 ]
	[ "$(stat -c %u "$TRAP/status.json")" -eq 0 ]
	pw_stop
}
