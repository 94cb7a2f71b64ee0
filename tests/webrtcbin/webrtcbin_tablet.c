/*
 * A counter tablet on GStreamer's webrtcbin, the path a managed tablet app
 * would take instead of a browser (issue 12, item 5; run by
 * test_webrtcbin.mjs against the verifier console in Chromium).  It speaks
 * the signaling protocol (docs/protocol.md) over WSS with the device
 * certificate (libsoup 3's WebSocket client, GIO's TLS), requests a session,
 * offers audio (Opus) and video (VP8: a white ball moving on a blue-grey
 * background, 320x240) from test sources plus a "chat" data channel (RFC 8832
 * DCEP, opened in-band), trickles its candidates, applies the gateway's
 * answer and candidates, decodes what comes back, and sends one chat message
 * and acknowledges the chat it receives.
 *
 *   webrtcbin_tablet WSS_URL CA_FILE CERT_FILE KEY_FILE
 *
 * Output, one JSON object a line on stdout: {"event":"queued","session"},
 * {"event":"live"}, {"event":"chat","text"} (a chat from the verifier),
 * {"event":"chat_ack","id"} (the gateway stored ours), once a second from
 * `assigned` on {"event":"media","video_frames","audio_buffers"} (decoded
 * from the verifier so far), and at the end {"event":"ended","outcome","reason",
 * "video_frames","audio_buffers","chat_acked","chat_received"}; exit 0 after
 * `ended`, 1 on any failure ({"event":"error","error"}).  Only the gateway's
 * 127.0.0.1 candidates are used (tests stay on loopback).
 *
 * Threads: signaling and the WebSocket live on the main context; webrtcbin
 * calls back from its own threads, which post what they have to send to the
 * main context (post_send) and touch only atomic counters otherwise.
 */
#define GST_USE_UNSTABLE_API
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <jansson.h>
#include <libsoup/soup.h>
#include <stdio.h>
#include <string.h>

#define CHAT_ID "gst-1"
#define CHAT_TEXT "webrtcbin の窓口端末です。"
#define TIMEOUT_SECONDS 120

typedef struct tablet {
    GMainLoop *loop;
    SoupSession *soup;
    SoupWebsocketConnection *ws;
    GstElement *pipe, *webrtc;
    GstWebRTCDataChannel *chat;
    char *session;
    char *mid;        /* the first m-line's mid: where our candidates go */
    GPtrArray *early; /* gateway candidates that came before the answer */
    gboolean answered;
    gint video_frames, audio_buffers; /* atomic */
    gint chat_acked;                  /* atomic */
    char *chat_received;              /* main context */
    guint media_timer;                /* report_media's source */
    int exit_code;
} tablet;

static void emit(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(obj);
}

static void fail(tablet *t, const char *detail)
{
    emit(json_pack("{s:s, s:s}", "event", "error", "error", detail));
    t->exit_code = 1;
    g_main_loop_quit(t->loop);
}

/* ---- sending on the main context ---- */

struct post {
    tablet *t;
    char *text;
};

static gboolean do_send(gpointer data)
{
    struct post *p = data;
    if (p->t->ws && soup_websocket_connection_get_state(p->t->ws) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_send_text(p->t->ws, p->text);
    g_free(p->text);
    g_free(p);
    return G_SOURCE_REMOVE;
}

/* Any thread: sends msg (stolen) from the main context. */
static void post_send(tablet *t, json_t *msg)
{
    struct post *p = g_new0(struct post, 1);
    p->t = t;
    char *s = json_dumps(msg, JSON_COMPACT);
    p->text = g_strdup(s);
    free(s);
    json_decref(msg);
    g_main_context_invoke(NULL, do_send, p);
}

/* ---- data channel ---- */

static void on_chat_open(GstWebRTCDataChannel *ch, gpointer data)
{
    (void)data;
    json_t *m = json_pack("{s:s, s:s, s:I, s:s}", "type", "chat", "id", CHAT_ID, "ts",
                          (json_int_t)(g_get_real_time() / 1000), "text", CHAT_TEXT);
    char *s = json_dumps(m, JSON_COMPACT);
    gst_webrtc_data_channel_send_string(ch, s);
    free(s);
    json_decref(m);
}

struct chat_in {
    tablet *t;
    char *text;
};

static gboolean chat_in_main(gpointer data)
{
    struct chat_in *c = data;
    if (!c->t->chat_received)
        c->t->chat_received = g_strdup(c->text);
    emit(json_pack("{s:s, s:s}", "event", "chat", "text", c->text));
    g_free(c->text);
    g_free(c);
    return G_SOURCE_REMOVE;
}

static void on_chat_message(GstWebRTCDataChannel *ch, const char *str, gpointer data)
{
    tablet *t = data;
    json_t *m = json_loads(str, 0, NULL);
    const char *type = json_string_value(json_object_get(m, "type"));
    const char *id = json_string_value(json_object_get(m, "id"));
    if (type && id && strcmp(type, "chat_ack") == 0 && strcmp(id, CHAT_ID) == 0) {
        g_atomic_int_set(&t->chat_acked, 1);
        emit(json_pack("{s:s, s:s}", "event", "chat_ack", "id", id));
    } else if (type && id && strcmp(type, "chat") == 0) {
        /* docs/protocol.md: the receiver acknowledges what it got */
        json_t *ack = json_pack("{s:s, s:s}", "type", "chat_ack", "id", id);
        char *s = json_dumps(ack, JSON_COMPACT);
        gst_webrtc_data_channel_send_string(ch, s);
        free(s);
        json_decref(ack);
        struct chat_in *c = g_new0(struct chat_in, 1);
        c->t = t;
        c->text = g_strdup(json_string_value(json_object_get(m, "text")));
        g_main_context_invoke(NULL, chat_in_main, c);
    }
    json_decref(m);
}

/* ---- incoming media ---- */

static void on_video_frame(GstElement *sink, GstBuffer *buf, GstPad *pad, gpointer data)
{
    (void)sink, (void)buf, (void)pad;
    g_atomic_int_inc(&((tablet *)data)->video_frames);
}

static void on_audio_buffer(GstElement *sink, GstBuffer *buf, GstPad *pad, gpointer data)
{
    (void)sink, (void)buf, (void)pad;
    g_atomic_int_inc(&((tablet *)data)->audio_buffers);
}

/* Main context, once a second: what has been decoded so far. */
static gboolean report_media(gpointer data)
{
    tablet *t = data;
    emit(json_pack("{s:s, s:i, s:i}", "event", "media", "video_frames",
                   g_atomic_int_get(&t->video_frames), "audio_buffers",
                   g_atomic_int_get(&t->audio_buffers)));
    return G_SOURCE_CONTINUE;
}

/* A decoded stream: raw video or audio into a counting fakesink. */
static void on_decoded_pad(GstElement *decodebin, GstPad *pad, gpointer data)
{
    tablet *t = data;
    (void)decodebin;
    GstCaps *caps = gst_pad_get_current_caps(pad);
    if (!caps)
        caps = gst_pad_query_caps(pad, NULL);
    const char *name = gst_structure_get_name(gst_caps_get_structure(caps, 0));
    gboolean video = g_str_has_prefix(name, "video/");
    gboolean audio = g_str_has_prefix(name, "audio/");
    gst_caps_unref(caps);
    if (!video && !audio)
        return;
    GstElement *sink = gst_element_factory_make("fakesink", NULL);
    g_object_set(sink, "signal-handoffs", TRUE, "sync", FALSE, "async", FALSE, NULL);
    g_signal_connect(sink, "handoff", G_CALLBACK(video ? on_video_frame : on_audio_buffer), t);
    gst_bin_add(GST_BIN(t->pipe), sink);
    gst_element_sync_state_with_parent(sink);
    GstPad *sinkpad = gst_element_get_static_pad(sink, "sink");
    gst_pad_link(pad, sinkpad);
    gst_object_unref(sinkpad);
}

static void on_incoming_stream(GstElement *webrtc, GstPad *pad, gpointer data)
{
    tablet *t = data;
    (void)webrtc;
    if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC)
        return;
    GstElement *decodebin = gst_element_factory_make("decodebin", NULL);
    g_signal_connect(decodebin, "pad-added", G_CALLBACK(on_decoded_pad), t);
    gst_bin_add(GST_BIN(t->pipe), decodebin);
    gst_element_sync_state_with_parent(decodebin);
    GstPad *sinkpad = gst_element_get_static_pad(decodebin, "sink");
    gst_pad_link(pad, sinkpad);
    gst_object_unref(sinkpad);
}

/* ---- negotiation ---- */

static void on_offer_created(GstPromise *promise, gpointer data)
{
    tablet *t = data;
    GstWebRTCSessionDescription *offer = NULL;
    const GstStructure *reply = gst_promise_get_reply(promise);
    gst_structure_get(reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, NULL);
    gst_promise_unref(promise);
    if (!offer) {
        g_printerr("webrtcbin made no offer\n");
        return;
    }
    const GstSDPMedia *first = gst_sdp_message_get_media(offer->sdp, 0);
    const char *mid = first ? gst_sdp_media_get_attribute_val(first, "mid") : NULL;
    g_free(t->mid);
    t->mid = g_strdup(mid ? mid : "0");
    g_signal_emit_by_name(t->webrtc, "set-local-description", offer, NULL);
    char *sdp = gst_sdp_message_as_text(offer->sdp);
    post_send(t, json_pack("{s:s, s:s, s:s}", "type", "offer", "session", t->session, "sdp", sdp));
    g_free(sdp);
    gst_webrtc_session_description_free(offer);
}

static void on_negotiation_needed(GstElement *webrtc, gpointer data)
{
    GstPromise *promise = gst_promise_new_with_change_func(on_offer_created, data, NULL);
    g_signal_emit_by_name(webrtc, "create-offer", NULL, promise);
}

static void on_ice_candidate(GstElement *webrtc, guint mline, const char *candidate, gpointer data)
{
    tablet *t = data;
    (void)webrtc, (void)mline; /* BUNDLE: every candidate is for the one transport */
    if (!candidate || !*candidate)
        return;
    post_send(t, json_pack("{s:s, s:s, s:s, s:s}", "type", "candidate", "session", t->session,
                           "candidate", candidate, "mid", t->mid ? t->mid : "0"));
}

/* Only the gateway's loopback candidates: the tests never leave 127.0.0.1. */
static gboolean loopback_candidate(const char *candidate)
{
    gchar **bits = g_strsplit(candidate, " ", -1);
    gboolean ok = g_strv_length(bits) >= 8 && strcmp(bits[4], "127.0.0.1") == 0;
    g_strfreev(bits);
    return ok;
}

static void add_candidate(tablet *t, const char *candidate)
{
    if (loopback_candidate(candidate))
        g_signal_emit_by_name(t->webrtc, "add-ice-candidate", 0, candidate);
}

static int start_pipeline(tablet *t)
{
    GError *err = NULL;
    t->pipe = gst_parse_launch(
        "webrtcbin name=w bundle-policy=max-bundle "
        "videotestsrc is-live=true pattern=ball background-color=0xff4060a0"
        " ! video/x-raw,width=320,height=240,framerate=15/1"
        " ! videoconvert ! queue ! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96"
        " ! application/x-rtp,media=video,encoding-name=VP8,payload=96 ! w. "
        "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! queue ! opusenc"
        " ! rtpopuspay pt=97 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=97 ! w.",
        &err);
    if (!t->pipe) {
        g_printerr("pipeline: %s\n", err ? err->message : "?");
        g_clear_error(&err);
        return -1;
    }
    t->webrtc = gst_bin_get_by_name(GST_BIN(t->pipe), "w");
    g_signal_connect(t->webrtc, "on-negotiation-needed", G_CALLBACK(on_negotiation_needed), t);
    g_signal_connect(t->webrtc, "on-ice-candidate", G_CALLBACK(on_ice_candidate), t);
    g_signal_connect(t->webrtc, "pad-added", G_CALLBACK(on_incoming_stream), t);
    if (gst_element_set_state(t->pipe, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
        return -1;
    t->media_timer = g_timeout_add_seconds(1, report_media, t);
    /* Created before the offer, so that it carries the data m-line. */
    g_signal_emit_by_name(t->webrtc, "create-data-channel", "chat", NULL, &t->chat);
    if (!t->chat)
        return -1;
    g_signal_connect(t->chat, "on-open", G_CALLBACK(on_chat_open), t);
    g_signal_connect(t->chat, "on-message-string", G_CALLBACK(on_chat_message), t);
    return 0;
}

/* ---- signaling (main context) ---- */

static void on_answer(tablet *t, const char *sdp_text)
{
    GstSDPMessage *sdp = NULL;
    if (gst_sdp_message_new_from_text(sdp_text, &sdp) != GST_SDP_OK) {
        fail(t, "the answer does not parse as SDP");
        return;
    }
    GstWebRTCSessionDescription *answer =
        gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
    GstPromise *promise = gst_promise_new();
    g_signal_emit_by_name(t->webrtc, "set-remote-description", answer, promise);
    gst_promise_wait(promise);
    gst_promise_unref(promise);
    gst_webrtc_session_description_free(answer);
    t->answered = TRUE;
    for (guint i = 0; i < t->early->len; i++)
        add_candidate(t, t->early->pdata[i]);
    g_ptr_array_set_size(t->early, 0);
}

static void on_ended(tablet *t, json_t *m)
{
    json_t *outcome = json_object_get(m, "outcome");
    emit(json_pack("{s:s, s:O, s:s?, s:i, s:i, s:b, s:s?}", "event", "ended", "outcome",
                   outcome ? outcome : json_null(), "reason",
                   json_string_value(json_object_get(m, "reason")), "video_frames",
                   g_atomic_int_get(&t->video_frames), "audio_buffers",
                   g_atomic_int_get(&t->audio_buffers), "chat_acked",
                   g_atomic_int_get(&t->chat_acked), "chat_received", t->chat_received));
    t->exit_code = 0;
    g_main_loop_quit(t->loop);
}

static void on_ws_message(SoupWebsocketConnection *ws, gint type, GBytes *message, gpointer data)
{
    tablet *t = data;
    (void)ws;
    if (type != SOUP_WEBSOCKET_DATA_TEXT)
        return;
    gsize len;
    const char *text = g_bytes_get_data(message, &len);
    json_t *m = json_loadb(text, len, 0, NULL);
    const char *kind = json_string_value(json_object_get(m, "type"));
    if (!kind) {
        json_decref(m);
        return;
    }
    if (strcmp(kind, "hello") == 0) {
        post_send(t, json_pack("{s:s, s:s, s:s}", "type", "request", "procedure", "mynumber.new",
                               "id", "gst-req"));
    } else if (strcmp(kind, "queued") == 0 && !t->session) {
        t->session = g_strdup(json_string_value(json_object_get(m, "session")));
        emit(json_pack("{s:s, s:s}", "event", "queued", "session", t->session));
    } else if (strcmp(kind, "assigned") == 0 && !t->pipe) {
        if (start_pipeline(t) < 0)
            fail(t, "the webrtcbin pipeline did not start");
    } else if (strcmp(kind, "answer") == 0) {
        on_answer(t, json_string_value(json_object_get(m, "sdp")));
    } else if (strcmp(kind, "candidate") == 0) {
        const char *c = json_string_value(json_object_get(m, "candidate"));
        if (c) {
            if (t->answered)
                add_candidate(t, c);
            else
                g_ptr_array_add(t->early, g_strdup(c));
        }
    } else if (strcmp(kind, "state") == 0) {
        const char *state = json_string_value(json_object_get(m, "state"));
        if (state && strcmp(state, "live") == 0)
            emit(json_pack("{s:s}", "event", "live"));
    } else if (strcmp(kind, "ended") == 0) {
        on_ended(t, m);
    } else if (strcmp(kind, "error") == 0) {
        char *s = json_dumps(m, JSON_COMPACT);
        fail(t, s);
        free(s);
    }
    json_decref(m);
}

static void on_ws_closed(SoupWebsocketConnection *ws, gpointer data)
{
    (void)ws;
    fail(data, "the gateway closed the WebSocket");
}

static void on_ws_connected(GObject *session, GAsyncResult *res, gpointer data)
{
    tablet *t = data;
    GError *err = NULL;
    t->ws = soup_session_websocket_connect_finish(SOUP_SESSION(session), res, &err);
    if (!t->ws) {
        g_autofree char *d = g_strdup_printf("WebSocket: %s", err->message);
        g_clear_error(&err);
        fail(t, d);
        return;
    }
    soup_websocket_connection_set_max_incoming_payload_size(t->ws, 1 << 20);
    g_signal_connect(t->ws, "message", G_CALLBACK(on_ws_message), t);
    g_signal_connect(t->ws, "closed", G_CALLBACK(on_ws_closed), t);
}

static gboolean on_timeout(gpointer data)
{
    fail(data, "timeout");
    return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
    tablet t = {.exit_code = 1};
    GError *err = NULL;

    if (argc != 5) {
        fprintf(stderr, "usage: %s WSS_URL CA_FILE CERT_FILE KEY_FILE\n", argv[0]);
        return 2;
    }
    gst_init(NULL, NULL);
    t.loop = g_main_loop_new(NULL, FALSE);
    t.early = g_ptr_array_new_with_free_func(g_free);

    GTlsDatabase *ca = g_tls_file_database_new(argv[2], &err);
    GTlsCertificate *cert = ca ? g_tls_certificate_new_from_files(argv[3], argv[4], &err) : NULL;
    if (!cert) {
        fprintf(stderr, "TLS set-up: %s\n", err ? err->message : "?");
        return 1;
    }
    t.soup = soup_session_new_with_options("tls-database", ca, NULL);
    SoupMessage *msg = soup_message_new("GET", argv[1]);
    soup_message_set_tls_client_certificate(msg, cert);
    soup_session_websocket_connect_async(t.soup, msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL,
                                         on_ws_connected, &t);
    g_timeout_add_seconds(TIMEOUT_SECONDS, on_timeout, &t);
    g_main_loop_run(t.loop);

    if (t.media_timer)
        g_source_remove(t.media_timer);
    if (t.pipe) {
        gst_element_set_state(t.pipe, GST_STATE_NULL);
        if (t.chat)
            g_object_unref(t.chat);
        gst_object_unref(t.webrtc);
        gst_object_unref(t.pipe);
    }
    if (t.ws) {
        g_signal_handlers_disconnect_by_data(t.ws, &t);
        if (soup_websocket_connection_get_state(t.ws) == SOUP_WEBSOCKET_STATE_OPEN)
            soup_websocket_connection_close(t.ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
        g_object_unref(t.ws);
    }
    g_object_unref(msg);
    g_object_unref(t.soup);
    g_object_unref(cert);
    g_object_unref(ca);
    g_ptr_array_unref(t.early);
    g_free(t.session);
    g_free(t.mid);
    g_free(t.chat_received);
    g_main_loop_unref(t.loop);
    return t.exit_code;
}
