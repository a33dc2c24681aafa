#!/bin/bash
# handshake-cost.sh [N] [ROUNDS]: what pinwarden's NSS probes add to one handshake.
#
# NSS's own stress client (strsclnt, one process, one thread, no session reuse:
# N full handshakes) against openssl s_server on 127.0.0.1 with the legitimate EC
# chain (leaf + intermediate), TLS 1.2 and 1.3; ROUNDS alternating rounds without
# the daemon, with it in audit (default policy) and with an enforcing policy that
# the chain matches. Prints the median time per handshake of each and the
# difference, then the per-program run time the kernel measured
# (kernel.bpf_stats_enabled=1). Holds the test lock; run as root from the tree.
set -euo pipefail

N=${1:-2000}
ROUNDS=${2:-5}
cd "$(dirname "$0")/../../.."
PW=$PWD/build/pinwarden
work=$(mktemp -d /tmp/pw-nss-bench.XXXXXX)
srv= pw=
cleanup() {
	[ -n "$pw" ] && kill -TERM "$pw" 2>/dev/null && { wait "$pw" 2>/dev/null || true; }
	[ -n "$srv" ] && kill "$srv" 2>/dev/null && { wait "$srv" 2>/dev/null || true; }
	rm -rf "$work"
}
trap cleanup EXIT

exec 8>>/run/lock/pinwarden-tests.lock
flock -w 1800 8

tests/fixtures/gen-pki.sh "$work/pki" >/dev/null
certutil -N -d "sql:$work/db" --empty-password 2>/dev/null || { mkdir -p "$work/db"; certutil -N -d "sql:$work/db" --empty-password; }
openssl s_server -accept 127.0.0.1:0 -cert "$work/pki/legit-ec/leaf.pem" \
	-cert_chain "$work/pki/legit-ec/int.pem" -key "$work/pki/legit-ec/leaf.key" -www -quiet \
	>"$work/server.log" 2>&1 </dev/null &
srv=$!
for _ in $(seq 50); do
	port=$(ss -ltnpH | awk -v p="pid=$srv," '$0 ~ p { sub(/.*:/, "", $4); print $4 }')
	[ -n "$port" ] && break
	sleep 0.1
done
printf 'mode: enforce\npinsets:\n  legit:\n    pins:\n      - %s\n      - %s\nrules:\n  - host: pin.test\n    pinset: legit\n' \
	"$(cat "$work/pki/legit-ec/int.spki")" "$(cat "$work/pki/backup.spki")" >"$work/policy.yaml"

# seconds for N handshakes
run_client() {
	local t0 t1
	t0=$(date +%s.%N)
	strsclnt -p "$port" -d "sql:$work/db" -c "$N" -t 1 -N -o -o -D -q -V "$1:$1" -a pin.test \
		127.0.0.1 >/dev/null 2>&1 || true
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}

daemon_start() {
	: >"$work/events.jsonl"
	"$PW" run --log "$work/events.jsonl" "$@" >/dev/null 2>"$work/daemon.err" &
	pw=$!
	until grep -q '"ready"' "$work/events.jsonl"; do sleep 0.1; done
}

daemon_stop() {
	kill -TERM "$pw"
	wait "$pw" || true
	pw=
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

old_stats=$(sysctl -n kernel.bpf_stats_enabled)
for v in tls1.2 tls1.3; do
	: >"$work/none" ; : >"$work/audit" ; : >"$work/enforce"
	run_client "$v" >/dev/null	# warm-up
	for r in $(seq "$ROUNDS"); do
		run_client "$v" >>"$work/none"
		daemon_start
		run_client "$v" >>"$work/audit"
		daemon_stop
		daemon_start --policy "$work/policy.yaml"
		sysctl -qw kernel.bpf_stats_enabled=1
		run_client "$v" >>"$work/enforce"
		bpftool -j prog show | jq -c '[.[] | select(.name | test("^nss_")) | {name, run_cnt, run_time_ns}]' \
			>"$work/stats.$v"
		sysctl -qw kernel.bpf_stats_enabled="$old_stats"
		daemon_stop
		chains=$(grep -c '"tls_chain"' "$work/events.jsonl" || true)
	done
	none=$(median <"$work/none")
	audit=$(median <"$work/audit")
	enforce=$(median <"$work/enforce")
	awk -v v="$v" -v n="$N" -v a="$none" -v b="$audit" -v c="$enforce" -v r="$ROUNDS" 'BEGIN {
		printf "%s, %d full handshakes x %d rounds (medians): none %.1f us, audit %.1f us (+%.1f us), enforce %.1f us (+%.1f us) per handshake\n",
			v, n, r, a / n * 1e6, b / n * 1e6, (b - a) / n * 1e6, c / n * 1e6, (c - a) / n * 1e6 }'
	echo "  chains judged in the last enforce round: $chains (of $N)"
	jq -r '.[] | "  \(.name): \(.run_cnt) runs, \((.run_time_ns / (.run_cnt | if . == 0 then 1 else . end)) | floor) ns per run"' \
		"$work/stats.$v"
done
