#!/bin/bash
# coverage.sh TARGET...: how much of the code under test each fuzz target's corpus
# reaches. Replays build/fuzz/corpus/TARGET and the committed seeds once through
# build/fuzz/cov/fuzz_TARGET (built with clang's source-based coverage), and prints
# line and branch coverage of the files that target tests, from llvm-cov.
set -euo pipefail

out=build/fuzz/cov
rc=0
for t in "$@"; do
	case $t in
	der) files=(include/der.h include/sha256.h include/siphash.h) ;;
	cert) files=(userspace/certcache.c) ;;
	json) files=(userspace/json.c) ;;
	policy) files=(userspace/policy.c) ;;
	*) echo "coverage: unknown target $t" >&2; exit 2 ;;
	esac
	mkdir -p "build/fuzz/corpus/$t"
	rm -f "$out/$t.profraw"
	if ! LLVM_PROFILE_FILE=$out/$t.profraw "$out/fuzz_$t" -runs=0 "build/fuzz/corpus/$t" \
		"tests/fuzz/corpus/$t" >"$out/$t.log" 2>&1; then
		echo "coverage: $t failed on its corpus; the end of $out/$t.log:" >&2
		tail -n 20 "$out/$t.log" >&2
		rc=1
		continue
	fi
	"${LLVM_PROFDATA:-llvm-profdata}" merge -o "$out/$t.profdata" "$out/$t.profraw"
	inputs=$(sed -n 's/.*INFO: seed corpus: files: \([0-9]*\).*/\1/p' "$out/$t.log")
	# the report's columns: regions, missed, cover, functions, missed, executed, lines,
	# missed, cover, branches, missed, cover
	"${LLVM_COV:-llvm-cov}" report "$out/fuzz_$t" -instr-profile="$out/$t.profdata" "${files[@]}" |
		awk -v t="$t" -v n="${inputs:-?}" '$1 ~ /\.[ch]$/ {
			sub(".*/", "", $1)
			printf "  COVER    %-7s %-12s lines %7s  branches %7s  (%s inputs)\n", t, $1, $10, $13, n
		}'
done
exit $rc
