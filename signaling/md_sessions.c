/*
 * The queue and the verification-session lifecycle (docs/protocol.md,
 * "Session lifecycle"):
 *
 *   requested -> assigned -> connecting -> live -> ended(outcome, reason)
 *
 * A tablet's request is admitted by the registry rules and queued for its
 * municipality; verifiers of that municipality see the queue live and pick
 * (`accept`), or the gateway assigns a random idle verifier when the
 * municipality's policy says `random`.  Each transition is written to the
 * store and audited before the parties are told: transition() is the one
 * place that does it (persist, audit, then send), and if the audit refuses
 * the session keeps its state and nobody hears of the change.  A leg whose connection
 * drops may come back within session.rejoin_grace_seconds; otherwise the
 * session ends with reason `network`.  Control thread only.
 */
#include "md_crypto.h"
#include "md_err.h"
#include "md_log.h"
#include "md_recovery.h"
#include "md_sealed.h"
#include "md_server_private.h"
#include "md_time.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {"requested", "assigned", "connecting", "live", "ended"};

struct session_timer {
    md_server *srv;
    char *session_id;
    const char *reason; /* static: why the session ends when it fires */
};

void md_session_free(md_session *s)
{
    if (!s)
        return;
    if (s->timer)
        g_source_remove(s->timer);
    g_free(s->id);
    g_free(s->municipality);
    g_free(s->post_office);
    g_free(s->post_office_name);
    g_free(s->device_id);
    g_free(s->procedure);
    g_free(s->verifier);
    md_session_recording_clear(s);
    g_free(s);
}

static md_leg leg_of(const md_party *p)
{
    return p->role == MD_SENDER_TABLET ? MD_LEG_TABLET : MD_LEG_VERIFIER;
}

static bool unfinished(const md_session *s)
{
    return s->state != MD_STATE_ENDED;
}

static void send_both(md_server *srv, md_session *s, json_t *msg)
{
    for (int i = 0; i < 2; i++)
        if (s->leg[i])
            md_party_send(s->leg[i], json_incref(msg));
    json_decref(msg);
}

/* Writes the session's state, and the time it was reached when time_column
 * names one (a fixed column name from this file, never client input).  The
 * audit entry is the record of the transition; this row is the index. */
static int persist_state(md_server *srv, md_session *s, const char *time_column)
{
    g_autofree char *sql = g_strdup_printf(
        "UPDATE verification_session SET state = ?, verifier = ?%s%s%s WHERE id = ?",
        time_column ? ", " : "", time_column ? time_column : "", time_column ? " = ?" : "");
    md_param params[] = {MD_P_TEXT(state_names[s->state]), MD_P_TEXT(s->verifier),
                         MD_P_INT(md_now_ms()), MD_P_TEXT(s->id)};
    if (!time_column)
        params[2] = params[3];
    int r = md_store_exec(srv->store, sql, params, time_column ? 4 : 3);
    if (r < 0)
        md_error("session", "store_failed", "{s:s, s:s, s:s}", "session", s->id, "state",
                 state_names[s->state], "error", md_strerror(r));
    return r < 0 ? r : 0;
}

/*
 * The one way a session moves to `state` (all but `ended`, which
 * end_session() writes with its outcome): persist, audit, and only then tell
 * the parties (DESIGN.md: the audit entry is durable before the action it
 * records is acknowledged).  If the store or the audit refuses, the session
 * keeps its previous state, nobody is told, and the error is returned.  The
 * parties learn of a transition by WebSocket messages only, so the writes
 * commit without waiting for the disk and the messages wait instead
 * (md_sync_gate.c).
 */
static int record_transition(md_server *srv, md_session *s, md_session_state state,
                             const char *time_column, const char *actor, const char *event,
                             json_t *detail /* stolen, nullable */)
{
    md_session_state was = s->state;
    s->state = state;
    md_sync_gate_begin(srv);
    int r = persist_state(srv, s, time_column);
    if (r == 0) {
        int64_t seq =
            md_server_audit(srv, actor, event, s->municipality, s->post_office, s->id, detail);
        detail = NULL;
        if (seq < 0) {
            r = (int)seq;
            s->state = was;
            persist_state(srv, s, NULL); /* best effort: the row follows the audit */
        }
    }
    md_sync_gate_end(srv);
    if (detail)
        json_decref(detail);
    if (r < 0)
        s->state = was;
    return r;
}

static void tell_state(md_server *srv, md_session *s)
{
    send_both(srv, s,
              json_pack("{s:s, s:s, s:s}", "type", "state", "session", s->id, "state",
                        state_names[s->state]));
}

static int transition(md_server *srv, md_session *s, md_session_state state,
                      const char *time_column, const char *actor, const char *event,
                      json_t *detail /* stolen, nullable */)
{
    int r = record_transition(srv, s, state, time_column, actor, event, detail);
    if (r == 0)
        tell_state(srv, s);
    return r;
}

/* Marks msg as the reply to the client message whose id is re (docs/protocol.md). */
static json_t *reply_to(json_t *msg, const char *re)
{
    if (re)
        json_object_set_new(msg, "re", json_string(re));
    return msg;
}

/* ---- timers ---- */

static void timer_data_free(gpointer data)
{
    struct session_timer *t = data;
    g_free(t->session_id);
    g_free(t);
}

static void end_session(md_server *srv, md_session *s, const char *outcome, const char *reason,
                        md_party *by, const char *re);

static gboolean on_session_timer(gpointer data)
{
    struct session_timer *t = data;
    md_session *s = g_hash_table_lookup(t->srv->sessions, t->session_id);
    if (s) {
        s->timer = 0; /* this source is being removed by returning REMOVE */
        end_session(t->srv, s, NULL, t->reason, NULL, NULL);
    }
    return G_SOURCE_REMOVE;
}

static void arm_timer(md_server *srv, md_session *s, int seconds, const char *reason)
{
    if (s->timer)
        g_source_remove(s->timer);
    struct session_timer *t = g_new0(struct session_timer, 1);
    t->srv = srv;
    t->session_id = g_strdup(s->id);
    t->reason = reason;
    s->timer = g_timeout_add_seconds_full(G_PRIORITY_DEFAULT, (guint)seconds, on_session_timer, t,
                                          timer_data_free);
}

static void disarm_timer(md_session *s)
{
    if (s->timer)
        g_source_remove(s->timer);
    s->timer = 0;
}

/* ---- the queue ---- */

static gint by_request_time(gconstpointer a, gconstpointer b)
{
    const md_session *x = *(md_session *const *)a, *y = *(md_session *const *)b;
    return x->requested_mono_ms < y->requested_mono_ms
               ? -1
               : x->requested_mono_ms > y->requested_mono_ms;
}

/* Waiting requests of a municipality, oldest first (container only). */
static GPtrArray *waiting(md_server *srv, const char *municipality)
{
    GPtrArray *list = g_ptr_array_new();
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, srv->sessions);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        md_session *s = value;
        if (s->state == MD_STATE_REQUESTED && strcmp(s->municipality, municipality) == 0)
            g_ptr_array_add(list, s);
    }
    g_ptr_array_sort(list, by_request_time);
    return list;
}

static json_t *queued_message(md_session *s, guint position, int64_t now_mono)
{
    return json_pack("{s:s, s:s, s:s, s:i, s:I}", "type", "queued", "session", s->id, "procedure",
                     s->procedure, "position", (int)position + 1, "wait_seconds",
                     (json_int_t)((now_mono - s->requested_mono_ms) / 1000));
}

static json_t *queue_entry(md_server *srv, md_session *s, int64_t now_mono)
{
    const md_procedure *proc = md_procedures_find(srv->procedures, s->procedure);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "session", s->id, "post_office",
                     s->post_office, "post_office_name",
                     s->post_office_name ? s->post_office_name : "", "procedure", s->procedure,
                     "procedure_ja", proc ? proc->ja : "", "waiting_seconds",
                     (json_int_t)((now_mono - s->requested_mono_ms) / 1000));
}

/* Tells every verifier of the municipality the queue, and every waiting
 * tablet its position; the tablet whose request caused it gets `re`. */
static void broadcast_queue_re(md_server *srv, const char *municipality, const md_session *cause,
                               const char *re)
{
    g_autoptr(GPtrArray) list = waiting(srv, municipality);
    int64_t now = md_monotonic_ms();
    json_t *entries = json_array();
    for (guint i = 0; i < list->len; i++) {
        md_session *s = list->pdata[i];
        json_array_append_new(entries, queue_entry(srv, s, now));
        if (s->leg[MD_LEG_TABLET] && s == cause) /* the reply to its request: never merged */
            md_party_send(s->leg[MD_LEG_TABLET], reply_to(queued_message(s, i, now), re));
        else if (s->leg[MD_LEG_TABLET])
            md_party_send_latest(s->leg[MD_LEG_TABLET], MD_SNAPSHOT_POSITION,
                                 queued_message(s, i, now));
    }
    json_t *msg = json_pack("{s:s, s:s, s:o}", "type", "queue", "municipality", municipality,
                            "entries", entries);
    for (guint i = 0; i < srv->parties->len; i++) {
        md_party *p = srv->parties->pdata[i];
        if (p->role == MD_SENDER_VERIFIER && g_strcmp0(p->municipality, municipality) == 0)
            md_party_send_latest(p, MD_SNAPSHOT_QUEUE, json_incref(msg));
    }
    json_decref(msg);
}

static void broadcast_queue(md_server *srv, const char *municipality)
{
    broadcast_queue_re(srv, municipality, NULL, NULL);
}

static void send_queue_to(md_server *srv, md_party *verifier)
{
    g_autoptr(GPtrArray) list = waiting(srv, verifier->municipality);
    int64_t now = md_monotonic_ms();
    json_t *entries = json_array();
    for (guint i = 0; i < list->len; i++)
        json_array_append_new(entries, queue_entry(srv, list->pdata[i], now));
    md_party_send_latest(verifier, MD_SNAPSHOT_QUEUE,
                         json_pack("{s:s, s:s, s:o}", "type", "queue", "municipality",
                                   verifier->municipality, "entries", entries));
}

/* ---- assignment ---- */

static json_t *assigned_message(md_server *srv, md_session *s, const char *role)
{
    const md_procedure *proc = md_procedures_find(srv->procedures, s->procedure);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s}", "type", "assigned", "session",
                     s->id, "procedure", s->procedure, "procedure_ja", proc ? proc->ja : "",
                     "post_office", s->post_office, "post_office_name",
                     s->post_office_name ? s->post_office_name : "", "role", role, "ice_servers",
                     md_session_ice_servers(srv, s), "recording",
                     md_session_recording_policy_name(s));
}

/* Assigns; nothing changes and nobody hears of it unless the media plane
 * admits the session (-MD_E_MEDIA_CAPACITY: docs/internals/media.md,
 * "Admission") and the row and the audit entry are written (transition()). */
static int assign(md_server *srv, md_session *s, md_party *verifier, const char *mode,
                  const char *re)
{
    int r = md_session_media_open(srv, s);
    if (r < 0)
        return r;
    s->verifier = g_strdup(verifier->username);
    r = record_transition(srv, s, MD_STATE_ASSIGNED, "assigned_at", verifier->actor, "assigned",
                          json_pack("{s:s, s:s}", "mode", mode, "verifier", verifier->username));
    if (r < 0) {
        md_session_media_close(srv, s);
        g_clear_pointer(&s->verifier, g_free);
        return r;
    }
    md_log_setup("assigned", s->id, NULL);
    disarm_timer(s);
    s->leg[MD_LEG_VERIFIER] = verifier;
    verifier->session = s;
    if (s->leg[MD_LEG_TABLET])
        md_party_send(s->leg[MD_LEG_TABLET], assigned_message(srv, s, "tablet"));
    md_party_send(verifier, reply_to(assigned_message(srv, s, "verifier"), re));
    tell_state(srv, s);
    arm_timer(srv, s, srv->cfg->session.connect_timeout_seconds, "connect_timeout");
    md_session_recording_assigned(srv, s);
    broadcast_queue(srv, s->municipality);
    return 0;
}

static bool idle_verifier(const md_party *p, const char *municipality)
{
    return p->role == MD_SENDER_VERIFIER && !p->session &&
           g_strcmp0(p->municipality, municipality) == 0;
}

/* Random assignment (against collusion): the oldest waiting request goes to
 * a verifier drawn uniformly among the idle ones, until either runs out. */
static void assign_random(md_server *srv, const char *municipality)
{
    for (;;) {
        g_autoptr(GPtrArray) list = waiting(srv, municipality);
        md_session *s = NULL;
        for (guint i = 0; i < list->len && !s; i++)
            if (((md_session *)list->pdata[i])->assignment == MD_ASSIGN_RANDOM)
                s = list->pdata[i];
        if (!s)
            return;
        g_autoptr(GPtrArray) idle = g_ptr_array_new();
        for (guint i = 0; i < srv->parties->len; i++)
            if (idle_verifier(srv->parties->pdata[i], municipality))
                g_ptr_array_add(idle, srv->parties->pdata[i]);
        if (idle->len == 0)
            return;
        md_party *v = idle->pdata[g_random_int_range(0, (gint32)idle->len)];
        int r = assign(srv, s, v, "random", NULL);
        if (r == -MD_E_MEDIA_CAPACITY) {
            srv->admission_refused = true; /* waits for md_sessions_tick() */
            return;
        }
        if (r < 0)
            return; /* the audit log is failing: leave the request waiting */
    }
}

void md_sessions_tick(md_server *srv)
{
    if (!srv->admission_refused)
        return;
    srv->admission_refused = false;
    g_autoptr(GHashTable) municipalities =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, srv->sessions);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        md_session *s = v;
        if (s->state == MD_STATE_REQUESTED && s->assignment == MD_ASSIGN_RANDOM)
            g_hash_table_add(municipalities, g_strdup(s->municipality));
    }
    g_hash_table_iter_init(&it, municipalities);
    while (g_hash_table_iter_next(&it, &v, NULL))
        assign_random(srv, v); /* sets the flag again while capacity lacks */
}

/* ---- ending ---- */

/* Ends a session; `by` is the party that ended it (NULL: the gateway), and
 * its copy of `ended` carries `re`. */
static void end_session(md_server *srv, md_session *s, const char *outcome, const char *reason,
                        md_party *by, const char *re)
{
    const char *actor = by ? by->actor : "system";
    if (!unfinished(s))
        return;
    md_session_state was = s->state;
    disarm_timer(s);
    md_session_recording_ending(srv, s);
    if (s->media_open)
        md_session_media_close(srv, s);
    s->state = MD_STATE_ENDED;
    md_store_exec(
        srv->store,
        "UPDATE verification_session SET state = 'ended', outcome = ?, reason = ?,"
        " ended_at = ? WHERE id = ?",
        MD_PARAMS(MD_P_TEXT(outcome), MD_P_TEXT(reason), MD_P_INT(md_now_ms()), MD_P_TEXT(s->id)));
    json_t *detail = json_pack("{s:s, s:s}", "reason", reason, "state_before", state_names[was]);
    if (outcome)
        json_object_set_new(detail, "outcome", json_string(outcome));
    md_server_audit(srv, actor, "session_ended", s->municipality, s->post_office, s->id, detail);

    json_t *ended = json_pack("{s:s, s:s, s:o, s:s}", "type", "ended", "session", s->id, "outcome",
                              outcome ? json_string(outcome) : json_null(), "reason", reason);
    for (int i = 0; i < 2; i++)
        if (s->leg[i])
            md_party_send(s->leg[i], reply_to(json_deep_copy(ended), s->leg[i] == by ? re : NULL));
    json_decref(ended);
    for (int i = 0; i < 2; i++)
        if (s->leg[i])
            s->leg[i]->session = NULL;
    g_autofree char *municipality = g_strdup(s->municipality);
    enum md_assignment_mode mode = s->assignment;
    g_hash_table_remove(srv->sessions, s->id); /* frees s */
    if (was == MD_STATE_REQUESTED)
        broadcast_queue(srv, municipality);
    else if (mode == MD_ASSIGN_RANDOM)
        assign_random(srv, municipality); /* the verifier is idle again */
}

/* ---- message handlers ---- */

md_session *md_sessions_own(md_server *srv, md_party *p, const md_proto_result *m)
{
    const char *id = json_string_value(json_object_get(m->msg, "session"));
    md_session *s = g_hash_table_lookup(srv->sessions, id);
    if (!s || s != p->session) {
        md_party_send_error(p, -MD_E_SESSION_UNKNOWN, NULL, m->id, id);
        return NULL;
    }
    return s;
}

/* The device's unfinished session, if it has one (on any connection). */
static md_session *device_session(md_server *srv, const char *device_id)
{
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, srv->sessions);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        md_session *s = v;
        if (unfinished(s) && g_strcmp0(s->device_id, device_id) == 0)
            return s;
    }
    return NULL;
}

static void on_request(md_server *srv, md_party *p, const md_proto_result *m)
{
    const char *procedure = json_string_value(json_object_get(m->msg, "procedure"));
    /* One open request per device, whichever of its connections asks
     * (limits.connections_per_device lets a tablet hold two, e.g. a second
     * kiosk window). */
    md_session *open = p->session ? p->session : device_session(srv, p->device_id);
    if (open) {
        md_party_send_error(p, -MD_E_REQUEST_PENDING, NULL, m->id, open->id);
        return;
    }
    md_request_scope scope;
    int64_t now = md_now_ms();
    int r = md_registry_check_request(srv->store, srv->procedures, p->device_id, procedure, now,
                                      &scope);
    if (r < 0) {
        md_server_audit(srv, p->actor, "request_refused", p->municipality, p->post_office, NULL,
                        json_pack("{s:s, s:s}", "code", md_err_code(r), "procedure", procedure));
        md_party_send_error(p, r, NULL, m->id, NULL);
        return;
    }

    uint8_t raw[16];
    char hex[33];
    if (md_random_bytes(raw, sizeof(raw)) < 0) {
        r = -MD_E_INTERNAL;
        goto out;
    }
    md_hex_encode(raw, sizeof(raw), hex);
    /* As for every transition: persisted, audited, then told (the reply
     * waits for the disk, md_sync_gate.c).  A request the audit refuses leaves
     * no row behind. */
    md_sync_gate_begin(srv);
    r = md_store_exec(srv->store,
                      "INSERT INTO verification_session (id, municipality, post_office, device,"
                      " procedure, state, requested_at) VALUES (?, ?, ?, ?, ?, 'requested', ?)",
                      MD_PARAMS(MD_P_TEXT(hex), MD_P_TEXT(scope.municipality),
                                MD_P_TEXT(scope.post_office), MD_P_TEXT(p->device_id),
                                MD_P_TEXT(procedure), MD_P_INT(now)));
    if (r >= 0 && md_server_audit(srv, p->actor, "request", scope.municipality, scope.post_office,
                                  hex, json_pack("{s:s}", "procedure", procedure)) < 0) {
        md_store_exec(srv->store, "DELETE FROM verification_session WHERE id = ?",
                      MD_PARAMS(MD_P_TEXT(hex)));
        r = -MD_E_INTERNAL;
    }
    md_sync_gate_end(srv);
    if (r < 0)
        goto out;

    md_session *s = g_new0(md_session, 1);
    s->id = g_strdup(hex);
    s->municipality = g_strdup(scope.municipality);
    s->post_office = g_strdup(scope.post_office);
    md_store_query_text(srv->store, "SELECT name FROM post_office WHERE id = ?",
                        MD_PARAMS(MD_P_TEXT(s->post_office)), &s->post_office_name);
    s->device_id = g_strdup(p->device_id);
    s->procedure = g_strdup(procedure);
    s->state = MD_STATE_REQUESTED;
    s->requested_ms = now;
    s->requested_mono_ms = md_monotonic_ms();
    s->assignment = scope.policy.assignment;
    md_session_recording_init(s, scope.policy.recording);
    s->leg[MD_LEG_TABLET] = p;
    p->session = s;
    g_hash_table_insert(srv->sessions, s->id, s);

    md_info("session", "requested", "{s:s, s:s, s:s}", "session", s->id, "post_office",
            s->post_office, "procedure", s->procedure);
    arm_timer(srv, s, srv->cfg->session.wait_timeout_seconds, "queue_timeout");
    broadcast_queue_re(srv, s->municipality, s, m->id);
    if (s->assignment == MD_ASSIGN_RANDOM)
        assign_random(srv, s->municipality);
out:
    if (r < 0)
        md_party_send_error(p, -MD_E_INTERNAL, NULL, m->id, NULL);
    md_request_scope_clear(&scope);
}

static void on_cancel(md_server *srv, md_party *p, const md_proto_result *m)
{
    md_session *s = md_sessions_own(srv, p, m);
    if (!s)
        return;
    if (s->state != MD_STATE_REQUESTED) {
        md_party_send_error(p, -MD_E_SESSION_STATE, "only a waiting request can be cancelled",
                            m->id, s->id);
        return;
    }
    end_session(srv, s, NULL, "cancelled", p, m->id);
}

static void refuse_accept(md_server *srv, md_party *p, const md_proto_result *m, md_session *s,
                          int err)
{
    md_server_audit(srv, p->actor, "accept_refused", p->municipality, s ? s->post_office : NULL,
                    s ? s->id : NULL, json_pack("{s:s}", "code", md_err_code(err)));
    md_party_send_error(p, err, NULL, m->id, s ? s->id : NULL);
}

static void on_accept(md_server *srv, md_party *p, const md_proto_result *m)
{
    const char *id = json_string_value(json_object_get(m->msg, "session"));
    md_session *s = g_hash_table_lookup(srv->sessions, id);
    if (!s) {
        md_party_send_error(p, -MD_E_SESSION_UNKNOWN, NULL, m->id, id);
        return;
    }
    md_log_setup("accept", s->id, NULL);
    if (g_strcmp0(s->municipality, p->municipality) != 0) {
        refuse_accept(srv, p, m, s, -MD_E_WRONG_MUNICIPALITY);
        return;
    }
    if (p->session) {
        refuse_accept(srv, p, m, s, -MD_E_VERIFIER_BUSY);
        return;
    }
    if (s->state != MD_STATE_REQUESTED) {
        refuse_accept(srv, p, m, s, -MD_E_ALREADY_ASSIGNED);
        return;
    }
    if (s->assignment == MD_ASSIGN_RANDOM) {
        md_party_send_error(p, -MD_E_FORBIDDEN, "this municipality assigns verifiers at random",
                            m->id, s->id);
        return;
    }
    int r = assign(srv, s, p, "pick", m->id);
    if (r == -MD_E_MEDIA_CAPACITY)
        refuse_accept(srv, p, m, s, r); /* the request stays in the queue */
    else if (r < 0)
        md_party_send_error(p, -MD_E_INTERNAL, NULL, m->id, s->id);
}

/* The verifier's free text is personal data: kept sealed for its session
 * (core/md_sealed.h), never in the audit (which holds its SHA-256 only). */
static void store_outcome_note(md_server *srv, const char *session_id, const char *note)
{
    g_autofree char *context = g_strconcat("verification_session.outcome_note:", session_id, NULL);
    char *sealed = NULL;
    int r = md_store_seal(srv->store, context, note, &sealed);
    if (r == 0)
        r = md_store_exec(srv->store,
                          "UPDATE verification_session SET outcome_note = ? WHERE id = ?",
                          MD_PARAMS(MD_P_TEXT(sealed), MD_P_TEXT(session_id)));
    if (r < 0)
        md_error("session", "outcome_note_not_stored", "{s:s, s:s}", "session", session_id, "error",
                 md_strerror(r));
    free(sealed);
}

static void on_outcome(md_server *srv, md_party *p, const md_proto_result *m)
{
    md_session *s = md_sessions_own(srv, p, m);
    if (!s)
        return;
    const char *result = json_string_value(json_object_get(m->msg, "result"));
    const char *reason = json_string_value(json_object_get(m->msg, "reason"));
    if (strcmp(result, "aborted") == 0 && !reason) {
        md_party_send_error(p, -MD_E_SCHEMA, "\"reason\" is required for aborted", m->id, s->id);
        return;
    }
    int refused = md_session_recording_outcome_check(s, result);
    if (refused < 0) {
        md_server_audit(srv, p->actor, "outcome_refused", s->municipality, s->post_office, s->id,
                        json_pack("{s:s, s:s}", "result", result, "code", md_err_code(refused)));
        md_party_send_error(p, refused, NULL, m->id, s->id);
        return;
    }
    /* No `verified` without evidence: the session went live and the tablet's
     * media reached the verifier through the gateway. */
    if (strcmp(result, "verified") == 0 && (s->state != MD_STATE_LIVE || !s->tablet_media_seen)) {
        md_server_audit(srv, p->actor, "outcome_refused", s->municipality, s->post_office, s->id,
                        json_pack("{s:s, s:s, s:s}", "result", result, "code",
                                  md_err_code(-MD_E_NO_MEDIA_EVIDENCE), "state",
                                  state_names[s->state]));
        md_party_send_error(p, -MD_E_NO_MEDIA_EVIDENCE, NULL, m->id, s->id);
        return;
    }
    /* The free-text reason may describe the applicant: the store keeps it,
     * the audit keeps only its hash. */
    json_t *detail = json_pack("{s:s}", "result", result);
    if (reason) {
        char digest[MD_SHA256_HEX_LEN + 1];
        if (md_sha256_hex(reason, strlen(reason), digest) == 0)
            json_object_set_new(detail, "reason_sha256", json_string(digest));
    }
    if (md_server_audit(srv, p->actor, "outcome", s->municipality, s->post_office, s->id, detail) <
        0) {
        md_party_send_error(p, -MD_E_INTERNAL, "the outcome could not be recorded", m->id, s->id);
        return;
    }
    if (reason)
        store_outcome_note(srv, s->id, reason);
    end_session(srv, s, result, "outcome", p, m->id);
}

static bool media_state_ok(md_server *srv, md_party *p, const md_proto_result *m, md_session *s)
{
    if (s->state == MD_STATE_ASSIGNED || s->state == MD_STATE_CONNECTING ||
        s->state == MD_STATE_LIVE)
        return true;
    md_party_send_error(p, -MD_E_SESSION_STATE, "the session has no verifier yet", m->id, s->id);
    return false;
}

static void on_offer(md_server *srv, md_party *p, const md_proto_result *m)
{
    md_session *s = md_sessions_own(srv, p, m);
    if (!s || !media_state_ok(srv, p, m, s))
        return;
    md_log_setup("offer", s->id, md_leg_name(leg_of(p)));
    if (s->state == MD_STATE_ASSIGNED &&
        transition(srv, s, MD_STATE_CONNECTING, NULL, p->actor, "session_connecting", NULL) < 0) {
        md_party_send_error(p, -MD_E_INTERNAL, "the session could not be recorded", m->id, s->id);
        return;
    }
    const char *sdp = json_string_value(json_object_get(m->msg, "sdp"));
    g_autofree char *detail = NULL;
    int r = md_session_media_offer(srv, s, leg_of(p), sdp, &detail);
    if (r < 0) {
        md_server_audit(srv, p->actor, "offer_refused", s->municipality, s->post_office, s->id,
                        json_pack("{s:s}", "code", md_err_code(r)));
        md_party_send_error(p, r, detail, m->id, s->id);
    }
}

static void on_candidate(md_server *srv, md_party *p, const md_proto_result *m)
{
    md_session *s = md_sessions_own(srv, p, m);
    if (!s || !media_state_ok(srv, p, m, s))
        return;
    int r = md_session_media_candidate(srv, s, leg_of(p),
                                       json_string_value(json_object_get(m->msg, "candidate")),
                                       json_string_value(json_object_get(m->msg, "mid")));
    if (r < 0)
        md_party_send_error(p, r, NULL, m->id, s->id);
}

static void on_still(md_server *srv, md_party *p, const md_proto_result *m)
{
    md_session *s = md_sessions_own(srv, p, m);
    if (s)
        md_session_still_request(srv, s, p, m->id);
}

static void on_hangup(md_server *srv, md_party *p, const md_proto_result *m)
{
    md_session *s = md_sessions_own(srv, p, m);
    if (s)
        end_session(srv, s, NULL, "hangup", p, m->id);
}

const md_msg_handler md_session_handlers[MD_MSG__COUNT] = {
    [MD_MSG_REQUEST] = on_request,
    [MD_MSG_CANCEL] = on_cancel,
    [MD_MSG_ACCEPT] = on_accept,
    [MD_MSG_OUTCOME] = on_outcome,
    [MD_MSG_OFFER] = on_offer,
    [MD_MSG_RESTART] = on_offer,
    [MD_MSG_CANDIDATE] = on_candidate,
    [MD_MSG_HANGUP] = on_hangup,
    [MD_MSG_STILL] = on_still,
    [MD_MSG_RECORD] = md_session_on_record,
    [MD_MSG_CONSENT] = md_session_on_consent,
};

/* ---- parties coming and going ---- */

/* Whether p is the tablet or the verifier of s's `leg`, by device or account. */
static bool party_of(const md_session *s, md_leg leg, const md_party *p)
{
    return leg == MD_LEG_TABLET ? g_strcmp0(s->device_id, p->device_id) == 0
                                : g_strcmp0(s->verifier, p->username) == 0;
}

static md_session *find_abandoned(md_server *srv, md_party *p)
{
    GHashTableIter it;
    gpointer value;
    md_leg leg = leg_of(p);
    g_hash_table_iter_init(&it, srv->sessions);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        md_session *s = value;
        if (!s->leg[leg] && party_of(s, leg, p))
            return s;
    }
    return NULL;
}

/* A connection of the same tablet or verifier that still holds a leg: a
 * kiosk or console that reconnected after a network cut before the gateway
 * saw its old socket die (its TCP connection may linger until the WebSocket
 * ping times out). */
static md_party *stale_holder(md_server *srv, md_party *p)
{
    GHashTableIter it;
    gpointer value;
    md_leg leg = leg_of(p);
    g_hash_table_iter_init(&it, srv->sessions);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        md_session *s = value;
        md_party *held = s->leg[leg];
        if (held && held != p && unfinished(s) && party_of(s, leg, p))
            return held;
    }
    return NULL;
}

void md_sessions_party_joined(md_server *srv, md_party *p)
{
    if (p->role != MD_SENDER_TABLET && p->role != MD_SENDER_VERIFIER)
        return;
    /* The newest connection carries the session on: the old one is told and
     * closed, and the leg rejoins below as after any disconnect. */
    md_party *stale = stale_holder(srv, p);
    if (stale) {
        md_sessions_party_left(srv, stale);
        md_party_send_error(stale, -MD_E_SESSION_MOVED, NULL, NULL, NULL);
        md_conn_close(stale->conn, 1008, md_err_code(-MD_E_SESSION_MOVED));
    }
    md_session *s = find_abandoned(srv, p);
    if (s) {
        /* Rejoin within the grace period: same session, same id. */
        md_leg leg = leg_of(p);
        s->leg[leg] = p;
        p->session = s;
        md_server_audit(srv, p->actor, "leg_rejoined", s->municipality, s->post_office, s->id,
                        NULL);
        if (s->state == MD_STATE_REQUESTED) {
            arm_timer(srv, s, srv->cfg->session.wait_timeout_seconds, "queue_timeout");
        } else {
            disarm_timer(s);
            if (s->state != MD_STATE_LIVE)
                arm_timer(srv, s, srv->cfg->session.connect_timeout_seconds, "connect_timeout");
            else if (!s->leg_connected[MD_LEG_TABLET] || !s->leg_connected[MD_LEG_VERIFIER])
                /* Live, but a leg's media is still lost: without this a
                 * party that only reconnects its WebSocket keeps the session
                 * open for ever (found by bench/soak). */
                arm_timer(srv, s, srv->cfg->session.rejoin_grace_seconds, "network");
            md_party_send(p,
                          assigned_message(srv, s, leg == MD_LEG_TABLET ? "tablet" : "verifier"));
            md_party_send(p, json_pack("{s:s, s:s, s:s}", "type", "state", "session", s->id,
                                       "state", state_names[s->state]));
            md_session_recording_rejoined(srv, s, p);
        }
    }
    if (!s)
        md_recovery_party_joined(srv, p);
    if (p->role == MD_SENDER_VERIFIER) {
        send_queue_to(srv, p);
        if (!p->session)
            assign_random(srv, p->municipality);
    } else if (s && s->state == MD_STATE_REQUESTED) {
        broadcast_queue(srv, s->municipality);
    }
}

void md_sessions_party_left(md_server *srv, md_party *p)
{
    md_session *s = p->session;
    if (!s)
        return;
    md_leg leg = leg_of(p);
    s->leg[leg] = NULL;
    s->leg_connected[leg] = false;
    p->session = NULL;
    md_server_audit(srv, p->actor, "leg_disconnected", s->municipality, s->post_office, s->id,
                    json_pack("{s:s}", "state", state_names[s->state]));
    arm_timer(srv, s, srv->cfg->session.rejoin_grace_seconds, "network");
}

void md_sessions_shutdown(md_server *srv)
{
    GList *all = g_hash_table_get_values(srv->sessions);
    for (GList *l = all; l; l = l->next)
        end_session(srv, l->data, NULL, "shutdown", NULL, NULL);
    g_list_free(all);
}

/* ---- media plane events (delivered on the control thread) ---- */

/* A leg's per-second figures go to the verifier with the warnings the
 * municipality's thresholds raise; crossing into or out of warning is
 * audited once per change, not every second. */
static void quality_report(md_server *srv, md_session *s, md_leg leg, json_t *stats)
{
    json_t *warnings = md_quality_warnings(&s->quality, stats);
    /* Evidence for `verified`: media relayed from the tablet went out on the
     * verifier's leg (its counters count what the gateway sent there). */
    if (leg == MD_LEG_VERIFIER &&
        json_integer_value(json_object_get(json_object_get(stats, "counters"), "packets_out")) > 0)
        s->tablet_media_seen = true;
    bool warned = json_array_size(warnings) > 0;
    if (warned != s->quality_warned[leg]) {
        s->quality_warned[leg] = warned;
        json_t *codes = json_array();
        size_t i;
        json_t *w;
        json_array_foreach (warnings, i, w) {
            json_array_append(codes, json_object_get(w, "code"));
        }
        md_server_audit(srv, "system", warned ? "quality_warning" : "quality_ok", s->municipality,
                        s->post_office, s->id,
                        json_pack("{s:s, s:o}", "leg", md_leg_name(leg), "codes", codes));
    }
    if (s->leg[MD_LEG_VERIFIER])
        md_party_send(s->leg[MD_LEG_VERIFIER],
                      json_pack("{s:s, s:s, s:s, s:O, s:o}", "type", "quality", "session", s->id,
                                "leg", md_leg_name(leg), "stats", stats, "warnings", warnings));
    else
        json_decref(warnings);
}

/* A leg that was up lost its transport: its peer closed DTLS (a page reload
 * or a new PeerConnection) or ICE failed.  The client may come back with an
 * ICE restart or a new PeerConnection on the same session.  Failures of the
 * negotiation itself (codecs, fingerprint, SDP) end the session. */
static bool transport_loss(const md_session *s, const md_media_event *ev)
{
    return s->leg_was_up[ev->leg] &&
           (ev->error == -MD_E_DTLS_FAILED || ev->error == -MD_E_ICE_FAILED);
}

/* Consent or path lost (RFC 7675), or the transport closed: the leg has
 * session.rejoin_grace_seconds to come back, else the session ends with
 * reason network. */
static void leg_media_lost(md_server *srv, md_session *s, md_party *p, md_leg leg, int error)
{
    s->leg_connected[leg] = false;
    md_info("session", "leg_media_lost", "{s:s, s:s, s:s}", "session", s->id, "leg",
            md_leg_name(leg), "code", md_err_code(error ? error : -MD_E_ICE_FAILED));
    md_server_audit(srv, p ? p->actor : "system", "leg_media_lost", s->municipality, s->post_office,
                    s->id,
                    json_pack("{s:s, s:s}", "leg", md_leg_name(leg), "code",
                              md_err_code(error ? error : -MD_E_ICE_FAILED)));
    arm_timer(srv, s, srv->cfg->session.rejoin_grace_seconds, "network");
}

void md_sessions_on_media_event(const md_media_event *ev, void *userdata)
{
    md_server *srv = userdata;
    if (ev->type == MD_MEDIA_RECORDING) { /* may outlive its session */
        md_session_recording_event(srv, ev);
        return;
    }
    md_session *s = g_hash_table_lookup(srv->sessions, ev->session_id);
    if (!s)
        return;
    md_metrics_media_event(srv->metrics, ev);
    md_party *p = s->leg[ev->leg];
    switch (ev->type) {
    case MD_MEDIA_ANSWER:
        md_log_setup("answer_sent", s->id, md_leg_name(ev->leg));
        if (p)
            md_party_send(p, json_pack("{s:s, s:s, s:s}", "type", "answer", "session", s->id, "sdp",
                                       ev->sdp));
        break;
    case MD_MEDIA_CANDIDATE:
        if (p)
            md_party_send(p, json_pack("{s:s, s:s, s:o, s:o}", "type", "candidate", "session",
                                       s->id, "candidate",
                                       ev->candidate ? json_string(ev->candidate) : json_null(),
                                       "mid", ev->mid ? json_string(ev->mid) : json_null()));
        break;
    case MD_MEDIA_LEG_CONNECTED: {
        bool was_lost = s->leg_was_up[ev->leg] && !s->leg_connected[ev->leg];
        if (s->leg_was_up[ev->leg] && !was_lost)
            break; /* an ICE restart that finished before any loss was noticed */
        md_log_setup("leg_connected", s->id, md_leg_name(ev->leg));
        s->leg_connected[ev->leg] = true;
        s->leg_was_up[ev->leg] = true;
        md_sync_gate_begin(srv); /* told by the `state` messages below, if at all */
        md_server_audit(srv, p ? p->actor : "system",
                        was_lost ? "leg_media_restored" : "leg_connected", s->municipality,
                        s->post_office, s->id, json_pack("{s:s}", "leg", md_leg_name(ev->leg)));
        md_sync_gate_end(srv);
        md_info("session", was_lost ? "leg_media_restored" : "leg_connected", "{s:s, s:s}",
                "session", s->id, "leg", md_leg_name(ev->leg));
        if (s->leg_connected[0] && s->leg_connected[1]) {
            /* Both up: no deadline (connect timeout or media grace) remains. */
            disarm_timer(s);
            if (s->state != MD_STATE_LIVE) {
                if (transition(srv, s, MD_STATE_LIVE, "live_at", "system", "session_live", NULL) <
                    0) {
                    /* Live media nobody may record as live: stop it
                     * (end_session tries its own audit entry). */
                    end_session(srv, s, NULL, "internal", NULL, NULL);
                    break;
                }
                md_log_setup("live", s->id, NULL);
                md_session_recording_live(srv, s);
            }
        }
        break;
    }
    case MD_MEDIA_LEG_DISCONNECTED:
        leg_media_lost(srv, s, p, ev->leg, ev->error);
        break;
    case MD_MEDIA_LEG_FAILED: {
        if (transport_loss(s, ev)) {
            leg_media_lost(srv, s, p, ev->leg, ev->error);
            break;
        }
        md_server_audit(
            srv, p ? p->actor : "system", "leg_failed", s->municipality, s->post_office, s->id,
            json_pack("{s:s, s:s}", "leg", md_leg_name(ev->leg), "code", md_err_code(ev->error)));
        json_t *err = md_proto_error(ev->error, ev->error_detail, NULL, s->id);
        send_both(srv, s, err);
        end_session(srv, s, NULL, "media", NULL, NULL);
        break;
    }
    case MD_MEDIA_QUALITY:
        if (ev->stats)
            quality_report(srv, s, ev->leg, ev->stats);
        break;
    case MD_MEDIA_CHAT:
        md_session_chat_received(srv, s, ev);
        break;
    case MD_MEDIA_CHANNEL_REFUSED:
        md_session_channel_refused(srv, s, ev);
        break;
    case MD_MEDIA_FILE:
        md_session_file_received(srv, s, ev);
        break;
    case MD_MEDIA_FILE_FAILED:
        md_session_file_failed(srv, s, ev);
        break;
    case MD_MEDIA_RECORDING:
        break; /* handled above */
    }
}

void md_session_end(md_server *srv, md_session *s, const char *outcome, const char *reason,
                    md_party *by, const char *re)
{
    end_session(srv, s, outcome, reason, by, re);
}
