/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The verdict, taken in the kernel at the point where the library has the
 * whole chain and has sent nothing since: find the rule for the SNI (or the
 * destination address), look the chain's hashes up in its pinset, enforce,
 * and report. Knows no library: a library probe hands over the accumulator,
 * the side, and the SSL object it can name.
 */
#ifndef PW_VERDICT_BPF_H
#define PW_VERDICT_BPF_H

#include "chain.bpf.h"
#include "session.bpf.h"
#include "hold.bpf.h"
#include "openssl.h"

#define AF_INET		2
#define AF_INET6	10
#define S_IFMT		00170000
#define S_IFSOCK	0140000
#define SIGKILL		9
#define NSEC_PER_SEC	1000000000ULL

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((void *)(ptr) - __builtin_offsetof(type, member)))
#endif

/* Peer and local port of the socket behind `fd` in the current process, into
 * the thread's acc->peer (bpf/discover.bpf.c). */
int pw_peer_from_fd(int fd);

/*
 * The connection's socket: the library's fd binding if it has one; else the
 * socket the thread last read from (tracked only while a policy resets or has
 * server rules: the certificates just arrived on it); else the thread's last
 * connect().
 */
static __always_inline void peer_find(const struct pw_chain_acc *acc, const struct pw_ssl_state *st,
				      struct peer *p)
{
	struct pw_thread_conn *tc;

	if (st && st->fd >= 0 && pw_peer_from_fd(st->fd) == 0)
		return;
	/* the socket read last when the chain was complete: the library's own
	 * verification since may have read files (a CA directory) */
	if (read_track_on && acc->read_fd >= 0 && pw_peer_from_fd(acc->read_fd) == 0) {
		p->guessed = 2;
		return;
	}
	tc = bpf_task_storage_get(&thread_conn, bpf_get_current_task_btf(), 0, 0);
	if (!tc)
		return;
	if (read_track_on && tc->last_rfd >= 0 && pw_peer_from_fd(tc->last_rfd) == 0) {
		p->guessed = 2;
		return;
	}
	if (!tc->family)
		return;
	p->family = tc->family;
	p->port = tc->dport;
	p->local_port = tc->sport;
	p->guessed = 1;
	p->netns = tc->netns;
	__builtin_memcpy(p->addr, tc->daddr, 16);
	__builtin_memcpy(p->local_addr, tc->saddr, 16);
	if (!p->local_port && tc->sk) {
		/* chosen after connect()'s state change: ask the socket, if it is still the
		 * one connected to that peer */
		struct sock *sk = (struct sock *)tc->sk;
		__u16 family = 0, dport = 0, lport = 0;

		bpf_probe_read_kernel(&family, sizeof(family), &sk->__sk_common.skc_family);
		bpf_probe_read_kernel(&dport, sizeof(dport), &sk->__sk_common.skc_dport);
		bpf_probe_read_kernel(&lport, sizeof(lport), &sk->__sk_common.skc_num);
		if (family == tc->family && bpf_ntohs(dport) == tc->dport) {
			p->local_port = lport;
			if (family == AF_INET) {
				__u32 l = 0;

				bpf_probe_read_kernel(&l, sizeof(l), &sk->__sk_common.skc_rcv_saddr);
				__builtin_memcpy(&p->local_addr[12], &l, 4);
			}
		}
	}
}

/*
 * Hold the process for the reset, bounded like every stop (bpf/hold.bpf.h):
 * recorded in `stops` first, only while the daemon and its watchdog beat, never
 * a job of an interactive shell or a traced process (they would see the stop).
 * The signal goes to this thread: it stops before it runs on, even when another
 * thread has a stop of the process pending (a second one would merge into it).
 * 1: held (or already held by a stop recorded for this process).
 */
static __always_inline int reset_hold(struct task_struct *t, __u32 tgid, __u64 start)
{
	struct pw_stop s = { .start = start, .dev = PW_STOP_RESET };
	struct pw_stop *old;
	int r;

	s.stopped_ns = bpf_ktime_get_ns();
	if (tgid == daemon_tgid || tgid == watchdog_tgid || hold_refused(t, s.stopped_ns))
		return 0;
	r = hold_stop(tgid, &s, HOLD_THREAD);
	if (r != HOLD_NOT_RECORDED)
		return r == HOLD_SENT;
	/* A stop of this process is recorded already. Discovery's could end before
	 * this socket is destroyed: not held (its egress is dropped all the same).
	 * Another thread's reset: this thread stops too, bounded by that entry;
	 * the daemon ends it only once no mark is PW_MARK_PENDING, and should the
	 * watchdog end it meanwhile, the stop just sent is taken back (a SIGCONT
	 * discards a pending SIGSTOP), so that no stop is ever unrecorded. */
	old = bpf_map_lookup_elem(&stops, &tgid);
	if (!old || old->start != start || old->dev != PW_STOP_RESET ||
	    bpf_send_signal_thread(SIGSTOP))
		return 0;
	old = bpf_map_lookup_elem(&stops, &tgid);
	if (old && old->start == start && old->dev == PW_STOP_RESET)
		return 1;
	bpf_send_signal_thread(SIGCONT);
	return 0;
}
#define PW_MARK_NO_SOCK	(-1)	/* the connection's socket is unknown */
#define PW_MARK_FULL	(-2)	/* reset_conns is full */

/*
 * Mark the connection: from now on its egress is dropped (bpf/reset.bpf.c),
 * and the daemon, woken by the chain record, destroys its socket in the
 * socket's own network namespace. A reset also holds the process (SIGSTOP to
 * this thread, which stops them all) until the socket is destroyed: its next
 * read or write on the connection, still inside the handshake, then fails
 * with ECONNABORTED, where a socket destroyed after the handshake is, to some
 * applications, a clean end of stream (Python's ssl turns any error of
 * SSL_read into b''). PW_MARK_KILL: the verdict's kill failed; the daemon
 * kills the process from userspace. 0, PW_MARK_NO_SOCK or PW_MARK_FULL.
 */
static __always_inline int conn_mark_reset(const struct peer *p, __u64 now, __u32 flags)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();
	struct pw_conn_mark m = { .ts_boot_ns = now, .pid = id >> 32, .tid = (__u32)id };
	struct pw_conn_key k = {};
	struct pw_conn_mark *v;
	int held;

	if (!p->family || !p->port || !p->local_port) {
		if (!(flags & PW_MARK_KILL))
			count(PW_CNT_RESET_NO_SOCK);
		return PW_MARK_NO_SOCK;
	}
	k.netns = p->netns;
	k.family = p->family;
	k.sport = p->local_port;
	k.dport = p->port;
	__builtin_memcpy(k.saddr, p->local_addr, 16);
	__builtin_memcpy(k.daddr, p->addr, 16);
	m.start_boottime = BPF_CORE_READ(t, group_leader, start_boottime);
	/* the daemon must not continue the process before its stop is sent */
	m.flags = flags & PW_MARK_KILL ? flags : flags | PW_MARK_PENDING;
	if (bpf_map_update_elem(&reset_conns, &k, &m, BPF_ANY)) {
		count(PW_CNT_RESET_FULL);
		return PW_MARK_FULL;
	}
	count(PW_CNT_RESET_MARKED);
	if (flags & PW_MARK_KILL)
		return 0;
	held = reset_hold(t, m.pid, m.start_boottime);
	v = bpf_map_lookup_elem(&reset_conns, &k);
	if (v)
		v->flags = (v->flags & ~PW_MARK_PENDING) | (held ? PW_MARK_HELD : 0);
	if (!held)
		count(PW_CNT_RESET_UNHELD);
	return 0;
}


/* ---- rule lookup ------------------------------------------------------- */

int pw_exe_path(void);

/*
 * Is the executable the scoped one? The same file (device, inode), or a file
 * at the same path: an upgrade replaces the file, not the path, and the
 * processes started from the new one are still the program the rule names.
 */
static __always_inline int scope_exe_matches(struct rule_search *rs, const struct pw_rule_alt *a)
{
	struct pw_chain_acc *acc = container_of(rs, struct pw_chain_acc, rs);
	const struct pw_scope_exe *se;
	__u32 slot, i;
	__u64 diff = 0;

	if (!rs->exe_read) {
		struct task_struct *t = bpf_get_current_task_btf();
		struct file *exe = t->mm ? t->mm->exe_file : NULL;

		rs->exe_ino = exe ? exe->f_inode->i_ino : 0;
		rs->exe_dev = exe ? exe->f_inode->i_sb->s_dev : 0;
		rs->exe_read = 1;
	}
	if (rs->exe_ino == a->scope_exe_ino && rs->exe_dev == a->scope_exe_dev)
		return 1;
	if (!a->scope_exe_path)
		return 0;
	slot = (a->scope_exe_path - 1) & (2 * PW_EXE_SLOTS - 1);
	se = bpf_map_lookup_elem(&scope_exes, &slot);
	if (!se)
		return 0;
	pw_exe_path();
	if (rs->exe_path_flags & PW_CHAIN_EXE_TRUNCATED)
		return 0;
	/* both NUL-padded: compare them whole, a word at a time */
	for (i = 0; i < PW_PATH_MAX / 8; i++)
		diff |= ((const __u64 *)acc->exe)[i] ^ ((const __u64 *)se->path)[i];
	return diff == 0;
}

static __always_inline int scope_matches(struct rule_search *rs, const struct pw_rule_alt *a)
{
	if (a->scope_exe_ino && !scope_exe_matches(rs, a))
		return 0;
	/* the cgroup or any cgroup below it: a path prefix, by components */
	if (a->scope_cgroup &&
	    bpf_current_task_under_cgroup(&cgroups, (a->scope_cgroup - 1) & (2 * PW_CGROUP_SLOTS - 1)) != 1)
		return 0;
	return 1;
}

/* Consider the rules stored under one key. Returns 1 when the search is over. */
static __always_inline int rule_consider(struct rule_search *rs, const struct pw_rule_val *v)
{
	__u32 i;

	for (i = 0; i < PW_RULE_ALTS; i++) {
		const struct pw_rule_alt *a = &v->alt[i];

		if (i >= v->nalt)
			break;
		if (a->scope_cgroup || a->scope_exe_ino) {
			if (scope_matches(rs, a)) {
				rs->scoped = *a;
				rs->have_scoped = 1;
				return 1;
			}
		} else if (!rs->have_unscoped) {
			rs->unscoped = *a;
			rs->have_unscoped = 1;
		}
	}
	/* without scoped rules anywhere, the most specific unscoped hit is final */
	return rs->have_unscoped && !(rs->cfg & PW_CFG_HAS_SCOPED);
}

/* Look the key in acc->key up with the connection's port, then with "any port". */
static __always_inline int rule_try(struct rule_search *rs, struct pw_rule_key *key)
{
	struct pw_rule_val *v;

	key->gen = rs->gen;
	key->side = rs->side;
	if (rs->port && (rs->cfg & PW_CFG_HAS_PORTS)) {
		key->port = rs->port;
		v = bpf_map_lookup_elem(&rules, key);
		if (v && rule_consider(rs, v))
			return 1;
	}
	key->port = 0;
	v = bpf_map_lookup_elem(&rules, key);
	return v && rule_consider(rs, v);
}

/* Put host[off, host_len) into the lookup key. */
static __always_inline void key_set_host(struct pw_chain_acc *acc, __u32 off, __u8 kind)
{
	__u32 n = acc->host_len > off ? acc->host_len - off : 0;

	__builtin_memset(acc->key.host, 0, PW_HOST_MAX);
	acc->key.kind = kind;
	bpf_probe_read_kernel(acc->key.host, n & (PW_HOST_MAX - 1),
			      &acc->host[off & (PW_HOST_MAX - 1)]);
}

/* "**." rules: the name itself, then every suffix after a dot, longest first. */
static long rule_any_cb(__u32 i, void *data)
{
	struct pw_chain_acc *acc;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc || i >= acc->host_len)
		return 1;
	if (i && acc->host[(i - 1) & (PW_HOST_MAX - 1)] != '.')
		return 0;
	key_set_host(acc, i, PW_HOST_ANY);
	return rule_try(&acc->rs, &acc->key);
}

/*
 * "*." rules: where the first label ends. In a bpf_loop callback: as a plain
 * loop, each position of the dot is a path of its own through the rest of the
 * verdict for the verifier, which then gives up (a million instructions) when
 * the caller passes a constant side.
 */
static __always_inline int rule_find(struct pw_chain_acc *acc, struct rule_search *rs,
				     const struct peer *p)
{
	__u32 i, dot = 0;

	if (!acc->host_len) {
		if (!(rs->cfg & PW_CFG_HAS_IP) || !p->family)
			return 0;
		__builtin_memset(acc->key.host, 0, PW_HOST_MAX);
		__builtin_memcpy(acc->key.host, p->addr, 16);
		acc->key.kind = PW_HOST_IP;
		rule_try(rs, &acc->key);
		goto out;
	}
	if (rs->cfg & PW_CFG_HAS_EXACT) {
		key_set_host(acc, 0, PW_HOST_EXACT);
		if (rule_try(rs, &acc->key))
			goto out;
	}
	if (rs->cfg & PW_CFG_HAS_ONE) {
		for (i = 0; i < PW_HOST_MAX; i++) {
			if (i >= acc->host_len)
				break;
			if (acc->host[i] == '.') {
				dot = i + 1;
				break;
			}
		}
		/* through memory: in a register, each of its 256 possible values would
		 * be a verifier state of its own down the rest of the verdict */
		*(volatile __u32 *)&rs->dot = dot;
		dot = *(volatile __u32 *)&rs->dot;
		if (dot && dot < acc->host_len) {
			key_set_host(acc, dot, PW_HOST_ONE);
			if (rule_try(rs, &acc->key))
				goto out;
		}
	}
	if (rs->cfg & PW_CFG_HAS_ANY) {
		int unused = 0;

		bpf_loop(PW_HOST_MAX, rule_any_cb, &unused, 0);
	}
out:
	return rs->have_scoped || rs->have_unscoped;
}

/*
 * A rule could cover this chain, but what finds it is missing: the host was
 * lost (the library's connection object could not be confirmed, or its SNI
 * could not be kept or read), or the peer's port or address is unknown while
 * rules of this side use them. Then the chain fails closed as this side's
 * strictest rule would: a mismatch, enforced if any rule of the side enforces,
 * by kill if any of those kills. Returns 1 and fills rs->unscoped so.
 */
static __always_inline int rule_unknown(struct pw_chain_acc *acc, struct rule_search *rs,
					const struct peer *p, __u8 side)
{
	__u32 cfg = rs->cfg;
	int server = side == PW_SIDE_SERVER;

	if (!(cfg & (server ? PW_CFG_RULES_SERVER : PW_CFG_RULES_CLIENT))) {
		acc->flags &= ~PW_CHAIN_HOST_LOST;	/* no rule for it to lose */
		return 0;
	}
	if (server) {
		acc->flags &= ~PW_CHAIN_HOST_LOST;	/* server rules name a port, not a host */
		if (!rs->port)
			acc->flags |= PW_CHAIN_PORT_UNKNOWN;
	} else {
		if (!rs->port && (cfg & PW_CFG_HAS_PORTS))
			acc->flags |= PW_CHAIN_PORT_UNKNOWN;
		if (!acc->host_len && !p->family && (cfg & PW_CFG_HAS_IP))
			acc->flags |= PW_CHAIN_ADDR_UNKNOWN;
	}
	if (!(acc->flags & (PW_CHAIN_HOST_LOST | PW_CHAIN_PORT_UNKNOWN | PW_CHAIN_ADDR_UNKNOWN)))
		return 0;
	count(PW_CNT_RULE_UNKNOWN);
	__builtin_memset(&rs->unscoped, 0, sizeof(rs->unscoped));
	rs->unscoped.rule_id = PW_NO_ID;
	rs->unscoped.pinset_id = PW_NO_ID;
	rs->unscoped.mode = (cfg & (server ? PW_CFG_ENFORCE_SERVER : PW_CFG_ENFORCE_CLIENT)) ?
				    PW_MODE_ENFORCE : PW_MODE_AUDIT;
	rs->unscoped.action = (cfg & (server ? PW_CFG_KILL_SERVER : PW_CFG_KILL_CLIENT)) ?
				      PW_ACTION_KILL : PW_ACTION_RESET;
	acc->flags |= PW_CHAIN_RULE_UNKNOWN;
	return 1;
}

/* ---- pins -------------------------------------------------------------- */

struct pins_loop {
	__u32 gen;
	__u32 pinset;
	__u32 cfg;
	__u32 start;		/* first entry of certs[] to look at */
};

/* Entry start + i of certs[] against the pinset; the result goes to the
 * accumulator, not a register, so that the verifier need not track every
 * combination of bits. */
static long pins_cb(__u32 i, void *data)
{
	struct pins_loop *pl = data;
	struct pw_pin_key k = { .gen = pl->gen, .pinset_id = pl->pinset };
	struct pw_chain_acc *acc;
	const struct pw_chain_cert *c;
	__u32 idx = pl->start + i;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc || idx >= acc->nents || idx >= PW_CHAIN_MAX)
		return 1;
	c = &acc->certs[idx & (PW_CHAIN_MAX - 1)];
	if (c->flags & PW_CERT_SPKI_HASHED) {
		k.type = PW_PIN_SPKI;
		__builtin_memcpy(k.hash, c->spki_sha256, PW_HASH_LEN);
		if (bpf_map_lookup_elem(&pins, &k))
			acc->pinned |= 1u << (idx & 31);
	}
	if ((pl->cfg & PW_CFG_HAS_CERT_PINS) && (c->flags & PW_CERT_HASHED)) {
		k.type = PW_PIN_CERT;
		__builtin_memcpy(k.hash, c->cert_sha256, PW_HASH_LEN);
		if (bpf_map_lookup_elem(&pins, &k))
			acc->pinned |= 1u << (idx & 31);
	}
	return 0;
}

/* Look entries [start, nents) of certs[] up in the pinset. */
static __always_inline void pins_match(struct pw_chain_acc *acc, __u32 gen, __u32 pinset, __u32 cfg,
				       __u32 start)
{
	struct pins_loop pl = { .gen = gen, .pinset = pinset, .cfg = cfg, .start = start };

	bpf_loop(PW_CHAIN_MAX, pins_cb, &pl, 0);
}

/*
 * The entries of certs[] whose pin counts: the leaf always (the handshake
 * proves its key), the others only when the library verified the chain and
 * they are in the chain it built (RFC 7469; SPEC.md).
 */
static __always_inline __u32 pins_counting(const struct pw_chain_acc *acc)
{
	__u32 m = 1;

	if (acc->validation == PW_VALIDATION_VERIFIED)
		m |= acc->validated;
	return m;
}

int pw_anchors_hash(void);

/*
 * The pinset against the chain: first the presented certificates; then, if
 * none that counts matched and the chain was verified, the validated
 * certificates the peer did not present (hashed now, only when needed).
 * Returns the entries that matched and count.
 */
static __always_inline __u32 pins_judge(struct pw_chain_acc *acc, __u32 gen, __u32 pinset, __u32 cfg)
{
	__u32 matched;

	acc->pinned = 0;
	pins_match(acc, gen, pinset, cfg, 0);
	/* without the library's objects of the presented certificates (vby_key), only
	 * hashing the validated chain tells which of them it holds: always, then */
	if ((acc->vby_key || !(acc->pinned & pins_counting(acc))) &&
	    acc->validation == PW_VALIDATION_VERIFIED && acc->nanchors) {
		__u32 base = acc->nents;

		pw_anchors_hash();
		pins_match(acc, gen, pinset, cfg, base);
	}
	matched = acc->pinned & pins_counting(acc);
	if (acc->flags & PW_CHAIN_LEAF_MISMATCH)
		matched = 0;	/* not the chain the library verifies: nothing in it counts */
	if (!matched && acc->pinned) {
		acc->flags |= PW_CHAIN_PIN_UNVALIDATED;
		count(PW_CNT_PIN_UNVALIDATED);
	}
	return matched;
}

/* ---- the process, for the record -------------------------------------- */

#define PW_PATHBUF	(3 * PW_PATH_MAX)

/* The executable's path, walking dentries and mounts up to the root. */
static __always_inline __u32 exe_path(struct pw_chain_acc *acc, char *out)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct file *exe = BPF_CORE_READ(t, mm, exe_file);
	struct dentry *d, *parent;
	struct vfsmount *vm;
	struct mount *m;
	__u32 pos = 2 * PW_PATH_MAX - 1, i, n, flags = 0;
	char *buf = acc->pathbuf;

	if (!exe)
		return 0;
	d = BPF_CORE_READ(exe, f_path.dentry);
	vm = BPF_CORE_READ(exe, f_path.mnt);
	m = container_of(vm, struct mount, mnt);
	buf[pos] = 0;
	for (i = 0; i < 48; i++) {
		struct qstr name;

		parent = BPF_CORE_READ(d, d_parent);
		if (d == BPF_CORE_READ(m, mnt.mnt_root) || d == parent) {
			struct mount *mp = BPF_CORE_READ(m, mnt_parent);

			if (mp == m)
				break;
			d = BPF_CORE_READ(m, mnt_mountpoint);
			m = mp;
			continue;
		}
		name = BPF_CORE_READ(d, d_name);
		n = name.len;
		if (n + 1 > pos) {
			flags |= PW_CHAIN_EXE_TRUNCATED;
			break;
		}
		pos -= n;
		bpf_probe_read_kernel(&buf[pos & (2 * PW_PATH_MAX - 1)], n & (PW_PATH_MAX - 1),
				      name.name);
		pos -= 1;
		buf[pos & (2 * PW_PATH_MAX - 1)] = '/';
		d = parent;
	}
	n = 2 * PW_PATH_MAX - 1 - pos;	/* path length, without the NUL */
	if (n > PW_PATH_MAX - 1) {
		pos += n - (PW_PATH_MAX - 1);
		n = PW_PATH_MAX - 1;
		flags |= PW_CHAIN_EXE_TRUNCATED;
	}
	n += 1;
	barrier_var(n);
	if (n > PW_PATH_MAX)
		n = PW_PATH_MAX;
	bpf_probe_read_kernel(out, n, &buf[pos & (2 * PW_PATH_MAX - 1)]);
	return flags;
}

/* ---- the verdict ------------------------------------------------------- */

/*
 * Judge the chain in acc (resumed: report a resumed session instead, which
 * presents no chain: the verdict of its full handshake stands, nothing is
 * enforced here). The caller passes constants for library, side and resumed.
 */
static __always_inline void verdict_take(struct pw_chain_acc *acc, __u8 library, __u8 side,
					 __u8 resumed)
{
	struct pw_ssl_key sk = { .tgid = bpf_get_current_pid_tgid() >> 32, .ssl = acc->ssl };
	struct rule_search *rs = &acc->rs;
	struct pw_ssl_state *st = NULL;
	struct pw_chain_rec *rec;
	struct peer *p = &acc->peer;
	struct pw_decision *dec = &acc->dec;
	__u32 i, n, hl;
	struct pw_config *cfg;
	__u64 now = bpf_ktime_get_boot_ns();

	/*
	 * The chain's flags are gathered in acc->flags (map memory), not in a local:
	 * a local holding a different constant on each path made the verifier
	 * re-verify the bpf_loop callbacks below once per combination of flags
	 * (a verdict probe with its side known at compile time went past 1M
	 * instructions; with this, 150k).
	 */

	/*
	 * The side, too, is read back from map memory each time (SIDE()): kept in
	 * a register, a side known only at run time would split the rest of the
	 * verdict into one verifier state per side at its first test.
	 */
#define SIDE() (*(volatile __u8 *)&rs->side)
	__builtin_memset(rs, 0, sizeof(*rs));
	__builtin_memset(p, 0, sizeof(*p));
	rs->side = side;
	dec->verdict = PW_VERDICT_UNPINNED;
	dec->mode = PW_MODE_AUDIT;
	dec->done = PW_DONE_NONE;
	dec->action = PW_ACTION_KILL;
	dec->matched = 0;
	dec->rule_id = PW_NO_ID;
	dec->pinset_id = PW_NO_ID;
	acc->nents = acc->ncerts > PW_CHAIN_MAX ? PW_CHAIN_MAX : acc->ncerts;
	acc->pinned = 0;
	if (resumed)
		acc->flags |= PW_CHAIN_RESUMED;
	else
		count(PW_CNT_CHAINS);
	if (resumed)
		dec->verdict = PW_VERDICT_RESUMED;
	else if (!acc->ncerts)
		acc->flags |= PW_CHAIN_NO_CERTS;
	else if (now - acc->ts > PW_CHAIN_MAX_AGE_NS)
		acc->flags |= PW_CHAIN_STALE;

	if (acc->ssl)
		st = session_find(acc->ssl);
	acc->host_len = 0;
	acc->host[0] = 0;
	hl = st ? st->host_len : 0;
	barrier_var(hl);
	if (hl && hl < PW_HOST_MAX) {
		/* the name and its NUL, no more: every line of map memory written
		 * costs a cache miss at each verdict */
		bpf_probe_read_kernel(acc->host, hl + 1, st->host);
		acc->host[hl & (PW_HOST_MAX - 1)] = 0;
		acc->host_len = hl;
	} else {
		acc->flags |= PW_CHAIN_NO_SNI;
		/* no SNI because none was sent, or because we could not keep or read it? */
		if ((st && (st->flags & PW_SESSION_HOST_UNREADABLE)) ||
		    session_lost_here((__u32)bpf_get_current_uid_gid()))
			acc->flags |= PW_CHAIN_HOST_LOST;
	}
	peer_find(acc, st, p);
	if (!p->family)
		acc->flags |= PW_CHAIN_NO_PEER;
	else if (p->guessed == 1)
		acc->flags |= PW_CHAIN_PEER_GUESSED;
	else if (p->guessed == 2)
		acc->flags |= PW_CHAIN_PEER_READ;

	rs->gen = active_gen;
	cfg = bpf_map_lookup_elem(&configs, &rs->gen);
	if (!cfg) {
		acc->flags |= PW_CHAIN_NO_POLICY;
	} else {
		rs->cfg = cfg->flags;
		rs->port = SIDE() == PW_SIDE_CLIENT ? p->port : p->local_port;
		if (!resumed && rule_unknown(acc, rs, p, SIDE())) {
			/* judged as the side's strictest rule below */
		} else if (SIDE() == PW_SIDE_SERVER) {
			/* server rules are keyed by the local port alone */
			acc->host_len = 0;
			__builtin_memset(acc->key.host, 0, PW_HOST_MAX);
			acc->key.kind = PW_HOST_EXACT;
			if (rs->port)
				rule_try(rs, &acc->key);
		} else {
			rule_find(acc, rs, p);
		}
		if (SIDE() == PW_SIDE_SERVER && st && st->host_len)
			acc->host_len = st->host_len;	/* report the SNI the client asked for */
	}
	if (resumed && (rs->have_scoped || rs->have_unscoped)) {
		/* the rule its host falls under, for the report */
		struct pw_rule_alt *a = rs->have_scoped ? &rs->scoped : &rs->unscoped;

		dec->rule_id = a->rule_id;
		dec->pinset_id = a->pinset_id;
		dec->mode = a->mode;
	} else if (!resumed && (rs->have_scoped || rs->have_unscoped ||
				(acc->flags & PW_CHAIN_RULE_UNKNOWN))) {
		struct pw_rule_alt *a = rs->have_scoped ? &rs->scoped : &rs->unscoped;
		struct pw_pinset_key pk = { .gen = rs->gen, .pinset_id = a->pinset_id };
		struct pw_pinset_val *ps = bpf_map_lookup_elem(&pinsets, &pk);
		__s64 unix_s = (__s64)((now + boot_to_unix_ns) / NSEC_PER_SEC);

		dec->rule_id = a->rule_id;
		dec->pinset_id = a->pinset_id;
		dec->mode = a->mode;
		if (!(acc->flags & PW_CHAIN_RULE_UNKNOWN))
			dec->matched = pins_judge(acc, rs->gen, a->pinset_id, rs->cfg);
		if (acc->flags & PW_CHAIN_RULE_UNKNOWN)
			dec->verdict = PW_VERDICT_MISMATCH;	/* no rule to judge by: fail closed */
		else if (ps && ps->expires && unix_s >= ps->expires)
			dec->verdict = PW_VERDICT_EXPIRED;
		else if (dec->matched)
			dec->verdict = PW_VERDICT_MATCH;
		else
			dec->verdict = PW_VERDICT_MISMATCH;	/* also when the chain could not be judged */
		dec->action = a->action;

		if (dec->verdict == PW_VERDICT_MISMATCH) {
			if (dec->mode == PW_MODE_ENFORCE && dec->action == PW_ACTION_RESET) {
				int marked = conn_mark_reset(p, now, 0);

				if (marked == 0) {
					dec->done = PW_DONE_RESET;
				} else {
					/* fail closed: without the socket or room to mark it, only
					 * the process can go */
					acc->flags |= marked == PW_MARK_FULL ? PW_CHAIN_RESET_FULL :
									       PW_CHAIN_RESET_NO_SOCK;
					dec->action = PW_ACTION_KILL;
				}
			}
			if (dec->mode == PW_MODE_ENFORCE && dec->action == PW_ACTION_KILL) {
				if (bpf_send_signal(SIGKILL) == 0) {
					dec->done = PW_DONE_KILLED;
					count(PW_CNT_KILLED);
				} else {
					dec->done = PW_DONE_KILL_FAILED;
					count(PW_CNT_KILL_FAILED);
					/* the daemon kills it; until then its connection is dropped */
					conn_mark_reset(p, now, PW_MARK_KILL);
				}
			} else if (dec->mode != PW_MODE_ENFORCE) {
				dec->done = dec->action == PW_ACTION_KILL ? PW_DONE_WOULD_KILL :
									    PW_DONE_WOULD_RESET;
			}
		}
	}

	if (cfg && (cfg->flags & PW_CFG_LOG_MISMATCHES) && dec->verdict != PW_VERDICT_MISMATCH &&
	    dec->verdict != PW_VERDICT_EXPIRED && !(acc->flags & PW_CHAIN_UNJUDGEABLE))
		return;

	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		count(PW_CNT_LOST_CHAIN_RECS);
		return;
	}
	rec->type = PW_REC_CHAIN;
	rec->ts_boot_ns = now;
	rec->cgroup_id = bpf_get_current_cgroup_id();
	rec->pinned = acc->pinned;
	rec->verify_error = acc->verify_error;
	rec->pid = sk.tgid;
	rec->tid = (__u32)bpf_get_current_pid_tgid();
	rec->uid = (__u32)bpf_get_current_uid_gid();
	rec->gen = rs->gen;
	rec->rule_id = dec->rule_id;
	rec->pinset_id = dec->pinset_id;
	rec->matched = dec->matched;
	rec->peer_port = p->port;
	rec->peer_family = p->family;
	rec->local_port = p->local_port;
	rec->pad16 = 0;
	__builtin_memcpy(rec->peer_addr, p->addr, 16);
	__builtin_memcpy(rec->local_addr, p->local_addr, 16);
	rec->library = library;
	rec->side = SIDE();
	rec->verdict = dec->verdict;
	rec->mode = dec->mode;
	rec->done = dec->done;
	rec->ncerts = acc->nents;
	rec->validation = acc->validation;
	rec->pad = 0;
	bpf_get_current_comm(rec->comm, sizeof(rec->comm));
	/* the host and its NUL (the daemon reads up to the NUL) */
	hl = acc->host_len;
	barrier_var(hl);
	if (hl >= PW_HOST_MAX)
		hl = 0;
	bpf_probe_read_kernel(rec->host, hl + 1, acc->host);
	rec->host[hl & (PW_HOST_MAX - 1)] = 0;
	pw_exe_path();
	rec->flags = acc->flags | rs->exe_path_flags;
	bpf_probe_read_kernel(rec->exe, sizeof(rec->exe), acc->exe);
	/* the entries judged only (the daemon reads ncerts of them) */
	n = acc->nents;
	if (n > PW_CHAIN_MAX)
		n = PW_CHAIN_MAX;
	bpf_probe_read_kernel(rec->certs, n * sizeof(rec->certs[0]), acc->certs);
	for (i = 0; i < PW_CHAIN_MAX; i++) {
		if (i >= n)
			break;
		rec->certs[i].flags |= ((acc->validated >> i) & 1) * PW_CERT_VALIDATED;
	}
	/* a reset waits for the daemon's SOCK_DESTROY: wake it now */
	bpf_ringbuf_submit(rec, dec->done == PW_DONE_RESET ? BPF_RB_FORCE_WAKEUP : rb_flags());
}
#undef SIDE

/* After a verdict: the accumulator free again, the library's connection object forgotten. */
static __always_inline void verdict_done(struct pw_chain_acc *acc)
{
	__u64 forget = acc->vforget;

	chain_reset(acc);
	if (forget)
		session_forget(forget);
}

#ifdef PW_DEFINE_VERDICT
/*
 * Global functions, defined in core.bpf.c only: the verifier checks each once
 * per program, whatever state its callers reach it in. Hashing a trust anchor
 * inlined into every verdict took the verifier past its million instructions.
 */

struct key_match {
	__u32 idx;		/* the entry just hashed */
	__u32 found;
};

/* Presented certificate i: the same key as the validated entry km->idx? Then it is validated. */
static long key_match_cb(__u32 i, void *data)
{
	struct key_match *km = data;
	struct pw_chain_acc *acc;
	const __u64 *a, *b;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc || i >= acc->ncerts || i >= PW_CHAIN_MAX || i >= km->idx)
		return 1;
	if (!(acc->certs[i & (PW_CHAIN_MAX - 1)].flags & PW_CERT_SPKI_HASHED))
		return 0;
	a = (const __u64 *)acc->certs[i & (PW_CHAIN_MAX - 1)].spki_sha256;
	b = (const __u64 *)acc->certs[km->idx & (PW_CHAIN_MAX - 1)].spki_sha256;
	if (a[0] != b[0] || a[1] != b[1] || a[2] != b[2] || a[3] != b[3])
		return 0;
	acc->validated |= 1u << (i & 31);
	km->found = 1;
	return 0;
}

/*
 * An X509 of OpenSSL or BoringSSL in the validated chain (x509.bpf.h): where
 * its cached tbsCertificate lies, read only now that a pin needs it. 0: src
 * is now that encoding.
 */
static __always_inline int anchor_x509_tbs(struct pw_anchor_src *src, __u64 ck)
{
	__u64 x = src->ptr;
	struct {
		__u64 enc;
		__s64 len;
		__s32 modified;
		__s32 pad;
	} enc = {};

	/* BoringSSL's X509 holds a pointer to its cert_info, where the encoding is */
	if ((ck & OSSL_VCK_TBS_INDIRECT) && bpf_probe_read_user(&x, sizeof(x), (const void *)x))
		return -1;
	if (!(ck & OSSL_VCK_TBS) || !x ||
	    bpf_probe_read_user(&enc, sizeof(enc), (const void *)(x + OSSL_VCK_TBSENC(ck))) ||
	    !enc.enc || enc.len <= 0 || enc.len > PW_CERT_MAX || enc.modified)
		return -1;
	src->ptr = enc.enc;
	src->len = (__u32)enc.len;
	src->kind = PW_ANCHOR_TBS;
	return 0;
}

/* Hash the next trust anchor of the validated chain into certs[nents]. */
static long anchor_cb(__u32 k, void *data)
{
	struct pw_chain_acc *acc;
	__u32 idx;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc || k >= acc->nanchors || k >= PW_ANCHORS_MAX)
		return 1;
	idx = acc->nents;
	if (idx >= PW_CHAIN_MAX) {
		acc->flags |= PW_CHAIN_ANCHOR_ERROR;	/* no room left to judge it */
		return 1;
	}
	if (acc->anchors[k & (PW_ANCHORS_MAX - 1)].kind == PW_ANCHOR_ENTRY) {
		/* stashed past the entries, where nothing has been written since */
		__u64 src = acc->anchors[k & (PW_ANCHORS_MAX - 1)].ptr;

		if (src <= idx || src >= PW_CHAIN_MAX) {
			acc->flags |= PW_CHAIN_ANCHOR_ERROR;
			return 1;
		}
		acc->certs[idx & (PW_CHAIN_MAX - 1)] = acc->certs[src & (PW_CHAIN_MAX - 1)];
	} else {
		if (acc->anchors[k & (PW_ANCHORS_MAX - 1)].kind == PW_ANCHOR_X509 &&
		    anchor_x509_tbs(&acc->anchors[k & (PW_ANCHORS_MAX - 1)], acc->vck)) {
			acc->flags |= PW_CHAIN_ANCHOR_ERROR;	/* in the chain, but cannot be judged */
			return 0;
		}
		anchor_capture(&acc->anchors[k & (PW_ANCHORS_MAX - 1)],
			       &acc->certs[idx & (PW_CHAIN_MAX - 1)]);
	}
	if (!(acc->certs[idx & (PW_CHAIN_MAX - 1)].flags & PW_CERT_SPKI_HASHED)) {
		acc->flags |= PW_CHAIN_ANCHOR_ERROR;
	} else if (acc->vby_key) {
		/* the library's objects of the presented certificates are not known: a
		 * presented certificate with this key is the one validated */
		struct key_match km = { .idx = idx };

		bpf_loop(PW_CHAIN_MAX, key_match_cb, &km, 0);
		if (km.found)
			return 0;	/* not an entry of its own */
	}
	acc->validated |= 1u << (idx & 31);
	acc->nents = idx + 1;
	return 0;
}

/*
 * The executable's path into acc->exe, once per verdict (scopes, the record),
 * walked only when the thread runs another executable than at its last
 * verdict (the mm's exe_file, its inode and device: an exec changes them).
 */
__noinline int pw_exe_path(void)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct pw_chain_acc *acc;
	struct file *exe;
	__u64 ino;
	__u32 dev;

	acc = bpf_task_storage_get(&chains, t, 0, 0);
	if (!acc || acc->rs.exe_path_read)
		return 0;
	exe = t->mm ? t->mm->exe_file : NULL;
	ino = exe ? exe->f_inode->i_ino : 0;
	dev = exe ? exe->f_inode->i_sb->s_dev : 0;
	if (!exe || (__u64)exe != acc->exe_file || ino != acc->exe_file_ino ||
	    dev != acc->exe_file_dev) {
		__builtin_memset(acc->exe, 0, sizeof(acc->exe));
		acc->exe_file_flags = exe_path(acc, acc->exe);
		acc->exe_file = (__u64)exe;
		acc->exe_file_ino = ino;
		acc->exe_file_dev = dev;
	}
	acc->rs.exe_path_flags = acc->exe_file_flags;
	acc->rs.exe_path_read = 1;
	return 0;
}

/* Hash the validated chain's trust anchors into certs[] (pins_judge). */
__noinline int pw_anchors_hash(void)
{
	bpf_loop(PW_ANCHORS_MAX, anchor_cb, NULL, 0);
	return 0;
}

/*
 * The thread's accumulator could not be had (task storage could not be
 * allocated): nothing was captured and there is nothing to judge by. Fail
 * closed as a chain whose rule cannot be found does (rule_unknown): a
 * mismatch wherever a rule of this side exists, killed where one enforces
 * (no socket is known to reset), and a bare record says so. Out of line:
 * its paths do not multiply the caller's.
 */
/* why: PW_CHAIN_ACC_UNAVAILABLE, _PENDING_LOST or _VERDICT_UNREACHED, the record's flag */
__noinline int pw_verdict_no_acc(__u8 library, __u8 side, __u32 why)
{
	__u32 gen = active_gen, zero = 0, f;
	struct pw_config *cfg = bpf_map_lookup_elem(&configs, &gen);
	struct pw_chain_rec *rec;
	int server = side == PW_SIDE_SERVER;
	__u8 mode = PW_MODE_AUDIT, done = PW_DONE_WOULD_KILL;

	count(why == PW_CHAIN_PENDING_LOST	  ? PW_CNT_PENDING_LOST :
	      why == PW_CHAIN_VERDICT_UNREACHED ? PW_CNT_VERDICT_UNREACHED :
						  PW_CNT_ACC_FULL);
	if (!cfg || !(cfg->flags & (server ? PW_CFG_RULES_SERVER : PW_CFG_RULES_CLIENT)))
		return 0;
	f = cfg->flags;
	count(PW_CNT_RULE_UNKNOWN);
	if (f & (server ? PW_CFG_ENFORCE_SERVER : PW_CFG_ENFORCE_CLIENT)) {
		mode = PW_MODE_ENFORCE;
		if (bpf_send_signal(SIGKILL) == 0) {
			done = PW_DONE_KILLED;
			count(PW_CNT_KILLED);
		} else {
			done = PW_DONE_KILL_FAILED;
			count(PW_CNT_KILL_FAILED);
		}
	}
	/* a zeroed record of this CPU's; only the fields below are ever written */
	rec = bpf_map_lookup_elem(&noacc_rec, &zero);
	if (!rec)
		return 0;
	rec->type = PW_REC_CHAIN;
	rec->flags = PW_CHAIN_NO_CERTS | PW_CHAIN_RULE_UNKNOWN | why;
	rec->ts_boot_ns = bpf_ktime_get_boot_ns();
	rec->cgroup_id = bpf_get_current_cgroup_id();
	rec->pid = bpf_get_current_pid_tgid() >> 32;
	rec->tid = (__u32)bpf_get_current_pid_tgid();
	rec->uid = (__u32)bpf_get_current_uid_gid();
	rec->gen = gen;
	rec->rule_id = PW_NO_ID;
	rec->pinset_id = PW_NO_ID;
	rec->library = library;
	rec->side = side;
	rec->verdict = PW_VERDICT_MISMATCH;
	rec->mode = mode;
	rec->done = done;
	bpf_get_current_comm(rec->comm, sizeof(rec->comm));
	if (bpf_ringbuf_output(&events, rec, sizeof(*rec), BPF_RB_FORCE_WAKEUP))
		count(PW_CNT_LOST_CHAIN_RECS);
	return 0;
}


/* The verdict every probe tail-calls (verdict_call): judge, reset, forget. */
SEC("uprobe")
int pw_verdict(struct pt_regs *ctx)
{
	struct pw_chain_acc *acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);

	if (!acc)
		return 0;
	verdict_take(acc, acc->vlibrary, acc->vside, acc->vresumed);
	verdict_done(acc);
	return 0;
}

#else
extern int pw_exe_path(void);
extern int pw_anchors_hash(void);
extern int pw_verdict_no_acc(__u8 library, __u8 side, __u32 why);
#endif /* PW_DEFINE_VERDICT */

static __always_inline void verdict_no_acc(__u8 library, __u8 side)
{
	pw_verdict_no_acc(library, side, PW_CHAIN_ACC_UNAVAILABLE);
}

/* A chain that waited for its library's verification is gone: fail closed as above. */
static __always_inline void verdict_pending_lost(__u8 library, __u8 side)
{
	pw_verdict_no_acc(library, side, PW_CHAIN_PENDING_LOST);
}

/*
 * Judge the chain in the thread's accumulator, then reset it and forget the
 * library's connection object `forget` (0: none). The verdict is one program,
 * pw_verdict, that every probe tail-calls: the verifier checks it once instead
 * of inside each of the probes that judge (the daemon's start went from 7.9 s
 * of verification), and its frames are not stacked on the probe's (512 bytes
 * in all). What it needs travels in the accumulator. Control comes back here
 * only if the daemon has not installed it: then fail closed, and say so.
 */
static __always_inline void verdict_call(void *ctx, struct pw_chain_acc *acc, __u8 library,
					 __u8 side, __u8 resumed, __u64 forget)
{
	acc->vlibrary = library;
	acc->vside = side;
	acc->vresumed = resumed;
	acc->vforget = forget;
	bpf_tail_call(ctx, &verdict_prog, 0);
	verdict_done(acc);
	pw_verdict_no_acc(library, side, PW_CHAIN_VERDICT_UNREACHED);
}

static __always_inline void verdict_judge(void *ctx, struct pw_chain_acc *acc, __u8 library,
					  __u8 side, __u64 forget)
{
	verdict_call(ctx, acc, library, side, 0, forget);
}

/*
 * A client's session was resumed (the library says so when the connection
 * ends): report it with the rule its host falls under. Only when no chain is
 * being gathered on this thread, which the report would otherwise disturb.
 */
static __always_inline void verdict_resumed(void *ctx, __u64 ssl, __u8 library)
{
	struct pw_chain_acc *acc = chain_acc_get();

	count(PW_CNT_RESUMED);
	if (!acc || acc->ncerts)
		return;
	chain_reset(acc);
	acc->ssl = ssl;
	verdict_call(ctx, acc, library, PW_SIDE_CLIENT, 1, 0);
}

#endif /* PW_VERDICT_BPF_H */
