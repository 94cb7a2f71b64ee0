/*
 * A party: one open WebSocket of a tablet or a staff member, as the control
 * plane sees it, and what is said to it.  md_server.c makes a party when it
 * admits a connection and frees it in on_close; the files it calls (the
 * session handlers, md_recovery.c, the HTTP API) send to parties and end
 * staff sockets through the functions below, so none of them calls back
 * into md_server.c.  Control thread only.
 *
 * Sending never blocks: the message is queued on the connection, and a
 * connection whose queue is over its cap is closed instead (md_ws.h,
 * md_conn_send).  Sending to a party that is closing is harmless.
 */
#ifndef MD_PARTY_H
#define MD_PARTY_H

#include "md_server.h"
#include "md_ws.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct md_session md_session; /* md_server_private.h */

typedef struct md_party {
    md_conn *conn;
    unsigned role; /* one enum md_sender bit */
    char *actor;   /* "device:ID" or "staff:USER" for the audit */
    char *device_id;
    char *post_office;
    char *municipality;
    char *username;
    char *login_token;   /* staff: the cookie the socket was opened with (wiped on free) */
    bool login_gone;     /* staff: closing because its login ended */
    md_session *session; /* unfinished session this party is a leg of */
    /* token bucket (limits.messages_per_second / message_burst) */
    double tokens;
    int64_t tokens_at_ms;
    int refusals;
} md_party;

/* A party on conn (borrowed; it outlives the party) with its md_sender
 * role; the caller fills in who it is. */
md_party *md_party_new(md_conn *conn, unsigned role);
void md_party_free(md_party *p);

void md_party_send(md_party *p, json_t *msg /* stolen */);
/* Snapshots (the queue, a tablet's position): an unsent older one with the
 * same key is replaced, so bursts cannot pile up on a slow reader. */
enum { MD_SNAPSHOT_QUEUE = 1, MD_SNAPSHOT_POSITION = 2 };
void md_party_send_latest(md_party *p, int key, json_t *msg /* stolen */);
/* An `error` message (md_proto_error) with the stable code of err. */
void md_party_send_error(md_party *p, int err, const char *detail, const char *re,
                         const char *session);

/* A staff party whose login ended: sent the error err, then closed (1008);
 * only the first call does anything. */
void md_party_login_ended(md_party *p, int err);
/* Ends every staff party opened with this login cookie (logout) that way. */
void md_party_close_login(md_server *srv, const char *token, int err);

#endif
