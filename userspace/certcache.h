/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Certificates explained once: each distinct certificate the kernel sends is
 * re-hashed and parsed with OpenSSL, its description kept by its SHA-256, and
 * the kernel told (known_certs) not to send its DER again.
 */
#ifndef PW_CERTCACHE_H
#define PW_CERTCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pinwarden.h"

struct cert_info {
	uint64_t id;				/* keyed SipHash of the DER: with der_len, the key */
	uint8_t cert_sha256[PW_HASH_LEN];	/* computed here, from the DER */
	bool parsed;				/* OpenSSL could parse it */
	bool disagree;				/* our hashes differ from the kernel's */
	char *json;		/* {"subject":..,"issuer":..,"sans":[..],"not_after":..} members, no braces */
	uint8_t *der;
	size_t der_len;
};

struct certcache_stats {
	uint64_t explained;	/* distinct certificates parsed */
	uint64_t hits, misses;
	uint64_t disagreements;	/* kernel and userspace hashes differ */
	uint64_t parse_errors;	/* OpenSSL could not parse */
	uint64_t evicted;
	uint64_t entries;
};

struct certcache;

/* known_fd: the kernel's known_certs map (or -1); key: the kernel's SipHash key. */
struct certcache *certcache_new(size_t capacity, int known_fd, const uint64_t key[2]);
void certcache_free(struct certcache *cc);

/* A certificate record from the kernel: check its hashes, explain it, keep it. */
void certcache_add(struct certcache *cc, const struct pw_cert_rec *rec, const uint8_t *der,
		   size_t len);

const struct cert_info *certcache_get(struct certcache *cc, uint64_t id, uint32_t der_len);

void certcache_stats(const struct certcache *cc, struct certcache_stats *st);

/* "sha256/<base64>" of a 32-byte hash. */
void pin_format(const uint8_t hash[PW_HASH_LEN], char out[64]);
/* lower-case hex of a 32-byte hash. */
void hex_format(const uint8_t hash[PW_HASH_LEN], char out[65]);

/*
 * Describe a certificate with OpenSSL: the members subject, issuer, sans,
 * not_after (and not_before) into `j` (struct json *). Returns 0, or -1 when
 * OpenSSL cannot parse it (an "error" member is written instead).
 */
struct json;
int cert_describe(struct json *j, const uint8_t *der, size_t len);

/* SHA-256 of the DER certificate and of its SPKI, computed by OpenSSL. */
int cert_hashes(const uint8_t *der, size_t len, uint8_t cert[PW_HASH_LEN],
		uint8_t spki[PW_HASH_LEN]);

#endif /* PW_CERTCACHE_H */
