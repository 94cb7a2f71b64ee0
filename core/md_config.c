/*
 * Configuration loading (see md_config.h).  One table maps each JSON key path
 * to a field, its type and its bounds, so the defaults, the parser and the
 * reference in docs/configuration.md stay in step.
 */
#include "md_config.h"
#include "md_err.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum field_type { F_STRING, F_INT, F_BOOL };

struct field {
    const char *path; /* "tls.cert" */
    enum field_type type;
    size_t offset;
    const char *def_string; /* NULL: derived after loading, see fill_derived() */
    int def_int, min, max;  /* F_BOOL: def_int only */
};

#define S(path, member, def)                                                                       \
    {                                                                                              \
        path, F_STRING, offsetof(md_config, member), def, 0, 0, 0                                  \
    }
#define I(path, member, def, lo, hi)                                                               \
    {                                                                                              \
        path, F_INT, offsetof(md_config, member), NULL, def, lo, hi                                \
    }
#define B(path, member, def)                                                                       \
    {                                                                                              \
        path, F_BOOL, offsetof(md_config, member), NULL, def, 0, 1                                 \
    }

static const struct field fields[] = {
    S("data_dir", data_dir, "var"),
    S("database", database, NULL),
    S("web_root", web_root, MD_WEBROOT),
    B("web.test_pages", web.test_pages, false),
    S("procedures_file", procedures_file, MD_DATADIR "/procedures.json"),
    S("log_level", log_level, "info"),
    S("public_url", public_url, NULL),
    S("device_listen.address", device_listen.address, "0.0.0.0"),
    I("device_listen.port", device_listen.port, 8444, 0, 65535),
    S("staff_listen.address", staff_listen.address, "0.0.0.0"),
    I("staff_listen.port", staff_listen.port, 8443, 0, 65535),
    S("tls.cert", tls.cert, "certs/server.crt"),
    S("tls.key", tls.key, "certs/server.key"),
    S("tls.ca", tls.ca, "certs/ca.crt"),
    S("tls.ca_key", tls.ca_key, "certs/ca.key"),
    S("tls.crl", tls.crl, "certs/ca.crl"),
    S("tls.min_version", tls.min_version, "1.3"),
    I("limits.max_message_bytes", limits.max_message_bytes, 65536, 1024, 16 << 20),
    I("limits.messages_per_second", limits.messages_per_second, 20, 1, 100000),
    I("limits.message_burst", limits.message_burst, 40, 1, 100000),
    I("limits.flood_close_after", limits.flood_close_after, 50, 1, 1000000),
    I("limits.connections_per_device", limits.connections_per_device, 2, 1, 64),
    I("limits.max_connections", limits.max_connections, 1024, 4, 1000000),
    I("limits.http_body_bytes", limits.http_body_bytes, 8192, 256, 1 << 20),
    I("limits.connections_per_source", limits.connections_per_source, 64, 1, 1000000),
    I("limits.handshake_timeout_seconds", limits.handshake_timeout_seconds, 10, 1, 300),
    I("limits.ws_ping_seconds", limits.ws_ping_seconds, 30, 1, 3600),
    I("limits.ws_idle_seconds", limits.ws_idle_seconds, 75, 2, 7200),
    I("limits.staff_sockets_per_account", limits.staff_sockets_per_account, 4, 1, 1000),
    I("auth.lockout_threshold", auth.lockout_threshold, 5, 1, 1000),
    I("auth.lockout_seconds", auth.lockout_seconds, 900, 1, 86400 * 7),
    I("auth.session_ttl_seconds", auth.session_ttl_seconds, 28800, 60, 86400 * 7),
    I("auth.login_per_source_per_minute", auth.login_per_source_per_minute, 20, 1, 100000),
    I("auth.login_per_minute", auth.login_per_minute, 120, 1, 1000000),
    I("auth.login_workers", auth.login_workers, 2, 1, 64),
    I("auth.login_queue", auth.login_queue, 8, 1, 10000),
    S("auth.allowed_origins", auth.allowed_origins, NULL),
    S("audit.signing_key", audit.signing_key, "audit.key"),
    S("audit.public_key", audit.public_key, ""),
    I("audit.checkpoint_every", audit.checkpoint_every, 100, 1, 1000000),
    I("audit.checkpoint_seconds", audit.checkpoint_seconds, 60, 1, 86400),
    I("session.wait_timeout_seconds", session.wait_timeout_seconds, 600, 1, 86400),
    I("session.connect_timeout_seconds", session.connect_timeout_seconds, 60, 1, 3600),
    S("turn.urls", turn.urls, ""),
    S("turn.secret", turn.secret, ""),
    I("turn.ttl_seconds", turn.ttl_seconds, 3600, 60, 86400),
    I("session.rejoin_grace_seconds", session.rejoin_grace_seconds, 20, 1, 3600),
    I("media.workers", media.workers, 0, 0, 256),
    S("media.bind_address", media.bind_address, ""),
    S("media.public_address", media.public_address, ""),
    I("media.port_min", media.port_min, 0, 0, 65535),
    I("media.port_max", media.port_max, 0, 0, 65535),
    B("media.ice_tcp", media.ice_tcp, true),
    I("media.socket_receive_buffer", media.socket_receive_buffer, 1 << 20, 0, 64 << 20),
    I("media.max_sessions", media.max_sessions, 256, 1, 100000),
    I("media.admit_cpu_percent", media.admit_cpu_percent, 85, 10, 100),
    I("media.admit_settling", media.admit_settling, 64, 1, 100000),
    I("media.max_sdp_bytes", media.max_sdp_bytes, 65536, 4096, 262144),
    I("media.max_remote_candidates", media.max_remote_candidates, 32, 1, 256),
    I("media.max_packet_bytes", media.max_packet_bytes, 1500, 576, 1500),
    I("media.nack_buffer_packets", media.nack_buffer_packets, 256, 0, 2048),
    I("media.nack_buffer_min_ms", media.nack_buffer_min_ms, 200, 10, 10000),
    I("media.nack_buffer_max_ms", media.nack_buffer_max_ms, 1000, 10, 10000),
    I("media.dtls_timeout_ms", media.dtls_timeout_ms, 50, 10, 1000),
    I("media.keyframe_interval_ms", media.keyframe_interval_ms, 500, 0, 10000),
    I("media.max_message_size", media.max_message_size, 262144, 16384, 16 << 20),
    I("media.chat_queue_messages", media.chat_queue_messages, 32, 1, 1024),
    I("media.file_queue_files", media.file_queue_files, 8, 1, 64),
    I("media.record_queue_packets", media.record_queue_packets, 1024, 16, 65536),
    S("metrics.address", metrics.address, "127.0.0.1"),
    I("metrics.port", metrics.port, 0, 0, 65535),
    S("evidence.dir", evidence.dir, "evidence"),
    S("evidence.master_key", evidence.master_key, "evidence.key"),
};

#undef S
#undef I
#undef B

static char **string_at(md_config *cfg, const struct field *f)
{
    return (char **)((char *)cfg + f->offset);
}

static int *int_at(md_config *cfg, const struct field *f)
{
    return (int *)((char *)cfg + f->offset);
}

static bool *bool_at(md_config *cfg, const struct field *f)
{
    return (bool *)((char *)cfg + f->offset);
}

static const struct field *find_field(const char *path)
{
    for (size_t i = 0; i < G_N_ELEMENTS(fields); i++)
        if (strcmp(fields[i].path, path) == 0)
            return &fields[i];
    return NULL;
}

/* True when some key lives under "section." (so the section exists). */
static bool is_section(const char *section)
{
    size_t n = strlen(section);
    for (size_t i = 0; i < G_N_ELEMENTS(fields); i++)
        if (strncmp(fields[i].path, section, n) == 0 && fields[i].path[n] == '.')
            return true;
    return false;
}

static int apply_object(md_config *cfg, json_t *obj, const char *prefix, char **ret_error)
{
    const char *key;
    json_t *value;
    json_object_foreach (obj, key, value) {
        char *path = prefix ? g_strdup_printf("%s.%s", prefix, key) : g_strdup(key);
        const struct field *f = find_field(path);
        int r = 0;
        if (!f && json_is_object(value) && !prefix && is_section(key)) {
            r = apply_object(cfg, value, key, ret_error);
        } else if (!f) {
            *ret_error = g_strdup_printf("unknown configuration key \"%s\"", path);
            r = -MD_E_CONFIG;
        } else if (f->type == F_STRING) {
            if (!json_is_string(value)) {
                *ret_error = g_strdup_printf("\"%s\" must be a string", path);
                r = -MD_E_CONFIG;
            } else {
                char **slot = string_at(cfg, f);
                g_free(*slot);
                *slot = g_strdup(json_string_value(value));
            }
        } else if (f->type == F_BOOL) {
            if (!json_is_boolean(value)) {
                *ret_error = g_strdup_printf("\"%s\" must be true or false", path);
                r = -MD_E_CONFIG;
            } else {
                *bool_at(cfg, f) = json_is_true(value);
            }
        } else {
            json_int_t v = json_is_integer(value) ? json_integer_value(value) : INT64_MIN;
            if (v < f->min || v > f->max) {
                *ret_error = g_strdup_printf("\"%s\" must be an integer from %d to %d", path,
                                             f->min, f->max);
                r = -MD_E_CONFIG;
            } else {
                *int_at(cfg, f) = (int)v;
            }
        }
        g_free(path);
        if (r < 0)
            return r;
    }
    return 0;
}

char **md_config_addresses(const char *text)
{
    char **parts = g_strsplit_set(text ? text : "", " ,", -1);
    GPtrArray *out = g_ptr_array_new();
    for (char **p = parts; *p; p++)
        if (**p)
            g_ptr_array_add(out, g_strdup(*p));
    g_ptr_array_add(out, NULL);
    g_strfreev(parts);
    return (char **)g_ptr_array_free(out, FALSE);
}

/* Each address an IP literal (no host or interface names: those would bind
 * whatever they resolve to at the time); none twice. */
static int check_addresses(const char *key, const char *text, bool empty_ok, char **ret_error)
{
    g_auto(GStrv) addresses = md_config_addresses(text);
    if (!addresses[0] && !empty_ok) {
        *ret_error = g_strdup_printf("\"%s\" needs at least one IP address", key);
        return -MD_E_CONFIG;
    }
    for (int i = 0; addresses[i]; i++) {
        GInetAddress *a = g_inet_address_new_from_string(addresses[i]);
        if (!a) {
            *ret_error = g_strdup_printf("\"%s\": \"%s\" is not an IP address", key, addresses[i]);
            return -MD_E_CONFIG;
        }
        g_object_unref(a);
        for (int j = 0; j < i; j++)
            if (strcmp(addresses[i], addresses[j]) == 0) {
                *ret_error = g_strdup_printf("\"%s\": \"%s\" given twice", key, addresses[i]);
                return -MD_E_CONFIG;
            }
    }
    return 0;
}

/* Whether two listen settings could take the same socket address. */
static bool addresses_overlap(const char *a_text, const char *b_text)
{
    g_auto(GStrv) a = md_config_addresses(a_text);
    g_auto(GStrv) b = md_config_addresses(b_text);
    bool overlap = false;
    for (int i = 0; a[i] && !overlap; i++)
        for (int j = 0; b[j] && !overlap; j++) {
            GInetAddress *x = g_inet_address_new_from_string(a[i]);
            GInetAddress *y = g_inet_address_new_from_string(b[j]);
            if (x && y && g_inet_address_get_family(x) == g_inet_address_get_family(y))
                overlap = g_inet_address_equal(x, y) || g_inet_address_get_is_any(x) ||
                          g_inet_address_get_is_any(y);
            if (x)
                g_object_unref(x);
            if (y)
                g_object_unref(y);
        }
    return overlap;
}

char *md_config_path(const md_config *cfg, const char *rel)
{
    if (g_path_is_absolute(rel))
        return g_strdup(rel);
    return g_build_filename(cfg->data_dir, rel, NULL);
}

static bool is_raw_key(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isxdigit(s[i]))
            return false;
    return n == 64;
}

static void resolve(md_config *cfg, char **slot)
{
    char *abs = md_config_path(cfg, *slot);
    g_free(*slot);
    *slot = abs;
}

int md_config_load(const char *path, md_config *ret, char **ret_error)
{
    md_config cfg = {0};
    char *error = NULL;
    int r = 0;

    for (size_t i = 0; i < G_N_ELEMENTS(fields); i++) {
        if (fields[i].type == F_STRING)
            *string_at(&cfg, &fields[i]) = g_strdup(fields[i].def_string);
        else if (fields[i].type == F_BOOL)
            *bool_at(&cfg, &fields[i]) = fields[i].def_int != 0;
        else
            *int_at(&cfg, &fields[i]) = fields[i].def_int;
    }

    if (path) {
        json_error_t jerr;
        json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc) {
            error = g_strdup_printf("%s:%d: %s", path, jerr.line, jerr.text);
            r = -MD_E_CONFIG;
        } else {
            r = json_is_object(doc) ? apply_object(&cfg, doc, NULL, &error) : -MD_E_CONFIG;
            if (r < 0 && !error)
                error = g_strdup("configuration must be a JSON object");
            json_decref(doc);
        }
    }
    if (r == 0 &&
        !(strcmp(cfg.tls.min_version, "1.2") == 0 || strcmp(cfg.tls.min_version, "1.3") == 0)) {
        error = g_strdup("\"tls.min_version\" must be \"1.2\" or \"1.3\"");
        r = -MD_E_CONFIG;
    }
    /* The two listeners are separate sockets with separate TLS policies (one
     * asks for client certificates): one port cannot serve both. */
    if (r == 0)
        r = check_addresses("staff_listen.address", cfg.staff_listen.address, false, &error);
    if (r == 0)
        r = check_addresses("device_listen.address", cfg.device_listen.address, false, &error);
    if (r == 0)
        r = check_addresses("media.bind_address", cfg.media.bind_address, true, &error);
    if (r == 0 && strpbrk(g_strstrip(cfg.media.bind_address), " ,")) {
        error = g_strdup("\"media.bind_address\" takes one IP address");
        r = -MD_E_CONFIG;
    }
    if (r == 0 && cfg.media.nack_buffer_min_ms > cfg.media.nack_buffer_max_ms) {
        error =
            g_strdup("\"media.nack_buffer_min_ms\" must not exceed \"media.nack_buffer_max_ms\"");
        r = -MD_E_CONFIG;
    }
    if (r == 0 && cfg.limits.ws_idle_seconds <= cfg.limits.ws_ping_seconds) {
        error =
            g_strdup("\"limits.ws_idle_seconds\" must be longer than \"limits.ws_ping_seconds\"");
        r = -MD_E_CONFIG;
    }
    if (r == 0 && cfg.device_listen.port && cfg.device_listen.port == cfg.staff_listen.port &&
        addresses_overlap(cfg.device_listen.address, cfg.staff_listen.address)) {
        error = g_strdup("\"device_listen\" and \"staff_listen\" must not share a port");
        r = -MD_E_CONFIG;
    }
    if (r < 0) {
        md_config_clear(&cfg);
        if (ret_error)
            *ret_error = error;
        else
            g_free(error);
        return r;
    }

    if (!cfg.database)
        cfg.database = g_build_filename(cfg.data_dir, "madoguchi.db", NULL);
    resolve(&cfg, &cfg.tls.cert);
    resolve(&cfg, &cfg.tls.key);
    resolve(&cfg, &cfg.tls.ca);
    resolve(&cfg, &cfg.tls.ca_key);
    resolve(&cfg, &cfg.tls.crl);
    resolve(&cfg, &cfg.audit.signing_key);
    /* A pinned key is either the raw key (64 hex characters) or a path. */
    if (*cfg.audit.public_key && !is_raw_key(cfg.audit.public_key))
        resolve(&cfg, &cfg.audit.public_key);
    resolve(&cfg, &cfg.evidence.dir);
    resolve(&cfg, &cfg.evidence.master_key);
    if (!cfg.public_url)
        cfg.public_url = g_strdup_printf("https://localhost:%d", cfg.staff_listen.port);
    if (!cfg.auth.allowed_origins)
        cfg.auth.allowed_origins = g_strdup(cfg.public_url);
    *ret = cfg;
    return 0;
}

void md_config_clear(md_config *cfg)
{
    for (size_t i = 0; i < G_N_ELEMENTS(fields); i++)
        if (fields[i].type == F_STRING)
            g_clear_pointer(string_at(cfg, &fields[i]), g_free);
    memset(cfg, 0, sizeof(*cfg));
}

const char *md_config_key(size_t i)
{
    return i < G_N_ELEMENTS(fields) ? fields[i].path : NULL;
}
