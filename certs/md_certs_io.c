/*
 * File and error plumbing shared by the certs/ sources: the OpenSSL error
 * drain, the writers of keys, certificates and CRLs, staged output files and
 * CA loading.
 *
 * Every output is staged with core/md_durable (a temporary file beside the
 * final path, fsync'd, then moved into place and the directory fsync'd), so a
 * reader (the gateway reloading ca.crl, say) never sees half a file and a
 * failed call leaves earlier files as they were.  Private keys are never
 * readable by others, not even for a moment.  Stateless; CLI main thread.
 */
#include "md_certs_io.h"
#include "md_crypto.h"
#include "md_err.h"
#include "md_log.h"

#include <errno.h>
#include <glib.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <unistd.h>

int md_certs_crypto_error(const char *op)
{
    char errors[512];
    md_crypto_drain_errors(errors, sizeof(errors));
    md_debug("certs", "openssl_failed", "{s:s, s:s}", "op", op, "errors", errors);
    return -MD_E_CRYPTO;
}

/* A PEM or DER writer's verdict: the stream's own error, or OpenSSL's. */
static int written(FILE *f, int ok)
{
    if (ok)
        return 0;
    return ferror(f) ? -EIO : md_certs_crypto_error("write_file");
}

int md_certs_write_key(FILE *f, const void *obj)
{
    return written(f, PEM_write_PrivateKey(f, (EVP_PKEY *)obj, NULL, NULL, 0, NULL, NULL));
}

int md_certs_write_cert(FILE *f, const void *obj)
{
    return written(f, PEM_write_X509(f, (X509 *)obj));
}

int md_certs_write_chain(FILE *f, const void *obj)
{
    X509 *const *pair = obj;
    return written(f, PEM_write_X509(f, pair[0]) && PEM_write_X509(f, pair[1]));
}

int md_certs_write_crl(FILE *f, const void *obj)
{
    return written(f, PEM_write_X509_CRL(f, (X509_CRL *)obj));
}

int md_certs_write_p12(FILE *f, const void *obj)
{
    return written(f, i2d_PKCS12_fp(f, (PKCS12 *)obj));
}

int md_certs_stage(md_durable *d, const char *path, mode_t mode, md_durable_writer writer,
                   const void *obj)
{
    g_autofree char *dir = g_path_get_dirname(path);
    /* 0700: the same directories hold private keys. */
    if (g_mkdir_with_parents(dir, 0700) < 0)
        return -errno;
    return md_durable_stage(d, path, mode, writer, obj);
}

/* Keys are never encrypted on disk (file mode protects them); refuse a
 * passphrase prompt instead of blocking a daemon on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

/* Opens path for reading.  Returns -errno for file errors so the CLI can tell
 * "no CA yet" (-ENOENT) from a broken one (-MD_E_CRYPTO). */
static int load_cert(const char *path, X509 **ret)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    X509 *x = PEM_read_X509(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (!x)
        return md_certs_crypto_error("read_certificate");
    *ret = x;
    return 0;
}

static int load_key(const char *path, EVP_PKEY **ret)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (!k)
        return md_certs_crypto_error("read_private_key");
    *ret = k;
    return 0;
}

int md_certs_load_ca(const char *cert_path, const char *key_path, X509 **ret_cert,
                     EVP_PKEY **ret_key)
{
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int r = load_cert(cert_path, &cert);
    if (r < 0)
        goto out;
    r = load_key(key_path, &key);
    if (r < 0)
        goto out;
    if (X509_check_private_key(cert, key) != 1) {
        r = md_certs_crypto_error("ca_key_mismatch");
        goto out;
    }
    if (X509_check_ca(cert) < 1) {
        r = md_certs_crypto_error("ca_not_a_ca");
        goto out;
    }
    *ret_cert = cert;
    *ret_key = key;
    cert = NULL;
    key = NULL;
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    return r;
}
