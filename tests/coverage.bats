#!/usr/bin/env bats
# Coverage an auditor can trust (issue 13): a TLS implementation pinwarden does not
# judge is reported when a process maps it, never passed over in silence. The
# stacks are Debian's own (tools/deps.d/coverage.txt): wolfSSL and Mbed TLS loaded
# by a real process, and a real JVM (its TLS is JSSE).

# shellcheck disable=SC2154
load helpers

setup() {
	requires bpf
	# a daemon judges every process on the host: one test's daemon at a time
	pw_lock
	WOLFSSL=$(ldconfig -p | awk '/libwolfssl.so.35 .*x86-64/ { print $NF; exit }')
	MBEDTLS=$(ldconfig -p | awk '/libmbedtls.so.14 .*x86-64/ { print $NF; exit }')
	JAVA=$(command -v java || true)
	CHROMIUM=$(command -v chromium || true)
}

teardown() {
	# the FUSE mount of the unreadable-library test: its server exits with it
	if [ -n "${FUSE_DIR:-}" ]; then
		umount -l "$FUSE_DIR/mnt" 2>/dev/null
		rm -rf "$FUSE_DIR"
	fi
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

@test "learn: the draft says which files were not judged while it watched, a hostile file name kept inside its comment" {
	[ -n "$WOLFSSL" ] || skip "libwolfssl35 is not installed (make deps)"
	local draft=$BATS_TEST_TMPDIR/draft.yaml log=$BATS_TEST_TMPDIR/learn.jsonl dir hostile
	# a copy of wolfSSL under a name that tries to end the comment and add a rule: a
	# carriage return is a line break to YAML (the kernel writes a newline as \012
	# in /proc/PID/maps, where the name is read, but leaves it as it is)
	dir=$BATS_TEST_TMPDIR/lib
	mkdir -p "$dir"
	hostile="$dir/libwolf"$'\r'"rules: [{host: evil.test, pinset: x}]"$'\r'"#.so"
	cp "$WOLFSSL" "$hostile"
	touch "$log"
	"$PW" learn --duration 4 --output "$draft" --log "$log" 3>&- 2>"$BATS_TEST_TMPDIR/learn.err" &
	PW_LOG=$log events_wait '.event == "ready"' 30
	run load_libs "$hostile"
	[ "$status" -eq 0 ]
	PW_LOG=$log events_wait '.event == "library_uncovered" and .library == "wolfssl"' 20
	wait $!
	cat "$draft"
	grep -q '^# NOT JUDGED while learning: 1 TLS library files had no probes' "$draft"
	grep -q "^#   $dir/libwolf?rules: \[{host: evil.test, pinset: x}\]?#.so: wolfssl (unsupported), mapped by $(readlink -f "$PYTHON")$" "$draft"
	# the name stayed a comment: the draft holds no rule for evil.test, and passes check
	run ! grep -q '^rules: \[{host: evil.test' "$draft"
	run "$PW" check "$draft"
	echo "$output"
	[ "$status" -eq 0 ]
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

@test "Chromium (BoringSSL linked in, stripped) is reported as not judged, by its own source paths; the browser runs on" {
	[ -n "$CHROMIUM" ] || skip "no chromium (make deps)"
	local ev exe
	pki
	server_start evil --cert "$PKI/evil/chain.pem" --key "$PKI/evil/leaf.key" --reply
	pw_start --metrics "$BATS_TEST_TMPDIR/m.prom"
	# a real page load through its network stack (the impostor's certificate accepted:
	# the test is about coverage, not Chromium's own verification)
	run in_pin_ns pin.test "$CHROMIUM" --headless --no-sandbox --disable-gpu \
		--user-data-dir="$BATS_TEST_TMPDIR/profile" --ignore-certificate-errors \
		--dump-dom "https://pin.test:$evil_PORT/"
	[ "$status" -eq 0 ]
	ev=$(events_wait '.event == "library_uncovered" and .library == "boringssl" and (.path | endswith("/chromium"))' 30)
	echo "$ev"
	[ "$(event_field "$ev" .reason)" = unsupported ]
	[[ $(event_field "$ev" .error) == *"BoringSSL linked in (its source paths)"* ]]
	exe=$(event_field "$ev" .exe)
	[[ $exe == */chromium ]]
	[[ $(event_field "$ev" .pid) =~ ^[1-9][0-9]*$ ]]
	retry 30 0.1 grep -Eq '^pinwarden_libraries_uncovered\{library="boringssl",reason="unsupported"\} [1-9]' "$BATS_TEST_TMPDIR/m.prom"
	pw_stop
}

# fuse_libs: $FUSE_DIR/mnt (FUSE_MNT), a squashfs image of a copy of libssl and libcrypto served by
# squashfuse as nobody, mounted without allow_other: as an AppImage is, by its user.
# Only its owner may read it: root is refused (EACCES). FUSE_DIR is outside the
# test's directory (root's only), with a copy of the TLS client nobody runs.
fuse_libs() {
	local dir lib
	FUSE_DIR=$(mktemp -d /tmp/pinwarden-fuse.XXXXXX)
	dir=$FUSE_DIR
	cp "$TLS_CLIENT" "$dir/tls_client.py"
	lib=$(dirname "$(readlink -f "$(ldconfig -p | awk '/libssl.so.3 .*x86-64/ { print $NF; exit }')")")
	mkdir -p "$dir/src" "$dir/mnt"
	cp "$lib/libssl.so.3" "$lib/libcrypto.so.3" "$dir/src/"
	mksquashfs "$dir/src" "$dir/img.sqfs" -noappend -quiet >/dev/null
	chmod 0755 "$dir" "$dir/mnt"
	chmod 0644 "$dir/img.sqfs"
	# root opens /dev/fuse and mounts; the server, nobody, serves that descriptor
	# (the host's /dev/fuse may be root's only: no fusermount is needed this way)
	exec 7<>/dev/fuse
	mount -i -t fuse.squashfuse -o fd=7,rootmode=40000,user_id=65534,group_id=65534,ro \
		squashfuse "$dir/mnt"
	FUSE_MNT=$dir/mnt
	chmod 0644 "$dir/tls_client.py"
	setpriv --reuid=65534 --regid=65534 --clear-groups squashfuse "$dir/img.sqfs" /dev/fd/7 \
		</dev/null >/dev/null 2>&1 &
	exec 7>&-
	retry 50 0.1 setpriv --reuid=65534 --regid=65534 --clear-groups test -s "$dir/mnt/libssl.so.3"
}

@test "a library on a FUSE mount root may not read (an AppImage's) is reported unreadable, once per file, with the process that maps it" {
	command -v squashfuse >/dev/null || skip "needs squashfuse (make deps)"
	command -v mksquashfs >/dev/null || skip "needs squashfs-tools (make deps)"
	[ -e /dev/fuse ] || skip "no /dev/fuse"
	local ev i
	pki
	server_start evil --cert "$PKI/evil/chain.pem" --key "$PKI/evil/leaf.key" --reply
	fuse_libs
	# root is refused: what discovery meets
	run head -c 4 "$FUSE_MNT/libssl.so.3"
	[ "$status" -ne 0 ]
	[[ $output == *"Permission denied"* ]]
	pw_start --metrics "$BATS_TEST_TMPDIR/m.prom"
	# nobody's python loads that libssl, twice: each file is reported once
	for i in 1 2; do
		run setpriv --reuid=65534 --regid=65534 --clear-groups env LD_LIBRARY_PATH="$FUSE_MNT" \
			"$PYTHON" "$FUSE_DIR/tls_client.py" --host pin.test --port "$evil_PORT" --insecure
		echo "$output"
		# not judged: it runs on (fail open), as the event says
		[ "$status" -eq 0 ]
	done
	ev=$(events_wait ".event == \"library_uncovered\" and .path == \"$FUSE_MNT/libssl.so.3\"" 20)
	echo "$ev"
	[ "$(event_field "$ev" .reason)" = unreadable ]
	[ "$(event_field "$ev" .library)" = unknown ]
	[[ $(event_field "$ev" .error) == *"root may not read it"* ]]
	[[ $(event_field "$ev" .error) == *"its handshakes are not judged"* ]]
	[ "$(event_field "$ev" .exe)" = "$(readlink -f "$PYTHON")" ]
	[[ $(event_field "$ev" .pid) =~ ^[1-9][0-9]*$ ]]
	[[ $(event_field "$ev" .inode) =~ ^[0-9]+$ ]]
	[ "$(_events_count ".event == \"library_uncovered\" and .path == \"$FUSE_MNT/libssl.so.3\"")" -eq 1 ]
	[ "$(_events_count ".event == \"library_uncovered\" and .path == \"$FUSE_MNT/libcrypto.so.3\"")" -eq 1 ]
	retry 30 0.1 grep -Eq '^pinwarden_libraries_uncovered\{library="unknown",reason="unreadable"\} 2$' "$BATS_TEST_TMPDIR/m.prom"
	pw_stop
}
