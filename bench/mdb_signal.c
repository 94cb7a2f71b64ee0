/*
 * The madoguchi side of the load generator: docs/protocol.md as a tablet
 * (device listener, TLS client certificate) and as a verifier (staff
 * listener, __Host-md_session cookie from mdb_login(), Origin).  Session i is the
 * tablet at clients[2i] and the verifier at clients[2i+1]: the tablet sends
 * `request`, its own verifier sends `accept` for the session id in `queued`
 * (that instant starts the setup clock), both legs offer on `assigned`, and
 * `answer`/`candidate` go to the peer on the media thread.  Main thread only.
 */
#include "mdb.h"

#include <string.h>

const char *const mdb_gw_field_names[MDB_GW_FIELDS] = {
    "packets_in",         "packets_out",  "dropped_malformed", "dropped_oversize",
    "dropped_unknown_pt", "dropped_srtp", "dropped_not_ready", "ingress_lost",
};

static uint64_t counter(json_t *o, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(o, key));
    return v > 0 ? (uint64_t)v : 0;
}

/* A leg's once-a-second figures (sent to the verifier only), while the run
 * measures: the gateway's counters and the loss it saw on the way in.  No
 * work per packet anywhere. */
static void on_quality(mdb_client *c, json_t *msg)
{
    const char *leg = json_string_value(json_object_get(msg, "leg"));
    json_t *stats = json_object_get(msg, "stats");
    json_t *counters = json_object_get(stats, "counters");
    if (c->tablet || !leg || !json_is_object(counters) ||
        !atomic_load_explicit(&c->run->measuring, memory_order_relaxed))
        return;
    int l = strcmp(leg, "tablet") == 0 ? 0 : 1;
    uint64_t *v = c->gw_have_base[l] ? c->gw_last[l] : c->gw_base[l];
    for (int i = 0; i < MDB_GW_INGRESS_LOST; i++)
        v[i] = counter(counters, mdb_gw_field_names[i]);
    if (!c->gw_have_base[l]) {
        c->gw_have_base[l] = true;
        memcpy(c->gw_last[l], c->gw_base[l], sizeof(c->gw_last[l]));
        return;
    }
    v[MDB_GW_INGRESS_LOST] += counter(json_object_get(stats, "video"), "lost") +
                              counter(json_object_get(stats, "audio"), "lost");
}

static int sig_connect(mdb_client *c)
{
    const mdb_target *t = &c->run->target;
    if (c->tablet)
        return mdb_ws_connect(c, t->host, t->device_port, "/ws", true, NULL, NULL);
    return mdb_ws_connect(c, t->host, t->staff_port, "/ws", true, NULL, t->origin);
}

static void on_established(mdb_client *c)
{
}

static void on_local_sdp(mdb_client *c, const char *type, const char *sdp)
{
    if (!c->session[0] || c->ended)
        return;
    c->t_offer_us = g_get_monotonic_time();
    mdb_ws_send(c, json_pack("{s:s, s:s, s:s}", "type", type, "session", c->session, "sdp", sdp));
}

static void start_session(mdb_client *tablet)
{
    mdb_ws_send(tablet, json_pack("{s:s, s:s, s:s}", "type", "request", "procedure",
                                  tablet->run->target.procedure, "id", "req"));
}

static void on_message(mdb_client *c, json_t *msg)
{
    const char *type = json_string_value(json_object_get(msg, "type"));
    const char *session = json_string_value(json_object_get(msg, "session"));
    if (!type)
        return;
    if (strcmp(type, "hello") == 0) {
        c->hello = true;
    } else if (strcmp(type, "queued") == 0 && c->tablet && session && !c->session[0]) {
        mdb_client *v = c->partner;
        g_strlcpy(c->session, session, sizeof(c->session));
        g_strlcpy(v->session, session, sizeof(v->session));
        c->t_accept_us = g_get_monotonic_time(); /* the setup clock starts */
        mdb_ws_send(v, json_pack("{s:s, s:s}", "type", "accept", "session", session));
    } else if (strcmp(type, "assigned") == 0 && session && strcmp(session, c->session) == 0) {
        mdb_media_post(c, mdb_media_offer, NULL);
    } else if (strcmp(type, "answer") == 0 && session && strcmp(session, c->session) == 0) {
        const char *sdp = json_string_value(json_object_get(msg, "sdp"));
        c->t_answer_us = g_get_monotonic_time();
        if (sdp)
            mdb_media_post(c, mdb_media_answer, g_strdup(sdp));
    } else if (strcmp(type, "candidate") == 0 && session && strcmp(session, c->session) == 0) {
        const char *cand = json_string_value(json_object_get(msg, "candidate"));
        if (cand)
            mdb_media_post(c, mdb_media_candidate, g_strdup(cand));
    } else if (strcmp(type, "ended") == 0 && session && strcmp(session, c->session) == 0) {
        const char *reason = json_string_value(json_object_get(msg, "reason"));
        if (!c->ended && reason && strcmp(reason, "hangup") != 0)
            mdb_run_error(c->run, c, "ended", reason);
        c->ended = true;
    } else if (strcmp(type, "consent") == 0 && c->tablet && session &&
               strcmp(session, c->session) == 0) {
        /* --record: the clerk confirms the applicant's consent at once */
        mdb_ws_send(c, json_pack("{s:s, s:s, s:b}", "type", "consent", "session", session, "given",
                                 c->run->record));
    } else if (strcmp(type, "recording") == 0 && session && strcmp(session, c->session) == 0) {
        const char *state = json_string_value(json_object_get(msg, "state"));
        if (state && strcmp(state, "on") == 0)
            c->recording_on = true;
        else if (state && (strcmp(state, "failed") == 0 || strcmp(state, "refused") == 0))
            mdb_run_error(c->run, c, "recording", state);
    } else if (strcmp(type, "quality") == 0 && session && strcmp(session, c->session) == 0) {
        on_quality(c, msg);
    } else if (strcmp(type, "error") == 0) {
        const char *code = json_string_value(json_object_get(msg, "code"));
        const char *m = json_string_value(json_object_get(msg, "message"));
        if (code && strcmp(code, "media_capacity") == 0 && !c->tablet && session &&
            strcmp(session, c->session) == 0) {
            /* not admitted (docs/internals/media.md, "Admission"): the
             * request waits in the queue; accept again a second later, as a
             * verifier would, until the measurement window begins */
            c->run->admission_refusals++;
            c->t_retry_accept_us = g_get_monotonic_time() + G_USEC_PER_SEC;
            return;
        }
        mdb_run_error(c->run, c, code ? code : "error", m);
    }
}

/* A verifier's `accept` again, after media_capacity. */
static void accept_again(mdb_client *v, int64_t now_us)
{
    v->t_retry_accept_us = 0;
    if (v->run->t_window_start || v->ended)
        return;                       /* the window measures the sessions admitted before it */
    v->partner->t_accept_us = now_us; /* setup is timed from the admitted accept */
    mdb_ws_send(v, json_pack("{s:s, s:s}", "type", "accept", "session", v->session));
}

/* Retries a refused accept; with --record, the verifier starts recording
 * once media flows both ways in its session (the same moment a verifier
 * would press the button). */
static void tick(mdb_client *c, int64_t now_us)
{
    mdb_client *t = c->partner;
    if (c->t_retry_accept_us && now_us >= c->t_retry_accept_us)
        accept_again(c, now_us);
    if (!c->run->record || c->tablet || c->record_sent || !c->session[0] || c->ended ||
        !atomic_load(&c->t_first_rx_us) || !atomic_load(&t->t_first_rx_us))
        return;
    c->record_sent = true;
    mdb_ws_send(c, json_pack("{s:s, s:s, s:s}", "type", "record", "session", c->session, "action",
                             "start"));
}

static void finish(mdb_client *c)
{
    if (c->tablet && c->session[0] && c->wsi && !c->ended)
        mdb_ws_send(c, json_pack("{s:s, s:s}", "type", "hangup", "session", c->session));
    c->ended = true;
}

const mdb_signaling mdb_madoguchi_signaling = {
    .connect = sig_connect,
    .on_established = on_established,
    .on_message = on_message,
    .start_session = start_session,
    .tick = tick,
    .finish = finish,
    .on_local_sdp = on_local_sdp,
};
