/*
 * The madoguchi load generator (docs/internals/bench.md): N sessions, each a
 * tablet client and a verifier client with one PeerConnection each, speaking
 * the gateway's signaling (or Janus's VideoCall API) and real ICE +
 * DTLS-SRTP, replaying pre-encoded VP8 and Opus at real-time pace.
 *
 * Threads: the main thread runs libwebsockets (all signaling, the run's
 * phases); each media thread runs one GMainContext that owns the peers
 * (libnice agent, DTLS, SRTP, pacing) of the clients pinned to it.  The two
 * sides talk only through mdb_media_post() (main -> media) and
 * mdb_signal_send() (media -> main, thread-safe).  Figures a media thread
 * produces are written by that thread only and read by main at the end, or
 * through relaxed atomics while the run is on.
 */
#ifndef MDB_H
#define MDB_H

#include <glib.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MDB_TRAILER_LEN 16     /* "MDBv"/"MDBa", seq32, send time ns64 (big-endian) */
#define MDB_HIST_STEP_US 10    /* latency histogram resolution */
#define MDB_HIST_BUCKETS 50000 /* 0 .. 500 ms, the last bucket takes the rest */
#define MDB_PT_OPUS 111
#define MDB_PT_VP8 96

/* One pre-encoded stream, loaded once and shared read-only by every peer. */
typedef struct mdb_packet {
    const uint8_t *rtp; /* the RTP packet as GStreamer payloaded it */
    uint16_t len;
    int64_t at_us; /* send offset from the start of the loop */
    uint32_t ts;   /* RTP timestamp relative to the first packet */
} mdb_packet;

typedef struct mdb_track {
    uint8_t *blob;
    mdb_packet *pkts;
    size_t n;
    int64_t loop_us;  /* one pass of the file */
    uint32_t loop_ts; /* RTP timestamp advance per pass */
    bool video;
} mdb_track;

/* Reads an RFC 4571 stream (2-byte length + RTP) written by rtpstreampay. */
int mdb_track_load(const char *path, bool video, uint32_t clock_rate, mdb_track *ret);
void mdb_track_clear(mdb_track *t);

/* Latency histogram and per-direction counters of one media thread. */
typedef struct mdb_stats {
    uint32_t hist[MDB_HIST_BUCKETS];
    uint64_t samples;
    _Atomic uint64_t rx_packets; /* with a trailer, whole run */
    _Atomic uint64_t tx_packets;
    uint64_t lost, expected, late_ticks;
    uint64_t stalls; /* pacing ticks > 5 ms apart while measuring */
    int64_t max_stall_us;
    /* the batched path (mdb_io.c), whole run */
    uint64_t rx_calls, rx_datagrams; /* recvmmsg calls that returned datagrams, and those */
    uint64_t tx_calls, tx_datagrams; /* sendmmsg calls that sent, and what they sent */
    uint64_t stun_answered;          /* Binding requests answered (consent freshness) */
    uint64_t links;                  /* peers that moved to the batched path */
} mdb_stats;

void mdb_stats_add_latency(mdb_stats *s, int64_t us);
/* Percentile p (0..100) in microseconds from a merged histogram. */
double mdb_hist_percentile(const uint32_t *hist, uint64_t samples, double p);
double mdb_percentile(double *values, size_t n, double p); /* sorts values */

/* The gateway's own per-leg counters (madoguchi only), from the `quality`
 * message its verifier client receives once a second per leg
 * (docs/internals/media.md).  The first report of a leg inside the window is
 * the base, the last one the end, so the figures cover the window less up to
 * a second.  ingress_lost sums the per-interval `lost` of both streams (what
 * the gateway saw missing on the way in) over the reports after the base. */
enum {
    MDB_GW_PACKETS_IN,
    MDB_GW_PACKETS_OUT,
    MDB_GW_DROPPED_MALFORMED,
    MDB_GW_DROPPED_OVERSIZE,
    MDB_GW_DROPPED_UNKNOWN_PT,
    MDB_GW_DROPPED_SRTP,
    MDB_GW_DROPPED_NOT_READY,
    MDB_GW_INGRESS_LOST,
    MDB_GW_FIELDS
};
extern const char *const mdb_gw_field_names[MDB_GW_FIELDS];

typedef struct mdb_run mdb_run;
typedef struct mdb_client mdb_client;
typedef struct mdb_io mdb_io;
typedef struct mdb_io_link mdb_io_link;
typedef struct mdb_peer mdb_peer;
typedef struct mdb_media mdb_media;

/* What a run needs from the gateway; filled by the plan file (mdb_main.c). */
typedef struct mdb_target {
    const char *kind; /* "madoguchi" or "janus" */
    char *host;
    int staff_port, device_port; /* madoguchi */
    int janus_port;              /* janus: ws://host:port, subprotocol janus-protocol */
    char *ca_file;
    char *origin;
    char *procedure;
    char *bind_address; /* ICE host candidates of the clients */
} mdb_target;

struct mdb_client {
    mdb_run *run;
    int index;
    bool tablet;
    mdb_client *partner;
    mdb_media *media; /* the thread its peer lives on */

    /* main thread */
    char *name;                            /* device id / username */
    char *cert_file, *key_file;            /* tablet */
    char *password, *totp_secret, *cookie; /* verifier */
    struct lws *wsi;
    struct lws_vhost *vhost;
    GQueue *out; /* char * messages to write */
    GString *rx; /* fragments of the message being received */
    char session[80];
    bool hello, ended, failed;
    bool record_sent;          /* verifier: `record` `start` sent (--record) */
    int64_t t_retry_accept_us; /* verifier: `accept` refused with media_capacity; again then */
    bool recording_on;         /* `recording` `on` received for this leg */
    int64_t t_connect_us;
    int64_t t_offer_us;  /* our description sent */
    int64_t t_answer_us; /* the gateway's description received */
    int64_t t_accept_us; /* tablet: when its verifier accepted (or the call was placed) */
    /* janus */
    uint64_t janus_session, janus_handle;
    unsigned janus_tx;
    int64_t t_keepalive_us;
    char *pending_jsep; /* offer received before our peer exists */
    /* madoguchi verifier, per leg (tablet, verifier): counters at the base
     * report and at the latest one while measuring */
    uint64_t gw_base[2][MDB_GW_FIELDS], gw_last[2][MDB_GW_FIELDS];
    bool gw_have_base[2];

    /* media thread */
    mdb_peer *peer;

    /* written by the media thread, read by main */
    _Atomic int64_t t_first_rx_us; /* first media packet received, 0 = none */
    _Atomic int64_t t_media_up_us; /* DTLS done */
    _Atomic int media_failed;
};

struct mdb_run {
    mdb_target target;
    mdb_client *clients; /* 2 * n: tablet i at 2i, its verifier at 2i + 1 */
    int n_sessions;
    int duration_s, setup_timeout_s;
    int gateway_pid;
    bool record;      /* --record: each session recorded once media flows (madoguchi) */
    bool batch;       /* media through mdb_io.c once up (--no-batch: through libnice) */
    int rcvbuf_bytes; /* SO_RCVBUF of a peer's socket on the batched path */
    mdb_media **media;
    int n_media;
    mdb_track video, audio;
    struct md_dtls_identity *identity;
    struct lws_context *lws;
    struct lws_vhost *staff_vhost;
    GMutex lock;           /* guards inbox */
    GQueue *inbox;         /* struct mdb_outgoing from media threads */
    _Atomic int measuring; /* latency histogram on */
    int errors;
    json_t *error_log;      /* first few errors, for the report */
    int admission_refusals; /* madoguchi: `accept` refused with media_capacity */
    /* phase timestamps (µs, g_get_monotonic_time) */
    int64_t t_start, t_all_connected, t_requests, t_window_start, t_window_end;
};

/* mdb_media.c: media threads. */
int mdb_media_new(mdb_run *run, int index, mdb_media **ret);
void mdb_media_free(mdb_media *m);
mdb_stats *mdb_media_stats(mdb_media *m);
GMainContext *mdb_media_context(mdb_media *m);
mdb_io *mdb_media_io(mdb_media *m); /* NULL with --no-batch */
/* Runs fn(client, arg) on the client's media thread; arg (g_free) may be NULL. */
void mdb_media_post(mdb_client *c, void (*fn)(mdb_client *, char *), char *arg);
/* Stops pacing, frees the peers and joins the thread. */
void mdb_media_stop(mdb_media *m);
/* Registers c (whose peer was just made) with its thread's pacer; media thread. */
void mdb_media_adopt(mdb_client *c);
/* For mdb_media_post() by either signaling adapter: make the peer and send
 * its offer; apply the remote answer; add a remote candidate. */
void mdb_media_offer(mdb_client *c, char *unused);
void mdb_media_answer(mdb_client *c, char *sdp);
void mdb_media_candidate(mdb_client *c, char *cand);

/* mdb_io.c: a media thread's batched path (recvmmsg / sendmmsg on the
 * peers' selected sockets, one epoll set), on that thread only. */
struct _NiceAgent;
typedef void (*mdb_io_packet_fn)(void *ud, uint8_t *buf, size_t len);
int mdb_io_new(GMainContext *ctx, mdb_stats *stats, mdb_io **ret);
void mdb_io_free(mdb_io *io);
/* Moves a peer whose ICE pair is selected onto io: datagrams other than
 * STUN requests go to on_packet(ud, ...), whose buffer may be changed in
 * place.  The caller then stops libnice's reading (nice_agent_attach_recv). */
int mdb_io_link_new(mdb_io *io, struct _NiceAgent *agent, guint stream_id, guint component,
                    bool controlling, int rcvbuf_bytes, mdb_io_packet_fn on_packet, void *ud,
                    mdb_io_link **ret);
mdb_io_link *mdb_io_link_free(mdb_io_link *l);
/* Sending: fill the buffer of the next slot (NULL when the batch is full:
 * flush first), commit its length, and flush the batch to a link. */
uint8_t *mdb_io_tx_slot(mdb_io *io, size_t *ret_cap);
void mdb_io_tx_commit(mdb_io *io, size_t len);
int mdb_io_tx_flush(mdb_io_link *l); /* datagrams sent */

/* mdb_peer.c: one PeerConnection, on its media thread. */
void mdb_peer_debug_init(void); /* main thread, before the media threads */
/* On c's media thread, with its context, figures and batched path. */
int mdb_peer_new(mdb_client *c, mdb_peer **ret);
mdb_peer *mdb_peer_free(mdb_peer *p);
/* Our offer (g_free). */
char *mdb_peer_offer(mdb_peer *p);
/* The remote side's answer, or (answer_to_offer) an offer we must answer;
 * returns our answer in *ret_answer then (g_free). */
int mdb_peer_remote_description(mdb_peer *p, const char *sdp, bool is_offer, char **ret_answer);
int mdb_peer_add_candidate(mdb_peer *p, const char *candidate);
/* Sends every packet due by now_us. */
void mdb_peer_pace(mdb_peer *p, int64_t now_us);
bool mdb_peer_sending(const mdb_peer *p);
/* Loss of what the partner sent, by the gaps in the trailer sequence. */
void mdb_peer_loss(const mdb_peer *p, uint64_t *ret_expected, uint64_t *ret_received);

/* mdb_signal.c (madoguchi) and mdb_janus.c: the signaling clients. */
typedef struct mdb_signaling {
    int (*connect)(mdb_client *c);
    void (*on_established)(mdb_client *c);
    void (*on_message)(mdb_client *c, json_t *msg);
    void (*start_session)(mdb_client *tablet); /* all clients connected */
    void (*tick)(mdb_client *c, int64_t now_us);
    void (*finish)(mdb_client *c);
    /* from the media thread, through the inbox */
    void (*on_local_sdp)(mdb_client *c, const char *type, const char *sdp);
} mdb_signaling;

extern const mdb_signaling mdb_madoguchi_signaling;
extern const mdb_signaling mdb_janus_signaling;

int mdb_ws_init(mdb_run *run, const mdb_signaling *sig);
void mdb_ws_deinit(mdb_run *run);
/* Connects c's WebSocket; path and extra options from the signaling module. */
int mdb_ws_connect(mdb_client *c, const char *host, int port, const char *path, bool tls,
                   const char *subprotocol, const char *origin);
/* Queues a message on c's WebSocket (main thread). */
void mdb_ws_send(mdb_client *c, json_t *msg);
/* Thread-safe: hands a local description to main (type "offer"/"answer"). */
void mdb_signal_local_sdp(mdb_client *c, const char *type, char *sdp);
void mdb_ws_close(mdb_client *c);
/* One service pass; returns < 0 when libwebsockets failed. */
int mdb_ws_service(mdb_run *run);

void mdb_run_error(mdb_run *run, mdb_client *c, const char *what, const char *detail);

/* mdb_login.c: POST /api/login with TOTP (RFC 6238), blocking. */
int mdb_login(const mdb_target *t, const char *username, const char *password,
              const char *totp_secret, char **ret_cookie, char *err, size_t err_len);

static inline int64_t mdb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
