// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Go crypto/tls: where bpf/go.bpf.c's probes go in a Go executable. Go links
 * crypto/tls into each program, so every Go executable is its own "library".
 * Nothing is hard-coded: the functions are found through the executable's
 * .gopclntab (present even in binaries stripped with -ldflags=-s -w), the
 * probe points in their machine code, and the type hash of *net.TCPConn
 * among the executable's itabs.
 */
#include <capstone/capstone.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>
#include <openssl/evp.h>

#include "go.h"
#include "gopclntab.h"
#include "libraries.h"
#include "log.h"
#include "pinwarden.skel.h"


static int go_table(struct elf_image *img, struct gopclntab *t, char *err, size_t errlen)
{
	uint64_t addr, text = 0;
	size_t size, tsize;
	const uint8_t *data = elf_section(img, ".gopclntab", 0, &addr, &size);

	/* position-independent builds keep the table in .data.rel.ro.gopclntab */
	if (!data)
		data = elf_section(img, ".data.rel.ro.gopclntab", 0, &addr, &size);
	if (!elf_section(img, ".text", 0, &text, &tsize))
		text = 0;
	return gopclntab__open(t, data, data ? size : 0, text, err, errlen);
}

/* A Go executable (or shared object) that contains crypto/tls, client or server. */
static bool go_match(struct elf_image *img, const char *path)
{
	struct gopclntab t;
	char err[128];

	return go_table(img, &t, err, sizeof(err)) == 0 &&
	       (gopclntab__has_name(&t, GO_FN_VERIFY) || gopclntab__has_name(&t, GO_FN_CLIENT_CERTS));
}

/* Go's unsigned varint (encoding/binary.Uvarint). */
static size_t uvarint(const uint8_t *p, size_t n, uint64_t *v)
{
	size_t i;
	int shift = 0;

	*v = 0;
	for (i = 0; i < n && i < 10; i++) {
		*v |= (uint64_t)(p[i] & 0x7f) << shift;
		if (!(p[i] & 0x80))
			return i + 1;
		shift += 7;
	}
	return 0;
}

/* Read len bytes at a virtual address of the file's allocated sections. */
static int read_vaddr(struct elf_image *img, uint64_t vaddr, void *out, size_t len)
{
	uint64_t addr;
	size_t size;
	const uint8_t *d = elf_section(img, NULL, vaddr, &addr, &size);

	if (!d || vaddr - addr > size || len > size - (vaddr - addr))
		return -1;
	memcpy(out, d + (vaddr - addr), len);
	return 0;
}

/* The Go version that built the file ("go1.19.8"), from .go.buildinfo; "" if unknown. */
static void go_version(struct elf_image *img, char *out, size_t outlen)
{
	static const uint8_t magic[14] = "\xff Go buildinf:";
	uint64_t addr, len = 0, hdr[2];
	size_t size, n;
	const uint8_t *d = elf_section(img, ".go.buildinfo", 0, &addr, &size);

	out[0] = 0;
	if (!d || size < 32 || memcmp(d, magic, sizeof(magic)) || d[14] != 8 || (d[15] & 1))
		return;
	if (d[15] & 2) {
		/* Go 1.18+: the version string follows the header, length-prefixed */
		n = uvarint(d + 32, size - 32, &len);
		if (!n || len >= outlen || len > size - 32 - n)
			return;
		memcpy(out, d + 32 + n, len);
	} else {
		/* older: a pointer to a Go string header {ptr, len} */
		uint64_t p;

		memcpy(&p, d + 16, 8);
		if (read_vaddr(img, p, hdr, sizeof(hdr)) || hdr[1] >= outlen ||
		    read_vaddr(img, hdr[0], out, hdr[1]))
			return;
		len = hdr[1];
	}
	out[len] = 0;
}

/* Minor version of "go1.N[...]"; 0 if the string is not of that form. */
static int go_minor(const char *v)
{
	if (strncmp(v, "go1.", 4))
		return 0;
	return atoi(v + 4);
}

static bool bytes_are(const cs_insn *in, const char *hex, size_t n)
{
	return in->size >= n && !memcmp(in->bytes, hex, n);
}

/*
 * Where to probe a Go function. Go functions open with a stack-growth check:
 *   [lea r12, [rsp-N] | mov r12, rsp; sub r12, N; jb]  cmp rsp|r12, [r14+16]; jbe morestack
 * Those instructions touch only r12 and the flags, so the argument registers
 * are intact at the jbe, and a conditional branch is emulated by the kernel
 * where the cmp would be single-stepped (about 5 us). When it branches, the
 * function grows its stack and starts over: the program skips that pass
 * (GO_CK_AT_JBE). A function without the check is probed at its entry.
 */
static uint64_t go_probe_point(struct elf_image *img, uint64_t entry, uint64_t end, uint64_t *flags)
{
	uint64_t addr, sec, pc = entry;
	const uint8_t *code;
	size_t size, left;
	cs_insn *in;
	int i, cmp = 0;
	csh h;

	*flags = 0;
	code = elf_section(img, NULL, entry, &sec, &size);
	if (!code || cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return entry;
	left = (end < sec + size ? end : sec + size) - entry;
	code += entry - sec;
	addr = entry;
	in = cs_malloc(h);
	for (i = 0; i < 6 && cs_disasm_iter(h, &code, &left, &addr, in); i++) {
		if (cmp) {
			if (bytes_are(in, "\x76", 1) || bytes_are(in, "\x0f\x86", 2)) {
				pc = in->address;
				*flags = GO_CK_AT_JBE;
			}
			break;
		}
		if (bytes_are(in, "\x49\x3b\x66\x10", 4) || bytes_are(in, "\x4d\x3b\x66\x10", 4))
			cmp = 1;	/* cmp rsp|r12, [r14+16] */
		else if (!(bytes_are(in, "\x4c\x8d\xa4\x24", 4) || bytes_are(in, "\x4c\x8d\x64\x24", 4) ||
			   bytes_are(in, "\x49\x89\xe4", 3) || bytes_are(in, "\x49\x83\xec", 3) ||
			   bytes_are(in, "\x49\x81\xec", 3) || bytes_are(in, "\x72", 1) ||
			   bytes_are(in, "\x0f\x82", 2)))
			break;		/* not the stack check: an argument may be touched */
	}
	cs_free(in, 1);
	cs_close(&h);
	return pc;
}

/* First 4 bytes, little-endian, of a digest of s (NOT of it with `invert`). */
static int type_hash(const char *md, const char *s, int invert, uint32_t *out)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	if (!EVP_Digest(s, strlen(s), d, &n, EVP_get_digestbyname(md), NULL) || n < 4)
		return -1;
	for (i = 0; i < 4 && invert; i++)
		d[i] = ~d[i];
	memcpy(out, d, 4);
	return 0;
}

/*
 * The type hash of *net.TCPConn as this executable's compiler wrote it (Go
 * 1.19+: NOT-SHA-256 of the type's name; before: MD5), confirmed by an itab
 * in .itablink that carries it. 0 and *hash set, or -1.
 */
static int go_tcpconn_hash(struct elf_image *img, uint32_t *hash)
{
	uint32_t cand[2];
	uint64_t addr;
	size_t size, i;
	const uint8_t *links = elf_section(img, ".itablink", 0, &addr, &size);
	int k;

	if (!links)	/* position-independent builds */
		links = elf_section(img, ".data.rel.ro.itablink", 0, &addr, &size);
	if (!links || type_hash("SHA256", "*net.TCPConn", 1, &cand[0]) ||
	    type_hash("MD5", "*net.TCPConn", 0, &cand[1]))
		return -1;
	for (i = 0; i + 8 <= size; i += 8) {
		uint64_t itab;
		uint32_t h;

		if (i % 8192 == 0 && elf_image_charge(img, 1024))
			return -1;
		memcpy(&itab, links + i, 8);
		/* itab: inter, _type, hash */
		if (read_vaddr(img, itab + 16, &h, sizeof(h)))
			continue;
		for (k = 0; k < 2; k++) {
			if (h == cand[k]) {
				*hash = h;
				return 0;
			}
		}
	}
	return -1;
}

static int go_attach_func(struct elf_image *img, struct attached_lib *lib, const struct gopclntab *t,
			  const char *func, struct bpf_program *prog, uint64_t cookie, char *err,
			  size_t errlen)
{
	uint64_t entry, end, pc, flags;
	int64_t off;

	/* a linear search of the table: charged before, whatever its claimed size */
	if (elf_image_charge(img, t->nfunc)) {
		snprintf(err, errlen, "%s: %s", lib->path, elf_image_budget_spent(img));
		return -1;
	}
	if (gopclntab__find(t, func, &entry, &end)) {
		snprintf(err, errlen, "%s: %s not found (inlined by this Go version?); not a Go build "
			 "this version of pinwarden knows", lib->path, func);
		return -1;
	}
	pc = go_probe_point(img, entry, end, &flags);
	off = elf_vaddr_to_offset(img, pc);
	if (off < 0) {
		snprintf(err, errlen, "%s: %s is outside the file", lib->path, func);
		return -1;
	}
	log_debug("%s: %s at 0x%llx (%s+%llu%s)", lib->path, bpf_program__name(prog),
		  (unsigned long long)off, func, (unsigned long long)(pc - entry),
		  flags & GO_CK_AT_JBE ? ", the stack check's jbe" : "");
	return attach_uprobe_cookie(lib, prog, off, cookie | flags, err, errlen);
}

static int go_attach(struct pinwarden_bpf *skel, struct attached_lib *lib, struct elf_image *img,
		     char *err, size_t errlen)
{
	struct gopclntab t;
	char version[64], why[256];
	uint64_t cookie = 0;
	uint32_t hash;

	if (go_table(img, &t, why, sizeof(why))) {
		snprintf(err, errlen, "%s: %s", lib->path, why);
		return -1;
	}
	go_version(img, version, sizeof(version));
	/* the table of Go 1.16 and 1.17 is the same; 1.16 passes arguments on the stack */
	if (t.magic == GOPCLNTAB_GO116 && go_minor(version) < 17) {
		snprintf(err, errlen, "%s: built with %s: Go before 1.17 passes arguments on the "
			 "stack; not supported", lib->path, version[0] ? version : "an unknown Go");
		return -1;
	}
	if (go_tcpconn_hash(img, &hash) == 0)
		cookie = GO_CK_HAVE_HASH | hash;
	else
		log_info("%s: no *net.TCPConn itab found: peers of Go connections will be guessed",
			 lib->path);
	/* the verdict waits for Go's own verification when its three points are there */
	if (gopclntab__has_name(&t, GO_FN_CHAIN_USAGE) && gopclntab__has_name(&t, GO_FN_READ_HANDSHAKE) &&
	    gopclntab__has_name(&t, GO_FN_SEND_ALERT)) {
		if (go_attach_func(img, lib, &t, GO_FN_CHAIN_USAGE, skel->progs.go_chain_usage, 0, err,
				   errlen) ||
		    go_attach_func(img, lib, &t, GO_FN_READ_HANDSHAKE, skel->progs.go_verified, 0, err,
				   errlen) ||
		    go_attach_func(img, lib, &t, GO_FN_SEND_ALERT, skel->progs.go_verified, 0, err,
				   errlen))
			return -1;
		cookie |= GO_CK_VALIDATED;
	} else {
		log_warnx("%s: %s, %s or %s not found: only leaf pins count for this program",
			  lib->path, GO_FN_CHAIN_USAGE, GO_FN_READ_HANDSHAKE, GO_FN_SEND_ALERT);
	}
	/* the client side; without the SNI a host rule would silently not apply: both or none */
	if (gopclntab__has_name(&t, GO_FN_VERIFY) &&
	    (go_attach_func(img, lib, &t, GO_FN_SNI, skel->progs.go_sni_name, 0, err, errlen) ||
	     go_attach_func(img, lib, &t, GO_FN_VERIFY, skel->progs.go_verify, cookie, err, errlen)))
		return -1;
	/* the server side (mTLS) */
	if (gopclntab__has_name(&t, GO_FN_CLIENT_CERTS) &&
	    go_attach_func(img, lib, &t, GO_FN_CLIENT_CERTS, skel->progs.go_verify,
			   cookie | GO_CK_SERVER, err, errlen))
		return -1;
	if (!gopclntab__has_name(&t, GO_FN_VERIFY) && !gopclntab__has_name(&t, GO_FN_CLIENT_CERTS)) {
		snprintf(err, errlen, "%s: no crypto/tls function found to probe", lib->path);
		return -1;
	}
	log_debug("%s: Go crypto/tls (%s)", lib->path, version[0] ? version : "version unknown");
	return 0;
}

const struct tls_library tls_go = {
	.name = "go",
	.match = go_match,
	.attach = go_attach,
};
