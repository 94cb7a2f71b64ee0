/*
 * The auditor's HTTP API (docs/protocol.md, "Auditor API"): the audit trail,
 * the session list with JST day filters and per-outcome counts, a case (one
 * session: who, where, what, when, its timeline and evidence), evidence
 * content after a reason, and the export that verifies offline.
 *
 * Scope invariant: an account bound to a municipality (an auditor of one
 * town) gets nothing of another.  Every handler takes its municipality from
 * md_http_audit_scope(): a request naming another municipality is refused
 * with `forbidden`, a request naming none is filtered to the account's; a
 * case or a file of another municipality answers 404 like one that does not
 * exist, so ids cannot be probed.  Viewing a case, evidence content and
 * exports are audited before they are answered.
 *
 * Control thread only.
 */
#include "md_audit_check.h"
#include "md_audit_export.h"
#include "md_crypto.h"
#include "md_err.h"
#include "md_log.h"
#include "md_sealed.h"
#include "md_server_private.h"
#include "md_time.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define DAY_MS (24 * 3600 * 1000LL)
#define REASON_MAX 500 /* characters of the auditor's reason */
#define PAGE_MAX 200
#define EVIDENCE_MAX_BYTES (64 * 1024 * 1024) /* served from memory */

/* The account and the municipality every query of this request is limited
 * to (NULL: all).  Responds and returns < 0 when refused. */
typedef struct audit_scope {
    md_staff staff;
    const char *municipality;
    char *actor;
} audit_scope;

static void scope_clear(audit_scope *s)
{
    md_staff_clear(&s->staff);
    g_free(s->actor);
}

static int scope_of(md_server *srv, const md_http_request *req, md_http_response *resp,
                    GHashTable *params, audit_scope *ret)
{
    audit_scope s = {0};
    int r = md_http_authenticate(srv, req, resp, &s.staff);
    if (r < 0)
        return r;
    if (s.staff.role != MD_ROLE_AUDITOR && s.staff.role != MD_ROLE_ADMIN) {
        md_staff_clear(&s.staff);
        md_http_respond_error(resp, -MD_E_FORBIDDEN, NULL);
        return -MD_E_FORBIDDEN;
    }
    const char *asked = params ? g_hash_table_lookup(params, "municipality") : NULL;
    if (asked && !*asked)
        asked = NULL;
    if (s.staff.municipality && asked && strcmp(asked, s.staff.municipality) != 0) {
        md_staff_clear(&s.staff);
        md_http_respond_error(resp, -MD_E_FORBIDDEN, "this account sees only its municipality");
        return -MD_E_FORBIDDEN;
    }
    s.municipality = s.staff.municipality ? s.staff.municipality : asked;
    s.actor = g_strdup_printf("staff:%s", s.staff.username);
    *ret = s;
    return 0;
}

static GHashTable *query_params(const md_http_request *req)
{
    return g_uri_parse_params(req->query, -1, "&", G_URI_PARAMS_NONE, NULL);
}

static const char *param(GHashTable *params, const char *key)
{
    const char *v = params ? g_hash_table_lookup(params, key) : NULL;
    return v && *v ? v : NULL;
}

/*
 * from/until as the page sends them: a date "YYYY-MM-DD" is a whole day in
 * JST, and until is inclusive (until=2026-12-06 ends at 2026-12-07T00:00
 * JST, exclusive); an ISO instant with "Z" or an offset is taken as given
 * (until inclusive to the millisecond).  The result is [from, until).
 */
static int parse_range(GHashTable *params, int64_t *ret_from, int64_t *ret_until)
{
    const char *from = param(params, "from"), *until = param(params, "until");
    int64_t f = 0, u = 0;
    if (from && md_time_parse_iso(from, &f) < 0)
        return -EINVAL;
    if (until) {
        if (md_time_parse_iso(until, &u) < 0)
            return -EINVAL;
        u += strlen(until) == 10 ? DAY_MS : 1;
    }
    if (f && u && u <= f)
        return -EINVAL;
    *ret_from = f;
    *ret_until = u;
    return 0;
}

static int parse_int(const char *v, long min, long max, long def, long *ret)
{
    if (!v) {
        *ret = def;
        return 0;
    }
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < min || n > max)
        return -EINVAL;
    *ret = n;
    return 0;
}

/* ---- GET /api/audit: the trail ---- */

static void api_audit(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    g_autoptr(GHashTable) params = query_params(req);
    audit_scope sc;
    if (scope_of(srv, req, resp, params, &sc) < 0)
        return;
    md_audit_filter filter = {
        .municipality = sc.municipality,
        .post_office = param(params, "post_office"),
        .session = param(params, "session"),
    };
    long limit;
    json_t *entries = NULL;
    if (parse_range(params, &filter.from_ms, &filter.until_ms) < 0 ||
        parse_int(param(params, "limit"), 1, 10000, 1000, &limit) < 0) {
        md_http_respond_error(resp, -EINVAL,
                              "from/until: date or ISO 8601 with offset; limit 1..10000");
        goto out;
    }
    /* Reading the trail is itself audited (who looked at what).  The query
     * goes in the detail only: an id the auditor typed may belong to
     * another municipality and must not file this entry under it. */
    md_server_audit(srv, sc.actor, "audit_viewed", sc.municipality, NULL, NULL,
                    json_pack("{s:s}", "query", req->query));
    int r = md_audit_query(srv->store, &filter, (int)limit, &entries);
    if (r < 0)
        md_http_respond_error(resp, r, NULL);
    else
        md_http_respond_json(resp, 200, json_pack("{s:o}", "entries", entries));
out:
    scope_clear(&sc);
}

/* ---- GET /api/audit/sessions: the list ---- */

/* WHERE clause and parameters shared by the page and the counts. */
struct session_query {
    GString *where;
    md_param params[12];
    size_t n;
};

static void add_clause(struct session_query *q, const char *clause, md_param p)
{
    g_string_append(q->where, clause);
    q->params[q->n++] = p;
}

static int session_query_build(GHashTable *params, const char *municipality,
                               struct session_query *q)
{
    int64_t from, until;
    if (parse_range(params, &from, &until) < 0)
        return -EINVAL;
    q->where = g_string_new(" WHERE 1 = 1");
    if (municipality)
        add_clause(q, " AND s.municipality = ?", MD_P_TEXT(municipality));
    if (from)
        add_clause(q, " AND s.requested_at >= ?", MD_P_INT(from));
    if (until)
        add_clause(q, " AND s.requested_at < ?", MD_P_INT(until));
    static const char *const text_filters[][2] = {
        {"post_office", " AND s.post_office = ?"}, {"verifier", " AND s.verifier = ?"},
        {"procedure", " AND s.procedure = ?"},     {"reason", " AND s.reason = ?"},
        {"device", " AND s.device = ?"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(text_filters); i++) {
        const char *v = param(params, text_filters[i][0]);
        if (v)
            add_clause(q, text_filters[i][1], MD_P_TEXT(v));
    }
    const char *outcome = param(params, "outcome");
    if (outcome && strcmp(outcome, "none") == 0)
        g_string_append(q->where, " AND s.outcome IS NULL");
    else if (outcome)
        add_clause(q, " AND s.outcome = ?", MD_P_TEXT(outcome));
    return 0;
}

#define SESSION_COLUMNS                                                                            \
    "s.id, s.municipality, m.name, s.post_office, po.name, po.kind, s.device, s.procedure, "       \
    "s.verifier, s.state, s.outcome, s.reason, s.requested_at, s.assigned_at, s.live_at, "         \
    "s.ended_at"
#define SESSION_FROM                                                                               \
    " FROM verification_session s LEFT JOIN post_office po ON po.id = s.post_office"               \
    " LEFT JOIN municipality m ON m.code = s.municipality"

struct session_rows {
    md_server *srv;
    json_t *array;
};

static void set_time(json_t *o, const char *key, const md_row *row, int col)
{
    json_object_set_new(
        o, key, md_row_is_null(row, col) ? json_null() : json_integer(md_row_int(row, col)));
}

static json_t *session_json(md_server *srv, const md_row *row)
{
    const char *procedure = md_row_text(row, 7);
    const md_procedure *proc = procedure ? md_procedures_find(srv->procedures, procedure) : NULL;
    json_t *o = json_pack(
        "{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}", "id",
        md_row_text(row, 0), "municipality", md_row_text(row, 1), "municipality_name",
        md_row_text(row, 2), "post_office", md_row_text(row, 3), "post_office_name",
        md_row_text(row, 4), "post_office_kind", md_row_text(row, 5), "device", md_row_text(row, 6),
        "procedure", procedure, "procedure_name", proc ? proc->ja : NULL, "verifier",
        md_row_text(row, 8), "state", md_row_text(row, 9), "outcome", md_row_text(row, 10),
        "reason", md_row_text(row, 11));
    if (!o)
        return NULL;
    set_time(o, "requested_at", row, 12);
    set_time(o, "assigned_at", row, 13);
    set_time(o, "live_at", row, 14);
    set_time(o, "ended_at", row, 15);
    return o;
}

static int on_session_row(const md_row *row, void *userdata)
{
    struct session_rows *sr = userdata;
    json_t *o = session_json(sr->srv, row);
    return o && json_array_append_new(sr->array, o) == 0 ? 0 : -ENOMEM;
}

static int on_count_row(const md_row *row, void *userdata)
{
    json_t *counts = userdata;
    const char *outcome = md_row_text(row, 0);
    json_object_set_new(counts, outcome ? outcome : "none", json_integer(md_row_int(row, 1)));
    return 0;
}

static void api_sessions(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    g_autoptr(GHashTable) params = query_params(req);
    audit_scope sc;
    if (scope_of(srv, req, resp, params, &sc) < 0)
        return;
    struct session_query q = {0};
    struct session_rows rows = {.srv = srv, .array = json_array()};
    json_t *counts = json_object();
    char *count_sql = NULL, *sql = NULL;
    long limit, offset;
    int r;
    if (session_query_build(params, sc.municipality, &q) < 0 ||
        parse_int(param(params, "limit"), 1, PAGE_MAX, 50, &limit) < 0 ||
        parse_int(param(params, "offset"), 0, 1000000000L, 0, &offset) < 0) {
        md_http_respond_error(resp, -EINVAL,
                              "from/until: date (JST) or ISO 8601 with offset; limit 1..200");
        goto out;
    }
    count_sql = g_strdup_printf(
        "SELECT s.outcome, count(*) FROM verification_session s%s GROUP BY s.outcome",
        q.where->str);
    r = md_store_query(srv->store, count_sql, q.params, q.n, on_count_row, counts);
    if (r < 0)
        goto fail;
    json_int_t total = 0;
    const char *k;
    json_t *v;
    json_object_foreach (counts, k, v)
        total += json_integer_value(v);
    q.params[q.n++] = MD_P_INT(limit);
    q.params[q.n++] = MD_P_INT(offset);
    sql = g_strdup_printf("SELECT " SESSION_COLUMNS SESSION_FROM
                          "%s ORDER BY s.requested_at DESC, s.rowid DESC"
                          " LIMIT ? OFFSET ?",
                          q.where->str);
    r = md_store_query(srv->store, sql, q.params, q.n, on_session_row, &rows);
    if (r < 0)
        goto fail;
    md_http_respond_json(resp, 200,
                         json_pack("{s:o, s:I, s:O, s:i, s:i}", "sessions", rows.array, "total",
                                   total, "counts", counts, "offset", (int)offset, "limit",
                                   (int)limit));
    rows.array = NULL;
    goto out;
fail:
    md_http_respond_error(resp, r, NULL);
out:
    g_free(count_sql);
    g_free(sql);
    json_decref(rows.array);
    json_decref(counts);
    if (q.where)
        g_string_free(q.where, TRUE);
    scope_clear(&sc);
}

/* ---- GET /api/audit/case?session=ID ---- */

/* The session row if it exists within the scope; -ENOENT otherwise. */
static int load_session(md_server *srv, const char *id, const char *municipality, json_t **ret)
{
    struct session_rows rows = {.srv = srv, .array = json_array()};
    int r =
        md_store_query(srv->store,
                       "SELECT " SESSION_COLUMNS SESSION_FROM
                       " WHERE s.id = ? AND (? IS NULL OR s.municipality = ?)",
                       MD_PARAMS(MD_P_TEXT(id), municipality ? MD_P_TEXT(municipality) : MD_P_NULL,
                                 municipality ? MD_P_TEXT(municipality) : MD_P_NULL),
                       on_session_row, &rows);
    if (r >= 0 && json_array_size(rows.array) != 1)
        r = -ENOENT;
    if (r >= 0)
        *ret = json_incref(json_array_get(rows.array, 0));
    json_decref(rows.array);
    return r < 0 ? r : 0;
}

static int on_evidence_row(const md_row *row, void *userdata)
{
    json_t *o = json_pack("{s:s?, s:s?, s:s?, s:s?, s:I, s:s?, s:I}", "file", md_row_text(row, 0),
                          "leg", md_row_text(row, 1), "kind", md_row_text(row, 2), "mime",
                          md_row_text(row, 3), "size", (json_int_t)md_row_int(row, 4), "sha256",
                          md_row_text(row, 5), "created_at", (json_int_t)md_row_int(row, 8));
    if (!o)
        return -ENOMEM;
    if (!md_row_is_null(row, 6)) {
        json_object_set_new(o, "width", json_integer(md_row_int(row, 6)));
        json_object_set_new(o, "height", json_integer(md_row_int(row, 7)));
    }
    return json_array_append_new(userdata, o) == 0 ? 0 : -ENOMEM;
}

struct transcript_hash {
    md_sha256_ctx *ctx;
    int64_t records;
};

static int on_transcript_record(uint64_t seq, const uint8_t *buf, size_t len, void *ud)
{
    struct transcript_hash *th = ud;
    (void)seq;
    th->records++;
    int r = md_sha256_ctx_update(th->ctx, buf, len);
    return r < 0 ? r : md_sha256_ctx_update(th->ctx, "\n", 1);
}

/* {"messages":N,"sha256":hex} over the decrypted records, each followed by
 * "\n"; {"messages":0} when there is no transcript. */
static json_t *chat_summary(md_server *srv, const char *session)
{
    struct transcript_hash th = {0};
    uint8_t digest[MD_SHA256_LEN];
    char hex[MD_SHA256_HEX_LEN + 1];
    json_t *j;
    if (!srv->evidence || md_sha256_ctx_new(&th.ctx) < 0)
        return json_pack("{s:i, s:s}", "messages", 0, "error", "unavailable");
    int r = md_evidence_chat_read(srv->evidence, session, on_transcript_record, &th);
    if (r == -ENOENT) {
        j = json_pack("{s:i}", "messages", 0);
    } else if (r < 0 || md_sha256_ctx_final(th.ctx, digest) < 0) {
        j = json_pack("{s:I, s:s}", "messages", (json_int_t)th.records, "error",
                      md_err_code(r < 0 ? r : -MD_E_INTERNAL));
    } else {
        md_hex_encode(digest, sizeof(digest), hex);
        j = json_pack("{s:I, s:s}", "messages", (json_int_t)th.records, "sha256", hex);
    }
    md_sha256_ctx_free(th.ctx);
    return j;
}

/* A recording of the case: what the player needs, and the SHA-256 of the
 * stored (encrypted) file as `recording_stored` audited it.  Playback goes
 * through POST /api/recordings/view (signaling/md_http_recording.c). */
static int on_recording_row(const md_row *row, void *userdata)
{
    json_t *o =
        json_pack("{s:s?, s:s?, s:s?, s:s?}", "recording", md_row_text(row, 0), "state",
                  md_row_text(row, 1), "codec", md_row_text(row, 2), "sha256", md_row_text(row, 3));
    if (!o)
        return -ENOMEM;
    static const char *const ints[] = {"started_at", "ended_at", "duration_ms", "bytes",
                                       "purged_at"};
    for (int i = 0; i < 5; i++)
        set_time(o, ints[i], row, 4 + i);
    return json_array_append_new(userdata, o) == 0 ? 0 : -ENOMEM;
}

static void api_case(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    g_autoptr(GHashTable) params = query_params(req);
    audit_scope sc;
    if (scope_of(srv, req, resp, params, &sc) < 0)
        return;
    const char *id = param(params, "session");
    json_t *session = NULL, *timeline = NULL, *evidence = json_array(), *recordings = json_array();
    int64_t has_note = 0;
    int r = id ? load_session(srv, id, sc.municipality, &session) : -EINVAL;
    if (r < 0) {
        md_http_respond_error(resp, r, r == -EINVAL ? "session is required" : NULL);
        goto out;
    }
    const char *mun = json_string_value(json_object_get(session, "municipality"));
    const char *po = json_string_value(json_object_get(session, "post_office"));
    if (md_server_audit(srv, sc.actor, "case_viewed", mun, po, id, NULL) < 0) {
        md_http_respond_error(resp, -MD_E_INTERNAL, NULL);
        goto out;
    }
    md_audit_filter f = {.session = id, .municipality = sc.municipality};
    r = md_audit_query(srv->store, &f, 10000, &timeline);
    if (r >= 0)
        r = md_store_query(
            srv->store,
            "SELECT file_id, leg, kind, mime, size, sha256, width, height, created_at"
            " FROM evidence WHERE session_id = ? ORDER BY created_at, file_id",
            MD_PARAMS(MD_P_TEXT(id)), on_evidence_row, evidence);
    if (r < 0) {
        md_http_respond_error(resp, r, NULL);
        goto out;
    }
    if (r >= 0)
        r = md_store_query(srv->store,
                           "SELECT id, state, codec, sha256, started_at, ended_at, duration_ms,"
                           " bytes, purged_at FROM recording WHERE session_id = ?"
                           " ORDER BY started_at, id",
                           MD_PARAMS(MD_P_TEXT(id)), on_recording_row, recordings);
    if (r >= 0)
        r = md_store_query_int(srv->store,
                               "SELECT outcome_note IS NOT NULL FROM verification_session"
                               " WHERE id = ?",
                               MD_PARAMS(MD_P_TEXT(id)), &has_note);
    if (r < 0) {
        md_http_respond_error(resp, r, NULL);
        goto out;
    }
    /* The outcome note is sealed personal data: the case says only whether
     * there is one; POST /api/audit/note opens it after a reason. */
    json_object_set_new(session, "has_note", json_boolean(has_note));
    md_http_respond_json(resp, 200,
                         json_pack("{s:O, s:O, s:O, s:o, s:O}", "session", session, "timeline",
                                   timeline, "evidence", evidence, "chat", chat_summary(srv, id),
                                   "recordings", recordings));
out:
    json_decref(session);
    json_decref(timeline);
    json_decref(evidence);
    json_decref(recordings);
    scope_clear(&sc);
}

/* ---- POST /api/audit/evidence {session, file, reason} ---- */

struct evidence_buf {
    GByteArray *bytes;
};

static int on_evidence_chunk(const uint8_t *buf, size_t len, void *ud)
{
    struct evidence_buf *eb = ud;
    if (eb->bytes->len + len > EVIDENCE_MAX_BYTES)
        return -MD_E_TOO_LARGE;
    g_byte_array_append(eb->bytes, buf, (guint)len);
    return 0;
}

static int on_transcript_line(uint64_t seq, const uint8_t *buf, size_t len, void *ud)
{
    (void)seq;
    int r = on_evidence_chunk(buf, len, ud);
    return r < 0 ? r : on_evidence_chunk((const uint8_t *)"\n", 1, ud);
}

static int on_mime_row(const md_row *row, void *userdata)
{
    char **mime = userdata;
    *mime = g_strdup(md_row_text(row, 0));
    return 0;
}

/* 1..REASON_MAX characters of valid UTF-8, not only white space. */
static bool reason_ok(const char *reason)
{
    if (!reason || !g_utf8_validate(reason, -1, NULL) || g_utf8_strlen(reason, -1) > REASON_MAX)
        return false;
    for (const char *c = reason; *c; c = g_utf8_next_char(c))
        if (!g_unichar_isspace(g_utf8_get_char(c)))
            return true;
    return false;
}

static void api_evidence(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    audit_scope sc;
    json_error_t jerr;
    json_t *body = req->body ? json_loadb(req->body, req->body_len, 0, &jerr) : NULL;
    json_t *session = NULL;
    char *mime = NULL;
    struct evidence_buf eb = {.bytes = g_byte_array_new()};
    if (scope_of(srv, req, resp, NULL, &sc) < 0)
        goto out_noscope;
    if (!json_is_object(body)) {
        md_http_respond_error(resp, -MD_E_BAD_JSON, NULL);
        goto out;
    }
    const char *id = json_string_value(json_object_get(body, "session"));
    const char *file = json_string_value(json_object_get(body, "file"));
    json_t *jreason = json_object_get(body, "reason");
    const char *reason = json_string_value(jreason);
    if (!id || !file || strlen(file) > 64) {
        md_http_respond_error(resp, -MD_E_SCHEMA, "session and file are required");
        goto out;
    }
    int r = load_session(srv, id, sc.municipality, &session);
    if (r < 0) {
        md_http_respond_error(resp, r, NULL);
        goto out;
    }
    bool transcript = strcmp(file, "transcript") == 0;
    if (!transcript) {
        r = md_store_query(srv->store,
                           "SELECT mime FROM evidence WHERE session_id = ? AND file_id = ?",
                           MD_PARAMS(MD_P_TEXT(id), MD_P_TEXT(file)), on_mime_row, &mime);
        if (r >= 0 && !mime)
            r = -ENOENT;
        if (r < 0) {
            md_http_respond_error(resp, r, NULL);
            goto out;
        }
    }
    /* The reason is required and bounded; it is the auditor's words, kept in
     * the audit with the view (DESIGN.md: viewed with reason). */
    if (!reason_ok(reason)) {
        md_http_respond_error(resp, -MD_E_REASON_REQUIRED, NULL);
        goto out;
    }
    if (md_server_audit(srv, sc.actor, "evidence_viewed",
                        json_string_value(json_object_get(session, "municipality")),
                        json_string_value(json_object_get(session, "post_office")), id,
                        json_pack("{s:s, s:s}", "file", file, "reason", reason)) < 0) {
        md_http_respond_error(resp, -MD_E_INTERNAL, NULL);
        goto out;
    }
    /* Decrypted into memory and answered over TLS: no clear copy on disk. */
    r = transcript ? md_evidence_chat_read(srv->evidence, id, on_transcript_line, &eb)
                   : md_evidence_file_read(srv->evidence, id, file, on_evidence_chunk, &eb);
    if (r < 0) {
        md_wipe(eb.bytes->data, eb.bytes->len);
        md_http_respond_error(resp, r, NULL);
        goto out;
    }
    resp->status = 200;
    resp->content_type = transcript                             ? "application/x-ndjson"
                         : g_str_equal(mime, "image/jpeg")      ? "image/jpeg"
                         : g_str_equal(mime, "image/png")       ? "image/png"
                         : g_str_equal(mime, "application/pdf") ? "application/pdf"
                                                                : "application/octet-stream";
    resp->body_len = eb.bytes->len;
    resp->body = (char *)g_byte_array_free(eb.bytes, FALSE);
    eb.bytes = NULL;
    resp->disposition = g_strdup_printf("inline; filename=\"%s-%s\"", id, file);
out:
    scope_clear(&sc);
out_noscope:
    if (eb.bytes)
        g_byte_array_free(eb.bytes, TRUE);
    g_free(mime);
    json_decref(session);
    json_decref(body);
}

/* ---- POST /api/audit/note {session, reason} ---- */

/* The verifier's free text of an aborted or not_verified outcome: sealed
 * personal data (signaling/md_sessions.c), opened only after a reason like
 * evidence.  The audit keeps the reason's SHA-256 (like recording_viewed):
 * the note's own words must not leak into the trail through the reason. */
static void api_note(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    audit_scope sc;
    json_error_t jerr;
    json_t *body = req->body ? json_loadb(req->body, req->body_len, 0, &jerr) : NULL;
    json_t *session = NULL;
    char *sealed = NULL, *note = NULL, *context = NULL;
    if (scope_of(srv, req, resp, NULL, &sc) < 0)
        goto out_noscope;
    if (!json_is_object(body)) {
        md_http_respond_error(resp, -MD_E_BAD_JSON, NULL);
        goto out;
    }
    const char *id = json_string_value(json_object_get(body, "session"));
    const char *reason = json_string_value(json_object_get(body, "reason"));
    if (!id || strlen(id) > 64) {
        md_http_respond_error(resp, -MD_E_SCHEMA, "session is required");
        goto out;
    }
    int r = load_session(srv, id, sc.municipality, &session);
    if (r >= 0)
        r = md_store_query_text(srv->store,
                                "SELECT outcome_note FROM verification_session WHERE id = ?",
                                MD_PARAMS(MD_P_TEXT(id)), &sealed);
    if (r >= 0 && !sealed)
        r = -ENOENT;
    if (r < 0) {
        md_http_respond_error(resp, r, r == -ENOENT && session ? "this session has no note" : NULL);
        goto out;
    }
    if (!reason_ok(reason)) {
        md_http_respond_error(resp, -MD_E_REASON_REQUIRED, NULL);
        goto out;
    }
    char digest[MD_SHA256_HEX_LEN + 1];
    md_sha256_hex(reason, strlen(reason), digest);
    if (md_server_audit(srv, sc.actor, "note_viewed",
                        json_string_value(json_object_get(session, "municipality")),
                        json_string_value(json_object_get(session, "post_office")), id,
                        json_pack("{s:s}", "reason_sha256", digest)) < 0) {
        md_http_respond_error(resp, -MD_E_INTERNAL, NULL);
        goto out;
    }
    context = g_strconcat("verification_session.outcome_note:", id, NULL);
    r = md_store_unseal(srv->store, context, sealed, &note);
    if (r < 0) {
        md_http_respond_error(resp, r, NULL);
        goto out;
    }
    md_http_respond_json(resp, 200,
                         json_pack("{s:s, s:s?, s:s}", "session", id, "outcome",
                                   json_string_value(json_object_get(session, "outcome")), "note",
                                   note));
out:
    scope_clear(&sc);
out_noscope:
    if (note)
        md_wipe(note, strlen(note));
    free(note);
    free(sealed);
    g_free(context);
    json_decref(session);
    json_decref(body);
}

/* ---- GET /api/audit/export ---- */

static void api_export(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    g_autoptr(GHashTable) params = query_params(req);
    audit_scope sc;
    if (scope_of(srv, req, resp, params, &sc) < 0)
        return;
    md_audit_filter filter = {
        .municipality = sc.municipality,
        .post_office = param(params, "post_office"),
        .session = param(params, "session"),
    };
    char *text = NULL;
    md_sign_key *key = NULL;
    bool pinned;
    size_t len = 0;
    FILE *mem = NULL;
    if (parse_range(params, &filter.from_ms, &filter.until_ms) < 0) {
        md_http_respond_error(resp, -EINVAL, "from/until: date (JST) or ISO 8601 with offset");
        goto out;
    }
    /* Evidence leaving the system: audited before it is written. */
    if (md_server_audit(srv, sc.actor, "audit_exported", sc.municipality, NULL, NULL,
                        json_pack("{s:s}", "query", req->query)) < 0) {
        md_http_respond_error(resp, -MD_E_INTERNAL, NULL);
        goto out;
    }
    int r = md_audit_trusted_key(srv->cfg->audit.public_key, srv->cfg->audit.signing_key, &key,
                                 &pinned);
    if (r < 0) {
        md_http_respond_error(resp, r, NULL);
        goto out;
    }
    mem = open_memstream(&text, &len);
    r = mem ? md_audit_export_bundle(srv->store, srv->audit, &filter, key, sc.actor, mem) : -ENOMEM;
    if (mem && fclose(mem) != 0 && r >= 0)
        r = -EIO;
    if (r < 0) {
        md_http_respond_error(resp, r, NULL);
        goto out;
    }
    char day[11];
    md_date_format(md_date_jst(md_now_ms()), day, sizeof(day));
    resp->status = 200;
    resp->content_type = "application/x-ndjson";
    resp->body = g_memdup2(text, len);
    resp->body_len = len;
    resp->disposition = g_strdup_printf("attachment; filename=\"madoguchi-audit-%s.jsonl\"", day);
out:
    md_sign_key_free(key);
    free(text);
    scope_clear(&sc);
}

/* ---- GET /api/audit/verify ---- */

struct pending_verify {
    md_server *srv;
    guint64 ticket;
};

static void respond_verdict(md_http_response *resp, int err, json_t *verdict)
{
    if (err < 0)
        md_http_respond_error(resp, err, NULL);
    else
        md_http_respond_json(resp, 200, json_incref(verdict));
}

static void on_verdict(int err, json_t *verdict, void *ud)
{
    struct pending_verify *pv = ud;
    md_http_response resp = {0};
    respond_verdict(&resp, err, verdict);
    md_ws_http_respond(pv->srv->ws, pv->ticket, &resp);
    g_free(pv);
}

/*
 * The chain is one for all municipalities: its counts and the first bad seq
 * say nothing of another municipality's entries.  The walk runs on
 * md_audit_check's thread and the answer is sent when it is back; without a
 * connection to defer (or a checker, on an in-memory store) it runs here.
 * The trust anchor is the pinned key (audit.public_key) when there is one: a
 * .pub file in the data directory proves nothing to someone who could
 * rewrite both.
 */
static void api_verify(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    audit_scope sc;
    if (scope_of(srv, req, resp, NULL, &sc) < 0)
        return;
    scope_clear(&sc);
    if (srv->audit_check && req->conn) {
        struct pending_verify *pv = g_new(struct pending_verify, 1);
        pv->srv = srv;
        pv->ticket = md_conn_http_defer(req->conn);
        int r = md_audit_check_request(srv->audit_check, on_verdict, pv);
        if (r < 0)
            on_verdict(r, NULL, pv);
        return;
    }
    json_t *verdict = NULL;
    int r = md_audit_check_run(srv->store, srv->cfg->audit.public_key, srv->cfg->audit.signing_key,
                               &verdict);
    respond_verdict(resp, r, verdict);
    json_decref(verdict);
}

/* ---- GET /api/audit/options: what the page's filters offer ---- */

static int on_office_row(const md_row *row, void *userdata)
{
    json_t *o = json_pack("{s:s?, s:s?, s:s?, s:s?}", "id", md_row_text(row, 0), "name",
                          md_row_text(row, 1), "kind", md_row_text(row, 2), "municipality",
                          md_row_text(row, 3));
    return o && json_array_append_new(userdata, o) == 0 ? 0 : -ENOMEM;
}

static int on_name_row(const md_row *row, void *userdata)
{
    return json_array_append_new(userdata, json_string(md_row_text(row, 0))) == 0 ? 0 : -ENOMEM;
}

static void api_options(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    g_autoptr(GHashTable) params = query_params(req);
    audit_scope sc;
    if (scope_of(srv, req, resp, params, &sc) < 0)
        return;
    json_t *offices = json_array(), *verifiers = json_array(), *procedures = json_array();
    md_param mun = sc.municipality ? MD_P_TEXT(sc.municipality) : MD_P_NULL;
    int r = md_store_query(srv->store,
                           "SELECT id, name, kind, municipality FROM post_office"
                           " WHERE ? IS NULL OR municipality = ? ORDER BY municipality, id",
                           MD_PARAMS(mun, mun), on_office_row, offices);
    if (r >= 0)
        r = md_store_query(srv->store,
                           "SELECT username FROM staff WHERE role = 'verifier'"
                           " AND (? IS NULL OR municipality = ?) ORDER BY username",
                           MD_PARAMS(mun, mun), on_name_row, verifiers);
    for (size_t i = 0; r >= 0 && i < md_procedures_count(srv->procedures); i++) {
        const md_procedure *p = md_procedures_at(srv->procedures, i);
        json_array_append_new(procedures, json_pack("{s:s, s:s}", "id", p->id, "name", p->ja));
    }
    if (r < 0)
        md_http_respond_error(resp, r, NULL);
    else
        md_http_respond_json(resp, 200,
                             json_pack("{s:s?, s:O, s:O, s:O}", "municipality", sc.municipality,
                                       "post_offices", offices, "verifiers", verifiers,
                                       "procedures", procedures));
    json_decref(offices);
    json_decref(verifiers);
    json_decref(procedures);
    scope_clear(&sc);
}

const md_http_route md_http_audit_routes[] = {
    {"GET", "/api/audit/options", api_options},
    {"GET", "/api/audit", api_audit},
    {"GET", "/api/audit/verify", api_verify},
    {"GET", "/api/audit/sessions", api_sessions},
    {"GET", "/api/audit/case", api_case},
    {"POST", "/api/audit/evidence", api_evidence},
    {"POST", "/api/audit/note", api_note},
    {"GET", "/api/audit/export", api_export},
    {NULL, NULL, NULL},
};
