// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <string.h>

#include <openssl/evp.h>

#include "dedup.h"

void dedup_init(struct dedup *dd, uint64_t window_ns)
{
	memset(dd, 0, sizeof(*dd));
	dd->window_ns = window_ns;
}

static void report_key(const struct pw_chain_rec *r, uint8_t out[PW_HASH_LEN])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int n = 0;
	unsigned i;

	if (!c) {
		memset(out, 0, PW_HASH_LEN);
		return;
	}
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, r->exe, strnlen(r->exe, sizeof(r->exe)) + 1);
	EVP_DigestUpdate(c, r->host, strnlen(r->host, sizeof(r->host)) + 1);
	EVP_DigestUpdate(c, &r->gen, sizeof(r->gen));
	EVP_DigestUpdate(c, &r->side, 1);
	EVP_DigestUpdate(c, &r->done, 1);
	EVP_DigestUpdate(c, &r->ncerts, 1);
	for (i = 0; i < r->ncerts && i < PW_CHAIN_MAX; i++) {
		/* what the kernel could judge, not whether the daemon had its DER already */
		uint32_t f = r->certs[i].flags & (PW_CERT_UNJUDGED | PW_CERT_ID | PW_CERT_SPKI_HASHED);

		EVP_DigestUpdate(c, &r->certs[i].id, sizeof(r->certs[i].id));
		EVP_DigestUpdate(c, &r->certs[i].der_len, sizeof(r->certs[i].der_len));
		EVP_DigestUpdate(c, r->certs[i].spki_sha256, PW_HASH_LEN);
		EVP_DigestUpdate(c, &f, sizeof(f));
	}
	EVP_DigestFinal_ex(c, out, &n);
	EVP_MD_CTX_free(c);
}

bool dedup_admit(struct dedup *dd, const struct pw_chain_rec *r, uint64_t unix_ns)
{
	uint8_t key[PW_HASH_LEN];
	uint64_t h;
	size_t i, slot, free_slot = DEDUP_SLOTS;

	if (!dd->window_ns || r->verdict != PW_VERDICT_MISMATCH)
		return true;
	report_key(r, key);
	memcpy(&h, key, sizeof(h));
	for (i = 0; i < DEDUP_SLOTS; i++) {
		struct dedup_entry *e;

		slot = (h + i) % DEDUP_SLOTS;
		e = &dd->e[slot];
		if (!e->used) {
			if (free_slot == DEDUP_SLOTS)
				free_slot = slot;
			break;
		}
		if (memcmp(e->key, key, PW_HASH_LEN))
			continue;
		if (unix_ns - e->window_start_ns >= dd->window_ns)
			return true;	/* its window closed: dedup_flush summarises it */
		if (!e->repeats)
			e->first_repeat_ns = unix_ns;
		e->repeats++;
		e->last_repeat_ns = unix_ns;
		e->last = *r;
		return false;
	}
	if (free_slot == DEDUP_SLOTS)
		return true;	/* full: log it, merging nothing */
	dd->e[free_slot].used = true;
	memcpy(dd->e[free_slot].key, key, PW_HASH_LEN);
	dd->e[free_slot].window_start_ns = unix_ns;
	dd->e[free_slot].repeats = 0;
	return true;
}

void dedup_flush(struct dedup *dd, uint64_t unix_ns, bool all,
		 void (*emit)(void *ctx, const struct dedup_entry *e), void *ctx)
{
	size_t i, j;
	bool removed = false;

	for (i = 0; i < DEDUP_SLOTS; i++) {
		struct dedup_entry *e = &dd->e[i];

		if (!e->used || (!all && unix_ns - e->window_start_ns < dd->window_ns))
			continue;
		if (e->repeats)
			emit(ctx, e);
		e->used = false;
		removed = true;
	}
	if (!removed)
		return;
	/* open addressing: re-place what follows a hole so lookups still find it */
	for (i = 0; i < DEDUP_SLOTS; i++) {
		struct dedup_entry tmp;
		uint64_t h;

		if (!dd->e[i].used)
			continue;
		tmp = dd->e[i];
		dd->e[i].used = false;
		memcpy(&h, tmp.key, sizeof(h));
		for (j = 0; j < DEDUP_SLOTS; j++) {
			size_t s = (h + j) % DEDUP_SLOTS;

			if (!dd->e[s].used) {
				dd->e[s] = tmp;
				break;
			}
		}
	}
}
