/*
 * The media plane as seen by the control plane.
 *
 * A verification session has two legs (tablet, verifier), each one WebRTC
 * PeerConnection to the gateway: the client offers, the gateway answers.  Both
 * legs of a session are pinned to one media worker thread; the control thread
 * only calls the functions below, which post commands to that worker, and
 * receives md_media_event callbacks on the GMainContext given at creation.
 * No function here blocks on the network.
 */
#ifndef MD_MEDIA_H
#define MD_MEDIA_H

#include <glib.h>
#include <jansson.h>

typedef struct md_media md_media;

typedef enum md_leg { MD_LEG_TABLET = 0, MD_LEG_VERIFIER = 1 } md_leg;

typedef enum md_media_event_type {
    MD_MEDIA_ANSWER,           /* sdp: the gateway's answer to the leg's offer */
    MD_MEDIA_CANDIDATE,        /* candidate + mid; candidate NULL = end of candidates */
    MD_MEDIA_LEG_CONNECTED,    /* ICE + DTLS up, media may flow */
    MD_MEDIA_LEG_DISCONNECTED, /* consent or path lost; may come back (ICE restart) */
    MD_MEDIA_LEG_FAILED,       /* error: MD_E_* code; the leg is gone */
    MD_MEDIA_QUALITY,          /* stats: per-leg quality object, once a second */
} md_media_event_type;

typedef struct md_media_event {
    md_media_event_type type;
    const char *session_id;
    md_leg leg;
    const char *sdp;
    const char *candidate;
    const char *mid;
    int error;
    const char *error_detail; /* nullable human text, e.g. the missing codec */
    json_t *stats;            /* borrowed */
} md_media_event;

/* Called on the control context; pointers are valid during the call only. */
typedef void (*md_media_event_cb)(const md_media_event *ev, void *userdata);

#endif
