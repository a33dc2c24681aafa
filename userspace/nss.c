// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * NSS: where bpf/nss.bpf.c's probes go in a libssl3.so, and the offsets its
 * programs need inside NSS's private structs. Nothing is hard-coded: every
 * offset is read out of this very build's machine code (and of the libnspr4.so
 * beside it, or the system's), from small exported functions whose source has
 * not changed in years:
 *   SSL_PeerCertificate(fd)   ss = ssl_FindSocket(fd); ... ss->sec.peerCert
 *   SSL_RevealURL(fd)         ss = ssl_FindSocket(fd); ... ss->url
 *   ssl_FindSocket(fd)        layer->secret is the sslSocket; ss->fd = layer
 *   SSL_ResetHandshake(fd, s) ss->handshaking = 1 (client) or 2 (server)
 *   PR_FileDesc2NativeHandle  bottom layer's secret->md.osfd
 * and, at each probed call, the register that holds the sslSocket: the base
 * of the `mov off(%reg), %rdi` that loads the call's first argument from it.
 * A build where the required ones cannot be found is not attached (and the
 * daemon says so), never guessed at. The recognisers follow values through
 * registers (and, in SSL_ResetHandshake, the small values a register may hold
 * inside a basic block), not one compiler's instruction sequence: Debian's
 * NSS is built by GCC, Firefox's own (/usr/lib/firefox-esr) by clang.
 *
 * NSS's own verification (bpf/nss.bpf.c): the verdict waits for the
 * application's auth callback, whose call is found in ssl3_AuthCertificate
 * (the function the code after SECKEY_UpdateCertPQG calls that makes it: GCC
 * calls it first, clang may test an extension before) as
 * `call *off(%reg)`, off being where SSL_AuthCertificateHook stores the
 * callback and %reg one the call preserves: the probe after it reads the
 * sslSocket there. Without it the verdict is taken at SECKEY_UpdateCertPQG,
 * only leaf pins counting. libnss3.so beside it (an instance of this family
 * too) gets the CERT_VerifySignedData calls: the links of the chain NSS builds.
 */
#include <capstone/capstone.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "companion.h"
#include "libraries.h"
#include "log.h"
#include "nss.h"
#include "pinwarden.skel.h"

static const char *const nss_sonames[] = { "libssl3.so", "libnss3.so", NULL };

#define MAX_SITES	32
#define MAX_INSNS	1024
#define PRE_WINDOW	96	/* bytes decoded before a call site */

/* libssl3 itself: NSS's SSL API, not OpenSSL's (which has no SSL_ImportFD). */
static bool nss_is_libssl3(struct elf_image *img)
{
	return elf_func_vaddr(img, "SSL_ImportFD") && elf_func_vaddr(img, "SSL_SetURL") &&
	       elf_func_vaddr(img, "NSSSSL_GetVersion") && !elf_func_vaddr(img, "SSL_ctrl");
}

/* libnss3: NSS's certificate library, where the chain is verified. */
static bool nss_is_libnss3(struct elf_image *img)
{
	return elf_func_vaddr(img, "CERT_VerifySignedData") && elf_func_vaddr(img, "CERT_VerifyCert") &&
	       elf_func_vaddr(img, "NSS_GetVersion") && !elf_func_vaddr(img, "SSL_ImportFD");
}

static bool nss_match(struct elf_image *img, const char *path)
{
	return nss_is_libssl3(img) || nss_is_libnss3(img);
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

/* The 64-bit register a general-purpose (sub)register belongs to. */
static x86_reg reg64(x86_reg r)
{
	switch (r) {
	case X86_REG_RAX: case X86_REG_EAX: case X86_REG_AX: case X86_REG_AL: case X86_REG_AH:
		return X86_REG_RAX;
	case X86_REG_RCX: case X86_REG_ECX: case X86_REG_CX: case X86_REG_CL: case X86_REG_CH:
		return X86_REG_RCX;
	case X86_REG_RDX: case X86_REG_EDX: case X86_REG_DX: case X86_REG_DL: case X86_REG_DH:
		return X86_REG_RDX;
	case X86_REG_RSI: case X86_REG_ESI: case X86_REG_SI: case X86_REG_SIL:
		return X86_REG_RSI;
	case X86_REG_R8: case X86_REG_R8D: case X86_REG_R8W: case X86_REG_R8B:
		return X86_REG_R8;
	case X86_REG_R9: case X86_REG_R9D: case X86_REG_R9W: case X86_REG_R9B:
		return X86_REG_R9;
	case X86_REG_R10: case X86_REG_R10D: case X86_REG_R10W: case X86_REG_R10B:
		return X86_REG_R10;
	case X86_REG_R11: case X86_REG_R11D: case X86_REG_R11W: case X86_REG_R11B:
		return X86_REG_R11;
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

/* Disassemble the small exported function `func` (256 bytes when its size is unknown). */
static int func_disasm(struct code *c, const char *func, cs_insn **in)
{
	uint64_t v = elf_func_vaddr(c->img, func), size = func_size(c, func);

	if (!v)
		return -1;
	return code_disasm(c, v, size && size < 512 ? size : 256, in);
}

/* In `func`: after its first call, the displacement of the first 8-byte load
 * from %rax (the called function's result); the call's target in *callee. */
static int load_after_first_call(struct code *c, const char *func, uint64_t *callee, uint32_t *off)
{
	cs_insn *in = NULL;
	int n, i, called = 0, rc = -1;

	n = func_disasm(c, func, &in);
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

/*
 * ssl_FindSocket: `layer = PR_GetIdentitiesLayer(fd, ssl_layer_id); ss = layer->secret;
 * ss->fd = layer;`, the store's displacement. The two values are followed through the
 * registers that hold them from the call's result on (GCC: `mov 8(%rax), %rdx; mov %rax,
 * (%rdx)`; clang: `mov %rax, %rcx; mov 8(%rax), %rax; mov %rcx, (%rax)`).
 */
static int fd_offset(struct code *c, uint64_t find_socket, uint32_t *off)
{
	/* per 64-bit register: 1 holds the layer, 2 holds its secret (the sslSocket) */
	uint8_t val[X86_REG_ENDING] = { 0 };
	cs_insn *in = NULL;
	int n, i, called = 0, rc = -1;

	n = code_disasm(c, find_socket, 128, &in);
	for (i = 0; i < n && rc; i++) {
		const cs_x86_op *d = op(&in[i], 0), *s = op(&in[i], 1);
		x86_reg base;
		int64_t disp;

		if (in[i].id == X86_INS_RET || in[i].id == X86_INS_JMP)
			break;
		if (is_call(&in[i])) {
			if (called)
				break;
			called = 1;
			memset(val, 0, sizeof(val));
			val[X86_REG_RAX] = 1;
			continue;
		}
		if (!called)
			continue;
		if (mov_load(&in[i], X86_REG_INVALID, &base, &disp) && val[base] == 1 &&
		    disp == NSPR_FD_SECRET && d->reg == reg64(d->reg)) {
			val[d->reg] = 2;
			continue;
		}
		if (in[i].id == X86_INS_MOV && d && s && d->type == X86_OP_REG && s->type == X86_OP_REG &&
		    d->size == 8 && s->size == 8) {
			val[d->reg] = val[s->reg];
			continue;
		}
		if (in[i].id == X86_INS_MOV && d && s && d->type == X86_OP_MEM && s->type == X86_OP_REG &&
		    s->size == 8 && val[s->reg] == 1 && val[d->mem.base] == 2 &&
		    d->mem.index == X86_REG_INVALID && d->mem.segment == X86_REG_INVALID &&
		    d->mem.disp >= 0 && d->mem.disp < 65536) {
			*off = (uint32_t)d->mem.disp;
			rc = 0;
			continue;
		}
		/* anything else a register is written with loses what it held */
		{
			cs_regs rd, wr;
			uint8_t nrd = 0, nwr = 0, k;

			if (cs_regs_access(c->cs, &in[i], rd, &nrd, wr, &nwr) != CS_ERR_OK)
				break;
			for (k = 0; k < nwr; k++)
				val[reg64(wr[k])] = 0;
		}
	}
	if (n > 0)
		cs_free(in, n);
	return rc;
}

/*
 * The small values a register may hold, followed inside one basic block: a set
 * (bit v: the value v, 0 <= v < 8), 0 when unknown. Enough for `mov $1, %ecx`,
 * `xor %ecx, %ecx` and `setne %cl; movzbl %cl, %ecx; inc %ecx` (clang's
 * `asServer ? 2 : 1`).
 */
struct vals {
	uint8_t full[X86_REG_ENDING];	/* the whole register */
	uint8_t low[X86_REG_ENDING];	/* its low byte only (after a setcc) */
};

/* { v + by : v in set }, or 0 (unknown) if one falls outside [0, 8). */
static uint8_t vals_add(uint8_t set, int64_t by)
{
	unsigned out = 0;
	int64_t v;

	if (!set)
		return 0;
	for (v = 0; v < 8; v++) {
		if (!(set & (1u << v)))
			continue;
		if (v + by < 0 || v + by >= 8)
			return 0;
		out |= 1u << (v + by);
	}
	return (uint8_t)out;
}

static bool is_setcc(unsigned id)
{
	switch (id) {
	case X86_INS_SETA: case X86_INS_SETAE: case X86_INS_SETB: case X86_INS_SETBE:
	case X86_INS_SETE: case X86_INS_SETNE: case X86_INS_SETG: case X86_INS_SETGE:
	case X86_INS_SETL: case X86_INS_SETLE: case X86_INS_SETO: case X86_INS_SETNO:
	case X86_INS_SETP: case X86_INS_SETNP: case X86_INS_SETS: case X86_INS_SETNS:
		return true;
	default:
		return false;
	}
}

/* The value set of a 4- or 8-byte source operand (an immediate or a register). */
static uint8_t vals_of(const struct vals *v, const cs_x86_op *s)
{
	if (s && s->type == X86_OP_IMM)
		return s->imm >= 0 && s->imm < 8 ? 1u << s->imm : 0;
	if (s && s->type == X86_OP_REG && s->size >= 4 && reg64(s->reg) < X86_REG_ENDING)
		return v->full[reg64(s->reg)];
	return 0;
}

/* `v` after the instruction `in`. */
static void vals_step(struct code *c, struct vals *v, const cs_insn *in)
{
	const cs_x86_op *d = op(in, 0), *s = op(in, 1);
	uint8_t full = 0, low = 0;
	cs_regs rd, wr;
	uint8_t nrd = 0, nwr = 0, k;
	x86_reg r = X86_REG_INVALID;

	if (d && d->type == X86_OP_REG && reg64(d->reg) < X86_REG_ENDING)
		r = reg64(d->reg);
	if (r != X86_REG_INVALID && d->size >= 4) {
		switch (in->id) {
		case X86_INS_MOV:
			full = vals_of(v, s);
			break;
		case X86_INS_XOR:
		case X86_INS_SUB:
			if (s && s->type == X86_OP_REG && s->reg == d->reg)
				full = 1;	/* zero */
			else if (in->id == X86_INS_SUB && s && s->type == X86_OP_IMM)
				full = vals_add(v->full[r], -s->imm);
			break;
		case X86_INS_MOVZX:
			if (s && s->type == X86_OP_REG && s->size == 1)
				full = v->low[reg64(s->reg)] | v->full[reg64(s->reg)];
			break;
		case X86_INS_INC:
			full = vals_add(v->full[r], 1);
			break;
		case X86_INS_ADD:
			if (s && s->type == X86_OP_IMM)
				full = vals_add(v->full[r], s->imm);
			break;
		case X86_INS_LEA:
			if (s && s->type == X86_OP_MEM && s->mem.index == X86_REG_INVALID &&
			    s->mem.base != X86_REG_INVALID && s->mem.base != X86_REG_RIP)
				full = vals_add(v->full[reg64(s->mem.base)], s->mem.disp);
			break;
		default:
			break;
		}
	} else if (r != X86_REG_INVALID && d->size == 1 && is_setcc(in->id)) {
		/* the low byte is 0 or 1, the rest as it was (all zero: then the whole too) */
		low = 3;
		full = v->full[r] == 1 ? 3 : 0;
	}
	/* whatever else the instruction writes (a call: the caller-saved registers) is unknown */
	if (is_call(in)) {
		static const x86_reg clobbered[] = { X86_REG_RAX, X86_REG_RCX, X86_REG_RDX,
						     X86_REG_RSI, X86_REG_RDI, X86_REG_R8,
						     X86_REG_R9, X86_REG_R10, X86_REG_R11 };

		for (k = 0; k < sizeof(clobbered) / sizeof(clobbered[0]); k++)
			v->full[clobbered[k]] = v->low[clobbered[k]] = 0;
	}
	if (cs_regs_access(c->cs, in, rd, &nrd, wr, &nwr) == CS_ERR_OK)
		for (k = 0; k < nwr; k++)
			if (reg64(wr[k]) < X86_REG_ENDING)
				v->full[reg64(wr[k])] = v->low[reg64(wr[k])] = 0;
	if (r != X86_REG_INVALID) {
		v->full[r] = full;
		v->low[r] = low;
	}
}

/* A direct jump's target, or 0. */
static uint64_t jump_target(struct code *c, const cs_insn *in)
{
	const cs_x86_op *t = op(in, 0);

	if (!cs_insn_group(c->cs, in, X86_GRP_JUMP) || !t || t->type != X86_OP_IMM)
		return 0;
	return (uint64_t)t->imm;
}

/* Does the block end here (nothing falls through to the next instruction)? */
static bool block_ends(const cs_insn *in)
{
	return in->id == X86_INS_RET || in->id == X86_INS_JMP || in->id == X86_INS_UD2 ||
	       in->id == X86_INS_HLT || in->id == X86_INS_INT3;
}

/*
 * SSL_ResetHandshake: `ss->handshaking = asServer ? sslHandshakingAsServer (2) :
 * sslHandshakingAsClient (1)`: the one field stored 1 on one path and 2 on the other
 * (GCC: two `movl $imm`), or once with a register that holds 1 or 2 (clang: `setne
 * %cl; movzbl %cl, %ecx; inc %ecx; mov %ecx, off(%rbx)`). Register values are
 * followed inside basic blocks only: at a jump's target they are unknown.
 */
#define ROLE_STORES	32

static int role_offset(struct code *c, uint32_t *off)
{
	uint64_t v = elf_func_vaddr(c->img, "SSL_ResetHandshake"), size, targets[128];
	int64_t disps[ROLE_STORES], found = -1;
	uint8_t sets[ROLE_STORES] = { 0 };
	int n, i, j, nd = 0, nt = 0, hits = 0;
	cs_insn *in = NULL;
	struct vals *vs;

	size = func_size(c, "SSL_ResetHandshake");
	if (!v || !size)
		return -1;
	n = code_disasm(c, v, size < 4096 ? size : 4096, &in);
	if (n <= 0)
		return -1;
	vs = calloc(1, sizeof(*vs));
	if (!vs) {
		cs_free(in, n);
		return -1;
	}
	for (i = 0; i < n && nt < 128; i++)
		if (jump_target(c, &in[i]))
			targets[nt++] = jump_target(c, &in[i]);
	for (i = 0; i < n; i++) {
		const cs_x86_op *d = op(&in[i], 0), *s = op(&in[i], 1);
		uint8_t set;

		for (j = 0; j < nt; j++)
			if (targets[j] == in[i].address)
				memset(vs, 0, sizeof(*vs));
		if (in[i].id == X86_INS_MOV && d && s && d->type == X86_OP_MEM && d->size == 4 &&
		    d->mem.index == X86_REG_INVALID && d->mem.segment == X86_REG_INVALID &&
		    d->mem.base != X86_REG_RSP && d->mem.base != X86_REG_RIP && d->mem.disp >= 0 &&
		    (set = vals_of(vs, s))) {
			for (j = 0; j < nd && disps[j] != d->mem.disp; j++)
				;
			if (j == nd && nd < ROLE_STORES)
				disps[nd++] = d->mem.disp;
			if (j < nd)
				sets[j] |= set;
		}
		vals_step(c, vs, &in[i]);
		if (block_ends(&in[i]))
			memset(vs, 0, sizeof(*vs));
	}
	free(vs);
	cs_free(in, n);
	for (j = 0; j < nd; j++)
		if ((sets[j] & 6) == 6) {
			found = disps[j];
			hits++;
		}
	if (hits != 1 || found >= 65536)
		return -1;
	*off = (uint32_t)found;
	return 0;
}

/* libnspr4's PR_FileDesc2NativeHandle: `mov 8(%rax), %rX; mov off(%rX), %eY`. The
 * libnspr4.so beside libssl3.so, or the system's (Firefox's NSS uses the system's NSPR). */
static int osfd_offset(const struct attached_lib *lib, uint32_t *off)
{
	char err[512];
	struct elf_image *img;
	struct code c;
	uint64_t v;
	cs_insn *in = NULL;
	x86_reg secret = X86_REG_INVALID;
	int n, i, fd, rc = -1;

	fd = companion_open_system(lib->fd, lib->path, "libnspr4.so", err, sizeof(err));
	if (fd < 0) {
		log_debug("%s", err);
		return -1;
	}
	img = elf_image_open_fd(fd, "libnspr4.so", err, sizeof(err));
	if (!img) {
		log_debug("%s: libnspr4.so: %s", lib->path, err);
		close(fd);
		return -1;
	}
	v = elf_func_vaddr(img, "PR_FileDesc2NativeHandle");
	if (!v || code_open(&c, img)) {
		elf_image_close(img);
		close(fd);
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
	close(fd);
	return rc;
}

/* ---- the sslSocket register at a call site ------------------------------- */

/*
 * The register holding the sslSocket at the call `site`: the base of the last
 * `mov disp(%reg), %rdi` before it (with `want_disp`, only that displacement),
 * or of the load into the register %rdi was copied from (clang: `mov
 * 0xd0(%rbx), %rax; mov %rax, %rdi`), if nothing between writes that register
 * or calls out. The probe re-checks at run time what it reads from there
 * (ss->sec.peerCert is the certificate).
 */
static enum nss_reg site_register(struct code *c, uint64_t site, int64_t want_disp)
{
	enum nss_reg found = NSS_REG_NONE;
	x86_reg arg = X86_REG_RDI;
	uint64_t start;
	cs_insn *in = NULL;
	int n = 0, i, j, copies = 0;

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
		const cs_x86_op *d = op(&in[i], 0), *s = op(&in[i], 1);
		x86_reg base;
		int64_t disp;

		if (is_call(&in[i]) || in[i].id == X86_INS_RET || in[i].id == X86_INS_JMP)
			break;
		if (!writes_reg(c, &in[i], arg))
			continue;
		if (in[i].id == X86_INS_MOV && d && s && d->type == X86_OP_REG && d->reg == arg &&
		    s->type == X86_OP_REG && s->size == 8 && copies++ < 2) {
			arg = s->reg;	/* a copy: where it came from */
			continue;
		}
		if (!mov_load(&in[i], arg, &base, &disp) || (want_disp >= 0 && disp != want_disp))
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
			struct bpf_program *prog, uint32_t layout, uint64_t flags, int64_t want_disp,
			int *with_reg, char *err, size_t errlen)
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
		if (attach_uprobe_cookie(lib, prog, off, NSS_COOKIE(layout, reg) | flags, err, errlen))
			return -1;
		*with_reg += reg != NSS_REG_NONE;
		log_debug("%s: %s at 0x%llx (call to %s), sslSocket in register %d", lib->path,
			  bpf_program__name(prog), (unsigned long long)off, import, reg);
	}
	return n;
}

/* ---- the application's auth callback ------------------------------------ */

/* Size of the instruction at `vaddr`; 0 if it cannot be decoded. */
static unsigned insn_size(struct code *c, uint64_t vaddr)
{
	cs_insn *in = NULL;
	unsigned size = 0;
	int n = code_disasm(c, vaddr, 16, &in);

	if (n > 0) {
		size = in[0].size;
		cs_free(in, n);
	}
	return size;
}

/* SSL_AuthCertificateHook(fd, func, arg): `ss = ssl_FindSocket(fd); ss->authCertificate = func;`
 * the displacement of the store of func (kept in a preserved register over the call). */
static int auth_hook_offset(struct code *c, uint32_t *off)
{
	x86_reg func = X86_REG_RSI;
	cs_insn *in = NULL;
	int n, i, called = 0, rc = -1;

	n = func_disasm(c, "SSL_AuthCertificateHook", &in);
	for (i = 0; i < n && rc; i++) {
		const cs_x86_op *d = op(&in[i], 0), *s = op(&in[i], 1);

		if (in[i].id == X86_INS_RET || in[i].id == X86_INS_JMP)
			break;
		if (is_call(&in[i])) {
			if (called)
				break;
			called = 1;
			continue;
		}
		if (in[i].id != X86_INS_MOV || !d || !s || s->type != X86_OP_REG)
			continue;
		if (!called && d->type == X86_OP_REG && s->reg == func && d->size == 8) {
			func = d->reg;
			continue;
		}
		if (called && d->type == X86_OP_MEM && d->mem.base == X86_REG_RAX &&
		    d->mem.index == X86_REG_INVALID && s->reg == func &&
		    nss_reg_of(reg64(func)) != NSS_REG_NONE && d->mem.disp > 0 && d->mem.disp < 65536) {
			*off = (uint32_t)d->mem.disp;
			rc = 0;
		}
	}
	if (n > 0)
		cs_free(in, n);
	return rc;
}

/* In the function at `fn`: its one `call *off(%reg)` with %reg preserved across calls. */
static int auth_call_in(struct code *c, uint64_t fn, uint32_t off, uint64_t *site,
			enum nss_reg *reg)
{
	uint64_t start, end;
	cs_insn *in = NULL;
	int n, i, hits = 0;

	if (elf_func_range(c->img, fn, &start, &end) || start != fn || end - start > 4096)
		return -1;
	n = code_disasm(c, fn, end - fn, &in);
	for (i = 0; i < n; i++) {
		const cs_x86_op *t = op(&in[i], 0);

		if (!is_call(&in[i]) || !t || t->type != X86_OP_MEM || t->mem.disp != off ||
		    t->mem.index != X86_REG_INVALID || nss_reg_of(t->mem.base) == NSS_REG_NONE)
			continue;
		*site = in[i].address;
		*reg = nss_reg_of(t->mem.base);
		hits++;
	}
	if (n > 0)
		cs_free(in, n);
	return hits == 1 ? 0 : -1;
}

/*
 * What the code after `from` (inside its function) can reach: the functions it calls
 * directly (into callees, at most max, distinct) and its own `call *off(%reg)` with
 * %reg one a call preserves (into *isite, *ireg; *nindirect counts them). Every
 * branch is followed, within the function, for at most WALK_INSNS instructions.
 * The number of callees, or -1.
 */
#define WALK_INSNS	768
#define WALK_BLOCKS	96

static int reachable_calls(struct code *c, uint64_t from, uint32_t off, uint64_t *callees, int max,
			   uint64_t *isite, enum nss_reg *ireg, int *nindirect)
{
	uint64_t fstart, fend, todo[WALK_BLOCKS], seen[WALK_BLOCKS];
	int ntodo = 0, nseen = 0, ncallees = 0, budget = WALK_INSNS, i, k;

	*nindirect = 0;
	if (elf_func_range(c->img, from, &fstart, &fend) || fend - fstart > (1 << 20))
		return -1;
	todo[ntodo++] = from;
	while (ntodo && budget > 0) {
		uint64_t a = todo[--ntodo];
		cs_insn *in = NULL;
		int n;

		for (k = 0; k < nseen && seen[k] != a; k++)
			;
		if (k < nseen || a < fstart || a >= fend)
			continue;
		if (nseen == WALK_BLOCKS)
			return -1;	/* too much to follow: not a shape we know */
		seen[nseen++] = a;
		n = code_disasm(c, a, fend - a < 1024 ? fend - a : 1024, &in);
		for (i = 0; i < n && budget > 0; i++, budget--) {
			const cs_x86_op *t = op(&in[i], 0);
			uint64_t j;

			if (is_call(&in[i]) && t && t->type == X86_OP_IMM) {
				for (k = 0; k < ncallees && callees[k] != (uint64_t)t->imm; k++)
					;
				if (k == ncallees && ncallees < max)
					callees[ncallees++] = (uint64_t)t->imm;
			} else if (is_call(&in[i]) && t && t->type == X86_OP_MEM && t->mem.disp == off &&
				   t->mem.index == X86_REG_INVALID &&
				   nss_reg_of(t->mem.base) != NSS_REG_NONE) {
				*isite = in[i].address;
				*ireg = nss_reg_of(t->mem.base);
				(*nindirect)++;
			}
			j = jump_target(c, &in[i]);
			if (j && j >= fstart && j < fend) {
				if (ntodo == WALK_BLOCKS) {
					cs_free(in, n);
					return -1;
				}
				todo[ntodo++] = j;
			}
			if (block_ends(&in[i]))
				break;
			/* a block already walked: it goes on from there */
			for (k = 0; i + 1 < n && k < nseen && seen[k] != in[i + 1].address; k++)
				;
			if (i + 1 < n && k < nseen)
				break;
		}
		if (n > 0)
			cs_free(in, n);
	}
	return ncallees;
}

/*
 * The call of the auth callback (ssl3_AuthCertificate's `ss->authCertificate(...)`):
 * what the code after each SECKEY_UpdateCertPQG reaches, directly or in the one
 * function it calls that makes that call (GCC calls ssl3_AuthCertificate first;
 * clang may test ssl3_ExtensionNegotiated(ss, ssl_cert_status_xtn) before), the same
 * for all of them. 0 with its address and the sslSocket's register, or -1.
 */
static int auth_call_site(struct code *c, const uint64_t *pqg, int npqg, uint32_t off,
			  uint64_t *site, enum nss_reg *reg)
{
	int k, i, n;

	*site = 0;
	for (k = 0; k < npqg; k++) {
		uint64_t callees[16], s = 0, is = 0;
		enum nss_reg r = NSS_REG_NONE, ir = NSS_REG_NONE;
		unsigned size = insn_size(c, pqg[k]);
		int hits, nind = 0;

		if (!size)
			return -1;
		n = reachable_calls(c, pqg[k] + size, off, callees, 16, &is, &ir, &nind);
		if (n < 0 || nind > 1)
			return -1;
		hits = nind;
		if (nind) {
			s = is;
			r = ir;
		}
		for (i = 0; i < n; i++) {
			uint64_t cs_site = 0;
			enum nss_reg cr = NSS_REG_NONE;

			if (auth_call_in(c, callees[i], off, &cs_site, &cr))
				continue;
			s = cs_site;
			r = cr;
			hits++;
		}
		if (hits != 1 || (*site && (s != *site || r != *reg)))
			return -1;
		*site = s;
		*reg = r;
	}
	return *site ? 0 : -1;
}

/* Probe each call of `import` with `prog`, and the instruction after it with `ret`. */
static int nss_attach_calls(struct code *c, struct attached_lib *lib, const char *import,
			    struct bpf_program *prog, struct bpf_program *ret, uint64_t cookie,
			    char *err, size_t errlen)
{
	uint64_t sites[MAX_SITES];
	int n, i;

	n = elf_import_call_sites(c->img, import, sites, MAX_SITES);
	if (n <= 0) {
		snprintf(err, errlen, "%s: no call to %s found", lib->path, import);
		return -1;
	}
	for (i = 0; i < n; i++) {
		unsigned size = insn_size(c, sites[i]);
		int64_t off = elf_vaddr_to_offset(c->img, sites[i]);

		if (!size || off < 0) {
			snprintf(err, errlen, "%s: call to %s at 0x%llx cannot be probed", lib->path,
				 import, (unsigned long long)sites[i]);
			return -1;
		}
		if ((prog && attach_uprobe_cookie(lib, prog, off, cookie, err, errlen)) ||
		    attach_uprobe_cookie(lib, ret, off + size, cookie, err, errlen))
			return -1;
		log_debug("%s: %s%s%s at 0x%llx (call to %s)", lib->path,
			  prog ? bpf_program__name(prog) : "", prog ? ", " : "", bpf_program__name(ret),
			  (unsigned long long)off, import);
	}
	return n;
}

/*
 * libnss3's libpkix (CERT_VerifyCert's engine by default in Debian 13's NSS
 * 3.110, not in 3.61 nor 3.87): PKIX_PL_Cert_VerifySignature extracts the issuer's key
 * from a copy of its SubjectPublicKeyInfo (SECKEY_ExtractPublicKey) and calls
 * CERT_VerifySignedDataWithPublicKey(&subject->signatureWrap, key, wincx):
 * each function that makes both calls gets nss_pkix_key on the first and
 * nss_pkix_sig (and nss_pkix_sig_ret after it) on the second. The exported
 * CERT_VerifySignedData (cert_VerifyCertChainOld's, probed above) extracts
 * with CERT_ExtractPublicKey and is left alone. None found: the build has no
 * libpkix, nothing more to probe. Returns the functions probed, -1 with err.
 */
struct nss_pkix_site {
	uint64_t sig;		/* the CERT_VerifySignedDataWithPublicKey call */
	int nkeys;
	uint64_t keys[4];	/* the SECKEY_ExtractPublicKey calls before it, in its function */
};

/* The libpkix-shaped functions of a libnss3 (at most `max`); -1 if it cannot be decoded. */
static int nss_pkix_sites(struct code *c, struct nss_pkix_site *out, int max)
{
	uint64_t vsites[MAX_SITES], xsites[MAX_SITES], start, end;
	int nv, nx, i, j, n = 0;

	nv = elf_import_call_sites(c->img, "CERT_VerifySignedDataWithPublicKey", vsites, MAX_SITES);
	nx = elf_import_call_sites(c->img, "SECKEY_ExtractPublicKey", xsites, MAX_SITES);
	if (nv < 0 || nx < 0)
		return -1;
	for (i = 0; i < nv && n < max; i++) {
		if (!insn_size(c, vsites[i]) || elf_vaddr_to_offset(c->img, vsites[i]) < 0 ||
		    elf_func_range(c->img, vsites[i], &start, &end))
			continue;
		out[n].sig = vsites[i];
		out[n].nkeys = 0;
		for (j = 0; j < nx && out[n].nkeys < 4; j++)
			if (xsites[j] >= start && xsites[j] < vsites[i] &&
			    elf_vaddr_to_offset(c->img, xsites[j]) >= 0)
				out[n].keys[out[n].nkeys++] = xsites[j];
		n += out[n].nkeys > 0;
	}
	return n;
}

static int nss3_attach_pkix(struct pinwarden_bpf *skel, struct attached_lib *lib,
			    struct code *c, char *err, size_t errlen)
{
	struct nss_pkix_site ps[MAX_SITES];
	int n = nss_pkix_sites(c, ps, MAX_SITES), i, j;

	for (i = 0; i < n; i++) {
		int64_t off = elf_vaddr_to_offset(c->img, ps[i].sig);

		for (j = 0; j < ps[i].nkeys; j++)
			if (attach_uprobe_cookie(lib, skel->progs.nss_pkix_key,
						 elf_vaddr_to_offset(c->img, ps[i].keys[j]), 0, err, errlen))
				return -1;
		if (attach_uprobe_cookie(lib, skel->progs.nss_pkix_sig, off, 0, err, errlen) ||
		    attach_uprobe_cookie(lib, skel->progs.nss_pkix_sig_ret, off + insn_size(c, ps[i].sig),
					 0, err, errlen))
			return -1;
		log_debug("%s: nss_pkix_sig at 0x%llx (call to CERT_VerifySignedDataWithPublicKey, "
			  "%d SECKEY_ExtractPublicKey before it)", lib->path, (unsigned long long)off,
			  ps[i].nkeys);
	}
	return n < 0 ? 0 : n;	/* none: no libpkix to probe */
}

/* libnss3: the signature checks of the chain it builds (bpf/nss.bpf.c nss_sig). */
static int nss3_attach(struct pinwarden_bpf *skel, struct attached_lib *lib, struct code *c,
		       char *err, size_t errlen)
{
	if (nss_attach_calls(c, lib, "CERT_VerifySignedData", skel->progs.nss_sig,
			     skel->progs.nss_sig_ret, 0, err, errlen) < 0)
		return -1;
	return nss3_attach_pkix(skel, lib, c, err, errlen) < 0 ? -1 : 0;
}

/*
 * libssl3: NSS's verification of the peer's chain; where the auth callback
 * returns (nss_auth_done's offset and cookie, attached by the caller once the
 * chain's probes wait for it). 0 when all is found and attached, -1 with err.
 */
static int nss_attach_verify(struct pinwarden_bpf *skel, struct attached_lib *lib,
			     struct code *c, uint32_t layout, uint64_t *done_off,
			     uint64_t *done_cookie, char *err, size_t errlen)
{
	uint64_t pqg[MAX_SITES], site;
	enum nss_reg reg = NSS_REG_NONE;
	uint32_t auth;
	unsigned size;
	int64_t off;
	int n;

	n = elf_import_call_sites(c->img, "SECKEY_UpdateCertPQG", pqg, MAX_SITES);
	if (auth_hook_offset(c, &auth) || n <= 0 || auth_call_site(c, pqg, n, auth, &site, &reg)) {
		snprintf(err, errlen, "the call of the auth callback (ss->authCertificate) was not found");
		return -1;
	}
	size = insn_size(c, site);
	off = elf_vaddr_to_offset(c->img, site);
	if (!size || off < 0) {
		snprintf(err, errlen, "the call of the auth callback cannot be probed");
		return -1;
	}
	if (attach_entry_cookie(c->img, lib, "SSL_AuthCertificateComplete", skel->progs.nss_complete,
				NSS_COOKIE(layout, 0), err, errlen) ||
	    nss_attach_calls(c, lib, "CERT_NewTempCertificate", NULL, skel->progs.nss_cert_ret,
			     NSS_COOKIE(layout, 0), err, errlen) < 0 ||
	    nss_attach_calls(c, lib, "CERT_VerifyCert", skel->progs.nss_verify,
			     skel->progs.nss_verify_ret, NSS_COOKIE(layout, 0), err, errlen) < 0 ||
	    nss_attach_calls(c, lib, "CERT_VerifyCertName", skel->progs.nss_name,
			     skel->progs.nss_verify_ret, NSS_COOKIE(layout, 0), err, errlen) < 0)
		return -1;
	*done_off = (uint64_t)off + size;
	*done_cookie = NSS_COOKIE(layout, reg);
	log_debug("%s: nss_auth_done at 0x%llx (after ss->authCertificate +0x%x), sslSocket in "
		  "register %d", lib->path, (unsigned long long)*done_off, auth, reg);
	return 0;
}

/* ---- attach ------------------------------------------------------------- */

/* examination workers plan at once (library_plan): slots taken behind a lock */
static pthread_mutex_t nss_layouts_mu = PTHREAD_MUTEX_INITIALIZER;
static struct nss_layout nss_lays[NSS_LAYOUTS_MAX];
static uint32_t nss_nlayouts;

/* The slot of nss_layouts for `lay` (one per distinct layout, shared by every copy
 * of a build): its index, or -1 with err. */
static int nss_layout_add(struct pinwarden_bpf *skel, const struct nss_layout *lay,
			  const char *path, char *err, size_t errlen)
{
	uint32_t idx;
	int rc = -1;

	pthread_mutex_lock(&nss_layouts_mu);
	for (idx = 0; idx < nss_nlayouts; idx++)
		if (!memcmp(&nss_lays[idx], lay, sizeof(*lay))) {
			pthread_mutex_unlock(&nss_layouts_mu);
			return idx;
		}
	if (idx >= NSS_LAYOUTS_MAX)
		snprintf(err, errlen, "%s: the NSS layout table is full (%d layouts)", path,
			 NSS_LAYOUTS_MAX);
	else if (bpf_map__update_elem(skel->maps.nss_layouts, &idx, sizeof(idx), lay,
				      sizeof(*lay), BPF_ANY))
		snprintf(err, errlen, "%s: nss_layouts: %s", path, strerror(errno));
	else
		nss_lays[rc = nss_nlayouts++] = *lay;
	pthread_mutex_unlock(&nss_layouts_mu);
	return rc;
}

static int nss_attach(struct pinwarden_bpf *skel, struct attached_lib *lib,
		      struct elf_image *img, char *err, size_t errlen)
{
	struct nss_layout lay = { .role = NSS_OFF_UNKNOWN, .osfd = NSS_OFF_UNKNOWN };
	uint64_t find_socket = 0, find_socket2 = 0, done_off = 0, done_cookie = 0, wait = 0;
	int idx, certs, certs_reg, done, done_reg, rc = -1;
	char verr[256];
	struct code c;

	if (!nss_is_libssl3(img)) {
		if (code_open(&c, img)) {
			snprintf(err, errlen, "%s: %s", lib->path, strerror(errno));
			return -1;
		}
		rc = nss3_attach(skel, lib, &c, err, errlen);
		code_close(&c);
		return rc;
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
	if (osfd_offset(lib, &lay.osfd))
		log_warnx("%s: libnspr4's socket field not found: peers come from each thread's "
			  "last connect()", lib->path);
	idx = nss_layout_add(skel, &lay, lib->path, err, errlen);
	if (idx < 0)
		goto out;
	log_debug("%s: sslSocket peerCert +0x%x url +0x%x fd +0x%x role +0x%x, NSPR osfd +0x%x",
		  lib->path, lay.peer_cert, lay.url, lay.fd, lay.role, lay.osfd);

	certs = nss_attach_sites(&c, lib, "CERT_NewTempCertificate", skel->progs.nss_cert, idx, 0,
				 -1, &certs_reg, err, errlen);
	if (certs < 0)
		goto out;
	if (nss_attach_verify(skel, lib, &c, idx, &done_off, &done_cookie, verr, sizeof(verr)))
		log_warnx("%s: %s: NSS's verification is not read, only leaf pins count", lib->path,
			  verr);
	else
		wait = NSS_COOKIE_WAIT;
	done = nss_attach_sites(&c, lib, "SECKEY_UpdateCertPQG", skel->progs.nss_chain_done, idx,
				wait, lay.peer_cert, &done_reg, err, errlen);
	if (done < 0)
		goto out;
	/* each verdict finds its sslSocket at the call itself or at the certificates */
	if (!certs_reg && done_reg < done) {
		snprintf(err, errlen, "%s: no call site names its sslSocket", lib->path);
		goto out;
	}
	/* last: until the chains wait for it, it would find none pending */
	if (wait && attach_uprobe_cookie(lib, skel->progs.nss_auth_done, done_off, done_cookie, err,
					 errlen))
		goto out;
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
