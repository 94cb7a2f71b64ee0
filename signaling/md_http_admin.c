/*
 * The admin console's HTTP API (docs/protocol.md, "Admin API"): the registry
 * (municipalities and their policies, post offices, designations with their
 * period state and legal fields, procedures awaiting the terminal upgrade),
 * devices and staff accounts.  Every change goes through the function the
 * command line uses (md_registry_import, md_registry_enable_procedure,
 * md_admin_*, md_staff_add), so the rules, the audit entry and the refusal
 * text are the same; the actor is "staff:<admin>".  Admin role only.
 *
 * A device's .p12 bundle is written to a private directory under the data
 * directory, read into the answer and removed at once: it is handed out
 * once and not kept.  A TOTP secret is returned once, as its otpauth:// URI
 * and a QR code.
 *
 * Control thread only.
 */
#include "md_admin.h"
#include "md_limits.h"
#include "md_crypto.h"
#include "md_err.h"
#include "md_log.h"
#include "md_qr.h"
#include "md_server_private.h"
#include "md_time.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define REGISTRY_DOC_MAX (256 * 1024)

typedef struct admin_req {
    md_staff staff;
    char *actor;
    json_t *body; /* POST: the JSON object */
} admin_req;

static void admin_clear(admin_req *a)
{
    md_staff_clear(&a->staff);
    g_free(a->actor);
    json_decref(a->body);
}

/* The admin behind the cookie, and for a POST its JSON object body. */
static int admin_of(md_server *srv, const md_http_request *req, md_http_response *resp,
                    admin_req *ret)
{
    admin_req a = {0};
    int r = md_http_authenticate(srv, req, resp, &a.staff);
    if (r < 0)
        return r;
    if (a.staff.role != MD_ROLE_ADMIN) {
        md_staff_clear(&a.staff);
        md_http_respond_error(resp, -MD_E_FORBIDDEN, NULL);
        return -MD_E_FORBIDDEN;
    }
    if (strcmp(req->method, "POST") == 0) {
        json_error_t jerr;
        a.body =
            req->body ? json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
        if (!json_is_object(a.body)) {
            json_decref(a.body);
            md_staff_clear(&a.staff);
            md_http_respond_error(resp, -MD_E_BAD_JSON, NULL);
            return -MD_E_BAD_JSON;
        }
    }
    a.actor = g_strdup_printf("staff:%s", a.staff.username);
    *ret = a;
    return 0;
}

static const char *field(const admin_req *a, const char *key, size_t max)
{
    json_t *v = json_object_get(a->body, key);
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max)
        return NULL;
    return json_string_value(v);
}

/* ---- GET /api/admin/registry ---- */

static int on_municipality(const md_row *row, void *userdata)
{
    json_error_t jerr;
    const char *policy = md_row_text(row, 3);
    json_t *p = policy ? json_loads(policy, 0, &jerr) : NULL;
    json_t *o = json_pack("{s:s?, s:s?, s:s?, s:o}", "code", md_row_text(row, 0), "name",
                          md_row_text(row, 1), "prefecture", md_row_text(row, 2), "security_policy",
                          p ? p : json_object());
    return o && json_array_append_new(userdata, o) == 0 ? 0 : -ENOMEM;
}

static int on_office(const md_row *row, void *userdata)
{
    json_t *o = json_pack("{s:s?, s:s?, s:s?, s:s?}", "id", md_row_text(row, 0), "name",
                          md_row_text(row, 1), "kind", md_row_text(row, 2), "municipality",
                          md_row_text(row, 3));
    return o && json_array_append_new(userdata, o) == 0 ? 0 : -ENOMEM;
}

struct designations {
    json_t *array;
    int32_t today;
};

static int on_designation(const md_row *row, void *userdata)
{
    struct designations *d = userdata;
    const char *from = md_row_text(row, 3), *until = md_row_text(row, 4);
    const char *procs = md_row_text(row, 8);
    int32_t f = 0, u = 0;
    const char *state = "invalid";
    if (from && until && md_date_parse(from, &f) == 0 && md_date_parse(until, &u) == 0)
        state = d->today < f ? "not_yet" : d->today > u ? "expired" : "in_force";
    json_t *list = json_array();
    if (procs) {
        g_auto(GStrv) ids = g_strsplit(procs, ",", -1);
        for (char **p = ids; *p; p++)
            if (**p)
                json_array_append_new(list, json_string(*p));
    }
    json_t *o = json_pack(
        "{s:s?, s:s?, s:s?, s:s?, s:s?, s:s, s:s?, s:s?, s:s?, s:o}", "id", md_row_text(row, 0),
        "municipality", md_row_text(row, 1), "post_office", md_row_text(row, 2), "from", from,
        "until", until, "state", state, "resolution_date", md_row_text(row, 5), "resolution_number",
        md_row_text(row, 6), "consultation_date", md_row_text(row, 7), "procedures", list);
    return o && json_array_append_new(d->array, o) == 0 ? 0 : -ENOMEM;
}

static int on_enabled(const md_row *row, void *userdata)
{
    json_object_set_new(
        userdata, md_row_text(row, 0),
        json_pack("{s:I, s:s?}", "at", (json_int_t)md_row_int(row, 1), "by", md_row_text(row, 2)));
    return 0;
}

static void api_registry(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    admin_req a;
    if (admin_of(srv, req, resp, &a) < 0)
        return;
    json_t *muns = json_array(), *offices = json_array(), *procs = json_array();
    json_t *enabled = json_object();
    struct designations d = {.array = json_array(), .today = md_date_jst(md_now_ms())};
    int r = md_store_query(srv->store,
                           "SELECT code, name, prefecture, policy FROM municipality ORDER BY code",
                           MD_NO_PARAMS, on_municipality, muns);
    if (r >= 0)
        r = md_store_query(srv->store,
                           "SELECT id, name, kind, municipality FROM post_office"
                           " ORDER BY municipality, id",
                           MD_NO_PARAMS, on_office, offices);
    if (r >= 0)
        r = md_store_query(srv->store,
                           "SELECT d.id, d.municipality, d.post_office, d.valid_from,"
                           " d.valid_until, d.resolution_date, d.resolution_number,"
                           " d.consultation_date, (SELECT group_concat(procedure, ',') FROM"
                           " (SELECT procedure FROM designation_procedure WHERE designation = d.id"
                           " ORDER BY procedure)) FROM designation d"
                           " ORDER BY d.municipality, d.post_office, d.valid_from",
                           MD_NO_PARAMS, on_designation, &d);
    if (r >= 0)
        r = md_store_query(srv->store,
                           "SELECT procedure, enabled_at, enabled_by FROM procedure_enabled",
                           MD_NO_PARAMS, on_enabled, enabled);
    for (size_t i = 0; r >= 0 && i < md_procedures_count(srv->procedures); i++) {
        const md_procedure *p = md_procedures_at(srv->procedures, i);
        json_t *en = json_object_get(enabled, p->id);
        json_array_append_new(
            procs,
            json_pack("{s:s, s:s, s:s, s:b, s:b, s:O}", "id", p->id, "name", p->ja, "designation",
                      p->designation == MD_DESIGNATION_COUNCIL ? "council" : "contract",
                      "direct_only", p->direct_only, "after_terminal_upgrade",
                      p->available == MD_AVAILABLE_AFTER_UPGRADE, "enabled",
                      en ? en : json_null()));
    }
    if (r < 0)
        md_http_respond_error(resp, r, NULL);
    else
        md_http_respond_json(resp, 200,
                             json_pack("{s:O, s:O, s:O, s:O}", "municipalities", muns,
                                       "post_offices", offices, "designations", d.array,
                                       "procedures", procs));
    json_decref(muns);
    json_decref(offices);
    json_decref(d.array);
    json_decref(procs);
    json_decref(enabled);
    admin_clear(&a);
}

/* ---- POST /api/admin/registry/import {document} ---- */

static void api_import(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    admin_req a;
    if (admin_of(srv, req, resp, &a) < 0)
        return;
    json_t *doc = json_object_get(a.body, "document");
    char *report = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&report, &len);
    int r = mem ? md_registry_import(srv->store, srv->audit, srv->procedures, doc, a.actor,
                                     md_now_ms(), mem)
                : -ENOMEM;
    if (mem)
        fclose(mem);
    if (r < 0 && r != -MD_E_SCHEMA) {
        md_http_respond_error(resp, r, NULL);
    } else {
        /* The command line's report, line by line: the same words. */
        json_t *lines = json_array();
        g_auto(GStrv) split = g_strsplit(report ? report : "", "\n", -1);
        for (char **l = split; *l; l++)
            if (**l)
                json_array_append_new(lines, json_string(*l));
        md_http_respond_json(
            resp, r < 0 ? 400 : 200,
            json_pack("{s:b, s:i, s:o}", "ok", r == 0, "refused", r < 0 ? 0 : r, "report", lines));
    }
    free(report);
    admin_clear(&a);
}

/* ---- POST /api/admin/procedures/enable {procedure} ---- */

static void api_enable(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    admin_req a;
    if (admin_of(srv, req, resp, &a) < 0)
        return;
    const char *procedure = field(&a, "procedure", 64);
    int r = procedure ? md_registry_enable_procedure(srv->store, srv->audit, srv->procedures,
                                                     procedure, a.actor, md_now_ms())
                      : -MD_E_SCHEMA;
    if (r < 0)
        md_http_respond_error(resp, r, NULL);
    else
        md_http_respond_json(resp, 200, json_pack("{s:b}", "ok", 1));
    admin_clear(&a);
}

/* ---- devices ---- */

static void api_devices(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    admin_req a;
    if (admin_of(srv, req, resp, &a) < 0)
        return;
    json_t *list = NULL;
    int r = md_admin_device_list(srv->store, NULL, &list);
    if (r < 0)
        md_http_respond_error(resp, r, NULL);
    else
        md_http_respond_json(resp, 200, json_pack("{s:o}", "devices", list));
    admin_clear(&a);
}

static void remove_dir(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(dir, name, NULL);
        g_unlink(p);
    }
    if (d)
        g_dir_close(d);
    g_rmdir(dir);
}

static void api_device_issue(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    admin_req a;
    if (admin_of(srv, req, resp, &a) < 0)
        return;
    const char *device = field(&a, "device", 64);
    const char *office = field(&a, "post_office", 64);
    json_t *jpw = json_object_get(a.body, "p12_password");
    const char *password = json_is_string(jpw) ? json_string_value(jpw) : "";
    char *dir = NULL, *p12 = NULL, *b64 = NULL, *tmpl = NULL, *name = NULL, *path = NULL;
    gsize p12_len = 0;
    int r;
    if (!device || !office || strlen(password) > 128) {
        md_http_respond_error(resp, -MD_E_SCHEMA, "device and post_office are required");
        goto out;
    }
    tmpl = md_config_path(srv->cfg, "admin-issue-XXXXXX");
    dir = g_strdup(tmpl);
    if (!g_mkdtemp_full(dir, 0700)) {
        g_clear_pointer(&dir, g_free);
        md_http_respond_error(resp, -errno, NULL);
        goto out;
    }
    r = md_admin_device_issue(srv->store, srv->audit, srv->cfg, device, office, dir, password,
                              a.actor, md_now_ms());
    if (r < 0) {
        md_http_respond_error(resp, r, NULL);
        goto out;
    }
    name = g_strconcat(device, ".p12", NULL);
    path = g_build_filename(dir, name, NULL);
    if (!g_file_get_contents(path, &p12, &p12_len, NULL)) {
        md_http_respond_error(resp, -EIO, NULL);
        goto out;
    }
    b64 = g_base64_encode((const guchar *)p12, p12_len);
    md_http_respond_json(
        resp, 200, json_pack("{s:s, s:s, s:s}", "device", device, "filename", name, "p12", b64));
out:
    if (p12) {
        md_wipe(p12, p12_len);
        g_free(p12);
    }
    if (b64) {
        md_wipe(b64, strlen(b64));
        g_free(b64);
    }
    if (dir) {
        remove_dir(dir); /* handed out once: no copy stays on the server */
        g_free(dir);
    }
    g_free(tmpl);
    g_free(name);
    g_free(path);
    admin_clear(&a);
}

static void api_device_status(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    admin_req a;
    if (admin_of(srv, req, resp, &a) < 0)
        return;
    static const struct {
        const char *name;
        enum md_device_status status;
    } statuses[] = {{"active", MD_DEVICE_ACTIVE},
                    {"disabled", MD_DEVICE_DISABLED},
                    {"revoked", MD_DEVICE_REVOKED}};
    const char *device = field(&a, "device", 64), *status = field(&a, "status", 16);
    int r = -MD_E_SCHEMA;
    for (size_t i = 0; device && status && i < G_N_ELEMENTS(statuses); i++)
        if (strcmp(status, statuses[i].name) == 0)
            r = md_admin_device_set_status(srv->store, srv->audit, srv->cfg, device,
                                           statuses[i].status, a.actor, md_now_ms());
    if (r >= 0 && strcmp(status, "revoked") == 0) {
        /* The next TLS handshake of that tablet is refused; open
         * connections are closed by the registry check at their next
         * message. */
        int rr = md_ws_reload_crl(srv->ws);
        if (rr < 0)
            md_error("admin", "crl_reload_failed", "{s:s}", "error", md_strerror(rr));
    }
    if (r < 0)
        md_http_respond_error(resp, r, r == -MD_E_SCHEMA ? "device and status" : NULL);
    else
        md_http_respond_json(resp, 200, json_pack("{s:b}", "ok", 1));
    admin_clear(&a);
}

/* ---- staff ---- */

static void api_staff(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    admin_req a;
    if (admin_of(srv, req, resp, &a) < 0)
        return;
    json_t *list = NULL;
    int r = md_admin_staff_list(srv->store, &list);
    if (r < 0) {
        md_http_respond_error(resp, r, NULL);
    } else {
        /* Failed logins slow down a name per source (md_limits.h); "locked"
         * says whether some source is waiting now. */
        size_t i;
        json_t *o;
        json_array_foreach (list, i, o) {
            const char *name = json_string_value(json_object_get(o, "username"));
            json_object_set_new(
                o, "locked",
                json_boolean(name && md_login_limiter_backing_off(srv->login_limiter, name,
                                                                  md_monotonic_ms())));
        }
        md_http_respond_json(resp, 200, json_pack("{s:o}", "staff", list));
    }
    admin_clear(&a);
}

/* {username, otpauth, qr_svg}: shown once. */
static void respond_totp(md_http_response *resp, const char *username, char *uri /* wiped */)
{
    char *svg = NULL;
    int r = md_qr_svg(uri, &svg);
    if (r < 0)
        md_http_respond_error(resp, r, NULL);
    else
        md_http_respond_json(
            resp, 200,
            json_pack("{s:s, s:s, s:s}", "username", username, "otpauth", uri, "qr_svg", svg));
    g_free(svg);
    md_wipe(uri, strlen(uri));
}

static void api_staff_add(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    admin_req a;
    if (admin_of(srv, req, resp, &a) < 0)
        return;
    const char *username = field(&a, "username", 64), *role = field(&a, "role", 16);
    const char *municipality = field(&a, "municipality", 6);
    const char *password = field(&a, "password", 1024);
    enum md_role r_role;
    char *uri = NULL;
    int r = !username || !role || !password ? -MD_E_SCHEMA : md_role_parse(role, &r_role);
    if (r >= 0)
        r = md_staff_add(srv->store, srv->audit, username, r_role, municipality, password, a.actor,
                         md_now_ms(), &uri);
    if (r < 0)
        md_http_respond_error(resp, r,
                              r == -EINVAL ? "user name [A-Za-z0-9._@-]{1,64}, role verifier, "
                                             "auditor or admin, password of 12 characters or more"
                                           : NULL);
    else
        respond_totp(resp, username, uri);
    free(uri);
    admin_clear(&a);
}

static void api_staff_action(md_server *srv, const md_http_request *req, md_http_response *resp)
{
    admin_req a;
    if (admin_of(srv, req, resp, &a) < 0)
        return;
    const char *username = field(&a, "username", 64), *action = field(&a, "action", 16);
    char *uri = NULL;
    int r = -MD_E_SCHEMA;
    int64_t now = md_now_ms();
    if (!username || !action)
        ;
    else if (strcmp(action, "reset_totp") == 0)
        r = md_admin_staff_reset_totp(srv->store, srv->audit, username, a.actor, now, &uri);
    else if (strcmp(action, "unlock") == 0) {
        r = md_admin_staff_unlock(srv->store, srv->audit, username, a.actor, now);
        if (r >= 0)
            md_login_limiter_forget_account(srv->login_limiter, username);
    } else if (strcmp(action, "disable") == 0 || strcmp(action, "enable") == 0)
        r = md_admin_staff_set_disabled(srv->store, srv->audit, username,
                                        strcmp(action, "disable") == 0, a.actor, now);
    if (r < 0)
        md_http_respond_error(resp, r,
                              r == -MD_E_SCHEMA ? "username and action (reset_totp, unlock, "
                                                  "disable, enable)"
                                                : NULL);
    else if (uri)
        respond_totp(resp, username, uri);
    else
        md_http_respond_json(resp, 200, json_pack("{s:b}", "ok", 1));
    free(uri);
    admin_clear(&a);
}

const md_http_route md_http_admin_routes[] = {
    {"GET", "/api/admin/registry", api_registry},
    {"POST", "/api/admin/registry/import", api_import},
    {"POST", "/api/admin/procedures/enable", api_enable},
    {"GET", "/api/admin/devices", api_devices},
    {"POST", "/api/admin/devices/issue", api_device_issue},
    {"POST", "/api/admin/devices/status", api_device_status},
    {"GET", "/api/admin/staff", api_staff},
    {"POST", "/api/admin/staff/add", api_staff_add},
    {"POST", "/api/admin/staff/action", api_staff_action},
    {NULL, NULL, NULL},
};
