/*
 * DTLS-SRTP over OpenSSL (RFC 5763, RFC 5764, RFC 6347): DTLS 1.2 with an
 * ECDSA P-256 self-signed certificate, over memory BIOs so the ICE transport
 * carries the datagrams.  An md_dtls_identity (certificate, key, SSL_CTX and
 * SHA-256 fingerprint) is made once per process or md_media and is read-only
 * afterwards, so any thread may create connections from it.  An md_dtls is one
 * association of one leg; it lives on that leg's worker thread, arms its
 * retransmission timer on the GMainContext given and calls back on it.
 * The peer certificate is checked during the handshake against the
 * fingerprints of the offer (RFC 8122 5); a mismatch aborts the handshake
 * with a bad_certificate alert and -MD_E_FINGERPRINT_MISMATCH.
 */
#ifndef MD_DTLS_H
#define MD_DTLS_H

#include "md_sdp.h"
#include "md_srtp.h"

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct md_dtls_identity md_dtls_identity;

/* Generates a fresh key and certificate (CN "madoguchi", valid 30 days). */
int md_dtls_identity_new(md_dtls_identity **ret);
md_dtls_identity *md_dtls_identity_ref(md_dtls_identity *id);
md_dtls_identity *md_dtls_identity_unref(md_dtls_identity *id);
/* "sha-256 AB:CD:..." for a=fingerprint (RFC 8122 5). */
const char *md_dtls_identity_fingerprint(const md_dtls_identity *id);

typedef enum md_dtls_role { MD_DTLS_SERVER, MD_DTLS_CLIENT } md_dtls_role;

/* Keys for the two SRTP directions as seen from this endpoint (RFC 5764 4.2). */
typedef struct md_dtls_keys {
    md_srtp_profile profile;
    uint8_t local_key[MD_SRTP_MAX_KEY_LEN], local_salt[MD_SRTP_MAX_SALT_LEN];
    uint8_t remote_key[MD_SRTP_MAX_KEY_LEN], remote_salt[MD_SRTP_MAX_SALT_LEN];
} md_dtls_keys;

typedef struct md_dtls_callbacks {
    /* A datagram to send to the peer. */
    void (*send)(const uint8_t *buf, size_t len, void *ud);
    /* Handshake done and peer verified; keys are wiped after the call. */
    void (*on_connected)(const md_dtls_keys *keys, void *ud);
    /* Handshake failed or the peer closed: error is negative, detail short text. */
    void (*on_failed)(int error, const char *detail, void *ud);
    /* Nullable.  One decrypted application-data record after the handshake
     * (SCTP for data channels, RFC 8261 3); buf is valid during the call.  It
     * may call md_dtls_send_data() but not md_dtls_free(). */
    void (*on_data)(const uint8_t *buf, size_t len, void *ud);
} md_dtls_callbacks;

typedef struct md_dtls md_dtls;

typedef struct md_dtls_options {
    md_dtls_role role;
    unsigned initial_timeout_ms; /* first retransmit timeout, doubled up to 4 s */
    unsigned mtu;                /* DTLS record payload limit; 0 = 1200 */
    bool require_gcm;            /* offer only SRTP_AEAD_AES_128_GCM */
} md_dtls_options;

/* expected: the offer's fingerprints (n >= 1).  Callbacks run on ctx, never
 * from inside md_dtls_new(). */
int md_dtls_new(md_dtls_identity *id, const md_dtls_options *opt,
                const md_sdp_fingerprint *expected, size_t n_expected, GMainContext *ctx,
                const md_dtls_callbacks *cb, void *ud, md_dtls **ret);
/* Client: sends the ClientHello.  Server: nothing to do. */
int md_dtls_start(md_dtls *d);
/* A datagram from the peer (first byte 20..63).  May call back. */
int md_dtls_feed(md_dtls *d, const uint8_t *buf, size_t len);
bool md_dtls_connected(const md_dtls *d);
/* Encrypts buf as one application-data record (RFC 8261 3: one SCTP packet
 * per DTLS record) and sends it through the send callback.  -ENOTCONN before
 * the handshake, -MD_E_DTLS_FAILED after a failure, -EMSGSIZE above 16 KiB. */
int md_dtls_send_data(md_dtls *d, const uint8_t *buf, size_t len);
/* Must not be called from inside one of d's callbacks. */
md_dtls *md_dtls_free(md_dtls *d);

#endif
