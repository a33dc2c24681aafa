// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The layouts, from the Go runtime (runtime/symtab.go, pcHeader and functab):
 *
 *   1.16/1.17  magic pad pad minLC ptrSize | nfunc nfiles funcnameOff cuOff
 *              filetabOff pctabOff pclnOff (8 bytes each)
 *              pcln: nfunc+1 x {entry u64, funcoff u64}; _func: {entry u64, nameoff i32}
 *   1.18+      the same with textStart after nfiles;
 *              pcln: nfunc+1 x {entryoff u32, funcoff u32}; _func: {entryoff u32, nameoff i32}
 *              (entry = textStart + entryoff)
 */
#include <stdio.h>
#include <string.h>

#include "gopclntab.h"

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* [off, off + len) inside [0, size)? */
static bool inside(uint64_t off, uint64_t len, size_t size)
{
	return off <= size && len <= size - off;
}

int gopclntab__open(struct gopclntab *t, const uint8_t *data, size_t size, uint64_t text_addr,
		    char *err, size_t errlen)
{
	uint64_t names, names_end, pcln;
	size_t hdr;
	bool go118;

	memset(t, 0, sizeof(*t));
	if (!data || size < 8) {
		snprintf(err, errlen, "no Go function table (.gopclntab)");
		return -1;
	}
	t->magic = rd32(data);
	switch (t->magic) {
	case GOPCLNTAB_GO116:
		go118 = false;
		hdr = 8 + 7 * 8;
		break;
	case GOPCLNTAB_GO118:
	case GOPCLNTAB_GO120:
		go118 = true;
		hdr = 8 + 8 * 8;
		break;
	case 0xfffffffbu:
		snprintf(err, errlen, "built with Go 1.15 or older (arguments on the stack): not supported");
		return -1;
	default:
		snprintf(err, errlen, "unknown Go function table (magic 0x%08x)", t->magic);
		return -1;
	}
	if (size < hdr || data[4] || data[5] || data[7] != 8) {
		snprintf(err, errlen, "Go function table: bad header (not a 64-bit build?)");
		return -1;
	}
	t->nfunc = rd64(data + 8);
	if (go118) {
		t->text_start = rd64(data + 24) ? rd64(data + 24) : text_addr;
		names = rd64(data + 32);
		names_end = rd64(data + 40);	/* cutab follows the names */
		pcln = rd64(data + 64);
	} else {
		names = rd64(data + 24);
		names_end = rd64(data + 32);
		pcln = rd64(data + 56);
	}
	if (names > names_end || !inside(names, names_end - names, size) || !inside(pcln, 0, size) ||
	    t->nfunc == 0 || t->nfunc > size) {
		snprintf(err, errlen, "Go function table: offsets outside the section");
		return -1;
	}
	t->data = data;
	t->size = size;
	t->funcnames = data + names;
	t->funcnames_size = names_end - names;
	t->pcln = data + pcln;
	t->pcln_size = size - pcln;
	if (!inside(0, (t->nfunc + 1) * (go118 ? 8 : 16), t->pcln_size)) {
		snprintf(err, errlen, "Go function table: truncated");
		return -1;
	}
	return 0;
}

bool gopclntab__has_name(const struct gopclntab *t, const char *name)
{
	size_t n = strlen(name) + 1, left = t->funcnames_size;
	const uint8_t *p = t->funcnames, *hit;

	/* a name starts the table or follows another's NUL */
	while (left >= n && (hit = memmem(p, left, name, n))) {
		if (hit == t->funcnames || hit[-1] == 0)
			return true;
		left -= hit + 1 - p;
		p = hit + 1;
	}
	return false;
}

/* Entry, name offset and end of function i; false if the table is corrupt there. */
static bool func_at(const struct gopclntab *t, uint64_t i, uint64_t *entry, int32_t *nameoff,
		    uint64_t *end)
{
	uint64_t funcoff;

	if (t->magic == GOPCLNTAB_GO116) {
		const uint8_t *ft = t->pcln + i * 16;

		*entry = rd64(ft);
		*end = rd64(ft + 16);
		funcoff = rd64(ft + 8);
		if (!inside(funcoff, 12, t->pcln_size))
			return false;
		*nameoff = (int32_t)rd32(t->pcln + funcoff + 8);
	} else {
		const uint8_t *ft = t->pcln + i * 8;

		*entry = t->text_start + rd32(ft);
		*end = t->text_start + rd32(ft + 8);
		funcoff = rd32(ft + 4);
		if (!inside(funcoff, 8, t->pcln_size))
			return false;
		*nameoff = (int32_t)rd32(t->pcln + funcoff + 4);
	}
	return true;
}

int gopclntab__find(const struct gopclntab *t, const char *name, uint64_t *entry, uint64_t *end)
{
	size_t n = strlen(name) + 1;
	uint64_t i;

	for (i = 0; i < t->nfunc; i++) {
		uint64_t e, x;
		int32_t off;

		if (!func_at(t, i, &e, &off, &x))
			return -1;
		if (off < 0 || !inside((uint64_t)off, n, t->funcnames_size))
			continue;
		if (memcmp(t->funcnames + off, name, n))
			continue;
		if (x <= e)
			return -1;
		*entry = e;
		*end = x;
		return 0;
	}
	return -1;
}
