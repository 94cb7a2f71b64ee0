/*
 * The libwebsockets adapter: two TLS listeners (device, staff) on the GLib
 * main loop, WebSocket connections with bounded send queues, and small HTTP
 * request/response exchanges.  Nothing else includes libwebsockets.h.
 *
 * Everything runs on the control thread (the GLib main context given to
 * md_ws_new).  An md_conn is owned by the adapter: it is valid from on_open
 * until on_close returns, and callers must not keep it after that.
 */
#ifndef MD_WS_H
#define MD_WS_H

#include "md_config.h"

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The staff login cookie (docs/protocol.md). */
#define MD_SESSION_COOKIE "__Host-md_session"

typedef struct md_ws md_ws;
typedef struct md_conn md_conn;

typedef enum md_listener { MD_LISTENER_DEVICE, MD_LISTENER_STAFF } md_listener;

/* What the transport knows about a connection, filled before on_open. */
typedef struct md_conn_info {
    md_listener listener;
    char remote[64];      /* peer IP address */
    char tls_version[16]; /* "TLSv1.3" */
    bool has_peer_cert;   /* device listener: a client certificate was presented */
    char *cert_device_id; /* subject CN of a verified client certificate */
    char *cert_post_office;
    char *cert_serial;    /* its serial, upper-case hex (md_certs_binding) */
    char cert_sha256[65]; /* its SHA-256 fingerprint, lower-case hex; "" when none */
    char *session_cookie; /* value of the login cookie, staff listener */
    char *origin;         /* Origin header */
    char *host;           /* Host header */
} md_conn_info;

/*
 * A response body read on demand instead of held whole (a decrypted
 * recording: it is never in memory entire and never on disk in clear).  The
 * adapter answers a GET's Range header itself (RFC 9110 14.2: one range,
 * "bytes=A-B", "bytes=A-" or "bytes=-N"; 206 with Content-Range, or 416 when
 * it cannot be satisfied; anything else gets the whole body, 200), reads
 * the body in pieces as the connection drains, and calls free once (done,
 * failed or closed).  read returns the byte count (0 only past the end) or
 * a negative code, which aborts the connection.  Control thread.
 */
typedef struct md_http_source {
    uint64_t size;
    ssize_t (*read)(void *ud, uint64_t offset, void *buf, size_t len);
    void (*free)(void *ud);
    void *ud;
} md_http_source;

typedef struct md_http_request {
    md_listener listener;
    const char *method; /* "GET", "POST" */
    const char *path;   /* without the query */
    const char *query;  /* raw query string ("a=1&b=2"), or "" */
    const char *body;   /* POST body (NUL-terminated), or NULL */
    size_t body_len;
    const char *session_cookie; /* nullable */
    const char *origin;         /* nullable */
    const char *host;           /* nullable */
    const char *content_type;   /* nullable */
    const char *remote;
    const char *range; /* Range header, nullable */
    md_conn *conn;     /* for md_conn_http_defer / md_ws_http_respond */
} md_http_request;

typedef struct md_http_response {
    int status;
    const char *content_type; /* static string */
    char *body;               /* g_malloc'd, taken by the adapter */
    size_t body_len;
    char *set_cookie;       /* g_malloc'd full Set-Cookie value, nullable */
    char *file;             /* g_malloc'd path of a static file to send instead of body */
    md_http_source *source; /* g_malloc'd body read on demand instead of body; taken */
    char *disposition;      /* g_malloc'd Content-Disposition value (downloads), nullable */
} md_http_response;

/* Frees what a response owns (body, cookie, file, source, disposition) and
 * zeroes it.  The adapter calls it once a response is sent. */
void md_http_response_clear(md_http_response *resp);

typedef struct md_ws_callbacks {
    /* A WebSocket is up.  Return 0 to keep it, or a negative MD_E_* code to
     * refuse: the adapter then calls on_refuse and closes after sending. */
    int (*on_open)(md_conn *c, void *ud);
    /* One complete text message (NUL-terminated for convenience). */
    void (*on_message)(md_conn *c, const char *text, size_t len, void *ud);
    /* A message exceeded limits.max_message_bytes; the connection will close. */
    void (*on_oversize)(md_conn *c, void *ud);
    /* The connection is gone (for whatever reason); c is freed after this. */
    void (*on_close)(md_conn *c, void *ud);
    /* An HTTP request on either listener; fill resp (status 0 = 404). */
    void (*on_http)(const md_http_request *req, md_http_response *resp, void *ud);
    /* A client certificate failed verification during the TLS handshake.
     * code: -MD_E_CRL_UNAVAILABLE when no CRL is loaded (fail closed),
     * otherwise -MD_E_DEVICE_CERT_INVALID; reason: OpenSSL's text. */
    void (*on_cert_refused)(const char *remote, int code, const char *reason, const char *device_id,
                            void *ud);
} md_ws_callbacks;

int md_ws_new(const md_config *cfg, GMainLoop *loop, const md_ws_callbacks *cb, void *ud,
              md_ws **ret);
md_ws *md_ws_free(md_ws *ws);

/* Loads the CRL file again into the device listener (after a revocation or
 * the periodic rewrite).  New handshakes use it at once.  CRL checking is
 * always on: while no CRL was ever loaded (the file is missing), every
 * device certificate is refused (-ENOENT here, "crl_missing" in the log). */
int md_ws_reload_crl(md_ws *ws);

/* An HTTP handler that cannot answer at once (a login waiting for its
 * password hash) calls md_conn_http_defer(req->conn) from on_http, leaves
 * resp empty, and later hands the answer to md_ws_http_respond with the
 * returned ticket.  If the client has gone meanwhile the answer is dropped.
 * Control thread only. */
guint64 md_conn_http_defer(md_conn *c);
void md_ws_http_respond(md_ws *ws, guint64 ticket, md_http_response *resp /* contents taken */);

/* Queues a text message.  When the connection's queue is over its cap the
 * connection is closed (a client that does not read cannot grow our memory)
 * and -ENOBUFS is returned. */
int md_conn_send(md_conn *c, const char *text, size_t len);
/* Like md_conn_send for a state snapshot: if a message with the same key
 * (> 0) is still waiting to be sent, it is replaced by this one, so a slow
 * reader gets the latest state instead of every intermediate one. */
int md_conn_send_latest(md_conn *c, int key, const char *text, size_t len);
/*
 * Replies wait for durability (docs/internals/signaling.md, "Acknowledged
 * only when durable").  Every message, close and HTTP response (static files
 * aside) queued after md_ws_hold(ws, seq) is written only once
 * md_ws_release(ws, upto) with upto >= seq has been called; messages keep
 * their order.  Values only grow; without a hold nothing waits.
 */
void md_ws_hold(md_ws *ws, uint64_t seq);
void md_ws_release(md_ws *ws, uint64_t upto);

/* Closes after the queued messages are flushed. */
void md_conn_close(md_conn *c, int ws_status, const char *reason);

const md_conn_info *md_conn_get_info(const md_conn *c);
void md_conn_set_user(md_conn *c, void *user);
void *md_conn_get_user(const md_conn *c);

#endif
