#!/bin/bash
# tests/bench/go.sh: what pinwarden adds to a Go crypto/tls handshake.
#
# A Go client (tests/tools/go/client.go -count N: N full handshakes in a row, one
# connection each, no session cache) against a Go server on 127.0.0.1, both built here
# with the distribution's Go, in three configurations that alternate over several
# rounds (order rotated each round):
#   none        no pinwarden
#   unattached  pinwarden run --no-discover: the daemon and its host-wide programs, but
#               the Go client not attached (what the Go probes add is audit - this)
#   audit       pinwarden run (built-in default: audit every chain)
#   enforce     pinwarden run --policy (enforce + kill; every chain presented matches)
# Per round and configuration: the client's wall time and its own CPU time (user + system:
# a uprobe's cost is charged to the probed process) for N handshakes, medians over the
# rounds, per handshake. With the daemon: the BPF programs' own run time per call
# (kernel.bpf_stats_enabled=1, bpftool prog show), and a check that N chains were
# judged. Holds the host-wide test lock; stops only what it started.
#
# Environment: GO_BENCH_N (handshakes per measurement, default 2000), GO_BENCH_ROUNDS
# (default 7), GO_BENCH_TLS (1.2, 1.3 or any; default any = 1.3).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PW=${PW:-$ROOT/build/pinwarden}
N=${GO_BENCH_N:-2000}
ROUNDS=${GO_BENCH_ROUNDS:-7}
TLSV=${GO_BENCH_TLS:-any}
LOCK=${PW_TEST_LOCK:-/run/lock/pinwarden-tests.lock}
WORK=$(mktemp -d /tmp/pinwarden-gobench.XXXXXX)
SERVER_PID= DAEMON_PID=
STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled)

cleanup() {
	[ -n "$DAEMON_PID" ] && kill -TERM "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
	[ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	sysctl -q -w kernel.bpf_stats_enabled="$STATS_WAS"
	rm -rf "$WORK"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || { echo "go bench: run as root" >&2; exit 1; }
command -v go >/dev/null || { echo "go bench: needs Go (golang-go)" >&2; exit 1; }
mkdir -p "$(dirname "$LOCK")"
exec 8>>"$LOCK"
flock -w 1800 8

export GOCACHE=$WORK/gocache GOPATH=$WORK/gopath GOFLAGS= GOPROXY=off CGO_ENABLED=0
go build -ldflags="-s -w" -o "$WORK/goclient" "$ROOT/tests/tools/go/client.go"
go build -ldflags="-s -w" -o "$WORK/goserver" "$ROOT/tests/tools/go/server.go"
"$ROOT/tests/fixtures/gen-pki.sh" "$WORK/pki" >/dev/null
PKI=$WORK/pki

"$WORK/goserver" -cert "$PKI/legit-ec/chain.pem" -key "$PKI/legit-ec/leaf.key" \
	-port-file "$WORK/port" -record /dev/null 2>"$WORK/server.err" &
SERVER_PID=$!
while [ ! -s "$WORK/port" ]; do sleep 0.05; done
PORT=$(cat "$WORK/port")

cat >"$WORK/policy.yaml" <<EOF
mode: enforce
action: kill
pinsets:
  legit: { pins: [ $(cat "$PKI/legit-ec/int.spki"), $(cat "$PKI/backup.spki") ] }
rules:
  - host: pin.test
    pinset: legit
EOF
chmod 0644 "$WORK/policy.yaml"

daemon_start() {
	: >"$WORK/events.jsonl"
	"$PW" run --log "$WORK/events.jsonl" --status "$WORK/status.json" "$@" \
		2>"$WORK/daemon.err" &
	DAEMON_PID=$!
	until grep -q '"event":"ready"' "$WORK/events.jsonl"; do
		kill -0 "$DAEMON_PID" || { cat "$WORK/daemon.err" >&2; exit 1; }
		sleep 0.05
	done
	# the client binary is attached at its first exec: do it now, outside the timing
	"$WORK/goclient" -connect "127.0.0.1:$PORT" -servername pin.test -insecure -count 1
}

daemon_stop() {
	kill -TERM "$DAEMON_PID"
	wait "$DAEMON_PID"
	DAEMON_PID=
}

# go_prog_stats: "name run_cnt run_time_ns" of the go_* programs
go_prog_stats() {
	bpftool prog show --json | jq -r '.[] | select(.name | startswith("go_")) |
		"\(.name) \(.run_cnt // 0) \(.run_time_ns // 0)"' | sort
}

# measure CONFIG: one timed run of N handshakes; appends "CONFIG ns_per_handshake"
measure() {
	local cfg=$1 t0 t1
	case $cfg in
	unattached) daemon_start --no-discover ;;
	audit) daemon_start ;;
	enforce) daemon_start --policy "$WORK/policy.yaml" ;;
	esac
	[ "$cfg" = none ] || go_prog_stats >"$WORK/stats.before"
	# wall time, and the client's own CPU time (where a uprobe's cost is charged)
	python3 -c 'import resource, subprocess, sys, time
t = time.monotonic_ns()
subprocess.run(sys.argv[2:], check=True)
w = time.monotonic_ns() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(sys.argv[1], w, int((r.ru_utime + r.ru_stime) * 1e9))' "$cfg" \
		"$WORK/goclient" -connect "127.0.0.1:$PORT" -servername pin.test -insecure \
		-tls "$TLSV" -count "$N" >>"$WORK/results"
	if [ "$cfg" != none ]; then
		go_prog_stats >"$WORK/stats.after"
		join "$WORK/stats.before" "$WORK/stats.after" |
			awk -v cfg="$cfg" '$4 > $2 { printf "%s %s %d %d\n", cfg, $1, $4 - $2, $5 - $3 }' \
				>>"$WORK/progs"
		sleep 0.3	# the daemon drains every 100 ms
		local judged want
		judged=$(grep -c '"event":"tls_chain".*"comm":"goclient"' "$WORK/events.jsonl" || true)
		want=$((N + 1))
		[ "$cfg" = unattached ] && want=0
		[ "$judged" -eq "$want" ] ||
			echo "go bench: $cfg: $judged chains judged for $want handshakes" >&2
		if grep -q '"verdict":"mismatch"' "$WORK/events.jsonl"; then
			echo "go bench: $cfg: a mismatch: the pins are wrong" >&2
			exit 1
		fi
		daemon_stop
	fi
}

sysctl -q -w kernel.bpf_stats_enabled=1
configs=(none unattached audit enforce)
"$WORK/goclient" -connect "127.0.0.1:$PORT" -servername pin.test -insecure -count 200 # warm up
for ((r = 0; r < ROUNDS; r++)); do
	for ((k = 0; k < 4; k++)); do
		measure "${configs[(r + k) % 4]}"
	done
done

python3 - "$WORK/results" "$WORK/progs" "$N" "$ROUNDS" "$TLSV" <<'EOF'
import statistics, sys
res, progs, n, rounds, tlsv = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
wall, cpu = {}, {}
for line in open(res):
    cfg, w, c = line.split()
    wall.setdefault(cfg, []).append(int(w) / n / 1000)
    cpu.setdefault(cfg, []).append(int(c) / n / 1000)
print(f"Go crypto/tls client, {n} full handshakes per run (TLS {tlsv}), {rounds} rounds, medians:")
for title, per in (("wall time per handshake", wall), ("client CPU time per handshake", cpu)):
    print(f" {title}:")
    base = statistics.median(per["none"])
    for cfg in ("none", "unattached", "audit", "enforce"):
        m = statistics.median(per[cfg])
        spread = f"{min(per[cfg]):.1f}..{max(per[cfg]):.1f}"
        extra = "" if cfg == "none" else f"  ({m - base:+.1f} us, {100 * (m - base) / base:+.1f} %)"
        print(f"  {cfg:10s} {m:8.1f} us [{spread}]{extra}")
    m = statistics.median(per["audit"]) - statistics.median(per["unattached"])
    print(f"  the Go probes (audit - unattached): {m:+.1f} us")
calls = {}
for line in open(progs):
    cfg, name, cnt, ns = line.split()
    calls.setdefault((cfg, name), []).append(int(ns) / int(cnt) / 1000)
print("BPF program run time per call (bpf_stats), medians:")
for (cfg, name), v in sorted(calls.items()):
    print(f"  {cfg:10s} {name:14s} {statistics.median(v):6.2f} us")
EOF
