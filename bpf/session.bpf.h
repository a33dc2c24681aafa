/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What a library tells us about one of its connection objects (SSL*,
 * gnutls_session_t, PRFileDesc*, *tls.Conn, a Go client goroutine, ...)
 * before the handshake: the SNI and the socket. Kept in ssl_state keyed by
 * (tgid, object address), stamped with the process's start so that a reused
 * pid never inherits it; the verdict finds it through acc->ssl. A library
 * forgets the object when it is freed (its address may be reused); the daemon
 * sweeps dead processes.
 *
 * The table is shared by every process on the host, so no uid may hold more
 * than session_quota entries (session_uids counts them). When an entry cannot
 * be made (quota or table full) the process is marked in session_lost (its uid
 * in session_lost_uid if even that table is full): a chain of it whose state is
 * then missing is judged as one whose host was lost (verdict.bpf.h: failed
 * closed wherever a rule could cover it), never as a chain that simply had no
 * SNI. The daemon lifts a mark once its process is gone.
 */
#ifndef PW_SESSION_BPF_H
#define PW_SESSION_BPF_H

#include "maps.bpf.h"

static const struct pw_ssl_state ssl_state_empty = { .fd = -1 };

/* The start of the current process (its group leader), boot ns. */
static __always_inline __u64 session_proc_start(void)
{
	/* plain loads through the typed pointer: a helper call per field costs more */
	return bpf_get_current_task_btf()->group_leader->start_boottime;
}

/*
 * This process lost a connection's state: say so to every later verdict of it
 * (of its uid, when even that cannot be recorded).
 */
static __always_inline void session_mark_lost(__u32 uid)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 start = session_proc_start(), now = bpf_ktime_get_boot_ns();

	count(PW_CNT_SNI_FULL);
	if (bpf_map_update_elem(&session_lost, &tgid, &start, BPF_ANY) &&
	    bpf_map_update_elem(&session_lost_uid, &uid, &now, BPF_ANY))
		count(PW_CNT_LOST_MARK_FAILED);
}

/* Did this process (or, past that table, its uid) lose a connection's state? */
static __always_inline int session_lost_here(__u32 uid)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 *start = bpf_map_lookup_elem(&session_lost, &tgid);

	if (start && *start == session_proc_start())
		return 1;
	return bpf_map_lookup_elem(&session_lost_uid, &uid) != NULL;
}

/* The state of obj in this process, if it has one. */
static __always_inline struct pw_ssl_state *session_find(__u64 obj)
{
	struct pw_ssl_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .ssl = obj };
	struct pw_ssl_state *st = bpf_map_lookup_elem(&ssl_state, &k);

	return st && st->start == session_proc_start() ? st : NULL;
}

static __always_inline void session_drop(struct pw_ssl_key *k, struct pw_ssl_state *st)
{
	__u32 uid = st->uid;

	if (bpf_map_delete_elem(&ssl_state, k) == 0)
		uid_count_dec(&session_uids, uid);
}

static __always_inline struct pw_ssl_state *session_get(__u64 obj)
{
	struct pw_ssl_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .ssl = obj };
	struct pw_ssl_state *st = bpf_map_lookup_elem(&ssl_state, &k);
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	__u64 start = session_proc_start(), zero = 0, *used;

	if (st) {
		if (st->start == start)
			return st;
		session_drop(&k, st);	/* left by a dead process whose pid this one reuses */
	}
	used = bpf_map_lookup_elem(&session_uids, &uid);
	if (!used) {
		bpf_map_update_elem(&session_uids, &uid, &zero, BPF_NOEXIST);
		used = bpf_map_lookup_elem(&session_uids, &uid);
	}
	if (!used || *used >= session_quota) {
		session_mark_lost(uid);
		return NULL;
	}
	if (bpf_map_update_elem(&ssl_state, &k, &ssl_state_empty, BPF_NOEXIST)) {
		st = bpf_map_lookup_elem(&ssl_state, &k);	/* made meanwhile on another CPU? */
		if (!st)
			session_mark_lost(uid);
		return st;
	}
	__sync_fetch_and_add(used, 1);
	st = bpf_map_lookup_elem(&ssl_state, &k);
	if (st) {
		st->start = start;
		st->uid = uid;
	}
	return st;
}

/* Lower case, no final dot: names compare as the policy writes them. */
static __always_inline void session_host_normalize(struct pw_ssl_state *st)
{
	__u32 i, len = 0;

	for (i = 0; i < PW_HOST_MAX; i++) {
		char c = st->host[i];

		if (!c)
			break;
		if (c >= 'A' && c <= 'Z')
			st->host[i] = c + ('a' - 'A');
		len = i + 1;
	}
	if (len && st->host[(len - 1) & (PW_HOST_MAX - 1)] == '.')
		st->host[--len & (PW_HOST_MAX - 1)] = 0;
	st->host_len = len;
}

/* The SNI, a NUL-terminated string in the process (NULL clears it). */
static __always_inline void session_set_host(__u64 obj, const char *name)
{
	struct pw_ssl_state *st = session_get(obj);
	long n;

	if (!st)
		return;
	st->host_len = 0;
	st->flags &= ~PW_SESSION_HOST_UNREADABLE;
	if (!name)
		return;
	n = bpf_probe_read_user_str(st->host, sizeof(st->host), name);
	if (n < 0)
		st->flags |= PW_SESSION_HOST_UNREADABLE;	/* a name we cannot know */
	if (n <= 1)
		return;
	session_host_normalize(st);
}

/* The SNI, `len` bytes in the process, not NUL-terminated (Go strings, ...). */
static __always_inline void session_set_host_len(__u64 obj, const char *name, __u32 len)
{
	struct pw_ssl_state *st = session_get(obj);

	if (!st)
		return;
	st->host_len = 0;
	st->flags &= ~PW_SESSION_HOST_UNREADABLE;
	if (!name || !len)
		return;
	if (len >= PW_HOST_MAX) {
		st->flags |= PW_SESSION_HOST_UNREADABLE;	/* longer than any DNS name */
		return;
	}
	__builtin_memset(st->host, 0, sizeof(st->host));
	if (bpf_probe_read_user(st->host, len & (PW_HOST_MAX - 1), name)) {
		st->flags |= PW_SESSION_HOST_UNREADABLE;
		return;
	}
	session_host_normalize(st);
}

static __always_inline void session_set_fd(__u64 obj, int fd)
{
	struct pw_ssl_state *st = session_get(obj);

	if (st)
		st->fd = fd;
}

static __always_inline void session_forget(__u64 obj)
{
	struct pw_ssl_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .ssl = obj };
	struct pw_ssl_state *st = bpf_map_lookup_elem(&ssl_state, &k);

	if (st)
		session_drop(&k, st);
}

#endif /* PW_SESSION_BPF_H */
