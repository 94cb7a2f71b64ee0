/*
 * The Janus side of the load generator: Janus 1.1.2's WebSocket API
 * (subprotocol janus-protocol) with the VideoCall plugin, which has the same
 * shape as a madoguchi session: each participant has ONE PeerConnection and
 * the gateway relays between the two (VideoRoom would need a publisher and a
 * subscriber PeerConnection per participant).  Per client: create, attach
 * janus.plugin.videocall, register (= hello).  A session: the tablet client
 * `call`s its partner with an offer (that instant starts the setup clock,
 * like `accept`), the verifier client answers the `incomingcall` offer that
 * Janus sends it and `accept`s, the tablet applies the answer from
 * `accepted`.  Candidates ride in the SDP both ways; trickled ones from
 * Janus are added.  Keepalives every 20 s.  Main thread only.
 */
#include "mdb.h"

#include <string.h>

#define KEEPALIVE_US (20 * G_USEC_PER_SEC)

static void media_answer_offer(mdb_client *c, char *sdp)
{
    char *answer = NULL;
    if (mdb_peer_new(c, &c->peer) < 0 ||
        mdb_peer_remote_description(c->peer, sdp, true, &answer) < 0) {
        atomic_store(&c->media_failed, 1);
        return;
    }
    mdb_media_adopt(c);
    mdb_signal_local_sdp(c, "answer", answer);
}

static void send_janus(mdb_client *c, const char *janus, const char *tx, json_t *extra)
{
    json_t *m = json_pack("{s:s, s:s}", "janus", janus, "transaction", tx);
    if (c->janus_session)
        json_object_set_new(m, "session_id", json_integer((json_int_t)c->janus_session));
    if (c->janus_handle && strcmp(janus, "keepalive") != 0)
        json_object_set_new(m, "handle_id", json_integer((json_int_t)c->janus_handle));
    if (extra)
        json_object_update(m, extra);
    json_decref(extra);
    mdb_ws_send(c, m);
}

static void send_message(mdb_client *c, json_t *body, const char *jsep_type, const char *sdp)
{
    json_t *extra = json_pack("{s:o}", "body", body);
    if (jsep_type)
        json_object_set_new(extra, "jsep", json_pack("{s:s, s:s}", "type", jsep_type, "sdp", sdp));
    char tx[32];
    snprintf(tx, sizeof(tx), "m%u", c->janus_tx++);
    send_janus(c, "message", tx, extra);
}

static int sig_connect(mdb_client *c)
{
    const mdb_target *t = &c->run->target;
    return mdb_ws_connect(c, t->host, t->janus_port, "/", false, "janus-protocol", NULL);
}

static void on_established(mdb_client *c)
{
    send_janus(c, "create", "create", NULL);
}

static void on_local_sdp(mdb_client *c, const char *type, const char *sdp)
{
    if (c->ended)
        return;
    c->t_offer_us = g_get_monotonic_time();
    if (strcmp(type, "offer") == 0)
        send_message(c, json_pack("{s:s, s:s}", "request", "call", "username", c->partner->name),
                     "offer", sdp);
    else
        send_message(c, json_pack("{s:s}", "request", "accept"), "answer", sdp);
}

static void start_session(mdb_client *tablet)
{
    tablet->t_accept_us = g_get_monotonic_time();
    g_strlcpy(tablet->session, "call", sizeof(tablet->session));
    mdb_media_post(tablet, mdb_media_offer, NULL);
}

static void on_plugin_event(mdb_client *c, json_t *msg)
{
    json_t *data = json_object_get(json_object_get(msg, "plugindata"), "data");
    json_t *result = json_object_get(data, "result");
    const char *event = json_string_value(json_object_get(result, "event"));
    const char *sdp = json_string_value(json_object_get(json_object_get(msg, "jsep"), "sdp"));
    if (json_object_get(data, "error")) {
        mdb_run_error(c->run, c, "videocall", json_string_value(json_object_get(data, "error")));
        return;
    }
    if (!event)
        return;
    if (strcmp(event, "registered") == 0) {
        c->hello = true;
    } else if (strcmp(event, "incomingcall") == 0 && sdp) {
        c->t_answer_us = g_get_monotonic_time();
        mdb_media_post(c, media_answer_offer, g_strdup(sdp));
    } else if (strcmp(event, "accepted") == 0 && sdp && c->tablet) {
        c->t_answer_us = g_get_monotonic_time();
        mdb_media_post(c, mdb_media_answer, g_strdup(sdp));
    } else if (strcmp(event, "hangup") == 0) {
        c->ended = true;
    }
}

static void on_message(mdb_client *c, json_t *msg)
{
    const char *janus = json_string_value(json_object_get(msg, "janus"));
    const char *tx = json_string_value(json_object_get(msg, "transaction"));
    if (!janus)
        return;
    if (strcmp(janus, "success") == 0 && tx && strcmp(tx, "create") == 0) {
        c->janus_session =
            (uint64_t)json_integer_value(json_object_get(json_object_get(msg, "data"), "id"));
        c->t_keepalive_us = g_get_monotonic_time();
        send_janus(c, "attach", "attach", json_pack("{s:s}", "plugin", "janus.plugin.videocall"));
    } else if (strcmp(janus, "success") == 0 && tx && strcmp(tx, "attach") == 0) {
        c->janus_handle =
            (uint64_t)json_integer_value(json_object_get(json_object_get(msg, "data"), "id"));
        send_message(c, json_pack("{s:s, s:s}", "request", "register", "username", c->name), NULL,
                     NULL);
    } else if (strcmp(janus, "event") == 0) {
        on_plugin_event(c, msg);
    } else if (strcmp(janus, "trickle") == 0) {
        json_t *cand = json_object_get(msg, "candidate");
        const char *line = json_string_value(json_object_get(cand, "candidate"));
        if (line)
            mdb_media_post(c, mdb_media_candidate, g_strdup(line));
    } else if (strcmp(janus, "error") == 0) {
        json_t *e = json_object_get(msg, "error");
        mdb_run_error(c->run, c, "janus", json_string_value(json_object_get(e, "reason")));
    } else if (strcmp(janus, "hangup") == 0) {
        const char *reason = json_string_value(json_object_get(msg, "reason"));
        if (!c->ended)
            mdb_run_error(c->run, c, "hangup", reason);
    }
}

static void tick(mdb_client *c, int64_t now_us)
{
    if (c->janus_session && c->wsi && now_us - c->t_keepalive_us > KEEPALIVE_US) {
        c->t_keepalive_us = now_us;
        send_janus(c, "keepalive", "ka", NULL);
    }
}

static void finish(mdb_client *c)
{
    if (c->tablet && c->janus_handle && c->wsi && !c->ended)
        send_message(c, json_pack("{s:s}", "request", "hangup"), NULL, NULL);
    c->ended = true;
}

const mdb_signaling mdb_janus_signaling = {
    .connect = sig_connect,
    .on_established = on_established,
    .on_message = on_message,
    .start_session = start_session,
    .tick = tick,
    .finish = finish,
    .on_local_sdp = on_local_sdp,
};
