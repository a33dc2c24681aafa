// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * NSS (libssl3.so + libnss3.so: tstclnt, curl's NSS flavour, Firefox,
 * Thunderbird, ...). Every probe sits on a call instruction inside libssl3.so,
 * found by userspace/nss.c at attach time:
 *   CERT_NewTempCertificate(db, SECItem *der, ...) call sites: each certificate
 *       libssl3 parses, from the peer or not (session caches, resumption tokens)
 *   SECKEY_UpdateCertPQG(peerCert) call sites: ssl3_CompleteHandleCertificate
 *       (TLS 1.2) and tls13_HandleCertificate have the whole chain and have not
 *       called the application's auth callback yet: the verdict.
 * The CA certificates of the NSS database are parsed by libnss3 itself and
 * never pass a probe.
 *
 * Which certificates form the chain. NSS parses each certificate in place
 * from the Certificate message; the message itself lies in the record it came
 * in (then its handshake header is right in front: as OpenSSL, see
 * chain.bpf.h), or, when it spans several records (a chain over 16 KiB, or a
 * server that fragments), in a copy of its body without the header. So a
 * certificate starts a chain when the framing in front of it says so (header,
 * or at least the certificate_list length and its own), it continues one when
 * it starts where the previous entry ends (TLS 1.2 or 1.3 entry layout), and
 * the verdict checks that the first certificate judged is the very leaf NSS
 * hands to SECKEY_UpdateCertPQG; if not, the chain is not judged (fail closed).
 *
 * The connection. The sslSocket is read from the register that holds it at
 * the probed call (the cookie says which); the verdict checks it through its
 * peerCert field, then reads its url (the name NSS sends as SNI and verifies),
 * its role (client or server) and, through NSPR's layers, the OS socket.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "nss.h"
#include "session.bpf.h"
#include "verdict.bpf.h"

#define NSS_TAIL	32	/* bytes of the leaf's end kept to recognise it at the verdict */
#define NSS_LAYERS_MAX	8	/* NSPR I/O layers walked down to the OS socket */

/* Filled by userspace/nss.c, one entry per attached libssl3.so. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NSS_LAYOUTS_MAX);
	__type(key, __u32);
	__type(value, struct nss_layout);
} nss_layouts SEC(".maps");

/* Per thread: the sslSocket seen at the last certificate, and the chain's leaf. */
struct nss_thread {
	__u64 ss;		/* sslSocket * (unverified) */
	__u32 layout;		/* its nss_layouts entry */
	__u32 leaf_len;		/* DER length of the chain's first certificate */
	__u8 leaf_tail[NSS_TAIL];
	/* the verdict's work area for the sslSocket's url */
	__u32 host_len;
	__u8 host_name;		/* a character no address literal has */
	__u8 host_colon;	/* an IPv6 literal */
	__u8 side;		/* enum pw_side, for the verdict */
	__u8 pad;
	__u64 verdict_ss;	/* the sslSocket the verdict names (checked), or 0 */
	char host[PW_HOST_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct nss_thread);
} nss_threads SEC(".maps");

/* The register the cookie names. Read through a helper: clang turns the
 * switch into an offset added to ctx, which the verifier refuses. */
static __always_inline __u64 nss_reg(struct pt_regs *ctx, __u32 reg)
{
	__u64 v = 0;
	long off;

	switch (reg) {
	case NSS_REG_RBX:
		off = offsetof(struct pt_regs, bx);
		break;
	case NSS_REG_RBP:
		off = offsetof(struct pt_regs, bp);
		break;
	case NSS_REG_R12:
		off = offsetof(struct pt_regs, r12);
		break;
	case NSS_REG_R13:
		off = offsetof(struct pt_regs, r13);
		break;
	case NSS_REG_R14:
		off = offsetof(struct pt_regs, r14);
		break;
	case NSS_REG_R15:
		off = offsetof(struct pt_regs, r15);
		break;
	default:
		return 0;
	}
	bpf_probe_read_kernel(&v, sizeof(v), (void *)ctx + off);
	return v;
}

/*
 * Is the certificate at `der` the first of a Certificate message, the next
 * one, or neither? `*form` gets the entry layout when known (12, 13) or 0.
 */
static __always_inline int nss_entry_kind(const struct pw_chain_acc *acc, __u64 der, __u32 len,
					  __u64 now, __u32 *form)
{
	__u8 pre[11] = {};
	__u32 list;
	int framed;

	if (bpf_probe_read_user(pre, sizeof(pre), (const void *)(der - sizeof(pre))))
		return CHAIN_ORPHAN;
	if (be24(&pre[8]) != len)
		return CHAIN_ORPHAN;	/* every entry is preceded by its own 24-bit length */
	list = be24(&pre[5]);
	framed = list >= len + 3 && list < PW_MAX_CERT_LIST;
	/* the message parsed where it arrived: its handshake header is in front */
	if (framed && pre[1] == 0x0b && be24(&pre[2]) == list + 3) {
		*form = 12;
		return CHAIN_FIRST;
	}
	if (framed && pre[0] == 0x0b && be24(&pre[1]) == list + 4 && pre[4] == 0) {
		*form = 13;
		return CHAIN_FIRST;
	}
	/* the entry after the previous one; the two layouts never place it alike */
	if (acc->ncerts && now - acc->ts <= PW_CHAIN_MAX_AGE_NS) {
		if (acc->form != 13 && der == acc->next_der + 3) {
			*form = 12;
			return CHAIN_NEXT;
		}
		if (acc->form != 12) {
			__u8 ext[2];

			if (!bpf_probe_read_user(ext, sizeof(ext), (const void *)acc->next_der) &&
			    der == acc->next_der + 2 + ((__u32)ext[0] << 8 | ext[1]) + 3) {
				*form = 13;
				return CHAIN_NEXT;
			}
		}
	}
	/* a message reassembled from several records: its body without the header */
	if (framed) {
		*form = 0;
		return CHAIN_FIRST;
	}
	return CHAIN_ORPHAN;
}

/* CERT_NewTempCertificate(handle, SECItem *derCert, nickname, isperm, copyDER) */
SEC("uprobe")
int BPF_KPROBE(nss_cert, void *handle, const void *item)
{
	__u64 cookie = bpf_get_attach_cookie(ctx), der = 0, ss, now;
	struct pw_chain_acc *acc;
	struct nss_thread *t;
	__u32 len = 0, form = 0;
	int kind;

	if (bpf_probe_read_user(&der, sizeof(der), item + NSS_SECITEM_DATA) ||
	    bpf_probe_read_user(&len, sizeof(len), item + NSS_SECITEM_LEN) || !der || !len)
		return 0;
	if (len > PW_MAX_CERT_LIST)
		len = PW_MAX_CERT_LIST;
	t = bpf_task_storage_get(&nss_threads, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t)
		return 0;
	ss = nss_reg(ctx, NSS_COOKIE_REG(cookie));
	if (ss) {
		t->ss = ss;
		t->layout = NSS_COOKIE_LAYOUT(cookie);
	}
	acc = chain_acc_get();
	if (!acc)
		return 0;
	now = bpf_ktime_get_boot_ns();
	kind = nss_entry_kind(acc, der, len, now, &form);
	if (kind == CHAIN_ORPHAN) {
		count(PW_CNT_ORPHAN_CERTS);
		return 0;
	}
	if (kind == CHAIN_FIRST) {
		acc = chain_begin();
		if (!acc)
			return 0;
		t->leaf_len = len;
		__builtin_memset(t->leaf_tail, 0, NSS_TAIL);
		if (len >= NSS_TAIL)
			bpf_probe_read_user(t->leaf_tail, NSS_TAIL, (const void *)(der + len - NSS_TAIL));
	}
	acc->form = form;
	chain_append(acc, der, len, now);
	return 0;
}

/* Is the first certificate judged the leaf NSS is about to use? */
static __always_inline int nss_leaf_is(const struct nss_thread *t, const struct pw_chain_acc *acc,
				       const void *cert)
{
	__u8 tail[NSS_TAIL];
	__u64 data = 0;
	__u32 len = 0, i;

	if (bpf_probe_read_user(&data, sizeof(data), cert + NSS_CERT_DERCERT + NSS_SECITEM_DATA) ||
	    bpf_probe_read_user(&len, sizeof(len), cert + NSS_CERT_DERCERT + NSS_SECITEM_LEN))
		return 0;
	if (!data || len != t->leaf_len || len != acc->certs[0].der_len || len < NSS_TAIL)
		return 0;
	if (bpf_probe_read_user(tail, NSS_TAIL, (const void *)(data + len - NSS_TAIL)))
		return 0;
	for (i = 0; i < NSS_TAIL; i++)
		if (tail[i] != t->leaf_tail[i])
			return 0;
	return 1;
}

/* One character of the url: lower-case it, and tell names from address literals. */
static long nss_host_cb(__u32 i, void *data)
{
	struct nss_thread *t = bpf_task_storage_get(&nss_threads, bpf_get_current_task_btf(), 0, 0);
	char c;

	if (!t || i >= PW_HOST_MAX - 1)
		return 1;
	c = t->host[i & (PW_HOST_MAX - 1)];
	if (!c)
		return 1;
	if (c >= 'A' && c <= 'Z')
		t->host[i & (PW_HOST_MAX - 1)] = c + ('a' - 'A');
	if (c == ':')
		t->host_colon = 1;
	else if ((c < '0' || c > '9') && c != '.')
		t->host_name = 1;
	t->host_len = i + 1;
	return 0;
}

/*
 * The url NSS was given (SSL_SetURL), as the session's host: lower case, no
 * final dot, and none for an IPv4 or IPv6 literal, for which NSS sends no SNI
 * (ssl3_ClientSendServerNameXtn). Worked on in the thread's map value, in a
 * bpf_loop: inline, the verifier would walk it once per path of the verdict.
 */
static __always_inline void nss_host(struct nss_thread *t, struct pw_ssl_state *st, __u64 url)
{
	int unused = 0;

	__builtin_memset(t->host, 0, sizeof(t->host));
	t->host_len = 0;
	t->host_name = t->host_colon = 0;
	st->host_len = 0;
	if (!url || bpf_probe_read_user_str(t->host, sizeof(t->host), (const void *)url) <= 1)
		return;
	bpf_loop(PW_HOST_MAX, nss_host_cb, &unused, 0);
	if (t->host_len && t->host[(t->host_len - 1) & (PW_HOST_MAX - 1)] == '.')
		t->host[--t->host_len & (PW_HOST_MAX - 1)] = 0;
	if (!t->host_name || t->host_colon || !t->host_len || t->host_len >= PW_HOST_MAX)
		return;
	bpf_probe_read_kernel(st->host, sizeof(st->host), t->host);
	st->host_len = t->host_len;
}

/* The OS socket under the SSL layer: NSPR's bottom layer keeps it in its secret. */
static __always_inline int nss_os_fd(__u64 ss, const struct nss_layout *lay)
{
	__u64 fd = 0, secret = 0;
	__s32 id, osfd = -1;
	__u32 i;

	if (lay->osfd == NSS_OFF_UNKNOWN ||
	    bpf_probe_read_user(&fd, sizeof(fd), (const void *)(ss + lay->fd)))
		return -1;
	for (i = 0; i < NSS_LAYERS_MAX && fd; i++) {
		if (bpf_probe_read_user(&id, sizeof(id), (const void *)(fd + NSPR_FD_IDENTITY)))
			return -1;
		if (id == 0) {
			if (bpf_probe_read_user(&secret, sizeof(secret),
						(const void *)(fd + NSPR_FD_SECRET)) || !secret ||
			    bpf_probe_read_user(&osfd, sizeof(osfd),
						(const void *)(secret + lay->osfd)))
				return -1;
			return osfd;
		}
		if (bpf_probe_read_user(&fd, sizeof(fd), (const void *)(fd + NSPR_FD_LOWER)))
			return -1;
	}
	return -1;
}

/* What the verdict needs to know about the sslSocket; returns the side. */
static __always_inline __u8 nss_session_fill(struct nss_thread *t, __u64 ss,
					     const struct nss_layout *lay)
{
	struct pw_ssl_state *st = session_get(ss);
	__u64 url = 0;
	__u32 role = 0;

	if (!st)
		return PW_SIDE_CLIENT;
	bpf_probe_read_user(&url, sizeof(url), (const void *)(ss + lay->url));
	nss_host(t, st, url);
	st->fd = nss_os_fd(ss, lay);
	/* A client is always 1 (SSL_ResetHandshake(fd, PR_FALSE), or connect). A
	 * server is 2, or 0 on a socket from PR_Accept: NSS's ssl_Accept sets the
	 * listening socket's field instead of the new one's. */
	if (lay->role != NSS_OFF_UNKNOWN &&
	    !bpf_probe_read_user(&role, sizeof(role), (const void *)(ss + lay->role)) && role != 1)
		return PW_SIDE_SERVER;
	return PW_SIDE_CLIENT;
}

/*
 * Everything the verdict needs from NSS, left in map values (acc->ssl,
 * acc->flags, t->verdict_ss, t->side) rather than registers: the verifier then
 * reaches verdict_judge() in one state whatever path this took.
 */
static __always_inline void nss_prepare(struct pt_regs *ctx, struct nss_thread *t,
					struct pw_chain_acc *acc, const void *cert)
{
	__u64 cookie = bpf_get_attach_cookie(ctx), ss, peer = 0;
	struct nss_layout *lay;
	__u32 idx = NSS_COOKIE_LAYOUT(cookie);

	t->verdict_ss = 0;
	t->side = PW_SIDE_CLIENT;
	acc->ssl = 0;
	ss = nss_reg(ctx, NSS_COOKIE_REG(cookie));
	if (!ss && t->layout == idx)
		ss = t->ss;
	if (acc->ncerts && !nss_leaf_is(t, acc, cert))
		acc->flags |= PW_CHAIN_STALE;	/* not this handshake's chain: not judged */
	lay = bpf_map_lookup_elem(&nss_layouts, &idx);
	/* the sslSocket whose peer certificate this is, or none: then its host is
	 * unknown, and a chain a host rule could cover fails closed (verdict.bpf.h) */
	if (!lay || !ss ||
	    bpf_probe_read_user(&peer, sizeof(peer), (const void *)(ss + lay->peer_cert)) ||
	    peer != (__u64)cert) {
		acc->flags |= PW_CHAIN_HOST_LOST;
		return;
	}
	t->side = nss_session_fill(t, ss, lay);
	t->verdict_ss = ss;
	acc->ssl = ss;
}

/* SECKEY_UpdateCertPQG(ss->sec.peerCert), called by libssl3: the chain is complete */
SEC("uprobe")
int BPF_KPROBE(nss_chain_done, const void *cert)
{
	struct pw_chain_acc *acc;
	struct nss_thread *t;

	t = bpf_task_storage_get(&nss_threads, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	acc = chain_acc_get();
	if (!acc || !t) {
		verdict_no_acc(PW_LIB_NSS, PW_SIDE_CLIENT);
		return 0;
	}
	nss_prepare(ctx, t, acc, cert);
	verdict_judge(acc, PW_LIB_NSS, t->side);
	chain_reset(acc);
	if (t->verdict_ss)
		session_forget(t->verdict_ss);
	t->ss = 0;
	return 0;
}
