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
nice make -C "$DIR/src" -j"$(nproc)" build/pinwarden >"$DIR/build.log" 2>&1 ||
	die "cannot build $commit (see $DIR/build.log)"

PW=$DIR/src/build/pinwarden BENCH_PARTS=hs BENCH_RESULTS=$DIR BENCH_OUT=$DIR/BENCHMARKS.md \
	BENCH_LABEL="$commit ($(git -C "$ROOT" log -1 --format='%cs: %s' "$commit" | cut -c1-80))" \
	BENCH_BEFORE='' exec "$ROOT/tests/bench/run.sh"
