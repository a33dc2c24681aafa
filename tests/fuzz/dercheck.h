/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Is a certificate DER? The oracle of the fuzz targets may only demand that the
 * kernel's walker accept (and agree with OpenSSL on) certificates that are DER,
 * and OpenSSL alone cannot say: d2i_X509 accepts BER, and i2d_X509 hands back the
 * bytes it read (the TBS and every Name keep their original encoding).
 *
 * So: every TLV, recursively, has a low tag number, a definite length in its
 * shortest form, and the constructed bit DER gives its universal type (SEQUENCE
 * and SET constructed, every other universal type primitive); and OpenSSL,
 * made to re-encode the TBS from its fields, writes back the same bytes (this
 * catches what lies inside primitives: BIT STRING padding, INTEGER and BOOLEAN
 * forms, and so on).
 */
#ifndef PW_FUZZ_DERCHECK_H
#define PW_FUZZ_DERCHECK_H

#include <stdint.h>
#include <string.h>

#include <openssl/x509.h>

static inline int der_tree_strict(const uint8_t *p, size_t len, int depth)
{
	size_t off = 0;

	if (depth > 64)
		return 0;
	while (off < len) {
		uint8_t t = p[off], num = t & 0x1f;
		size_t vlen, hl, n, i;

		if (num == 0x1f || t == 0 || len - off < 2)
			return 0;
		if (p[off + 1] < 0x80) {
			vlen = p[off + 1];
			hl = 2;
		} else {
			n = p[off + 1] & 0x7f;
			if (n == 0 || n > 4 || len - off - 2 < n || p[off + 2] == 0)
				return 0;
			for (vlen = 0, i = 0; i < n; i++)
				vlen = vlen << 8 | p[off + 2 + i];
			if (vlen < 0x80)
				return 0;
			hl = 2 + n;
		}
		if (vlen > len - off - hl)
			return 0;
		if ((t & 0xc0) == 0 && ((num == 16 || num == 17) != !!(t & 0x20)))
			return 0;
		if ((t & 0x20) && !der_tree_strict(p + off + hl, vlen, depth + 1))
			return 0;
		off += hl + vlen;
	}
	return 1;
}

/* `x` was read from in[0, len) (all of it); is `in` DER? Marks x's TBS modified. */
static inline int cert_is_der(X509 *x, const uint8_t *in, size_t len)
{
	unsigned char *enc = NULL;
	int n, same;

	if (!der_tree_strict(in, len, 0))
		return 0;
	/* i2d_X509 returns the TBS as it was read unless it is marked modified */
	n = i2d_re_X509_tbs(x, &enc);
	OPENSSL_free(enc);
	if (n <= 0)
		return 0;
	enc = NULL;
	n = i2d_X509(x, &enc);
	same = n == (int)len && !memcmp(enc, in, len);
	OPENSSL_free(enc);
	return same;
}

#endif /* PW_FUZZ_DERCHECK_H */
