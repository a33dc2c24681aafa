// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * action: reset. The verdict marks the connection (reset_conns, keyed by the
 * socket's network namespace and 4-tuple) and holds its process; from then on
 * this cgroup_skb program, attached to the root of the cgroup v2 hierarchy,
 * drops every packet the connection sends, until the daemon has destroyed the
 * socket (netlink SOCK_DESTROY, in the socket's network namespace) and
 * continued the process: the peer never receives another byte but the RST of
 * the abort, the process sees ECONNABORTED on that connection and lives on.
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
#define TCP_FLAG_RST	0x04
#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86DD

#define NR_read		0
#define NR_readv	19
#define NR_recvfrom	45
#define NR_recvmsg	47

/*
 * A TCP segment that carries nothing but an RST: let out, so that the peer
 * learns the connection is gone (the abort's RST, or a close with unread
 * data). skb->data starts at the network header, IPv4 also for a dual-stack
 * socket's v4-mapped connection.
 */
static __always_inline int bare_rst(struct __sk_buff *skb)
{
	__u32 l3, l4, total;
	__u8 b[2], flags, doff;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u16 tot_len;

		if (bpf_skb_load_bytes(skb, 0, b, 1) || bpf_skb_load_bytes(skb, 2, &tot_len, 2))
			return 0;
		l3 = (b[0] & 0x0f) * 4;
		total = bpf_ntohs(tot_len);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		__u16 plen;
		__u8 nexthdr;

		/* a TCP socket's own packets carry no extension headers */
		if (bpf_skb_load_bytes(skb, 4, &plen, 2) || bpf_skb_load_bytes(skb, 6, &nexthdr, 1) ||
		    nexthdr != IPPROTO_TCP)
			return 0;
		l3 = 40;
		total = 40 + bpf_ntohs(plen);
	} else {
		return 0;
	}
	if (bpf_skb_load_bytes(skb, l3 + 12, b, 2))
		return 0;
	doff = b[0] >> 4;
	flags = b[1];
	l4 = doff * 4;
	return (flags & TCP_FLAG_RST) && l3 + l4 == total;
}

SEC("cgroup_skb/egress")
int pw_reset_egress(struct __sk_buff *skb)
{
	struct pw_conn_key k = {};
	struct bpf_sock *sk;
	struct tcp_sock *tp;

	if (!reset_on)
		return 1;
	sk = skb->sk;
	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_TCP)
		return 1;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 1;
	k.netns = BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.__sk_common.skc_net.net, ns.inum);
	k.family = sk->family;
	k.sport = sk->src_port;
	k.dport = bpf_ntohs(sk->dst_port);
	if (sk->family == AF_INET) {
		ipv4_mapped(k.saddr, sk->src_ip4);
		ipv4_mapped(k.daddr, sk->dst_ip4);
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
	if (bare_rst(skb)) {
		count(PW_CNT_RESET_RST_PASSED);
		return 1;
	}
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
