#!/usr/bin/env bats
# Pressure (issue 11, item 5): an unprivileged user fills what the kernel keeps per
# connection and what the daemon is sent, through the real libssl, and another user's
# enforced impostor must still be killed before it receives a byte (and the legitimate
# server still match). The real daemon and BPF programs, real clients on 127.0.0.1.
#
# The attacker is a system user made here if missing ($PW_PRESSURE_USER, default
# pw-pressure); its programs (tools/pressure/*.c) are compiled at test time into a
# directory it can read, and run under setpriv with its uid, no capability.
# tools/pressure/kernel_state reads the daemon's own ssl_state, session_uids,
# session_lost(_uid) and counters maps (found through its file descriptors): what the kernel
# held and counted at that moment, even while a flood holds up the daemon's main loop
# (and with it its metrics file).
#
# Knobs: PW_PRESSURE_CONNS (concurrent connections of the last test, default 100000),
# PW_PRESSURE_HANDSHAKES (resume: each client process makes one full handshake and
# resumes it for the others, the default; full: a full TLS 1.3 handshake each, every one
# judged, about five times slower here), PW_PRESSURE_SECONDS (how long they may take,
# default 150).

# server_start exports NAME_PORT, NAME_RECORD...; run sets $status and $output
# shellcheck disable=SC2154

load helpers

PRESSURE_USER=${PW_PRESSURE_USER:-pw-pressure}
PRESSURE_CONNS=${PW_PRESSURE_CONNS:-100000}
PRESSURE_HANDSHAKES=${PW_PRESSURE_HANDSHAKES:-resume}
PRESSURE_SECONDS=${PW_PRESSURE_SECONDS:-150}
FAILED_CLOSED="a rule could cover this chain, but which one cannot be known: failed closed"

setup_file() {
	[ "$(id -u)" -eq 0 ] || return 0
	if ! id -u "$PRESSURE_USER" >/dev/null 2>&1; then
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
			"$PRESSURE_USER"
	fi
	# bats' temporary directories are root's only: the attacker's programs live here
	PRESSURE_DIR=$(mktemp -d /tmp/pinwarden-pressure.XXXXXX)
	chmod 0755 "$PRESSURE_DIR"
	export PRESSURE_DIR
	local t
	for t in ssl_objects fake_sni cert_flood conns; do
		cc -O2 -Wall -Werror -o "$PRESSURE_DIR/$t" "$TOOLS/pressure/$t.c" -lssl -lcrypto
	done
	cc -O2 -Wall -Werror -I"$BATS_TEST_DIRNAME/../include" -o "$PRESSURE_DIR/kernel_state" \
		"$TOOLS/pressure/kernel_state.c" -lbpf
	cc -O2 -Wall -Werror -pthread -o "$PRESSURE_DIR/gtls" "$TOOLS/gnutls/gtls.c" -lgnutls
}

teardown_file() {
	if [ -n "${PRESSURE_DIR:-}" ] && [[ $PRESSURE_DIR == /tmp/pinwarden-pressure.* ]]; then
		rm -rf "$PRESSURE_DIR"
	fi
}

setup() {
	requires bpf
	[ -x "${PRESSURE_DIR:-}/kernel_state" ] || skip "the pressure tools were not built (see setup_file)"
	ATTACKER_UID=$(id -u "$PRESSURE_USER")
	ATTACKER_GID=$(id -g "$PRESSURE_USER")
	[ "$ATTACKER_UID" -ne 0 ]
	# the attacker's working directory: its own
	AW=$PRESSURE_DIR/test$BATS_TEST_NUMBER
	mkdir -p "$AW"
	chown "$ATTACKER_UID:$ATTACKER_GID" "$AW"
	declare -gA _attacker_pid=()
	pki
	_started=$SECONDS	# the host lock is ours from here
	# the attacker may trust the legitimate root too
	cp "$PKI/legit-ec/root.pem" "$AW/root.pem"
	chmod 0644 "$AW/root.pem"
	pin_test_servers
}

teardown() {
	local name
	for name in "${!_attacker_pid[@]}"; do
		attacker_stop "$name"
	done
	[ -z "${_started:-}" ] || report "$((SECONDS - _started)) s with the host lock"
	pw_teardown
}

# ---- helpers ----

# as_attacker CMD...: CMD as the unprivileged user, without any capability
as_attacker() {
	setpriv --reuid="$ATTACKER_UID" --regid="$ATTACKER_GID" --clear-groups --inh-caps=-all -- "$@"
}

# attacker_start NAME CMD...: CMD as the attacker in the background, its output in
# $AW/NAME.out; NAME_PID is exported, and the process is killed in teardown
attacker_start() {
	local name=$1
	shift
	# setpriv itself, not a function in a subshell: $! is then the program's own pid
	setpriv --reuid="$ATTACKER_UID" --regid="$ATTACKER_GID" --clear-groups --inh-caps=-all -- \
		"$@" 3>&- </dev/null >"$AW/$name.out" 2>&1 &
	_attacker_pid[$name]=$!
	export "${name}_PID=$!"
}

# attacker_stop NAME: SIGKILL that process of the attacker's and reap it
attacker_stop() {
	local pid=${_attacker_pid[$1]:-}
	[ -n "$pid" ] || return 0
	unset "_attacker_pid[$1]"
	{
		kill -KILL "$pid"
		wait "$pid"
	} 2>/dev/null || true
}

# attacker_curl PORT [curl args...]: the attacker's curl to pin.test at 127.0.0.1:PORT
attacker_curl() {
	local port=$1
	shift
	as_attacker curl --silent --show-error --max-time 20 --resolve "pin.test:$port:127.0.0.1" \
		"$@" "https://pin.test:$port/"
}

# The policy of these tests: pin.test pinned to the legitimate leaf's key (and the
# backup key), enforce + kill; more YAML rules may follow in $1.
pressure_policy() {
	policy "
mode: enforce
action: kill
pinsets:
  legit: { pins: [ $(cat "$PKI/legit-ec/leaf.spki"), $(cat "$PKI/backup.spki") ] }
rules:
  - host: pin.test
    pinset: legit${1:-}"
}

# kernel_state: what the daemon's kernel maps hold now (see tools/pressure/kernel_state.c)
kernel_state() {
	"$PRESSURE_DIR/kernel_state" "$PW_PID"
}

# counter NAME: a kernel counter, now
counter() {
	kernel_state | awk -v c="$1" '$1 == "counter" && $2 == c { print $3; f = 1 } END { exit !f }'
}

# counter_ge N NAME (for retry)
counter_ge() {
	[ "$(counter "$2")" -ge "$1" ]
}

# entries_of TGID: ssl_state entries of that process, and the uid they are charged to
entries_of() {
	kernel_state | awk -v p="$1" '$1 == "entries" && $2 == p { print $3, $4 }'
}

# quota_of UID: the entries the kernel charges to UID (session_uids), 0 if none
quota_of() {
	kernel_state | awk -v u="$1" '$1 == "quota" && $2 == u { n = $3 } END { print n + 0 }'
}

# parked_of UID: chains parked for their library's verification that the kernel's
# parked_chains holds for UID, and the count it charges to UID (parked_uids)
parked_of() {
	kernel_state | awk -v u="$1" '$1 == "parked" && $2 == u { n = $3 }
		$1 == "parked_quota" && $2 == u { q = $3 } END { print n + 0, q + 0 }'
}

# parked_none UID: nothing parked for UID, nothing charged to it (for retry)
parked_none() {
	[ "$(parked_of "$1")" = "0 0" ]
}

# process_lost PID: the kernel marked that process as having lost a connection's state
process_lost() {
	kernel_state | awk -v p="$1" '$1 == "lost" && $2 == p { f = 1 } END { exit !f }'
}

# uid_lost UID: the kernel marked the whole uid (its table of processes was full)
uid_lost() {
	kernel_state | awk -v u="$1" '$1 == "lost_uid" && $2 == u { f = 1 } END { exit !f }'
}

# no_loss_marks: no process and no uid is marked (the daemon lifts the marks of the gone)
no_loss_marks() {
	[ "$(kernel_state | awk '$1 == "lost" || $1 == "lost_uid"' | wc -l)" -eq 0 ]
}

# root's curl against the impostor: killed in the handshake, nothing received
impostor_killed() {
	local secret=s3cret-$RANDOM ev
	run curl_pin pin.test "$evil_PORT" -k -H "X-Secret: $secret"
	[ "$status" -eq 137 ]
	[ ! -s "$evil_RECORD" ]
	ev=$(events_wait ".event == \"tls_chain\" and .uid == 0 and .comm == \"curl\" and .peer == \"127.0.0.1:$evil_PORT\"")
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	[ "$(event_field "$ev" .action)" = killed ]
	[ "$(event_field "$ev" .host)" = pin.test ]
	[ "$(event_field "$ev" .rule)" = pin.test ]
	[ "$(event_field "$ev" '.reason // ""')" != "$FAILED_CLOSED" ]
}

# root's curl against the legitimate server: a match, and the secret arrives
legit_matches() {
	local secret=s3cret-$RANDOM ev
	run curl_pin pin.test "$legit_PORT" --cacert "$PKI/legit-ec/root.pem" -H "X-Secret: $secret"
	[ "$status" -eq 0 ]
	grep -q "$secret" "$legit_RECORD"
	ev=$(events_wait ".event == \"tls_chain\" and .uid == 0 and .comm == \"curl\" and .peer == \"127.0.0.1:$legit_PORT\"")
	[ "$(event_field "$ev" .verdict)" = match ]
	[ "$(event_field "$ev" .action)" = none ]
	[ "$(event_field "$ev" .host)" = pin.test ]
}

# servers_hold N: the bulk's servers hold N established connections, none failed or closed
servers_hold() {
	[ "$(cat "$AW"/srv*.status | awk '{ n += $2; f += $4 + $6 } END { print n, f }')" = "$1 0" ]
}

# lost_reported: the lost events add up to the records the kernel counted as dropped
lost_reported() {
	local certs chains
	certs=$(_events_select '.event == "lost"' | jq -s 'map(.certificates) | add // 0')
	chains=$(_events_select '.event == "lost"' | jq -s 'map(.chains) | add // 0')
	[ "$certs" -eq "$(counter lost_certificate_records)" ] &&
		[ "$chains" -eq "$(counter lost_chain_records)" ]
}

# events_valid: every line of the event log is one JSON object with "time" and "event"
# (events_lint's check, in one jq for the thousands of lines a flood leaves)
events_valid() {
	local bad
	bad=$(jq -R -r 'try (fromjson | if type == "object" and (.time | type == "string") and
		(.event | type == "string") then empty else "bad" end) catch "bad"' "$PW_LOG" | wc -l)
	[ "$bad" -eq 0 ]
	[ "$(wc -l <"$PW_LOG")" -gt 0 ]
}

# report LINE: a measurement, shown with the test's result
report() {
	echo "# $*" >&3
}

# ---- tests ----

@test "70,000 live SSL objects with SNI in one unprivileged process: held by the kernel, charged to that uid; another user's impostor is killed (0 bytes), the legitimate server matches" {
	pressure_policy
	pw_start --policy "$POLICY"
	attacker_start objects "$PRESSURE_DIR/ssl_objects" 70000 attacker.test "$AW/objects.ready"
	retry 600 0.1 test -s "$AW/objects.ready"
	local n ms
	read -r n ms <"$AW/objects.ready"
	[ "$n" -eq 70000 ]
	# the kernel holds every one of them, charged to the attacker's uid, which lost nothing
	local ev
	[ "$(entries_of "$objects_PID")" = "$ATTACKER_UID 70000" ]
	[ "$(quota_of "$ATTACKER_UID")" -ge 70000 ]
	no_loss_marks
	report "70000 SSL objects with SNI made in $ms ms; ssl_state: $(kernel_state | awk '$1 == "total" { print $2 }') entries"

	impostor_killed
	legit_matches
	# the attacker's own clients are judged as before: its uid is under its quota
	run attacker_curl "$legit_PORT" -k
	[ "$status" -eq 0 ]
	ev=$(events_wait ".event == \"tls_chain\" and .uid == $ATTACKER_UID")
	[ "$(event_field "$ev" .verdict)" = match ]
	[ "$(event_field "$ev" .host)" = pin.test ]
	# nothing was lost or failed closed, and the 70,000 objects are still alive and held
	[ "$(counter ssl_state_full)" -eq 0 ]
	[ "$(counter rule_unknown_failed_closed)" -eq 0 ]
	kill -0 "$objects_PID"
	[ "$(entries_of "$objects_PID")" = "$ATTACKER_UID 70000" ]
	events_valid
}

@test "fake-pointer flood to the session quota (5000): the flooding process is marked lost, the user's later clients cannot keep their SNI and fail closed (killed even against the real server); another user is judged as before; the marks go with the processes" {
	pressure_policy
	pw_start --policy "$POLICY" --session-quota 5000
	attacker_start fake "$PRESSURE_DIR/fake_sni" 20000 pin.test "$AW/fake.ready"
	retry 300 0.1 test -s "$AW/fake.ready"
	local calls faults ms ev
	read -r calls faults ms <"$AW/fake.ready"
	# every call reached SSL_ctrl (the uprobe) and faulted inside libssl
	[ "$calls" -eq 20000 ]
	[ "$faults" -eq 20000 ]
	# the kernel kept exactly the quota of them, and marked that process (not the whole
	# uid) as having lost a connection's state
	[ "$(entries_of "$fake_PID")" = "$ATTACKER_UID 5000" ]
	[ "$(quota_of "$ATTACKER_UID")" -eq 5000 ]
	process_lost "$fake_PID"
	! uid_lost "$ATTACKER_UID" || false
	[ "$(counter ssl_state_full)" -eq 15000 ]
	report "20000 SSL_ctrl(55) on fake pointers in $ms ms: 5000 kept (the quota), $(counter ssl_state_full) refused"

	# the attacker's later clients: the quota is full, their SNI cannot be kept, so they
	# are marked too and their chains fail closed, even against the legitimate server
	run attacker_curl "$legit_PORT" --cacert "$AW/root.pem" -H "X-Secret: attacker"
	[ "$status" -eq 137 ]
	! grep -q attacker "$legit_RECORD" || false
	ev=$(events_wait ".event == \"tls_chain\" and .uid == $ATTACKER_UID and .peer == \"127.0.0.1:$legit_PORT\"")
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	[ "$(event_field "$ev" .action)" = killed ]
	[ "$(event_field "$ev" .mode)" = enforce ]
	[ "$(event_field "$ev" .host)" = null ]
	[ "$(event_field "$ev" .reason)" = "$FAILED_CLOSED" ]
	run attacker_curl "$evil_PORT" -k -H "X-Secret: attacker"
	[ "$status" -eq 137 ]
	[ ! -s "$evil_RECORD" ]
	ev=$(events_wait ".event == \"tls_chain\" and .uid == $ATTACKER_UID and .peer == \"127.0.0.1:$evil_PORT\"")
	[ "$(event_field "$ev" .action)" = killed ]
	[ "$(event_field "$ev" .reason)" = "$FAILED_CLOSED" ]
	[ "$(counter rule_unknown_failed_closed)" -eq 2 ]

	# root: its own quota, its SNI kept; judged by the rule, as always
	impostor_killed
	legit_matches
	[ "$(counter rule_unknown_failed_closed)" -eq 2 ]
	[ "$(counter processes_killed)" -eq 3 ]

	# the flood's process gone, the daemon sweeps its entries and lifts the marks
	attacker_stop fake
	retry 100 0.1 no_loss_marks
	[ "$(quota_of "$ATTACKER_UID")" -eq 0 ]
	run attacker_curl "$legit_PORT" --cacert "$AW/root.pem"
	[ "$status" -eq 0 ]
	ev=$(events_wait ".event == \"tls_chain\" and .uid == $ATTACKER_UID and .verdict == \"match\"")
	[ "$(event_field "$ev" .host)" = pin.test ]
	events_valid
}

@test "a flood of unique certificates from the attacker's own server fills the ring buffer: another user's impostor is still killed by the kernel (0 bytes), the legitimate server matches, and a lost event counts what was dropped" {
	pressure_policy
	pw_start --policy "$POLICY"
	# 32 fresh certificates of 30,000 bytes per connection: about 1 MB for the daemon each
	attacker_start floodsrv "$PRESSURE_DIR/cert_flood" server "$AW/flood.port" 4 32 30000
	retry 100 0.1 test -s "$AW/flood.port"
	attacker_start flood "$PRESSURE_DIR/cert_flood" client "$(cat "$AW/flood.port")" 10 4
	# the ring buffer overflows: the kernel counts the certificate records it refused
	retry 100 0.1 counter_ge 1 lost_certificate_records
	local t_lost=$SECONDS lost_before i
	lost_before=$(counter lost_certificate_records)

	# meanwhile, root's clients: five impostor connections, each killed by the kernel
	# in the handshake, 0 bytes sent; the legitimate server's client lives
	for i in 1 2 3 4 5; do
		run curl_pin pin.test "$evil_PORT" -k -H "X-Secret: s3cret-$i"
		[ "$status" -eq 137 ]
	done
	[ ! -s "$evil_RECORD" ]
	[ "$(counter processes_killed)" -eq 5 ]
	run curl_pin pin.test "$legit_PORT" --cacert "$PKI/legit-ec/root.pem" -H "X-Secret: legit"
	[ "$status" -eq 0 ]
	grep -q legit "$legit_RECORD"
	# records were still being refused after them: the ring was full around them
	local lost_after
	lost_after=$(counter lost_certificate_records)
	[ "$lost_after" -gt "$lost_before" ]

	wait "$flood_PID"
	unset "_attacker_pid[flood]"
	local conns chains certs
	read -r _ conns _ chains _ certs <"$AW/flood.out"
	[ "$chains" -ge 100 ]
	[ "$certs" -eq $((chains * 32)) ]
	# the daemon catches up: lost events account for every record the kernel refused
	retry 300 0.1 events_count_ge 1 '.event == "lost" and .certificates > 0'
	local delay=$((SECONDS - t_lost))
	retry 100 0.1 lost_reported
	local killed lost_chains lost_certs
	lost_certs=$(_events_select '.event == "lost"' | jq -s 'map(.certificates) | add')
	lost_chains=$(_events_select '.event == "lost"' | jq -s 'map(.chains) | add')
	# each kill is in the log, or its chain record is among those reported lost
	killed=$(_events_count '.event == "tls_chain" and .uid == 0 and .action == "killed"')
	[ $((killed + lost_chains)) -ge 5 ]
	# every killed chain that was logged is the impostor's, a mismatch
	[ "$(_events_count '.event == "tls_chain" and .action == "killed" and (.verdict != "mismatch" or .peer != "127.0.0.1:'"$evil_PORT"'")')" -eq 0 ]
	# and the daemon explains and logs again
	legit_matches
	report "flood: $conns connections, $chains chains, $certs unique certificates of ~30 kB in 10 s; the kernel refused $lost_certs certificate and $lost_chains chain records; 5/5 impostors killed ($killed of them logged); first lost event ${delay} s after the first refusal"
	events_valid
}

@test "a server holding many concurrent TLS connections (PW_PRESSURE_CONNS, default 100,000): every one held by the kernel; a new impostor is killed (0 bytes), a legitimate client matches" {
	pressure_policy "
  - host: bulk.test
    pinset: legit"
	pw_start --policy "$POLICY"
	local total=$PRESSURE_CONNS hard per procs nports i
	# a process holds at most its RLIMIT_NOFILE of sockets: as many processes as needed
	hard=$(ulimit -Hn)
	[ "$hard" = unlimited ] && hard=1048576
	per=$((hard - 1000 < 20000 ? hard - 1000 : 20000))
	procs=$(((total + per - 1) / per))
	per=$(((total + procs - 1) / procs))
	total=$((per * procs))
	# at most ~5,000 connections per server port: finding a free ephemeral port stays cheap
	nports=$(((per + 4999) / 5000))
	cp "$PKI/legit-ec/chain.pem" "$PKI/legit-ec/leaf.key" "$AW/"
	chown "$ATTACKER_UID" "$AW/chain.pem" "$AW/leaf.key"
	for ((i = 1; i <= procs; i++)); do
		attacker_start "srv$i" "$PRESSURE_DIR/conns" server "$AW/ports$i" "$nports" \
			"$AW/chain.pem" "$AW/leaf.key" "$AW/srv$i.status"
	done
	for ((i = 1; i <= procs; i++)); do
		retry 100 0.1 test -s "$AW/ports$i"
	done
	local start=$SECONDS
	for ((i = 1; i <= procs; i++)); do
		attacker_start "cli$i" "$PRESSURE_DIR/conns" client "$(cat "$AW/ports$i")" "$per" bulk.test \
			128 "$PRESSURE_HANDSHAKES" "$AW/cli$i.status"
	done
	# all of them established, within the budget
	local est=0 failed=0
	while :; do
		est=$(cat "$AW"/cli*.status 2>/dev/null | awk '{ n += $2 } END { print n + 0 }')
		failed=$(cat "$AW"/cli*.status 2>/dev/null | awk '{ n += $4 + $6 } END { print n + 0 }')
		[ "$est" -ge "$total" ] && break
		[ "$failed" -eq 0 ] || break
		[ $((SECONDS - start)) -lt "$PRESSURE_SECONDS" ] || break
		for ((i = 1; i <= procs; i++)); do
			kill -0 "${_attacker_pid[cli$i]}" || break 2
		done
		sleep 1
	done
	echo "clients: $(cat "$AW"/cli*.status)"
	echo "servers: $(cat "$AW"/srv*.status)"
	[ "$failed" -eq 0 ]
	[ "$est" -eq "$total" ]
	retry 50 0.1 servers_hold "$total"
	local ms
	ms=$(cat "$AW"/cli*.status | awk '$10 > m { m = $10 } END { print m }')
	# every connection has its entry on each side: the client's SSL (SNI, socket), the server's
	local held
	held=$(kernel_state | awk -v u="$ATTACKER_UID" '$1 == "entries" && $3 == u { n += $4 } END { print n + 0 }')
	[ "$held" -ge $((2 * total)) ]
	report "$total concurrent TLS connections ($PRESSURE_HANDSHAKES, $procs client and $procs server processes) established in $ms ms; ssl_state held $held entries of theirs"

	# while they are open: a new impostor is killed, the legitimate server matches
	impostor_killed
	legit_matches
	# nothing was lost or failed closed; every bulk chain judged matched (none killed)
	[ "$(counter ssl_state_full)" -eq 0 ]
	[ "$(counter rule_unknown_failed_closed)" -eq 0 ]
	[ "$(counter processes_killed)" -eq 1 ]
	if [ "$PRESSURE_HANDSHAKES" = full ]; then
		[ "$(counter chains_judged)" -ge "$total" ]
	else
		[ "$(counter chains_judged)" -ge "$procs" ]
	fi
	for ((i = 1; i <= procs; i++)); do
		kill -0 "${_attacker_pid[cli$i]}"
		kill -0 "${_attacker_pid[srv$i]}"
	done
	[ "$(cat "$AW"/cli*.status | awk '{ n += $2 } END { print n }')" -eq "$total" ]
	events_valid
}

@test "chains parked for GnuTLS's verification by an unprivileged user: held to the per-uid quota (run --park-quota 200), the rest judged at once and counted; another user's chain still parks and its intermediate pin matches; the quota comes back when the holder dies" {
	local base=$AW/hold-server n=300 quota=200 t0 ms ev
	policy "
mode: enforce
action: kill
pinsets:
  int: { pins: [ $(cat "$PKI/legit-ec/int.spki") ] }
rules:
  - host: pin.test
    pinset: int"
	pw_start --policy "$POLICY" --park-quota "$quota"
	# a GnuTLS server handing the legitimate chain (leaf and intermediate) to whoever
	# connects, one connection after another
	"$PRESSURE_DIR/gtls" server --cert "$PKI/legit-ec/chain.pem" --key "$PKI/legit-ec/leaf.key" \
		--port-file "$base.port" 3>&- </dev/null >"$base.log" 2>&1 &
	_server_pid[hold]=$!
	retry 100 0.1 test -s "$base.port"
	# the attacker's client: n sessions whose chains wait for a verification that never
	# comes (no rule for its name: nothing is enforced on it)
	t0=$(date +%s%N)
	attacker_start hold "$PRESSURE_DIR/gtls" hold --port "$(cat "$base.port")" --count "$n" \
		--sni hold.test --ready "$AW/hold.ready"
	retry 1200 0.1 test -s "$AW/hold.ready"
	ms=$((($(date +%s%N) - t0) / 1000000))
	cat "$AW/hold.out"
	[ "$(cat "$AW/hold.ready")" = "held $n" ]
	# the kernel parked the quota's worth for that uid and no more; the others were
	# judged at once (leaf only) and counted
	[ "$(parked_of "$ATTACKER_UID")" = "$quota $quota" ]
	[ "$(counter parked_quota)" -eq $((n - quota)) ]
	[ "$(counter validated_chain_unreadable)" -eq 0 ]
	report "$n GnuTLS sessions held by uid $ATTACKER_UID in $ms ms: $quota chains parked (the quota), $(counter parked_quota) judged at once"
	# root's client: its chain parks, is verified on another thread, and its
	# intermediate pin matches
	run timeout 20 "$PRESSURE_DIR/gtls" handoff --port "$legit_PORT" --sni pin.test \
		--secret parked-secret --ca "$PKI/legit-ec/root.pem"
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q parked-secret "$legit_RECORD"
	ev=$(events_wait '.event == "tls_chain" and .uid == 0 and .comm == "gtls"')
	[ "$(event_field "$ev" .verdict)" = match ]
	[ "$(event_field "$ev" .validation)" = verified ]
	[ "$(counter parked_quota)" -eq $((n - quota)) ]
	# the holder gone, the daemon drops its parked chains and gives its quota back
	attacker_stop hold
	retry 100 0.1 parked_none "$ATTACKER_UID"
	impostor_killed
	events_valid
}
