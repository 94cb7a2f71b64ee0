/*
 * The auditor's access to recordings over HTTPS (DESIGN 6, docs/protocol.md
 * "Recordings for auditors"):
 *
 *   GET  /api/recordings[?session=ID]   the list (ids, states, hashes)
 *   POST /api/recordings/view           {recording, reason} -> a playback ticket;
 *                                       audited "recording_viewed" with the
 *                                       reason's SHA-256 (never its text)
 *   GET  /api/recordings/play?ticket=T  the decrypted Matroska stream, with
 *                                       Range requests (206/416)
 *
 * Auditors and admins only; one with a municipality sees that
 * municipality's recordings alone (others' look unknown).  The ticket lets
 * a <video> element fetch ranges with the cookie alone: it is bound to the
 * account and the recording, lives PLAYBACK_TICKET_SECONDS, and at most
 * PLAYBACK_TICKETS_MAX exist.  Playback decrypts chunk by chunk through
 * md_evidence_rec_reader (random access) into the response as the
 * connection drains: clear data is never on disk and never whole in
 * memory.  Control thread only.
 */
#include "md_crypto.h"
#include "md_err.h"
#include "md_log.h"
#include "md_recording.h"
#include "md_server_private.h"
#include "md_time.h"

#include <errno.h>
#include <string.h>

#define PLAYBACK_TICKET_SECONDS 1800
#define PLAYBACK_TICKETS_MAX 256
#define REASON_MAX_CHARS 256

struct playback_ticket {
    char *recording;
    char *username;
    int64_t expires_mono_ms;
};

static void ticket_free(gpointer p)
{
    struct playback_ticket *t = p;
    g_free(t->recording);
    g_free(t->username);
    g_free(t);
}

static void respond_json(md_http_response *resp, int status, json_t *body /* stolen */)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = g_strdup(text ? text : "{}");
    resp->body_len = strlen(resp->body);
    free(text);
}

static int status_of(int err)
{
    switch (-err) {
    case MD_E_NOT_AUTHENTICATED:
    case MD_E_SESSION_EXPIRED:
        return 401;
    case MD_E_FORBIDDEN:
        return 403;
    case MD_E_RECORDING_UNKNOWN:
        return 404;
    case MD_E_RECORDING_PURGED:
        return 410;
    case MD_E_BAD_JSON:
    case MD_E_SCHEMA:
    case EINVAL:
        return 400;
    default:
        return 500;
    }
}

static void respond_error(md_http_response *resp, int err, const char *detail)
{
    respond_json(resp, status_of(err), md_proto_error(err, detail, NULL, NULL));
}

/* The auditor or admin behind the cookie, or an error response. */
static int auditor(md_server *srv, const md_http_request *req, md_http_response *resp,
                   md_staff *ret)
{
    md_staff staff;
    int r = req->session_cookie
                ? md_staff_session(srv->store, req->session_cookie, md_now_ms(), &staff)
                : -MD_E_NOT_AUTHENTICATED;
    if (r < 0) {
        respond_error(resp, r, NULL);
        return r;
    }
    if (staff.role != MD_ROLE_AUDITOR && staff.role != MD_ROLE_ADMIN) {
        md_staff_clear(&staff);
        respond_error(resp, -MD_E_FORBIDDEN, NULL);
        return -MD_E_FORBIDDEN;
    }
    *ret = staff;
    return 0;
}

/* The recording's municipality and session; -MD_E_RECORDING_UNKNOWN also
 * for another municipality's recording (ids cannot be probed). */
static int recording_scope(md_server *srv, const md_staff *staff, const char *id,
                           char **ret_municipality, char **ret_post_office, char **ret_session)
{
    g_autofree char *session = NULL, *municipality = NULL, *post_office = NULL;
    int r = md_store_query_text(srv->store, "SELECT session_id FROM recording WHERE id = ?",
                                MD_PARAMS(MD_P_TEXT(id)), &session);
    if (r <= 0)
        return r < 0 ? r : -MD_E_RECORDING_UNKNOWN;
    md_store_query_text(srv->store, "SELECT municipality FROM verification_session WHERE id = ?",
                        MD_PARAMS(MD_P_TEXT(session)), &municipality);
    md_store_query_text(srv->store, "SELECT post_office FROM verification_session WHERE id = ?",
                        MD_PARAMS(MD_P_TEXT(session)), &post_office);
    if (staff->municipality && g_strcmp0(staff->municipality, municipality) != 0)
        return -MD_E_RECORDING_UNKNOWN;
    *ret_municipality = g_steal_pointer(&municipality);
    *ret_post_office = g_steal_pointer(&post_office);
    *ret_session = g_steal_pointer(&session);
    return 0;
}

/* ---- GET /api/recordings ---- */

static int list_row(const md_row *row, void *userdata)
{
    json_t *list = userdata;
    json_t *o = json_object();
    static const char *const text_cols[] = {"recording", "session", "municipality", "post_office",
                                            "state",     "codec",   "sha256"};
    for (int i = 0; i < 7; i++) {
        const char *v = md_row_text(row, i);
        json_object_set_new(o, text_cols[i], v ? json_string(v) : json_null());
    }
    static const char *const int_cols[] = {"started_at", "ended_at", "duration_ms", "bytes"};
    for (int i = 0; i < 4; i++)
        json_object_set_new(o, int_cols[i],
                            md_row_is_null(row, 7 + i) ? json_null()
                                                       : json_integer(md_row_int(row, 7 + i)));
    json_array_append_new(list, o);
    return 0;
}

static void api_list(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    md_staff staff;
    if (auditor(srv, req, resp, &staff) < 0)
        return;
    g_autoptr(GHashTable) params = g_uri_parse_params(req->query, -1, "&", G_URI_PARAMS_NONE, NULL);
    const char *session = params ? g_hash_table_lookup(params, "session") : NULL;
    json_t *list = json_array();
    int r = md_store_query(
        srv->store,
        "SELECT r.id, r.session_id, s.municipality, s.post_office, r.state, r.codec, r.sha256,"
        " r.started_at, r.ended_at, r.duration_ms, r.bytes FROM recording r"
        " JOIN verification_session s ON s.id = r.session_id"
        " WHERE (? IS NULL OR s.municipality = ?) AND (? IS NULL OR r.session_id = ?)"
        " ORDER BY r.started_at, r.id LIMIT 10000",
        MD_PARAMS(MD_P_TEXT(staff.municipality), MD_P_TEXT(staff.municipality), MD_P_TEXT(session),
                  MD_P_TEXT(session)),
        list_row, list);
    if (r < 0) {
        json_decref(list);
        respond_error(resp, r, NULL);
    } else {
        respond_json(resp, 200, json_pack("{s:o}", "recordings", list));
    }
    md_staff_clear(&staff);
}

/* ---- POST /api/recordings/view ---- */

static bool blank(const char *s)
{
    for (; *s; s++)
        if (!g_ascii_isspace(*s))
            return false;
    return true;
}

static const char *content_type_of(const char *codec)
{
    /* The stream is Matroska; with VP8 and Opus it is what browsers play as
     * WebM.  H.264 in Matroska is for players other than browsers (the
     * export remuxes it to MP4). */
    return codec && strcmp(codec, "VP8") == 0 ? "video/webm" : "video/x-matroska";
}

static void prune_tickets(md_server *srv)
{
    int64_t now = md_monotonic_ms();
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, srv->playback_tickets);
    while (g_hash_table_iter_next(&it, NULL, &value))
        if (((struct playback_ticket *)value)->expires_mono_ms <= now)
            g_hash_table_iter_remove(&it);
}

static void api_view(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    md_staff staff;
    if (auditor(srv, req, resp, &staff) < 0)
        return;
    json_error_t jerr;
    json_t *body = req->body ? json_loadb(req->body, req->body_len, 0, &jerr) : NULL;
    g_autofree char *municipality = NULL, *post_office = NULL, *session = NULL, *actor = NULL,
                    *url = NULL;
    md_evidence_rec_reader *rd = NULL;
    md_recording rec = {0};
    int r;
    if (!json_is_object(body)) {
        respond_error(resp, -MD_E_BAD_JSON, NULL);
        goto out;
    }
    const char *id = json_string_value(json_object_get(body, "recording"));
    const char *reason = json_string_value(json_object_get(body, "reason"));
    if (!id || !*id || strlen(id) > MD_RECORDING_ID_MAX || !reason ||
        !g_utf8_validate(reason, -1, NULL) || g_utf8_strlen(reason, -1) > REASON_MAX_CHARS ||
        blank(reason)) {
        respond_error(resp, -MD_E_SCHEMA,
                      "\"recording\" and a \"reason\" of 1 to 256 characters are required");
        goto out;
    }
    r = recording_scope(srv, &staff, id, &municipality, &post_office, &session);
    if (r == 0 && md_recording_get(srv->store, id, &rec) != 1)
        r = -MD_E_RECORDING_UNKNOWN;
    if (r == 0)
        r = md_recording_open(srv->store, srv->evidence, id, &rd);
    if (r < 0) {
        respond_error(resp, r, NULL);
        goto out;
    }
    if (!srv->playback_tickets)
        srv->playback_tickets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, ticket_free);
    prune_tickets(srv);
    if (g_hash_table_size(srv->playback_tickets) >= PLAYBACK_TICKETS_MAX) {
        respond_error(resp, -MD_E_RATE_LIMITED, "too many playbacks open; try again later");
        resp->status = 429;
        goto out;
    }
    /* The reason may describe people: the audit keeps its hash only. */
    char digest[MD_SHA256_HEX_LEN + 1];
    md_sha256_hex(reason, strlen(reason), digest);
    actor = g_strdup_printf("staff:%s", staff.username);
    if (md_server_audit(srv, actor, "recording_viewed", municipality, post_office, session,
                        json_pack("{s:s, s:s}", "recording", id, "reason_sha256", digest)) < 0) {
        respond_error(resp, -MD_E_INTERNAL, "the viewing could not be audited");
        goto out;
    }
    uint8_t raw[16];
    char ticket[33];
    if (md_random_bytes(raw, sizeof(raw)) < 0) {
        respond_error(resp, -MD_E_INTERNAL, NULL);
        goto out;
    }
    md_hex_encode(raw, sizeof(raw), ticket);
    struct playback_ticket *t = g_new0(struct playback_ticket, 1);
    t->recording = g_strdup(id);
    t->username = g_strdup(staff.username);
    t->expires_mono_ms = md_monotonic_ms() + PLAYBACK_TICKET_SECONDS * 1000LL;
    g_hash_table_insert(srv->playback_tickets, g_strdup(ticket), t);
    url = g_strdup_printf("/api/recordings/play?ticket=%s", ticket);
    respond_json(resp, 200,
                 json_pack("{s:s, s:s, s:s, s:i, s:s, s:I, s:b, s:s, s:o, s:I}", "recording", id,
                           "ticket", ticket, "url", url, "expires_in", PLAYBACK_TICKET_SECONDS,
                           "content_type", content_type_of(rec.codec), "size",
                           (json_int_t)md_evidence_rec_reader_size(rd), "truncated",
                           md_evidence_rec_reader_truncated(rd), "state",
                           md_recording_state_name(rec.state), "codec",
                           rec.codec ? json_string(rec.codec) : json_null(), "duration_ms",
                           (json_int_t)rec.duration_ms));
out:
    md_evidence_rec_reader_free(rd);
    md_recording_clear(&rec);
    json_decref(body);
    md_staff_clear(&staff);
}

/* ---- GET /api/recordings/play ---- */

static ssize_t source_read(void *ud, uint64_t offset, void *buf, size_t len)
{
    return md_evidence_rec_reader_read(ud, offset, buf, len);
}

static void source_free(void *ud)
{
    md_evidence_rec_reader_free(ud);
}

static void api_play(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    md_staff staff;
    if (auditor(srv, req, resp, &staff) < 0)
        return;
    g_autoptr(GHashTable) params = g_uri_parse_params(req->query, -1, "&", G_URI_PARAMS_NONE, NULL);
    const char *ticket = params ? g_hash_table_lookup(params, "ticket") : NULL;
    struct playback_ticket *t =
        ticket && srv->playback_tickets ? g_hash_table_lookup(srv->playback_tickets, ticket) : NULL;
    md_evidence_rec_reader *rd = NULL;
    g_autofree char *codec = NULL;
    if (!t || t->expires_mono_ms <= md_monotonic_ms() || strcmp(t->username, staff.username) != 0) {
        /* Unknown, expired or someone else's: view again (with a reason). */
        respond_error(resp, -MD_E_FORBIDDEN, "no valid playback ticket: POST /api/recordings/view");
        goto out;
    }
    int r = md_recording_open(srv->store, srv->evidence, t->recording, &rd);
    if (r < 0) {
        respond_error(resp, r, NULL);
        goto out;
    }
    md_store_query_text(srv->store, "SELECT codec FROM recording WHERE id = ?",
                        MD_PARAMS(MD_P_TEXT(t->recording)), &codec);
    md_http_source *src = g_new0(md_http_source, 1);
    src->size = md_evidence_rec_reader_size(rd);
    src->read = source_read;
    src->free = source_free;
    src->ud = g_steal_pointer(&rd);
    resp->status = 200; /* the adapter makes it 206 or 416 for a Range */
    resp->content_type = content_type_of(codec);
    resp->source = src;
out:
    md_evidence_rec_reader_free(rd);
    md_staff_clear(&staff);
}

bool md_http_recording_handle(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    static const struct {
        const char *method, *path;
        void (*handler)(md_server *, const md_http_request *, md_http_response *);
    } routes[] = {
        {"GET", "/api/recordings", api_list},
        {"POST", "/api/recordings/view", api_view},
        {"GET", "/api/recordings/play", api_play},
    };
    if (req->listener != MD_LISTENER_STAFF)
        return false;
    for (size_t i = 0; i < G_N_ELEMENTS(routes); i++) {
        if (strcmp(routes[i].path, req->path) != 0)
            continue;
        if (strcmp(routes[i].method, req->method) != 0) {
            respond_error(resp, -EINVAL, "method not allowed");
            resp->status = 405;
        } else {
            routes[i].handler(srv, req, resp);
        }
        return true;
    }
    return false;
}
