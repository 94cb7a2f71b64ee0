/*
 * The recorder over GStreamer (md_recorder.h, docs/internals/recorder.md).
 *
 * Four single-producer/single-consumer rings per recorder carry RTP packets
 * from the media worker (producer: md_recorder_push, lock-free, never
 * blocks) to the recorder's own thread (consumer), which stamps each packet
 * with its arrival time as running time of the pipeline and pushes it into
 * that stream's appsrc, but only while the appsrc holds less than its cap:
 * a stalled pipeline therefore fills the appsrc, then the ring, and the
 * producer drops and counts.  The same thread watches the bus and, on stop,
 * sends EOS and finishes the file.  The pipeline runs on the system clock
 * (CLOCK_MONOTONIC, as g_get_monotonic_time()) with a base time fixed at
 * creation, so running time = arrival - start for every stream alike.
 *
 * The appsink's callback (a GStreamer streaming thread) is the only writer
 * of the encrypted file until the recorder thread finishes it after EOS.
 */
#include "md_recorder.h"
#include "md_crypto.h"
#include "md_err.h"
#include "md_log.h"

#include <errno.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <jansson.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define MAX_PACKET 1500
#define APPSRC_MAX_BYTES (512 * 1024)
#define STOP_TIMEOUT_US (5 * G_USEC_PER_SEC)
/* The recorder thread's period: packets wait in the rings at most this long
 * (well inside the jitter buffer's latency; timestamps are arrival times),
 * and each pass moves them as one list per stream. */
#define POLL_US 20000
#define JITTER_LATENCY_MS 100

struct slot {
    int64_t arrival_us;
    uint16_t len;
    uint8_t data[MAX_PACKET];
};

struct ring {
    struct slot *slots;
    unsigned mask;
    _Atomic unsigned head; /* next slot the producer fills */
    _Atomic unsigned tail; /* next slot the consumer takes */
};

struct md_recorder {
    char *recording_id;
    char *codec;
    char *description; /* gst_parse_launch() text, built by md_recorder_new() */
    bool present[2][2];
    struct ring rings[2][2];
    GstElement *pipeline;
    GstElement *src[2][2];
    GstClockTime base; /* monotonic ns at start */
    unsigned flush_ms;

    /* appsink side (streaming thread), then the recorder thread after EOS */
    md_evidence_rec *file;
    int file_error;
    gint64 last_flush_us;

    /* media time muxed, from the muxer's sink pads */
    GMutex time_lock;
    GstClockTime first_pts, last_end;

    GMutex stall_lock;
    GCond stall_cond;
    bool stalled, tearing_down;
    _Atomic bool stalled_feed; /* the test hook also stops the feeder */

    _Atomic uint64_t dropped, packets;
    _Atomic bool stop;
    md_recorder_done_cb done;
    void *done_ud;
    GThread *thread;
};

static GMutex live_lock;
static GCond live_cond;
static unsigned live_count;

static void gst_once(void)
{
    static gsize done;
    if (g_once_init_enter(&done)) {
        gst_init(NULL, NULL);
        g_once_init_leave(&done, 1);
    }
}

/* ---- rings ---------------------------------------------------------------------- */

static void ring_init(struct ring *q, unsigned packets)
{
    unsigned cap = 1;
    while (cap < packets)
        cap <<= 1;
    q->slots = g_new(struct slot, cap);
    q->mask = cap - 1;
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
}

void md_recorder_push(md_recorder *r, int party, int kind, const uint8_t *rtp, size_t len,
                      int64_t arrival_us)
{
    if (!r || party < 0 || party > 1 || kind < 0 || kind > 1 || !r->present[party][kind])
        return;
    struct ring *q = &r->rings[party][kind];
    unsigned head = atomic_load_explicit(&q->head, memory_order_relaxed);
    unsigned tail = atomic_load_explicit(&q->tail, memory_order_acquire);
    if (len > MAX_PACKET || head - tail > q->mask) {
        atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
        return;
    }
    struct slot *s = &q->slots[head & q->mask];
    memcpy(s->data, rtp, len);
    s->len = (uint16_t)len;
    s->arrival_us = arrival_us;
    atomic_store_explicit(&q->head, head + 1, memory_order_release);
}

uint64_t md_recorder_dropped(const md_recorder *r)
{
    return atomic_load_explicit(&((md_recorder *)r)->dropped, memory_order_relaxed);
}

uint64_t md_recorder_packets(const md_recorder *r)
{
    return atomic_load_explicit(&((md_recorder *)r)->packets, memory_order_relaxed);
}

/* Recorder thread: moves what the rings hold into the appsrcs that have room. */
static void drain(md_recorder *r)
{
    if (atomic_load_explicit(&r->stalled_feed, memory_order_relaxed))
        return; /* test hook: a pipeline that accepts nothing */
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < 2; k++) {
            if (!r->present[p][k])
                continue;
            struct ring *q = &r->rings[p][k];
            GstAppSrc *src = GST_APP_SRC(r->src[p][k]);
            unsigned tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
            unsigned head = atomic_load_explicit(&q->head, memory_order_acquire);
            if (tail == head)
                continue;
            /* One list per stream and pass: the appsrc queues it as one item
             * and wakes its task once, not once per packet. */
            guint64 level = gst_app_src_get_current_level_bytes(src);
            GstBufferList *list = gst_buffer_list_new_sized(head - tail);
            while (tail != head && level < APPSRC_MAX_BYTES) {
                struct slot *s = &q->slots[tail & q->mask];
                GstClockTime at = (GstClockTime)s->arrival_us * 1000;
                GstBuffer *buf = gst_buffer_new_memdup(s->data, s->len);
                /* Arrival on the pipeline's clock; packets from before the
                 * start (none, normally) count as at the start. */
                GST_BUFFER_DTS(buf) = at > r->base ? at - r->base : 0;
                GST_BUFFER_PTS(buf) = GST_BUFFER_DTS(buf);
                gst_buffer_list_add(list, buf);
                level += s->len;
                tail++;
                atomic_store_explicit(&q->tail, tail, memory_order_release);
            }
            guint n = gst_buffer_list_length(list);
            if (n > 0) {
                gst_app_src_push_buffer_list(src, list);
                atomic_fetch_add_explicit(&r->packets, n, memory_order_relaxed);
            } else {
                gst_buffer_list_unref(list);
            }
        }
}

/* ---- appsink: the muxed bytes into the encrypted file ------------------------------ */

static GstFlowReturn on_new_sample(GstAppSink *sink, gpointer ud)
{
    md_recorder *r = ud;
    GstSample *sample = gst_app_sink_pull_sample(sink);
    if (!sample)
        return GST_FLOW_EOS;
    g_mutex_lock(&r->stall_lock);
    while (r->stalled && !r->tearing_down)
        g_cond_wait(&r->stall_cond, &r->stall_lock);
    bool discard = r->tearing_down;
    g_mutex_unlock(&r->stall_lock);

    GstBuffer *buf = gst_sample_get_buffer(sample);
    GstMapInfo map;
    if (!discard && r->file_error == 0 && buf && gst_buffer_map(buf, &map, GST_MAP_READ)) {
        int e = md_evidence_rec_write(r->file, map.data, map.size);
        gst_buffer_unmap(buf, &map);
        gint64 now = g_get_monotonic_time();
        if (e == 0 && now - r->last_flush_us >= (gint64)r->flush_ms * 1000) {
            e = md_evidence_rec_flush(r->file);
            r->last_flush_us = now;
        }
        if (e < 0)
            r->file_error = e;
    }
    gst_sample_unref(sample);
    return r->file_error ? GST_FLOW_ERROR : GST_FLOW_OK;
}

/* Per muxer sink pad: the recorder and the last timestamp it passed. */
struct mux_pad {
    md_recorder *r;
    GstClockTime last;
};

/* Timestamps into the muxer strictly increase per track: Matroska keeps
 * milliseconds and MP4 needs distinct decode times, while two frames that
 * arrived in one burst can map to the same millisecond.  Also measures the
 * media time muxed. */
static GstPadProbeReturn on_mux_buffer(GstPad *pad, GstPadProbeInfo *info, gpointer ud)
{
    struct mux_pad *mp = ud;
    md_recorder *r = mp->r;
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    GstClockTime pts = GST_BUFFER_PTS(buf);
    if (!GST_CLOCK_TIME_IS_VALID(pts))
        return GST_PAD_PROBE_OK;
    if (GST_CLOCK_TIME_IS_VALID(mp->last) && pts < mp->last + GST_MSECOND) {
        buf = gst_buffer_make_writable(buf);
        pts = mp->last + GST_MSECOND;
        GST_BUFFER_PTS(buf) = pts;
        GST_BUFFER_DTS(buf) = pts;
        GST_PAD_PROBE_INFO_DATA(info) = buf;
    }
    mp->last = pts;
    GstClockTime end = pts + (GST_BUFFER_DURATION_IS_VALID(buf) ? GST_BUFFER_DURATION(buf) : 0);
    g_mutex_lock(&r->time_lock);
    if (!GST_CLOCK_TIME_IS_VALID(r->first_pts) || pts < r->first_pts)
        r->first_pts = pts;
    if (!GST_CLOCK_TIME_IS_VALID(r->last_end) || end > r->last_end)
        r->last_end = end;
    g_mutex_unlock(&r->time_lock);
    return GST_PAD_PROBE_OK;
}

/* ---- pipeline ------------------------------------------------------------------- */

static const char *party_name(int p)
{
    return p == MD_RECORDER_TABLET ? "tablet" : "verifier";
}

/* One branch per present stream; tracks in the order tablet video, tablet
 * audio, verifier video, verifier audio. */
static char *describe(const md_recorder_options *opt, bool vp8)
{
    GString *s = g_string_new(NULL);
    g_string_append_printf(s,
                           "%s name=mux streamable=true min-cluster-duration=%" G_GUINT64_FORMAT
                           " max-cluster-duration=%" G_GUINT64_FORMAT
                           " ! appsink name=sink sync=false async=false",
                           vp8 ? "webmmux" : "matroskamux", (guint64)(500 * GST_MSECOND),
                           (guint64)(1000 * GST_MSECOND));
    for (int p = 0; p < 2; p++)
        for (int k = MD_RECORDER_VIDEO; k >= MD_RECORDER_AUDIO; k--) {
            const md_recorder_stream *st = &opt->streams[p][k];
            if (!st->present)
                continue;
            bool video = k == MD_RECORDER_VIDEO;
            g_string_append_printf(
                s,
                " appsrc name=src_%s_%s is-live=true format=time do-timestamp=false "
                "caps=\"application/x-rtp,media=%s,clock-rate=%u,encoding-name=%s,payload=%u\" "
                "! rtpjitterbuffer latency=%d ! %s ! mux.%s_%d",
                party_name(p), video ? "video" : "audio", video ? "video" : "audio",
                st->clock_rate ? st->clock_rate : (video ? 90000 : 48000),
                video ? (vp8 ? "VP8" : "H264") : "OPUS", st->pt, JITTER_LATENCY_MS,
                video ? (vp8 ? "rtpvp8depay"
                             : "rtph264depay ! h264parse ! "
                               "video/x-h264,stream-format=avc,alignment=au")
                      : "rtpopusdepay ! opusparse",
                video ? "video" : "audio", p);
        }
    return g_string_free(s, false);
}

static void recorder_free(md_recorder *r)
{
    if (r->pipeline) {
        gst_element_set_state(r->pipeline, GST_STATE_NULL);
        gst_object_unref(r->pipeline);
    }
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < 2; k++) {
            if (r->src[p][k])
                gst_object_unref(r->src[p][k]);
            g_free(r->rings[p][k].slots);
        }
    md_evidence_rec_abandon(r->file);
    g_mutex_clear(&r->time_lock);
    g_mutex_clear(&r->stall_lock);
    g_cond_clear(&r->stall_cond);
    g_free(r->recording_id);
    g_free(r->codec);
    g_free(r->description);
    g_free(r);
}

static gpointer recorder_thread(gpointer data);

/* Recorder thread: builds and starts the pipeline described at creation.
 * Packets pushed meanwhile wait in the rings, already on the timeline. */
static int build_pipeline(md_recorder *rec)
{
    GError *err = NULL;

    gst_once();
    rec->pipeline = gst_parse_launch(rec->description, &err);
    if (!rec->pipeline || err) {
        md_debug("recorder", "pipeline_failed", "{s:s, s:s}", "recording", rec->recording_id,
                 "error", err ? err->message : "?");
        g_clear_error(&err);
        return -MD_E_RECORDER;
    }
    GstElement *mux = gst_bin_get_by_name(GST_BIN(rec->pipeline), "mux");
    GstElement *sink = gst_bin_get_by_name(GST_BIN(rec->pipeline), "sink");
    GstAppSinkCallbacks cbs = {.new_sample = on_new_sample};
    gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cbs, rec, NULL);
    gst_object_unref(sink);
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < 2; k++) {
            if (!rec->present[p][k])
                continue;
            char name[32];
            g_snprintf(name, sizeof(name), "src_%s_%s", party_name(p), k ? "video" : "audio");
            rec->src[p][k] = gst_bin_get_by_name(GST_BIN(rec->pipeline), name);
        }
    GstIterator *it = gst_element_iterate_sink_pads(mux);
    GValue v = G_VALUE_INIT;
    while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
        struct mux_pad *mp = g_new0(struct mux_pad, 1);
        mp->r = rec;
        mp->last = GST_CLOCK_TIME_NONE;
        gst_pad_add_probe(GST_PAD(g_value_get_object(&v)), GST_PAD_PROBE_TYPE_BUFFER, on_mux_buffer,
                          mp, g_free);
        g_value_reset(&v);
    }
    g_value_unset(&v);
    gst_iterator_free(it);
    gst_object_unref(mux);

    /* One clock for every stream: the monotonic system clock (the clock of
     * g_get_monotonic_time()), base = when md_recorder_new() ran. */
    GstClock *clock = gst_system_clock_obtain();
    gst_pipeline_use_clock(GST_PIPELINE(rec->pipeline), clock);
    gst_object_unref(clock);
    gst_element_set_start_time(rec->pipeline, GST_CLOCK_TIME_NONE);
    gst_element_set_base_time(rec->pipeline, rec->base);
    if (gst_element_set_state(rec->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
        return -MD_E_RECORDER;
    return 0;
}

int md_recorder_new(const md_recorder_options *opt, md_evidence_rec *file, md_recorder **ret)
{
    if (!opt || !opt->recording_id || !opt->video_codec || !ret) {
        md_evidence_rec_abandon(file);
        return -EINVAL;
    }
    bool vp8 = strcmp(opt->video_codec, "VP8") == 0;
    if (!vp8 && strcmp(opt->video_codec, "H264") != 0) {
        md_evidence_rec_abandon(file);
        return -MD_E_SDP_UNSUPPORTED;
    }
    /* Nothing here touches GStreamer: this runs on the media worker, and
     * loading plugins and building the pipeline take long enough (hundreds
     * of ms, seconds under a sanitizer) to stall forwarding. */
    md_recorder *rec = g_new0(md_recorder, 1);
    rec->recording_id = g_strdup(opt->recording_id);
    rec->codec = g_strdup(opt->video_codec);
    rec->description = describe(opt, vp8);
    rec->file = file;
    rec->flush_ms = opt->flush_ms ? opt->flush_ms : 1000;
    rec->first_pts = rec->last_end = GST_CLOCK_TIME_NONE;
    rec->base = (GstClockTime)g_get_monotonic_time() * 1000;
    rec->last_flush_us = g_get_monotonic_time();
    g_mutex_init(&rec->time_lock);
    g_mutex_init(&rec->stall_lock);
    g_cond_init(&rec->stall_cond);
    atomic_init(&rec->dropped, 0);
    atomic_init(&rec->packets, 0);
    atomic_init(&rec->stop, false);
    atomic_init(&rec->stalled_feed, false);
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < 2; k++) {
            if (!opt->streams[p][k].present)
                continue;
            rec->present[p][k] = true;
            ring_init(&rec->rings[p][k], opt->queue_packets ? opt->queue_packets : 1024);
        }
    g_mutex_lock(&live_lock);
    live_count++;
    g_mutex_unlock(&live_lock);
    rec->thread = g_thread_new("md-recorder", recorder_thread, rec);
    *ret = rec;
    return 0;
}

void md_recorder_test_stall(md_recorder *r, bool stalled)
{
    if (!r)
        return;
    g_mutex_lock(&r->stall_lock);
    r->stalled = stalled;
    g_cond_broadcast(&r->stall_cond);
    g_mutex_unlock(&r->stall_lock);
    atomic_store(&r->stalled_feed, stalled);
}

void md_recorder_stop(md_recorder *r, md_recorder_done_cb done, void *userdata)
{
    if (!r)
        return;
    r->done = done;
    r->done_ud = userdata;
    atomic_store(&r->stop, true);
}

void md_recorder_wait_all(void)
{
    g_mutex_lock(&live_lock);
    while (live_count > 0)
        g_cond_wait(&live_cond, &live_lock);
    g_mutex_unlock(&live_lock);
}

/* Pops one message that ends the recording: EOS or an error. */
static GstMessage *pop_end(GstBus *bus)
{
    return gst_bus_pop_filtered(bus, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
}

static int error_of(GstMessage *msg, const char *id)
{
    if (GST_MESSAGE_TYPE(msg) != GST_MESSAGE_ERROR)
        return 0;
    GError *err = NULL;
    gst_message_parse_error(msg, &err, NULL);
    md_debug("recorder", "pipeline_error", "{s:s, s:s, s:s}", "recording", id, "element",
             GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)), "error", err ? err->message : "?");
    g_clear_error(&err);
    return -MD_E_RECORDER;
}

static gpointer recorder_thread(gpointer data)
{
    md_recorder *r = data;
    GstBus *bus = NULL;
    GstMessage *msg = NULL;
    int error = build_pipeline(r);

    if (error < 0)
        goto stopped;
    bus = gst_element_get_bus(r->pipeline);
    /* Recording: until stop, or an error. */
    while (!atomic_load(&r->stop)) {
        drain(r);
        if ((msg = pop_end(bus)) != NULL)
            break;
        g_usleep(POLL_US);
    }
    if (msg) {
        error = error_of(msg, r->recording_id) ?: -MD_E_RECORDER; /* EOS unasked: an error */
        gst_message_unref(msg);
        msg = NULL;
    } else {
        /* Stopping: what the rings hold, then EOS through the muxer. */
        gint64 deadline = g_get_monotonic_time() + STOP_TIMEOUT_US;
        drain(r);
        for (int p = 0; p < 2; p++)
            for (int k = 0; k < 2; k++)
                if (r->src[p][k])
                    gst_app_src_end_of_stream(GST_APP_SRC(r->src[p][k]));
        while (!(msg = pop_end(bus)) && g_get_monotonic_time() < deadline)
            g_usleep(POLL_US);
        if (!msg) {
            md_debug("recorder", "stop_timeout", "{s:s}", "recording", r->recording_id);
            error = -ETIMEDOUT;
        } else {
            error = error_of(msg, r->recording_id);
            gst_message_unref(msg);
        }
    }
stopped:
    while (!atomic_load(&r->stop)) /* an error: wait for the owner's stop */
        g_usleep(POLL_US * 4);

    g_mutex_lock(&r->stall_lock);
    r->tearing_down = true;
    g_cond_broadcast(&r->stall_cond);
    g_mutex_unlock(&r->stall_lock);
    if (r->pipeline)
        gst_element_set_state(r->pipeline, GST_STATE_NULL);
    if (bus)
        gst_object_unref(bus);

    char sha[MD_SHA256_HEX_LEN + 1] = "";
    uint64_t bytes = 0;
    if (error == 0 && r->file_error == 0) {
        error = md_evidence_rec_finish(r->file, sha, &bytes);
        r->file = NULL;
    } else if (error == 0) {
        error = r->file_error;
    }
    md_recorder_result res = {
        .recording_id = r->recording_id,
        .state = error ? "cut" : "complete",
        .error = error,
        .sha256 = sha,
        .bytes = bytes,
        .packets = atomic_load(&r->packets),
        .dropped = atomic_load(&r->dropped),
    };
    g_mutex_lock(&r->time_lock);
    if (GST_CLOCK_TIME_IS_VALID(r->first_pts) && r->last_end > r->first_pts)
        res.duration_ms = (int64_t)((r->last_end - r->first_pts) / GST_MSECOND);
    md_debug("recorder", "finished", "{s:s, s:I, s:I, s:I}", "recording", r->recording_id,
             "first_ms",
             GST_CLOCK_TIME_IS_VALID(r->first_pts) ? (json_int_t)(r->first_pts / GST_MSECOND) : -1,
             "end_ms",
             GST_CLOCK_TIME_IS_VALID(r->last_end) ? (json_int_t)(r->last_end / GST_MSECOND) : -1,
             "stopped_ms", (json_int_t)((g_get_monotonic_time() * 1000 - r->base) / GST_MSECOND));
    g_mutex_unlock(&r->time_lock);
    if (r->file) {
        /* Cut: the file keeps what was sealed, and its hash is of that. */
        md_evidence_rec_cut(r->file, sha, &bytes);
        r->file = NULL;
    }
    if (r->done)
        r->done(&res, r->done_ud);
    g_thread_unref(r->thread);
    r->thread = NULL;
    recorder_free(r);

    g_mutex_lock(&live_lock);
    live_count--;
    g_cond_broadcast(&live_cond);
    g_mutex_unlock(&live_lock);
    return NULL;
}

/* ---- export ---------------------------------------------------------------------- */

struct export_ctx {
    GstElement *pipeline, *mux, *sink;
    const char *container;
    GMutex lock;
    GstClockTime first_pts, last_end;
    bool linked;
};

static GstPadProbeReturn on_export_buffer(GstPad *pad, GstPadProbeInfo *info, gpointer ud)
{
    struct export_ctx *x = ud;
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    GstClockTime pts = GST_BUFFER_PTS(buf);
    if (!GST_CLOCK_TIME_IS_VALID(pts))
        return GST_PAD_PROBE_OK;
    GstClockTime end = pts + (GST_BUFFER_DURATION_IS_VALID(buf) ? GST_BUFFER_DURATION(buf) : 0);
    g_mutex_lock(&x->lock);
    if (!GST_CLOCK_TIME_IS_VALID(x->first_pts) || pts < x->first_pts)
        x->first_pts = pts;
    if (!GST_CLOCK_TIME_IS_VALID(x->last_end) || end > x->last_end)
        x->last_end = end;
    g_mutex_unlock(&x->lock);
    return GST_PAD_PROBE_OK;
}

/* The demuxer announced every track (before any data): the container
 * follows the video codec, and each track gets a queue into the muxer. */
static void on_no_more_pads(GstElement *demux, gpointer ud)
{
    struct export_ctx *x = ud;
    bool h264 = false;
    GstIterator *it = gst_element_iterate_src_pads(demux);
    GValue v = G_VALUE_INIT;
    GPtrArray *pads = g_ptr_array_new_with_free_func(gst_object_unref);
    while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
        GstPad *pad = g_value_get_object(&v);
        GstCaps *caps = gst_pad_get_current_caps(pad);
        if (caps) {
            const char *name = gst_structure_get_name(gst_caps_get_structure(caps, 0));
            h264 = h264 || strcmp(name, "video/x-h264") == 0;
            gst_caps_unref(caps);
        }
        g_ptr_array_add(pads, gst_object_ref(pad));
        g_value_reset(&v);
    }
    g_value_unset(&v);
    gst_iterator_free(it);

    x->container = h264 ? "mp4" : "webm";
    x->mux = gst_element_factory_make(h264 ? "mp4mux" : "webmmux", "mux");
    if (!x->mux) {
        md_debug("recorder", "export_no_muxer", "{s:s}", "container", x->container);
        goto out;
    }
    gst_bin_add(GST_BIN(x->pipeline), x->mux);
    if (!gst_element_link(x->mux, x->sink)) {
        md_debug("recorder", "export_link_failed", "{s:s}", "pad", "sink");
        goto out;
    }
    /* Running before the first event reaches it, or the event is lost. */
    gst_element_sync_state_with_parent(x->mux);
    /* Pads in demuxer order: tracks keep the recording's order. */
    for (guint i = 0; i < pads->len; i++) {
        GstPad *pad = pads->pdata[i];
        GstElement *queue = gst_element_factory_make("queue", NULL);
        /* A track that starts late (video waits for its first keyframe)
         * must not block the demuxer on the others' full queues: bounded
         * by bytes only. */
        g_object_set(queue, "max-size-time", (guint64)0, "max-size-buffers", 0u, "max-size-bytes",
                     64u * 1024 * 1024, NULL);
        gst_bin_add(GST_BIN(x->pipeline), queue);
        GstPad *qsink = gst_element_get_static_pad(queue, "sink");
        GstPad *qsrc = gst_element_get_static_pad(queue, "src");
        GstCaps *caps = gst_pad_get_current_caps(pad);
        bool video = caps && g_str_has_prefix(
                                 gst_structure_get_name(gst_caps_get_structure(caps, 0)), "video/");
        GstPad *mpad = gst_element_request_pad_simple(x->mux, video ? "video_%u" : "audio_%u");
        GstPadLinkReturn lr = mpad ? gst_pad_link(qsrc, mpad) : GST_PAD_LINK_REFUSED;
        bool ok = mpad && lr == GST_PAD_LINK_OK && gst_pad_link(pad, qsink) == GST_PAD_LINK_OK;
        if (!ok)
            md_debug("recorder", "export_link_failed", "{s:s, s:i}", "pad", GST_PAD_NAME(pad),
                     "link", (int)lr);
        if (caps)
            gst_caps_unref(caps);
        if (mpad)
            gst_object_unref(mpad);
        gst_object_unref(qsink);
        if (!ok) {
            gst_object_unref(qsrc);
            goto out;
        }
        gst_pad_add_probe(qsrc, GST_PAD_PROBE_TYPE_BUFFER, on_export_buffer, x, NULL);
        gst_object_unref(qsrc);
        gst_element_sync_state_with_parent(queue);
    }
    x->linked = true;
out:
    g_ptr_array_free(pads, true);
}

static int export_error(GstMessage *msg)
{
    GError *err = NULL;
    gchar *dbg = NULL;
    gst_message_parse_error(msg, &err, &dbg);
    md_debug("recorder", "export_error", "{s:s, s:s, s:s}", "element",
             GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)), "error", err ? err->message : "?", "debug",
             dbg ? dbg : "");
    g_clear_error(&err);
    g_free(dbg);
    return -MD_E_RECORDING_EXPORT;
}

int md_recorder_export(md_evidence_rec_reader *rd, const char *out_path, const char **ret_container,
                       int64_t *ret_duration_ms)
{
    struct export_ctx x = {.first_pts = GST_CLOCK_TIME_NONE, .last_end = GST_CLOCK_TIME_NONE};
    GstElement *src = NULL, *demux = NULL;
    GstBus *bus = NULL;
    GstMessage *msg = NULL;
    const size_t piece = 64 * 1024;
    int r = 0;

    if (!rd || !out_path)
        return -EINVAL;
    gst_once();
    g_mutex_init(&x.lock);
    x.pipeline = gst_pipeline_new("export");
    src = gst_element_factory_make("appsrc", "src");
    demux = gst_element_factory_make("matroskademux", "demux");
    x.sink = gst_element_factory_make("filesink", "sink");
    if (!x.pipeline || !src || !demux || !x.sink) {
        if (src)
            gst_object_unref(src);
        if (demux)
            gst_object_unref(demux);
        if (x.sink)
            gst_object_unref(x.sink);
        r = -MD_E_RECORDING_EXPORT;
        goto out;
    }
    g_object_set(src, "format", GST_FORMAT_BYTES, "stream-type", 0 /* stream */, NULL);
    g_object_set(x.sink, "location", out_path, NULL);
    gst_bin_add_many(GST_BIN(x.pipeline), src, demux, x.sink, NULL);
    if (!gst_element_link(src, demux)) {
        r = -MD_E_RECORDING_EXPORT;
        goto out;
    }
    g_signal_connect(demux, "no-more-pads", G_CALLBACK(on_no_more_pads), &x);
    if (gst_element_set_state(x.pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        r = -MD_E_RECORDING_EXPORT;
        goto out;
    }
    bus = gst_element_get_bus(x.pipeline);

    /* Plaintext in order, chunk by chunk; the reader authenticates each. */
    uint8_t *buf = g_malloc(piece);
    uint64_t off = 0, size = md_evidence_rec_reader_size(rd);
    while (off < size) {
        /* Paced by the demuxer: at most a few pieces wait in the appsrc. */
        while (!msg && gst_app_src_get_current_level_bytes(GST_APP_SRC(src)) > 4 * piece)
            msg = gst_bus_timed_pop_filtered(bus, 10 * GST_MSECOND, GST_MESSAGE_ERROR);
        if (msg || (msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) != NULL)
            break;
        ssize_t n = md_evidence_rec_reader_read(rd, off, buf, piece);
        if (n <= 0) {
            r = n < 0 ? (int)n : -MD_E_EVIDENCE_CORRUPT;
            break;
        }
        off += (uint64_t)n;
        GstBuffer *gb = gst_buffer_new_memdup(buf, (gsize)n);
        if (gst_app_src_push_buffer(GST_APP_SRC(src), gb) != GST_FLOW_OK)
            break; /* the error is on the bus */
    }
    md_wipe(buf, piece);
    g_free(buf);
    if (r < 0)
        goto out;
    gst_app_src_end_of_stream(GST_APP_SRC(src));
    if (!msg)
        msg = gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    if (!msg) {
        md_debug("recorder", "export_timeout", NULL);
        r = -MD_E_RECORDING_EXPORT;
    } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
        r = export_error(msg);
    } else if (!x.linked) {
        md_debug("recorder", "export_no_tracks", NULL);
        r = -MD_E_RECORDING_EXPORT;
    }
out:
    if (msg)
        gst_message_unref(msg);
    if (bus)
        gst_object_unref(bus);
    if (x.pipeline) {
        gst_element_set_state(x.pipeline, GST_STATE_NULL);
        gst_object_unref(x.pipeline);
    }
    if (r == 0) {
        if (ret_container)
            *ret_container = x.container;
        if (ret_duration_ms)
            *ret_duration_ms = GST_CLOCK_TIME_IS_VALID(x.first_pts) && x.last_end > x.first_pts
                                   ? (int64_t)(x.last_end / GST_MSECOND)
                                   : 0;
    } else {
        unlink(out_path);
    }
    g_mutex_clear(&x.lock);
    return r;
}
