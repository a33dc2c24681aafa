// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * BoringSSL: where bpf/boringssl.bpf.c's probes go in its libssl (Debian's
 * android-libboringssl ships /usr/lib/x86_64-linux-gnu/android/libssl.so.0,
 * outside the dynamic linker's cache: discovery or `run --attach PATH` hands
 * it over). Nothing is hard-coded: call sites and the layout facts the probes
 * need are read out of this very file's machine code.
 */
#include <capstone/capstone.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "libraries.h"
#include "log.h"
#include "pinwarden.skel.h"

#define CUSTOM_SITES_MAX 4

/*
 * BoringSSL's libssl: the SSL API with BoringSSL's own calls, and the
 * CRYPTO_BUFFER parser imported from its libcrypto (a statically linked
 * BoringSSL defines both and has no import call sites to probe).
 */
static bool boringssl_match(struct elf_image *img, const char *path)
{
	return elf_func_vaddr(img, "SSL_CTX_set_custom_verify") &&
	       elf_func_vaddr(img, "SSL_set_tlsext_host_name") &&
	       elf_func_vaddr(img, "SSL_get0_peer_certificates") &&
	       !elf_func_vaddr(img, "CRYPTO_BUFFER_new_from_CBS");
}

/* ---- reading machine code ---------------------------------------------- */

struct code {
	csh h;
	cs_insn *in;
	uint8_t *buf;
	const uint8_t *p;
	size_t left;
	uint64_t addr;
	struct elf_image *img;	/* charged for the work */
	uint64_t n;		/* instructions decoded */
};

/* Disassemble [vaddr, vaddr + len) of the file, with operand details. */
static int code_open(struct code *c, struct elf_image *img, uint64_t vaddr, uint64_t len)
{
	memset(c, 0, sizeof(*c));
	/* decoded with operand details: the file's budget pays per instruction (code_next) */
	if (!len || len > ELF_SWEEP_MAX || elf_image_charge(img, 0))
		return -1;
	c->img = img;
	c->buf = malloc(len);
	if (!c->buf || elf_read_vaddr(img, vaddr, c->buf, len))
		goto fail;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &c->h) != CS_ERR_OK)
		goto fail;
	cs_option(c->h, CS_OPT_DETAIL, CS_OPT_ON);
	c->in = cs_malloc(c->h);
	c->p = c->buf;
	c->left = len;
	c->addr = vaddr;
	return 0;
fail:
	free(c->buf);
	c->buf = NULL;
	return -1;
}

/* The next instruction, skipping bytes that decode to nothing (padding, data). */
static const cs_insn *code_next(struct code *c)
{
	while (c->left) {
		if (++c->n % 1024 == 0 && elf_image_charge(c->img, 1024 * 4))
			return NULL;
		if (cs_disasm_iter(c->h, &c->p, &c->left, &c->addr, c->in))
			return c->in;
		c->p++;
		c->left--;
		c->addr++;
	}
	return NULL;
}

static void code_close(struct code *c)
{
	if (c->in)
		cs_free(c->in, 1);
	if (c->h)
		cs_close(&c->h);
	free(c->buf);
}

static const cs_x86_op *op(const cs_insn *in, int i)
{
	return i < in->detail->x86.op_count ? &in->detail->x86.operands[i] : NULL;
}

/* `mov reg, [base + disp]`: returns reg, or 0. */
static unsigned load_from(const cs_insn *in, unsigned *base, int64_t *disp)
{
	const cs_x86_op *d = op(in, 0), *s = op(in, 1);

	if (in->id != X86_INS_MOV || !d || !s || d->type != X86_OP_REG || s->type != X86_OP_MEM ||
	    s->mem.index != X86_REG_INVALID || s->mem.segment != X86_REG_INVALID || d->size != 8)
		return 0;
	*base = s->mem.base;
	*disp = s->mem.disp;
	return d->reg;
}

/* Does the instruction write `reg` (as its destination operand)? */
static bool writes(csh h, const cs_insn *in, unsigned reg)
{
	const cs_x86_op *d = op(in, 0);
	cs_regs rd, wr;
	uint8_t nrd, nwr, i;

	if (cs_regs_access(h, in, rd, &nrd, wr, &nwr) == CS_ERR_OK) {
		for (i = 0; i < nwr; i++)
			if (wr[i] == reg)
				return true;
		return false;
	}
	return d && d->type == X86_OP_REG && d->reg == reg;
}

/*
 * Where the SSL keeps the custom verify callback: SSL_set_custom_verify(ssl,
 * mode, callback) loads ssl->config and stores the callback (rdx) into it.
 */
static int custom_verify_layout(struct elf_image *img, int64_t *cfg_off, int64_t *cb_off)
{
	uint64_t size = 0, v = elf_func_vaddr_size(img, "SSL_set_custom_verify", &size);
	int64_t loaded[X86_REG_ENDING];
	const cs_insn *in;
	struct code c;
	int rc = -1;
	unsigned r;

	if (!v || code_open(&c, img, v, size ? size : 64))
		return -1;
	memset(loaded, 0xff, sizeof(loaded));
	while ((in = code_next(&c)) && in->id != X86_INS_RET) {
		const cs_x86_op *d = op(in, 0), *s = op(in, 1);
		unsigned base;
		int64_t disp;

		r = load_from(in, &base, &disp);
		if (r && base == X86_REG_RDI) {
			loaded[r] = disp;
			continue;
		}
		if (in->id == X86_INS_MOV && d && s && d->type == X86_OP_MEM && s->type == X86_OP_REG &&
		    s->reg == X86_REG_RDX && d->mem.base != X86_REG_INVALID &&
		    d->mem.index == X86_REG_INVALID && loaded[d->mem.base] >= 0) {
			*cfg_off = loaded[d->mem.base];
			*cb_off = d->mem.disp;
			rc = 0;
			break;
		}
		if (d && d->type == X86_OP_REG && d->reg < X86_REG_ENDING)
			loaded[d->reg] = -1;
	}
	code_close(&c);
	return rc;
}

/*
 * Where the SSL keeps its "server" bit: SSL_is_server(ssl) is
 * `movzx eax, byte [rdi + off]; [shr eax, n;] and eax, mask; ret`.
 */
static int server_bit_layout(struct elf_image *img, uint32_t *off, uint8_t *mask)
{
	uint64_t v = elf_func_vaddr(img, "SSL_is_server");
	const cs_insn *in;
	struct code c;
	int shift = 0, rc = -1;

	if (!v || code_open(&c, img, v, 32))
		return -1;
	in = code_next(&c);
	if (!in || in->id != X86_INS_MOVZX || op(in, 1)->type != X86_OP_MEM ||
	    op(in, 1)->mem.base != X86_REG_RDI || op(in, 1)->mem.index != X86_REG_INVALID ||
	    op(in, 1)->size != 1 || op(in, 1)->mem.disp < 0 || op(in, 1)->mem.disp > 0xffffff)
		goto out;
	*off = op(in, 1)->mem.disp;
	in = code_next(&c);
	if (in && in->id == X86_INS_SHR && op(in, 1) && op(in, 1)->type == X86_OP_IMM) {
		shift = op(in, 1)->imm;
		in = code_next(&c);
	}
	if (in && in->id == X86_INS_AND && op(in, 1) && op(in, 1)->type == X86_OP_IMM &&
	    shift < 8 && (op(in, 1)->imm << shift) > 0 && (op(in, 1)->imm << shift) <= 0xff) {
		*mask = (uint8_t)(op(in, 1)->imm << shift);
		rc = 0;
	}
out:
	code_close(&c);
	return rc;
}

/*
 * The calls of the custom verify callback: `mov rB, [rA + cfg_off]` (the
 * config), `mov rC, [rB + cb_off]` (the callback), `test rC, rC` (it is
 * optional), then, a few instructions on and with rC untouched, `call rC`.
 * (Calls through a method table, `call [rB + off]`, have no NULL check.)
 */
static int custom_verify_sites(struct elf_image *img, int64_t cfg_off, int64_t cb_off,
			       uint64_t *sites, int max)
{
	uint64_t text, size;
	unsigned cfg_reg = 0, cb_reg = 0;
	int since_cfg = 99, since_cb = 99, n = 0;
	bool tested = false;
	const cs_insn *in;
	struct code c;

	if (elf_section_range(img, ".text", &text, &size) || code_open(&c, img, text, size))
		return -1;
	while ((in = code_next(&c))) {
		const cs_x86_op *t = op(in, 0), *u = op(in, 1);
		unsigned base, r;
		int64_t disp;

		since_cfg++;
		since_cb++;
		if (in->id == X86_INS_CALL && t) {
			bool hit = t->type == X86_OP_REG && since_cb <= 8 && tested && t->reg == cb_reg;

			if (hit && n < max)
				sites[n] = in->address;
			if (hit)
				log_debug("custom verify callback called at 0x%llx",
					  (unsigned long long)in->address);
			n += hit;
			since_cfg = since_cb = 99;
			continue;
		}
		if (in->id == X86_INS_TEST && since_cb <= 2 && t && u && t->type == X86_OP_REG &&
		    u->type == X86_OP_REG && t->reg == cb_reg && u->reg == cb_reg) {
			tested = true;
			continue;
		}
		r = load_from(in, &base, &disp);
		if (r && disp == cb_off && since_cfg <= 3 && base == cfg_reg) {
			cb_reg = r;
			since_cb = 0;
			tested = false;
		} else if (r && disp == cfg_off && base != X86_REG_RIP) {
			cfg_reg = r;
			since_cfg = 0;
		} else {
			if (since_cb <= 8 && writes(c.h, in, cb_reg))
				since_cb = 99;
			if (since_cfg <= 8 && writes(c.h, in, cfg_reg))
				since_cfg = 99;
		}
	}
	code_close(&c);
	return n;
}

/*
 * Applications that verify with SSL_[CTX_]set_custom_verify never reach the
 * X509 layer: their chain is complete where libssl calls the callback. Not
 * finding that call leaves only those applications uncovered: say so, go on.
 */
static int attach_custom_verify(struct pinwarden_bpf *skel, struct attached_lib *lib,
				struct elf_image *img, char *err, size_t errlen)
{
	uint64_t sites[CUSTOM_SITES_MAX];
	int64_t cfg_off = 0, cb_off = 0, off;
	uint32_t server_off = 0;
	uint8_t mask = 0;
	int n, i;

	if (custom_verify_layout(img, &cfg_off, &cb_off) || server_bit_layout(img, &server_off, &mask)) {
		log_warnx("%s: layout of SSL_set_custom_verify/SSL_is_server not understood: "
			  "applications using custom verify callbacks are NOT covered", lib->path);
		return 0;
	}
	n = custom_verify_sites(img, cfg_off, cb_off, sites, CUSTOM_SITES_MAX);
	if (n <= 0 || n > CUSTOM_SITES_MAX) {
		log_warnx("%s: %d candidate calls of the custom verify callback: applications using "
			  "custom verify callbacks are NOT covered", lib->path, n);
		return 0;
	}
	for (i = 0; i < n; i++) {
		off = elf_vaddr_to_offset(img, sites[i]);
		if (off < 0) {
			snprintf(err, errlen, "%s: call site 0x%llx is outside the file", lib->path,
				 (unsigned long long)sites[i]);
			return -1;
		}
		if (attach_uprobe_cookie(lib, skel->progs.bssl_custom_verify, off,
					 (uint64_t)server_off << 8 | mask, err, errlen))
			return -1;
		log_debug("%s: bssl_custom_verify at 0x%llx (config+0x%llx, callback+0x%llx, "
			  "server bit at +0x%x mask 0x%x)", lib->path, (unsigned long long)off,
			  (unsigned long long)cfg_off, (unsigned long long)cb_off, server_off, mask);
	}
	return 0;
}

static int boringssl_attach(struct pinwarden_bpf *skel, struct attached_lib *lib,
			    struct elf_image *img, char *err, size_t errlen)
{
	/* the presented certificates reach libcrypto as buffers our probes never see as
	 * X509 objects: the validated chain names them by their keys */
	uint64_t vck = libssl_verify_cookie(img, lib, true), sites[8], sd[8];
	int nv = vck ? x509_verified_sites(img, sites, 8) : 0, nsd;

	if (vck && nv <= 0) {
		log_warnx("%s: no X509_STORE_CTX_get_error call beside X509_STORE_CTX_set_default: "
			  "only leaf pins count", lib->path);
		vck = 0;
	}
	nsd = elf_import_call_sites(img, "X509_STORE_CTX_set_default", sd, 8);
	if (nsd <= 0) {
		snprintf(err, errlen, "%s: no call to X509_STORE_CTX_set_default found; not a "
			 "BoringSSL build this version of pinwarden knows", lib->path);
		return -1;
	}
	if (attach_sites(img, lib, sd, nsd, skel->progs.bssl_verify, vck != 0,
			 "call to X509_STORE_CTX_set_default", err, errlen) ||
	    (vck && attach_sites(img, lib, sites, nv, skel->progs.bssl_verified, vck,
				 "call to X509_STORE_CTX_get_error", err, errlen)))
		return -1;
	if (attach_call_sites(img, lib, "CRYPTO_BUFFER_new_from_CBS", skel->progs.bssl_cert, 1,
			      err, errlen) < 0 ||
	    attach_call_sites(img, lib, "X509_STORE_CTX_set_ex_data", skel->progs.bssl_verify_ssl,
			      1, err, errlen) < 0 ||
	    attach_custom_verify(skel, lib, img, err, errlen) ||
	    attach_entry(img, lib, "SSL_do_handshake", skel->progs.bssl_handshake, err, errlen) ||
	    attach_entry(img, lib, "SSL_set_tlsext_host_name", skel->progs.bssl_sni, err, errlen) ||
	    attach_entry(img, lib, "SSL_set_fd", skel->progs.bssl_set_fd, err, errlen) ||
	    attach_entry(img, lib, "SSL_free", skel->progs.bssl_free, err, errlen))
		return -1;
	return 0;
}

const struct tls_library tls_boringssl = {
	.name = "boringssl",
	.match = boringssl_match,
	.attach = boringssl_attach,
};
