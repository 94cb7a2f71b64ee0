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
#include "md_server_private.h"
#include "md_time.h"

#include <string.h>

static const char *const policy_names[] = {[MD_RECORDING_OFF] = "off",
                                           [MD_RECORDING_OPTIONAL] = "optional",
                                           [MD_RECORDING_REQUIRED] = "required"};

static const char *const rec_state_names[] = {
    [MD_REC_IDLE] = "idle",       [MD_REC_ASKING] = "asking",   [MD_REC_CONSENTED] = "consented",
    [MD_REC_ON] = "on",           [MD_REC_STOPPED] = "stopped", [MD_REC_REFUSED] = "refused",
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
            md_server_send(srv, s->leg[i], state_message(s, s->leg[i] == by ? re : NULL));
}

static void ask_consent(md_server *srv, md_session *s, md_party *by, const char *re)
{
    md_server_audit(srv, by ? by->actor : "system", "consent_asked", s->municipality,
                    s->post_office, s->id,
                    json_pack("{s:s}", "policy", policy_names[s->rec.policy]));
    set_rec_state(srv, s, MD_REC_ASKING, by, re);
    if (s->leg[MD_LEG_TABLET])
        md_server_send(srv, s->leg[MD_LEG_TABLET],
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
 * wants it, and media flows.  The audit entry comes first: a recording
 * without its record_start entry must not exist. */
static void start_if_ready(md_server *srv, md_session *s, md_party *by, const char *re)
{
    if (!s->rec.consent_given || !s->rec.want || s->rec.state == MD_REC_ON)
        return;
    if (s->state != MD_STATE_LIVE || !s->media_open) {
        if (s->rec.state != MD_REC_CONSENTED)
            set_rec_state(srv, s, MD_REC_CONSENTED, by, re);
        return;
    }
    uint8_t raw[16];
    char id[33];
    if (md_random_bytes(raw, sizeof(raw)) < 0) {
        recording_failed(srv, s, NULL, -MD_E_INTERNAL);
        return;
    }
    md_hex_encode(raw, sizeof(raw), id);
    if (md_server_audit(srv, by ? by->actor : "system", "record_start", s->municipality,
                        s->post_office, s->id, json_pack("{s:s}", "recording", id)) < 0) {
        recording_failed(srv, s, id, -MD_E_INTERNAL);
        return;
    }
    int r = md_media_record_start(srv->media, s->id, id);
    if (r < 0) {
        recording_failed(srv, s, id, r == -MD_E_INTERNAL ? r : -MD_E_RECORDING_FAILED);
        return;
    }
    g_free(s->rec.recording_id);
    s->rec.recording_id = g_strdup(id);
    s->rec.ran = true;
    s->rec.count++;
    md_info("recording", "started", "{s:s, s:s}", "session", s->id, "recording", id);
    set_rec_state(srv, s, MD_REC_ON, by, re);
}

static void stop_running(md_server *srv, md_session *s, md_party *by, const char *why)
{
    if (s->rec.state != MD_REC_ON || !s->rec.recording_id)
        return;
    int r = md_media_record_stop(srv->media, s->id);
    md_server_audit(srv, by ? by->actor : "system", "record_stop", s->municipality,
                    s->post_office, s->id,
                    json_pack("{s:s, s:s}", "recording", s->rec.recording_id, "why", why));
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
    md_server_send(srv, p, state_message(s, NULL));
    if (s->rec.state == MD_REC_ASKING && p->role == MD_SENDER_TABLET)
        md_server_send(srv, p, json_pack("{s:s, s:s}", "type", "consent", "session", s->id));
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

/* The session a message names, if the sender is one of its parties (as
 * md_sessions.c: others' sessions look unknown, so ids cannot be probed). */
static md_session *own_session(md_server *srv, md_party *p, const md_proto_result *m)
{
    const char *id = json_string_value(json_object_get(m->msg, "session"));
    md_session *s = g_hash_table_lookup(srv->sessions, id);
    if (!s || s != p->session) {
        md_server_send_error(srv, p, -MD_E_SESSION_UNKNOWN, NULL, m->id, id);
        return NULL;
    }
    return s;
}

static void refuse_record(md_server *srv, md_party *p, md_session *s, const md_proto_result *m,
                          int err, const char *detail)
{
    md_server_audit(srv, p->actor, "record_refused", s->municipality, s->post_office, s->id,
                    json_pack("{s:s}", "code", md_err_code(err)));
    md_server_send_error(srv, p, err, detail, m->id, s->id);
}

void md_session_on_record(md_server *srv, md_party *p, const md_proto_result *m)
{
    md_session *s = own_session(srv, p, m);
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
        md_server_send(srv, p, state_message(s, m->id)); /* already under way */
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
    md_session *s = own_session(srv, p, m);
    if (!s)
        return;
    if (s->rec.state != MD_REC_ASKING) {
        md_server_send_error(srv, p, -MD_E_SESSION_STATE, "consent was not asked", m->id, s->id);
        return;
    }
    bool given = json_is_true(json_object_get(m->msg, "given"));
    if (md_server_audit(srv, p->actor, given ? "consent_given" : "consent_refused",
                        s->municipality, s->post_office, s->id,
                        json_pack("{s:s}", "policy", policy_names[s->rec.policy])) < 0) {
        md_server_send_error(srv, p, -MD_E_INTERNAL, "the answer could not be recorded", m->id,
                             s->id);
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

/* A recording was finalised (stopped, session closed, or cut by an error):
 * audited with its id, the SHA-256 of its ciphertext and its duration.  The
 * session may have ended already; the audit scope then comes from the store. */
void md_session_recording_stored(md_server *srv, const char *session_id, const char *recording_id,
                                 const char *sha256, int64_t duration_ms, int error)
{
    md_session *s = g_hash_table_lookup(srv->sessions, session_id);
    g_autofree char *municipality = NULL, *post_office = NULL;
    if (s) {
        municipality = g_strdup(s->municipality);
        post_office = g_strdup(s->post_office);
    } else {
        md_store_query_text(srv->store, "SELECT municipality FROM verification_session WHERE id = ?",
                            MD_PARAMS(MD_P_TEXT(session_id)), &municipality);
        md_store_query_text(srv->store, "SELECT post_office FROM verification_session WHERE id = ?",
                            MD_PARAMS(MD_P_TEXT(session_id)), &post_office);
    }
    if (error < 0 && !sha256) {
        if (s && s->rec.recording_id && strcmp(s->rec.recording_id, recording_id) == 0) {
            recording_failed(srv, s, recording_id, error);
            return;
        }
        md_server_audit(srv, "system", "recording_failed", municipality, post_office, session_id,
                        json_pack("{s:s, s:s}", "recording", recording_id, "code",
                                  md_err_code(error)));
        return;
    }
    json_t *detail = json_pack("{s:s, s:s, s:I}", "recording", recording_id, "sha256", sha256,
                               "duration_ms", (json_int_t)duration_ms);
    if (error < 0)
        json_object_set_new(detail, "code", json_string(md_err_code(error)));
    md_server_audit(srv, "system", "recording_stored", municipality, post_office, session_id,
                    detail);
    md_info("recording", "stored", "{s:s, s:s, s:I}", "session", session_id, "recording",
            recording_id, "duration_ms", (json_int_t)duration_ms);
    if (s && error < 0 && s->rec.recording_id && strcmp(s->rec.recording_id, recording_id) == 0)
        recording_failed(srv, s, recording_id, error); /* cut short while running */
}
