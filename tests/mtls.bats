#!/usr/bin/env bats
# Server side (mTLS): a local TLS server's received client certificates are judged by
# `side: server` rules keyed by the local port.

# shellcheck disable=SC2154
load helpers

setup() {
	requires bpf
	pki
	# the server trusts both client CAs: only the pins tell them apart
	cat "$PKI/legit-rsa/root.pem" "$PKI/evil/root.pem" >"$BATS_TEST_TMPDIR/client-cas.pem"
	server_start mtls --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" --reply \
		--client-ca "$BATS_TEST_TMPDIR/client-cas.pem"
	POLICY=$BATS_TEST_TMPDIR/policy.yaml
}

server_policy() {
	cat >"$POLICY" <<-EOF
		mode: $1
		pinsets:
		  clients: { pins: [ $(cat "$PKI/legit-rsa/int.spki"), $(cat "$PKI/backup.spki") ] }
		rules:
		  - side: server
		    port: $mtls_PORT
		    pinset: clients
	EOF
}

@test "mTLS audit: a pinned client matches, another CA's client mismatches, both reported from the server" {
	server_policy audit
	pw_start --policy "$POLICY"
	run tls_client --host pin.test --port "$mtls_PORT" --cafile "$PKI/legit-ec/root.pem" \
		--cert "$PKI/legit-rsa/chain.pem" --key "$PKI/legit-rsa/leaf.key" --secret good
	[ "$status" -eq 0 ]
	ev=$(events_wait '.event == "tls_chain" and .side == "server" and .verdict == "match"')
	[ "$(event_field "$ev" .pid)" -eq "$mtls_PID" ]
	[ "$(event_field "$ev" .local_port)" -eq "$mtls_PORT" ]
	[ "$(event_field "$ev" .rule)" = "server:$mtls_PORT" ]
	[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/legit-rsa/leaf.spki")" ]
	[ "$(event_field "$ev" '.chain[1].matched')" = true ]
	[[ $(event_field "$ev" .peer) == 127.0.0.1:* ]]
	run tls_client --host pin.test --port "$mtls_PORT" --cafile "$PKI/legit-ec/root.pem" \
		--cert "$PKI/evil/chain.pem" --key "$PKI/evil/leaf.key" --secret bad
	[ "$status" -eq 0 ]
	ev=$(events_wait '.event == "tls_chain" and .side == "server" and .verdict == "mismatch"')
	[ "$(event_field "$ev" .action)" = would-kill ]
	[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$(cat "$PKI/evil/leaf.spki")" ]
	# the client side of the same handshakes was judged too (unpinned: no client rule)
	events_wait '.event == "tls_chain" and .side == "client" and .verdict == "unpinned"'
}

@test "mTLS enforce: the server is stopped before it reads a byte from an unpinned client" {
	server_policy enforce
	pw_start --policy "$POLICY"
	run tls_client --host pin.test --port "$mtls_PORT" --cafile "$PKI/legit-ec/root.pem" \
		--cert "$PKI/legit-rsa/chain.pem" --key "$PKI/legit-rsa/leaf.key" --secret good
	[ "$status" -eq 0 ]
	grep -qx good "$mtls_RECORD"
	run tls_client --host pin.test --port "$mtls_PORT" --cafile "$PKI/legit-ec/root.pem" \
		--cert "$PKI/evil/chain.pem" --key "$PKI/evil/leaf.key" --secret bad
	# (in TLS 1.3 the client has already sent its data when the server judges it; the
	# server dies before reading any of it)
	ev=$(events_wait '.event == "tls_chain" and .side == "server" and .action == "killed"')
	[ "$(event_field "$ev" .pid)" -eq "$mtls_PID" ]
	! grep -q bad "$mtls_RECORD" || false
	# the action is kill: the server process is gone
	retry 50 0.1 bash -c "! kill -0 $mtls_PID 2>/dev/null"
}
