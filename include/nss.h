/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * NSS (libssl3.so): what bpf/nss.bpf.c needs to know about one build of the
 * library, found by userspace/nss.c in that build's machine code at attach
 * time. One entry of the nss_layouts map per attached libssl3.so; each probe's
 * BPF cookie names the entry and the register that holds the sslSocket at the
 * probed call.
 */
#ifndef PW_NSS_H
#define PW_NSS_H

#ifdef __bpf__
/* vmlinux.h already provides __u8 and friends */
#else
#include <linux/types.h>
#endif

#define NSS_LAYOUTS_MAX		64	/* distinct libssl3.so builds attached at once */
#define NSS_OFF_UNKNOWN		0xffffffffu

/* Offsets inside NSS's private structs (sslSocket, NSPR's PRFilePrivate). */
struct nss_layout {
	__u32 peer_cert;	/* sslSocket.sec.peerCert (CERTCertificate *) */
	__u32 url;		/* sslSocket.url (char *): the name SNI and verification use */
	__u32 fd;		/* sslSocket.fd (PRFileDesc * of the SSL layer) */
	__u32 role;		/* sslSocket.handshaking: 1 client, else server; or NSS_OFF_UNKNOWN */
	__u32 osfd;		/* PRFilePrivate.md.osfd (int) in libnspr4; or NSS_OFF_UNKNOWN */
	__u32 pad;
};
_Static_assert(sizeof(struct nss_layout) == 24, "nss_layout layout");

/* Registers a probe may read the sslSocket from (the cookie's low byte). */
enum nss_reg {
	NSS_REG_NONE = 0,
	NSS_REG_RBX,
	NSS_REG_RBP,
	NSS_REG_R12,
	NSS_REG_R13,
	NSS_REG_R14,
	NSS_REG_R15,
};

/* cookie = flags | layout index << 8 | enum nss_reg */
#define NSS_COOKIE(layout, reg)	((__u64)(layout) << 8 | (__u64)(reg))
#define NSS_COOKIE_REG(c)	((__u32)(c) & 0xff)
#define NSS_COOKIE_LAYOUT(c)	((__u32)((c) >> 8) & 0xffff)
/* on the SECKEY_UpdateCertPQG probes: the verdict waits for the application's
 * auth callback to return (nss_auth_done is attached), where NSS's own
 * verification of the chain is known; without it, it is taken there, leaf only */
#define NSS_COOKIE_WAIT		(1ULL << 32)

/* certUsage of CERT_VerifyCert (SECCertUsage, certt.h) */
#define NSS_USAGE_SSL_CLIENT	0	/* a server verifying its client */
#define NSS_USAGE_SSL_SERVER	1	/* a client verifying its server */

/* What NSS's own verification of the pending chain has shown so far (bpf/nss.bpf.c). */
enum nss_vstate {
	NSS_V_NONE = 0,		/* SSL_AuthCertificate not seen (yet) */
	NSS_V_CHAIN,		/* CERT_VerifyCert running, with signatures, no name to check */
	NSS_V_CHAIN_NAME,	/* the same, the host name to check after */
	NSS_V_NAME,		/* chain verified; CERT_VerifyCertName to come */
	NSS_V_NAME_CALLED,	/* ... called on the leaf and the socket's url */
	NSS_V_OK,		/* chain and name verified */
	NSS_V_FAILED,		/* anything else: only the leaf counts (sticky) */
};

/* Public NSS/NSPR ABI (cert.h, secitem.h, prio.h): stable across NSS 3.x. */
#define NSS_SECITEM_DATA	8	/* SECItem { type; unsigned char *data; unsigned int len; } */
#define NSS_SECITEM_LEN		16
#define NSS_CERT_SIGWRAP	24	/* CERTCertificate.signatureWrap (CERTSignedData) */
#define NSS_CERT_DERCERT	120	/* CERTCertificate.derCert (a SECItem) */
#define NSS_CERT_DERPUBKEY	192	/* CERTCertificate.derPublicKey: the SubjectPublicKeyInfo */
#define NSS_SPKI_PUBKEY		56	/* CERTSubjectPublicKeyInfo.subjectPublicKey (a SECItem, len in bits) */
#define NSPR_FD_SECRET		8	/* PRFileDesc.secret */
#define NSPR_FD_LOWER		16	/* PRFileDesc.lower */
#define NSPR_FD_IDENTITY	40	/* PRFileDesc.identity; 0 = PR_NSPR_IO_LAYER (the OS socket) */

#endif /* PW_NSS_H */
