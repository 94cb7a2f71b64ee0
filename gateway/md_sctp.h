/*
 * SCTP over DTLS for WebRTC data channels (RFC 8831, RFC 8261), over usrsctp.
 * This is the only file pair that knows usrsctp: AF_CONN sockets, so packets
 * go through the owner's DTLS instead of a kernel socket, and usrsctp runs
 * without its own threads (usrsctp_init_nothreads): its timers advance only
 * when some worker calls md_sctp_tick().
 *
 * Threads.  An md_sctp lives on the thread that runs the GMainContext given
 * to md_sctp_new() (a media worker); every md_sctp_* call for it must come
 * from that thread, and every callback is made there, never from inside
 * usrsctp: usrsctp hands packets and wake-ups to a small queue under a
 * process-wide lock, and the owner drains it at the end of each md_sctp_*
 * call, or from an idle source when a timer fired on another worker's
 * md_sctp_tick().  usrsctp's own global state (its lock, its timer wheel) is
 * shared by every association in the process; md_sctp_tick() may be called
 * from any worker, is serialized, and advances the wheel by real elapsed
 * time, so several workers ticking do not speed it up.  The library is
 * initialized by the first md_sctp_new() and finished by the last
 * md_sctp_free() (reference counted under a lock).
 *
 * Callbacks may call md_sctp_send(), md_sctp_close_stream() and
 * md_sctp_set_receive_paused(), but not md_sctp_free().  The send callback
 * must not feed data back into any md_sctp synchronously.
 *
 * Limits: every buffer is bounded.  Sends above the peer's
 * a=max-message-size are refused (RFC 8841 6); received messages above
 * max_receive_message_size are dropped and their stream reset; the send
 * buffer (SO_SNDBUF) plus at most one partly accepted message bounds what a
 * sender holds: when it is full md_sctp_send() returns -EAGAIN and
 * on_buffered_amount_low fires once it has drained below the threshold.
 */
#ifndef MD_SCTP_H
#define MD_SCTP_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 8831 8 payload protocol identifiers. */
#define MD_SCTP_PPID_DCEP 50
#define MD_SCTP_PPID_STRING 51
#define MD_SCTP_PPID_BINARY 53
#define MD_SCTP_PPID_STRING_EMPTY 56
#define MD_SCTP_PPID_BINARY_EMPTY 57

#define MD_SCTP_PORT 5000 /* a=sctp-port default (RFC 8841 5) */
/* SCTP_INITMSG, both directions.  RFC 8831 6.2 suggests 65535; a peer here
 * opens two channels ("chat", "file"), on streams 0 and 2 or 1 and 3, and
 * every stream costs usrsctp about 100 bytes per association in each
 * direction (1024 streams took 105 KB of an association's 130 KB). */
#define MD_SCTP_MAX_STREAMS 16
#define MD_SCTP_DEFAULT_MAX_MESSAGE 65536 /* RFC 8841 6.1 when the attribute is absent */
#define MD_SCTP_HARD_MAX_MESSAGE (16u << 20)

typedef struct md_sctp md_sctp;

/* Partial reliability (RFC 3758) of a stream, from its DCEP channel type. */
typedef enum md_sctp_pr {
    MD_SCTP_PR_NONE = 0,
    MD_SCTP_PR_RTX = 1, /* value: maximum retransmissions */
    MD_SCTP_PR_TTL = 2, /* value: lifetime in ms */
} md_sctp_pr;

typedef struct md_sctp_stream_params {
    bool unordered;
    md_sctp_pr pr;
    uint32_t pr_value;
} md_sctp_stream_params;

typedef struct md_sctp_callbacks {
    /* Required: an SCTP packet to DTLS-encrypt and send. */
    void (*send)(const uint8_t *buf, size_t len, void *ud);
    /* The association is up (SCTP_COMM_UP); sends are accepted from now. */
    void (*on_connected)(void *ud);
    /* One whole message.  ppid is 50, 51 or 53; the empty-message PPIDs 56/57
     * arrive as 51/53 with len 0 (RFC 8831 6.6).  buf is valid during the call. */
    void (*on_message)(uint16_t stream, uint32_t ppid, const uint8_t *buf, size_t len, void *ud);
    /* The buffered amount fell to or below the threshold after a send was
     * refused with -EAGAIN or after it had been above the threshold. */
    void (*on_buffered_amount_low)(void *ud);
    /* The peer reset its outgoing stream (RFC 8831 6.7): the channel on this
     * stream is closed; our side is reset too if it was not already. */
    void (*on_stream_closed)(uint16_t stream, void *ud);
    /* Nullable.  A message on stream was refused (-MD_E_TOO_LARGE, or
     * -MD_E_DC_PROTOCOL for a deprecated or unknown PPID); for too large the
     * stream is being reset. */
    void (*on_stream_error)(uint16_t stream, int error, void *ud);
    /* Once: the association ended.  0 after a graceful shutdown, else
     * -MD_E_SCTP_FAILED (lost, aborted, could not start). */
    void (*on_closed)(int error, void *ud);
} md_sctp_callbacks;

typedef struct md_sctp_options {
    uint16_t local_port, remote_port; /* a=sctp-port; 0 = 5000 */
    /* The peer's a=max-message-size (RFC 8841 6): sends above it are refused.
     * 0 = MD_SCTP_DEFAULT_MAX_MESSAGE; capped at MD_SCTP_HARD_MAX_MESSAGE. */
    size_t max_send_message_size;
    /* Ours (what our answer advertises): reassembly cap.  0 = 256 KiB. */
    size_t max_receive_message_size;
    size_t send_buffer;         /* SO_SNDBUF; 0 = 256 KiB */
    size_t receive_buffer;      /* SO_RCVBUF, hence the advertised rwnd; 0 = 1 MiB */
    size_t buffered_amount_low; /* threshold; 0 = send_buffer / 4 */
} md_sctp_options;

/* ctx: the owner's context (NULL: the thread-default one), referenced.
 * -ENOMEM, -MD_E_SCTP_FAILED.  Nothing is sent before md_sctp_start(). */
int md_sctp_new(const md_sctp_options *opt, GMainContext *ctx, const md_sctp_callbacks *cb,
                void *ud, md_sctp **ret);
/* Once DTLS is up: sends INIT (both WebRTC ends do, RFC 8831 6.2). */
int md_sctp_start(md_sctp *s);
/* A decrypted DTLS application-data record from the peer. */
int md_sctp_input(md_sctp *s, const uint8_t *buf, size_t len);

/* Sets how messages on this outgoing stream are sent (from the DCEP OPEN). */
int md_sctp_set_stream_params(md_sctp *s, uint16_t stream, const md_sctp_stream_params *p);
/* One message (ppid 50, 51 or 53; len 0 is sent as PPID 56/57).
 * 0: accepted (possibly partly still in our queue); -EAGAIN: buffer full,
 * retry after on_buffered_amount_low; -MD_E_TOO_LARGE; -ENOTCONN before
 * on_connected; -EPIPE on a stream being closed; -MD_E_SCTP_FAILED. */
int md_sctp_send(md_sctp *s, uint16_t stream, uint32_t ppid, const uint8_t *buf, size_t len);
/* Bytes accepted but not yet acknowledged by the peer. */
size_t md_sctp_buffered_amount(md_sctp *s);
/* RFC 8831 6.7: resets our outgoing stream; on_stream_closed follows when
 * the peer resets its side.  Queued and retried if a reset is in flight. */
int md_sctp_close_stream(md_sctp *s, uint16_t stream);
/* While paused nothing is read: the receive window closes and the peer's
 * sender slows down.  The gateway itself never pauses: an incoming file is
 * written to the evidence store as it arrives and sent on from there, so the
 * other leg's pace does not reach the sender; the tests use it to play a
 * slow reader. */
void md_sctp_set_receive_paused(md_sctp *s, bool paused);
/* Graceful SHUTDOWN; on_closed(0) follows. */
int md_sctp_shutdown(md_sctp *s);
/* Aborts the association if still up: the ABORT is handed to the send
 * callback before this returns, so free s before the transport under it.  No
 * other callback; none after it returns; not from inside a callback of s.
 * Takes NULL, returns NULL. */
md_sctp *md_sctp_free(md_sctp *s);

/* Advances usrsctp's timers by the real time since the previous tick.  Call
 * every ~10 ms from each worker that has associations; any thread. */
void md_sctp_tick(void);

#endif
