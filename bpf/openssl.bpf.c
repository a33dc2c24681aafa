// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * OpenSSL 3 (libssl.so.3 + libcrypto.so.3). Every probe sits in libssl, at a
 * call site or an exported entry that the daemon located at attach time:
 *   d2i_X509 call sites       each certificate parsed by libssl, and its X509
 *   X509_STORE_CTX_set_ex_data call site in ssl_verify_cert_chain: the SSL*
 *   X509_STORE_CTX_set_default call site: the chain is complete
 *   X509_STORE_CTX_get_error call site, after X509_verify_cert: the verdict,
 *                             on the chain libcrypto validated (bpf/x509.bpf.h)
 *   SSL_ctrl (SNI), SSL_set_fd (the socket), SSL_free (forget the SSL*)
 * CA bundles are parsed by libcrypto itself and never pass a probe.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "session.bpf.h"
#include "x509.bpf.h"

#define SSL_CTRL_SET_TLSEXT_HOSTNAME 55

/*
 * d2i_X509(X509 **a, const unsigned char **in, long len), at a call site in
 * libssl. OpenSSL 3 hands over an X509 it allocated (*a): the object the
 * validated chain will name this certificate by. OpenSSL 1.1.1 passes NULL.
 */
SEC("uprobe")
int BPF_KPROBE(ossl_cert, void **a, const unsigned char **in, long len)
{
	struct pw_chain_acc *acc;
	__u64 der = 0, x = 0;
	int idx;

	if (bpf_probe_read_user(&der, sizeof(der), in) || !der || len <= 0)
		return 0;
	idx = chain_add_cert(der, (__u64)len);
	if (idx < 0 || !a || bpf_probe_read_user(&x, sizeof(x), a))
		return 0;
	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (acc)
		acc->objs[idx & (PW_CHAIN_MAX - 1)] = x;
	return 0;
}

/*
 * X509_STORE_CTX_set_ex_data(ctx, idx, SSL *s), just before verification: the
 * SSL*, and with OSSL_SCK_BEGIN (include/openssl.h) verification's start, its
 * side from s->server (as set_default(ctx, s->server ? "ssl_client" : "ssl_server")).
 */
SEC("uprobe")
int BPF_KPROBE(ossl_verify_ssl, void *store_ctx, int idx, void *ssl)
{
	__u64 ck = bpf_get_attach_cookie(ctx);
	__s32 server = 0;

	if (!(ck & OSSL_SCK_BEGIN)) {
		x509_store_ssl(ssl);
		return 0;
	}
	if (!ssl || bpf_probe_read_user(&server, sizeof(server), ssl + OSSL_SCK_SERVER(ck)))
		return 0;	/* as set_default's name would be unreadable: no start */
	x509_store_begin_side(store_ctx, ssl, server ? PW_SIDE_SERVER : PW_SIDE_CLIENT,
			      PW_LIB_OPENSSL);
	return 0;
}

/*
 * X509_STORE_CTX_set_default(ctx, "ssl_server" | "ssl_client"): the chain is
 * complete. The cookie is 1 when ossl_verified is attached (the verdict waits
 * for verification), 0 when this build's validated chain cannot be read (the
 * verdict is taken here, only the leaf counting).
 */
SEC("uprobe")
int BPF_KPROBE(ossl_verify, void *store_ctx, const char *name)
{
	if (bpf_get_attach_cookie(ctx))
		x509_store_begin(store_ctx, name, PW_LIB_OPENSSL);
	else
		x509_store_verdict(ctx, name, PW_LIB_OPENSSL);
	return 0;
}

/* X509_STORE_CTX_get_error(ctx), right after verification: the verdict (cookie: include/openssl.h) */
SEC("uprobe")
int BPF_KPROBE(ossl_verified, void *store_ctx)
{
	x509_store_verified(ctx, store_ctx, bpf_get_attach_cookie(ctx), PW_LIB_OPENSSL);
	return 0;
}

/* SSL_ctrl(s, SSL_CTRL_SET_TLSEXT_HOSTNAME, type, name): the SNI */
SEC("uprobe")
int BPF_KPROBE(ossl_ctrl, void *ssl, int cmd, long larg, const char *name)
{
	if (cmd == SSL_CTRL_SET_TLSEXT_HOSTNAME)
		session_set_host((__u64)ssl, name);
	return 0;
}

/* SSL_set_fd(s, fd): the connection's socket */
SEC("uprobe")
int BPF_KPROBE(ossl_set_fd, void *ssl, int fd)
{
	session_set_fd((__u64)ssl, fd);
	return 0;
}

/*
 * SSL_free(s): its address may be reused by the next SSL. A client session
 * that was resumed presented no chain: report it here. The attach cookie
 * holds where this build keeps s->hit and s->server (userspace/openssl.c reads
 * them out of SSL_session_reused and SSL_is_server); 0: not known, no report.
 */
SEC("uprobe")
int BPF_KPROBE(ossl_free, void *ssl)
{
	__u64 ck = bpf_get_attach_cookie(ctx);

	if (ssl && (ck & OSSL_CK_RESUMPTION)) {
		__s32 hit = 0, server = 1;

		bpf_probe_read_user(&hit, sizeof(hit), ssl + OSSL_CK_HIT(ck));
		bpf_probe_read_user(&server, sizeof(server), ssl + OSSL_CK_SERVER(ck));
		if (hit == 1 && server == 0)
			verdict_resumed(ctx, (__u64)ssl, PW_LIB_OPENSSL);
	}
	session_forget((__u64)ssl);
	return 0;
}
