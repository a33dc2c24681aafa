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

#define AF_INET		2
#define AF_INET6	10
#define S_IFMT		00170000
#define S_IFSOCK	0140000
#define SIGKILL		9
#define NSEC_PER_SEC	1000000000ULL

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((void *)(ptr) - __builtin_offsetof(type, member)))
#endif

struct peer {
	__u16 family;
	__u16 port;
	__u16 local_port;
	__u16 guessed;		/* 1: the thread's last connect(); 2: its last read */
	__u8 addr[16];		/* IPv4 mapped into ::ffff:0:0/96 */
	__u8 local_addr[16];
	__u32 netns;		/* the socket's network namespace (inode) */
};

/* Peer and local port of the socket behind `fd` in the current process. */
static __always_inline int peer_from_fd(int fd, struct peer *p)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **fds, *f = NULL;
	struct socket *sock;
	struct sock *sk;
	__u16 family;

	if (fd < 0 || !fdt || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return -1;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return -1;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return -1;
	sock = BPF_CORE_READ(f, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return -1;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	p->family = family;
	p->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	p->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	p->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	if (family == AF_INET) {
		__u32 a = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);

		__builtin_memset(p->addr, 0, 10);
		p->addr[10] = p->addr[11] = 0xff;
		__builtin_memcpy(&p->addr[12], &a, 4);
		__builtin_memset(p->local_addr, 0, 10);
		p->local_addr[10] = p->local_addr[11] = 0xff;
		__builtin_memcpy(&p->local_addr[12], &l, 4);
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&p->addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&p->local_addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
	} else {
		return -1;
	}
	return 0;
}

/*
 * The connection's socket: the library's fd binding if it has one; else the
 * socket the thread last read from (tracked only while a policy resets or has
 * server rules: the certificates just arrived on it); else the thread's last
 * connect().
 */
static __always_inline void peer_find(const struct pw_ssl_state *st, struct peer *p)
{
	struct pw_thread_conn *tc;

	if (st && st->fd >= 0 && peer_from_fd(st->fd, p) == 0)
		return;
	tc = bpf_task_storage_get(&thread_conn, bpf_get_current_task_btf(), 0, 0);
	if (!tc)
		return;
	if (read_track_on && tc->last_rfd >= 0 && peer_from_fd(tc->last_rfd, p) == 0) {
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
}

#ifndef SIGSTOP
#define SIGSTOP		19
#endif
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
	/* to this thread: it stops before it runs on, even when another thread
	 * has a stop of the process pending (a second one would merge into it) */
	held = bpf_send_signal_thread(SIGSTOP) == 0;
	v = bpf_map_lookup_elem(&reset_conns, &k);
	if (v)
		v->flags = (v->flags & ~PW_MARK_PENDING) | (held ? PW_MARK_HELD : 0);
	if (!held)
		count(PW_CNT_RESET_UNHELD);
	return 0;
}

/* ---- rule lookup ------------------------------------------------------- */

static __always_inline int scope_matches(struct rule_search *rs, const struct pw_rule_alt *a)
{
	if (a->scope_exe_ino) {
		if (!rs->exe_read) {
			struct task_struct *t = bpf_get_current_task_btf();
			struct inode *ino = BPF_CORE_READ(t, mm, exe_file, f_inode);

			rs->exe_ino = BPF_CORE_READ(ino, i_ino);
			rs->exe_dev = BPF_CORE_READ(ino, i_sb, s_dev);
			rs->exe_read = 1;
		}
		if (rs->exe_ino != a->scope_exe_ino || rs->exe_dev != a->scope_exe_dev)
			return 0;
	}
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

/* ---- pins -------------------------------------------------------------- */

struct pins_loop {
	__u32 gen;
	__u32 pinset;
	__u32 cfg;
	__u32 pad;
};

/* Certificate i against the pinset; the result goes to the accumulator, not a
 * register, so that the verifier need not track every combination of bits. */
static long pins_cb(__u32 i, void *data)
{
	struct pins_loop *pl = data;
	struct pw_pin_key k = { .gen = pl->gen, .pinset_id = pl->pinset };
	struct pw_chain_acc *acc;
	const struct pw_chain_cert *c;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc || i >= acc->ncerts || i >= PW_CHAIN_MAX)
		return 1;
	c = &acc->certs[i & (PW_CHAIN_MAX - 1)];
	if (c->flags & PW_CERT_SPKI_HASHED) {
		k.type = PW_PIN_SPKI;
		__builtin_memcpy(k.hash, c->spki_sha256, PW_HASH_LEN);
		if (bpf_map_lookup_elem(&pins, &k))
			acc->matched |= 1u << (i & 31);
	}
	if ((pl->cfg & PW_CFG_HAS_CERT_PINS) && (c->flags & PW_CERT_HASHED)) {
		k.type = PW_PIN_CERT;
		__builtin_memcpy(k.hash, c->cert_sha256, PW_HASH_LEN);
		if (bpf_map_lookup_elem(&pins, &k))
			acc->matched |= 1u << (i & 31);
	}
	return 0;
}

static __always_inline void pins_match(struct pw_chain_acc *acc, __u32 gen, __u32 pinset, __u32 cfg)
{
	struct pins_loop pl = { .gen = gen, .pinset = pinset, .cfg = cfg };

	acc->matched = 0;
	bpf_loop(PW_CHAIN_MAX, pins_cb, &pl, 0);
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
	struct peer p = {};
	__u8 verdict = PW_VERDICT_UNPINNED, mode = PW_MODE_AUDIT, done = PW_DONE_NONE;
	__u32 matched = 0, rule_id = PW_NO_ID, pinset_id = PW_NO_ID;
	struct pw_config *cfg;
	__u64 now = bpf_ktime_get_boot_ns();

	/*
	 * The chain's flags are gathered in acc->flags (map memory), not in a local:
	 * a local holding a different constant on each path made the verifier
	 * re-verify the bpf_loop callbacks below once per combination of flags
	 * (a verdict probe with its side known at compile time went past 1M
	 * instructions; with this, 150k).
	 */

	__builtin_memset(rs, 0, sizeof(*rs));
	rs->side = side;
	if (resumed)
		acc->flags |= PW_CHAIN_RESUMED;
	else
		count(PW_CNT_CHAINS);
	if (resumed)
		verdict = PW_VERDICT_RESUMED;
	else if (!acc->ncerts)
		acc->flags |= PW_CHAIN_NO_CERTS;
	else if (now - acc->ts > PW_CHAIN_MAX_AGE_NS)
		acc->flags |= PW_CHAIN_STALE;

	if (acc->ssl)
		st = bpf_map_lookup_elem(&ssl_state, &sk);
	acc->host_len = 0;
	acc->host[0] = 0;
	if (st && st->host_len && st->host_len < PW_HOST_MAX) {
		bpf_probe_read_kernel(acc->host, PW_HOST_MAX, st->host);
		acc->host_len = st->host_len;
	} else {
		acc->flags |= PW_CHAIN_NO_SNI;
	}
	peer_find(st, &p);
	if (!p.family)
		acc->flags |= PW_CHAIN_NO_PEER;
	else if (p.guessed == 1)
		acc->flags |= PW_CHAIN_PEER_GUESSED;
	else if (p.guessed == 2)
		acc->flags |= PW_CHAIN_PEER_READ;

	rs->gen = active_gen;
	cfg = bpf_map_lookup_elem(&configs, &rs->gen);
	if (!cfg) {
		acc->flags |= PW_CHAIN_NO_POLICY;
	} else {
		rs->cfg = cfg->flags;
		rs->port = side == PW_SIDE_CLIENT ? p.port : p.local_port;
		if (side == PW_SIDE_SERVER) {
			/* server rules are keyed by the local port alone */
			acc->host_len = 0;
			__builtin_memset(acc->key.host, 0, PW_HOST_MAX);
			acc->key.kind = PW_HOST_EXACT;
			if (rs->port)
				rule_try(rs, &acc->key);
		} else {
			rule_find(acc, rs, &p);
		}
		if (side == PW_SIDE_SERVER && st && st->host_len)
			acc->host_len = st->host_len;	/* report the SNI the client asked for */
	}
	if (resumed && (rs->have_scoped || rs->have_unscoped)) {
		/* the rule its host falls under, for the report */
		struct pw_rule_alt *a = rs->have_scoped ? &rs->scoped : &rs->unscoped;

		rule_id = a->rule_id;
		pinset_id = a->pinset_id;
		mode = a->mode;
	} else if (!resumed && (rs->have_scoped || rs->have_unscoped)) {
		struct pw_rule_alt *a = rs->have_scoped ? &rs->scoped : &rs->unscoped;
		struct pw_pinset_key pk = { .gen = rs->gen, .pinset_id = a->pinset_id };
		struct pw_pinset_val *ps = bpf_map_lookup_elem(&pinsets, &pk);
		__s64 unix_s = (__s64)((now + boot_to_unix_ns) / NSEC_PER_SEC);

		rule_id = a->rule_id;
		pinset_id = a->pinset_id;
		mode = a->mode;
		pins_match(acc, rs->gen, a->pinset_id, rs->cfg);
		matched = acc->matched;
		if (ps && ps->expires && unix_s >= ps->expires)
			verdict = PW_VERDICT_EXPIRED;
		else if (matched)
			verdict = PW_VERDICT_MATCH;
		else
			verdict = PW_VERDICT_MISMATCH;	/* also when the chain could not be judged */

		if (verdict == PW_VERDICT_MISMATCH) {
			__u8 action = a->action;

			if (mode == PW_MODE_ENFORCE && action == PW_ACTION_RESET) {
				int marked = conn_mark_reset(&p, now, 0);

				if (marked == 0) {
					done = PW_DONE_RESET;
				} else {
					/* fail closed: without the socket or room to mark it, only
					 * the process can go */
					acc->flags |= marked == PW_MARK_FULL ? PW_CHAIN_RESET_FULL :
									       PW_CHAIN_RESET_NO_SOCK;
					action = PW_ACTION_KILL;
				}
			}
			if (mode == PW_MODE_ENFORCE && action == PW_ACTION_KILL) {
				if (bpf_send_signal(SIGKILL) == 0) {
					done = PW_DONE_KILLED;
					count(PW_CNT_KILLED);
				} else {
					done = PW_DONE_KILL_FAILED;
					count(PW_CNT_KILL_FAILED);
					/* the daemon kills it; until then its connection is dropped */
					conn_mark_reset(&p, now, PW_MARK_KILL);
				}
			} else if (mode != PW_MODE_ENFORCE) {
				done = a->action == PW_ACTION_KILL ? PW_DONE_WOULD_KILL :
								     PW_DONE_WOULD_RESET;
			}
		}
	}

	if (cfg && (cfg->flags & PW_CFG_LOG_MISMATCHES) && verdict != PW_VERDICT_MISMATCH &&
	    verdict != PW_VERDICT_EXPIRED && !(acc->flags & PW_CHAIN_UNJUDGEABLE))
		return;

	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		count(PW_CNT_LOST_CHAIN_RECS);
		return;
	}
	rec->type = PW_REC_CHAIN;
	rec->ts_boot_ns = now;
	rec->cgroup_id = bpf_get_current_cgroup_id();
	rec->chain_id = 0;
	rec->pid = sk.tgid;
	rec->tid = (__u32)bpf_get_current_pid_tgid();
	rec->uid = (__u32)bpf_get_current_uid_gid();
	rec->gen = rs->gen;
	rec->rule_id = rule_id;
	rec->pinset_id = pinset_id;
	rec->matched = matched;
	rec->peer_port = p.port;
	rec->peer_family = p.family;
	rec->local_port = p.local_port;
	rec->pad16 = 0;
	__builtin_memcpy(rec->peer_addr, p.addr, 16);
	__builtin_memcpy(rec->local_addr, p.local_addr, 16);
	rec->library = library;
	rec->side = side;
	rec->verdict = verdict;
	rec->mode = mode;
	rec->done = done;
	rec->ncerts = acc->ncerts > PW_CHAIN_MAX ? PW_CHAIN_MAX : acc->ncerts;
	rec->pad[0] = rec->pad[1] = 0;
	bpf_get_current_comm(rec->comm, sizeof(rec->comm));
	bpf_probe_read_kernel(rec->host, PW_HOST_MAX, acc->host);
	if (!acc->host_len)
		rec->host[0] = 0;
	rec->flags = acc->flags | exe_path(acc, rec->exe);
	bpf_probe_read_kernel(rec->certs, sizeof(rec->certs), acc->certs);
	/* a reset waits for the daemon's SOCK_DESTROY: wake it now */
	bpf_ringbuf_submit(rec, done == PW_DONE_RESET ? BPF_RB_FORCE_WAKEUP : rb_flags());
}

static __always_inline void verdict_judge(struct pw_chain_acc *acc, __u8 library, __u8 side)
{
	verdict_take(acc, library, side, 0);
}

/*
 * A client's session was resumed (the library says so when the connection
 * ends): report it with the rule its host falls under. Only when no chain is
 * being gathered on this thread, which the report would otherwise disturb.
 */
static __always_inline void verdict_resumed(__u64 ssl, __u8 library)
{
	struct pw_chain_acc *acc = chain_acc_get();

	count(PW_CNT_RESUMED);
	if (!acc || acc->ncerts)
		return;
	chain_reset(acc);
	acc->ssl = ssl;
	verdict_take(acc, library, PW_SIDE_CLIENT, 1);
	chain_reset(acc);
}

/*
 * OpenSSL's X509 layer, shared by OpenSSL and BoringSSL: the SSL* handed to
 * X509_STORE_CTX_set_ex_data just before the verdict point, then
 * X509_STORE_CTX_set_default(ctx, "ssl_server" | "ssl_client"): the chain is
 * complete. "ssl_server": we are the client judging a server; "ssl_client":
 * the reverse.
 */
static __always_inline void x509_store_ssl(void *ssl)
{
	struct pw_chain_acc *acc;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (acc)
		acc->ssl = (__u64)ssl;
}

static __always_inline void x509_store_verdict(const char *name, __u8 library)
{
	struct pw_chain_acc *acc;
	char n[11] = {};
	__u8 side;

	if (bpf_probe_read_user(n, sizeof(n), name))
		return;
	if (n[0] != 's' || n[1] != 's' || n[2] != 'l' || n[3] != '_' || n[10] != 0)
		return;
	if (n[4] == 's' && n[5] == 'e')
		side = PW_SIDE_CLIENT;
	else if (n[4] == 'c' && n[5] == 'l')
		side = PW_SIDE_SERVER;
	else
		return;
	acc = chain_acc_get();
	if (!acc)
		return;
	verdict_judge(acc, library, side);
	chain_reset(acc);
}

#endif /* PW_VERDICT_BPF_H */
