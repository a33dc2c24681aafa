// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Go crypto/tls, statically linked into each Go executable (register ABI,
 * Go 1.17+). userspace/go.c finds the functions through .gopclntab and puts
 * each probe on the `jbe` of the function's stack-growth check (a branch the
 * kernel emulates, the argument registers still intact):
 *   crypto/tls.hostnameInSNI(name string)         the SNI, by goroutine
 *   (*Conn).verifyServerCertificate(c, [][]byte)   the whole chain, hashed
 *   (*Conn).processCertsFromClient(c, Certificate) the same for a client's
 *                                                  chain (mTLS, server side)
 *   crypto/x509.checkChainForKeyUsage(chain, ...)  each chain Go's Verify built
 *                                                  and checked, signatures and
 *                                                  all, up to a trusted root
 *   (*Conn).readHandshake, (*Conn).sendAlert       the first thing the
 *                                                  handshake does after the
 *                                                  verification: the verdict
 * The chain waits between its capture and the verdict in go_pending, by
 * goroutine: a verification may move the goroutine to another thread.
 * Go state is keyed by goroutine (R14 holds the running g) or by *Conn, never
 * by thread: goroutines move between threads at any point. No return probes:
 * the Go runtime moves stacks and would crash on the kernel's trampoline.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "session.bpf.h"
#include "verdict.bpf.h"
#include "go.h"

#define X86_CF			(1UL << 0)
#define X86_ZF			(1UL << 6)

#define GO_VCHAIN_MAX		10	/* certificates of a verified chain looked at */

/*
 * hostnameInSNI's argument (config.ServerName) is kept in ssl_state under the
 * goroutine (tagged: it is no object address), until the same goroutine
 * verifies the chain: a client handshake runs in one goroutine from the
 * ClientHello to the verification.
 */
#define GO_SNI_TAG	(1ULL << 63)

/*
 * Chains captured and waiting for Go's verification, by (tgid, goroutine).
 * LRU: a handshake that dies in between leaves nothing behind for long.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct pw_ssl_key);
	__type(value, struct pw_chain_acc);
} go_pending SEC(".maps");

/*
 * On the jbe of `cmp rsp, [r14+16]`: when it will branch, the function is
 * about to grow its stack and start again from its entry, where the probe
 * fires once more. Only the pass that goes on counts.
 */
static __always_inline int go_will_grow_stack(struct pt_regs *ctx, __u64 cookie)
{
	return (cookie & GO_CK_AT_JBE) && (ctx->flags & (X86_CF | X86_ZF));
}

static __always_inline struct pw_ssl_key go_goroutine_key(struct pt_regs *ctx)
{
	struct pw_ssl_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .ssl = ctx->r14 };

	return k;
}

/*
 * Is name[0, len) an IP literal? hostnameInSNI sends no SNI for those
 * ("[v6]", "v6%zone", dotted-quad v4). Walked in a bpf_loop callback.
 */
struct ip_scan {
	struct pw_ssl_state *st;
	__u32 len;
	__u32 dots;
	__u32 digits;		/* digits in the current v4 part */
	__u32 value;		/* value of the current v4 part */
	__u32 colon;
	__u32 not_v4;
};

static long ip_scan_cb(__u32 i, void *data)
{
	struct ip_scan *s = data;
	char c;

	if (i >= s->len)
		return 1;
	c = s->st->host[i & (PW_HOST_MAX - 1)];
	if (c == ':' || c == '[' || c == '%') {
		s->colon = 1;
		return 1;
	}
	if (c == '.') {
		if (!s->digits)
			s->not_v4 = 1;
		s->dots++;
		s->digits = 0;
		s->value = 0;
	} else if (c >= '0' && c <= '9') {
		/* Go refuses leading zeros in v4 parts ("01.2.3.4" is a name) */
		if (s->digits == 1 && s->value == 0)
			s->not_v4 = 1;
		s->value = s->value * 10 + (c - '0');
		s->digits++;
		if (s->value > 255)
			s->not_v4 = 1;
	} else {
		s->not_v4 = 1;
	}
	return 0;
}

static __always_inline int go_name_is_ip(struct pw_ssl_state *st, __u32 len)
{
	struct ip_scan s = { .st = st, .len = len };

	bpf_loop(PW_HOST_MAX, ip_scan_cb, &s, 0);
	if (s.colon)
		return 1;
	return !s.not_v4 && s.dots == 3 && s.digits;
}

/* crypto/tls.hostnameInSNI(name string): RAX = name.ptr, RBX = name.len */
SEC("uprobe")
int go_sni_name(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct pw_ssl_key k;
	struct pw_ssl_state *st;
	__u64 name = ctx->ax, len = ctx->bx;
	__u32 i;

	if (go_will_grow_stack(ctx, cookie))
		return 0;
	k = go_goroutine_key(ctx);
	/* set afresh each time: an earlier, failed handshake of this goroutine is forgotten */
	st = session_get(k.ssl | GO_SNI_TAG);
	if (!st)
		return 0;
	st->host_len = 0;
	st->flags &= ~PW_SESSION_HOST_UNREADABLE;
	__builtin_memset(st->host, 0, sizeof(st->host));
	if (!name || !len)
		return 0;
	if (len >= PW_HOST_MAX ||
	    bpf_probe_read_user(st->host, len & (PW_HOST_MAX - 1), (const void *)name)) {
		st->flags |= PW_SESSION_HOST_UNREADABLE;
		return 0;
	}
	if (go_name_is_ip(st, len))
		return 0;
	/* lower case, one final dot stripped; Go strips every final dot */
	session_host_normalize(st);
	for (i = 0; i < 8 && st->host_len; i++) {
		if (st->host[(st->host_len - 1) & (PW_HOST_MAX - 1)] != '.')
			break;
		st->host_len--;
		st->host[st->host_len & (PW_HOST_MAX - 1)] = 0;
	}
	return 0;
}

/* What the verification probe hands its bpf_loop callback. */
struct go_chain {
	__u64 certs;		/* user address of the [][]byte backing array */
	__u64 now;
};

/*
 * Copy and hash one certificate into the thread's accumulator. A global
 * function, verified once on its own: inside the bpf_loop callback below the
 * hashing code would be verified again for each state of the loop.
 */
__noinline int go_cert_append(__u64 der, __u64 len, __u64 now)
{
	struct pw_chain_acc *acc;

	int idx;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc)
		return -1;
	idx = chain_append(acc, der, len > PW_MAX_CERT_LIST ? PW_MAX_CERT_LIST : (__u32)len, now);
	/* the bytes Go parses this certificate from: its x509.Certificate.Raw */
	if (idx >= 0)
		acc->objs[idx & (PW_CHAIN_MAX - 1)] = der;
	return 0;
}

/* An element of the [][]byte we cannot read: the chain is not judged in full (fails closed). */
__noinline int go_cert_unreadable(void)
{
	struct pw_chain_acc *acc;
	__u32 idx;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0, 0);
	if (!acc)
		return -1;
	idx = acc->ncerts;
	acc->ncerts = idx + 1;
	acc->flags |= PW_CHAIN_CERT_ERROR;
	if (idx < PW_CHAIN_MAX) {
		acc->certs[idx & (PW_CHAIN_MAX - 1)].flags = PW_CERT_COPY_FAILED;
		acc->certs[idx & (PW_CHAIN_MAX - 1)].der_len = 0;
	}
	count(PW_CNT_COPY_FAILED);
	return 0;
}

static long go_cert_cb(__u32 i, void *data)
{
	struct go_chain *gc = data;
	__u64 hdr[2];		/* one []byte: ptr, len (cap unused) */

	if (bpf_probe_read_user(hdr, sizeof(hdr), (const void *)(gc->certs + (__u64)i * GO_SLICE_SIZE)))
		go_cert_unreadable();
	else
		go_cert_append(hdr[0], hdr[1], gc->now);
	return 0;
}

/*
 * The socket behind c.conn when it is a *net.TCPConn: tls.Conn starts with its
 * `conn net.Conn` (itab, data); the itab's type hash says which type it holds;
 * *net.TCPConn -> netFD -> poll.FD.Sysfd (after the 16-byte fdMutex). These
 * layouts have not changed since Go 1.9; the socket check in pw_peer_from_fd
 * backs them up.
 */
static __always_inline int go_conn_fd(__u64 conn, __u64 cookie)
{
	__u64 iface[2], netfd = 0, sysfd = 0;
	__u32 hash = 0;

	if (!(cookie & GO_CK_HAVE_HASH))
		return -1;
	if (bpf_probe_read_user(iface, sizeof(iface), (const void *)conn) || !iface[0] || !iface[1])
		return -1;
	if (bpf_probe_read_user(&hash, sizeof(hash), (const void *)(iface[0] + 16)) ||
	    hash != (__u32)(cookie & GO_CK_TCPCONN_HASH))
		return -1;
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (const void *)iface[1]) || !netfd)
		return -1;
	if (bpf_probe_read_user(&sysfd, sizeof(sysfd), (const void *)(netfd + 16)) ||
	    sysfd > 0x7fffffff)
		return -1;
	return (int)sysfd;
}

/*
 * The Conn's SNI (left by hostnameInSNI in goroutine g; g = 0: none) and
 * socket, in ssl_state for the verdict. A global function: the verifier
 * checks it on its own, so its branches do not multiply the states of the
 * verdict after it.
 */
__noinline int go_session_prepare(__u64 conn, __u64 g, __u64 cookie)
{
	struct pw_ssl_state *st = session_get(conn), *sni = NULL;

	if (g)
		sni = session_find(g | GO_SNI_TAG);
	if (st) {
		st->host_len = 0;
		st->flags &= ~PW_SESSION_HOST_UNREADABLE;
		if (sni) {
			st->host_len = sni->host_len;
			st->flags |= sni->flags & PW_SESSION_HOST_UNREADABLE;
			bpf_probe_read_kernel(st->host, sizeof(st->host), sni->host);
		}
		st->fd = go_conn_fd(conn, cookie);
	}
	if (sni)
		session_forget(g | GO_SNI_TAG);
	return 0;
}

/* Start a chain and capture the n certificates of the [][]byte at `certs` (global: as above). */
__noinline int go_chain_collect(__u64 certs, __u64 n)
{
	struct pw_chain_acc *acc = chain_begin();
	struct go_chain gc = { .certs = certs };

	if (!acc)
		return -1;
	gc.now = acc->ts;
	if (n > PW_CHAIN_MAX + 1)
		n = PW_CHAIN_MAX + 1;	/* the one past the limit flags the chain as truncated */
	if (certs)
		bpf_loop((__u32)n, go_cert_cb, &gc, 0);
	return 0;
}

/*
 * (*Conn).verifyServerCertificate(certificates [][]byte): RAX = c, RBX/RCX/RDI =
 * the slice. With GO_CK_SERVER, (*Conn).processCertsFromClient(certificate
 * Certificate): RAX = c, and the Certificate struct, 15 words, more than the
 * 9 integer argument registers, on the stack: its first field, the [][]byte
 * chain, at 8(SP).
 */
SEC("uprobe")
int go_verify(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 conn = ctx->ax, certs = ctx->bx, n = ctx->cx, g = ctx->r14;
	struct pw_ssl_key pk = go_goroutine_key(ctx);
	struct pw_chain_acc *acc;
	__u8 side = PW_SIDE_CLIENT;

	if (go_will_grow_stack(ctx, cookie))
		return 0;
	if (cookie & GO_CK_SERVER) {
		__u64 chain[2];

		/* unreadable: judged as a chain with nothing captured (fails closed) */
		if (bpf_probe_read_user(chain, sizeof(chain), (const void *)(ctx->sp + 8)))
			chain[0] = chain[1] = 0;
		/* a client that sent no certificate: nothing to judge (Go refuses it
		 * itself when the server requires one) */
		else if (!chain[1])
			return 0;
		certs = chain[0];
		n = chain[1];
		g = 0;	/* the client asked for a name, but we do not know it */
		side = PW_SIDE_SERVER;
	}
	if (go_chain_collect(certs, n)) {
		verdict_no_acc(PW_LIB_GO, side);
		return 0;
	}
	go_session_prepare(conn, g, cookie);
	acc = chain_acc_get();
	if (!acc) {
		verdict_no_acc(PW_LIB_GO, side);
		return 0;
	}
	acc->ssl = conn;
	if (cookie & GO_CK_VALIDATED) {
		/* the verdict waits for Go's verification (go_chain_usage, go_verified):
		 * until then, nothing but the leaf can count */
		acc->vctx = conn;
		acc->side = side;
		acc->validation = PW_VALIDATION_UNVERIFIED;
		if (bpf_map_update_elem(&go_pending, &pk, acc, BPF_ANY) == 0) {
			chain_reset(acc);
			return 0;
		}
		acc->validation = PW_VALIDATION_UNKNOWN;	/* cannot wait: judge now, leaf only */
	}
	/* judged: nothing more to know about this Conn (a renegotiation starts over) */
	verdict_judge(ctx, acc, PW_LIB_GO, side, conn);
	return 0;
}

/* What the walk of a verified chain hands its bpf_loop callback. */
struct go_vchain {
	struct pw_ssl_key k;	/* the pending chain's key */
	__u64 chain;		/* the []*x509.Certificate's backing array */
};

/* A []byte header of an x509.Certificate field: ptr, len. */
static __always_inline int go_cert_bytes(__u64 cert, __u32 field, __u64 hdr[2])
{
	return bpf_probe_read_user(hdr, 2 * sizeof(__u64), (const void *)(cert + field)) ||
	       !hdr[0] || !hdr[1] || hdr[1] > PW_CERT_MAX;
}

/*
 * Certificate i + 1 of a verified chain: one the peer presented (Go parsed it
 * from the bytes we hashed: same Raw), or one it did not (a root from the
 * trust store, or a certificate Go's certificate cache parsed for an earlier
 * connection), kept to be hashed from its RawSubjectPublicKeyInfo if a pin
 * needs it.
 */
static long go_vchain_cb(__u32 i, void *data)
{
	struct go_vchain *vc = data;
	struct pw_chain_acc *p = bpf_map_lookup_elem(&go_pending, &vc->k);
	__u64 cert = 0, raw[2], spki[2];
	__u32 j, n;

	if (!p)
		return 1;
	if (bpf_probe_read_user(&cert, sizeof(cert), (const void *)(vc->chain + 8 * ((__u64)i + 1))) ||
	    !cert || go_cert_bytes(cert, GO_X509_RAW, raw) || go_cert_bytes(cert, GO_X509_RAW_SPKI, spki)) {
		p->flags |= PW_CHAIN_ANCHOR_ERROR;
		return 0;
	}
	n = p->ncerts;
	for (j = 1; j < PW_CHAIN_MAX; j++) {
		if (j >= n)
			break;
		if (p->objs[j] == raw[0]) {
			p->validated |= 1u << j;
			return 0;
		}
	}
	n = p->nanchors;
	for (j = 0; j < PW_ANCHORS_MAX; j++)
		if (j < n && p->anchors[j].ptr == spki[0])
			return 0;	/* in another verified chain too */
	if (n >= PW_ANCHORS_MAX) {
		p->flags |= PW_CHAIN_ANCHOR_ERROR;
		return 0;
	}
	p->anchors[n & (PW_ANCHORS_MAX - 1)].ptr = spki[0];
	p->anchors[n & (PW_ANCHORS_MAX - 1)].len = (__u32)spki[1];
	p->anchors[n & (PW_ANCHORS_MAX - 1)].kind = PW_ANCHOR_SPKI;
	p->nanchors = n + 1;
	return 0;
}

static __always_inline int go_spki_equal(const __u8 *a, const __u8 *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/*
 * A chain Go's Verify built and checked for the pending handshake of this
 * goroutine: its certificates count. Only if it starts with the presented
 * leaf (the same bytes, or, parsed earlier, the same key): anything else
 * this goroutine verifies is not this handshake's chain.
 */
__noinline int go_vchain(__u32 tgid, __u64 g, __u64 chain, __u64 n)
{
	struct go_vchain vc = { .k = { .tgid = tgid, .ssl = g }, .chain = chain };
	struct pw_chain_acc *p = bpf_map_lookup_elem(&go_pending, &vc.k);
	struct pw_anchor_src leaf = { .kind = PW_ANCHOR_SPKI };
	struct pw_chain_cert lc;
	__u64 cert = 0, raw[2], spki[2];

	if (!p || !n || !p->ncerts)
		return 0;
	if (bpf_probe_read_user(&cert, sizeof(cert), (const void *)chain) || !cert ||
	    go_cert_bytes(cert, GO_X509_RAW, raw))
		return 0;
	if (raw[0] != p->objs[0]) {
		if (go_cert_bytes(cert, GO_X509_RAW_SPKI, spki) ||
		    !(p->certs[0].flags & PW_CERT_SPKI_HASHED))
			return 0;
		leaf.ptr = spki[0];
		leaf.len = (__u32)spki[1];
		anchor_capture(&leaf, &lc);
		p = bpf_map_lookup_elem(&go_pending, &vc.k);
		if (!p || !(lc.flags & PW_CERT_SPKI_HASHED) ||
		    !go_spki_equal(lc.spki_sha256, p->certs[0].spki_sha256))
			return 0;
	}
	p->validated |= 1;
	p->validation = PW_VALIDATION_VERIFIED;
	if (n > 1)
		bpf_loop(n - 1 > GO_VCHAIN_MAX ? GO_VCHAIN_MAX : (__u32)(n - 1), go_vchain_cb, &vc, 0);
	return 0;
}

/* crypto/x509.checkChainForKeyUsage(chain []*Certificate, ...): RAX, RBX = chain */
SEC("uprobe")
int go_chain_usage(struct pt_regs *ctx)
{
	struct pw_ssl_key k = go_goroutine_key(ctx);

	if (go_will_grow_stack(ctx, bpf_get_attach_cookie(ctx)))
		return 0;
	if (!bpf_map_lookup_elem(&go_pending, &k))
		return 0;
	go_vchain(k.tgid, k.ssl, ctx->ax, ctx->bx);
	return 0;
}

/* The pending chain of this goroutine's Conn, judged now (global: verified once). */
__noinline int go_pending_judge(struct pt_regs *ctx, __u32 tgid, __u64 g)
{
	struct pw_ssl_key k = { .tgid = tgid, .ssl = g };
	struct pw_chain_acc *acc, *p;

	p = bpf_map_lookup_elem(&go_pending, &k);
	if (!p)
		return 0;
	acc = chain_unpark(&go_pending, &k, p);
	if (!acc) {
		verdict_no_acc(PW_LIB_GO, p->side);
		bpf_map_delete_elem(&go_pending, &k);
		return 0;
	}
	verdict_judge(ctx, acc, PW_LIB_GO, acc->side, acc->vctx);
	return 0;
}

/*
 * (*Conn).readHandshake(c, ...) or (*Conn).sendAlert(c, ...): RAX = c. The
 * first thing a handshake does once its peer's chain is verified (the next
 * message) or refused (an alert), before anything of the application's.
 */
SEC("uprobe")
int go_verified(struct pt_regs *ctx)
{
	struct pw_ssl_key k = go_goroutine_key(ctx);
	struct pw_chain_acc *p;

	if (go_will_grow_stack(ctx, bpf_get_attach_cookie(ctx)))
		return 0;
	p = bpf_map_lookup_elem(&go_pending, &k);
	if (!p || p->vctx != ctx->ax)
		return 0;
	go_pending_judge(ctx, k.tgid, k.ssl);
	return 0;
}
