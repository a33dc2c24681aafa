/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The chain accumulator: collects the certificates of one Certificate message
 * per thread, whatever the library. A library probe either calls
 * chain_add_cert() for each certificate it sees parsed (the framing tells
 * which belong together), or chain_begin() and then chain_append() when it
 * knows where a chain starts; then chain_acc_get() and verdict_judge() at the
 * point where the chain is complete (verdict.bpf.h).
 *
 * Which calls belong to one message is told by the message's own framing,
 * read from the process' memory around the certificate:
 *   TLS 1.2  0b LLLLLL  llllll(list) cccccc(cert) DER ...
 *   TLS 1.3  0b LLLLLL  00(context)  llllll(list) cccccc(cert) DER  eeee(ext) ...
 * The first certificate of a message is preceded by the handshake header; a
 * following one starts where the previous entry ends. Anything else (a
 * certificate the application loads from memory, say) is not part of a chain.
 * A mistake here can only drop certificates from the judged set (fail closed),
 * never add one from another message.
 */
#ifndef PW_CHAIN_BPF_H
#define PW_CHAIN_BPF_H

#include "hash.bpf.h"

#define PW_CHAIN_MAX_AGE_NS	(5ULL * 1000000000ULL)	/* certificates -> verification */
#define PW_MAX_CERT_LIST	(1U << 20)

enum chain_entry {
	CHAIN_ORPHAN = 0,
	CHAIN_FIRST = 1,
	CHAIN_NEXT = 2,
};

static __always_inline __u32 be24(const __u8 *p)
{
	return (__u32)p[0] << 16 | (__u32)p[1] << 8 | p[2];
}

/* Is the certificate at `der` the first of a Certificate message, the next one, or neither? */
static __always_inline int chain_entry_kind(const struct pw_chain_acc *acc, __u64 der, __u32 len,
					    __u64 now, __u32 *form)
{
	__u8 pre[11] = {};
	__u32 list;

	if (bpf_probe_read_user(pre, sizeof(pre), (const void *)(der - sizeof(pre))))
		return CHAIN_ORPHAN;
	if (be24(&pre[8]) != len)
		return CHAIN_ORPHAN;	/* not preceded by its own 24-bit length */
	list = be24(&pre[5]);
	if (list >= len + 3 && list < PW_MAX_CERT_LIST) {
		if (pre[1] == 0x0b && be24(&pre[2]) == list + 3) {
			*form = 12;
			return CHAIN_FIRST;
		}
		if (pre[0] == 0x0b && be24(&pre[1]) == list + 4 && pre[4] == 0) {
			*form = 13;
			return CHAIN_FIRST;
		}
	}
	if (!acc->ncerts || now - acc->ts > PW_CHAIN_MAX_AGE_NS)
		return CHAIN_ORPHAN;
	*form = acc->form;
	if (acc->form == 12 && der == acc->next_der + 3)
		return CHAIN_NEXT;
	if (acc->form == 13) {
		__u8 ext[2];

		if (bpf_probe_read_user(ext, sizeof(ext), (const void *)acc->next_der))
			return CHAIN_ORPHAN;
		if (der == acc->next_der + 2 + ((__u32)ext[0] << 8 | ext[1]) + 3)
			return CHAIN_NEXT;
	}
	return CHAIN_ORPHAN;
}

static __always_inline struct pw_chain_acc *chain_acc_get(void)
{
	struct pw_chain_acc *acc;

	acc = bpf_task_storage_get(&chains, bpf_get_current_task_btf(), 0,
				   BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!acc)
		count(PW_CNT_ACC_FULL);
	return acc;
}

static __always_inline void chain_reset(struct pw_chain_acc *acc)
{
	acc->ncerts = 0;
	acc->flags = 0;
	acc->ssl = 0;
	acc->next_der = 0;
	acc->validated = 0;
	acc->validation = PW_VALIDATION_UNKNOWN;
	acc->verify_error = 0;
	acc->nanchors = 0;
	acc->vctx = 0;
	acc->read_fd = -1;
	acc->vby_key = 0;
	acc->vstage = 0;
	acc->vout = 0;
	acc->vck = 0;
}

/*
 * Park the thread's chain for the library's connection object `obj` (its
 * verification comes later, maybe on another thread), charged to the current
 * uid: 0, the accumulator reset; or -1, no room (the uid's quota or the table
 * full; counted: the caller judges it now, leaf only).
 */
static __always_inline int chain_park(struct pw_chain_acc *acc, __u64 obj)
{
	struct pw_ssl_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .ssl = obj };
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	__u64 zero = 0, *used = bpf_map_lookup_elem(&parked_uids, &uid);

	if (!used) {
		bpf_map_update_elem(&parked_uids, &uid, &zero, BPF_NOEXIST);
		used = bpf_map_lookup_elem(&parked_uids, &uid);
	}
	if (!used || *used >= park_quota) {
		count(PW_CNT_PARK_QUOTA);
		return -1;
	}
	acc->park_uid = uid;
	if (!bpf_map_update_elem(&parked_chains, &k, acc, BPF_NOEXIST)) {
		__sync_fetch_and_add(used, 1);
	} else if (bpf_map_update_elem(&parked_chains, &k, acc, BPF_EXIST)) {
		/* not one of this object's replaced (already charged): the table is full */
		count(PW_CNT_VCHAIN_UNREAD);
		return -1;
	}
	chain_reset(acc);
	return 0;
}

/* Take a parked chain out of parked_chains, and off its uid's count. */
static __always_inline void chain_parked_drop(const struct pw_ssl_key *k, __u32 uid)
{
	if (!bpf_map_delete_elem(&parked_chains, k))
		uid_count_dec(&parked_uids, uid);
}

/*
 * A parked chain `p` (found at key `k` of `map`: parked_chains, or Go's
 * go_pending) moved into this thread's accumulator, and out of the map; NULL
 * (left parked) without an accumulator.
 */
static __always_inline struct pw_chain_acc *chain_unpark(void *map, const struct pw_ssl_key *k,
							  const struct pw_chain_acc *p)
{
	struct pw_chain_acc *acc = chain_acc_get();

	if (!acc)
		return NULL;
	if (acc->ncerts)
		count(PW_CNT_ABANDONED);	/* another chain in progress on this thread */
	bpf_probe_read_kernel(acc, sizeof(*acc), p);
	if (map == (void *)&parked_chains)
		chain_parked_drop(k, acc->park_uid);
	else
		bpf_map_delete_elem(map, k);
	return acc;
}

/*
 * Append one certificate of the current chain: copy, hash, and count what
 * could not be judged. Libraries that know where a chain starts call
 * chain_begin() first and then this for each certificate.
 */
static __always_inline int chain_append(struct pw_chain_acc *acc, __u64 der, __u32 len, __u64 now)
{
	__u32 idx = acc->ncerts;

	acc->ncerts = idx + 1;
	acc->next_der = der + len;
	acc->ts = now;
	if (idx >= PW_CHAIN_MAX) {
		acc->flags |= PW_CHAIN_TRUNCATED;
		return -1;
	}
	acc->objs[idx & (PW_CHAIN_MAX - 1)] = 0;
	cert_capture((const void *)der, len, &acc->certs[idx & (PW_CHAIN_MAX - 1)]);
	if (acc->certs[idx & (PW_CHAIN_MAX - 1)].flags & PW_CERT_UNJUDGED)
		acc->flags |= PW_CHAIN_CERT_ERROR;
	if (acc->certs[idx & (PW_CHAIN_MAX - 1)].flags & PW_CERT_NOT_SENT)
		acc->flags |= PW_CHAIN_LOST_CERT;
	return idx;
}

/* A new chain starts here (the library says so): forget any unfinished one. */
static __always_inline struct pw_chain_acc *chain_begin(void)
{
	struct pw_chain_acc *acc = chain_acc_get();

	if (!acc)
		return NULL;
	if (acc->ncerts)
		count(PW_CNT_ABANDONED);
	chain_reset(acc);
	acc->form = 0;
	acc->ts = bpf_ktime_get_boot_ns();
	return acc;
}

/*
 * One certificate parsed by the library, from the peer or not: the TLS framing
 * around it tells (see the top of this file). Returns its index in the chain,
 * or -1 when it is not part of one (or past PW_CHAIN_MAX).
 */
static __always_inline int chain_add_cert(__u64 der, __u64 len64)
{
	struct pw_chain_acc *acc = chain_acc_get();
	__u64 now = bpf_ktime_get_boot_ns();
	__u32 len = len64 > PW_MAX_CERT_LIST ? PW_MAX_CERT_LIST : (__u32)len64;
	__u32 form = 0;
	int kind;

	if (!acc)
		return -1;
	kind = chain_entry_kind(acc, der, len, now, &form);
	if (kind == CHAIN_ORPHAN) {
		count(PW_CNT_ORPHAN_CERTS);
		return -1;
	}
	if (kind == CHAIN_FIRST) {
		if (acc->ncerts)
			count(PW_CNT_ABANDONED);
		chain_reset(acc);
		acc->form = form;
	}
	return chain_append(acc, der, len, now);
}

#endif /* PW_CHAIN_BPF_H */
