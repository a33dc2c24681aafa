/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * SHA-256 (FIPS 180-4), written once for the kernel side and for userspace.
 *
 * The BPF program cannot keep the 256-byte message schedule on its 512-byte
 * stack, so the caller owns all state (struct sha256_state, in a map value on
 * the kernel side). Only the compression function and the padding live here;
 * bpf/hash.bpf.h drives them over a certificate with bpf_loop, and
 * sha256_buf() below drives them the plain way for tests and tools.
 */
#ifndef PW_SHA256_H
#define PW_SHA256_H

#ifndef __bpf__
#include <linux/types.h>
#include <string.h>
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#endif

#define SHA256_BLOCK	64
#define SHA256_DIGEST	32

struct sha256_state {
	__u32 h[8];
	__u32 w[64];
	__u32 v[8];			/* the working variables of a compression */
	__u8 tail[2 * SHA256_BLOCK];	/* last partial block plus padding */
};

static const __u32 sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define SHA256_ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static __always_inline void sha256_init(struct sha256_state *st)
{
	st->h[0] = 0x6a09e667;
	st->h[1] = 0xbb67ae85;
	st->h[2] = 0x3c6ef372;
	st->h[3] = 0xa54ff53a;
	st->h[4] = 0x510e527f;
	st->h[5] = 0x9b05688c;
	st->h[6] = 0x1f83d9ab;
	st->h[7] = 0x5be0cd19;
}

/* The message schedule of one 64-byte block into st->w. */
static __always_inline void sha256_schedule(struct sha256_state *st, const __u8 *blk)
{
	int i;

	for (i = 0; i < 16; i++)
		st->w[i] = (__u32)blk[4 * i] << 24 | (__u32)blk[4 * i + 1] << 16 |
			   (__u32)blk[4 * i + 2] << 8 | (__u32)blk[4 * i + 3];
	for (i = 16; i < 64; i++) {
		__u32 w15 = st->w[i - 15], w2 = st->w[i - 2];
		__u32 s0 = SHA256_ROTR(w15, 7) ^ SHA256_ROTR(w15, 18) ^ (w15 >> 3);
		__u32 s1 = SHA256_ROTR(w2, 17) ^ SHA256_ROTR(w2, 19) ^ (w2 >> 10);

		st->w[i] = st->w[i - 16] + s0 + st->w[i - 7] + s1;
	}
}

/* Compress one 64-byte block. The loops stay loops: the verifier bounds them. */
static __always_inline void sha256_compress(struct sha256_state *st, const __u8 *blk)
{
	__u32 a, b, c, d, e, f, g, h, t1, t2;
	int i;

	sha256_schedule(st, blk);
	a = st->h[0]; b = st->h[1]; c = st->h[2]; d = st->h[3];
	e = st->h[4]; f = st->h[5]; g = st->h[6]; h = st->h[7];
	for (i = 0; i < 64; i++) {
		t1 = h + (SHA256_ROTR(e, 6) ^ SHA256_ROTR(e, 11) ^ SHA256_ROTR(e, 25)) +
		     ((e & f) ^ (~e & g)) + sha256_k[i] + st->w[i];
		t2 = (SHA256_ROTR(a, 2) ^ SHA256_ROTR(a, 13) ^ SHA256_ROTR(a, 22)) +
		     ((a & b) ^ (a & c) ^ (b & c));
		h = g; g = f; f = e; e = d + t1;
		d = c; c = b; b = a; a = t1 + t2;
	}
	st->h[0] += a; st->h[1] += b; st->h[2] += c; st->h[3] += d;
	st->h[4] += e; st->h[5] += f; st->h[6] += g; st->h[7] += h;
}

/*
 * The same with the working variables a..h in the caller's memory (v[0..7]):
 * slower, but its frame is 32 bytes where sha256_compress's spills take 128,
 * and the verifier adds a bpf_loop callback's frame to every frame it runs
 * under (512 bytes in all): for hashes deep in the verdict (trust anchors).
 */
static __always_inline void sha256_compress_mem(struct sha256_state *st, const __u8 *blk)
{
	volatile __u32 *v = st->v, *h = st->h;
	__u32 t1, t2;
	int i;

	sha256_schedule(st, blk);
	for (i = 0; i < 8; i++)
		v[i] = h[i];
	for (i = 0; i < 64; i++) {
		t1 = v[7] + (SHA256_ROTR(v[4], 6) ^ SHA256_ROTR(v[4], 11) ^ SHA256_ROTR(v[4], 25)) +
		     ((v[4] & v[5]) ^ (~v[4] & v[6])) + sha256_k[i] + st->w[i];
		t2 = (SHA256_ROTR(v[0], 2) ^ SHA256_ROTR(v[0], 13) ^ SHA256_ROTR(v[0], 22)) +
		     ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
		v[7] = v[6]; v[6] = v[5]; v[5] = v[4]; v[4] = v[3] + t1;
		v[3] = v[2]; v[2] = v[1]; v[1] = v[0]; v[0] = t1 + t2;
	}
	for (i = 0; i < 8; i++)
		h[i] += v[i];
}

/*
 * Pad the final partial block. The caller has copied the last (len % 64)
 * message bytes into st->tail; returns how many tail blocks (1 or 2) must
 * still be compressed.
 */
static __always_inline int sha256_pad(struct sha256_state *st, __u32 len)
{
	__u32 rem = len & (SHA256_BLOCK - 1);
	__u32 nblk = rem < 56 ? 1 : 2;
	__u64 bits = (__u64)len * 8;
	__u32 end = nblk * SHA256_BLOCK;
	__u32 i;

	st->tail[rem & (SHA256_BLOCK - 1)] = 0x80;
	for (i = 0; i < 2 * SHA256_BLOCK; i++)
		if (i > rem && i < end - 8)
			st->tail[i] = 0;
	for (i = 0; i < 8; i++)
		st->tail[(end - 1 - i) & (2 * SHA256_BLOCK - 1)] = (__u8)(bits >> (8 * i));
	return nblk;
}

static __always_inline void sha256_digest(const struct sha256_state *st, __u8 out[SHA256_DIGEST])
{
	int i;

	for (i = 0; i < 8; i++) {
		out[4 * i] = (__u8)(st->h[i] >> 24);
		out[4 * i + 1] = (__u8)(st->h[i] >> 16);
		out[4 * i + 2] = (__u8)(st->h[i] >> 8);
		out[4 * i + 3] = (__u8)st->h[i];
	}
}

#ifndef __bpf__
/* The same steps the kernel side takes, driven by a plain loop. */
static inline void sha256_buf(struct sha256_state *st, const __u8 *p, __u32 len,
			      __u8 out[SHA256_DIGEST])
{
	__u32 nfull = len / SHA256_BLOCK, i;
	int ntail;

	sha256_init(st);
	for (i = 0; i < nfull; i++)
		sha256_compress(st, p + (size_t)i * SHA256_BLOCK);
	memcpy(st->tail, p + (size_t)nfull * SHA256_BLOCK, len & (SHA256_BLOCK - 1));
	ntail = sha256_pad(st, len);
	sha256_compress(st, st->tail);
	if (ntail == 2)
		sha256_compress(st, st->tail + SHA256_BLOCK);
	sha256_digest(st, out);
}
#endif

#endif /* PW_SHA256_H */
