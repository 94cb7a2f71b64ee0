/*
 * Sessions and legs on a media worker (see md_bridge.h): offer/answer, the
 * session's single video codec, and the wiring of ICE -> DTLS -> SRTP for each
 * leg.  Everything here runs on the host's worker thread.  Adapters call back
 * from inside their own code, so a failing leg is only marked failed there and
 * its ICE/DTLS/SRTP objects are released later from an idle source (the
 * "reaper"); commands run from the loop and may release at once.  A session
 * is answered only when both offers are in (see md_media.h for the rule).
 */
#include "md_bridge.h"
#include "md_codec_probe.h"
#include "md_crypto.h"
#include "md_err.h"
#include "md_log.h"
#include "md_rtp.h"
#include "md_worker.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#define CNAME "madoguchi"

static void emit(md_leg_ctx *leg, md_media_event ev)
{
    ev.session_id = leg->session->id;
    ev.leg = leg->which;
    md_event_sink_post(leg->session->host->sink, &ev, leg->session->serial);
}

static gboolean trim_heap(gpointer data)
{
    md_bridge_host *host = data;
    g_clear_pointer(&host->trim_timer, g_source_unref);
    md_worker_trim_heap();
    return G_SOURCE_REMOVE;
}

/* A leg connected, a session closed, or the NACK stores shrank after a
 * burst: what was allocated and freed goes back to the system shortly
 * after, once for a burst. */
static void trim_heap_later(md_bridge_host *host)
{
    if (host->trim_timer)
        return;
    host->trim_timer = g_timeout_source_new(MD_WORKER_TRIM_MS);
    g_source_set_callback(host->trim_timer, trim_heap, host, NULL);
    g_source_attach(host->trim_timer, host->ctx);
}

void md_bridge_heap_freed(md_bridge_host *host, size_t bytes)
{
    host->heap_freed += bytes;
    if (host->heap_freed >= MD_BRIDGE_TRIM_AFTER) {
        host->heap_freed = 0;
        trim_heap_later(host);
    }
}

static void leg_release(md_leg_ctx *leg)
{
    md_bridge_dc_release(leg); /* SCTP's ABORT still goes out through DTLS */
    md_ice_free(leg->ice);
    md_dtls_free(leg->dtls);
    md_srtp_free(leg->srtp_in);
    md_srtp_free(leg->srtp_out);
    leg->ice = NULL;
    leg->dtls = NULL;
    leg->srtp_in = leg->srtp_out = NULL;
    leg->ice_connected = false;
    md_relay_leg_clear(leg);
}

static gboolean reap(gpointer data)
{
    md_bridge *s = data;
    g_clear_pointer(&s->reaper, g_source_unref);
    for (int i = 0; i < 2; i++)
        if (s->legs[i].state == MD_LEG_FAILED)
            leg_release(&s->legs[i]);
    return G_SOURCE_REMOVE;
}

static void leg_fail(md_leg_ctx *leg, int error, const char *detail)
{
    md_bridge *s = leg->session;
    if (leg->state == MD_LEG_FAILED)
        return;
    leg->state = MD_LEG_FAILED;
    g_clear_pointer(&leg->pending_offer, md_sdp_free);
    md_debug("media", "leg_failed", "{s:s, s:s, s:s, s:s}", "session", s->id, "leg",
             md_leg_name(leg->which), "error", md_err_code(error), "detail", detail ? detail : "");
    emit(leg,
         (md_media_event){.type = MD_MEDIA_LEG_FAILED, .error = error, .error_detail = detail});
    if (!s->reaper) {
        s->reaper = g_idle_source_new();
        g_source_set_callback(s->reaper, reap, s, NULL);
        g_source_attach(s->reaper, s->host->ctx);
    }
}

/* ---- ICE callbacks ---- */

static void on_ice_candidate(const char *candidate, void *ud)
{
    md_leg_ctx *leg = ud;
    if (leg->state == MD_LEG_FAILED)
        return;
    emit(leg, (md_media_event){
                  .type = MD_MEDIA_CANDIDATE, .candidate = candidate, .mid = leg->bundle_mid});
}

static void on_ice_state(md_ice_state state, void *ud)
{
    md_leg_ctx *leg = ud;
    if (leg->state == MD_LEG_FAILED)
        return;
    if (state == MD_ICE_CONNECTED) {
        md_log_setup("ice_connected", leg->session->id, md_leg_name(leg->which));
        leg->ice_connected = true;
        if (leg->srtp_out) { /* back after an ICE restart: DTLS survived */
            leg->state = MD_LEG_CONNECTED;
            emit(leg, (md_media_event){.type = MD_MEDIA_LEG_CONNECTED});
            md_relay_request_keyframe(md_leg_other(leg), true);
        } else {
            md_dtls_start(leg->dtls);
        }
        return;
    }
    leg->ice_connected = false;
    if (leg->ever_connected) {
        leg->state = MD_LEG_ANSWERED;
        emit(leg, (md_media_event){.type = MD_MEDIA_LEG_DISCONNECTED,
                                   .error = -MD_E_ICE_FAILED,
                                   .error_detail = "ICE consent or path lost"});
    } else {
        leg_fail(leg, -MD_E_ICE_FAILED, "ICE connectivity checks failed");
    }
}

static void on_ice_packet(const uint8_t *buf, size_t len, void *ud)
{
    md_leg_ctx *leg = ud;
    if (leg->state == MD_LEG_FAILED)
        return;
    switch (md_packet_classify(buf, len)) {
    case MD_PACKET_DTLS:
        md_dtls_feed(leg->dtls, buf, len); /* failures come back through on_dtls_failed */
        break;
    case MD_PACKET_RTP:
    case MD_PACKET_RTCP:
        md_relay_incoming(leg, buf, len);
        break;
    default:
        leg->counters.malformed++;
        break;
    }
}

static const md_ice_callbacks ice_callbacks = {on_ice_candidate, on_ice_state, on_ice_packet};

/* ---- DTLS callbacks ---- */

static void on_dtls_send(const uint8_t *buf, size_t len, void *ud)
{
    md_leg_ctx *leg = ud;
    /* Before the pair is selected the flight waits in md_ice; a flight lost
     * on the way is retransmitted by the DTLS timer. */
    if (md_ice_send_or_hold(leg->ice, buf, len) == 1)
        md_log_setup("dtls_held", leg->session->id, md_leg_name(leg->which));
}

static void on_dtls_connected(const md_dtls_keys *keys, void *ud)
{
    md_leg_ctx *leg = ud;
    if (md_srtp_new(keys->profile, false, keys->remote_key, keys->remote_salt, &leg->srtp_in) < 0 ||
        md_srtp_new(keys->profile, true, keys->local_key, keys->local_salt, &leg->srtp_out) < 0) {
        leg_fail(leg, -MD_E_MEDIA, "SRTP session could not be created");
        return;
    }
    leg->ever_connected = true;
    leg->state = MD_LEG_CONNECTED;
    md_log_setup("dtls_connected", leg->session->id, md_leg_name(leg->which));
    md_debug("media", "leg_connected", "{s:s, s:s, s:s}", "session", leg->session->id, "leg",
             md_leg_name(leg->which), "srtp", md_srtp_profile_name(keys->profile));
    emit(leg, (md_media_event){.type = MD_MEDIA_LEG_CONNECTED});
    /* DESIGN 4: a keyframe for whoever just became able to decode. */
    md_leg_ctx *other = md_leg_other(leg);
    if (other->state == MD_LEG_CONNECTED) {
        md_relay_request_keyframe(other, true);
        md_relay_request_keyframe(leg, true);
    }
    md_bridge_dc_start(leg); /* RFC 8841 / RFC 8831 6.2: SCTP once DTLS is up */
    trim_heap_later(leg->session->host);
}

static void on_dtls_data(const uint8_t *buf, size_t len, void *ud)
{
    md_leg_ctx *leg = ud;
    if (leg->state != MD_LEG_FAILED)
        md_bridge_dc_input(leg, buf, len);
}

static void on_dtls_failed(int error, const char *detail, void *ud)
{
    leg_fail(ud, error, detail);
}

static const md_dtls_callbacks dtls_callbacks = {
    .send = on_dtls_send,
    .on_connected = on_dtls_connected,
    .on_failed = on_dtls_failed,
    .on_data = on_dtls_data,
};

/* ---- offers and answers ---- */

static void apply_candidate(md_leg_ctx *leg, const char *candidate)
{
    if (!candidate || !candidate[0]) {
        md_ice_remote_gathering_done(leg->ice);
        return;
    }
    if (leg->remote_candidates >= leg->session->host->cfg.max_remote_candidates ||
        md_ice_add_remote_candidate(leg->ice, candidate) < 0) {
        leg->counters.candidates_ignored++;
        return;
    }
    leg->remote_candidates++;
}

/* Candidates in the offer itself (non-trickle peers such as aiortc), from
 * every bundled m-line; the agent ignores duplicates. */
static void apply_offer_candidates(md_leg_ctx *leg, const md_sdp *offer)
{
    bool end = false;
    for (size_t i = 0; i < offer->n_media; i++) {
        const md_sdp_media *m = &offer->media[i];
        for (size_t c = 0; c < m->n_candidates; c++)
            apply_candidate(leg, m->candidates[c]);
        end |= m->end_of_candidates;
    }
    if (end)
        md_ice_remote_gathering_done(leg->ice);
}

static int send_answer(md_leg_ctx *leg, const md_sdp *offer)
{
    md_bridge *s = leg->session;
    char **candidates = md_ice_local_candidates(leg->ice);
    char *text = NULL;
    md_sdp_answer_params p = {
        .session_id = s->sdp_session_id,
        .session_version = ++leg->answer_version,
        .ice_ufrag = md_ice_local_ufrag(leg->ice),
        .ice_pwd = md_ice_local_pwd(leg->ice),
        .fingerprint = md_dtls_identity_fingerprint(s->host->identity),
        .setup = md_sdp_answer_setup(leg->remote.setup),
        .candidates = (const char *const *)candidates,
        .n_candidates = g_strv_length(candidates),
        .end_of_candidates = md_ice_gathering_done(leg->ice),
        .audio_ssrc = leg->out[MD_KIND_AUDIO].ssrc,
        .video_ssrc = leg->out[MD_KIND_VIDEO].ssrc,
        .cname = CNAME,
        .stream_id = md_leg_name(md_leg_other(leg)->which), /* what this leg receives */
        .max_message_size = s->host->cfg.max_message_size,
    };
    int r = md_sdp_answer(offer, &leg->choice, &p, &text);
    g_strfreev(candidates);
    if (r < 0)
        return r;
    md_log_setup("answered", s->id, md_leg_name(leg->which));
    emit(leg, (md_media_event){.type = MD_MEDIA_ANSWER, .sdp = text});
    g_free(text);
    return 0;
}

static void set_bundle_mid(md_leg_ctx *leg)
{
    const md_sdp_choice *c = &leg->choice;
    const char *mid = c->audio_index < c->video_index ? c->audio_mid : c->video_mid;
    if (c->data_index >= 0 && c->data_index < c->audio_index && c->data_index < c->video_index)
        mid = c->data_mid;
    g_strlcpy(leg->bundle_mid, mid, sizeof(leg->bundle_mid));
}

/* Creates the leg's transport for offer and answers it. */
static int leg_start(md_leg_ctx *leg, const md_sdp *offer, const md_sdp_choice *choice,
                     const char **ret_detail)
{
    md_bridge_host *host = leg->session->host;
    int r;
    leg->choice = *choice;
    md_sdp_bundle_transport(offer, &leg->remote);
    set_bundle_mid(leg);
    leg->remote_candidates = 0;
    r = md_ice_new(host->ctx, &host->cfg.ice, &ice_callbacks, leg, &leg->ice);
    if (r < 0) {
        *ret_detail = "no ICE candidate could be gathered (bind address or port range)";
        return r;
    }
    r = md_ice_set_remote_credentials(leg->ice, leg->remote.ice_ufrag, leg->remote.ice_pwd);
    if (r < 0) {
        *ret_detail = "ICE credentials refused";
        return r;
    }
    apply_offer_candidates(leg, offer);
    for (guint i = 0; leg->pending_candidates && i < leg->pending_candidates->len; i++)
        apply_candidate(leg, g_ptr_array_index(leg->pending_candidates, i));
    g_clear_pointer(&leg->pending_candidates, g_ptr_array_unref);

    md_dtls_options opt = {
        .role = md_sdp_answer_setup(leg->remote.setup) == MD_SDP_SETUP_ACTIVE ? MD_DTLS_CLIENT
                                                                              : MD_DTLS_SERVER,
        .initial_timeout_ms = host->cfg.dtls_timeout_ms,
        .require_gcm = leg->session->require_srtp_gcm,
    };
    r = md_dtls_new(host->identity, &opt, leg->remote.fingerprints, leg->remote.n_fingerprints,
                    host->ctx, &dtls_callbacks, leg, &leg->dtls);
    if (r < 0) {
        *ret_detail = "DTLS could not be set up (fingerprint hash unsupported?)";
        return r;
    }
    r = md_relay_leg_prepare(leg, &host->cfg);
    if (r == 0)
        r = send_answer(leg, offer);
    if (r < 0) {
        *ret_detail = "the answer could not be built";
        return r;
    }
    leg->state = MD_LEG_ANSWERED;
    return 0;
}

static void leg_start_or_fail(md_leg_ctx *leg, const md_sdp *offer, const md_sdp_choice *choice)
{
    const char *detail = NULL;
    int r = leg_start(leg, offer, choice, &detail);
    if (r < 0)
        leg_fail(leg, r, detail);
}

static void refuse_session(md_bridge *s, int error, const char *detail)
{
    s->refused = true;
    for (int i = 0; i < 2; i++)
        leg_fail(&s->legs[i], error, detail);
}

/* Both offers are in: one codec for the session, or no session. */
static void negotiate(md_bridge *s)
{
    md_leg_ctx *t = &s->legs[MD_LEG_TABLET], *v = &s->legs[MD_LEG_VERIFIER];
    md_sdp_choice choice[2];
    char err[320], detail[384];
    const char *codec;
    int r =
        md_sdp_choose_video_codec((const char *const *)s->video_codecs, t->pending_offer, "tablet",
                                  v->pending_offer, "verifier", &codec, err, sizeof(err));
    if (r < 0) {
        refuse_session(s, r, err);
        return;
    }
    for (int i = 0; i < 2; i++) {
        r = md_sdp_choose(s->legs[i].pending_offer, codec, &choice[i], err, sizeof(err));
        if (r < 0) {
            g_snprintf(detail, sizeof(detail), "%s: %s", md_leg_name((md_leg)i), err);
            refuse_session(s, r, detail);
            return;
        }
    }
    s->video_codec = codec;
    s->video_probe = strcmp(codec, "VP8") == 0    ? md_probe_vp8
                     : strcmp(codec, "H264") == 0 ? md_probe_h264
                                                  : NULL; /* VP9, AV1: size not read */
    md_debug("media", "codec_chosen", "{s:s, s:s}", "session", s->id, "video", codec);
    for (int i = 0; i < 2; i++) {
        md_sdp *offer = s->legs[i].pending_offer;
        s->legs[i].pending_offer = NULL;
        leg_start_or_fail(&s->legs[i], offer, &choice[i]);
        md_sdp_free(offer);
    }
}

static bool same_certificate(const md_leg_ctx *leg, const md_sdp_transport *t)
{
    const md_sdp_fingerprint *a = &leg->remote.fingerprints[0], *b = &t->fingerprints[0];
    return leg->remote.n_fingerprints && t->n_fingerprints && strcmp(a->hash, b->hash) == 0 &&
           a->len == b->len && memcmp(a->digest, b->digest, a->len) == 0;
}

/* A later offer on a live leg: renegotiation, maybe an ICE restart. */
static void leg_renegotiate(md_leg_ctx *leg, const md_sdp *offer, const md_sdp_transport *t)
{
    md_sdp_choice choice;
    char err[256];
    int r = md_sdp_choose(offer, leg->session->video_codec, &choice, err, sizeof(err));
    if (r < 0) {
        leg_fail(leg, r, err);
        return;
    }
    bool restart = strcmp(t->ice_ufrag, leg->remote.ice_ufrag) != 0 ||
                   strcmp(t->ice_pwd, leg->remote.ice_pwd) != 0;
    leg->remote = *t;
    leg->choice = choice;
    set_bundle_mid(leg);
    if (restart) { /* RFC 8445 9, RFC 8829 5.2.1 */
        r = md_ice_restart(leg->ice, t->ice_ufrag, t->ice_pwd);
        if (r < 0) {
            leg_fail(leg, r, "ICE restart failed");
            return;
        }
        leg->ice_connected = false;
        leg->remote_candidates = 0;
        apply_offer_candidates(leg, offer);
    }
    r = md_relay_leg_prepare(leg, &leg->session->host->cfg);
    if (r == 0)
        r = send_answer(leg, offer);
    if (r < 0) {
        leg_fail(leg, r, "the answer could not be built");
        return;
    }
    md_bridge_dc_start(leg); /* a data m-line added by this offer */
}

static md_bridge *find(md_bridge_host *host, const char *id)
{
    return g_hash_table_lookup(host->sessions, id);
}

void md_bridge_offer(md_bridge_host *host, const char *id, md_leg which, md_sdp *offer)
{
    md_bridge *s = find(host, id);
    md_leg_ctx *leg = s ? &s->legs[which] : NULL;
    if (!s)
        goto out;
    md_log_setup("offer_on_worker", s->id, md_leg_name(which));
    if (s->refused) {
        emit(leg, (md_media_event){.type = MD_MEDIA_LEG_FAILED,
                                   .error = -MD_E_CODEC_MISMATCH,
                                   .error_detail = "the session was refused"});
        goto out;
    }
    if (!s->video_codec) {
        md_sdp_free(leg->pending_offer);
        leg->pending_offer = offer;
        offer = NULL;
        leg->state = MD_LEG_WAITING;
        if (md_leg_other(leg)->state == MD_LEG_WAITING)
            negotiate(s);
        goto out;
    }
    md_sdp_transport t;
    md_sdp_bundle_transport(offer, &t);
    if ((leg->state == MD_LEG_ANSWERED || leg->state == MD_LEG_CONNECTED) &&
        same_certificate(leg, &t)) {
        leg_renegotiate(leg, offer, &t);
        goto out;
    }
    /* A new PeerConnection for this leg (or one after a failure): start over. */
    md_sdp_choice choice;
    char err[256];
    leg_release(leg);
    leg->state = MD_LEG_IDLE;
    leg->ever_connected = false;
    int r = md_sdp_choose(offer, s->video_codec, &choice, err, sizeof(err));
    if (r < 0)
        leg_fail(leg, r, err);
    else
        leg_start_or_fail(leg, offer, &choice);
out:
    md_sdp_free(offer);
}

void md_bridge_candidate(md_bridge_host *host, const char *id, md_leg which, char *candidate)
{
    md_bridge *s = find(host, id);
    md_leg_ctx *leg = s ? &s->legs[which] : NULL;
    if (!leg || leg->state == MD_LEG_FAILED)
        goto out;
    if (leg->ice) {
        apply_candidate(leg, candidate);
        goto out;
    }
    if (!leg->pending_candidates)
        leg->pending_candidates = g_ptr_array_new_with_free_func(g_free);
    if (leg->pending_candidates->len >= host->cfg.max_remote_candidates + 1) {
        leg->counters.candidates_ignored++;
        goto out;
    }
    g_ptr_array_add(leg->pending_candidates, candidate ? candidate : g_strdup(""));
    candidate = NULL;
out:
    g_free(candidate);
}

static void session_free(gpointer data)
{
    md_bridge *s = data;
    md_bridge_record_end(s); /* first: no packet reaches it after this */
    md_quality_stop(s);
    if (s->reaper) {
        g_source_destroy(s->reaper);
        g_source_unref(s->reaper);
    }
    for (int i = 0; i < 2; i++) {
        leg_release(&s->legs[i]);
        md_bridge_dc_clear(&s->legs[i]);
        md_sdp_free(s->legs[i].pending_offer);
        if (s->legs[i].pending_candidates)
            g_ptr_array_unref(s->legs[i].pending_candidates);
    }
    g_strfreev(s->video_codecs);
    g_strfreev(s->files.file_types);
    g_free(s->id);
    g_free(s);
}

void md_bridge_open(md_bridge_host *host, const char *id, uint64_t serial, char **video_codecs,
                    bool require_srtp_gcm, md_bridge_files *files)
{
    md_bridge *s = g_new0(md_bridge, 1);
    uint64_t sid = 0;
    md_random_bytes(&sid, sizeof(sid));
    s->host = host;
    s->id = g_strdup(id);
    s->serial = serial;
    s->video_codecs = video_codecs;
    s->require_srtp_gcm = require_srtp_gcm;
    s->files = *files;            /* takes file_types */
    s->sdp_session_id = sid >> 2; /* RFC 8829 5.2.1: 64-bit, top bit clear */
    for (int i = 0; i < 2; i++) {
        s->legs[i].session = s;
        s->legs[i].which = (md_leg)i;
    }
    md_quality_start(s);
    g_hash_table_replace(host->sessions, s->id, s);
}

void md_bridge_close(md_bridge_host *host, const char *id)
{
    if (g_hash_table_remove(host->sessions, id))
        trim_heap_later(host);
}

md_bridge_host *md_bridge_host_new(GMainContext *worker_ctx, const md_bridge_config *cfg,
                                   md_dtls_identity *identity, md_event_sink *sink)
{
    md_bridge_host *host = g_new0(md_bridge_host, 1);
    host->ctx = worker_ctx;
    host->cfg = *cfg;
    host->cfg.ice.bind_address = g_strdup(cfg->ice.bind_address);
    host->cfg.ice.public_address = g_strdup(cfg->ice.public_address);
    host->identity = md_dtls_identity_ref(identity);
    host->sink = md_event_sink_ref(sink);
    host->sessions = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, session_free);
    return host;
}

void md_bridge_host_free(md_bridge_host *host)
{
    if (!host)
        return;
    g_hash_table_destroy(host->sessions);
    if (host->sctp_timer) { /* gone with the last association already */
        g_source_destroy(host->sctp_timer);
        g_source_unref(host->sctp_timer);
    }
    if (host->trim_timer) {
        g_source_destroy(host->trim_timer);
        g_source_unref(host->trim_timer);
    }
    md_dtls_identity_unref(host->identity);
    md_event_sink_unref(host->sink);
    g_free((char *)host->cfg.ice.bind_address);
    g_free((char *)host->cfg.ice.public_address);
    g_free(host);
}
