/*
 * ICE over libnice (RFC 8445, RFC 8838 trickle, RFC 7675 consent): one agent
 * per leg with one stream of one component, since BUNDLE and rtcp-mux are
 * required.  The gateway answers, so its agent is ICE-controlled.  Host
 * candidates come from the configured bind address (or every non-loopback
 * interface), can be advertised under a 1:1 NAT address, and use an optional
 * port range.  With ice_tcp, passive ICE-TCP host candidates (RFC 6544) are
 * offered next to the UDP ones and the peer's active (and simultaneous-open)
 * TCP candidates are accepted; the gateway never opens TCP connections itself.
 * libnice does the RFC 4571 framing, so owners see datagrams either way.
 * TURN is not used yet.  An md_ice lives on its
 * leg's worker: created, driven, called back and freed on the GMainContext
 * given at creation.  STUN never reaches the owner; every other datagram from
 * the selected peer does, through on_packet.
 */
#ifndef MD_ICE_H
#define MD_ICE_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MD_ICE_UFRAG_LEN 8
#define MD_ICE_PWD_LEN 24

typedef struct md_ice md_ice;

typedef enum md_ice_state {
    MD_ICE_CONNECTED, /* a pair is selected; media may flow */
    MD_ICE_FAILED,    /* checks exhausted or consent lost (RFC 7675 5.1) */
} md_ice_state;

typedef struct md_ice_options {
    const char *bind_address;    /* NULL or "": every non-loopback interface */
    const char *public_address;  /* NULL or "": advertise host addresses as they are */
    unsigned port_min, port_max; /* 0, 0: ephemeral; UDP and TCP listening ports */
    bool ice_tcp;                /* RFC 6544 passive host candidates as well */
    unsigned receive_buffer;     /* SO_RCVBUF of the selected socket; 0: kernel default */
} md_ice_options;

typedef struct md_ice_callbacks {
    /* A local candidate ("candidate:..."); NULL when gathering is done. */
    void (*on_candidate)(const char *candidate, void *ud);
    void (*on_state)(md_ice_state state, void *ud);
    /* A non-STUN datagram; buf is valid during the call only. */
    void (*on_packet)(const uint8_t *buf, size_t len, void *ud);
} md_ice_callbacks;

/* Creates the agent and its stream and starts gathering.  Candidates found
 * during this call are not called back: read them with
 * md_ice_local_candidates().  -EINVAL for a bad address, -EIO when no
 * candidate could be gathered (for example the port range is exhausted). */
int md_ice_new(GMainContext *ctx, const md_ice_options *opt, const md_ice_callbacks *cb, void *ud,
               md_ice **ret);
md_ice *md_ice_free(md_ice *ice);

const char *md_ice_local_ufrag(const md_ice *ice);
const char *md_ice_local_pwd(const md_ice *ice);
/* The local candidates gathered so far, as a NULL-terminated g_strfreev list. */
char **md_ice_local_candidates(md_ice *ice);
bool md_ice_gathering_done(const md_ice *ice);

int md_ice_set_remote_credentials(md_ice *ice, const char *ufrag, const char *pwd);
/* "candidate:..." or "a=candidate:...".  -ENOTSUP for candidates that are
 * valid but unusable here (TCP when ice_tcp is off, TCP passive since we only
 * accept connections, mDNS names, RTCP component), -EINVAL for malformed
 * ones. */
int md_ice_add_remote_candidate(md_ice *ice, const char *candidate);
/* RFC 8838 8.2: the peer sent end-of-candidates. */
void md_ice_remote_gathering_done(md_ice *ice);

/* RFC 8445 9: starts ICE over with a new agent: new local credentials and
 * candidates (read them with md_ice_local_candidates() for the answer), the
 * given remote credentials, no remote candidates.  Until the new agent
 * connects md_ice_send() returns -EAGAIN.  On failure the md_ice has no
 * agent left: free it. */
int md_ice_restart(md_ice *ice, const char *remote_ufrag, const char *remote_pwd);

/* -EAGAIN when no pair is selected, -EIO on a send error. */
int md_ice_send(md_ice *ice, const uint8_t *buf, size_t len);

/*
 * For handshake datagrams (DTLS): like md_ice_send(), but when no pair is
 * selected yet a copy is kept and sent, in order, the moment one is (before
 * on_state reports MD_ICE_CONNECTED); returns 1 then.  The peer, controlling,
 * may start DTLS as soon as its own check succeeds, before it nominated the
 * pair to us, and dropping our answer would cost a retransmission timeout.
 * At most MD_ICE_HELD_BYTES are kept (-ENOBUFS beyond); an ICE restart or
 * md_ice_free() drops them.  Media must not be held: use md_ice_send().
 */
#define MD_ICE_HELD_BYTES 16384
int md_ice_send_or_hold(md_ice *ice, const uint8_t *buf, size_t len);

#endif
