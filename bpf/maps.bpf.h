/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Maps and globals shared by every BPF object (bpf/NAME.bpf.c), linked into
 * one (bpftool gen object), so core.bpf.c defines them and the library
 * objects declare them extern.
 */
#ifndef PW_MAPS_BPF_H
#define PW_MAPS_BPF_H

#include "pinwarden.h"
#include "discovery.h"
#include "sha256.h"
#include "der.h"

#ifdef PW_DEFINE_MAPS
#define PW_SHARED
#else
#define PW_SHARED extern
#endif

/* One certificate being copied and hashed. Claimed with a compare-and-swap on
 * `owner`, so that a program preempted in the middle of hashing never has its
 * buffer overwritten by another one on the same CPU. */
struct pw_scratch {
	__u64 owner;			/* 0: free; else tid << 32 | claim time in ms */
	struct sha256_state sha;
	struct der_walk walk;		/* the SPKI walk (kept off the stack) */
	struct pw_cert_rec rec;		/* header of the ring buffer record ... */
	__u8 der[PW_CERT_MAX + SHA256_BLOCK]; /* ... and its DER, contiguous */
};


/* The thread's last TCP connect(): the peer when the library gives no fd. */
struct pw_thread_conn {
	__u16 family;
	__u16 dport;			/* host order */
	__u16 sport;
	__u16 pad;
	__u8 daddr[16];
	__u8 saddr[16];
	__s32 last_rfd;			/* last fd read from (only while a policy resets); -1: none */
	__u32 netns;			/* inode of the connected socket's network namespace */
	__u64 sk;			/* the connecting struct sock: its local port comes later */
};

/* The rule search of one verdict, kept in the accumulator (a map value) rather
 * than on the stack: the verifier then need not track each combination of its
 * flags, and its state prunes. */
struct rule_search {
	__u32 gen;
	__u32 cfg;
	__u16 port;
	__u8 side;
	__u8 have_unscoped;
	__u8 have_scoped;
	__u8 pad[3];
	__u64 exe_ino;		/* identity of the current executable, read on first use */
	__u32 exe_dev;
	__u32 exe_read;
	__u32 dot;		/* where the host's first label ends (see rule_find) */
	__u32 exe_path_read;	/* acc->exe holds the executable's path (exe_path_flags its flags) */
	__u32 exe_path_flags;
	__u32 pad2;
	struct pw_rule_alt unscoped;
	struct pw_rule_alt scoped;
};

#define PW_ANCHORS_MAX	4	/* validated certificates the peer did not present, per chain */

enum pw_anchor_kind {
	PW_ANCHOR_TBS = 1,	/* a tbsCertificate: walk it to the SPKI */
	PW_ANCHOR_SPKI = 2,	/* the SubjectPublicKeyInfo itself */
	PW_ANCHOR_ENTRY = 3,	/* hashed already, while the library held it: certs[ptr] (NSS) */
	PW_ANCHOR_X509 = 4,	/* an OpenSSL or BoringSSL X509 (ptr), whose cached
				 * tbsCertificate acc->vck says where to find */
};

/*
 * A certificate of the validated chain that is not one of the presented ones
 * (a trust anchor from the client's store, say): where its DER lies in the
 * process, hashed only if the verdict needs it.
 */
struct pw_anchor_src {
	__u64 ptr;
	__u32 len;
	__u32 kind;			/* enum pw_anchor_kind */
};

/* What the verdict decided, kept in the accumulator (map memory) rather than in
 * locals: every path then reaches the record with one verifier state. */
struct pw_decision {
	__u32 rule_id;
	__u32 pinset_id;
	__u32 matched;
	__u8 verdict;			/* enum pw_verdict */
	__u8 mode;			/* enum pw_mode */
	__u8 done;			/* enum pw_done */
	__u8 action;			/* enum pw_action, as enforced */
};

/* The connection a verdict is about (kept in the accumulator: too big for the stack). */
struct peer {
	__u16 family;
	__u16 port;
	__u16 local_port;
	__u16 guessed;		/* 1: the thread's last connect(); 2: its last read */
	__u8 addr[16];		/* IPv4 mapped into ::ffff:0:0/96 */
	__u8 local_addr[16];
	__u32 netns;		/* the socket's network namespace (inode) */
};

/* An IPv4 address as an IPv4-mapped IPv6 one (::ffff:a.b.c.d), as peers are kept. */
static __always_inline void ipv4_mapped(__u8 *out, __u32 a)
{
	__builtin_memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	__builtin_memcpy(&out[12], &a, 4);
}

/* Per-thread chain accumulator (task storage: freed with the thread). Also the
 * value of the tables of parked chains, which the daemon sweeps by `ts`. */
struct pw_chain_acc {
	__u64 ts;			/* boot ns of the last certificate: keep it first */
	__u32 park_uid;			/* parked: the uid charged for it (keep it second) */
	__u32 pad0;
	__u64 next_der;			/* user address where a following entry would start */
	__u64 ssl;			/* SSL* handed to the verifier, 0 if unseen */
	__u32 ncerts;			/* certificates seen (may exceed PW_CHAIN_MAX) */
	__u32 flags;			/* PW_CHAIN_* */
	__u32 form;			/* 12: TLS 1.2 entry layout, 13: TLS 1.3 */
	__u32 host_len;
	__u32 matched;			/* bit i: entry i of certs[] matched a pin, and it counts */
	__u32 pinned;			/* bit i: entry i's hash is in the pinset */
	/* the library's verification of this chain, set before the verdict */
	__u32 validated;		/* bit i: presented certificate i is in the validated chain */
	__s32 verify_error;		/* the library's own verification result */
	__u8 validation;		/* enum pw_validation */
	__u8 nanchors;			/* anchors[] to hash if a pin needs them */
	__u8 nents;			/* entries of certs[]: presented (capped), then hashed anchors */
	__u8 side;			/* enum pw_side, while a verification is in progress */
	__s32 read_fd;			/* the thread's last read when the chain was complete, or -1 */
	__u8 vby_key;			/* validated anchors name presented certificates by key */
	__u8 vstage;			/* a chain waiting for its library's verification (GnuTLS) */
	/* what the probe hands the verdict program (verdict_call) */
	__u8 vlibrary;			/* enum pw_library */
	__u8 vside;			/* enum pw_side */
	__u8 vresumed;			/* report a resumed session, judge nothing */
	__u8 pad3[3];
	__u64 vforget;			/* the library's connection object to forget after, or 0 */
	__u64 vctx;			/* the library's verification context, while in progress */
	__u64 vout;			/* where the library writes its verification result */
	__u64 vck;			/* OpenSSL, BoringSSL: the verdict probe's cookie (x509.bpf.h) */
	__u64 objs[PW_CHAIN_MAX];	/* the library's object of each presented certificate, or 0 */
	struct pw_anchor_src anchors[PW_ANCHORS_MAX];
	struct pw_chain_cert certs[PW_CHAIN_MAX];
	char host[PW_HOST_MAX];		/* lower-cased SNI, filled at the verdict */
	struct pw_rule_key key;		/* lookup key, kept here: too big for the stack */
	struct rule_search rs;
	struct pw_decision dec;
	struct peer peer;		/* the verdict's connection */
	char pathbuf[3 * PW_PATH_MAX];	/* the executable's path, built right to left */
	char exe[PW_PATH_MAX];		/* ... and as read, NUL-padded */
	/* which executable acc->exe is the path of, kept across this thread's verdicts:
	 * the mm's exe_file, its inode and device (an exec changes them) */
	__u64 exe_file;
	__u64 exe_file_ino;
	__u32 exe_file_dev;
	__u32 exe_file_flags;		/* exe_path()'s flags for it */
};

PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);	/* resized by the daemon (--ringbuf) */
} events SEC(".maps");

PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PW_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);		/* set to 2 x CPUs + 2 by the daemon */
	__type(key, __u32);
	__type(value, struct pw_scratch);
} scratch SEC(".maps");

PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pw_chain_acc);
} chains SEC(".maps");

/*
 * Chains parked until their library verifies them, by (tgid, the library's
 * connection object): NSS's deferred authentication (sslSocket), GnuTLS's
 * verification (session), which may come on another thread than the
 * handshake's. Not LRU: an entry is never dropped unjudged. Each uid may park
 * at most park_quota of them (run --park-quota; parked_uids counts them), so that no user
 * fills the table for the others; past that, or when the table is full, the
 * chain is judged at once, leaf only (chain_park). The daemon sweeps entries of
 * processes gone (userspace/sessions.c); it reads `ts` and `park_uid`, the
 * value's first fields.
 */
PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, PW_PARKED_MAX);
	__type(key, struct pw_ssl_key);
	__type(value, struct pw_chain_acc);
} parked_chains SEC(".maps");

/*
 * The verdict program (core.bpf.c's pw_verdict), installed by the daemon at
 * index 0 before any probe is attached; every probe tail-calls it.
 */
PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} verdict_prog SEC(".maps");

PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pw_thread_conn);
} thread_conn SEC(".maps");

/*
 * Sized for servers with a million connections or more; entries cost memory
 * only while they exist. Each uid may hold at most session_quota of them, so
 * that no user can fill the table for the others (session.bpf.h).
 */
PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, PW_SESSIONS_MAX);
	__type(key, struct pw_ssl_key);
	__type(value, struct pw_ssl_state);
} ssl_state SEC(".maps");

/*
 * The shape of the session tables keyed by a uid or a tgid, of one number: one
 * definition for four tables. The first three stay apart: a loss is marked by uid only
 * when the tgid table is full, and in a shared table it would find no room.
 */
struct pw_session_ids {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
};

/* entries of ssl_state per uid: uid -> count */
PW_SHARED struct pw_session_ids session_uids SEC(".maps");

/* processes that could not keep a connection's state (quota or table full): tgid -> start */
PW_SHARED struct pw_session_ids session_lost SEC(".maps");

/* ... and, when that table is full, their uids: uid -> boot ns of the last loss */
PW_SHARED struct pw_session_ids session_lost_uid SEC(".maps");

/* entries of parked_chains per uid: uid -> count (chain_park) */
PW_SHARED struct pw_session_ids parked_uids SEC(".maps");

/* policy, keyed by generation: a reload fills a new generation, then flips active_gen */
PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 32768);
	__type(key, struct pw_rule_key);
	__type(value, struct pw_rule_val);
} rules SEC(".maps");

PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 131072);
	__type(key, struct pw_pin_key);
	__type(value, __u8);
} pins SEC(".maps");

PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct pw_pinset_key);
	__type(value, struct pw_pinset_val);
} pinsets SEC(".maps");

PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);	/* the live generation, the previous one, reloads in flight */
	__type(key, __u32);
	__type(value, struct pw_config);
} configs SEC(".maps");

/* the executables rules are scoped to, by path: slot (gen & 1) * PW_EXE_SLOTS + i */
PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * PW_EXE_SLOTS);
	__type(key, __u32);
	__type(value, struct pw_scope_exe);
} scope_exes SEC(".maps");

/* the cgroups rules are scoped to: slot (gen & 1) * PW_CGROUP_SLOTS + i */
PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 2 * PW_CGROUP_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} cgroups SEC(".maps");

/* certificates the daemon has already explained: their DER is not sent again */
PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct pw_cert_id);
	__type(value, __u8);
} known_certs SEC(".maps");

/*
 * Connections to reset (and those of processes a kill missed): egress dropped
 * until the daemon has destroyed them. A mark lives for the daemon's reaction
 * time (about a millisecond): room for every connection of a host hit at once.
 */
PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct pw_conn_key);
	__type(value, struct pw_conn_mark);
} reset_conns SEC(".maps");

/* files (executables, shared objects) the daemon has examined, and what they were then */
PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct pw_file_key);
	__type(value, struct pw_file_stamp);	/* the file as examined */
} known_files SEC(".maps");

/* every process held for the daemon (discovery's gates, a reset), by tgid:
 * recorded before the SIGSTOP, continued by whoever deletes the entry. Pinned
 * by the daemon, so that a daemon started after a crash continues what was
 * left stopped (bpf/hold.bpf.h) */
PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PW_STOPS_MAX);
	__type(key, __u32);
	__type(value, struct pw_stop);
} stops SEC(".maps");

/* the record of a verdict without an accumulator (verdict_no_acc), zero but for what it sets */
PW_SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pw_chain_rec);
} noacc_rec SEC(".maps");

/* set by the daemon through the skeleton's .bss */
#ifdef PW_DEFINE_MAPS
volatile __u32 active_gen;		/* 0: no policy yet */
volatile __u64 boot_to_unix_ns;		/* unix time = boot time + this */
volatile __u64 wakeup_bytes = 1 << 20;	/* wake the daemon once this much is queued */
volatile __u32 discover_on;		/* stop processes on unknown files (after the first scan) */
volatile __u32 reset_on;		/* a policy resets: the egress filter runs */
volatile __u32 read_track_on;		/* pw_sys_enter runs: a thread's last read fd is known */
volatile __u32 need_cert_hash;		/* a live policy has cert-sha256 pins */
volatile __u64 session_quota = PW_SESSION_QUOTA; /* ssl_state entries per uid */
volatile __u64 park_quota = PW_PARKED_QUOTA;	/* parked_chains entries per uid */
const volatile __u64 cert_id_key[2];	/* SipHash key, random per daemon, set before load */
const volatile __u32 scratch_slots = 8;	/* entries of the scratch map, set before load */
volatile __u64 stopped_procs;		/* entries of stops */
volatile __u64 daemon_beat_ns;		/* the daemon's loop ran then (CLOCK_MONOTONIC) */
volatile __u64 watchdog_beat_ns;	/* the watchdog's loop ran then */
volatile __u64 watchdog_late;		/* its beats more than PW_BEAT_MAX_NS apart (userspace only) */
volatile __u32 daemon_tgid;		/* never stopped ... */
volatile __u32 watchdog_tgid;		/* ... nor this one */
const volatile __u32 stops_max = 32;	/* processes stopped at once, at most */
#else
extern volatile __u64 stopped_procs;
extern volatile __u64 daemon_beat_ns;
extern volatile __u64 watchdog_beat_ns;
extern volatile __u32 daemon_tgid;
extern volatile __u32 watchdog_tgid;
extern const volatile __u32 stops_max;
extern const volatile __u32 scratch_slots;
extern volatile __u32 active_gen;
extern volatile __u64 boot_to_unix_ns;
extern volatile __u64 wakeup_bytes;
extern volatile __u32 discover_on;
extern volatile __u32 reset_on;
extern volatile __u32 read_track_on;
extern volatile __u32 need_cert_hash;
extern volatile __u64 session_quota;
extern volatile __u64 park_quota;
extern const volatile __u64 cert_id_key[2];
#endif

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);

	if (c)
		__sync_fetch_and_add(c, 1);
}

/*
 * One entry fewer for uid in a table of counts per uid (session_uids,
 * parked_uids), never below 0: the daemon's recount may have just set the
 * count without an entry made meanwhile, and a count wrapped around to
 * 2^64 - 1 would refuse every entry of the uid.
 */
static __always_inline void uid_count_dec(void *map, __u32 uid)
{
	__u64 *c = bpf_map_lookup_elem(map, &uid), old;
	int i;

	if (!c)
		return;
	for (i = 0; i < 4; i++) {
		old = *(volatile __u64 *)c;
		if (!old || __sync_val_compare_and_swap(c, old, old - 1) == old)
			return;
	}
}

/* Ring buffer flags: batch the wake-ups, the daemon also polls on a timer. */
static __always_inline __u64 rb_flags(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ?
		       BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

#endif /* PW_MAPS_BPF_H */
