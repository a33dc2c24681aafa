// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * NSS: where bpf/nss.bpf.c's probes go in a libssl3.so, and the offsets its
 * programs need inside NSS's private structs. Nothing is hard-coded: every
 * offset is read out of this very build's machine code (and of the libnspr4.so
 * beside it), from small exported functions whose source has not changed in
 * years:
 *   SSL_PeerCertificate(fd)   ss = ssl_FindSocket(fd); ... ss->sec.peerCert
 *   SSL_RevealURL(fd)         ss = ssl_FindSocket(fd); ... ss->url
 *   ssl_FindSocket(fd)        layer->secret is the sslSocket; ss->fd = layer
 *   SSL_ResetHandshake(fd, s) ss->handshaking = 1 (client) or 2 (server)
 *   PR_FileDesc2NativeHandle  bottom layer's secret->md.osfd
 * and, at each probed call, the register that holds the sslSocket: the base
 * of the `mov off(%reg), %rdi` that loads the call's first argument from it.
 * A build where the required ones cannot be found is not attached (and the
 * daemon says so), never guessed at.
 */
#include <capstone/capstone.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "libraries.h"
#include "log.h"
#include "nss.h"
#include "pinwarden.skel.h"

static const char *const nss_sonames[] = { "libssl3.so", NULL };

#define MAX_SITES	32
#define MAX_INSNS	256
#define PRE_WINDOW	96	/* bytes decoded before a call site */

/* libssl3 itself: NSS's SSL API, not OpenSSL's (which has no SSL_ImportFD). */
static bool nss_match(struct elf_image *img, const char *path)
{
	return elf_func_vaddr(img, "SSL_ImportFD") && elf_func_vaddr(img, "SSL_SetURL") &&
	       elf_func_vaddr(img, "NSSSSL_GetVersion") && !elf_func_vaddr(img, "SSL_ctrl");
}

/* ---- reading code ------------------------------------------------------- */

struct code {
	int fd;			/* the library file, read with pread (never mmap: see elfsym.c) */
	struct elf_image *img;
	Elf *elf;		/* for symbol sizes */
	csh cs;
};

static int code_open(struct code *c, struct elf_image *img)
{
	memset(c, 0, sizeof(*c));
	/* the file the image was read from, not its path again */
	c->fd = fcntl(elf_image_fd(img), F_DUPFD_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	c->img = img;
	if (elf_version(EV_CURRENT) != EV_NONE)
		c->elf = elf_begin(c->fd, ELF_C_READ, NULL);
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &c->cs) != CS_ERR_OK) {
		if (c->elf)
			elf_end(c->elf);
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	cs_option(c->cs, CS_OPT_DETAIL, CS_OPT_ON);
	return 0;
}

static void code_close(struct code *c)
{
	if (c->fd < 0)
		return;
	cs_close(&c->cs);
	if (c->elf)
		elf_end(c->elf);
	close(c->fd);
	c->fd = -1;
}

/* Size of a defined function symbol, 0 if unknown. */
static uint64_t func_size(struct code *c, const char *name)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	if (!c->elf)
		return 0;
	while ((scn = elf_nextscn(c->elf, scn))) {
		Elf_Data *d;
		size_t i, n;

		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) ||
		    !sh.sh_entsize)
			continue;
		n = sh.sh_size / sh.sh_entsize;
		if (elf_image_charge(c->img, n) || !(d = elf_getdata(scn, NULL)))
			return 0;
		for (i = 0; i < n; i++) {
			GElf_Sym sym;
			const char *sn;

			if (!gelf_getsym(d, i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
			    sym.st_shndx == SHN_UNDEF)
				continue;
			sn = elf_strptr(c->elf, sh.sh_link, sym.st_name);
			if (sn && !strcmp(sn, name))
				return sym.st_size;
		}
	}
	return 0;
}

/* Disassemble [vaddr, vaddr + len) into insns (cs_free them); how many, or -1. */
static int code_disasm(struct code *c, uint64_t vaddr, size_t len, cs_insn **insns)
{
	uint8_t buf[4096];
	int64_t off = elf_vaddr_to_offset(c->img, vaddr);
	ssize_t n;
	size_t cnt;

	if (off < 0 || len > sizeof(buf))
		return -1;
	n = pread(c->fd, buf, len, off);
	if (n <= 0)
		return -1;
	cnt = cs_disasm(c->cs, buf, (size_t)n, vaddr, MAX_INSNS, insns);
	return (int)cnt;
}

static const cs_x86_op *op(const cs_insn *in, int i)
{
	return i < in->detail->x86.op_count ? &in->detail->x86.operands[i] : NULL;
}

static int is_call(const cs_insn *in)
{
	return in->id == X86_INS_CALL;
}

/* The 64-bit register a (sub)register belongs to, for the ones we track. */
static x86_reg reg64(x86_reg r)
{
	switch (r) {
	case X86_REG_RBX: case X86_REG_EBX: case X86_REG_BX: case X86_REG_BL: case X86_REG_BH:
		return X86_REG_RBX;
	case X86_REG_RBP: case X86_REG_EBP: case X86_REG_BP: case X86_REG_BPL:
		return X86_REG_RBP;
	case X86_REG_RDI: case X86_REG_EDI: case X86_REG_DI: case X86_REG_DIL:
		return X86_REG_RDI;
	case X86_REG_R12: case X86_REG_R12D: case X86_REG_R12W: case X86_REG_R12B:
		return X86_REG_R12;
	case X86_REG_R13: case X86_REG_R13D: case X86_REG_R13W: case X86_REG_R13B:
		return X86_REG_R13;
	case X86_REG_R14: case X86_REG_R14D: case X86_REG_R14W: case X86_REG_R14B:
		return X86_REG_R14;
	case X86_REG_R15: case X86_REG_R15D: case X86_REG_R15W: case X86_REG_R15B:
		return X86_REG_R15;
	default:
		return r;
	}
}

static enum nss_reg nss_reg_of(x86_reg r)
{
	switch (r) {
	case X86_REG_RBX: return NSS_REG_RBX;
	case X86_REG_RBP: return NSS_REG_RBP;
	case X86_REG_R12: return NSS_REG_R12;
	case X86_REG_R13: return NSS_REG_R13;
	case X86_REG_R14: return NSS_REG_R14;
	case X86_REG_R15: return NSS_REG_R15;
	default: return NSS_REG_NONE;
	}
}

static int writes_reg(struct code *c, const cs_insn *in, x86_reg r)
{
	cs_regs rd, wr;
	uint8_t nrd = 0, nwr = 0, i;

	if (cs_regs_access(c->cs, in, rd, &nrd, wr, &nwr) != CS_ERR_OK)
		return 1;	/* cannot tell: assume it does */
	for (i = 0; i < nwr; i++)
		if (reg64(wr[i]) == r)
			return 1;
	return 0;
}

/* `mov disp(%base), %dst` with a 64-bit destination and no index: base and disp. */
static int mov_load(const cs_insn *in, x86_reg dst, x86_reg *base, int64_t *disp)
{
	const cs_x86_op *d = op(in, 0), *s = op(in, 1);

	if (in->id != X86_INS_MOV || !d || !s || d->type != X86_OP_REG || s->type != X86_OP_MEM ||
	    s->size != 8 || s->mem.index != X86_REG_INVALID || s->mem.segment != X86_REG_INVALID)
		return 0;
	if (dst != X86_REG_INVALID && d->reg != dst)
		return 0;
	*base = s->mem.base;
	*disp = s->mem.disp;
	return 1;
}

/* ---- offsets from exported functions ------------------------------------- */

/* In `func`: after its first call, the displacement of the first 8-byte load
 * from %rax (the called function's result); the call's target in *callee. */
static int load_after_first_call(struct code *c, const char *func, uint64_t *callee, uint32_t *off)
{
	uint64_t v = elf_func_vaddr(c->img, func), size = func_size(c, func);
	cs_insn *in = NULL;
	int n, i, called = 0, rc = -1;

	if (!v)
		return -1;
	n = code_disasm(c, v, size && size < 512 ? size : 256, &in);
	for (i = 0; i < n && rc; i++) {
		x86_reg base;
		int64_t disp;

		if (!called) {
			if (is_call(&in[i]) && op(&in[i], 0) && op(&in[i], 0)->type == X86_OP_IMM) {
				called = 1;
				if (callee)
					*callee = op(&in[i], 0)->imm;
			}
			continue;
		}
		if (is_call(&in[i]) || in[i].id == X86_INS_RET || in[i].id == X86_INS_JMP)
			break;
		if (mov_load(&in[i], X86_REG_INVALID, &base, &disp) && base == X86_REG_RAX &&
		    disp >= 0 && disp < 65536) {
			*off = (uint32_t)disp;
			rc = 0;
		}
	}
	if (n > 0)
		cs_free(in, n);
	return rc;
}

/* ssl_FindSocket: `mov 8(%rax), %rX` (layer->secret) then `mov %rax, off(%rX)` (ss->fd). */
static int fd_offset(struct code *c, uint64_t find_socket, uint32_t *off)
{
	cs_insn *in = NULL;
	x86_reg secret = X86_REG_INVALID;
	int n, i, rc = -1;

	n = code_disasm(c, find_socket, 128, &in);
	for (i = 0; i < n && rc; i++) {
		const cs_x86_op *d = op(&in[i], 0), *s = op(&in[i], 1);
		x86_reg base;
		int64_t disp;

		if (in[i].id == X86_INS_RET)
			break;
		if (mov_load(&in[i], X86_REG_INVALID, &base, &disp) && base == X86_REG_RAX &&
		    disp == NSPR_FD_SECRET) {
			secret = d->reg;
			continue;
		}
		if (secret != X86_REG_INVALID && in[i].id == X86_INS_MOV && d && s &&
		    d->type == X86_OP_MEM && d->mem.base == secret && d->mem.index == X86_REG_INVALID &&
		    s->type == X86_OP_REG && s->reg == X86_REG_RAX && d->mem.disp >= 0 &&
		    d->mem.disp < 65536) {
			*off = (uint32_t)d->mem.disp;
			rc = 0;
		}
	}
	if (n > 0)
		cs_free(in, n);
	return rc;
}

/* SSL_ResetHandshake: the one field set to 1 on one path and 2 on the other. */
static int role_offset(struct code *c, uint32_t *off)
{
	uint64_t v = elf_func_vaddr(c->img, "SSL_ResetHandshake"), size;
	int64_t ones[16], twos[16], found = -1;
	int n, i, j, k, n1 = 0, n2 = 0, hits = 0;
	cs_insn *in = NULL;

	size = func_size(c, "SSL_ResetHandshake");
	if (!v || !size)
		return -1;
	n = code_disasm(c, v, size < 4096 ? size : 4096, &in);
	for (i = 0; i < n; i++) {
		const cs_x86_op *d = op(&in[i], 0), *s = op(&in[i], 1);

		if (in[i].id != X86_INS_MOV || !d || !s || d->type != X86_OP_MEM || d->size != 4 ||
		    s->type != X86_OP_IMM || d->mem.index != X86_REG_INVALID ||
		    d->mem.base == X86_REG_RSP || d->mem.base == X86_REG_RIP || d->mem.disp < 0)
			continue;
		if (s->imm == 1 && n1 < 16)
			ones[n1++] = d->mem.disp;
		else if (s->imm == 2 && n2 < 16)
			twos[n2++] = d->mem.disp;
	}
	if (n > 0)
		cs_free(in, n);
	for (j = 0; j < n1; j++)
		for (k = 0; k < n2; k++)
			if (ones[j] == twos[k] && ones[j] != found) {
				found = ones[j];
				hits++;
			}
	if (hits != 1 || found >= 65536)
		return -1;
	*off = (uint32_t)found;
	return 0;
}

/* libnspr4's PR_FileDesc2NativeHandle: `mov 8(%rax), %rX; mov off(%rX), %eY`. */
static int osfd_offset(const char *ssl_path, uint32_t *off)
{
	char path[PATH_MAX], err[256];
	const char *slash = strrchr(ssl_path, '/');
	struct elf_image *img;
	struct code c;
	uint64_t v;
	cs_insn *in = NULL;
	x86_reg secret = X86_REG_INVALID;
	int n, i, rc = -1;

	if (!slash || snprintf(path, sizeof(path), "%.*s/libnspr4.so", (int)(slash - ssl_path),
			       ssl_path) >= (int)sizeof(path))
		return -1;
	img = elf_image_open(path, err, sizeof(err));
	if (!img)
		return -1;
	v = elf_func_vaddr(img, "PR_FileDesc2NativeHandle");
	if (!v || code_open(&c, img)) {
		elf_image_close(img);
		return -1;
	}
	n = code_disasm(&c, v, 128, &in);
	for (i = 0; i < n && rc; i++) {
		const cs_x86_op *d = op(&in[i], 0), *s = op(&in[i], 1);

		if (in[i].id == X86_INS_RET)
			break;
		if (in[i].id != X86_INS_MOV || !d || !s || d->type != X86_OP_REG ||
		    s->type != X86_OP_MEM || s->mem.index != X86_REG_INVALID)
			continue;
		if (s->size == 8 && s->mem.base == X86_REG_RAX && s->mem.disp == NSPR_FD_SECRET)
			secret = d->reg;
		else if (secret != X86_REG_INVALID && s->size == 4 && s->mem.base == secret &&
			 s->mem.disp >= 0 && s->mem.disp < 4096) {
			*off = (uint32_t)s->mem.disp;
			rc = 0;
		}
	}
	if (n > 0)
		cs_free(in, n);
	code_close(&c);
	elf_image_close(img);
	return rc;
}

/* ---- the sslSocket register at a call site ------------------------------- */

/*
 * The register holding the sslSocket at the call `site`: the base of the last
 * `mov disp(%reg), %rdi` before it (with `want_disp`, only that displacement),
 * if nothing between writes that register or calls out. The probe re-checks
 * at run time what it reads from there (ss->sec.peerCert is the certificate).
 */
static enum nss_reg site_register(struct code *c, uint64_t site, int64_t want_disp)
{
	enum nss_reg found = NSS_REG_NONE;
	uint64_t start;
	cs_insn *in = NULL;
	int n = 0, i, j;

	/* decode forward from a little before the call until an instruction lands on it */
	for (start = site - PRE_WINDOW; start < site; start++) {
		n = code_disasm(c, start, site - start, &in);
		if (n > 0 && in[n - 1].address + in[n - 1].size == site)
			break;
		if (n > 0)
			cs_free(in, n);
		n = 0;
	}
	for (i = n - 1; i >= 0; i--) {
		x86_reg base;
		int64_t disp;

		if (is_call(&in[i]) || in[i].id == X86_INS_RET || in[i].id == X86_INS_JMP)
			break;
		if (!writes_reg(c, &in[i], X86_REG_RDI))
			continue;
		if (!mov_load(&in[i], X86_REG_RDI, &base, &disp) ||
		    (want_disp >= 0 && disp != want_disp))
			break;
		found = nss_reg_of(base);
		for (j = i + 1; j < n && found != NSS_REG_NONE; j++)
			if (writes_reg(c, &in[j], base))
				found = NSS_REG_NONE;
		break;
	}
	if (n > 0)
		cs_free(in, n);
	return found;
}

static int nss_attach_sites(struct code *c, struct attached_lib *lib, const char *import,
			struct bpf_program *prog, uint32_t layout, int64_t want_disp, int *with_reg,
			char *err, size_t errlen)
{
	uint64_t sites[MAX_SITES];
	int n, i;

	n = elf_import_call_sites(c->img, import, sites, MAX_SITES);
	if (n < 0) {
		snprintf(err, errlen, "%s: cannot disassemble", lib->path);
		return -1;
	}
	if (n == 0) {
		snprintf(err, errlen, "%s: no call to %s found; not an NSS build this version of "
			 "pinwarden knows", lib->path, import);
		return -1;
	}
	*with_reg = 0;
	for (i = 0; i < n; i++) {
		enum nss_reg reg = site_register(c, sites[i], want_disp);
		int64_t off = elf_vaddr_to_offset(c->img, sites[i]);

		if (off < 0) {
			snprintf(err, errlen, "%s: call site 0x%llx is outside the file", lib->path,
				 (unsigned long long)sites[i]);
			return -1;
		}
		if (attach_uprobe_cookie(lib, prog, off, NSS_COOKIE(layout, reg), err, errlen))
			return -1;
		*with_reg += reg != NSS_REG_NONE;
		log_debug("%s: %s at 0x%llx (call to %s), sslSocket in register %d", lib->path,
			  bpf_program__name(prog), (unsigned long long)off, import, reg);
	}
	return n;
}

/* ---- attach ------------------------------------------------------------- */

static uint32_t nss_nlayouts;

static int nss_attach(struct pinwarden_bpf *skel, struct attached_lib *lib,
		      struct elf_image *img, char *err, size_t errlen)
{
	struct nss_layout lay = { .role = NSS_OFF_UNKNOWN, .osfd = NSS_OFF_UNKNOWN };
	uint64_t find_socket = 0, find_socket2 = 0;
	uint32_t idx = nss_nlayouts;
	int certs, certs_reg, done, done_reg, rc = -1;
	struct code c;

	if (idx >= NSS_LAYOUTS_MAX) {
		snprintf(err, errlen, "%s: the NSS layout table is full (%d builds attached)",
			 lib->path, NSS_LAYOUTS_MAX);
		return -1;
	}
	if (code_open(&c, img)) {
		snprintf(err, errlen, "%s: %s", lib->path, strerror(errno));
		return -1;
	}
	if (load_after_first_call(&c, "SSL_PeerCertificate", &find_socket, &lay.peer_cert) ||
	    load_after_first_call(&c, "SSL_RevealURL", &find_socket2, &lay.url) ||
	    find_socket != find_socket2 || fd_offset(&c, find_socket, &lay.fd)) {
		snprintf(err, errlen, "%s: the sslSocket layout (peerCert, url, fd) is not where "
			 "this version of pinwarden looks for it", lib->path);
		goto out;
	}
	if (role_offset(&c, &lay.role))
		log_warnx("%s: sslSocket role not found: NSS servers' client chains are judged "
			  "as a client's", lib->path);
	if (osfd_offset(lib->path, &lay.osfd))
		log_warnx("%s: libnspr4's socket field not found: peers come from each thread's "
			  "last connect()", lib->path);
	if (bpf_map__update_elem(skel->maps.nss_layouts, &idx, sizeof(idx), &lay, sizeof(lay),
				 BPF_ANY)) {
		snprintf(err, errlen, "%s: nss_layouts: %s", lib->path, strerror(errno));
		goto out;
	}
	nss_nlayouts++;
	log_debug("%s: sslSocket peerCert +0x%x url +0x%x fd +0x%x role +0x%x, NSPR osfd +0x%x",
		  lib->path, lay.peer_cert, lay.url, lay.fd, lay.role, lay.osfd);

	certs = nss_attach_sites(&c, lib, "CERT_NewTempCertificate", skel->progs.nss_cert, idx, -1,
			     &certs_reg, err, errlen);
	if (certs < 0)
		goto out;
	done = nss_attach_sites(&c, lib, "SECKEY_UpdateCertPQG", skel->progs.nss_chain_done, idx,
			    lay.peer_cert, &done_reg, err, errlen);
	if (done < 0)
		goto out;
	/* each verdict finds its sslSocket at the call itself or at the certificates */
	if (!certs_reg && done_reg < done) {
		snprintf(err, errlen, "%s: no call site names its sslSocket", lib->path);
		goto out;
	}
	rc = 0;
out:
	code_close(&c);
	return rc;
}

const struct tls_library tls_nss = {
	.name = "nss",
	.sonames = nss_sonames,
	.match = nss_match,
	.attach = nss_attach,
};
