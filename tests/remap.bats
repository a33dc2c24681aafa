#!/usr/bin/env bats
# Attach what was examined, and only that. An unprivileged user owns the processes
# discovery looks into, and can map another file over a range the daemon is
# examining; a file can be rewritten in place under the same inode. Where the
# kernel put breakpoints is read from outside: tests/tools/remap/mapcmp maps a file
# whole and compares it with its bytes (every uprobe on its inode shows as an int3),
# and every uprobe link of the daemon (its fdinfo, or bpftool perf) must name one of
# the daemon's own descriptors of a file it lists as attached.

# shellcheck disable=SC2154
load helpers

RT=$BATS_TEST_DIRNAME/tools/remap

setup() {
	requires bpf
	pki
	MAPCMP=$BATS_FILE_TMPDIR/mapcmp
	[ -x "$MAPCMP" ] || cc -O2 -Wall -Werror -o "$MAPCMP" "$RT/mapcmp.c"
	LIBDIR=$(dirname "$(readlink -f "$(ldconfig -p | awk '/libssl.so.3 .*x86-64/ { print $NF; exit }')")")
	LIBC=$(readlink -f "$(ldd /bin/true | awk '/libc.so/ { print $3 }')")
	# a directory an unprivileged user can reach and write (BATS_TEST_TMPDIR may not be)
	UDIR=$(mktemp -d /tmp/pw-remap.XXXXXX)
	chmod 0755 "$UDIR"
}

teardown() {
	rm -rf "$UDIR"
	pw_teardown
}

# "INODE OFFSET" for each uprobe (or uretprobe) the daemon holds, its file found
# through the daemon's own descriptor; "BAD NAME" for one not placed through one.
# uprobe_multi links name their file as the kernel resolved it (fdinfo's path, from
# the daemon's root): it must be the name of one of the daemon's own descriptors.
# Perf event uprobes (kernels without uprobe_multi) name the path they were given,
# which must be /proc/self/fd/N.
daemon_uprobes() {
	local fd f off tgt
	local -A ino_of=()
	for fd in /proc/"$PW_PID"/fd/*; do
		tgt=$(readlink "$fd") || continue
		[[ $tgt == /* ]] || continue
		ino_of[$tgt]=$(stat -L -c %i "$fd" 2>/dev/null) || unset "ino_of[$tgt]"
	done
	for fd in /proc/"$PW_PID"/fdinfo/*; do
		grep -Eq '^link_type:[[:space:]]*u(ret)?probe_multi' "$fd" 2>/dev/null || continue
		f=$(sed -n 's/^path:\t//p' "$fd")
		awk 'h { print $2 } /^cookie/ { h = 1 }' "$fd" | while read -r off; do
			if [ -n "${ino_of[$f]:-}" ]; then
				echo "${ino_of[$f]} $((off))"
			else
				echo "BAD $f"
			fi
		done
	done
	bpftool perf -j | jq -r --argjson p "$PW_PID" \
		'.[] | select(.pid == $p and (.fd_type == "uprobe" or .fd_type == "uretprobe")) |
		"\(.filename) \(.offset)"' |
		while read -r f off; do
			if [[ $f =~ ^/proc/self/fd/([0-9]+)$ ]]; then
				echo "$(stat -L -c %i "/proc/$PW_PID/fd/${BASH_REMATCH[1]}") $off"
			else
				echo "BAD $f"
			fi
		done
}

# inodes of the files status.json lists as attached
attached_inodes() {
	jq -r '.libraries[].inode' "$STATUS"
}

@test "the remap race: an unprivileged user flips a crafted 'OpenSSL' and a root-owned file over one range; no probe lands outside the examined file" {
	STATUS=$BATS_TEST_TMPDIR/status.json
	local remap=$UDIR/remap crafted=$UDIR/crafted.so trigger=$UDIR/trigger.so
	local decoy=$UDIR/decoy.so libc_before out ino
	cc -O2 -Wall -Werror -o "$remap" "$RT/remap.c"
	cc -shared -fPIC -O2 -Wall -Werror -o "$crafted" "$RT/crafted.c" -lcrypto
	cc -shared -fPIC -O2 -Wall -Werror -o "$trigger" "$BATS_TEST_DIRNAME/tools/hostsafety/freshlib.c"
	# the target: a root-owned copy of libc (libc itself would take the host down
	# with a daemon that has this bug: its offsets land in the dynamic symbol table)
	cp "$LIBC" "$decoy"
	chmod 0644 "$decoy"
	mkdir "$UDIR/work"
	chown nobody:nogroup "$UDIR/work"
	libc_before=$("$MAPCMP" "$LIBC")
	pw_start --status "$STATUS"
	run setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$remap" "$UDIR/work" "$crafted" "$decoy" "$trigger" 40
	echo "# $output, remapped: $(jq .discovery.remapped "$STATUS")" >&3
	[ "$status" -eq 0 ]
	[[ $output =~ ^flips\ [1-9][0-9]*$ ]]
	kill -0 "$PW_PID"
	sleep 1.2	# a status file written after the last examination
	# the copy mapped without flips was examined and attached, and the breakpoints
	# the daemon placed in it are seen here: the detector works
	ino=$(stat -c %i "$UDIR/work/crafted0.so")
	jq -e --argjson i "$ino" '.libraries[] | select(.inode == $i and .library == "openssl")' "$STATUS"
	[ "$("$MAPCMP" "$UDIR/work/crafted0.so")" -gt 0 ]
	# none in the file mapped over the range, none in libc
	[ "$("$MAPCMP" "$decoy")" -eq 0 ]
	[ "$("$MAPCMP" "$LIBC")" -eq "$libc_before" ]
	# every probe through a descriptor of a file the daemon examined and attached
	out=$(daemon_uprobes)
	[ -n "$out" ]
	! grep -q BAD <<<"$out" || false
	[ -z "$(comm -23 <(cut -d' ' -f1 <<<"$out" | sort -u) <(attached_inodes | sort -u))" ]
	! grep -qw "^$(stat -c %i "$decoy")" <<<"$out" || false
	! grep -qw "^$(stat -c %i "$LIBC")" <<<"$out" || false
}

@test "files rewritten in place: a known non-TLS file turned libssl is examined again; an attached one is detached, reported and attached as what it is now" {
	STATUS=$BATS_TEST_TMPDIR/status.json
	pin_test_servers
	pin_test_policy enforce
	local dir=$UDIR/lib ino probes
	mkdir "$dir"
	cp "$LIBDIR/libcrypto.so.3" "$dir/"
	# libssl.so.3 here is first an empty library, loaded (so examined) by a process
	cc -shared -fPIC -O2 -Wall -Werror -o "$dir/libssl.so.3" "$BATS_TEST_DIRNAME/tools/hostsafety/freshlib.c"
	ino=$(stat -c %i "$dir/libssl.so.3")
	pw_start --policy "$POLICY" --status "$STATUS"
	"$PYTHON" -c 'import ctypes, sys, time; ctypes.CDLL(sys.argv[1]); time.sleep(0.5)' "$dir/libssl.so.3"
	retry 20 0.1 bash -c "bpftool -j map dump name known_files | jq -e '.[] | select(.formatted.key.ino == $ino)'"
	# rewritten in place (same inode, as cp does over an existing file): a libssl now
	cat "$LIBDIR/libssl.so.3" >"$dir/libssl.so.3"
	[ "$(stat -c %i "$dir/libssl.so.3")" -eq "$ino" ]
	run env LD_LIBRARY_PATH="$dir" "$PYTHON" "$TLS_CLIENT" --host pin.test --port "$evil_PORT" --insecure
	[ "$status" -eq 137 ]
	[ ! -s "$evil_RECORD" ]
	retry 20 0.1 jq -e --argjson i "$ino" '.libraries[] | select(.inode == $i and .library == "openssl")' "$STATUS"
	# the attached file rewritten in place as another TLS library: its probes go,
	# an event says so, and it is probed as GnuTLS at GnuTLS's offsets only
	cat "$LIBDIR/libgnutls.so.30" >"$dir/libssl.so.3"
	events_wait ".event == \"library_changed\" and .inode == $ino and .library == \"openssl\" and .attached == \"gnutls\"" 5
	retry 20 0.1 jq -e --argjson i "$ino" '.libraries[] | select(.inode == $i and .library == "gnutls")' "$STATUS"
	probes=$(jq --argjson i "$ino" '.libraries[] | select(.inode == $i) | .probes' "$STATUS")
	[ "$probes" -gt 0 ]
	[ "$(daemon_uprobes | awk -v i="$ino" '$1 == i' | wc -l)" -eq "$probes" ]
	# where the breakpoints are is exactly where the daemon's probes on it are (a
	# function's entry and return probes share one)
	diff <(daemon_uprobes | awk -v i="$ino" '$1 == i { print $2 }' | sort -nu) \
		<("$MAPCMP" -v "$dir/libssl.so.3" | sort -n)
	[ "$(jq .discovery.libraries_changed "$STATUS")" -ge 1 ]
	events_lint
}

@test "a user's process that maps a root-owned libssl beside a libcrypto of its own does not choose where the daemon reads libcrypto's offsets" {
	pin_test_servers
	# only the intermediate is pinned: the verdict needs the chain OpenSSL verified,
	# read at offsets taken from the libcrypto beside the libssl
	pin_int_policy enforce kill
	local sys=$UDIR/sys own=$UDIR/own tool=$UDIR/companion trigger=$UDIR/trigger.so ev
	# a root-owned copy of the system's OpenSSL, seen by no other process
	mkdir -m 0755 "$sys"
	cp "$LIBDIR/libssl.so.3" "$LIBDIR/libcrypto.so.3" "$sys/"
	chmod 0644 "$sys"/*
	# the user's own "libcrypto.so.3": an empty library (no offsets in it)
	mkdir "$own"
	cc -shared -fPIC -O2 -Wall -Werror -o "$own/libcrypto.so.3" "$BATS_TEST_DIRNAME/tools/hostsafety/freshlib.c"
	cc -shared -fPIC -O2 -Wall -Werror -o "$trigger" "$BATS_TEST_DIRNAME/tools/hostsafety/freshlib.c"
	cc -O2 -Wall -Werror -o "$tool" "$RT/companion.c" -ldl
	chown -R nobody:nogroup "$own"
	STATUS=$BATS_TEST_TMPDIR/status.json
	pw_start --policy "$POLICY" --status "$STATUS"
	# the user's process is the first to map that libssl: the daemon examines it there
	run setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$tool" "$sys/libssl.so.3" "$own/libcrypto.so.3" "$trigger" 2
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = mapped ]
	retry 30 0.1 jq -e --arg p "$sys/libssl.so.3" '.libraries[] | select(.path == $p)' "$STATUS"
	run grep "only leaf pins count" "$PW_ERR"
	echo "$output"
	[ "$status" -eq 1 ]
	# root's client of that libssl: the chain OpenSSL verified is read, the pinned
	# intermediate in it counts
	run env LD_LIBRARY_PATH="$sys" "$PYTHON" "$TLS_CLIENT" --host pin.test --port "$legit_PORT" \
		--cafile "$PKI/legit-ec/root.pem" --secret companion-secret
	echo "$output"
	[ "$status" -eq 0 ]
	ev=$(events_wait ".event == \"tls_chain\" and .peer == \"127.0.0.1:$legit_PORT\"")
	echo "$ev" | jq -c '{verdict, validation, action}'
	echo "$ev" | jq -e '.verdict == "match" and .validation == "verified"'
	grep -q companion-secret "$legit_RECORD"
}

@test "inode reuse: a file examined as not TLS, deleted, its inode number taken by a libssl: examined again and attached before its first handshake" {
	pin_test_servers
	pin_test_policy enforce
	STATUS=$BATS_TEST_TMPDIR/status.json
	local dir=$UDIR/reuse ino i f=''
	mkdir "$dir"
	cc -shared -fPIC -O2 -Wall -Werror -o "$dir/plain.so" "$BATS_TEST_DIRNAME/tools/hostsafety/freshlib.c"
	ino=$(stat -c %i "$dir/plain.so")
	pw_start --policy "$POLICY" --status "$STATUS"
	# examined (loaded by a process): known to the kernel as a file with no TLS in it
	"$PYTHON" -c 'import ctypes, sys, time; ctypes.CDLL(sys.argv[1]); time.sleep(0.3)' "$dir/plain.so"
	retry 20 0.1 bash -c "bpftool -j map dump name known_files | jq -e '.[] | select(.formatted.key.ino == $ino)'"
	# the daemon done with it (no descriptor of it left), deleted: the file system
	# hands its inode number to the next new file
	retry 50 0.1 bash -c "! ls -l /proc/$PW_PID/fd | grep -qF '$dir/plain.so'"
	rm "$dir/plain.so"
	for i in $(seq 200); do
		: >"$dir/f$i"
		if [ "$(stat -c %i "$dir/f$i")" -eq "$ino" ]; then
			f=$dir/f$i
			break
		fi
	done
	[ -n "$f" ] || skip "the file system did not reuse inode $ino within 200 new files"
	cat "$LIBDIR/libssl.so.3" >"$f"
	mv "$f" "$dir/libssl.so.3"
	cp "$LIBDIR/libcrypto.so.3" "$dir/"
	[ "$(stat -c %i "$dir/libssl.so.3")" -eq "$ino" ]
	# the same (device, inode) as the known non-TLS file: a new file all the same
	run env LD_LIBRARY_PATH="$dir" "$PYTHON" "$TLS_CLIENT" --host pin.test --port "$evil_PORT" --insecure
	[ "$status" -eq 137 ]
	[ ! -s "$evil_RECORD" ]
	retry 20 0.1 jq -e --argjson i "$ino" '.libraries[] | select(.inode == $i and .library == "openssl")' "$STATUS"
}
