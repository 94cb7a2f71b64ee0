/*
 * libwebsockets adapter (see md_ws.h).
 *
 * One lws context on the GLib main loop with two explicit vhosts: the device
 * listener asks for a client certificate and verifies it against the
 * deployment CA and CRL; the staff listener serves HTTPS and the staff
 * WebSocket.  HTTP/2 is not offered (ALPN http/1.1) so every response is a
 * plain header+body write and WebSockets are always RFC 6455 upgrades.
 *
 * Per connection we keep a bounded receive buffer (one message, at most
 * limits.max_message_bytes) and a bounded send queue; lws may only write from
 * the WRITEABLE callbacks, so md_conn_send() queues and asks for one.
 * Everything queued carries the hold in force when it was queued
 * (md_ws_hold); a WRITEABLE callback whose next write is still held parks
 * the connection, and md_ws_release() wakes the parked ones.
 * Everything runs on the control thread.
 */
#include "md_ws.h"
#include "md_certs_tls.h"
#include "md_err.h"
#include "md_http_range.h"
#include "md_log.h"

#include <errno.h>
#include <gio/gio.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#define PROTOCOL_NAME "madoguchi.v1"
/* RFC 6265bis 4.1.3.2: a "__Host-" cookie is only accepted with Secure,
 * Path=/ and no Domain, so a sibling host cannot plant or shadow it. */
#define COOKIE_NAME MD_SESSION_COOKIE
#define SEND_QUEUE_FACTOR 8 /* queued bytes cap = factor * max_message_bytes */

struct md_ws {
    const md_config *cfg;
    md_ws_callbacks cb;
    void *ud;
    struct lws_context *context;
    GPtrArray *vhosts[2];    /* struct lws_vhost *, one per configured address */
    GPtrArray *names;        /* vhost names and addresses lws points into (g_free) */
    GHashTable *per_source;  /* peer address -> GINT open connections */
    GHashTable *conn_source; /* struct lws * -> peer address (key of per_source) */
    lws_retry_bo_t idle_policy;
    GHashTable *deferred; /* ticket (guint64 *) -> md_conn * answering later */
    guint64 next_ticket;
    void *device_ssl_ctx;    /* SSL_CTX owned by lws; kept to reload the CRL */
    uint64_t hold, released; /* md_ws_hold / md_ws_release */
    GPtrArray *parked;       /* md_conn * whose next write waits for a release */
};

/* Outgoing message with LWS_PRE bytes of headroom for the frame header.
 * key != 0 marks a state snapshot that a newer one with the same key replaces
 * while it waits (see md_conn_send_latest). */
struct out_msg {
    int key;
    uint64_t hold; /* written once released >= hold */
    size_t len;
    unsigned char buf[];
};

/* One connection: lws allocates it as per-session user data (zeroed). */
struct md_conn {
    md_ws *ws;
    struct lws *wsi;
    md_conn_info info;
    void *user;
    bool is_ws;   /* upgraded (vs. plain HTTP) */
    bool opened;  /* on_open accepted it */
    bool closing; /* close once the queue is flushed */
    bool parked;  /* in ws->parked */
    uint64_t close_hold, resp_hold;
    int close_status;
    char close_reason[64];
    GString *rx; /* current incoming message */
    bool rx_dropping;
    GQueue tx; /* struct out_msg * */
    size_t tx_bytes;
    /* HTTP exchange */
    char *http_method;
    char *http_path;
    char *http_query;
    GString *http_body;
    bool http_body_too_large;
    md_http_response resp;
    bool resp_ready;
    char *http_range;          /* Range header of the request */
    uint64_t src_off, src_end; /* resp.source: next byte to send, end (exclusive) */
    bool src_started;          /* resp.source: headers sent */
    guint64 ticket;            /* != 0: the handler answers later (md_ws_http_respond) */
};

void md_http_response_clear(md_http_response *resp)
{
    g_free(resp->body);
    g_free(resp->set_cookie);
    g_free(resp->disposition);
    g_free(resp->file);
    if (resp->source) {
        if (resp->source->free)
            resp->source->free(resp->source->ud);
        g_free(resp->source);
    }
    memset(resp, 0, sizeof(*resp));
}

static md_ws *ws_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

static md_listener listener_of(struct lws *wsi)
{
    return g_str_has_prefix(lws_get_vhost_name(lws_get_vhost(wsi)), "device") ? MD_LISTENER_DEVICE
                                                                              : MD_LISTENER_STAFF;
}

static char *copy_header(struct lws *wsi, enum lws_token_indexes h)
{
    int n = lws_hdr_total_length(wsi, h);
    if (n <= 0 || n > 8192)
        return NULL;
    char *s = g_malloc(n + 1);
    if (lws_hdr_copy(wsi, s, n + 1, h) < 0) {
        g_free(s);
        return NULL;
    }
    return s;
}

/* Value of our cookie in a Cookie header (RFC 6265 5.4: "a=b; c=d"). */
static char *cookie_value(const char *header)
{
    if (!header)
        return NULL;
    char **parts = g_strsplit(header, ";", 64);
    char *found = NULL;
    for (char **p = parts; *p && !found; p++) {
        const char *kv = *p;
        while (*kv == ' ')
            kv++;
        if (g_str_has_prefix(kv, COOKIE_NAME "=") && kv[sizeof(COOKIE_NAME)] != '\0')
            found = g_strdup(kv + sizeof(COOKIE_NAME));
    }
    g_strfreev(parts);
    return found;
}

/* The peer's address, with IPv4-mapped IPv6 (RFC 4291 2.5.5.2) shown as IPv4
 * so that policies written as IPv4 networks match. */
static void unmap_ipv4(char *buf)
{
    if (g_str_has_prefix(buf, "::ffff:") && strchr(buf, '.'))
        memmove(buf, buf + 7, strlen(buf + 7) + 1);
}

static void peer_address(struct lws *wsi, char *buf, size_t len)
{
    buf[0] = '\0';
    lws_get_peer_simple(wsi, buf, len);
    unmap_ipv4(buf);
}

static void fill_peer(struct lws *wsi, md_conn *c)
{
    c->info.listener = listener_of(wsi);
    peer_address(wsi, c->info.remote, sizeof(c->info.remote));
    char *cookie = copy_header(wsi, WSI_TOKEN_HTTP_COOKIE);
    c->info.session_cookie = cookie_value(cookie);
    g_free(cookie);
    c->info.origin = copy_header(wsi, WSI_TOKEN_ORIGIN);
    c->info.host = copy_header(wsi, WSI_TOKEN_HOST);

    md_certs_tls_peer peer;
    if (md_certs_tls_peer_read(lws_get_ssl(wsi), &peer) < 0)
        return;
    g_strlcpy(c->info.tls_version, peer.tls_version, sizeof(c->info.tls_version));
    c->info.has_peer_cert = peer.has_cert;
    c->info.cert_device_id = peer.device_id;
    c->info.cert_post_office = peer.post_office;
    c->info.cert_serial = peer.serial;
    g_strlcpy(c->info.cert_sha256, peer.sha256, sizeof(c->info.cert_sha256));
}

static void forget_ticket(md_conn *c)
{
    if (c->ticket && c->ws)
        g_hash_table_remove(c->ws->deferred, &c->ticket);
    c->ticket = 0;
}

/* Forgets one HTTP exchange: keep-alive connections carry several. */
static void http_reset(md_conn *c)
{
    forget_ticket(c);
    g_clear_pointer(&c->http_method, g_free);
    g_clear_pointer(&c->http_path, g_free);
    g_clear_pointer(&c->http_query, g_free);
    if (c->http_body)
        g_string_free(c->http_body, TRUE);
    c->http_body = NULL;
    c->http_body_too_large = false;
    g_clear_pointer(&c->http_range, g_free);
    md_http_response_clear(&c->resp);
    c->src_off = c->src_end = 0;
    c->src_started = false;
    c->resp_ready = false;
}

static void unpark(md_conn *c)
{
    if (c->parked)
        g_ptr_array_remove_fast(c->ws->parked, c);
    c->parked = false;
}

/* Whether what was queued under `hold` may be written now; otherwise the
 * connection waits, parked, for md_ws_release(). */
static bool released(md_conn *c, uint64_t hold)
{
    if (hold <= c->ws->released)
        return true;
    if (!c->parked) {
        c->parked = true;
        g_ptr_array_add(c->ws->parked, c);
    }
    return false;
}

void md_ws_hold(md_ws *ws, uint64_t seq)
{
    if (seq > ws->hold)
        ws->hold = seq;
}

void md_ws_release(md_ws *ws, uint64_t upto)
{
    if (upto <= ws->released)
        return;
    ws->released = upto;
    GPtrArray *parked = ws->parked;
    ws->parked = g_ptr_array_new();
    for (guint i = 0; i < parked->len; i++) {
        md_conn *c = parked->pdata[i];
        c->parked = false;
        lws_callback_on_writable(c->wsi);
    }
    g_ptr_array_free(parked, TRUE);
}

static void conn_clear(md_conn *c)
{
    unpark(c);
    g_clear_pointer(&c->info.cert_device_id, g_free);
    g_clear_pointer(&c->info.cert_post_office, g_free);
    g_clear_pointer(&c->info.cert_serial, free);
    g_clear_pointer(&c->info.session_cookie, g_free);
    g_clear_pointer(&c->info.origin, g_free);
    g_clear_pointer(&c->info.host, g_free);
    if (c->rx)
        g_string_free(c->rx, TRUE);
    c->rx = NULL;
    struct out_msg *m;
    while ((m = g_queue_pop_head(&c->tx)))
        g_free(m);
    c->tx_bytes = 0;
    http_reset(c);
}

static int send_keyed(md_conn *c, int key, const char *text, size_t len);

static struct out_msg *out_msg_new(md_conn *c, int key, const char *text, size_t len)
{
    struct out_msg *m = g_malloc(sizeof(*m) + LWS_PRE + len);
    m->key = key;
    m->hold = c->ws->hold;
    m->len = len;
    memcpy(m->buf + LWS_PRE, text, len);
    return m;
}

int md_conn_send_latest(md_conn *c, int key, const char *text, size_t len)
{
    if (c->closing)
        return -EPIPE;
    for (GList *l = c->tx.head; l; l = l->next) {
        struct out_msg *old = l->data;
        if (old->key != key)
            continue;
        /* Not sent yet: the newer state replaces it in place. */
        c->tx_bytes = c->tx_bytes - old->len + len;
        l->data = out_msg_new(c, key, text, len);
        g_free(old);
        return 0;
    }
    return send_keyed(c, key, text, len);
}

int md_conn_send(md_conn *c, const char *text, size_t len)
{
    return send_keyed(c, 0, text, len);
}

static int send_keyed(md_conn *c, int key, const char *text, size_t len)
{
    if (c->closing)
        return -EPIPE;
    size_t cap = (size_t)c->ws->cfg->limits.max_message_bytes * SEND_QUEUE_FACTOR;
    if (c->tx_bytes + len > cap) {
        md_warn("ws", "send_queue_full", "{s:s, s:i}", "remote", c->info.remote, "bytes",
                (int)c->tx_bytes);
        md_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "send queue full");
        return -ENOBUFS;
    }
    g_queue_push_tail(&c->tx, out_msg_new(c, key, text, len));
    c->tx_bytes += len;
    lws_callback_on_writable(c->wsi);
    return 0;
}

void md_conn_close(md_conn *c, int ws_status, const char *reason)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_hold = c->ws->hold;
    c->close_status = ws_status;
    g_strlcpy(c->close_reason, reason ? reason : "", sizeof(c->close_reason));
    lws_callback_on_writable(c->wsi);
}

const md_conn_info *md_conn_get_info(const md_conn *c)
{
    return &c->info;
}

void md_conn_set_user(md_conn *c, void *user)
{
    c->user = user;
}

void *md_conn_get_user(const md_conn *c)
{
    return c->user;
}

/* ---- WebSocket ---- */

static int on_ws_established(struct lws *wsi, md_conn *c)
{
    md_ws *ws = ws_of(wsi);
    c->ws = ws;
    c->wsi = wsi;
    c->is_ws = true;
    g_queue_init(&c->tx);
    c->rx = g_string_sized_new(256);
    fill_peer(wsi, c);
    int r = ws->cb.on_open(c, ws->ud);
    if (r < 0) {
        /* on_open has queued an error message; flush it, then close. */
        md_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, md_err_code(r));
        return 0;
    }
    c->opened = true;
    return 0;
}

#define DRAIN_TIMEOUT_S 5

static int on_ws_receive(struct lws *wsi, md_conn *c, const char *in, size_t len)
{
    md_ws *ws = c->ws;
    bool last = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    if (c->rx_dropping) {
        /* Read the rest of the oversized message before closing: closing
         * with unread input makes the kernel reset the connection, which
         * would destroy our error reply before the client reads it. */
        if (last)
            md_conn_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too large");
        return 0;
    }
    if (c->closing)
        return 0;
    if (c->rx->len + len > (size_t)ws->cfg->limits.max_message_bytes) {
        c->rx_dropping = true;
        g_string_truncate(c->rx, 0);
        if (c->opened)
            ws->cb.on_oversize(c, ws->ud);
        /* A message that never ends cannot keep the socket. */
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, DRAIN_TIMEOUT_S);
        if (last)
            md_conn_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too large");
        return 0;
    }
    g_string_append_len(c->rx, in, (gssize)len);
    if (!last)
        return 0;
    if (c->opened)
        ws->cb.on_message(c, c->rx->str, c->rx->len, ws->ud);
    g_string_truncate(c->rx, 0);
    return 0;
}

static int on_ws_writeable(struct lws *wsi, md_conn *c)
{
    struct out_msg *m = g_queue_peek_head(&c->tx);
    if (m && !released(c, m->hold))
        return 0;
    m = g_queue_pop_head(&c->tx);
    if (m) {
        c->tx_bytes -= m->len;
        int n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
        g_free(m);
        if (n < 0)
            return -1;
        if (!g_queue_is_empty(&c->tx) || c->closing)
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (c->closing) {
        if (!released(c, c->close_hold))
            return 0;
        lws_close_reason(wsi, (enum lws_close_status)c->close_status,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    return 0;
}

/* ---- HTTP ---- */

static const char *const security_headers[][2] = {
    {"x-content-type-options:", "nosniff"},
    {"referrer-policy:", "no-referrer"},
    {"strict-transport-security:", "max-age=31536000"},
    {"x-frame-options:", "DENY"},
    {"content-security-policy:",
     "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
     "connect-src 'self'; frame-ancestors 'none'"},
};

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

static int write_source(struct lws *wsi, md_conn *c);

static int write_response(struct lws *wsi, md_conn *c)
{
    md_http_response *resp = &c->resp;
    unsigned char buf[LWS_PRE + 2048];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;

    /* Static files acknowledge nothing and are not held. */
    if (!resp->file && !c->src_started && !released(c, c->resp_hold))
        return 0;
    if (resp->source)
        return write_source(wsi, c);
    if (resp->file) {
        /* lws_serve_http_file adds its own headers; ours go in other_headers. */
        for (size_t i = 0; i < G_N_ELEMENTS(security_headers); i++)
            if (add_header(wsi, security_headers[i][0], security_headers[i][1], &p, end))
                return -1;
        int n = lws_serve_http_file(wsi, resp->file, resp->content_type, (const char *)start,
                                    (int)(p - start));
        http_reset(c);
        if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi)))
            return -1;
        return 0;
    }

    if (lws_add_http_common_headers(wsi, (unsigned int)resp->status, resp->content_type,
                                    resp->body_len, &p, end))
        return -1;
    for (size_t i = 0; i < G_N_ELEMENTS(security_headers); i++)
        if (add_header(wsi, security_headers[i][0], security_headers[i][1], &p, end))
            return -1;
    if (add_header(wsi, "cache-control:", "no-store", &p, end))
        return -1;
    if (resp->set_cookie && add_header(wsi, "set-cookie:", resp->set_cookie, &p, end))
        return -1;
    if (resp->disposition && add_header(wsi, "content-disposition:", resp->disposition, &p, end))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (resp->body_len) {
        unsigned char *out = g_malloc(LWS_PRE + resp->body_len);
        memcpy(out + LWS_PRE, resp->body, resp->body_len);
        int n = lws_write(wsi, out + LWS_PRE, resp->body_len, LWS_WRITE_HTTP_FINAL);
        g_free(out);
        if (n < 0) {
            http_reset(c);
            return -1;
        }
    }
    http_reset(c);
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

#define SOURCE_PIECE 32768

/* A body read on demand: headers once, then one piece per writable event. */
static int write_source(struct lws *wsi, md_conn *c)
{
    md_http_response *resp = &c->resp;
    md_http_source *src = resp->source;
    if (!c->src_started) {
        unsigned char buf[LWS_PRE + 2048];
        unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
        uint64_t a = 0, b = src->size;
        int ranged = md_http_range_parse(c->http_range, src->size, &a, &b);
        unsigned status = ranged > 0 ? 206 : ranged < 0 ? 416 : 200;
        if (ranged < 0)
            a = b = 0;
        char content_range[96];
        if (lws_add_http_common_headers(wsi, status, resp->content_type, b - a, &p, end) ||
            add_header(wsi, "accept-ranges:", "bytes", &p, end) ||
            add_header(wsi, "cache-control:", "no-store", &p, end))
            return -1;
        for (size_t i = 0; i < G_N_ELEMENTS(security_headers); i++)
            if (add_header(wsi, security_headers[i][0], security_headers[i][1], &p, end))
                return -1;
        if (ranged > 0)
            g_snprintf(content_range, sizeof(content_range),
                       "bytes %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT, a,
                       b - 1, src->size);
        else
            g_snprintf(content_range, sizeof(content_range), "bytes */%" G_GUINT64_FORMAT,
                       src->size);
        if (ranged != 0 && add_header(wsi, "content-range:", content_range, &p, end))
            return -1;
        if (lws_finalize_write_http_header(wsi, start, &p, end))
            return -1;
        c->src_started = true;
        c->src_off = a;
        c->src_end = b;
        if (a == b) {
            http_reset(c);
            return lws_http_transaction_completed(wsi) ? -1 : 0;
        }
        lws_callback_on_writable(wsi);
        return 0;
    }
    unsigned char *out = g_malloc(LWS_PRE + SOURCE_PIECE);
    size_t want = (size_t)MIN((uint64_t)SOURCE_PIECE, c->src_end - c->src_off);
    ssize_t n = src->read(src->ud, c->src_off, out + LWS_PRE, want);
    if (n <= 0) { /* an error, or the body shrank: the length promised cannot be kept */
        g_free(out);
        http_reset(c);
        return -1;
    }
    c->src_off += (uint64_t)n;
    bool last = c->src_off >= c->src_end;
    int w = lws_write(wsi, out + LWS_PRE, (size_t)n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
    g_free(out);
    if (w < 0) {
        http_reset(c);
        return -1;
    }
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    http_reset(c);
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static void respond_error(md_conn *c, int status, int err)
{
    json_t *j = json_pack("{s:s, s:s, s:s}", "type", "error", "code", md_err_code(err), "message",
                          md_strerror(err));
    c->resp.status = status;
    c->resp.content_type = "application/json";
    c->resp.body = json_dumps(j, JSON_COMPACT);
    c->resp.body_len = strlen(c->resp.body);
    json_decref(j);
}

static int dispatch_http(struct lws *wsi, md_conn *c)
{
    md_ws *ws = c->ws;
    char *cookie = copy_header(wsi, WSI_TOKEN_HTTP_COOKIE);
    char *token = cookie_value(cookie);
    char *origin = copy_header(wsi, WSI_TOKEN_ORIGIN);
    char *host = copy_header(wsi, WSI_TOKEN_HOST);
    char *content_type = copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE);
    g_free(cookie);
    c->http_range = copy_header(wsi, WSI_TOKEN_HTTP_RANGE);

    if (c->http_body_too_large) {
        respond_error(c, 413, -MD_E_TOO_LARGE);
    } else {
        md_http_request req = {
            .listener = listener_of(wsi),
            .method = c->http_method,
            .path = c->http_path,
            .query = c->http_query ? c->http_query : "",
            .body = c->http_body ? c->http_body->str : NULL,
            .body_len = c->http_body ? c->http_body->len : 0,
            .session_cookie = token,
            .origin = origin,
            .host = host,
            .content_type = content_type,
            .remote = c->info.remote,
            .range = c->http_range,
            .conn = c,
        };
        ws->cb.on_http(&req, &c->resp, ws->ud);
        if (c->ticket) {
            /* answered later by md_ws_http_respond */
            g_free(token);
            g_free(origin);
            g_free(host);
            g_free(content_type);
            return 0;
        }
        if (c->resp.status == 0 && !c->resp.file && !c->resp.source)
            respond_error(c, 404, -ENOENT);
        if (!c->resp.content_type)
            c->resp.content_type = "application/octet-stream";
    }
    g_free(token);
    g_free(origin);
    g_free(host);
    g_free(content_type);
    c->resp_ready = true;
    c->resp_hold = c->ws->hold;
    if (c->resp.file)
        return write_response(wsi, c);
    lws_callback_on_writable(wsi);
    return 0;
}

/* Joins the URI arguments lws split into WSI_TOKEN_HTTP_URI_ARGS fragments. */
static char *copy_query(struct lws *wsi)
{
    GString *q = g_string_new(NULL);
    char frag[512];
    for (int i = 0; i < 32; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        if (q->len)
            g_string_append_c(q, '&');
        g_string_append(q, frag);
    }
    return g_string_free(q, FALSE);
}

static int on_http(struct lws *wsi, md_conn *c, const char *uri)
{
    c->ws = ws_of(wsi);
    c->wsi = wsi;
    http_reset(c);
    peer_address(wsi, c->info.remote, sizeof(c->info.remote));
    bool post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
    bool get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    if (!post && !get) {
        lws_return_http_status(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, NULL);
        return -1;
    }
    c->http_method = g_strdup(post ? "POST" : "GET");
    c->http_path = g_strdup(uri);
    c->http_query = copy_query(wsi);
    if (post) {
        c->http_body = g_string_new(NULL);
        return 0; /* wait for LWS_CALLBACK_HTTP_BODY_COMPLETION */
    }
    return dispatch_http(wsi, c);
}

static void on_http_body(md_conn *c, const char *in, size_t len)
{
    if (!c->http_body || c->http_body_too_large)
        return;
    if (c->http_body->len + len > (size_t)c->ws->cfg->limits.http_body_bytes) {
        c->http_body_too_large = true;
        return;
    }
    g_string_append_len(c->http_body, in, (gssize)len);
}

guint64 md_conn_http_defer(md_conn *c)
{
    md_ws *ws = c->ws;
    if (c->is_ws || c->ticket)
        return 0;
    c->ticket = ++ws->next_ticket;
    g_hash_table_insert(ws->deferred, g_memdup2(&c->ticket, sizeof(c->ticket)), c);
    return c->ticket;
}

void md_ws_http_respond(md_ws *ws, guint64 ticket, md_http_response *resp)
{
    md_conn *c = ws && ticket ? g_hash_table_lookup(ws->deferred, &ticket) : NULL;
    if (!c) {
        /* the client went away meanwhile */
        g_clear_pointer(&resp->body, g_free);
        g_clear_pointer(&resp->set_cookie, g_free);
        g_clear_pointer(&resp->file, g_free);
        return;
    }
    forget_ticket(c);
    c->resp = *resp;
    memset(resp, 0, sizeof(*resp));
    if (c->resp.status == 0)
        respond_error(c, 500, -MD_E_INTERNAL);
    if (!c->resp.content_type)
        c->resp.content_type = "application/octet-stream";
    c->resp_ready = true;
    c->resp_hold = c->ws->hold;
    lws_callback_on_writable(c->wsi);
}

/* ---- TLS hooks ---- */

/* Fails closed (md_certs_tls_load_crl): a missing file refuses every device
 * certificate instead of letting revoked ones in.  Returns -ENOENT when the
 * file is missing, -MD_E_CRYPTO when it is unreadable or malformed (the
 * previous CRL, if any, stays in force). */
static int load_crl(md_ws *ws, void *ssl_ctx)
{
    char text[512];
    int r = md_certs_tls_load_crl(ssl_ctx, ws->cfg->tls.crl, text, sizeof(text));
    if (r == -ENOENT)
        md_error("ws", "crl_missing", "{s:s, s:s}", "path", ws->cfg->tls.crl, "effect",
                 "without a CRL loaded, device certificates are refused (crl_unavailable)");
    else if (r < 0)
        md_error("ws", "crl_load_failed", "{s:s, s:s}", "path", ws->cfg->tls.crl, "openssl", text);
    return r;
}

static int load_verify_extras(md_ws *ws, struct lws_vhost *vh, void *ssl_ctx)
{
    /* TLS 1.3 unless the operator lowered it (per-municipality policy is
     * checked again once the device is known). */
    md_certs_tls_set_min_version(ssl_ctx, ws->cfg->tls.min_version);
    md_certs_tls_release_idle_buffers(ssl_ctx);
    if (strcmp(lws_get_vhost_name(vh), "device") != 0)
        return 0;
    ws->device_ssl_ctx = ssl_ctx;
    /* a missing CRL refuses devices but starts the gateway */
    return load_crl(ws, ssl_ctx) == -MD_E_CRYPTO;
}

int md_ws_reload_crl(md_ws *ws)
{
    if (!ws->device_ssl_ctx)
        return -ENOENT;
    return load_crl(ws, ws->device_ssl_ctx);
}

static int verify_client_cert(md_ws *ws, void *store_ctx, void *ssl, int preverify_ok)
{
    if (preverify_ok)
        return 0;
    md_certs_tls_refusal refusal;
    md_certs_tls_refusal_read(store_ctx, ssl, &refusal);
    char remote[64] = "";
    if (refusal.fd >= 0)
        lws_get_peer_simple_fd(refusal.fd, remote, sizeof(remote));
    unmap_ipv4(remote);
    ws->cb.on_cert_refused(remote, refusal.code, refusal.reason, refusal.device_id, ws->ud);
    free(refusal.device_id);
    return 1; /* non-zero: fail the handshake */
}

/* ---- per-source connection cap ---- */

/*
 * Every accepted TCP connection counts against its source address until lws
 * frees it, TLS handshake included, so one client cannot hold the whole
 * descriptor table with idle sockets (limits.connections_per_source).
 */
static int on_filter_connection(md_ws *ws, int fd)
{
    char remote[64] = "";
    lws_get_peer_simple_fd(fd, remote, sizeof(remote));
    unmap_ipv4(remote);
    int count = GPOINTER_TO_INT(g_hash_table_lookup(ws->per_source, remote));
    if (count < ws->cfg->limits.connections_per_source)
        return 0;
    /* debug only: a flood would otherwise flood the log too */
    md_debug("ws", "source_connection_cap", "{s:s, s:i}", "remote", remote, "open", count);
    return 1;
}

static void on_connection_created(md_ws *ws, struct lws *wsi)
{
    char remote[64];
    peer_address(wsi, remote, sizeof(remote));
    if (!remote[0] || g_hash_table_contains(ws->conn_source, wsi))
        return;
    char *key = NULL;
    gpointer count = NULL;
    if (g_hash_table_lookup_extended(ws->per_source, remote, (gpointer *)&key, &count)) {
        /* g_hash_table_insert keeps the existing key (and frees the new one) */
        g_hash_table_insert(ws->per_source, g_strdup(key),
                            GINT_TO_POINTER(GPOINTER_TO_INT(count) + 1));
    } else {
        key = g_strdup(remote);
        g_hash_table_insert(ws->per_source, key, GINT_TO_POINTER(1));
    }
    g_hash_table_insert(ws->conn_source, wsi, key);
}

static void on_connection_destroyed(md_ws *ws, struct lws *wsi)
{
    const char *key = g_hash_table_lookup(ws->conn_source, wsi);
    if (!key)
        return;
    g_hash_table_remove(ws->conn_source, wsi);
    int count = GPOINTER_TO_INT(g_hash_table_lookup(ws->per_source, key)) - 1;
    if (count <= 0)
        g_hash_table_remove(ws->per_source, key);
    else
        g_hash_table_insert(ws->per_source, g_strdup(key), GINT_TO_POINTER(count));
}

/* ---- the one protocol callback ---- */

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    md_conn *c = user;
    md_ws *ws = wsi ? ws_of(wsi) : NULL;

    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        return on_filter_connection(ws, (int)(intptr_t)in);
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        on_connection_created(ws, wsi);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        on_connection_destroyed(ws, wsi);
        return 0;
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
        return load_verify_extras(ws, in, user);
    case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
        return verify_client_cert(ws, user, in, (int)len);

    case LWS_CALLBACK_ESTABLISHED:
        return on_ws_established(wsi, c);
    case LWS_CALLBACK_RECEIVE:
        return on_ws_receive(wsi, c, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_ws_writeable(wsi, c);
    case LWS_CALLBACK_CLOSED:
        if (c->opened)
            ws->cb.on_close(c, ws->ud);
        conn_clear(c);
        return 0;

    case LWS_CALLBACK_HTTP:
        return on_http(wsi, c, in);
    case LWS_CALLBACK_HTTP_BODY:
        on_http_body(c, in, len);
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return dispatch_http(wsi, c);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!c || !c->resp_ready || c->resp.file)
            return 0;
        return write_response(wsi, c);
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        if (c) {
            unpark(c);
            http_reset(c);
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {PROTOCOL_NAME, callback, sizeof(md_conn), 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/*
 * One vhost per configured address, bound to exactly that address: an IPv4
 * address gets an IPv4 socket, an IPv6 one an IPv6-only socket (so "::" does
 * not also take IPv4 through mapped addresses, RFC 3493 5.3).  lws would
 * otherwise open an IPv6 wildcard socket whatever the iface says.
 */
static struct lws_vhost *create_vhost(md_ws *ws, md_listener which, const char *address, int n)
{
    const md_config *cfg = ws->cfg;
    const md_listen *l = which == MD_LISTENER_DEVICE ? &cfg->device_listen : &cfg->staff_listen;
    const char *base = which == MD_LISTENER_DEVICE ? "device" : "staff";
    /* lws keeps the pointers it is given: the name and address live in ws. */
    char *name = n ? g_strdup_printf("%s-%d", base, n) : g_strdup(base);
    char *iface = g_strdup(address);
    g_ptr_array_add(ws->names, name);
    g_ptr_array_add(ws->names, iface);
    GInetAddress *ia = g_inet_address_new_from_string(address);
    if (!ia)
        return NULL; /* md_config_load validated it; be safe anyway */
    bool v4 = g_inet_address_get_family(ia) == G_SOCKET_FAMILY_IPV4;
    bool any = g_inet_address_get_is_any(ia);
    g_object_unref(ia);

    struct lws_context_creation_info info = {0};
    info.vhost_name = name;
    info.port = l->port;
    info.iface = any ? NULL : iface;
    info.protocols = protocols;
    info.ssl_cert_filepath = cfg->tls.cert;
    info.ssl_private_key_filepath = cfg->tls.key;
    info.alpn = "http/1.1";
    info.timeout_secs = (unsigned)cfg->limits.handshake_timeout_seconds;
    info.keepalive_timeout = cfg->limits.handshake_timeout_seconds;
    info.timeout_secs_ah_idle = (unsigned)cfg->limits.handshake_timeout_seconds;
    info.retry_and_idle_policy = &ws->idle_policy;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_VALIDATE_UTF8 |
                   LWS_SERVER_OPTION_GLIB;
    if (v4)
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    else
        info.options |= LWS_SERVER_OPTION_IPV6_V6ONLY_MODIFY | LWS_SERVER_OPTION_IPV6_V6ONLY_VALUE;
    if (which == MD_LISTENER_DEVICE) {
        info.ssl_ca_filepath = cfg->tls.ca;
        /* Ask for a certificate but let a connection without one through, so
         * that it gets a clear error message instead of a TLS alert. */
        info.options |= LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT |
                        LWS_SERVER_OPTION_PEER_CERT_NOT_REQUIRED;
    }
    return lws_create_vhost(ws->context, &info);
}

static int create_listener(md_ws *ws, md_listener which)
{
    const md_listen *l =
        which == MD_LISTENER_DEVICE ? &ws->cfg->device_listen : &ws->cfg->staff_listen;
    g_auto(GStrv) addresses = md_config_addresses(l->address);
    ws->vhosts[which] = g_ptr_array_new();
    for (int i = 0; addresses && addresses[i]; i++) {
        struct lws_vhost *vh = create_vhost(ws, which, addresses[i], i);
        if (!vh) {
            md_error("ws", "listen_failed", "{s:s, s:s, s:i}", "listener",
                     which == MD_LISTENER_DEVICE ? "device" : "staff", "address", addresses[i],
                     "port", l->port);
            return -EADDRNOTAVAIL;
        }
        g_ptr_array_add(ws->vhosts[which], vh);
    }
    return ws->vhosts[which]->len ? 0 : -EINVAL;
}

static void lws_log_bridge(int level, const char *line)
{
    char *s = g_strchomp(g_strdup(line));
    if (level & LLL_ERR)
        md_warn("lws", "library", "{s:s}", "text", s);
    else
        md_debug("lws", "library", "{s:s}", "text", s);
    g_free(s);
}

int md_ws_new(const md_config *cfg, GMainLoop *loop, const md_ws_callbacks *cb, void *ud,
              md_ws **ret)
{
    md_ws *ws = g_new0(md_ws, 1);
    ws->cfg = cfg;
    ws->cb = *cb;
    ws->ud = ud;
    ws->per_source = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    ws->conn_source = g_hash_table_new(g_direct_hash, g_direct_equal);
    ws->deferred = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    ws->names = g_ptr_array_new_with_free_func(g_free);
    ws->parked = g_ptr_array_new();
    /* WebSocket keep-alive: a PING after ws_ping_seconds without traffic both
     * ways, a hang-up after ws_idle_seconds (RFC 6455 5.5.2). */
    ws->idle_policy.secs_since_valid_ping = (uint16_t)cfg->limits.ws_ping_seconds;
    ws->idle_policy.secs_since_valid_hangup = (uint16_t)cfg->limits.ws_idle_seconds;

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_bridge);

    void *foreign_loops[] = {loop};
    struct lws_context_creation_info info = {0};
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
                   LWS_SERVER_OPTION_GLIB;
    info.foreign_loops = foreign_loops;
    info.user = ws;
    info.fd_limit_per_thread = (unsigned int)cfg->limits.max_connections + 16;
    info.timeout_secs = (unsigned)cfg->limits.handshake_timeout_seconds;
    info.pt_serv_buf_size = 16384;
    ws->context = lws_create_context(&info);
    if (!ws->context) {
        md_error("ws", "context_failed", NULL);
        g_ptr_array_free(ws->parked, TRUE);
        g_free(ws);
        return -MD_E_INTERNAL;
    }
    for (int i = 0; i < 2; i++) {
        int r = create_listener(ws, (md_listener)i);
        if (r < 0) {
            md_ws_free(ws);
            return r;
        }
    }
    *ret = ws;
    return 0;
}

md_ws *md_ws_free(md_ws *ws)
{
    if (!ws)
        return NULL;
    if (ws->context)
        lws_context_destroy(ws->context);
    g_ptr_array_free(ws->parked, TRUE); /* emptied by the closes above */
    for (int i = 0; i < 2; i++)
        if (ws->vhosts[i])
            g_ptr_array_free(ws->vhosts[i], TRUE);
    g_hash_table_destroy(ws->conn_source);
    g_hash_table_destroy(ws->deferred);
    g_ptr_array_free(ws->names, TRUE);
    g_hash_table_destroy(ws->per_source);
    g_free(ws);
    return NULL;
}
