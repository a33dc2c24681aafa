#!/bin/bash
# coverage-cost.sh [N]: what pinwarden's probes cost one handshake, for each stack of
# the coverage table that runs here: N handshakes (default 200), each by a new
# client process against openssl s_server on 127.0.0.1 with the legitimate EC chain
# (leaf + intermediate), under an enforcing policy the chain matches. Prints, per
# stack, the uprobe hits and their BPF run time per handshake (the TLS library's
# probes and the verdict), and the run time of the process hooks each new client
# process meets (exec, mmap, exit, connect: discovery and the gates), as the
# kernel measured them (kernel.bpf_stats_enabled, on for the run and restored
# after): the extra CPU pinwarden's kernel side takes per handshake. Uses the caches tests/containers.bats builds (skips a stack
# whose cache is missing). Holds the test lock; run as root from the tree.
set -euo pipefail

N=${1:-200}
cd "$(dirname "$0")/../.."
PW=$PWD/build/pinwarden
CACHE=${PW_TEST_CACHE:-/var/cache/pinwarden-tests}
work=$(mktemp -d /tmp/pw-cost.XXXXXX)
chmod 0755 "$work"
srv='' pw='' stats_was=''
cleanup() {
	[ -n "$pw" ] && kill -TERM "$pw" 2>/dev/null && { wait "$pw" 2>/dev/null || true; }
	[ -n "$srv" ] && kill "$srv" 2>/dev/null && { wait "$srv" 2>/dev/null || true; }
	[ -n "$stats_was" ] && sysctl -q kernel.bpf_stats_enabled="$stats_was"
	rm -rf "$work"
}
trap cleanup EXIT

exec 8>>/run/lock/pinwarden-tests.lock
flock -w 1800 8

tests/fixtures/gen-pki.sh "$work/pki" >/dev/null
cp "$work/pki/legit-ec/root.pem" "$work/root.pem"
printf '127.0.0.1 localhost\n127.0.0.1 pin.test\n' >"$work/hosts"
printf 'GET / HTTP/1.0\r\nHost: pin.test\r\n\r\n' >"$work/request"
chmod 0644 "$work"/*
openssl s_server -accept 127.0.0.1:0 -cert "$work/pki/legit-ec/leaf.pem" \
	-cert_chain "$work/pki/legit-ec/int.pem" -key "$work/pki/legit-ec/leaf.key" -www -quiet \
	>"$work/server.log" 2>&1 </dev/null &
srv=$!
port=
for _ in $(seq 50); do
	port=$(ss -ltnpH | awk -v p="pid=$srv," '$0 ~ p { sub(/.*:/, "", $4); print $4 }')
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "$port" ] || { echo "coverage-cost: s_server did not start" >&2; exit 1; }
printf 'mode: enforce\npinsets:\n  legit:\n    pins:\n      - %s\n      - %s\nrules:\n  - host: pin.test\n    pinset: legit\n' \
	"$(cat "$work/pki/legit-ec/leaf.spki")" "$(cat "$work/pki/backup.spki")" >"$work/policy.yaml"

# in ROOT CMD...: CMD chrooted in ROOT (its /tmp ours, pin.test at 127.0.0.1)
in_root() {
	# shellcheck disable=SC2016
	unshare --mount sh -c 'root=$1 w=$2
		shift 2
		mount --bind "$w" "$root/tmp" && mount --bind "$w/hosts" "$root/etc/hosts" &&
		exec chroot "$root" "$@"' sh "$1" "$work" "${@:2}"
}

# the stacks: a label, then the client command (PORT replaced)
stacks=(
	"OpenSSL 3.0 (host, curl)|curl -so /dev/null --resolve pin.test:PORT:127.0.0.1 --cacert $work/root.pem https://pin.test:PORT/"
	"GnuTLS 3.7.9 (host, gnutls-cli)|gnutls-cli --x509cafile $work/root.pem -p PORT --sni-hostname pin.test 127.0.0.1 --logfile /dev/null </dev/null"
	"NSS 3.87 (host, tstclnt)|tstclnt -h 127.0.0.1 -p PORT -a pin.test -o -D -A $work/request"
)
if [ -d "$CACHE/rootfs/bullseye" ]; then
	r=$CACHE/rootfs/bullseye
	stacks+=("OpenSSL 1.1.1w (Debian 11, curl)|in_root $r curl -so /dev/null --cacert /tmp/root.pem https://pin.test:PORT/"
		"GnuTLS 3.7.1 (Debian 11, gnutls-cli)|in_root $r sh -c 'gnutls-cli --x509cafile /tmp/root.pem -p PORT pin.test </tmp/request >/dev/null'"
		"NSS 3.61 (Debian 11, tstclnt)|in_root $r tstclnt -h 127.0.0.1 -p PORT -a pin.test -o -D -A /tmp/request")
fi
if [ -d "$CACHE/rootfs/trixie" ]; then
	r=$CACHE/rootfs/trixie
	stacks+=("OpenSSL 3.5 (Debian 13, curl)|in_root $r curl -so /dev/null --cacert /tmp/root.pem https://pin.test:PORT/"
		"GnuTLS 3.8.9 (Debian 13, gnutls-cli)|in_root $r sh -c 'gnutls-cli --x509cafile /tmp/root.pem -p PORT pin.test </tmp/request >/dev/null'"
		"NSS 3.110 (Debian 13, tstclnt)|in_root $r tstclnt -h 127.0.0.1 -p PORT -a pin.test -o -D -A /tmp/request")
fi
[ -x "$CACHE/musl-openssl/bin/client" ] &&
	stacks+=("OpenSSL 3.0 for musl (musl client)|$CACHE/musl-openssl/bin/client pin.test PORT $work/root.pem")

# the run count and run time (ns) of every program the daemon loaded: those that
# were not there before it started (bpftool here cannot name a program's owner)
bpf_totals() {
	bpftool prog show --json | jq -r --argjson old "$old_ids" \
		'[.[] | select(.id as $i | $old | index($i) | not)] | (map(select(.type == "kprobe"))) as $u |
		 (map(select(.type != "kprobe"))) as $o |
		 "\($u | map(.run_cnt // 0) | add // 0) \($u | map(.run_time_ns // 0) | add // 0) \($o | map(.run_time_ns // 0) | add // 0)"'
}

stats_was=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -q kernel.bpf_stats_enabled=1
old_ids=$(bpftool prog show --json | jq -c '[.[].id]')
: >"$work/events.jsonl"
"$PW" run --policy "$work/policy.yaml" --log "$work/events.jsonl" --dedup 0 >/dev/null 2>"$work/daemon.err" &
pw=$!
until grep -q '"ready"' "$work/events.jsonl"; do sleep 0.1; done
printf '%-40s %9s %13s %15s %17s\n' stack verdicts "uprobe hits" "uprobe us/hs" "process us/hs"
for s in "${stacks[@]}"; do
	label=${s%%|*}
	cmd=${s#*|}
	cmd=${cmd//PORT/$port}
	# one first: the files examined and attached, not part of the measure
	eval "$cmd" >/dev/null 2>&1 || true
	sleep 0.5
	before=$(grep -c '"tls_chain"' "$work/events.jsonl" || true)
	read -r c0 t0 o0 < <(bpf_totals)
	for _ in $(seq "$N"); do
		eval "$cmd" >/dev/null 2>&1 || true
	done
	read -r c1 t1 o1 < <(bpf_totals)
	sleep 0.5
	after=$(grep -c '"tls_chain"' "$work/events.jsonl" || true)
	printf '%-40s %9s %13.1f %15.1f %17.1f\n' "$label" "$((after - before))/$N" \
		"$(echo "($c1 - $c0) / $N" | bc -l)" "$(echo "($t1 - $t0) / $N / 1000" | bc -l)" \
		"$(echo "($o1 - $o0) / $N / 1000" | bc -l)"
done
