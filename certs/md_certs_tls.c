/*
 * The OpenSSL side of the TLS listeners (contract in md_certs_tls.h; the
 * identity rules in docs/internals/certs.md).  Stateless; control thread.
 */
#include "md_certs_tls.h"
#include "md_crypto.h"
#include "md_err.h"

#include <errno.h>
#include <glib.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdlib.h>
#include <string.h>

void md_certs_tls_set_min_version(void *ssl_ctx, const char *min_version)
{
    int min = strcmp(min_version, "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(ssl_ctx, min);
}

void md_certs_tls_release_idle_buffers(void *ssl_ctx)
{
    SSL_CTX_set_mode(ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
}

int md_certs_tls_load_crl(void *ssl_ctx, const char *crl_path, char *err, size_t err_cap)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ssl_ctx);
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    if (!g_file_test(crl_path, G_FILE_TEST_EXISTS))
        return -ENOENT;
    if (X509_STORE_load_file(store, crl_path) != 1) {
        md_crypto_drain_errors(err, err_cap);
        return -MD_E_CRYPTO;
    }
    return 0;
}

int md_certs_tls_peer_read(const void *ssl, md_certs_tls_peer *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (!ssl)
        return -EINVAL;
    g_strlcpy(ret->tls_version, SSL_get_version(ssl), sizeof(ret->tls_version));
    X509 *peer = SSL_get1_peer_certificate(ssl);
    if (!peer)
        return 0;
    ret->has_cert = true;
    /* The handshake already refused invalid certificates; be explicit anyway. */
    if (SSL_get_verify_result(ssl) == X509_V_OK &&
        md_certs_device_identity(peer, &ret->device_id, &ret->post_office) == 0)
        md_certs_binding(peer, &ret->serial, ret->sha256);
    X509_free(peer);
    return 0;
}

void md_certs_tls_refusal_read(const void *store_ctx, const void *ssl, md_certs_tls_refusal *ret)
{
    X509_STORE_CTX *ctx = (X509_STORE_CTX *)store_ctx;
    int err = X509_STORE_CTX_get_error(ctx);
    X509 *cert = X509_STORE_CTX_get_current_cert(ctx);
    char *post_office = NULL;
    memset(ret, 0, sizeof(*ret));
    if (cert)
        md_certs_device_identity(cert, &ret->device_id, &post_office);
    free(post_office);
    ret->fd = ssl ? SSL_get_fd(ssl) : -1;
    ret->code =
        err == X509_V_ERR_UNABLE_TO_GET_CRL ? -MD_E_CRL_UNAVAILABLE : -MD_E_DEVICE_CERT_INVALID;
    ret->reason = X509_verify_cert_error_string(err);
}
