/*
 * Internal to certs/: the OpenSSL error drain, staged output files and CA
 * loading shared by md_certs.c.  Not installed, not for other folders.
 */
#ifndef MD_CERTS_IO_H
#define MD_CERTS_IO_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

/* Drains the whole OpenSSL error queue into one debug log line (so a stale
 * entry never blames a later call) and returns -MD_E_CRYPTO. */
int md_certs_crypto_error(const char *op);

/* A file written under a temporary name beside its final path. */
typedef struct md_certs_staged {
    char *path;
    char *tmp;
} md_certs_staged;

/* Serialises obj to f; OpenSSL style: 1 ok, 0 failed. */
typedef int (*md_certs_writer)(FILE *f, const void *obj);
int md_certs_write_key(FILE *f, const void *obj);   /* EVP_PKEY, PKCS#8 PEM, unencrypted */
int md_certs_write_cert(FILE *f, const void *obj);  /* X509 PEM */
int md_certs_write_chain(FILE *f, const void *obj); /* X509 *[2]: leaf then CA, as TLS sends it */
int md_certs_write_crl(FILE *f, const void *obj);   /* X509_CRL PEM */
int md_certs_write_p12(FILE *f, const void *obj);   /* PKCS12 DER */

/* Writes obj to a fresh temporary file created with mode (so a key is never
 * readable by others, even for a moment), creating missing parent directories
 * 0700, and fsyncs it.  On success *s owns the temporary file. */
int md_certs_stage_write(md_certs_staged *s, const char *path, mode_t mode, md_certs_writer writer,
                         const void *obj);
/* Moves a staged file into place and syncs the directory.  Without replace an
 * existing file wins (-EEXIST): link(2) fails where rename(2) would overwrite. */
int md_certs_stage_commit(md_certs_staged *s, bool replace);
/* Removes the temporary file if not committed; frees; safe on a zeroed struct. */
void md_certs_stage_clear(md_certs_staged *s);

/* Loads the CA and checks that the key belongs to the certificate and that the
 * certificate is a CA, so a swapped file fails here and not at a tablet.
 * -errno for file errors (-ENOENT: no CA yet), -MD_E_CRYPTO for bad contents. */
int md_certs_load_ca(const char *cert_path, const char *key_path, X509 **ret_cert,
                     EVP_PKEY **ret_key);

#endif
