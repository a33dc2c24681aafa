/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The contract between bpf/openssl.bpf.c (with bpf/x509.bpf.h) and
 * userspace/openssl.c, userspace/node.c: what the attach cookies of the
 * OpenSSL probes carry. Every offset is read at attach time out of the
 * machine code of the build being attached (never hard-coded).
 */
#ifndef PW_OPENSSL_H
#define PW_OPENSSL_H

#ifndef __bpf__
#include <stdint.h>
#endif

/*
 * SSL_free: where this build keeps s->hit and s->server (SSL_session_reused,
 * SSL_is_server), so that a resumed client session can be reported.
 */
#define OSSL_CK_RESUMPTION	(1ULL << 63)
#define OSSL_CK_HIT(ck)		((ck) & 0xffff)
#define OSSL_CK_SERVER(ck)	(((ck) >> 16) & 0xffff)

/*
 * The call of X509_STORE_CTX_set_ex_data(ctx, idx, s) in ssl_verify_cert_chain():
 * the SSL *s. With OSSL_SCK_BEGIN, also the start of verification, which
 * X509_STORE_CTX_set_default() (not probed then) marks otherwise: this build
 * keeps s->server at OSSL_SCK_SERVER(ck), the side set_default would name. One
 * probe hit fewer per handshake.
 */
#define OSSL_SCK_BEGIN		(1ULL << 63)
#define OSSL_SCK_SERVER(ck)	((ck) & 0xffff)

/*
 * The call of X509_STORE_CTX_get_error() in ssl_verify_cert_chain(), right
 * after X509_verify_cert() (or the application's verification callback):
 * the verdict point. The cookie says where this build's libcrypto keeps
 *   X509_STORE_CTX: error (int), chain (STACK_OF(X509) *), cert (X509 *)
 *   OPENSSL_STACK: num (int), data (void **)
 *   X509: cert_info.enc, the cached DER of the tbsCertificate (ASN1_ENCODING:
 *         unsigned char *enc; long len; int modified)
 * OSSL_VCK_TBS: the last is known, so a validated certificate the peer did
 * not present (a trust anchor) can be hashed from it.
 */
#define OSSL_VCK_VALID		(1ULL << 63)
#define OSSL_VCK_TBS		(1ULL << 62)
#define OSSL_VCK_TBS_INDIRECT	(1ULL << 54)	/* X509 points to its cert_info (BoringSSL) */
#define OSSL_VCK_BY_KEY		(1ULL << 55)	/* presented X509s not known: match them by key */
#define OSSL_VCK_ERR(ck)	((ck) & 0xfff)
#define OSSL_VCK_CHAIN(ck)	(((ck) >> 12) & 0xfff)
#define OSSL_VCK_TBSENC(ck)	(((ck) >> 24) & 0xffff)
#define OSSL_VCK_SKNUM(ck)	((((ck) >> 40) & 0xf) * 4)
#define OSSL_VCK_SKDATA(ck)	((((ck) >> 44) & 0xf) * 8)
#define OSSL_VCK_CERT(ck)	((((ck) >> 48) & 0x3f) * 8)

/*
 * The verdict reads the context's three fields in one read, and the stack's
 * two in another, into a buffer on the BPF stack: each set must lie within
 * OSSL_VCK_SPAN bytes from its lowest field rounded down to 8, every field
 * aligned to its size (a layout that does not is refused: only leaf pins then
 * count). OpenSSL 3.0, BoringSSL and node's OpenSSL: cert 8, chain 152, error 176.
 */
#define OSSL_VCK_SPAN		192
#define OSSL_MIN3(a, b, c)	((a) < (b) ? ((a) < (c) ? (a) : (c)) : ((b) < (c) ? (b) : (c)))
#define OSSL_MAX3(a, b, c)	((a) > (b) ? ((a) > (c) ? (a) : (c)) : ((b) > (c) ? (b) : (c)))
/* where the one read of fields at offsets a, b, c starts, and how long it is */
#define OSSL_SPAN_LO(a, b, c)	(OSSL_MIN3(a, b, c) & ~7u)
#define OSSL_SPAN_LEN(a, b, c)	(OSSL_MAX3(a, b, c) + 8 - OSSL_SPAN_LO(a, b, c))

#ifndef __bpf__
/* What userspace found; 0 when an offset does not fit the cookie. */
struct ossl_x509_layout {
	uint32_t ctx_error, ctx_chain, ctx_cert;
	uint32_t sk_num, sk_data;
	uint32_t x509_tbs_enc;	/* 0: unknown */
	int tbs_indirect;	/* x509_tbs_enc is relative to *(X509 **)x (BoringSSL's cert_info) */
	int by_key;		/* the presented certificates' objects are not seen */
};

static inline uint64_t ossl_vck_encode(const struct ossl_x509_layout *l)
{
	uint64_t ck = OSSL_VCK_VALID;

	if (l->ctx_error > 0xfff || l->ctx_chain > 0xfff || l->x509_tbs_enc > 0xffff ||
	    l->sk_num % 4 || l->sk_num / 4 > 0xf || l->sk_data % 8 || l->sk_data / 8 > 0xf ||
	    l->ctx_cert % 8 || l->ctx_cert / 8 > 0x3f || l->ctx_error % 4 || l->ctx_chain % 8 ||
	    OSSL_SPAN_LEN(l->ctx_error, l->ctx_chain, l->ctx_cert) > OSSL_VCK_SPAN)
		return 0;
	ck |= l->ctx_error | (uint64_t)l->ctx_chain << 12 | (uint64_t)(l->sk_num / 4) << 40 |
	      (uint64_t)(l->sk_data / 8) << 44 | (uint64_t)(l->ctx_cert / 8) << 48;
	if (l->x509_tbs_enc)
		ck |= OSSL_VCK_TBS | (uint64_t)l->x509_tbs_enc << 24 |
		      (l->tbs_indirect ? OSSL_VCK_TBS_INDIRECT : 0);
	if (l->by_key)
		ck |= OSSL_VCK_BY_KEY;
	return ck;
}
#endif

#endif /* PW_OPENSSL_H */
