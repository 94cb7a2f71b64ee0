/*
 * Gateway configuration: embedded defaults, overridden by a JSON file
 * (docs/configuration.md lists every key).  Unknown keys are an error so that
 * a typo never silently falls back to a default.  Relative paths are resolved
 * against data_dir.  Loaded once by the main thread and read-only afterwards.
 */
#ifndef MD_CONFIG_H
#define MD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct md_listen {
    /* One or more IP addresses separated by spaces or commas, each bound
     * exactly: "127.0.0.1", "::1", "0.0.0.0" (every IPv4 address), "::"
     * (every IPv6 address, IPv6 only), "0.0.0.0 ::" (both families). */
    char *address;
    int port;
} md_listen;

typedef struct md_config {
    char *data_dir; /* default "var" (relative to the working directory) */
    char *database; /* store URL; default "<data_dir>/madoguchi.db" */
    char *web_root; /* static pages; default the source tree's web/ */
    struct {
        bool test_pages; /* serve web/test/ (browser-test pages); default false */
    } web;
    char *procedures_file; /* default the source tree's data/procedures.json */
    char *log_level;       /* debug|info|warn|error */
    char *public_url;      /* base URL shown to people, e.g. "https://gw.example.lg.jp:8443" */

    md_listen device_listen; /* mTLS listener for tablets; default 0.0.0.0:8444 */
    md_listen staff_listen;  /* HTTPS + WSS for staff browsers; default 0.0.0.0:8443 */

    struct {
        char *cert;        /* server certificate chain (PEM); default <data_dir>/certs/server.crt */
        char *key;         /* default <data_dir>/certs/server.key */
        char *ca;          /* device CA; default <data_dir>/certs/ca.crt */
        char *ca_key;      /* for `device issue`; default <data_dir>/certs/ca.key */
        char *crl;         /* default <data_dir>/certs/ca.crl; missing: devices refused */
        char *min_version; /* "1.3" (default) or "1.2" */
    } tls;

    struct {
        int max_message_bytes;         /* one WebSocket message; default 65536 */
        int messages_per_second;       /* token bucket rate; default 20 */
        int message_burst;             /* bucket size; default 40 */
        int flood_close_after;         /* refusals before the connection is closed; default 50 */
        int connections_per_device;    /* default 2 */
        int max_connections;           /* all listeners; default 1024 */
        int http_body_bytes;           /* POST body cap; default 8192 */
        int connections_per_source;    /* open TCP connections per client address; default 64 */
        int handshake_timeout_seconds; /* TLS handshake, HTTP headers, idle keep-alive; default 10
                                        */
        int ws_ping_seconds;           /* PING after this long without traffic; default 30 */
        int ws_idle_seconds; /* close after this long without a PONG or traffic; default 75 */
        int staff_sockets_per_account; /* open staff WebSockets per account; default 4 */
    } limits;

    struct {
        int lockout_threshold;   /* failures per account and source before backoff; default 5 */
        int lockout_seconds;     /* longest backoff; default 900 */
        int session_ttl_seconds; /* staff cookie lifetime; default 28800 (8 h) */
        int login_per_source_per_minute; /* login attempts per client address; default 20 */
        int login_per_minute;            /* login attempts overall; default 120 */
        int login_workers;               /* threads hashing passwords; default 2 */
        int login_queue;                 /* attempts waiting for a worker; default 8 */
        char *allowed_origins;           /* staff Origins, space-separated; default public_url */
    } auth;

    struct {
        char *signing_key;      /* Ed25519 PEM; default <data_dir>/audit.key */
        char *public_key;       /* pinned verification key: 64 hex chars (raw Ed25519) or a
                                 * PEM path; default "" = "<signing_key>.pub", not pinned */
        int checkpoint_every;   /* entries; default 100 */
        int checkpoint_seconds; /* default 60 */
    } audit;

    struct {
        int wait_timeout_seconds;    /* unanswered request; default 600 */
        int connect_timeout_seconds; /* assigned but no media; default 60 */
        int rejoin_grace_seconds;    /* a leg may drop and rejoin; default 20 */
    } session;

    struct {
        char *urls;      /* TURN/STUN URIs for clients, space-separated; default "" (none) */
        char *secret;    /* shared secret for time-limited TURN credentials (coturn
                          * use-auth-secret); default "" = no credentials */
        int ttl_seconds; /* credential lifetime; default 3600 */
    } turn;

    struct {
        int workers;          /* media threads; 0 (default) = one per core */
        char *bind_address;   /* ICE host address; "" (default) = every non-loopback interface */
        char *public_address; /* advertised instead of host addresses (1:1 NAT); default "" */
        int port_min;         /* ICE port range (UDP and TCP); 0/0 (default) = ephemeral */
        int port_max;
        bool ice_tcp;              /* RFC 6544 passive TCP candidates too; default true */
        int socket_receive_buffer; /* SO_RCVBUF of a leg's selected socket; 0 = the kernel's */
        int max_sessions;          /* default 256 */
        int admit_cpu_percent;     /* CPU demand a worker may reach with a new session; 85 */
        int admit_settling;        /* sessions set up at once, all workers; default 64 */
        int max_sdp_bytes;         /* one offer; default 65536 */
        int max_remote_candidates; /* per leg; default 32 */
        int max_packet_bytes;      /* larger RTP/RTCP packets are dropped; default 1500 */
        int nack_buffer_packets;   /* most packets kept per outgoing video stream; default 256 */
        int nack_buffer_min_ms;    /* kept at least this long (3 RTTs otherwise); default 200 */
        int nack_buffer_max_ms;    /* and at most this long; default 1000 */
        int dtls_timeout_ms;       /* initial DTLS retransmit timeout, doubling; default 50 */
        int keyframe_interval_ms;  /* minimum gap between forwarded PLI/FIR; default 500 */
        int max_message_size;      /* data channels: our a=max-message-size; default 262144 */
        int chat_queue_messages;   /* chat waiting per leg for its channel to open; default 32 */
        int file_queue_files;      /* stored files waiting per leg to be offered; default 8 */
        int record_queue_packets;  /* RTP packets per recorded stream waiting for the recorder */
    } media;

    struct {
        char *address; /* default "127.0.0.1" */
        int port;      /* plain HTTP GET /metrics; 0 (default) = off */
    } metrics;

    struct {
        char *dir; /* encrypted files and chat transcripts; default <data_dir>/evidence */
        char *
            master_key; /* 32-byte key wrapping the session keys; default <data_dir>/evidence.key */
    } evidence;
} md_config;

/* Fills defaults, then applies the JSON file at path (NULL: defaults only). */
int md_config_load(const char *path, md_config *ret, char **ret_error /* malloc'd, nullable */);
void md_config_clear(md_config *cfg);

/* The addresses of a listen or bind setting (spaces or commas between them);
 * NULL-terminated, g_strfreev. */
char **md_config_addresses(const char *text);

/* "<data_dir>/<rel>" unless rel is absolute; malloc'd. */
char *md_config_path(const md_config *cfg, const char *rel);

/* The keys the parser accepts ("tls.cert", ...), for the check that
 * docs/configuration.md lists every one: i from 0 while non-NULL. */
const char *md_config_key(size_t i);

#endif
