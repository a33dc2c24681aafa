// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libFuzzer target: the code the kernel runs on every certificate a peer
 * presents (include/der.h, include/sha256.h, include/siphash.h), on any bytes,
 * with OpenSSL as the oracle.
 *
 *  - The walker reads nothing outside the input (an exact-length copy: ASan), and
 *    driven the kernel's way (bpf_loop of DER_WALK_STEPS steps, success read from
 *    the state) it decides exactly as der_cert_parse does.
 *  - Anything it accepts is one DER TLV of exactly the input's length, and the
 *    TBS, issuer, subject and SPKI it returns are definite-length TLVs (parsed
 *    again by OpenSSL's ASN1_get_object) nested and ordered as X.509 says.
 *  - When OpenSSL's d2i_X509 parses the whole input too, the walker's SPKI is the
 *    one OpenSSL uses (i2d_X509_PUBKEY) whenever those bytes are DER; when
 *    the input is DER (dercheck.h: a strict TLV tree, and OpenSSL re-encodes it
 *    byte for byte from the parsed fields), the walker must accept it (a valid
 *    certificate never fails closed) and its TBS, issuer, subject and SPKI are
 *    OpenSSL's.
 *  - SHA-256 (of the input and of the SPKI, with a state that is never cleared, as
 *    the kernel's scratch state is not) and SipHash-2-4 (plain and driven in the
 *    kernel's 64-byte blocks) equal OpenSSL's for any bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include "check.h"
#include "der.h"
#include "dercheck.h"
#include "sha256.h"
#include "siphash.h"

static EVP_MAC *siphash_mac;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	siphash_mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	if (!siphash_mac) {
		fprintf(stderr, "fuzz_der: OpenSSL has no SipHash\n");
		exit(2);
	}
	return 0;
}

static void openssl_sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
	unsigned int len = 0;

	CHECK(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32, "EVP_Digest");
}

static __u64 openssl_siphash(const uint8_t key[16], const uint8_t *p, size_t n)
{
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(siphash_mac);
	unsigned int size = 8;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_SIZE, &size),
		OSSL_PARAM_construct_end(),
	};
	uint8_t out[8];
	size_t outl = 0;
	__u64 v = 0;
	int i;

	CHECK(ctx && EVP_MAC_init(ctx, key, 16, params) && EVP_MAC_update(ctx, p, n) &&
	      EVP_MAC_final(ctx, out, &outl, sizeof(out)) && outl == 8, "OpenSSL SipHash");
	EVP_MAC_CTX_free(ctx);
	for (i = 7; i >= 0; i--)
		v = v << 8 | out[i];
	return v;
}

/* bpf/hash.bpf.h's cert_id(): eight words per 64-byte block, then words, then the tail */
static __u64 siphash_kernel_way(__u64 k0, __u64 k1, const uint8_t *p, __u32 len)
{
	struct siphash_state st;
	__u32 i, w;

	siphash_init(&st, k0, k1);
	for (i = 0; i < len / 64; i++)
		for (w = 0; w < 8; w++)
			siphash_word(&st, siphash_le64(p + i * 64 + 8 * w));
	for (i = 0; i < (len & 63) / 8; i++)
		siphash_word(&st, siphash_le64(p + (len & ~63u) + i * 8));
	return siphash_final(&st, p + (len & ~7u), len);
}

static void check_hashes(const uint8_t *p, size_t n)
{
	/* the kernel's scratch state keeps whatever the last certificate left in it */
	static struct sha256_state st = { .tail = { [0 ... 2 * SHA256_BLOCK - 1] = 0xa5 } };
	uint8_t mine[32], theirs[32], key[16];
	__u64 k0 = 0, k1 = 0;
	int i;

	sha256_buf(&st, p, (__u32)n, mine);
	openssl_sha256(p, n, theirs);
	CHECK(!memcmp(mine, theirs, 32), "SHA-256 of %zu bytes differs from OpenSSL's", n);

	/* the key: the first 16 bytes when there are that many, else a fixed one */
	for (i = 0; i < 16; i++)
		key[i] = n >= 16 ? p[i] : (uint8_t)(0x10 + i);
	for (i = 7; i >= 0; i--) {
		k0 = k0 << 8 | key[i];
		k1 = k1 << 8 | key[8 + i];
	}
	{
		__u64 want = openssl_siphash(key, p, n);

		CHECK(siphash_buf(k0, k1, p, (__u32)n) == want,
		      "SipHash of %zu bytes differs from OpenSSL's", n);
		CHECK(siphash_kernel_way(k0, k1, p, (__u32)n) == want,
		      "SipHash driven the kernel's way (%zu bytes) differs from OpenSSL's", n);
	}
}

/* The walk as bpf/hash.bpf.h runs it: bpf_loop stops when the callback returns 1. */
static int walk_kernel_way(const uint8_t *buf, __u32 len, struct der_cert *dc)
{
	struct der_walk w, again;
	__u32 i;
	int r = 0;

	der_walk_init(&w, len);
	for (i = 0; i < DER_WALK_STEPS; i++)
		if ((r = der_walk_step(buf, &w)) != 0)
			break;
	/* a walk that has ended stays where it ended, whatever calls it once more */
	again = w;
	if (r != 0) {
		CHECK(der_walk_step(buf, &again) == r, "a finished walk answered otherwise");
		CHECK(!memcmp(&again, &w, sizeof(w)), "a finished walk moved");
	}
	*dc = w.dc;
	return w.state == DER_S_DONE && !w.err;
}

/* Anything longer than the kernel's copy buffer is refused before a byte is read
 * (the input buffer is only `size` bytes: ASan would see a read). */
static void check_too_big(const uint8_t *buf, size_t size)
{
	struct der_walk w;
	int r;

	der_walk_init(&w, PW_CERT_MAX + 1 + (__u32)(size & 0xffff));
	r = der_walk_step(buf, &w);
	CHECK(r == DER_ERR_TOO_BIG, "a %u-byte walk gave %d", w.len, r);
}

/* The TLV at p[off, off + len) is one definite-length, constructed SEQUENCE. */
static void check_seq(const uint8_t *p, size_t size, __u32 off, __u32 len, const char *what)
{
	const unsigned char *q;
	long vlen = 0;
	int tag = 0, cls = 0, ret;

	CHECK(len >= 2 && off <= size && len <= size - off, "%s [%u, +%u) outside %zu bytes",
	      what, off, len, size);
	q = p + off;
	ret = ASN1_get_object(&q, &vlen, &tag, &cls, len);
	CHECK(ret == V_ASN1_CONSTRUCTED && tag == V_ASN1_SEQUENCE && cls == V_ASN1_UNIVERSAL,
	      "%s is not a definite-length SEQUENCE (ret %#x, tag %d, class %d)", what, ret, tag,
	      cls);
	CHECK((size_t)(q - (p + off)) + (size_t)vlen == len,
	      "%s: OpenSSL reads a %ld-byte TLV, the walker %u bytes", what,
	      (long)(q - (p + off)) + vlen, len);
}

/* i2d of an OpenSSL object equals the walker's bytes */
static void check_same(const uint8_t *p, __u32 off, __u32 len, unsigned char *enc, int enclen,
		       const char *what)
{
	CHECK(enclen > 0, "OpenSSL could not re-encode the %s", what);
	CHECK((__u32)enclen == len && !memcmp(p + off, enc, len),
	      "the walker's %s (%u bytes at %u) is not OpenSSL's (%d bytes)", what, len, off, enclen);
	OPENSSL_free(enc);
}

static int spki_is_der(const uint8_t *p, __u32 len)
{
	const unsigned char *q = p;
	X509_PUBKEY *pk = d2i_X509_PUBKEY(NULL, &q, len);
	unsigned char *enc = NULL;
	int enclen, ok;

	if (!pk)
		return 0;
	enclen = i2d_X509_PUBKEY(pk, &enc);
	ok = q == p + len && enclen == (int)len && !memcmp(enc, p, len);
	OPENSSL_free(enc);
	X509_PUBKEY_free(pk);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-length copy: a read past the end is an ASan report */
	uint8_t *buf = malloc(size ? size : 1);
	struct der_cert dc, dk;
	const unsigned char *q;
	X509 *x;
	int r, ok_kernel;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	memset(&dc, 0xee, sizeof(dc));
	r = der_cert_parse(buf, (__u32)size, &dc);
	ok_kernel = walk_kernel_way(buf, (__u32)size, &dk);
	CHECK((r == DER_OK) == ok_kernel, "der_cert_parse says %d, the kernel's loop %d", r,
	      ok_kernel);
	CHECK(r <= 0 && r >= DER_ERR_TOO_BIG, "unknown result %d", r);
	check_too_big(buf, size);
	if (size > PW_CERT_MAX)
		CHECK(r != DER_OK, "accepted %zu bytes, more than PW_CERT_MAX", size);

	if (r == DER_OK) {
		__u32 tbs_end = dc.tbs_off + dc.tbs_len;
		uint8_t mine[32], theirs[32];
		struct sha256_state st;

		CHECK(!memcmp(&dc, &dk, sizeof(dc)), "the kernel's loop found other offsets");
		check_seq(buf, size, 0, (__u32)size, "certificate");
		check_seq(buf, size, dc.tbs_off, dc.tbs_len, "tbsCertificate");
		check_seq(buf, size, dc.issuer_off, dc.issuer_len, "issuer");
		check_seq(buf, size, dc.subject_off, dc.subject_len, "subject");
		check_seq(buf, size, dc.spki_off, dc.spki_len, "subjectPublicKeyInfo");
		CHECK(dc.tbs_off > 0 && dc.tbs_off < 6, "the TBS does not open the certificate");
		CHECK(dc.issuer_off > dc.tbs_off && dc.issuer_off + dc.issuer_len < dc.subject_off &&
		      dc.subject_off + dc.subject_len <= dc.spki_off &&
		      dc.spki_off + dc.spki_len <= tbs_end && tbs_end <= size,
		      "issuer, validity, subject and SPKI are not in order inside the TBS");
		sha256_buf(&st, buf + dc.spki_off, dc.spki_len, mine);
		openssl_sha256(buf + dc.spki_off, dc.spki_len, theirs);
		CHECK(!memcmp(mine, theirs, 32), "SHA-256 of the SPKI differs from OpenSSL's");
		/* the tbsCertificate alone (a trust anchor's cached TBS) walks to the same SPKI */
		{
			uint8_t *tbs = malloc(dc.tbs_len);
			struct der_cert tc;

			if (tbs) {
				memcpy(tbs, buf + dc.tbs_off, dc.tbs_len);
				CHECK(der_tbs_parse(tbs, dc.tbs_len, &tc) == DER_OK,
				      "the TBS of an accepted certificate was refused alone");
				CHECK(tc.spki_off + dc.tbs_off == dc.spki_off && tc.spki_len == dc.spki_len,
				      "the TBS walk found another SPKI");
				free(tbs);
			}
		}
	}
	/* any bytes as a TBS alone: no read past the end (ASan), nested fields in order */
	{
		struct der_cert tc;

		if (der_tbs_parse(buf, (__u32)size, &tc) == DER_OK) {
			check_seq(buf, size, 0, (__u32)size, "tbsCertificate alone");
			check_seq(buf, size, tc.spki_off, tc.spki_len, "subjectPublicKeyInfo (TBS walk)");
			CHECK(tc.spki_off + tc.spki_len <= size, "SPKI past the TBS");
		}
	}

	q = buf;
	x = d2i_X509(NULL, &q, (long)size);
	if (x && q == buf + size) {
		int is_der = cert_is_der(x, buf, size), enclen;
		unsigned char *enc;

		if (is_der && size <= PW_CERT_MAX)
			CHECK(r == DER_OK, "a DER certificate OpenSSL reads was refused (%d)", r);
		if (r == DER_OK && (is_der || spki_is_der(buf + dc.spki_off, dc.spki_len))) {
			enc = NULL;
			enclen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &enc);
			check_same(buf, dc.spki_off, dc.spki_len, enc, enclen, "SPKI");
		}
		if (r == DER_OK && is_der) {
			enc = NULL;
			enclen = i2d_X509_NAME(X509_get_subject_name(x), &enc);
			check_same(buf, dc.subject_off, dc.subject_len, enc, enclen, "subject");
			enc = NULL;
			enclen = i2d_X509_NAME(X509_get_issuer_name(x), &enc);
			check_same(buf, dc.issuer_off, dc.issuer_len, enc, enclen, "issuer");
			enc = NULL;
			enclen = i2d_re_X509_tbs(x, &enc);
			check_same(buf, dc.tbs_off, dc.tbs_len, enc, enclen, "tbsCertificate");
		}
	}
	X509_free(x);

	check_hashes(buf, size);
	free(buf);
	return 0;
}
