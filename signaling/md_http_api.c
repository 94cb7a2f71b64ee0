/*
 * HTTP endpoints of the staff listener (docs/protocol.md, "HTTP endpoints"):
 * login and logout, the public list of designations (Act art. 3(4)), the
 * auditor's API, a health check, and the static web pages.  A table maps
 * method and path to a handler.  Control thread only.
 */
#include "md_err.h"
#include "md_log.h"
#include "md_server_private.h"
#include "md_time.h"

#include <errno.h>
#include <string.h>

#define COOKIE_ATTRS "HttpOnly; Secure; SameSite=Strict; Path=/"

static void respond_json(md_http_response *resp, int status, json_t *body /* stolen */)
{
    resp->status = status;
    resp->content_type = "application/json";
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    resp->body = g_strdup(text ? text : "{}");
    resp->body_len = strlen(resp->body);
    free(text);
}

static int status_of(int err)
{
    switch (-err) {
    case MD_E_CREDENTIALS:
    case MD_E_TOTP:
    case MD_E_NOT_AUTHENTICATED:
    case MD_E_SESSION_EXPIRED:
        return 401;
    case MD_E_FORBIDDEN:
    case MD_E_ORIGIN:
        return 403;
    case MD_E_LOCKED:
        return 423;
    case MD_E_TOO_LARGE:
        return 413;
    case MD_E_RATE_LIMITED:
        return 429;
    case MD_E_BAD_JSON:
    case MD_E_SCHEMA:
    case EINVAL:
        return 400;
    case ENOENT:
        return 404;
    default:
        return 500;
    }
}

static void respond_error(md_http_response *resp, int err, const char *detail)
{
    respond_json(resp, status_of(err), md_proto_error(err, detail, NULL, NULL));
}

/* The staff member behind the request's cookie, or an error response. */
static int authenticate(md_server *srv, const md_http_request *req, md_http_response *resp,
                        md_staff *ret)
{
    int r = req->session_cookie
                ? md_staff_session(srv->store, req->session_cookie, md_now_ms(), ret)
                : -MD_E_NOT_AUTHENTICATED;
    if (r < 0)
        respond_error(resp, r, NULL);
    return r;
}

static json_t *staff_json(const md_staff *s)
{
    json_t *j = json_pack("{s:s, s:s}", "username", s->username, "role", md_role_name(s->role));
    json_object_set_new(j, "municipality",
                        s->municipality ? json_string(s->municipality) : json_null());
    return j;
}

static const char *body_string(json_t *body, const char *key, size_t max)
{
    json_t *v = json_object_get(body, key);
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max)
        return NULL;
    return json_string_value(v);
}

static void api_login(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    json_error_t jerr;
    json_t *body = req->body ? json_loadb(req->body, req->body_len, 0, &jerr) : NULL;
    if (!json_is_object(body)) {
        json_decref(body);
        respond_error(resp, -MD_E_BAD_JSON, NULL);
        return;
    }
    const char *username = body_string(body, "username", 64);
    const char *password = body_string(body, "password", 1024);
    const char *totp = body_string(body, "totp", 16);
    if (!username || !password || !totp) {
        json_decref(body);
        respond_error(resp, -MD_E_SCHEMA, "username, password and totp are required");
        return;
    }
    md_staff staff;
    char *token = NULL;
    int r = md_staff_login(srv->store, srv->audit, &srv->auth_limits, username, password, totp,
                           req->remote, md_now_ms(), &staff, &token);
    json_decref(body);
    if (r < 0) {
        respond_error(resp, r, NULL);
        return;
    }
    resp->set_cookie = g_strdup_printf("md_session=%s; Max-Age=%d; " COOKIE_ATTRS, token,
                                       srv->auth_limits.session_ttl_seconds);
    g_free(token);
    respond_json(resp, 200, staff_json(&staff));
    md_staff_clear(&staff);
}

static void api_logout(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    if (req->session_cookie)
        md_staff_logout(srv->store, srv->audit, req->session_cookie, md_now_ms());
    resp->set_cookie = g_strdup("md_session=; Max-Age=0; " COOKIE_ATTRS);
    resp->status = 204;
    resp->content_type = "text/plain";
}

static void api_me(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    md_staff staff;
    if (authenticate(srv, req, resp, &staff) < 0)
        return;
    respond_json(resp, 200, staff_json(&staff));
    md_staff_clear(&staff);
}

static void api_designations(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    g_autoptr(GHashTable) params = g_uri_parse_params(req->query, -1, "&", G_URI_PARAMS_NONE, NULL);
    const char *municipality = params ? g_hash_table_lookup(params, "municipality") : NULL;
    json_t *doc = NULL;
    int r = md_registry_designations_json(srv->store, srv->procedures, municipality,
                                          md_date_jst(md_now_ms()), &doc);
    if (r < 0)
        respond_error(resp, r, NULL);
    else
        respond_json(resp, 200, doc);
}

static void page_designations(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    char *html = NULL;
    int r =
        md_registry_designations_html(srv->store, srv->procedures, md_date_jst(md_now_ms()), &html);
    if (r < 0) {
        respond_error(resp, r, NULL);
        return;
    }
    resp->status = 200;
    resp->content_type = "text/html; charset=utf-8";
    resp->body = html;
    resp->body_len = strlen(html);
}

/* authenticate(), and the account must be an auditor or admin. */
static int authenticate_auditor(md_server *srv, const md_http_request *req, md_http_response *resp,
                                md_staff *ret)
{
    md_staff staff;
    int r = authenticate(srv, req, resp, &staff);
    if (r < 0)
        return r;
    if (staff.role != MD_ROLE_AUDITOR && staff.role != MD_ROLE_ADMIN) {
        md_staff_clear(&staff);
        respond_error(resp, -MD_E_FORBIDDEN, NULL);
        return -MD_E_FORBIDDEN;
    }
    *ret = staff;
    return 0;
}

static int parse_filter(GHashTable *params, md_audit_filter *f, int *limit)
{
    const char *v;
    if (params && (v = g_hash_table_lookup(params, "from")) &&
        md_time_parse_iso(v, &f->from_ms) < 0)
        return -EINVAL;
    if (params && (v = g_hash_table_lookup(params, "until")) &&
        md_time_parse_iso(v, &f->until_ms) < 0)
        return -EINVAL;
    if (params) {
        f->municipality = g_hash_table_lookup(params, "municipality");
        f->post_office = g_hash_table_lookup(params, "post_office");
        f->session = g_hash_table_lookup(params, "session");
    }
    *limit = 1000;
    if (params && (v = g_hash_table_lookup(params, "limit"))) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || n < 1 || n > 10000)
            return -EINVAL;
        *limit = (int)n;
    }
    return 0;
}

static void api_audit(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    md_staff staff;
    if (authenticate_auditor(srv, req, resp, &staff) < 0)
        return;
    g_autoptr(GHashTable) params = g_uri_parse_params(req->query, -1, "&", G_URI_PARAMS_NONE, NULL);
    md_audit_filter filter = {0};
    int limit;
    json_t *entries = NULL;
    int r = parse_filter(params, &filter, &limit);
    if (r < 0) {
        respond_error(resp, r, "from/until must be ISO 8601, limit 1..10000");
        md_staff_clear(&staff);
        return;
    }
    /* Reading the trail is itself audited (who looked at what). */
    g_autofree char *actor = g_strdup_printf("staff:%s", staff.username);
    json_t *detail = json_pack("{s:s}", "query", req->query);
    md_server_audit(srv, actor, "audit_viewed", filter.municipality, filter.post_office,
                    filter.session, detail);
    r = md_audit_query(srv->store, &filter, limit, &entries);
    if (r < 0)
        respond_error(resp, r, NULL);
    else
        respond_json(resp, 200, json_pack("{s:o}", "entries", entries));
    md_staff_clear(&staff);
}

static void api_audit_verify(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    md_staff staff;
    if (authenticate_auditor(srv, req, resp, &staff) < 0)
        return;
    md_staff_clear(&staff);
    /* The pinned key (audit.public_key) when there is one: a .pub file in
     * the data directory proves nothing to someone who could rewrite both. */
    md_sign_key *key = NULL;
    bool pinned = false;
    md_audit_summary sum;
    int r = md_audit_trusted_key(srv->cfg->audit.public_key, srv->cfg->audit.signing_key, &key,
                                 &pinned);
    if (r == 0)
        r = md_audit_verify_key(srv->store, key, NULL, &sum);
    md_sign_key_free(key);
    if (r < 0 && r != -MD_E_AUDIT_BROKEN) {
        respond_error(resp, r, NULL);
        return;
    }
    json_t *j = json_pack("{s:b, s:I, s:I, s:I, s:b}", "ok", r == 0, "entries",
                          (json_int_t)sum.entries, "checkpoints", (json_int_t)sum.checkpoints,
                          "last_checkpoint", (json_int_t)sum.last_checkpoint, "pinned", pinned);
    if (r != 0) {
        json_object_set_new(j, "bad_seq", json_integer(sum.bad_seq));
        json_object_set_new(j, "reason", json_string(sum.reason));
    }
    respond_json(resp, 200, j);
}

static void healthz(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    resp->status = 200;
    resp->content_type = "text/plain";
    resp->body = g_strdup("ok\n");
    resp->body_len = 3;
}

static const struct {
    const char *ext;
    const char *type;
} mime_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".png", "image/png"},
    {".svg", "image/svg+xml"},
    {".ico", "image/x-icon"},
};

/* Static pages from web_root.  Only plain relative names: no "..", no
 * hidden files, no characters outside [A-Za-z0-9._/-]. */
static void static_file(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    const char *path = strcmp(req->path, "/") == 0 ? "/index.html" : req->path;
    for (const char *c = path; *c; c++)
        if (!g_ascii_isalnum(*c) && !strchr("._/-", *c))
            return;
    if (strstr(path, "/.") || strstr(path, "//"))
        return;
    g_autofree char *file = g_build_filename(srv->cfg->web_root, path + 1, NULL);
    if (!g_file_test(file, G_FILE_TEST_IS_REGULAR))
        return;
    for (size_t i = 0; i < G_N_ELEMENTS(mime_types); i++)
        if (g_str_has_suffix(path, mime_types[i].ext)) {
            resp->content_type = mime_types[i].type;
            resp->file = g_steal_pointer(&file);
            return;
        }
}

typedef void (*route_handler)(md_server *srv, const md_http_request *req, md_http_response *resp);

static const struct route {
    const char *method;
    const char *path;
    route_handler handler;
    bool device_listener; /* also served on the device listener */
} routes[] = {
    {"POST", "/api/login", api_login, false},
    {"POST", "/api/logout", api_logout, false},
    {"GET", "/api/me", api_me, false},
    {"GET", "/api/designations", api_designations, false},
    {"GET", "/designations", page_designations, false},
    {"GET", "/api/audit", api_audit, false},
    {"GET", "/api/audit/verify", api_audit_verify, false},
    {"GET", "/healthz", healthz, true},
};

void md_http_api_handle(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    if (md_http_recording_handle(srv, req, resp))
        return;
    for (size_t i = 0; i < G_N_ELEMENTS(routes); i++) {
        const struct route *r = &routes[i];
        if (strcmp(r->path, req->path) != 0)
            continue;
        if (req->listener == MD_LISTENER_DEVICE && !r->device_listener)
            return;
        if (strcmp(r->method, req->method) != 0) {
            respond_error(resp, -EINVAL, "method not allowed");
            resp->status = 405;
            return;
        }
        r->handler(srv, req, resp);
        return;
    }
    /* Pages are served on both listeners: a tablet loads its page from the
     * device listener, so that its WebSocket there is same-origin for the
     * CSP (connect-src 'self').  The APIs above stay per listener. */
    if (strcmp(req->method, "GET") == 0)
        static_file(srv, req, resp);
}
