/*
 * Bridges: the media plane's side of a verification session (internal to
 * gateway/).  An md_bridge joins the session's two legs on one worker and
 * relays between them; the control plane's record of the same session is
 * signaling's md_session.  An md_bridge_host is the
 * per-worker registry of sessions plus the scratch buffers of the packet
 * path; it is created by md_media on the control thread, then used and freed
 * on its worker only.  A session holds its two legs inline; a leg owns its
 * ICE agent, DTLS association and two SRTP contexts, and the per-stream
 * relay state of md_relay.c.  Events leave through the host's event sink
 * (md_event_sink.h), which copies them to the control context.
 */
#ifndef MD_BRIDGE_H
#define MD_BRIDGE_H

#include "md_dc.h"
#include "md_dtls.h"
#include "md_event_sink.h"
#include "md_ice.h"
#include "md_media.h"
#include "md_quality.h"
#include "md_sdp.h"
#include "md_rtp.h"
#include "md_rtx.h"
#include "md_srtp.h"

typedef struct md_recorder md_recorder; /* recorder/md_recorder.h */

#include <stdbool.h>
#include <stdint.h>

#define MD_MEDIA_MAX_PACKET 1500
#define MD_SCRATCH_LEN (MD_MEDIA_MAX_PACKET + MD_SRTP_MAX_OVERHEAD + 64)

typedef struct md_bridge_config {
    md_ice_options ice; /* strings owned by the host */
    unsigned dtls_timeout_ms;
    size_t max_packet;
    unsigned nack_packets;             /* most packets a NACK store keeps; 0: no store */
    unsigned nack_min_ms, nack_max_ms; /* how long it keeps them (md_rtx.h) */
    unsigned keyframe_interval_ms;
    unsigned max_remote_candidates;
    size_t max_message_size;       /* our a=max-message-size, SCTP reassembly cap */
    unsigned chat_queue;           /* chat messages waiting per leg for its chat channel */
    unsigned file_queue;           /* stored files waiting per leg to be offered to it */
    unsigned record_queue_packets; /* per recorded stream; 0: the recorder's default */
} md_bridge_config;

typedef struct md_bridge_host md_bridge_host;
typedef struct md_bridge md_bridge;

/* A session's file policy, from md_media_session_options. */
typedef struct md_bridge_files {
    md_evidence *evidence; /* borrowed; NULL: files refused */
    uint64_t max_file_size;
    char **file_types;     /* owned, NULL-terminated; NULL: defaults */
    size_t max_chat_bytes; /* 0: md_dc_limits' default */
} md_bridge_files;

/* md_bridge_dc.c: one transfer in either direction (defined there). */
typedef struct md_file_in md_file_in;
typedef struct md_file_out md_file_out;

enum { MD_KIND_AUDIO = 0, MD_KIND_VIDEO = 1, MD_KINDS = 2 };

typedef enum md_leg_state {
    MD_LEG_IDLE = 0, /* no offer yet */
    MD_LEG_WAITING,  /* offer held until the other leg's arrives */
    MD_LEG_ANSWERED, /* answered; ICE and DTLS in progress */
    MD_LEG_CONNECTED,
    MD_LEG_FAILED,
} md_leg_state;

/* What a leg sends to the gateway, per kind. */
typedef struct md_stream_in {
    uint8_t pt;
    uint32_t ssrc;     /* signalled, then latched from packets */
    unsigned feedback; /* MD_SDP_FB_* the leg accepts for this stream */
    uint32_t clock_rate;
    uint64_t packets, bytes;
    md_rx_stats rx; /* RFC 3550 A.1/A.3/A.8, for MD_MEDIA_QUALITY */
    /* The leg's last sender report for this stream (RFC 3550 6.4.1). */
    bool have_sr;
    uint32_t sr_ssrc, sr_rtp;
    uint64_t sr_ntp;      /* in the leg's clock */
    gint64 sr_arrival_us; /* monotonic */
} md_stream_in;

/* What the gateway sends on a leg, per kind, rewritten from the other leg. */
typedef struct md_stream_out {
    bool active;
    uint8_t pt;
    uint32_t ssrc;
    uint32_t clock_rate;
    bool have_source;
    uint32_t source_ssrc;
    uint16_t seq_offset; /* out = in + offset (mod 2^16) */
    uint32_t ts_offset;
    uint16_t last_seq;
    uint32_t last_ts;
    gint64 last_time_us;
    md_rtx *rtx; /* video only: what we sent, for NACKs */
    uint64_t packets, bytes;
    uint64_t octets; /* RTP payload octets, for our sender reports */
} md_stream_out;

/* Per leg, on its worker; sent in every MD_MEDIA_QUALITY event
 * (docs/internals/media.md has the meaning of each). */
typedef struct md_leg_counters {
    uint64_t malformed, oversize, unknown_pt, srtp_errors, not_ready;
    uint64_t nack_received;                               /* NACK packets from this leg */
    uint64_t nack_answered, nack_missed;                  /* sequence numbers, from our buffer */
    uint64_t nack_sent, nack_sent_seqs;                   /* our own NACKs to this leg, for gaps */
    uint64_t pli_fir_received, pli_fir_forwarded;         /* from this leg, to the other */
    uint64_t keyframe_requests_sent, keyframe_suppressed; /* PLI/FIR to this leg */
    uint64_t remb_forwarded, candidates_ignored, sr_sent, rr_blocks;
} md_leg_counters;

typedef struct md_leg_ctx {
    md_bridge *session;
    md_leg which;
    md_leg_state state;
    md_sdp *pending_offer;         /* WAITING: held until both offers are in */
    GPtrArray *pending_candidates; /* before the answer */
    unsigned remote_candidates;
    md_sdp_choice choice;
    md_sdp_transport remote; /* bundle transport of the current offer */
    char bundle_mid[MD_SDP_MAX_MID + 1];
    uint64_t answer_version;
    md_ice *ice;
    md_dtls *dtls;
    md_srtp *srtp_in, *srtp_out;
    bool ice_connected, ever_connected;
    md_stream_in in[MD_KINDS];
    md_stream_out out[MD_KINDS];
    gint64 last_keyframe_request_us;
    uint8_t fir_seq;
    md_leg_counters counters;
    /* Our NTP clock minus the leg's, from its first SR: maps the leg's SR
     * onto our clock for the SRs we send the other leg (md_quality_tick.c). */
    bool have_clock_offset;
    int64_t clock_offset; /* 32.32 fixed point */
    double rtt_ms;        /* last RTT measured from this leg's reports; < 0: none */
    gint64 last_tick_us;
    /* Data channels (md_bridge_dc.c): NULL until DTLS is up, and when the
     * offer has no data m-line.  chat_queue holds chat waiting for this leg's
     * chat channel (bounded by cfg.chat_queue); it outlives dc. */
    md_dc *dc;
    GQueue chat_queue;
    GQueue chat_unacked; /* sent to this leg, awaiting its chat_ack; outlives dc */
    /* At most one file coming in from and one going out to this leg; both
     * end (nothing stored for file_in) when the association goes.
     * file_queue holds stored files (md_owned_file) waiting to be offered
     * to this leg (bounded by cfg.file_queue); like chat_queue it outlives
     * dc, so a file meant for a leg that reconnects is offered again. */
    md_file_in *file_in;
    md_file_out *file_out;
    GQueue file_queue;
    uint32_t next_file_index;        /* our transfer index towards this leg */
    unsigned file_failures;          /* refused or failed incoming files (md_bridge_dc.c) */
    char still_id[MD_DC_ID_MAX + 1]; /* tablet: the still it may send; "" none */
} md_leg_ctx;

struct md_bridge {
    md_bridge_host *host;
    char *id;
    uint64_t serial;
    char **video_codecs;
    bool require_srtp_gcm; /* policy: DTLS-SRTP offers GCM only */
    md_bridge_files files;
    const char *video_codec; /* chosen, points into video_codecs */
    int (*video_probe)(const uint8_t *, size_t, unsigned *, unsigned *); /* md_codec_probe.h */
    bool refused;
    uint64_t sdp_session_id;
    md_leg_ctx legs[2];
    GSource *reaper;
    GSource *quality_timer; /* every MD_QUALITY_INTERVAL_MS */
    md_recorder *recorder;  /* while recording (md_bridge_rec.c); fed by md_relay.c */
    char *recording_id;
};

struct md_bridge_host {
    GMainContext *ctx;
    md_bridge_config cfg;
    md_dtls_identity *identity;
    md_event_sink *sink;
    GHashTable *sessions;             /* id -> md_bridge */
    uint8_t scratch[MD_SCRATCH_LEN];  /* the packet being relayed */
    uint8_t rtcp_out[MD_SCRATCH_LEN]; /* RTCP built for the other leg */
    unsigned n_dc;                    /* legs with an md_dc on this worker */
    GSource *sctp_timer;              /* md_sctp_tick() every 10 ms while n_dc > 0 */
    GSource *trim_timer;              /* md_worker_trim_heap() once sessions settle (md_bridge.c) */
    size_t heap_freed;                /* by the NACK stores since the last trim */
};

/* Control thread: makes a host for a worker (takes a ref on identity/sink). */
md_bridge_host *md_bridge_host_new(GMainContext *worker_ctx, const md_bridge_config *cfg,
                                   md_dtls_identity *identity, md_event_sink *sink);
/* Worker thread: closes every session and frees the host. */
void md_bridge_host_free(md_bridge_host *host);

/* Worker thread commands; ownership of the pointer arguments is taken. */
void md_bridge_open(md_bridge_host *host, const char *id, uint64_t serial, char **video_codecs,
                    bool require_srtp_gcm, md_bridge_files *files);
void md_bridge_offer(md_bridge_host *host, const char *id, md_leg leg, md_sdp *offer);
void md_bridge_candidate(md_bridge_host *host, const char *id, md_leg leg, char *candidate);
void md_bridge_close(md_bridge_host *host, const char *id);
/* See md_media_chat_deliver(); text is copied. */
void md_bridge_chat_deliver(md_bridge_host *host, const char *id, md_leg to_leg,
                            const char *chat_id, int64_t ts, const char *text);

/* See md_media_file_deliver(); ownership of f's strings is taken. */
void md_bridge_file_deliver(md_bridge_host *host, const char *id, md_leg to_leg, md_owned_file *f);
/* See md_media_still_expect(). */
void md_bridge_still_expect(md_bridge_host *host, const char *id, const char *still_id);

/* md_bridge_rec.c: see md_media_record_start(); file is taken. */
void md_bridge_record_start(md_bridge_host *host, const char *id, const char *recording_id,
                            md_evidence_rec *file);
void md_bridge_record_stop(md_bridge_host *host, const char *id);
void md_bridge_record_stall(md_bridge_host *host, const char *id, bool stalled);
/* Hands the session's recorder (if any) to its thread to finish. */
void md_bridge_record_end(md_bridge *s);

/* Bytes the NACK stores of a session just freed (md_quality_tick.c): after
 * MD_BRIDGE_TRIM_AFTER on the worker, the heap is trimmed. */
#define MD_BRIDGE_TRIM_AFTER (1024 * 1024)
void md_bridge_heap_freed(md_bridge_host *host, size_t bytes);

/* md_bridge_dc.c: the leg's data channels, on the worker. */
/* DTLS is up (or a renegotiation added a data m-line): starts SCTP. */
void md_bridge_dc_start(md_leg_ctx *leg);
/* An application-data record from the leg's DTLS. */
void md_bridge_dc_input(md_leg_ctx *leg, const uint8_t *buf, size_t len);
/* Aborts the association (before the DTLS it runs over is freed). */
void md_bridge_dc_release(md_leg_ctx *leg);
/* Drops queued chat and files (session end). */
void md_bridge_dc_clear(md_leg_ctx *leg);

/* md_relay.c: the packet path, on the worker. */
int md_relay_leg_prepare(md_leg_ctx *leg, const md_bridge_config *cfg);
void md_relay_leg_clear(md_leg_ctx *leg);
void md_relay_incoming(md_leg_ctx *from, const uint8_t *buf, size_t len);
/* Asks the leg for a video keyframe (PLI, else FIR); force skips the rate
 * limit.  True when a request was sent. */
bool md_relay_request_keyframe(md_leg_ctx *leg, bool force);
/* Protects and sends RTCP built in buf (cap bytes of room) on the leg. */
void md_relay_send_rtcp(md_leg_ctx *to, uint8_t *buf, size_t len, size_t cap);

/* md_quality_tick.c: statistics around the packet path, on the worker. */
/* Per RTP packet of kind k from the leg (after parse): receive statistics,
 * picture size, and a NACK back to the leg for a gap (RFC 4585 6.2.1). */
void md_quality_on_rtp(md_leg_ctx *from, int k, const md_rtp_header *h, const uint8_t *packet,
                       size_t len, gint64 now_us);
/* A report block from the leg, about what it receives from us: RTT. */
void md_quality_on_report_block(md_leg_ctx *from, const uint8_t *block);
/* The leg's sender report: remembered for LSR/DLSR and clock mapping. */
void md_quality_on_sr(md_leg_ctx *from, const uint8_t *sr, size_t len);
/* Starts/stops the session's once-a-second timer (SRs and quality events). */
void md_quality_start(md_bridge *s);
void md_quality_stop(md_bridge *s);

static inline md_leg_ctx *md_leg_other(md_leg_ctx *leg)
{
    return &leg->session->legs[leg->which == MD_LEG_TABLET ? MD_LEG_VERIFIER : MD_LEG_TABLET];
}

#endif
