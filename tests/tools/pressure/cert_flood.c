// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * cert_flood: an unprivileged user's flood of certificates pinwarden has never
 * seen, through real TLS clients, for tests/pressure.bats.
 *
 *   cert_flood server PORT_FILE WORKERS CERTS SIZE
 *   cert_flood client PORT SECONDS PROCS
 *
 * The server listens on 127.0.0.1 (an ephemeral port, written to PORT_FILE),
 * with WORKERS processes accepting, and answers each ClientHello the way
 * tools/raw_tls_server.py does (a TLS 1.2 ServerHello, then a Certificate
 * message, then the end of the stream): its chain is CERTS certificates of about SIZE
 * bytes that no connection presented before, one self-signed template (its
 * own EC key, a private extension as padding) whose serial number is rewritten
 * with a counter, so that every certificate differs and costs the server no
 * cryptography. A TLS 1.2 client judges a chain right after that message: each
 * connection is one chain judged and CERTS new certificates for the kernel to
 * send to the daemon.
 *
 * The client runs PROCS processes of the real libssl making handshakes (SNI
 * flood.test, verification off, room for a large chain) one after the other
 * for SECONDS, then prints "connections N chains C certificates X": chains
 * that libssl received and parsed whole, and their certificates.
 * Exit 1 on a setup error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define MAX_CERTS 64
#define SERIAL_LEN 8
#define MAX_RECORD 16384

/* the template's serial: its first byte keeps it positive and minimal DER */
static const unsigned char serial_mark[SERIAL_LEN] = { 0x42, 'P', 'W', 'F', 'L', 'O', 'O', 'D' };

static void die(const char *what)
{
	fprintf(stderr, "cert_flood: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* A self-signed certificate of about size bytes, as DER; *serial_at: where its serial sits. */
static unsigned char *make_template(int size, int *len, int *serial_at)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	ASN1_INTEGER *serial = ASN1_INTEGER_new();
	ASN1_OCTET_STRING *pad = ASN1_OCTET_STRING_new();
	ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.4.1.55555.1", 1);
	BIGNUM *bn = BN_bin2bn(serial_mark, SERIAL_LEN, NULL);
	int padlen = size > 600 ? size - 600 : 16;
	unsigned char *der = NULL, *fill = calloc(1, padlen), *at;
	X509_EXTENSION *ext;

	if (!key || !x || !name || !serial || !pad || !oid || !bn || !fill ||
	    !ASN1_OCTET_STRING_set(pad, fill, padlen) || !BN_to_ASN1_INTEGER(bn, serial))
		die("cannot make the template's parts");
	ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, pad);
	if (!ext ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)"flood.test", -1, -1, 0) ||
	    !X509_set_version(x, 2) || !X509_set_serialNumber(x, serial) ||
	    !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -86400) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 30 * 86400) || !X509_set_pubkey(x, key) ||
	    !X509_add_ext(x, ext, -1) || !X509_sign(x, key, EVP_sha256()))
		die("cannot make the template");
	*len = i2d_X509(x, &der);
	if (*len <= 0 || !(at = memmem(der, *len, serial_mark, SERIAL_LEN)))
		die("cannot encode the template");
	*serial_at = at - der;
	free(fill);
	BN_free(bn);
	X509_free(x);
	X509_NAME_free(name);
	ASN1_INTEGER_free(serial);
	ASN1_OCTET_STRING_free(pad);
	ASN1_OBJECT_free(oid);
	X509_EXTENSION_free(ext);
	EVP_PKEY_free(key);
	return der;
}

static unsigned char *put24(unsigned char *p, size_t n)
{
	p[0] = n >> 16;
	p[1] = n >> 8;
	p[2] = n;
	return p + 3;
}

/*
 * The server's flight, as handshake bytes (not yet in records): ServerHello
 * (TLS 1.2, ECDHE-ECDSA-AES128-GCM-SHA256, no session id, the renegotiation
 * extension OpenSSL insists on) and Certificate with ncerts copies of der;
 * serials[i]: where certificate i's serial sits in it.
 */
static unsigned char *make_flight(const unsigned char *der, int len, int serial_at, int ncerts,
				  size_t *flen, size_t *serials)
{
	static const unsigned char hello_tail[] = { 0x00, 0xC0, 0x2B, 0x00, 0x00, 0x05,
						    0xFF, 0x01, 0x00, 0x01, 0x00 };
	size_t list = (size_t)ncerts * (3 + len), hello = 2 + 32 + sizeof(hello_tail);
	unsigned char *f = malloc(4 + hello + 4 + 3 + list), *p = f;
	int i;

	if (!f)
		die("out of memory");
	*p++ = 2;
	p = put24(p, hello);
	*p++ = 3;
	*p++ = 3;
	RAND_bytes(p, 32);
	p += 32;
	memcpy(p, hello_tail, sizeof(hello_tail));
	p += sizeof(hello_tail);
	*p++ = 11;
	p = put24(p, 3 + list);
	p = put24(p, list);
	for (i = 0; i < ncerts; i++) {
		p = put24(p, len);
		memcpy(p, der, len);
		serials[i] = p - f + serial_at;
		p += len;
	}
	*flen = p - f;
	return f;
}

/* Read one whole ClientHello (its content does not matter here). 0, or -1. */
static int read_hello(int fd)
{
	unsigned char hdr[5], buf[MAX_RECORD + 256];
	size_t have = 0, want = 0;

	do {
		size_t n, got = 0;

		while (got < 5) {
			ssize_t r = read(fd, hdr + got, 5 - got);

			if (r <= 0)
				return -1;
			got += r;
		}
		if (hdr[0] != 22)
			return -1;
		n = hdr[3] << 8 | hdr[4];
		if (n > MAX_RECORD + 256)
			return -1;
		for (got = 0; got < n;) {
			ssize_t r = read(fd, buf + got, n - got);

			if (r <= 0)
				return -1;
			got += r;
		}
		if (!have && (n < 4 || buf[0] != 1))
			return -1;
		if (!have)
			want = 4 + ((size_t)buf[1] << 16 | buf[2] << 8 | buf[3]);
		have += n;
	} while (have < want);
	return 0;
}

/* The flight in plaintext handshake records of at most 16 KiB. */
static int send_records(int fd, const unsigned char *f, size_t flen)
{
	unsigned char hdr[5] = { 22, 3, 3 };
	size_t off;

	for (off = 0; off < flen; off += MAX_RECORD) {
		size_t n = flen - off < MAX_RECORD ? flen - off : MAX_RECORD;

		hdr[3] = n >> 8;
		hdr[4] = n;
		if (write(fd, hdr, 5) != 5 || write(fd, f + off, n) != (ssize_t)n)
			return -1;
	}
	return 0;
}

static int server(int argc, char **argv)
{
	int workers, ncerts, size, len, serial_at, lfd, one = 1, w;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct timeval tmo = { .tv_sec = 5 };
	size_t flen, serials[MAX_CERTS];
	socklen_t slen = sizeof(sin);
	unsigned char *der, *flight;
	char tmp[4096], sink[4096];
	pid_t first;
	FILE *f;

	if (argc != 6)
		die("usage: cert_flood server PORT_FILE WORKERS CERTS SIZE");
	workers = atoi(argv[3]);
	ncerts = atoi(argv[4]);
	size = atoi(argv[5]);
	if (workers < 1 || ncerts < 1 || ncerts > MAX_CERTS || size < 100)
		die("bad WORKERS, CERTS or SIZE");
	der = make_template(size, &len, &serial_at);
	flight = make_flight(der, len, serial_at, ncerts, &flen, serials);

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 1024) ||
	    getsockname(lfd, (struct sockaddr *)&sin, &slen))
		die("cannot listen on 127.0.0.1");
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[2]);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%u\n", ntohs(sin.sin_port)) < 0 || fclose(f) || rename(tmp, argv[2]))
		die("cannot write the port file");
	signal(SIGPIPE, SIG_IGN);
	first = getpid();
	for (w = 1; w < workers; w++) {
		if (fork() == 0) {
			/* a worker goes with the process the test started and stops */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != first)
				_exit(0);
			break;
		}
	}
	if (w == workers)
		w = 0;
	/* each worker its own range of serials */
	for (unsigned long long seq = (unsigned long long)w << 40;;) {
		int c = accept(lfd, NULL, NULL), i, j;

		if (c < 0)
			continue;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
		for (i = 0; i < ncerts; i++)
			for (seq++, j = 1; j < SERIAL_LEN; j++)
				flight[serials[i] + j] = (unsigned char)(seq >> (8 * (SERIAL_LEN - 1 - j)));
		/* then the end of the stream, and whatever the client says until it closes */
		if (read_hello(c) == 0 && send_records(c, flight, flen) == 0 && shutdown(c, SHUT_WR) == 0)
			while (read(c, sink, sizeof(sink)) > 0)
				;
		close(c);
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int client(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	unsigned long *shared;
	double deadline;
	int procs, p;
	SSL_CTX *ctx;

	if (argc != 5)
		die("usage: cert_flood client PORT SECONDS PROCS");
	sin.sin_port = htons(atoi(argv[2]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	deadline = now_s() + atof(argv[3]);
	procs = atoi(argv[4]);
	shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ctx = SSL_CTX_new(TLS_client_method());
	if (shared == MAP_FAILED || !ctx || procs < 1)
		die("setup failed");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_max_cert_list(ctx, 16 << 20);
	for (p = 0; p < procs; p++) {
		if (fork() != 0)
			continue;
		prctl(PR_SET_PDEATHSIG, SIGKILL);	/* stopped with the process the test started */
		while (now_s() < deadline) {
			int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
			SSL *ssl = SSL_new(ctx);
			STACK_OF(X509) *chain;

			if (fd < 0 || !ssl)
				die("no socket or SSL");
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
			    SSL_set_tlsext_host_name(ssl, "flood.test") && SSL_set_fd(ssl, fd)) {
				SSL_connect(ssl);	/* fails after the chain: the server stops there */
				__sync_fetch_and_add(&shared[0], 1);
				chain = SSL_get_peer_cert_chain(ssl);
				if (chain && sk_X509_num(chain) > 0) {
					__sync_fetch_and_add(&shared[1], 1);
					__sync_fetch_and_add(&shared[2], sk_X509_num(chain));
				}
			}
			ERR_clear_error();
			SSL_free(ssl);
			close(fd);
		}
		_exit(0);
	}
	while (wait(NULL) > 0)
		;
	printf("connections %lu chains %lu certificates %lu\n", shared[0], shared[1], shared[2]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "server"))
		return server(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "client"))
		return client(argc, argv);
	die("usage: cert_flood server PORT_FILE WORKERS CERTS SIZE | client PORT SECONDS PROCS");
	return 1;
}
