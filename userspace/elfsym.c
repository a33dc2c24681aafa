// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <capstone/capstone.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdbool.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "elfsym.h"

struct call {
	uint64_t at;		/* address of the call instruction */
	uint64_t target;	/* callee (call rel32) or GOT slot (call *slot(%rip)) */
	int indirect;
};

/* A section header, read once at open with its name. */
struct sec {
	const char *name;
	GElf_Shdr sh;
	Elf_Scn *scn;
};

struct elf_image {
	int fd;
	bool owned;		/* opened here (elf_image_open), closed here */
	Elf *elf;
	struct sec *secs;	/* every section, in header order */
	size_t nsecs;
	struct sec **by_addr;	/* allocated sections with file bytes, by address */
	size_t nby_addr;
	GElf_Phdr *loads;	/* the PT_LOAD segments */
	size_t nloads;
	struct call *calls;	/* every direct and RIP-relative call, swept once */
	size_t ncalls;
	int swept;
	uint64_t work, swept_bytes, deadline_ns;
	char spent[160];	/* why a budget ran out; "" while none has */
};

static int elf_ready;

/* CPU time, not the clock: a busy host must not make a real file over budget */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

const char *elf_image_budget_spent(const struct elf_image *img)
{
	return img->spent[0] ? img->spent : NULL;
}

static int spend(struct elf_image *img, const char *why)
{
	if (!img->spent[0])
		snprintf(img->spent, sizeof(img->spent), "examination budget spent: %s", why);
	return -1;
}

int elf_image_charge(struct elf_image *img, uint64_t units)
{
	if (img->spent[0])
		return -1;
	img->work += units;
	if (img->work > ELF_WORK_MAX)
		return spend(img, "more work than a file may take");
	/* the clock now and then: a unit is cheap, the deadline a backstop */
	if ((img->work ^ (img->work - units)) >> 16 && cpu_ns() > img->deadline_ns)
		return spend(img, "more time than a file may take");
	return 0;
}

static int by_addr_cmp(const void *a, const void *b)
{
	const struct sec *x = *(struct sec *const *)a, *y = *(struct sec *const *)b;

	return x->sh.sh_addr < y->sh.sh_addr ? -1 : x->sh.sh_addr > y->sh.sh_addr;
}

/* Section headers and load segments, once: every lookup after is a walk of these. */
static int image_index(struct elf_image *img, const char *path, char *err, size_t errlen)
{
	size_t n, shstrndx, i;
	Elf_Scn *scn = NULL;

	if (elf_getshdrnum(img->elf, &n) || elf_getshdrstrndx(img->elf, &shstrndx)) {
		snprintf(err, errlen, "%s: no section headers", path);
		return -1;
	}
	if (n > ELF_SECTIONS_MAX) {
		snprintf(err, errlen, "%s: %zu sections, more than a file may have (%d): not examined",
			 path, n, ELF_SECTIONS_MAX);
		errno = EFBIG;
		return -1;
	}
	img->secs = calloc(n ? n : 1, sizeof(*img->secs));
	img->by_addr = calloc(n ? n : 1, sizeof(*img->by_addr));
	if (!img->secs || !img->by_addr) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* by section index: sh_link and st_shndx name them so */
	img->nsecs = n;
	while ((scn = elf_nextscn(img->elf, scn))) {
		size_t ndx = elf_ndxscn(scn);
		struct sec *s;

		if (ndx >= n)
			break;
		s = &img->secs[ndx];
		if (!gelf_getshdr(scn, &s->sh))
			continue;
		s->scn = scn;
		s->name = elf_strptr(img->elf, shstrndx, s->sh.sh_name);
		if ((s->sh.sh_flags & SHF_ALLOC) && s->sh.sh_type != SHT_NOBITS && s->sh.sh_size)
			img->by_addr[img->nby_addr++] = s;
	}
	for (i = 0; i < n; i++)
		if (!img->secs[i].name)
			img->secs[i].name = "";
	qsort(img->by_addr, img->nby_addr, sizeof(*img->by_addr), by_addr_cmp);
	if (elf_getphdrnum(img->elf, &n))
		n = 0;
	if (n > ELF_SECTIONS_MAX) {
		snprintf(err, errlen, "%s: %zu program headers, more than a file may have (%d): not "
			 "examined", path, n, ELF_SECTIONS_MAX);
		errno = EFBIG;
		return -1;
	}
	img->loads = calloc(n ? n : 1, sizeof(*img->loads));
	if (!img->loads) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++)
		if (gelf_getphdr(img->elf, i, &img->loads[img->nloads]) &&
		    img->loads[img->nloads].p_type == PT_LOAD)
			img->nloads++;
	return 0;
}

static struct elf_image *image_begin(int fd, bool owned, const char *name, char *err,
				     size_t errlen)
{
	struct elf_image *img;
	struct stat st;
	GElf_Ehdr eh;

	if (!elf_ready) {
		if (elf_version(EV_CURRENT) == EV_NONE) {
			snprintf(err, errlen, "libelf: %s", elf_errmsg(-1));
			if (owned)
				close(fd);
			return NULL;
		}
		elf_ready = 1;
	}
	img = calloc(1, sizeof(*img));
	if (!img) {
		snprintf(err, errlen, "out of memory");
		if (owned)
			close(fd);
		return NULL;
	}
	img->fd = fd;
	img->owned = owned;
	if (fstat(img->fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", name);
		elf_image_close(img);
		return NULL;
	}
	if ((uint64_t)st.st_size > ELF_FILE_MAX) {
		snprintf(err, errlen, "%s: %llu MiB, larger than a file may be (%llu MiB): not examined",
			 name, (unsigned long long)st.st_size >> 20, ELF_FILE_MAX >> 20);
		elf_image_close(img);
		errno = EFBIG;
		return NULL;
	}
	img->deadline_ns = cpu_ns() + ELF_TIME_MAX_MS * 1000000ULL;
	/*
	 * read(2), never mmap: the kernel writes uprobe breakpoints (int3) into
	 * every mapping of a probed file, ours included, and the disassembler
	 * would see them instead of the code.
	 */
	img->elf = elf_begin(img->fd, ELF_C_READ, NULL);
	if (!img->elf || elf_kind(img->elf) != ELF_K_ELF || !gelf_getehdr(img->elf, &eh)) {
		snprintf(err, errlen, "%s: not an ELF file", name);
		elf_image_close(img);
		errno = ENOEXEC;
		return NULL;
	}
	if (eh.e_machine != EM_X86_64) {
		snprintf(err, errlen, "%s: not an x86-64 ELF file", name);
		elf_image_close(img);
		errno = ENOEXEC;
		return NULL;
	}
	if (image_index(img, name, err, errlen)) {
		int e = errno;

		elf_image_close(img);
		errno = e;
		return NULL;
	}
	return img;
}

struct elf_image *elf_image_open(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	return image_begin(fd, true, path, err, errlen);
}

struct elf_image *elf_image_open_fd(int fd, const char *name, char *err, size_t errlen)
{
	return image_begin(fd, false, name, err, errlen);
}

int elf_image_fd(const struct elf_image *img)
{
	return img->fd;
}

void elf_image_close(struct elf_image *img)
{
	if (!img)
		return;
	if (img->elf)
		elf_end(img->elf);
	if (img->owned && img->fd >= 0)
		close(img->fd);
	free(img->calls);
	free(img->secs);
	free(img->by_addr);
	free(img->loads);
	free(img);
}

static Elf_Scn *section_by_name(struct elf_image *img, const char *name, GElf_Shdr *sh)
{
	size_t i;

	for (i = 0; i < img->nsecs; i++) {
		if (!strcmp(img->secs[i].name, name)) {
			*sh = img->secs[i].sh;
			return img->secs[i].scn;
		}
	}
	return NULL;
}

/* The allocated section with file bytes that holds vaddr: a binary search. */
static const struct sec *section_at(struct elf_image *img, uint64_t vaddr)
{
	size_t lo = 0, hi = img->nby_addr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (img->by_addr[mid]->sh.sh_addr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && vaddr - img->by_addr[lo - 1]->sh.sh_addr < img->by_addr[lo - 1]->sh.sh_size)
		return img->by_addr[lo - 1];
	return NULL;
}

/* A section's bytes, read once by libelf, if reading them stays within the file's budget. */
static Elf_Data *section_data(struct elf_image *img, Elf_Scn *scn, const GElf_Shdr *sh)
{
	/* a section's size is the header's word: its bytes count as work once read */
	if (sh->sh_type != SHT_NOBITS && sh->sh_size > ELF_FILE_MAX)
		return NULL;
	return elf_getdata(scn, NULL);
}

const uint8_t *elf_section(struct elf_image *img, const char *name, uint64_t vaddr,
			   uint64_t *addr, size_t *size)
{
	const struct sec *s = NULL;
	Elf_Scn *scn = NULL;
	Elf_Data *d;
	GElf_Shdr sh;

	if (name) {
		scn = section_by_name(img, name, &sh);
	} else if ((s = section_at(img, vaddr))) {
		scn = s->scn;
		sh = s->sh;
	}
	if (!scn || sh.sh_type == SHT_NOBITS)
		return NULL;
	d = section_data(img, scn, &sh);
	if (!d || !d->d_buf || d->d_size != sh.sh_size)
		return NULL;
	*addr = sh.sh_addr;
	*size = d->d_size;
	return d->d_buf;
}

/*
 * The entries of section k if it is a table of `type` (SHT_SYMTAB, SHT_DYNAMIC):
 * their count in *n, charged to the budget. NULL if it is not one, the budget
 * is spent, or its bytes are out of reach.
 */
static Elf_Data *table_at(struct elf_image *img, size_t k, Elf64_Word type, size_t *n)
{
	const GElf_Shdr *sh = &img->secs[k].sh;

	if (sh->sh_type != type || !sh->sh_entsize)
		return NULL;
	*n = sh->sh_size / sh->sh_entsize;
	if (elf_image_charge(img, *n))
		return NULL;
	return section_data(img, img->secs[k].scn, sh);
}

static uint64_t symtab_find(struct elf_image *img, Elf64_Word type, const char *name, int functions,
			   uint64_t *size)
{
	size_t k;

	for (k = 0; k < img->nsecs; k++) {
		Elf_Data *d;
		size_t i, n;

		if (!(d = table_at(img, k, type, &n)))
			continue;
		for (i = 0; i < n; i++) {
			GElf_Sym sym;
			const char *sn;

			if (!gelf_getsym(d, i, &sym) || sym.st_shndx == SHN_UNDEF || !sym.st_value)
				continue;
			if (functions ? GELF_ST_TYPE(sym.st_info) != STT_FUNC :
					GELF_ST_TYPE(sym.st_info) != STT_OBJECT)
				continue;
			sn = elf_strptr(img->elf, img->secs[k].sh.sh_link, sym.st_name);
			if (sn && !strcmp(sn, name)) {
				if (size)
					*size = sym.st_size;
				return sym.st_value;
			}
		}
	}
	return 0;
}

/* A function (or a data object) defined in the file: .symtab, else .dynsym. */
static uint64_t symbol_vaddr(struct elf_image *img, const char *name, int functions, uint64_t *size)
{
	uint64_t v = symtab_find(img, SHT_SYMTAB, name, functions, size);

	return v ? v : symtab_find(img, SHT_DYNSYM, name, functions, size);
}

uint64_t elf_func_vaddr(struct elf_image *img, const char *name)
{
	return symbol_vaddr(img, name, 1, NULL);
}

uint64_t elf_object_vaddr(struct elf_image *img, const char *name)
{
	return symbol_vaddr(img, name, 0, NULL);
}

uint64_t elf_func_vaddr_size(struct elf_image *img, const char *name, uint64_t *size)
{
	return symbol_vaddr(img, name, 1, size);
}

/*
 * pread(2) of just those bytes: libelf's section data would read a whole
 * section first (node's .text is 60 MB, for 3 functions).
 */
int elf_read_vaddr(struct elf_image *img, uint64_t vaddr, void *buf, size_t len)
{
	int64_t off = elf_vaddr_to_offset(img, vaddr);

	if (!len)
		return 0;
	if (off < 0 || elf_vaddr_to_offset(img, vaddr + len - 1) != off + (int64_t)len - 1)
		return -1;
	return pread(img->fd, buf, len, off) == (ssize_t)len ? 0 : -1;
}

int elf_section_range(struct elf_image *img, const char *name, uint64_t *vaddr, uint64_t *size)
{
	GElf_Shdr sh;

	if (!section_by_name(img, name, &sh) || sh.sh_type != SHT_PROGBITS)
		return -1;
	*vaddr = sh.sh_addr;
	*size = sh.sh_size;
	return 0;
}

int64_t elf_vaddr_to_offset(struct elf_image *img, uint64_t vaddr)
{
	size_t i;

	for (i = 0; i < img->nloads; i++) {
		const GElf_Phdr ph = img->loads[i];

		if (vaddr >= ph.p_vaddr && vaddr - ph.p_vaddr < ph.p_filesz)
			return (int64_t)(vaddr - ph.p_vaddr + ph.p_offset);
	}
	return -1;
}

/* GOT slot of an imported function, from .rela.plt (JUMP_SLOT) or .rela.dyn (GLOB_DAT). */
static int got_slots(struct elf_image *img, const char *name, uint64_t *slots, int max)
{
	size_t k;
	int n = 0;

	for (k = 0; k < img->nsecs; k++) {
		const GElf_Shdr sh = img->secs[k].sh;
		Elf_Data *d, *symd;
		GElf_Shdr symsh;
		size_t i, cnt;

		if (sh.sh_type != SHT_RELA || !sh.sh_entsize || sh.sh_link >= img->nsecs ||
		    !img->secs[sh.sh_link].scn)
			continue;
		cnt = sh.sh_size / sh.sh_entsize;
		if (elf_image_charge(img, cnt))
			return -1;
		symsh = img->secs[sh.sh_link].sh;
		d = section_data(img, img->secs[k].scn, &sh);
		symd = d ? section_data(img, img->secs[sh.sh_link].scn, &symsh) : NULL;
		if (!d || !symd)
			continue;
		for (i = 0; i < cnt && n < max; i++) {
			GElf_Rela r;
			GElf_Sym sym;
			const char *sn;
			unsigned type;

			if (!gelf_getrela(d, i, &r))
				continue;
			type = GELF_R_TYPE(r.r_info);
			if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT)
				continue;
			if (!gelf_getsym(symd, GELF_R_SYM(r.r_info), &sym))
				continue;
			sn = elf_strptr(img->elf, symsh.sh_link, sym.st_name);
			if (sn && !strcmp(sn, name))
				slots[n++] = r.r_offset;
		}
	}
	return n;
}

/* Skip the prefixes compilers put on calls and jumps (bnd, notrack). */
static const uint8_t *opcode(const cs_insn *in, size_t *left)
{
	const uint8_t *b = in->bytes;
	size_t n = in->size;

	while (n > 1 && (b[0] == 0xf2 || b[0] == 0x3e)) {
		b++;
		n--;
	}
	*left = n;
	return b;
}

/* Linear sweep of one executable section with capstone, calling fn on each instruction. */
static int sweep(struct elf_image *img, Elf_Scn *scn, const GElf_Shdr *sh,
		 void (*fn)(struct elf_image *, const cs_insn *, void *), void *arg)
{
	const uint8_t *code;
	size_t size;
	uint64_t addr, n = 0;
	cs_insn *in;
	Elf_Data *d;
	csh h;

	/* the bytes are read whole and decoded one by one: the costliest thing done to a file */
	if (sh->sh_size > ELF_SWEEP_MAX - img->swept_bytes || img->spent[0])
		return spend(img, "more code to disassemble than a file may have");
	img->swept_bytes += sh->sh_size;
	d = section_data(img, scn, sh);
	if (!d || !d->d_buf)
		return -1;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return -1;
	in = cs_malloc(h);
	code = d->d_buf;
	size = d->d_size;
	addr = sh->sh_addr;
	while (size) {
		if (++n % 4096 == 0 && elf_image_charge(img, 4096))
			break;
		if (!cs_disasm_iter(h, &code, &size, &addr, in)) {
			/* padding or data: resynchronise on the next byte */
			code++;
			size--;
			addr++;
			continue;
		}
		fn(img, in, arg);
	}
	cs_free(in, 1);
	cs_close(&h);
	return img->spent[0] ? -1 : 0;
}

static void collect_call(struct elf_image *img, const cs_insn *in, void *arg)
{
	size_t n;
	const uint8_t *b = opcode(in, &n);
	struct call c = { .at = in->address };
	int32_t rel;

	if (n == 5 && b[0] == 0xe8) {
		memcpy(&rel, b + 1, 4);
		c.target = in->address + in->size + (int64_t)rel;
	} else if (n == 6 && b[0] == 0xff && b[1] == 0x15) {
		memcpy(&rel, b + 2, 4);
		c.target = in->address + in->size + (int64_t)rel;
		c.indirect = 1;
	} else {
		return;
	}
	if (img->ncalls >= ELF_CALLS_MAX) {
		spend(img, "more calls than a file may have");
		return;
	}
	if (img->ncalls % 4096 == 0) {
		struct call *nc = realloc(img->calls, (img->ncalls + 4096) * sizeof(*nc));

		if (!nc)
			return;
		img->calls = nc;
	}
	img->calls[img->ncalls++] = c;
}

static int is_plt(const char *name)
{
	return !strncmp(name, ".plt", 4);
}

static int sweep_calls(struct elf_image *img)
{
	size_t k;

	if (img->swept)
		return 0;
	for (k = 0; k < img->nsecs; k++) {
		const struct sec *sc = &img->secs[k];

		if (sc->sh.sh_type != SHT_PROGBITS || !(sc->sh.sh_flags & SHF_EXECINSTR) ||
		    is_plt(sc->name))
			continue;
		if (sweep(img, sc->scn, &sc->sh, collect_call, NULL))
			return -1;
	}
	img->swept = 1;
	return 0;
}

struct stub_search {
	const uint64_t *slots;
	int nslots;
	uint64_t sec_addr, entsize;
	uint64_t stubs[8];
	int nstubs;
};

static void find_stub(struct elf_image *img, const cs_insn *in, void *arg)
{
	struct stub_search *ss = arg;
	size_t n;
	const uint8_t *b = opcode(in, &n);
	uint64_t slot;
	int32_t rel;
	int i;

	if (n != 6 || b[0] != 0xff || b[1] != 0x25)
		return;
	memcpy(&rel, b + 2, 4);
	slot = in->address + in->size + (int64_t)rel;
	for (i = 0; i < ss->nslots; i++) {
		if (ss->slots[i] == slot && ss->nstubs < 8) {
			/* a call lands on the start of the stub's entry, not on its jmp */
			ss->stubs[ss->nstubs++] = ss->sec_addr +
				(in->address - ss->sec_addr) / ss->entsize * ss->entsize;
		}
	}
}

int elf_import_call_sites(struct elf_image *img, const char *name, uint64_t *sites, int max)
{
	static const char *const plts[] = { ".plt", ".plt.sec", ".plt.got" };
	struct stub_search ss = {};
	uint64_t slots[8];
	size_t i, k;
	int n = 0, j;

	ss.nslots = got_slots(img, name, slots, 8);
	if (ss.nslots <= 0)
		return ss.nslots;
	ss.slots = slots;
	for (i = 0; i < sizeof(plts) / sizeof(plts[0]); i++) {
		GElf_Shdr sh;
		Elf_Scn *scn = section_by_name(img, plts[i], &sh);

		if (!scn)
			continue;
		ss.sec_addr = sh.sh_addr;
		ss.entsize = sh.sh_entsize ? sh.sh_entsize : 16;
		sweep(img, scn, &sh, find_stub, &ss);
	}
	if (sweep_calls(img))
		return -1;
	for (k = 0; k < img->ncalls && n < max; k++) {
		const struct call *c = &img->calls[k];
		int hit = 0;

		if (c->indirect) {
			for (j = 0; j < ss.nslots; j++)
				hit |= c->target == slots[j];
		} else {
			for (j = 0; j < ss.nstubs; j++)
				hit |= c->target == ss.stubs[j];
		}
		if (hit)
			sites[n++] = c->at;
	}
	return n;
}


uint64_t elf_probe_point(struct elf_image *img, uint64_t func)
{
	const struct sec *sc = section_at(img, func);
	uint8_t buf[48], b[3][4] = {};
	uint64_t addr = func, pts[3] = {};
	const uint8_t *code = buf;
	size_t size;
	cs_insn *in;
	int n = 0;
	csh h;

	if (!sc || sc->sh.sh_type != SHT_PROGBITS || !(sc->sh.sh_flags & SHF_EXECINSTR))
		return func;
	/* the first three instructions only: never the whole section */
	size = sc->sh.sh_addr + sc->sh.sh_size - func;
	if (size > sizeof(buf))
		size = sizeof(buf);
	if (elf_read_vaddr(img, func, buf, size) || cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return func;
	in = cs_malloc(h);
	while (n < 3 && cs_disasm_iter(h, &code, &size, &addr, in)) {
		pts[n] = in->address;
		memcpy(b[n], in->bytes, in->size < 4 ? in->size : 4);
		n++;
	}
	cs_free(in, 1);
	cs_close(&h);
	/*
	 * `test %rdi,%rdi; je ...; push ...` is a NULL check before the prologue:
	 * probing the push (emulated) instead of the test (single-stepped) costs
	 * a fifth, and only skips calls with a NULL first argument.
	 */
	if (n == 3 && b[0][0] == 0x48 && b[0][1] == 0x85 && b[0][2] == 0xff &&
	    (b[1][0] == 0x74 || (b[1][0] == 0x0f && b[1][1] == 0x84)) &&
	    ((b[2][0] >= 0x50 && b[2][0] <= 0x57) || (b[2][0] == 0x41 && b[2][1] >= 0x50 && b[2][1] <= 0x57)))
		return pts[2];
	return func;
}

int elf_direct_call_sites(struct elf_image *img, const char *caller, const char *callee,
			  uint64_t *sites, int max)
{
	uint64_t from, size = 0, to = elf_func_vaddr(img, callee), addr;
	const uint8_t *code;
	uint8_t *buf;
	size_t left;
	cs_insn *in;
	csh h;
	int n = 0;

	from = elf_func_vaddr_size(img, caller, &size);
	if (!from || !to || !size)
		return 0;
	if (size > (16u << 20) || elf_image_charge(img, size / 4))
		return -1;
	buf = malloc(size);
	if (!buf)
		return -1;
	/* only the caller's bytes: a 100 MB executable is never read whole */
	if (elf_read_vaddr(img, from, buf, size) || cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK) {
		free(buf);
		return -1;
	}
	in = cs_malloc(h);
	code = buf;
	left = size;
	addr = from;
	while (left && n < max) {
		const uint8_t *b;
		size_t len;
		int32_t rel;

		if (!cs_disasm_iter(h, &code, &left, &addr, in)) {
			code++;
			left--;
			addr++;
			continue;
		}
		b = opcode(in, &len);
		/* call rel32, or jmp rel32 (a tail call: the arguments are in place too) */
		if (len != 5 || (b[0] != 0xe8 && b[0] != 0xe9))
			continue;
		memcpy(&rel, b + 1, 4);
		if (in->address + in->size + (int64_t)rel == to)
			sites[n++] = in->address;
	}
	cs_free(in, 1);
	cs_close(&h);
	free(buf);
	return n;
}

/* DWARF pointer encodings (DW_EH_PE_*) that unwind tables use */
#define PE_OMIT		0xff
#define PE_FORMAT	0x0f
#define PE_ABSPTR	0x00
#define PE_UDATA2	0x02
#define PE_UDATA4	0x03
#define PE_UDATA8	0x04
#define PE_SDATA2	0x0a
#define PE_SDATA4	0x0b
#define PE_SDATA8	0x0c
#define PE_APPL		0x70
#define PE_PCREL	0x10
#define PE_DATAREL	0x30

/* Read one encoded pointer at vaddr *at (advanced past it); `base` is for datarel. */
static int read_encoded(struct elf_image *img, uint64_t *at, uint8_t enc, uint64_t base,
			uint64_t *out)
{
	uint8_t b[8];
	uint64_t v, pos = *at;
	size_t n;

	switch (enc & PE_FORMAT) {
	case PE_ABSPTR:
	case PE_UDATA8:
	case PE_SDATA8:
		n = 8;
		break;
	case PE_UDATA4:
	case PE_SDATA4:
		n = 4;
		break;
	case PE_UDATA2:
	case PE_SDATA2:
		n = 2;
		break;
	default:
		return -1;
	}
	if (elf_read_vaddr(img, pos, b, n))
		return -1;
	if (n == 8) {
		memcpy(&v, b, 8);
	} else if (n == 4) {
		uint32_t u;

		memcpy(&u, b, 4);
		v = (enc & PE_FORMAT) == PE_SDATA4 ? (uint64_t)(int64_t)(int32_t)u : u;
	} else {
		uint16_t u;

		memcpy(&u, b, 2);
		v = (enc & PE_FORMAT) == PE_SDATA2 ? (uint64_t)(int64_t)(int16_t)u : u;
	}
	switch (enc & PE_APPL) {
	case 0:
		break;
	case PE_PCREL:
		v += pos;
		break;
	case PE_DATAREL:
		v += base;
		break;
	default:
		return -1;
	}
	*at = pos + n;
	*out = v;
	return 0;
}

static int read_uleb(struct elf_image *img, uint64_t *at, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t b;

	do {
		if (shift > 63 || elf_read_vaddr(img, (*at)++, &b, 1))
			return -1;
		v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	} while (b & 0x80);
	*out = v;
	return 0;
}

/* The FDE pointer encoding that a CIE's "zR..." augmentation names. */
static int cie_fde_encoding(struct elf_image *img, uint64_t cie, uint8_t *enc)
{
	char aug[8] = {};
	uint64_t at = cie + 9, skip;	/* length, CIE id, version */
	uint8_t version, b;
	size_t i;

	*enc = PE_ABSPTR;
	if (elf_read_vaddr(img, cie + 8, &version, 1))
		return -1;
	for (i = 0; i < sizeof(aug); i++) {
		if (elf_read_vaddr(img, at++, &aug[i], 1))
			return -1;
		if (!aug[i])
			break;
	}
	if (i == sizeof(aug))
		return -1;
	if (aug[0] != 'z')
		return 0;
	/* code alignment, data alignment (LEB128 both: skip alike), return register */
	if (read_uleb(img, &at, &skip) || read_uleb(img, &at, &skip))
		return -1;
	if (version == 1)
		at++;
	else if (read_uleb(img, &at, &skip))
		return -1;
	if (read_uleb(img, &at, &skip))	/* augmentation data length */
		return -1;
	for (i = 1; aug[i]; i++) {
		if (elf_read_vaddr(img, at, &b, 1))
			return -1;
		switch (aug[i]) {
		case 'R':
			*enc = b;
			return 0;
		case 'L':
			at++;
			break;
		case 'P':
			at++;
			if (read_encoded(img, &at, b & ~PE_APPL, 0, &skip))
				return -1;
			break;
		case 'S':
		case 'B':
			break;
		default:
			return -1;
		}
	}
	return 0;
}

int elf_func_range(struct elf_image *img, uint64_t vaddr, uint64_t *start, uint64_t *end)
{
	GElf_Shdr sh;
	uint8_t h[4];
	uint64_t hdr, at, count, lo, hi, fde = 0, loc, range;
	uint32_t len, cie_off;
	uint8_t enc;

	if (!section_by_name(img, ".eh_frame_hdr", &sh))
		return -1;
	hdr = sh.sh_addr;
	/* version 1, eh_frame_ptr encoding, fde_count encoding, table encoding */
	if (elf_read_vaddr(img, hdr, h, 4) || h[0] != 1 || h[2] == PE_OMIT ||
	    h[3] != (PE_DATAREL | PE_SDATA4))
		return -1;
	at = hdr + 4;
	if (read_encoded(img, &at, h[1], hdr, &loc) || read_encoded(img, &at, h[2], hdr, &count))
		return -1;
	/* sorted (initial location, FDE address) pairs: the last one at or below vaddr */
	lo = 0;
	hi = count;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2, e = at + mid * 8, f;

		if (read_encoded(img, &e, h[3], hdr, &loc) || read_encoded(img, &e, h[3], hdr, &f))
			return -1;
		if (loc <= vaddr) {
			fde = f;
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	if (!fde)
		return -1;
	/* the FDE: length, CIE pointer (backwards from here), pc_begin, pc_range */
	if (elf_read_vaddr(img, fde, &len, 4) || len == 0xffffffff ||
	    elf_read_vaddr(img, fde + 4, &cie_off, 4) || !cie_off ||
	    cie_fde_encoding(img, fde + 4 - cie_off, &enc))
		return -1;
	at = fde + 8;
	if (read_encoded(img, &at, enc, 0, &loc) || read_encoded(img, &at, enc & PE_FORMAT, 0, &range))
		return -1;
	if (vaddr < loc || vaddr - loc >= range)
		return -1;
	*start = loc;
	*end = loc + range;
	return 0;
}

int elf_accessor_offset(struct elf_image *img, const char *func, uint32_t *off)
{
	static const uint8_t endbr64[4] = { 0xf3, 0x0f, 0x1e, 0xfa };
	uint64_t v = elf_func_vaddr(img, func);
	uint8_t b[16];
	size_t i = 0;
	int32_t disp;

	if (!v || elf_read_vaddr(img, v, b, sizeof(b)))
		return -1;
	if (!memcmp(b, endbr64, sizeof(endbr64)))
		i = sizeof(endbr64);
	if (b[i] != 0x8b)				/* mov r32, r/m32 */
		return -1;
	if (b[i + 1] == 0x47) {				/* eax, [rdi + disp8] */
		disp = (int8_t)b[i + 2];
		i += 3;
	} else if (b[i + 1] == 0x87) {			/* eax, [rdi + disp32] */
		memcpy(&disp, &b[i + 2], sizeof(disp));
		i += 6;
	} else {
		return -1;
	}
	if (b[i] == 0x31 && b[i + 1] == 0xff)		/* xor edi, edi */
		i += 2;
	if (b[i] != 0xc3 || disp < 0 || disp > 0xffff)	/* ret */
		return -1;
	*off = (uint32_t)disp;
	return 0;
}

int elf_field_offset(struct elf_image *img, const char *func, enum elf_access access,
		     uint32_t *off)
{
	uint64_t v = elf_func_vaddr(img, func);
	uint8_t buf[64];
	cs_insn *in = NULL;
	size_t n, i;
	csh h;
	int rc = -1;

	if (!v || elf_read_vaddr(img, v, buf, sizeof(buf)))
		return -1;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return -1;
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	n = cs_disasm(h, buf, sizeof(buf), v, 12, &in);
	for (i = 0; i < n; i++) {
		const cs_x86 *x = &in[i].detail->x86;
		const cs_x86_op *d = x->op_count > 0 ? &x->operands[0] : NULL;
		const cs_x86_op *s = x->op_count > 1 ? &x->operands[1] : NULL;
		const cs_x86_op *m = NULL;
		cs_regs rd, wr;
		uint8_t nrd = 0, nwr = 0, k;
		int writes_rdi = 0;

		if (in[i].id == X86_INS_MOV && d && s) {
			if (access != ELF_STORE_IMM && d->type == X86_OP_REG && s->type == X86_OP_MEM &&
			    s->size == (access == ELF_LOAD64 ? 8 : 4))
				m = s;
			else if (access == ELF_STORE_IMM && d->type == X86_OP_MEM && s->type == X86_OP_IMM)
				m = d;
		}
		if (m && m->mem.base == X86_REG_RDI && m->mem.index == X86_REG_INVALID &&
		    m->mem.segment == X86_REG_INVALID && m->mem.disp >= 0 && m->mem.disp <= 0xffff) {
			*off = (uint32_t)m->mem.disp;
			rc = 0;
			break;
		}
		/* anything but a check that leaves %rdi as it came is not an accessor */
		if (in[i].id != X86_INS_ENDBR64 && in[i].id != X86_INS_TEST && in[i].id != X86_INS_CMP &&
		    !(in[i].id >= X86_INS_JAE && in[i].id <= X86_INS_JS && in[i].id != X86_INS_JMP))
			break;
		if (cs_regs_access(h, &in[i], rd, &nrd, wr, &nwr) != CS_ERR_OK)
			break;
		for (k = 0; k < nwr; k++)
			writes_rdi |= wr[k] == X86_REG_RDI || wr[k] == X86_REG_EDI;
		if (writes_rdi)
			break;
	}
	cs_free(in, n);
	cs_close(&h);
	return rc;
}

int elf_needed(struct elf_image *img, const char *prefix, char *out, size_t len)
{
	size_t k;

	for (k = 0; k < img->nsecs; k++) {
		Elf_Data *d;
		size_t i, n;

		if (!(d = table_at(img, k, SHT_DYNAMIC, &n)))
			continue;
		for (i = 0; i < n; i++) {
			GElf_Dyn dyn;
			const char *name;

			if (!gelf_getdyn(d, i, &dyn) || dyn.d_tag != DT_NEEDED)
				continue;
			name = elf_strptr(img->elf, img->secs[k].sh.sh_link, dyn.d_un.d_val);
			if (name && !strncmp(name, prefix, strlen(prefix)) &&
			    (size_t)snprintf(out, len, "%s", name) < len)
				return 0;
		}
	}
	return -1;
}

int elf_field_offset_indirect(struct elf_image *img, const char *func, uint32_t *ptr_off,
			      uint32_t *off)
{
	uint64_t v = elf_func_vaddr(img, func);
	uint8_t buf[32];
	cs_insn *in = NULL;
	size_t n;
	csh h;
	int rc = -1;

	if (!v || elf_read_vaddr(img, v, buf, sizeof(buf)))
		return -1;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return -1;
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	n = cs_disasm(h, buf, sizeof(buf), v, 3, &in);
	if (n >= 2) {
		size_t i = in[0].id == X86_INS_ENDBR64 ? 1 : 0;
		const cs_x86 *a = &in[i].detail->x86, *b = i + 1 < n ? &in[i + 1].detail->x86 : NULL;

		/* mov rX, [rdi + d1]; mov dword [rX + d2], imm */
		if (b && in[i].id == X86_INS_MOV && a->op_count == 2 &&
		    a->operands[0].type == X86_OP_REG && a->operands[1].type == X86_OP_MEM &&
		    a->operands[1].size == 8 && a->operands[1].mem.base == X86_REG_RDI &&
		    a->operands[1].mem.index == X86_REG_INVALID && a->operands[1].mem.disp >= 0 &&
		    a->operands[1].mem.disp <= 0xffff && in[i + 1].id == X86_INS_MOV &&
		    b->op_count == 2 && b->operands[0].type == X86_OP_MEM &&
		    b->operands[1].type == X86_OP_IMM &&
		    b->operands[0].mem.base == a->operands[0].reg &&
		    b->operands[0].mem.index == X86_REG_INVALID && b->operands[0].mem.disp >= 0 &&
		    b->operands[0].mem.disp <= 0xffff) {
			*ptr_off = (uint32_t)a->operands[1].mem.disp;
			*off = (uint32_t)b->operands[0].mem.disp;
			rc = 0;
		}
	}
	cs_free(in, n);
	cs_close(&h);
	return rc;
}
