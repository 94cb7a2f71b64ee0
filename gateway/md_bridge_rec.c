/*
 * A session's recording, on its worker (md_media_record_start, DESIGN 6).
 * The worker owns the md_recorder while it records: md_relay.c hands it
 * every decrypted RTP packet of both legs (md_recorder_push never blocks),
 * and stopping hands the recorder over to its own thread, which finishes the
 * file and reports through the event sink.  That final event carries the
 * session's serial but is delivered even after the session closed
 * (md_media.h, MD_MEDIA_RECORDING).
 */
#include "md_err.h"
#include "md_log.h"
#include "md_recorder.h"
#include "md_bridge.h"

#include <errno.h>
#include <string.h>

/* What the recorder thread needs to report the end. */
struct rec_done {
    md_event_sink *sink;
    char *session_id;
    uint64_t serial;
    char *codec;
};

static void post_recording(md_event_sink *sink, const char *session_id, uint64_t serial,
                           const md_media_recording *rec, int error)
{
    md_media_event ev = {
        .type = MD_MEDIA_RECORDING,
        .session_id = session_id,
        .error = error,
        .recording = *rec,
    };
    md_event_sink_post(sink, &ev, serial);
}

/* Recorder thread. */
static void on_recorder_done(const md_recorder_result *res, void *userdata)
{
    struct rec_done *d = userdata;
    md_media_recording rec = {
        .id = res->recording_id,
        .state = res->state,
        .codec = d->codec,
        .sha256 = res->sha256,
        .bytes = res->bytes,
        .duration_ms = res->duration_ms,
        .packets = res->packets,
        .dropped = res->dropped,
    };
    post_recording(d->sink, d->session_id, d->serial, &rec, res->error);
    md_event_sink_unref(d->sink);
    g_free(d->session_id);
    g_free(d->codec);
    g_free(d);
}

/* Ends a recording that never ran: the file is left cut and empty. */
static void refuse(md_bridge_host *host, const char *session_id, uint64_t serial,
                   const char *recording_id, md_evidence_rec *file, int error)
{
    char sha[MD_SHA256_HEX_LEN + 1] = "";
    uint64_t bytes = 0;
    md_evidence_rec_cut(file, sha, &bytes);
    md_media_recording rec = {.id = recording_id, .state = "cut", .sha256 = sha, .bytes = bytes};
    post_recording(host->sink, session_id, serial, &rec, error);
}

static bool leg_sends(const md_leg_ctx *leg, int kind)
{
    md_sdp_direction d =
        kind == MD_KIND_VIDEO ? leg->choice.video_direction : leg->choice.audio_direction;
    return d == MD_SDP_SENDRECV || d == MD_SDP_SENDONLY;
}

void md_bridge_record_start(md_bridge_host *host, const char *id, const char *recording_id,
                            md_evidence_rec *file)
{
    md_bridge *s = g_hash_table_lookup(host->sessions, id);
    md_recorder *rec = NULL;
    int r;

    if (!s) { /* closed meanwhile: a final event is delivered all the same */
        refuse(host, id, 0, recording_id, file, -MD_E_SESSION_UNKNOWN);
        return;
    }
    if (s->recorder) {
        refuse(host, id, s->serial, recording_id, file, -EBUSY);
        return;
    }
    if (!s->video_codec) {
        refuse(host, id, s->serial, recording_id, file, -MD_E_SESSION_STATE);
        return;
    }
    md_recorder_options opt = {
        .recording_id = recording_id,
        .video_codec = s->video_codec,
        .queue_packets = host->cfg.record_queue_packets,
    };
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < MD_KINDS; k++) {
            const md_leg_ctx *leg = &s->legs[p];
            opt.streams[p][k] = (md_recorder_stream){
                .present = leg_sends(leg, k),
                .pt = leg->in[k].pt,
                .clock_rate = leg->in[k].clock_rate,
            };
        }
    r = md_recorder_new(&opt, file, &rec);
    if (r < 0) {
        /* md_recorder_new took the file and closed it, empty. */
        md_media_recording mr = {.id = recording_id, .state = "cut", .sha256 = ""};
        md_error("recorder", "start_failed", "{s:s, s:s, s:s}", "session", id, "recording",
                 recording_id, "error", md_strerror(r));
        post_recording(host->sink, id, s->serial, &mr, r);
        return;
    }
    s->recorder = rec;
    s->recording_id = g_strdup(recording_id);
    md_media_recording mr = {.id = recording_id, .state = "recording", .codec = s->video_codec};
    post_recording(host->sink, id, s->serial, &mr, 0);
    /* Nothing decodes before a keyframe (DESIGN 6). */
    for (int p = 0; p < 2; p++)
        if (s->legs[p].state == MD_LEG_CONNECTED && leg_sends(&s->legs[p], MD_KIND_VIDEO))
            md_relay_request_keyframe(&s->legs[p], true);
    md_info("recorder", "started", "{s:s, s:s, s:s}", "session", id, "recording", recording_id,
            "codec", s->video_codec);
}

void md_bridge_record_end(md_bridge *s)
{
    if (!s->recorder)
        return;
    struct rec_done *d = g_new0(struct rec_done, 1);
    d->sink = md_event_sink_ref(s->host->sink);
    d->session_id = g_strdup(s->id);
    d->serial = s->serial;
    d->codec = g_strdup(s->video_codec);
    md_info("recorder", "stopping", "{s:s, s:s, s:I, s:I}", "session", s->id, "recording",
            s->recording_id, "packets", (json_int_t)md_recorder_packets(s->recorder), "dropped",
            (json_int_t)md_recorder_dropped(s->recorder));
    md_recorder_stop(s->recorder, on_recorder_done, d);
    s->recorder = NULL;
    g_free(s->recording_id);
    s->recording_id = NULL;
}

void md_bridge_record_stop(md_bridge_host *host, const char *id)
{
    md_bridge *s = g_hash_table_lookup(host->sessions, id);
    if (s)
        md_bridge_record_end(s);
}

void md_bridge_record_stall(md_bridge_host *host, const char *id, bool stalled)
{
    md_bridge *s = g_hash_table_lookup(host->sessions, id);
    if (s && s->recorder)
        md_recorder_test_stall(s->recorder, stalled);
}
