#!/bin/bash
# run.sh SECONDS TARGET...: run each libFuzzer target (build/fuzz/fuzz_TARGET) for
# SECONDS, one after another. New inputs go to build/fuzz/corpus/TARGET (the
# committed seeds in tests/fuzz/corpus/TARGET are read, never written); a crash
# leaves its input in build/fuzz/artifacts/ and fails the run. Prints libFuzzer's
# final figures per target: executions, coverage (cov: edges covered of the
# instrumented edges: the target, include/ and the userspace files it links;
# OpenSSL, libyaml and jansson are not instrumented), ft: features, corpus.
set -uo pipefail

secs=$1
shift
out=build/fuzz
mkdir -p "$out/artifacts"
rc=0
for t in "$@"; do
	bin=$out/fuzz_$t
	log=$out/$t.log
	args=(-max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
		-artifact_prefix="$out/artifacts/$t-")
	case $t in
	policy) args+=(-dict=tests/fuzz/policy.dict -max_len=4096) ;;
	der | cert) args+=(-max_len=8192) ;;
	json) args+=(-max_len=1024) ;;
	esac
	mkdir -p "$out/corpus/$t"
	if "$bin" "${args[@]}" "$out/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
		status=ok
	else
		status=FAILED
		rc=1
	fi
	# the last status line carries cov/ft/corp; the final stats the executions
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	edges=$(sed -n 's/.*(\([0-9]*\) inline 8-bit counters).*/\1/p' "$log" | head -n 1)
	printf '  FUZZ     %-7s %-6s %6s s  %10s execs  cov %s/%-6s ft %-6s corpus %s\n' "$t" "$status" \
		"$secs" "${execs:-?}" "$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")" "${edges:-?}" \
		"$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")" \
		"$(sed -n 's/.*corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")"
	if [ "$status" = FAILED ]; then
		echo "fuzz: $t failed; the end of $log:" >&2
		tail -n 40 "$log" >&2
	fi
done
exit $rc
