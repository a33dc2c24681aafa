// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Discovery: make sure every executable and every shared object a process
 * maps has been looked at by the daemon before the process runs code from
 * it, so that a TLS library in a new file (a Go or node binary, a private
 * copy of libssl in a container) is probed before its first handshake.
 *
 * Files the daemon has examined are in known_files (by device and inode).
 * The first time a process execs an unknown file, or its dynamic linker maps
 * one (seen at ld.so's r_brk hook, _dl_debug_state, which every glibc ld.so
 * calls after loading objects, at start and on dlopen), the process is
 * stopped with SIGSTOP and the daemon told; the daemon examines the file,
 * attaches what it finds and continues the process. Each file costs this
 * once per daemon lifetime.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "maps.bpf.h"

#define SIGSTOP		19
#define RT_CONSISTENT	0
#define LINK_MAP_WALK	64	/* new objects examined per r_brk call */

/* the public, stable part of glibc's struct link_map and struct r_debug */
struct user_link_map {
	__u64 l_addr;
	__u64 l_name;
	__u64 l_ld;
	__u64 l_next;
	__u64 l_prev;
};

struct user_r_debug {
	__s32 r_version;
	__s32 pad;
	__u64 r_map;
	__u64 r_brk;
	__s32 r_state;
	__s32 pad2;
	__u64 r_ldbase;
};

/* The daemon must see this process before it goes on: stop it and say why. */
static __always_inline int discover_stop(__u32 type, __u64 dev, __u64 ino)
{
	struct pw_discover_rec *rec;

	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		/* nobody would continue it: let it run unexamined, and count */
		count(PW_CNT_LOST_DISCOVERY);
		return -1;
	}
	if (bpf_send_signal(SIGSTOP)) {
		bpf_ringbuf_discard(rec, 0);
		count(PW_CNT_LOST_DISCOVERY);
		return -1;
	}
	rec->type = type;
	rec->pid = bpf_get_current_pid_tgid() >> 32;
	rec->dev = dev;
	rec->ino = ino;
	count(PW_CNT_DISCOVERY_STOPS);
	bpf_ringbuf_submit(rec, BPF_RB_FORCE_WAKEUP);
	return 0;
}

static __always_inline int file_known(struct inode *inode, struct pw_file_key *k)
{
	k->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	k->ino = BPF_CORE_READ(inode, i_ino);
	return bpf_map_lookup_elem(&known_files, k) != NULL;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(pw_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct pw_file_key k = {};

	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!discover_on)
		return 0;
	/* a new image: its link map is a new one */
	bpf_map_delete_elem(&ldso_seen, &tgid);
	if (file_known(BPF_CORE_READ(bprm, file, f_inode), &k))
		return 0;
	discover_stop(PW_REC_EXEC, k.dev, k.ino);
	return 0;
}

/* the last thread of a process is gone: forget its link map position */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(pw_exit, struct task_struct *p, bool group_dead)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);

	if (group_dead)
		bpf_map_delete_elem(&ldso_seen, &tgid);
	return 0;
}

struct vma_find {
	struct pw_file_key k;
	int found;
	int pad;
};

static long vma_file_cb(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct vma_find *vf = data;
	struct file *f = vma->vm_file;

	if (!f)
		return 0;
	vf->k.dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
	vf->k.ino = BPF_CORE_READ(f, f_inode, i_ino);
	vf->found = 1;
	return 0;
}

struct walk {
	__u64 next;		/* next link_map to look at, 0 at the end */
	__u64 last;		/* last one looked at, and its l_name */
	__u64 last_name;
	__u32 stop;		/* an unknown object was found */
	__u32 pad;
	struct pw_file_key k;
};

static long link_map_cb(__u32 i, void *data)
{
	struct walk *w = data;
	struct user_link_map lm;
	struct vma_find vf = {};

	if (!w->next)
		return 1;
	if (bpf_probe_read_user(&lm, sizeof(lm), (const void *)w->next))
		return 1;
	w->last = w->next;
	w->last_name = lm.l_name;
	w->next = lm.l_next;
	/* the object's dynamic section lies in its mapping: whose file is it? */
	if (!lm.l_ld || bpf_find_vma(bpf_get_current_task_btf(), lm.l_ld, vma_file_cb, &vf, 0) ||
	    !vf.found)
		return 0;
	if (bpf_map_lookup_elem(&known_files, &vf.k))
		return 0;
	w->k = vf.k;
	w->stop = 1;
	return 1;
}

/*
 * ld.so's _dl_debug_state(): the link map is consistent again after objects
 * were added (or removed). The cookie is the distance from the probed address
 * to ld.so's _r_debug, so that the walk needs no symbol lookup here.
 */
SEC("uprobe")
int BPF_KPROBE(pw_ldso_brk)
{
	__u64 ip = PT_REGS_IP(ctx), rd_addr;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct pw_ldso_pos *seen, pos;
	struct user_r_debug rd;
	struct walk w = {};

	if (!discover_on)
		return 0;
	rd_addr = ip + (__s64)bpf_get_attach_cookie(ctx);
	if (bpf_probe_read_user(&rd, sizeof(rd), (const void *)rd_addr))
		return 0;
	if (rd.r_brk != ip && rd.r_brk == ip - 1) {
		/* this kernel reports the address after the breakpoint: redo with it */
		rd_addr -= 1;
		if (bpf_probe_read_user(&rd, sizeof(rd), (const void *)rd_addr))
			return 0;
	}
	if (rd.r_state != RT_CONSISTENT || !rd.r_map)
		return 0;
	/* go on after the last object this process showed us, if it is still there */
	w.next = rd.r_map;
	seen = bpf_map_lookup_elem(&ldso_seen, &tgid);
	if (seen && seen->lm) {
		struct user_link_map lm;

		if (!bpf_probe_read_user(&lm, sizeof(lm), (const void *)seen->lm) &&
		    lm.l_name == seen->name)
			w.next = lm.l_next;
	}
	if (!w.next)
		return 0;
	bpf_loop(LINK_MAP_WALK, link_map_cb, &w, 0);
	if (!w.stop && w.next) {
		/* more new objects than one walk looks at: the daemon rescans them all */
		w.stop = 1;
		w.k.dev = w.k.ino = 0;
	}
	if (w.last) {
		pos.lm = w.last;
		pos.name = w.last_name;
		bpf_map_update_elem(&ldso_seen, &tgid, &pos, BPF_ANY);
	}
	if (w.stop)
		discover_stop(PW_REC_LIB, w.k.dev, w.k.ino);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
