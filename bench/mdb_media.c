/*
 * Media threads of the load generator, the pre-encoded tracks they replay
 * and the latency figures they collect.  A media thread owns one
 * GMainContext, the peers of the clients pinned to it and one mdb_stats; a
 * 2 ms timer paces every peer that is up.  Work from the main thread arrives
 * as idle sources attached to the context (FIFO), never by calling into a
 * peer from another thread.
 */
#include "mdb.h"

#include "md_rtp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PACE_MS 2

struct mdb_media {
    mdb_run *run;
    int index;
    GMainContext *ctx;
    GMainLoop *loop;
    GThread *thread;
    GSource *pacer;
    GPtrArray *peers; /* mdb_client * whose peer lives here */
    mdb_stats *stats;
    mdb_io *io; /* the batched path, NULL with --no-batch */
    int64_t last_tick;
};

typedef struct post {
    mdb_client *client;
    void (*fn)(mdb_client *, char *);
    char *arg;
} post;

int mdb_track_load(const char *path, bool video, uint32_t clock_rate, mdb_track *ret)
{
    gchar *data = NULL;
    gsize size = 0;
    if (!g_file_get_contents(path, &data, &size, NULL))
        return -ENOENT;
    GArray *pkts = g_array_new(FALSE, TRUE, sizeof(mdb_packet));
    const uint8_t *b = (const uint8_t *)data;
    size_t off = 0;
    uint32_t ts0 = 0, last_ts = 0;
    while (off + 2 <= size) {
        size_t len = md_get_u16(b + off);
        off += 2;
        if (len < MD_RTP_HEADER_LEN || off + len > size)
            break;
        md_rtp_header h;
        if (md_rtp_parse(b + off, len, &h) == 0) {
            if (pkts->len == 0)
                ts0 = h.timestamp;
            mdb_packet p = {.rtp = b + off, .len = (uint16_t)len, .ts = h.timestamp - ts0};
            p.at_us = (int64_t)p.ts * 1000000 / clock_rate;
            last_ts = p.ts;
            g_array_append_val(pkts, p);
        }
        off += len;
    }
    if (pkts->len < 2) {
        g_array_free(pkts, TRUE);
        g_free(data);
        return -EINVAL;
    }
    /* one frame interval after the last packet, so passes join seamlessly */
    uint32_t frame = video ? clock_rate / 30 : clock_rate / 50;
    *ret = (mdb_track){.blob = (uint8_t *)data,
                       .n = pkts->len,
                       .video = video,
                       .loop_ts = last_ts + frame,
                       .loop_us = (int64_t)(last_ts + frame) * 1000000 / clock_rate};
    ret->pkts = (mdb_packet *)g_array_free(pkts, FALSE);
    return 0;
}

void mdb_track_clear(mdb_track *t)
{
    g_free(t->pkts);
    g_free(t->blob);
    memset(t, 0, sizeof(*t));
}

void mdb_stats_add_latency(mdb_stats *s, int64_t us)
{
    if (us < 0)
        us = 0;
    int64_t b = us / MDB_HIST_STEP_US;
    s->hist[b < MDB_HIST_BUCKETS ? b : MDB_HIST_BUCKETS - 1]++;
    s->samples++;
}

double mdb_hist_percentile(const uint32_t *hist, uint64_t samples, double p)
{
    if (samples == 0)
        return -1;
    uint64_t want = (uint64_t)((double)samples * p / 100.0);
    if (want >= samples)
        want = samples - 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < MDB_HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen > want)
            return (double)(i * MDB_HIST_STEP_US) + MDB_HIST_STEP_US / 2.0;
    }
    return (double)MDB_HIST_BUCKETS * MDB_HIST_STEP_US;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double mdb_percentile(double *values, size_t n, double p)
{
    if (n == 0)
        return -1;
    qsort(values, n, sizeof(double), cmp_double);
    size_t i = (size_t)((double)(n - 1) * p / 100.0 + 0.5);
    return values[i < n ? i : n - 1];
}

static gboolean on_pace(gpointer data)
{
    mdb_media *m = data;
    int64_t now = g_get_monotonic_time();
    /* a tick much later than PACE_MS means this thread stalled: the
     * generator, not the gateway, delayed what it sends and receives */
    if (m->last_tick && now - m->last_tick > 5000 &&
        atomic_load_explicit(&m->run->measuring, memory_order_relaxed)) {
        m->stats->stalls++;
        if (now - m->last_tick > m->stats->max_stall_us)
            m->stats->max_stall_us = now - m->last_tick;
    }
    m->last_tick = now;
    for (guint i = 0; i < m->peers->len; i++) {
        mdb_client *c = g_ptr_array_index(m->peers, i);
        if (c->peer)
            mdb_peer_pace(c->peer, now);
    }
    return G_SOURCE_CONTINUE;
}

static gpointer thread_main(gpointer data)
{
    mdb_media *m = data;
    g_main_context_push_thread_default(m->ctx);
    g_main_loop_run(m->loop);
    g_main_context_pop_thread_default(m->ctx);
    return NULL;
}

int mdb_media_new(mdb_run *run, int index, mdb_media **ret)
{
    mdb_media *m = g_new0(mdb_media, 1);
    m->run = run;
    m->index = index;
    m->ctx = g_main_context_new();
    m->loop = g_main_loop_new(m->ctx, FALSE);
    m->peers = g_ptr_array_new();
    m->stats = g_new0(mdb_stats, 1);
    if (run->batch && mdb_io_new(m->ctx, m->stats, &m->io) < 0)
        m->io = NULL;
    m->pacer = g_timeout_source_new(PACE_MS);
    g_source_set_callback(m->pacer, on_pace, m, NULL);
    g_source_attach(m->pacer, m->ctx);
    char name[32];
    snprintf(name, sizeof(name), "mdb-media-%d", index);
    m->thread = g_thread_new(name, thread_main, m);
    *ret = m;
    return 0;
}

mdb_stats *mdb_media_stats(mdb_media *m)
{
    return m->stats;
}

GMainContext *mdb_media_context(mdb_media *m)
{
    return m->ctx;
}

mdb_io *mdb_media_io(mdb_media *m)
{
    return m->io;
}

static gboolean run_post(gpointer data)
{
    post *p = data;
    p->fn(p->client, p->arg);
    return G_SOURCE_REMOVE;
}

static void free_post(gpointer data)
{
    post *p = data;
    g_free(p->arg);
    g_free(p);
}

void mdb_media_post(mdb_client *c, void (*fn)(mdb_client *, char *), char *arg)
{
    post *p = g_new0(post, 1);
    p->client = c;
    p->fn = fn;
    p->arg = arg;
    GSource *s = g_idle_source_new();
    g_source_set_priority(s, G_PRIORITY_DEFAULT);
    g_source_set_callback(s, run_post, p, free_post);
    g_source_attach(s, c->media->ctx);
    g_source_unref(s);
}

void mdb_media_adopt(mdb_client *c)
{
    g_ptr_array_add(c->media->peers, c);
}

static gboolean quit(gpointer data)
{
    mdb_media *m = data;
    for (guint i = 0; i < m->peers->len; i++) {
        mdb_client *c = g_ptr_array_index(m->peers, i);
        uint64_t e = 0, r = 0;
        if (c->peer)
            mdb_peer_loss(c->peer, &e, &r);
        m->stats->expected += e;
        m->stats->lost += e > r ? e - r : 0;
        c->peer = mdb_peer_free(c->peer);
    }
    g_ptr_array_set_size(m->peers, 0);
    g_main_loop_quit(m->loop);
    return G_SOURCE_REMOVE;
}

void mdb_media_stop(mdb_media *m)
{
    if (!m->thread)
        return;
    GSource *s = g_idle_source_new();
    g_source_set_callback(s, quit, m, NULL);
    g_source_attach(s, m->ctx);
    g_source_unref(s);
    g_thread_join(m->thread);
    m->thread = NULL;
}

void mdb_media_free(mdb_media *m)
{
    if (!m)
        return;
    mdb_media_stop(m);
    g_source_destroy(m->pacer);
    g_source_unref(m->pacer);
    mdb_io_free(m->io);
    g_main_loop_unref(m->loop);
    g_main_context_unref(m->ctx);
    g_ptr_array_free(m->peers, TRUE);
    g_free(m->stats);
    g_free(m);
}

/* ---- what both signaling adapters post to a client's media thread ---- */

void mdb_media_offer(mdb_client *c, char *unused)
{
    (void)unused;
    if (mdb_peer_new(c, &c->peer) < 0) {
        atomic_store(&c->media_failed, 1);
        return;
    }
    mdb_media_adopt(c);
    mdb_signal_local_sdp(c, "offer", mdb_peer_offer(c->peer));
}

void mdb_media_answer(mdb_client *c, char *sdp)
{
    if (!c->peer || mdb_peer_remote_description(c->peer, sdp, false, NULL) < 0)
        atomic_store(&c->media_failed, 1);
}

void mdb_media_candidate(mdb_client *c, char *cand)
{
    if (c->peer)
        mdb_peer_add_candidate(c->peer, cand);
}
