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
 * at the mmap(2) that places it, pw_mmap: at start and on dlopen, in any mount
 * namespace, with no probe in the linker), the kernel notes it (an entry in
 * `pending`) and tells the daemon on the discovery ring buffer. A shared
 * object's process is held at once; an executable's only if it is big. The
 * daemon examines the file (about a millisecond), attaches what it finds and
 * clears the note.
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
#include <bpf/bpf_endian.h>

#include "maps.bpf.h"
#include "discovery.h"
#include "hold.bpf.h"

#define NOTE_TRIES	64	/* tries to record a note while its entry is being deleted */
#define TCP_SYN_SENT	2

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
	rec->fd = -1;
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
static __always_inline int pending_note(__u32 type, __u64 dev, __u64 ino, __s32 fd, int hold_it)
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
	rec->fd = fd;
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

	/* a kernel pointer the verifier knows the type of: plain loads, no helper
	 * call per field (these run on every exec and library load) */
	k->dev = inode->i_sb->s_dev;
	k->ino = inode->i_ino;
	s = bpf_map_lookup_elem(&known_files, k);
	if (!s)
		return 0;
	if ((s->flags & PW_STAMP_GEN) && s->gen != inode->i_generation)
		return 0;
	if (bpf_core_field_exists(inode->i_ctime_sec))
		return s->ctime_sec == inode->i_ctime_sec &&
		       s->ctime_nsec == (inode->i_ctime_nsec & PW_CTIME_NSEC_MASK);
	return 1;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(pw_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct pw_file_key k = {};
	struct inode *inode;

	if (!discover_on)
		return 0;
	inode = bprm->file->f_inode;
	if (inode_known(inode, &k))
		return 0;
	/* held here only if it is big enough to hold a TLS implementation of its own
	 * (a Go program, node, a static OpenSSL); a small one can only load one, and
	 * is held where it maps one's code (pw_mmap) */
	pending_note(PW_REC_EXEC, k.dev, k.ino, -1, inode->i_size >= exec_hold_min);
	return 0;
}

/* the last thread of a process is gone: forget it */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(pw_exit, struct task_struct *p, bool group_dead)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);

	if (!group_dead)
		return 0;
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

/* what an mmap asks for (uapi/asm-generic/mman-common.h, linux/mman.h) */
#define PW_PROT_READ		0x1
#define PW_PROT_EXEC		0x4
#define PW_MAP_TYPE		0x0f
#define PW_MAP_PRIVATE		0x02
#define PW_MAP_ANONYMOUS	0x20
#define PW_MAP_DENYWRITE	0x0800	/* ignored by the kernel; glibc's loader sets it */
/* musl's loader maps an object first whole, with its first segment's protection:
 * read-only for one with separate code segments. Smaller read-only mappings are
 * data, never a TLS implementation's code. */
#define PW_LOADER_SPAN_MIN	(64 << 10)
/* the system call's number and arguments, as saved at its entry */
#if defined(__TARGET_ARCH_x86)
#define PW_NR_MMAP		9
#define PW_SYSCALL_NR(regs)	((regs)->orig_ax)
#define PW_SYSCALL_ARG2(regs)	((regs)->si)
#define PW_SYSCALL_ARG3(regs)	((regs)->dx)
#define PW_SYSCALL_ARG4(regs)	((regs)->r10)
#define PW_SYSCALL_ARG5(regs)	((regs)->r8)
#define PW_SYSCALL_ARG6(regs)	((regs)->r9)
#endif

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/* The file behind descriptor fd of task t (a pointer to read fields through), or NULL. */
static __always_inline struct file *task_fd_file(struct task_struct *t, __s64 fd)
{
	struct fdtable *fdt = t->files->fdt;
	struct file **v, *f = NULL;

	if (fd < 0 || !fdt || fd >= fdt->max_fds)
		return NULL;
	v = fdt->fd;
	if (bpf_probe_read_kernel(&f, sizeof(f), &v[fd]) || !f)
		return NULL;
	return bpf_rdonly_cast(f, bpf_core_type_id_kernel(struct file));
}

#define PW_AF_INET	2
#define PW_AF_INET6	10
#define PW_S_IFMT	00170000
#define PW_S_IFSOCK	0140000

/*
 * Peer and local port of the socket behind descriptor fd of the current
 * process, into the thread's chain accumulator (acc->peer): for the verdict
 * (bpf/verdict.bpf.h, peer_find), by plain loads through typed pointers. Here
 * because only one object may use bpf_rdonly_cast: this libbpf's linker
 * refuses a kfunc declared in two. Returns 0, or -1 (no such socket).
 */
__noinline int pw_peer_from_fd(int fd)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct pw_chain_acc *acc = bpf_task_storage_get(&chains, t, 0, 0);
	struct file *f = task_fd_file(t, fd);
	struct socket *sock;
	struct peer *p;
	struct sock *sk;
	__u16 family;

	if (!acc || !f || (f->f_inode->i_mode & PW_S_IFMT) != PW_S_IFSOCK)
		return -1;
	sock = bpf_rdonly_cast(f->private_data, bpf_core_type_id_kernel(struct socket));
	sk = sock->sk;
	if (!sk)
		return -1;
	p = &acc->peer;
	family = sk->__sk_common.skc_family;
	p->family = family;
	p->port = bpf_ntohs(sk->__sk_common.skc_dport);
	p->local_port = sk->__sk_common.skc_num;
	p->netns = sk->__sk_common.skc_net.net->ns.inum;
	if (family == PW_AF_INET) {
		ipv4_mapped(p->addr, sk->__sk_common.skc_daddr);
		ipv4_mapped(p->local_addr, sk->__sk_common.skc_rcv_saddr);
	} else if (family == PW_AF_INET6) {
		bpf_probe_read_kernel(p->addr, 16, &sk->__sk_common.skc_v6_daddr);
		bpf_probe_read_kernel(p->local_addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
	} else {
		return -1;
	}
	return 0;
}

/*
 * A dynamic linker maps a shared object: glibc's first mmap(2) of each object
 * (at start and on dlopen) leaves the address to the kernel, asks for the
 * object's first segment and says MAP_DENYWRITE; musl's maps the object's whole
 * span from its start with the first segment's protection (read-only, or
 * executable for an older layout). A read-only private mapping of 64 KiB or
 * more from a file's start is taken too, though it may be data: such a file
 * costs one note (its first bytes read) once per daemon lifetime, and its
 * process is not held for it. Seen as the kernel picks the
 * address: this tracepoint runs only for mappings whose address the kernel
 * chooses (a few per exec), where one on the address space's lock would run
 * about fifty times. The mapping is not in place yet: the record says which
 * descriptor it comes from, for the daemon to read it by. The process, if
 * held, stops on its way back from the call, before any of the object's code
 * has run. (A mapping made only at a fixed address, as glibc makes an object
 * aligned above the page size, is not seen here: the daemon's periodic look
 * at every mapping finds it, discover_sweep_unmapped.)
 */
SEC("tp_btf/vm_unmapped_area")
int BPF_PROG(pw_mmap, unsigned long addr, struct vm_unmapped_area_info *info)
{
#ifdef PW_NR_MMAP
	struct task_struct *t;
	struct pw_file_key k;
	struct pt_regs *regs;
	__u64 prot, flags;
	struct file *f;
	bool loader;
	__s32 fd;

	if (!discover_on)
		return 0;
	t = bpf_get_current_task_btf();
	regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (PW_SYSCALL_NR(regs) != PW_NR_MMAP)
		return 0;
	prot = PW_SYSCALL_ARG3(regs);
	flags = PW_SYSCALL_ARG4(regs);
	if (flags & PW_MAP_ANONYMOUS)
		return 0;
	loader = (prot & PW_PROT_EXEC) || (flags & PW_MAP_DENYWRITE);
	/* neither glibc's (MAP_DENYWRITE) nor executable: musl's first mapping of
	 * an object (the whole of it, read-only, private, from the start of the
	 * file), or data */
	if (!loader && (prot != PW_PROT_READ || (flags & PW_MAP_TYPE) != PW_MAP_PRIVATE ||
			PW_SYSCALL_ARG6(regs) || PW_SYSCALL_ARG2(regs) < PW_LOADER_SPAN_MIN))
		return 0;
	fd = (__s32)PW_SYSCALL_ARG5(regs);
	f = task_fd_file(t, fd);
	if (!f || inode_known(f->f_inode, &k))
		return 0;
	/* a loader's mapping is held before any of the object's code runs: its
	 * setup calls (SNI, socket) are where some probes learn what a verdict
	 * needs. A read-only one may as well be a data file (a program that maps
	 * every file it searches would be held once per file): noted, not held;
	 * the gates hold the process if it reaches the network first. */
	pending_note(PW_REC_LIB, k.dev, k.ino, fd, loader);
#endif
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

/*
 * Executable mappings of files the kernel does not know as examined, in
 * processes with no note pending: what no hook saw mapped (a shared object
 * placed only at a fixed address, as glibc places one aligned above the page
 * size; a file forgotten by known_files' LRU while mapped), for the daemon's
 * periodic look (discover.c: discover_sweep_unseen). One record per run of
 * mappings of one file.
 */
#define PW_VM_EXEC	0x4

SEC("iter/task_vma")
int pw_vma_unseen(struct bpf_iter__task_vma *ctx)
{
	struct vm_area_struct *vma = ctx->vma;
	struct task_struct *task = ctx->task;
	struct seq_file *seq = ctx->meta->seq;
	static struct pw_file_key last;
	static __u32 last_pid;
	struct pw_unseen_rec r = {};
	struct pw_file_key k;
	struct file *file;

	if (ctx->meta->seq_num == 0)
		last.dev = last.ino = last_pid = 0;
	if (!vma || !task)
		return 0;
	file = vma->vm_file;
	if (!file || !(vma->vm_flags & PW_VM_EXEC))
		return 0;
	r.pid = task->tgid;
	if (r.pid == daemon_tgid || r.pid == watchdog_tgid || bpf_map_lookup_elem(&pending, &r.pid))
		return 0;
	if (inode_known(file->f_inode, &k))
		return 0;
	if (k.dev == last.dev && k.ino == last.ino && r.pid == last_pid)
		return 0;
	last = k;
	last_pid = r.pid;
	r.start = vma->vm_start;
	r.end = vma->vm_end;
	r.dev = k.dev;
	r.ino = k.ino;
	bpf_probe_read_kernel_str(r.comm, sizeof(r.comm), task->comm);
	bpf_seq_write(seq, &r, sizeof(r));
	return 0;
}
