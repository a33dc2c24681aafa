/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * SipHash-2-4 (Aumasson and Bernstein), written once for the kernel side and
 * userspace. With a secret key chosen by the daemon at start, it names a
 * certificate's exact bytes for the daemon's cache (is this DER one the daemon
 * has already explained?) at a fifteenth of the cost of SHA-256: an attacker
 * who does not know the key cannot make two certificates share a name.
 */
#ifndef PW_SIPHASH_H
#define PW_SIPHASH_H

#ifndef __bpf__
#include <linux/types.h>
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#endif

struct siphash_state {
	__u64 v0, v1, v2, v3;
};

#define SIPHASH_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

static __always_inline void siphash_init(struct siphash_state *s, __u64 k0, __u64 k1)
{
	s->v0 = 0x736f6d6570736575ULL ^ k0;
	s->v1 = 0x646f72616e646f6dULL ^ k1;
	s->v2 = 0x6c7967656e657261ULL ^ k0;
	s->v3 = 0x7465646279746573ULL ^ k1;
}

static __always_inline void siphash_round(struct siphash_state *s)
{
	s->v0 += s->v1;
	s->v1 = SIPHASH_ROTL(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = SIPHASH_ROTL(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = SIPHASH_ROTL(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = SIPHASH_ROTL(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = SIPHASH_ROTL(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = SIPHASH_ROTL(s->v2, 32);
}

/* One 8-byte little-endian word of the message. */
static __always_inline void siphash_word(struct siphash_state *s, __u64 m)
{
	s->v3 ^= m;
	siphash_round(s);
	siphash_round(s);
	s->v0 ^= m;
}

static __always_inline __u64 siphash_le64(const __u8 *p)
{
	return (__u64)p[0] | (__u64)p[1] << 8 | (__u64)p[2] << 16 | (__u64)p[3] << 24 |
	       (__u64)p[4] << 32 | (__u64)p[5] << 40 | (__u64)p[6] << 48 | (__u64)p[7] << 56;
}

/* The last len % 8 bytes (at tail) and the total length, then the result. */
static __always_inline __u64 siphash_final(struct siphash_state *s, const __u8 *tail, __u32 len)
{
	__u64 b = (__u64)(len & 0xff) << 56;
	__u32 i, n = len & 7;

	for (i = 0; i < 7; i++)
		if (i < n)
			b |= (__u64)tail[i] << (8 * i);
	siphash_word(s, b);
	s->v2 ^= 0xff;
	siphash_round(s);
	siphash_round(s);
	siphash_round(s);
	siphash_round(s);
	return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

#ifndef __bpf__
static inline __u64 siphash_buf(__u64 k0, __u64 k1, const __u8 *p, __u32 len)
{
	struct siphash_state s;
	__u32 i;

	siphash_init(&s, k0, k1);
	for (i = 0; i + 8 <= len; i += 8)
		siphash_word(&s, siphash_le64(p + i));
	return siphash_final(&s, p + (len & ~7u), len);
}
#endif

#endif /* PW_SIPHASH_H */
