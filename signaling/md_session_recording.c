/*
 * Consent and recording of a verification session (DESIGN 5 and 6,
 * docs/protocol.md "Recording").  The municipality's policy decides:
 *
 *   off       `record` is refused (recording_off); nothing is ever asked.
 *   optional  the verifier sends `record` start; the tablet is asked for the
 *             applicant's consent (`consent`), and only a "given" answer
 *             starts the recorder.  A refusal records nothing.
 *   required  the tablet is asked as soon as the session is assigned; a
 *             refusal ends the session (reason consent_refused); once given,
 *             the recording starts when both legs are up; the outcome
 *             "verified" is refused (recording_required) unless a recording
 *             with consent ran.
 *
 * Consent is asked at most once per session: after it was given, a later
 * `record` start (after a stop) starts at once.  Every step is audited with
 * ids only (consent_asked, consent_given, consent_refused, record_start,
 * record_stop, recording_stored, recording_failed, record_refused), and both
 * legs are told the state with `recording` messages.  The recorder itself
 * runs on the session's media worker (gateway/md_media.h); it reports back
 * through md_session_recording_stored(), which may come after the session
 * ended.  Control thread only.
 */
#include "md_crypto.h"
#include "md_err.h"
#include "md_log.h"
#include "md_recording.h"
#include "md_server_private.h"
#include "md_time.h"

#include <string.h>

static const char *const policy_names[] = {[MD_RECORDING_OFF] = "off",
                                           [MD_RECORDING_OPTIONAL] = "optional",
                                           [MD_RECORDING_REQUIRED] = "required"};

static const char *const rec_state_names[] = {
    [MD_REC_IDLE] = "idle",     [MD_REC_ASKING] = "asking",   [MD_REC_CONSENTED] = "consented",
    [MD_REC_ON] = "on",         [MD_REC_STOPPED] = "stopped", [MD_REC_REFUSED] = "refused",
    [MD_REC_FAILED] = "failed",
};

void md_session_recording_init(md_session *s, enum md_recording_policy policy)
{
    s->rec = (md_session_rec){.policy = policy};
}

void md_session_recording_clear(md_session *s)
{
    g_clear_pointer(&s->rec.recording_id, g_free);
}

const char *md_session_recording_policy_name(const md_session *s)
{
    return policy_names[s->rec.policy];
}

static json_t *state_message(const md_session *s, const char *re)
{
    json_t *msg = json_pack("{s:s, s:s, s:s}", "type", "recording", "session", s->id, "state",
                            rec_state_names[s->rec.state]);
    if (re)
        json_object_set_new(msg, "re", json_string(re));
    return msg;
}

/* Sets the state and tells both legs; the sender of the causing message
 * gets `re` on its copy. */
static void set_rec_state(md_server *srv, md_session *s, md_rec_state state, md_party *by,
                          const char *re)
{
    s->rec.state = state;
    for (int i = 0; i < 2; i++)
        if (s->leg[i])
            md_party_send(s->leg[i], state_message(s, s->leg[i] == by ? re : NULL));
}

static void ask_consent(md_server *srv, md_session *s, md_party *by, const char *re)
{
    md_server_audit(srv, by ? by->actor : "system", "consent_asked", s->municipality,
                    s->post_office, s->id,
                    json_pack("{s:s}", "policy", policy_names[s->rec.policy]));
    set_rec_state(srv, s, MD_REC_ASKING, by, re);
    if (s->leg[MD_LEG_TABLET])
        md_party_send(s->leg[MD_LEG_TABLET],
                      json_pack("{s:s, s:s}", "type", "consent", "session", s->id));
}

/* ---- the recorder (gateway/md_media.h) ---- */

static void recording_failed(md_server *srv, md_session *s, const char *recording_id, int err)
{
    md_error("recording", "failed", "{s:s, s:s, s:s}", "session", s->id, "recording",
             recording_id ? recording_id : "", "error", md_strerror(err));
    json_t *detail = json_pack("{s:s}", "code", md_err_code(err));
    if (recording_id)
        json_object_set_new(detail, "recording", json_string(recording_id));
    md_server_audit(srv, "system", "recording_failed", s->municipality, s->post_office, s->id,
                    detail);
    g_clear_pointer(&s->rec.recording_id, g_free);
    s->rec.want = false;
    set_rec_state(srv, s, MD_REC_FAILED, NULL, NULL);
}

/* Starts the recorder once consent is given, the verifier (or the policy)
 * wants it, and media flows.  The row and the encrypted file exist before
 * the record_start entry, and the entry before any media is written: a
 * recording without its audit entry never exists. */
static void start_if_ready(md_server *srv, md_session *s, md_party *by, const char *re)
{
    if (!s->rec.consent_given || !s->rec.want || s->rec.state == MD_REC_ON)
        return;
    if (s->state != MD_STATE_LIVE || !s->media_open) {
        if (s->rec.state != MD_REC_CONSENTED)
            set_rec_state(srv, s, MD_REC_CONSENTED, by, re);
        return;
    }
    g_autofree char *id = NULL;
    md_evidence_rec *writer = NULL;
    int r = md_recording_begin(srv->store, srv->evidence, s->id, md_now_ms(), &id, &writer);
    if (r < 0) {
        recording_failed(srv, s, NULL, r);
        return;
    }
    if (md_server_audit(srv, by ? by->actor : "system", "record_start", s->municipality,
                        s->post_office, s->id, json_pack("{s:s}", "recording", id)) < 0) {
        md_evidence_rec_abandon(writer);
        md_recording_end(srv->store, id, MD_RECORDING_CUT, md_now_ms(), 0, NULL, 0);
        recording_failed(srv, s, id, -MD_E_INTERNAL);
        return;
    }
    r = md_media_record_start(srv->media, s->id, id, writer); /* takes writer */
    if (r < 0) {
        char sha[MD_SHA256_HEX_LEN + 1];
        uint64_t bytes = 0;
        bool hashed = md_evidence_rec_file_hash(srv->evidence, id, sha, &bytes) == 0;
        md_recording_end(srv->store, id, MD_RECORDING_CUT, md_now_ms(), 0, hashed ? sha : NULL,
                         bytes);
        recording_failed(srv, s, id, r);
        return;
    }
    srv->recordings_running++;
    g_free(s->rec.recording_id);
    s->rec.recording_id = g_steal_pointer(&id);
    s->rec.ran = true;
    s->rec.count++;
    md_info("recording", "started", "{s:s, s:s}", "session", s->id, "recording",
            s->rec.recording_id);
    set_rec_state(srv, s, MD_REC_ON, by, re);
}

static void stop_running(md_server *srv, md_session *s, md_party *by, const char *why)
{
    if (s->rec.state != MD_REC_ON || !s->rec.recording_id)
        return;
    int r = md_media_record_stop(srv->media, s->id);
    md_server_audit(srv, by ? by->actor : "system", "record_stop", s->municipality, s->post_office,
                    s->id, json_pack("{s:s, s:s}", "recording", s->rec.recording_id, "why", why));
    if (r < 0)
        md_warn("recording", "stop_failed", "{s:s, s:s}", "session", s->id, "error",
                md_strerror(r));
    g_clear_pointer(&s->rec.recording_id, g_free);
}

/* ---- hooks from the session lifecycle ---- */

void md_session_recording_assigned(md_server *srv, md_session *s)
{
    if (s->rec.policy != MD_RECORDING_REQUIRED)
        return;
    s->rec.want = true;
    ask_consent(srv, s, NULL, NULL);
}

void md_session_recording_live(md_server *srv, md_session *s)
{
    start_if_ready(srv, s, NULL, NULL);
}

void md_session_recording_rejoined(md_server *srv, md_session *s, md_party *p)
{
    if (s->rec.state == MD_REC_IDLE)
        return;
    md_party_send(p, state_message(s, NULL));
    if (s->rec.state == MD_REC_ASKING && p->role == MD_SENDER_TABLET)
        md_party_send(p, json_pack("{s:s, s:s}", "type", "consent", "session", s->id));
}

void md_session_recording_ending(md_server *srv, md_session *s)
{
    stop_running(srv, s, NULL, "session_ended");
}

int md_session_recording_outcome_check(const md_session *s, const char *result)
{
    if (s->rec.policy == MD_RECORDING_REQUIRED && strcmp(result, "verified") == 0 && !s->rec.ran)
        return -MD_E_RECORDING_REQUIRED;
    return 0;
}

/* ---- messages ---- */

static void refuse_record(md_server *srv, md_party *p, md_session *s, const md_proto_result *m,
                          int err, const char *detail)
{
    md_server_audit(srv, p->actor, "record_refused", s->municipality, s->post_office, s->id,
                    json_pack("{s:s}", "code", md_err_code(err)));
    md_party_send_error(p, err, detail, m->id, s->id);
}

void md_session_on_record(md_server *srv, md_party *p, const md_proto_result *m)
{
    md_session *s = md_sessions_own(srv, p, m);
    if (!s)
        return;
    const char *action = json_string_value(json_object_get(m->msg, "action"));
    if (s->rec.policy == MD_RECORDING_OFF) {
        refuse_record(srv, p, s, m, -MD_E_RECORDING_OFF, NULL);
        return;
    }
    if (s->state == MD_STATE_REQUESTED) {
        refuse_record(srv, p, s, m, -MD_E_SESSION_STATE, "the session has no verifier yet");
        return;
    }
    if (strcmp(action, "stop") == 0) {
        if (s->rec.state != MD_REC_ON && s->rec.state != MD_REC_CONSENTED &&
            s->rec.state != MD_REC_ASKING) {
            refuse_record(srv, p, s, m, -MD_E_SESSION_STATE, "nothing is being recorded");
            return;
        }
        s->rec.want = false;
        if (s->rec.state == MD_REC_ON)
            stop_running(srv, s, p, "verifier");
        set_rec_state(srv, s, MD_REC_STOPPED, p, m->id);
        return;
    }
    /* start */
    if (s->rec.state == MD_REC_REFUSED) {
        refuse_record(srv, p, s, m, -MD_E_CONSENT_REFUSED, NULL);
        return;
    }
    if (s->rec.state == MD_REC_ON || s->rec.state == MD_REC_ASKING ||
        s->rec.state == MD_REC_CONSENTED) {
        md_party_send(p, state_message(s, m->id)); /* already under way */
        return;
    }
    s->rec.want = true;
    if (!s->rec.consent_given) {
        ask_consent(srv, s, p, m->id);
        return;
    }
    start_if_ready(srv, s, p, m->id);
}

void md_session_on_consent(md_server *srv, md_party *p, const md_proto_result *m)
{
    md_session *s = md_sessions_own(srv, p, m);
    if (!s)
        return;
    if (s->rec.state != MD_REC_ASKING) {
        md_party_send_error(p, -MD_E_SESSION_STATE, "consent was not asked", m->id, s->id);
        return;
    }
    bool given = json_is_true(json_object_get(m->msg, "given"));
    if (md_server_audit(srv, p->actor, given ? "consent_given" : "consent_refused", s->municipality,
                        s->post_office, s->id,
                        json_pack("{s:s}", "policy", policy_names[s->rec.policy])) < 0) {
        md_party_send_error(p, -MD_E_INTERNAL, "the answer could not be recorded", m->id, s->id);
        return;
    }
    if (!given) {
        s->rec.want = false;
        set_rec_state(srv, s, MD_REC_REFUSED, p, m->id);
        if (s->rec.policy == MD_RECORDING_REQUIRED)
            md_session_end(srv, s, NULL, "consent_refused", p, NULL);
        return;
    }
    s->rec.consent_given = true;
    if (s->state == MD_STATE_LIVE)
        start_if_ready(srv, s, p, m->id);
    else
        set_rec_state(srv, s, MD_REC_CONSENTED, p, m->id);
}

/* ---- the recorder's report ---- */

/* The audit scope of a session that may have ended already. */
static void session_scope(md_server *srv, const char *session_id, char **ret_municipality,
                          char **ret_post_office)
{
    md_session *s = g_hash_table_lookup(srv->sessions, session_id);
    if (s) {
        *ret_municipality = g_strdup(s->municipality);
        *ret_post_office = g_strdup(s->post_office);
        return;
    }
    md_store_query_text(srv->store, "SELECT municipality FROM verification_session WHERE id = ?",
                        MD_PARAMS(MD_P_TEXT(session_id)), ret_municipality);
    md_store_query_text(srv->store, "SELECT post_office FROM verification_session WHERE id = ?",
                        MD_PARAMS(MD_P_TEXT(session_id)), ret_post_office);
}

/* The audit entry of a finished recording: ids, hash and figures only. */
static void audit_stored(md_server *srv, const md_recording *rec, const char *codec, int error,
                         uint64_t dropped)
{
    g_autofree char *municipality = NULL, *post_office = NULL;
    session_scope(srv, rec->session_id, &municipality, &post_office);
    json_t *detail =
        json_pack("{s:s, s:s, s:I, s:I, s:s}", "recording", rec->id, "state",
                  md_recording_state_name(rec->state), "duration_ms", (json_int_t)rec->duration_ms,
                  "bytes", (json_int_t)rec->bytes, "sha256", rec->sha256 ? rec->sha256 : "");
    if (codec)
        json_object_set_new(detail, "codec", json_string(codec));
    if (error < 0)
        json_object_set_new(detail, "code", json_string(md_err_code(error)));
    if (dropped)
        json_object_set_new(detail, "dropped_packets", json_integer((json_int_t)dropped));
    md_server_audit(srv, "system", "recording_stored", municipality, post_office, rec->session_id,
                    detail);
}

/* MD_MEDIA_RECORDING: "recording" once the pipeline runs (the codec is
 * known), then "complete" or "cut".  The final one may come after the
 * session ended (closing a session stops its recording). */
void md_session_recording_event(md_server *srv, const md_media_event *ev)
{
    const md_media_recording *mr = &ev->recording;
    if (!mr->id || !mr->state)
        return;
    if (strcmp(mr->state, "recording") == 0) {
        if (mr->codec)
            md_recording_set_codec(srv->store, mr->id, mr->codec);
        return;
    }
    bool cut = strcmp(mr->state, "complete") != 0;
    int64_t now = md_now_ms();
    int r = md_recording_end(srv->store, mr->id, cut ? MD_RECORDING_CUT : MD_RECORDING_COMPLETE,
                             now, mr->duration_ms, mr->sha256, mr->bytes);
    if (r < 0)
        md_error("recording", "end_failed", "{s:s, s:s}", "recording", mr->id, "error",
                 md_strerror(r));
    if (srv->recordings_running > 0)
        srv->recordings_running--;
    md_recording rec = {
        .id = (char *)mr->id,
        .session_id = (char *)ev->session_id,
        .state = cut ? MD_RECORDING_CUT : MD_RECORDING_COMPLETE,
        .duration_ms = mr->duration_ms,
        .sha256 = (char *)mr->sha256,
        .bytes = mr->bytes,
    };
    audit_stored(srv, &rec, mr->codec, cut ? (ev->error ? ev->error : -MD_E_RECORDER) : 0,
                 mr->dropped);
    md_info("recording", "stored", "{s:s, s:s, s:s, s:I}", "session", ev->session_id, "recording",
            mr->id, "state", mr->state, "duration_ms", (json_int_t)mr->duration_ms);
    md_session *s = g_hash_table_lookup(srv->sessions, ev->session_id);
    if (s && s->rec.recording_id && strcmp(s->rec.recording_id, mr->id) == 0 && cut)
        recording_failed(srv, s, mr->id, ev->error ? ev->error : -MD_E_RECORDER);
}

/* Rows a crash left "recording": md_recording_recover() closes them (cut,
 * or complete if the final chunk made it) and each is audited as stored. */
static int collect_unfinished(const md_recording *r, void *userdata)
{
    if (r->state == MD_RECORDING_RECORDING)
        g_ptr_array_add(userdata, g_strdup(r->id));
    return 0;
}

int md_session_recording_recover(md_server *srv)
{
    g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
    int r = md_recording_list(srv->store, NULL, collect_unfinished, ids);
    if (r < 0)
        return r;
    if (ids->len == 0)
        return 0;
    r = md_recording_recover(srv->store, srv->evidence, md_now_ms());
    if (r < 0)
        return r;
    for (guint i = 0; i < ids->len; i++) {
        md_recording rec;
        if (md_recording_get(srv->store, ids->pdata[i], &rec) == 1) {
            audit_stored(srv, &rec, rec.codec, rec.state == MD_RECORDING_CUT ? -MD_E_RECORDER : 0,
                         0);
            md_recording_clear(&rec);
        }
    }
    md_info("recording", "recovered", "{s:i}", "recordings", (int)ids->len);
    return (int)ids->len;
}

/* Shutdown: sessions were ended (their recordings stopped); the final
 * events come from the workers.  Waits for them, at most timeout_ms, so
 * that a clean stop leaves complete recordings and their audit entries. */
void md_session_recording_drain(md_server *srv, int timeout_ms)
{
    int64_t deadline = md_monotonic_ms() + timeout_ms;
    while (srv->recordings_running > 0 && md_monotonic_ms() < deadline) {
        if (!g_main_context_iteration(NULL, FALSE))
            g_usleep(10 * 1000);
    }
}
