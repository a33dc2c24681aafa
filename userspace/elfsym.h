/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What the attach code needs to know about an ELF file: function addresses,
 * file offsets, the call sites of an imported function (through its PLT stub
 * or GOT slot, found with capstone), and a cheap address to probe a function at.
 */
#ifndef PW_ELFSYM_H
#define PW_ELFSYM_H

#include <stddef.h>
#include <stdint.h>

struct elf_image;

/*
 * What examining one file may cost, whoever made it: a daemon that examines
 * every file a process maps cannot let a crafted one take seconds or gigabytes.
 * A file over ELF_FILE_MAX or with more than ELF_SECTIONS_MAX sections is
 * refused at open (errno EFBIG); past ELF_WORK_MAX units of work (a symbol or
 * relocation compared, an instruction decoded, a table entry read) or
 * ELF_TIME_MAX_MS of CPU time, every lookup fails from then on and elf_image_budget_spent
 * says why.
 */
#define ELF_FILE_MAX		(512ull << 20)
#define ELF_SECTIONS_MAX	4096
#define ELF_SWEEP_MAX		(32u << 20)	/* bytes of code disassembled whole */
#define ELF_CALLS_MAX		(1u << 20)	/* call instructions kept from them */
#define ELF_WORK_MAX		(64u << 20)
#define ELF_TIME_MAX_MS		500

/* NULL with err (errno EFBIG: over a budget; ENOEXEC: not an x86-64 ELF file) */
struct elf_image *elf_image_open(const char *path, char *err, size_t errlen);

/* The same from a descriptor the caller keeps (and closes after elf_image_close):
 * `name` only says which file in errors. */
struct elf_image *elf_image_open_fd(int fd, const char *name, char *err, size_t errlen);

/* The descriptor the image reads (pread): the very file that was examined. */
int elf_image_fd(const struct elf_image *img);
void elf_image_close(struct elf_image *img);

/* Why a budget ran out while examining img, or NULL. */
const char *elf_image_budget_spent(const struct elf_image *img);

/* Charge `units` of work to img: 0, or -1 once a budget is spent. */
int elf_image_charge(struct elf_image *img, uint64_t units);

/* Address of a function defined in the file (.symtab, else .dynsym); 0 if absent. */
uint64_t elf_func_vaddr(struct elf_image *img, const char *name);

/* The first DT_NEEDED entry that starts with `prefix` ("libcrypto"): 0, or -1 if none. */
int elf_needed(struct elf_image *img, const char *prefix, char *out, size_t len);

/* Address of a data object (STT_OBJECT) defined in the file; 0 if absent. */
uint64_t elf_object_vaddr(struct elf_image *img, const char *name);

/*
 * The bytes of a section as read from the file: the one named `name`, or with
 * name NULL the allocated section that holds `vaddr`. Sets its address and
 * size; NULL if there is none or it has no file contents (NOBITS). The bytes
 * live as long as img.
 */
const uint8_t *elf_section(struct elf_image *img, const char *name, uint64_t vaddr,
			   uint64_t *addr, size_t *size);

/* Address and size (from the symbol table) of a function defined in the file; 0 if absent. */
uint64_t elf_func_vaddr_size(struct elf_image *img, const char *name, uint64_t *size);

/* Address and size of a code or data section by name (".text"); 0 or -1. */
int elf_section_range(struct elf_image *img, const char *name, uint64_t *vaddr, uint64_t *size);

/*
 * Addresses of the direct calls (call rel32, or a jmp rel32 tail call) inside
 * function `caller` to function `callee`, both defined in the file: the call
 * sites of statically linked code. Only the caller's bytes are read and
 * disassembled, so this is cheap even in a 100 MB executable. Returns how many
 * were found (at most `max`), or -1 on error.
 */
int elf_direct_call_sites(struct elf_image *img, const char *caller, const char *callee,
			  uint64_t *sites, int max);

/*
 * The field offset an accessor of the form `int f(const T *p) { return p->field; }`
 * reads: `mov eax, [rdi + disp]` (after an optional endbr64), then ret (an
 * `xor edi, edi` between is allowed). 0 and *off set, or -1 if the function
 * is absent or its code is anything else.
 */
int elf_accessor_offset(struct elf_image *img, const char *func, uint32_t *off);

enum elf_access {
	ELF_LOAD32,	/* mov r32, [rdi + disp] */
	ELF_LOAD64,	/* mov r64, [rdi + disp] */
	ELF_STORE_IMM,	/* mov [rdi + disp], imm */
};

/*
 * The field offset a small exported function first reaches through its first
 * argument with the given access, after nothing but checks (test, cmp,
 * conditional jumps) that leave %rdi alone: `return p->field;` with or
 * without a NULL or bounds check (OPENSSL_sk_num, OPENSSL_sk_value,
 * X509_STORE_CTX_get0_chain), or `p->field = 1; ...` (i2d_re_X509_tbs).
 * 0 and *off set, or -1 if the function is absent or reads anything else first.
 */
int elf_field_offset(struct elf_image *img, const char *func, enum elf_access access,
		     uint32_t *off);

/*
 * The same one pointer away: `mov rX, [rdi + *ptr_off]` then `mov [rX + *off], imm`
 * (BoringSSL's i2d_re_X509_tbs: x->cert_info->enc.modified = 1). 0, or -1.
 */
int elf_field_offset_indirect(struct elf_image *img, const char *func, uint32_t *ptr_off,
			      uint32_t *off);

/* File offset of a virtual address inside a PT_LOAD segment; -1 if outside. */
int64_t elf_vaddr_to_offset(struct elf_image *img, uint64_t vaddr);

/*
 * Addresses of the call instructions in the file's code that call the imported
 * function `name` (call rel32 to its PLT stub, or call *GOT(%rip)). Returns
 * how many were found (at most `max`), or -1 on error.
 */
int elf_import_call_sites(struct elf_image *img, const char *name, uint64_t *sites, int max);

/*
 * An address at or just after a function's entry where a uprobe is cheap (an
 * instruction the kernel emulates rather than single-steps), with the
 * argument registers still intact. Falls back to the entry itself.
 */
uint64_t elf_probe_point(struct elf_image *img, uint64_t func_vaddr);

/*
 * Copy `len` bytes of the file's loaded image at `vaddr` (code or data, read
 * from the file). 0, or -1 if no PT_LOAD segment's file bytes hold them all.
 */
int elf_read_vaddr(struct elf_image *img, uint64_t vaddr, void *buf, size_t len);

/*
 * The function that contains `vaddr`, as the unwind tables tell it
 * (.eh_frame_hdr search table and the FDE's range): works on stripped files,
 * for internal functions too. 0 with [*start, *end), or -1 if none covers it.
 */
int elf_func_range(struct elf_image *img, uint64_t vaddr, uint64_t *start, uint64_t *end);

#endif /* PW_ELFSYM_H */
