/*
 * The signaling server's connection layer: who is on the other end of each
 * WebSocket (device certificate + registry, or staff cookie), per-connection
 * limits, message validation and dispatch to the session handlers, and the
 * daemon's start-up and clean shutdown.  Control thread only.
 */
#include "md_certs.h"
#include "md_crypto.h"
#include "md_sealed.h"
#include "md_err.h"
#include "md_limits.h"
#include "md_audit_check.h"
#include "md_login_pool.h"
#include "md_recording.h"
#include "md_recovery.h"
#include "md_retention.h"
#include "md_server_private.h"
#include "md_log.h"
#include "md_time.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <stdio.h>
#include <string.h>

/* ---- admission ---- */

/* Refuses a connection before it becomes a party: error message + audit. */
static int refuse(md_server *srv, md_conn *c, int err, const char *actor, const char *device_id,
                  const char *municipality, const char *post_office)
{
    const md_conn_info *info = md_conn_get_info(c);
    json_t *detail = json_pack("{s:s, s:s}", "code", md_err_code(err), "remote", info->remote);
    if (device_id)
        json_object_set_new(detail, "device", json_string(device_id));
    md_server_audit(srv, actor,
                    info->listener == MD_LISTENER_DEVICE ? "device_refused" : "staff_refused",
                    municipality, post_office, NULL, detail);
    json_t *msg = md_proto_error(err, NULL, NULL, NULL);
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    md_conn_send(c, text, strlen(text));
    free(text);
    md_info("signaling", "connection_refused", "{s:s, s:s}", "code", md_err_code(err), "remote",
            info->remote);
    return err;
}

static bool network_allowed(char **networks, const char *remote)
{
    if (!networks)
        return true;
    GInetAddress *addr = g_inet_address_new_from_string(remote);
    bool ok = false;
    for (char **n = networks; addr && *n && !ok; n++) {
        GInetAddressMask *mask = g_inet_address_mask_new_from_string(*n, NULL);
        if (mask) {
            ok = g_inet_address_mask_matches(mask, addr);
            g_object_unref(mask);
        }
    }
    if (addr)
        g_object_unref(addr);
    return ok;
}

/* The procedures this tablet's post office may run today (Q&A Q8: one
 * tablet, several procedures), with availability. */
static json_t *tablet_procedures(md_server *srv, const char *device_id)
{
    json_t *list = json_array();
    int64_t now = md_now_ms();
    for (size_t i = 0; i < md_procedures_count(srv->procedures); i++) {
        const md_procedure *proc = md_procedures_at(srv->procedures, i);
        md_request_scope scope;
        int r = md_registry_check_request(srv->store, srv->procedures, device_id, proc->id, now,
                                          &scope);
        if (r == 0)
            md_request_scope_clear(&scope);
        if (r == 0 || r == -MD_E_AWAITING_UPGRADE)
            json_array_append_new(list, json_pack("{s:s, s:s, s:b}", "id", proc->id, "ja", proc->ja,
                                                  "available", r == 0));
    }
    return list;
}

static json_t *limits_json(md_server *srv)
{
    return json_pack("{s:i}", "max_message_bytes", srv->cfg->limits.max_message_bytes);
}

static int open_device(md_server *srv, md_conn *c)
{
    const md_conn_info *info = md_conn_get_info(c);
    if (!info->has_peer_cert)
        return refuse(srv, c, -MD_E_DEVICE_CERT_REQUIRED, "device:unknown", NULL, NULL, NULL);
    if (!info->cert_device_id || !info->cert_post_office)
        return refuse(srv, c, -MD_E_DEVICE_CERT_INVALID, "device:unknown", NULL, NULL, NULL);

    g_autofree char *actor = g_strdup_printf("device:%s", info->cert_device_id);
    md_device dev;
    int r = md_device_lookup(srv->store, info->cert_device_id, &dev);
    if (r < 0)
        return refuse(srv, c, r == -ENOENT ? -MD_E_DEVICE_UNKNOWN : r, actor, info->cert_device_id,
                      NULL, info->cert_post_office);

    md_policy policy = {0};
    if (dev.status == MD_DEVICE_DISABLED)
        r = -MD_E_DEVICE_DISABLED;
    else if (dev.status == MD_DEVICE_REVOKED)
        r = -MD_E_DEVICE_REVOKED;
    else if (strcmp(dev.post_office, info->cert_post_office) != 0)
        r = -MD_E_DEVICE_MISMATCH;
    else /* CA-signed with the right names is not enough: the certificate issued to it */
        r = md_device_check_certificate(&dev, info->cert_serial, info->cert_sha256);
    if (r == 0)
        r = md_registry_policy(srv->store, dev.municipality, &policy);
    if (r == 0 && strcmp(policy.min_tls, "1.3") == 0 && strcmp(info->tls_version, "TLSv1.3") != 0)
        r = -MD_E_TLS_VERSION;
    if (r == 0 && !network_allowed(policy.allowed_networks, info->remote))
        r = -MD_E_NETWORK_NOT_ALLOWED;
    int count = GPOINTER_TO_INT(g_hash_table_lookup(srv->device_conns, dev.id));
    if (r == 0 && count >= srv->cfg->limits.connections_per_device)
        r = -MD_E_TOO_MANY_CONNECTIONS;
    md_policy_clear(&policy);
    /* A tablet's own page is served from this listener; other pages may not
     * drive a tablet's socket (a native client sends no Origin at all). */
    if (r == 0 && info->origin && !md_server_origin_allowed(srv, MD_LISTENER_DEVICE, info->origin))
        r = -MD_E_ORIGIN;
    if (r < 0) {
        refuse(srv, c, r, actor, dev.id, dev.municipality, dev.post_office);
        md_device_clear(&dev);
        return r;
    }

    md_party *p = md_party_new(c, MD_SENDER_TABLET);
    p->actor = g_steal_pointer(&actor);
    p->device_id = g_strdup(dev.id);
    p->post_office = g_strdup(dev.post_office);
    p->municipality = g_strdup(dev.municipality);
    md_device_clear(&dev);
    g_hash_table_insert(srv->device_conns, g_strdup(p->device_id), GINT_TO_POINTER(count + 1));
    md_conn_set_user(c, p);
    g_ptr_array_add(srv->parties, p);

    /* The names are for the kiosk's start screen. */
    g_autofree char *po_name = NULL;
    g_autofree char *mun_name = NULL;
    md_store_query_text(srv->store, "SELECT name FROM post_office WHERE id = ?",
                        MD_PARAMS(MD_P_TEXT(p->post_office)), &po_name);
    md_store_query_text(srv->store, "SELECT name FROM municipality WHERE code = ?",
                        MD_PARAMS(MD_P_TEXT(p->municipality)), &mun_name);
    md_party_send(p, json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "type",
                               "hello", "protocol", 1, "role", "tablet", "device", p->device_id,
                               "post_office", p->post_office, "post_office_name",
                               po_name ? po_name : "", "municipality", p->municipality,
                               "municipality_name", mun_name ? mun_name : "", "procedures",
                               tablet_procedures(srv, p->device_id), "limits", limits_json(srv)));
    md_info("signaling", "device_connected", "{s:s, s:s}", "device", p->device_id, "remote",
            info->remote);
    return 0;
}

static int staff_sockets_of(md_server *srv, const char *username)
{
    int n = 0;
    for (guint i = 0; i < srv->parties->len; i++) {
        md_party *p = g_ptr_array_index(srv->parties, i);
        if (p->username && strcmp(p->username, username) == 0)
            n++;
    }
    return n;
}

/* Re-checks a staff socket's login (live, account enabled); closes it with
 * login_expired and returns the error when it is gone. */
static int recheck_staff(md_server *srv, md_party *p)
{
    if (!p->login_token)
        return 0;
    if (p->login_gone)
        return -MD_E_SESSION_EXPIRED;
    md_staff staff;
    int r = md_staff_session(srv->store, p->login_token, md_now_ms(), &staff);
    if (r == 0) {
        md_staff_clear(&staff);
        return 0;
    }
    if (r != -MD_E_SESSION_EXPIRED)
        return 0; /* a store hiccup: keep the socket, check again later */
    md_party_login_ended(p, r);
    return r;
}

static unsigned sender_of_role(enum md_role role)
{
    switch (role) {
    case MD_ROLE_VERIFIER:
        return MD_SENDER_VERIFIER;
    case MD_ROLE_AUDITOR:
        return MD_SENDER_AUDITOR;
    default:
        return MD_SENDER_ADMIN;
    }
}

static int open_staff(md_server *srv, md_conn *c)
{
    const md_conn_info *info = md_conn_get_info(c);
    if (!info->origin || !md_server_origin_allowed(srv, MD_LISTENER_STAFF, info->origin))
        return refuse(srv, c, -MD_E_ORIGIN, "staff:unknown", NULL, NULL, NULL);
    md_staff staff;
    int r = info->session_cookie
                ? md_staff_session(srv->store, info->session_cookie, md_now_ms(), &staff)
                : -MD_E_NOT_AUTHENTICATED;
    if (r < 0) {
        /* Not audited: an unauthenticated socket is refused before it is anyone. */
        json_t *msg = md_proto_error(r, NULL, NULL, NULL);
        char *text = json_dumps(msg, JSON_COMPACT);
        json_decref(msg);
        md_conn_send(c, text, strlen(text));
        free(text);
        return r;
    }
    if (staff_sockets_of(srv, staff.username) >= srv->cfg->limits.staff_sockets_per_account) {
        g_autofree char *actor = g_strdup_printf("staff:%s", staff.username);
        r = refuse(srv, c, -MD_E_STAFF_SOCKETS, actor, NULL, staff.municipality, NULL);
        md_staff_clear(&staff);
        return r;
    }
    md_party *p = md_party_new(c, sender_of_role(staff.role));
    p->login_token = g_strdup(info->session_cookie);
    p->actor = g_strdup_printf("staff:%s", staff.username);
    p->username = g_strdup(staff.username);
    p->municipality = g_strdup(staff.municipality);
    md_conn_set_user(c, p);
    g_ptr_array_add(srv->parties, p);

    json_t *hello =
        json_pack("{s:s, s:i, s:s, s:s, s:o}", "type", "hello", "protocol", 1, "role",
                  md_role_name(staff.role), "username", staff.username, "limits", limits_json(srv));
    if (staff.municipality)
        json_object_set_new(hello, "municipality", json_string(staff.municipality));
    md_party_send(p, hello);
    md_staff_clear(&staff);
    md_info("signaling", "staff_connected", "{s:s, s:s}", "actor", p->actor, "remote",
            info->remote);
    return 0;
}

static int on_open(md_conn *c, void *ud)
{
    md_server *srv = ud;
    int r = md_conn_get_info(c)->listener == MD_LISTENER_DEVICE ? open_device(srv, c)
                                                                : open_staff(srv, c);
    if (r == 0)
        md_sessions_party_joined(srv, md_conn_get_user(c));
    return r;
}

static void on_close(md_conn *c, void *ud)
{
    md_server *srv = ud;
    md_party *p = md_conn_get_user(c);
    if (!p)
        return;
    md_sessions_party_left(srv, p);
    if (p->device_id) {
        int count = GPOINTER_TO_INT(g_hash_table_lookup(srv->device_conns, p->device_id));
        if (count <= 1)
            g_hash_table_remove(srv->device_conns, p->device_id);
        else
            g_hash_table_insert(srv->device_conns, g_strdup(p->device_id),
                                GINT_TO_POINTER(count - 1));
    }
    md_debug("signaling", "disconnected", "{s:s}", "actor", p->actor);
    g_ptr_array_remove_fast(srv->parties, p);
    md_party_free(p);
}

/* Token bucket: rate messages_per_second, depth message_burst. */
static bool take_token(md_server *srv, md_party *p)
{
    int64_t now = md_monotonic_ms();
    double rate = srv->cfg->limits.messages_per_second;
    double burst = srv->cfg->limits.message_burst;
    if (p->tokens_at_ms == 0)
        p->tokens = burst;
    else
        p->tokens = MIN(burst, p->tokens + (double)(now - p->tokens_at_ms) * rate / 1000.0);
    p->tokens_at_ms = now;
    if (p->tokens < 1.0)
        return false;
    p->tokens -= 1.0;
    return true;
}

static void refused_message(md_server *srv, md_party *p, int err, const char *detail,
                            const char *re)
{
    md_party_send_error(p, err, detail, re, NULL);
    if (++p->refusals >= srv->cfg->limits.flood_close_after) {
        md_warn("signaling", "closing_abusive_connection", "{s:s, s:i}", "actor", p->actor,
                "refusals", p->refusals);
        md_conn_close(p->conn, 1008, "too many refused messages");
    }
}

static void on_message(md_conn *c, const char *text, size_t len, void *ud)
{
    md_server *srv = ud;
    md_party *p = md_conn_get_user(c);
    if (!take_token(srv, p)) {
        refused_message(srv, p, -MD_E_RATE_LIMITED, NULL, NULL);
        return;
    }
    /* A logout, an expiry or a disabled account ends a staff socket's right
     * to act at once, not only at the next periodic check (after the rate
     * limit, so a flood costs no store lookups). */
    if (recheck_staff(srv, p) < 0)
        return;
    md_proto_result m;
    const md_proto_limits lim = {.sdp_bytes = (size_t)srv->cfg->media.max_sdp_bytes,
                                 .candidate_bytes = MD_MEDIA_MAX_CANDIDATE_BYTES};
    int r = md_proto_parse(text, len, p->role, &lim, &m);
    if (r < 0) {
        md_debug("signaling", "message_refused", "{s:s, s:s}", "actor", p->actor, "code",
                 md_err_code(r));
        refused_message(srv, p, r, m.detail, m.id);
    } else {
        md_session_handlers[m.type](srv, p, &m);
    }
    md_proto_result_clear(&m);
}

static void on_oversize(md_conn *c, void *ud)
{
    (void)ud;
    md_party *p = md_conn_get_user(c);
    md_warn("signaling", "message_too_large", "{s:s}", "actor", p->actor);
    md_party_send_error(p, -MD_E_TOO_LARGE, NULL, NULL, NULL);
}

static void on_http(const md_http_request *req, md_http_response *resp, void *ud)
{
    md_http_api_handle(ud, req, resp);
}

static void on_cert_refused(const char *remote, int code, const char *reason, const char *device_id,
                            void *ud)
{
    md_server *srv = ud;
    g_autofree char *actor = g_strdup_printf("device:%s", device_id ? device_id : "unknown");
    json_t *detail =
        json_pack("{s:s, s:s, s:s}", "code", md_err_code(code), "remote", remote, "tls", reason);
    if (device_id)
        json_object_set_new(detail, "device", json_string(device_id));
    md_server_audit(srv, actor, "device_refused", NULL, NULL, NULL, detail);
    md_info("signaling", "certificate_refused", "{s:s, s:s}", "remote", remote, "reason", reason);
}

/* ---- lifecycle ---- */

static gboolean on_tick(gpointer data)
{
    md_server *srv = data;
    /* Staff sockets live only as long as their login: expiry, logout from
     * another process, a disabled or reset account close them here. */
    for (guint i = 0; i < srv->parties->len; i++)
        recheck_staff(srv, g_ptr_array_index(srv->parties, i));
    md_sessions_tick(srv);
    int r = md_audit_tick(srv->audit);
    if (r < 0)
        md_error("audit", "checkpoint_failed", "{s:s}", "error", md_strerror(r));
    return G_SOURCE_CONTINUE;
}

/*
 * The CRL is valid for 30 days, so the gateway rewrites it from the registry
 * at start, daily, and on SIGHUP (after `device revoke`), then reloads it into
 * the device listener.  An installation that keeps the CA key offline skips
 * the rewrite and only reloads what the operator put in place.
 */
static void refresh_crl(md_server *srv)
{
    const md_config *cfg = srv->cfg;
    if (g_file_test(cfg->tls.ca_key, G_FILE_TEST_EXISTS)) {
        char **serials = NULL;
        int r = md_device_revoked_serials(srv->store, &serials);
        if (r == 0)
            r = md_certs_crl_write(cfg->tls.ca, cfg->tls.ca_key, (const char *const *)serials,
                                   cfg->tls.crl);
        if (r < 0)
            md_error("server", "crl_write_failed", "{s:s}", "error", md_strerror(r));
        else
            md_info("server", "crl_written", "{s:i}", "revoked", (int)g_strv_length(serials));
        g_strfreev(serials);
    }
    if (srv->ws)
        md_ws_reload_crl(srv->ws);
}

static gboolean on_crl_timer(gpointer data)
{
    refresh_crl(data);
    return G_SOURCE_CONTINUE;
}

/* The daily retention run (md_retention.h), on the control thread. */
static gboolean on_retention_timer(gpointer data)
{
    md_server *srv = data;
    md_retention_result res = {0};
    int r =
        md_retention_run(srv->store, srv->audit, srv->evidence, "system", md_now_ms(), NULL, &res);
    if (r < 0)
        md_error("retention", "run_failed", "{s:s}", "error", md_strerror(r));
    else if (res.recordings || res.sessions || res.leftovers || res.failures)
        md_info("retention", "run", "{s:i, s:i, s:i, s:i}", "recordings", res.recordings,
                "sessions", res.sessions, "leftovers", res.leftovers, "failures", res.failures);
    return G_SOURCE_CONTINUE;
}

static gboolean on_sighup(gpointer data)
{
    md_info("server", "reloading", NULL);
    refresh_crl(data);
    return G_SOURCE_CONTINUE;
}

static gboolean on_signal(gpointer data)
{
    md_server *srv = data;
    md_info("server", "stopping", NULL);
    g_main_loop_quit(srv->loop);
    return G_SOURCE_CONTINUE;
}

/* Sealed columns (core/md_sealed.h): their key derives from the evidence
 * master key, and values an older version stored in plaintext are sealed
 * before anything reads them. */
static int attach_field_key(md_server *srv)
{
    uint8_t key[MD_SEALED_KEY_LEN];
    int r = md_evidence_field_key(srv->evidence, key);
    if (r == 0) {
        md_store_set_field_key(srv->store, key);
        r = md_sealed_migrate(srv->store);
    }
    md_wipe(key, sizeof(key));
    if (r < 0)
        md_error("server", "sealing_failed", "{s:s, s:s}", "code", md_err_code(r), "error",
                 md_strerror(r));
    else if (r > 0)
        md_info("server", "sealed_migrated", "{s:i}", "values", r);
    return r < 0 ? r : 0;
}

int md_server_new(const md_config *cfg, md_server **ret)
{
    md_server *srv = g_new0(md_server, 1);
    srv->cfg = cfg;
    srv->loop = g_main_loop_new(NULL, FALSE);
    srv->auth_limits = (md_auth_limits){cfg->auth.session_ttl_seconds};
    srv->login_limiter = md_login_limiter_new(&(md_login_limits){
        .per_minute = cfg->auth.login_per_minute,
        .per_source_per_minute = cfg->auth.login_per_source_per_minute,
        .threshold = cfg->auth.lockout_threshold,
        .max_backoff_seconds = cfg->auth.lockout_seconds,
    });
    md_server_load_origins(srv);
    srv->sessions =
        g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)md_session_free);
    srv->parties = g_ptr_array_new();
    srv->device_conns = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    /* First, so that a signal during start-up is handled, not fatal. */
    srv->signal_sources[0] = g_unix_signal_add(SIGTERM, on_signal, srv);
    srv->signal_sources[1] = g_unix_signal_add(SIGINT, on_signal, srv);
    srv->signal_sources[2] = g_unix_signal_add(SIGHUP, on_sighup, srv);

    int r = md_procedures_load(cfg->procedures_file, &srv->procedures);
    if (r < 0) {
        md_error("server", "procedures_load_failed", "{s:s, s:s}", "path", cfg->procedures_file,
                 "error", md_strerror(r));
        goto fail;
    }
    r = md_store_open(cfg->database, &srv->store);
    if (r < 0) {
        md_error("server", "store_open_failed", "{s:s, s:s}", "database", cfg->database, "error",
                 md_strerror(r));
        goto fail;
    }
    r = md_audit_open_pinned(srv->store, cfg->audit.signing_key, cfg->audit.public_key,
                             cfg->audit.checkpoint_every, cfg->audit.checkpoint_seconds,
                             &srv->audit);
    if (r < 0) {
        /* Say which key and why: a missing key with checkpoints is a restore
         * job for the operator, never something to paper over. */
        md_error("server", "audit_open_failed", "{s:s, s:s, s:s}", "code", md_err_code(r),
                 "signing_key", cfg->audit.signing_key, "error", md_strerror(r));
        goto fail;
    }
    if (!*cfg->audit.public_key)
        md_info("server", "audit_key_not_pinned", "{s:s}", "hint",
                "set audit.public_key so verification does not trust a file beside the log");
    r = md_evidence_open(cfg->evidence.dir, cfg->evidence.master_key, &srv->evidence);
    if (r < 0) {
        md_error("server", "evidence_open_failed", "{s:s, s:s}", "dir", cfg->evidence.dir, "error",
                 md_strerror(r));
        goto fail;
    }
    r = attach_field_key(srv);
    if (r < 0)
        goto fail;
    /* Recordings a crash interrupted end "cut" (they still export to the
     * cut) before any session can start a new one (DESIGN 6); each is
     * audited as stored. */
    r = md_session_recording_recover(srv);
    if (r > 0)
        md_warn("server", "recordings_cut", "{s:i}", "count", r);
    else if (r < 0)
        md_error("server", "recording_recover_failed", "{s:s}", "error", md_strerror(r));
    /* Before any connection: sessions cut by an unclean stop end now. */
    r = md_recovery_run(srv);
    if (r < 0)
        goto fail;
    r = md_media_new(cfg, g_main_context_default(), md_sessions_on_media_event, srv, &srv->media);
    if (r < 0) {
        md_error("server", "media_start_failed", "{s:s}", "error", md_strerror(r));
        goto fail;
    }
    r = md_metrics_new(cfg, srv, &srv->metrics);
    if (r < 0)
        goto fail;
    r = md_login_pool_new(cfg->auth.login_workers, cfg->auth.login_queue, &srv->login_pool);
    if (r < 0) {
        md_error("server", "login_pool_failed", "{s:s}", "error", md_strerror(r));
        goto fail;
    }
    /* The auditor's chain check reads the same file on a connection of its
     * own; an in-memory store (tests) cannot be shared and is checked inline. */
    r = md_audit_check_new(cfg->database, cfg->audit.public_key, cfg->audit.signing_key,
                           &srv->audit_check);
    if (r < 0 && r != -EINVAL) {
        md_error("server", "audit_check_failed", "{s:s}", "error", md_strerror(r));
        goto fail;
    }
    refresh_crl(srv);
    static const md_ws_callbacks callbacks = {
        .on_open = on_open,
        .on_message = on_message,
        .on_oversize = on_oversize,
        .on_close = on_close,
        .on_http = on_http,
        .on_cert_refused = on_cert_refused,
    };
    r = md_ws_new(cfg, srv->loop, &callbacks, srv, &srv->ws);
    if (r < 0)
        goto fail;
    r = md_sync_gate_open(srv);
    if (r < 0)
        goto fail;

    srv->tick_timer = g_timeout_add_seconds(1, on_tick, srv);
    srv->crl_timer = g_timeout_add_seconds(24 * 3600, on_crl_timer, srv);
    srv->retention_timer = g_timeout_add_seconds(24 * 3600, on_retention_timer, srv);
    *ret = srv;
    return 0;

fail:
    md_server_free(srv);
    return r;
}

int md_server_run(md_server *srv)
{
    md_server_audit(srv, "system", "gateway_started", NULL, NULL, NULL,
                    json_pack("{s:s}", "version", MD_VERSION));
    md_info("server", "listening", "{s:s, s:i, s:s, s:i, s:s}", "staff_address",
            srv->cfg->staff_listen.address, "staff_port", srv->cfg->staff_listen.port,
            "device_address", srv->cfg->device_listen.address, "device_port",
            srv->cfg->device_listen.port, "url", srv->cfg->public_url);
    /* For the person who started it: where to go (the JSON log has the same). */
    printf("madoguchi is running.\n"
           "  staff login:           %s/\n"
           "  public designations:   %s/designations\n"
           "  tablets connect to:    wss://<this host>:%d/ws (client certificate)\n",
           srv->cfg->public_url, srv->cfg->public_url, srv->cfg->device_listen.port);
    fflush(stdout);
    on_retention_timer(srv); /* once at start, then daily */
    g_main_loop_run(srv->loop);
    md_sessions_shutdown(srv);
    md_session_recording_drain(srv, 5000);
    md_server_audit(srv, "system", "gateway_stopped", NULL, NULL, NULL, NULL);
    return 0;
}

md_server *md_server_free(md_server *srv)
{
    if (!srv)
        return NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(srv->signal_sources); i++)
        if (srv->signal_sources[i])
            g_source_remove(srv->signal_sources[i]);
    if (srv->tick_timer)
        g_source_remove(srv->tick_timer);
    if (srv->crl_timer)
        g_source_remove(srv->crl_timer);
    /* Logins still hashing are answered (or dropped) while the listeners exist. */
    srv->login_pool = md_login_pool_free(srv->login_pool);
    srv->audit_check = md_audit_check_free(srv->audit_check);
    if (srv->retention_timer)
        g_source_remove(srv->retention_timer);
    srv->metrics = md_metrics_free(srv->metrics);
    md_sync_gate_close(srv);
    /* Closing the listeners runs on_close for every party. */
    srv->ws = md_ws_free(srv->ws);
    srv->login_limiter = md_login_limiter_free(srv->login_limiter);
    g_strfreev(srv->staff_origins);
    g_strfreev(srv->device_origins);
    g_hash_table_destroy(srv->sessions);
    srv->media = md_media_free(srv->media);
    srv->evidence = md_evidence_free(srv->evidence);
    md_recovery_clear(srv);
    g_ptr_array_free(srv->parties, TRUE);
    g_hash_table_destroy(srv->device_conns);
    if (srv->playback_tickets)
        g_hash_table_destroy(srv->playback_tickets);
    srv->audit = md_audit_close(srv->audit);
    srv->store = md_store_close(srv->store);
    srv->procedures = md_procedures_free(srv->procedures);
    g_main_loop_unref(srv->loop);
    g_free(srv);
    return NULL;
}
