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

/*
 * What the chain's validation by the TLS library lets a pin rely on. A pin on
 * the leaf always counts (the handshake proves its key); a pin on any other
 * certificate counts only when that certificate is in the chain the library
 * built and verified for this handshake (RFC 7469, OkHttp, Android).
 */
enum pw_validation {
	PW_VALIDATION_UNKNOWN = 0,	/* pinwarden does not read this library's validated chain */
	PW_VALIDATION_VERIFIED = 1,	/* verified; the validated chain was read: all of it counts */
	PW_VALIDATION_UNVERIFIED = 2,	/* not verified, or verification failed: only the leaf */
};

#define PW_VALIDATION_NAMES { "unknown", "verified", "unverified" }

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
#define PW_CERT_VALIDATED	(1u << 9) /* in the chain the library verified for this handshake */
#define PW_CERT_NOT_PRESENTED	(1u << 10) /* a trust anchor of the validated chain: not sent by the peer */
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
#define PW_CHAIN_PIN_UNVALIDATED (1u << 13) /* a pinned key sat only in certificates that do not count */
#define PW_CHAIN_ANCHOR_ERROR	(1u << 14) /* a certificate of the validated chain could not be hashed */
#define PW_CHAIN_VCHAIN_ERROR	(1u << 15) /* the library's validated chain could not be read */
#define PW_CHAIN_LEAF_MISMATCH	(1u << 16) /* the library verifies a leaf other than the one captured */
#define PW_CHAIN_HOST_LOST	(1u << 17) /* the connection's host could not be learned or kept */
#define PW_CHAIN_PORT_UNKNOWN	(1u << 18) /* the port rules need is unknown */
#define PW_CHAIN_ADDR_UNKNOWN	(1u << 19) /* no SNI, and the address IP rules need is unknown */
#define PW_CHAIN_RULE_UNKNOWN	(1u << 20) /* a rule could cover it, but cannot be found: failed closed */
#define PW_CHAIN_ACC_UNAVAILABLE (1u << 21) /* no accumulator: nothing was captured */
#define PW_CHAIN_PENDING_LOST	(1u << 22) /* waited for the library's verification, then lost */
#define PW_CHAIN_VERDICT_UNREACHED (1u << 23) /* the verdict program was not installed: failed closed */
/* enforcement flags, from bit 24 down */
#define PW_CHAIN_RESET_FULL	(1u << 24) /* reset asked, but reset_conns is full: killed instead */
/* a chain the kernel could not judge in full: under enforce, fail closed */
#define PW_CHAIN_UNJUDGEABLE	(PW_CHAIN_NO_CERTS | PW_CHAIN_STALE | PW_CHAIN_TRUNCATED | \
				 PW_CHAIN_CERT_ERROR | PW_CHAIN_ANCHOR_ERROR | PW_CHAIN_VCHAIN_ERROR | \
				 PW_CHAIN_LEAF_MISMATCH | PW_CHAIN_RULE_UNKNOWN)

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
	PW_CNT_ANCHORS_HASHED,	/* validated certificates not presented, hashed for a pin */
	PW_CNT_VCHAIN_UNREAD,	/* the library's validated chain could not be read: leaf only */
	PW_CNT_PIN_UNVALIDATED,	/* a pinned key only in certificates that do not count */
	PW_CNT_RULE_UNKNOWN,	/* a rule could cover a chain but could not be found: failed closed */
	PW_CNT_LOST_MARK_FAILED, /* a uid's loss of session state could not be recorded */
	PW_CNT_RESET_FULL,	/* reset_conns full: the process was killed instead */
	PW_CNT_RESET_NO_SOCK,	/* reset asked, socket unknown: the process was killed instead */
	PW_CNT_RESET_UNHELD,	/* a reset whose process could not be stopped for the daemon */
	PW_CNT_RESET_RST_PASSED,	/* RSTs of marked connections let out (no payload) */
	PW_CNT_DISCOVERY_NOTED,	/* new files noted for the daemon (the process ran on) */
	PW_CNT_DISCOVERY_UNGATED, /* processes that went past the gate unexamined, not stopped */
	PW_CNT_PENDING_LOST,	/* a chain waiting for its library's verification was lost: failed closed */
	PW_CNT_VERDICT_UNREACHED, /* the verdict program could not be tail-called: failed closed */
	PW_CNT_PARK_QUOTA,	/* a chain its uid had no room to park: judged at once, leaf only */
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
	__u16 scope_exe_path;	/* 0: none; else 1 + slot in scope_exes: the path, across upgrades */
	__u8 pad[4];
};
_Static_assert(sizeof(struct pw_rule_alt) == 32, "pw_rule_alt layout");

#define PW_EXE_SLOTS	128
#define PW_SESSIONS_MAX	(2 << 20)	/* connection objects the kernel keeps state for */
#define PW_SESSION_QUOTA (1 << 20)	/* ... per uid, by default (run --session-quota) */
#define PW_PARKED_MAX	16384		/* chains parked until their library verifies them */
#define PW_PARKED_QUOTA	2048		/* ... per uid, by default (run --park-quota) */	/* scoped executable paths per policy generation (two live) */

/* a scoped executable's path from the root, NUL-padded (scope_exes) */
struct pw_scope_exe {
	char path[PW_PATH_MAX];
};

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
/* per side: what a chain whose rule cannot be found fails closed as */
#define PW_CFG_RULES_CLIENT	(1u << 8) /* some rule judges servers */
#define PW_CFG_RULES_SERVER	(1u << 9) /* some rule judges clients (side: server) */
#define PW_CFG_ENFORCE_CLIENT	(1u << 10) /* ... and enforces */
#define PW_CFG_ENFORCE_SERVER	(1u << 11)
#define PW_CFG_KILL_CLIENT	(1u << 12) /* ... and some enforcing rule kills */
#define PW_CFG_KILL_SERVER	(1u << 13)

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

/* What a library told us about one connection object (ssl_state, key: struct
 * pw_ssl_key); the daemon sweeps those of dead processes. */
struct pw_ssl_state {
	__u64 start;		/* its process's start (boot ns): a reused pid is another */
	__s32 fd;		/* -1: unknown */
	__u32 host_len;
	__u32 uid;		/* whose quota it counts against */
	__u32 flags;		/* PW_SESSION_* */
	char host[PW_HOST_MAX];
};
_Static_assert(sizeof(struct pw_ssl_state) == 280, "pw_ssl_state layout");

#define PW_SESSION_HOST_UNREADABLE	(1u << 0) /* an SNI was set that could not be read */
#define PW_SESSION_CHAIN_PENDING	(1u << 1) /* its chain waits for the library's verification */

/* ---- ring buffer records ------------------------------------------------- */

enum pw_rec_type {
	PW_REC_CERT = 1,
	PW_REC_CHAIN = 2,
	/* the discovery ring buffer's (include/discovery.h) */
	PW_REC_EXEC = 3,	/* a process exec'd a file the daemon has not examined */
	PW_REC_LIB = 4,		/* a process mapped one's code (mmap, PROT_EXEC) */
	PW_REC_STOP = 5,	/* a process with such files was stopped at the gate */
	PW_REC_UNGATED = 6,	/* ... went past the gate without being stopped */
};

/* one TCP connection, as both the uprobes and the cgroup_skb program see it:
 * the socket's network namespace, ports in host order, IPv4 addresses mapped
 * into ::ffff:0:0/96 */
struct pw_conn_key {
	__u32 netns;		/* inode of the socket's network namespace (ns.inum) */
	__u16 family;		/* the socket's: AF_INET or AF_INET6 */
	__u16 sport;		/* local */
	__u16 dport;		/* remote */
	__u16 pad;
	__u8 saddr[16];
	__u8 daddr[16];
};
_Static_assert(sizeof(struct pw_conn_key) == 44, "pw_conn_key layout");

/* what the daemon must do about a marked connection */
#define PW_MARK_HELD	(1u << 0) /* its process is stopped (SIGSTOP) until the socket is destroyed */
#define PW_MARK_KILL	(1u << 1) /* the verdict's kill failed: the daemon kills the process */
#define PW_MARK_PENDING	(1u << 2) /* its process is being stopped: HELD once the stop is sent */
#define PW_MARK_DONE	(1u << 8) /* set by the daemon: acted on; the socket is left to destroy */

/* a connection marked by a verdict (reset_conns): egress dropped until the daemon is done */
struct pw_conn_mark {
	__u64 ts_boot_ns;	/* the verdict's time: its chain record's ts_boot_ns */
	__u64 start_boottime;	/* the process's start (boot ns), against pid reuse */
	__u32 pid;
	__u32 tid;
	__u32 flags;		/* PW_MARK_* */
	__u32 pad;
};
_Static_assert(sizeof(struct pw_conn_mark) == 32, "pw_conn_mark layout");

/* a file, as the kernel names it: s_dev (major << 20 | minor) and inode */
struct pw_file_key {
	__u64 dev;
	__u64 ino;
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
	__u32 pinned;		/* bit i: certificate i's hash is in the pinset (counted or not) */
	__s32 verify_error;	/* the library's verification result (OpenSSL: X509_V_*) */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 gen;		/* policy generation that judged it */
	__u32 rule_id;		/* PW_NO_ID: no rule */
	__u32 pinset_id;
	__u32 matched;		/* bit i: certificate i matched a pin, and it counts */
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
	__u8 ncerts;		/* entries of certs[] used: presented ones, then trust anchors */
	__u8 validation;	/* enum pw_validation */
	__u8 pad;
	char comm[PW_COMM_LEN];
	char host[PW_HOST_MAX];
	char exe[PW_PATH_MAX];
	struct pw_chain_cert certs[PW_CHAIN_MAX];
};
_Static_assert(sizeof(struct pw_chain_rec) == 3200, "pw_chain_rec layout");

#endif /* PINWARDEN_H */
