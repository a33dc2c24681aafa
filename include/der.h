/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A minimal DER walker that finds the parts of an X.509 certificate pinning
 * needs (tbsCertificate, issuer, subject, subjectPublicKeyInfo), written once
 * for the kernel side and for userspace. It reads nothing at or past `len`:
 * every offset is checked before the byte is read, and on the kernel side
 * every index is also masked so that the verifier can see the bound.
 */
#ifndef PW_DER_H
#define PW_DER_H

#include "pinwarden.h"

#ifndef __bpf__
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#endif

#ifdef __bpf__
/* buffers handed to the walker are at least PW_CERT_MAX bytes long */
#define DER_AT(buf, i) ((buf)[(i) & (PW_CERT_MAX - 1)])
#else
#define DER_AT(buf, i) ((buf)[(i)])
#endif

#define DER_TAG_INTEGER		0x02
#define DER_TAG_SEQUENCE	0x30
#define DER_TAG_CTX0		0xa0	/* [0] EXPLICIT, the version */

enum der_error {
	DER_OK = 0,
	DER_ERR_TRUNCATED = -1,	/* a header or value runs past the end */
	DER_ERR_TAG = -2,	/* an unexpected tag */
	DER_ERR_LENGTH = -3,	/* indefinite, over-long or non-minimal length */
	DER_ERR_TRAILING = -4,	/* bytes after the certificate */
	DER_ERR_TOO_BIG = -5,	/* larger than the walker accepts */
};

/* offsets and lengths of whole TLVs (header included) */
struct der_cert {
	__u32 tbs_off, tbs_len;
	__u32 issuer_off, issuer_len;
	__u32 subject_off, subject_len;
	__u32 spki_off, spki_len;
};

/*
 * Read the TLV at `off` that must end at or before `end` (end <= the readable
 * length). On success stores the header and value lengths.
 */
static __always_inline int der_tlv(const __u8 *buf, __u32 end, __u32 off, __u8 tag,
				   __u32 *hdr_len, __u32 *val_len)
{
	__u32 first, n, i, vlen = 0;

	if (end > PW_CERT_MAX)
		return DER_ERR_TOO_BIG;
	if (off >= end || end - off < 2)
		return DER_ERR_TRUNCATED;
	if (DER_AT(buf, off) != tag)
		return DER_ERR_TAG;
	first = DER_AT(buf, off + 1);
	if (first < 0x80) {
		vlen = first;
		n = 0;
	} else {
		n = first & 0x7f;
		/* 0x80 is BER's indefinite form; PW_CERT_MAX needs at most 3 bytes */
		if (n == 0 || n > 3)
			return DER_ERR_LENGTH;
		if (end - off - 2 < n)
			return DER_ERR_TRUNCATED;
		for (i = 0; i < 3; i++) {
			if (i >= n)
				break;
			vlen = (vlen << 8) | DER_AT(buf, off + 2 + i);
		}
		/* DER: the shortest form, no leading zero byte */
		if (vlen < 0x80 || DER_AT(buf, off + 2) == 0)
			return DER_ERR_LENGTH;
	}
	if (vlen > end - off - 2 - n)
		return DER_ERR_TRUNCATED;
	*hdr_len = 2 + n;
	*val_len = vlen;
	return DER_OK;
}

/*
 * The walk is a small state machine, one TLV per step, so that the kernel
 * side can run it from a bpf_loop callback (the verifier checks one step, not
 * every path through the whole walk).
 *
 * Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
 * TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature,
 *                               issuer, validity, subject, subjectPublicKeyInfo, ... }
 */
enum der_state {
	DER_S_CERT = 0,		/* the outer SEQUENCE, exactly `len` bytes */
	DER_S_TBS,		/* enter tbsCertificate */
	DER_S_VERSION,		/* optional [0] */
	DER_S_SERIAL,
	DER_S_SIGALG,
	DER_S_ISSUER,
	DER_S_VALIDITY,
	DER_S_SUBJECT,
	DER_S_SPKI,
	DER_S_DONE,
};

#define DER_WALK_STEPS DER_S_DONE	/* steps to reach DER_S_DONE */

struct der_walk {
	__u32 len;		/* readable bytes */
	__u32 pos;		/* next TLV */
	__u32 end;		/* end of the enclosing SEQUENCE */
	__u32 state;		/* enum der_state */
	__s32 err;		/* enum der_error, once failed */
	__u32 tbs_only;		/* the buffer holds a tbsCertificate alone (der_walk_init_tbs) */
	struct der_cert dc;
};

static __always_inline void der_walk_init(struct der_walk *w, __u32 len)
{
	__builtin_memset(w, 0, sizeof(*w));
	w->len = len;
	w->end = len;
}

/*
 * The same walk over a tbsCertificate on its own, exactly `len` bytes (what a
 * library keeps of a parsed certificate, e.g. OpenSSL's cached TBS encoding).
 */
static __always_inline void der_walk_init_tbs(struct der_walk *w, __u32 len)
{
	der_walk_init(w, len);
	w->state = DER_S_TBS;
	w->tbs_only = 1;
}

/* One step. Returns 0 to go on, 1 when the SPKI is found, < 0 on error. */
static __always_inline int der_walk_step(const __u8 *buf, struct der_walk *w)
{
	__u32 hl = 0, vl = 0, state = w->state;
	__u8 tag = state == DER_S_VERSION ? DER_TAG_CTX0 :
		   state == DER_S_SERIAL ? DER_TAG_INTEGER : DER_TAG_SEQUENCE;
	int err;

	if (w->err)
		return w->err;
	if (state >= DER_S_DONE)
		return 1;
	if (state == DER_S_VERSION &&
	    (w->pos >= w->end || w->end > w->len || DER_AT(buf, w->pos) != DER_TAG_CTX0)) {
		w->state = DER_S_SERIAL;	/* v1 certificate: no version field */
		return 0;
	}
	err = der_tlv(buf, w->end, w->pos, tag, &hl, &vl);
	if (!err && (state == DER_S_CERT || (state == DER_S_TBS && w->tbs_only)) &&
	    hl + vl != w->len)
		err = DER_ERR_TRAILING;
	if (err) {
		w->err = err;
		return err;
	}
	switch (state) {
	case DER_S_CERT:
		w->pos = hl;				/* enter */
		break;
	case DER_S_TBS:
		w->dc.tbs_off = w->pos;
		w->dc.tbs_len = hl + vl;
		w->end = w->pos + hl + vl;
		w->pos += hl;				/* enter */
		break;
	case DER_S_ISSUER:
		w->dc.issuer_off = w->pos;
		w->dc.issuer_len = hl + vl;
		w->pos += hl + vl;
		break;
	case DER_S_SUBJECT:
		w->dc.subject_off = w->pos;
		w->dc.subject_len = hl + vl;
		w->pos += hl + vl;
		break;
	case DER_S_SPKI:
		w->dc.spki_off = w->pos;
		w->dc.spki_len = hl + vl;
		w->pos += hl + vl;
		break;
	default:
		w->pos += hl + vl;			/* skip */
	}
	w->state = state + 1;
	return w->state == DER_S_DONE;
}

#ifndef __bpf__
/* The whole walk, driven by a plain loop (userspace, tests, fuzzers). */
static inline int der_cert_parse(const __u8 *buf, __u32 len, struct der_cert *dc)
{
	struct der_walk w;
	int i, r = 0;

	der_walk_init(&w, len);
	for (i = 0; i < DER_WALK_STEPS && r == 0; i++)
		r = der_walk_step(buf, &w);
	if (r != 1)
		return r < 0 ? r : DER_ERR_TRUNCATED;
	*dc = w.dc;
	return DER_OK;
}

/* The walk over a tbsCertificate alone (der_walk_init_tbs). */
static inline int der_tbs_parse(const __u8 *buf, __u32 len, struct der_cert *dc)
{
	struct der_walk w;
	int i, r = 0;

	der_walk_init_tbs(&w, len);
	for (i = 0; i < DER_WALK_STEPS && r == 0; i++)
		r = der_walk_step(buf, &w);
	if (r != 1)
		return r < 0 ? r : DER_ERR_TRUNCATED;
	*dc = w.dc;
	return DER_OK;
}
#endif

#endif /* PW_DER_H */
