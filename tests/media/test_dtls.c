/*
 * DTLS-SRTP between two md_dtls endpoints in memory: the handshake completes
 * (also when a flight is lost, through the retransmission timer), both sides
 * derive mirrored SRTP keys, those keys protect and unprotect real packets
 * through md_srtp, and a peer whose certificate does not match the offered
 * fingerprint is refused with -MD_E_FINGERPRINT_MISMATCH.
 */
#include "md_dtls.h"
#include "md_err.h"
#include "md_rtp.h"
#include "md_srtp.h"
#include "md_test.h"

#include <glib.h>

struct endpoint {
    md_dtls *dtls;
    GQueue *to_peer; /* datagrams waiting for the other side */
    int drop_next;   /* datagrams to lose on the way out */
    bool drop_final_flight;
    bool connected;
    int error;
    md_dtls_keys keys;
    GByteArray *data; /* application data received */
    bool echo;        /* sends each record back from on_data */
};

static void on_send(const uint8_t *buf, size_t len, void *ud)
{
    struct endpoint *e = ud;
    if (e->drop_next > 0) {
        e->drop_next--;
        return;
    }
    g_queue_push_tail(e->to_peer, g_bytes_new(buf, len));
}

static void on_connected(const md_dtls_keys *keys, void *ud)
{
    struct endpoint *e = ud;
    e->connected = true;
    e->keys = *keys;
    if (e->drop_final_flight) /* queued just before: the peer must ask again */
        g_queue_clear_full(e->to_peer, (GDestroyNotify)g_bytes_unref);
}

static void on_failed(int error, const char *detail, void *ud)
{
    struct endpoint *e = ud;
    e->error = error;
    ASSERT(detail && detail[0]);
}

static void on_data(const uint8_t *buf, size_t len, void *ud)
{
    struct endpoint *e = ud;
    if (e->data)
        g_byte_array_append(e->data, buf, (guint)len);
    if (e->echo)
        ASSERT_OK(md_dtls_send_data(e->dtls, buf, len));
}

static const md_dtls_callbacks callbacks = {on_send, on_connected, on_failed, on_data};

static void fingerprint_of(md_dtls_identity *id, md_sdp_fingerprint *ret)
{
    ASSERT_EQ(md_sdp_parse_fingerprint(md_dtls_identity_fingerprint(id), ret), 1);
}

/* Feeds queued datagrams across until both queues are empty, then lets
 * timers run; stops when both sides finished or after a bounded time. */
static void pump(struct endpoint *a, struct endpoint *b, GMainContext *ctx)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (g_get_monotonic_time() < deadline) {
        bool moved = false;
        GBytes *pkt;
        while ((pkt = g_queue_pop_head(a->to_peer))) {
            gsize n;
            const uint8_t *d = g_bytes_get_data(pkt, &n);
            md_dtls_feed(b->dtls, d, n);
            g_bytes_unref(pkt);
            moved = true;
        }
        while ((pkt = g_queue_pop_head(b->to_peer))) {
            gsize n;
            const uint8_t *d = g_bytes_get_data(pkt, &n);
            md_dtls_feed(a->dtls, d, n);
            g_bytes_unref(pkt);
            moved = true;
        }
        if ((a->connected || a->error) && (b->connected || b->error) && !moved)
            return;
        if (!moved)
            g_main_context_iteration(ctx, TRUE);
    }
}

static void endpoints_clear(struct endpoint *a, struct endpoint *b)
{
    md_dtls_free(a->dtls);
    md_dtls_free(b->dtls);
    g_queue_free_full(a->to_peer, (GDestroyNotify)g_bytes_unref);
    g_queue_free_full(b->to_peer, (GDestroyNotify)g_bytes_unref);
}

static void handshake_with(bool gcm_only, int drop_client_flights, int drop_server_flights,
                           bool drop_server_final, struct endpoint *server, struct endpoint *client)
{
    GMainContext *ctx = g_main_context_default();
    md_dtls_identity *sid, *cid;
    md_sdp_fingerprint sfp, cfp;
    ASSERT_OK(md_dtls_identity_new(&sid));
    ASSERT_OK(md_dtls_identity_new(&cid));
    fingerprint_of(sid, &sfp);
    fingerprint_of(cid, &cfp);
    *server = (struct endpoint){.to_peer = g_queue_new(),
                                .drop_next = drop_server_flights,
                                .drop_final_flight = drop_server_final};
    *client = (struct endpoint){.to_peer = g_queue_new(), .drop_next = drop_client_flights};
    md_dtls_options so = {.role = MD_DTLS_SERVER, .initial_timeout_ms = 20};
    md_dtls_options co = {
        .role = MD_DTLS_CLIENT, .initial_timeout_ms = 20, .require_gcm = gcm_only};
    ASSERT_OK(md_dtls_new(sid, &so, &cfp, 1, ctx, &callbacks, server, &server->dtls));
    ASSERT_OK(md_dtls_new(cid, &co, &sfp, 1, ctx, &callbacks, client, &client->dtls));
    md_dtls_identity_unref(sid); /* the connections hold references */
    md_dtls_identity_unref(cid);
    ASSERT_OK(md_dtls_start(server->dtls));
    ASSERT_OK(md_dtls_start(client->dtls));
    pump(client, server, ctx);
}

static void handshake(bool gcm_only, int drop_client_flights, int drop_server_flights,
                      struct endpoint *server, struct endpoint *client)
{
    handshake_with(gcm_only, drop_client_flights, drop_server_flights, false, server, client);
}

static void test_identity(void)
{
    md_dtls_identity *id;
    ASSERT_OK(md_dtls_identity_new(&id));
    const char *fp = md_dtls_identity_fingerprint(id);
    ASSERT(g_str_has_prefix(fp, "sha-256 "));
    ASSERT_EQ(strlen(fp), 8 + 32 * 3 - 1);
    md_sdp_fingerprint parsed;
    ASSERT_EQ(md_sdp_parse_fingerprint(fp, &parsed), 1);
    ASSERT_EQ(parsed.len, 32);
    md_dtls_identity_unref(id);
}

static void assert_mirrored(const struct endpoint *s, const struct endpoint *c)
{
    size_t kl, sl;
    ASSERT(s->connected && c->connected);
    ASSERT_EQ(s->keys.profile, c->keys.profile);
    ASSERT_OK(md_srtp_profile_lengths(s->keys.profile, &kl, &sl));
    ASSERT(memcmp(s->keys.local_key, c->keys.remote_key, kl) == 0);
    ASSERT(memcmp(s->keys.remote_key, c->keys.local_key, kl) == 0);
    ASSERT(memcmp(s->keys.local_salt, c->keys.remote_salt, sl) == 0);
    ASSERT(memcmp(s->keys.remote_salt, c->keys.local_salt, sl) == 0);
    ASSERT(memcmp(s->keys.local_key, s->keys.remote_key, kl) != 0);
}

/* Protects with one side's local key, unprotects with the other's remote key. */
static void srtp_roundtrip(const md_dtls_keys *tx, const md_dtls_keys *rx)
{
    md_srtp *out, *in;
    ASSERT_OK(md_srtp_new(tx->profile, true, tx->local_key, tx->local_salt, &out));
    ASSERT_OK(md_srtp_new(rx->profile, false, rx->remote_key, rx->remote_salt, &in));
    for (uint16_t seq = 1000; seq < 1010; seq++) {
        uint8_t pkt[256 + MD_SRTP_MAX_OVERHEAD] = {0x80, 96};
        md_rtp_set_seq(pkt, seq);
        md_rtp_set_timestamp(pkt, 90000u * seq);
        md_rtp_set_ssrc(pkt, 0x11223344);
        for (size_t i = 12; i < 212; i++)
            pkt[i] = (uint8_t)(i ^ seq);
        uint8_t plain[212];
        memcpy(plain, pkt, sizeof(plain));
        size_t len = 212;
        ASSERT_OK(md_srtp_protect_rtp(out, pkt, &len, sizeof(pkt)));
        ASSERT(len > 212);
        ASSERT(memcmp(pkt + 12, plain + 12, 200) != 0);
        ASSERT_OK(md_srtp_unprotect_rtp(in, pkt, &len));
        ASSERT_EQ(len, 212);
        ASSERT(memcmp(pkt, plain, 212) == 0);
    }
    /* RTCP too: a PLI, protected and back. */
    uint8_t rtcp[64 + MD_SRTP_MAX_OVERHEAD];
    size_t len = (size_t)md_rtcp_build_pli(rtcp, sizeof(rtcp), 1, 2);
    ASSERT_OK(md_srtp_protect_rtcp(out, rtcp, &len, sizeof(rtcp)));
    ASSERT_OK(md_srtp_unprotect_rtcp(in, rtcp, &len));
    ASSERT_EQ(len, 12);
    ASSERT_EQ(md_rtcp_media_ssrc(&(md_rtcp_packet){.data = rtcp, .len = len}), 2);
    md_srtp_free(out);
    md_srtp_free(in);
}

static void test_handshake_gcm(void)
{
    struct endpoint s, c;
    handshake(false, 0, 0, &s, &c);
    assert_mirrored(&s, &c);
    ASSERT_EQ(s.keys.profile, MD_SRTP_AEAD_AES_128_GCM); /* preferred (DESIGN 4) */
    srtp_roundtrip(&s.keys, &c.keys);
    srtp_roundtrip(&c.keys, &s.keys);
    endpoints_clear(&s, &c);
}

/* Lost flights in both directions are recovered by the timer. */
static void test_handshake_loss(void)
{
    struct endpoint s, c;
    handshake(true, 1, 1, &s, &c);
    assert_mirrored(&s, &c);
    endpoints_clear(&s, &c);
}

/* After the handshake OpenSSL's record buffers exist only during a call
 * (md_dtls.c enter/leave): the server's last flight is lost, so the client
 * repeats its own and the connected server answers it again; then records
 * of every size go both ways, the server echoing from inside on_data. */
static void test_records_after_handshake(void)
{
    GMainContext *ctx = g_main_context_default();
    struct endpoint s, c;
    handshake_with(false, 0, 0, true, &s, &c);
    assert_mirrored(&s, &c);
    s.data = g_byte_array_new();
    c.data = g_byte_array_new();
    s.echo = true;
    GByteArray *sent = g_byte_array_new();
    static const size_t sizes[] = {1, 100, 1200, 4000, 16384, 17, 16384, 900};
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        uint8_t buf[16384];
        for (size_t j = 0; j < sizes[i]; j++)
            buf[j] = (uint8_t)(i * 7 + j);
        ASSERT_OK(md_dtls_send_data(c.dtls, buf, sizes[i]));
        g_byte_array_append(sent, buf, (guint)sizes[i]);
        pump(&c, &s, ctx);
    }
    ASSERT_EQ(s.data->len, sent->len);
    ASSERT(memcmp(s.data->data, sent->data, sent->len) == 0);
    ASSERT_EQ(c.data->len, sent->len);
    ASSERT(memcmp(c.data->data, sent->data, sent->len) == 0);
    ASSERT_EQ(s.error, 0);
    ASSERT_EQ(c.error, 0);
    g_byte_array_unref(sent);
    g_byte_array_unref(s.data);
    g_byte_array_unref(c.data);
    endpoints_clear(&s, &c);
}

static void test_fingerprint_mismatch(void)
{
    GMainContext *ctx = g_main_context_default();
    md_dtls_identity *sid, *cid, *other;
    md_sdp_fingerprint sfp, wrong;
    ASSERT_OK(md_dtls_identity_new(&sid));
    ASSERT_OK(md_dtls_identity_new(&cid));
    ASSERT_OK(md_dtls_identity_new(&other));
    fingerprint_of(sid, &sfp);
    fingerprint_of(other, &wrong); /* the server expects a certificate it will not get */
    struct endpoint s = {.to_peer = g_queue_new()}, c = {.to_peer = g_queue_new()};
    md_dtls_options so = {.role = MD_DTLS_SERVER, .initial_timeout_ms = 20};
    md_dtls_options co = {.role = MD_DTLS_CLIENT, .initial_timeout_ms = 20};
    ASSERT_OK(md_dtls_new(sid, &so, &wrong, 1, ctx, &callbacks, &s, &s.dtls));
    ASSERT_OK(md_dtls_new(cid, &co, &sfp, 1, ctx, &callbacks, &c, &c.dtls));
    md_dtls_identity_unref(sid);
    md_dtls_identity_unref(cid);
    md_dtls_identity_unref(other);
    ASSERT_OK(md_dtls_start(c.dtls));
    pump(&c, &s, ctx);
    ASSERT(!s.connected);
    ASSERT_EQ(s.error, -MD_E_FINGERPRINT_MISMATCH);
    ASSERT(!c.connected); /* the alert reaches the client */
    ASSERT(c.error < 0);
    endpoints_clear(&s, &c);
}

static void test_srtp_errors(void)
{
    uint8_t key[16] = {1}, salt[14] = {2};
    md_srtp *out, *in;
    ASSERT_OK(md_srtp_new(MD_SRTP_AES128_CM_SHA1_80, true, key, salt, &out));
    ASSERT_OK(md_srtp_new(MD_SRTP_AES128_CM_SHA1_80, false, key, salt, &in));
    ASSERT_EQ(md_srtp_new((md_srtp_profile)99, true, key, salt, &(md_srtp *){NULL}), -EINVAL);
    uint8_t pkt[100 + MD_SRTP_MAX_OVERHEAD] = {0x80, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7};
    size_t len = 100;
    ASSERT_EQ(md_srtp_protect_rtp(out, pkt, &len, 100), -ENOBUFS);
    ASSERT_EQ(len, 100);
    ASSERT_OK(md_srtp_protect_rtp(out, pkt, &len, sizeof(pkt)));
    uint8_t copy[sizeof(pkt)];
    memcpy(copy, pkt, sizeof(pkt));
    size_t copy_len = len;
    ASSERT_OK(md_srtp_unprotect_rtp(in, pkt, &len));
    ASSERT_EQ(md_srtp_unprotect_rtp(in, copy, &copy_len), -EALREADY); /* replay */
    memcpy(pkt, copy, sizeof(pkt));
    pkt[3] = 2; /* new index, but the tag no longer matches */
    len = copy_len;
    ASSERT_EQ(md_srtp_unprotect_rtp(in, pkt, &len), -EBADMSG);
    md_srtp_free(out);
    md_srtp_free(in);
}

int main(void)
{
    ASSERT_OK(md_srtp_init());
    RUN(test_identity);
    RUN(test_handshake_gcm);
    RUN(test_handshake_loss);
    RUN(test_records_after_handshake);
    RUN(test_fingerprint_mismatch);
    RUN(test_srtp_errors);
    md_srtp_deinit();
    return 0;
}
