/*
 * WebSocket plumbing of the load generator over libwebsockets (the bench's
 * only user of it): one context on the main thread, one client vhost per
 * tablet (its device certificate) plus one shared vhost for verifiers and
 * plain-WS clients, a queue of outgoing messages per connection, and the
 * inbox through which media threads hand local descriptions to the main
 * thread (woken with lws_cancel_service()).  Received messages are
 * reassembled, parsed and handed to the signaling module in use.
 */
#include "mdb.h"

#include <errno.h>
#include <libwebsockets.h>
#include <string.h>

#define MAX_MESSAGE (256 * 1024)

typedef struct outgoing {
    mdb_client *client;
    char *type;
    char *sdp;
} outgoing;

static const mdb_signaling *sig;

static void drain_inbox(mdb_run *run)
{
    for (;;) {
        g_mutex_lock(&run->lock);
        outgoing *o = g_queue_pop_head(run->inbox);
        g_mutex_unlock(&run->lock);
        if (!o)
            return;
        sig->on_local_sdp(o->client, o->type, o->sdp);
        g_free(o->type);
        g_free(o->sdp);
        g_free(o);
    }
}

void mdb_signal_local_sdp(mdb_client *c, const char *type, char *sdp)
{
    outgoing *o = g_new0(outgoing, 1);
    o->client = c;
    o->type = g_strdup(type);
    o->sdp = sdp;
    g_mutex_lock(&c->run->lock);
    g_queue_push_tail(c->run->inbox, o);
    g_mutex_unlock(&c->run->lock);
    lws_cancel_service(c->run->lws);
}

static void on_receive(mdb_client *c, const char *in, size_t len, bool final)
{
    if (c->rx->len + len > MAX_MESSAGE) {
        mdb_run_error(c->run, c, "message_too_large", NULL);
        g_string_truncate(c->rx, 0);
        return;
    }
    g_string_append_len(c->rx, in, (gssize)len);
    if (!final)
        return;
    json_error_t e;
    json_t *msg = json_loadb(c->rx->str, c->rx->len, 0, &e);
    g_string_truncate(c->rx, 0);
    if (!json_is_object(msg)) {
        mdb_run_error(c->run, c, "bad_json", e.text);
        json_decref(msg);
        return;
    }
    sig->on_message(c, msg);
    json_decref(msg);
}

static int on_writeable(mdb_client *c, struct lws *wsi)
{
    char *m = g_queue_pop_head(c->out);
    if (!m)
        return 0;
    size_t len = strlen(m);
    unsigned char *buf = g_malloc(LWS_PRE + len);
    memcpy(buf + LWS_PRE, m, len);
    int n = lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_TEXT);
    g_free(buf);
    g_free(m);
    if (n < (int)len)
        return -1;
    if (!g_queue_is_empty(c->out))
        lws_callback_on_writable(wsi);
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    mdb_client *c = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
        struct lws_context *ctx = lws_get_context(wsi);
        mdb_run *run = lws_context_user(ctx);
        if (run)
            drain_inbox(run);
        return 0;
    }
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (c && c->cookie) {
            unsigned char **p = (unsigned char **)in, *end = *p + len;
            char cookie[512];
            snprintf(cookie, sizeof(cookie), "__Host-md_session=%s", c->cookie);
            if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_COOKIE,
                                             (const unsigned char *)cookie, (int)strlen(cookie), p,
                                             end))
                return -1;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (c)
            sig->on_established(c);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (c)
            on_receive(c, in, len, lws_is_final_fragment(wsi));
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return c ? on_writeable(c, wsi) : 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c) {
            c->wsi = NULL;
            c->failed = true;
            mdb_run_error(c->run, c, "connect_failed", in ? (const char *)in : "");
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c) {
            c->wsi = NULL;
            if (!c->ended)
                c->failed = true;
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"mdb", callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static struct lws_vhost *client_vhost(mdb_run *run, const char *name, const char *cert,
                                      const char *key)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.vhost_name = name;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.client_ssl_ca_filepath = run->target.ca_file;
    info.client_ssl_cert_filepath = cert;
    info.client_ssl_private_key_filepath = key;
    return lws_create_vhost(run->lws, &info);
}

int mdb_ws_init(mdb_run *run, const mdb_signaling *s)
{
    sig = s;
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                   LWS_SERVER_OPTION_JUST_USE_RAW_ORIGIN; /* lws would prepend http:// */
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = run;
    info.timeout_secs = 30;
    run->lws = lws_create_context(&info);
    if (!run->lws)
        return -EIO;
    run->staff_vhost = client_vhost(run, "staff", NULL, NULL);
    if (!run->staff_vhost)
        return -EIO;
    for (int i = 0; i < 2 * run->n_sessions; i++) {
        mdb_client *c = &run->clients[i];
        c->out = g_queue_new();
        c->rx = g_string_new(NULL);
        c->vhost = run->staff_vhost;
        if (c->cert_file) {
            c->vhost = client_vhost(run, c->name, c->cert_file, c->key_file);
            if (!c->vhost)
                return -EIO;
        }
    }
    return 0;
}

void mdb_ws_deinit(mdb_run *run)
{
    if (run->lws)
        lws_context_destroy(run->lws);
    run->lws = NULL;
    for (int i = 0; i < 2 * run->n_sessions; i++) {
        mdb_client *c = &run->clients[i];
        if (c->out)
            g_queue_free_full(c->out, g_free);
        if (c->rx)
            g_string_free(c->rx, TRUE);
        c->out = NULL;
        c->rx = NULL;
    }
    while (run->inbox && !g_queue_is_empty(run->inbox)) {
        outgoing *o = g_queue_pop_head(run->inbox);
        g_free(o->type);
        g_free(o->sdp);
        g_free(o);
    }
}

int mdb_ws_connect(mdb_client *c, const char *host, int port, const char *path, bool tls,
                   const char *subprotocol, const char *origin)
{
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = c->run->lws;
    ci.vhost = c->vhost;
    ci.address = host;
    ci.port = port;
    ci.path = path;
    ci.host = host;
    ci.origin = origin;
    ci.protocol = subprotocol;
    ci.local_protocol_name = "mdb";
    ci.ssl_connection = tls ? LCCSCF_USE_SSL | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK : 0;
    ci.opaque_user_data = c;
    ci.pwsi = &c->wsi;
    c->t_connect_us = g_get_monotonic_time();
    if (!lws_client_connect_via_info(&ci)) {
        c->failed = true;
        return -EIO;
    }
    return 0;
}

void mdb_ws_send(mdb_client *c, json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!text || !c->wsi) {
        free(text);
        return;
    }
    g_queue_push_tail(c->out, g_strdup(text));
    free(text);
    lws_callback_on_writable(c->wsi);
}

void mdb_ws_close(mdb_client *c)
{
    c->ended = true;
    if (c->wsi) {
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        c->wsi = NULL;
    }
}

int mdb_ws_service(mdb_run *run)
{
    drain_inbox(run);
    return lws_service(run->lws, 0);
}
