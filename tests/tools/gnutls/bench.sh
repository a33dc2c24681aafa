#!/bin/bash
# What pinwarden's GnuTLS probes add to a handshake, measured end to end.
#
#   tests/tools/gnutls/bench.sh [HANDSHAKES_PER_ROUND [ROUNDS]]
#
# A GnuTLS client (gtls bench) makes HANDSHAKES_PER_ROUND full handshakes, one after
# another, against a GnuTLS server (gtls server) on 127.0.0.1, over TLS 1.2 and 1.3
# (EC P-256 chain of two certificates, no verification). Rounds alternate between no
# daemon and the daemon with its default policy (audit: every chain is hashed, judged
# and logged); each round gives a median per handshake, and the script prints the
# median of those medians. With the daemon it also reads, with kernel.bpf_stats_enabled,
# how often each GnuTLS program ran and its mean run time. Both ends are GnuTLS and
# both are probed: the server's verify-callback runner passes the probe too (it finds
# no client certificate and returns at once) and so does its gnutls_deinit.
#
# Holds the host-wide test lock: every daemon judges every process on the host.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
n=${1:-2000}
rounds=${2:-8}
pw=$top/build/pinwarden
work=$(mktemp -d /tmp/pw-gnutls-bench.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
[ -x "$pw" ] || { echo "bench: build first (make)" >&2; exit 1; }
exec 8>>/run/lock/pinwarden-tests.lock
flock 8

cc -O2 -Wall -o "$work/gtls" "$here/gtls.c" -lgnutls
"$top/tests/fixtures/gen-pki.sh" "$work/pki" >/dev/null
declare -A port
for v in 1.2 1.3; do
	"$work/gtls" server --cert "$work/pki/legit-ec/chain.pem" --key "$work/pki/legit-ec/leaf.key" \
		--port-file "$work/port$v" --tls "$v" 2>/dev/null &
	pids+=($!)
done
for v in 1.2 1.3; do
	while [ ! -s "$work/port$v" ]; do sleep 0.05; done
	port[$v]=$(cat "$work/port$v")
done

# the daemon's CPU time (user + system, clock ticks) from ready to stop (not its start:
# loading and verifying the BPF programs), summed over the timed rounds
daemon_cpu() {
	sed 's/.*) //' "/proc/$dpid/stat" | awk '{ print $12 + $13 }'
}

daemon_start() {
	: >"$work/events.jsonl"
	"$pw" run --log "$work/events.jsonl" 2>"$work/daemon.err" &
	dpid=$!
	until grep -q '"ready"' "$work/events.jsonl"; do
		kill -0 "$dpid" 2>/dev/null || { cat "$work/daemon.err" >&2; exit 1; }
		sleep 0.1
	done
	ready_ticks=$(daemon_cpu)
}

daemon_ticks=0
daemon_stop() {
	daemon_ticks=$((daemon_ticks + $(daemon_cpu) - ready_ticks))
	kill -TERM "$dpid"
	wait "$dpid"
}

median() {
	sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# one round: the median handshake time in microseconds
round() {
	"$work/gtls" bench --port "${port[$1]}" --count "$n" | awk '{ print $4 }'
}

# warm up (page cache, CPU frequency)
round 1.3 >/dev/null
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
declare -A none pin
for ((r = 1; r <= rounds; r++)); do
	for v in 1.2 1.3; do
		none[$v]+="$(round "$v") "
	done
	daemon_start
	for v in 1.2 1.3; do
		pin[$v]+="$(round "$v") "
	done
	daemon_stop
done

timed_ticks=$daemon_ticks
# per-program cost: one more daemon round with the kernel's statistics on; then the
# client's share alone, against a server that is not GnuTLS (tls_server.py, OpenSSL)
"$(command -v python3)" "$top/tests/tools/tls_server.py" --cert "$work/pki/legit-ec/chain.pem" \
	--key "$work/pki/legit-ec/leaf.key" --port 0 --port-file "$work/port-py" 2>/dev/null &
pids+=($!)
while [ ! -s "$work/port-py" ]; do sleep 0.05; done
sysctl -qw kernel.bpf_stats_enabled=1
daemon_start
stats_before=$(bpftool -j prog show)
for v in 1.2 1.3; do round "$v" >/dev/null; done
stats_after=$(bpftool -j prog show)
nclient=$((n / 4))
"$work/gtls" bench --port "$(cat "$work/port-py")" --count "$nclient" >/dev/null
stats_client=$(bpftool -j prog show)
daemon_stop
sysctl -qw kernel.bpf_stats_enabled="$old_stats"

echo "GnuTLS handshakes, $rounds alternating rounds of $n, median of the per-round medians (us):"
printf '  %-8s %10s %10s %10s\n' TLS none pinwarden extra
for v in 1.2 1.3; do
	a=$(tr ' ' '\n' <<<"${none[$v]}" | grep . | median)
	b=$(tr ' ' '\n' <<<"${pin[$v]}" | grep . | median)
	printf '  %-8s %10.1f %10.1f %+10.1f   (rounds: none %s| pinwarden %s)\n' "$v" "$a" "$b" \
		"$(awk -v a="$a" -v b="$b" 'BEGIN { print b - a }')" "${none[$v]}" "${pin[$v]}"
done
# prog_stats BEFORE AFTER HANDSHAKES: name, runs, runs per handshake, mean ns per run
prog_stats() {
	jq -rn --argjson a "$1" --argjson b "$2" --argjson hs "$3" '
	[$b[] | select(.name | test("^gnutls_")) | . as $p |
	 ([$a[] | select(.id == $p.id)][0] // {run_cnt: 0, run_time_ns: 0}) as $q |
	 {name, runs: ((.run_cnt // 0) - ($q.run_cnt // 0)),
	  ns: ((.run_time_ns // 0) - ($q.run_time_ns // 0))}] | .[] |
	"  \(.name)\t\(.runs)\t\(.runs / $hs)\t\(if .runs > 0 then (.ns / .runs | floor) else 0 end)"'
}
awk -v t="$timed_ticks" -v hz="$(getconf CLK_TCK)" -v hs=$((2 * n * rounds)) \
	'BEGIN { printf "daemon CPU (user+system, event log included): %.1f us per handshake\n", t / hz * 1e6 / hs }'
echo "BPF programs during $((2 * n)) handshakes, both ends GnuTLS: runs, per handshake, mean ns per run"
prog_stats "$stats_before" "$stats_after" $((2 * n))
echo "... during $nclient handshakes of the GnuTLS client alone (TLS 1.3, OpenSSL server):"
prog_stats "$stats_after" "$stats_client" "$nclient"
