// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * BoringSSL (Debian's android-libboringssl: libssl.so.0 + libcrypto.so.0).
 * Every probe sits in libssl, at a call site or an exported entry that the
 * daemon located at attach time (userspace/boringssl.c):
 *   CRYPTO_BUFFER_new_from_CBS call sites  each buffer libssl keeps: peer
 *                    certificates, but also OCSP responses, SCT lists, CA
 *                    names and certificates of deserialised sessions; the TLS
 *                    framing around the bytes tells the peer's certificates
 *                    from the rest (chain.bpf.h)
 *   X509_STORE_CTX_set_ex_data call site   the SSL* of the chain being verified
 *   X509_STORE_CTX_set_default call site   the chain is complete
 *   X509_STORE_CTX_get_error call site     after X509_verify_cert: the verdict,
 *                    on the chain libcrypto validated (bpf/x509.bpf.h; the
 *                    presented certificates are told in it by their keys)
 *   the custom verify callback's call site (SSL_[CTX_]set_custom_verify): the
 *                    chain is complete for applications that verify without
 *                    the X509 layer -> verdict
 *   SSL_do_handshake           which connection the thread drives (below)
 *   SSL_set_tlsext_host_name (SNI), SSL_set_fd (socket), SSL_free
 * CA bundles are parsed by libcrypto itself and never pass a probe.
 *
 * In TLS 1.3 BoringSSL verifies the chain only once CertificateVerify has
 * arrived: an event-loop application may drive its other connections between
 * a connection's Certificate and its verification. The chain accumulator is
 * per thread, so when the thread turns to another connection (SSL_do_handshake
 * with another SSL*) an unfinished chain is parked under its SSL* and brought
 * back when that connection's handshake resumes: each connection is judged
 * with its own certificates, never with those of the one that ran meanwhile.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "session.bpf.h"
#include "x509.bpf.h"

/* The connection whose handshake the thread drives (SSL_do_handshake's SSL*). */
struct bssl_driver {
	__u64 ssl;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct bssl_driver);
} bssl_driving SEC(".maps");

/* Unfinished chains of connections the thread turned away from, by (tgid, SSL*).
 * LRU: a process that dies mid-handshake leaves nothing behind for long. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct pw_ssl_key);
	__type(value, struct pw_chain_acc);
} bssl_parked SEC(".maps");

/* BoringSSL's CBS: a view into a buffer */
struct bssl_cbs {
	__u64 data;
	__u64 len;
};

/* CRYPTO_BUFFER_new_from_CBS(const CBS *cbs, CRYPTO_BUFFER_POOL *pool), at a call site in libssl */
SEC("uprobe")
int BPF_KPROBE(bssl_cert, const struct bssl_cbs *cbs)
{
	struct bssl_cbs c;

	if (bpf_probe_read_user(&c, sizeof(c), cbs) || !c.data || !c.len)
		return 0;
	chain_add_cert(c.data, c.len);
	return 0;
}

/* X509_STORE_CTX_set_ex_data(ctx, idx, SSL *ssl), just before the verdict point */
SEC("uprobe")
int BPF_KPROBE(bssl_verify_ssl, void *store_ctx, int idx, void *ssl)
{
	x509_store_ssl(ssl);
	return 0;
}

/*
 * X509_STORE_CTX_set_default(ctx, "ssl_server" | "ssl_client"): the chain is
 * complete. Cookie 1: bssl_verified is attached, the verdict waits for the
 * verification; 0: the verdict is taken here, only the leaf counting.
 */
SEC("uprobe")
int BPF_KPROBE(bssl_verify, void *store_ctx, const char *name)
{
	if (bpf_get_attach_cookie(ctx))
		x509_store_begin(store_ctx, name, PW_LIB_BORINGSSL);
	else
		x509_store_verdict(ctx, name, PW_LIB_BORINGSSL);
	return 0;
}

/* X509_STORE_CTX_get_error(ctx), right after X509_verify_cert: the verdict (include/openssl.h) */
SEC("uprobe")
int BPF_KPROBE(bssl_verified, void *store_ctx)
{
	x509_store_verified(ctx, store_ctx, bpf_get_attach_cookie(ctx), PW_LIB_BORINGSSL);
	return 0;
}

/*
 * The call of the application's custom verify callback, callback(SSL *ssl,
 * uint8_t *out_alert), in ssl_verify_peer_cert: these applications never reach
 * the X509 layer. The attach cookie tells where the SSL keeps its "server" bit
 * in this build: bits 0-7 the mask, bits 8-31 the byte offset. The same code
 * pattern also calls the callback to re-verify a resumed session, which
 * presents no certificates: with no certificate captured in this handshake, no
 * verdict (the one of the full handshake stands). The accumulator holds only
 * certificates of this connection's handshake (see bssl_handshake), so a chain
 * that is there is judged however old it is: a server that stalls its
 * CertificateVerify past the accumulator's age limit meets a fail-closed
 * verdict, not none.
 */
SEC("uprobe")
int BPF_KPROBE(bssl_custom_verify, void *ssl)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct pw_chain_acc *acc;
	__u8 bits = 0, side;

	if (bpf_probe_read_user(&bits, 1, (const void *)((__u64)ssl + ((cookie >> 8) & 0xffffff))))
		return 0;
	side = (bits & cookie & 0xff) ? PW_SIDE_SERVER : PW_SIDE_CLIENT;
	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc || !acc->ncerts)
		return 0;
	acc->ssl = (__u64)ssl;
	verdict_judge(ctx, acc, PW_LIB_BORINGSSL, side, 0);
	return 0;
}

/*
 * SSL_do_handshake(ssl) (SSL_connect, SSL_accept, and SSL_read/SSL_write while
 * the handshake is not done all go through it): park the thread's unfinished
 * chain if it belongs to another connection (drop it if that one was freed),
 * bring back this one's. The accumulator then only ever holds certificates of
 * the connection being driven.
 */
SEC("uprobe")
int BPF_KPROBE(bssl_handshake, void *ssl)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pw_ssl_key k = { .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct pw_chain_acc *acc, *parked;
	struct bssl_driver *drv;

	drv = bpf_task_storage_get(&bssl_driving, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!drv || drv->ssl == (__u64)ssl)
		return 0;
	acc = bpf_task_storage_get(&chains, task, 0, 0);
	if (acc && acc->ncerts) {
		k.ssl = drv->ssl;
		if (!drv->ssl || bpf_map_update_elem(&bssl_parked, &k, acc, BPF_ANY))
			count(PW_CNT_ABANDONED);
		chain_reset(acc);
	}
	drv->ssl = (__u64)ssl;
	k.ssl = (__u64)ssl;
	parked = bpf_map_lookup_elem(&bssl_parked, &k);
	if (!parked)
		return 0;
	if (!acc)
		acc = chain_acc_get();
	if (acc)
		bpf_probe_read_kernel(acc, sizeof(*acc), parked);
	bpf_map_delete_elem(&bssl_parked, &k);
	return 0;
}

/* SSL_set_tlsext_host_name(ssl, name): the SNI (a function, not a macro, in BoringSSL) */
SEC("uprobe")
int BPF_KPROBE(bssl_sni, void *ssl, const char *name)
{
	session_set_host((__u64)ssl, name);
	return 0;
}

/* SSL_set_fd(ssl, fd): the connection's socket */
SEC("uprobe")
int BPF_KPROBE(bssl_set_fd, void *ssl, int fd)
{
	session_set_fd((__u64)ssl, fd);
	return 0;
}

/* SSL_free(ssl): its address may be reused by the next SSL */
SEC("uprobe")
int BPF_KPROBE(bssl_free, void *ssl)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pw_ssl_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .ssl = (__u64)ssl };
	struct pw_chain_acc *acc;
	struct bssl_driver *drv;

	session_forget((__u64)ssl);
	bpf_map_delete_elem(&bssl_parked, &k);
	drv = bpf_task_storage_get(&bssl_driving, task, 0, 0);
	if (!drv || drv->ssl != (__u64)ssl)
		return 0;
	/* its unfinished chain, if any, will never be verified */
	drv->ssl = 0;
	acc = bpf_task_storage_get(&chains, task, 0, 0);
	if (acc && acc->ncerts) {
		count(PW_CNT_ABANDONED);
		chain_reset(acc);
	}
	return 0;
}
