/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Identical mismatch reports (same executable, host, chain, policy generation
 * and action) are logged once per window; the repeats are counted and
 * summarised in one tls_chain_repeated event when the window closes.
 */
#ifndef PW_DEDUP_H
#define PW_DEDUP_H

#include <stdbool.h>
#include <stdint.h>

#include "pinwarden.h"

#define DEDUP_SLOTS 1024

struct dedup_entry {
	uint8_t key[PW_HASH_LEN];	/* SHA-256 of what makes two reports identical */
	bool used;
	uint64_t window_start_ns;	/* unix ns of the report that was logged */
	uint64_t repeats;		/* identical reports since, not logged */
	uint64_t first_repeat_ns, last_repeat_ns;
	struct pw_chain_rec last;	/* the latest repeat, to describe them */
};

struct dedup {
	uint64_t window_ns;		/* 0: no merging */
	struct dedup_entry e[DEDUP_SLOTS];
};

void dedup_init(struct dedup *dd, uint64_t window_ns);

/* Log this mismatch now (true), or count it as a repeat of one logged within the window. */
bool dedup_admit(struct dedup *dd, const struct pw_chain_rec *r, uint64_t unix_ns);

/* Hand every window that has closed (all of them with `all`) and had repeats to `emit`. */
void dedup_flush(struct dedup *dd, uint64_t unix_ns, bool all,
		 void (*emit)(void *ctx, const struct dedup_entry *e), void *ctx);

#endif /* PW_DEDUP_H */
