/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Copy one certificate out of the process, hash its SubjectPublicKeyInfo and
 * the whole DER with include/sha256.h, and send the DER to the daemon unless
 * it already has it.
 */
#ifndef PW_HASH_BPF_H
#define PW_HASH_BPF_H

#include "maps.bpf.h"
#include "der.h"
#include "siphash.h"

#define PW_SCRATCH_STEAL_MS	1000	/* a claim older than this was leaked: take it */

static __always_inline __u64 scratch_stamp(void)
{
	__u64 tid = (__u32)bpf_get_current_pid_tgid();

	return tid << 32 | ((bpf_ktime_get_ns() / 1000000) & 0xffffffff);
}

/* Claim a free scratch slot, starting at this CPU's pair. */
static __always_inline struct pw_scratch *scratch_claim(__u32 *slot_out, __u64 me)
{
	__u32 n = scratch_slots, start = bpf_get_smp_processor_id() * 2, i, slot;
	__u64 now_ms = me & 0xffffffff, old;
	struct pw_scratch *s;

	for (i = 0; i < 8; i++) {
		slot = n ? (start + i) % n : 0;
		s = bpf_map_lookup_elem(&scratch, &slot);
		if (!s)
			continue;
		old = s->owner;
		if (old && ((now_ms - (old & 0xffffffff)) & 0xffffffff) < PW_SCRATCH_STEAL_MS)
			continue;
		if (__sync_val_compare_and_swap(&s->owner, old, me) == old) {
			*slot_out = slot;
			return s;
		}
	}
	return NULL;
}

static __always_inline void scratch_release(struct pw_scratch *s, __u64 me)
{
	__sync_val_compare_and_swap(&s->owner, me, 0);
}

struct hash_loop {
	__u32 slot;
	__u32 off;		/* first byte of the region in der[], or 0 for the tail */
};

/*
 * Compress block i of the region (tail: of the padded tail) with the fast
 * compression or, small_frame, the one whose frame fits under the verdict
 * (sha256_compress_mem). Each callback below passes constants, so that each
 * keeps the frame of its own compression: the verifier counts a callback's
 * frame whole.
 */
static __always_inline long hash_step(__u32 i, struct hash_loop *hl, int tail, int small_frame)
{
	struct pw_scratch *s = bpf_map_lookup_elem(&scratch, &hl->slot);
	const __u8 *blk;

	if (!s)
		return 1;
	blk = tail ? &s->sha.tail[(i & 1) * SHA256_BLOCK] :
		     &s->der[(hl->off + i * SHA256_BLOCK) & (PW_CERT_MAX - 1)];
	if (small_frame)
		sha256_compress_mem(&s->sha, blk);
	else
		sha256_compress(&s->sha, blk);
	return 0;
}

static long hash_block_cb(__u32 i, void *data)
{
	return hash_step(i, data, 0, 0);
}

static long hash_tail_cb(__u32 i, void *data)
{
	return hash_step(i, data, 1, 0);
}

static long hash_block_mem_cb(__u32 i, void *data)
{
	return hash_step(i, data, 0, 1);
}

static long hash_tail_mem_cb(__u32 i, void *data)
{
	return hash_step(i, data, 1, 1);
}

static long der_step_cb(__u32 i, void *data)
{
	struct pw_scratch *s = bpf_map_lookup_elem(&scratch, data);

	if (!s)
		return 1;
	return der_walk_step(s->der, &s->walk) != 0;
}

struct id_loop {
	__u32 slot;
	__u32 pad;		/* id_word_cb: where its words start */
	struct siphash_state st;
};

/* eight words (64 bytes) per call: the loop's own cost stays small */
static long id_block_cb(__u32 i, void *data)
{
	struct id_loop *il = data;
	struct pw_scratch *s = bpf_map_lookup_elem(&scratch, &il->slot);
	const __u8 *p;
	int w;

	if (!s)
		return 1;
	p = &s->der[(i * 64) & (PW_CERT_MAX - 1)];
	for (w = 0; w < 8; w++)
		siphash_word(&il->st, siphash_le64(p + 8 * w));
	return 0;
}

static long id_word_cb(__u32 i, void *data)
{
	struct id_loop *il = data;
	struct pw_scratch *s = bpf_map_lookup_elem(&scratch, &il->slot);

	if (!s)
		return 1;
	siphash_word(&il->st, siphash_le64(&s->der[(il->pad + i * 8) & (PW_CERT_MAX - 1)]));
	return 0;
}

/* The keyed SipHash of der[0, len): the certificate's name for the daemon. */
static __always_inline __u64 cert_id(struct pw_scratch *s, __u32 slot, __u32 len)
{
	struct id_loop il = { .slot = slot };

	siphash_init(&il.st, cert_id_key[0], cert_id_key[1]);
	bpf_loop(len / 64, id_block_cb, &il, 0);
	il.pad = len & ~63u;	/* the words after the last whole block */
	bpf_loop((len & 63) / 8, id_word_cb, &il, 0);
	return siphash_final(&il.st, &s->der[(len & ~7u) & (PW_CERT_MAX - 1)], len);
}

/* SHA-256 of der[off, off + len), which lies inside the copied certificate;
 * small_frame: under the verdict, where the stack is short (hash_block_mem_cb). */
static __always_inline void hash_region(struct pw_scratch *s, __u32 slot, __u32 off, __u32 len,
					__u8 *out, int small_frame)
{
	struct hash_loop hl = { .slot = slot, .off = off };
	__u32 nfull = len / SHA256_BLOCK, rem = len & (SHA256_BLOCK - 1);
	int ntail;

	sha256_init(&s->sha);
	bpf_loop(nfull, small_frame ? hash_block_mem_cb : hash_block_cb, &hl, 0);
	bpf_probe_read_kernel(s->sha.tail, rem,
			      &s->der[(off + nfull * SHA256_BLOCK) & (PW_CERT_MAX - 1)]);
	ntail = sha256_pad(&s->sha, len);
	bpf_loop(ntail, small_frame ? hash_tail_mem_cb : hash_tail_cb, &hl, 0);
	sha256_digest(&s->sha, out);
}

/*
 * Walk der[0, len) (a whole certificate, or a tbsCertificate alone) to its
 * SubjectPublicKeyInfo and hash that into s->rec.spki_sha256. 0, or -1 (zeroed)
 * when the walker refuses it.
 */
static __always_inline int spki_hash(struct pw_scratch *s, __u32 slot, __u32 len, int tbs_only,
				     int small_frame)
{
	if (tbs_only)
		der_walk_init_tbs(&s->walk, len);
	else
		der_walk_init(&s->walk, len);
	bpf_loop(DER_WALK_STEPS, der_step_cb, &slot, 0);
	if (s->walk.state == DER_S_DONE && !s->walk.err) {
		hash_region(s, slot, s->walk.dc.spki_off, s->walk.dc.spki_len, s->rec.spki_sha256,
			    small_frame);
		return 0;
	}
	__builtin_memset(s->rec.spki_sha256, 0, PW_HASH_LEN);
	return -1;
}

/*
 * Hash the SPKI of a validated certificate the peer did not present (a trust
 * anchor), from what the library keeps of it: its tbsCertificate or its SPKI.
 * Nothing is sent to the daemon: the kernel has no whole DER to send.
 */
static __always_inline void anchor_capture(const struct pw_anchor_src *src, struct pw_chain_cert *out)
{
	__u64 me = scratch_stamp();
	__u32 slot = 0, len = src->len;
	struct pw_scratch *s;

	__builtin_memset(out, 0, sizeof(*out));
	out->der_len = len;
	out->flags = PW_CERT_NOT_PRESENTED | PW_CERT_VALIDATED;
	if (len > PW_CERT_MAX || len == 0) {
		out->flags |= PW_CERT_TOO_BIG;
		return;
	}
	s = scratch_claim(&slot, me);
	if (!s) {
		out->flags |= PW_CERT_CONTENDED;
		count(PW_CNT_CONTENDED);
		return;
	}
	barrier_var(len);
	if (len > PW_CERT_MAX)
		goto out;
	if (bpf_probe_read_user(s->der, len, (const void *)src->ptr)) {
		out->flags |= PW_CERT_COPY_FAILED;
		count(PW_CNT_COPY_FAILED);
		goto out;
	}
	if (src->kind == PW_ANCHOR_SPKI) {
		hash_region(s, slot, 0, len, s->rec.spki_sha256, 1);
	} else if (spki_hash(s, slot, len, 1, 1)) {
		out->flags |= PW_CERT_NO_SPKI;
		goto out;
	}
	if (s->owner != me) {
		out->flags = PW_CERT_NOT_PRESENTED | PW_CERT_VALIDATED | PW_CERT_CONTENDED;
		count(PW_CNT_CONTENDED);
		return;
	}
	__builtin_memcpy(out->spki_sha256, s->rec.spki_sha256, PW_HASH_LEN);
	out->flags |= PW_CERT_SPKI_HASHED;
	count(PW_CNT_ANCHORS_HASHED);
out:
	scratch_release(s, me);
}

/* Capture one certificate the peer presented into *out (a slot of the accumulator). */
static __always_inline void cert_capture(const void *der_user, __u32 len, struct pw_chain_cert *out)
{
	struct pw_cert_id known = {};
	struct pw_scratch *s;
	__u64 me = scratch_stamp();
	__u32 slot = 0;
	long err;

	out->der_len = len;
	out->flags = 0;
	count(PW_CNT_CERTS);
	if (len > PW_CERT_MAX || len == 0) {
		out->flags |= PW_CERT_TOO_BIG;
		count(PW_CNT_TOO_BIG);
		return;
	}
	s = scratch_claim(&slot, me);
	if (!s) {
		out->flags |= PW_CERT_CONTENDED;
		count(PW_CNT_CONTENDED);
		return;
	}
	barrier_var(len);
	if (len > PW_CERT_MAX)
		goto out;
	err = bpf_probe_read_user(s->der, len, der_user);
	if (err) {
		out->flags |= PW_CERT_COPY_FAILED;
		count(PW_CNT_COPY_FAILED);
		goto out;
	}
	s->rec.id = cert_id(s, slot, len);
	out->flags |= PW_CERT_ID;
	/* the whole certificate's SHA-256 costs five times the SPKI's: only for cert pins */
	if (need_cert_hash) {
		hash_region(s, slot, 0, len, s->rec.cert_sha256, 0);
		out->flags |= PW_CERT_HASHED;
	} else {
		__builtin_memset(s->rec.cert_sha256, 0, PW_HASH_LEN);
	}
	if (spki_hash(s, slot, len, 0, 0) == 0)
		out->flags |= PW_CERT_SPKI_HASHED;
	else
		out->flags |= PW_CERT_NO_SPKI;
	if (s->owner != me) {
		/* taken over while we hashed: nothing in it can be trusted */
		out->flags = PW_CERT_CONTENDED;
		count(PW_CNT_CONTENDED);
		return;
	}
	__builtin_memcpy(out->cert_sha256, s->rec.cert_sha256, PW_HASH_LEN);
	__builtin_memcpy(out->spki_sha256, s->rec.spki_sha256, PW_HASH_LEN);
	out->id = s->rec.id;
	known.id = s->rec.id;
	known.der_len = len;
	if (bpf_map_lookup_elem(&known_certs, &known)) {
		out->flags |= PW_CERT_KNOWN;
		count(PW_CNT_KNOWN_SKIPPED);
		goto out;
	}
	s->rec.type = PW_REC_CERT;
	s->rec.der_len = len;
	s->rec.copied = len;
	s->rec.flags = out->flags;
	if (bpf_ringbuf_output(&events, &s->rec, sizeof(s->rec) + len, rb_flags())) {
		count(PW_CNT_LOST_CERT_RECS);
		out->flags |= PW_CERT_NOT_SENT;	/* judged, but the daemon cannot explain it */
	}
out:
	scratch_release(s, me);
}

#endif /* PW_HASH_BPF_H */
