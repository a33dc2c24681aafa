#!/usr/bin/env bats
# The test infrastructure itself, without the daemon: the PKI fixtures, the TLS
# server and client, and the helpers the daemon suites rely on.

# server_start exports NAME_PORT, NAME_RECORD...; run sets $stderr
# shellcheck disable=SC2154

load helpers

setup() {
	pki
}

@test "gen-pki: every file is there and every certificate is valid from yesterday for 30 days" {
	local d n
	for d in legit-ec legit-rsa; do
		for n in root int leaf; do
			[ -s "$PKI/$d/$n.pem" ]
			[ -s "$PKI/$d/$n.key" ]
			[ -s "$PKI/$d/$n.spki" ]
			[ -s "$PKI/$d/$n.certsha" ]
		done
		[ "$(grep -c BEGIN "$PKI/$d/chain.pem")" -eq 2 ]
		[ "$(grep -c BEGIN "$PKI/$d/fullchain.pem")" -eq 3 ]
	done
	for n in root leaf; do
		[ -s "$PKI/evil/$n.pem" ]
		[ -s "$PKI/evil/$n.spki" ]
		[ -s "$PKI/evil/$n.certsha" ]
	done
	[ "$(grep -c BEGIN "$PKI/evil/chain.pem")" -eq 1 ]
	[ "$(grep -c BEGIN "$PKI/evil/fullchain.pem")" -eq 2 ]
	[ -s "$PKI/backup.spki" ]

	local now nb na
	now=$(date +%s)
	for f in "$PKI"/*/*.pem; do
		[[ $f == */chain.pem || $f == */fullchain.pem ]] && continue
		nb=$(date -d "$(openssl x509 -in "$f" -noout -startdate | cut -d= -f2)" +%s)
		na=$(date -d "$(openssl x509 -in "$f" -noout -enddate | cut -d= -f2)" +%s)
		# notBefore about a day ago, notAfter about 30 days ahead
		[ $((now - nb)) -gt 80000 ]
		[ $((now - nb)) -lt 90000 ]
		[ $((na - now)) -gt $((30 * 86400 - 3600)) ]
		[ $((na - now)) -le $((30 * 86400)) ]
	done
}

@test "gen-pki: the legit chains verify against their root, the evil leaf does not" {
	local d
	for d in legit-ec legit-rsa; do
		run openssl verify -CAfile "$PKI/$d/root.pem" -untrusted "$PKI/$d/int.pem" "$PKI/$d/leaf.pem"
		[ "$status" -eq 0 ]
		# without the intermediate the leaf does not chain to the root
		run openssl verify -CAfile "$PKI/$d/root.pem" "$PKI/$d/leaf.pem"
		[ "$status" -ne 0 ]
		run openssl verify -CAfile "$PKI/$d/root.pem" -untrusted "$PKI/$d/int.pem" "$PKI/evil/leaf.pem"
		[ "$status" -ne 0 ]
		[[ $output == *"unable to get local issuer certificate"* ]]
	done
	run openssl verify -CAfile "$PKI/evil/root.pem" "$PKI/evil/leaf.pem"
	[ "$status" -eq 0 ]
	# the impostor looks like the real leaf: same subject, same names
	[ "$(openssl x509 -in "$PKI/evil/leaf.pem" -noout -subject)" = \
		"$(openssl x509 -in "$PKI/legit-ec/leaf.pem" -noout -subject)" ]
	local want="DNS:pin.test, DNS:*.pin.test, DNS:*.a.pin.test, DNS:other.test,"
	want+=" DNS:a.b.c.pin.test, IP Address:127.0.0.1"
	for d in legit-ec legit-rsa evil; do
		run openssl x509 -in "$PKI/$d/leaf.pem" -noout -ext subjectAltName
		[ "${lines[1]// /}" = "${want// /}" ]
	done
	[[ $(openssl x509 -in "$PKI/legit-rsa/leaf.pem" -noout -text) == *"Public-Key: (2048 bit)"* ]]
	[[ $(openssl x509 -in "$PKI/legit-ec/leaf.pem" -noout -text) == *"NIST CURVE: P-256"* ]]
}

@test "gen-pki: the pins agree with an independent computation (python hashlib, own DER walk)" {
	"$PYTHON" - "$PKI" <<-'EOF'
		import base64, hashlib, pathlib, ssl, sys

		def tlv(der, off):
		    """(header length, value length) of the TLV at off"""
		    n = der[off + 1]
		    if n < 0x80:
		        return 2, n
		    k = n & 0x7F
		    return 2 + k, int.from_bytes(der[off + 2:off + 2 + k], "big")

		def spki(der):
		    h, _ = tlv(der, 0)            # Certificate
		    pos = h
		    h, _ = tlv(der, pos)          # tbsCertificate
		    pos += h
		    if der[pos] == 0xA0:          # [0] version
		        h, v = tlv(der, pos); pos += h + v
		    for _ in range(5):            # serial, signature, issuer, validity, subject
		        h, v = tlv(der, pos); pos += h + v
		    assert der[pos] == 0x30
		    h, v = tlv(der, pos)
		    return der[pos:pos + h + v]

		root = pathlib.Path(sys.argv[1])
		checked = 0
		for d in ("legit-ec", "legit-rsa", "evil"):
		    for n in ("root", "int", "leaf"):
		        pem = root / d / f"{n}.pem"
		        if not pem.exists():
		            continue
		        der = ssl.PEM_cert_to_DER_cert(pem.read_text())
		        want_cert = hashlib.sha256(der).hexdigest()
		        want_spki = "sha256/" + base64.b64encode(hashlib.sha256(spki(der)).digest()).decode()
		        got_cert = (root / d / f"{n}.certsha").read_text().strip()
		        got_spki = (root / d / f"{n}.spki").read_text().strip()
		        assert got_cert == want_cert, (pem, got_cert, want_cert)
		        assert got_spki == want_spki, (pem, got_spki, want_spki)
		        checked += 1
		assert checked == 8, checked
		pins = [p.read_text().strip() for p in root.glob("*/*.spki")]
		pins.append((root / "backup.spki").read_text().strip())
		assert len(set(pins)) == len(pins) == 9, pins
		assert len(base64.b64decode(pins[-1][len("sha256/"):], validate=True)) == 32
	EOF
	# and each leaf's pin is the one of the key the server will hold
	local d
	for d in legit-ec legit-rsa evil; do
		[ "sha256/$(openssl pkey -in "$PKI/$d/leaf.key" -pubout -outform der |
			openssl dgst -sha256 -binary | base64)" = "$(cat "$PKI/$d/leaf.spki")" ]
	done
}

@test "server: curl and tls_client reach it through the legit EC and RSA chains" {
	local d
	for d in ec rsa; do
		server_start "legit_$d" --cert "$PKI/legit-$d/chain.pem" --key "$PKI/legit-$d/leaf.key" --reply
	done
	for d in ec rsa; do
		local port_var=legit_${d}_PORT
		run curl_pin pin.test "${!port_var}" --cacert "$PKI/legit-$d/root.pem"
		[ "$status" -eq 0 ]
		[ "$output" = ok ]
		# a wildcard name from the SAN list
		run curl_pin x.a.pin.test "${!port_var}" --cacert "$PKI/legit-$d/root.pem"
		[ "$status" -eq 0 ]
		[ "$output" = ok ]
		run tls_client --host pin.test --port "${!port_var}" --cafile "$PKI/legit-$d/root.pem"
		[ "$status" -eq 0 ]
		[ "$output" = ok ]
	done
	grep -q "sni=x.a.pin.test" "$legit_ec_LOG"
}

@test "server: verification against the wrong root fails, and the server receives 0 bytes" {
	server_start evil --cert "$PKI/evil/chain.pem" --key "$PKI/evil/leaf.key" --reply
	run curl_pin pin.test "$evil_PORT" --cacert "$PKI/legit-ec/root.pem"
	[ "$status" -eq 60 ] # CURLE_PEER_FAILED_VERIFICATION
	run tls_client --host pin.test --port "$evil_PORT" --cafile "$PKI/legit-ec/root.pem"
	[ "$status" -eq 1 ]
	[[ $output == *"certificate verification failed"* ]]
	[ -e "$evil_RECORD" ]
	[ "$(stat -c %s "$evil_RECORD")" -eq 0 ]
	# a name outside the SAN list fails too
	server_start legit --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" --reply
	run tls_client --host b.a.b.pin.test --port "$legit_PORT" --cafile "$PKI/legit-ec/root.pem"
	[ "$status" -eq 1 ]
	[[ $output == *"Hostname mismatch"* ]]
}

@test "server: the record file holds exactly the bytes the client sent" {
	server_start legit --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" --reply
	local secret="pw-secret-$RANDOM-$$"
	run tls_client --host pin.test --port "$legit_PORT" --cafile "$PKI/legit-ec/root.pem" \
		--secret "$secret"
	[ "$status" -eq 0 ]
	[ "$output" = ok ]
	# the server records before it replies: the record is complete once the client has its reply
	[ "$(cat "$legit_RECORD")" = "$secret" ]
	run tls_client --host pin.test --port "$legit_PORT" --cafile "$PKI/legit-ec/root.pem" \
		--connections 3
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 3 ]
	[ "$(cat "$legit_RECORD")" = "${secret}SECRETSECRETSECRET" ]
	# curl's HTTP request is recorded too
	curl_pin pin.test "$legit_PORT" --cacert "$PKI/legit-ec/root.pem"
	grep -q "SECRETGET / HTTP/1.1" "$legit_RECORD"
}

@test "server: TLS 1.2 and 1.3 both work and can be forced" {
	local v
	for v in 1.2 1.3; do
		server_start "tls${v/./}" --cert "$PKI/legit-rsa/chain.pem" --key "$PKI/legit-rsa/leaf.key" \
			--reply --tls "$v"
		local port_var=tls${v/./}_PORT
		run --separate-stderr tls_client --host pin.test --port "${!port_var}" \
			--cafile "$PKI/legit-rsa/root.pem" -v
		[ "$status" -eq 0 ]
		[ "$output" = ok ]
		[[ $stderr == *"TLSv$v "* ]]
		run curl_pin pin.test "${!port_var}" --cacert "$PKI/legit-rsa/root.pem" --tlsv"$v" --tls-max "$v"
		[ "$status" -eq 0 ]
		[ "$output" = ok ]
	done
	# a client that insists on the other version is refused
	run tls_client --host pin.test --port "$tls12_PORT" --cafile "$PKI/legit-rsa/root.pem" --tls 1.3
	[ "$status" -eq 1 ]
	[[ $output == *"TLS handshake"*"failed"* ]]
	run tls_client --host pin.test --port "$tls13_PORT" --cafile "$PKI/legit-rsa/root.pem" --tls 1.2
	[ "$status" -eq 1 ]
}

@test "server: clients dying mid-handshake leave it running" {
	server_start legit --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" --reply
	run tls_client --host pin.test --port "$legit_PORT" --cafile "$PKI/legit-ec/root.pem" \
		--abort-handshake
	[ "$status" -eq 0 ]
	# garbage instead of a ClientHello; a connection closed without a word
	printf 'not TLS at all\r\n' | timeout 5 bash -c "cat > /dev/tcp/127.0.0.1/$legit_PORT"
	timeout 5 bash -c "exec 5<>/dev/tcp/127.0.0.1/$legit_PORT; exec 5>&-"
	kill -0 "$legit_PID"
	run tls_client --host pin.test --port "$legit_PORT" --cafile "$PKI/legit-ec/root.pem"
	[ "$status" -eq 0 ]
	[ "$output" = ok ]
	grep -q "handshake failed" "$legit_LOG"
	[ "$(stat -c %s "$legit_RECORD")" -eq 6 ] # only the last client's SECRET
}

@test "server: mTLS with --client-ca requires a client certificate from that CA" {
	server_start mtls --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" --reply \
		--client-ca "$PKI/legit-rsa/root.pem"
	run tls_client --host pin.test --port "$mtls_PORT" --cafile "$PKI/legit-ec/root.pem" \
		--cert "$PKI/legit-rsa/chain.pem" --key "$PKI/legit-rsa/leaf.key"
	[ "$status" -eq 0 ]
	[ "$output" = ok ]
	run tls_client --host pin.test --port "$mtls_PORT" --cafile "$PKI/legit-ec/root.pem" \
		--cert "$PKI/evil/chain.pem" --key "$PKI/evil/leaf.key"
	[ "$status" -ne 0 ]
	run tls_client --host pin.test --port "$mtls_PORT" --cafile "$PKI/legit-ec/root.pem"
	[ "$status" -ne 0 ]
	[ "$(cat "$mtls_RECORD")" = SECRET ]
}

@test "server: exits 0 on SIGTERM and server_stop reports it" {
	server_start legit --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key"
	local pid=$legit_PID
	# not through run: only this shell can wait for its children
	server_stop legit
	run ! kill -0 "$pid"
	grep -q stopped "$legit_LOG"
}

@test "server_start fails, with the server's log, when the server cannot start" {
	run server_start broken --cert /nonexistent.pem --key "$PKI/legit-ec/leaf.key"
	[ "$status" -ne 0 ]
	[[ $output == *"did not start"*"No such file"* ]]
}

# A stand-in for the daemon, to test pw_start/pw_stop without it.
fake_daemon() {
	PW=$BATS_TEST_TMPDIR/fake-pinwarden
	cat >"$PW" <<-EOF
		#!/bin/bash
		# fake-pinwarden run --log FILE ...
		if [ "\$1" != run ] || [ "\$2" != --log ]; then exit 2; fi
		echo "fake daemon: \$*" >&2
		$1
		trap 'echo "{\"time\":\"now\",\"event\":\"bye\"}" >>"\$3"; exit 0' TERM
		echo '{"time":"now","event":"ready","libraries":[]}' >>"\$3"
		while :; do sleep 0.05; done
	EOF
	chmod +x "$PW"
}

@test "helpers: pw_start waits for ready, pw_stop stops that pid with status 0" {
	fake_daemon
	pw_start --policy /dev/null
	local pid=$PW_PID
	kill -0 "$pid"
	grep -q -- "--policy /dev/null" "$BATS_TEST_TMPDIR/daemon.err"
	run events_wait '.event == "ready"' 1
	[ "$status" -eq 0 ]
	[ "$(event_field "$output" .event)" = ready ]
	[ "$(event_field "$output" libraries)" = "[]" ]
	pw_stop
	run ! kill -0 "$pid"
	events_wait '.event == "bye"' 1
	events_lint
	# a second start waits for a new ready event, not the old one
	pw_start
	[ "$(grep -c '"ready"' "$PW_LOG")" -eq 2 ]
}

@test "helpers: pw_start fails with the daemon's stderr when it dies before ready" {
	fake_daemon 'echo "cannot attach: no libssl" >&2; exit 1'
	run pw_start
	[ "$status" -ne 0 ]
	[[ $output == *"exited with status 1"*"cannot attach: no libssl"* ]]
}

@test "helpers: pw_stop fails when the daemon exits non-zero on SIGTERM" {
	fake_daemon "trap 'exit 3' TERM; echo '{\"time\":\"now\",\"event\":\"ready\"}' >>\"\$3\"
		while :; do sleep 0.05; done"
	pw_start
	local rc=0
	# not through run: only this shell can wait for its children
	pw_stop 2>"$BATS_TEST_TMPDIR/stop.err" || rc=$?
	[ "$rc" -ne 0 ]
	grep -q "status 3" "$BATS_TEST_TMPDIR/stop.err"
	[ -z "$PW_PID" ]
}

@test "helpers: events_wait sees events written later, times out otherwise; retry retries" {
	PW_LOG=$BATS_TEST_TMPDIR/events.jsonl
	: >"$PW_LOG"
	(
		sleep 0.5
		printf '{"time":"t","event":"tls_chain","host":"pin.test","verdict":"mis' >>"$PW_LOG"
		sleep 0.3
		printf 'match"}\n{"time":"t","event":"tls_chain","host":"x","verdict":"match"}\n' >>"$PW_LOG"
	) 3>&- &
	run events_wait '.event == "tls_chain" and .host == "pin.test"' 5
	[ "$status" -eq 0 ]
	[ "$(event_field "$output" .verdict)" = mismatch ]
	wait
	run events_wait '.event == "nothing"' 1
	[ "$status" -eq 1 ]
	[[ $output == *"no event matching"* ]]
	printf 'not json\n' >>"$PW_LOG"
	run events_lint
	[ "$status" -eq 1 ]
	[[ $output == *"events.jsonl:3"* ]]

	local n=$BATS_TEST_TMPDIR/n
	echo 0 >"$n"
	third_time() { echo $(($(cat "$n") + 1)) >"$n"; [ "$(cat "$n")" -ge 3 ]; }
	retry 5 0.05 third_time
	[ "$(cat "$n")" -eq 3 ]
	run retry 2 0.05 false
	[ "$status" -eq 1 ]
}
