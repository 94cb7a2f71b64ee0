/*
 * State shared by the control-plane files (md_server.c: connections and
 * dispatch; md_sessions.c: queue and session lifecycle; md_http_api.c: HTTP
 * endpoints).  Everything here lives on the control thread.  md_server.c
 * calls the others; they reach parties through md_party.h and the audit
 * log and origins through md_server_audit.c and md_server_origins.c, never
 * md_server.c itself.
 *
 * Ownership: md_server owns every md_session (sessions table) and every
 * md_party (one per open WebSocket, freed in on_close).  A session points at
 * the parties of its legs while they are connected; a party points at its
 * unfinished session.  Both links are cleared together.
 */
#ifndef MD_SERVER_PRIVATE_H
#define MD_SERVER_PRIVATE_H

#include "md_audit.h"
#include "md_config.h"
#include "md_evidence.h"
#include "md_media.h"
#include "md_metrics.h"
#include "md_party.h"
#include "md_proto.h"
#include "md_registry.h"
#include "md_server.h"
#include "md_staff.h"
#include "md_store.h"
#include "md_ws.h"

#include <glib.h>
#include <jansson.h>

typedef struct md_session md_session;

/* Consent and recording of one session (md_session_recording.c,
 * docs/protocol.md "Recording"). */
typedef enum md_rec_state {
    MD_REC_IDLE,      /* nothing asked */
    MD_REC_ASKING,    /* the tablet was asked for the applicant's consent */
    MD_REC_CONSENTED, /* consent given; recording starts once the session is live */
    MD_REC_ON,        /* recording */
    MD_REC_STOPPED,   /* stopped by the verifier */
    MD_REC_REFUSED,   /* consent refused: nothing recorded */
    MD_REC_FAILED,    /* the recorder could not start or failed */
} md_rec_state;

typedef struct md_session_rec {
    enum md_recording_policy policy; /* the municipality's, fixed at the request */
    md_rec_state state;
    bool consent_given; /* asked once per session */
    bool want;          /* the verifier (or the required policy) wants it running */
    bool ran;           /* a recording with consent started in this session */
    unsigned count;     /* recordings started in this session */
    char *recording_id; /* the running one, else NULL */
} md_session_rec;

typedef enum md_session_state {
    MD_STATE_REQUESTED,
    MD_STATE_ASSIGNED,
    MD_STATE_CONNECTING,
    MD_STATE_LIVE,
    MD_STATE_ENDED,
} md_session_state;

struct md_session {
    char *id;
    char *municipality;
    char *post_office;
    char *post_office_name; /* shown in the verifiers' queue */
    char *device_id;
    char *procedure;
    char *verifier; /* username once assigned */
    md_session_state state;
    int64_t requested_ms; /* wall clock */
    int64_t requested_mono_ms;
    md_party *leg[2];              /* indexed by md_leg; NULL while disconnected */
    bool leg_connected[2];         /* media up */
    bool leg_was_up[2];            /* media was up at some point (a later loss may rejoin) */
    md_quality_thresholds quality; /* from the municipality's policy */
    bool quality_warned[2];        /* a leg is below the thresholds (audited on change) */
    bool tablet_media_seen;        /* the gateway sent the tablet's media on the verifier's leg */
    bool media_open;
    guint timer; /* queue wait, connect timeout or rejoin grace */
    enum md_assignment_mode assignment;
    unsigned stills; /* stills asked for: names the next one "still-<n+1>" */
    md_session_rec rec;
};

struct md_server {
    const md_config *cfg;
    GMainLoop *loop;
    md_store *store;
    md_audit *audit;
    md_procedures *procedures;
    md_ws *ws;
    md_media *media;
    md_evidence *evidence; /* chat transcripts (evidence.dir) */
    md_auth_limits auth_limits;
    struct md_login_limiter *login_limiter; /* md_limits.h */
    struct md_login_pool *login_pool;       /* md_login_pool.h */
    struct md_audit_check *audit_check;     /* md_audit_check.h; NULL on an in-memory store */
    char **staff_origins;                   /* auth.allowed_origins */
    char **device_origins;                  /* the same hosts on the device port */
    md_metrics *metrics;                    /* GET /metrics on its own listener */
    GHashTable *sessions;                   /* id -> md_session* (unfinished only) */
    GPtrArray *parties;                     /* md_party*, every open connection */
    GHashTable *device_conns;               /* device id -> GINT count */
    unsigned recordings_running;            /* started, final MD_MEDIA_RECORDING not yet seen */
    bool admission_refused;  /* a random assignment waits for media capacity: retried each tick */
    GHashTable *interrupted; /* party key -> ids of sessions a restart ended (md_recovery.c) */
    guint tick_timer;
    guint crl_timer;
    guint retention_timer;        /* daily md_retention_run */
    GHashTable *playback_tickets; /* md_http_recording.c; NULL until the first */
    guint signal_sources[3];
    struct md_store_syncer *syncer; /* md_sync_gate.c */
    uint64_t sync_gate_seq;         /* the last md_sync_gate_begin() */
};

/* md_sync_gate.c: set-up writes whose only acknowledgment is a WebSocket
 * message commit without waiting for the disk; replies queued from
 * md_sync_gate_begin() on leave once a syncer thread made them durable
 * (docs/internals/signaling.md, "Acknowledged only when durable"). */
int md_sync_gate_open(md_server *srv);
void md_sync_gate_begin(md_server *srv);
void md_sync_gate_end(md_server *srv);
void md_sync_gate_close(md_server *srv); /* before md_ws_free: syncs and releases what is held */

/* md_server_audit.c: an audit entry (the metrics count it; a failure is
 * logged); the sequence number, or a negative error. */
int64_t md_server_audit(md_server *srv, const char *actor, const char *event,
                        const char *municipality, const char *post_office, const char *session,
                        json_t *detail /* stolen, nullable */);

/* md_server_origins.c: fills staff_origins and device_origins (start-up). */
void md_server_load_origins(md_server *srv);
/* Whether a browser Origin may talk to `listener` (RFC 6454 origins,
 * compared as ASCII strings after dropping one trailing "/"). */
bool md_server_origin_allowed(md_server *srv, md_listener listener, const char *origin);

/* md_sessions.c: message handlers and lifecycle */
typedef void (*md_msg_handler)(md_server *srv, md_party *p, const md_proto_result *m);
extern const md_msg_handler md_session_handlers[MD_MSG__COUNT];
void md_sessions_party_joined(md_server *srv, md_party *p);
/* The session a message names, if the sender is one of its parties; else
 * `error session_unknown` to the sender and NULL.  Others' sessions look
 * unknown, so ids of other municipalities' sessions cannot be probed. */
md_session *md_sessions_own(md_server *srv, md_party *p, const md_proto_result *m);
void md_sessions_party_left(md_server *srv, md_party *p);
void md_sessions_on_media_event(const md_media_event *ev, void *userdata);
void md_sessions_shutdown(md_server *srv);
/* Once a second: random assignments refused for media capacity try again. */
void md_sessions_tick(md_server *srv);
void md_session_free(md_session *s);

/* md_session_media.c: the seam to the media plane (gateway/md_media.h) */
int md_session_media_open(md_server *srv, md_session *s);
int md_session_media_offer(md_server *srv, md_session *s, md_leg leg, const char *sdp,
                           char **ret_detail);
int md_session_media_candidate(md_server *srv, md_session *s, md_leg leg, const char *candidate,
                               const char *mid);
void md_session_media_close(md_server *srv, md_session *s);
/* The iceServers list for RTCPeerConnection (docs/protocol.md, assigned). */
json_t *md_session_ice_servers(md_server *srv, const md_session *s);

/* md_session_chat.c: chat from the data channels (MD_MEDIA_CHAT): transcript,
 * audit, then relay; and refused channels (MD_MEDIA_CHANNEL_REFUSED). */
void md_session_chat_received(md_server *srv, md_session *s, const md_media_event *ev);
void md_session_channel_refused(md_server *srv, md_session *s, const md_media_event *ev);
void md_session_file_received(md_server *srv, md_session *s, const md_media_event *ev);
void md_session_file_failed(md_server *srv, md_session *s, const md_media_event *ev);
/* The verifier's "still": see md_session_chat.c. */
void md_session_still_request(md_server *srv, md_session *s, md_party *verifier, const char *re);

/* md_sessions.c: ends a session (the reason is a static string);
 * by = the party that ended it (NULL: the gateway). */
void md_session_end(md_server *srv, md_session *s, const char *outcome, const char *reason,
                    md_party *by, const char *re);

/* md_session_recording.c: policy, consent and the recorder's control
 * (docs/protocol.md "Recording").  Hooks called by md_sessions.c: */
void md_session_recording_init(md_session *s, enum md_recording_policy policy);
void md_session_recording_clear(md_session *s);
const char *md_session_recording_policy_name(const md_session *s);
/* Assigned: with policy "required" the tablet is asked for consent now. */
void md_session_recording_assigned(md_server *srv, md_session *s);
/* Both legs up: a recording waiting for media starts. */
void md_session_recording_live(md_server *srv, md_session *s);
/* A leg came back: it is told the recording state (the tablet the question). */
void md_session_recording_rejoined(md_server *srv, md_session *s, md_party *p);
/* The session is ending: a running recording is stopped (before media close). */
void md_session_recording_ending(md_server *srv, md_session *s);
/* 0, or -MD_E_RECORDING_REQUIRED for "verified" without a consented recording. */
int md_session_recording_outcome_check(const md_session *s, const char *result);
void md_session_on_record(md_server *srv, md_party *p, const md_proto_result *m);
void md_session_on_consent(md_server *srv, md_party *p, const md_proto_result *m);
/* MD_MEDIA_RECORDING (also after the session ended). */
void md_session_recording_event(md_server *srv, const md_media_event *ev);
/* serve start-up: recordings a crash interrupted are closed and audited. */
int md_session_recording_recover(md_server *srv);
/* serve shutdown: waits (at most timeout_ms) for stopped recordings' reports. */
void md_session_recording_drain(md_server *srv, int timeout_ms);

/* md_http_recording.c: the auditor's recording list and playback; true
 * when the request was one of its paths (resp filled). */
bool md_http_recording_handle(md_server *srv, const md_http_request *req, md_http_response *resp);

/* md_http_api.c */
void md_http_api_handle(md_server *srv, const md_http_request *req, md_http_response *resp);
/* Shared by the HTTP API files: a JSON answer, an error answer with its
 * stable code, and the staff member behind the cookie (or a 401 answer). */
void md_http_respond_json(md_http_response *resp, int status, json_t *body /* stolen */);
void md_http_respond_error(md_http_response *resp, int err, const char *detail);
int md_http_authenticate(md_server *srv, const md_http_request *req, md_http_response *resp,
                         md_staff *ret);

/* A route of the staff listener; a table ends with a NULL method. */
typedef void (*md_http_handler)(md_server *srv, const md_http_request *req, md_http_response *resp);
typedef struct md_http_route {
    const char *method;
    const char *path;
    md_http_handler handler;
} md_http_route;

/* md_http_audit.c: the auditor's API; md_http_admin.c: the admin's */
extern const md_http_route md_http_audit_routes[];
extern const md_http_route md_http_admin_routes[];

#endif
