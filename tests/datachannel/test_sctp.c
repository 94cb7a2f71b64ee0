/*
 * Two md_sctp associations back to back in memory: each one's packets are
 * queued and fed to the other's md_sctp_input() by a pump that runs on one
 * GMainContext and calls md_sctp_tick() every 10 ms, like a media worker.
 * Covers: association setup, DCEP OPEN/ACK on the right stream parity, chat
 * both ways (empty messages too), a 20 MB binary transfer whose sender never
 * holds more than its send buffer plus one message, a paused (slow) reader
 * that stalls the sender instead of growing any buffer, channel close by
 * stream reset (RFC 8831 6.7) with stream reuse, and message size caps.
 */
#include "md_crypto.h"
#include "md_dcep.h"
#include "md_err.h"
#include "md_sctp.h"
#include "md_test.h"

#include <glib.h>

#define CHUNK (64 * 1024)
#define SNDBUF (256 * 1024)

struct endpoint {
    const char *name;
    md_sctp *sctp;
    struct endpoint *peer;
    GQueue inbox; /* packets from the peer, of GBytes */
    bool dtls_client;
    bool connected, closed;
    int closed_error;
    unsigned low_events;
    /* received messages */
    GPtrArray *messages; /* of GBytes, prefixed with stream/ppid in struct msg */
    uint64_t bytes_received;
    md_sha256_ctx *hash;
    uint16_t closed_streams[16];
    unsigned n_closed_streams;
    int stream_error;
    /* channel bookkeeping for the DCEP dance */
    bool acked[MD_SCTP_MAX_STREAMS];
    char labels[8][32];
};

struct msg {
    uint16_t stream;
    uint32_t ppid;
    size_t len;
    uint8_t data[];
};

static GMainContext *ctx;

static void on_send(const uint8_t *buf, size_t len, void *ud)
{
    struct endpoint *e = ud;
    g_queue_push_tail(&e->peer->inbox, g_bytes_new(buf, len));
}

static void on_connected(void *ud)
{
    ((struct endpoint *)ud)->connected = true;
}

static void reply_ack(struct endpoint *e, uint16_t stream, const uint8_t *buf, size_t len)
{
    md_dcep_open o;
    uint8_t ack[1];
    ASSERT_OK(md_dcep_parse_open(buf, len, &o));
    ASSERT_OK(md_dcep_check_remote_stream(stream, e->dtls_client));
    md_sctp_stream_params p = {.unordered = !md_dcep_ordered(o.channel_type),
                               .pr = (md_sctp_pr)md_dcep_pr_policy(o.channel_type),
                               .pr_value = o.reliability};
    ASSERT_OK(md_sctp_set_stream_params(e->sctp, stream, &p));
    if (stream < 8)
        g_strlcpy(e->labels[stream], o.label, sizeof(e->labels[stream]));
    ASSERT_EQ(md_dcep_build_ack(ack, sizeof(ack)), 1);
    ASSERT_OK(md_sctp_send(e->sctp, stream, MD_SCTP_PPID_DCEP, ack, 1));
    e->acked[stream] = true;
}

static void on_message(uint16_t stream, uint32_t ppid, const uint8_t *buf, size_t len, void *ud)
{
    struct endpoint *e = ud;
    if (ppid == MD_SCTP_PPID_DCEP) {
        if (md_dcep_message_type(buf, len) == MD_DCEP_OPEN) {
            reply_ack(e, stream, buf, len);
        } else {
            ASSERT_OK(md_dcep_parse_ack(buf, len));
            e->acked[stream] = true;
        }
        return;
    }
    e->bytes_received += len;
    if (e->hash) {
        ASSERT_OK(md_sha256_ctx_update(e->hash, buf, len));
        return;
    }
    struct msg *m = g_malloc(sizeof(*m) + len);
    m->stream = stream;
    m->ppid = ppid;
    m->len = len;
    memcpy(m->data, buf, len);
    g_ptr_array_add(e->messages, m);
}

static void on_low(void *ud)
{
    ((struct endpoint *)ud)->low_events++;
}

static void on_stream_closed(uint16_t stream, void *ud)
{
    struct endpoint *e = ud;
    ASSERT(e->n_closed_streams < G_N_ELEMENTS(e->closed_streams));
    e->closed_streams[e->n_closed_streams++] = stream;
    e->acked[stream] = false;
}

static void on_stream_error(uint16_t stream, int error, void *ud)
{
    ((struct endpoint *)ud)->stream_error = error;
}

static void on_closed(int error, void *ud)
{
    struct endpoint *e = ud;
    e->closed = true;
    e->closed_error = error;
}

static const md_sctp_callbacks callbacks = {
    .send = on_send,
    .on_connected = on_connected,
    .on_message = on_message,
    .on_buffered_amount_low = on_low,
    .on_stream_closed = on_stream_closed,
    .on_stream_error = on_stream_error,
    .on_closed = on_closed,
};

/* Moves packets both ways and runs the context once; ticks every 10 ms. */
static void pump_once(struct endpoint *a, struct endpoint *b)
{
    static gint64 last_tick;
    for (int i = 0; i < 2; i++) {
        struct endpoint *e = i ? b : a;
        GBytes *p;
        unsigned n = 0;
        while (n++ < 256 && (p = g_queue_pop_head(&e->inbox))) {
            gsize len;
            const uint8_t *d = g_bytes_get_data(p, &len);
            if (e->sctp)
                md_sctp_input(e->sctp, d, len);
            g_bytes_unref(p);
        }
    }
    while (g_main_context_iteration(ctx, FALSE)) {
    }
    gint64 now = g_get_monotonic_time();
    if (now - last_tick >= 10000) {
        last_tick = now;
        md_sctp_tick();
    }
    if (g_queue_is_empty(&a->inbox) && g_queue_is_empty(&b->inbox))
        g_usleep(200);
}

#define PUMP_UNTIL(a, b, cond)                                                                     \
    do {                                                                                           \
        gint64 deadline_ = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;                           \
        while (!(cond)) {                                                                          \
            if (g_get_monotonic_time() > deadline_)                                                \
                MD_FAIL("timed out waiting for %s", #cond);                                        \
            pump_once(a, b);                                                                       \
        }                                                                                          \
    } while (0)

static void endpoint_init(struct endpoint *e, const char *name, bool dtls_client,
                          const md_sctp_options *opt)
{
    memset(e, 0, sizeof(*e));
    e->name = name;
    e->dtls_client = dtls_client;
    g_queue_init(&e->inbox);
    e->messages = g_ptr_array_new_with_free_func(g_free);
    ASSERT_OK(md_sctp_new(opt, ctx, &callbacks, e, &e->sctp));
}

static void endpoint_clear(struct endpoint *e)
{
    e->sctp = md_sctp_free(e->sctp);
    g_queue_clear_full(&e->inbox, (GDestroyNotify)g_bytes_unref);
    g_ptr_array_unref(e->messages);
    md_sha256_ctx_free(e->hash);
}

static void connect_pair(struct endpoint *a, struct endpoint *b, const md_sctp_options *oa,
                         const md_sctp_options *ob)
{
    endpoint_init(a, "client", true, oa);
    endpoint_init(b, "gateway", false, ob);
    a->peer = b;
    b->peer = a;
    ASSERT_EQ(md_sctp_send(a->sctp, 0, MD_SCTP_PPID_STRING, (const uint8_t *)"x", 1), -ENOTCONN);
    ASSERT_OK(md_sctp_start(a->sctp));
    ASSERT_OK(md_sctp_start(b->sctp));
    PUMP_UNTIL(a, b, a->connected && b->connected);
}

static void open_channel(struct endpoint *from, struct endpoint *to, uint16_t stream,
                         const char *label, uint8_t type, uint32_t reliability)
{
    md_dcep_open o = {.channel_type = type, .reliability = reliability};
    uint8_t buf[MD_DCEP_MAX_OPEN_LEN];
    g_strlcpy(o.label, label, sizeof(o.label));
    ASSERT(md_dcep_stream_is_local(stream, from->dtls_client));
    md_sctp_stream_params p = {.unordered = !md_dcep_ordered(type),
                               .pr = (md_sctp_pr)md_dcep_pr_policy(type),
                               .pr_value = reliability};
    ASSERT_OK(md_sctp_set_stream_params(from->sctp, stream, &p));
    int n = md_dcep_build_open(&o, buf, sizeof(buf));
    ASSERT_OK(n);
    ASSERT_OK(md_sctp_send(from->sctp, stream, MD_SCTP_PPID_DCEP, buf, (size_t)n));
    PUMP_UNTIL(from, to, from->acked[stream] && to->acked[stream]);
    ASSERT_STR_EQ(to->labels[stream], label);
}

static struct msg *msg_at(struct endpoint *e, unsigned i)
{
    ASSERT(i < e->messages->len);
    return g_ptr_array_index(e->messages, i);
}

static void test_open_chat_both_ways(void)
{
    struct endpoint a, b;
    connect_pair(&a, &b, NULL, NULL);

    /* RFC 8832 6: the DTLS client (a) opens even streams, the server odd. */
    open_channel(&a, &b, 0, "chat", MD_DCEP_RELIABLE, 0);
    open_channel(&b, &a, 1, "file", MD_DCEP_RELIABLE, 0);
    open_channel(&a, &b, 2, "lossy", MD_DCEP_PARTIAL_RELIABLE_REXMIT_UNORDERED, 3);

    const char *hello = "{\"type\":\"chat\",\"text\":\"こんにちは\"}";
    ASSERT_OK(md_sctp_send(a.sctp, 0, MD_SCTP_PPID_STRING, (const uint8_t *)hello, strlen(hello)));
    ASSERT_OK(md_sctp_send(a.sctp, 0, MD_SCTP_PPID_STRING, NULL, 0));
    ASSERT_OK(md_sctp_send(b.sctp, 0, MD_SCTP_PPID_STRING, (const uint8_t *)"ack", 3));
    ASSERT_OK(md_sctp_send(b.sctp, 1, MD_SCTP_PPID_BINARY, NULL, 0));
    ASSERT_OK(md_sctp_send(a.sctp, 2, MD_SCTP_PPID_BINARY, (const uint8_t *)"\x01\x02", 2));
    PUMP_UNTIL(&a, &b, b.messages->len == 3 && a.messages->len == 2);

    struct msg *m = msg_at(&b, 0);
    ASSERT_EQ(m->stream, 0);
    ASSERT_EQ(m->ppid, MD_SCTP_PPID_STRING);
    ASSERT_EQ(m->len, strlen(hello));
    ASSERT(memcmp(m->data, hello, m->len) == 0);
    m = msg_at(&b, 1); /* empty string: PPID 56 on the wire (RFC 8831 6.6) */
    ASSERT_EQ(m->ppid, MD_SCTP_PPID_STRING);
    ASSERT_EQ(m->len, 0);
    m = msg_at(&b, 2);
    ASSERT_EQ(m->stream, 2);
    ASSERT_EQ(m->len, 2);
    m = msg_at(&a, 0);
    ASSERT_EQ(m->len, 3);
    m = msg_at(&a, 1);
    ASSERT_EQ(m->stream, 1);
    ASSERT_EQ(m->ppid, MD_SCTP_PPID_BINARY);
    ASSERT_EQ(m->len, 0);

    /* Bad arguments are refused before anything is sent. */
    ASSERT_EQ(md_sctp_send(a.sctp, 0, 52, (const uint8_t *)"x", 1), -EINVAL);
    ASSERT_EQ(md_sctp_send(a.sctp, MD_SCTP_MAX_STREAMS, 51, (const uint8_t *)"x", 1), -EINVAL);
    ASSERT_EQ(md_sctp_send(a.sctp, 0, MD_SCTP_PPID_DCEP, NULL, 0), -EINVAL);

    /* Graceful shutdown reaches both ends. */
    ASSERT_OK(md_sctp_shutdown(a.sctp));
    PUMP_UNTIL(&a, &b, a.closed && b.closed);
    ASSERT_EQ(a.closed_error, 0);
    ASSERT_EQ(b.closed_error, 0);
    endpoint_clear(&a);
    endpoint_clear(&b);
}

static void fill(uint8_t *buf, size_t len, uint64_t offset)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)((offset + i) * 2654435761u >> 13);
}

/* Sends total bytes in CHUNK messages as fast as flow control allows;
 * returns the largest buffered amount seen.  pause_every: if nonzero, the
 * receiver reads only one pump in pause_every (a slow reader). */
static size_t transfer(struct endpoint *a, struct endpoint *b, uint64_t total, unsigned slow,
                       unsigned *ret_eagain)
{
    uint8_t *chunk = g_malloc(CHUNK);
    md_sha256_ctx *sent;
    uint64_t offset = 0;
    size_t max_buffered = 0;
    unsigned eagain = 0, round = 0, low_seen = 0;
    bool blocked = false;

    ASSERT_OK(md_sha256_ctx_new(&sent));
    ASSERT_OK(md_sha256_ctx_new(&b->hash));
    b->bytes_received = 0;
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
    while (b->bytes_received < total) {
        if (g_get_monotonic_time() > deadline)
            MD_FAIL("transfer stalled at %" PRIu64 " of %" PRIu64, b->bytes_received, total);
        /* Like RTCDataChannel users: after a refusal, wait for the event. */
        if (blocked && a->low_events != low_seen)
            blocked = false;
        while (!blocked && offset < total) {
            size_t n = (size_t)MIN((uint64_t)CHUNK, total - offset);
            fill(chunk, n, offset);
            int r = md_sctp_send(a->sctp, 1, MD_SCTP_PPID_BINARY, chunk, n);
            if (r == -EAGAIN) {
                eagain++;
                blocked = true;
                low_seen = a->low_events;
                break;
            }
            ASSERT_OK(r);
            ASSERT_OK(md_sha256_ctx_update(sent, chunk, n));
            offset += n;
            max_buffered = MAX(max_buffered, md_sctp_buffered_amount(a->sctp));
        }
        if (slow)
            md_sctp_set_receive_paused(b->sctp, round % slow != 0);
        round++;
        pump_once(a, b);
        max_buffered = MAX(max_buffered, md_sctp_buffered_amount(a->sctp));
    }
    md_sctp_set_receive_paused(b->sctp, false);
    ASSERT_EQ(b->bytes_received, total);
    uint8_t d1[MD_SHA256_LEN], d2[MD_SHA256_LEN];
    ASSERT_OK(md_sha256_ctx_final(sent, d1));
    ASSERT_OK(md_sha256_ctx_final(b->hash, d2));
    ASSERT(memcmp(d1, d2, sizeof(d1)) == 0);
    md_sha256_ctx_free(sent);
    b->hash = md_sha256_ctx_free(b->hash);
    g_free(chunk);
    *ret_eagain = eagain;
    return max_buffered;
}

static void test_bulk_transfer_bounded(void)
{
    md_sctp_options o = {.send_buffer = SNDBUF, .max_send_message_size = CHUNK};
    struct endpoint a, b;
    unsigned eagain;
    connect_pair(&a, &b, &o, &o);
    open_channel(&b, &a, 1, "file", MD_DCEP_RELIABLE, 0);

    size_t max_buffered = transfer(&a, &b, 20u << 20, 0, &eagain);
    fprintf(stderr, "20 MB: max buffered %zu bytes, %u sends refused, %u low events\n",
            max_buffered, eagain, a.low_events);
    /* The sender's buffer, plus at most one message still being fed in. */
    ASSERT_INT(max_buffered, <=, SNDBUF + CHUNK);
    ASSERT_INT(eagain, >, 0);
    ASSERT_INT(a.low_events, >, 0);
    PUMP_UNTIL(&a, &b, md_sctp_buffered_amount(a.sctp) == 0);
    endpoint_clear(&a);
    endpoint_clear(&b);
}

static void test_slow_reader(void)
{
    md_sctp_options o = {
        .send_buffer = SNDBUF, .receive_buffer = 128 * 1024, .max_send_message_size = CHUNK};
    struct endpoint a, b;
    unsigned eagain;
    connect_pair(&a, &b, &o, &o);
    open_channel(&b, &a, 1, "file", MD_DCEP_RELIABLE, 0);

    /* A reader that does not read at all: the sender fills up and stops. */
    md_sctp_set_receive_paused(b.sctp, true);
    uint8_t *chunk = g_malloc0(CHUNK);
    unsigned accepted = 0;
    for (int round = 0; round < 2000; round++) {
        int r = md_sctp_send(a.sctp, 1, MD_SCTP_PPID_BINARY, chunk, CHUNK);
        if (r == 0)
            accepted++;
        else
            ASSERT_EQ(r, -EAGAIN);
        pump_once(&a, &b);
        ASSERT_INT(md_sctp_buffered_amount(a.sctp), <=, SNDBUF + CHUNK);
    }
    ASSERT_EQ(b.bytes_received, 0);
    /* Bounded: the peer's window plus our buffer, not 2000 chunks. */
    ASSERT_INT((uint64_t)accepted * CHUNK, <=, 128 * 1024 + SNDBUF + 2 * CHUNK);
    ASSERT_INT(md_sctp_buffered_amount(a.sctp), >, SNDBUF / 2);
    md_sctp_set_receive_paused(b.sctp, false);
    PUMP_UNTIL(&a, &b, b.bytes_received == (uint64_t)accepted * CHUNK);
    g_free(chunk);

    /* Then a slow but steady reader (one pump in 8): completes, bounded. */
    size_t max_buffered = transfer(&a, &b, 4u << 20, 8, &eagain);
    ASSERT_INT(max_buffered, <=, SNDBUF + CHUNK);
    ASSERT_INT(eagain, >, 0);
    endpoint_clear(&a);
    endpoint_clear(&b);
}

static void test_close_by_stream_reset(void)
{
    struct endpoint a, b;
    connect_pair(&a, &b, NULL, NULL);
    open_channel(&a, &b, 0, "chat", MD_DCEP_RELIABLE, 0);
    open_channel(&b, &a, 1, "file", MD_DCEP_RELIABLE, 0);

    /* Local close: no more sends, both sides see the channel closed. */
    ASSERT_OK(md_sctp_send(a.sctp, 0, MD_SCTP_PPID_STRING, (const uint8_t *)"bye", 3));
    ASSERT_OK(md_sctp_close_stream(a.sctp, 0));
    ASSERT_EQ(md_sctp_send(a.sctp, 0, MD_SCTP_PPID_STRING, (const uint8_t *)"x", 1), -EPIPE);
    PUMP_UNTIL(&a, &b, a.n_closed_streams == 1 && b.n_closed_streams == 1);
    ASSERT_EQ(a.closed_streams[0], 0);
    ASSERT_EQ(b.closed_streams[0], 0);
    ASSERT_EQ(b.messages->len, 1); /* "bye" arrived before the reset */

    /* Remote-initiated close of the other channel, then both reuse ids. */
    ASSERT_OK(md_sctp_close_stream(b.sctp, 1));
    PUMP_UNTIL(&a, &b, a.n_closed_streams == 2 && b.n_closed_streams == 2);
    ASSERT_EQ(a.closed_streams[1], 1);
    for (int i = 0; i < 50; i++)
        pump_once(&a, &b);
    open_channel(&a, &b, 0, "chat", MD_DCEP_RELIABLE, 0);
    open_channel(&b, &a, 1, "file", MD_DCEP_RELIABLE, 0);
    ASSERT_OK(md_sctp_send(b.sctp, 1, MD_SCTP_PPID_STRING, (const uint8_t *)"again", 5));
    PUMP_UNTIL(&a, &b, a.messages->len == 1);
    ASSERT_EQ(msg_at(&a, 0)->len, 5);
    endpoint_clear(&a);
    endpoint_clear(&b);
}

static void test_message_size_caps(void)
{
    /* a may send up to 1 MB; b accepts only 100 000 bytes. */
    md_sctp_options oa = {.max_send_message_size = 1u << 20};
    md_sctp_options ob = {.max_receive_message_size = 100000};
    struct endpoint a, b;
    connect_pair(&a, &b, &oa, &ob);
    open_channel(&a, &b, 0, "chat", MD_DCEP_RELIABLE, 0);
    open_channel(&a, &b, 2, "file", MD_DCEP_RELIABLE, 0);

    uint8_t *big = g_malloc0((1u << 20) + 1);
    ASSERT_EQ(md_sctp_send(a.sctp, 0, MD_SCTP_PPID_BINARY, big, (1u << 20) + 1), -MD_E_TOO_LARGE);
    /* Exactly at b's cap is fine, in one message larger than SO_SNDBUF/4. */
    ASSERT_OK(md_sctp_send(a.sctp, 2, MD_SCTP_PPID_BINARY, big, 100000));
    PUMP_UNTIL(&a, &b, b.messages->len == 1);
    ASSERT_EQ(msg_at(&b, 0)->len, 100000);
    /* One byte more: dropped, reported, the stream reset. */
    ASSERT_OK(md_sctp_send(a.sctp, 0, MD_SCTP_PPID_BINARY, big, 100001));
    PUMP_UNTIL(&a, &b, b.stream_error != 0 && a.n_closed_streams == 1);
    ASSERT_EQ(b.stream_error, -MD_E_TOO_LARGE);
    ASSERT_EQ(a.closed_streams[0], 0);
    ASSERT_EQ(b.messages->len, 1);
    /* The other channel still works. */
    ASSERT_OK(md_sctp_send(a.sctp, 2, MD_SCTP_PPID_STRING, (const uint8_t *)"ok", 2));
    PUMP_UNTIL(&a, &b, b.messages->len == 2);
    g_free(big);
    endpoint_clear(&a);
    endpoint_clear(&b);
}

static void test_abort_on_free(void)
{
    struct endpoint a, b;
    connect_pair(&a, &b, NULL, NULL);
    open_channel(&a, &b, 0, "chat", MD_DCEP_RELIABLE, 0);
    guint before = g_queue_get_length(&b.inbox);
    a.sctp = md_sctp_free(a.sctp);
    /* The ABORT went out through a's send callback before free returned. */
    ASSERT_INT(g_queue_get_length(&b.inbox), >, before);
    PUMP_UNTIL(&a, &b, b.closed);
    ASSERT(b.closed_error < 0);
    ASSERT_EQ(md_sctp_send(b.sctp, 0, MD_SCTP_PPID_STRING, (const uint8_t *)"x", 1),
              -MD_E_SCTP_FAILED);
    endpoint_clear(&a);
    endpoint_clear(&b);
}

int main(void)
{
    ctx = g_main_context_new();
    g_main_context_push_thread_default(ctx);
    RUN(test_open_chat_both_ways);
    RUN(test_bulk_transfer_bounded);
    RUN(test_slow_reader);
    RUN(test_close_by_stream_reset);
    RUN(test_message_size_caps);
    RUN(test_abort_on_free);
    g_main_context_pop_thread_default(ctx);
    g_main_context_unref(ctx);
    return 0;
}
