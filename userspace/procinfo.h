/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* What an event says about a process: its cgroup path and container id. */
#ifndef PW_PROCINFO_H
#define PW_PROCINFO_H

#include <stddef.h>
#include <stdint.h>

/* The cgroup v2 path ("/system.slice/x.service") of a cgroup id; NULL if gone. */
const char *cgroup_path(uint64_t id);

/* The cgroup v2 mount point (e.g. /sys/fs/cgroup), or NULL if there is none. */
const char *cgroup2_mount(void);

/*
 * The container id named by a cgroup path, as docker, containerd, cri-o,
 * podman and Kubernetes (kubepods) name their cgroups: the 64-hex-digit id in
 * the last component that holds one. Returns 0 and fills out[65], or -1.
 */
int container_id_from_cgroup(const char *path, char out[65]);

/* The cgroup id (its inode) of a cgroup v2 path; 0 if it does not exist. */
uint64_t cgroup_id_of(const char *path);

#endif /* PW_PROCINFO_H */
