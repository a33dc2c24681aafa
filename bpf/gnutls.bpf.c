// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * GnuTLS 3 (libgnutls.so.30). Every probe sits in libgnutls, at a call site or
 * an exported entry that the daemon located at attach time:
 *   gnutls_auth_{server,client}_get_type call sites in the internal
 *     verify-callback runner (_gnutls_run_verify_callback): the peer's chain
 *     is complete and stored in the session -> read it there, hash, verdict
 *   gnutls_server_name_set (SNI), gnutls_deinit (forget the session)
 * The runner runs in every full handshake, TLS 1.2 and 1.3, with or without
 * certificate verification, and before the client sends anything more (TLS
 * 1.2: before the server's key exchange is even read; TLS 1.3: before the
 * server's Finished is read). One probe hit judges the whole chain: there is
 * no per-certificate probe, and CA bundles never pass a probe.
 *
 * The session fields (which side, the peer certificates, the socket) are read
 * at offsets found in this very build's machine code (include/gnutls.h).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "session.bpf.h"
#include "verdict.bpf.h"
#include "gnutls.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PW_GNUTLS_LAYOUTS);
	__type(key, __u32);
	__type(value, struct pw_gnutls_layout);
} gnutls_layouts SEC(".maps");

/* gnutls_datum_t */
struct gnutls_datum {
	__u64 data;
	__u32 size;
	__u32 pad;
};

struct gnutls_certs_loop {
	__u64 list;		/* gnutls_datum_t raw_certificate_list[] in the process */
	__u64 now;
};

/* Certificate i of the session's peer list: copy, hash, append to the chain. */
static long gnutls_cert_cb(__u32 i, void *data)
{
	struct gnutls_certs_loop *cl = data;
	struct gnutls_datum d = {};
	struct pw_chain_acc *acc;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc)
		return 1;
	/* an unreadable entry is appended as an empty certificate: flagged, fail closed */
	if (bpf_probe_read_user(&d, sizeof(d), (const void *)(cl->list + (__u64)i * sizeof(d))))
		d.data = d.size = 0;
	chain_append(acc, d.data, d.size, cl->now);
	return 0;
}

static __always_inline __u64 read_u64(__u64 addr)
{
	__u64 v = 0;

	bpf_probe_read_user(&v, sizeof(v), (const void *)addr);
	return v;
}

static __always_inline __u32 read_u32(__u64 addr)
{
	__u32 v = 0;

	bpf_probe_read_user(&v, sizeof(v), (const void *)addr);
	return v;
}

/*
 * gnutls_auth_server_get_type(session) or gnutls_auth_client_get_type(session),
 * called from the verify-callback runner: the peer's chain is complete.
 */
SEC("uprobe")
int BPF_KPROBE(gnutls_verify, void *session_ptr)
{
	__u64 session = (__u64)session_ptr, info = 0, transport;
	__u32 key = (__u32)bpf_get_attach_cookie(ctx), npeers = 0;
	struct gnutls_certs_loop cl = {};
	struct pw_gnutls_layout *lay;
	struct pw_chain_acc *acc;
	__u8 side;

	lay = bpf_map_lookup_elem(&gnutls_layouts, &key);
	if (!lay || !session)
		return 0;
	/* a server judges its client's chain (mTLS), a client its server's */
	side = read_u32(session + lay->entity) == PW_GNUTLS_SERVER ? PW_SIDE_SERVER :
								     PW_SIDE_CLIENT;
	if (read_u32(session + lay->auth_info_type) == PW_GNUTLS_CRD_CERTIFICATE)
		info = read_u64(session + lay->auth_info);
	if (info) {
		cl.list = read_u64(info + lay->peers);
		npeers = cl.list ? read_u32(info + lay->npeers) : 0;
	}
	/* a server that received no client certificate has nothing to judge */
	if (side == PW_SIDE_SERVER && !npeers)
		return 0;

	acc = chain_begin();
	if (!acc) {
		verdict_no_acc(PW_LIB_GNUTLS, side);
		return 0;
	}
	acc->ssl = session;
	cl.now = bpf_ktime_get_boot_ns();
	/* one more than fits, so that chain_append flags a longer chain as truncated */
	bpf_loop(npeers > PW_CHAIN_MAX ? PW_CHAIN_MAX + 1 : npeers, gnutls_cert_cb, &cl, 0);
	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc) {
		verdict_no_acc(PW_LIB_GNUTLS, side);
		return 0;
	}

	/* the socket: with GnuTLS's own push/pull functions the transport pointer is
	 * the fd (gnutls_transport_set_int2, or set_ptr as wget does); anything else
	 * fails peer_from_fd's checks and the thread's last connect() is used */
	transport = read_u64(session + lay->transport);
	if (transport <= 0x7fffffff)
		session_set_fd(session, (int)transport);

	verdict_judge(acc, PW_LIB_GNUTLS, side);
	chain_reset(acc);
	return 0;
}

/* gnutls_server_name_set(session, type, name, len): the SNI (not NUL-terminated) */
SEC("uprobe")
int BPF_KPROBE(gnutls_sni, void *session, int type, const char *name, __u64 len)
{
	if (type == PW_GNUTLS_NAME_DNS)
		session_set_host_len((__u64)session, name, len < PW_HOST_MAX ? (__u32)len : 0);
	return 0;
}

/* gnutls_deinit(session): its address may be reused by the next session */
SEC("uprobe")
int BPF_KPROBE(gnutls_deinit, void *session)
{
	session_forget((__u64)session);
	return 0;
}
