#!/usr/bin/env bats
# Coverage an auditor can trust (issue 13): a TLS implementation pinwarden does not
# judge is reported when a process maps it, never passed over in silence. The
# stacks are Debian's own (tools/deps.d/coverage.txt): wolfSSL and Mbed TLS loaded
# by a real process, and a real JVM (its TLS is JSSE).

# shellcheck disable=SC2154
load helpers

setup() {
	requires bpf
	WOLFSSL=$(ldconfig -p | awk '/libwolfssl.so.35 .*x86-64/ { print $NF; exit }')
	MBEDTLS=$(ldconfig -p | awk '/libmbedtls.so.14 .*x86-64/ { print $NF; exit }')
	JAVA=$(command -v java || true)
}

teardown() {
	pw_teardown
}

# load_libs LIB...: a python process maps each library (dlopen), then exits 0
load_libs() {
	"$PYTHON" -c '
import ctypes, sys
for p in sys.argv[1:]:
    ctypes.CDLL(p)
print("loaded", len(sys.argv) - 1)
' "$@"
}

@test "a TLS stack pinwarden does not judge is reported once per file, with its family and the reason; the process runs on; metrics and status count it" {
	[ -n "$WOLFSSL" ] || skip "libwolfssl35 is not installed (make deps)"
	[ -n "$MBEDTLS" ] || skip "libmbedtls14 is not installed (make deps)"
	local metrics=$BATS_TEST_TMPDIR/m.prom st=$BATS_TEST_TMPDIR/status.json ev wolf mbed
	wolf=$(readlink -f "$WOLFSSL")
	mbed=$(readlink -f "$MBEDTLS")
	pw_start --metrics "$metrics" --status "$st"
	# two processes map the same two files: each file is examined and reported once
	run load_libs "$WOLFSSL" "$MBEDTLS"
	[ "$status" -eq 0 ]
	[ "$output" = "loaded 2" ]
	run load_libs "$WOLFSSL" "$MBEDTLS"
	[ "$status" -eq 0 ]
	ev=$(events_wait ".event == \"library_uncovered\" and .path == \"$wolf\"" 20)
	echo "$ev"
	[ "$(event_field "$ev" .library)" = wolfssl ]
	[ "$(event_field "$ev" .reason)" = unsupported ]
	# the version the library's own strings give ("wolfSSL 5.5.4")
	[[ $(event_field "$ev" .version) =~ ^[0-9]+\.[0-9]+ ]]
	[[ $(event_field "$ev" .error) == *"exports wolfSSL_connect"* ]]
	[[ $(event_field "$ev" .error) == *"pinwarden does not judge it"* ]]
	# which file (device, inode), and which process mapped it first: python
	[ "$(event_field "$ev" .inode)" = "$(stat -c %i "$wolf")" ]
	[ "$(event_field "$ev" .device)" = "$(stat -c %d "$wolf")" ]
	[[ $(event_field "$ev" .pid) =~ ^[1-9][0-9]*$ ]]
	[ "$(event_field "$ev" .exe)" = "$(readlink -f "$PYTHON")" ]
	ev=$(events_wait ".event == \"library_uncovered\" and .path == \"$mbed\"" 20)
	echo "$ev"
	[ "$(event_field "$ev" .library)" = mbedtls ]
	[ "$(event_field "$ev" .reason)" = unsupported ]
	retry 30 0.1 grep -Eq '^pinwarden_libraries_uncovered\{library="wolfssl",reason="unsupported"\} 1$' "$metrics"
	retry 30 0.1 grep -Eq '^pinwarden_libraries_uncovered\{library="mbedtls",reason="unsupported"\} 1$' "$metrics"
	retry 30 0.1 bash -c "[ \$(jq .uncovered.unsupported '$st') -ge 2 ]"
	# status: by family, and file by file
	retry 30 0.1 bash -c "[ \$(jq .uncovered_by_library.wolfssl '$st') -eq 1 ]"
	[ "$(jq .uncovered_by_library.mbedtls "$st")" -eq 1 ]
	[ "$(jq --arg p "$wolf" '[.uncovered_files[] | select(.path == $p and .library == "wolfssl" and .reason == "unsupported")] | length' "$st")" -eq 1 ]
	# and once only, however many processes map them
	run load_libs "$WOLFSSL"
	[ "$status" -eq 0 ]
	sleep 1
	[ "$(_events_count ".event == \"library_uncovered\" and .path == \"$wolf\"")" -eq 1 ]
	[ "$(_events_count ".event == \"library_uncovered\" and .path == \"$mbed\"")" -eq 1 ]
	grep -q "wolfssl.*NOT covered (unsupported)" "$PW_ERR"
	pw_stop
}

@test "the ready event lists the files found at start that have no probes beside those attached" {
	[ -n "$WOLFSSL" ] || skip "libwolfssl35 is not installed (make deps)"
	local ev wolf n
	wolf=$(readlink -f "$WOLFSSL")
	# a process maps it before the daemon starts: the first look finds it
	"$PYTHON" -c 'import ctypes, sys, time; ctypes.CDLL(sys.argv[1]); print("up", flush=True); time.sleep(60)' "$WOLFSSL" >"$BATS_TEST_TMPDIR/holder.out" &
	echo $! >"$BATS_TEST_TMPDIR/holder.pid"
	retry 50 0.1 grep -q up "$BATS_TEST_TMPDIR/holder.out"
	pw_start
	ev=$(events_wait '.event == "ready"' 20)
	kill "$(cat "$BATS_TEST_TMPDIR/holder.pid")"
	echo "$ev" | jq -c '{libraries: [.libraries[].library], uncovered}'
	n=$(echo "$ev" | jq '.libraries | length')
	[ "$n" -ge 1 ]
	n=$(echo "$ev" | jq --arg p "$wolf" '[.uncovered[] | select(.path == $p and .library == "wolfssl")] | length')
	[ "$n" -eq 1 ]
	ev=$(events_wait ".event == \"library_uncovered\" and .path == \"$wolf\"" 20)
	[ "$(event_field "$ev" .pid)" = "$(cat "$BATS_TEST_TMPDIR/holder.pid")" ]
	pw_stop
}

@test "a JVM is reported: its TLS (JSSE) is not judged, and java runs on" {
	[ -n "$JAVA" ] || skip "no java (openjdk-17-jre-headless: make deps)"
	local ev jvm
	pw_start
	run "$JAVA" -version
	[ "$status" -eq 0 ]
	ev=$(events_wait '.event == "library_uncovered" and .library == "jsse"' 20)
	echo "$ev"
	jvm=$(event_field "$ev" .path)
	[[ $jvm == */lib/server/libjvm.so ]]
	[ "$(event_field "$ev" .reason)" = unsupported ]
	[[ $(event_field "$ev" .error) == *"its TLS is JSSE"* ]]
	pw_stop
}
