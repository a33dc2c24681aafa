#!/usr/bin/env bats
# Soundness of pins against an impostor who appends public certificates (issue 11).
#
# The attacker holds a root the client trusts (a rogue CA installed on the host) or
# faces a client that does not verify at all, and presents its own leaf for pin.test
# followed by a certificate it copied from the real server:
#   a     forged leaf + the genuine leaf,         the leaf's key pinned
#   b     forged leaf + the genuine intermediate, the intermediate's key pinned
#   twin  b with a rogue root that carries the genuine intermediate's exact name (a
#         judge that matched names instead of reading the library's chain is fooled)
#   c     a and b again with verification off (curl -k, CERT_NONE, s_client without
#         -verify_return_error, gnutls-cli --insecure, tstclnt -o, ...)
# and the legitimate server shows what still matches:
#   d     the real chain with an unrelated certificate in the middle, or with its root
#         sent before the intermediate: a leaf pin matches for every client; an
#         intermediate pin matches for verifying clients of the libraries whose
#         validated chain pinwarden reads (VALIDATES below), and is a mismatch for the
#         others (their documented limit)
#   e     the real chain, intermediate pinned, verification off: a mismatch (only a
#         leaf pin counts for a client that does not verify), in audit
#
# The contract (SPEC.md, validated-chain rule): a pin on the leaf counts only on the
# first certificate; a pin on any other certificate counts only if that certificate is
# in the chain the library built and verified for this handshake. Each tls_chain event
# says `validation` (verified | unverified | unknown) and, per certificate, `presented`,
# `validated`, `pinned` and `matched`; the trust anchors the peer did not send follow
# the presented certificates with presented:false. A mismatch where a pinned
# certificate did not count says why in `reason`.
#
# One daemon, one policy and one set of servers for the whole file: the first test that
# needs the results (matrix) runs every case of every client this host has, in TLS 1.2
# and 1.3, one handshake after another, then collects each handshake's event; each
# client's test asserts its own cases. In the policy the host name picks the pin, the
# action and whether the client verifies (leaf-kill-v, int-reset-o, ...: every name is
# covered by the certificates' *.pin.test), so each event is told apart by client,
# server port and host. With SOUNDNESS_MATRIX=FILE each case is also appended to FILE,
# tab-separated: client, library family, case, TLS version, host, verdict, validation,
# action, the client's outcome, bytes the server recorded during the handshake.

# server_start exports NAME_PORT...
# shellcheck disable=SC2154

load helpers

# What pinwarden reads of each library's own verification. "verified": the chain the
# library built and verified, so a pin on any certificate of that chain counts when the
# client verified; "unknown": not read yet, only a leaf pin counts (the documented
# limit). A library whose validated chain pinwarden learns to read: change its line.
declare -gA VALIDATES=(
	[openssl]=verified # libssl.so.3: curl, python3, openssl s_client
	[node]=verified    # OpenSSL linked into node
	[go]=verified      # the chains Go's Verify built (checkChainForKeyUsage)
	[gnutls]=verified # the chain GnuTLS sorted and verified (issuers seen in its verify_crt)
	[nss]=verified    # the chain NSS verified in SSL_AuthCertificate (libnss3 signature checks)
	[boringssl]=verified # the chain BoringSSL's X509 layer verified, told by key
)

# libraries whose validated chain pinwarden reads without seeing the objects of the
# presented certificates: their certificates in it are told by key (and the whole
# validated chain is hashed whenever it was verified)
declare -gA BY_KEY=([boringssl]=yes)

# the clients, in the order they run (their comm, as events name them)
CLIENTS=(curl python3 openssl gnutls-cli wget tstclnt goclient bssl_client node)
# client -> the entry of VALIDATES that covers it
declare -gA FAMILY=([curl]=openssl [python3]=openssl [openssl]=openssl [node]=node
	[goclient]=go [gnutls-cli]=gnutls [wget]=gnutls [tstclnt]=nss [bssl_client]=boringssl)
# and the library its events name
declare -gA LIBRARY=([curl]=openssl [python3]=openssl [openssl]=openssl [node]=openssl
	[goclient]=go [gnutls-cli]=gnutls [wget]=gnutls [tstclnt]=nss [bssl_client]=boringssl)

REASON_UNVALIDATED="pinned key only in certificates the client did not validate"
VERSIONS=(1.2 1.3)

# What each server presents, in order (certificates by PKI-relative name, without .pem),
# and the chain a client that verifies builds from it (leaf to anchor).
declare -gA PRESENTS=(
	[forged_leaf]="evil/leaf legit-ec/leaf"
	[forged_int]="evil/leaf legit-ec/int"
	[twin_int]="twin/leaf legit-ec/int"
	[extras]="legit-ec/leaf unrelated/cert legit-ec/int"
	[reordered]="legit-ec/leaf legit-ec/root legit-ec/int"
)
declare -gA BUILDS=(
	[forged_leaf]="evil/leaf evil/root"
	[forged_int]="evil/leaf evil/root"
	[twin_int]="twin/leaf twin/root"
	[extras]="legit-ec/leaf legit-ec/int legit-ec/root"
	[reordered]="legit-ec/leaf legit-ec/int legit-ec/root"
)

# The cases: NAME SERVER TRUST PIN ACTION. TRUST: trust (the client verifies, trusting
# the legitimate root and the evil root: a host with a rogue root installed), twin (the
# legitimate root and the twin root), off (no verification). PIN: leaf or int, the
# legitimate certificate the rule pins. ACTION: kill, reset (enforce) or audit.
CASES=(
	"a-kill forged_leaf trust leaf kill"
	"a-reset forged_leaf trust leaf reset"
	"a-audit forged_leaf trust leaf audit"
	"b-kill forged_int trust int kill"
	"b-reset forged_int trust int reset"
	"b-audit forged_int trust int audit"
	"twin-kill twin_int twin int kill"
	"c-a-kill forged_leaf off leaf kill"
	"c-a-reset forged_leaf off leaf reset"
	"c-a-audit forged_leaf off leaf audit"
	"c-b-kill forged_int off int kill"
	"c-b-reset forged_int off int reset"
	"c-b-audit forged_int off int audit"
	"d-extras-leaf extras trust leaf kill"
	"d-extras-int extras trust int kill"
	"d-reordered-leaf reordered trust leaf kill"
	"d-reordered-int reordered trust int kill"
	"d-extras-leaf-off extras off leaf kill"
	"e-int-off extras off int audit"
)

setup_file() {
	local bin=$BATS_FILE_TMPDIR/bin
	mkdir -p "$bin"
	if command -v go >/dev/null; then
		GOCACHE=$BATS_FILE_TMPDIR/gocache GOPATH=$BATS_FILE_TMPDIR/gopath GOFLAGS='' \
			GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0 \
			go build -o "$bin/goclient" "$BATS_TEST_DIRNAME/tools/go/client.go"
	fi
	if bssl_paths; then
		cc -Wall -Wextra -Werror -O2 -I"$BSSL_INC" -o "$bin/bssl_client" \
			"$BATS_TEST_DIRNAME/tools/boringssl/client.c" -L"$BSSL_LIBDIR" \
			-Wl,-rpath,"$BSSL_LIBDIR" -lssl -lcrypto
	fi
}

bssl_paths() {
	BSSL_INC=${BSSL_INC:-/usr/include/android}
	BSSL_LIBDIR=${BSSL_LIBDIR:-/usr/lib/x86_64-linux-gnu/android}
	# a predicate, not an assertion: its status is the function's
	if [ ! -e "$BSSL_INC/openssl/is_boringssl.h" ] || [ ! -e "$BSSL_LIBDIR/libssl.so" ]; then
		return 1
	fi
}

setup() {
	requires bpf
	BIN=$BATS_FILE_TMPDIR/bin
	M=$BATS_FILE_TMPDIR/matrix
	# once the matrix has run, the tests only read what it recorded: no lock, no PKI
	[ ! -e "$M/.done" ] || return 0
	local t0=$EPOCHREALTIME MS
	pki
	ms "$t0" "$EPOCHREALTIME"
	[ "$MS" -lt 1000 ] || echo "# $BATS_TEST_NUMBER: waited $MS ms for the test lock and the PKI" >&3
	# the attack material, once per file, next to the PKI
	(
		flock 9
		[ -e "$PKI/attacks/.done" ] ||
			{ "$FIXTURES/gen-attacks.sh" "$PKI" && touch "$PKI/attacks/.done"; }
	) 9>"$BATS_FILE_TMPDIR/attacks.lock"
	[ -e "$PKI/attacks/.done" ]
	local f n
	for f in "$PKI"/*/*.spki; do
		n=${f#"$PKI"/}
		SPKI_NAME[$(<"$f")]=${n%.spki}
	done
}

# SPKI_NAME: SPKI pin -> the PKI name of that certificate, for readable diagnostics
declare -gA SPKI_NAME=()

# servers: every chain of PRESENTS, in TLS 1.2 and 1.3 (the server forces the version,
# so every client speaks it), each recording the application data it receives
servers() {
	local chain v
	for chain in "${!PRESENTS[@]}"; do
		for v in "${VERSIONS[@]}"; do
			server_start "${chain}_${v/./}" --cert "$PKI/attacks/${chain//_/-}.pem" \
				--key "$PKI/attacks/${chain//_/-}.key" --reply --tls "$v"
		done
	done
}

# host_of TRUST PIN ACTION: HOST=int-reset-v.pin.test, say (v: the client verifies,
# o: off). Here and below, functions the matrix calls per case set variables rather
# than print: hundreds of cases, and every fork of a shell this size costs milliseconds.
host_of() {
	local t=v
	[ "$1" != off ] || t=o
	HOST=$2-$3-$t.pin.test
}

# The policy: the legitimate leaf's key and certificate (pinset leaf) or the legitimate
# intermediate's (pinset int), each with a backup key; a rule for each host host_of names
write_policy() {
	local leaf int rules="" pin act t extra
	leaf="$(cat "$PKI/legit-ec/leaf.spki"), cert-sha256/$(cat "$PKI/legit-ec/leaf.certsha")"
	int="$(cat "$PKI/legit-ec/int.spki"), cert-sha256/$(cat "$PKI/legit-ec/int.certsha")"
	for pin in leaf int; do
		for act in kill reset audit; do
			case $act in
			kill) extra= ;;
			reset) extra=", action: reset" ;;
			audit) extra=", mode: audit" ;;
			esac
			for t in trust off; do
				host_of "$t" "$pin" "$act"
				rules+="
  - { host: $HOST, pinset: $pin$extra }"
			done
		done
	done
	policy "
mode: enforce
action: kill
pinsets:
  leaf: { pins: [ $leaf, $(cat "$PKI/backup.spki") ] }
  int: { pins: [ $int, $(cat "$PKI/backup.spki") ] }
rules:$rules"
}

# nssdb NAME CA-FILE...: an NSS database trusting those roots, once per file
nssdb() {
	local db=$BATS_FILE_TMPDIR/nssdb-$1 ca n=0
	shift
	[ -e "$db/.done" ] && return 0
	rm -rf "$db"
	mkdir -p "$db"
	certutil -N -d "sql:$db" --empty-password
	for ca in "$@"; do
		n=$((n + 1))
		certutil -A -d "sql:$db" -n "root$n" -t C,, -i "$ca"
	done
	touch "$db/.done"
}

# ---- the clients: one adapter each ----

# missing CLIENT: why this host cannot run CLIENT (nothing if it can); makes what the
# client needs (NSS databases)
missing() {
	case $1 in
	curl | python3 | openssl) ;;
	gnutls-cli) command -v gnutls-cli >/dev/null || echo "needs gnutls-cli (gnutls-bin)" ;;
	wget) ldd "$(command -v wget)" 2>/dev/null | grep -q libgnutls || echo "needs a wget linked with GnuTLS" ;;
	tstclnt)
		if command -v tstclnt >/dev/null; then
			nssdb trust "$PKI/legit-ec/root.pem" "$PKI/evil/root.pem" >/dev/null
			nssdb twin "$PKI/legit-ec/root.pem" "$PKI/twin/root.pem" >/dev/null
		else
			echo "needs tstclnt (libnss3-tools)"
		fi
		;;
	goclient) [ -x "$BIN/goclient" ] || echo "needs Go (Debian: golang-go) to build the client" ;;
	bssl_client) [ -x "$BIN/bssl_client" ] || echo "needs android-libboringssl-dev to build the client" ;;
	node) command -v node >/dev/null || echo "needs node (nodejs)" ;;
	*) echo "no such client: $1" ;;
	esac
}

# attach_args: PW_ARGS, the daemon's --attach for the clients' libraries outside
# ld.so.cache (the BoringSSL libssl; node's statically linked OpenSSL, when node
# exports its symbols)
attach_args() {
	local lib
	PW_ARGS=()
	if [ -x "$BIN/bssl_client" ]; then
		lib=$(ldd "$BIN/bssl_client" | awk '$1 == "libssl.so.0" { print $3 }')
		[ -z "$lib" ] || PW_ARGS+=(--attach "$lib")
	fi
	if [ -n "$NODE" ] && nm -D --defined-only "$NODE" 2>/dev/null |
		grep -qw tls_process_server_certificate; then
		PW_ARGS+=(--attach "$NODE")
	fi
}

# hs DIR CLIENT TRUST HOST PORT SECRET: one handshake with SNI HOST to 127.0.0.1:PORT,
# then SECRET (in an HTTP request where the client speaks HTTP). TRUST: trust or twin
# (the client verifies with PKI/attacks/trust.pem or trust-twin.pem), off (it does
# not). Its stdout and stderr go to DIR/out and DIR/err; its status is the client's own
# (137: killed), except that a client that got the server's reply and then saw the
# connection end without close_notify (s_client, gnutls-cli: status 1) counts as 0.
hs() {
	local dir=$1 client=$2 trust=$3 host=$4 port=$5 secret=$6 ca='' rc=0 opts=() writer=''
	case $trust in
	trust) ca=$PKI/attacks/trust.pem ;;
	twin) ca=$PKI/attacks/trust-twin.pem ;;
	off) ;;
	*) return 2 ;;
	esac
	# opts: how the client is told to verify against $ca, or not to verify
	case $client in
	curl) [ -n "$ca" ] && opts=(--cacert "$ca") || opts=(-k) ;;
	python3) [ -n "$ca" ] && opts=(--cafile "$ca") || opts=(--insecure) ;;
	# without -verify_return_error s_client goes on when verification fails (case c)
	openssl) [ -z "$ca" ] || opts=(-CAfile "$ca" -verify_return_error -verify_hostname "$host") ;;
	# gnutls-cli verifies the name 127.0.0.1 (an IP SAN of every leaf); --insecure: it
	# goes on whatever the verification says
	gnutls-cli) [ -n "$ca" ] && opts=(--x509cafile "$ca") || opts=(--insecure) ;;
	# wget verifies after the handshake (gnutls_certificate_verify_peers2), and the name
	wget) [ -n "$ca" ] && opts=(--ca-certificate="$ca") || opts=(--no-check-certificate) ;;
	tstclnt) [ -n "$ca" ] && opts=(-d "sql:$BATS_FILE_TMPDIR/nssdb-$trust") || opts=(-D -o) ;;
	goclient) [ -n "$ca" ] && opts=(-cafile "$ca") || opts=(-insecure) ;;
	bssl_client | node) [ -n "$ca" ] && opts=(--cafile "$ca") || opts=(--insecure) ;;
	*) return 2 ;;
	esac
	printf 'GET / HTTP/1.0\r\nX-Secret: %s\r\n\r\n' "$secret" >"$dir/request"
	case $client in
	curl) curl_pin "$host" "$port" "${opts[@]}" -H "X-Secret: $secret" ;;
	python3) tls_client --host "$host" --port "$port" "${opts[@]}" --secret "$secret" ;;
	openssl)
		# -quiet implies -ign_eof: s_client waits for the reply
		timeout 20 openssl s_client -connect "127.0.0.1:$port" -servername "$host" -quiet \
			"${opts[@]}" <"$dir/request"
		;;
	gnutls-cli)
		# its input stays open until it is done: at the end of its input gnutls-cli
		# sends close_notify, and the server, closing with that unread, resets the
		# connection before the reply arrives
		mkfifo "$dir/in"
		(
			cat "$dir/request"
			exec sleep 30
		) >"$dir/in" &
		writer=$!
		timeout 20 gnutls-cli --port "$port" --sni-hostname "$host" "${opts[@]}" 127.0.0.1 \
			<"$dir/in"
		;;
	wget)
		in_pin_ns "$host" wget --quiet --output-document=- --tries=1 --timeout=15 \
			"${opts[@]}" --header "X-Secret: $secret" "https://$host:$port/"
		;;
	tstclnt)
		timeout 20 tstclnt -h 127.0.0.1 -p "$port" -a "$host" -V tls1.2:tls1.3 \
			-A "$dir/request" "${opts[@]}" </dev/null
		;;
	goclient)
		timeout 20 "$BIN/goclient" -connect "127.0.0.1:$port" -servername "$host" \
			"${opts[@]}" -secret "$secret"
		;;
	bssl_client)
		timeout 20 "$BIN/bssl_client" --host "$host" --port "$port" "${opts[@]}" --secret "$secret"
		;;
	node)
		timeout 20 node "$TOOLS/node/client.js" --host "$host" --port "$port" "${opts[@]}" \
			--secret "$secret"
		;;
	esac >"$dir/out" 2>"$dir/err" || rc=$?
	if [ -n "$writer" ]; then
		kill "$writer" 2>/dev/null || true
		wait "$writer" 2>/dev/null || true
	fi
	if [ "$rc" -eq 1 ] && [[ $client == @(openssl|gnutls-cli) ]]; then
		outcome "$rc" "$dir/out"
		[ "$OUTCOME" != ok ] || rc=0
	fi
	return "$rc"
}

# outcome STATUS OUTFILE [MS]: OUTCOME=ok (the server's reply, a line "ok", arrived),
# killed (SIGKILL), signal N, hung (no reply after MS >= 9 s: the client waited for a
# timeout, it was not told), eof (status 0 but no reply: an end of stream the
# application takes for success), error (alive, failed)
outcome() {
	local lines=() l
	mapfile -t lines <"$2"
	OUTCOME=
	for l in "${lines[@]}"; do
		[ "$l" != ok ] || OUTCOME=ok
	done
	if [ -n "$OUTCOME" ]; then
		:
	elif [ "$1" -eq 137 ]; then
		OUTCOME=killed
	elif [ "${3:-0}" -ge 9000 ]; then
		OUTCOME=hung
	elif [ "$1" -gt 128 ] && [ "$1" -le $((128 + 64)) ]; then
		# killed by a signal (tstclnt's own failure status is 254: an error, no signal)
		OUTCOME="signal $(($1 - 128))"
	elif [ "$1" -eq 0 ]; then
		OUTCOME=eof
	else
		OUTCOME=error
	fi
}

# ---- what each case must show ----

# expect CLIENT SERVER TRUST PIN ACTION: what the contract says of that case, as
# NAME<TAB>VALUE lines (the event's fields as collect writes them, chain entries as
# "PKI-NAME presented=.. validated=.. pinned=.. matched=.."), with "events" (the chain
# events of the handshake), "outcome" (the client: ok, killed, error) and "bytes" (what
# the server received of the client's data: none, some)
expect() {
	local client=$1 server=$2 trust=$3 pin=$4 act=$5 HOST
	host_of "$trust" "$pin" "$act"
	local validation=unknown presented=() builds=() chain=() i n c matched=false
	read -ra presented <<<"${PRESENTS[$server]}"
	read -ra builds <<<"${BUILDS[$server]}"
	if [ "${VALIDATES[${FAMILY[$client]}]}" = verified ]; then
		validation=verified
		[ "$trust" != off ] || validation=unverified
	fi
	chain=("${presented[@]}")
	# The trust anchor (the last of the chain the client builds) is the client's own
	# copy from its store, never the object parsed from what the peer sent: a root the
	# peer also sent shows validated=false, and the anchor is an entry of its own. It
	# is hashed, and so listed, only when no presented certificate already decided.
	local anchor=${builds[${#builds[@]} - 1]}
	n=${#chain[@]}
	local lines=()
	for ((i = 0; i < n; i++)); do
		c=${chain[i]}
		local p=true v=false pinned=false m=false
		if [ "$validation" = verified ] && [ "$c" != "$anchor" ] &&
			[[ " ${builds[*]} " == *" $c "* ]]; then
			v=true
		fi
		[ "$c" = "legit-ec/$pin" ] && pinned=true
		# a pin counts on the leaf, or on a certificate of the verified chain
		if [ "$pinned" = true ] && { [ "$i" -eq 0 ] || [ "$v" = true ]; }; then
			m=true
			matched=true
		fi
		lines+=("chain$i	$c presented=$p validated=$v pinned=$pinned matched=$m")
	done
	if [ "$validation" = verified ] && [ "$matched" = false ]; then
		lines+=("chain$n	$anchor presented=false validated=true pinned=false matched=false")
		n=$((n + 1))
	fi
	if [ "${BY_KEY[${FAMILY[$client]}]:-}" = yes ] && [ "$validation" = verified ]; then
		expect_by_key "$anchor"
	fi
	local verdict mode=enforce action reason=null outcome bytes
	[ "$act" = audit ] && mode=audit
	if [ "$matched" = true ]; then
		verdict=match action=none outcome=ok bytes=some
	else
		verdict=mismatch
		# every case puts the pinned certificate in the list: it did not count
		reason=$REASON_UNVALIDATED
		case $act in
		kill) action=killed outcome=killed bytes=none ;;
		reset) action=reset outcome=error bytes=none ;;
		audit) action=would-kill outcome=ok bytes=some ;;
		esac
	fi
	printf '%s\n' "events	1" "verdict	$verdict" "validation	$validation" "mode	$mode" \
		"action	$action" "reason	$reason" "library	${LIBRARY[$client]}" "host	$HOST" \
		"length	$n" "${lines[@]}" "outcome	$outcome" "bytes	$bytes"
}

# expect_by_key ANCHOR: for a library whose validated chain names the presented
# certificates by key (BoringSSL), the whole chain is always hashed: every presented
# certificate of it is validated, the anchor too when the peer sent it (same key), and
# the anchor is an entry of its own only when the peer did not send it. Rewrites the
# chain lines of expect's caller (lines, n, matched), which it shares.
expect_by_key() {
	local anchor=$1 i c sent=false
	lines=()
	matched=false
	for ((i = 0; i < ${#presented[@]}; i++)); do
		c=${presented[i]}
		local v=false pinned=false m=false
		[[ " ${builds[*]} " == *" $c "* ]] && v=true
		[ "$c" = "$anchor" ] && sent=true
		[ "$c" = "legit-ec/$pin" ] && pinned=true
		if [ "$pinned" = true ] && { [ "$i" -eq 0 ] || [ "$v" = true ]; }; then
			m=true
			matched=true
		fi
		lines+=("chain$i	$c presented=true validated=$v pinned=$pinned matched=$m")
	done
	n=${#presented[@]}
	if [ "$sent" = false ]; then
		lines+=("chain$n	$anchor presented=false validated=true pinned=false matched=false")
		n=$((n + 1))
	fi
}

# ---- running the cases ----

# run_cases CLIENT: every case in both versions, one handshake after another, each in
# $M/CLIENT/<case>-<version>/: the client's out and err, what is expected, and facts
# (status, bytes the server recorded meanwhile, secret, server, duration, port, host).
# $M/keys gets a line "comm port host<TAB>directory" a handshake: what tells its event
# apart. Runs untraced.
run_cases() {
	local client=$1 line name server trust pin act v dir secret rc after t0 MS HOST
	local srv port record dirs=() c
	local -A size=()
	for c in "${!PRESENTS[@]}"; do
		for v in "${VERSIONS[@]}"; do
			record=${c}_${v/./}_RECORD
			size[${c}_${v/./}]=$(stat -c %s "${!record}")
		done
	done
	for v in "${VERSIONS[@]}"; do
		for line in "${CASES[@]}"; do
			dirs+=("$M/$client/${line%% *}-$v")
		done
	done
	mkdir -p "${dirs[@]}"
	for v in "${VERSIONS[@]}"; do
		for line in "${CASES[@]}"; do
			read -r name server trust pin act <<<"$line"
			host_of "$trust" "$pin" "$act"
			srv=${server}_${v/./}
			port=${srv}_PORT record=${srv}_RECORD
			port=${!port} record=${!record}
			dir=$M/$client/$name-$v
			secret=s-$client-$name-$v-$RANDOM
			rc=0
			t0=$EPOCHREALTIME
			hs "$dir" "$client" "$trust" "$HOST" "$port" "$secret" || rc=$?
			ms "$t0" "$EPOCHREALTIME"
			after=$(stat -c %s "$record")
			printf '%s\n' "$rc" "$((after - ${size[$srv]}))" "$secret" "$srv" "$MS ms" \
				"$port" "$HOST" >"$dir/facts"
			size[$srv]=$after
			expect "$client" "$server" "$trust" "$pin" "$act" >"$dir/expected"
			printf '%s\t%s\n' "$client $port $HOST" "$dir" >>"$M/keys"
		done
	done
}

# keyed_events: the jq filter of the chain events of the handshakes in KEYDIR (key ->
# directory, from $M/keys), each with its key in $k
keyed_events() {
	local k keys=''
	for k in "${!KEYDIR[@]}"; do
		keys+="${keys:+,}\"$k\":true"
	done
	printf '%s' "fromjson? | select(.event == \"tls_chain\") |
		(.comm + \" \" + ((.peer // \"\")[10:]) + \" \" + (.host // \"\")) as \$k |
		select({$keys}[\$k])"
}

# keys_seen N: at least N handshakes of KEYDIR have their event
keys_seen() {
	[ "$(jq -rR "$(keyed_events) | \$k" "$PW_LOG" | sort -u | wc -l)" -ge "$1" ]
}

# collect: once every handshake has its event (or 10 s have passed), write each case's
# event and what was observed, in expect's form, from one pass over the log. Runs
# untraced.
collect() {
	local k f v dir facts=() record c
	local -A KEYDIR=()
	while IFS=$'\t' read -r k v; do
		KEYDIR[$k]=$v
	done <"$M/keys"
	# the daemon writes what the kernel queued every 100 ms; a loaded host may take longer
	retry 300 0.1 keys_seen ${#KEYDIR[@]} || true
	local -A obs=() count=()
	while IFS=$'\t' read -r k f v; do
		dir=${KEYDIR[$k]}
		if [ "$f" = event ]; then
			count[$dir]=$((${count[$dir]:-0} + 1))
			obs[$dir]=''
			printf '%s\n' "$v" >"$dir/event"
		elif [[ $f == chain* ]]; then
			obs[$dir]+="$f	${SPKI_NAME[${v%% *}]:-unknown key ${v%% *}} ${v#* }"$'\n'
		else
			obs[$dir]+="$f	$v"$'\n'
		fi
	done < <(jq -rR "$(keyed_events) |
		\"\(\$k)\tevent\t\(tojson)\",
		\"\(\$k)\tverdict\t\(.verdict)\", \"\(\$k)\tvalidation\t\(.validation)\",
		\"\(\$k)\tmode\t\(.mode)\", \"\(\$k)\taction\t\(.action)\",
		\"\(\$k)\treason\t\(.reason)\", \"\(\$k)\tlibrary\t\(.library)\",
		\"\(\$k)\thost\t\(.host)\", \"\(\$k)\tlength\t\(.chain | length)\",
		(.chain | to_entries[] | \"\(\$k)\tchain\(.key)\t\(.value.spki_sha256) presented=\(.value.presented) validated=\(.value.validated) pinned=\(.value.pinned) matched=\(.value.matched)\")" \
		"$PW_LOG")
	# the secrets that reached each server ("server secret"), read once
	local -A got=()
	for c in "${!PRESENTS[@]}"; do
		for v in "${VERSIONS[@]}"; do
			k=${c}_${v/./}
			record=${k}_RECORD
			while read -r f; do
				got["$k $f"]=1
			done < <(grep -aoE 's-[a-z0-9_.-]+-1\.[23]-[0-9]+' "${!record}")
		done
	done
	local bytes OUTCOME
	for dir in "${KEYDIR[@]}"; do
		mapfile -t facts <"$dir/facts"
		[ -e "$dir/event" ] || : >"$dir/event"
		outcome "${facts[0]}" "$dir/out" "${facts[4]% ms}"
		# some: the server has this case's secret, or received anything at all during it
		bytes=none
		[ -z "${got["${facts[3]} ${facts[2]}"]:-}" ] || bytes=some
		[ "${facts[1]}" -eq 0 ] || bytes=some
		{
			echo "events	${count[$dir]:-0}"
			printf '%s' "${obs[$dir]:-}"
			echo "outcome	$OUTCOME"
			echo "bytes	$bytes"
		} >"$dir/observed"
	done
}

# wire: what each server puts on the wire (openssl s_client -showcerts): in
# $M/wire/<server>-<version>, the certificates' SHA-256 as sent, as meant, and the
# version spoken
wire() {
	local chain v port out want got c
	mkdir -p "$M/wire"
	for chain in "${!PRESENTS[@]}"; do
		want=
		for c in ${PRESENTS[$chain]}; do
			want+="${want:+ }$(cat "$PKI/$c.certsha")"
		done
		for v in "${VERSIONS[@]}"; do
			port=${chain}_${v/./}_PORT
			out=$(openssl s_client -connect "127.0.0.1:${!port}" -servername wire.pin.test \
				-showcerts </dev/null 2>/dev/null)
			got=$("$PYTHON" -c '
import hashlib, re, ssl, sys
pems = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", sys.stdin.read(), re.S)
print(" ".join(hashlib.sha256(ssl.PEM_cert_to_DER_cert(p)).hexdigest() for p in pems))' <<<"$out")
			printf '%s\n' "$got" "$want" "$(sed -n 's/^New, \(TLSv1\.[23]\), Cipher is .*/\1/p' <<<"$out")" \
				>"$M/wire/$chain-$v"
		done
	done
}

# matrix_line DIR CLIENT: the case as one line of $SOUNDNESS_MATRIX
matrix_line() {
	local name=${1##*/} facts=()
	mapfile -t facts <"$1/facts"
	load_fields "$1/observed"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$2" "${FAMILY[$2]}" "${name%-1.?}" \
		"TLS${name##*-}" "${facts[6]}" "${F[verdict]:-no event}" "${F[validation]:--}" \
		"${F[action]:--}" "${F[outcome]}" "${facts[1]}"
}

# matrix: every case of every client this host has, once per file, under one daemon;
# $M/CLIENT.skip says why a client was not run
matrix() {
	[ -e "$M/.done" ] && return 0
	if [ -e "$M/.started" ]; then
		echo "the matrix failed in an earlier test of this file: see that one"
		return 1
	fi
	rm -rf "$M"
	mkdir -p "$M/servers"
	touch "$M/.started"
	local client why t0=$EPOCHREALTIME t1 t2 t3 name dir run=() MS times=()
	for client in "${CLIENTS[@]}"; do
		why=$(missing "$client")
		if [ -n "$why" ]; then
			echo "$why" >"$M/$client.skip"
		else
			run+=("$client")
		fi
	done
	NODE=$(readlink -f "$(command -v node)" || true)
	servers
	wire
	write_policy
	attach_args
	pw_start --policy "$POLICY" "${PW_ARGS[@]}"
	t1=$EPOCHREALTIME
	: >"$M/keys"
	for client in "${run[@]}"; do
		untraced run_cases "$client"
	done
	t2=$EPOCHREALTIME
	untraced collect
	t3=$EPOCHREALTIME
	for name in "${!_server_pid[@]}"; do
		cp "$BATS_TEST_TMPDIR/$name.log" "$M/servers/"
	done
	if [ -n "${SOUNDNESS_MATRIX:-}" ]; then
		for client in "${run[@]}"; do
			for dir in "$M/$client"/*; do
				matrix_line "$dir" "$client" >>"$SOUNDNESS_MATRIX"
			done
		done
	fi
	ms "$t0" "$t1"
	times+=("servers and daemon $MS ms")
	ms "$t1" "$t2"
	times+=("handshakes $MS ms")
	ms "$t2" "$t3"
	times+=("events $MS ms")
	times+=("$(ms "$t0" "$t3"; echo "in all $MS ms")")
	echo "# matrix: ${#run[@]} clients, $(wc -l <"$M/keys") handshakes: $(printf "%s; " "${times[@]}")" >&3
	# how the daemon fared, for the test that says so: alive at the end, every line
	# well-formed, nothing lost, a clean stop
	local alive=yes lint=yes stop=0
	kill -0 "$PW_PID" || alive=no
	events_lint >"$M/lint" 2>&1 || lint=no
	_events_select '.event == "lost"' >"$M/lost"
	pw_stop >"$M/stop" 2>&1 || stop=$?
	printf '%s\n' "$alive" "$lint" "$stop" >"$M/daemon"
	cp "$PW_LOG" "$M/events.jsonl"
	cp "$PW_ERR" "$M/daemon.err"
	touch "$M/.done"
}

# untraced CMD...: CMD in a subshell without bats' DEBUG and ERR traps, which cost
# about a millisecond a command: the matrix's loops run thousands (a failing command
# still fails the subshell, and so the test)
untraced() {
	(
		trap - DEBUG ERR
		set +ET
		"$@"
	)
}

# ms START END: MS, the milliseconds between two $EPOCHREALTIME
ms() {
	local a=${1/./} b=${2/./}
	MS=$(((10#$b - 10#$a) / 1000))
}

# load_fields FILE: the NAME<TAB>VALUE lines of FILE into the array F
declare -gA F=()
load_fields() {
	local k v
	F=()
	while IFS=$'\t' read -r k v; do
		F[$k]=$v
	done <"$1"
}

# diag DIR: what a failing case saw: the client's status and output, the event, the
# expected and observed fields side by side, the server's log
diag() {
	local dir=$1 facts=()
	mapfile -t facts <"$dir/facts"
	echo "---- case ${dir#"$M"/}: ${facts[6]} on port ${facts[5]} (${facts[3]}): client status ${facts[0]} after ${facts[4]}; the server recorded ${facts[1]} bytes meanwhile"
	echo "-- client stdout:"
	head -c 2000 "$dir/out"
	echo "-- client stderr:"
	head -c 2000 "$dir/err"
	echo "-- event:"
	jq . "$dir/event" 2>/dev/null || cat "$dir/event"
	echo "-- expected | observed:"
	diff --side-by-side --width=200 "$dir/expected" "$dir/observed" || true
	echo "-- server log (last lines):"
	tail -n 6 "$M/servers/${facts[3]}.log"
	if [ ! -s "$dir/event" ]; then
		echo "-- no event for this handshake; the daemon's log has $(grep -c tls_chain "$M/events.jsonl") chain events, $(wc -l <"$M/lost") lost events; its stderr ends:"
		tail -n 10 "$M/daemon.err"
	fi
}

# same DIR NAME: the observed NAME is the expected one (one assertion; on failure, the
# case's diagnostics). W and O: the expected and observed fields of the case.
declare -gA W=() O=()
same() {
	[ "${O[$2]-(none)}" = "${W[$2]-(none)}" ] && return 0
	echo "${1#"$M"/}: $2 is '${O[$2]-(none)}', expected '${W[$2]-(none)}'"
	diag "$1"
	return 1
}

# soundness CLIENT: every case of CLIENT as the contract says
soundness() {
	matrix
	[ ! -e "$M/$1.skip" ] || skip "$(cat "$M/$1.skip")"
	local v line n=0
	for v in "${VERSIONS[@]}"; do
		for line in "${CASES[@]}"; do
			check_case "$M/$1/${line%% *}-$v"
			n=$((n + 1))
		done
	done
	[ "$n" -eq "$(find "$M/$1" -mindepth 1 -maxdepth 1 -type d | wc -l)" ]
}

# check_case DIR: that case's fields as the contract says, one assertion each
check_case() {
	local dir=$1 i k
	load_fields "$dir/expected"
	W=()
	for k in "${!F[@]}"; do W[$k]=${F[$k]}; done
	load_fields "$dir/observed"
	O=()
	for k in "${!F[@]}"; do O[$k]=${F[$k]}; done
	same "$dir" events
	same "$dir" verdict
	same "$dir" outcome
	same "$dir" bytes
	same "$dir" action
	same "$dir" mode
	same "$dir" library
	same "$dir" host
	same "$dir" validation
	same "$dir" reason
	same "$dir" length
	for ((i = 0; i < W[length]; i++)); do
		same "$dir" "chain$i"
	done
}

@test "the impostors put on the wire exactly the certificates meant, in that order, in the TLS version meant" {
	matrix
	local f n=0
	for f in "$M/wire"/*; do
		n=$((n + 1))
		mapfile -t lines <"$f"
		[ "${lines[0]}" = "${lines[1]}" ] || {
			echo "${f##*/}: on the wire: ${lines[0]}; meant: ${lines[1]}"
			false
		}
		[ "${lines[2]}" = "TLSv${f##*-}" ]
	done
	[ "$n" -eq $((${#PRESENTS[@]} * ${#VERSIONS[@]})) ]
}

@test "the daemon judged the whole matrix: alive to the end, nothing lost, well-formed lines, a clean stop" {
	matrix
	local daemon=()
	mapfile -t daemon <"$M/daemon"
	[ "${daemon[0]}" = yes ]
	[ "${daemon[1]}" = yes ] || {
		cat "$M/lint"
		false
	}
	[ ! -s "$M/lost" ] || {
		cat "$M/lost"
		false
	}
	[ "${daemon[2]}" -eq 0 ] || {
		cat "$M/stop"
		false
	}
	# as many chain events of the clients as handshakes (each case checks its own)
	local comms
	comms=$(printf '"%s",' "${CLIENTS[@]}")
	[ "$(jq -c "select(.event == \"tls_chain\" and (.comm | IN(${comms%,})))" "$M/events.jsonl" |
		wc -l)" -eq "$(wc -l <"$M/keys")" ]
}

@test "openssl (curl): an appended genuine leaf or intermediate never satisfies a pin; the legitimate chain in any order still matches" {
	soundness curl
}

@test "openssl (python3): an appended genuine leaf or intermediate never satisfies a pin; the legitimate chain in any order still matches" {
	soundness python3
}

@test "openssl (s_client): an appended genuine leaf or intermediate never satisfies a pin; the legitimate chain in any order still matches" {
	soundness openssl
}

@test "gnutls (gnutls-cli): an appended genuine leaf or intermediate never satisfies a pin; the legitimate chain in any order still matches" {
	soundness gnutls-cli
}

@test "gnutls (wget, verifying after the handshake): an appended genuine leaf or intermediate never satisfies a pin; the legitimate chain in any order still matches" {
	soundness wget
}

@test "nss (tstclnt): an appended genuine leaf or intermediate never satisfies a pin; the legitimate chain in any order still matches" {
	soundness tstclnt
}

@test "go: an appended genuine leaf or intermediate never satisfies a pin; the legitimate chain in any order still matches" {
	soundness goclient
}

@test "boringssl: an appended genuine leaf or intermediate never satisfies a pin; the legitimate chain in any order still matches" {
	soundness bssl_client
}

@test "node (its OpenSSL): an appended genuine leaf or intermediate never satisfies a pin; the legitimate chain in any order still matches" {
	soundness node
}
