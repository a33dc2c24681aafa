// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * mkcert: certificates the openssl CLI will not make, for tests/hostile.bats,
 * compiled at test time (cc mkcert.c -lcrypto). Names and SANs are given as hex
 * and stored as they are (no UTF-8 check, no escaping), so that a test can put
 * NUL, newlines, quotes, backslashes and invalid UTF-8 into a certificate, and
 * --size makes a certificate of an exact DER length.
 *
 *   mkcert --key PEM --out PEM [--issuer-cert PEM --issuer-key PEM]
 *          [--cn HEX] [--o HEX] [--ou TYPE:HEX]... [--dns HEX]... [--email HEX]...
 *          [--uri HEX]...
 *          [--ca] [--serial N] [--size BYTES] [--ber-tbs]
 *
 * --key: the certificate's key pair (its public half is certified; without
 * --issuer-* the certificate is self-signed with it). CN and O are UTF8Strings,
 * SANs IA5Strings, each holding exactly the bytes given. --size pads the SAN
 * list with DNS names under pad.invalid until the DER is exactly BYTES long.
 * --ber-tbs writes the tbsCertificate's own length in a longer form than DER
 * allows (30 83 00 LL LL: BER, which OpenSSL reads) and signs those bytes, so
 * that the certificate still verifies; --size then counts the DER form.
 * Prints the length of what it wrote. Exit 0, or 1 with a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define MAX_SANS 64

struct san {
	int type;		/* GEN_DNS, GEN_EMAIL, GEN_URI */
	unsigned char *v;
	size_t len;
};

static void die(const char *what)
{
	fprintf(stderr, "mkcert: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static unsigned char *unhex(const char *s, size_t *len)
{
	size_t n = strlen(s), i;
	unsigned char *b;

	if (n % 2)
		die("odd number of hex digits");
	b = malloc(n / 2 + 1);
	if (!b)
		die("out of memory");
	for (i = 0; i < n / 2; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			die("not hex");
		b[i] = (unsigned char)v;
	}
	*len = n / 2;
	return b;
}

static EVP_PKEY *read_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;

	if (!f)
		die("cannot open a key file");
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!k)
		die("cannot read a private key");
	return k;
}

static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	if (!f)
		die("cannot open the issuer certificate");
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x)
		die("cannot read the issuer certificate");
	return x;
}

static void add_name(X509_NAME *n, int nid, int type, const unsigned char *v, size_t len)
{
	/* V_ASN1_*, not MBSTRING_*: the bytes are stored unchecked */
	if (!X509_NAME_add_entry_by_NID(n, nid, type, v, (int)len, -1, 0))
		die("X509_NAME_add_entry_by_NID");
}

struct ou {
	int type;		/* V_ASN1_* */
	unsigned char *v;
	size_t len;
};

static int string_type(const char *name)
{
	static const struct {
		const char *name;
		int type;
	} types[] = {
		{ "utf8", V_ASN1_UTF8STRING }, { "t61", V_ASN1_T61STRING },
		{ "bmp", V_ASN1_BMPSTRING }, { "universal", V_ASN1_UNIVERSALSTRING },
		{ "printable", V_ASN1_PRINTABLESTRING }, { "ia5", V_ASN1_IA5STRING },
	};
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(name, types[i].name))
			return types[i].type;
	die("--ou: unknown string type (utf8, t61, bmp, universal, printable, ia5)");
	return 0;
}

static void add_gen(GENERAL_NAMES *gens, int type, const unsigned char *v, size_t len)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	if (!g || !s || !ASN1_STRING_set(s, v, (int)len))
		die("GENERAL_NAME");
	GENERAL_NAME_set0_value(g, type, s);
	if (!sk_GENERAL_NAME_push(gens, g))
		die("sk_GENERAL_NAME_push");
}

struct spec {
	EVP_PKEY *key, *issuer_key;
	X509 *issuer;
	unsigned char *cn, *o;
	size_t cn_len, o_len;
	struct ou ous[MAX_SANS];
	int nous;
	struct san sans[MAX_SANS];
	int nsans;
	int ca;
	long serial;
};

/* DER header of a TLV of `len` (< 16 MiB) value bytes */
static int hdr_len(int len)
{
	return len < 0x80 ? 2 : len < 0x100 ? 3 : len < 0x10000 ? 4 : 5;
}

static unsigned char *put_hdr(unsigned char *p, unsigned char tag, int len)
{
	int n = hdr_len(len) - 2, i;

	*p++ = tag;
	if (!n) {
		*p++ = (unsigned char)len;
		return p;
	}
	*p++ = (unsigned char)(0x80 | n);
	for (i = n - 1; i >= 0; i--)
		*p++ = (unsigned char)(len >> (8 * i));
	return p;
}

/*
 * x re-signed over a BER tbsCertificate: its header 30 82 LL LL becomes
 * 30 83 00 LL LL. OpenSSL keeps the bytes it read and verifies the signature
 * over them, so the certificate is as valid as before; a strict DER reader
 * refuses it. Returns the certificate's bytes (malloc'ed) in *out.
 */
static int ber_tbs(X509 *x, EVP_PKEY *signer, unsigned char **out)
{
	unsigned char *tbs = NULL, *alg = NULL, *sig = NULL, *ber, *c, *p;
	int tbs_len = i2d_re_X509_tbs(x, &tbs), alg_len, bits, body, len;
	const X509_ALGOR *sigalg = NULL;
	size_t sig_len = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (tbs_len < 4 || tbs[0] != 0x30 || tbs[1] != 0x82)
		die("--ber-tbs: the tbsCertificate is not 256 bytes to 64 KiB long");
	ber = malloc((size_t)tbs_len + 1);
	if (!ber || !md)
		die("out of memory");
	ber[0] = 0x30;
	ber[1] = 0x83;
	ber[2] = 0;
	memcpy(ber + 3, tbs + 2, (size_t)tbs_len - 2);
	X509_get0_signature(NULL, &sigalg, x);
	alg_len = i2d_X509_ALGOR(sigalg, &alg);
	if (alg_len <= 0 ||
	    EVP_DigestSignInit(md, NULL, EVP_PKEY_get_id(signer) == EVP_PKEY_ED25519 ? NULL :
				EVP_sha256(), NULL, signer) != 1 ||
	    EVP_DigestSign(md, NULL, &sig_len, ber, (size_t)tbs_len + 1) != 1 ||
	    !(sig = malloc(sig_len)) ||
	    EVP_DigestSign(md, sig, &sig_len, ber, (size_t)tbs_len + 1) != 1)
		die("--ber-tbs: cannot sign");
	/* SEQUENCE { tbs, algorithm, BIT STRING { 0 unused bits, signature } }, the rest DER */
	bits = 1 + (int)sig_len;
	body = tbs_len + 1 + alg_len + hdr_len(bits) + bits;
	len = hdr_len(body) + body;
	c = p = malloc((size_t)len);
	if (!c)
		die("out of memory");
	p = put_hdr(p, 0x30, body);
	memcpy(p, ber, (size_t)tbs_len + 1);
	p += tbs_len + 1;
	memcpy(p, alg, (size_t)alg_len);
	p += alg_len;
	p = put_hdr(p, 0x03, bits);
	*p++ = 0;
	memcpy(p, sig, sig_len);
	OPENSSL_free(tbs);
	OPENSSL_free(alg);
	free(ber);
	free(sig);
	EVP_MD_CTX_free(md);
	*out = c;
	return len;
}

/* One certificate, with `pad` bytes of padding names in its SAN list. */
static X509 *build(const struct spec *sp, long pad)
{
	X509 *x = X509_new();
	X509_NAME *subj = X509_NAME_new();
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
	int i, n = 0;

	if (!x || !subj || !gens || !bc)
		die("out of memory");
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), sp->serial);
	if (sp->o)
		add_name(subj, NID_organizationName, V_ASN1_UTF8STRING, sp->o, sp->o_len);
	for (i = 0; i < sp->nous; i++)
		add_name(subj, NID_organizationalUnitName, sp->ous[i].type, sp->ous[i].v, sp->ous[i].len);
	if (sp->cn)
		add_name(subj, NID_commonName, V_ASN1_UTF8STRING, sp->cn, sp->cn_len);
	/* OpenSSL re-reads the name here: it refuses what it could not read back either
	 * (a UTF8String that is not UTF-8, say) */
	if (!X509_set_subject_name(x, subj) ||
	    !X509_set_issuer_name(x, sp->issuer ? X509_get_subject_name(sp->issuer) : subj))
		die("OpenSSL refuses this name (it would not read it back)");
	X509_gmtime_adj(X509_getm_notBefore(x), -86400);
	X509_gmtime_adj(X509_getm_notAfter(x), 30 * 86400);
	if (!X509_set_pubkey(x, sp->key))
		die("X509_set_pubkey");
	bc->ca = sp->ca ? 0xff : 0;
	if (!X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT))
		die("basicConstraints");
	for (i = 0; i < sp->nsans; i++)
		add_gen(gens, sp->sans[i].type, sp->sans[i].v, sp->sans[i].len);
	/* padding: names of at most 63 + 12 bytes, the last one cut to fit */
	while (pad > 0) {
		char name[96];
		long want = pad > 75 ? 75 : pad;
		int len;

		/* never leave a remainder too small for a name of its own */
		if (pad > 75 && pad - 75 < 4)
			want = pad - 4;

		len = snprintf(name, sizeof(name), "p%d.pad.invalid", n++);
		while (len < want)
			name[len++] = 'x';
		/* each name costs 2 bytes of header besides its length */
		len = want > 2 + 1 ? (int)want - 2 : 1;
		add_gen(gens, GEN_DNS, (unsigned char *)name, (size_t)len);
		pad -= len + 2;
	}
	if (sk_GENERAL_NAME_num(gens) &&
	    !X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT))
		die("subjectAltName");
	if (!X509_sign(x, sp->issuer_key ? sp->issuer_key : sp->key,
		       EVP_PKEY_get_id(sp->issuer_key ? sp->issuer_key : sp->key) == EVP_PKEY_ED25519 ?
		       NULL : EVP_sha256()))
		die("X509_sign");
	X509_NAME_free(subj);
	GENERAL_NAMES_free(gens);
	BASIC_CONSTRAINTS_free(bc);
	return x;
}

int main(int argc, char **argv)
{
	struct spec sp = { .serial = 1 };
	const char *out = NULL, *issuer_cert = NULL, *issuer_key = NULL, *key = NULL;
	long size = 0, pad = 0;
	X509 *x = NULL;
	FILE *f;
	int i, len = 0, tries, ber = 0;
	unsigned char *ber_der = NULL;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int type = 0;

		if (!strcmp(a, "--ca")) {
			sp.ca = 1;
			continue;
		}
		if (!strcmp(a, "--ber-tbs")) {
			ber = 1;
			continue;
		}
		if (!v)
			die("an option lacks its value (see the comment at the top of mkcert.c)");
		i++;
		if (!strcmp(a, "--key"))
			key = v;
		else if (!strcmp(a, "--out"))
			out = v;
		else if (!strcmp(a, "--issuer-cert"))
			issuer_cert = v;
		else if (!strcmp(a, "--issuer-key"))
			issuer_key = v;
		else if (!strcmp(a, "--cn"))
			sp.cn = unhex(v, &sp.cn_len);
		else if (!strcmp(a, "--o"))
			sp.o = unhex(v, &sp.o_len);
		else if (!strcmp(a, "--ou")) {
			const char *colon = strchr(v, ':');
			char tname[16];

			if (!colon || colon - v >= (long)sizeof(tname) || sp.nous == MAX_SANS)
				die("--ou TYPE:HEX");
			memcpy(tname, v, (size_t)(colon - v));
			tname[colon - v] = 0;
			sp.ous[sp.nous].type = string_type(tname);
			sp.ous[sp.nous].v = unhex(colon + 1, &sp.ous[sp.nous].len);
			sp.nous++;
		}
		else if (!strcmp(a, "--serial"))
			sp.serial = atol(v);
		else if (!strcmp(a, "--size"))
			size = atol(v);
		else if (!strcmp(a, "--dns"))
			type = GEN_DNS;
		else if (!strcmp(a, "--email"))
			type = GEN_EMAIL;
		else if (!strcmp(a, "--uri"))
			type = GEN_URI;
		else
			die("unknown option (see the comment at the top of mkcert.c)");
		if (type) {
			if (sp.nsans == MAX_SANS)
				die("too many SANs");
			sp.sans[sp.nsans].type = type;
			sp.sans[sp.nsans].v = unhex(v, &sp.sans[sp.nsans].len);
			sp.nsans++;
		}
	}
	if (!key || !out || !issuer_cert != !issuer_key)
		die("usage: mkcert --key PEM --out PEM [--issuer-cert PEM --issuer-key PEM] ...");
	sp.key = read_key(key);
	if (issuer_cert) {
		sp.issuer = read_cert(issuer_cert);
		sp.issuer_key = read_key(issuer_key);
	}
	/* the DER length moves with the padding, give or take a length byte or an ECDSA
	 * signature one byte shorter: converge by steps */
	for (tries = 0; tries < 200; tries++) {
		X509_free(x);
		x = build(&sp, pad);
		len = i2d_X509(x, NULL);
		if (len <= 0)
			die("i2d_X509");
		if (!size || len == size)
			break;
		pad += size - len > 0 ? (size - len > 8 ? size - len : 1) : -1;
		if (pad < 0)
			die("--size is smaller than the certificate without padding");
	}
	if (size && len != size)
		die("could not reach the --size asked for");
	if (ber) {
		const unsigned char *q;
		X509 *check;

		len = ber_tbs(x, sp.issuer_key ? sp.issuer_key : sp.key, &ber_der);
		/* what a TLS peer will do with it: parse it, and its signature holds */
		q = ber_der;
		check = d2i_X509(NULL, &q, len);
		if (!check || q != ber_der + len ||
		    X509_verify(check, sp.issuer ? X509_get0_pubkey(sp.issuer) : sp.key) != 1)
			die("--ber-tbs: OpenSSL does not accept the result");
		X509_free(check);
	}
	f = fopen(out, "w");
	if (!f || !(ber ? PEM_write(f, "CERTIFICATE", "", ber_der, len) : PEM_write_X509(f, x)) ||
	    fclose(f))
		die("cannot write the certificate");
	printf("%d\n", len);
	free(ber_der);
	X509_free(x);
	return 0;
}
