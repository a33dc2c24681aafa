/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * OpenSSL's X509 verification layer, where OpenSSL's libssl (1.1.1, 3.x),
 * OpenSSL linked into node and BoringSSL hand a peer's chain to libcrypto:
 *   X509_STORE_CTX_set_ex_data(ctx, idx, SSL *)   the SSL* being verified
 *   X509_STORE_CTX_set_default(ctx, "ssl_server" | "ssl_client")
 *                          the chain is complete, verification starts
 *   X509_STORE_CTX_get_error(ctx), right after X509_verify_cert()
 *                          verification is over: ctx->chain is the chain
 *                          libcrypto built and checked (OpenSSL)
 * The verdict waits for the last when the daemon could read where this build
 * keeps ctx->error and ctx->chain: then pins on any certificate of the
 * validated chain count. Otherwise it is taken at set_default with only the
 * leaf counting (x509_store_verdict).
 */
#ifndef PW_X509_BPF_H
#define PW_X509_BPF_H

#include "verdict.bpf.h"
#include "openssl.h"

#define PW_VCHAIN_MAX	10	/* certificates of a validated chain looked at */

/* "ssl_server": we are the client judging a server; "ssl_client": the reverse. -1: neither. */
static __always_inline int x509_store_side(const char *name)
{
	char n[11] = {};

	if (bpf_probe_read_user(n, sizeof(n), name))
		return -1;
	if (n[0] != 's' || n[1] != 's' || n[2] != 'l' || n[3] != '_' || n[10] != 0)
		return -1;
	if (n[4] == 's' && n[5] == 'e')
		return PW_SIDE_CLIENT;
	if (n[4] == 'c' && n[5] == 'l')
		return PW_SIDE_SERVER;
	return -1;
}

static __always_inline void x509_store_ssl(void *ssl)
{
	struct pw_chain_acc *acc;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (acc)
		acc->ssl = (__u64)ssl;
}

/* set_default, for builds whose validated chain is not read: judge now, leaf only. */
static __always_inline void x509_store_verdict(void *ctx, const char *name, __u8 library)
{
	struct pw_chain_acc *acc;
	int side = x509_store_side(name);

	if (side < 0)
		return;
	acc = chain_acc_get();
	if (!acc) {
		verdict_no_acc(library, side);
		return;
	}
	verdict_judge(ctx, acc, library, side, 0);
}

/*
 * Verification of this chain starts (on `side`; ssl: the SSL*, when the probe
 * knows it, else 0); the verdict follows at x509_store_verified.
 */
static __always_inline void x509_store_begin_side(void *store_ctx, void *ssl, int side,
						  __u8 library)
{
	struct pw_chain_acc *acc;

	acc = chain_acc_get();
	if (!acc) {
		verdict_no_acc(library, side);
		return;
	}
	if (ssl)
		acc->ssl = (__u64)ssl;
	acc->vctx = (__u64)store_ctx;
	acc->side = side;
	/* the socket the chain arrived on, for libraries that name none (memory BIOs):
	 * verification may read files before the verdict */
	if (read_track_on) {
		struct pw_thread_conn *tc;

		tc = bpf_task_storage_get(&thread_conn, bpf_get_current_task_btf(), 0, 0);
		if (tc)
			acc->read_fd = tc->last_rfd;
	}
}

/* set_default(ctx, "ssl_server" | "ssl_client"): verification starts. */
static __always_inline void x509_store_begin(void *store_ctx, const char *name, __u8 library)
{
	int side = x509_store_side(name);

	if (side >= 0)
		x509_store_begin_side(store_ctx, NULL, side, library);
}

struct vchain_loop {
	__u64 data;		/* the stack's array of X509 * */
	__u64 ck;
};

/*
 * Element i of the validated chain: a presented certificate (by its X509
 * object), or one the peer did not present (a trust anchor from the store, or
 * any certificate when this build does not let us see the presented objects:
 * OpenSSL 1.1.1), kept to be hashed from its cached tbsCertificate if a pin
 * needs it.
 */
static long vchain_cb(__u32 i, void *data)
{
	struct vchain_loop *vl = data;
	struct pw_chain_acc *acc;
	__u64 x = 0;
	struct {
		__u64 enc;
		__s64 len;
		__s32 modified;
		__s32 pad;
	} enc = {};
	__u32 j, n;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc)
		return 1;
	if (bpf_probe_read_user(&x, sizeof(x), (const void *)(vl->data + 8 * (__u64)i)) || !x) {
		acc->flags |= PW_CHAIN_ANCHOR_ERROR;
		return 0;
	}
	if (i == 0) {
		/* ctx->chain[0] is ctx->cert, checked against the captured leaf */
		acc->validated |= 1;
		return 0;
	}
	n = acc->ncerts;
	for (j = 1; j < PW_CHAIN_MAX; j++) {
		if (j >= n)
			break;
		if (acc->objs[j] == x) {
			acc->validated |= 1u << j;
			return 0;
		}
	}
	n = acc->nanchors;
	/* BoringSSL's X509 holds a pointer to its cert_info, where the encoding is */
	if ((vl->ck & OSSL_VCK_TBS_INDIRECT) && bpf_probe_read_user(&x, sizeof(x), (const void *)x))
		x = 0;
	if (!(vl->ck & OSSL_VCK_TBS) || n >= PW_ANCHORS_MAX || !x ||
	    bpf_probe_read_user(&enc, sizeof(enc), (const void *)(x + OSSL_VCK_TBSENC(vl->ck))) ||
	    !enc.enc || enc.len <= 0 || enc.len > PW_CERT_MAX || enc.modified) {
		acc->flags |= PW_CHAIN_ANCHOR_ERROR;	/* in the chain, but cannot be judged */
		return 0;
	}
	acc->anchors[n & (PW_ANCHORS_MAX - 1)].ptr = enc.enc;
	acc->anchors[n & (PW_ANCHORS_MAX - 1)].len = (__u32)enc.len;
	acc->anchors[n & (PW_ANCHORS_MAX - 1)].kind = PW_ANCHOR_TBS;
	acc->nanchors = n + 1;
	return 0;
}

/*
 * What libcrypto concluded, read from the X509_STORE_CTX: verified (error
 * X509_V_OK and a chain built: its certificates count) or not (only the leaf
 * counts); the leaf it verified must be the one captured.
 */
static __noinline int x509_validated_read(struct pw_chain_acc *acc, __u64 store_ctx, __u64 ck)
{
	struct vchain_loop vl = { .ck = ck };
	__s32 err = 0, num = 0;
	__u64 chain = 0, cert = 0;

	if (bpf_probe_read_user(&err, sizeof(err), (const void *)(store_ctx + OSSL_VCK_ERR(ck))) ||
	    bpf_probe_read_user(&chain, sizeof(chain), (const void *)(store_ctx + OSSL_VCK_CHAIN(ck))) ||
	    bpf_probe_read_user(&cert, sizeof(cert), (const void *)(store_ctx + OSSL_VCK_CERT(ck))))
		goto unread;
	if (acc->ncerts && acc->objs[0] && cert != acc->objs[0])
		acc->flags |= PW_CHAIN_LEAF_MISMATCH;
	/* without the presented certificates' objects (OpenSSL 1.1.1, BoringSSL), the
	 * validated chain's certificates are told apart from them by their keys */
	acc->vby_key = (ck & OSSL_VCK_BY_KEY) || !acc->objs[0];
	acc->verify_error = err;
	if (err) {
		acc->validation = PW_VALIDATION_UNVERIFIED;
		return 0;
	}
	if (!chain) {
		/* the application's own verification callback built no chain */
		acc->validation = PW_VALIDATION_UNVERIFIED;
		acc->verify_error = -1;
		return 0;
	}
	if (bpf_probe_read_user(&num, sizeof(num), (const void *)(chain + OSSL_VCK_SKNUM(ck))) ||
	    bpf_probe_read_user(&vl.data, sizeof(vl.data), (const void *)(chain + OSSL_VCK_SKDATA(ck))) ||
	    !vl.data)
		goto unread;
	if (num <= 0) {
		acc->validation = PW_VALIDATION_UNVERIFIED;
		acc->verify_error = -1;
		return 0;
	}
	if (num > PW_VCHAIN_MAX)
		acc->flags |= PW_CHAIN_ANCHOR_ERROR;	/* the rest cannot be judged */
	bpf_loop(num > PW_VCHAIN_MAX ? PW_VCHAIN_MAX : num, vchain_cb, &vl, 0);
	acc->validation = PW_VALIDATION_VERIFIED;
	return 0;
unread:
	count(PW_CNT_VCHAIN_UNREAD);
	acc->flags |= PW_CHAIN_VCHAIN_ERROR;
	acc->validation = PW_VALIDATION_UNKNOWN;
	return -1;
}

/* X509_STORE_CTX_get_error(ctx) after verification: judge the chain. */
static __always_inline void x509_store_verified(void *ctx, void *store_ctx, __u64 ck, __u8 library)
{
	struct pw_chain_acc *acc;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc || !acc->vctx || acc->vctx != (__u64)store_ctx)
		return;		/* not a verification whose start we saw */
	x509_validated_read(acc, (__u64)store_ctx, ck);
	verdict_judge(ctx, acc, library, acc->side, 0);
}

#endif /* PW_X509_BPF_H */
