// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * GnuTLS 3 (libgnutls.so.30). Every probe sits in libgnutls, at a call site or
 * an exported entry that the daemon located at attach time:
 *   gnutls_auth_{server,client}_get_type call sites in the internal
 *     verify-callback runner (_gnutls_run_verify_callback): the peer's chain
 *     is complete and stored in the session -> read it there, hash, verdict
 *   gnutls_certificate_verify_peers, gnutls_x509_trust_list_verify_crt2 (entry
 *     and return) and gnutls_x509_crt_get_name_constraints: GnuTLS's own verification
 *     of that chain, which the verdict waits for (below)
 *   gnutls_record_send2, _recv, _recv_seq, _recv_packet: the first use of the
 *     connection, where a chain still waiting is judged
 *   gnutls_server_name_set (SNI), gnutls_deinit (forget the session)
 * The runner runs in every full handshake, TLS 1.2 and 1.3, with or without
 * certificate verification, and before the client sends anything more (TLS
 * 1.2: before the server's key exchange is even read; TLS 1.3: before the
 * server's Finished is read). One probe hit reads the whole chain: there is
 * no per-certificate probe, and CA bundles never pass a probe. The verdict is
 * taken there when the leaf is all there is, and otherwise once GnuTLS has
 * verified the chain (a pin on another certificate counts only if GnuTLS
 * verified the chain through it), or at the connection's first use, whichever
 * comes first: always before the first byte of application data.
 *
 * The session fields (which side, the peer certificates, the socket) are read
 * at offsets found in this very build's machine code (include/gnutls.h).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "session.bpf.h"
#include "verdict.bpf.h"
#include "gnutls.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PW_GNUTLS_LAYOUTS);
	__type(key, __u32);
	__type(value, struct pw_gnutls_layout);
} gnutls_layouts SEC(".maps");

/* gnutls_datum_t */
struct gnutls_datum {
	__u64 data;
	__u32 size;
	__u32 pad;
};

struct gnutls_certs_loop {
	__u64 list;		/* gnutls_datum_t raw_certificate_list[] in the process */
	__u64 now;
};

/* Certificate i of the session's peer list: copy, hash, append to the chain. */
static long gnutls_cert_cb(__u32 i, void *data)
{
	struct gnutls_certs_loop *cl = data;
	struct gnutls_datum d = {};
	struct pw_chain_acc *acc;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc)
		return 1;
	/* an unreadable entry is appended as an empty certificate: flagged, fail closed */
	if (bpf_probe_read_user(&d, sizeof(d), (const void *)(cl->list + (__u64)i * sizeof(d))))
		d.data = d.size = 0;
	chain_append(acc, d.data, d.size, cl->now);
	return 0;
}

/* acc->vstage, for a chain waiting for GnuTLS's verification */
enum {
	GNUTLS_WAIT_VERIFY = 1,	/* the chain is complete and parked; not verified yet */
	GNUTLS_IN_PEERS,	/* gnutls_certificate_verify_peers of its session runs */
	GNUTLS_IN_VERIFY,	/* ... and has handed its certificates to the trust list */
};

static __always_inline __u64 read_u64(__u64 addr)
{
	__u64 v = 0;

	bpf_probe_read_user(&v, sizeof(v), (const void *)addr);
	return v;
}

static __always_inline __u32 read_u32(__u64 addr)
{
	__u32 v = 0;

	bpf_probe_read_user(&v, sizeof(v), (const void *)addr);
	return v;
}

/*
 * The chain is complete (the verify-callback runner), on this thread, and
 * GnuTLS has not verified it yet. With more than the leaf and the
 * verification probes attached, the verdict waits (acc->vstage) for the
 * verification that follows on this thread (in the runner's callback, or by
 * the application after the handshake: wget, curl), or for the first use of
 * the connection (record send or receive, deinit), whichever comes first: a
 * pin on a certificate other than the leaf then counts only if GnuTLS verified
 * the chain through it. Returns the accumulator to judge now, or NULL.
 */
static __always_inline struct pw_chain_acc *gnutls_chain(__u64 session,
							  struct pw_gnutls_layout *lay, __u64 defer)
{
	__u64 info = 0, transport;
	struct gnutls_certs_loop cl = {};
	struct pw_ssl_state *st;
	struct pw_chain_acc *acc;
	__u32 npeers = 0;
	__u8 side;

	/* a server judges its client's chain (mTLS), a client its server's */
	side = read_u32(session + lay->entity) == PW_GNUTLS_SERVER ? PW_SIDE_SERVER :
								     PW_SIDE_CLIENT;
	if (read_u32(session + lay->auth_info_type) == PW_GNUTLS_CRD_CERTIFICATE)
		info = read_u64(session + lay->auth_info);
	if (info) {
		cl.list = read_u64(info + lay->peers);
		npeers = cl.list ? read_u32(info + lay->npeers) : 0;
	}
	/* a server that received no client certificate has nothing to judge */
	if (side == PW_SIDE_SERVER && !npeers)
		return NULL;

	acc = chain_begin();
	if (!acc) {
		verdict_no_acc(PW_LIB_GNUTLS, side);
		return NULL;
	}
	acc->ssl = session;
	cl.now = bpf_ktime_get_boot_ns();
	/* one more than fits, so that chain_append flags a longer chain as truncated */
	bpf_loop(npeers > PW_CHAIN_MAX ? PW_CHAIN_MAX + 1 : npeers, gnutls_cert_cb, &cl, 0);
	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc) {
		verdict_no_acc(PW_LIB_GNUTLS, side);
		return NULL;
	}

	/* the socket: with GnuTLS's own push/pull functions the transport pointer is
	 * the fd (gnutls_transport_set_int2, or set_ptr as wget does); anything else
	 * fails pw_peer_from_fd's checks and the thread's last connect() is used */
	transport = read_u64(session + lay->transport);
	if (transport <= 0x7fffffff)
		session_set_fd(session, (int)transport);

	acc->side = side;
	/* only the leaf: nothing for verification to add; and a wait needs the
	 * connection's entry, which the first use of the connection finds. Judged
	 * now, GnuTLS's verification is not known (only the leaf counts) */
	st = defer && acc->ncerts > 1 && acc->ncerts <= PW_CHAIN_MAX ? session_get(session) : NULL;
	if (!st)
		return acc;
	acc->validation = PW_VALIDATION_UNVERIFIED;	/* until GnuTLS says otherwise */
	acc->vctx = session;
	acc->vstage = GNUTLS_WAIT_VERIFY;
	/* parked, not kept on this thread: the verification and the connection's
	 * first use may come on another (event loops, thread pools) */
	if (chain_park(acc, session)) {
		/* no room to wait: judged now, GnuTLS's verification not known */
		acc->validation = PW_VALIDATION_UNKNOWN;
		acc->vctx = 0;
		acc->vstage = 0;
		return acc;
	}
	st->flags |= PW_SESSION_CHAIN_PENDING;
	return NULL;
}

/*
 * The chain parked for `session`, moved into this thread's accumulator (the
 * thread that verifies it or uses the connection first); NULL if none.
 */
static __always_inline struct pw_chain_acc *gnutls_unpark(__u64 session)
{
	struct pw_ssl_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .ssl = session };
	struct pw_chain_acc *p = bpf_map_lookup_elem(&parked_chains, &k);

	/* without an accumulator it stays parked: the first use tries again, or fails closed */
	return p ? chain_unpark(&parked_chains, &k, p) : NULL;
}

/*
 * The verify-callback runner (gnutls_auth_{server,client}_get_type call
 * sites), the return of gnutls_x509_trust_list_verify_crt2 (the verification
 * is over), or the first use of a connection (gnutls_record_send2, _recv,
 * _recv_seq, _recv_packet, gnutls_deinit): one program with one verdict, so
 * that the verdict is verified once. The cookie: the build's layout, what the
 * probe is, and whether the verdict may wait for the verification.
 */
SEC("uprobe")
int BPF_KPROBE(gnutls_verify, void *session_ptr)
{
	__u64 ck = bpf_get_attach_cookie(ctx), session = (__u64)session_ptr;
	__u32 key = PW_GNUTLS_CK_LAYOUT(ck), kind = PW_GNUTLS_CK_KIND(ck);
	struct pw_gnutls_layout *lay;
	struct pw_chain_acc *acc = NULL, *a;
	struct pw_ssl_state *st;
	__u32 out = 1;
	__s64 rc;

	lay = bpf_map_lookup_elem(&gnutls_layouts, &key);
	if (!lay)
		return 0;
	if (kind == PW_GNUTLS_RUNNER) {
		if (session)
			acc = gnutls_chain(session, lay, ck & PW_GNUTLS_CK_DEFER);
	} else if (kind == PW_GNUTLS_VERIFIED) {
		/* gnutls_x509_trust_list_verify_crt2 returns: rc 0 and *voutput 0 is verified */
		a = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
		if (!a || a->vstage != GNUTLS_IN_VERIFY)
			return 0;
		rc = (__s64)PT_REGS_RC(ctx);
		if (bpf_probe_read_user(&out, sizeof(out), (const void *)a->vout))
			out = 1;
		if (rc == 0 && out == 0) {
			a->validation = PW_VALIDATION_VERIFIED;
			a->validated |= 1;
		} else {
			a->validation = PW_VALIDATION_UNVERIFIED;
			a->verify_error = rc ? (__s32)rc : (__s32)out;
		}
		acc = a;
	} else {
		/* the connection is used or freed: a chain still waiting is judged now */
		st = session ? session_find(session) : NULL;
		if (st && (st->flags & PW_SESSION_CHAIN_PENDING)) {
			a = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
			if (a && a->vstage && a->ssl == session) {
				acc = a;	/* its verification began on this thread */
			} else if ((a = gnutls_unpark(session))) {
				acc = a;	/* not verified: only the leaf counts */
			} else {
				/* not parked: moved to a thread whose accumulator has
				 * gone since, or left no room to be moved */
				st->flags &= ~PW_SESSION_CHAIN_PENDING;
				verdict_pending_lost(PW_LIB_GNUTLS,
						     read_u32(session + lay->entity) == PW_GNUTLS_SERVER ?
						     PW_SIDE_SERVER : PW_SIDE_CLIENT);
			}
		}
	}
	if (acc) {
		st = session_find(acc->ssl);
		if (st)
			st->flags &= ~PW_SESSION_CHAIN_PENDING;
		/* read in one go at the runner: its age says nothing */
		acc->ts = bpf_ktime_get_boot_ns();
		/* gnutls_deinit: its address may be reused by the next session */
		verdict_judge(ctx, acc, PW_LIB_GNUTLS, acc->side,
			      kind == PW_GNUTLS_FREE ? session : 0);
		return 0;
	}
	/* gnutls_deinit: its address may be reused by the next session */
	if (kind == PW_GNUTLS_FREE)
		session_forget(session);
	return 0;
}

/* gnutls_certificate_verify_peers(session, ...): GnuTLS verifies this session's peer chain */
SEC("uprobe")
int BPF_KPROBE(gnutls_vpeers, void *session)
{
	struct pw_chain_acc *acc = gnutls_unpark((__u64)session);

	if (acc && acc->vstage == GNUTLS_WAIT_VERIFY && acc->ssl == (__u64)session)
		acc->vstage = GNUTLS_IN_PEERS;
	return 0;
}

/*
 * gnutls_x509_trust_list_verify_crt2(list, cert_list, size, data, elements,
 * flags, voutput, func), called by gnutls_certificate_verify_peers with the
 * session's peer certificates imported in the order they came: cert_list[i]
 * is presented certificate i. voutput, the 7th argument, is on the stack.
 */
SEC("uprobe")
int BPF_KPROBE(gnutls_vcrt, void *list, void *cert_list, __u32 size)
{
	struct pw_chain_acc *acc;
	__u64 objs[PW_CHAIN_MAX] = {}, vout = 0;
	__u32 n, i, bytes;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc || acc->vstage != GNUTLS_IN_PEERS)
		return 0;
	n = acc->ncerts;
	bytes = n * sizeof(objs[0]);
	/* not the peer's list (an OCSP signer's, say): leave the wait as it is */
	if (size != n || !bytes || bytes > sizeof(objs) || !cert_list)
		return 0;
	if (bpf_probe_read_user(&vout, sizeof(vout), (const void *)(PT_REGS_SP(ctx) + 8)) || !vout ||
	    bpf_probe_read_user(objs, bytes, cert_list))
		return 0;
	for (i = 0; i < PW_CHAIN_MAX; i++)
		acc->objs[i] = i < n ? objs[i] : 0;
	acc->vout = vout;
	acc->vstage = GNUTLS_IN_VERIFY;
	return 0;
}

/*
 * gnutls_x509_name_constraints_init(&nc): each pass of GnuTLS's chain check
 * (_gnutls_verify_crt_status) starts with it, and verify_crt2 may make a
 * second pass against other trust anchors when the first found no signer:
 * only what the last pass saw belongs to the chain its result speaks of.
 */
SEC("uprobe")
int BPF_KPROBE(gnutls_vpass)
{
	struct pw_chain_acc *acc;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc || acc->vstage != GNUTLS_IN_VERIFY)
		return 0;
	acc->validated = 0;
	acc->nanchors = 0;
	acc->flags &= ~PW_CHAIN_ANCHOR_ERROR;
	return 0;
}

/*
 * gnutls_x509_crt_get_name_constraints(crt, ...): GnuTLS calls it in one place,
 * its verify_crt, on the issuer it found for a link of the sorted chain (to
 * gather the name constraints down the path), before checking the link's
 * signature: a presented certificate, or for the last link a trust anchor of
 * the trust list, kept (its SPKI, cached in the object) to be hashed if a pin
 * needs it. The verdict counts them only when the whole pass succeeded (every
 * link's signature, up to that anchor). Loading CA bundles never calls it.
 */
SEC("uprobe")
int BPF_KPROBE(gnutls_vissuer, void *crt_ptr)
{
	__u64 crt = (__u64)crt_ptr;
	__u32 key = (__u32)bpf_get_attach_cookie(ctx), i, n;
	struct pw_gnutls_layout *lay;
	struct pw_chain_acc *acc;
	struct gnutls_datum spki = {};

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc || acc->vstage != GNUTLS_IN_VERIFY || !crt)
		return 0;
	for (i = 1; i < PW_CHAIN_MAX; i++) {
		if (acc->objs[i] == crt) {
			acc->validated |= 1u << i;
			return 0;
		}
	}
	lay = bpf_map_lookup_elem(&gnutls_layouts, &key);
	n = acc->nanchors;
	if (!lay || n >= PW_ANCHORS_MAX || read_u32(crt + lay->crt_modified) ||
	    bpf_probe_read_user(&spki, sizeof(spki), (const void *)(crt + lay->crt_spki)) ||
	    !spki.data || !spki.size || spki.size > PW_CERT_MAX) {
		acc->flags |= PW_CHAIN_ANCHOR_ERROR;	/* in the chain, but cannot be judged */
		return 0;
	}
	acc->anchors[n & (PW_ANCHORS_MAX - 1)].ptr = spki.data;
	acc->anchors[n & (PW_ANCHORS_MAX - 1)].len = spki.size;
	acc->anchors[n & (PW_ANCHORS_MAX - 1)].kind = PW_ANCHOR_SPKI;
	acc->nanchors = n + 1;
	return 0;
}

/* gnutls_server_name_set(session, type, name, len): the SNI (not NUL-terminated) */
SEC("uprobe")
int BPF_KPROBE(gnutls_sni, void *session, int type, const char *name, __u64 len)
{
	if (type == PW_GNUTLS_NAME_DNS)
		session_set_host_len((__u64)session, name, len < PW_HOST_MAX ? (__u32)len : 0);
	return 0;
}
