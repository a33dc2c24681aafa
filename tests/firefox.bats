#!/usr/bin/env bats
# Firefox ESR's own NSS (issue 13): Debian's firefox-esr ships a newer NSS than the
# system's (libssl3.so and libnss3.so in /usr/lib/firefox-esr, built by clang) and
# loads it beside the system's libnspr4.so. The real browser, headless, with a fresh
# profile whose NSS database trusts the legitimate test root, against real servers
# on 127.0.0.1; pin.test resolves there through a private /etc/hosts (in_pin_ns).
# Firefox verifies with its own code (mozilla::pkix, in its auth callback's worker
# thread), never with SSL_AuthCertificate: only leaf pins count (validation unknown).

# server_start exports NAME_PORT, NAME_RECORD...
# shellcheck disable=SC2154

load helpers

FIREFOX_DIR=/usr/lib/firefox-esr

setup() {
	requires bpf
	command -v firefox-esr >/dev/null || skip "needs firefox-esr (make deps)"
	[ -e "$FIREFOX_DIR/libssl3.so" ] || skip "this firefox-esr has no libssl3.so of its own"
	command -v certutil >/dev/null || skip "needs certutil (apt-get install libnss3-tools)"
	FIREFOX=$(readlink -f "$(command -v firefox-esr)")
	FF_PID=
	FF_WAIT=
	pki
	pin_test_servers
}

teardown() {
	local pid
	if [ -n "$FF_WAIT" ]; then
		[ -z "$FF_PID" ] || _stop_pid "$FF_PID" 5 || true
		_stop_pid "$FF_WAIT" 2 || true
		wait "$FF_WAIT" 2>/dev/null || true
	fi
	# whatever of this test's Firefox is left (content processes, crash helper)
	for pid in $(ff_pids); do
		kill -KILL "$pid" 2>/dev/null || true
	done
	pw_teardown
}

# The processes of this test's Firefox: they carry PW_FF_TAG in their environment.
ff_pids() {
	grep -lzsxF "PW_FF_TAG=$BATS_TEST_TMPDIR" /proc/[0-9]*/environ | cut -d/ -f3
}

ff_gone() {
	[ -z "$(ff_pids)" ]
}

# ff_profile: a fresh profile ($BATS_TEST_TMPDIR/profile) whose NSS database trusts the
# legitimate EC root, and with Firefox's own background connections turned off.
ff_profile() {
	PROFILE=$BATS_TEST_TMPDIR/profile
	rm -rf "$PROFILE"
	mkdir -p "$PROFILE" "$BATS_TEST_TMPDIR/home"
	certutil -N -d "sql:$PROFILE" --empty-password
	certutil -A -d "sql:$PROFILE" -n legit-ec -t C,, -i "$PKI/legit-ec/root.pem"
	cat >"$PROFILE/user.js" <<-'EOF'
		user_pref("app.update.enabled", false);
		user_pref("app.normandy.enabled", false);
		user_pref("browser.safebrowsing.downloads.remote.enabled", false);
		user_pref("browser.safebrowsing.malware.enabled", false);
		user_pref("browser.safebrowsing.phishing.enabled", false);
		user_pref("browser.shell.checkDefaultBrowser", false);
		user_pref("datareporting.policy.dataSubmissionEnabled", false);
		user_pref("network.captive-portal-service.enabled", false);
		user_pref("network.connectivity-service.enabled", false);
		user_pref("network.dns.disablePrefetch", true);
		user_pref("network.prefetch-next", false);
		user_pref("services.settings.server", "http://127.0.0.1:9/");
		user_pref("toolkit.telemetry.enabled", false);
	EOF
}

# firefox_shot PORT: Firefox loads https://pin.test:PORT/ and writes a screenshot of it,
# then exits (its status is ours: 137, killed). Used through `run`.
firefox_shot() {
	PW_FF_TAG=$BATS_TEST_TMPDIR HOME=$BATS_TEST_TMPDIR/home in_pin_ns pin.test firefox-esr --headless -no-remote \
		-profile "$PROFILE" --screenshot "$BATS_TEST_TMPDIR/shot.png" "https://pin.test:$1/" \
		</dev/null >>"$BATS_TEST_TMPDIR/firefox.log" 2>&1
}

# firefox_bg PORT: the same in the background, for a page that never finishes loading
# (Firefox's error page for an untrusted certificate). FF_WAIT: the pid to wait for;
# FF_PID: Firefox's main process (its one process that is no -contentproc).
firefox_bg() {
	firefox_shot "$1" &
	FF_WAIT=$!
	retry 100 0.05 _ff_main
}

_ff_main() {
	local pid
	for pid in $(ff_pids); do
		[ "$(readlink "/proc/$pid/exe")" = "$FIREFOX" ] || continue
		tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qx -- -contentproc && continue
		FF_PID=$pid
		return 0
	done
	return 1
}

# The last chain event of Firefox with the server on PORT.
ff_chain_event() {
	events_wait ".event == \"tls_chain\" and .exe == \"$FIREFOX\" and .peer == \"127.0.0.1:$1\"${2:+ and $2}" 30
}

@test "firefox: its own NSS is attached when it maps it, and a trusted server's chain is judged: the leaf's hashes, SNI, exact peer, validation unknown" {
	ff_profile
	pin_test_policy audit
	pw_start --policy "$POLICY"
	run firefox_shot "$legit_PORT"
	[ "$status" -eq 0 ]
	# Firefox trusted the server and asked for the page
	grep -q "^Host: pin.test:$legit_PORT" "$legit_RECORD"
	local ev
	ev=$(ff_chain_event "$legit_PORT")
	echo "$ev"
	[ "$(event_field "$ev" .library)" = nss ]
	[ "$(event_field "$ev" .side)" = client ]
	[ "$(event_field "$ev" .host)" = pin.test ]
	[ "$(event_field "$ev" .verdict)" = match ]
	[ "$(event_field "$ev" .mode)" = audit ]
	[ "$(event_field "$ev" .action)" = none ]
	# NSS's handshakes run on Firefox's socket thread, in its main process
	[ "$(event_field "$ev" .comm)" = "Socket Thread" ]
	# the peer from the NSPR socket (the system's libnspr4.so read), not a guess
	[ "$(event_field "$ev" '.notes // [] | length')" -eq 0 ]
	[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/legit-ec/leaf.spki")" ]
	[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(cat "$PKI/legit-ec/leaf.certsha")" ]
	[ "$(event_field "$ev" '.chain[0].matched')" = true ]
	# Firefox accepted the chain with its own verification: not read, only the leaf counts
	[ "$(event_field "$ev" .validation)" = unknown ]
	# its libssl3 and libnss3, found through the process, attached whole (the verdict
	# waits for its auth callback), never left uncovered
	grep -q "attached $FIREFOX_DIR/libssl3.so (nss)" "$PW_ERR"
	grep -q "attached $FIREFOX_DIR/libnss3.so (nss)" "$PW_ERR"
	run ! grep -q "NSS's verification is not read" "$PW_ERR"
	run ! grep -q "$FIREFOX_DIR/libssl3.so.*NOT covered" "$PW_ERR"
	[ "$(_events_count ".event == \"library_uncovered\" and (.path | startswith(\"$FIREFOX_DIR/\"))")" -eq 0 ]
	events_lint
	pw_stop
	# the daemon re-hashed every certificate with OpenSSL: no disagreement with the kernel
	run ! grep -q hash_disagreement "$PW_LOG"
}

@test "firefox audit: the impostor's chain for pin.test is a mismatch, reported with its leaf; Firefox runs on" {
	ff_profile
	pin_test_policy audit
	pw_start --policy "$POLICY"
	firefox_bg "$evil_PORT"
	local ev
	ev=$(ff_chain_event "$evil_PORT" '.verdict == "mismatch"')
	echo "$ev"
	[ "$(event_field "$ev" .library)" = nss ]
	[ "$(event_field "$ev" .host)" = pin.test ]
	[ "$(event_field "$ev" .action)" = would-kill ]
	[ "$(event_field "$ev" .pid)" -eq "$FF_PID" ]
	[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/evil/leaf.spki")" ]
	[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(cat "$PKI/evil/leaf.certsha")" ]
	# Firefox refused the unknown issuer itself: SSL_AuthCertificateComplete(fd,
	# SEC_ERROR_UNKNOWN_ISSUER)
	[ "$(event_field "$ev" .validation)" = unverified ]
	[ "$(event_field "$ev" .verify_error)" = "the application rejected the chain (NSS error -8179)" ]
	[ "$(event_field "$ev" '.report.hostname')" = pin.test ]
	[ "$(event_field "$ev" '.report.port')" -eq "$evil_PORT" ]
	# audit: Firefox lives on (its error page); it sent the impostor nothing
	kill -0 "$FF_PID"
	[ ! -s "$evil_RECORD" ]
	events_lint
}

@test "firefox enforce: the impostor kills Firefox's main process, whose socket thread holds the connection, before a byte; the real server is served" {
	ff_profile
	pin_test_policy enforce kill
	pw_start --policy "$POLICY"
	firefox_bg "$evil_PORT"
	local ev rc=0
	ev=$(ff_chain_event "$evil_PORT" '.verdict == "mismatch"')
	echo "$ev"
	[ "$(event_field "$ev" .action)" = killed ]
	[ "$(event_field "$ev" .pid)" -eq "$FF_PID" ]
	[ "$(event_field "$ev" .comm)" = "Socket Thread" ]
	# in_pin_ns's status is Firefox's: killed
	wait "$FF_WAIT" || rc=$?
	FF_WAIT=
	[ "$rc" -eq 137 ]
	[ ! -s "$evil_RECORD" ]
	# its content processes and crash helper go with it
	retry 50 0.1 ff_gone
	# the legitimate server, same policy: served
	ff_profile
	run firefox_shot "$legit_PORT"
	[ "$status" -eq 0 ]
	grep -q "^Host: pin.test:$legit_PORT" "$legit_RECORD"
	ev=$(ff_chain_event "$legit_PORT")
	[ "$(event_field "$ev" .verdict)" = match ]
	[ "$(event_field "$ev" .action)" = none ]
	events_lint
}
