/*
 * Internal to certs/: the OpenSSL error drain, the file writers, staged
 * output files and CA loading shared by md_certs.c.  Not installed, not for
 * other folders.
 */
#ifndef MD_CERTS_IO_H
#define MD_CERTS_IO_H

#include "md_durable.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <sys/types.h>

/* Drains the whole OpenSSL error queue into one debug log line (so a stale
 * entry never blames a later call) and returns -MD_E_CRYPTO. */
int md_certs_crypto_error(const char *op);

/* Writers for md_durable_stage: 0, -EIO or -MD_E_CRYPTO. */
int md_certs_write_key(FILE *f, const void *obj);   /* EVP_PKEY, PKCS#8 PEM, unencrypted */
int md_certs_write_cert(FILE *f, const void *obj);  /* X509 PEM */
int md_certs_write_chain(FILE *f, const void *obj); /* X509 *[2]: leaf then CA, as TLS sends it */
int md_certs_write_crl(FILE *f, const void *obj);   /* X509_CRL PEM */
int md_certs_write_p12(FILE *f, const void *obj);   /* PKCS12 DER */

/* md_durable_stage(), creating missing parent directories 0700 first.  The
 * caller moves the file into place with md_durable_commit() and frees it with
 * md_durable_clear(). */
int md_certs_stage(md_durable *d, const char *path, mode_t mode, md_durable_writer writer,
                   const void *obj);

/* Loads the CA and checks that the key belongs to the certificate and that the
 * certificate is a CA, so a swapped file fails here and not at a tablet.
 * -errno for file errors (-ENOENT: no CA yet), -MD_E_CRYPTO for bad contents. */
int md_certs_load_ca(const char *cert_path, const char *key_path, X509 **ret_cert,
                     EVP_PKEY **ret_key);

#endif
