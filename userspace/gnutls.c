// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * GnuTLS 3 (libgnutls.so.30): where bpf/gnutls.bpf.c's probes go, and where the
 * session fields it reads lie in this build. Nothing is hard-coded:
 *
 * - The chain is judged in the internal verify-callback runner, the one
 *   function that calls both gnutls_auth_server_get_type and
 *   gnutls_auth_client_get_type (through the PLT): those call sites are found
 *   with capstone, and grouped by function with the unwind table, which
 *   stripped libraries keep. gnutls_kx_get, which calls only one of them,
 *   is left alone.
 * - The offsets of the session's side, auth info, transport, and of the auth
 *   info's peer-certificate list are read out of the machine code of the
 *   exported accessors that return them (gnutls_auth_get_type,
 *   gnutls_certificate_get_peers, gnutls_transport_get_ptr). A build whose
 *   code does not look the way this file expects is reported and left
 *   uncovered, never guessed at.
 */
#include <capstone/capstone.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "gnutls.h"
#include "libraries.h"
#include "log.h"
#include "pinwarden.skel.h"

static const char *const gnutls_sonames[] = { "libgnutls.so.30", NULL };

static bool gnutls_match(struct elf_image *img, const char *path)
{
	return elf_func_vaddr(img, "gnutls_handshake") &&
	       elf_func_vaddr(img, "gnutls_certificate_get_peers") &&
	       elf_func_vaddr(img, "gnutls_auth_server_get_type");
}

/* ---- reading offsets out of machine code -------------------------------- */

#define FUNC_BYTES	512	/* the accessors are short; more is never needed */
#define NO_OFF		UINT32_MAX

struct disasm {
	csh h;
	cs_insn *insn;
	size_t n;		/* instructions up to the first ret */
	size_t total;		/* disassembled (to free) */
};

/* Disassemble the start of an exported function, up to its first `ret`. */
static int disasm_func(struct elf_image *img, const char *func, struct disasm *d)
{
	uint8_t code[FUNC_BYTES];
	uint64_t v = elf_func_vaddr(img, func);
	size_t len = sizeof(code), skip = 0, i;

	memset(d, 0, sizeof(*d));
	if (!v)
		return -1;
	/* a short function near the end of .text: read what there is */
	while (len >= 16 && elf_read_vaddr(img, v, code, len))
		len /= 2;
	if (len < 16)
		return -1;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &d->h) != CS_ERR_OK)
		return -1;
	cs_option(d->h, CS_OPT_DETAIL, CS_OPT_ON);
	/* builds with indirect-branch tracking start every function with endbr64 */
	if (!memcmp(code, "\xf3\x0f\x1e\xfa", 4))
		skip = 4;
	d->n = d->total = cs_disasm(d->h, code + skip, len - skip, v + skip, 0, &d->insn);
	for (i = 0; i < d->n; i++) {
		if (d->insn[i].id == X86_INS_RET) {
			d->n = i + 1;
			break;
		}
	}
	return d->n ? 0 : -1;
}

static void disasm_free(struct disasm *d)
{
	if (d->insn)
		cs_free(d->insn, d->total);
	if (d->h)
		cs_close(&d->h);
}

static const cs_x86 *x86(const cs_insn *in)
{
	return &in->detail->x86;
}

/* Is operand i a plain memory operand [base + disp] (no index, no segment)? */
static bool mem_base(const cs_insn *in, int i, x86_reg *base, int64_t *disp, uint8_t *size)
{
	const cs_x86_op *op;

	if (x86(in)->op_count <= i)
		return false;
	op = &x86(in)->operands[i];
	if (op->type != X86_OP_MEM || op->mem.index != X86_REG_INVALID ||
	    op->mem.segment != X86_REG_INVALID || op->mem.base == X86_REG_INVALID ||
	    op->mem.base == X86_REG_RIP)
		return false;
	*base = op->mem.base;
	*disp = op->mem.disp;
	*size = op->size;
	return true;
}

static bool is_reg(const cs_insn *in, int i, x86_reg *r)
{
	if (x86(in)->op_count <= i || x86(in)->operands[i].type != X86_OP_REG)
		return false;
	*r = x86(in)->operands[i].reg;
	return true;
}

static bool is_imm(const cs_insn *in, int i, int64_t want)
{
	return x86(in)->op_count > i && x86(in)->operands[i].type == X86_OP_IMM &&
	       x86(in)->operands[i].imm == want;
}

static bool sane(int64_t disp, int64_t max)
{
	return disp >= 0 && disp < max;
}

/*
 * gnutls_auth_get_type(session):
 *   cmp dword [rdi + ENTITY], GNUTLS_SERVER ; ...
 */
static int layout_entity(struct elf_image *img, struct pw_gnutls_layout *l)
{
	struct disasm d;
	x86_reg base;
	int64_t disp;
	uint8_t size;
	int rc = -1;

	if (disasm_func(img, "gnutls_auth_get_type", &d))
		return -1;
	if (d.insn[0].id == X86_INS_CMP && mem_base(&d.insn[0], 0, &base, &disp, &size) &&
	    base == X86_REG_RDI && size == 4 && is_imm(&d.insn[0], 1, PW_GNUTLS_SERVER) &&
	    sane(disp, 1 << 16)) {
		l->entity = disp;
		rc = 0;
	}
	disasm_free(&d);
	return rc;
}

/*
 * gnutls_transport_get_ptr(session):
 *   mov rax, qword [rdi + TRANSPORT_RECV] ; ret
 */
static int layout_transport(struct elf_image *img, struct pw_gnutls_layout *l)
{
	struct disasm d;
	x86_reg base, r;
	int64_t disp;
	uint8_t size;
	int rc = -1;

	if (disasm_func(img, "gnutls_transport_get_ptr", &d))
		return -1;
	if (d.n == 2 && d.insn[0].id == X86_INS_MOV && is_reg(&d.insn[0], 0, &r) &&
	    r == X86_REG_RAX && mem_base(&d.insn[0], 1, &base, &disp, &size) &&
	    base == X86_REG_RDI && size == 8 && sane(disp, 1 << 16)) {
		l->transport = disp;
		rc = 0;
	}
	disasm_free(&d);
	return rc;
}

/*
 * gnutls_certificate_get_peers(session, &n), whatever the register allocation:
 *   mov S, rdi                           (S: the session, in any register)
 *   cmp dword [S + AUTH_INFO_TYPE], GNUTLS_CRD_CERTIFICATE
 *   mov I, qword [S + AUTH_INFO]         (I: the cert_auth_info_st *)
 *   mov e.., dword [I + NCERTS]          (*list_size = info->ncerts)
 *   mov R, qword [I + LIST]              (return info->raw_certificate_list)
 *   mov rax, R                           (unless R is rax already)
 * The comparison that counts is the last one before the load of the info
 * pointer: CHECK_AUTH_TYPE may come first, inlined, with its own comparisons.
 * The list is what rax holds at the ret, followed through register copies:
 * 3.7.1 (Debian 11) keeps the info pointer in a callee-saved register, loads
 * the list over it (mov r12, [r12 + LIST]) and copies it to rax only where
 * the NULL returns join; 3.7.9 and later load it into rax directly.
 */
static int layout_peers(struct elf_image *img, struct pw_gnutls_layout *l)
{
	bool session[X86_REG_ENDING] = { [X86_REG_RDI] = true }, info[X86_REG_ENDING] = {};
	int64_t type_off = -1, info_off = -1, n_off = -1, list_off, disp;
	int64_t field[X86_REG_ENDING];	/* the 8-byte info field a register holds, or -1 */
	struct disasm d;
	x86_reg base, r, src;
	uint8_t size;
	size_t i;
	int rc = -1;

	if (disasm_func(img, "gnutls_certificate_get_peers", &d))
		return -1;
	for (i = 0; i < X86_REG_ENDING; i++)
		field[i] = -1;
	for (i = 0; i < d.n; i++) {
		const cs_insn *in = &d.insn[i];
		bool from_session, from_info;

		if (in->id == X86_INS_CMP && mem_base(in, 0, &base, &disp, &size) &&
		    session[base] && size == 4 && is_imm(in, 1, PW_GNUTLS_CRD_CERTIFICATE) &&
		    info_off < 0) {
			type_off = disp;
			continue;
		}
		if (in->id != X86_INS_MOV || !is_reg(in, 0, &r))
			continue;
		if (is_reg(in, 1, &src)) {
			/* the session, the info pointer or a field copied to another register */
			session[r] = session[src];
			info[r] = info[src];
			field[r] = field[src];
			continue;
		}
		if (!mem_base(in, 1, &base, &disp, &size))
			continue;
		/* what the base held, before the load replaces it (r may be the base) */
		from_session = session[base];
		from_info = info[base];
		session[r] = info[r] = false;
		field[r] = -1;
		if (from_session && size == 8 && type_off >= 0 && info_off < 0) {
			info_off = disp;
			info[r] = true;
		} else if (from_info && size == 4 && n_off < 0) {
			n_off = disp;
		} else if (from_info && size == 8) {
			field[r] = disp;
		}
	}
	list_off = field[X86_REG_RAX];
	if (sane(type_off, 1 << 16) && sane(info_off, 1 << 16) && sane(n_off, 4096) &&
	    sane(list_off, 4096) && n_off != list_off && type_off != info_off) {
		l->auth_info_type = type_off;
		l->auth_info = info_off;
		l->npeers = n_off;
		l->peers = list_off;
		rc = 0;
	}
	disasm_free(&d);
	return rc;
}

/* ---- the layouts map: one entry per distinct build -------------------- */

/* examination workers plan at once (library_plan): the table behind a lock */
static pthread_mutex_t layouts_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pw_gnutls_layout layouts[PW_GNUTLS_LAYOUTS];
static unsigned nlayouts;

static int layout_index(struct pinwarden_bpf *skel, const struct pw_gnutls_layout *l)
{
	int rc = -1;
	__u32 i;

	pthread_mutex_lock(&layouts_mu);
	for (i = 0; i < nlayouts && rc < 0; i++)
		if (!memcmp(&layouts[i], l, sizeof(*l)))
			rc = i;
	if (rc < 0 && nlayouts < PW_GNUTLS_LAYOUTS) {
		i = nlayouts;
		if (!bpf_map__update_elem(skel->maps.gnutls_layouts, &i, sizeof(i), l, sizeof(*l),
					  BPF_ANY)) {
			layouts[nlayouts++] = *l;
			rc = i;
		}
	}
	pthread_mutex_unlock(&layouts_mu);
	return rc;
}

/* ---- the verify-callback runner --------------------------------------- */

#define MAX_SITES 16

struct site {
	uint64_t at, func;
	int server;		/* calls gnutls_auth_server_get_type (else _client_) */
};

/*
 * The call sites of gnutls_auth_{server,client}_get_type that lie in a
 * function calling both: the verify-callback runner (inlined copies
 * included). Returns how many, or -1.
 */
static int runner_sites(struct elf_image *img, struct site *out, int max)
{
	uint64_t srv[MAX_SITES], cli[MAX_SITES], end;
	struct site all[2 * MAX_SITES];
	int ns, nc, n = 0, i, j, k = 0;

	ns = elf_import_call_sites(img, "gnutls_auth_server_get_type", srv, MAX_SITES);
	nc = elf_import_call_sites(img, "gnutls_auth_client_get_type", cli, MAX_SITES);
	if (ns < 0 || nc < 0)
		return -1;
	for (i = 0; i < ns + nc; i++) {
		all[n].at = i < ns ? srv[i] : cli[i - ns];
		all[n].server = i < ns;
		if (elf_func_range(img, all[n].at, &all[n].func, &end) == 0)
			n++;
	}
	for (i = 0; i < n; i++) {
		bool pair = false;

		for (j = 0; j < n; j++)
			pair |= all[j].func == all[i].func && all[j].server != all[i].server;
		if (pair && k < max)
			out[k++] = all[i];
	}
	return k;
}

/*
 * gnutls_x509_crt_get_raw_dn(cert, out) and ..._get_raw_issuer_dn, which
 * return a cached copy when the certificate is not modified:
 *   mov e.., dword [rdi + CACHED + 8]     (the cached datum's size)
 *   mov e.., dword [rdi + MODIFIED]
 *   mov r.., qword [rdi + CACHED]         (its data)
 * The cached raw_dn, raw_issuer_dn and raw_spki datums follow each other
 * (lib/x509/x509_int.h, 3.5 to 3.8): the certificate's SPKI, which a trust
 * anchor's pin is judged by, is the datum after raw_issuer_dn.
 */
static int64_t cached_datum(struct elf_image *img, const char *func, int64_t *modified)
{
	int64_t size_off = -1, data_off = -1, mod_off = -1, disp;
	struct disasm d;
	x86_reg base, r;
	uint8_t size;
	size_t i;

	if (disasm_func(img, func, &d))
		return -1;
	/* both branches: the cached copy comes after the fallback's tail call */
	for (i = 0; i < d.n && i < 24 && data_off < 0; i++) {
		const cs_insn *in = &d.insn[i];

		if (in->id != X86_INS_MOV || !is_reg(in, 0, &r) ||
		    !mem_base(in, 1, &base, &disp, &size) || base != X86_REG_RDI)
			continue;
		if (size == 4 && size_off < 0)
			size_off = disp;
		else if (size == 4 && mod_off < 0)
			mod_off = disp;
		else if (size == 8 && disp && data_off < 0)
			data_off = disp;
	}
	disasm_free(&d);
	if (!sane(data_off, 4096) || size_off != data_off + 8 || !sane(mod_off, 4096) ||
	    (*modified >= 0 && *modified != mod_off))
		return -1;
	*modified = mod_off;
	return data_off;
}

static int layout_crt(struct elf_image *img, struct pw_gnutls_layout *l)
{
	int64_t modified = -1, dn, idn;

	dn = cached_datum(img, "gnutls_x509_crt_get_raw_dn", &modified);
	idn = dn < 0 ? -1 : cached_datum(img, "gnutls_x509_crt_get_raw_issuer_dn", &modified);
	if (dn < 0 || idn != dn + 16)
		return -1;
	l->crt_modified = modified;
	l->crt_spki = idn + 16;
	return 0;
}

/* ---- GnuTLS's own verification ------------------------------------------ */

/* where a connection is first used: a chain still waiting is judged there
 * (gnutls_record_send calls gnutls_record_send2: one probe is enough there) */
static const char *const io_funcs[] = {
	"gnutls_record_send2", "gnutls_record_send_range",
	"gnutls_record_recv", "gnutls_record_recv_seq", "gnutls_record_recv_packet", NULL,
};

/*
 * Probe GnuTLS's verification of a session's peer chain (bpf/gnutls.bpf.c:
 * gnutls_vpeers, gnutls_vcrt and its return, gnutls_vissuer) and the first use
 * of a connection. Returns 1 when the verdict may wait for the verification,
 * 0 when this build lacks one of the functions (the verdict is then taken at
 * the runner, only the leaf counting for pins), -1 on error.
 */
static int gnutls_attach_verification(struct pinwarden_bpf *skel, struct attached_lib *lib,
				      struct elf_image *img, int idx, bool crt_known, char *err,
				      size_t errlen)
{
	static const char *const needed[] = {
		"gnutls_certificate_verify_peers", "gnutls_x509_trust_list_verify_crt2",
		"gnutls_x509_crt_get_name_constraints", "gnutls_record_send2", "gnutls_record_recv",
		"gnutls_deinit", "gnutls_x509_name_constraints_init", NULL,
	};
	const char *missing = crt_known ? NULL : "the certificate layout (gnutls_x509_crt_get_raw_dn)";
	int i;

	for (i = 0; needed[i] && !missing; i++)
		if (!elf_func_vaddr(img, needed[i]))
			missing = needed[i];
	if (missing) {
		log_warnx("%s: no %s: pins on certificates other than the leaf cannot count for "
			  "this GnuTLS (its verification is not seen)", lib->path, missing);
		return attach_entry_cookie(img, lib, "gnutls_deinit", skel->progs.gnutls_verify,
					   PW_GNUTLS_CK(idx, PW_GNUTLS_FREE, 0), err, errlen) ? -1 : 0;
	}
	for (i = 0; io_funcs[i]; i++) {
		if (!elf_func_vaddr(img, io_funcs[i]))
			continue;
		if (attach_entry_cookie(img, lib, io_funcs[i], skel->progs.gnutls_verify,
					PW_GNUTLS_CK(idx, PW_GNUTLS_IO, 1), err, errlen))
			return -1;
	}
	if (attach_entry_cookie(img, lib, "gnutls_deinit", skel->progs.gnutls_verify,
				PW_GNUTLS_CK(idx, PW_GNUTLS_FREE, 1), err, errlen) ||
	    attach_return_cookie(img, lib, "gnutls_x509_trust_list_verify_crt2",
				 skel->progs.gnutls_verify, PW_GNUTLS_CK(idx, PW_GNUTLS_VERIFIED, 1),
				 err, errlen) ||
	    attach_entry_cookie(img, lib, "gnutls_x509_crt_get_name_constraints",
				skel->progs.gnutls_vissuer, idx, err, errlen) ||
	    attach_entry(img, lib, "gnutls_x509_name_constraints_init", skel->progs.gnutls_vpass,
			 err, errlen) ||
	    attach_entry(img, lib, "gnutls_x509_trust_list_verify_crt2", skel->progs.gnutls_vcrt,
			 err, errlen) ||
	    attach_entry(img, lib, "gnutls_certificate_verify_peers", skel->progs.gnutls_vpeers,
			 err, errlen))
		return -1;
	return 1;
}

static int gnutls_attach(struct pinwarden_bpf *skel, struct attached_lib *lib,
			 struct elf_image *img, char *err, size_t errlen)
{
	struct pw_gnutls_layout l;
	struct site sites[MAX_SITES];
	int n, i, idx, defer;
	bool crt_known;

	memset(&l, 0, sizeof(l));
	if (layout_entity(img, &l) || layout_transport(img, &l) || layout_peers(img, &l)) {
		snprintf(err, errlen, "%s: the session layout cannot be read out of "
			 "gnutls_auth_get_type, gnutls_transport_get_ptr and "
			 "gnutls_certificate_get_peers; not a GnuTLS build this version of "
			 "pinwarden knows", lib->path);
		return -1;
	}
	n = runner_sites(img, sites, MAX_SITES);
	if (n < 2) {
		snprintf(err, errlen, "%s: no function calls both gnutls_auth_server_get_type and "
			 "gnutls_auth_client_get_type (the verify-callback runner); not a GnuTLS "
			 "build this version of pinwarden knows", lib->path);
		return -1;
	}
	/* where a certificate keeps its SPKI: for the trust anchors GnuTLS verifies with */
	crt_known = layout_crt(img, &l) == 0;
	idx = layout_index(skel, &l);
	if (idx < 0) {
		snprintf(err, errlen, "%s: the GnuTLS layout table is full (%d distinct builds)", lib->path,
			 PW_GNUTLS_LAYOUTS);
		return -1;
	}
	log_debug("%s: session layout: entity %#x, auth_info %#x (type %#x), transport %#x; "
		  "peers %#x, count %#x; certificate: modified %#x, spki %#x", lib->path, l.entity,
		  l.auth_info, l.auth_info_type, l.transport, l.peers, l.npeers, l.crt_modified,
		  l.crt_spki);
	/* first what ends a wait, then what starts one */
	defer = gnutls_attach_verification(skel, lib, img, idx, crt_known, err, errlen);
	if (defer < 0)
		return -1;
	for (i = 0; i < n; i++) {
		int64_t off = elf_vaddr_to_offset(img, sites[i].at);

		if (off < 0) {
			snprintf(err, errlen, "%s: call site 0x%llx is outside the file", lib->path,
				 (unsigned long long)sites[i].at);
			return -1;
		}
		if (attach_uprobe_cookie(lib, skel->progs.gnutls_verify, off,
					 PW_GNUTLS_CK(idx, PW_GNUTLS_RUNNER, defer), err, errlen))
			return -1;
		log_debug("%s: gnutls_verify at 0x%llx (call to gnutls_auth_%s_get_type in the "
			  "function at 0x%llx)", lib->path, (unsigned long long)off,
			  sites[i].server ? "server" : "client", (unsigned long long)sites[i].func);
	}
	if (attach_entry(img, lib, "gnutls_server_name_set", skel->progs.gnutls_sni, err, errlen))
		return -1;
	return 0;
}

const struct tls_library tls_gnutls = {
	.name = "gnutls",
	.sonames = gnutls_sonames,
	.match = gnutls_match,
	.attach = gnutls_attach,
};
