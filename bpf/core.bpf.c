// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Library-independent kernel side: defines the shared maps and the verdict
 * (verdict.bpf.h's pw_verdict, one global function every probe calls), and remembers
 * each thread's last TCP connect() so that a verdict can name its peer when
 * the TLS library hands us no file descriptor (custom BIOs, as curl's).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define PW_DEFINE_MAPS
#define PW_DEFINE_VERDICT
#include "verdict.bpf.h"

#define TCP_SYN_SENT	2
#define AF_INET		2
#define AF_INET6	10

/* connect() moves the socket to SYN_SENT in the caller's context */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(pw_tcp_connect, const struct sock *sk, const int oldstate, const int newstate)
{
	struct pw_thread_conn *tc;
	__u16 family;

	if (newstate != TCP_SYN_SENT)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	tc = bpf_task_storage_get(&thread_conn, bpf_get_current_task_btf(), 0,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!tc)
		return 0;
	if (!tc->family)
		tc->last_rfd = -1;	/* a new entry */
	tc->family = family;
	tc->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	/* connect() picks the local port only after this state change: read it again
	 * from the socket when a verdict needs it (verdict.bpf.h, peer_find) */
	tc->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	tc->sk = (__u64)sk;
	tc->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	if (family == AF_INET) {
		__u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__u32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);

		ipv4_mapped(tc->daddr, d);
		ipv4_mapped(tc->saddr, s);
	} else {
		BPF_CORE_READ_INTO(&tc->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&tc->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
	}
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
