#!/bin/bash
# boringssl-node.sh [HANDSHAKES] [ROUNDS]: what the BoringSSL and node probes add to a
# handshake. Full TLS 1.3 handshakes (verified, no resumption) in a loop, from the
# BoringSSL test client and from node, against pwbench's C server on 127.0.0.1, in
# three configurations, rotated over ROUNDS rounds (medians reported):
#   off    no daemon
#   base   the daemon with only what it finds itself (libssl.so.3: the server's side)
#   full   the daemon with --attach of BoringSSL's libssl and of node: the difference
#          full - base is what these probes cost the client
# then the per-program run counts and run time (kernel.bpf_stats_enabled=1), and the
# time --attach takes for each file. Holds the host-wide test lock; needs root.
set -euo pipefail

N=${1:-1000}
ROUNDS=${2:-5}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PW=$ROOT/build/pinwarden
BSSL_INC=${BSSL_INC:-/usr/include/android}
BSSL_LIBDIR=${BSSL_LIBDIR:-/usr/lib/x86_64-linux-gnu/android}
NODE=$(readlink -f "$(command -v node)")
WORK=$(mktemp -d /var/tmp/pw-bench-boring.XXXXXX)
SERVER_PID=''
PW_PID=

die() {
	echo "boringssl-node: $*" >&2
	exit 1
}

cleanup() {
	[ -n "$PW_PID" ] && kill -TERM "$PW_PID" 2>/dev/null && wait "$PW_PID" 2>/dev/null
	[ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || die "needs root"
[ -x "$PW" ] || die "build first: make"
exec 8>>/run/lock/pinwarden-tests.lock
flock -w 1800 8 || die "the test lock is held elsewhere"

"$ROOT/tests/fixtures/gen-pki.sh" "$WORK/pki" >/dev/null
BCFLAGS="-O2 -Wall -Wextra -Wno-unused-parameter -Werror -std=gnu11 -D_GNU_SOURCE"
read -r -a SSL_FLAGS <<<"$(pkg-config --cflags --libs libssl libcrypto)"
# shellcheck disable=SC2086
gcc $BCFLAGS "$ROOT/tests/bench/pwbench.c" -o "$WORK/pwbench" "${SSL_FLAGS[@]}"
gcc -O2 -I"$BSSL_INC" -o "$WORK/bssl_client" "$ROOT/tests/tools/boringssl/client.c" \
	-L"$BSSL_LIBDIR" -Wl,-rpath,"$BSSL_LIBDIR" -lssl -lcrypto
BSSL_LIB=$(ldd "$WORK/bssl_client" | awk '$1 == "libssl.so.0" { print $3 }')
ATTACH=(--attach "$BSSL_LIB")
# (not `nm | grep -q`: grep's early exit fails nm under pipefail)
nm -D --defined-only "$NODE" >"$WORK/node.syms"
grep -qw tls_process_server_certificate "$WORK/node.syms" && ATTACH+=(--attach "$NODE")

"$WORK/pwbench" server --cert "$WORK/pki/legit-ec/chain.pem" --key "$WORK/pki/legit-ec/leaf.key" \
	--workers 1 >"$WORK/server.out" &
SERVER_PID=$!
until grep -q port= "$WORK/server.out" 2>/dev/null; do sleep 0.05; done
PORT=$(sed -n 's/port=//p' "$WORK/server.out")
CA=$WORK/pki/legit-ec/root.pem

daemon_start() {
	: >"$WORK/events.jsonl"
	"$PW" run --log "$WORK/events.jsonl" --status "$WORK/status.json" "$@" 2>"$WORK/daemon.err" &
	PW_PID=$!
	until grep -q '"ready"' "$WORK/events.jsonl"; do
		kill -0 "$PW_PID" 2>/dev/null || die "the daemon died: $(cat "$WORK/daemon.err")"
		sleep 0.05
	done
}

daemon_stop() {
	kill -TERM "$PW_PID"
	wait "$PW_PID"
	PW_PID=
}

# us_per_handshake CLIENT: "WALL CPU", microseconds per handshake of N sequential
# handshakes: elapsed, and the client's CPU time (user + system: a uprobe's cost is
# charged to the process that hits it, and CPU time is less disturbed by whatever
# else the host runs than elapsed time)
us_per_handshake() {
	local cmd
	case $1 in
	bssl) cmd=("$WORK/bssl_client" --host pin.test --port "$PORT" --cafile "$CA" --tls 1.3
		--connections "$N" --handshake-only) ;;
	node) cmd=("$NODE" "$ROOT/tests/tools/node/client.js" --host pin.test --port "$PORT"
		--cafile "$CA" --tls 1.3 --connections "$N" --handshake-only) ;;
	esac
	python3 - "$N" "${cmd[@]}" <<-'EOF'
		import resource, subprocess, sys, time
		n = int(sys.argv[1])
		t = time.monotonic()
		subprocess.run(sys.argv[2:], check=True)
		wall = time.monotonic() - t
		r = resource.getrusage(resource.RUSAGE_CHILDREN)
		print(round(wall * 1e6 / n, 1), round((r.ru_utime + r.ru_stime) * 1e6 / n, 1))
	EOF
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "== $N full TLS 1.3 handshakes per run, $ROUNDS rounds, configurations rotated"
configs=(off base full)
for r in $(seq "$ROUNDS"); do
	for k in 0 1 2; do
		c=${configs[$(((r + k) % 3))]}
		case $c in
		base) daemon_start ;;
		full) daemon_start "${ATTACH[@]}" ;;
		esac
		for cl in bssl node; do
			us_per_handshake "$cl" >>"$WORK/$c.$cl"
		done
		[ "$c" = off ] || daemon_stop
	done
	echo "round $r (µs per handshake, wall/cpu): $(for c in off base full; do
		printf '%s bssl=%s node=%s  ' "$c" "$(tail -n 1 "$WORK/$c.bssl" | tr ' ' /)" \
			"$(tail -n 1 "$WORK/$c.node" | tr ' ' /)"
	done)"
done
echo "== medians (µs per handshake); 'these probes' = full - base, 'daemon' = full - off"
for cl in bssl node; do
	for col in 1 2; do
		what=$([ "$col" = 1 ] && echo "elapsed" || echo "client CPU")
		off=$(cut -d' ' -f"$col" "$WORK/off.$cl" | median)
		base=$(cut -d' ' -f"$col" "$WORK/base.$cl" | median)
		full=$(cut -d' ' -f"$col" "$WORK/full.$cl" | median)
		echo "$cl $what: off $off  base $base  full $full  -> these probes: $(echo "$full - $base" | bc)  daemon: $(echo "$full - $off" | bc)"
	done
done

echo "== per-program run time (kernel.bpf_stats_enabled=1), $N handshakes per client"
old=$(sysctl -n kernel.bpf_stats_enabled)
daemon_start -v "${ATTACH[@]}"
grep -- '--attach' "$WORK/daemon.err" | sed 's/^pinwarden: debug: /attach time: /'
sysctl -qw kernel.bpf_stats_enabled=1
for cl in bssl node; do
	bpftool -j prog show | jq -c '[.[] | select(.name | test("^(bssl|ossl)_")) | {name, run_cnt: (.run_cnt // 0), run_time_ns: (.run_time_ns // 0)}]' >"$WORK/before.json"
	us_per_handshake "$cl" >/dev/null
	bpftool -j prog show | jq -c '[.[] | select(.name | test("^(bssl|ossl)_")) | {name, run_cnt: (.run_cnt // 0), run_time_ns: (.run_time_ns // 0)}]' >"$WORK/after.json"
	echo "-- $cl client (ossl_ lines include the server's libssl.so.3 probes)"
	jq -rn --slurpfile b "$WORK/before.json" --slurpfile a "$WORK/after.json" --argjson n "$N" '
		[$a[0][] as $x | ($b[0][] | select(.name == $x.name)) as $y |
		 {name: $x.name, runs: ($x.run_cnt - $y.run_cnt), ns: ($x.run_time_ns - $y.run_time_ns)}
		 | select(.runs > 0)] |
		(.[] | "\(.name)\t\(.runs / $n) runs/handshake\t\(if .runs > 0 then (.ns / .runs | floor) else 0 end) ns/run"),
		"total\t\((map(.ns) | add) / $n / 1000 | . * 10 | floor / 10) µs of BPF per handshake"'
done
sysctl -qw kernel.bpf_stats_enabled="$old"
daemon_stop
