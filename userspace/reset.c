// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "daemon.h"
#include "log.h"
#include "pinwarden.skel.h"
#include "procinfo.h"
#include "reset.h"

#define RESET_MARK_TTL_NS (5ULL * 1000000000ULL)

bool policy_uses_reset(const struct pw_policy *p)
{
	size_t i;

	for (i = 0; i < p->nrules; i++)
		if (p->rules[i].mode == PW_MODE_ENFORCE && p->rules[i].action == PW_ACTION_RESET)
			return true;
	return false;
}

bool policy_has_server_rules(const struct pw_policy *p)
{
	size_t i;

	for (i = 0; i < p->nrules; i++)
		if (p->rules[i].side == PW_SIDE_SERVER)
			return true;
	return false;
}

void read_track_enable(struct daemon *d, bool on)
{
	if (!on) {
		d->skel->bss->read_track_on = 0;
		bpf_link__destroy(d->read_track_link);
		d->read_track_link = NULL;
		return;
	}
	if (d->read_track_link)
		return;
	d->read_track_link = bpf_program__attach(d->skel->progs.pw_sys_enter);
	if (!d->read_track_link) {
		log_warn("cannot track reads: the connections of libraries without an fd binding "
			 "are found by their thread's last connect() only (server sides: not at all)");
		return;
	}
	d->skel->bss->read_track_on = 1;
}

int reset_enable(struct daemon *d, bool on)
{
	const char *mnt;
	int fd;

	if (!on) {
		d->skel->bss->reset_on = 0;
		bpf_link__destroy(d->reset_egress_link);
		d->reset_egress_link = NULL;
		return 0;
	}
	if (d->reset_egress_link)
		return 0;
	mnt = cgroup2_mount();
	if (!mnt) {
		log_warnx("action reset needs the cgroup v2 hierarchy mounted: none found");
		return -1;
	}
	fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		log_warn("%s", mnt);
		return -1;
	}
	/* the root of the hierarchy: every process's egress passes it */
	d->reset_egress_link = bpf_program__attach_cgroup(d->skel->progs.pw_reset_egress, fd);
	close(fd);
	if (!d->reset_egress_link) {
		log_warn("cannot attach the reset egress filter to %s", mnt);
		return -1;
	}
	d->skel->bss->reset_on = 1;
	log_info("action reset: egress filter on %s", mnt);
	return 0;
}

int sock_destroy_tcp(const struct pw_conn_key *k)
{
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = {
			.nlmsg_len = sizeof(msg),
			.nlmsg_type = SOCK_DESTROY,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
			.nlmsg_seq = 1,
		},
		.req = {
			.sdiag_family = k->family,
			.sdiag_protocol = IPPROTO_TCP,
			.idiag_states = ~0u,
		},
	};
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char buf[512];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	ssize_t n;
	int fd, rc = -EIO;

	msg.req.id.idiag_sport = htons(k->sport);
	msg.req.id.idiag_dport = htons(k->dport);
	msg.req.id.idiag_cookie[0] = msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (k->family == AF_INET) {
		if (memcmp(k->saddr, v4mapped, 12) || memcmp(k->daddr, v4mapped, 12))
			return -EINVAL;
		memcpy(&msg.req.id.idiag_src[0], k->saddr + 12, 4);
		memcpy(&msg.req.id.idiag_dst[0], k->daddr + 12, 4);
	} else {
		memcpy(msg.req.id.idiag_src, k->saddr, 16);
		memcpy(msg.req.id.idiag_dst, k->daddr, 16);
	}
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		goto out;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	if (n >= (ssize_t)sizeof(*h) && h->nlmsg_type == NLMSG_ERROR &&
	    n >= (ssize_t)(sizeof(*h) + sizeof(struct nlmsgerr)))
		rc = ((struct nlmsgerr *)NLMSG_DATA(h))->error;	/* 0 or -errno */
	else if (n < 0)
		rc = -errno;
out:
	close(fd);
	return rc;
}

void reset_destroy(struct daemon *d, const struct pw_chain_rec *r)
{
	struct pw_conn_key k = {
		.family = r->peer_family,
		.sport = r->local_port,
		.dport = r->peer_port,
	};
	int rc;

	memcpy(k.saddr, r->local_addr, 16);
	memcpy(k.daddr, r->peer_addr, 16);
	rc = sock_destroy_tcp(&k);
	if (rc && rc != -ENOENT) {
		d->reset_errors++;
		log_warnx("reset of pid %u's connection to port %u: SOCK_DESTROY failed: %s; its "
			  "egress stays dropped until it closes", r->pid, r->peer_port, strerror(-rc));
		return;
	}
	d->resets++;
	/* the socket is gone: a new connection may reuse the addresses */
	bpf_map_delete_elem(bpf_map__fd(d->skel->maps.reset_conns), &k);
}

void reset_sweep(struct daemon *d)
{
	int fd = bpf_map__fd(d->skel->maps.reset_conns);
	struct pw_conn_key cur, old[64];
	struct timespec ts;
	uint64_t now, when;
	size_t n = 0, i;
	int have = 0;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	while (bpf_map_get_next_key(fd, have ? &cur : NULL, &cur) == 0) {
		have = 1;
		if (!bpf_map_lookup_elem(fd, &cur, &when) && now - when > RESET_MARK_TTL_NS && n < 64)
			old[n++] = cur;
	}
	for (i = 0; i < n; i++) {
		/* try once more, then forget it */
		sock_destroy_tcp(&old[i]);
		bpf_map_delete_elem(fd, &old[i]);
	}
}
