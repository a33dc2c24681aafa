/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What the kernel side and the daemon share: limits, map keys and values, and
 * the records sent through the ring buffer. Fixed-size structs of __u8/__u16/
 * __u32/__u64 only, ordered by size and padded by hand, each with a size
 * assertion so that clang -target bpf and gcc can never disagree silently.
 */
#ifndef PINWARDEN_H
#define PINWARDEN_H

#ifdef __bpf__
/* vmlinux.h already provides __u8 and friends */
#else
#include <linux/types.h>
#endif

#define PW_HOST_MAX	256	/* SNI: at most 255 bytes, plus NUL */
#define PW_PATH_MAX	256	/* executable path kept by the kernel (longer: tail kept) */
#define PW_CERT_MAX	32768	/* kernel copy buffer for one certificate; power of two */
#define PW_CHAIN_MAX	32	/* certificates judged per chain; more are flagged */
#define PW_RULE_ALTS	4	/* rules sharing one (host, port, side) key, by scope */
#define PW_CGROUP_SLOTS	128	/* scoped cgroups per policy generation (two generations live) */
#define PW_COMM_LEN	16
#define PW_HASH_LEN	32

#define PW_NO_ID	0xffffffffu

/* libraries (the event's "library" field) */
enum pw_library {
	PW_LIB_UNKNOWN = 0,
	PW_LIB_OPENSSL = 1,	/* libssl.so.3 / .1.1, and OpenSSL linked into node */
	PW_LIB_GNUTLS = 2,
	PW_LIB_NSS = 3,
	PW_LIB_GO = 4,		/* Go crypto/tls */
	PW_LIB_BORINGSSL = 5,
	PW_LIB_WOLFSSL = 6,
	PW_LIB_MBEDTLS = 7,
	PW_LIB_MAX,
};

#define PW_LIBRARY_NAMES { "unknown", "openssl", "gnutls", "nss", "go", "boringssl", "wolfssl", "mbedtls" }

/* which side of the connection the judged chain came from */
enum pw_side {
	PW_SIDE_CLIENT = 0, /* we are the client: the chain is the server's */
	PW_SIDE_SERVER = 1, /* we are a server: the chain is a client's (mTLS) */
};

enum pw_verdict {
	PW_VERDICT_UNPINNED = 0,
	PW_VERDICT_MATCH = 1,
	PW_VERDICT_MISMATCH = 2,
	PW_VERDICT_EXPIRED = 3,
	PW_VERDICT_RESUMED = 4,	/* a resumed session: no chain presented, nothing judged */
};

enum pw_mode {
	PW_MODE_AUDIT = 0,
	PW_MODE_ENFORCE = 1,
};

enum pw_action {
	PW_ACTION_KILL = 0,
	PW_ACTION_RESET = 1,
};

/* what was done (the event's "action" field) */
enum pw_done {
	PW_DONE_NONE = 0,
	PW_DONE_KILLED = 1,
	PW_DONE_RESET = 2,
	PW_DONE_WOULD_KILL = 3,
	PW_DONE_WOULD_RESET = 4,
	PW_DONE_KILL_FAILED = 5,
};

enum pw_host_kind {
	PW_HOST_EXACT = 0, /* api.example.com */
	PW_HOST_ONE = 1,   /* *.example.com: exactly one label under */
	PW_HOST_ANY = 2,   /* **.example.com: the name itself and any depth under */
	PW_HOST_IP = 3,    /* no SNI: the destination address (16 bytes, v4-mapped) */
};

enum pw_pin_type {
	PW_PIN_SPKI = 1,
	PW_PIN_CERT = 2,
};

/* per-certificate flags */
#define PW_CERT_TOO_BIG		(1u << 0) /* longer than PW_CERT_MAX: not hashed */
#define PW_CERT_COPY_FAILED	(1u << 1) /* could not read it from the process */
#define PW_CERT_NO_SPKI		(1u << 2) /* DER walker refused it: no SPKI hash */
#define PW_CERT_CONTENDED	(1u << 3) /* scratch buffer was taken over: not hashed */
#define PW_CERT_KNOWN		(1u << 4) /* daemon already has the DER: not resent */
#define PW_CERT_HASHED		(1u << 5) /* cert_sha256 is valid */
#define PW_CERT_SPKI_HASHED	(1u << 6) /* spki_sha256 is valid */
#define PW_CERT_NOT_SENT	(1u << 7) /* judged, but its DER never reached the daemon */
#define PW_CERT_ID		(1u << 8) /* id (keyed SipHash of the DER) is valid */
/* the kernel could not judge this certificate */
#define PW_CERT_UNJUDGED	(PW_CERT_TOO_BIG | PW_CERT_COPY_FAILED | PW_CERT_NO_SPKI | \
				 PW_CERT_CONTENDED)

/* per-chain flags: why a chain could not be judged in full */
#define PW_CHAIN_NO_CERTS	(1u << 0) /* chain complete, but no certificate was captured */
#define PW_CHAIN_STALE		(1u << 1) /* captured certificates too old for this verification */
#define PW_CHAIN_TRUNCATED	(1u << 2) /* more than PW_CHAIN_MAX certificates */
#define PW_CHAIN_CERT_ERROR	(1u << 3) /* at least one certificate could not be hashed */
#define PW_CHAIN_NO_SNI		(1u << 4) /* the client sent no SNI */
#define PW_CHAIN_PEER_GUESSED	(1u << 5) /* peer taken from the thread's last connect() */
#define PW_CHAIN_NO_PEER	(1u << 6) /* peer unknown */
#define PW_CHAIN_LOST_CERT	(1u << 7) /* a certificate record could not be sent */
#define PW_CHAIN_NO_POLICY	(1u << 8) /* no policy generation active */
#define PW_CHAIN_EXE_TRUNCATED	(1u << 9)
#define PW_CHAIN_PEER_READ	(1u << 10) /* socket from the thread's last read (no fd binding) */
#define PW_CHAIN_RESET_NO_SOCK	(1u << 11) /* reset asked, but the socket is unknown: killed instead */
#define PW_CHAIN_RESUMED	(1u << 12) /* a resumed session (no certificates): reported, not judged */
/* a chain the kernel could not judge in full: under enforce, fail closed */
#define PW_CHAIN_UNJUDGEABLE	(PW_CHAIN_NO_CERTS | PW_CHAIN_STALE | PW_CHAIN_TRUNCATED | \
				 PW_CHAIN_CERT_ERROR)

/* kernel-side counters (per-CPU array indexed by these) */
enum pw_counter {
	PW_CNT_CERTS = 0,	/* certificates captured */
	PW_CNT_CHAINS,		/* chains judged */
	PW_CNT_ORPHAN_CERTS,	/* d2i calls that were not part of a Certificate message */
	PW_CNT_ABANDONED,	/* chains reset before completion (handshake failed) */
	PW_CNT_LOST_CERT_RECS,	/* cert records the ring buffer refused */
	PW_CNT_LOST_CHAIN_RECS,	/* chain records the ring buffer refused */
	PW_CNT_CONTENDED,	/* scratch buffer taken over during hashing */
	PW_CNT_COPY_FAILED,	/* bpf_probe_read_user failed */
	PW_CNT_TOO_BIG,
	PW_CNT_KILLED,
	PW_CNT_KILL_FAILED,
	PW_CNT_ACC_FULL,	/* chain accumulator map full */
	PW_CNT_SNI_FULL,	/* per-SSL state map full */
	PW_CNT_KNOWN_SKIPPED,	/* DER not resent: the daemon knows it */
	PW_CNT_DISCOVERY_STOPS,	/* processes stopped for the daemon to examine a new file */
	PW_CNT_LOST_DISCOVERY,	/* a new file could not be reported: the process ran unexamined */
	PW_CNT_RESET_MARKED,	/* connections marked for reset */
	PW_CNT_RESET_DROPPED,	/* packets of marked connections dropped on egress */
	PW_CNT_RESUMED,		/* resumed client sessions seen */
	PW_CNT_DISCOVERY_NOTED,	/* new files noted for the daemon (the process ran on) */
	PW_CNT_DISCOVERY_UNGATED, /* processes that went past the gate unexamined, not stopped */
	PW_CNT_MAX,
};

/* ---- policy maps; every key carries the policy generation ---------------- */

struct pw_rule_key {
	__u32 gen;
	__u16 port;	/* 0: any port */
	__u8 kind;	/* enum pw_host_kind */
	__u8 side;	/* enum pw_side */
	char host[PW_HOST_MAX]; /* lower case, no wildcard prefix, NUL padded */
};
_Static_assert(sizeof(struct pw_rule_key) == 264, "pw_rule_key layout");

struct pw_rule_alt {
	__u64 scope_exe_ino;	/* 0: any executable */
	__u32 scope_exe_dev;	/* kernel encoding: major << 20 | minor */
	__u32 scope_cgroup;	/* 0: any cgroup; else 1 + index into the cgroups map */
	__u32 rule_id;
	__u32 pinset_id;
	__u8 mode;		/* enum pw_mode */
	__u8 action;		/* enum pw_action */
	__u8 pad[6];
};
_Static_assert(sizeof(struct pw_rule_alt) == 32, "pw_rule_alt layout");

struct pw_rule_val {
	struct pw_rule_alt alt[PW_RULE_ALTS]; /* scoped first, unscoped last */
	__u32 nalt;
	__u32 pad;
};
_Static_assert(sizeof(struct pw_rule_val) == 136, "pw_rule_val layout");

struct pw_pin_key {
	__u32 gen;
	__u32 pinset_id;
	__u8 type;		/* enum pw_pin_type */
	__u8 pad[7];
	__u8 hash[PW_HASH_LEN];
};
_Static_assert(sizeof(struct pw_pin_key) == 48, "pw_pin_key layout");

struct pw_pinset_key {
	__u32 gen;
	__u32 pinset_id;
};

struct pw_pinset_val {
	__s64 expires;		/* unix seconds after which the pinset is expired; 0: never */
};

/* per-generation switches, so that the fast path skips lookups that cannot hit */
#define PW_CFG_HAS_EXACT	(1u << 0)
#define PW_CFG_HAS_ONE		(1u << 1)
#define PW_CFG_HAS_ANY		(1u << 2)
#define PW_CFG_HAS_IP		(1u << 3)
#define PW_CFG_HAS_PORTS	(1u << 4)
#define PW_CFG_HAS_CERT_PINS	(1u << 5)
#define PW_CFG_LOG_MISMATCHES	(1u << 6) /* log only mismatches (and errors) */
#define PW_CFG_HAS_SCOPED	(1u << 7) /* some rule has a scope: keep looking after a hit */

struct pw_config {
	__u32 flags;
	__u32 pad;
};

/* a TLS connection object (SSL*, gnutls_session_t, ...) in a process */
struct pw_ssl_key {
	__u32 tgid;
	__u32 pad;
	__u64 ssl;
};
_Static_assert(sizeof(struct pw_ssl_key) == 16, "pw_ssl_key layout");

/* ---- ring buffer records ------------------------------------------------- */

enum pw_rec_type {
	PW_REC_CERT = 1,
	PW_REC_CHAIN = 2,
	/* the discovery ring buffer's (include/discovery.h) */
	PW_REC_EXEC = 3,	/* a process exec'd a file the daemon has not examined */
	PW_REC_LIB = 4,		/* a process's dynamic linker mapped one */
	PW_REC_STOP = 5,	/* a process with such files was stopped at the gate */
	PW_REC_UNGATED = 6,	/* ... went past the gate without being stopped */
};

/* one TCP connection, as both the uprobes and the cgroup_skb program see it:
 * ports in host order, IPv4 addresses mapped into ::ffff:0:0/96 */
struct pw_conn_key {
	__u16 family;		/* the socket's: AF_INET or AF_INET6 */
	__u16 sport;		/* local */
	__u16 dport;		/* remote */
	__u16 pad;
	__u8 saddr[16];
	__u8 daddr[16];
};
_Static_assert(sizeof(struct pw_conn_key) == 40, "pw_conn_key layout");

/* a file, as the kernel names it: s_dev (major << 20 | minor) and inode */
struct pw_file_key {
	__u64 dev;
	__u64 ino;
};

/* where ld.so's link map walk stopped last, per process */
struct pw_ldso_pos {
	__u64 lm;		/* the struct link_map */
	__u64 name;		/* its l_name, to tell it is still the same object */
};

/* One presented certificate, sent when it is captured unless the daemon knows it;
 * `copied` bytes of DER follow the header in the record. */
struct pw_cert_rec {
	__u32 type;		/* PW_REC_CERT */
	__u32 der_len;		/* length of the certificate as presented */
	__u32 copied;		/* bytes of DER that follow */
	__u32 flags;		/* PW_CERT_* */
	__u64 id;		/* keyed SipHash-2-4 of the DER: the daemon's cache key */
	__u8 spki_sha256[PW_HASH_LEN];
	__u8 cert_sha256[PW_HASH_LEN];	/* only when a policy has cert-sha256 pins */
};
_Static_assert(sizeof(struct pw_cert_rec) == 88, "pw_cert_rec layout");

/* how the daemon names a certificate it has explained (known_certs) */
struct pw_cert_id {
	__u64 id;
	__u32 der_len;
	__u32 pad;
};

struct pw_chain_cert {
	__u64 id;		/* PW_CERT_ID */
	__u8 spki_sha256[PW_HASH_LEN];	/* PW_CERT_SPKI_HASHED */
	__u8 cert_sha256[PW_HASH_LEN];	/* PW_CERT_HASHED */
	__u32 der_len;
	__u32 flags;		/* PW_CERT_* */
};
_Static_assert(sizeof(struct pw_chain_cert) == 80, "pw_chain_cert layout");

/* One judged chain. */
struct pw_chain_rec {
	__u32 type;		/* PW_REC_CHAIN */
	__u32 flags;		/* PW_CHAIN_* */
	__u64 ts_boot_ns;	/* bpf_ktime_get_boot_ns() at the verdict */
	__u64 cgroup_id;
	__u64 chain_id;		/* per-CPU sequence, for debugging */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 gen;		/* policy generation that judged it */
	__u32 rule_id;		/* PW_NO_ID: no rule */
	__u32 pinset_id;
	__u32 matched;		/* bit i: certificate i matched a pin */
	__u16 peer_port;	/* host order; 0: unknown */
	__u16 peer_family;	/* AF_INET, AF_INET6, 0 */
	__u16 local_port;	/* host order; 0: unknown */
	__u16 pad16;
	__u8 peer_addr[16];
	__u8 local_addr[16];
	__u8 library;		/* enum pw_library */
	__u8 side;		/* enum pw_side */
	__u8 verdict;		/* enum pw_verdict */
	__u8 mode;		/* enum pw_mode */
	__u8 done;		/* enum pw_done */
	__u8 ncerts;		/* entries of certs[] used */
	__u8 pad[2];
	char comm[PW_COMM_LEN];
	char host[PW_HOST_MAX];
	char exe[PW_PATH_MAX];
	struct pw_chain_cert certs[PW_CHAIN_MAX];
};
_Static_assert(sizeof(struct pw_chain_rec) == 3200, "pw_chain_rec layout");

#endif /* PINWARDEN_H */
