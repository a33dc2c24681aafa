// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Discovery: make sure every executable and every shared object a process
 * maps is looked at by the daemon before a TLS handshake can use it, so that
 * a TLS library in a new file (a Go or node binary, a private copy of libssl
 * in a container) is probed before its first handshake, without stopping
 * processes that do not need it.
 *
 * Files the daemon has examined are in known_files (by device and inode, with
 * their change time and generation: a file changed since is unknown again).
 * When a process execs an unknown file, or its dynamic linker maps one (seen
 * at ld.so's r_brk hook, _dl_debug_state, which every glibc ld.so calls after
 * loading objects, at start and on dlopen), the kernel only notes it (an entry
 * in `pending`) and tells the daemon on the discovery ring buffer; the
 * process runs on. The daemon examines the file (about a millisecond),
 * attaches what it finds and clears the note.
 *
 * The gate: a TCP receive (tp_btf/tcp_rcv_space_adjust, in the receiving
 * task after data was copied to it, before it returns to user space) is the
 * earliest a peer's certificate can reach the process. A process that gets
 * there with files still pending is stopped (SIGSTOP) until the daemon has
 * examined them, and only if the daemon and its watchdog are alive and few
 * processes are stopped already; each stop is recorded in `stops` before the
 * signal, and the watchdog continues it after the bound whatever the daemon
 * does. With nothing pending anywhere the gate costs one load.
 * See include/discovery.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "maps.bpf.h"
#include "discovery.h"
#include "hold.bpf.h"

#define RT_CONSISTENT	0
#define LINK_MAP_WALK	64	/* new objects examined per r_brk call */
#define NOTE_TRIES	64	/* tries to record a note while its entry is being deleted */
#define TCP_SYN_SENT	2

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

/* records for the daemon: a ring of their own, so that certificate floods and a
 * slow event writer never delay or lose them */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 << 10);
} discovery SEC(".maps");

/* BPF_F_NO_PREALLOC: an entry is changed in place with compare-and-swap, and a
 * deleted element must not come back at once as another key */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct pw_pending);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct pw_pending_done);
} pending_done SEC(".maps");

volatile __u64 pending_procs;		/* entries of pending: 0, and the gate costs one load */
volatile __u64 note_seq;		/* sequence numbers of notes, host-wide */
const volatile __s64 exec_hold_min = 1 << 20; /* executables this big are held at exec */

/* A record for the daemon about the current process (comm included). */
static __always_inline void rec_fill(struct pw_discover_rec *rec, __u32 type, __u32 tgid, __u64 dev,
				     __u64 ino, __u64 start, __u64 now)
{
	__builtin_memset(rec, 0, sizeof(*rec));
	rec->type = type;
	rec->pid = tgid;
	rec->dev = dev;
	rec->ino = ino;
	rec->start = start;
	rec->ts_ns = now;
	bpf_get_current_comm(rec->comm, sizeof(rec->comm));
}

/*
 * Stop the current process for the daemon (bpf/hold.bpf.h), told by a record
 * reserved first: a stop the daemon would not hear of lasts to the bound.
 */
static __always_inline int gate_stop(__u32 tgid, __u64 start, __u64 now, struct pw_file_key *f)
{
	struct pw_stop s = { .start = start, .stopped_ns = now, .dev = f->dev, .ino = f->ino };
	struct pw_discover_rec *rec = bpf_ringbuf_reserve(&discovery, sizeof(*rec), 0);
	struct pw_stop *old;
	int r;

	if (rec) {
		r = hold_stop(tgid, &s, HOLD_PROCESS);
		if (r == HOLD_SENT) {
			rec_fill(rec, PW_REC_STOP, tgid, f->dev, f->ino, start, now);
			count(PW_CNT_DISCOVERY_STOPS);
			bpf_ringbuf_submit(rec, BPF_RB_FORCE_WAKEUP);
			return 0;
		}
		bpf_ringbuf_discard(rec, 0);
		if (r == HOLD_FAILED)
			return PW_UNGATED_FULL;
	}
	/* not stopped by us (no room for the record, or a stop of it is recorded):
	 * if another thread of it stopped it a moment ago, the group stop holds us too */
	old = bpf_map_lookup_elem(&stops, &tgid);
	return old && old->start == start ? 0 : PW_UNGATED_FULL;
}

/*
 * Hold the current process for the daemon (a note of it is pending: f, or, at
 * the gates, the first file it noted), if it may be; else let it run on, and
 * say once why.
 */
static __always_inline void hold(struct task_struct *t, __u32 tgid, struct pw_pending *v,
				 struct pw_file_key *f)
{
	struct pw_discover_rec *rec;
	__u64 now, start;
	int reason;

	if (tgid == daemon_tgid || tgid == watchdog_tgid)
		return;
	now = bpf_ktime_get_ns();
	start = proc_start(t);
	reason = hold_refused(t, now);
	if (!reason)
		reason = gate_stop(tgid, start, now, f);
	if (!reason)
		return;
	/* it runs on unexamined for now: say so, once per process and episode */
	if (__sync_lock_test_and_set(&v->reported, 1))
		return;
	count(PW_CNT_DISCOVERY_UNGATED);
	rec = bpf_ringbuf_reserve(&discovery, sizeof(*rec), 0);
	if (!rec)
		return;
	rec_fill(rec, PW_REC_UNGATED, tgid, f->dev, f->ino, start, now);
	rec->reason = reason;
	bpf_ringbuf_submit(rec, BPF_RB_FORCE_WAKEUP);
}

/*
 * Has the daemon handled every note of this process? Then remove the entry
 * (unless a note raced in: its compare-and-swap wins) and say so.
 */
static __always_inline int pending_clear(__u32 tgid)
{
	struct pw_pending_done *done;
	struct pw_pending *v;
	__u64 old;

	v = bpf_map_lookup_elem(&pending, &tgid);
	if (!v)
		return 1;
	old = v->state;
	if (old & PW_PENDING_DEAD)
		return 1;
	done = bpf_map_lookup_elem(&pending_done, &tgid);
	if (!done || done->start != v->start || done->seq < old)
		return 0;
	if (__sync_val_compare_and_swap(&v->state, old, old | PW_PENDING_DEAD) != old)
		return 0;
	if (!bpf_map_delete_elem(&pending, &tgid))
		__sync_fetch_and_add(&pending_procs, -1);
	return 1;
}

/*
 * Note that the current process mapped an unknown file (0, 0: some, examine
 * every mapping) and tell the daemon. The entry's state is only ever raised
 * with compare-and-swap, so that a note racing with the entry's removal is
 * never lost: it either lands before the removal (which then fails) or makes
 * a new entry.
 */
static __always_inline int pending_note(__u32 type, __u64 dev, __u64 ino, int hold_it)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 start = proc_start(t), seq, now = bpf_ktime_get_ns();
	struct pw_discover_rec *rec;
	struct pw_pending *v;
	int i, noted = 0;

	rec = bpf_ringbuf_reserve(&discovery, sizeof(*rec), 0);
	if (!rec) {
		/* the daemon would never hear of it: no note, the process runs unexamined */
		count(PW_CNT_LOST_DISCOVERY);
		return -1;
	}
	seq = __sync_fetch_and_add(&note_seq, 1) + 1;
	for (i = 0; i < NOTE_TRIES && !noted; i++) {
		v = bpf_map_lookup_elem(&pending, &tgid);
		if (v) {
			__u64 old = v->state;

			if (v->start != start) {
				/* a process gone without its exit being seen: not ours */
				if (!bpf_map_delete_elem(&pending, &tgid))
					__sync_fetch_and_add(&pending_procs, -1);
				continue;
			}
			if (old & PW_PENDING_DEAD)
				continue;	/* being removed: make a new one */
			if (old >= seq ||
			    __sync_val_compare_and_swap(&v->state, old, seq) == old)
				noted = 1;
			continue;
		}
		{
			struct pw_pending n = {
				.start = start, .state = seq, .noted_ns = now, .dev = dev, .ino = ino,
			};

			if (!bpf_map_update_elem(&pending, &tgid, &n, BPF_NOEXIST)) {
				__sync_fetch_and_add(&pending_procs, 1);
				noted = 1;
			}
		}
	}
	if (!noted) {
		bpf_ringbuf_discard(rec, 0);
		count(PW_CNT_LOST_DISCOVERY);
		return -1;
	}
	rec_fill(rec, type, tgid, dev, ino, start, now);
	rec->seq = seq;
	count(PW_CNT_DISCOVERY_NOTED);
	bpf_ringbuf_submit(rec, BPF_RB_FORCE_WAKEUP);
	if (hold_it) {
		v = bpf_map_lookup_elem(&pending, &tgid);
		/* (the daemon may have been quicker) */
		if (v && !pending_clear(tgid)) {
			struct pw_file_key f = { .dev = dev, .ino = ino };

			hold(t, tgid, v, &f);
		}
	}
	return 0;
}

/* The daemon, after handling a process's notes: 1 if nothing is pending any more. */
SEC("syscall")
int pw_pending_clear(struct pw_pending_clear_ctx *ctx)
{
	return pending_clear(ctx->tgid);
}

/*
 * Is this inode the file the daemon examined under its (device, inode)? Not if
 * it changed since (a new change time: rewritten, or a new file that reuses
 * the inode number; a new generation where the daemon could read it).
 */
static __always_inline int inode_known(struct inode *inode, struct pw_file_key *k)
{
	struct pw_file_stamp *s;

	k->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	k->ino = BPF_CORE_READ(inode, i_ino);
	s = bpf_map_lookup_elem(&known_files, k);
	if (!s)
		return 0;
	if ((s->flags & PW_STAMP_GEN) && s->gen != BPF_CORE_READ(inode, i_generation))
		return 0;
	if (bpf_core_field_exists(inode->i_ctime_sec))
		return s->ctime_sec == BPF_CORE_READ(inode, i_ctime_sec) &&
		       s->ctime_nsec == (BPF_CORE_READ(inode, i_ctime_nsec) & PW_CTIME_NSEC_MASK);
	return 1;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(pw_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct pw_file_key k = {};
	struct inode *inode;

	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!discover_on)
		return 0;
	/* a new image: its link map is a new one */
	bpf_map_delete_elem(&ldso_seen, &tgid);
	inode = BPF_CORE_READ(bprm, file, f_inode);
	if (inode_known(inode, &k))
		return 0;
	/* held here only if it is big enough to hold a TLS implementation of its own
	 * (a Go program, node, a static OpenSSL); a small one can only load one, and
	 * is held where its dynamic linker maps it */
	pending_note(PW_REC_EXEC, k.dev, k.ino, BPF_CORE_READ(inode, i_size) >= exec_hold_min);
	return 0;
}

/* the last thread of a process is gone: forget it */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(pw_exit, struct task_struct *p, bool group_dead)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);

	if (!group_dead)
		return 0;
	bpf_map_delete_elem(&ldso_seen, &tgid);
	if (!pending_procs && !stopped_procs)
		return 0;
	if (!bpf_map_delete_elem(&pending, &tgid))
		__sync_fetch_and_add(&pending_procs, -1);
	bpf_map_delete_elem(&pending_done, &tgid);
	if (!bpf_map_delete_elem(&stops, &tgid))
		__sync_fetch_and_add(&stopped_procs, -1);
	return 0;
}

static __noinline int gate(struct sock *sk)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct pw_file_key f;
	struct pw_pending *v;

	/* only in the task that owns the socket, in the system call (not a softirq
	 * reading for a kernel consumer, where `current` is whoever was interrupted) */
	if (!sk || !BPF_CORE_READ(sk, sk_lock.owned))
		return 0;
	v = bpf_map_lookup_elem(&pending, &tgid);
	if (!v || pending_clear(tgid))
		return 0;
	f.dev = v->dev;
	f.ino = v->ino;
	hold(bpf_get_current_task_btf(), tgid, v, &f);
	return 0;
}

/* The gate at a receive: tcp_rcv_space_adjust() runs in tcp_recvmsg() (also for
 * MSG_PEEK), splice and zero-copy receive, after data reached the process. */
SEC("tp_btf/tcp_rcv_space_adjust")
int BPF_PROG(pw_gate, struct sock *sk)
{
	if (!pending_procs)
		return 0;
	return gate(sk);
}

/* The gate at connect(): most clients set up their TLS connection (the SNI, the
 * socket, which some probes read as the library is told) after it. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(pw_gate_connect, const struct sock *sk, const int oldstate, const int newstate)
{
	if (!pending_procs || newstate != TCP_SYN_SENT)
		return 0;
	return gate((struct sock *)sk);
}

struct vma_find {
	struct pw_file_key k;
	int found;
	int known;	/* examined, and unchanged since */
};

static long vma_file_cb(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct vma_find *vf = data;
	struct file *f = vma->vm_file;

	if (!f)
		return 0;
	vf->known = inode_known(BPF_CORE_READ(f, f_inode), &vf->k);
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
	struct pw_file_key exe;	/* the program itself: exec's business, not the walk's */
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
	if ((vf.k.dev == w->exe.dev && vf.k.ino == w->exe.ino) || vf.known)
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
	{
		struct inode *exe = BPF_CORE_READ(bpf_get_current_task_btf(), mm, exe_file, f_inode);

		w.exe.dev = BPF_CORE_READ(exe, i_sb, s_dev);
		w.exe.ino = BPF_CORE_READ(exe, i_ino);
	}
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
	/* a new shared object is held before any of its code runs: its setup calls
	 * (SNI, socket) are where some probes learn what a verdict needs */
	if (w.stop)
		pending_note(PW_REC_LIB, w.k.dev, w.k.ino, 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Every file mapping of every process, as (device, inode) records, for the
 * daemon's look for libraries no process maps any more (discover.c:
 * discover_sweep_unmapped). Read through an iterator so that no process's
 * mappings are out of sight (a /proc/PID/maps the daemon may not read).
 * Consecutive mappings of one file are written once.
 */
SEC("iter/task_vma")
int pw_vma_files(struct bpf_iter__task_vma *ctx)
{
	struct vm_area_struct *vma = ctx->vma;
	struct seq_file *seq = ctx->meta->seq;
	static struct pw_file_key last;
	struct pw_file_key k = {};
	struct file *file;

	if (ctx->meta->seq_num == 0)
		last.dev = last.ino = 0;	/* a new walk: nothing written yet */
	if (!vma)
		return 0;
	file = BPF_CORE_READ(vma, vm_file);
	if (!file)
		return 0;
	k.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	k.ino = BPF_CORE_READ(file, f_inode, i_ino);
	if (k.dev == last.dev && k.ino == last.ino)
		return 0;
	last = k;
	bpf_seq_write(seq, &k, sizeof(k));
	return 0;
}
