#!/bin/bash
# tests/bench/before.sh: `make bench-before`. The handshake rounds of `make bench`
# (BENCH_PARTS=hs), the same script and load, on the binary of an earlier commit:
# BENCH_BEFORE_REV, default b0d3b03, main before issue 11 (the OpenSSL verdict taken at
# X509_STORE_CTX_set_default on every presented certificate, not yet on the chain OpenSSL
# verified). Its source is exported with `git archive` into build/bench-before/src and built
# there; results in build/bench-before (results.tsv, meta.env, BENCHMARKS.md). Then
#   make bench BENCH_BEFORE=build/bench-before
# sets that run's BPF run time per handshake, program by program, beside this tree's.
# BENCH_QUICK, BENCH_ROUNDS, BENCH_HS_SECONDS, BENCH_KEEP pass through to run.sh.
#
# A kernel whose verifier refuses some of the older commit's programs (6.18.44 builds
# count bpf_loop callbacks' frames in the 512-byte stack: b0d3b03's gnutls_verify and
# go_verify reach 592) would leave no before at all. The older daemon is built with one
# change: programs named in PW_NOLOAD (comma-separated) are not loaded. Which ones the
# kernel refuses is found here by starting that daemon until it loads; the report's label
# names them. The OpenSSL probes this comparison is about must all load, or it fails.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REV=${BENCH_BEFORE_REV:-b0d3b03}
DIR=$ROOT/build/bench-before

die() {
	printf 'bench-before: FAILED: %s\n' "$*" >&2
	exit 1
}

commit=$(git -C "$ROOT" rev-parse --short "$REV^{commit}") || die "no commit $REV here"
echo "== building $commit in $DIR/src"
rm -rf "$DIR"
mkdir -p "$DIR/src"
git -C "$ROOT" archive "$commit" | tar -x -C "$DIR/src"
# the one change: PW_NOLOAD, just before the skeleton is loaded
"${PYTHON:-python3}" - "$DIR/src/userspace/daemon.c" <<'PY' || die "cannot add PW_NOLOAD to $commit's daemon.c"
import sys
p = sys.argv[1]
s = open(p).read()
old = "\terr = pinwarden_bpf__load(d.skel);"
if s.count(old) != 1:
    sys.exit(1)
s = s.replace(old, """\t{\t/* bench-before: programs this kernel refuses, left out (PW_NOLOAD) */
\t\tconst char *nl = getenv("PW_NOLOAD");
\t\tstruct bpf_program *pr;
\t\tchar want[128], list[1024];

\t\tsnprintf(list, sizeof(list), ",%s,", nl ? nl : "");
\t\tbpf_object__for_each_program(pr, d.skel->obj) {
\t\t\tsnprintf(want, sizeof(want), ",%s,", bpf_program__name(pr));
\t\t\tif (strstr(list, want))
\t\t\t\tbpf_program__set_autoload(pr, false);
\t\t}
\t}
""" + old)
open(p, "w").write(s)
PY
nice make -C "$DIR/src" -j"$(nproc)" build/pinwarden >"$DIR/build.log" 2>&1 ||
	die "cannot build $commit (see $DIR/build.log)"

# which programs this kernel refuses: start the older daemon until it loads (under the
# tests' lock, as run.sh: every daemon judges every process on the host)
try_load() { # prints the first "failed to load" line, or nothing once it was ready
	local pid i
	rm -f "$DIR/load.jsonl"
	"$DIR/src/build/pinwarden" run -v -v --log "$DIR/load.jsonl" --status "$DIR/load-status.json" \
		>"$DIR/load.err" 2>&1 3>&- &
	pid=$!
	for ((i = 0; i < 600; i++)); do
		grep -q '"event":"ready"' "$DIR/load.jsonl" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	grep -m1 "failed to load: " "$DIR/load.err" || true
}
exec 8>>"${PW_TEST_LOCK:-/run/lock/pinwarden-tests.lock}"
flock -w 1800 8 || die "the tests' lock is held"
export PW_NOLOAD=
for ((i = 0; i < 16; i++)); do
	out=$(try_load)
	[ -z "$out" ] && break
	prog=$(sed -n "s/^libbpf: prog '\([A-Za-z0-9_]*\)'.*/\1/p" <<<"$out")
	[ -n "$prog" ] || die "$commit's daemon does not load here: $out"
	case $prog in ossl_* | pw_*) die "$commit's $prog does not load here: no OpenSSL before" ;; esac
	echo "   $commit's $prog is refused by this kernel's verifier: left out"
	PW_NOLOAD=${PW_NOLOAD:+$PW_NOLOAD,}$prog
done
grep -q '"event":"ready"' "$DIR/load.jsonl" 2>/dev/null || die "$commit's daemon never became ready"
label="$commit ($(git -C "$ROOT" log -1 --format='%cs: %s' "$commit" | cut -c1-80))"
[ -n "$PW_NOLOAD" ] && label="$label; not loaded on this kernel: ${PW_NOLOAD//,/, }"
exec 8>&-	# run.sh takes the lock itself

PW=$DIR/src/build/pinwarden BENCH_PARTS=hs BENCH_RESULTS=$DIR BENCH_OUT=$DIR/BENCHMARKS.md \
	BENCH_LABEL="$label" BENCH_BEFORE='' exec "$ROOT/tests/bench/run.sh"
