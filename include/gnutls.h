/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * GnuTLS: where the fields the kernel side reads lie in one build of
 * libgnutls. Nothing here is hard-coded: userspace/gnutls.c reads the offsets
 * out of the machine code of exported accessors at attach time and stores
 * them in the gnutls_layouts map; each probe finds its build's entry through
 * its attach cookie (the index).
 */
#ifndef PW_GNUTLS_H
#define PW_GNUTLS_H

#ifdef __bpf__
/* vmlinux.h already provides __u32 */
#else
#include <linux/types.h>
#endif

#define PW_GNUTLS_LAYOUTS	64	/* distinct libgnutls builds on one host */

/* enum values of GnuTLS's public API (gnutls.h), stable across versions */
#define PW_GNUTLS_SERVER	1	/* gnutls_init() flag: the session is a server */
#define PW_GNUTLS_CLIENT	2
#define PW_GNUTLS_CRD_CERTIFICATE 1	/* gnutls_credentials_type_t */
#define PW_GNUTLS_NAME_DNS	1	/* gnutls_server_name_type_t */

/*
 * The attach cookie of bpf/gnutls.bpf.c's gnutls_verify: the build's entry in
 * gnutls_layouts (bits 0-7), what the probe is (bits 8-15), and whether the
 * verdict may wait for GnuTLS's verification (bit 16: the verification
 * probes are attached).
 */
enum pw_gnutls_probe {
	PW_GNUTLS_RUNNER = 0,	/* the verify-callback runner: the chain is complete */
	PW_GNUTLS_VERIFIED = 1,	/* return of gnutls_x509_trust_list_verify_crt2 */
	PW_GNUTLS_IO = 2,	/* the connection is used (record send/recv) */
	PW_GNUTLS_FREE = 3,	/* gnutls_deinit */
};
#define PW_GNUTLS_CK(layout, kind, defer) \
	((__u64)(layout) | (__u64)(kind) << 8 | ((defer) ? 1ULL << 16 : 0))
#define PW_GNUTLS_CK_LAYOUT(ck)	((__u32)(ck) & 0xff)
#define PW_GNUTLS_CK_KIND(ck)	((__u32)((ck) >> 8) & 0xff)
#define PW_GNUTLS_CK_DEFER	(1ULL << 16)

struct pw_gnutls_layout {
	__u32 entity;		/* session: security_parameters.entity (int), from gnutls_auth_get_type */
	__u32 auth_info;	/* session: key.auth_info (cert_auth_info_st *) ... */
	__u32 auth_info_type;	/* session: key.auth_info_type (int) ... from gnutls_certificate_get_peers */
	__u32 transport;	/* session: internals.transport_recv_ptr, from gnutls_transport_get_ptr */
	__u32 peers;		/* cert_auth_info_st: raw_certificate_list (gnutls_datum_t *) ... */
	__u32 npeers;		/* cert_auth_info_st: ncerts (unsigned) ... from gnutls_certificate_get_peers */
	__u32 crt_modified;	/* gnutls_x509_crt_int: modified (unsigned), from ..._get_raw_dn */
	__u32 crt_spki;		/* gnutls_x509_crt_int: raw_spki (gnutls_datum_t), after raw_issuer_dn */
};
_Static_assert(sizeof(struct pw_gnutls_layout) == 32, "pw_gnutls_layout layout");

#endif /* PW_GNUTLS_H */
