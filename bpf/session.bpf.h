/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What a library tells us about one of its connection objects (SSL*,
 * gnutls_session_t, PRFileDesc*, *tls.Conn, ...) before the handshake: the SNI
 * and the socket. Kept in ssl_state keyed by (tgid, object address); the
 * verdict finds it through acc->ssl. A library forgets the object when it is
 * freed (its address may be reused); the daemon sweeps dead processes.
 */
#ifndef PW_SESSION_BPF_H
#define PW_SESSION_BPF_H

#include "maps.bpf.h"

static const struct pw_ssl_state ssl_state_empty = { .fd = -1 };

static __always_inline struct pw_ssl_state *session_get(__u64 obj)
{
	struct pw_ssl_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .ssl = obj };
	struct pw_ssl_state *st = bpf_map_lookup_elem(&ssl_state, &k);

	if (st)
		return st;
	if (bpf_map_update_elem(&ssl_state, &k, &ssl_state_empty, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&ssl_state, &k)) {
		count(PW_CNT_SNI_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&ssl_state, &k);
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

	if (!st)
		return;
	st->host_len = 0;
	if (!name || bpf_probe_read_user_str(st->host, sizeof(st->host), name) <= 1)
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
	if (!name || !len || len >= PW_HOST_MAX)
		return;
	__builtin_memset(st->host, 0, sizeof(st->host));
	if (bpf_probe_read_user(st->host, len & (PW_HOST_MAX - 1), name))
		return;
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

	bpf_map_delete_elem(&ssl_state, &k);
}

#endif /* PW_SESSION_BPF_H */
