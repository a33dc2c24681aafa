// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * OpenSSL 3 (libssl.so.3 + libcrypto.so.3). Every probe sits in libssl, at a
 * call site or an exported entry that the daemon located at attach time:
 *   d2i_X509 call sites       each certificate parsed by libssl
 *   X509_STORE_CTX_set_ex_data call site in ssl_verify_cert_chain: the SSL*
 *   X509_STORE_CTX_set_default call site: the chain is complete -> verdict
 *   SSL_ctrl (SNI), SSL_set_fd (the socket), SSL_free (forget the SSL*)
 * CA bundles are parsed by libcrypto itself and never pass a probe.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "verdict.bpf.h"

#define SSL_CTRL_SET_TLSEXT_HOSTNAME 55

static const struct pw_ssl_state ssl_state_empty = { .fd = -1 };

static __always_inline struct pw_ssl_state *ssl_state_get(__u64 ssl)
{
	struct pw_ssl_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .ssl = ssl };
	struct pw_ssl_state *st = bpf_map_lookup_elem(&ssl_state, &k);

	if (st)
		return st;
	if (bpf_map_update_elem(&ssl_state, &k, &ssl_state_empty, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&ssl_state, &k)) {
		count(PW_CNT_SNI_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&ssl_state, &k);
}

/* d2i_X509(X509 **a, const unsigned char **in, long len), at a call site in libssl */
SEC("uprobe")
int BPF_KPROBE(ossl_cert, void *a, const unsigned char **in, long len)
{
	__u64 der = 0;

	if (bpf_probe_read_user(&der, sizeof(der), in) || !der || len <= 0)
		return 0;
	chain_add_cert(der, (__u64)len);
	return 0;
}

/* X509_STORE_CTX_set_ex_data(ctx, idx, SSL *s), just before the verdict point */
SEC("uprobe")
int BPF_KPROBE(ossl_verify_ssl, void *store_ctx, int idx, void *ssl)
{
	struct pw_chain_acc *acc;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (acc)
		acc->ssl = (__u64)ssl;
	return 0;
}

/* X509_STORE_CTX_set_default(ctx, "ssl_server" | "ssl_client"): the chain is complete */
SEC("uprobe")
int BPF_KPROBE(ossl_verify, void *store_ctx, const char *name)
{
	struct pw_chain_acc *acc;
	char n[11] = {};
	__u8 side;

	if (bpf_probe_read_user(n, sizeof(n), name))
		return 0;
	/* "ssl_server": we are the client judging a server; "ssl_client": the reverse */
	if (n[0] != 's' || n[1] != 's' || n[2] != 'l' || n[3] != '_' || n[10] != 0)
		return 0;
	if (n[4] == 's' && n[5] == 'e')
		side = PW_SIDE_CLIENT;
	else if (n[4] == 'c' && n[5] == 'l')
		side = PW_SIDE_SERVER;
	else
		return 0;
	acc = chain_acc_get();
	if (!acc)
		return 0;
	verdict_judge(acc, PW_LIB_OPENSSL, side);
	chain_reset(acc);
	return 0;
}

/* SSL_ctrl(s, SSL_CTRL_SET_TLSEXT_HOSTNAME, type, name): the SNI */
SEC("uprobe")
int BPF_KPROBE(ossl_ctrl, void *ssl, int cmd, long larg, const char *name)
{
	struct pw_ssl_state *st;
	long n;
	__u32 i, len = 0;

	if (cmd != SSL_CTRL_SET_TLSEXT_HOSTNAME)
		return 0;
	st = ssl_state_get((__u64)ssl);
	if (!st)
		return 0;
	st->host_len = 0;
	if (!name)
		return 0;
	n = bpf_probe_read_user_str(st->host, sizeof(st->host), name);
	if (n <= 1)
		return 0;
	/* compare names in lower case and without a final dot, as the policy does */
	for (i = 0; i < PW_HOST_MAX; i++) {
		char c = st->host[i];

		if (!c)
			break;
		if (c >= 'A' && c <= 'Z')
			st->host[i] = c + ('a' - 'A');
		len = i + 1;
	}
	if (len && st->host[(len - 1) & (PW_HOST_MAX - 1)] == '.')
		st->host[--len & (PW_HOST_MAX - 1)] = 0;
	st->host_len = len;
	return 0;
}

/* SSL_set_fd(s, fd): the connection's socket */
SEC("uprobe")
int BPF_KPROBE(ossl_set_fd, void *ssl, int fd)
{
	struct pw_ssl_state *st = ssl_state_get((__u64)ssl);

	if (st)
		st->fd = fd;
	return 0;
}

/* SSL_free(s): its address may be reused by the next SSL */
SEC("uprobe")
int BPF_KPROBE(ossl_free, void *ssl)
{
	struct pw_ssl_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .ssl = (__u64)ssl };

	bpf_map_delete_elem(&ssl_state, &k);
	return 0;
}
