// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * NSS (libssl3.so + libnss3.so: tstclnt, curl's NSS flavour, Firefox,
 * Thunderbird, ...). Every probe sits on a call instruction inside libssl3.so,
 * found by userspace/nss.c at attach time:
 *   CERT_NewTempCertificate(db, SECItem *der, ...) call sites: each certificate
 *       libssl3 parses, from the peer or not (session caches, resumption tokens)
 *   ... and the instruction after each: the CERTCertificate it made
 *   SECKEY_UpdateCertPQG(peerCert) call sites: ssl3_CompleteHandleCertificate
 *       (TLS 1.2) and tls13_HandleCertificate have the whole chain and have not
 *       called the application's auth callback yet: the chain is complete
 *   SSL_AuthCertificate's calls of CERT_VerifyCert(handle, peerCert, checkSig,
 *       usage, ...) and CERT_VerifyCertName(peerCert, ss->url), and the
 *       instructions after them (nss_verify_ret: their results): NSS's own
 *       verification
 *   the instruction after ssl3_AuthCertificate's call of the application's
 *       auth callback (ss->authCertificate): the verdict, on what NSS verified
 *   SSL_AuthCertificateComplete(fd, error): the verdict, when the callback
 *       deferred verification (SECWouldBlock: tstclnt by default, Firefox)
 * and, in libnss3.so, cert_VerifyCertChainOld's CERT_VerifySignedData(
 * &subject->signatureWrap, issuer, ...) call sites and the instruction after
 * them: each signature verified, from the leaf up, is a link of the chain NSS
 * built. In NSS 3.110 (not 3.61 nor 3.87), CERT_VerifyCert runs libpkix
 * instead (its default), whose PKIX_PL_Cert_VerifySignature calls
 * SECKEY_ExtractPublicKey(issuer's SubjectPublicKeyInfo copy) then
 * CERT_VerifySignedDataWithPublicKey(&subject->signatureWrap, key, ...):
 * nss_pkix_key, nss_pkix_sig and nss_pkix_sig_ret link each subject verified
 * to the earlier one whose key verified it (libpkix goes from the anchor
 * down), by the key's bytes, and the verdict walks those links up from the
 * leaf (the anchor, never verified itself, is not among them). The CA
 * certificates of the NSS database are parsed by libnss3 itself and never
 * pass a probe.
 *
 * The validated chain. The verdict waits for the application's decision (the
 * auth callback's result, or, when it deferred, SSL_AuthCertificateComplete's
 * error; still inside the handshake, before any application data): the chain
 * counts as verified only if the thread's last SSL_AuthCertificate was of this
 * socket's leaf, with signatures, for its side and (a client) its url, and
 * succeeded, and the application accepted the chain (one that overrides a
 * failed verification, as tstclnt -o does, is not verified). Its certificates
 * are the issuers whose signature over the previous one verified, from the
 * leaf; the last is the trust anchor, judged as the database's certificate
 * (from its derPublicKey), never as one the peer presented. Without that hook
 * (a build where the callback's call is not found), the verdict is taken at
 * SECKEY_UpdateCertPQG, leaf only. A deferred chain waits in parked_chains; when
 * that is full it is judged at once, leaf only (counted: vchain_unread).
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
#define NSS_VCHAIN_MAX	8	/* issuers of a verified chain kept */
#define NSS_SEC_WOULD_BLOCK	(-2)	/* SECWouldBlock */

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
	/* the certificate just appended, until CERT_NewTempCertificate returns its object */
	__u64 cert_der;
	__u32 cert_idx;		/* its index in the chain + 1, or 0 */
	/* the thread's last SSL_AuthCertificate (the verdict checks it was of its chain) */
	__u32 vstate;		/* enum nss_vstate */
	__u64 vss;		/* the sslSocket whose chain is pending on this thread, or 0 */
	__u64 vleaf;		/* the leaf verified (CERTCertificate *) */
	__u64 vtip;		/* the last certificate of the chain verified so far */
	__u64 vedge;		/* the issuer whose signature over vtip is being checked */
	__u64 judged_ss;	/* the last sslSocket judged without waiting */
	__u64 vurl;		/* the name CERT_VerifyCertName checked the leaf against */
	__u32 vusage;		/* CERT_VerifyCert's certUsage */
	__u32 vpad;
	__u32 nv;		/* issuers in vobj[] */
	__u32 voverflow;	/* more issuers than vobj[] holds */
	__u64 vobj[NSS_VCHAIN_MAX];	/* the issuers verified, from the leaf's */
	/* ... their keys, hashed at once: NSS may free an issuer once verification is over */
	struct pw_chain_cert vcert[NSS_VCHAIN_MAX];
	/* libpkix (nss_pkix_sig): the signatures it verified, subject by subject, each
	 * linked to the earlier subject whose key verified it (by the key's bytes) */
	__u64 pk_spki;		/* the issuer's SubjectPublicKeyInfo copy just extracted */
	__u64 pk_key;		/* ... the one of the signature being checked */
	__u64 pk_subj;		/* its subject (CERTCertificate *) */
	__u32 np;		/* subjects in psubj[] */
	__u32 ppad;
	__u64 psubj[NSS_VCHAIN_MAX];
	__s32 pparent[NSS_VCHAIN_MAX];	/* the subject whose key verified it, or -1 */
	struct pw_chain_cert pcert[NSS_VCHAIN_MAX];	/* its key, hashed */
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
	t->cert_idx = 0;
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
	kind = chain_append(acc, der, len, now);
	t->cert_idx = kind >= 0 ? kind + 1 : 0;
	t->cert_der = der;
	return 0;
}

/*
 * The instruction after a CERT_NewTempCertificate call: RAX is the object of
 * the certificate just appended (the one NSS's verification will name it by).
 * NSS hands back an existing object only for the very same encoding; its
 * length and last bytes are checked all the same.
 */
SEC("uprobe")
int nss_cert_ret(struct pt_regs *ctx)
{
	struct nss_thread *t = bpf_task_storage_get(&nss_threads, bpf_get_current_task_btf(), 0, 0);
	__u8 a[NSS_TAIL], b[NSS_TAIL];
	struct pw_chain_acc *acc;
	__u64 obj = ctx->ax, data = 0;
	__u32 idx, len = 0, i;

	if (!t || !t->cert_idx)
		return 0;
	idx = t->cert_idx - 1;
	t->cert_idx = 0;
	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc || !obj || idx >= PW_CHAIN_MAX || idx >= acc->ncerts)
		return 0;
	if (bpf_probe_read_user(&data, sizeof(data), (const void *)(obj + NSS_CERT_DERCERT + NSS_SECITEM_DATA)) ||
	    bpf_probe_read_user(&len, sizeof(len), (const void *)(obj + NSS_CERT_DERCERT + NSS_SECITEM_LEN)) ||
	    !data || len < NSS_TAIL || len != acc->certs[idx].der_len ||
	    bpf_probe_read_user(a, NSS_TAIL, (const void *)(data + len - NSS_TAIL)) ||
	    bpf_probe_read_user(b, NSS_TAIL, (const void *)(t->cert_der + len - NSS_TAIL)))
		return 0;
	for (i = 0; i < NSS_TAIL; i++)
		if (a[i] != b[i])
			return 0;
	acc->objs[idx] = obj;
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
 * reaches verdict_judge() in one state whatever path this took. `ss` is the
 * sslSocket named at the probe (0: unknown), `cert` its peer certificate.
 */
static __always_inline void nss_prepare(struct nss_thread *t, struct pw_chain_acc *acc, __u64 ss,
					__u32 idx, const void *cert)
{
	struct nss_layout *lay;
	__u64 peer = 0;

	t->verdict_ss = 0;
	t->side = PW_SIDE_CLIENT;
	acc->ssl = 0;
	if (acc->ncerts && !nss_leaf_is(t, acc, cert))
		acc->flags |= PW_CHAIN_STALE;	/* not this handshake's chain: not judged */
	lay = bpf_map_lookup_elem(&nss_layouts, &idx);
	/* the sslSocket whose peer certificate this is, or none: then its host is
	 * unknown, and a chain a host rule could cover fails closed (verdict.bpf.h) */
	if (!lay || !ss ||
	    bpf_probe_read_user(&peer, sizeof(peer), (const void *)(ss + lay->peer_cert)) ||
	    !peer || peer != (__u64)cert) {
		acc->flags |= PW_CHAIN_HOST_LOST;
		return;
	}
	t->side = nss_session_fill(t, ss, lay);
	t->verdict_ss = ss;
	acc->ssl = ss;
}

/*
 * The verdict, after which nothing is pending on this thread any more (the
 * verdict program forgets the sslSocket it judged).
 */
static __always_inline void nss_judge(void *ctx, struct nss_thread *t, struct pw_chain_acc *acc,
				      __u8 side)
{
	__u64 ss = t->verdict_ss;

	t->ss = 0;
	t->vss = 0;
	t->vstate = NSS_V_NONE;
	t->vedge = 0;
	t->nv = 0;
	t->np = 0;
	verdict_judge(ctx, acc, PW_LIB_NSS, side, ss);
}

/*
 * SECKEY_UpdateCertPQG(ss->sec.peerCert), called by libssl3: the chain is
 * complete. With NSS_COOKIE_WAIT, the verdict waits for the auth callback
 * (nss_auth_done); without, or when the sslSocket cannot be confirmed (then
 * the chain fails closed anyway), it is taken now, leaf only.
 */
SEC("uprobe")
int BPF_KPROBE(nss_chain_done, const void *cert)
{
	__u64 cookie = bpf_get_attach_cookie(ctx), ss;
	__u32 idx = NSS_COOKIE_LAYOUT(cookie);
	struct pw_chain_acc *acc;
	struct nss_thread *t;

	t = bpf_task_storage_get(&nss_threads, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	acc = chain_acc_get();
	if (!acc || !t) {
		verdict_no_acc(PW_LIB_NSS, PW_SIDE_CLIENT);
		return 0;
	}
	ss = nss_reg(ctx, NSS_COOKIE_REG(cookie));
	if (!ss && t->layout == idx)
		ss = t->ss;
	nss_prepare(t, acc, ss, idx, cert);
	if ((cookie & NSS_COOKIE_WAIT) && t->verdict_ss) {
		acc->vctx = t->verdict_ss;
		acc->side = t->side;
		acc->validation = PW_VALIDATION_UNVERIFIED;
		t->vss = t->verdict_ss;
		t->vleaf = (__u64)cert;
		t->vstate = NSS_V_NONE;
		t->vedge = 0;
		t->nv = 0;
		t->voverflow = 0;
		t->ss = 0;
		return 0;
	}
	t->judged_ss = ss;
	nss_judge(ctx, t, acc, t->side);
	return 0;
}

/* The thread's verification in progress, if it is at one of two states. */
static __always_inline struct nss_thread *nss_verifying(__u32 s1, __u32 s2)
{
	struct nss_thread *t = bpf_task_storage_get(&nss_threads, bpf_get_current_task_btf(), 0, 0);

	if (!t || (t->vstate != s1 && t->vstate != s2))
		return NULL;
	return t;
}

/*
 * SSL_AuthCertificate's CERT_VerifyCert(handle, cert, checkSig, usage, t, wincx,
 * log) call: NSS starts verifying a peer's leaf, with signatures or not, for a
 * server (then the name follows) or for a client. The thread's last
 * verification: the verdict checks that it was of its socket's leaf and name.
 */
SEC("uprobe")
int BPF_KPROBE(nss_verify, void *handle, const void *cert, int check_sig, int usage)
{
	struct nss_thread *t;

	t = bpf_task_storage_get(&nss_threads, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t)
		return 0;
	t->vleaf = (__u64)cert;
	t->vtip = (__u64)cert;
	t->vurl = 0;
	t->vusage = usage;
	t->nv = 0;
	t->voverflow = 0;
	t->vedge = 0;
	t->np = 0;
	t->pk_key = 0;
	t->pk_subj = 0;
	if (!check_sig)
		t->vstate = NSS_V_FAILED;	/* no signature checked: nothing but the leaf counts */
	else if (usage == NSS_USAGE_SSL_SERVER)
		t->vstate = NSS_V_CHAIN_NAME;
	else if (usage == NSS_USAGE_SSL_CLIENT)
		t->vstate = NSS_V_CHAIN;
	else
		t->vstate = NSS_V_FAILED;
	return 0;
}

/* The instruction after it, and after CERT_VerifyCertName: the result of that step. */
SEC("uprobe")
int nss_verify_ret(struct pt_regs *ctx)
{
	struct nss_thread *t = bpf_task_storage_get(&nss_threads, bpf_get_current_task_btf(), 0, 0);
	int ok = (__s32)ctx->ax == 0;

	if (!t)
		return 0;
	if (t->vstate == NSS_V_CHAIN || t->vstate == NSS_V_NAME_CALLED)
		t->vstate = ok ? NSS_V_OK : NSS_V_FAILED;
	else if (t->vstate == NSS_V_CHAIN_NAME)
		t->vstate = ok ? NSS_V_NAME : NSS_V_FAILED;
	return 0;
}

/* SSL_AuthCertificate's CERT_VerifyCertName(cert, hostname): of the leaf just verified? */
SEC("uprobe")
int BPF_KPROBE(nss_name, const void *cert, const char *host)
{
	struct nss_thread *t = nss_verifying(NSS_V_NAME, NSS_V_NAME);

	if (!t)
		return 0;
	t->vstate = NSS_V_FAILED;
	if ((__u64)cert == t->vleaf && host) {
		t->vurl = (__u64)host;
		t->vstate = NSS_V_NAME_CALLED;
	}
	return 0;
}

/*
 * libnss3's CERT_VerifySignedData(&subject->signatureWrap, issuer, t, wincx),
 * while CERT_VerifyCert runs on the pending leaf: a link of the chain if the
 * subject is the last certificate verified so far.
 */
SEC("uprobe")
int BPF_KPROBE(nss_sig, const void *sd, const void *issuer)
{
	struct nss_thread *t = nss_verifying(NSS_V_CHAIN, NSS_V_CHAIN_NAME);

	if (!t)
		return 0;
	t->vedge = 0;
	if (issuer && (__u64)sd - NSS_CERT_SIGWRAP == t->vtip)
		t->vedge = (__u64)issuer;
	return 0;
}

/* The issuer's key (CERTCertificate.derPublicKey), hashed into vcert[n]; its flags say if it was. */
static __always_inline void nss_issuer_key(struct nss_thread *t, __u64 issuer, __u32 n)
{
	struct pw_anchor_src src = { .kind = PW_ANCHOR_SPKI };
	__u64 item[2] = {};	/* SECItem { type; data; len; }: data, len */

	if (n >= NSS_VCHAIN_MAX)
		return;
	t->vcert[n].flags = 0;
	if (bpf_probe_read_user(item, sizeof(item),
				(const void *)(issuer + NSS_CERT_DERPUBKEY + NSS_SECITEM_DATA)) ||
	    !item[0] || !(__u32)item[1])
		return;
	src.ptr = item[0];
	src.len = (__u32)item[1];
	anchor_capture(&src, &t->vcert[n]);
}

/* The instruction after it: that signature verified, its issuer joins the chain. */
SEC("uprobe")
int nss_sig_ret(struct pt_regs *ctx)
{
	struct nss_thread *t = nss_verifying(NSS_V_CHAIN, NSS_V_CHAIN_NAME);
	__u64 issuer;
	__u32 n;

	if (!t || !t->vedge)
		return 0;
	issuer = t->vedge;
	t->vedge = 0;
	if ((__s32)ctx->ax != 0)
		return 0;
	n = t->nv;
	if (n >= NSS_VCHAIN_MAX) {
		t->voverflow = 1;
		return 0;
	}
	t->vobj[n] = issuer;
	t->nv = n + 1;
	t->vtip = issuer;
	nss_issuer_key(t, issuer, n);
	return 0;
}

/*
 * libpkix: SECKEY_ExtractPublicKey(spki), PKIX_PL_Cert_VerifySignature's copy of
 * the issuer's SubjectPublicKeyInfo, right before it verifies a signature with it.
 */
SEC("uprobe")
int BPF_KPROBE(nss_pkix_key, const void *spki)
{
	struct nss_thread *t = nss_verifying(NSS_V_CHAIN, NSS_V_CHAIN_NAME);

	if (t)
		t->pk_spki = (__u64)spki;
	return 0;
}

/* libpkix's CERT_VerifySignedDataWithPublicKey(&subject->signatureWrap, key, wincx) */
SEC("uprobe")
int BPF_KPROBE(nss_pkix_sig, const void *sd)
{
	struct nss_thread *t = nss_verifying(NSS_V_CHAIN, NSS_V_CHAIN_NAME);

	if (!t)
		return 0;
	t->pk_subj = sd ? (__u64)sd - NSS_CERT_SIGWRAP : 0;
	t->pk_key = t->pk_spki;
	t->pk_spki = 0;
	return 0;
}

/* Two byte ranges of user memory compared 32 bytes at a time (both n >= 32). */
struct nss_cmp {
	__u64 a, b;
	__u32 n;
	int diff;
};

static long nss_cmp_cb(__u32 i, void *data)
{
	struct nss_cmp *c = data;
	__u8 x[32], y[32];
	__u32 off = i * 32, k;

	if (off >= c->n)
		return 1;
	if (off + 32 > c->n)
		off = c->n - 32;	/* the last chunk overlaps the one before */
	if (bpf_probe_read_user(x, sizeof(x), (const void *)(c->a + off)) ||
	    bpf_probe_read_user(y, sizeof(y), (const void *)(c->b + off))) {
		c->diff = 1;
		return 1;
	}
	for (k = 0; k < 32; k++)
		if (x[k] != y[k]) {
			c->diff = 1;
			return 1;
		}
	return 0;
}

/*
 * Is `key` (the subjectPublicKey BIT STRING of the SubjectPublicKeyInfo copy that
 * verified a signature: data, length in bits) the key of certificate `cert`? Its
 * derPublicKey then ends with that BIT STRING: tag, length, no unused bits, the
 * same bytes.
 */
static __always_inline int nss_key_of(__u64 key, __u64 cert)
{
	__u64 kitem[2] = {}, ditem[2] = {};
	struct nss_cmp c = {};
	__u32 kl, dl, hl;
	__u8 h[5] = {};

	if (bpf_probe_read_user(kitem, sizeof(kitem), (const void *)(key + NSS_SPKI_PUBKEY + NSS_SECITEM_DATA)) ||
	    bpf_probe_read_user(ditem, sizeof(ditem),
				(const void *)(cert + NSS_CERT_DERPUBKEY + NSS_SECITEM_DATA)))
		return 0;
	if (!kitem[0] || !ditem[0] || ((__u32)kitem[1] & 7))
		return 0;
	kl = (__u32)kitem[1] / 8;
	dl = (__u32)ditem[1];
	if (kl < 32 || kl > 4096 || dl > PW_CERT_MAX)
		return 0;
	/* tag 03, the content's length (kl + 1: the unused-bits byte), 00 */
	if (kl + 1 < 0x80)
		hl = 3;
	else if (kl + 1 < 0x100)
		hl = 4;
	else
		hl = 5;
	if (dl < kl + hl)
		return 0;
	if (bpf_probe_read_user(h, sizeof(h), (const void *)(ditem[0] + dl - kl - 5)))
		return 0;
	if (h[4] != 0)
		return 0;
	if (hl == 3 && !(h[2] == 0x03 && h[3] == kl + 1))
		return 0;
	if (hl == 4 && !(h[1] == 0x03 && h[2] == 0x81 && h[3] == kl + 1))
		return 0;
	if (hl == 5 && !(h[0] == 0x03 && h[1] == 0x82 && h[2] == ((kl + 1) >> 8) &&
			 h[3] == ((kl + 1) & 0xff)))
		return 0;
	c.a = kitem[0];
	c.b = ditem[0] + dl - kl;
	c.n = kl;
	bpf_loop(4096 / 32 + 1, nss_cmp_cb, &c, 0);
	return !c.diff;
}

/*
 * The instruction after it: the signature verified. Its subject joins the list,
 * linked to the earlier subject whose key verified it (libpkix checks a chain
 * from the trust anchor down: the issuer's own signature came first); the
 * verdict walks these links up from the leaf (nss_pkix_chain).
 */
SEC("uprobe")
int nss_pkix_sig_ret(struct pt_regs *ctx)
{
	struct nss_thread *t = nss_verifying(NSS_V_CHAIN, NSS_V_CHAIN_NAME);
	__u64 subj, key, cand;
	__u32 n, j;

	if (!t || !t->pk_subj)
		return 0;
	subj = t->pk_subj;
	key = t->pk_key;
	t->pk_subj = 0;
	t->pk_key = 0;
	if ((__s32)ctx->ax != 0 || !key)
		return 0;
	n = t->np;
	if (n >= NSS_VCHAIN_MAX) {
		t->voverflow = 1;
		return 0;
	}
	t->psubj[n] = subj;
	t->pparent[n] = -1;
	for (j = 0; j < NSS_VCHAIN_MAX; j++) {
		if (j >= n)
			break;
		cand = t->psubj[j];
		if (cand != subj && nss_key_of(key, cand)) {
			t->pparent[n] = j;
			break;
		}
	}
	/* its own key, hashed now (a chain's subject may be freed after verification) */
	{
		struct pw_anchor_src src = { .kind = PW_ANCHOR_SPKI };
		__u64 item[2] = {};

		t->pcert[n].flags = 0;
		if (!bpf_probe_read_user(item, sizeof(item),
					 (const void *)(subj + NSS_CERT_DERPUBKEY + NSS_SECITEM_DATA)) &&
		    item[0] && (__u32)item[1]) {
			src.ptr = item[0];
			src.len = (__u32)item[1];
			anchor_capture(&src, &t->pcert[n]);
		}
	}
	t->np = n + 1;
	return 0;
}

struct nss_walk {
	__s32 e;	/* the subject reached, from the leaf up */
};

/* One link up: the subject whose key verified subject e is the next issuer. */
static long nss_pkix_walk_cb(__u32 i, void *data)
{
	struct nss_thread *t = bpf_task_storage_get(&nss_threads, bpf_get_current_task_btf(), 0, 0);
	struct nss_walk *w = data;
	__s32 p;
	__u32 n;

	if (!t || w->e < 0 || w->e >= NSS_VCHAIN_MAX)
		return 1;
	p = t->pparent[w->e & (NSS_VCHAIN_MAX - 1)];
	n = t->nv;
	if (p < 0 || p >= NSS_VCHAIN_MAX || n >= NSS_VCHAIN_MAX)
		return 1;
	t->vobj[n] = t->psubj[p & (NSS_VCHAIN_MAX - 1)];
	t->vcert[n] = t->pcert[p & (NSS_VCHAIN_MAX - 1)];
	t->nv = n + 1;
	w->e = p;
	return 0;
}

/*
 * The chain libpkix verified, as the old engine's: the issuers whose key verified
 * the leaf, then that issuer, and so on (the trust anchor itself verifies no
 * subject of its own: it is not among them).
 */
static __always_inline void nss_pkix_chain(struct nss_thread *t)
{
	struct nss_walk w = { .e = -1 };
	__u32 j;

	if (t->nv || !t->np)
		return;
	for (j = 0; j < NSS_VCHAIN_MAX; j++) {
		if (j >= t->np)
			break;
		if (t->psubj[j] == t->vleaf)
			w.e = j;
	}
	if (w.e < 0)
		return;
	bpf_loop(NSS_VCHAIN_MAX, nss_pkix_walk_cb, &w, 0);
}

/*
 * Issuer i of the chain NSS verified: a certificate the peer presented (by its
 * object), or, for the last (the trust anchor, the database's certificate) and
 * any the peer did not send, its key as hashed when it was verified, judged if
 * a pin needs it.
 */
static long nss_vchain_cb(__u32 i, void *data)
{
	struct nss_thread *t = bpf_task_storage_get(&nss_threads, bpf_get_current_task_btf(), 0, 0);
	struct pw_chain_acc *acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	__u32 j, n, slot;
	__u64 obj;

	if (!t || !acc || i >= t->nv || i >= NSS_VCHAIN_MAX)
		return 1;
	obj = t->vobj[i];
	if (i + 1 < t->nv) {
		n = acc->ncerts;
		for (j = 1; j < PW_CHAIN_MAX; j++) {
			if (j >= n)
				break;
			if (acc->objs[j] == obj) {
				acc->validated |= 1u << j;
				return 0;
			}
		}
	}
	/* its key, hashed when it was verified, stashed at the end of certs[] until a pin needs it */
	n = acc->nanchors;
	slot = PW_CHAIN_MAX - 1 - n;
	if (n >= PW_ANCHORS_MAX || slot <= acc->ncerts ||
	    !(t->vcert[i & (NSS_VCHAIN_MAX - 1)].flags & PW_CERT_SPKI_HASHED)) {
		acc->flags |= PW_CHAIN_ANCHOR_ERROR;	/* in the chain, but cannot be judged */
		return 0;
	}
	acc->certs[slot & (PW_CHAIN_MAX - 1)] = t->vcert[i & (NSS_VCHAIN_MAX - 1)];
	acc->anchors[n & (PW_ANCHORS_MAX - 1)].ptr = slot;
	acc->anchors[n & (PW_ANCHORS_MAX - 1)].len = 0;
	acc->anchors[n & (PW_ANCHORS_MAX - 1)].kind = PW_ANCHOR_ENTRY;
	acc->nanchors = n + 1;
	return 0;
}

/*
 * What NSS concluded of the chain of `ss`, given the application's verdict
 * (`rv`: the auth callback's result, or SSL_AuthCertificateComplete's error):
 * verified if the application accepted it and the thread's last verification
 * was of this socket's leaf, with signatures, for its side and (a client) its
 * url, and succeeded; unknown if it accepted it with no verification of NSS's
 * on this thread (its own code verified it: Firefox); else unverified.
 */
static __always_inline void nss_validated(struct nss_thread *t, struct pw_chain_acc *acc, __u64 ss,
					  __u32 idx, __s32 rv)
{
	struct nss_layout *lay = bpf_map_lookup_elem(&nss_layouts, &idx);
	__u64 peer = 0, url = 0;

	acc->validated = 0;
	acc->validation = PW_VALIDATION_UNVERIFIED;
	acc->verify_error = rv;
	if (rv != 0)
		return;
	if (t->vstate == NSS_V_NONE) {
		/* accepted, and no SSL_AuthCertificate on this thread since the chain came:
		 * the application verified with its own code (Firefox: mozilla::pkix, in
		 * its auth callback's worker), which pinwarden does not read */
		acc->verify_error = 0;
		acc->validation = PW_VALIDATION_UNKNOWN;
		return;
	}
	acc->verify_error = -1;		/* accepted without NSS's verification */
	if (t->vstate != NSS_V_OK || !lay || !ss ||
	    bpf_probe_read_user(&peer, sizeof(peer), (const void *)(ss + lay->peer_cert)) ||
	    peer != t->vleaf)
		return;
	if (acc->side == PW_SIDE_SERVER) {
		if (t->vusage != NSS_USAGE_SSL_CLIENT)
			return;
	} else if (t->vusage != NSS_USAGE_SSL_SERVER ||
		   bpf_probe_read_user(&url, sizeof(url), (const void *)(ss + lay->url)) || !url ||
		   url != t->vurl) {
		return;
	}
	acc->verify_error = 0;
	acc->validation = PW_VALIDATION_VERIFIED;
	acc->validated = 1;
	if (t->voverflow)
		acc->flags |= PW_CHAIN_ANCHOR_ERROR;	/* the rest cannot be judged */
	nss_pkix_chain(t);
	bpf_loop(NSS_VCHAIN_MAX, nss_vchain_cb, NULL, 0);
}

/*
 * The instruction after ssl3_AuthCertificate's call of the application's auth
 * callback: RAX its result, the cookie's register the sslSocket. The verdict
 * on the pending chain of that socket; if this thread has none for it (it was
 * lost to another socket's chain on this thread, or is pending on another
 * thread), the socket is judged with nothing captured: it fails closed.
 */
SEC("uprobe")
int nss_auth_done(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx), ss, cert = 0;
	__u32 idx = NSS_COOKIE_LAYOUT(cookie);
	struct pw_chain_acc *acc;
	struct nss_thread *t;
	struct nss_layout *lay;
	__s32 rv = (__s32)ctx->ax;

	barrier_var(rv);	/* read once, here: clang would otherwise read ctx at an offset */
	ss = nss_reg(ctx, NSS_COOKIE_REG(cookie));
	t = bpf_task_storage_get(&nss_threads, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	acc = chain_acc_get();
	if (!acc || !t) {
		verdict_no_acc(PW_LIB_NSS, PW_SIDE_CLIENT);
		return 0;
	}
	if (ss && acc->vctx == ss && t->vss == ss) {
		t->verdict_ss = ss;
		if (rv == NSS_SEC_WOULD_BLOCK) {
			/* verified later: the verdict waits for SSL_AuthCertificateComplete
			 * (no room to wait: leaf only, now) */
			if (!chain_park(acc, ss)) {
				t->vss = 0;
				t->ss = 0;
				return 0;
			}
		}
		nss_validated(t, acc, ss, idx, rv);
	} else {
		if (ss && t->judged_ss == ss) {
			t->judged_ss = 0;	/* judged at SECKEY_UpdateCertPQG already */
			return 0;
		}
		if (acc->ncerts)
			count(PW_CNT_ABANDONED);
		chain_reset(acc);
		lay = bpf_map_lookup_elem(&nss_layouts, &idx);
		if (lay && ss)
			bpf_probe_read_user(&cert, sizeof(cert), (const void *)(ss + lay->peer_cert));
		nss_prepare(t, acc, ss, idx, (const void *)cert);
		acc->side = t->side;
	}
	t->judged_ss = 0;
	nss_judge(ctx, t, acc, acc->side);
	return 0;
}

/*
 * SSL_AuthCertificateComplete(fd, error): the application has verified the
 * chain its auth callback deferred (error 0: accepted). The verdict on the
 * chain waiting for that socket, found through NSPR's layers (the SSL layer's
 * secret is the sslSocket), before libssl3 resumes the handshake.
 */
SEC("uprobe")
int BPF_KPROBE(nss_complete, const void *fd, int error)
{
	__u32 idx = NSS_COOKIE_LAYOUT(bpf_get_attach_cookie(ctx)), i;
	struct pw_ssl_key k = { .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct pw_chain_acc *acc, *p = NULL;
	struct nss_thread *t;
	__u64 l = (__u64)fd, secret;
	int bottom = 0;
	__u8 side;

	for (i = 0; i < NSS_LAYERS_MAX && l; i++) {
		secret = 0;
		if (bpf_probe_read_user(&secret, sizeof(secret), (const void *)(l + NSPR_FD_SECRET)))
			break;
		k.ssl = secret;
		p = secret ? bpf_map_lookup_elem(&parked_chains, &k) : NULL;
		if (p || bpf_probe_read_user(&l, sizeof(l), (const void *)(l + NSPR_FD_LOWER)))
			break;
		bottom = !l;
	}
	if (!p) {
		/* every layer looked at: judged when the callback returned (no room to
		 * wait), or never deferred; else the socket could not be told, and a
		 * chain of it may be waiting: fail closed */
		if (!bottom)
			verdict_no_acc(PW_LIB_NSS, PW_SIDE_CLIENT);
		return 0;
	}
	side = p->side;
	t = bpf_task_storage_get(&nss_threads, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	acc = t ? chain_unpark(&parked_chains, &k, p) : NULL;
	if (!acc) {
		chain_parked_drop(&k, p->park_uid);
		verdict_no_acc(PW_LIB_NSS, side);
		return 0;
	}
	t->verdict_ss = k.ssl;
	nss_validated(t, acc, k.ssl, idx, error);
	nss_judge(ctx, t, acc, acc->side);
	return 0;
}
