// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certcache.h"
#include "siphash.h"
#include "json.h"
#include "log.h"

struct entry {
	struct cert_info ci;
	struct entry *hnext;			/* hash chain */
	struct entry *prev, *next;		/* LRU list, most recent first */
};

struct certcache {
	struct entry **buckets;
	size_t nbuckets, n, cap;
	struct entry *head, *tail;
	int known_fd;
	uint64_t key[2];
	EVP_MD *sha256;
	EVP_MD_CTX *mdctx;
	struct certcache_stats st;
};

void pin_format(const uint8_t hash[PW_HASH_LEN], char out[64])
{
	memcpy(out, "sha256/", 7);
	EVP_EncodeBlock((unsigned char *)out + 7, hash, PW_HASH_LEN);
}

void hex_format(const uint8_t hash[PW_HASH_LEN], char out[65])
{
	static const char hx[] = "0123456789abcdef";
	int i;

	for (i = 0; i < PW_HASH_LEN; i++) {
		out[2 * i] = hx[hash[i] >> 4];
		out[2 * i + 1] = hx[hash[i] & 15];
	}
	out[64] = 0;
}

struct certcache *certcache_new(size_t capacity, int known_fd, const uint64_t key[2])
{
	struct certcache *cc = calloc(1, sizeof(*cc));

	if (!cc)
		return NULL;
	cc->key[0] = key[0];
	cc->key[1] = key[1];
	cc->cap = capacity ? capacity : 4096;
	cc->nbuckets = 1;
	while (cc->nbuckets < cc->cap)
		cc->nbuckets <<= 1;
	cc->buckets = calloc(cc->nbuckets, sizeof(*cc->buckets));
	cc->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	cc->mdctx = EVP_MD_CTX_new();
	cc->known_fd = known_fd;
	if (!cc->buckets || !cc->sha256 || !cc->mdctx) {
		certcache_free(cc);
		return NULL;
	}
	return cc;
}

static void entry_free(struct entry *e)
{
	free(e->ci.json);
	free(e->ci.der);
	free(e);
}

void certcache_free(struct certcache *cc)
{
	struct entry *e, *next;

	if (!cc)
		return;
	for (e = cc->head; e; e = next) {
		next = e->next;
		entry_free(e);
	}
	free(cc->buckets);
	EVP_MD_free(cc->sha256);
	EVP_MD_CTX_free(cc->mdctx);
	free(cc);
}

static size_t bucket_of(const struct certcache *cc, uint64_t id)
{
	return id & (cc->nbuckets - 1);
}

static void lru_unlink(struct certcache *cc, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		cc->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		cc->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct certcache *cc, struct entry *e)
{
	e->next = cc->head;
	e->prev = NULL;
	if (cc->head)
		cc->head->prev = e;
	cc->head = e;
	if (!cc->tail)
		cc->tail = e;
}

static struct entry *lookup(struct certcache *cc, uint64_t id, uint32_t len)
{
	struct entry *e;

	for (e = cc->buckets[bucket_of(cc, id)]; e; e = e->hnext)
		if (e->ci.id == id && e->ci.der_len == len)
			return e;
	return NULL;
}

static struct pw_cert_id known_key(const struct cert_info *ci)
{
	struct pw_cert_id k = { .id = ci->id, .der_len = (uint32_t)ci->der_len };

	return k;
}

static void evict_one(struct certcache *cc)
{
	struct entry *e = cc->tail, **pp;

	if (!e)
		return;
	/* forget it in the kernel first, so the next sighting resends its DER */
	if (cc->known_fd >= 0) {
		struct pw_cert_id k = known_key(&e->ci);

		bpf_map_delete_elem(cc->known_fd, &k);
	}
	for (pp = &cc->buckets[bucket_of(cc, e->ci.id)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	}
	lru_unlink(cc, e);
	entry_free(e);
	cc->n--;
	cc->st.evicted++;
}

static int sha256(struct certcache *cc, const uint8_t *p, size_t n, uint8_t out[PW_HASH_LEN])
{
	unsigned int len = 0;

	return EVP_DigestInit_ex(cc->mdctx, cc->sha256, NULL) == 1 &&
	       EVP_DigestUpdate(cc->mdctx, p, n) == 1 &&
	       EVP_DigestFinal_ex(cc->mdctx, out, &len) == 1 && len == PW_HASH_LEN ? 0 : -1;
}

int cert_hashes(const uint8_t *der, size_t len, uint8_t cert[PW_HASH_LEN],
		uint8_t spki[PW_HASH_LEN])
{
	const unsigned char *p = der;
	unsigned char *sp = NULL;
	unsigned int n = 0;
	X509 *x;
	int sl, rc = -1;

	if (EVP_Digest(der, len, cert, &n, EVP_sha256(), NULL) != 1)
		return -1;
	x = d2i_X509(NULL, &p, len);
	if (!x)
		return 1;	/* cert hash only */
	sl = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &sp);
	if (sl > 0 && EVP_Digest(sp, sl, spki, &n, EVP_sha256(), NULL) == 1)
		rc = 0;
	OPENSSL_free(sp);
	X509_free(x);
	return rc;
}

static void name_member(struct json *j, const char *key, const X509_NAME *name)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n;

	if (!b) {
		json_null(j, key);
		return;
	}
	/* RFC 2253 order and escaping, but keep UTF-8 as it is: json_esc makes it safe */
	X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	n = BIO_get_mem_data(b, &p);
	json_strn(j, key, p ? p : "", n > 0 ? (size_t)n : 0);
	BIO_free(b);
}

static void time_member(struct json *j, const char *key, const ASN1_TIME *t)
{
	struct tm tm;
	char buf[32];

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
		json_null(j, key);
		return;
	}
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_str(j, key, buf);
}

static void sans_member(struct json *j, X509 *x)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int i;

	json_arr_begin(j, "sans");
	for (i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const ASN1_STRING *s = NULL;
		const char *prefix = NULL;

		switch (g->type) {
		case GEN_DNS: prefix = "DNS:"; s = g->d.dNSName; break;
		case GEN_EMAIL: prefix = "email:"; s = g->d.rfc822Name; break;
		case GEN_URI: prefix = "URI:"; s = g->d.uniformResourceIdentifier; break;
		case GEN_IPADD: {
			const unsigned char *a = g->d.iPAddress->data;
			int l = g->d.iPAddress->length;
			char ip[64];

			if (l == 4)
				snprintf(ip, sizeof(ip), "IP:%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
			else if (l == 16)
				snprintf(ip, sizeof(ip), "IP:%02x%02x:%02x%02x:%02x%02x:%02x%02x:"
					 "%02x%02x:%02x%02x:%02x%02x:%02x%02x", a[0], a[1], a[2],
					 a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11],
					 a[12], a[13], a[14], a[15]);
			else
				snprintf(ip, sizeof(ip), "IP:<%d bytes>", l);
			json_str(j, NULL, ip);
			continue;
		}
		default:
			continue;
		}
		/* the value is attacker-chosen bytes: keep its length, never trust a NUL */
		{
			size_t pl = strlen(prefix), vl = (size_t)ASN1_STRING_length(s);
			char *v = malloc(pl + vl + 1);

			if (v) {
				memcpy(v, prefix, pl);
				memcpy(v + pl, ASN1_STRING_get0_data(s), vl);
				json_strn(j, NULL, v, pl + vl);
				free(v);
			}
		}
	}
	json_arr_end(j);
	GENERAL_NAMES_free(gens);
}

int cert_describe(struct json *j, const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, len);

	if (!x) {
		json_str(j, "error", "OpenSSL cannot parse this certificate");
		return -1;
	}
	name_member(j, "subject", X509_get_subject_name(x));
	name_member(j, "issuer", X509_get_issuer_name(x));
	sans_member(j, x);
	time_member(j, "not_before", X509_get0_notBefore(x));
	time_member(j, "not_after", X509_get0_notAfter(x));
	X509_free(x);
	return 0;
}

void certcache_add(struct certcache *cc, const struct pw_cert_rec *rec, const uint8_t *der,
		   size_t len)
{
	uint8_t mine[PW_HASH_LEN], spki[PW_HASH_LEN];
	const unsigned char *p = der;
	struct entry *e;
	struct json j;
	X509 *x;

	if (lookup(cc, rec->id, len))
		return;
	e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->ci.id = rec->id;
	e->ci.der = malloc(len ? len : 1);
	if (e->ci.der) {
		memcpy(e->ci.der, der, len);
		e->ci.der_len = len;
	}
	/* check the kernel: the same name for these bytes, the same hashes */
	if (siphash_buf(cc->key[0], cc->key[1], der, len) != rec->id)
		e->ci.disagree = true;
	if (sha256(cc, der, len, mine))
		e->ci.disagree = true;
	memcpy(e->ci.cert_sha256, mine, PW_HASH_LEN);
	if ((rec->flags & PW_CERT_HASHED) && memcmp(mine, rec->cert_sha256, PW_HASH_LEN))
		e->ci.disagree = true;
	x = d2i_X509(NULL, &p, len);
	if (x) {
		unsigned char *sp = NULL;
		int sl = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &sp);

		if ((rec->flags & PW_CERT_SPKI_HASHED) &&
		    (sl <= 0 || sha256(cc, sp, sl, spki) || memcmp(spki, rec->spki_sha256, PW_HASH_LEN)))
			e->ci.disagree = true;
		OPENSSL_free(sp);
		X509_free(x);
	}
	if (e->ci.disagree) {
		cc->st.disagreements++;
		log_warnx("kernel and OpenSSL disagree on the hashes of a %zu-byte certificate", len);
	}
	json_init(&j);
	json_obj_begin(&j, NULL);
	if (cert_describe(&j, der, len) == 0)
		e->ci.parsed = true;
	else
		cc->st.parse_errors++;
	json_obj_end(&j);
	/* keep the members only: the caller adds hashes and verdict details around them */
	if (!j.oom && j.len >= 2) {
		j.buf[j.len - 1] = 0;
		e->ci.json = strdup(j.buf + 1);
	}
	json_free(&j);
	cc->st.explained++;

	while (cc->n >= cc->cap)
		evict_one(cc);
	e->hnext = cc->buckets[bucket_of(cc, e->ci.id)];
	cc->buckets[bucket_of(cc, e->ci.id)] = e;
	lru_push(cc, e);
	cc->n++;
	if (cc->known_fd >= 0) {
		struct pw_cert_id k = known_key(&e->ci);
		uint8_t one = 1;

		bpf_map_update_elem(cc->known_fd, &k, &one, BPF_ANY);
	}
}

const struct cert_info *certcache_get(struct certcache *cc, uint64_t id, uint32_t der_len)
{
	struct entry *e = lookup(cc, id, der_len);

	if (!e) {
		cc->st.misses++;
		return NULL;
	}
	cc->st.hits++;
	lru_unlink(cc, e);
	lru_push(cc, e);
	return &e->ci;
}

void certcache_stats(const struct certcache *cc, struct certcache_stats *st)
{
	*st = cc->st;
	st->entries = cc->n;
}
