/*
 * Prometheus metrics: counters fed by the control thread's hooks, gauges
 * read from the server at scrape time, and a small plain-HTTP listener that
 * answers `GET /metrics` (see md_metrics.h).  The listener reads one request
 * head of at most REQUEST_MAX bytes within READ_TIMEOUT_S, answers and
 * closes; at most MAX_CONNECTIONS at once, more are closed on arrival.
 */
#include "md_metrics.h"

#include "md_err.h"
#include "md_log.h"
#include "md_server_private.h"
#include "md_time.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <string.h>

#define REQUEST_MAX 2048
#define READ_TIMEOUT_S 5
#define MAX_CONNECTIONS 16

/* Cumulative per-leg counters as the media plane reports them
 * (docs/internals/media.md, "counters"); deltas are added to the totals. */
static const char *const leg_counters[] = {
    "packets_in",         "packets_out",       "bytes_in",
    "bytes_out",          "dropped_malformed", "dropped_oversize",
    "dropped_unknown_pt", "dropped_srtp",      "dropped_not_ready",
};
#define N_LEG_COUNTERS G_N_ELEMENTS(leg_counters)

struct md_metrics {
    md_server *srv;
    GSocketService *service;
    int port;
    int connections;
    GHashTable *last;     /* "session/leg" -> uint64_t[N_LEG_COUNTERS] */
    GHashTable *failures; /* error code name -> count (GUINT_TO_POINTER) */
    uint64_t totals[N_LEG_COUNTERS];
    uint64_t logins, login_failures, lockouts;
    uint64_t audit_appends, audit_failures;
    double audit_seconds_sum, audit_seconds_max;
};

/* ---- hooks ---- */

void md_metrics_media_event(md_metrics *m, const md_media_event *ev)
{
    if (!m || !ev->session_id)
        return;
    if (ev->type == MD_MEDIA_LEG_FAILED) {
        const char *code = md_err_code(ev->error);
        gpointer n = g_hash_table_lookup(m->failures, code);
        g_hash_table_insert(m->failures, (gpointer)code, GUINT_TO_POINTER(GPOINTER_TO_UINT(n) + 1));
        return;
    }
    json_t *counters = ev->type == MD_MEDIA_QUALITY ? json_object_get(ev->stats, "counters") : NULL;
    if (!json_is_object(counters))
        return;
    char *key = g_strdup_printf("%s/%s", ev->session_id, md_leg_name(ev->leg));
    uint64_t *last = g_hash_table_lookup(m->last, key);
    if (!last) {
        last = g_new0(uint64_t, N_LEG_COUNTERS);
        g_hash_table_insert(m->last, key, last);
    } else {
        g_free(key);
    }
    for (size_t i = 0; i < N_LEG_COUNTERS; i++) {
        json_t *v = json_object_get(counters, leg_counters[i]);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            continue;
        uint64_t now = (uint64_t)json_integer_value(v);
        /* A leg that restarted (new PeerConnection) counts from zero again. */
        m->totals[i] += now >= last[i] ? now - last[i] : now;
        last[i] = now;
    }
}

/* Forgets the last counters of legs whose session has finished. */
static gboolean leg_finished(gpointer key, gpointer value, gpointer data)
{
    md_server *srv = data;
    g_autofree char *session = g_strdup(key);
    char *slash = strchr(session, '/');
    if (slash)
        *slash = '\0';
    return !g_hash_table_contains(srv->sessions, session);
}

void md_metrics_login(md_metrics *m, int result)
{
    if (!m)
        return;
    if (result >= 0)
        m->logins++;
    else if (result == -MD_E_LOCKED || result == -MD_E_RATE_LIMITED)
        m->lockouts++; /* accounts no longer lock: the login throttle's 429s */
    else if (result == -MD_E_CREDENTIALS || result == -MD_E_TOTP)
        m->login_failures++;
}

void md_metrics_audit_append(md_metrics *m, int64_t duration_us, bool ok)
{
    if (!m)
        return;
    double s = (double)duration_us / 1e6;
    m->audit_appends++;
    if (!ok)
        m->audit_failures++;
    m->audit_seconds_sum += s;
    if (s > m->audit_seconds_max)
        m->audit_seconds_max = s;
}

/* ---- exposition ---- */

static void family(GString *out, const char *name, const char *type, const char *help)
{
    g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values here are registry codes and fixed names; escape anyway
 * (exposition format: backslash, quote, newline). */
static void label_value(GString *out, const char *v)
{
    for (const char *c = v ? v : ""; *c; c++) {
        if (*c == '\\' || *c == '"')
            g_string_append_c(out, '\\');
        if (*c == '\n') {
            g_string_append(out, "\\n");
            continue;
        }
        g_string_append_c(out, *c);
    }
}

static int64_t dir_bytes(const char *path, int depth)
{
    GDir *d = depth < 4 ? g_dir_open(path, 0, NULL) : NULL;
    int64_t total = 0;
    const char *name;
    if (!d)
        return 0;
    while ((name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(path, name, NULL);
        GStatBuf st;
        if (g_lstat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            total += dir_bytes(p, depth + 1);
        else if (S_ISREG(st.st_mode))
            total += st.st_size;
    }
    g_dir_close(d);
    return total;
}

struct queue_stat {
    int64_t length;
    int64_t longest_ms;
};

static char *render(md_metrics *m)
{
    static const char *const state_names[] = {"requested", "assigned", "connecting", "live"};
    md_server *srv = m->srv;
    GString *out = g_string_new(NULL);
    int64_t by_state[G_N_ELEMENTS(state_names)] = {0};
    g_autoptr(GHashTable) queues = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    int64_t now = md_monotonic_ms();
    GHashTableIter it;
    gpointer k, v;

    g_hash_table_foreach_remove(m->last, leg_finished, srv);
    g_hash_table_iter_init(&it, srv->sessions);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        md_session *s = v;
        if ((size_t)s->state < G_N_ELEMENTS(state_names))
            by_state[s->state]++;
        if (s->state != MD_STATE_REQUESTED)
            continue;
        struct queue_stat *q = g_hash_table_lookup(queues, s->municipality);
        if (!q) {
            q = g_new0(struct queue_stat, 1);
            g_hash_table_insert(queues, s->municipality, q);
        }
        q->length++;
        if (now - s->requested_mono_ms > q->longest_ms)
            q->longest_ms = now - s->requested_mono_ms;
    }
    family(out, "madoguchi_sessions", "gauge", "Unfinished verification sessions by state.");
    for (size_t i = 0; i < G_N_ELEMENTS(state_names); i++)
        g_string_append_printf(out, "madoguchi_sessions{state=\"%s\"} %" PRId64 "\n",
                               state_names[i], by_state[i]);

    family(out, "madoguchi_queue_length", "gauge", "Requests waiting for a verifier.");
    g_hash_table_iter_init(&it, queues);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        g_string_append(out, "madoguchi_queue_length{municipality=\"");
        label_value(out, k);
        g_string_append_printf(out, "\"} %" PRId64 "\n", ((struct queue_stat *)v)->length);
    }
    family(out, "madoguchi_queue_longest_wait_seconds", "gauge",
           "Wait of the oldest request in the queue.");
    g_hash_table_iter_init(&it, queues);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        g_string_append(out, "madoguchi_queue_longest_wait_seconds{municipality=\"");
        label_value(out, k);
        g_string_append_printf(out, "\"} %.3f\n", ((struct queue_stat *)v)->longest_ms / 1000.0);
    }

    family(out, "madoguchi_relayed_packets_total", "counter",
           "RTP/RTCP packets received from (in) and sent to (out) participants.");
    g_string_append_printf(out, "madoguchi_relayed_packets_total{direction=\"in\"} %" PRIu64 "\n",
                           m->totals[0]);
    g_string_append_printf(out, "madoguchi_relayed_packets_total{direction=\"out\"} %" PRIu64 "\n",
                           m->totals[1]);
    family(out, "madoguchi_relayed_bytes_total", "counter", "Bytes of those packets.");
    g_string_append_printf(out, "madoguchi_relayed_bytes_total{direction=\"in\"} %" PRIu64 "\n",
                           m->totals[2]);
    g_string_append_printf(out, "madoguchi_relayed_bytes_total{direction=\"out\"} %" PRIu64 "\n",
                           m->totals[3]);
    family(out, "madoguchi_dropped_packets_total", "counter",
           "Packets dropped by the media plane, by reason.");
    for (size_t i = 4; i < N_LEG_COUNTERS; i++)
        g_string_append_printf(out, "madoguchi_dropped_packets_total{reason=\"%s\"} %" PRIu64 "\n",
                               leg_counters[i] + strlen("dropped_"), m->totals[i]);
    if (srv->media) {
        family(
            out, "madoguchi_media_worker_load", "gauge",
            "CPU time of each media worker thread over the last second, as a share of one core.");
        for (unsigned i = 0; i < md_media_workers(srv->media); i++)
            g_string_append_printf(out, "madoguchi_media_worker_load{worker=\"%u\"} %.3f\n", i,
                                   md_media_worker_load_permille(srv->media, i) / 1000.0);
        family(out, "madoguchi_process_cpu_load", "gauge",
               "The gateway's CPU time over the last second, as a share of the CPUs it may use.");
        g_string_append_printf(out, "madoguchi_process_cpu_load %.3f\n",
                               md_media_process_load_permille(srv->media) / 1000.0);
        family(out, "madoguchi_media_admission_refused_total", "counter",
               "Sessions the media plane did not admit (media_capacity).");
        g_string_append_printf(out, "madoguchi_media_admission_refused_total %" PRIu64 "\n",
                               md_media_admission_refusals(srv->media));
    }
    family(out, "madoguchi_media_failures_total", "counter",
           "Legs that failed (ice_failed, dtls_failed, ...).");
    static const char *const usual[] = {"ice_failed", "dtls_failed"};
    for (size_t i = 0; i < G_N_ELEMENTS(usual); i++)
        if (!g_hash_table_contains(m->failures, usual[i]))
            g_string_append_printf(out, "madoguchi_media_failures_total{code=\"%s\"} 0\n",
                                   usual[i]);
    g_hash_table_iter_init(&it, m->failures);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_string_append_printf(out, "madoguchi_media_failures_total{code=\"%s\"} %u\n",
                               (const char *)k, GPOINTER_TO_UINT(v));

    family(out, "madoguchi_logins_total", "counter", "Successful staff logins.");
    g_string_append_printf(out, "madoguchi_logins_total %" PRIu64 "\n", m->logins);
    family(out, "madoguchi_login_failures_total", "counter",
           "Staff logins refused for a wrong password or one-time code.");
    g_string_append_printf(out, "madoguchi_login_failures_total %" PRIu64 "\n", m->login_failures);
    family(out, "madoguchi_login_lockouts_total", "counter",
           "Staff logins refused by the login throttle (429) before any hashing.");
    g_string_append_printf(out, "madoguchi_login_lockouts_total %" PRIu64 "\n", m->lockouts);

    family(out, "madoguchi_audit_append_seconds", "summary",
           "Time to append and commit one audit entry.");
    g_string_append_printf(out, "madoguchi_audit_append_seconds_sum %.6f\n", m->audit_seconds_sum);
    g_string_append_printf(out, "madoguchi_audit_append_seconds_count %" PRIu64 "\n",
                           m->audit_appends);
    family(out, "madoguchi_audit_append_seconds_max", "gauge", "Longest audit append since start.");
    g_string_append_printf(out, "madoguchi_audit_append_seconds_max %.6f\n", m->audit_seconds_max);
    family(out, "madoguchi_audit_append_failures_total", "counter",
           "Audit appends that failed (the action was refused).");
    g_string_append_printf(out, "madoguchi_audit_append_failures_total %" PRIu64 "\n",
                           m->audit_failures);

    family(out, "madoguchi_evidence_store_bytes", "gauge",
           "Bytes of encrypted evidence (files, stills, transcripts) on disk.");
    g_string_append_printf(out, "madoguchi_evidence_store_bytes %" PRId64 "\n",
                           dir_bytes(srv->cfg->evidence.dir, 0));
    return g_string_free(out, FALSE);
}

/* ---- the listener ---- */

typedef struct metrics_conn {
    md_metrics *m;
    GSocketConnection *conn;
    GCancellable *cancel;
    guint timeout;
    char buf[REQUEST_MAX];
    size_t len;
    char *reply;
} metrics_conn;

static void conn_free(metrics_conn *c)
{
    if (c->timeout)
        g_source_remove(c->timeout);
    g_io_stream_close(G_IO_STREAM(c->conn), NULL, NULL);
    g_object_unref(c->conn);
    g_object_unref(c->cancel);
    g_free(c->reply);
    c->m->connections--;
    g_free(c);
}

static gboolean on_timeout(gpointer data)
{
    metrics_conn *c = data;
    c->timeout = 0;
    g_cancellable_cancel(c->cancel);
    return G_SOURCE_REMOVE;
}

static void on_written(GObject *src, GAsyncResult *res, gpointer data)
{
    g_output_stream_write_all_finish(G_OUTPUT_STREAM(src), res, NULL, NULL);
    conn_free(data);
}

static void respond(metrics_conn *c, const char *status, const char *type, char *body)
{
    c->reply = g_strdup_printf("HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                               "Connection: close\r\nCache-Control: no-store\r\n\r\n%s",
                               status, type, strlen(body), body);
    g_free(body);
    GOutputStream *os = g_io_stream_get_output_stream(G_IO_STREAM(c->conn));
    g_output_stream_write_all_async(os, c->reply, strlen(c->reply), G_PRIORITY_DEFAULT, c->cancel,
                                    on_written, c);
}

static void on_read(GObject *src, GAsyncResult *res, gpointer data)
{
    metrics_conn *c = data;
    gssize n = g_input_stream_read_finish(G_INPUT_STREAM(src), res, NULL);
    if (n <= 0) {
        conn_free(c);
        return;
    }
    c->len += (size_t)n;
    bool complete = g_strstr_len(c->buf, (gssize)c->len, "\r\n\r\n") ||
                    g_strstr_len(c->buf, (gssize)c->len, "\n\n");
    if (!complete && c->len < sizeof(c->buf)) {
        g_input_stream_read_async(G_INPUT_STREAM(src), c->buf + c->len, sizeof(c->buf) - c->len,
                                  G_PRIORITY_DEFAULT, c->cancel, on_read, c);
        return;
    }
    if (c->timeout) {
        g_source_remove(c->timeout);
        c->timeout = 0;
    }
    if (!complete) {
        respond(c, "431 Request Header Fields Too Large", "text/plain", g_strdup("too large\n"));
        return;
    }
    bool metrics = c->len > 13 && (strncmp(c->buf, "GET /metrics ", 13) == 0 ||
                                   strncmp(c->buf, "GET /metrics?", 13) == 0);
    if (metrics)
        respond(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8", render(c->m));
    else
        respond(c, "404 Not Found", "text/plain", g_strdup("GET /metrics\n"));
}

static gboolean on_incoming(GSocketService *service, GSocketConnection *conn, GObject *source,
                            gpointer data)
{
    md_metrics *m = data;
    if (m->connections >= MAX_CONNECTIONS)
        return FALSE; /* not taken: GIO closes it */
    metrics_conn *c = g_new0(metrics_conn, 1);
    c->m = m;
    c->conn = g_object_ref(conn);
    c->cancel = g_cancellable_new();
    c->timeout = g_timeout_add_seconds(READ_TIMEOUT_S, on_timeout, c);
    m->connections++;
    GInputStream *is = g_io_stream_get_input_stream(G_IO_STREAM(conn));
    g_input_stream_read_async(is, c->buf, sizeof(c->buf), G_PRIORITY_DEFAULT, c->cancel, on_read,
                              c);
    return TRUE;
}

int md_metrics_new(const md_config *cfg, md_server *srv, md_metrics **ret)
{
    md_metrics *m = g_new0(md_metrics, 1);
    m->srv = srv;
    m->last = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    m->failures = g_hash_table_new(g_str_hash, g_str_equal);
    if (cfg->metrics.port > 0) {
        g_autoptr(GError) err = NULL;
        g_autoptr(GInetAddress) ip = g_inet_address_new_from_string(cfg->metrics.address);
        if (!ip) {
            md_error("metrics", "address_invalid", "{s:s}", "address", cfg->metrics.address);
            md_metrics_free(m);
            return -MD_E_CONFIG;
        }
        g_autoptr(GSocketAddress) addr = g_inet_socket_address_new(ip, (guint16)cfg->metrics.port);
        m->service = g_socket_service_new();
        if (!g_socket_listener_add_address(G_SOCKET_LISTENER(m->service), addr,
                                           G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, NULL,
                                           &err)) {
            md_error("metrics", "listen_failed", "{s:s, s:i, s:s}", "address", cfg->metrics.address,
                     "port", cfg->metrics.port, "error", err->message);
            md_metrics_free(m);
            return -EADDRINUSE;
        }
        m->port = cfg->metrics.port;
        g_signal_connect(m->service, "incoming", G_CALLBACK(on_incoming), m);
        g_socket_service_start(m->service);
        md_info("metrics", "listening", "{s:s, s:i}", "address", cfg->metrics.address, "port",
                m->port);
    }
    *ret = m;
    return 0;
}

md_metrics *md_metrics_free(md_metrics *m)
{
    if (!m)
        return NULL;
    if (m->service) {
        g_socket_service_stop(m->service);
        g_socket_listener_close(G_SOCKET_LISTENER(m->service));
        g_signal_handlers_disconnect_by_data(m->service, m);
        g_object_unref(m->service);
    }
    g_hash_table_destroy(m->last);
    g_hash_table_destroy(m->failures);
    g_free(m);
    return NULL;
}

int md_metrics_port(const md_metrics *m)
{
    return m ? m->port : 0;
}
