/*
 * File and error plumbing shared by the certs/ sources: the OpenSSL error
 * drain, staged (write-then-rename) output files and CA loading.
 *
 * Every output goes to a temporary file created with its final mode in the
 * destination directory, is fsync'd, and only then moved into place, so a
 * reader (the gateway reloading ca.crl, say) never sees half a file and a
 * failed call leaves earlier files as they were.  Private keys are created
 * 0600 from the start, never chmod'ed afterwards.  Stateless; CLI main thread.
 */
#include "md_certs_io.h"
#include "md_crypto.h"
#include "md_err.h"
#include "md_log.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
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

int md_certs_write_key(FILE *f, const void *obj)
{
    return PEM_write_PrivateKey(f, (EVP_PKEY *)obj, NULL, NULL, 0, NULL, NULL);
}

int md_certs_write_cert(FILE *f, const void *obj)
{
    return PEM_write_X509(f, (X509 *)obj);
}

int md_certs_write_chain(FILE *f, const void *obj)
{
    X509 *const *pair = obj;
    return PEM_write_X509(f, pair[0]) && PEM_write_X509(f, pair[1]);
}

int md_certs_write_crl(FILE *f, const void *obj)
{
    return PEM_write_X509_CRL(f, (X509_CRL *)obj);
}

int md_certs_write_p12(FILE *f, const void *obj)
{
    return i2d_PKCS12_fp(f, (PKCS12 *)obj);
}

static int ensure_parent_dir(const char *path)
{
    g_autofree char *dir = g_path_get_dirname(path);
    /* 0700: the same directories hold private keys. */
    if (g_mkdir_with_parents(dir, 0700) < 0)
        return -errno;
    return 0;
}

/* Makes a rename or link durable before we report success. */
static int sync_parent_dir(const char *path)
{
    g_autofree char *dir = g_path_get_dirname(path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return r;
}

int md_certs_stage_write(md_certs_staged *s, const char *path, mode_t mode, md_certs_writer writer,
                         const void *obj)
{
    char *tmp = g_strconcat(path, ".XXXXXX", NULL);
    bool created = false;
    FILE *f = NULL;
    int r = ensure_parent_dir(path);
    if (r < 0)
        goto out;
    int fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, (int)mode);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    created = true;
    f = fdopen(fd, "w");
    if (!f) {
        r = -errno;
        close(fd);
        goto out;
    }
    if (!writer(f, obj)) {
        r = ferror(f) ? -EIO : md_certs_crypto_error("write_file");
        goto out;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        r = -errno;
        goto out;
    }
    int closed = fclose(f);
    f = NULL;
    if (closed != 0) {
        r = -errno;
        goto out;
    }
    s->path = g_strdup(path);
    s->tmp = tmp;
    tmp = NULL;
out:
    if (f)
        fclose(f);
    if (tmp && created)
        unlink(tmp);
    g_free(tmp);
    return r;
}

int md_certs_stage_commit(md_certs_staged *s, bool replace)
{
    if (replace) {
        if (rename(s->tmp, s->path) < 0)
            return -errno;
    } else {
        if (link(s->tmp, s->path) < 0)
            return -errno;
        unlink(s->tmp);
    }
    g_clear_pointer(&s->tmp, g_free);
    return sync_parent_dir(s->path);
}

void md_certs_stage_clear(md_certs_staged *s)
{
    if (s->tmp)
        unlink(s->tmp);
    g_clear_pointer(&s->tmp, g_free);
    g_clear_pointer(&s->path, g_free);
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
