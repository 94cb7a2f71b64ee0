/*
 * The data channels of one leg (DESIGN 4, docs/internals/datachannels.md):
 * the leg's SCTP association (md_sctp, over the leg's DTLS) and a small table
 * of the channels the client opened with DCEP (RFC 8832).  Only the labels
 * "chat" and "file" are served, one channel each, at most MD_DC_MAX_CHANNELS
 * per leg; any other OPEN is refused by resetting its stream (RFC 8831 6.7,
 * RFC 8832 has no refusal message) and reported through on_refused.  Chat
 * messages are validated with md_dc_parse() (caps from md_dc_limits) and
 * handed up through on_chat; nothing is relayed from here: the session
 * decides (persist, audit, then relay, see md_bridge_dc.c).
 *
 * Threads: an md_dc lives on the leg's media worker, like its md_sctp; all
 * calls come from there and callbacks are made there.  Callbacks may call
 * md_dc_send_*() but not md_dc_free().
 */
#ifndef MD_DC_H
#define MD_DC_H

#include "md_crypto.h"
#include "md_dc_proto.h"
#include "md_sctp.h"

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MD_DC_MAX_CHANNELS 4

typedef struct md_dc md_dc;

typedef struct md_dc_callbacks {
    /* Required: an SCTP packet to DTLS-encrypt and send (md_dtls_send_data). */
    void (*send)(const uint8_t *buf, size_t len, void *ud);
    /* A valid chat message from the client; sha256 is the hex SHA-256 of its
     * text.  chat and its text are valid during the call. */
    void (*on_chat)(const md_dc_msg *chat, const char *sha256, void *ud);
    /* Nullable.  The client acknowledged a chat message we sent it. */
    void (*on_chat_ack)(const char *id, void *ud);
    /* The chat channel became writable: it was opened, or the send buffer
     * drained after a refusal.  A good moment to flush queued messages. */
    void (*on_chat_writable)(void *ud);
    /* Nullable.  An OPEN was refused (label not served, duplicate, too many
     * channels, stream 65535); error is -MD_E_DC_REFUSED or
     * -MD_E_DC_PROTOCOL.  label is "" when the OPEN could not be parsed. */
    void (*on_refused)(const char *label, uint16_t stream, int error, void *ud);
    /* Nullable.  A valid control message on the "file" channel (md_dc_parse
     * with the limits given at creation); msg is valid during the call.  An
     * offer that does not parse (too large, type not allowed, bad name) is
     * answered here with file_refuse {id, code} and not handed up. */
    void (*on_file)(const md_dc_msg *msg, void *ud);
    /* Nullable.  An offer that did not parse was answered with file_refuse
     * {id, error} here; reported so that the refusal can be audited. */
    void (*on_file_refused)(const char *id, int error, void *ud);
    /* Nullable.  A binary message on the "file" channel (chunk header and
     * payload, not yet checked); valid during the call. */
    void (*on_file_chunk)(const uint8_t *buf, size_t len, void *ud);
    /* Nullable.  The file channel opened, or the send buffer drained. */
    void (*on_file_writable)(void *ud);
} md_dc_callbacks;

typedef struct md_dc_options {
    md_sctp_options sctp;
    bool dtls_client; /* RFC 8832 6 stream parity */
    md_dc_limits limits;
} md_dc_options;

/* ctx: the worker's context.  Nothing is sent before md_dc_start(). */
int md_dc_new(const md_dc_options *opt, GMainContext *ctx, const md_dc_callbacks *cb, void *ud,
              md_dc **ret);
/* Once DTLS is connected: SCTP INIT (RFC 8831 6.2, both ends connect). */
int md_dc_start(md_dc *dc);
/* A decrypted DTLS application-data record. */
int md_dc_input(md_dc *dc, const uint8_t *buf, size_t len);

/* True once the client's "chat" channel is open and the association is up. */
bool md_dc_chat_ready(const md_dc *dc);
/* {type:"chat", id, ts, text} / {type:"chat_ack", id} on the chat channel.
 * -ENOTCONN when it is not open, -EAGAIN when the send buffer is full (wait
 * for on_chat_writable), -MD_E_TOO_LARGE, -MD_E_SCTP_FAILED. */
int md_dc_send_chat(md_dc *dc, const char *id, int64_t ts, const char *text);
int md_dc_send_chat_ack(md_dc *dc, const char *id);

/* True once the client's "file" channel is open and the association is up. */
bool md_dc_file_ready(const md_dc *dc);
/* A control message on the file channel.  Same errors as md_dc_send_chat. */
int md_dc_send_file_msg(md_dc *dc, const md_dc_msg *m);
/* One binary chunk (header + 1..MD_DC_CHUNK_MAX payload bytes).  -EAGAIN
 * when the send buffer is full: wait for on_file_writable. */
int md_dc_send_file_chunk(md_dc *dc, uint32_t index, uint64_t offset, const uint8_t *payload,
                          size_t len);

/* Aborts the association.  Not from inside a callback.  NULL-safe. */
md_dc *md_dc_free(md_dc *dc);

#endif
