// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * action: reset. The verdict marks the connection (reset_conns); from then on
 * this cgroup_skb program, attached to the root of the cgroup v2 hierarchy,
 * drops every packet it sends, until the daemon has destroyed the socket
 * (netlink SOCK_DESTROY): the peer never receives another byte, the process
 * sees ECONNABORTED on that connection and lives on.
 *
 * For libraries with no fd binding (curl's BIO), the verdict takes the socket
 * the thread last read from: the certificates just arrived on it. The
 * sys_enter program that tracks it is attached only while a policy resets.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "maps.bpf.h"

#define AF_INET		2
#define AF_INET6	10

#define NR_read		0
#define NR_readv	19
#define NR_recvfrom	45
#define NR_recvmsg	47

SEC("cgroup_skb/egress")
int pw_reset_egress(struct __sk_buff *skb)
{
	struct pw_conn_key k = {};
	struct bpf_sock *sk;

	if (!reset_on)
		return 1;
	sk = skb->sk;
	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_TCP)
		return 1;
	k.family = sk->family;
	k.sport = sk->src_port;
	k.dport = bpf_ntohs(sk->dst_port);
	if (sk->family == AF_INET) {
		__u32 s = sk->src_ip4, d = sk->dst_ip4;

		k.saddr[10] = k.saddr[11] = 0xff;
		__builtin_memcpy(&k.saddr[12], &s, 4);
		k.daddr[10] = k.daddr[11] = 0xff;
		__builtin_memcpy(&k.daddr[12], &d, 4);
	} else if (sk->family == AF_INET6) {
		__u32 s0 = sk->src_ip6[0], s1 = sk->src_ip6[1], s2 = sk->src_ip6[2], s3 = sk->src_ip6[3];
		__u32 d0 = sk->dst_ip6[0], d1 = sk->dst_ip6[1], d2 = sk->dst_ip6[2], d3 = sk->dst_ip6[3];

		__builtin_memcpy(&k.saddr[0], &s0, 4);
		__builtin_memcpy(&k.saddr[4], &s1, 4);
		__builtin_memcpy(&k.saddr[8], &s2, 4);
		__builtin_memcpy(&k.saddr[12], &s3, 4);
		__builtin_memcpy(&k.daddr[0], &d0, 4);
		__builtin_memcpy(&k.daddr[4], &d1, 4);
		__builtin_memcpy(&k.daddr[8], &d2, 4);
		__builtin_memcpy(&k.daddr[12], &d3, 4);
	} else {
		return 1;
	}
	if (!bpf_map_lookup_elem(&reset_conns, &k))
		return 1;
	count(PW_CNT_RESET_DROPPED);
	return 0;
}

/* the fd each thread last read from (read, readv, recvfrom, recvmsg) */
SEC("tp_btf/sys_enter")
int BPF_PROG(pw_sys_enter, struct pt_regs *regs, long id)
{
	struct pw_thread_conn *tc;

	if (id != NR_read && id != NR_recvfrom && id != NR_recvmsg && id != NR_readv)
		return 0;
	tc = bpf_task_storage_get(&thread_conn, bpf_get_current_task_btf(), 0,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (tc)
		tc->last_rfd = (__s32)BPF_CORE_READ(regs, di);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
