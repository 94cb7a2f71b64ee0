/*
 * The OpenSSL side of the TLS listeners (signaling/md_ws.c): the protocol
 * floor, the CRL in the device listener's store, the client certificate a
 * connection presented, and why the handshake refused one.
 *
 * libwebsockets hands its callbacks OpenSSL objects (SSL_CTX, SSL,
 * X509_STORE_CTX); the adapter passes them on here as opaque pointers, so
 * that OpenSSL stays inside certs/ and keeps out of signaling/.  Nothing here
 * logs: the adapter reports what it is told.  Control thread.
 */
#ifndef MD_CERTS_TLS_H
#define MD_CERTS_TLS_H

#include "md_certs.h"

#include <stdbool.h>
#include <stddef.h>

/* TLS 1.2 as the lowest version for min_version "1.2", TLS 1.3 otherwise. */
void md_certs_tls_set_min_version(void *ssl_ctx, const char *min_version);

/* An idle connection gives its record buffers back (SSL_MODE_RELEASE_BUFFERS):
 * staff consoles and tablets stay connected all day and mostly idle, and each
 * connection otherwise keeps a read and a write buffer of about 17 KiB. */
void md_certs_tls_release_idle_buffers(void *ssl_ctx);

/* Turns revocation checking on in the context's store (X509_V_FLAG_CRL_CHECK)
 * and loads crl_path into it.  Fails closed: the check stays on when there is
 * nothing to load, so every client certificate is then refused with
 * X509_V_ERR_UNABLE_TO_GET_CRL.  A newer CRL of the same CA supersedes an
 * older one in the store (OpenSSL picks the most recent valid CRL, RFC 5280
 * 6.3).  Returns 0; -ENOENT when the file is missing; -MD_E_CRYPTO when it is
 * unreadable or malformed (what was loaded before stays in force), with
 * OpenSSL's errors as one line in err (md_crypto_drain_errors). */
int md_certs_tls_load_crl(void *ssl_ctx, const char *crl_path, char *err, size_t err_cap);

/* What a connection's TLS session tells about its peer. */
typedef struct md_certs_tls_peer {
    char tls_version[16]; /* "TLSv1.3" */
    bool has_cert;        /* a client certificate was presented */
    /* Set only for a certificate that verified and names a device
     * (md_certs_device_identity); malloc'd, the caller frees. */
    char *device_id;
    char *post_office;
    char *serial;                             /* md_certs_binding; malloc'd, or NULL */
    char sha256[MD_CERTS_SHA256_HEX_LEN + 1]; /* md_certs_binding; "" when none */
} md_certs_tls_peer;

/* Fills *ret (zeroed first) from an established SSL connection.  Returns 0,
 * or -EINVAL without ssl (a plain connection). */
int md_certs_tls_peer_read(const void *ssl, md_certs_tls_peer *ret);

/* Why the handshake refuses a client certificate, read in the verify
 * callback (store_ctx is its X509_STORE_CTX, ssl its connection). */
typedef struct md_certs_tls_refusal {
    int code;           /* -MD_E_CRL_UNAVAILABLE without a CRL, else -MD_E_DEVICE_CERT_INVALID */
    const char *reason; /* OpenSSL's words for the verify error (static) */
    char *device_id;    /* the device the certificate names, malloc'd; NULL if none */
    int fd;             /* the connection's socket; -1 when unknown */
} md_certs_tls_refusal;

void md_certs_tls_refusal_read(const void *store_ctx, const void *ssl, md_certs_tls_refusal *ret);

#endif
