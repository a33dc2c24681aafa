/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Go's function table (.gopclntab): function names to entry addresses, for
 * Go executables with or without a symbol table (`-ldflags=-s -w` strips
 * .symtab, never .gopclntab: the runtime needs it). Layouts: Go 1.16/1.17
 * (magic 0xfffffffa), 1.18/1.19 (0xfffffff0), 1.20+ (0xfffffff1).
 * Every offset read from the file is bounds-checked: the file is untrusted.
 */
#ifndef PW_GOPCLNTAB_H
#define PW_GOPCLNTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GOPCLNTAB_GO116	0xfffffffau
#define GOPCLNTAB_GO118	0xfffffff0u
#define GOPCLNTAB_GO120	0xfffffff1u

struct gopclntab {
	const uint8_t *data;		/* the section's bytes */
	size_t size;
	uint32_t magic;
	uint64_t nfunc;
	uint64_t text_start;		/* base of 1.18+ entry offsets */
	const uint8_t *funcnames;	/* NUL-terminated names */
	size_t funcnames_size;
	const uint8_t *pcln;		/* function table, then the _func records */
	size_t pcln_size;
};

/*
 * Read the header of a .gopclntab. `text_addr` is the address of .text, used
 * when the header's text start is 0 (position-independent builds relocate
 * it at run time). 0, or -1 with err.
 */
int gopclntab__open(struct gopclntab *t, const uint8_t *data, size_t size, uint64_t text_addr,
		    char *err, size_t errlen);

/* Does some function of the table have exactly this name? (cheap: one memmem) */
bool gopclntab__has_name(const struct gopclntab *t, const char *name);

/*
 * Entry address of the function `name`, and where the next function starts
 * (its end); 0, or -1 if absent (or the table is corrupt there).
 */
int gopclntab__find(const struct gopclntab *t, const char *name, uint64_t *entry, uint64_t *end);

#endif /* PW_GOPCLNTAB_H */
