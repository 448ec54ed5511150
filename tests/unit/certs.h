/* Certificates for the unit tests that run TLS in certificate mode: a CA
 * and one certificate per node (its name as the DNS subjectAltName), made
 * with OpenSSL in a fresh temporary directory as PEM files.  Header-only,
 * for the test files that need them. */
#ifndef BLKREP_UNIT_CERTS_H
#define BLKREP_UNIT_CERTS_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CERTS_MAX 8

struct certs {
	char dir[64];
	int n;
	char names[CERTS_MAX][64];
	char ca[128], cert[CERTS_MAX][128], key[CERTS_MAX][128];
};

static inline bool certs_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	bool ok;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ok = e && X509_add_ext(x, e, -1) == 1;
	X509_EXTENSION_free(e);
	return ok;
}

/* A certificate for key named cn, signed by issuer (NULL: self-signed, a
 * CA) with ikey. */
static inline X509 *certs_sign(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey,
			       long serial)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	char san[80];
	bool ok;

	snprintf(san, sizeof(san), "DNS:%s", cn);
	ok = x && name && X509_set_version(x, 2) == 1 &&
	     ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1 &&
	     X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
	     X509_gmtime_adj(X509_getm_notAfter(x), 86400) && X509_set_pubkey(x, key) == 1 &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
					0) == 1 &&
	     X509_set_subject_name(x, name) == 1 &&
	     X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) == 1 &&
	     (issuer ? certs_ext(x, issuer, NID_subject_alt_name, san) &&
			       certs_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE")
		     : certs_ext(x, NULL, NID_basic_constraints, "critical,CA:TRUE") &&
			       certs_ext(x, NULL, NID_key_usage, "critical,keyCertSign,cRLSign")) &&
	     X509_sign(x, ikey, EVP_sha256()) > 0;
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static inline bool certs_write(const char *path, X509 *x, EVP_PKEY *key)
{
	FILE *f = fopen(path, "w");
	bool ok = f && (x ? PEM_write_X509(f, x)
			  : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)) == 1;

	if (f)
		fclose(f);
	return ok;
}

/* A CA and a certificate for each of the n names; NULL on failure. */
static inline struct certs *certs_make(const char *const *names, int n)
{
	struct certs *c = calloc(1, sizeof(*c));
	EVP_PKEY *cakey = EVP_EC_gen("P-256");
	X509 *ca = cakey ? certs_sign(cakey, "blkrep test CA", NULL, cakey, 1) : NULL;
	bool ok = c && ca && n <= CERTS_MAX;

	if (ok) {
		snprintf(c->dir, sizeof(c->dir), "/tmp/blkrep-certs-XXXXXX");
		ok = mkdtemp(c->dir) != NULL;
		snprintf(c->ca, sizeof(c->ca), "%s/ca.pem", c->dir);
		ok = ok && certs_write(c->ca, ca, NULL);
	}
	for (int i = 0; ok && i < n; i++) {
		EVP_PKEY *k = EVP_EC_gen("P-256");
		X509 *x = k ? certs_sign(k, names[i], ca, cakey, 2 + i) : NULL;

		snprintf(c->names[i], sizeof(c->names[i]), "%s", names[i]);
		snprintf(c->cert[i], sizeof(c->cert[i]), "%s/%s.crt", c->dir, names[i]);
		snprintf(c->key[i], sizeof(c->key[i]), "%s/%s.key", c->dir, names[i]);
		ok = x && certs_write(c->cert[i], x, NULL) && certs_write(c->key[i], NULL, k);
		c->n = i + 1;
		X509_free(x);
		EVP_PKEY_free(k);
	}
	X509_free(ca);
	EVP_PKEY_free(cakey);
	if (!ok && c) {
		free(c);
		return NULL;
	}
	return c;
}

static inline int certs_index(const struct certs *c, const char *name)
{
	for (int i = 0; i < c->n; i++)
		if (strcmp(c->names[i], name) == 0)
			return i;
	return 0;
}

static inline const char *certs_ca(const struct certs *c)
{
	return c->ca;
}

static inline const char *certs_cert(const struct certs *c, const char *name)
{
	return c->cert[certs_index(c, name)];
}

static inline const char *certs_key(const struct certs *c, const char *name)
{
	return c->key[certs_index(c, name)];
}

/* Removes the files and frees c (NULL: nothing). */
static inline void certs_free(struct certs *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->n; i++) {
		unlink(c->cert[i]);
		unlink(c->key[i]);
	}
	unlink(c->ca);
	rmdir(c->dir);
	free(c);
}

#endif
