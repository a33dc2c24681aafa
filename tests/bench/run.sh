#!/bin/bash
# tests/bench/run.sh: `make bench`. What pinwarden costs, measured side by side.
#
# Three configurations alternate over several rounds, their order rotated each round:
#   none     no pinwarden
#   audit    pinwarden run (built-in default: audit every chain)
#   enforce  pinwarden run --policy (enforce + kill, every chain presented matches)
# and each round measures, per configuration:
#   1. full TLS 1.3 handshakes per second, EC P-256 and RSA-2048 servers, 1 and nproc
#      client processes (SNI pin.test; every handshake checked to be full and, with the
#      daemon, to have produced exactly one tls_chain event); and the CPU time per
#      handshake over the same window: the client processes (their own clock), the
#      server's processes and the daemon's (schedstat, every thread, the watchdog too),
#      and the daemon's BPF programs (run_time_ns of each program the daemon holds,
#      kernel.bpf_stats_enabled=1 for the whole run but the exec part), which run inside
#      client and server;
#   2. one TLS connection moving 1 GiB, MB/s;
#   3. process start with a default SSL context and the CA bundle, time per start;
#   6. process exec: the first exec of EXECS distinct fresh executables (copies: new
#      inodes, never examined) and EXECS execs of one the daemon knows, time per exec;
#   5. (daemon configurations) the daemon's RSS and CPU while clients do ~1,000
#      handshakes per second.
# Then, once per run:
#   7. COPIES private copies of libssl, each bind-mounted over the system's in a mount
#      namespace of its own and used there first by one openssl s_client handshake:
#      the time per client with no daemon and with the enforcing one (each copy a new
#      file to examine and attach before the handshake), every first handshake judged
#      (none missed), and the daemon's descriptors and RSS per attached copy;
#   4. the daemon's ceiling: a flood of parallel handshake clients (events vs handshakes,
#      loss, daemon CPU per event, the BPF programs' own cost), and past the ceiling: the
#      daemon is stopped (SIGSTOP) under the flood until the ring buffer overflows, to
#      show that the kernel side does not wait and that the loss is reported.
# Results: a summary on stdout and BENCHMARKS.md at the repository root; the raw numbers
# stay in build/bench/results.tsv and meta.env (tests/bench/report.py rebuilds the report).
#
# Environment: BENCH_QUICK=1 a short smoke run (about a minute); BENCH_ROUNDS,
# BENCH_HS_SECONDS, BENCH_STARTS override the counts; BENCH_KEEP=1 keeps the work
# directory (logs, raw results); BENCH_OUT names the report (default BENCHMARKS.md);
# BENCH_PARTS=hs measures the handshakes only (no bulk, start, exec, rate, ceiling);
# BENCH_PARTS=copies measures the private libssl copies only (BENCH_COPIES of them),
# BENCH_PARTS=exec the execs only (no report is written for either: the figures are printed);
# BENCH_RESULTS the directory for results.tsv and meta.env (default build/bench);
# BENCH_LABEL names the binary in the report (default: the commit of this tree);
# BENCH_BEFORE the BENCH_RESULTS of an earlier run (say, PW= a build of an older commit,
# BENCH_PARTS=hs) whose BPF time per handshake the report sets beside this run's.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_DIR=$ROOT/tests/bench
PW=${PW:-$ROOT/build/pinwarden}
OUT=$ROOT/build/bench
RESULTS_DIR=${BENCH_RESULTS:-$OUT}
PARTS=${BENCH_PARTS:-all}
BEFORE=${BENCH_BEFORE:-}
REPORT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3 || true)}
NCPU=$(nproc)
CLK_TCK=$(getconf CLK_TCK)
CONFIGS=(none audit enforce)

if [ "${BENCH_QUICK:-0}" = 1 ]; then
	ROUNDS=${BENCH_ROUNDS:-1}
	HS_SECONDS=${BENCH_HS_SECONDS:-1}
	STARTS=${BENCH_STARTS:-40}
	BULK_RUNS=1
	RATE_SECONDS=2
	CEIL_TRIALS=1
	CEIL_SECONDS=2
	STALL_SECONDS=3
	EXECS=${BENCH_EXECS:-200}
	COPIES=${BENCH_COPIES:-50}
else
	ROUNDS=${BENCH_ROUNDS:-7}
	HS_SECONDS=${BENCH_HS_SECONDS:-2}
	STARTS=${BENCH_STARTS:-150}
	BULK_RUNS=3
	RATE_SECONDS=4
	CEIL_TRIALS=3
	CEIL_SECONDS=5
	STALL_SECONDS=4
	EXECS=${BENCH_EXECS:-1000}
	COPIES=${BENCH_COPIES:-1000}
fi
BULK_BYTES=$((1 << 30))
RATE=1000
FLOOD_PROCS=$((4 * NCPU))
HS_WORKERS=$((FLOOD_PROCS > 16 ? FLOOD_PROCS : 16))

say() { printf '%s\n' "$*"; }
warn() { printf 'bench: %s\n' "$*" >&2; }
die() {
	printf 'bench: FAILED: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------- preconditions
[ "$(id -u)" -eq 0 ] || die "run as root: the daemon loads BPF programs"
[ -x "$PW" ] || die "$PW is missing: run 'make' first"
[ -n "$PYTHON" ] || die "python3 is missing (it writes the report): run 'make deps'"
for t in gcc pkg-config openssl awk; do
	command -v "$t" >/dev/null || die "$t is missing: run 'make deps'"
done
HAVE_BPFTOOL=0
command -v bpftool >/dev/null && command -v jq >/dev/null && HAVE_BPFTOOL=1
case $PARTS in all | hs | copies | exec) ;; *) die "BENCH_PARTS is all, hs, copies or exec, not '$PARTS'" ;; esac
if [ -n "$BEFORE" ] && [ ! -f "$BEFORE/results.tsv" ]; then
	die "BENCH_BEFORE=$BEFORE: no results.tsv there"
fi

# ---------------------------------------------------------------- cleanup
# Every pinwarden daemon judges every process on the host: hold the lock the BATS
# suites hold, so that no test daemon judges (or kills) our clients and vice versa.
PW_TEST_LOCK=${PW_TEST_LOCK:-/run/lock/pinwarden-tests.lock}
mkdir -p "$(dirname "$PW_TEST_LOCK")"
exec 8>>"$PW_TEST_LOCK"
flock -w 1800 8 || { echo "bench: $PW_TEST_LOCK held for 30 min" >&2; exit 1; }
WORK=$(mktemp -d /tmp/pinwarden-bench.XXXXXX)
chmod 0755 "$WORK"
SERVER_PIDS=()
DAEMON_PID=
STATS_ORIG=

stop_pid() { # stop_pid PID: SIGTERM, then SIGKILL after 5 s; reaps it
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -CONT "$pid" 2>/dev/null || true
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	stop_pid "$DAEMON_PID"
	for p in "${SERVER_PIDS[@]}"; do
		stop_pid "$p"
	done
	if [ -n "$STATS_ORIG" ]; then
		sysctl -q -w kernel.bpf_stats_enabled="$STATS_ORIG" >/dev/null 2>&1 || true
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
		warn "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- tools and fixtures
say "== building the benchmark tools (build/bench/)"
mkdir -p "$OUT"
BCFLAGS="-O2 -g -Wall -Wextra -Wno-unused-parameter -Werror -std=gnu11 -D_GNU_SOURCE"
read -r -a SSL_FLAGS <<<"$(pkg-config --cflags --libs libssl libcrypto)"
# shellcheck disable=SC2086
gcc $BCFLAGS "$BENCH_DIR/pwbench.c" -o "$OUT/pwbench" "${SSL_FLAGS[@]}" ||
	die "cannot build pwbench (is libssl-dev installed? 'make deps')"
# shellcheck disable=SC2086
gcc $BCFLAGS "$BENCH_DIR/ctxstart.c" -o "$OUT/ctxstart" "${SSL_FLAGS[@]}" ||
	die "cannot build ctxstart"
# shellcheck disable=SC2086
gcc $BCFLAGS "$BENCH_DIR/execbench.c" -o "$OUT/execbench" || die "cannot build execbench"
PWB=$OUT/pwbench
"$OUT/ctxstart" -v >"$WORK/ctxstart.out" || die "ctxstart cannot load the CA bundle"
CA_CERTS=$(sed -n 's/certificates=//p' "$WORK/ctxstart.out")

# one binary for the whole run, even if build/pinwarden is rebuilt meanwhile
cp "$PW" "$WORK/pinwarden"
PW=$WORK/pinwarden

say "== test PKI"
PKI=$WORK/pki
"$ROOT/tests/fixtures/gen-pki.sh" "$PKI" || die "cannot generate the test PKI"

POLICY_DIR=$WORK/policy
mkdir -m 0755 "$POLICY_DIR"
POLICY=$POLICY_DIR/enforce.yaml
cat >"$POLICY" <<EOF
mode: enforce
action: kill
pinsets:
  legit:
    pins:
      - $(cat "$PKI/legit-ec/int.spki")
      - $(cat "$PKI/legit-rsa/int.spki")
rules:
  - host: pin.test
    pinset: legit
EOF
chmod 0644 "$POLICY"
"$PW" check "$POLICY" >/dev/null || die "the enforcing policy does not pass 'pinwarden check'"

# ---------------------------------------------------------------- servers
start_server() { # start_server NAME ARGS...: sets PORT_<NAME>, TREE_<NAME> (its pids)
	local name=$1 out=$WORK/server-$1.out i port='' pids=''
	shift
	"$PWB" server "$@" >"$out" 2>&1 &
	SERVER_PIDS+=($!)
	for ((i = 0; i < 50; i++)); do
		pids=$(sed -n 's/^pids=//p' "$out")
		[ -n "$pids" ] && break
		sleep 0.1
	done
	port=$(sed -n 's/^port=//p' "$out")
	if [ -z "$port" ] || [ -z "$pids" ]; then
		die "server $name did not start: $(cat "$out")"
	fi
	printf -v "PORT_$name" '%s' "$port"
	printf -v "TREE_$name" '%s' "${pids//,/ }"
}
start_server ec --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" \
	--workers "$HS_WORKERS"
start_server rsa --cert "$PKI/legit-rsa/chain.pem" --key "$PKI/legit-rsa/leaf.key" \
	--workers "$HS_WORKERS"
start_server bulk --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" \
	--workers 2 --bulk "$BULK_BYTES"
# shellcheck disable=SC2154
say "   servers on 127.0.0.1: EC $PORT_ec, RSA $PORT_rsa, bulk $PORT_bulk"

# ---------------------------------------------------------------- records
RESULTS=$WORK/results.tsv
: >"$RESULTS"
rec() { # rec METRIC CONFIG ROUND VALUE [MORE...]
	local IFS=$'\t'
	printf '%s\n' "$*" >>"$RESULTS"
}
kv() { # kv KEY LINE: the value of KEY=value in LINE
	sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"
}

# Uprobes that are not ours (another pinwarden, a tracer) skew a comparison, and another
# pinwarden that enforces a rule for pin.test kills our clients. Checked before and after
# every measurement; the report names the runs that had company.
FOREIGN=0
CHECKS=0
FOREIGN_LAST=0
foreign_count() {
	bpftool -j perf show 2>/dev/null | jq --argjson me "${DAEMON_PID:-0}" \
		'[.[] | select(.fd_type == "uprobe" or .fd_type == "uretprobe")
		      | select(.pid != $me)] | length' 2>/dev/null || echo 0
}
foreign_pids() {
	bpftool -j perf show 2>/dev/null | jq -r --argjson me "${DAEMON_PID:-0}" \
		'[.[] | select(.fd_type == "uprobe" or .fd_type == "uretprobe")
		      | select(.pid != $me) | .pid] | unique | .[]' 2>/dev/null |
		while read -r p; do
			printf '%s(%s) ' "$p" "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-60)"
		done
}
foreign_probes() { # foreign_probes METRIC CONFIG ROUND
	local n
	[ $HAVE_BPFTOOL = 1 ] || return 0
	CHECKS=$((CHECKS + 1))
	n=$(foreign_count)
	if [ "${n:-0}" -gt 0 ]; then
		FOREIGN=$((FOREIGN + 1))
		rec foreign "$2" "$3" "$n" "$1"
		[ $FOREIGN_LAST = 1 ] ||
			warn "$1 ($2, round $3): $n uprobes of other processes are attached, the results are skewed until they go: $(foreign_pids)"
		FOREIGN_LAST=1
	elif [ $FOREIGN_LAST = 1 ]; then
		warn "$1 ($2, round $3): the other processes' uprobes are gone"
		FOREIGN_LAST=0
	fi
}
# ---------------------------------------------------------------- the daemon
DAEMON_LOG=
DAEMON_CFG=
DAEMON_TREE=()
DAEMON_STARTS_FAILED=0
daemon_start() { # daemon_start audit|enforce
	local cfg=$1 attempt i rc args t0
	args=(run --log "$WORK/events.jsonl" --metrics "$WORK/metrics.prom")
	[ "$cfg" = enforce ] && args+=(--policy "$POLICY")
	DAEMON_LOG=$WORK/events.jsonl
	DAEMON_CFG=$cfg
	for attempt in 1 2 3; do
		rm -f "$DAEMON_LOG"
		t0=$(date +%s%N)
		"$PW" "${args[@]}" 2>"$WORK/daemon.err" 3>&- &
		DAEMON_PID=$!
		for ((i = 0; i < 600; i++)); do
			if grep -q '"event":"ready"' "$DAEMON_LOG" 2>/dev/null; then
				rec ready "$cfg" 0 $((($(date +%s%N) - t0) / 1000000))
				# its CPU: every thread of it and of its children (the watchdog)
				mapfile -t DAEMON_TREE < <(echo "$DAEMON_PID"; pgrep -P "$DAEMON_PID")
				bpf_names
				return 0
			fi
			kill -0 "$DAEMON_PID" 2>/dev/null || break
			sleep 0.05
		done
		if kill -0 "$DAEMON_PID" 2>/dev/null; then
			stop_pid "$DAEMON_PID"
			DAEMON_PID=
			die "the daemon ($cfg) did not log its ready event within 30 s: $(tail -5 "$WORK/daemon.err")"
		fi
		rc=0
		wait "$DAEMON_PID" || rc=$?
		DAEMON_PID=
		DAEMON_STARTS_FAILED=$((DAEMON_STARTS_FAILED + 1))
		warn "the daemon ($cfg) exited with status $rc before it was ready (attempt $attempt):"
		sed 's/^/    /' "$WORK/daemon.err" >&2
		sleep 1
	done
	die "the daemon ($cfg) never became ready"
}

daemon_stop() { # daemon_stop [SECONDS [METRIC]]: SIGTERM, at most SECONDS (10) to exit, timed as METRIC (stop)
	local rc=0 i t0 secs=${1:-10} metric=${2:-stop}
	[ -n "$DAEMON_PID" ] || return 0
	t0=$(date +%s%N)
	kill -TERM "$DAEMON_PID"
	for ((i = 0; i < secs * 50; i++)); do
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.02
	done
	# SIGTERM to exit (its probes detached), to the 20 ms this polls at
	kill -0 "$DAEMON_PID" 2>/dev/null || rec "$metric" "$DAEMON_CFG" 0 $((($(date +%s%N) - t0) / 1000000))
	if kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -KILL "$DAEMON_PID"
		wait "$DAEMON_PID" 2>/dev/null || true
		DAEMON_PID=
		die "the daemon did not stop within $secs s of SIGTERM"
	fi
	wait "$DAEMON_PID" || rc=$?
	DAEMON_PID=
	DAEMON_TREE=()
	[ $rc -eq 0 ] || die "the daemon exited with status $rc on SIGTERM: $(tail -5 "$WORK/daemon.err")"
	rm -f "$DAEMON_LOG"
}

# Counts in the event log: "chains_from_pwbench with_expected_verdict lost_chains lost_all"
log_counts() { # log_counts VERDICT
	awk -v v="\"verdict\":\"$1\"" '
		index($0, "\"event\":\"tls_chain\"") && index($0, "\"comm\":\"pwbench\"") {
			n++
			if (index($0, v) && index($0, "\"host\":\"pin.test\"")) m++
		}
		index($0, "\"event\":\"lost\"") {
			if (match($0, /"chains":[0-9]+/)) lc += substr($0, RSTART + 9, RLENGTH - 9)
			if (match($0, /"count":[0-9]+/)) la += substr($0, RSTART + 8, RLENGTH - 8)
		}
		END { print n + 0, m + 0, lc + 0, la + 0 }' "$DAEMON_LOG" 2>/dev/null || echo "0 0 0 0"
}

# Wait until the daemon has logged WANT chains from our clients (it drains every 100 ms).
wait_chains() { # wait_chains VERDICT WANT [SECONDS]: prints the final log_counts
	local v=$1 want=$2 secs=${3:-5} i c
	for ((i = 0; i < secs * 10; i++)); do
		read -r -a c <<<"$(log_counts "$v")"
		[ $((c[0] + c[2])) -ge "$want" ] && break
		sleep 0.1
	done
	sleep 0.2 # anything beyond the expected count shows up too
	log_counts "$v"
}

cpu_ns() { # cpu_ns PID: CPU time on /proc/PID/schedstat (ns) and stat utime+stime (ns)
	local s t
	s=$(awk '{print $1}' "/proc/$1/schedstat" 2>/dev/null || echo 0)
	t=$(awk -v hz="$CLK_TCK" '{printf "%.0f", ($14 + $15) * 1e9 / hz}' "/proc/$1/stat")
	echo "$s $t"
}

tree_cpu_ns() { # tree_cpu_ns PID...: CPU (ns) of every thread of these processes, from
	# /proc/PID/task/TID/schedstat (the scheduler's clock, not 10 ms ticks); read with bash
	# builtins only, so that reading it runs no program in the measured window
	local p t l sum=0
	for p in "$@"; do
		for t in /proc/"$p"/task/*/schedstat; do
			read -r l 2>/dev/null <"$t" || continue
			sum=$((sum + ${l%% *}))
		done
	done
	echo "$sum"
}

# The daemon's BPF programs and their counters, from its own descriptors
# (/proc/PID/fdinfo of a program: prog_id, run_time_ns, run_cnt), so that only its
# programs count, whatever else is loaded on the host. Names from bpftool, once per
# start and again when a program appears that was not there then.
PROG_NAMES=
bpf_names() {
	[ $HAVE_BPFTOOL = 1 ] || return 0
	PROG_NAMES=$WORK/prog-names.tsv
	bpftool -j prog show 2>/dev/null | jq -r '.[] | "\(.id)\t\(.name // "?")"' \
		>"$PROG_NAMES" 2>/dev/null || true
}
bpf_snap() { # bpf_snap FILE: "prog_id run_cnt run_time_ns" per program of the daemon
	awk 'FNR == 1 { id = "" } /^prog_id:/ { id = $2 } /^run_time_ns:/ { ns = $2 }
	     /^run_cnt:/ && id != "" && !(id in seen) { seen[id]; print id, $2, ns }' \
		/proc/"$DAEMON_PID"/fdinfo/* >"$1" 2>/dev/null || true
}
bpf_delta() { # bpf_delta BEFORE AFTER: "name runs ns" per program name that ran
	local f
	f=$(awk 'NR == FNR { c[$1] = $2; n[$1] = $3; next }
		 !($1 in c) { print $1 }' "$1" "$2" | head -1)
	if [ -n "$PROG_NAMES" ] && [ -n "$f" ] && ! grep -q "^$f	" "$PROG_NAMES"; then
		bpf_names
	fi
	awk -v names="${PROG_NAMES:-/dev/null}" '
		BEGIN { while ((getline l < names) > 0) { split(l, a, "\t"); nm[a[1]] = a[2] } }
		NR == FNR { c[$1] = $2; n[$1] = $3; next }
		{ dc = $2 - c[$1]; dn = $3 - n[$1]
		  if (dc > 0) { k = ($1 in nm) ? nm[$1] : "prog" $1; rc[k] += dc; rn[k] += dn } }
		END { for (k in rc) print k, rc[k], rn[k] }' "$1" "$2"
}

verdict_of() { [ "$1" = enforce ] && echo match || echo unpinned; }

# ---------------------------------------------------------------- metrics
client_failed() { # client_failed METRIC CONFIG
	local who=
	[ $HAVE_BPFTOOL = 1 ] && who=$(foreign_pids)
	[ -n "$who" ] && who=" — another pinwarden or tracer is attached ($who); if it enforces a rule for pin.test it kills our clients"
	die "$1 ($2): the TLS client failed$who"
}

# hs METRIC CONFIG ROUND SERVER(ec|rsa) CA PROCS
hs_metric() {
	local m=$1 cfg=$2 r=$3 srv=$4 ca=$5 procs=$6 line n ev=() before=() tree port
	local d0=0 d1=0 s0 s1 bpf_ns=0 name runs ns cpu_line
	port=PORT_$srv tree=TREE_$srv
	read -r -a tree <<<"${!tree}"
	if [ "$cfg" != none ]; then
		read -r -a before <<<"$(log_counts "$(verdict_of "$cfg")")"
		bpf_snap "$WORK/bpf0"
		d0=$(tree_cpu_ns "${DAEMON_TREE[@]}")
	fi
	s0=$(tree_cpu_ns "${tree[@]}")
	line=$("$PWB" hs --port "${!port}" --ca "$ca" --procs "$procs" --seconds "$HS_SECONDS") ||
		client_failed "$m" "$cfg"
	foreign_probes "$m" "$cfg" "$r"
	n=$(kv handshakes "$line")
	[ "$(kv resumed "$line")" = 0 ] || die "$m ($cfg): a session was resumed: $line"
	rec "$m" "$cfg" "$r" "$(kv rate "$line")"
	if [ "$cfg" != none ]; then
		read -r -a ev <<<"$(wait_chains "$(verdict_of "$cfg")" $((before[0] + n)))"
		d1=$(tree_cpu_ns "${DAEMON_TREE[@]}")
	fi
	s1=$(tree_cpu_ns "${tree[@]}")
	if [ "$cfg" != none ]; then
		bpf_snap "$WORK/bpf1"
		while read -r name runs ns; do
			rec "bpfhs:$m:$name" "$cfg" "$r" "$runs" "$ns" "$n"
			bpf_ns=$((bpf_ns + ns))
		done < <(bpf_delta "$WORK/bpf0" "$WORK/bpf1")
		# check: handshakes, tls_chain events, events with the expected verdict, lost chains
		rec "check:$m" "$cfg" "$r" "$n" $((ev[0] - before[0])) $((ev[1] - before[1])) \
			$((ev[2] - before[2])) "$(kv errors "$line")"
		rec "dcpu:$m" "$cfg" "$r" $((d1 - d0)) $((ev[0] - before[0]))
	fi
	# CPU over the window: handshakes, client, server, daemon, BPF (inside client + server)
	rec "cpu:$m" "$cfg" "$r" "$n" "$(kv cpu_ns "$line")" $((s1 - s0)) $((d1 - d0)) "$bpf_ns"
	printf -v cpu_line 'CPU/handshake: client %s server %s daemon %s (BPF %s) us' \
		"$(awk -v a="$(kv cpu_ns "$line")" -v n="$n" 'BEGIN {printf "%.0f", a / n / 1000}')" \
		"$(awk -v a=$((s1 - s0)) -v n="$n" 'BEGIN {printf "%.0f", a / n / 1000}')" \
		"$(awk -v a=$((d1 - d0)) -v n="$n" 'BEGIN {printf "%.1f", a / n / 1000}')" \
		"$(awk -v a="$bpf_ns" -v n="$n" 'BEGIN {printf "%.1f", a / n / 1000}')"
	if [ "$cfg" != none ]; then
		printf '   %-9s %-8s %8s/s  events %s/%s  %s\n' "$m" "$cfg" "$(kv rate "$line")" \
			$((ev[0] - before[0])) "$n" "$cpu_line"
	else
		printf '   %-9s %-8s %8s/s  %s\n' "$m" "$cfg" "$(kv rate "$line")" "$cpu_line"
	fi
}

bulk_metric() { # bulk_metric CONFIG ROUND
	local i line
	for ((i = 0; i < BULK_RUNS; i++)); do
		line=$("$PWB" bulk --port "$PORT_bulk" --ca "$PKI/legit-ec/root.pem") ||
			die "bulk ($2): the transfer failed"
		[ "$(kv bytes "$line")" = "$BULK_BYTES" ] || die "bulk ($1): short transfer: $line"
		rec bulk "$1" "$2" "$(kv mbps "$line")"
		foreign_probes bulk "$1" "$2"
		printf '   %-9s %-8s %8s MB/s\n' bulk "$1" "$(kv mbps "$line")"
	done
}

start_metric() { # start_metric CONFIG ROUND
	local line
	line=$("$PWB" spawn --count "$STARTS" -- "$OUT/ctxstart") || die "process start ($1) failed"
	rec start "$1" "$2" "$(kv wall_us "$line")"
	foreign_probes start "$1" "$2"
	rec start_cpu "$1" "$2" "$(kv cpu_us "$line")"
	printf '   %-9s %-8s %8s us/start (cpu %s us)\n' start "$1" "$(kv wall_us "$line")" \
		"$(kv cpu_us "$line")"
}

exec_metric() { # exec_metric CONFIG ROUND: first execs of fresh executables, execs of a known one
	local cfg=$1 r=$2 dir=$WORK/exec.$1.$2 i line known=$WORK/exec.known.$1.$2
	mkdir "$dir"
	for ((i = 0; i < EXECS; i++)); do
		cp "$OUT/execbench" "$dir/x.$i"
	done
	# the BPF run-time statistics off while execs are timed: with them on, every
	# program run also reads the clock twice, which cost a known exec about 8 us here,
	# more than the programs themselves (none of section 1c's figures come from here)
	if [ -n "$STATS_ORIG" ]; then sysctl -q -w kernel.bpf_stats_enabled=0; fi
	line=$("$OUT/execbench" fresh "$dir" "$EXECS") || die "exec of fresh files ($cfg) failed"
	rec exec_fresh "$cfg" "$r" "$(kv p50_us "$line")" "$(kv p99_us "$line")" "$(kv mean_us "$line")"
	printf '   %-9s %-8s p50 %s us  p99 %s us  (first exec of %s files)\n' exec_fresh "$cfg" \
		"$(kv p50_us "$line")" "$(kv p99_us "$line")" "$EXECS"
	# a file the daemon has examined: run once long enough to be, then measure (by then
	# the daemon has also answered the notes of the fresh ones: no backlog competes)
	cp "$OUT/execbench" "$known"
	"$known" sleep 1000
	line=$("$OUT/execbench" known "$known" "$EXECS") || die "exec of a known file ($cfg) failed"
	if [ -n "$STATS_ORIG" ]; then sysctl -q -w kernel.bpf_stats_enabled=1; fi
	rec exec_known "$cfg" "$r" "$(kv p50_us "$line")" "$(kv p99_us "$line")" "$(kv mean_us "$line")"
	printf '   %-9s %-8s p50 %s us  p99 %s us\n' exec_known "$cfg" "$(kv p50_us "$line")" \
		"$(kv p99_us "$line")"
	foreign_probes exec "$cfg" "$r"
	rm -rf "$dir" "$known"
}

rate_metric() { # rate_metric CONFIG ROUND: the daemon's RSS and CPU at ~RATE handshakes/s
	local cfg=$1 r=$2 line cpu0 cpu1 t0 t1 before=() ev=() n rss hwm pct
	read -r -a before <<<"$(log_counts "$(verdict_of "$cfg")")"
	read -r -a cpu0 <<<"$(cpu_ns "$DAEMON_PID")"
	t0=$(date +%s%N)
	line=$("$PWB" hs --port "$PORT_ec" --ca "$PKI/legit-ec/root.pem" --procs "$NCPU" \
		--seconds "$RATE_SECONDS" --rate "$RATE") || client_failed rate "$cfg"
	foreign_probes rate "$cfg" "$r"
	read -r -a cpu1 <<<"$(cpu_ns "$DAEMON_PID")"
	t1=$(date +%s%N)
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$DAEMON_PID/status")
	hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$DAEMON_PID/status")
	n=$(kv handshakes "$line")
	read -r -a ev <<<"$(wait_chains "$(verdict_of "$cfg")" $((before[0] + n)))"
	pct=$(awk -v c=$((cpu1[0] - cpu0[0])) -v w=$((t1 - t0)) 'BEGIN {printf "%.2f", 100 * c / w}')
	rec rate_hs "$cfg" "$r" "$(kv rate "$line")"
	rec rate_cpu "$cfg" "$r" "$pct"
	rec rate_cpu_stat "$cfg" "$r" "$(awk -v c=$((cpu1[1] - cpu0[1])) -v w=$((t1 - t0)) \
		'BEGIN {printf "%.2f", 100 * c / w}')"
	rec rate_rss "$cfg" "$r" "$rss"
	rec rate_hwm "$cfg" "$r" "$hwm"
	rec "check:rate" "$cfg" "$r" "$n" $((ev[0] - before[0])) $((ev[1] - before[1])) \
		$((ev[2] - before[2])) "$(kv errors "$line")"
	printf '   %-9s %-8s %8s/s  daemon CPU %s%%  RSS %s KiB  events %s/%s\n' rate "$cfg" \
		"$(kv rate "$line")" "$pct" "$rss" $((ev[0] - before[0])) "$n"
}

# ---------------------------------------------------------------- the rounds
if [ $HAVE_BPFTOOL = 1 ] && [ "$(foreign_count)" -gt 0 ]; then
	say "== another process has uprobes attached ($(foreign_pids)); waiting up to 60 s for it to go"
	for ((i = 0; i < 60; i++)); do
		[ "$(foreign_count)" -gt 0 ] || break
		sleep 1
	done
	[ "$(foreign_count)" -gt 0 ] && warn "still there: the results will be flagged as skewed"
fi
# the BPF programs' run time (run_time_ns) is counted only while this is on: the whole run,
# every configuration alike (its own cost, a clock read per program run, is in the figures)
STATS_ORIG=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || true)
if [ -n "$STATS_ORIG" ] && ! sysctl -q -w kernel.bpf_stats_enabled=1 >/dev/null 2>&1; then
	STATS_ORIG=
	warn "cannot set kernel.bpf_stats_enabled=1: no BPF run time in the report"
fi
BPF_STATS=0
[ -n "$STATS_ORIG" ] && BPF_STATS=1
T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# the host's CPU ticks (all CPUs: busy, steal, total) over the run: how shared it was
cpu_ticks() {
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i
		print $2 + $3 + $4 + $7 + $8, $9, t }' /proc/stat
}
read -r -a TICKS_START <<<"$(cpu_ticks)"
[ "$PARTS" = copies ] && ROUNDS=0
say "== $ROUNDS rounds x ${CONFIGS[*]}: ${HS_SECONDS}s per handshake run, $STARTS starts," \
	"$BULK_RUNS x 1 GiB"
for ((r = 1; r <= ROUNDS; r++)); do
	for ((k = 0; k < 3; k++)); do
		cfg=${CONFIGS[$(((k + r - 1) % 3))]}
		say "-- round $r/$ROUNDS: $cfg"
		[ "$cfg" = none ] || daemon_start "$cfg"
		foreign_probes begin "$cfg" "$r"
		if [ "$PARTS" != exec ]; then
			hs_metric hs_ec_1 "$cfg" "$r" ec "$PKI/legit-ec/root.pem" 1
			hs_metric hs_ec_n "$cfg" "$r" ec "$PKI/legit-ec/root.pem" "$NCPU"
			hs_metric hs_rsa_1 "$cfg" "$r" rsa "$PKI/legit-rsa/root.pem" 1
			hs_metric hs_rsa_n "$cfg" "$r" rsa "$PKI/legit-rsa/root.pem" "$NCPU"
		fi
		if [ "$PARTS" = all ]; then
			bulk_metric "$cfg" "$r"
			start_metric "$cfg" "$r"
		fi
		if [ "$PARTS" = all ] || [ "$PARTS" = exec ]; then
			exec_metric "$cfg" "$r"
		fi
		if [ "$PARTS" = all ] && [ "$cfg" != none ]; then
			rate_metric "$cfg" "$r"
		fi
		daemon_stop
	done
done

# ---------------------------------------------------------------- the ceiling
bpf_prog_stats() { # bpf_prog_stats CONFIG TRIAL: per BPF program of our daemon, runs and ns
	local name cnt ns
	[ -n "$STATS_ORIG" ] || return 0
	: >"$WORK/bpf-none"
	bpf_snap "$WORK/bpf1"
	while read -r name cnt ns; do
		rec "bpf:$name" "$1" "$2" "$cnt" "$ns"
	done < <(bpf_delta "$WORK/bpf-none" "$WORK/bpf1")
}

ceiling_and_stall() {
	say "== the daemon's ceiling: $FLOOD_PROCS handshake clients at full speed, ${CEIL_SECONDS}s"
	for ((t = 1; t <= CEIL_TRIALS; t++)); do
		order=(audit enforce)
		if [ $((t % 2)) = 0 ]; then
			order=(enforce audit)
		fi
		for cfg in "${order[@]}"; do
			daemon_start "$cfg"
			foreign_probes ceiling "$cfg" "$t"
			read -r -a cpu0 <<<"$(cpu_ns "$DAEMON_PID")"
			line=$("$PWB" hs --port "$PORT_ec" --ca "$PKI/legit-ec/root.pem" \
				--procs "$FLOOD_PROCS" --seconds "$CEIL_SECONDS") || client_failed flood "$cfg"
			foreign_probes ceiling "$cfg" "$t"
			n=$(kv handshakes "$line")
			secs=$(kv seconds "$line")
			read -r -a ev <<<"$(wait_chains "$(verdict_of "$cfg")" "$n" 10)"
			read -r -a cpu1 <<<"$(cpu_ns "$DAEMON_PID")"
			bpf_prog_stats "$cfg" "$t"
			rec ceil "$cfg" "$t" "$n" "${ev[0]}" "${ev[1]}" "${ev[2]}" "${ev[3]}" "$secs" \
				$((cpu1[0] - cpu0[0])) $((cpu1[1] - cpu0[1])) "$(kv errors "$line")"
			printf '   %-8s %s handshakes in %ss, %s events, %s lost, daemon CPU %s ms\n' "$cfg" \
				"$n" "$secs" "${ev[0]}" "${ev[2]}" $(((cpu1[0] - cpu0[0]) / 1000000))
			daemon_stop
		done
	done

	say "== past the ceiling: the same flood, the daemon stopped (SIGSTOP) for ${STALL_SECONDS}s in the middle"
	flood() { # flood SECONDS: prints "handshakes rate"
		local line
		line=$("$PWB" hs --port "$PORT_ec" --ca "$PKI/legit-ec/root.pem" --procs "$FLOOD_PROCS" \
			--seconds "$1") || client_failed flood audit
		echo "$(kv handshakes "$line") $(kv rate "$line")"
	}
	daemon_start audit
	foreign_probes stall audit 1
	read -r n_before rate_before <<<"$(flood "$STALL_SECONDS")"
	read -r -a ev <<<"$(wait_chains unpinned "$n_before" 10)"
	kill -STOP "$DAEMON_PID"
	read -r n_stop rate_stop <<<"$(flood "$STALL_SECONDS")"
	# what a full ring buffer costs the daemon to drain, with no client competing for the CPU
	read -r -a cpu0 <<<"$(cpu_ns "$DAEMON_PID")"
	kill -CONT "$DAEMON_PID"
	last=-1
	for ((i = 0; i < 100; i++)); do
		sleep 0.2
		read -r -a c <<<"$(log_counts unpinned)"
		[ "${c[0]}" = "$last" ] && break
		last=${c[0]}
	done
	read -r -a cpu1 <<<"$(cpu_ns "$DAEMON_PID")"
	drained=$((c[0] - ev[0]))
	rec drain audit 1 "$drained" $((cpu1[0] - cpu0[0]))
	read -r n_after rate_after <<<"$(flood "$STALL_SECONDS")"
	total=$((n_before + n_stop + n_after))
	# the daemon drains what the ring buffer kept, then reports the loss on its next tick
	for ((i = 0; i < 100; i++)); do
		read -r -a ev <<<"$(log_counts unpinned)"
		[ $((ev[0] + ev[2])) -ge $total ] && break
		sleep 0.1
	done
	sleep 1.5
	read -r -a ev <<<"$(log_counts unpinned)"
	lost_events=$(grep -c '"event":"lost"' "$DAEMON_LOG" || true)
	rec stall audit 1 "$n_before" "$rate_before" "$n_stop" "$rate_stop" "$n_after" "$rate_after" \
		"${ev[0]}" "${ev[2]}" "${ev[3]}" "$lost_events" "$STALL_SECONDS"
	printf '   %s/s running, %s/s stopped, %s/s running again; %s handshakes -> %s events + %s chains reported lost (%s lost events)\n' \
		"$rate_before" "$rate_stop" "$rate_after" $total "${ev[0]}" "${ev[2]}" "$lost_events"
	printf '   the daemon drained %s buffered events in %s ms of CPU\n' "$drained" \
		$(((cpu1[0] - cpu0[0]) / 1000000))
	daemon_stop
}

copies_metric() { # COPIES private libssl copies, each in a mount namespace of its own
	local lib dir=$WORK/copies cfg i t0 t1 fds0 fds1 rss0 rss1 fails n0 n1 m1
	lib=$(readlink -f "$(ldconfig -p | awk '/libssl.so.3 .*x86-64/ { print $NF; exit }')")
	if ! unshare -m true 2>/dev/null || [ ! -f "$lib" ]; then
		warn "no mount namespaces or no libssl.so.3 here: the copies part is left out"
		return 0
	fi
	say "== $COPIES private libssl copies, each in its own mount namespace, one first handshake each"
	mkdir -p "$dir"
	for ((i = 0; i < COPIES; i++)); do
		cp "$lib" "$dir/libssl.$i"
	done
	for cfg in none enforce; do
		fails=0
		if [ "$cfg" = enforce ]; then
			daemon_start enforce
			fds0=$(ls "/proc/$DAEMON_PID/fd" | wc -l)
			rss0=$(awk '/^VmRSS:/ {print $2}' "/proc/$DAEMON_PID/status")
		fi
		: >"$WORK/copies.$cfg"
		for ((i = 0; i < COPIES; i++)); do
			t0=$EPOCHREALTIME
			# (-quiet alone implies -ign_eof: it would wait for the server to close)
			timeout 20 unshare -m sh -c 'mount --bind "$1" "$2" && exec openssl s_client \
				-quiet -no_ign_eof -connect "127.0.0.1:$3" -servername pin.test \
				-CAfile "$4" -verify_return_error </dev/null' _ "$dir/libssl.$i" "$lib" \
				"$PORT_ec" "$PKI/legit-ec/root.pem" >/dev/null 2>&1 || fails=$((fails + 1))
			t1=$EPOCHREALTIME
			echo $(((${t1/./} - ${t0/./}))) >>"$WORK/copies.$cfg"
		done
		read -r p50 p99 < <(sort -n "$WORK/copies.$cfg" | awk '{ v[NR] = $1 }
			END { i = int(NR * 0.99); if (i < 1) i = 1; print v[int((NR + 1) / 2)], v[i] }')
		if [ "$cfg" = none ]; then
			rec copies none 1 "$COPIES" "$p50" "$p99" "$fails"
			printf '   %-8s p50 %s us  p99 %s us  %s failed\n' none "$p50" "$p99" "$fails"
			continue
		fi
		# every first handshake judged: one tls_chain event of openssl each, a match
		for ((i = 0; i < 100; i++)); do
			n1=$(grep -c '"event":"tls_chain".*"comm":"openssl"' "$DAEMON_LOG" || true)
			[ "$n1" -ge "$COPIES" ] && break
			sleep 0.1
		done
		m1=$(grep '"event":"tls_chain".*"comm":"openssl"' "$DAEMON_LOG" | grep -c '"verdict":"match"' || true)
		sleep 1.2	# the metrics file's next tick
		n0=$(sed -n 's/^pinwarden_libraries_discovered_total //p' "$WORK/metrics.prom")
		fds1=$(ls "/proc/$DAEMON_PID/fd" | wc -l)
		rss1=$(awk '/^VmRSS:/ {print $2}' "/proc/$DAEMON_PID/status")
		rec copies enforce 1 "$COPIES" "$p50" "$p99" "$fails" "$n1" "$m1" "${n0:-0}" \
			$((fds1 - fds0)) $((rss1 - rss0))
		printf '   %-8s p50 %s us  p99 %s us  %s failed; %s chains judged (%s match), %s copies attached; +%s descriptors, +%s KiB RSS\n' \
			enforce "$p50" "$p99" "$fails" "$n1" "$m1" "${n0:-0}" $((fds1 - fds0)) $((rss1 - rss0))
		# what was not a match, and why a copy's process was not held: in the output
		grep '"event":"tls_chain".*"comm":"openssl"' "$DAEMON_LOG" | grep -v '"verdict":"match"' |
			sed 's/^/   not a match: /' | cut -c1-400 || true
		grep '"event":"discovery_timeout"' "$DAEMON_LOG" | sed 's/.*"reason":"\([a-z_]*\)".*/\1/' |
			sort | uniq -c | sed 's/^ */   discovery_timeout: /' || true
		grep -E '^pinwarden_(daemon_loop_stalls_total|watchdog_stalls_total|daemon_loop_longest_stall_seconds) ' \
			"$WORK/metrics.prom" | sed 's/^/   /' || true
		grep 'gave no heartbeat' "$WORK/daemon.err" | head -5 | sed 's/^/   /' || true
		# every copy's links closed: the stop of a daemon holding a thousand libraries
		daemon_stop 120 copies_stop
		printf '   %-8s SIGTERM to exit with the copies attached: %s ms\n' enforce \
			"$(awk -F'\t' '$1 == "copies_stop" { v = $4 } END { print v }' "$RESULTS")"
	done
	rm -rf "$dir"
}
[ "$PARTS" = all ] || [ "$PARTS" = copies ] && copies_metric
[ "$PARTS" = all ] && ceiling_and_stall
if [ -n "$STATS_ORIG" ]; then
	sysctl -q -w kernel.bpf_stats_enabled="$STATS_ORIG" >/dev/null 2>&1 || true
	STATS_ORIG=
fi
T_END=$(date +%s)

# ---------------------------------------------------------------- the report
META=$WORK/meta.env
{
	echo "cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "ncpu=$NCPU"
	echo "kernel=$(uname -r)"
	echo "openssl=$(openssl version 2>/dev/null)"
	# shellcheck disable=SC1091
	echo "distro=$(. /etc/os-release && echo "$PRETTY_NAME")"
	echo "virt=$(lscpu 2>/dev/null | awk -F': *' '/^Hypervisor vendor/ {print $2}')"
	echo "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- bpf userspace include 2>/dev/null || echo '+uncommitted')"
	echo "binary=$(sha256sum "$PW" | cut -c1-16)"
	echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "quick=${BENCH_QUICK:-0}"
	echo "rounds=$ROUNDS"
	echo "hs_seconds=$HS_SECONDS"
	echo "starts=$STARTS"
	echo "execs=$EXECS"
	echo "copies=$COPIES"
	echo "bulk_runs=$BULK_RUNS"
	echo "rate=$RATE"
	echo "rate_seconds=$RATE_SECONDS"
	echo "ceil_trials=$CEIL_TRIALS"
	echo "ceil_seconds=$CEIL_SECONDS"
	echo "flood_procs=$FLOOD_PROCS"
	echo "stall_seconds=$STALL_SECONDS"
	echo "hs_workers=$HS_WORKERS"
	echo "ca_certs=$CA_CERTS"
	echo "foreign=$FOREIGN"
	echo "checks=$CHECKS"
	echo "daemon_starts_failed=$DAEMON_STARTS_FAILED"
	echo "bpf_stats=$([ $HAVE_BPFTOOL = 1 ] && echo 1 || echo 0)"
	echo "bpf_run_time=$BPF_STATS"
	echo "parts=$PARTS"
	echo "label=${BENCH_LABEL:-}"
	echo "load_start=$LOAD_START"
	echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)"
	read -r -a ticks <<<"$(cpu_ticks)"
	awk -v b=$((ticks[0] - TICKS_START[0])) -v s=$((ticks[1] - TICKS_START[1])) \
		-v t=$((ticks[2] - TICKS_START[2])) 'BEGIN { if (t) {
			printf "host_busy_pct=%.1f\nhost_steal_pct=%.1f\n", 100 * b / t, 100 * s / t } }'
	echo "duration=$((T_END - T_START))"
} >"$META"
# the raw results stay next to the tools, so the report can be rebuilt from them
mkdir -p "$RESULTS_DIR"
cp "$RESULTS" "$META" "$RESULTS_DIR/"
if [ "$PARTS" = copies ] || [ "$PARTS" = exec ]; then
	say "== BENCH_PARTS=$PARTS: no report written (the figures are above; raw in $RESULTS_DIR)"
	exit 0
fi
"$PYTHON" "$BENCH_DIR/report.py" "$RESULTS_DIR/results.tsv" "$RESULTS_DIR/meta.env" "$REPORT" \
	${BEFORE:+"$BEFORE"} || die "cannot write the report"
say "== wrote $REPORT ($((T_END - T_START)) s of measurements)"
