#!/usr/bin/env bats
# Hostile peers: what a server can put in its Certificate message, against the real
# daemon and real OpenSSL clients (curl, python3, openssl s_client) on 127.0.0.1.
#
# Certificates the openssl CLI will not make come from tools/mkcert.c (compiled here);
# bytes no TLS library would send (garbage, truncated or BER-encoded DER) from
# tools/raw_tls_server.py, a TLS 1.2 server that presents any bytes as certificates.
# Every test ends with the same checks: the daemon still runs and still judges a
# normal handshake, and every line it logged is one JSON object (valid UTF-8, no raw
# control character).

# server_start exports NAME_PORT, NAME_RECORD...; run sets $status and $output
# shellcheck disable=SC2154

load helpers

RAW_SERVER=$TOOLS/raw_tls_server.py
CLIENTS=(curl python3 openssl)

setup() {
	requires bpf
	pki
	MKCERT=$BATS_FILE_TMPDIR/mkcert
	if [ ! -x "$MKCERT" ]; then
		cc -O2 -Wall -Werror -o "$MKCERT.tmp" "$TOOLS/mkcert.c" -lcrypto
		mv "$MKCERT.tmp" "$MKCERT"
	fi
	D=$BATS_TEST_TMPDIR
	server_start legit --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" --reply
}

teardown() {
	# whatever a test did, the daemon must stop cleanly (pw_stop: exit 0 on SIGTERM)
	pw_teardown
}

# ---- helpers ----

# hexf FORMAT: printf FORMAT (escapes such as \0 and \xff allowed) as hex, for mkcert
hexf() {
	# shellcheck disable=SC2059
	printf "$1" | xxd -p | tr -d '\n'
}

spki_of() {
	echo "sha256/$(openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform der |
		openssl dgst -sha256 -binary | base64)"
}

certsha_of() {
	openssl x509 -in "$1" -outform der | sha256sum | cut -d' ' -f1
}

der_of() {
	openssl x509 -in "$1" -outform der -out "$2"
}

newkey() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# policy PINSETS RULES: an enforcing policy (YAML lines for pinsets: and rules:) with,
# always, ok.test pinned to the legit chain: the health check's rule
policy() {
	POLICY=$D/policy.yaml
	cat >"$POLICY" <<-EOF
		mode: enforce
		pinsets:
		  legit: { pins: [ $(cat "$PKI/legit-ec/leaf.spki"), $(cat "$PKI/legit-ec/int.spki"), $(cat "$PKI/backup.spki") ] }
		  backup: { pins: [ $(cat "$PKI/backup.spki") ] }
		$1
		rules:
		  - host: ok.test
		    pinset: legit
		$2
	EOF
	chmod 0644 "$POLICY"
}

# serve_own NAME LEAF KEY: serve LEAF and the legit intermediate as server NAME, and
# start the daemon with pin.test pinned to LEAF's own key and int.pin.test to the
# intermediate (both enforced), audit.pin.test to LEAF's key in audit mode
serve_own() {
	cat "$2" "$PKI/legit-ec/int.pem" >"$D/$1-chain.pem"
	server_start "$1" --cert "$D/$1-chain.pem" --key "$3" --reply
	policy "  own: { pins: [ $(spki_of "$2"), $(cat "$PKI/backup.spki") ] }" "
  - { host: pin.test, pinset: own }
  - { host: int.pin.test, pinset: legit }
  - { host: audit.pin.test, pinset: own, mode: audit }"
	pw_start --policy "$POLICY"
}

# hs CLIENT HOST PORT: one handshake without verification (the careless client pinning
# protects: only a leaf pin counts for it), then a request; the client's exit status
# (137: killed by the daemon). With HS_CA set, the client verifies against that CA
# file instead (then the chain it verifies counts too).
hs() {
	local curl_v=(-k) py_v=(--insecure) ossl_v=()
	if [ -n "${HS_CA:-}" ]; then
		curl_v=(--cacert "$HS_CA")
		py_v=(--cafile "$HS_CA")
		ossl_v=(-CAfile "$HS_CA" -verify_return_error)
	fi
	case $1 in
	curl) curl_pin "$2" "$3" "${curl_v[@]}" ;;
	python3) tls_client --host "$2" --port "$3" "${py_v[@]}" ;;
	openssl)
		local out rc=0
		out=$(printf 'GET / HTTP/1.0\r\n\r\n' |
			openssl s_client -connect "127.0.0.1:$3" -servername "$2" -quiet -ign_eof \
				"${ossl_v[@]}" 2>&1) || rc=$?
		printf '%s\n' "$out"
		# s_client exits 1 when the server closes without close_notify: the reply counts
		if [ "$rc" -eq 1 ] && [[ $out == *"HTTP/1.1 200 OK"* ]]; then
			rc=0
		fi
		return $rc
		;;
	esac
}

# requests FILE: how many requests a server recorded (curl and s_client send "GET /",
# tls_client.py "SECRET")
requests() {
	grep -o -e 'GET /' -e SECRET "$1" | wc -l
}

# judged FILTER N: wait until more than N tls_chain events match FILTER; print the last
judged() {
	local f=".event == \"tls_chain\" and ($1)"
	retry 100 0.1 events_count_ge $(($2 + 1)) "$f" || return 1
	_events_select "$f" | tail -n 1
}

# judge CLIENT HOST PORT: one handshake (hs, through run: $status, $output), then the
# tls_chain event it caused, in $ev
judge() {
	local f before
	f="$(at "$3") and .host == \"$2\""
	before=$(chains "$f")
	run hs "$@"
	ev=$(judged "$f" "$before")
}

chains() {
	_events_count ".event == \"tls_chain\" and ($1)"
}

# at PORT: the filter of the events about connections to 127.0.0.1:PORT
at() {
	echo ".peer == \"127.0.0.1:$1\""
}

# alive: the daemon runs, still judges (ok.test matches and the client gets its reply),
# and its whole log is well-formed
alive() {
	kill -0 "$PW_PID"
	local n ev
	n=$(chains '.host == "ok.test"')
	[ "$(curl_pin ok.test "$legit_PORT" -k)" = ok ]
	ev=$(judged '.host == "ok.test"' "$n")
	[ "$(event_field "$ev" .verdict)" = match ]
	[ "$(event_field "$ev" .action)" = none ]
	events_strict
}

# events_strict: every line of the log is one JSON object with time and event, the file
# is valid UTF-8 with no raw control character but the newlines and no raw U+2028/2029
events_strict() {
	events_lint
	"$PYTHON" - "$PW_LOG" <<-'EOF'
		import json, re, sys
		raw = open(sys.argv[1], "rb").read()
		text = raw.decode("utf-8")              # strict: raises on invalid UTF-8
		bad = re.search("[\x00-\x09\x0b-\x1f\x7f\u2028\u2029]", text)
		assert not bad, f"raw {bad.group()!r} at {bad.start()}"
		assert text.endswith("\n"), "the last line is unterminated"
		for n, line in enumerate(text.split("\n")[:-1], 1):
		    ev = json.loads(line)
		    assert isinstance(ev, dict) and "time" in ev and "event" in ev, f"line {n}"
	EOF
}

# fail_closed EVENT: a chain the kernel could not judge, under enforce, with no match
fail_closed() {
	[ "$(event_field "$1" .verdict)" = mismatch ]
	[ "$(event_field "$1" .mode)" = enforce ]
	[ "$(event_field "$1" .action)" = killed ]
	[ "$(event_field "$1" .reason)" = "chain could not be judged in full: failed closed" ]
	[ "$(event_field "$1" '.errors | length')" -ge 1 ]
}

# only_alerts FILE: what a client sent after the hostile server's flight: TLS alert
# records only (the handshake never completed, no application data)
only_alerts() {
	"$PYTHON" - "$1" <<-'EOF'
		import sys
		b = open(sys.argv[1], "rb").read()
		off = 0
		while off < len(b):
		    assert b[off] == 21, f"record type {b[off]} at {off}: not an alert"
		    off += 5 + int.from_bytes(b[off + 3:off + 5], "big")
		assert off == len(b), "a partial record"
	EOF
}

# metric_ge NAME MIN: the daemon's --metrics file ($D/metrics) has NAME >= MIN
metric_ge() {
	awk -v n="$1" -v min="$2" '$1 == n && $2 >= min { ok = 1 } END { exit !ok }' "$D/metrics"
}

# raw_start NAME DER...: the hostile TLS 1.2 server presenting these files as its chain
raw_start() {
	local name=$1 f args=()
	shift
	for f in "$@"; do
		args+=(--der "$f")
	done
	TLS_SERVER=$RAW_SERVER server_start "$name" "${args[@]}"
}

# ---- tests ----

@test "chains of 1 to 20 certificates: every one judged in order; the deepest one's pin counts only as the leaf; an unpinned chain is killed" {
	# root -> i1 -> ... -> i19 -> leaf; a chain of n is the leaf and the n - 1 nearest
	local i n prev spki=() pinsets="" rules=""
	newkey "$D/k0.key"
	"$MKCERT" --key "$D/k0.key" --cn "$(hexf 'hostile root')" --ca --out "$D/c0.pem" >/dev/null
	for i in $(seq 1 20); do
		newkey "$D/k$i.key"
		prev=$((i - 1))
		if [ "$i" -lt 20 ]; then
			"$MKCERT" --key "$D/k$i.key" --issuer-cert "$D/c$prev.pem" --issuer-key "$D/k$prev.key" \
				--cn "$(hexf "hostile intermediate $i")" --ca --serial "$i" --out "$D/c$i.pem" >/dev/null
		else
			"$MKCERT" --key "$D/k$i.key" --issuer-cert "$D/c$prev.pem" --issuer-key "$D/k$prev.key" \
				--cn "$(hexf pin.test)" --dns "$(hexf '*.pin.test')" --serial "$i" --out "$D/c$i.pem" >/dev/null
		fi
		spki[i]=$(spki_of "$D/c$i.pem")
	done
	for n in $(seq 1 20); do
		# the deepest certificate of the chain of n is c(21 - n); audited, so that the
		# client goes on whatever the verdict
		pinsets+="  deep$n: { pins: [ ${spki[21 - n]}, $(cat "$PKI/backup.spki") ] }"$'\n'
		rules+="  - { host: c$n.pin.test, pinset: deep$n, mode: audit }"$'\n'
	done
	policy "$pinsets" "$rules
  - { host: x.pin.test, pinset: backup }"
	pw_start --policy "$POLICY"

	local client ev k
	for n in $(seq 1 20); do
		for i in $(seq 20 -1 $((21 - n))); do cat "$D/c$i.pem"; done >"$D/chain$n.pem"
		server_start "len$n" --cert "$D/chain$n.pem" --key "$D/k20.key" --reply
		local port_var="len${n}_PORT" record_var="len${n}_RECORD"
		client=${CLIENTS[n % 3]}

		judge "$client" "c$n.pin.test" "${!port_var}"
		[ "$status" -eq 0 ]
		[ "$(event_field "$ev" .comm)" = "$client" ]
		[ "$(event_field "$ev" '.chain | length')" -eq "$n" ]
		[ "$(event_field "$ev" '.errors')" = null ]
		for k in $(seq 0 $((n - 1))); do
			[ "$(event_field "$ev" ".chain[$k].spki_sha256")" = "${spki[20 - k]}" ]
			[ "$(event_field "$ev" ".chain[$k].pinned")" = "$([ "$k" -eq $((n - 1)) ] && echo true || echo false)" ]
		done
		# the client does not verify: the pin counts only on the leaf (n = 1)
		if [ "$n" -eq 1 ]; then
			[ "$(event_field "$ev" .verdict)" = match ]
			[ "$(event_field "$ev" '.chain[0].matched')" = true ]
		else
			[ "$(event_field "$ev" .verdict)" = mismatch ]
			[ "$(event_field "$ev" .action)" = would-kill ]
			[ "$(event_field "$ev" ".chain[$((n - 1))].matched")" = false ]
			[ "$(event_field "$ev" .reason)" = "pinned key only in certificates the client did not validate" ]
		fi
		[ "$(event_field "$ev" ".chain[$((n - 1))].subject")" = \
			"$([ "$n" -eq 1 ] && echo CN=pin.test || echo "CN=hostile intermediate $((21 - n))")" ]

		# the same chain where no pin matches: killed before its request left
		: >"${!record_var}"
		judge "$client" x.pin.test "${!port_var}"
		[ "$status" -eq 137 ]
		[ "$(event_field "$ev" .verdict)" = mismatch ]
		[ "$(event_field "$ev" .action)" = killed ]
		[ "$(event_field "$ev" '.chain | length')" -eq "$n" ]
		[ "$(event_field "$ev" '.reason')" = null ]
		[ ! -s "${!record_var}" ]
		server_stop "len$n"
	done
	alive
}

@test "a 64 KiB certificate: beyond the kernel's copy buffer, pinned by its own key it fails closed and the event says why; a pinned intermediate the client validated still matches" {
	newkey "$D/big.key"
	run "$MKCERT" --key "$D/big.key" --issuer-cert "$PKI/legit-ec/int.pem" --issuer-key "$PKI/legit-ec/int.key" \
		--cn "$(hexf pin.test)" --dns "$(hexf '*.pin.test')" --size 65536 --out "$D/big.pem"
	[ "$status" -eq 0 ]
	[ "$output" = 65536 ]
	[ "$(openssl x509 -in "$D/big.pem" -outform der | wc -c)" -eq 65536 ]
	serve_own big "$D/big.pem" "$D/big.key"

	local client ev
	for client in "${CLIENTS[@]}"; do
		judge "$client" pin.test "$big_PORT"
		[ "$status" -eq 137 ]
		fail_closed "$ev"
		[ "$(event_field "$ev" '.chain | length')" -eq 2 ]
		[ "$(event_field "$ev" '.chain[0].der_bytes')" -eq 65536 ]
		[ "$(event_field "$ev" '.chain[0].kernel_error')" = "larger than the kernel's copy buffer: not hashed" ]
		[ "$(event_field "$ev" '.chain[0].spki_sha256')" = null ]
		[ "$(event_field "$ev" '.chain[1].spki_sha256')" = "$(cat "$PKI/legit-ec/int.spki")" ]
		event_field "$ev" '.errors[]' | grep -qx "a certificate could not be hashed by the kernel"

		# a certificate the kernel did judge, in the chain the verifying client validated,
		# matches: the chain matches, the error is still told
		HS_CA=$PKI/legit-ec/root.pem judge "$client" int.pin.test "$big_PORT"
		[ "$status" -eq 0 ]
		[ "$(event_field "$ev" .verdict)" = match ]
		[ "$(event_field "$ev" .validation)" = verified ]
		[ "$(event_field "$ev" '.chain[1].matched')" = true ]
		[ "$(event_field "$ev" '.errors | length')" -eq 1 ]
		[ "$(event_field "$ev" .reason)" = null ]

		# audit reports the same mismatch and lets the client through
		judge "$client" audit.pin.test "$big_PORT"
		[ "$status" -eq 0 ]
		[ "$(event_field "$ev" .verdict)" = mismatch ]
		[ "$(event_field "$ev" .action)" = would-kill ]
		[ "$(event_field "$ev" .reason)" = "chain could not be judged in full: failed closed" ]
	done
	# three requests to int.pin.test, three to audit.pin.test, none from a killed client
	[ "$(requests "$big_RECORD")" -eq 6 ]
	alive
}

@test "the copy buffer's edge: a certificate of exactly 32768 bytes is judged, one of 32769 fails closed" {
	newkey "$D/edge.key"
	local size client ev
	for size in 32768 32769; do
		run "$MKCERT" --key "$D/edge.key" --issuer-cert "$PKI/legit-ec/int.pem" \
			--issuer-key "$PKI/legit-ec/int.key" --cn "$(hexf pin.test)" --size "$size" --out "$D/e$size.pem"
		[ "$output" = "$size" ]
		cat "$D/e$size.pem" "$PKI/legit-ec/int.pem" >"$D/chain$size.pem"
		server_start "e$size" --cert "$D/chain$size.pem" --key "$D/edge.key" --reply
	done
	# both certify the same key
	[ "$(spki_of "$D/e32768.pem")" = "$(spki_of "$D/e32769.pem")" ]
	policy "  own: { pins: [ $(spki_of "$D/e32768.pem"), $(cat "$PKI/backup.spki") ] }" "
  - { host: pin.test, pinset: own }"
	pw_start --policy "$POLICY"
	for client in "${CLIENTS[@]}"; do
		judge "$client" pin.test "$e32768_PORT"
		[ "$status" -eq 0 ]
		[ "$(event_field "$ev" .verdict)" = match ]
		[ "$(event_field "$ev" '.chain[0].der_bytes')" -eq 32768 ]
		[ "$(event_field "$ev" '.chain[0].matched')" = true ]
		[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(certsha_of "$D/e32768.pem")" ]
		[ "$(event_field "$ev" '.chain[0].subject')" = CN=pin.test ]
		[ "$(event_field "$ev" '.errors')" = null ]

		judge "$client" pin.test "$e32769_PORT"
		[ "$status" -eq 137 ]
		fail_closed "$ev"
		[ "$(event_field "$ev" '.chain[0].der_bytes')" -eq 32769 ]
		[ "$(event_field "$ev" '.chain[0].kernel_error')" = "larger than the kernel's copy buffer: not hashed" ]
	done
	[ ! -s "$e32769_RECORD" ]
	alive
}

@test "duplicate certificates: every copy is judged and explained; 40 copies overflow what the kernel judges and fail closed unless a judged one matches" {
	{
		cat "$PKI/legit-ec/leaf.pem" "$PKI/legit-ec/leaf.pem"
		cat "$PKI/legit-ec/int.pem" "$PKI/legit-ec/int.pem" "$PKI/legit-ec/int.pem"
	} >"$D/dup.pem"
	{
		cat "$PKI/legit-ec/leaf.pem"
		for _ in $(seq 40); do cat "$PKI/legit-ec/int.pem"; done
	} >"$D/dup40.pem"
	server_start dup --cert "$D/dup.pem" --key "$PKI/legit-ec/leaf.key" --reply
	server_start dup40 --cert "$D/dup40.pem" --key "$PKI/legit-ec/leaf.key" --reply
	policy "  leaf: { pins: [ $(cat "$PKI/legit-ec/leaf.spki"), $(cat "$PKI/backup.spki") ] }
  root: { pins: [ $(cat "$PKI/legit-ec/root.spki"), $(cat "$PKI/backup.spki") ] }" "
  - { host: pin.test, pinset: legit }
  - { host: leaf.pin.test, pinset: leaf }
  - { host: root.pin.test, pinset: root }"
	pw_start --policy "$POLICY"

	local client ev
	for client in "${CLIENTS[@]}"; do
		judge "$client" pin.test "$dup_PORT"
		[ "$status" -eq 0 ]
		[ "$(event_field "$ev" .verdict)" = match ]
		[ "$(event_field "$ev" '.chain | length')" -eq 5 ]
		# every copy carries a pinned key; only the leaf's counts for this client
		[ "$(event_field "$ev" '.chain | map(.pinned | tostring) | join(",")')" = true,true,true,true,true ]
		[ "$(event_field "$ev" '.chain | map(.matched | tostring) | join(",")')" = true,false,false,false,false ]
		[ "$(event_field "$ev" '.chain | map(.cert_sha256) | unique | length')" -eq 2 ]
		[ "$(event_field "$ev" '.chain[1].cert_sha256')" = "$(cat "$PKI/legit-ec/leaf.certsha")" ]
		[ "$(event_field "$ev" '.chain[4].cert_sha256')" = "$(cat "$PKI/legit-ec/int.certsha")" ]
		# each copy is explained, from one cache entry
		[ "$(event_field "$ev" '.chain | map(.subject) | unique | length')" -eq 2 ]
		[ "$(event_field "$ev" '.errors')" = null ]

		# 41 certificates: the first 32 are judged, the rest is flagged
		judge "$client" pin.test "$dup40_PORT"
		[ "$status" -eq 0 ]
		[ "$(event_field "$ev" .verdict)" = match ]
		[ "$(event_field "$ev" '.chain | length')" -eq 32 ]
		event_field "$ev" '.errors[]' | grep -q 'more certificates than the kernel judges'
		[ "$(event_field "$ev" .reason)" = null ]

		judge "$client" leaf.pin.test "$dup40_PORT"
		[ "$status" -eq 0 ]
		[ "$(event_field "$ev" .verdict)" = match ]
		[ "$(event_field "$ev" '.chain[0].matched')" = true ]

		# nothing judged matches, and what was not judged might have: fail closed
		judge "$client" root.pin.test "$dup40_PORT"
		[ "$status" -eq 137 ]
		fail_closed "$ev"
		event_field "$ev" '.errors[]' | grep -q 'more certificates than the kernel judges'
	done
	[ "$(requests "$dup40_RECORD")" -eq 6 ]
	alive
}

@test "subjects and SANs with quotes, backslashes, newlines, NUL, escapes, U+2028 and invalid UTF-8: one JSON line per event, decoding to what the certificate says" {
	# a CN that tries to close the string and forge fields and lines, every nasty byte
	local cn='pin.test"},"verdict":"match","x":{"a":"\\\n{"event":"ready"}\n\0\r\t\x1b[31m\xe2\x80\xa8\xe2\x80\xa9\x7f end'
	printf "$cn" >"$D/cn.bin"
	# SANs are IA5Strings: OpenSSL keeps their bytes whatever they are, invalid UTF-8 too
	printf 'a"b\\c\nd\0e\xff\xfe.pin.test' >"$D/dns.bin"
	printf 'x@y\0z\xc3(\xe2\x80\xa8' >"$D/email.bin"
	printf 'https://\x01\x1f\xed\xa0\x80\xf4\x90\x80\x80"/' >"$D/uri.bin"
	newkey "$D/h.key"
	"$MKCERT" --key "$D/h.key" --issuer-cert "$PKI/legit-ec/int.pem" --issuer-key "$PKI/legit-ec/int.key" \
		--cn "$(xxd -p "$D/cn.bin" | tr -d '\n')" --o "$(hexf 'O \\ "q" \x01')" \
		--ou "t61:$(hexf 'latin \xff\xe9 "\\')" --ou "bmp:$(hexf '\x00"\x00\\\x00\n\x4e\x2d')" \
		--dns "$(xxd -p "$D/dns.bin" | tr -d '\n')" --dns "$(hexf pin.test)" \
		--email "$(xxd -p "$D/email.bin" | tr -d '\n')" --uri "$(xxd -p "$D/uri.bin" | tr -d '\n')" \
		--out "$D/h.pem" >/dev/null
	cat "$D/h.pem" "$PKI/legit-ec/int.pem" >"$D/chain.pem"
	server_start hostile --cert "$D/chain.pem" --key "$D/h.key" --reply
	# pinned by the leaf's own key: it counts whether the client verifies or not
	policy "  own: { pins: [ $(spki_of "$D/h.pem"), $(cat "$PKI/backup.spki") ] }" "
  - { host: pin.test, pinset: own }
  - { host: audit.pin.test, pinset: backup, mode: audit }"
	pw_start --policy "$POLICY"

	local client ev host
	for client in "${CLIENTS[@]}"; do
		for host in pin.test audit.pin.test; do
			judge "$client" "$host" "$hostile_PORT"
			[ "$status" -eq 0 ]
			# the forged fields did not take: the verdicts are the kernel's
			[ "$(event_field "$ev" .verdict)" = "$([ "$host" = pin.test ] && echo match || echo mismatch)" ]
		done
	done
	events_strict
	# no line was forged: one ready, six chains, and nothing else but policy_loaded
	[ "$(_events_count '.event == "ready"')" -eq 1 ]
	[ "$(_events_count "$(at "$hostile_PORT")")" -eq 6 ]
	[ "$(jq -c . "$PW_LOG" | wc -l)" -eq "$(wc -l <"$PW_LOG")" ]

	# what each string decodes to: the subject as OpenSSL prints it (RFC 2253 escapes,
	# UTF-8 kept), each SAN's bytes with every byte that is not UTF-8 as U+FFFD
	openssl x509 -in "$D/h.pem" -noout -subject -nameopt RFC2253,-esc_msb | sed 's/^subject=//' >"$D/subject"
	"$PYTHON" - "$PW_LOG" "$hostile_PORT" "$D" <<-'EOF'
		import json, sys
		log, port, d = sys.argv[1], sys.argv[2], sys.argv[3]
		def dec(b):
		    # the escaper's rule (README): valid UTF-8 kept, each other byte one U+FFFD
		    out, i = "", 0
		    while i < len(b):
		        for n in (4, 3, 2, 1):
		            try:
		                out += b[i:i + n].decode("utf-8")
		                i += n
		                break
		            except UnicodeDecodeError:
		                pass
		        else:
		            out += "\ufffd"
		            i += 1
		    return out
		def raw(name):
		    return open(f"{d}/{name}", "rb").read()
		want_subject = open(f"{d}/subject", encoding="utf-8").read().rstrip("\n")
		want_sans = ["DNS:" + dec(raw("dns.bin")), "DNS:pin.test", "email:" + dec(raw("email.bin")),
		             "URI:" + dec(raw("uri.bin"))]
		events = [json.loads(l) for l in open(log, encoding="utf-8")]
		chains = [e for e in events if e.get("peer") == f"127.0.0.1:{port}"]
		assert len(chains) == 6, len(chains)
		for e in chains:
		    leaf = e["chain"][0]
		    assert leaf["subject"] == want_subject, (leaf["subject"], want_subject)
		    assert leaf["sans"] == want_sans, (leaf["sans"], want_sans)
		    assert e["chain"][1]["subject"] == "CN=pinwarden test intermediate EC,O=pinwarden test"
		# the subject keeps what matters readable and escapes the rest
		s = want_subject
		assert s.startswith('CN=pin.test\\"}\\,\\"verdict\\":\\"match\\"'), s
		for esc in ("\\0A", "\\00", "\\0D", "\\09", "\\1B", "\u2028", "\u2029", "\\\\"):
		    assert esc in s, (esc, s)
		assert "latin \u00ff\u00e9" in s and "\u4e2d" in s, s
		assert not any(c < " " for c in s), "a raw control character in the subject"
		# the report of the audited mismatch carries the certificate itself, as PEM
		rep = [e for e in chains if e["host"] == "audit.pin.test"][0]["report"]
		pem = open(f"{d}/h.pem").read().strip()
		assert rep["served-certificate-chain"][0].strip() == pem
	EOF
	alive
}

@test "a valid certificate in BER (its tbsCertificate's length in a longer form than DER): OpenSSL verifies it, the kernel cannot judge it, enforce fails closed" {
	newkey "$D/ber.key"
	"$MKCERT" --key "$D/ber.key" --issuer-cert "$PKI/legit-ec/int.pem" --issuer-key "$PKI/legit-ec/int.key" \
		--cn "$(hexf pin.test)" --o "$(hexf 'pinwarden test')" --dns "$(hexf pin.test)" \
		--dns "$(hexf '*.pin.test')" --ber-tbs --out "$D/ber.pem" >/dev/null
	# BER indeed: 30 83 00 LL LL where DER says 30 82 LL LL
	[ "$(openssl x509 -in "$D/ber.pem" -outform der | head -c 7 | xxd -p | cut -c9-14)" = 308300 ]
	openssl verify -CAfile "$PKI/legit-ec/root.pem" -untrusted "$PKI/legit-ec/int.pem" "$D/ber.pem"
	serve_own ber "$D/ber.pem" "$D/ber.key"

	local ev before host want
	# clients that verify the chain (it is valid) and pin the BER leaf's own key
	before=$(chains "$(at "$ber_PORT") and .host == \"pin.test\"")
	run curl_pin pin.test "$ber_PORT" --cacert "$PKI/legit-ec/root.pem"
	[ "$status" -eq 137 ]
	run tls_client --host pin.test --port "$ber_PORT" --cafile "$PKI/legit-ec/root.pem"
	[ "$status" -eq 137 ]
	run bash -c "echo SECRET | openssl s_client -connect 127.0.0.1:$ber_PORT -servername pin.test \
		-CAfile '$PKI/legit-ec/root.pem' -verify_return_error -quiet"
	[ "$status" -eq 137 ]
	ev=$(judged "$(at "$ber_PORT") and .host == \"pin.test\"" $((before + 2)))
	fail_closed "$ev"
	[ "$(event_field "$ev" '.chain[0].kernel_error')" = \
		"the kernel's DER walker could not find its public key: SPKI not hashed" ]
	[ "$(event_field "$ev" '.chain[0].spki_sha256')" = null ]
	# the daemon still explains it (OpenSSL reads BER)
	[ "$(event_field "$ev" '.chain[0].subject')" = "CN=pin.test,O=pinwarden test" ]
	[ "$(event_field "$ev" '.chain[0].cert_sha256')" = "$(certsha_of "$D/ber.pem")" ]
	[ "$(event_field "$ev" '.chain[1].spki_sha256')" = "$(cat "$PKI/legit-ec/int.spki")" ]
	[ "$(_events_count "$(at "$ber_PORT") and .action == \"killed\"")" -eq 3 ]
	[ ! -s "$ber_RECORD" ]

	# pinned on the intermediate: it matches; audit: reported, let through
	for host in int.pin.test audit.pin.test; do
		before=$(chains "$(at "$ber_PORT") and .host == \"$host\"")
		run curl_pin "$host" "$ber_PORT" --cacert "$PKI/legit-ec/root.pem"
		[ "$status" -eq 0 ]
		[ "$output" = ok ]
		ev=$(judged "$(at "$ber_PORT") and .host == \"$host\"" "$before")
		want=$([ "$host" = int.pin.test ] && echo match,none || echo mismatch,would-kill)
		[ "$(event_field "$ev" '.verdict + "," + .action')" = "$want" ]
		[ "$(event_field "$ev" '.chain[0].kernel_error')" != null ]
	done
	alive
}

@test "raw peers: a leaf in BER (long-form or indefinite outer length) that OpenSSL reads is killed under enforce before the client sends even an alert" {
	local leaf=$D/leaf.der int=$D/int.der
	der_of "$PKI/legit-ec/leaf.pem" "$leaf"
	der_of "$PKI/legit-ec/int.pem" "$int"
	"$PYTHON" - "$leaf" "$D" <<-'EOF'
		import sys
		der = open(sys.argv[1], "rb").read()
		assert der[:2] == b"\x30\x82"
		open(sys.argv[2] + "/long.der", "wb").write(b"\x30\x83\x00" + der[2:])
		open(sys.argv[2] + "/indefinite.der", "wb").write(b"\x30\x80" + der[4:] + b"\x00\x00")
	EOF
	raw_start long "$D/long.der" "$int"
	raw_start indefinite "$D/indefinite.der" "$int"
	policy "  leaf: { pins: [ $(cat "$PKI/legit-ec/leaf.spki"), $(cat "$PKI/backup.spki") ] }" "
  - { host: pin.test, pinset: leaf }
  - { host: int.pin.test, pinset: legit }
  - { host: audit.pin.test, pinset: leaf, mode: audit }"
	pw_start --policy "$POLICY"

	local form port record client ev
	for form in long indefinite; do
		port=${form}_PORT record=${form}_RECORD
		for client in "${CLIENTS[@]}"; do
			: >"${!record}"
			judge "$client" pin.test "${!port}"
			[ "$status" -eq 137 ]
			fail_closed "$ev"
			[ "$(event_field "$ev" .comm)" = "$client" ]
			[ "$(event_field "$ev" '.chain | length')" -eq 2 ]
			[ "$(event_field "$ev" '.chain[0].kernel_error')" = \
				"the kernel's DER walker could not find its public key: SPKI not hashed" ]
			[ "$(event_field "$ev" '.chain[0].subject')" = "CN=pin.test,O=pinwarden test" ]
			[ "$(event_field "$ev" '.chain[1].cert_sha256')" = "$(cat "$PKI/legit-ec/int.certsha")" ]
			# killed inside the chain's verification: not even an alert went out
			[ ! -s "${!record}" ]

			# judged in part: the intermediate's pin matches for a client that verified
			# the chain; the handshake then fails on its own (this server cannot finish
			# it), the client is not killed
			HS_CA=$PKI/legit-ec/root.pem judge "$client" int.pin.test "${!port}"
			[ "$status" -ne 0 ]
			[ "$status" -ne 137 ]
			[ "$(event_field "$ev" '.verdict + "," + .action')" = match,none ]

			judge "$client" audit.pin.test "${!port}"
			[ "$status" -ne 137 ]
			[ "$(event_field "$ev" '.verdict + "," + .action')" = mismatch,would-kill ]
			[ "$(event_field "$ev" .reason)" = "chain could not be judged in full: failed closed" ]
		done
	done
	alive
}

@test "raw peers: garbage, truncated DER, trailing bytes, a bad intermediate, a name that is not UTF-8, an empty list: the library refuses them, the daemon goes on" {
	local leaf=$D/leaf.der int=$D/int.der
	der_of "$PKI/legit-ec/leaf.pem" "$leaf"
	der_of "$PKI/legit-ec/int.pem" "$int"
	head -c 600 /dev/urandom >"$D/garbage.der"
	head -c 40000 /dev/urandom >"$D/garbage40k.der"
	head -c $(($(wc -c <"$leaf") - 100)) "$leaf" >"$D/truncated.der"
	head -c 4 "$leaf" >"$D/header-only.der"
	{ cat "$leaf"; printf '\0\0junk'; } >"$D/trailing.der"
	: >"$D/empty.der"
	# a UTF8String CN that is not UTF-8 (OpenSSL will not read such a name)
	"$MKCERT" --key "$PKI/legit-ec/leaf.key" --issuer-cert "$PKI/legit-ec/int.pem" \
		--issuer-key "$PKI/legit-ec/int.key" --cn "$(hexf pin.test-XXXX)" --out "$D/u.pem" >/dev/null
	der_of "$D/u.pem" "$D/u.der"
	"$PYTHON" -c 'import sys; p = sys.argv[1]; d = open(p, "rb").read()
open(p, "wb").write(d.replace(b"pin.test-XXXX", b"pin.test-\xff\"\n\x00"))' "$D/u.der"

	policy "  leaf: { pins: [ $(cat "$PKI/legit-ec/leaf.spki"), $(cat "$PKI/backup.spki") ] }" "
  - { host: pin.test, pinset: leaf }"
	pw_start --policy "$POLICY" --metrics "$D/metrics"

	local case client port record ports=()
	declare -A cases=(
		[garbage]="$D/garbage.der"
		[garbage40k]="$D/garbage40k.der"
		[truncated]="$D/truncated.der $int"
		[header_only]="$D/header-only.der $int"
		[trailing]="$D/trailing.der $int"
		[zero_length]="$D/empty.der"
		[bad_intermediate]="$leaf $D/garbage.der"
		[bad_utf8_name]="$D/u.der $int"
		[empty_list]=""
	)
	for case in "${!cases[@]}"; do
		# shellcheck disable=SC2086
		raw_start "$case" ${cases[$case]}
		port=${case}_PORT record=${case}_RECORD
		ports+=("${!port}")
		for client in "${CLIENTS[@]}"; do
			run hs "$client" pin.test "${!port}"
			# refused by the library itself: an error, not a kill
			if [ "$status" -eq 0 ] || [ "$status" -eq 137 ]; then
				echo "$case, $client: status $status: $output"
				false
			fi
		done
		# what the clients sent after the certificates: alerts, nothing else
		only_alerts "${!record}"
		[ -s "${!record}" ]
		server_stop "$case"
	done
	# the daemon judged the next handshake, so it has seen all of the above by now:
	# no chain was complete, so none was judged (nor let through)
	alive
	for port in "${ports[@]}"; do
		[ "$(_events_count "$(at "$port")")" -eq 0 ]
	done
	# the certificates the kernel could copy reached the daemon, which tried to parse
	# them (garbage, truncated, header only, the name that is not UTF-8: four that
	# OpenSSL refuses) and re-hashed them without disagreeing with the kernel
	retry 30 0.2 metric_ge pinwarden_certificate_parse_errors_total 4
	retry 30 0.2 metric_ge pinwarden_certificates_explained_total 6
	metric_ge pinwarden_hash_disagreements_total 0
	! metric_ge pinwarden_hash_disagreements_total 1 || false
	! grep -qi -e sanitizer -e 'double free' -e segfault "$PW_ERR" || false
}
