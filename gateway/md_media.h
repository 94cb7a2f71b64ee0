/*
 * The media plane as seen by the control plane.
 *
 * A verification session has two legs (tablet, verifier), each one WebRTC
 * PeerConnection to the gateway: the client offers, the gateway answers.  Both
 * legs of a session are pinned to one media worker thread; the control thread
 * only calls the functions below, which post commands to that worker, and
 * receives md_media_event callbacks on the GMainContext given at creation.
 * No function here blocks on the network.
 *
 * Threads: every function must be called from the thread that runs the
 * control context; events are delivered there, in the order the worker
 * produced them for one session.  Events for a session stop as soon as
 * md_media_session_close() returns.
 *
 * Codec rule (DESIGN 4): nothing is transcoded, so both legs must send the
 * same video codec.  The gateway therefore answers neither leg until it holds
 * both offers; it then takes the first codec of the session's preference list
 * that both offers carry and answers both with it, or answers neither: both
 * legs get MD_MEDIA_LEG_FAILED with -MD_E_CODEC_MISMATCH and a detail naming
 * what each side offered.  Audio is Opus.  Later offers on a leg
 * (renegotiation, or an ICE restart with new ice-ufrag/ice-pwd, RFC 8445 9 /
 * RFC 8829 5.2.1) are answered at once with the session's codec; an offer with
 * a new DTLS fingerprint (a new PeerConnection after a page reload) replaces
 * the leg's transport entirely.
 */
#ifndef MD_MEDIA_H
#define MD_MEDIA_H

#include "md_config.h"
#include "md_evidence.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The longest trickled candidate line accepted (an a=candidate value); the
 * signaling schema refuses longer ones with this same cap. */
#define MD_MEDIA_MAX_CANDIDATE_BYTES 512

typedef struct md_media md_media;

typedef enum md_leg { MD_LEG_TABLET = 0, MD_LEG_VERIFIER = 1 } md_leg;

typedef enum md_media_event_type {
    MD_MEDIA_ANSWER,           /* sdp: the gateway's answer to the leg's offer */
    MD_MEDIA_CANDIDATE,        /* candidate + mid; candidate NULL = end of candidates */
    MD_MEDIA_LEG_CONNECTED,    /* ICE + DTLS + SRTP up, media flows */
    MD_MEDIA_LEG_DISCONNECTED, /* consent or path lost; may come back (ICE restart) */
    MD_MEDIA_LEG_FAILED,       /* error: MD_E_* code; the leg is gone */
    MD_MEDIA_QUALITY, /* stats: per connected leg, once a second (docs/internals/media.md) */
    /* chat_id, chat_ts, chat_text, chat_sha256: a valid chat message the leg
     * sent on its "chat" data channel.  Nothing was relayed or acknowledged:
     * the control thread stores and audits it, then calls
     * md_media_chat_deliver() (DESIGN 4: persisted, then relayed). */
    MD_MEDIA_CHAT,
    /* label (nullable), error: the leg opened a data channel the gateway does
     * not serve; its stream was reset, the session goes on. */
    MD_MEDIA_CHANNEL_REFUSED,
    /* file: a file the leg sent on its "file" channel was checked (size
     * cap, type by magic bytes, SHA-256 equal to the offer's; a still's
     * width and height equal to its image header's) and committed to the
     * evidence store under (session, file.id).  Nothing was offered to the
     * other leg nor verified to the sender: the control thread records and
     * audits it, then calls md_media_file_deliver() (DESIGN 4). */
    MD_MEDIA_FILE,
    /* file.id (file.still), error: an offer the gateway refused, or a
     * transfer that failed or was cut; the sender got file_refuse or
     * file_error {id, code} and nothing was stored. */
    MD_MEDIA_FILE_FAILED,
    /* recording: the session's recording changed state (md_media_record_*).
     * state "recording": packets are being captured (codec known; the
     * pipeline is built on the recorder's own thread meanwhile, and if it
     * cannot be, the recording ends "cut" with recorder_failed when
     * stopped); "complete" or
     * "cut": it ended, the file is closed and recording.sha256/duration_ms
     * are final.  Unlike every other event, the final one is delivered even
     * after md_media_session_close() (closing a session stops its recording
     * and the control thread must still store the outcome); never after
     * md_media_free(). */
    MD_MEDIA_RECORDING,
} md_media_event_type;

/* A file as stored and offered on; strings borrowed. */
typedef struct md_media_file {
    const char *id;     /* [A-Za-z0-9_-]{1,64}, the evidence file id */
    const char *name;   /* checked (md_dc_check_file_name); may be personal data */
    const char *mime;   /* checked by content */
    const char *sha256; /* lower-case hex of the stored plaintext */
    uint64_t size;
    bool still;             /* kind "still": the photo of an md_media_still_expect() */
    uint32_t width, height; /* still: pixels, as in its image header */
} md_media_file;

/* A recording's state change; strings borrowed. */
typedef struct md_media_recording {
    const char *id;     /* as given to md_media_record_start() */
    const char *state;  /* "recording", "complete", "cut" */
    const char *codec;  /* "VP8", "H264" */
    const char *sha256; /* final states: hex SHA-256 of the ciphertext file */
    uint64_t bytes;     /* final states: ciphertext size */
    int64_t duration_ms;
    uint64_t packets, dropped; /* RTP packets recorded / dropped at full queues */
} md_media_recording;

typedef struct md_media_event {
    md_media_event_type type;
    const char *session_id;
    md_leg leg;
    const char *sdp;
    const char *candidate; /* "candidate:..." without "a=" */
    const char *mid;
    int error;
    const char *error_detail;     /* nullable human text, e.g. the missing codec */
    json_t *stats;                /* borrowed */
    const char *chat_id;          /* MD_MEDIA_CHAT: [A-Za-z0-9_-]{1,64} */
    const char *chat_text;        /* MD_MEDIA_CHAT: validated UTF-8 (md_dc_check_chat_text) */
    const char *chat_sha256;      /* MD_MEDIA_CHAT: lower-case hex SHA-256 of chat_text */
    int64_t chat_ts;              /* MD_MEDIA_CHAT: the sender's ms since the epoch */
    const char *label;            /* MD_MEDIA_CHANNEL_REFUSED */
    md_media_file file;           /* MD_MEDIA_FILE, MD_MEDIA_FILE_FAILED */
    md_media_recording recording; /* MD_MEDIA_RECORDING; error set when cut by a failure */
} md_media_event;

/* Called on the control context; pointers are valid during the call only.
 * The callback may call md_media_session_close() but not md_media_free(). */
typedef void (*md_media_event_cb)(const md_media_event *ev, void *userdata);

/* Starts cfg->media.workers threads (0: one per core) and makes the DTLS
 * certificate.  control_ctx is where events are delivered (referenced).
 * -MD_E_CONFIG for an unusable media section, -MD_E_CRYPTO, -EAGAIN. */
int md_media_new(const md_config *cfg, GMainContext *control_ctx, md_media_event_cb cb,
                 void *userdata, md_media **ret);

/* Closes every session and joins the workers; no event is delivered after. */
md_media *md_media_free(md_media *m);

/* "sha-256 AB:..." of the gateway's DTLS certificate (for diagnostics). */
const char *md_media_fingerprint(const md_media *m);

/* Admission figures (docs/internals/media.md, "Admission"), control thread:
 * the number of workers, each one's load over the last second in permille
 * (md_worker_load_permille), the process's CPU time over the last second as
 * a share of the CPUs it may run on, and the sessions refused since the start. */
unsigned md_media_workers(const md_media *m);
unsigned md_media_worker_load_permille(const md_media *m, unsigned worker);
unsigned md_media_process_load_permille(const md_media *m);
uint64_t md_media_admission_refusals(const md_media *m);

typedef struct md_media_session_options {
    /* NULL-terminated preference from "VP8", "H264" (constrained baseline,
     * packetization-mode 1), "VP9", "AV1", e.g. {"VP8", "H264", NULL}. */
    const char *const *video_codecs;
    /* Offer only SRTP_AEAD_AES_128_GCM in DTLS-SRTP (RFC 7714); a client that
     * cannot do GCM fails its leg with dtls_failed. */
    bool require_srtp_gcm;
    /* Files (channel "file").  evidence is borrowed and must outlive the
     * session; NULL refuses every file_offer.  The worker writes files into
     * it with its own md_evidence_file writers (md_evidence is thread-safe). */
    md_evidence *evidence;
    uint64_t max_file_size;        /* bytes; 0 = 20 MiB (md_dc_limits) */
    const char *const *file_types; /* NULL-terminated MIME list; NULL = JPEG, PNG, PDF */
    size_t max_chat_bytes;         /* chat text; 0 = 2000 bytes (md_dc_limits) */
} md_media_session_options;

/* Opens a session on the worker with the fewest sessions among those that
 * may take it (md_admit.h).
 * -EEXIST, -EINVAL (bad id or codec list), -MD_E_MEDIA_CAPACITY (media.max_sessions
 * reached, or no worker may take it: md_admit.h). */
int md_media_session_open(md_media *m, const char *session_id, const md_media_session_options *opt);

/* The leg's offer (sdp of len bytes, no NUL needed).  Parsed and checked here:
 * -MD_E_SDP_INVALID, -MD_E_SDP_UNSUPPORTED, -MD_E_BUNDLE_REQUIRED with a
 * reason in *ret_detail (nullable, g_free) and nothing posted; else 0 and the
 * answer, or LEG_FAILED, comes as an event.  -MD_E_SESSION_UNKNOWN. */
int md_media_leg_offer(md_media *m, const char *session_id, md_leg leg, const char *sdp, size_t len,
                       char **ret_detail);

/* A trickled remote candidate ("candidate:..." or "a=candidate:..."), or
 * NULL for end-of-candidates (RFC 8838 8.2).  mid is informative only since
 * everything is bundled.  Candidates that arrive before the offer is answered
 * are kept (media.max_remote_candidates).  -MD_E_SESSION_UNKNOWN, -EINVAL. */
int md_media_leg_candidate(md_media *m, const char *session_id, md_leg leg, const char *candidate,
                           const char *mid);

/* After an MD_MEDIA_CHAT from the other leg was stored: sends
 * {type:"chat", id, ts, text} to to_leg and {type:"chat_ack", id} to the
 * sender.  If to_leg's chat channel is not open yet, the message waits on the
 * worker (at most media.chat_queue_messages per leg, the oldest dropped
 * beyond) and goes out when it opens.  -MD_E_SESSION_UNKNOWN, -EINVAL. */
int md_media_chat_deliver(md_media *m, const char *session_id, md_leg to_leg, const char *chat_id,
                          int64_t ts, const char *text);

/* After an MD_MEDIA_FILE from the other leg was audited: sends
 * file_verified {id, sha256} to the sender and offers the file to to_leg
 * (file_offer), streaming it from the evidence store once accepted, chunk by
 * chunk as the leg's send buffer drains.  Files for a leg that is busy with
 * another or whose "file" channel is not open yet wait on the worker (at
 * most media.file_queue_files; beyond that the newest is not offered, debug
 * log) and are offered in turn.  -MD_E_SESSION_UNKNOWN, -EINVAL. */
int md_media_file_deliver(md_media *m, const char *session_id, md_leg to_leg,
                          const md_media_file *f);

/* The verifier asked for a still (signaling "still"): the tablet leg may now
 * offer one file of kind "still" with this id; an earlier expected id is
 * forgotten.  -MD_E_SESSION_UNKNOWN, -EINVAL. */
int md_media_still_expect(md_media *m, const char *session_id, const char *still_id);

/*
 * Recording (DESIGN 6, docs/internals/recorder.md).  The caller (after
 * consent and policy) creates the recording with md_recording_begin()
 * (core/md_recording.h) and hands its writer here; ownership of file is
 * taken in every case.  On the worker a recorder (recorder/md_recorder.h)
 * is attached to the session: from then on each decrypted RTP packet of
 * both legs, audio and video, is copied into its bounded per-stream queue
 * (full: dropped and counted; forwarding never waits), and a keyframe is
 * requested from each leg that sends video (again whenever a leg
 * reconnects).  Events: MD_MEDIA_RECORDING "recording" once the recorder
 * is attached, then "complete" (after md_media_record_stop or session close) or
 * "cut" (pipeline or disk failure; error set).  If the session already
 * records, or has no codec yet (both offers not in), the worker ends the new
 * one at once as "cut" with -EBUSY / -MD_E_SESSION_STATE.
 * -MD_E_SESSION_UNKNOWN, -EINVAL (recording_id not [A-Za-z0-9_-]{1,64}).
 */
int md_media_record_start(md_media *m, const char *session_id, const char *recording_id,
                          md_evidence_rec *file);
/* Stops the session's recording (no-op if none): "complete" follows.
 * -MD_E_SESSION_UNKNOWN. */
int md_media_record_stop(md_media *m, const char *session_id);
/* Test hook: stalls (or releases) the session's recording pipeline at its
 * sink, as a muxer that cannot keep up; tests/recorder checks forwarding
 * keeps its rate while the drop counter rises.  -MD_E_SESSION_UNKNOWN. */
int md_media_record_test_stall(md_media *m, const char *session_id, bool stalled);

/* -MD_E_SESSION_UNKNOWN; otherwise the session is gone for the caller. */
int md_media_session_close(md_media *m, const char *session_id);

/* "tablet", "verifier"; inline, so worker code names legs without calling
 * into this control-thread face. */
static inline const char *md_leg_name(md_leg leg)
{
    return leg == MD_LEG_TABLET ? "tablet" : "verifier";
}

#endif
