/*
 * The event sink (see md_event_sink.h for threads and lifetime).  A posted
 * event becomes an event_msg: an owned copy of the md_media_event attached
 * to the control context as an idle source, which hands a view of it to the
 * owner's deliver callback unless the sink was closed meanwhile.
 */
#include "md_event_sink.h"
#include "md_crypto.h"

#include <string.h>

struct md_event_sink {
    gatomicrefcount refs;
    GMainContext *control;
    /* Control thread only; NULL once md_event_sink_close() ran. */
    md_event_sink_deliver_cb deliver;
    void *owner;
};

struct event_msg {
    md_event_sink *sink;
    uint64_t serial;
    md_media_event_type type;
    md_leg leg;
    int error;
    char *session_id, *sdp, *candidate, *mid, *error_detail;
    json_t *stats; /* a copy made for the control thread alone */
    char *chat_id, *chat_text, *chat_sha256, *label;
    int64_t chat_ts;
    md_owned_file file;
    /* MD_MEDIA_RECORDING: owned copies */
    char *rec_id, *rec_state, *rec_codec, *rec_sha256;
    md_media_recording rec;
};

md_event_sink *md_event_sink_new(GMainContext *control, md_event_sink_deliver_cb deliver,
                                 void *owner)
{
    md_event_sink *sink = g_new0(md_event_sink, 1);
    g_atomic_ref_count_init(&sink->refs);
    sink->control = g_main_context_ref(control);
    sink->deliver = deliver;
    sink->owner = owner;
    return sink;
}

void md_event_sink_close(md_event_sink *sink)
{
    sink->deliver = NULL;
    sink->owner = NULL;
}

md_event_sink *md_event_sink_ref(md_event_sink *sink)
{
    g_atomic_ref_count_inc(&sink->refs);
    return sink;
}

void md_event_sink_unref(md_event_sink *sink)
{
    if (sink && g_atomic_ref_count_dec(&sink->refs)) {
        g_main_context_unref(sink->control);
        g_free(sink);
    }
}

static void event_msg_free(gpointer data)
{
    struct event_msg *msg = data;
    md_event_sink_unref(msg->sink);
    g_free(msg->session_id);
    g_free(msg->sdp);
    g_free(msg->candidate);
    g_free(msg->mid);
    g_free(msg->error_detail);
    json_decref(msg->stats);
    g_free(msg->chat_id);
    if (msg->chat_text) /* evidence: not left in freed memory */
        md_wipe(msg->chat_text, strlen(msg->chat_text));
    g_free(msg->chat_text);
    g_free(msg->chat_sha256);
    g_free(msg->label);
    md_owned_file_clear(&msg->file);
    g_free(msg->rec_id);
    g_free(msg->rec_state);
    g_free(msg->rec_codec);
    g_free(msg->rec_sha256);
    g_free(msg);
}

/* Control thread. */
static gboolean deliver(gpointer data)
{
    struct event_msg *msg = data;
    md_event_sink *sink = msg->sink;
    if (!sink->deliver)
        return G_SOURCE_REMOVE;
    md_media_recording recording = msg->rec;
    recording.id = msg->rec_id;
    recording.state = msg->rec_state;
    recording.codec = msg->rec_codec;
    recording.sha256 = msg->rec_sha256;
    md_media_event ev = {
        .type = msg->type,
        .session_id = msg->session_id,
        .leg = msg->leg,
        .sdp = msg->sdp,
        .candidate = msg->candidate,
        .mid = msg->mid,
        .error = msg->error,
        .error_detail = msg->error_detail,
        .stats = msg->stats,
        .chat_id = msg->chat_id,
        .chat_text = msg->chat_text,
        .chat_sha256 = msg->chat_sha256,
        .chat_ts = msg->chat_ts,
        .label = msg->label,
        .file = md_owned_file_view(&msg->file),
        .recording = recording,
    };
    sink->deliver(&ev, msg->serial, sink->owner);
    return G_SOURCE_REMOVE;
}

void md_event_sink_post(md_event_sink *sink, const md_media_event *ev, uint64_t serial)
{
    struct event_msg *msg = g_new0(struct event_msg, 1);
    msg->sink = md_event_sink_ref(sink);
    msg->serial = serial;
    msg->type = ev->type;
    msg->leg = ev->leg;
    msg->error = ev->error;
    msg->session_id = g_strdup(ev->session_id);
    msg->sdp = g_strdup(ev->sdp);
    msg->candidate = g_strdup(ev->candidate);
    msg->mid = g_strdup(ev->mid);
    msg->error_detail = g_strdup(ev->error_detail);
    /* A deep copy: jansson's reference counts are not shared across threads. */
    msg->stats = ev->stats ? json_deep_copy(ev->stats) : NULL;
    msg->chat_id = g_strdup(ev->chat_id);
    msg->chat_text = g_strdup(ev->chat_text);
    msg->chat_sha256 = g_strdup(ev->chat_sha256);
    msg->chat_ts = ev->chat_ts;
    msg->label = g_strdup(ev->label);
    md_owned_file_copy(&msg->file, &ev->file);
    if (ev->type == MD_MEDIA_RECORDING) {
        msg->rec = ev->recording;
        msg->rec_id = g_strdup(ev->recording.id);
        msg->rec_state = g_strdup(ev->recording.state);
        msg->rec_codec = g_strdup(ev->recording.codec);
        msg->rec_sha256 = g_strdup(ev->recording.sha256 ? ev->recording.sha256 : "");
    }
    GSource *src = g_idle_source_new();
    g_source_set_priority(src, G_PRIORITY_DEFAULT);
    g_source_set_callback(src, deliver, msg, event_msg_free);
    g_source_attach(src, sink->control);
    g_source_unref(src);
}

/* ---- owned files ---- */

void md_owned_file_copy(md_owned_file *dst, const md_media_file *f)
{
    *dst = (md_owned_file){.id = g_strdup(f->id),
                           .name = g_strdup(f->name),
                           .mime = g_strdup(f->mime),
                           .sha256 = g_strdup(f->sha256),
                           .size = f->size,
                           .still = f->still,
                           .width = f->width,
                           .height = f->height};
}

md_media_file md_owned_file_view(const md_owned_file *f)
{
    return (md_media_file){.id = f->id,
                           .name = f->name,
                           .mime = f->mime,
                           .sha256 = f->sha256,
                           .size = f->size,
                           .still = f->still,
                           .width = f->width,
                           .height = f->height};
}

void md_owned_file_clear(md_owned_file *f)
{
    g_free(f->id);
    g_free(f->name);
    g_free(f->mime);
    g_free(f->sha256);
    memset(f, 0, sizeof(*f));
}
