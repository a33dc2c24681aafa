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

/*
 * Each of the three reads of the chain goes to one buffer on the stack, not
 * to the accumulator: a user read into map memory that has gone cold since the
 * last handshake costs a cache miss per line written (128 bytes: 470 ns here,
 * against 60 ns into the stack). The cookie promises that the context's
 * fields, and the stack's, each fit one read (OSSL_VCK_SPAN, include/openssl.h).
 */

/* Fields at offsets a, b, c of user address base, read at once into buf:
 * the offset buf starts at, or -1. */
static __always_inline long span_read(__u64 *buf, __u64 base, __u32 a, __u32 b, __u32 c)
{
	__u32 lo = OSSL_SPAN_LO(a, b, c), len = OSSL_SPAN_LEN(a, b, c);

	if (len > OSSL_VCK_SPAN || bpf_probe_read_user(buf, len, (const void *)(base + lo)))
		return -1;
	return lo;
}

/* The field at byte `off` of buf (aligned, by the cookie's promise; 0 past its end) */
static __always_inline __s32 buf_s32(const __u64 *buf, __u32 off)
{
	off &= ~3u;	/* what the verifier needs to see of it */
	return off <= OSSL_VCK_SPAN - 4 ? *(const __s32 *)((const char *)buf + off) : 0;
}

static __always_inline __u64 buf_u64(const __u64 *buf, __u32 off)
{
	off &= ~7u;
	return off <= OSSL_VCK_SPAN - 8 ? *(const __u64 *)((const char *)buf + off) : 0;
}

/*
 * What libcrypto concluded, read from the X509_STORE_CTX: verified (error
 * X509_V_OK and a chain built: its certificates count) or not (only the leaf
 * counts); the leaf it verified must be the one captured; -1 if it cannot be
 * read (the caller says so). Three user reads:
 * the context's fields, the stack's count and array, the array. A validated
 * certificate the peer did not present is kept by its X509 and read only if
 * a pin needs it (anchor_cb).
 */
static __noinline int x509_validated_read(struct pw_chain_acc *acc, __u64 store_ctx, __u64 ck)
{
	__u32 oe = OSSL_VCK_ERR(ck), oc = OSSL_VCK_CHAIN(ck), ot = OSSL_VCK_CERT(ck);
	__u32 on = OSSL_VCK_SKNUM(ck), od = OSSL_VCK_SKDATA(ck);
	__u64 buf[OSSL_VCK_SPAN / 8] = {};
	__s32 err, num;
	__u64 chain, cert, data;
	__u32 i, j, n, ncerts;
	long lo;

	lo = span_read(buf, store_ctx, oe, oc, ot);
	if (lo < 0)
		return -1;
	err = buf_s32(buf, oe - lo);
	chain = buf_u64(buf, oc - lo);
	cert = buf_u64(buf, ot - lo);
	if (acc->ncerts && acc->objs[0] && cert != acc->objs[0])
		acc->flags |= PW_CHAIN_LEAF_MISMATCH;
	/* without the presented certificates' objects (OpenSSL 1.1.1, BoringSSL), the
	 * validated chain's certificates are told apart from them by their keys */
	acc->vby_key = (ck & OSSL_VCK_BY_KEY) || !acc->objs[0];
	acc->verify_error = err;
	acc->vck = ck;
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
	lo = span_read(buf, chain, on, od, od);
	if (lo < 0)
		return -1;
	num = buf_s32(buf, on - lo);
	data = buf_u64(buf, od - lo);
	if (!data)
		return -1;
	if (num <= 0) {
		acc->validation = PW_VALIDATION_UNVERIFIED;
		acc->verify_error = -1;
		return 0;
	}
	n = num;
	if (n > PW_VCHAIN_MAX) {
		acc->flags |= PW_CHAIN_ANCHOR_ERROR;	/* the rest cannot be judged */
		n = PW_VCHAIN_MAX;
	}
	if (bpf_probe_read_user(buf, n * 8, (const void *)data))
		return -1;
	/*
	 * Element i: a presented certificate (by its X509 object), or one the peer
	 * did not present (a trust anchor from the store, or any certificate when
	 * this build does not let us see the presented objects: OpenSSL 1.1.1),
	 * kept to be hashed from its cached tbsCertificate if a pin needs it.
	 * ctx->chain[0] is ctx->cert, checked against the captured leaf above.
	 */
	ncerts = acc->ncerts;
	for (i = 0; i < PW_VCHAIN_MAX; i++) {
		__u64 x;

		if (i >= n)
			break;
		x = buf[i];
		if (!x) {
			acc->flags |= PW_CHAIN_ANCHOR_ERROR;
			continue;
		}
		if (i == 0) {
			acc->validated |= 1;
			continue;
		}
		for (j = 1; j < PW_CHAIN_MAX; j++) {
			if (j >= ncerts || acc->objs[j] == x)
				break;
		}
		if (j < ncerts && j < PW_CHAIN_MAX) {
			acc->validated |= 1u << j;
			continue;
		}
		j = acc->nanchors;
		if (!(ck & OSSL_VCK_TBS) || j >= PW_ANCHORS_MAX) {
			acc->flags |= PW_CHAIN_ANCHOR_ERROR;	/* in the chain, but cannot be judged */
			continue;
		}
		acc->anchors[j & (PW_ANCHORS_MAX - 1)].ptr = x;
		acc->anchors[j & (PW_ANCHORS_MAX - 1)].len = 0;
		acc->anchors[j & (PW_ANCHORS_MAX - 1)].kind = PW_ANCHOR_X509;
		acc->nanchors = j + 1;
	}
	acc->validation = PW_VALIDATION_VERIFIED;
	return 0;
}

/* X509_STORE_CTX_get_error(ctx) after verification: judge the chain. */
static __always_inline void x509_store_verified(void *ctx, void *store_ctx, __u64 ck, __u8 library)
{
	struct pw_chain_acc *acc;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc || !acc->vctx || acc->vctx != (__u64)store_ctx)
		return;		/* not a verification whose start we saw */
	if (x509_validated_read(acc, (__u64)store_ctx, ck)) {
		count(PW_CNT_VCHAIN_UNREAD);
		acc->flags |= PW_CHAIN_VCHAIN_ERROR;
		acc->validation = PW_VALIDATION_UNKNOWN;
	}
	verdict_judge(ctx, acc, library, acc->side, 0);
}

#endif /* PW_X509_BPF_H */
