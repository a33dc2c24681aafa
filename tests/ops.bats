#!/usr/bin/env bats
# Operations: `pin` against live servers, the learn round trip, status, the metrics
# file, `make install`, the systemd unit, the Kubernetes manifest, the man pages and
# the incident-response guide's jq examples, each checked the way an operator would.

# shellcheck disable=SC2154
load helpers

ROOT=$BATS_TEST_DIRNAME/..
UNIT=$ROOT/deploy/systemd/pinwarden.service
MANIFEST=$ROOT/deploy/kubernetes/pinwarden.yaml
GUIDE=$ROOT/docs/incident-response.md

teardown() {
	pw_teardown
	# a world-traversable scratch directory some tests make outside bats' own (0700)
	[ -z "${OPS_SCRATCH:-}" ] || rm -rf "$OPS_SCRATCH"
}

# s_server_start NAME [openssl s_server args...]: the openssl CLI's own TLS server
# (-www: it answers, reads no stdin) on an ephemeral port of 127.0.0.1; exports
# NAME_PORT. Stopped by its pid in teardown, like server_start's servers.
s_server_start() {
	local name=$1 out pid deadline=$((SECONDS + 10))
	shift
	out=$BATS_TEST_TMPDIR/$name.s_server
	openssl s_server -accept 127.0.0.1:0 -www "$@" </dev/null >"$out" 2>&1 3>&- &
	pid=$!
	_server_pid[$name]=$pid
	until grep -q '^ACCEPT 127.0.0.1:[0-9]' "$out"; do
		if ! kill -0 "$pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
			echo "s_server_start: $name did not start:" >&2
			cat "$out" >&2
			return 1
		fi
		sleep 0.05
	done
	export "${name}_PORT=$(sed -n 's/^ACCEPT 127.0.0.1:\([0-9]*\).*/\1/p' "$out")"
}

# servers NAME...: test servers that answer "ok": legit (the EC PKI's chain), legitrsa
# (the RSA PKI's), evil (an impostor for the same names).
servers() {
	local name dir
	for name in "$@"; do
		case $name in
		legit) dir=legit-ec ;;
		legitrsa) dir=legit-rsa ;;
		evil) dir=evil ;;
		*)
			echo "servers: no server '$name'" >&2
			return 1
			;;
		esac
		server_start "$name" --cert "$PKI/$dir/chain.pem" --key "$PKI/$dir/leaf.key" --reply
	done
}

# pin_policy MODE [RULE...]: $POLICY pins pin.test, and the hosts of the extra rules
# given (YAML flow mappings), to the EC leaf's key and the backup key, in MODE.
pin_policy() {
	local mode=$1 rule rules="  - { host: pin.test, pinset: legit }"
	shift
	for rule in "$@"; do
		rules+=$'\n'"  - $rule"
	done
	policy "mode: $mode
pinsets:
  legit: { pins: [ $(cat "$PKI/legit-ec/leaf.spki"), $(cat "$PKI/backup.spki") ] }
rules:
$rules"
}

# cli_pins [s_client args...]: the pins of the chain a server presents, computed by
# the openssl CLI alone (s_client -showcerts, x509, pkey, dgst), in the order and
# the form `pinwarden pin` prints them.
cli_pins() {
	local dir f
	dir=$(mktemp -d "$BATS_TEST_TMPDIR/chain.XXXXXX")
	openssl s_client "$@" -showcerts </dev/null 2>/dev/null |
		awk -v d="$dir" '/-----BEGIN CERTIFICATE-----/ { n++; f = sprintf("%s/%02d.pem", d, n); p = 1 }
			p { print > f }
			/-----END CERTIFICATE-----/ { p = 0; close(f) }'
	for f in "$dir"/*.pem; do
		[ -e "$f" ] || return 1
		printf -- '- sha256/%s\n' "$(openssl x509 -in "$f" -noout -pubkey |
			openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)"
		printf -- '- cert-sha256/%s\n' "$(openssl x509 -in "$f" -outform der |
			openssl dgst -sha256 -r | cut -d' ' -f1)"
	done
}

# The pin lines of `pinwarden pin` output.
pin_lines() {
	grep '^- ' <<<"$1"
}

# prom QUERY...: validate $METRICS with prometheus_client's parser and the format's
# rules (tools/promcheck.py), then print each query's value.
prom() {
	"$PYTHON" "$TOOLS/promcheck.py" "$METRICS" "$@"
}

# metric_is VALUE QUERY, metric_ge VALUE QUERY: for retry.
metric_is() {
	[ "$(prom "$2")" = "$1" ]
}

metric_ge() {
	[ "$(prom "$2")" -ge "$1" ]
}

# The capabilities caps_drop() in userspace/daemon.c keeps, one per line, sorted.
daemon_caps() {
	sed -n '/^static int caps_drop/,/^}/p' "$ROOT/userspace/daemon.c" |
		sed -n '/static const int keep\[\]/,/};/p' | grep -o 'CAP_[A-Z_]*' | sort
}

# The value of KEY in the unit FILE (its last assignment), continuation lines joined.
unit_value() {
	sed -e ':a' -e '/\\$/N; s/\\\n[[:space:]]*/ /; ta' "$1" | sed -n "s/^$2=//p" | tail -n 1
}

@test "pin HOST:PORT: the pins of the chain a live server presents, as the openssl CLI computes them" {
	requires root
	pki
	servers legit
	run --separate-stderr "$PW" pin "127.0.0.1:$legit_PORT" --sni pin.test
	[ "$status" -eq 0 ]
	local expected
	expected=$(cli_pins -connect "127.0.0.1:$legit_PORT" -servername pin.test)
	# leaf and intermediate: two certificates, two pins each, in the order served
	[ "$(grep -c '^- sha256/' <<<"$expected")" -eq 2 ]
	diff <(pin_lines "$output") <(printf '%s\n' "$expected")
	grep -qx -- "- $(cat "$PKI/legit-ec/leaf.spki")" <<<"$output"
	grep -q '^#   subject: *CN=pin.test' <<<"$output"
	grep -q '^#   issuer: *CN=pinwarden test intermediate EC,O=pinwarden test$' <<<"$output"
	# a name is resolved, and is the SNI when --sni is not given
	run --separate-stderr "$PW" pin "localhost:$legit_PORT"
	[ "$status" -eq 0 ]
	diff <(pin_lines "$output") <(cli_pins -connect "127.0.0.1:$legit_PORT" -servername localhost)
	[[ $output == *"# localhost:$legit_PORT sni=localhost [0]"* ]]
	# nobody listening: exit 1, and it says so
	server_stop legit
	run --separate-stderr "$PW" pin "127.0.0.1:$legit_PORT"
	[ "$status" -eq 1 ]
	[[ $stderr == *"cannot connect"* ]]
	run --separate-stderr "$PW" pin "no-port-here"
	[ "$status" -eq 1 ]
	[[ $stderr == *"not HOST:PORT"* ]]
}

@test "pin --sni: the chain the server presents for that name, not its default one" {
	requires root
	pki
	# RSA chain by default, the EC leaf for pin.test
	s_server_start sni -cert "$PKI/legit-rsa/leaf.pem" -key "$PKI/legit-rsa/leaf.key" \
		-cert_chain "$PKI/legit-rsa/int.pem" \
		-servername pin.test -cert2 "$PKI/legit-ec/leaf.pem" -key2 "$PKI/legit-ec/leaf.key"
	# an address sends no SNI: the default chain
	run --separate-stderr "$PW" pin "127.0.0.1:$sni_PORT"
	[ "$status" -eq 0 ]
	diff <(pin_lines "$output") <(cli_pins -connect "127.0.0.1:$sni_PORT" -noservername)
	grep -qx -- "- $(cat "$PKI/legit-rsa/leaf.spki")" <<<"$output"
	grep -qx -- "- $(cat "$PKI/legit-rsa/int.spki")" <<<"$output"
	# --sni pin.test: the other certificate, and the output says which name was asked
	run --separate-stderr "$PW" pin "127.0.0.1:$sni_PORT" --sni pin.test
	[ "$status" -eq 0 ]
	diff <(pin_lines "$output") <(cli_pins -connect "127.0.0.1:$sni_PORT" -servername pin.test)
	[ "$(pin_lines "$output")" = "$(printf -- '- %s\n- cert-sha256/%s' \
		"$(cat "$PKI/legit-ec/leaf.spki")" "$(cat "$PKI/legit-ec/leaf.certsha")")" ]
	[[ $output == *"sni=pin.test"* ]]
	# --sni overrides the host's own name
	run --separate-stderr "$PW" pin "localhost:$sni_PORT" --sni pin.test
	[ "$status" -eq 0 ]
	grep -qx -- "- $(cat "$PKI/legit-ec/leaf.spki")" <<<"$output"
}

@test "learn: a draft from real clients passes check; run with it, the same traffic matches, and enforced it stops an impostor" {
	requires bpf
	pki
	servers legit legitrsa evil
	local draft=$BATS_TEST_TMPDIR/draft.yaml learnlog=$BATS_TEST_TMPDIR/learn.jsonl out
	# the same traffic twice: curl to pin.test (EC PKI), python to other.test (RSA PKI)
	traffic() {
		out=$(curl_pin pin.test "$legit_PORT" --cacert "$PKI/legit-ec/root.pem")
		[ "$out" = ok ]
		out=$(tls_client --host other.test --port "$legitrsa_PORT" --cafile "$PKI/legit-rsa/root.pem")
		[ "$out" = ok ]
	}

	touch "$learnlog"
	"$PW" learn --duration 5 --output "$draft" --log "$learnlog" 3>&- 2>"$BATS_TEST_TMPDIR/learn.err" &
	PW_PID=$!	# teardown stops it if anything below fails
	PW_LOG=$learnlog events_wait '.event == "ready"' 30
	traffic
	PW_LOG=$learnlog retry 50 0.1 events_count_ge 2 '.event == "tls_chain"'
	local rc=0
	wait "$PW_PID" || rc=$?
	PW_PID=
	[ "$rc" -eq 0 ]
	# one rule per host, with the keys its server presented
	[ "$(grep -c '^  - host:' "$draft")" -eq 2 ]
	grep -qx '  - host: "pin.test"' "$draft"
	grep -qx '  - host: "other.test"' "$draft"
	grep -q -- "- $(cat "$PKI/legit-ec/leaf.spki")" "$draft"
	grep -q -- "- $(cat "$PKI/legit-rsa/leaf.spki")" "$draft"
	! grep -q -- "$(cat "$PKI/evil/leaf.spki")" "$draft" || false
	run "$PW" check "$draft"
	[ "$status" -eq 0 ]
	[[ $output == *"ok: 2 rules (0 enforced), 2 pinsets"* ]]

	# run with the draft as written (audit): the same traffic matches
	pw_start --policy "$draft"
	traffic
	local ev
	ev=$(events_wait '.event == "tls_chain" and .host == "pin.test"')
	[ "$(event_field "$ev" .verdict)" = match ]
	[ "$(event_field "$ev" .comm)" = curl ]
	ev=$(events_wait '.event == "tls_chain" and .host == "other.test"')
	[ "$(event_field "$ev" .verdict)" = match ]
	[ "$(event_field "$ev" .rule)" = other.test ]
	# the pins discriminate: the impostor for pin.test is a mismatch
	curl_pin pin.test "$evil_PORT" -k >/dev/null
	ev=$(events_wait '.event == "tls_chain" and .verdict == "mismatch"')
	[ "$(event_field "$ev" .action)" = would-kill ]

	# enforce the learned pins by a reload: legitimate traffic still flows, the impostor is stopped
	sed -i 's/^mode: audit$/mode: enforce/' "$draft"
	kill -HUP "$PW_PID"
	events_wait '.event == "policy_loaded" and .generation == 2' >/dev/null
	traffic
	ev=$(events_wait '.event == "tls_chain" and .host == "other.test" and .generation == 2')
	[ "$(event_field "$ev" .verdict)" = match ]
	[ "$(event_field "$ev" .mode)" = enforce ]
	run curl_pin pin.test "$evil_PORT" -k -H "X-Secret: learned"
	[ "$status" -eq 137 ]
	! grep -q learned "$evil_RECORD" || false
	events_wait '.event == "tls_chain" and .action == "killed"' >/dev/null
}

@test "status: root's only (0600 in a 0700 directory); another user is told so, not that no daemon runs" {
	requires bpf
	pki
	# a scratch directory others may traverse: only the status' own modes keep them out
	OPS_SCRATCH=$(mktemp -d /tmp/pw-ops.XXXXXX)
	chmod 0755 "$OPS_SCRATCH"
	local st=$OPS_SCRATCH/run/status.json
	pw_start --status "$st"
	[ "$(stat -c '%a %U' "$OPS_SCRATCH/run")" = "700 root" ]
	[ "$(stat -c '%a %U' "$st")" = "600 root" ]
	run "$PW" status --status "$st" --json
	[ "$status" -eq 0 ]
	[ "$(jq -r .pid <<<"$output")" = "$PW_PID" ]
	# (a copy of the binary: the one under test may sit where that user cannot reach)
	install -m 0755 "$PW" "$OPS_SCRATCH/pinwarden"
	run --separate-stderr setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$OPS_SCRATCH/pinwarden" status --status "$st"
	[ "$status" -eq 1 ]
	[[ $stderr == *"Permission denied"*"root's only"* ]]
	run setpriv --reuid=65534 --regid=65534 --clear-groups cat "$st"
	[ "$status" -ne 0 ]
	# the rewrite every second keeps the modes (a fresh file each time)
	local ino
	ino=$(stat -c %i "$st")
	retry 30 0.1 bash -c "[ \"\$(stat -c %i '$st')\" != $ino ]"
	[ "$(stat -c '%a %U' "$st")" = "600 root" ]
	# the default path: `pinwarden status` with no option finds a daemon started with none
	pw_stop
	pw_start
	run "$PW" status --json
	[ "$status" -eq 0 ]
	[ "$(jq -r .pid <<<"$output")" = "$PW_PID" ]
	[ "$(stat -c '%a %U' /run/pinwarden/status.json)" = "600 root" ]
}

@test "metrics: Prometheus text format (prometheus_client parses it), replaced atomically, counting verdicts, reloads and libraries" {
	requires bpf
	pki
	servers legit legitrsa evil
	pin_policy audit
	mkdir "$BATS_TEST_TMPDIR/textfile"
	METRICS=$BATS_TEST_TMPDIR/textfile/pinwarden.prom
	pw_start --policy "$POLICY" --metrics "$METRICS"
	retry 30 0.1 test -s "$METRICS"
	# valid from the first write; the series a dashboard needs exist at 0 before any traffic
	run prom 'pinwarden_verdicts_total{library=openssl,verdict=match,action=none}' \
		'pinwarden_verdicts_total{library=openssl,verdict=mismatch,action=would-kill}' \
		'pinwarden_verdicts_total{library=openssl,verdict=mismatch,action=killed}' \
		pinwarden_policy_generation pinwarden_policy_reload_failures_total
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[*]}" = "0 0 0 1 0" ]
	# (other processes on the host may have handshaken meanwhile: presence only)
	prom 'pinwarden_verdicts_total{library=openssl,verdict=unpinned,action=none}' \
		'pinwarden_lost_records_total{record=chain}' 'pinwarden_lost_records_total{record=certificate}' \
		'pinwarden_kernel_failures_total{reason=copy_failed}' \
		'pinwarden_kernel_failures_total{reason=kill_failed}' pinwarden_start_time_seconds >/dev/null
	[ "$(prom 'pinwarden_libraries_attached{library=openssl}')" -ge 1 ]
	[ "$(prom 'pinwarden_probes_attached{library=openssl}')" -gt "$(prom 'pinwarden_libraries_attached{library=openssl}')" ]
	[ "$(prom 'pinwarden_build_info{version=0.1.0}')" = 1 ]
	# HELP and TYPE for every family, counters in _total (promcheck enforces it; show it here)
	grep -qx '# TYPE pinwarden_verdicts_total counter' "$METRICS"
	grep -q '^# HELP pinwarden_verdicts_total .' "$METRICS"
	grep -qx '# TYPE pinwarden_policy_generation gauge' "$METRICS"
	! grep '^# TYPE .* counter$' "$METRICS" | grep -v '_total counter$' || false
	# readable by the node_exporter (another user), and replaced, never rewritten in place
	[ "$(stat -c %a "$METRICS")" = 644 ]
	local ino
	ino=$(stat -c %i "$METRICS")

	# three matches (curl), two mismatches (python), one unpinned (another name)
	local i
	for i in 1 2 3; do
		curl_pin pin.test "$legit_PORT" --cacert "$PKI/legit-ec/root.pem" >/dev/null
	done
	for i in 1 2; do
		tls_client --host pin.test --port "$evil_PORT" --insecure >/dev/null
	done
	tls_client --host other.test --port "$legitrsa_PORT" --insecure >/dev/null
	retry 50 0.1 events_count_ge 6 '.event == "tls_chain"'
	retry 30 0.1 metric_is 3 'pinwarden_verdicts_total{library=openssl,verdict=match,action=none}'
	retry 30 0.1 metric_is 2 'pinwarden_verdicts_total{library=openssl,verdict=mismatch,action=would-kill}'
	jq -c 'select(.event == "tls_chain" and .host == "other.test") | [.library, .verdict, .action]' "$PW_LOG"
	# the file is replaced every second: the last chain may come in after the one above
	retry 30 0.1 metric_ge 1 'pinwarden_verdicts_total{library=openssl,verdict=unpinned,action=none}'
	[ "$(prom pinwarden_verdicts_total)" -ge 6 ]
	[ "$(prom pinwarden_chains_judged_total)" -ge 6 ]
	[ "$(prom pinwarden_chain_records_total)" -ge 6 ]
	[ "$(prom pinwarden_certificates_captured_total)" -ge \
		"$(jq -s '[.[] | select(.event == "tls_chain") | .chain | length] | add' "$PW_LOG")" ]
	[ "$(stat -c %i "$METRICS")" != "$ino" ]
	[ "$(stat -c %a "$METRICS")" = 644 ]
	# nothing but the file itself is left in the collector's directory
	retry 10 0.05 bash -c "[ \"\$(ls -A '$BATS_TEST_TMPDIR/textfile')\" = pinwarden.prom ]"

	# a good reload, sent the way the Kubernetes manifest says (pid from `pinwarden status`)
	local hup
	hup=$(sed -n "s/^#   kubectl -n pinwarden exec POD -- sh -c '\(.*\)'\$/\1/p" "$MANIFEST")
	[ -n "$hup" ]
	PATH=$(dirname "$PW"):$PATH sh -c "$hup"
	events_wait '.event == "policy_loaded" and .generation == 2' >/dev/null
	retry 30 0.1 metric_is 2 pinwarden_policy_generation
	[ "$(prom pinwarden_policy_reloads_total)" = 1 ]
	# a refused reload: counted, and the generation in force stays
	policy "rules: [ {host: x} ]"
	kill -HUP "$PW_PID"
	events_wait '.event == "policy_error"' >/dev/null
	retry 30 0.1 metric_is 1 pinwarden_policy_reload_failures_total
	[ "$(prom pinwarden_policy_reloads_total)" = 2 ]
	[ "$(prom pinwarden_policy_generation)" = 2 ]
}

@test "make install: binary, man pages, unit, example policy under DESTDIR and PREFIX, with their modes" {
	local dest=$BATS_TEST_TMPDIR/dest
	run make -C "$ROOT" --no-print-directory install DESTDIR="$dest" PREFIX=/usr
	[ "$status" -eq 0 ]
	# exactly these files, nothing outside DESTDIR
	run bash -c "cd '$dest' && find . -type f -printf '%m %p\n' | LC_ALL=C sort"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '%s\n' \
		'600 ./etc/pinwarden/policy.yaml' \
		'644 ./usr/lib/systemd/system/pinwarden.service' \
		'644 ./usr/share/doc/pinwarden/examples/policy.yaml' \
		'644 ./usr/share/doc/pinwarden/incident-response.md' \
		'644 ./usr/share/man/man5/pinwarden-policy.5' \
		'644 ./usr/share/man/man8/pinwarden.8' \
		'755 ./usr/sbin/pinwarden')" ]
	"$dest/usr/sbin/pinwarden" version
	cmp "$ROOT/build/pinwarden" "$dest/usr/sbin/pinwarden"
	# the unit names the installed paths
	[ "$(unit_value "$dest/usr/lib/systemd/system/pinwarden.service" ExecStart | cut -d' ' -f1-4)" = \
		"/usr/sbin/pinwarden run --policy /etc/pinwarden/policy.yaml" ]
	! grep -q /usr/local "$dest/usr/lib/systemd/system/pinwarden.service" || false
	# the installed policy passes check, and is one the daemon would trust
	run "$PW" check --strict "$dest/etc/pinwarden/policy.yaml"
	[ "$status" -eq 0 ]
	[ "$(stat -c %U "$dest/etc/pinwarden/policy.yaml")" = "$(id -un)" ]
	# a second install leaves an operator's policy alone
	echo "# the operator's" >>"$dest/etc/pinwarden/policy.yaml"
	run make -C "$ROOT" --no-print-directory install DESTDIR="$dest" PREFIX=/usr
	[ "$status" -eq 0 ]
	grep -qx "# the operator's" "$dest/etc/pinwarden/policy.yaml"
	# PREFIX alone moves everything but the configuration
	run make -C "$ROOT" --no-print-directory install DESTDIR="$dest/b"
	[ "$status" -eq 0 ]
	[ -x "$dest/b/usr/local/sbin/pinwarden" ]
	[ -f "$dest/b/usr/local/share/man/man5/pinwarden-policy.5" ]
	[ -f "$dest/b/etc/pinwarden/policy.yaml" ]
	grep -q '^ExecStart=/usr/local/sbin/pinwarden ' "$dest/b/usr/local/lib/systemd/system/pinwarden.service"
}

@test "systemd unit: systemd-analyze verify accepts it as installed; restart, reload, capabilities and hardening as documented" {
	command -v systemd-analyze >/dev/null || skip "needs systemd-analyze (Debian package systemd)"
	local prefix=$BATS_TEST_TMPDIR/prefix unit
	# installed without DESTDIR, so the paths it names exist and verify can check them
	run make -C "$ROOT" --no-print-directory install PREFIX="$prefix" SYSCONFDIR="$prefix/etc"
	[ "$status" -eq 0 ]
	unit=$prefix/lib/systemd/system/pinwarden.service
	# verify loads it offline (no systemd needs to run): unknown keys, bad values, missing
	# executables and man pages named by Documentation= are all reported
	run env MANPATH="$prefix/share/man" systemd-analyze verify "$unit"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(unit_value "$unit" Restart)" = on-failure ]
	[ "$(unit_value "$unit" ExecReload)" = '/bin/kill -HUP $MAINPID' ]
	[ "$(unit_value "$unit" RestartPreventExitStatus)" = 2 ]
	[[ $(unit_value "$unit" ExecStart) == "$prefix/sbin/pinwarden run --policy $prefix/etc/pinwarden/policy.yaml "* ]]
	# exactly the capabilities the daemon keeps after start (caps_drop() in daemon.c)
	[ "$(daemon_caps | wc -l)" -eq 8 ]
	diff <(unit_value "$unit" CapabilityBoundingSet | tr ' ' '\n' | sort) <(daemon_caps)
	# each one explained in a comment
	local cap
	for cap in $(daemon_caps); do
		grep -q "^#   $cap  *[a-z]" "$unit"
	done
	[ "$(unit_value "$unit" NoNewPrivileges)" = yes ]
	[ "$(unit_value "$unit" ProtectSystem)" = strict ]
	[ "$(unit_value "$unit" RuntimeDirectoryMode)" = 0700 ]
	# what would break BPF, uprobes, discovery or SOCK_DESTROY is not there
	! grep -Eq '^(PrivateNetwork|PrivateUsers|ProtectProc|ProcSubset|DynamicUser|User)=' "$unit" || false
	# systemd's own exposure rating stays in its "OK" band
	run systemd-analyze security --offline=yes --threshold=40 "$unit"
	[ "$status" -eq 0 ]
	[[ $output == *"Overall exposure level for pinwarden.service: "[0-3].*" OK"* ]]
}

@test "systemd unit: the daemon runs, judges and enforces with only the capabilities the unit leaves it" {
	requires bpf
	pki
	servers legit evil
	# kill for pin.test, reset for other.test
	pin_policy enforce "{ host: other.test, pinset: legit, action: reset }"
	# CapabilityBoundingSet as systemd applies it to a root service: the bounding set
	local caps wrapper=$BATS_TEST_TMPDIR/pinwarden-bounded
	caps=$(unit_value "$UNIT" CapabilityBoundingSet | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
	printf '#!/bin/sh\nexec setpriv --bounding-set=-all,%s %s "$@"\n' "$caps" "$PW" >"$wrapper"
	chmod 0755 "$wrapper"
	PW=$wrapper pw_start --policy "$POLICY"
	# the daemon holds exactly those, effective, after its own drop
	local mask
	mask=$(setpriv --bounding-set=-all,"$caps" grep CapBnd /proc/self/status | awk '{print $2}')
	[ "$(awk '/^CapEff/ {print $2}' "/proc/$PW_PID/status")" = "$mask" ]
	[ "$(awk '/^CapBnd/ {print $2}' "/proc/$PW_PID/status")" = "$mask" ]
	! grep -q "cannot drop" "$PW_ERR" || false
	# judge, kill, reset
	run curl_pin pin.test "$legit_PORT" --cacert "$PKI/legit-ec/root.pem"
	[ "$output" = ok ]
	run curl_pin pin.test "$evil_PORT" -k -H "X-Secret: bounded"
	[ "$status" -eq 137 ]
	run tls_client --host other.test --port "$evil_PORT" --insecure --secret bounded-reset
	# the connection failed or closed without a reply; the process lived
	[ "$status" -ne 137 ]
	[ "$output" != ok ]
	[ ! -s "$evil_RECORD" ]
	events_wait '.event == "tls_chain" and .verdict == "match"' >/dev/null
	events_wait '.event == "tls_chain" and .action == "killed"' >/dev/null
	events_wait '.event == "tls_chain" and .action == "reset"' >/dev/null
}

@test "kubernetes: a DaemonSet with hostPID, privileges, the mounts it needs, and a ConfigMap policy that check accepts" {
	local policy=$BATS_TEST_TMPDIR/configmap-policy.yaml
	run "$PYTHON" "$TOOLS/k8scheck.py" "$MANIFEST" "$policy"
	echo "$output"
	[ "$status" -eq 0 ]
	run "$PW" check --strict "$policy"
	[ "$status" -eq 0 ]
	# the image the manifest runs carries exactly the libraries the binary links
	local lib pkg
	for lib in $(ldd "$PW" | awk '/=> \// {print $3}'); do
		pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib")
		pkg=${pkg%%:*}
		[ "$pkg" = libc6 ] && continue
		grep -q "[[:space:]]$pkg[[:space:]]" "$ROOT/deploy/container/Dockerfile" ||
			grep -q "[[:space:]]$pkg\$" "$ROOT/deploy/container/Dockerfile"
	done
}

@test "man pages: pinwarden(8) and pinwarden-policy(5) render without a warning, and document every policy key" {
	local page
	for page in "$ROOT/docs/pinwarden.8" "$ROOT/docs/pinwarden-policy.5"; do
		run groff -man -z -ww "$page"
		[ "$status" -eq 0 ]
		[ -z "$output" ]
		run mandoc -T lint -W warning "$page"
		echo "$output"
		[ "$status" -eq 0 ]
		[ -z "$output" ]
	done
	grep -q '^\.BR pinwarden-policy (5)' "$ROOT/docs/pinwarden.8"
	# every key the parser knows (its names[] tables) has its entry in the policy page
	local key
	for key in $(awk '/static const char \*const names\[[A-Z_]*\] = \{/, /\};/' \
		"$ROOT/userspace/policy.c" | grep -o '"[a-z]*"' | tr -d '"' | sort -u); do
		grep -Eq "^\.(B|BR|BI) $key:" "$ROOT/docs/pinwarden-policy.5" ||
			grep -Eq "^\.(B|BR|BI) \"?$key:" "$ROOT/docs/pinwarden-policy.5"
	done
	# the page's example is a policy check accepts without a warning
	sed -n '/^\.EX/,/^\.EE/p' "$ROOT/docs/pinwarden-policy.5" | sed '1d;$d' >"$BATS_TEST_TMPDIR/example.yaml"
	run "$PW" check --strict "$BATS_TEST_TMPDIR/example.yaml"
	[ "$status" -eq 0 ]
	[[ $output == *"ok: 3 rules (2 enforced), 2 pinsets, 4 pins"* ]]
}

# The guide's examples: "comment<TAB>command" for every jq line of its sh blocks,
# the comment being the last one above it.
guide_examples() {
	awk '/^```sh$/ { on = 1; next } /^```/ { on = 0 } on && /^# / { c = substr($0, 3) }
		on && /^jq / { print c "\t" $0 }' "$GUIDE"
}

# guide_run TEXT: run the example whose comment contains TEXT on $PW_LOG.
guide_run() {
	local cmd
	cmd=$(guide_examples | awk -F'\t' -v t="$1" 'index($1, t) { print $2; exit }')
	[ -n "$cmd" ] || { echo "no example in the guide for '$1'" >&2; return 1; }
	bash -c "set -o pipefail; ${cmd//\/var\/log\/pinwarden\/events.jsonl/$PW_LOG}"
}

@test "incident-response guide: its jq examples answer right on a real event log" {
	requires bpf
	pki
	servers legit legitrsa evil
	# pin.test enforced (kill), other.test audited
	pin_policy enforce "{ host: other.test, pinset: legit, mode: audit }"
	pw_start --policy "$POLICY"
	# an impostor killed, a legitimate match, an audit rule's would-kill, an unpinned host
	run curl_pin pin.test "$evil_PORT" -k
	[ "$status" -eq 137 ]
	curl_pin pin.test "$legit_PORT" --cacert "$PKI/legit-ec/root.pem" >/dev/null
	tls_client --host other.test --port "$legitrsa_PORT" --cafile "$PKI/legit-rsa/root.pem" >/dev/null
	tls_client --host unpinned.test --port "$legitrsa_PORT" --insecure >/dev/null
	retry 50 0.1 events_count_ge 4 '.event == "tls_chain"'
	# a refused reload, then a good one
	cp "$POLICY" "$BATS_TEST_TMPDIR/good.yaml"
	policy "rules: [ {host: x} ]"
	kill -HUP "$PW_PID"
	events_wait '.event == "policy_error"' >/dev/null
	cp "$BATS_TEST_TMPDIR/good.yaml" "$POLICY"
	kill -HUP "$PW_PID"
	events_wait '.event == "policy_loaded" and .generation == 2' >/dev/null
	events_lint

	# every example runs without an error
	local n=0 cmd
	while IFS=$'\t' read -r _ cmd; do
		n=$((n + 1))
		bash -c "set -o pipefail; ${cmd//\/var\/log\/pinwarden\/events.jsonl/$PW_LOG}" >/dev/null ||
			{ echo "the guide's example failed: $cmd" >&2; return 1; }
	done < <(guide_examples)
	[ "$n" -ge 10 ]
	# and the ones an incident starts with say what happened
	run guide_run "every mismatch"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	[ "$(jq -r '[.host, .action, (.exe | split("/") | last)] | join(" ")' <<<"${lines[0]}")" = "pin.test killed curl" ]
	[ "$(jq -r '[.host, .action] | join(" ")' <<<"${lines[1]}")" = "other.test would-kill" ]
	[ "$(jq -r .peer <<<"${lines[0]}")" = "127.0.0.1:$evil_PORT" ]
	run guide_run "what enforcement stopped"
	[ "${#lines[@]}" -eq 1 ]
	[ "$(jq -r .host <<<"$output")" = pin.test ]
	run guide_run "what audit-mode rules would have stopped"
	[ "${#lines[@]}" -eq 1 ]
	[ "$(jq -r .rule <<<"$output")" = other.test ]
	run guide_run "by host and program"
	[ "$(jq -r 'map("\(.host)=\(.reports)") | sort | join(" ")' <<<"$output")" = "other.test=1 pin.test=1" ]
	run guide_run "the keys presented against the pins expected"
	[ "$(jq -r 'select(.host == "pin.test") | .presented[0]' <<<"$output")" = "$(cat "$PKI/evil/leaf.spki")" ]
	[ "$(jq -r 'select(.host == "pin.test") | .expected[0]' <<<"$output")" = \
		"pin-sha256=\"$(cut -d/ -f2- "$PKI/legit-ec/leaf.spki")\"" ]
	run guide_run "the leaf certificate of the first mismatch"
	[ "$status" -eq 0 ]
	[[ $output == *"issuer="*"CN = pinwarden evil root"* ]]
	[[ $output == *"DNS:pin.test"* ]]
	run guide_run "which keys each host presented"
	[ "$(jq -r '.[] | select(.host == "pin.test") | .keys | length' <<<"$output")" -eq 2 ]
	run guide_run "the policy in force and every reload"
	[ "$(jq -sr 'map(.event) | join(" ")' <<<"$output")" = "policy_loaded policy_error policy_loaded" ]
	[ "$(jq -sr '.[1].kept_generation' <<<"$output")" = 1 ]
	run guide_run "mismatches inside containers"
	[ "$status" -eq 0 ]
}
