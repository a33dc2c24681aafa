/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The TLS library families pinwarden knows, one `struct tls_library` each
 * (userspace/<name>.c, with its probes in bpf/<name>.bpf.c). Discovery hands
 * every ELF file it finds (shared library or executable, on the host or under
 * /proc/PID/root) to each family's match(); the first that matches attaches.
 */
#ifndef PW_LIBRARIES_H
#define PW_LIBRARIES_H

#include <stdbool.h>
#include <stddef.h>

#include "attach.h"
#include "elfsym.h"

struct pinwarden_bpf;

struct tls_library {
	const char *name;		/* as in events: "openssl", "gnutls", ... */
	/* sonames looked up in ld.so.cache at start, NULL-terminated (may be NULL) */
	const char *const *sonames;
	/* Is this ELF file an instance (by soname, exported symbols, sections)? Cheap. */
	bool (*match)(struct elf_image *img, const char *path);
	/* Place the probes on lib->path (links kept in lib); 0, or -1 with err. */
	int (*attach)(struct pinwarden_bpf *skel, struct attached_lib *lib, struct elf_image *img,
		      char *err, size_t errlen);
};

extern const struct tls_library tls_openssl, tls_gnutls, tls_nss, tls_go, tls_boringssl, tls_node;

/*
 * OpenSSL's X509 verification layer in a libcrypto (or a program with OpenSSL
 * linked in): the attach cookie of the probe that judges the validated chain
 * (include/openssl.h), or 0 (said why: only leaf pins then count). by_key: the
 * probes do not see the library's objects of the presented certificates
 * (BoringSSL): validated certificates are matched to them by key.
 */
uint64_t openssl_verify_cookie(struct elf_image *crypto, const char *where, bool by_key);

/* The verdict cookie of a libssl, from the libcrypto it loads (by_key: see above). */
uint64_t libssl_verify_cookie(struct elf_image *ssl, const struct attached_lib *lib, bool by_key);

/*
 * The calls of X509_STORE_CTX_get_error() in the function that calls
 * X509_STORE_CTX_set_default(): where the verification's result is read.
 */
int x509_verified_sites(struct elf_image *img, uint64_t *sites, int max);

/* Why a TLS library file is left without probes (pinwarden_libraries_uncovered{reason}). */
enum uncovered_reason {
	UNCOVERED_FILE_LIMIT,	/* EMFILE/ENFILE: the daemon's RLIMIT_NOFILE or the system's */
	UNCOVERED_TABLE_FULL,	/* a table of the daemon's is full (NSS layouts) */
	UNCOVERED_BUDGET,	/* examining it would cost more than a file may (elfsym.h) */
	UNCOVERED_FAILED,	/* anything else: the error says what */
	UNCOVERED_TIMEOUT,	/* not read within --examine-timeout (a hung mount?) */
	UNCOVERED_UNSUPPORTED,	/* a TLS implementation pinwarden does not judge (uncovered.h) */
	UNCOVERED_UNREADABLE,	/* mapped, but root may not read it (FUSE without allow_other) */
	UNCOVERED_MAX,
};

extern const char *const uncovered_reason_names[UNCOVERED_MAX];

/* Forget the set's last failure (failed_library, _reason, _version): before an attach. */
static inline void attach_set_failed_reset(struct attach_set *set)
{
	set->failed_library = NULL;
	set->failed_reason = UNCOVERED_FAILED;
	set->failed_version[0] = 0;
}

/* The reason an attach error (err) stands for. */
unsigned uncovered_reason_of(const char *err);

/*
 * Index of a family's name for counters: tls_libraries' ("openssl", ...), then
 * those pinwarden only recognises (uncovered.h), then "unknown" for the rest.
 */
#define UNCOVERED_LIBS 12
unsigned library_index(const char *name);
extern const char *const uncovered_library_names[UNCOVERED_LIBS];

/* Every family, in the order match() is tried. */
extern const struct tls_library *const tls_libraries[];

/*
 * Attach whichever family `path` is an instance of, once per (device, inode):
 * opened once, examined and probed through that descriptor.
 * Returns 1 if attached now, 0 if already attached or not a TLS library, -1 on
 * error (err says why; nothing of it stays attached).
 */
int library_attach_file(struct pinwarden_bpf *skel, struct attach_set *set, const char *path,
			char *err, size_t errlen);

/* The same for the file open as `fd` (examined and attached through it); `path`
 * names it in logs and finds its companions (companion.h). */
int library_attach_fd(struct pinwarden_bpf *skel, struct attach_set *set, int fd, const char *path,
		      char *err, size_t errlen);

/* The same, parsing a copy of its bytes (`image_fd`, a memfd the examination
 * workers filled) and attaching through `fd`, known to be `id`: nothing here
 * reads the file itself (examine.h). */
int library_attach_image(struct pinwarden_bpf *skel, struct attach_set *set, int fd,
			 int image_fd, const struct file_id *id, const char *path, char *err,
			 size_t errlen);

/*
 * What examining one file decided, before anything is attached: made where the
 * file was read (an examination worker, examine.h), applied on the daemon's
 * loop, which alone holds the attach set and makes links.
 */
struct library_plan {
	int rc;				/* 1: probes for family t; 0: no TLS library; -1: err */
	const struct tls_library *t;	/* the family matched, or NULL */
	struct attached_lib *lib;	/* the probes asked for: of no set, linked to nothing */
	unsigned failed_reason;		/* rc -1: enum uncovered_reason */
	const char *unsupported;	/* UNCOVERED_UNSUPPORTED: the family recognised */
	char version[64];		/* ... and its version, when the file says it, or "" */
	char err[512];
};

/*
 * Parse the bytes of `image_fd` (the file open as `fd`, named `path` in logs and
 * for its companions) and plan its probes. No kernel object is made, nothing of
 * the daemon's is touched but the families' tables of build layouts (each
 * behind a lock of its own): any thread may plan. NULL when out of memory.
 */
struct library_plan *library_plan(struct pinwarden_bpf *skel, int fd, int image_fd,
				  const char *path);

/*
 * Attach what `p` planned for the file open as `fd` (known to be `id`): its
 * probes made into links through a descriptor of its own, read back. Returns
 * as library_attach_image(); set->failed_library and _reason say why on -1.
 */
int library_apply(struct attach_set *set, struct library_plan *p, int fd,
		  const struct file_id *id, const char *path, char *err, size_t errlen);

void library_plan_free(struct library_plan *p);

/*
 * Attach every known soname the dynamic linker would load on this host; each
 * file that cannot be is handed to `uncovered` (set->failed_library, _reason).
 */
int libraries_attach_host(struct pinwarden_bpf *skel, struct attach_set *set,
			  void (*uncovered)(void *ctx, const char *path, const char *err),
			  void *ctx);

#endif /* PW_LIBRARIES_H */
