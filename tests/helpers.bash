# Shared by every tests/*.bats file: `load helpers`.
#
# Everything a test starts (the daemon, TLS servers) is recorded by pid and stopped
# by that pid in teardown; every server listens on 127.0.0.1 only; fixtures live
# under $BATS_TEST_TMPDIR (per test) or $BATS_FILE_TMPDIR (the PKI, per file).
# Start processes with pw_start/server_start directly, never through `run`: `run`
# forks, and the pid would be lost with the subshell.

bats_require_minimum_version 1.5.0

PW=${PW:-$BATS_TEST_DIRNAME/../build/pinwarden}
PYTHON=${PYTHON:-/usr/bin/python3}
TOOLS=$BATS_TEST_DIRNAME/tools
FIXTURES=$BATS_TEST_DIRNAME/fixtures
TLS_SERVER=$TOOLS/tls_server.py
TLS_CLIENT=$TOOLS/tls_client.py

declare -gA _server_pid=()
PW_PID=

# requires root|bpf...: skip the test, saying why, unless this host can run it.
requires() {
	local what
	for what in "$@"; do
		case $what in
		root)
			[ "$(id -u)" -eq 0 ] || skip "needs root"
			;;
		bpf)
			[ "$(id -u)" -eq 0 ] || skip "needs root (to load BPF programs)"
			[ -r /sys/kernel/btf/vmlinux ] || skip "needs kernel BTF (/sys/kernel/btf/vmlinux)"
			_bpf_usable ||
				skip "the bpf() system call is unavailable here (seccomp, or no BPF in the kernel)"
			;;
		*)
			echo "requires: unknown requirement '$what'" >&2
			return 1
			;;
		esac
	done
}

# Create and close a one-entry array map: proof that bpf() works for us.
_bpf_usable() {
	"$PYTHON" - <<-'EOF'
		import ctypes, os, platform, struct, sys
		nr = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
		n = nr.get(platform.machine())
		if n is None:
		    sys.exit(1)
		libc = ctypes.CDLL(None, use_errno=True)
		attr = ctypes.create_string_buffer(struct.pack("IIII", 2, 4, 4, 1), 128)  # BPF_MAP_TYPE_ARRAY
		L = ctypes.c_long
		fd = libc.syscall(L(n), L(0), attr, L(128))  # BPF_MAP_CREATE
		if fd < 0:
		    sys.exit(1)
		os.close(fd)
	EOF
}

# Every process on the host is judged by every pinwarden daemon: a test's enforcing
# policy would kill another suite's clients (or the benchmark's). Tests that run TLS
# clients hold this host-wide lock from pki (called in setup) to teardown.
PW_TEST_LOCK=${PW_TEST_LOCK:-/run/lock/pinwarden-tests.lock}
pw_lock() {
	[ -n "${_pw_locked:-}" ] && return 0
	mkdir -p "$(dirname "$PW_TEST_LOCK")"
	exec 8>>"$PW_TEST_LOCK"
	flock -w 1800 8 || {
		echo "pw_lock: $PW_TEST_LOCK still held after 30 min" >&2
		return 1
	}
	_pw_locked=1
}

pw_unlock() {
	[ -n "${_pw_locked:-}" ] || return 0
	flock -u 8
	exec 8>&-
	_pw_locked=
}

# The test PKIs (see fixtures/gen-pki.sh), generated once per test file; exports PKI.
pki() {
	pw_lock
	PKI=$BATS_FILE_TMPDIR/pki
	export PKI
	[ -e "$PKI/.done" ] && return 0
	# tests of one file may run in parallel (bats --jobs): one generates, the others wait
	(
		flock 9
		if [ ! -e "$PKI/.done" ]; then
			rm -rf "$PKI"
			"$FIXTURES/gen-pki.sh" "$PKI" && touch "$PKI/.done"
		fi
	) 9>"$BATS_FILE_TMPDIR/pki.lock"
}

# pw_start [run args...]: start the daemon, logging events to $PW_LOG, and wait for
# its ready event. The daemon's stderr goes to $BATS_TEST_TMPDIR/daemon.err.
pw_start() {
	PW_LOG=$BATS_TEST_TMPDIR/events.jsonl
	PW_ERR=$BATS_TEST_TMPDIR/daemon.err
	export PW_LOG PW_ERR
	if [ -n "$PW_PID" ]; then
		echo "pw_start: the daemon is already running (pid $PW_PID)" >&2
		return 1
	fi
	touch "$PW_LOG"
	local before deadline=$((SECONDS + 30))
	before=$(_events_count 'select(.event == "ready")')
	# tests count every report: no merging of identical mismatches unless asked for
	local dedup=(--dedup 0)
	[[ " $* " == *" --dedup "* ]] && dedup=()
	"$PW" run --log "$PW_LOG" "${dedup[@]}" "$@" 3>&- >"$BATS_TEST_TMPDIR/daemon.out" 2>"$PW_ERR" &
	PW_PID=$!
	while [ "$(_events_count 'select(.event == "ready")')" -le "$before" ]; do
		if ! kill -0 "$PW_PID" 2>/dev/null; then
			local rc=0
			wait "$PW_PID" || rc=$?
			PW_PID=
			echo "pw_start: the daemon exited with status $rc before it was ready; its stderr:" >&2
			cat "$PW_ERR" >&2
			return 1
		fi
		if [ $SECONDS -ge $deadline ]; then
			echo "pw_start: no ready event within 30 s; the daemon's stderr:" >&2
			cat "$PW_ERR" >&2
			pw_stop >/dev/null 2>&1 || true
			return 1
		fi
		sleep 0.1
	done
}

# pw_stop: SIGTERM the daemon we started, wait for it, fail unless it exits 0.
pw_stop() {
	[ -n "$PW_PID" ] || return 0
	local pid=$PW_PID rc=0
	PW_PID=
	if ! _stop_pid "$pid" 20; then
		echo "pw_stop: the daemon (pid $pid) ignored SIGTERM for 20 s and was killed; its stderr:" >&2
		cat "$PW_ERR" >&2
		wait "$pid" 2>/dev/null || true
		return 1
	fi
	wait "$pid" || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "pw_stop: the daemon exited with status $rc on SIGTERM; its stderr:" >&2
		cat "$PW_ERR" >&2
		return 1
	fi
}

# _stop_pid PID SECS: SIGTERM, then SIGKILL after SECS; false if it had to be killed.
_stop_pid() {
	local pid=$1 deadline=$((SECONDS + $2))
	kill -TERM "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null; do
		# a zombie is dead already; bash reaps it on wait
		[ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" = Z ] && return 0
		if [ $SECONDS -ge $deadline ]; then
			kill -KILL "$pid" 2>/dev/null
			return 1
		fi
		sleep 0.05
	done
}

# server_start NAME [tls_server.py args...]: start a TLS server on an ephemeral port of
# 127.0.0.1 and export NAME_PORT, NAME_PID, NAME_RECORD (the application data it
# received) and NAME_LOG. NAME must be a shell identifier.
server_start() {
	local name=$1
	shift
	if [[ ! $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
		echo "server_start: '$name' is not a valid shell identifier" >&2
		return 1
	fi
	local base=$BATS_TEST_TMPDIR/$name pid deadline=$((SECONDS + 10))
	rm -f "$base.port" "$base.record"
	"$PYTHON" "$TLS_SERVER" --port 0 --port-file "$base.port" --record "$base.record" \
		"$@" 3>&- </dev/null >"$base.log" 2>&1 &
	pid=$!
	_server_pid[$name]=$pid
	while [ ! -s "$base.port" ]; do
		if ! kill -0 "$pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
			echo "server_start: server $name did not start; its log:" >&2
			cat "$base.log" >&2
			server_stop "$name" >/dev/null 2>&1 || true
			return 1
		fi
		sleep 0.05
	done
	export "${name}_PORT=$(cat "$base.port")" "${name}_PID=$pid" \
		"${name}_RECORD=$base.record" "${name}_LOG=$base.log"
}

# server_stop NAME: SIGTERM that server, wait; its exit status is returned.
server_stop() {
	local name=$1 pid=${_server_pid[$1]:-} rc=0
	[ -n "$pid" ] || return 0
	unset "_server_pid[$name]"
	_stop_pid "$pid" 5 || true
	wait "$pid" 2>/dev/null || rc=$?
	return $rc
}

# now_ms: the wall clock in milliseconds
now_ms() {
	echo $((${EPOCHREALTIME/./} / 1000))
}

# retry N DELAY cmd...: run cmd until it succeeds, at most N times, DELAY s apart.
retry() {
	# odd names: bash scoping is dynamic, and cmd may use n, i or rc itself
	local _retry_n=$1 _retry_delay=$2 _retry_i _retry_rc=0
	shift 2
	for ((_retry_i = 1; _retry_i <= _retry_n; _retry_i++)); do
		_retry_rc=0
		"$@" && return 0 || _retry_rc=$?
		[ "$_retry_i" -lt "$_retry_n" ] && sleep "$_retry_delay"
	done
	echo "retry: '$*' failed $_retry_n times (last status $_retry_rc)" >&2
	return $_retry_rc
}

# The events of $PW_LOG that FILTER selects, one per line; a line that is not JSON
# (e.g. one still being written) is skipped here: events_lint catches bad lines.
_events_select() {
	[ -e "${PW_LOG:-}" ] || return 0
	jq -cR "fromjson? | select($1)" "$PW_LOG"
}

_events_count() {
	_events_select "$1" | wc -l
}

# events_wait FILTER [TIMEOUT]: wait (default 10 s) until an event matches the jq
# FILTER (e.g. '.event == "tls_chain" and .host == "pin.test"'), print the last one.
events_wait() {
	local filter=$1 timeout=${2:-10} last deadline
	PW_LOG=${PW_LOG:-$BATS_TEST_TMPDIR/events.jsonl}
	deadline=$((SECONDS + timeout))
	while :; do
		last=$(_events_select "$filter" | tail -n 1)
		if [ -n "$last" ]; then
			printf '%s\n' "$last"
			return 0
		fi
		if [ $SECONDS -ge $deadline ]; then
			echo "events_wait: no event matching '$filter' within $timeout s in $PW_LOG:" >&2
			tail -n 8 "$PW_LOG" 2>/dev/null | cut -c1-400 >&2
			return 1
		fi
		sleep 0.1
	done
}

# events_count_ge N FILTER: at least N events match FILTER (for retry: it re-counts
# on every try, where `retry ... test "$(count)" -ge N` would count once).
events_count_ge() {
	[ "$(_events_count "$2")" -ge "$1" ]
}

# events_lint: every line of the event log is one JSON object with "time" and "event".
# One jq for the whole log (a jq per line took 400 s for the churn test's 10,000).
events_lint() {
	local bad
	bad=$(jq -R -r --arg f "$PW_LOG" '. as $l | (try fromjson catch null) |
		if type == "object" and (.time | type == "string") and (.event | type == "string")
		then empty else "\($f):\(input_line_number): not a valid event: \($l)" end' "$PW_LOG") || {
		echo "events_lint: jq could not read $PW_LOG" >&2
		return 1
	}
	if [ -n "$bad" ]; then
		head -n 5 <<<"$bad" | sed 's/^/events_lint: /' | cut -c1-400 >&2
		return 1
	fi
}

# event_field EVENT_JSON PATH: one field, raw (e.g. event_field "$ev" .verdict).
event_field() {
	local path=$2
	[[ $path == .* ]] || path=.$path
	jq -r "$path" <<<"$1"
}

# curl_pin NAME PORT [curl args...]: GET https://NAME:PORT/ with NAME resolved to
# 127.0.0.1 (so SNI and verification use NAME).
curl_pin() {
	local name=$1 port=$2
	shift 2
	curl --silent --show-error --max-time 20 --resolve "$name:$port:127.0.0.1" "$@" \
		"https://$name:$port/"
}

# tls_client [tls_client.py args...]
tls_client() {
	"$PYTHON" "$TLS_CLIENT" "$@"
}

# Stop everything this test started. A file with its own teardown calls pw_teardown.
pw_teardown() {
	local name rc=0
	for name in "${!_server_pid[@]}"; do
		server_stop "$name" || true
	done
	pw_stop || rc=$?
	pw_unlock
	return $rc
}

teardown() {
	pw_teardown
}

# policy FILE-CONTENT: write $BATS_TEST_TMPDIR/policy.yaml (root's, 0644), atomically
# (a daemon may be reading it on SIGHUP).
policy() {
	POLICY=$BATS_TEST_TMPDIR/policy.yaml
	printf '%s\n' "$1" >"$POLICY.new"
	chmod 0644 "$POLICY.new"
	mv "$POLICY.new" "$POLICY"
}

# pin_test_policy [MODE [ACTION]]: the usual policy: pin.test pinned to the legitimate
# EC leaf's and intermediate's keys and the backup key (the leaf's counts for clients
# that do not verify too); MODE enforce, ACTION kill unless given.
pin_test_policy() {
	policy "
mode: ${1:-enforce}
action: ${2:-kill}
pinsets:
  legit: { pins: [ $(cat "$PKI/legit-ec/leaf.spki"), $(cat "$PKI/legit-ec/int.spki"), $(cat "$PKI/backup.spki") ] }
rules:
  - host: pin.test
    pinset: legit"
}

# pin_int_policy [MODE] [ACTION]: POLICY with only the legitimate intermediate pinned for
# pin.test: a verdict that needs the chain the library verified
pin_int_policy() {
	policy "
mode: ${1:-enforce}
action: ${2:-kill}
pinsets:
  int: { pins: [ $(cat "$PKI/legit-ec/int.spki") ] }
rules:
  - host: pin.test
    pinset: int"
}

# pin_test_servers: the legitimate (EC) and the impostor's server for pin.test, both
# answering; exports legit_PORT, evil_PORT and the rest (server_start).
pin_test_servers() {
	server_start legit --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" --reply
	server_start evil --cert "$PKI/evil/chain.pem" --key "$PKI/evil/leaf.key" --reply
}

# in_pin_ns NAME CMD...: run CMD (at most 20 s) with NAME resolving to 127.0.0.1, through
# a private /etc/hosts bind-mounted in a mount namespace of its own: the host's file is
# untouched, and wget has no --resolve. CMD is exec'ed: its status (137: killed) is ours.
in_pin_ns() {
	local name=$1
	shift
	printf '127.0.0.1 %s\n' "$name" >"$BATS_TEST_TMPDIR/hosts"
	# shellcheck disable=SC2016
	timeout 20 unshare --mount sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' \
		"$BATS_TEST_TMPDIR/hosts" "$@"
}
