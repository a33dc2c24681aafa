// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The DER walker (include/der.h) and SHA-256 (include/sha256.h) that the kernel side
 * runs, checked against OpenSSL on certificates made here with the X509 API.
 *
 * In userspace DER_AT is a plain read, so every input lives in a buffer of exactly its
 * length (malloc(len)): under -fsanitize=address any read past the end aborts the test.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "der.h"
#include "sha256.h"

/* ---- a small assertion set, in the spirit of the BPF selftests' ASSERT_* ---- */

static long failures, checks;

/*
 * The input being walked. The certificates are new on every run (fresh keys), so an
 * input that fails an assertion or crashes the walker is saved for a post-mortem.
 */
static const __u8 *cur_in;
static __u32 cur_len;

static void save_input(void)
{
	static int saved;
	char path[256];
	FILE *f;

	if (saved++ || !cur_in)
		return;
	snprintf(path, sizeof(path), "%s/test_der-input-%d.der",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	f = fopen(path, "w");
	if (f && fwrite(cur_in, 1, cur_len, f) == cur_len && !fclose(f))
		fprintf(stderr, "test_der: the failing input (%u bytes) is in %s\n", cur_len, path);
}

static void walking(const __u8 *in, __u32 len)
{
	cur_in = in;
	cur_len = len;
}

/* when built with the sanitizers: undefined behaviour fails the test, and a crash
 * leaves the input behind */
const char *__ubsan_default_options(void) __attribute__((used, visibility("default")));
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

extern void __asan_set_death_callback(void (*callback)(void)) __attribute__((weak));

static void fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	save_input();
	if (++failures > 30)
		return; /* the count at the end says how many more */
	fprintf(stderr, "%s:%d: FAIL: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

#define ASSERT_TRUE(cond, fmt, ...)                                                      \
	({                                                                               \
		int ___ok = !!(cond);                                                    \
		checks++;                                                                \
		if (!___ok)                                                              \
			fail(__FILE__, __LINE__, "%s: " fmt, #cond, ##__VA_ARGS__);      \
		___ok;                                                                   \
	})
#define ASSERT_EQ(got, want, fmt, ...)                                                   \
	({                                                                               \
		long long ___g = (got), ___w = (want);                                   \
		int ___ok = ___g == ___w;                                                \
		checks++;                                                                \
		if (!___ok)                                                              \
			fail(__FILE__, __LINE__, "%s = %lld, want %lld: " fmt, #got, ___g, ___w, \
			     ##__VA_ARGS__);                                             \
		___ok;                                                                   \
	})
#define ASSERT_MEMEQ(got, want, len, fmt, ...)                                           \
	({                                                                               \
		int ___ok = memcmp((got), (want), (len)) == 0;                           \
		checks++;                                                                \
		if (!___ok)                                                              \
			fail(__FILE__, __LINE__, "%s differs from %s: " fmt, #got, #want,  \
			     ##__VA_ARGS__);                                             \
		___ok;                                                                   \
	})

static void die(const char *what)
{
	fprintf(stderr, "test_der: %s failed\n", what);
	ERR_print_errors_fp(stderr);
	exit(2);
}

/* a copy in a buffer of exactly `len` bytes, so that ASan sees any read past it */
static __u8 *exact_copy(const __u8 *p, size_t len)
{
	__u8 *b = malloc(len); /* with glibc and ASan, malloc(0) is a valid empty block */

	if (!b && len)
		die("malloc");
	if (len)
		memcpy(b, p, len);
	return b;
}

/* der_cert_parse on an exact-length private copy, kept until the next call so that a
 * failing assertion can save it */
static int walk(const __u8 *p, size_t len, struct der_cert *dc)
{
	static __u8 *prev;
	__u8 *b = exact_copy(p, len);

	free(prev);
	prev = b;
	memset(dc, 0xee, sizeof(*dc));
	walking(b, (__u32)len);
	return der_cert_parse(b, (__u32)len, dc);
}

/* xorshift64*: the same "random" inputs on every run */
static __u64 rng_state = 0x9e3779b97f4a7c15ull;

static __u64 rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static __u32 rnd_below(__u32 n)
{
	return (__u32)(rnd() % n);
}

/* ---- certificates, made with the X509 API --------------------------------------- */

struct tcert {
	char name[64];
	X509 *x;
	__u8 *der;
	__u32 len;
	__u32 hot;	/* the walker reads [0, hot): where mutations matter most */
};

#define MAX_CERTS 32
static struct tcert certs[MAX_CERTS];
static int ncerts;

struct spec {
	const char *name;
	EVP_PKEY *key;		/* the certified key */
	EVP_PKEY *signer;	/* NULL: self-signed */
	X509_NAME *issuer;	/* the signer's name */
	int v1;			/* X.509 v1: no version field, no extensions */
	int nsans;		/* DNS names in subjectAltName */
	int san_len;		/* length of each of them (0: short names) */
	int last_san_extra;	/* bytes added to the last name (to hit a size) */
	int subject_ous;	/* extra OU attributes in the subject */
	int serial_len;		/* bytes of serial number (0: 8) */
};

static X509_NAME *make_name(const char *cn, int ous)
{
	X509_NAME *n = X509_NAME_new();
	char ou[64];
	int i;

	if (!n || !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const __u8 *)"pinwarden test",
					      -1, -1, 0))
		die("X509_NAME");
	for (i = 0; i < ous; i++) {
		snprintf(ou, sizeof(ou), "organizational unit %03d of a long subject name......", i);
		if (!X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC, (const __u8 *)ou, -1, -1, 0))
			die("X509_NAME OU");
	}
	if (!X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const __u8 *)cn, -1, -1, 0))
		die("X509_NAME CN");
	return n;
}

static void add_sans(X509 *x, const struct spec *s)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	char name[256];
	int i;

	for (i = 0; i < s->nsans; i++) {
		GENERAL_NAME *gn = GENERAL_NAME_new();
		ASN1_IA5STRING *str = ASN1_IA5STRING_new();
		int len = snprintf(name, sizeof(name), "host-%05d.pin.test", i);
		int want = s->san_len + (i == s->nsans - 1 ? s->last_san_extra : 0);

		/* pad the first label: "host-00001aaaa...a.pin.test" */
		if (want > len && want < (int)sizeof(name)) {
			memmove(name + 10 + (want - len), name + 10, len - 10 + 1);
			memset(name + 10, 'a', want - len);
			len = want;
		}
		if (!gn || !str || !ASN1_STRING_set(str, name, len))
			die("GENERAL_NAME");
		GENERAL_NAME_set0_value(gn, GEN_DNS, str);
		sk_GENERAL_NAME_push(gens, gn);
	}
	if (!X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT))
		die("X509_add1_ext_i2d");
	GENERAL_NAMES_free(gens);
}

static X509 *make_x509(const struct spec *s)
{
	X509 *x = X509_new();
	X509_NAME *subj = make_name(s->name, s->subject_ous);
	__u8 serial[256];
	int i, slen = s->serial_len ? s->serial_len : 8;
	BIGNUM *bn;

	if (!x || !X509_set_version(x, s->v1 ? X509_VERSION_1 : X509_VERSION_3))
		die("X509_new");
	for (i = 0; i < slen; i++)
		serial[i] = (__u8)(0x5a + 37 * i);
	serial[0] |= 0x80; /* top bit set: DER needs a leading zero byte */
	bn = BN_bin2bn(serial, slen, NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		die("serial");
	BN_free(bn);
	if (!X509_gmtime_adj(X509_getm_notBefore(x), -86400) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 30 * 86400))
		die("validity");
	if (!X509_set_subject_name(x, subj) ||
	    !X509_set_issuer_name(x, s->signer ? s->issuer : subj) || !X509_set_pubkey(x, s->key))
		die("X509_set_*");
	if (!s->v1 && s->nsans)
		add_sans(x, s);
	if (!X509_sign(x, s->signer ? s->signer : s->key, EVP_sha256()))
		die("X509_sign");
	X509_NAME_free(subj);
	return x;
}

static struct tcert *add_cert(const struct spec *s)
{
	struct tcert *c;
	__u8 *der = NULL;
	int len;

	if (ncerts == MAX_CERTS)
		die("too many certificates");
	c = &certs[ncerts++];
	snprintf(c->name, sizeof(c->name), "%s", s->name);
	c->x = make_x509(s);
	len = i2d_X509(c->x, &der);
	if (len <= 0)
		die("i2d_X509");
	c->der = exact_copy(der, len);
	c->len = len;
	OPENSSL_free(der);
	return c;
}

/* A certificate of exactly `target` bytes: a SAN list sized to fit, then the last
 * name padded. RSA signatures have a fixed length, so the size is reproducible. */
static void add_cert_of_size(struct spec s, __u32 target)
{
	struct tcert *c;
	int i;

	s.nsans = 1;
	s.san_len = 60;
	c = add_cert(&s);
	s.nsans = 1 + (int)(target - c->len) / (s.san_len + 2);
	for (i = 0; i < 4; i++) {
		X509_free(c->x);
		free(c->der);
		ncerts--;
		c = add_cert(&s);
		if (c->len == target)
			return;
		if (c->len > target)
			s.nsans--;
		else
			s.last_san_extra += target - c->len;
		if (s.last_san_extra > 60)
			s.nsans++, s.last_san_extra = 0;
	}
	fprintf(stderr, "test_der: could not make a %u-byte certificate (got %u)\n", target, c->len);
	exit(2);
}

static EVP_PKEY *rsa_4096;

static void make_certs(void)
{
	EVP_PKEY *ca = EVP_EC_gen("P-256"), *p256 = EVP_EC_gen("P-256"), *p384 = EVP_EC_gen("P-384");
	EVP_PKEY *rsa2048 = EVP_RSA_gen(2048), *rsa_ca = EVP_RSA_gen(2048);
	X509_NAME *ca_name = make_name("test CA", 0), *rsa_ca_name = make_name("test RSA CA", 0);

	rsa_4096 = EVP_RSA_gen(4096);
	if (!ca || !p256 || !p384 || !rsa2048 || !rsa_ca || !rsa_4096)
		die("key generation");

	add_cert(&(struct spec){ .name = "ec-p256 self-signed", .key = p256, .nsans = 1 });
	add_cert(&(struct spec){ .name = "ec-p256", .key = p256, .signer = ca, .issuer = ca_name,
				 .nsans = 1 });
	add_cert(&(struct spec){ .name = "ec-p384", .key = p384, .signer = ca, .issuer = ca_name,
				 .nsans = 1 });
	add_cert(&(struct spec){ .name = "rsa-2048", .key = rsa2048, .signer = ca,
				 .issuer = ca_name, .nsans = 1 });
	add_cert(&(struct spec){ .name = "rsa-4096 self-signed", .key = rsa_4096, .nsans = 1 });
	add_cert(&(struct spec){ .name = "x509 v1", .key = p256, .signer = ca, .issuer = ca_name,
				 .v1 = 1 });
	add_cert(&(struct spec){ .name = "x509 v1 rsa", .key = rsa2048, .signer = rsa_ca,
				 .issuer = rsa_ca_name, .v1 = 1 });
	add_cert(&(struct spec){ .name = "v3 without extensions", .key = p256, .signer = ca,
				 .issuer = ca_name });
	add_cert(&(struct spec){ .name = "50 SANs", .key = p256, .signer = ca, .issuer = ca_name,
				 .nsans = 50 });
	add_cert(&(struct spec){ .name = "500 SANs", .key = p384, .signer = ca, .issuer = ca_name,
				 .nsans = 500 });
	add_cert(&(struct spec){ .name = "long subject", .key = p256, .signer = ca,
				 .issuer = ca_name, .nsans = 1, .subject_ous = 40 });
	add_cert(&(struct spec){ .name = "serial 20 bytes", .key = p256, .signer = ca,
				 .issuer = ca_name, .nsans = 1, .serial_len = 20 });
	add_cert(&(struct spec){ .name = "serial 200 bytes", .key = p256, .signer = ca,
				 .issuer = ca_name, .nsans = 1, .serial_len = 200 });
	add_cert_of_size((struct spec){ .name = "20000 bytes", .key = p256, .signer = rsa_ca,
					.issuer = rsa_ca_name }, 20000);
	add_cert_of_size((struct spec){ .name = "PW_CERT_MAX bytes", .key = p256, .signer = rsa_ca,
					.issuer = rsa_ca_name }, PW_CERT_MAX);
	add_cert_of_size((struct spec){ .name = "PW_CERT_MAX + 1 bytes", .key = p256,
					.signer = rsa_ca, .issuer = rsa_ca_name }, PW_CERT_MAX + 1);

	EVP_PKEY_free(ca);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(rsa_ca);
	X509_NAME_free(ca_name);
	X509_NAME_free(rsa_ca_name);
}

/* ---- an independent walk with OpenSSL's ASN1_get_object -------------------------- */

struct tlv {
	__u32 off, hdr, len; /* len: the whole TLV */
};

static int ossl_tlv(const __u8 *der, __u32 end, __u32 off, struct tlv *t)
{
	const __u8 *p = der + off;
	long vlen;
	int tag, cls, r;

	r = ASN1_get_object(&p, &vlen, &tag, &cls, end - off);
	if (r & 0x80)
		return -1;
	t->off = off;
	t->hdr = (__u32)(p - (der + off));
	t->len = t->hdr + (__u32)vlen;
	return 0;
}

/*
 * The TLVs the walker has to read: [0] the Certificate, [1] tbsCertificate, then the
 * tbsCertificate's children up to the SPKI (version if present, serial, signature,
 * issuer, validity, subject, spki). Returns how many.
 */
static int tbs_fields(const __u8 *der, __u32 len, struct tlv *f)
{
	__u32 pos, end;
	int n = 0, i, want;

	if (ossl_tlv(der, len, 0, &f[n++]) || ossl_tlv(der, len, f[0].hdr, &f[n++]))
		die("ASN1_get_object");
	pos = f[1].off + f[1].hdr;
	end = f[1].off + f[1].len;
	want = der[pos] == 0xa0 ? 7 : 6;
	for (i = 0; i < want; i++) {
		if (ossl_tlv(der, end, pos, &f[n]))
			die("ASN1_get_object");
		pos += f[n++].len;
	}
	return n;
}

/* ---- the accepted certificates: every field where OpenSSL has it ------------------ */

static void check_fields(const struct tcert *c, const __u8 *der, const struct der_cert *dc,
			 X509 *x)
{
	__u8 *spki = NULL, *subj = NULL, *iss = NULL, *tbs = NULL;
	int spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);
	int subj_len = i2d_X509_NAME(X509_get_subject_name(x), &subj);
	int iss_len = i2d_X509_NAME(X509_get_issuer_name(x), &iss);
	int tbs_len = i2d_re_X509_tbs(x, &tbs);

	if (spki_len <= 0 || subj_len <= 0 || iss_len <= 0 || tbs_len <= 0)
		die("i2d");
	if (ASSERT_EQ(dc->spki_len, spki_len, "%s", c->name))
		ASSERT_MEMEQ(der + dc->spki_off, spki, spki_len, "%s: SPKI", c->name);
	if (ASSERT_EQ(dc->subject_len, subj_len, "%s", c->name))
		ASSERT_MEMEQ(der + dc->subject_off, subj, subj_len, "%s: subject", c->name);
	if (ASSERT_EQ(dc->issuer_len, iss_len, "%s", c->name))
		ASSERT_MEMEQ(der + dc->issuer_off, iss, iss_len, "%s: issuer", c->name);
	if (ASSERT_EQ(dc->tbs_len, tbs_len, "%s", c->name))
		ASSERT_MEMEQ(der + dc->tbs_off, tbs, tbs_len, "%s: tbsCertificate", c->name);
	OPENSSL_free(spki);
	OPENSSL_free(subj);
	OPENSSL_free(iss);
	OPENSSL_free(tbs);
}

static void test_valid(void)
{
	int i;

	for (i = 0; i < ncerts; i++) {
		struct tcert *c = &certs[i];
		struct der_cert dc;
		__u8 want[SHA256_DIGEST], got[SHA256_DIGEST];
		struct sha256_state st;
		unsigned int dlen;
		const __u8 *p = c->der;
		X509 *x2;
		int r = walk(c->der, c->len, &dc);

		c->hot = r == DER_OK ? dc.spki_off + 8 : 64;
		if (c->len > PW_CERT_MAX) {
			ASSERT_EQ(r, DER_ERR_TOO_BIG, "%s (%u bytes)", c->name, c->len);
			printf("  ok  %-24s %5u bytes: refused, too big for the kernel's buffer\n",
			       c->name, c->len);
			continue;
		}
		if (!ASSERT_EQ(r, DER_OK, "%s (%u bytes)", c->name, c->len))
			continue;
		/* the certificate as made, and as OpenSSL parses it back */
		check_fields(c, c->der, &dc, c->x);
		x2 = d2i_X509(NULL, &p, c->len);
		if (!x2)
			die("d2i_X509");
		check_fields(c, c->der, &dc, x2);
		X509_free(x2);

		SHA256(c->der + dc.spki_off, dc.spki_len, want);
		{
			__u8 *spki = exact_copy(c->der + dc.spki_off, dc.spki_len);

			sha256_buf(&st, spki, dc.spki_len, got);
			free(spki);
		}
		ASSERT_MEMEQ(got, want, SHA256_DIGEST, "%s: SPKI SHA-256", c->name);
		if (!X509_digest(c->x, EVP_sha256(), want, &dlen) || dlen != SHA256_DIGEST)
			die("X509_digest");
		sha256_buf(&st, c->der, c->len, got);
		ASSERT_MEMEQ(got, want, SHA256_DIGEST, "%s: certificate SHA-256", c->name);
		printf("  ok  %-24s %5u bytes: spki %u+%u, subject %u+%u\n", c->name, c->len,
		       dc.spki_off, dc.spki_len, dc.subject_off, dc.subject_len);
	}
}

/*
 * The walk over a tbsCertificate alone (what OpenSSL keeps of a parsed certificate,
 * hashed for a trust anchor the peer did not send) finds the same fields as the
 * walk over the whole certificate, and refuses anything but exactly one TBS.
 */
static void test_tbs(void)
{
	int i, n = 0;

	for (i = 0; i < ncerts; i++) {
		struct tcert *c = &certs[i];
		struct der_cert dc, tc;
		__u8 *tbs;

		if (c->len > PW_CERT_MAX || walk(c->der, c->len, &dc) != DER_OK)
			continue;
		tbs = exact_copy(c->der + dc.tbs_off, dc.tbs_len);
		if (!ASSERT_EQ(der_tbs_parse(tbs, dc.tbs_len, &tc), DER_OK, "%s: TBS alone", c->name)) {
			free(tbs);
			continue;
		}
		ASSERT_EQ(tc.tbs_off, 0, "%s", c->name);
		ASSERT_EQ(tc.tbs_len, dc.tbs_len, "%s", c->name);
		ASSERT_EQ(tc.spki_off + dc.tbs_off, dc.spki_off, "%s: SPKI offset", c->name);
		ASSERT_EQ(tc.spki_len, dc.spki_len, "%s: SPKI length", c->name);
		ASSERT_EQ(tc.subject_off + dc.tbs_off, dc.subject_off, "%s: subject offset", c->name);
		ASSERT_EQ(tc.issuer_off + dc.tbs_off, dc.issuer_off, "%s: issuer offset", c->name);
		/* one byte short, the whole certificate, a byte more: refused */
		ASSERT_TRUE(der_tbs_parse(tbs, dc.tbs_len - 1, &tc) != DER_OK, "%s: truncated", c->name);
		free(tbs);
		ASSERT_TRUE(der_tbs_parse(c->der, c->len, &tc) != DER_OK, "%s: whole certificate",
			    c->name);
		tbs = malloc(dc.tbs_len + 1);
		if (!tbs)
			die("malloc");
		memcpy(tbs, c->der + dc.tbs_off, dc.tbs_len);
		tbs[dc.tbs_len] = 0;
		ASSERT_EQ(der_tbs_parse(tbs, dc.tbs_len + 1, &tc), DER_ERR_TRAILING, "%s: trailing",
			  c->name);
		free(tbs);
		n++;
	}
	printf("  ok  the TBS-only walk on %d certificates: same fields, exact length only\n", n);
	ASSERT_TRUE(n > 0, "certificates walked as TBS");
}

/*
 * The kernel side drives der_walk_step from bpf_loop, one step per callback: the
 * walk ends within DER_WALK_STEPS steps, and its result (found or error) sticks.
 */
static void test_steps(void)
{
	int i;

	for (i = 0; i < ncerts; i++) {
		struct tcert *c = &certs[i];
		__u32 cut[] = { c->len, c->len / 2, 1 }, k;

		for (k = 0; k < sizeof(cut) / sizeof(cut[0]); k++) {
			__u8 *b = exact_copy(c->der, cut[k]);
			struct der_cert dc;
			struct der_walk w;
			int r = 0, want = walk(c->der, cut[k], &dc), steps = 0;

			walking(b, cut[k]);
			der_walk_init(&w, cut[k]);
			while (r == 0 && steps < DER_WALK_STEPS + 2) {
				r = der_walk_step(b, &w);
				steps++;
			}
			ASSERT_TRUE(steps <= DER_WALK_STEPS, "%s/%u: %d steps", c->name, cut[k], steps);
			if (want == DER_OK) {
				ASSERT_EQ(r, 1, "%s/%u", c->name, cut[k]);
				ASSERT_MEMEQ(&w.dc, &dc, sizeof(dc), "%s/%u", c->name, cut[k]);
			} else {
				ASSERT_EQ(r, want, "%s/%u", c->name, cut[k]);
			}
			ASSERT_EQ(der_walk_step(b, &w), r, "%s/%u: the result sticks", c->name, cut[k]);
			walking(NULL, 0);
			free(b);
		}
	}
	printf("  ok  der_walk_step: found or failed within %d steps, and it sticks\n",
	       DER_WALK_STEPS);
}

/* ---- refusals -------------------------------------------------------------------- */

static void test_prefixes(void)
{
	long n = 0;
	int i;

	for (i = 0; i < ncerts; i++) {
		struct tcert *c = &certs[i];
		struct der_cert dc;
		__u32 l;

		for (l = 0; l < c->len; l++, n++)
			ASSERT_EQ(walk(c->der, l, &dc), DER_ERR_TRUNCATED, "%s cut to %u of %u bytes",
				  c->name, l, c->len);
	}
	printf("  ok  %ld proper prefixes refused\n", n);
}

static void test_trailing(void)
{
	static const __u32 extra[] = { 1, 2, 3, 127, 128, 1000 };
	int i, k;

	for (i = 0; i < ncerts; i++) {
		struct tcert *c = &certs[i];

		for (k = 0; k < (int)(sizeof(extra) / sizeof(extra[0])); k++) {
			__u32 len = c->len + extra[k];
			__u8 *b = calloc(1, len);
			struct der_cert dc;

			if (!b)
				die("calloc");
			memcpy(b, c->der, c->len);
			ASSERT_EQ(walk(b, len, &dc),
				  len > PW_CERT_MAX ? DER_ERR_TOO_BIG : DER_ERR_TRAILING,
				  "%s + %u zero bytes", c->name, extra[k]);
			memset(b + c->len, 0x30, extra[k]);
			ASSERT_TRUE(walk(b, len, &dc) != DER_OK, "%s + %u 0x30 bytes", c->name,
				    extra[k]);
			free(b);
		}
	}
	/* two certificates back to back are not one */
	{
		struct tcert *a = &certs[0], *b = &certs[1];
		__u8 *two = malloc(a->len + b->len);
		struct der_cert dc;

		if (!two)
			die("malloc");
		memcpy(two, a->der, a->len);
		memcpy(two + a->len, b->der, b->len);
		ASSERT_EQ(walk(two, a->len + b->len, &dc), DER_ERR_TRAILING, "two certificates");
		free(two);
	}
	printf("  ok  trailing bytes refused\n");
}

enum len_form {
	LF_MIN,		/* DER */
	LF_INDEF,	/* 0x80 ... 00 00: BER indefinite length */
	LF_LONG4,	/* 0x84 + 4 bytes */
	LF_PAD,		/* long form with a leading zero byte */
	LF_LONG_SHORT,	/* 0x81 nn for nn < 0x80 */
	LF_COUNT,
};

static const char *const len_form_name[] = { "minimal", "indefinite", "4-byte", "leading zero",
					     "long form of a short length" };

static __u32 put_len(__u8 *o, __u32 vlen, enum len_form f)
{
	__u32 n = vlen < 0x80 ? 0 : vlen < 0x100 ? 1 : vlen < 0x10000 ? 2 : 3, i, k = 0;

	switch (f) {
	case LF_MIN:
		if (!n) {
			o[0] = (__u8)vlen;
			return 1;
		}
		break;
	case LF_INDEF:
		o[0] = 0x80;
		return 1;
	case LF_LONG4:
		n = 4;
		break;
	case LF_PAD:
		o[k++] = (__u8)(0x80 | (n + 1 + !n));
		o[k++] = 0;
		n = n ? n : 1;
		for (i = 0; i < n; i++)
			o[k++] = (__u8)(vlen >> (8 * (n - 1 - i)));
		return k;
	case LF_LONG_SHORT:
		n = 1;
		break;
	default:
		abort();
	}
	o[k++] = (__u8)(0x80 | n);
	for (i = 0; i < n; i++)
		o[k++] = (__u8)(vlen >> (8 * (n - 1 - i)));
	return k;
}

/*
 * Re-encode the TLV at der[off] into o, giving the TLV `depth` levels down the child
 * path `path` the length form `f` and every enclosing TLV its new minimal length.
 * Returns the bytes written.
 */
static __u32 reencode(const __u8 *der, __u32 end, __u32 off, const int *path, int depth,
		      enum len_form f, __u8 *o)
{
	struct tlv t, child;
	__u8 body[PW_CERT_MAX * 2];
	__u32 blen = 0, pos, k;
	int i;

	if (ossl_tlv(der, end, off, &t))
		die("ASN1_get_object");
	if (depth == 0) {
		memcpy(body, der + off + t.hdr, t.len - t.hdr);
		blen = t.len - t.hdr;
	} else {
		for (pos = off + t.hdr, i = 0; pos < off + t.len; pos += child.len, i++) {
			if (ossl_tlv(der, off + t.len, pos, &child))
				die("ASN1_get_object");
			if (i == path[0])
				blen += reencode(der, off + t.len, pos, path + 1, depth - 1, f,
						 body + blen);
			else {
				memcpy(body + blen, der + pos, child.len);
				blen += child.len;
			}
		}
	}
	o[0] = der[off];
	k = 1 + put_len(o + 1, blen, depth == 0 ? f : LF_MIN);
	memcpy(o + k, body, blen);
	k += blen;
	if (depth == 0 && f == LF_INDEF) {
		o[k++] = 0;
		o[k++] = 0;
	}
	return k;
}

static void test_lengths(void)
{
	static __u8 out[PW_CERT_MAX * 2];
	long tried = 0, ossl_took = 0;
	int i, field, f;

	for (i = 0; i < ncerts; i++) {
		struct tcert *c = &certs[i];
		struct tlv fields[9];
		int nf;

		if (c->len > PW_CERT_MAX)
			continue;
		nf = tbs_fields(c->der, c->len, fields);
		for (field = 0; field < nf; field++) {
			/* path from the Certificate: itself, its child 0, then tbs child k */
			int path[2] = { 0, field - 2 }, depth = field < 2 ? field : 2;
			__u32 vlen = fields[field].len - fields[field].hdr;

			for (f = LF_MIN; f < LF_COUNT; f++) {
				struct der_cert dc;
				const __u8 *p = out;
				__u32 len;
				X509 *x;
				int r;

				if (f == LF_LONG_SHORT && vlen >= 0x80)
					continue;
				len = reencode(c->der, c->len, 0, path, depth, f, out);
				r = walk(out, len, &dc);
				if (f == LF_MIN) {
					/* the re-encoder itself must be faithful */
					ASSERT_EQ(len, c->len, "%s field %d", c->name, field);
					ASSERT_MEMEQ(out, c->der, c->len, "%s field %d", c->name, field);
					continue;
				}
				tried++;
				ASSERT_EQ(r, len > PW_CERT_MAX ? DER_ERR_TOO_BIG : DER_ERR_LENGTH,
					  "%s: %s length on field %d", c->name, len_form_name[f],
					  field);
				x = d2i_X509(NULL, &p, len);
				ossl_took += x && p == out + len;
				X509_free(x);
			}
		}
	}
	printf("  ok  %ld non-DER lengths refused (OpenSSL's d2i_X509 accepts %ld of them)\n",
	       tried, ossl_took);
}

static void test_tags(void)
{
	long n = 0;
	int i, field, t;

	for (i = 0; i < ncerts; i++) {
		struct tcert *c = &certs[i];
		struct tlv fields[9];
		__u8 *b;
		int nf;

		if (c->len > PW_CERT_MAX)
			continue;
		nf = tbs_fields(c->der, c->len, fields);
		b = exact_copy(c->der, c->len);
		walking(b, c->len);
		for (field = 0; field < nf; field++) {
			__u32 off = fields[field].off;
			__u8 orig = c->der[off];
			struct der_cert dc;

			for (t = 0; t < 256; t++) {
				if (t == orig)
					continue;
				b[off] = (__u8)t;
				n++;
				/* even a [0] turned INTEGER fails: the serial then sits where
				 * the signature SEQUENCE should */
				ASSERT_EQ(der_cert_parse(b, c->len, &dc), DER_ERR_TAG,
					  "%s: tag 0x%02x instead of 0x%02x at %u (field %d)",
					  c->name, t, orig, off, field);
			}
			b[off] = orig;
		}
		walking(NULL, 0);
		free(b);
	}
	printf("  ok  %ld wrong tags refused\n", n);
}

/*
 * Tiny inputs, where every state of the walk meets the end of the buffer: an empty or
 * short tbsCertificate, lengths that point exactly at the end, a lone [0]. Exhaustive
 * over a few shapes, then random ones built from the bytes that matter.
 */
static void test_tiny(void)
{
	static const __u8 vocab[] = { 0x00, 0x01, 0x02, 0x03, 0x30, 0x7f, 0x80, 0x81, 0x82, 0xa0 };
	static const __u8 tbs_lens[] = { 0, 1, 2, 3, 4, 5, 0x80, 0x81, 0x82, 0x83, 0x84 };
	__u8 in[40];
	long n = 0, accepted = 0, round;
	__u32 t, k, combo, ncombo, j;

	for (t = 0; t < sizeof(tbs_lens); t++) {
		for (k = 0, ncombo = 1; k <= 4; k++, ncombo *= sizeof(vocab)) {
			for (combo = 0; combo < ncombo; combo++, n++) {
				struct der_cert dc;
				__u32 c = combo;

				in[0] = DER_TAG_SEQUENCE;
				in[1] = (__u8)(2 + k);
				in[2] = DER_TAG_SEQUENCE;
				in[3] = tbs_lens[t];
				for (j = 0; j < k; j++, c /= sizeof(vocab))
					in[4 + j] = vocab[c % sizeof(vocab)];
				/* six TLVs do not fit in four bytes */
				ASSERT_TRUE(walk(in, 4 + k, &dc) != DER_OK, "tiny input %u/%u/%u", t,
					    k, combo);
			}
		}
	}
	for (round = 0; round < 300000; round++, n++) {
		__u32 len = 4, i, f, tbs_end, spki_at = 0, intact = 1;
		struct der_cert dc;
		int r;

		/* a skeleton certificate with tiny fields, then perhaps a byte changed */
		for (f = rnd_below(2) ? 0 : 1; f < 7; f++) {
			__u32 vlen = rnd_below(3);

			spki_at = len;
			in[len++] = f == 0 ? DER_TAG_CTX0 : f == 1 ? DER_TAG_INTEGER : DER_TAG_SEQUENCE;
			in[len++] = (__u8)vlen;
			for (i = 0; i < vlen; i++)
				in[len++] = vocab[rnd_below(sizeof(vocab))];
		}
		tbs_end = len;
		for (i = rnd_below(4); i > 0; i--)
			in[len++] = vocab[rnd_below(sizeof(vocab))]; /* signatureAlgorithm... */
		in[0] = DER_TAG_SEQUENCE;
		in[1] = (__u8)(len - 2);
		in[2] = DER_TAG_SEQUENCE;
		in[3] = (__u8)(tbs_end - 4);
		if (rnd_below(2))
			intact = 0, in[rnd_below(len)] = rnd_below(2) ? vocab[rnd_below(sizeof(vocab))] : (__u8)rnd();
		if (!rnd_below(8))
			intact = 0, len = rnd_below(len + 1);
		r = walk(in, len, &dc);
		if (intact && ASSERT_EQ(r, DER_OK, "tiny certificate %ld", round))
			ASSERT_EQ(dc.spki_off, spki_at, "tiny certificate %ld", round);
		if (r == DER_OK) {
			accepted++;
			ASSERT_TRUE(dc.spki_off + dc.spki_len <= dc.tbs_off + dc.tbs_len &&
					    dc.tbs_off + dc.tbs_len <= len && in[dc.spki_off] == 0x30,
				    "tiny random input %ld", round);
		}
	}
	printf("  ok  %ld tiny inputs (%ld random ones accepted, all in bounds)\n", n, accepted);
}

/* ---- random mutations ------------------------------------------------------------ */

static int verbose;

static void hexdump_around(const char *what, const __u8 *p, __u32 len, __u32 at)
{
	__u32 i, from = at > 16 ? at - 16 : 0, to = at + 16 < len ? at + 16 : len;

	fprintf(stderr, "    %s %u..%u:", what, from, to);
	for (i = from; i < to; i++)
		fprintf(stderr, "%s%02x", i == at ? " [" : " ", p[i]);
	fputc('\n', stderr);
}

struct mutant_stats {
	long accepted;		/* by the walker */
	long both;		/* by the walker and by d2i_X509 */
	long canonical;		/* ... and OpenSSL re-encodes the input byte for byte */
	long spki_differs;	/* both accept, the SPKI bytes differ from OpenSSL's re-encoding */
	long refused_canonical;	/* the walker refuses what OpenSSL re-encodes byte for byte */
};

/* d2i_X509, then 1 if re-encoding without any cached tbsCertificate gives `b` back */
static X509 *ossl_parse(const __u8 *b, __u32 len, int *canonical)
{
	const __u8 *p = b;
	X509 *x = d2i_X509(NULL, &p, len);
	__u8 *re = NULL;
	int re_len;

	*canonical = 0;
	if (!x || p != b + len) {
		X509_free(x);
		return NULL;
	}
	/* i2d_re_X509_tbs drops the cached encoding, so that i2d_X509 encodes afresh */
	if (i2d_re_X509_tbs(x, NULL) > 0 && (re_len = i2d_X509(x, &re)) == (int)len)
		*canonical = !memcmp(re, b, len);
	OPENSSL_free(re);
	return x;
}

static void check_mutant(const struct tcert *c, long round, const __u8 *b, __u32 len,
			 __u32 first, struct mutant_stats *ms)
{
	struct der_cert dc;
	__u8 *spki = NULL;
	int r, spki_len, canonical;
	X509 *x;

	r = der_cert_parse(b, len, &dc);
	ASSERT_TRUE(r <= DER_OK && r >= DER_ERR_TOO_BIG, "%s mutant %ld: r = %d", c->name, round,
		    r);
	if (r == DER_OK) {
		__u32 tbs_end = dc.tbs_off + dc.tbs_len;

		ms->accepted++;
		/* whatever the walker returns lies inside the buffer, in order */
		if (!ASSERT_TRUE(tbs_end <= len && dc.tbs_off < tbs_end &&
					 dc.tbs_off <= dc.issuer_off &&
					 dc.issuer_off + dc.issuer_len <= dc.subject_off &&
					 dc.subject_off + dc.subject_len <= dc.spki_off &&
					 dc.spki_off + dc.spki_len <= tbs_end && dc.spki_len >= 2 &&
					 b[dc.spki_off] == DER_TAG_SEQUENCE,
				 "%s mutant %ld (%u bytes): tbs %u+%u spki %u+%u", c->name, round,
				 len, dc.tbs_off, dc.tbs_len, dc.spki_off, dc.spki_len))
			return;
	}
	x = ossl_parse(b, len, &canonical);
	if (!x)
		return;
	if (r != DER_OK) {
		/*
		 * Stricter than OpenSSL is safe (no SPKI: the chain is unjudgeable), but
		 * worth a look. Seen: an issuer or subject Name tagged 0x10 (SEQUENCE with
		 * the constructed bit clear), which OpenSSL 3.0 takes and re-emits as is.
		 */
		if (canonical && len <= PW_CERT_MAX && ++ms->refused_canonical <= 3 && verbose) {
			fprintf(stderr, "  note: %s mutant %ld: refused (%d), OpenSSL takes it\n",
				c->name, round, r);
			hexdump_around("mutant", b, len, first);
		}
		X509_free(x);
		return;
	}
	ms->both++;
	ms->canonical += canonical;
	spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);
	if (canonical) {
		if (ASSERT_EQ(dc.spki_len, spki_len, "%s mutant %ld", c->name, round))
			ASSERT_MEMEQ(b + dc.spki_off, spki, spki_len, "%s mutant %ld", c->name,
				     round);
	} else if (spki_len > 0 && (spki_len != (int)dc.spki_len ||
				    memcmp(spki, b + dc.spki_off, spki_len))) {
		/*
		 * Seen: a BIT STRING with non-zero unused bits, which OpenSSL normalizes.
		 * The walker hashes the bytes as sent: a mismatch, never a false match.
		 */
		if (++ms->spki_differs <= 3 && verbose) {
			__u32 at = 0;

			while ((int)at < spki_len && at < dc.spki_len && spki[at] == b[dc.spki_off + at])
				at++;
			fprintf(stderr, "  note: %s mutant %ld: SPKI differs from OpenSSL's at +%u\n",
				c->name, round, at);
			hexdump_around("walker ", b, len, dc.spki_off + at);
			hexdump_around("openssl", spki, spki_len, at);
		}
	}
	OPENSSL_free(spki);
	X509_free(x);
}

static void test_mutations(long rounds)
{
	static const __u8 special[] = { 0x00, 0x01, 0x02, 0x03, 0x30, 0x7f, 0x80, 0x81,
					0x82, 0x83, 0x84, 0xa0, 0xa3, 0xfe, 0xff };
	struct mutant_stats ms = { 0 };
	long round;

	for (round = 0; round < rounds; round++) {
		const struct tcert *c = &certs[round % ncerts];
		__u32 len = c->len, first = len, k, nmut = 1 + rnd_below(4);
		__u8 *b;

		switch (rnd_below(16)) {
		case 0:
			len = rnd_below(len); /* and truncated */
			break;
		case 1:
			len += 1 + rnd_below(4); /* and extended */
			break;
		}
		b = malloc(len); /* exactly: ASan catches any read past it */
		if (!b)
			die("malloc");
		memcpy(b, c->der, len < c->len ? len : c->len);
		for (k = c->len; k < len; k++)
			b[k] = (__u8)rnd();
		for (k = 0; k < nmut && len; k++) {
			/* three in four hit what the walker reads: the headers up to the SPKI */
			__u32 at = rnd_below(4) ? rnd_below(c->hot < len ? c->hot : len) : rnd_below(len);

			switch (rnd_below(3)) {
			case 0:
				b[at] ^= (__u8)(1 << rnd_below(8));
				break;
			case 1:
				b[at] = (__u8)rnd();
				break;
			default:
				b[at] = special[rnd_below(sizeof(special))];
			}
			first = at < first ? at : first;
		}
		walking(b, len);
		check_mutant(c, round, b, len, first, &ms);
		walking(NULL, 0);
		free(b);
	}
	ERR_clear_error();
	printf("  ok  %ld mutants: the walker accepted %ld, OpenSSL too %ld (%ld as canonical DER, "
	       "SPKI as OpenSSL's there); elsewhere the SPKI bytes differ from OpenSSL's "
	       "re-encoding in %ld; the walker refused %ld that OpenSSL re-encodes byte for byte\n",
	       rounds, ms.accepted, ms.both, ms.canonical, ms.spki_differs, ms.refused_canonical);
}

/* ---- SHA-256 --------------------------------------------------------------------- */

static void test_sha256(void)
{
	static const __u8 abc_digest[SHA256_DIGEST] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
		0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
		0xf2, 0x00, 0x15, 0xad,
	};
	static __u8 data[PW_CERT_MAX];
	struct sha256_state st;
	__u8 got[SHA256_DIGEST], want[SHA256_DIGEST];
	__u32 len, i;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (__u8)rnd();
	for (len = 0; len <= 1001; len++) {
		__u32 l = len <= 1000 ? len : PW_CERT_MAX;
		__u8 *b = exact_copy(data, l);

		memset(&st, 0xa5, sizeof(st)); /* no reliance on a zeroed state */
		sha256_buf(&st, b, l, got);
		SHA256(b, l, want);
		ASSERT_MEMEQ(got, want, SHA256_DIGEST, "SHA-256 of %u bytes", l);
		free(b);
	}
	sha256_buf(&st, (const __u8 *)"abc", 3, got);
	ASSERT_MEMEQ(got, abc_digest, SHA256_DIGEST, "SHA-256(\"abc\") (FIPS 180-2 B.1)");
	/* the small-frame compression (trust anchors, under the verdict): the same state */
	for (i = 0; i < 200; i++) {
		struct sha256_state a, m;

		sha256_init(&a);
		a.h[i % 8] ^= (__u32)rnd();	/* any chaining value, not only the first */
		m = a;
		sha256_compress(&a, &data[(i * 37) % (PW_CERT_MAX - SHA256_BLOCK)]);
		sha256_compress_mem(&m, &data[(i * 37) % (PW_CERT_MAX - SHA256_BLOCK)]);
		ASSERT_MEMEQ(a.h, m.h, sizeof(a.h), "sha256_compress_mem, block %u", i);
	}
	printf("  ok  SHA-256 of 0..1000 and %d bytes; 200 blocks compressed both ways\n",
	       PW_CERT_MAX);
}

#ifdef __GLIBC__
/*
 * OpenSSL's own allocations bypass ASan's allocator: d2i_X509 makes hundreds of small
 * allocations per call, which made the mutation test three times slower, and OpenSSL
 * is not what this test checks. Every buffer the walker reads still comes from malloc.
 */
extern void *__libc_malloc(size_t n);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static void *ossl_malloc(size_t n, const char *file, int line)
{
	return __libc_malloc(n);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
	return __libc_realloc(p, n);
}

static void ossl_free(void *p, const char *file, int line)
{
	__libc_free(p);
}
#endif

/* test_der [-v] [ROUNDS]: -v shows examples of where the walker and OpenSSL differ */
int main(int argc, char **argv)
{
	long rounds = 100000;
	clock_t t0 = clock();
	int i;

	if (__asan_set_death_callback)
		__asan_set_death_callback(save_input);
#ifdef __GLIBC__
	/* refused (harmlessly) if OpenSSL has allocated already */
	CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free);
#endif
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-v"))
			verbose = 1;
		else
			rounds = atol(argv[i]);
	}

	make_certs();
	printf("test_der: %d certificates made in %.1f s\n", ncerts,
	       (double)(clock() - t0) / CLOCKS_PER_SEC);
	test_valid();
	test_tbs();
	test_steps();
	test_prefixes();
	test_trailing();
	test_lengths();
	test_tags();
	test_tiny();
	test_mutations(rounds);
	test_sha256();

	for (i = 0; i < ncerts; i++) {
		X509_free(certs[i].x);
		free(certs[i].der);
	}
	EVP_PKEY_free(rsa_4096);
	printf("test_der: %ld checks, %ld failed, %.1f s\n", checks, failures,
	       (double)(clock() - t0) / CLOCKS_PER_SEC);
	return failures ? 1 : 0;
}
