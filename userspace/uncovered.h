/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * TLS implementations pinwarden does not judge, recognised by what the file
 * holds (its exported functions, then the strings its code prints), so that a
 * process which maps one is reported (a `library_uncovered` event with reason
 * `unsupported`, pinwarden_libraries_uncovered{library,reason}) instead of
 * passing unseen. Asked only of files no family of tls_libraries matched.
 */
#ifndef PW_UNCOVERED_H
#define PW_UNCOVERED_H

#include <stddef.h>

#include "elfsym.h"

/*
 * Is img a TLS implementation pinwarden does not cover? Its family's name
 * ("wolfssl", "mbedtls", "jsse", ...: uncovered_library_names) and, when the
 * file says it, its version in `version` (else ""), and what gave it away in
 * `why`; NULL if none (or the file's budget ran out: elf_image_budget_spent).
 */
const char *tls_unsupported(struct elf_image *img, char *version, size_t vlen, char *why,
			    size_t whylen);

#endif /* PW_UNCOVERED_H */
