/*
 * HTTP endpoints of the staff listener (docs/protocol.md, "HTTP endpoints"):
 * login and logout, the public list of designations (Act art. 3(4)), the
 * auditor's API, a health check, and the static web pages.  A table maps
 * method and path to a handler.  Control thread only.
 */
#include "md_crypto.h"
#include "md_err.h"
#include "md_limits.h"
#include "md_log.h"
#include "md_login_pool.h"
#include "md_server_private.h"
#include "md_time.h"

#include <errno.h>
#include <string.h>

/* "__Host-" (RFC 6265bis 4.1.3.2) requires Secure and Path=/ and forbids
 * Domain; Max-Age is auth.session_ttl_seconds (docs/protocol.md). */
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
    case MD_E_CONTENT_TYPE:
        return 415;
    case MD_E_BAD_JSON:
    case MD_E_SCHEMA:
    case MD_E_REASON_REQUIRED:
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

/* A login waiting for its password check (md_login_pool). */
struct pending_login {
    md_server *srv;
    guint64 ticket;
    md_login_attempt *attempt;
    char *username;
    char *totp;
    char *remote;
};

static void pending_login_free(struct pending_login *pl)
{
    md_login_attempt_free(pl->attempt);
    g_free(pl->username);
    if (pl->totp)
        md_wipe(pl->totp, strlen(pl->totp));
    g_free(pl->totp);
    g_free(pl->remote);
    g_free(pl);
}

/* The second half of a login, on the control thread: TOTP, audit, session. */
static void finish_login(md_server *srv, md_login_attempt *attempt, int verified,
                         const char *username, const char *totp, const char *remote,
                         md_http_response *resp)
{
    md_staff staff;
    char *token = NULL;
    int r = md_staff_login_finish(srv->store, srv->audit, &srv->auth_limits, attempt, verified,
                                  totp, remote, md_now_ms(), &staff, &token);
    md_metrics_login(srv->metrics, r);
    if (r < 0) {
        if (r == -MD_E_CREDENTIALS || r == -MD_E_TOTP)
            md_login_limiter_failed(srv->login_limiter, username, remote, md_monotonic_ms());
        respond_error(resp, r, NULL);
        return;
    }
    md_login_limiter_succeeded(srv->login_limiter, username, remote);
    resp->set_cookie = g_strdup_printf(MD_SESSION_COOKIE "=%s; Max-Age=%d; " COOKIE_ATTRS, token,
                                       srv->auth_limits.session_ttl_seconds);
    md_wipe(token, strlen(token));
    free(token);
    respond_json(resp, 200, staff_json(&staff));
    md_staff_clear(&staff);
}

static void on_login_hashed(int verified, void *ud)
{
    struct pending_login *pl = ud;
    md_http_response resp = {0};
    finish_login(pl->srv, pl->attempt, verified, pl->username, pl->totp, pl->remote, &resp);
    md_ws_http_respond(pl->srv->ws, pl->ticket, &resp);
    pending_login_free(pl);
}

/*
 * POST /api/login.  Everything that can refuse cheaply comes first: the
 * throttle (429 at once, no hashing, no database), then the account lookup
 * on this thread; the scrypt check runs on md_login_pool and the answer is
 * sent when it is back, so the control loop keeps serving meanwhile.
 */
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
    int retry_after = 0;
    int r = md_login_limiter_admit(srv->login_limiter, username, req->remote, md_monotonic_ms(),
                                   &retry_after);
    if (r == 0 && md_login_pool_pending(srv->login_pool) >=
                      srv->cfg->auth.login_queue + srv->cfg->auth.login_workers)
        r = -MD_E_RATE_LIMITED, retry_after = 1;
    if (r < 0) {
        md_metrics_login(srv->metrics, r);
        json_decref(body);
        g_autofree char *detail = g_strdup_printf("retry after %d s", retry_after);
        respond_error(resp, r, detail);
        return;
    }

    md_login_attempt *attempt = NULL;
    const char *hash = NULL;
    r = md_staff_login_begin(srv->store, username, password, &attempt, &hash);
    if (r < 0) {
        json_decref(body);
        respond_error(resp, r, NULL);
        return;
    }
    if (!hash || !req->conn) {
        /* Too long to be anyone's password: wrong, and not worth a hash. */
        finish_login(srv, attempt, 0, username, totp, req->remote, resp);
        md_login_attempt_free(attempt);
        json_decref(body);
        return;
    }
    struct pending_login *pl = g_new0(struct pending_login, 1);
    pl->srv = srv;
    pl->attempt = attempt;
    pl->username = g_strdup(username);
    pl->totp = g_strdup(totp);
    pl->remote = g_strdup(req->remote);
    pl->ticket = md_conn_http_defer(req->conn);
    r = md_login_pool_verify(srv->login_pool, password, hash, on_login_hashed, pl);
    json_decref(body);
    if (r < 0) {
        md_http_response err = {0};
        respond_error(&err, r, NULL);
        md_ws_http_respond(srv->ws, pl->ticket, &err);
        pending_login_free(pl);
    }
}

static void api_logout(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    if (req->session_cookie) {
        md_staff_logout(srv->store, srv->audit, req->session_cookie, md_now_ms());
        /* Sockets opened with this login end with it. */
        md_party_close_login(srv, req->session_cookie, -MD_E_SESSION_EXPIRED);
    }
    resp->set_cookie = g_strdup(MD_SESSION_COOKIE "=; Max-Age=0; " COOKIE_ATTRS);
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
 * hidden files, no characters outside [A-Za-z0-9._/-].  The root is the
 * staff login on the staff listener and the counter kiosk on the device
 * listener; the browser-test pages under /test/ only with web.test_pages. */
static void static_file(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    const char *path = req->path;
    if (path[0] != '/')
        return;
    if (strcmp(path, "/") == 0)
        path = req->listener == MD_LISTENER_DEVICE ? "/kiosk.html" : "/index.html";
    if (g_str_has_prefix(path, "/test/") && !srv->cfg->web.test_pages)
        return;
    for (const char *c = path; *c; c++)
        if (!g_ascii_isalnum(*c) && !strchr("._/-", *c))
            return;
    if (strstr(path, "/.") || strstr(path, "//"))
        return;
    /* A page's address may leave out ".html": "/verifier" is verifier.html. */
    bool bare = !strchr(strrchr(path, '/'), '.');
    g_autofree char *file = bare ? g_strdup_printf("%s/%s.html", srv->cfg->web_root, path + 1)
                                 : g_build_filename(srv->cfg->web_root, path + 1, NULL);
    const char *name = bare ? ".html" : path;
    if (!g_file_test(file, G_FILE_TEST_IS_REGULAR))
        return;
    for (size_t i = 0; i < G_N_ELEMENTS(mime_types); i++)
        if (g_str_has_suffix(name, mime_types[i].ext)) {
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
    {"GET", "/healthz", healthz, true},
};

/*
 * Every POST: the body must be declared JSON (a form or text/plain body is
 * what a cross-site page can send without a CORS preflight), and a browser's
 * Origin, when sent, must be one of auth.allowed_origins (login CSRF).
 */
static int post_allowed(md_server *srv, const md_http_request *req)
{
    const char *ct = req->content_type;
    size_t n = strlen("application/json");
    if (!ct || g_ascii_strncasecmp(ct, "application/json", n) != 0 ||
        (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' '))
        return -MD_E_CONTENT_TYPE;
    if (req->origin && !md_server_origin_allowed(srv, req->listener, req->origin))
        return -MD_E_ORIGIN;
    return 0;
}

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
        int err = strcmp(req->method, "POST") == 0 ? post_allowed(srv, req) : 0;
        if (err < 0) {
            respond_error(resp, err, NULL);
            return;
        }
        r->handler(srv, req, resp);
        return;
    }
    /* The auditor's and the admin's APIs: staff listener only. */
    static const md_http_route *const tables[] = {md_http_audit_routes, md_http_admin_routes};
    for (size_t t = 0; t < G_N_ELEMENTS(tables); t++)
        for (const md_http_route *r = tables[t]; r->method; r++) {
            if (strcmp(r->path, req->path) != 0)
                continue;
            if (req->listener == MD_LISTENER_DEVICE)
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

void md_http_respond_json(md_http_response *resp, int status, json_t *body)
{
    respond_json(resp, status, body);
}

void md_http_respond_error(md_http_response *resp, int err, const char *detail)
{
    respond_error(resp, err, detail);
}

int md_http_authenticate(md_server *srv, const md_http_request *req, md_http_response *resp,
                         md_staff *ret)
{
    return authenticate(srv, req, resp, ret);
}
