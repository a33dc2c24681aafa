/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The contract between bpf/go.bpf.c and userspace/go.c: the attach cookies of
 * the Go crypto/tls probes, and the Go layouts the probes read.
 */
#ifndef PW_GO_H
#define PW_GO_H

#define GO_CK_TCPCONN_HASH	0xffffffffULL	/* type hash of *net.TCPConn */
#define GO_CK_HAVE_HASH		(1ULL << 32)	/* ... is known: the fd can be found */
#define GO_CK_AT_JBE		(1ULL << 33)	/* probe on the stack check's jbe */
#define GO_CK_SERVER		(1ULL << 34)	/* processCertsFromClient: a client's chain */
#define GO_CK_VALIDATED		(1ULL << 35)	/* the verdict waits for Go's verification */

/* the functions probed, by their names in .gopclntab */
#define GO_FN_VERIFY		"crypto/tls.(*Conn).verifyServerCertificate"
#define GO_FN_SNI		"crypto/tls.hostnameInSNI"
#define GO_FN_CLIENT_CERTS	"crypto/tls.(*Conn).processCertsFromClient"
#define GO_FN_CHAIN_USAGE	"crypto/x509.checkChainForKeyUsage"
#define GO_FN_READ_HANDSHAKE	"crypto/tls.(*Conn).readHandshake"
#define GO_FN_SEND_ALERT	"crypto/tls.(*Conn).sendAlert"

#define GO_SLICE_SIZE		24	/* []byte: {ptr, len, cap} */

/*
 * crypto/x509.Certificate begins with Raw, RawTBSCertificate,
 * RawSubjectPublicKeyInfo ([]byte each): the order its declaration has kept
 * since Go 1.0, and Go lays struct fields out in declaration order.
 */
#define GO_X509_RAW		0
#define GO_X509_RAW_SPKI	(2 * GO_SLICE_SIZE)

#endif /* PW_GO_H */
