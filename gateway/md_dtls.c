/*
 * OpenSSL DTLS adapter (see md_dtls.h); the only gateway file that includes
 * <openssl/ssl.h>.  Records leave through a small BIO whose write hands each
 * datagram to the owner's send callback (so a flight larger than one MTU
 * leaves as several datagrams, RFC 6347 4.1.1), and arrive through a memory
 * BIO.  The retransmission timer follows DTLS_set_timer_cb: a short first
 * timeout doubled on each expiry (RFC 6347 4.2.4.1), armed on the owner's
 * GMainContext.  An md_dtls is used by one thread; the identity is shared
 * read-only and reference counted.  Every OpenSSL failure drains the error
 * queue into the failure detail and a debug log line.
 */
#include "md_dtls.h"
#include "md_crypto.h"
#include "md_err.h"
#include "md_log.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#define MAX_TIMEOUT_US (4u * 1000 * 1000)
#define DEFAULT_MTU 1200
#define FINGERPRINT_TEXT (8 + 3 * 32)

/* RFC 8827 6.5 / RFC 7714: ECDHE with AEAD suites first. */
static const char cipher_list[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
                                  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA:"
                                  "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA";
static const char srtp_profiles[] = "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80";
static const char srtp_profiles_gcm[] = "SRTP_AEAD_AES_128_GCM";

struct md_dtls_identity {
    gatomicrefcount refs;
    SSL_CTX *ctx;
    char fingerprint[FINGERPRINT_TEXT + 1];
};

struct md_dtls {
    SSL *ssl;
    BIO *rbio; /* memory BIO the peer's datagrams are written to */
    md_dtls_identity *id;
    md_dtls_callbacks cb;
    void *ud;
    GMainContext *ctx;
    GSource *timer;
    md_dtls_role role;
    unsigned initial_timeout_us;
    md_sdp_fingerprint expected[MD_SDP_MAX_FINGERPRINTS];
    size_t n_expected;
    const EVP_MD *verify_md; /* the strongest hash the offer used (RFC 8122 5) */
    const char *verify_hash;
    bool verified, mismatch, connected, failed;
    unsigned busy; /* calls into OpenSSL in progress (callbacks nest) */
};

/* Drains the OpenSSL error queue into buf ("" when it was empty). */
static void drain_errors(char *buf, size_t cap)
{
    if (md_crypto_drain_errors(buf, cap) > 0)
        md_debug("dtls", "openssl_error", "{s:s}", "detail", buf);
}

static int crypto_fail(void)
{
    char detail[512];
    drain_errors(detail, sizeof(detail));
    return -MD_E_CRYPTO;
}

static int verify_peer(int preverify_ok, X509_STORE_CTX *store);

/* Once the handshake is done, OpenSSL's two record buffers (about 17 KB
 * each, DTLS 1.2 frees neither with SSL_MODE_RELEASE_BUFFERS) exist only
 * while a call works on the association: media does not pass through DTLS
 * (SRTP has its own keys), and data channels use it a record at a time.
 * enter()/leave() bracket every call into OpenSSL after the handshake; they
 * nest, since the callbacks (on_connected, on_data) may send. */
static void enter(md_dtls *d)
{
    if (d->busy++ == 0 && d->connected)
        SSL_alloc_buffers(d->ssl);
}

static void leave(md_dtls *d)
{
    if (--d->busy == 0 && d->connected)
        SSL_free_buffers(d->ssl); /* refuses (and keeps them) while data is pending */
}

static int make_certificate(EVP_PKEY *key, X509 **ret)
{
    X509 *x = X509_new();
    X509_NAME *name = NULL;
    uint8_t serial[8];
    int r = -MD_E_CRYPTO;
    if (!x || md_random_bytes(serial, sizeof(serial)) < 0)
        goto out;
    serial[0] &= 0x7f; /* positive */
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    bool ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    name = X509_NAME_new();
    if (!ok || !name || !X509_set_version(x, 2) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"madoguchi",
                                    -1, -1, 0) ||
        !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -86400) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400) || !X509_set_pubkey(x, key) ||
        !X509_sign(x, key, EVP_sha256()))
        goto out;
    *ret = x;
    x = NULL;
    r = 0;
out:
    if (r < 0)
        crypto_fail();
    X509_NAME_free(name);
    X509_free(x);
    return r;
}

static int format_fingerprint(X509 *x, char out[FINGERPRINT_TEXT + 1])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!X509_digest(x, EVP_sha256(), md, &len) || len != 32)
        return crypto_fail();
    size_t off = (size_t)snprintf(out, FINGERPRINT_TEXT + 1, "sha-256 ");
    for (unsigned i = 0; i < len; i++)
        off += (size_t)snprintf(out + off, FINGERPRINT_TEXT + 1 - off, i ? ":%02X" : "%02X", md[i]);
    return 0;
}

int md_dtls_identity_new(md_dtls_identity **ret)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = NULL;
    SSL_CTX *ctx = NULL;
    md_dtls_identity *id = NULL;
    int r = key ? make_certificate(key, &cert) : crypto_fail();
    if (r < 0)
        goto out;
    ctx = SSL_CTX_new(DTLS_method());
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION) ||
        !SSL_CTX_use_certificate(ctx, cert) || !SSL_CTX_use_PrivateKey(ctx, key) ||
        !SSL_CTX_check_private_key(ctx) || !SSL_CTX_set_cipher_list(ctx, cipher_list) ||
        !SSL_CTX_set1_groups_list(ctx, "P-256:X25519:P-384")) {
        r = crypto_fail();
        goto out;
    }
    /* Self-signed peers: identity comes from the SDP fingerprint alone. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_peer);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    id = g_new0(md_dtls_identity, 1);
    g_atomic_ref_count_init(&id->refs);
    r = format_fingerprint(cert, id->fingerprint);
    if (r < 0)
        goto out;
    id->ctx = ctx;
    ctx = NULL;
    *ret = id;
    id = NULL;
out:
    g_free(id);
    SSL_CTX_free(ctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    return r;
}

md_dtls_identity *md_dtls_identity_ref(md_dtls_identity *id)
{
    g_atomic_ref_count_inc(&id->refs);
    return id;
}

md_dtls_identity *md_dtls_identity_unref(md_dtls_identity *id)
{
    if (id && g_atomic_ref_count_dec(&id->refs)) {
        SSL_CTX_free(id->ctx);
        g_free(id);
    }
    return NULL;
}

const char *md_dtls_identity_fingerprint(const md_dtls_identity *id)
{
    return id->fingerprint;
}

/* The write side: each BIO_write is one datagram for the ICE transport. */
static int bio_write(BIO *b, const char *buf, int len)
{
    md_dtls *d = BIO_get_data(b);
    if (len > 0 && d)
        d->cb.send((const uint8_t *)buf, (size_t)len, d->ud);
    return len;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_DGRAM_QUERY_MTU:
        return DEFAULT_MTU;
    default:
        return 0;
    }
}

static gpointer make_out_method(gpointer unused)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "md_dtls_out");
    if (m) {
        BIO_meth_set_write(m, bio_write);
        BIO_meth_set_ctrl(m, bio_ctrl);
    }
    return m;
}

static const struct {
    const char *name;
    const EVP_MD *(*md)(void);
    int strength;
} hashes[] = {
    {"sha-1", EVP_sha1, 1},     {"sha-224", EVP_sha224, 2}, {"sha-256", EVP_sha256, 3},
    {"sha-384", EVP_sha384, 4}, {"sha-512", EVP_sha512, 5},
};

/* RFC 8122 5: verify with the most preferred hash among those offered. */
static void pick_hash(md_dtls *d)
{
    int best = 0;
    for (size_t i = 0; i < d->n_expected; i++)
        for (size_t h = 0; h < G_N_ELEMENTS(hashes); h++)
            if (strcmp(d->expected[i].hash, hashes[h].name) == 0 && hashes[h].strength > best) {
                best = hashes[h].strength;
                d->verify_md = hashes[h].md();
                d->verify_hash = hashes[h].name;
            }
}

static int verify_peer(int preverify_ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    md_dtls *d = ssl ? SSL_get_app_data(ssl) : NULL;
    if (!d || !d->verify_md)
        return 0;
    if (X509_STORE_CTX_get_error_depth(store) > 0)
        return 1; /* only the leaf is pinned by the fingerprint */
    X509 *cert = X509_STORE_CTX_get_current_cert(store);
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!cert || !X509_digest(cert, d->verify_md, md, &len))
        return 0;
    for (size_t i = 0; i < d->n_expected; i++) {
        const md_sdp_fingerprint *fp = &d->expected[i];
        if (strcmp(fp->hash, d->verify_hash) == 0 && fp->len == len &&
            md_memeq_const(fp->digest, md, len)) {
            d->verified = true;
            return 1;
        }
    }
    d->mismatch = true;
    return 0;
}

static unsigned timer_cb(SSL *ssl, unsigned previous_us)
{
    md_dtls *d = SSL_get_app_data(ssl);
    if (previous_us == 0)
        return d->initial_timeout_us;
    return previous_us >= MAX_TIMEOUT_US / 2 ? MAX_TIMEOUT_US : previous_us * 2;
}

static void fail(md_dtls *d, int error, const char *detail)
{
    if (d->failed)
        return;
    d->failed = true;
    if (d->timer) {
        g_source_destroy(d->timer);
        g_clear_pointer(&d->timer, g_source_unref);
    }
    d->cb.on_failed(error, detail, d->ud);
}

static void fail_ssl(md_dtls *d)
{
    char detail[512];
    drain_errors(detail, sizeof(detail));
    if (d->mismatch)
        fail(d, -MD_E_FINGERPRINT_MISMATCH, "peer certificate does not match a=fingerprint");
    else
        fail(d, -MD_E_DTLS_FAILED, detail[0] ? detail : "DTLS handshake failed");
}

static gboolean on_timer(gpointer data);

static void arm_timer(md_dtls *d)
{
    struct timeval tv;
    if (d->timer) {
        g_source_destroy(d->timer);
        g_clear_pointer(&d->timer, g_source_unref);
    }
    if (d->failed || !DTLSv1_get_timeout(d->ssl, &tv))
        return;
    guint ms = (guint)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
    d->timer = g_timeout_source_new(ms);
    g_source_set_callback(d->timer, on_timer, d, NULL);
    g_source_attach(d->timer, d->ctx);
}

static gboolean on_timer(gpointer data)
{
    md_dtls *d = data;
    g_clear_pointer(&d->timer, g_source_unref);
    enter(d);
    if (DTLSv1_handle_timeout(d->ssl) < 0)
        fail_ssl(d);
    else
        arm_timer(d);
    leave(d);
    return G_SOURCE_REMOVE;
}

/* RFC 5764 4.2: client key, server key, client salt, server salt. */
static int export_keys(md_dtls *d, md_dtls_keys *ret)
{
    uint8_t material[2 * (MD_SRTP_MAX_KEY_LEN + MD_SRTP_MAX_SALT_LEN)];
    const SRTP_PROTECTION_PROFILE *sp = SSL_get_selected_srtp_profile(d->ssl);
    size_t kl, sl;
    int r = -MD_E_DTLS_FAILED;
    if (!sp || md_srtp_profile_lengths((md_srtp_profile)sp->id, &kl, &sl) < 0)
        return r;
    if (SSL_export_keying_material(d->ssl, material, 2 * (kl + sl), "EXTRACTOR-dtls_srtp", 19, NULL,
                                   0, 0) != 1) {
        r = crypto_fail();
        goto out;
    }
    bool client = d->role == MD_DTLS_CLIENT;
    const uint8_t *ck = material, *skey = material + kl;
    const uint8_t *cs = material + 2 * kl, *ss = material + 2 * kl + sl;
    ret->profile = (md_srtp_profile)sp->id;
    memcpy(ret->local_key, client ? ck : skey, kl);
    memcpy(ret->remote_key, client ? skey : ck, kl);
    memcpy(ret->local_salt, client ? cs : ss, sl);
    memcpy(ret->remote_salt, client ? ss : cs, sl);
    r = 0;
out:
    md_wipe(material, sizeof(material));
    return r;
}

static void handshake_done(md_dtls *d)
{
    md_dtls_keys keys;
    if (!d->verified || !SSL_get0_peer_certificate(d->ssl)) {
        fail(d, -MD_E_FINGERPRINT_MISMATCH, "peer presented no verified certificate");
        return;
    }
    if (export_keys(d, &keys) < 0) {
        fail(d, -MD_E_DTLS_FAILED, "no SRTP profile negotiated (use_srtp, RFC 5764 4.1)");
        return;
    }
    d->connected = true;
    d->cb.on_connected(&keys, d->ud);
    md_wipe(&keys, sizeof(keys));
}

/* After the handshake: retransmitted client flights, alerts, and
 * application data (SCTP, RFC 8261), handed to on_data record by record. */
static void read_records(md_dtls *d)
{
    uint8_t buf[16384]; /* one record at most (RFC 6347 4.1) */
    while (!d->failed) {
        int r = SSL_read(d->ssl, buf, sizeof(buf));
        if (r > 0) {
            if (d->cb.on_data)
                d->cb.on_data(buf, (size_t)r, d->ud);
            continue;
        }
        int e = SSL_get_error(d->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN) {
            fail(d, -MD_E_DTLS_FAILED, "peer closed the DTLS association");
        } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            fail_ssl(d);
        }
        return;
    }
}

static void step(md_dtls *d)
{
    if (!d->connected) {
        int r = SSL_do_handshake(d->ssl);
        if (r == 1) {
            arm_timer(d);
            handshake_done(d);
            if (d->connected && !d->failed)
                read_records(d); /* records that came with the last flight */
            return;
        }
        int e = SSL_get_error(d->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            fail_ssl(d);
            return;
        }
        arm_timer(d);
        return;
    }
    read_records(d);
}

int md_dtls_new(md_dtls_identity *id, const md_dtls_options *opt,
                const md_sdp_fingerprint *expected, size_t n_expected, GMainContext *ctx,
                const md_dtls_callbacks *cb, void *ud, md_dtls **ret)
{
    static GOnce once = G_ONCE_INIT;
    BIO_METHOD *method = g_once(&once, make_out_method, NULL);
    md_dtls *d = NULL;
    int r = -EINVAL;
    if (n_expected == 0 || n_expected > MD_SDP_MAX_FINGERPRINTS)
        return r;
    d = g_new0(md_dtls, 1);
    d->cb = *cb;
    d->ud = ud;
    d->ctx = ctx;
    d->role = opt->role;
    d->initial_timeout_us = (opt->initial_timeout_ms ? opt->initial_timeout_ms : 50) * 1000;
    memcpy(d->expected, expected, n_expected * sizeof(*expected));
    d->n_expected = n_expected;
    pick_hash(d);
    if (!d->verify_md)
        goto out;

    r = -MD_E_CRYPTO;
    d->ssl = SSL_new(id->ctx);
    BIO *rbio = BIO_new(BIO_s_mem());
    BIO *wbio = method ? BIO_new(method) : NULL;
    if (!d->ssl || !rbio || !wbio) {
        BIO_free(rbio);
        BIO_free(wbio);
        crypto_fail();
        goto out;
    }
    BIO_set_mem_eof_return(rbio, -1);
    BIO_set_data(wbio, d);
    BIO_set_init(wbio, 1);
    SSL_set_bio(d->ssl, rbio, wbio); /* the SSL owns both BIOs from here */
    d->rbio = rbio;
    if (SSL_set_tlsext_use_srtp(d->ssl, opt->require_gcm ? srtp_profiles_gcm : srtp_profiles)) {
        crypto_fail();
        goto out;
    }
    SSL_set_app_data(d->ssl, d);
    SSL_set_options(d->ssl, SSL_OP_NO_QUERY_MTU);
    SSL_set_mtu(d->ssl, opt->mtu ? opt->mtu : DEFAULT_MTU);
    DTLS_set_timer_cb(d->ssl, timer_cb);
    if (d->role == MD_DTLS_CLIENT)
        SSL_set_connect_state(d->ssl);
    else
        SSL_set_accept_state(d->ssl);
    d->id = md_dtls_identity_ref(id);
    *ret = d;
    d = NULL;
    r = 0;
out:
    if (d) {
        SSL_free(d->ssl);
        g_free(d);
    }
    return r;
}

int md_dtls_start(md_dtls *d)
{
    if (d->role == MD_DTLS_CLIENT && !d->connected && !d->failed) {
        enter(d);
        step(d);
        leave(d);
    }
    return d->failed ? -MD_E_DTLS_FAILED : 0;
}

int md_dtls_feed(md_dtls *d, const uint8_t *buf, size_t len)
{
    if (d->failed)
        return -MD_E_DTLS_FAILED;
    if (len == 0 || len > 65535)
        return -EINVAL;
    if (BIO_write(d->rbio, buf, (int)len) != (int)len)
        return crypto_fail();
    enter(d);
    step(d);
    leave(d);
    return d->failed ? -MD_E_DTLS_FAILED : 0;
}

bool md_dtls_connected(const md_dtls *d)
{
    return d->connected;
}

int md_dtls_send_data(md_dtls *d, const uint8_t *buf, size_t len)
{
    if (d->failed)
        return -MD_E_DTLS_FAILED;
    if (!d->connected)
        return -ENOTCONN;
    if (len == 0 || len > 16384)
        return -EMSGSIZE;
    enter(d);
    int r = SSL_write(d->ssl, buf, (int)len);
    leave(d);
    if (r == (int)len)
        return 0;
    char detail[512];
    drain_errors(detail, sizeof(detail));
    return -MD_E_DTLS_FAILED;
}

md_dtls *md_dtls_free(md_dtls *d)
{
    if (!d)
        return NULL;
    if (d->timer) {
        g_source_destroy(d->timer);
        g_source_unref(d->timer);
    }
    BIO_set_data(SSL_get_wbio(d->ssl), NULL); /* no send callbacks from SSL_free */
    SSL_free(d->ssl);
    md_dtls_identity_unref(d->id);
    g_free(d);
    return NULL;
}
