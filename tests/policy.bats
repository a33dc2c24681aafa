#!/usr/bin/env bats
# The policy engine on a live daemon: scopes (executable, cgroup), reload on SIGHUP,
# log: mismatches, expiry.

# server_start exports NAME_PORT...
# shellcheck disable=SC2154

load helpers

setup() {
	requires bpf
	pki
	pin_test_servers
	# the leaf's key: its pin counts whether the client verifies or not (these clients do not)
	LEGIT=$(cat "$PKI/legit-ec/leaf.spki")
	EVIL=$(cat "$PKI/evil/leaf.spki")
	BACKUP=$(cat "$PKI/backup.spki")
}

teardown() {
	pw_teardown
	if [ -n "${CG:-}" ] && [ -d "$CG" ]; then
		# move anything left back to the root, then remove the test cgroups, deepest first
		local d p
		while read -r d; do
			while read -r p; do echo "$p" >"$CGROOT/cgroup.procs" 2>/dev/null || true; done <"$d/cgroup.procs"
			rmdir "$d" || true
		done < <(find "$CG" -depth -type d)
	fi
}

@test "scope exe: a rule scoped to curl judges curl, not python3, and beats the unscoped rule" {
	policy "
pinsets:
  legit: { pins: [ $LEGIT, $BACKUP ] }
  evil: { pins: [ $EVIL, $BACKUP ] }
rules:
  - host: pin.test
    pinset: legit
    name: everyone
  - host: '**.test'
    pinset: evil
    name: curl-only
    scope: { exe: $(readlink -f "$(command -v curl)") }"
	pw_start --policy "$POLICY"
	curl_pin pin.test "$legit_PORT" -k >/dev/null
	tls_client --host pin.test --port "$legit_PORT" --insecure >/dev/null
	local ev
	ev=$(events_wait '.event == "tls_chain" and .comm == "curl"')
	# scoped beats unscoped, even with a less specific host pattern
	[ "$(event_field "$ev" .rule)" = curl-only ]
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	ev=$(events_wait '.event == "tls_chain" and .comm == "python3"')
	[ "$(event_field "$ev" .rule)" = everyone ]
	[ "$(event_field "$ev" .verdict)" = match ]
}

@test "scope exe follows its path: a scoped program replaced by an upgrade (a new file, a new inode, at the same path) is still judged by its rule" {
	local dir=$BATS_TEST_TMPDIR/bin ev
	mkdir -p "$dir"
	cp "$(readlink -f "$(command -v curl)")" "$dir/mycurl"
	policy "
pinsets:
  legit: { pins: [ $(cat "$PKI/legit-ec/leaf.spki"), $BACKUP ] }
  evil: { pins: [ $EVIL, $BACKUP ] }
rules:
  - host: pin.test
    pinset: evil
    name: everyone
  - host: pin.test
    pinset: legit
    mode: enforce
    name: mycurl
    scope: { exe: $dir/mycurl }"
	pw_start --policy "$POLICY"
	# the package manager's way: a new file renamed over the old one
	cp "$dir/mycurl" "$dir/mycurl.new"
	mv "$dir/mycurl.new" "$dir/mycurl"
	run "$dir/mycurl" --silent --max-time 20 --resolve "pin.test:$evil_PORT:127.0.0.1" -k \
		"https://pin.test:$evil_PORT/"
	# killed by the scoped rule's enforcement, not let through by the audit-only default
	[ "$status" -eq 137 ]
	ev=$(events_wait '.event == "tls_chain" and .comm == "mycurl"')
	[ "$(event_field "$ev" .rule)" = mycurl ]
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	[ "$(event_field "$ev" .action)" = killed ]
	[ "$(event_field "$ev" .exe)" = "$dir/mycurl" ]
	# the impostor never saw the request
	[ ! -s "$evil_RECORD" ]
}

@test "scope cgroup: a client inside the cgroup (or below it) is judged by the scoped rule" {
	CGROOT=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
	[ -n "$CGROOT" ] || skip "no cgroup v2 hierarchy"
	CG=$CGROOT/pinwarden-test-$$
	mkdir "$CG" "$CG/inner"
	policy "
mode: enforce
pinsets:
  legit: { pins: [ $LEGIT, $BACKUP ] }
rules:
  - host: pin.test
    pinset: legit
    name: in-app
    scope: { cgroup: /pinwarden-test-$$ }"
	pw_start --policy "$POLICY"
	# outside the cgroup: no rule applies, the impostor is only reported
	run tls_client --host pin.test --port "$evil_PORT" --insecure --secret outside
	[ "$status" -eq 0 ]
	ev=$(events_wait '.event == "tls_chain" and .comm == "python3"')
	[ "$(event_field "$ev" .verdict)" = unpinned ]
	# inside a cgroup below the scoped one: enforced
	run bash -c "echo \$\$ > '$CG/inner/cgroup.procs' && exec '$PYTHON' '$TLS_CLIENT' --host pin.test --port $evil_PORT --insecure --secret inside"
	[ "$status" -eq 137 ]
	ev=$(events_wait '.event == "tls_chain" and .action == "killed"')
	[ "$(event_field "$ev" .rule)" = in-app ]
	[ "$(event_field "$ev" .cgroup)" = "/pinwarden-test-$$/inner" ]
	# the impostor got the first client's data, not one byte of the second's
	grep -q outside "$evil_RECORD"
	! grep -q inside "$evil_RECORD" || false
}

@test "reload: SIGHUP switches to the new policy; a broken file keeps the old one and says where" {
	policy "
pinsets:
  p: { pins: [ $EVIL, $BACKUP ] }
rules:
  - host: pin.test
    pinset: p"
	pw_start --policy "$POLICY"
	tls_client --host pin.test --port "$legit_PORT" --insecure >/dev/null
	ev=$(events_wait '.event == "tls_chain" and .generation == 1')
	[ "$(event_field "$ev" .verdict)" = mismatch ]

	policy "
pinsets:
  p: { pins: [ $LEGIT, $BACKUP ] }
rules:
  - host: pin.test
    pinset: p"
	kill -HUP "$PW_PID"
	events_wait '.event == "policy_loaded" and .generation == 2'
	tls_client --host pin.test --port "$legit_PORT" --insecure >/dev/null
	ev=$(events_wait '.event == "tls_chain" and .generation == 2')
	[ "$(event_field "$ev" .verdict)" = match ]

	policy "
pinsets:
  p: { pins: [ $EVIL ] }
rules:
  - host: pin.test
    pinset: nowhere"
	kill -HUP "$PW_PID"
	ev=$(events_wait '.event == "policy_error"')
	[ "$(event_field "$ev" '.errors[0].line')" -eq 6 ]
	[ "$(event_field "$ev" '.errors[0].col')" -eq 13 ]
	[ "$(event_field "$ev" .kept_generation)" -eq 2 ]
	tls_client --host pin.test --port "$legit_PORT" --insecure >/dev/null
	retry 50 0.1 events_count_ge 2 '.event == "tls_chain" and .generation == 2'
	[ "$(_events_count '.event == "tls_chain" and .generation == 2 and .verdict == "match"')" -eq 2 ]
	[ "$(_events_count '.event == "policy_loaded"')" -eq 2 ]
	grep -q "policy.yaml:6:13" "$PW_ERR"
}

@test "log: mismatches logs only mismatches; an expired pinset is reported, not enforced" {
	policy "
mode: enforce
log: mismatches
pinsets:
  p: { pins: [ $LEGIT, $BACKUP ] }
  old:
    expires: 2020-01-31
    pins: [ $LEGIT, $BACKUP ]
rules:
  - host: pin.test
    pinset: p
  - host: other.test
    pinset: old"
	pw_start --policy "$POLICY"
	tls_client --host pin.test --port "$legit_PORT" --insecure >/dev/null
	tls_client --host a.pin.test --port "$legit_PORT" --insecure >/dev/null
	run tls_client --host other.test --port "$evil_PORT" --insecure
	[ "$status" -eq 0 ]
	ev=$(events_wait '.event == "tls_chain" and .host == "other.test"')
	[ "$(event_field "$ev" .verdict)" = expired ]
	[ "$(event_field "$ev" .action)" = none ]
	run tls_client --host pin.test --port "$evil_PORT" --insecure
	[ "$status" -eq 137 ]
	events_wait '.event == "tls_chain" and .verdict == "mismatch"'
	pw_stop
	# the match and the unpinned chains were judged but not logged
	[ "$(_events_count '.event == "tls_chain"')" -eq 2 ]
}

@test "reload under load: 50 reloads while clients handshake; each chain judged by one whole policy" {
	local a b i
	a="
pinsets:
  p: { pins: [ $LEGIT, $BACKUP ] }
rules:
  - host: pin.test
    pinset: p
    name: generation-odd"
	b="
pinsets:
  p: { pins: [ $EVIL, $BACKUP ] }
rules:
  - host: pin.test
    pinset: p
    name: generation-even"
	policy "$a"
	pw_start --policy "$POLICY"
	# clients in a loop for the whole test
	(
		while [ ! -e "$BATS_TEST_TMPDIR/stop" ]; do
			curl --silent --max-time 5 -k --resolve "pin.test:$legit_PORT:127.0.0.1" \
				"https://pin.test:$legit_PORT/" >/dev/null
		done
	) 3>&- &
	local loop=$!
	for i in $(seq 2 51); do
		if ((i % 2)); then policy "$a"; else policy "$b"; fi
		kill -HUP "$PW_PID"
		events_wait ".event == \"policy_loaded\" and .generation == $i" >/dev/null
	done
	touch "$BATS_TEST_TMPDIR/stop"
	wait "$loop"
	pw_stop
	local total odd even mixed none
	total=$(_events_count '.event == "tls_chain"')
	odd=$(_events_count '.event == "tls_chain" and .generation % 2 == 1 and .rule == "generation-odd" and .verdict == "match"')
	even=$(_events_count '.event == "tls_chain" and .generation % 2 == 0 and .rule == "generation-even" and .verdict == "mismatch"')
	none=$(_events_count '.event == "tls_chain" and .rule == null')
	echo "chains: $total, judged by odd generations: $odd, by even ones: $even, by none: $none"
	[ "$total" -ge 50 ]
	[ "$none" -eq 0 ]
	# every chain by one whole policy: the rule, the pins and the generation agree
	[ "$((odd + even))" -eq "$total" ]
	[ "$odd" -gt 0 ]
	[ "$even" -gt 0 ]
	# chains were judged by many generations, not just the first and last
	[ "$(jq -s '[.[] | select(.event == "tls_chain") | .generation] | unique | length' "$PW_LOG")" -ge 10 ]
	# and the old generations left the kernel's maps
	[ "$(_events_count '.event == "policy_error"')" -eq 0 ]
}

@test "identical mismatch reports are merged with a count; anything different is logged" {
	policy "
pinsets:
  p: { pins: [ $LEGIT, $BACKUP ] }
rules:
  - host: pin.test
    pinset: p"
	pw_start --policy "$POLICY" --dedup 3
	local i
	for i in 1 2 3 4 5; do
		tls_client --host pin.test --port "$evil_PORT" --insecure >/dev/null
	done
	# another host: not identical, logged at once
	tls_client --host a.pin.test --port "$evil_PORT" --insecure >/dev/null
	ev=$(events_wait '.event == "tls_chain_repeated"' 15)
	[ "$(event_field "$ev" .count)" -eq 4 ]
	[ "$(event_field "$ev" .host)" = pin.test ]
	[ "$(event_field "$ev" .verdict)" = mismatch ]
	[ "$(event_field "$ev" '.chain[0].spki_sha256')" = "$EVIL" ]
	[[ $(event_field "$ev" .first) < $(event_field "$ev" .last) ]]
	[ "$(_events_count '.event == "tls_chain" and .host == "pin.test"')" -eq 1 ]
	[ "$(_events_count '.event == "tls_chain" and .host == "a.pin.test"')" -eq 1 ]
	# after the window, the same report is logged in full again
	tls_client --host pin.test --port "$evil_PORT" --insecure >/dev/null
	retry 50 0.1 events_count_ge 2 '.event == "tls_chain" and .host == "pin.test"'
	# matches are never merged
	for i in 1 2 3; do
		tls_client --host pin.test --port "$legit_PORT" --insecure >/dev/null
	done
	retry 50 0.1 events_count_ge 3 '.event == "tls_chain" and .verdict == "match"'
	events_lint
}

@test "events name the container: docker, containerd, cri-o, podman and kubepods cgroup names" {
	CGROOT=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
	[ -n "$CGROOT" ] || skip "no cgroup v2 hierarchy"
	local id=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
	CG=$CGROOT/pinwarden-test-$$
	mkdir -p "$CG"
	pw_start
	local name path
	for name in "docker-$id.scope" "cri-containerd-$id.scope" "crio-$id.scope" \
		"libpod-$id.scope" "kubepods-besteffort-pod1234_5678.slice/$id"; do
		path=$CG/$name
		mkdir -p "$path"
		run bash -c "echo \$\$ > '$path/cgroup.procs' && exec '$PYTHON' '$TLS_CLIENT' --host pin.test --port $legit_PORT --insecure"
		[ "$status" -eq 0 ]
		ev=$(events_wait ".event == \"tls_chain\" and .cgroup == \"/pinwarden-test-$$/$name\"")
		[ "$(event_field "$ev" .container_id)" = "$id" ]
	done
	# a cgroup that names no container: no container_id
	mkdir -p "$CG/plain"
	run bash -c "echo \$\$ > '$CG/plain/cgroup.procs' && exec '$PYTHON' '$TLS_CLIENT' --host pin.test --port $legit_PORT --insecure"
	ev=$(events_wait ".event == \"tls_chain\" and .cgroup == \"/pinwarden-test-$$/plain\"")
	[ "$(event_field "$ev" .container_id)" = null ]
}
