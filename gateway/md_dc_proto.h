/*
 * The application protocols on the data channels labelled "chat" and "file"
 * (docs/internals/datachannels.md has the message table).  Control messages
 * are JSON text messages (PPID 51); file data are binary messages (PPID 53)
 * made of a 12-byte chunk header and the payload.  The parser is strict:
 * every field is required or explicitly optional, typed, range-checked; an
 * unknown field, a message of the other channel or a duplicated key is
 * refused, each failure with a stable MD_E_* code.  md_dc_file_rx follows
 * one incoming file: chunk order, size, magic-byte type and SHA-256.
 * Pure code over caller memory; an md_dc_file_rx belongs to one thread.
 */
#ifndef MD_DC_PROTO_H
#define MD_DC_PROTO_H

#include "md_crypto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MD_DC_ID_MAX 64    /* [A-Za-z0-9_-], message and transfer ids */
#define MD_DC_NAME_MAX 255 /* bytes of UTF-8 */
#define MD_DC_MIME_MAX 64
#define MD_DC_CODE_MAX 48     /* an md_err_code() name */
#define MD_DC_JSON_MAX 16384  /* one control message */
#define MD_DC_CHUNK_HEADER 12 /* u32 transfer index, u64 offset, big-endian */
#define MD_DC_CHUNK_MAX 65536 /* payload bytes per binary message */
#define MD_DC_STILL_MAX_SIDE 16384

typedef enum md_dc_channel { MD_DC_CHANNEL_CHAT, MD_DC_CHANNEL_FILE } md_dc_channel;

typedef enum md_dc_msg_type {
    MD_DC_CHAT = 1,      /* chat: id, ts, text */
    MD_DC_CHAT_ACK,      /* chat: id */
    MD_DC_FILE_OFFER,    /* file: id, index, name, size, mime, sha256, kind, width?, height? */
    MD_DC_FILE_ACCEPT,   /* file: id */
    MD_DC_FILE_REFUSE,   /* file: id, code */
    MD_DC_FILE_PROGRESS, /* file: id, bytes */
    MD_DC_FILE_DONE,     /* file: id */
    MD_DC_FILE_VERIFIED, /* file: id, sha256 */
    MD_DC_FILE_ERROR,    /* file: id, code */
    MD_DC_FILE_CANCEL,   /* file: id */
} md_dc_msg_type;

typedef enum md_dc_file_kind { MD_DC_KIND_FILE, MD_DC_KIND_STILL } md_dc_file_kind;

/* Caps from the policy; zero fields take the defaults. */
typedef struct md_dc_limits {
    size_t max_chat_bytes;           /* 0 = 2000 bytes of UTF-8 */
    uint64_t max_file_size;          /* 0 = 20 MiB */
    const char *const *allowed_mime; /* NULL-terminated; NULL = JPEG, PNG, PDF */
} md_dc_limits;

typedef struct md_dc_msg {
    md_dc_msg_type type;
    char id[MD_DC_ID_MAX + 1];
    int64_t ts;     /* chat: ms since the epoch */
    char *text;     /* chat: owned, freed by md_dc_msg_clear() */
    uint32_t index; /* file_offer: transfer index used in chunk headers, >= 1 */
    char name[MD_DC_NAME_MAX + 1];
    uint64_t size;
    char mime[MD_DC_MIME_MAX + 1];
    char sha256[MD_SHA256_HEX_LEN + 1]; /* lower-case hex */
    md_dc_file_kind kind;
    uint32_t width, height; /* still only; 0 = not given */
    uint64_t bytes;         /* file_progress */
    char code[MD_DC_CODE_MAX + 1];
} md_dc_msg;

/* Parses one text message received on channel ch.  *ret is set only on
 * success (then md_dc_msg_clear() it).  Errors: -MD_E_TOO_LARGE (over
 * MD_DC_JSON_MAX), -MD_E_BAD_JSON, -MD_E_UNKNOWN_TYPE (unknown or other
 * channel's type), -MD_E_DC_PROTOCOL (missing, extra or ill-typed field, bad
 * id, hash or code), -MD_E_CHAT_INVALID, -MD_E_FILE_NAME,
 * -MD_E_FILE_TOO_LARGE, -MD_E_FILE_TYPE (claimed type not allowed). */
int md_dc_parse(md_dc_channel ch, const char *buf, size_t len, const md_dc_limits *lim,
                md_dc_msg *ret);
void md_dc_msg_clear(md_dc_msg *m);
/* Compact JSON for m (the fields its type uses); *ret_json is malloc'd. */
int md_dc_build(const md_dc_msg *m, char **ret_json);
const char *md_dc_type_name(md_dc_msg_type t);

/* 0 or -MD_E_FILE_NAME: 1..255 bytes of UTF-8, no path separator ('/', '\\',
 * ':'), no control or bidirectional-override character, no leading '.', no
 * trailing '.' or space. */
int md_dc_check_file_name(const char *name);
/* 0 or -MD_E_CHAT_INVALID: 1..max bytes of UTF-8, no control character but
 * tab and newline. */
int md_dc_check_chat_text(const char *text, size_t max_bytes);

/* "image/jpeg" (FF D8 FF), "image/png" (89 50 4E 47 0D 0A 1A 0A),
 * "application/pdf" (%PDF-), or NULL. */
const char *md_dc_sniff_mime(const uint8_t *buf, size_t len);

/* Binary chunk framing. */
void md_dc_chunk_header(uint32_t index, uint64_t offset, uint8_t out[MD_DC_CHUNK_HEADER]);
/* -MD_E_DC_PROTOCOL unless 1..MD_DC_CHUNK_MAX payload bytes follow a
 * header with index >= 1. */
int md_dc_chunk_parse(const uint8_t *buf, size_t len, uint32_t *ret_index, uint64_t *ret_offset,
                      const uint8_t **ret_payload, size_t *ret_payload_len);

/* One incoming file, from its accepted offer to file_done. */
typedef struct md_dc_file_rx md_dc_file_rx;
/* Re-checks the offer against lim (size, type, kind). */
int md_dc_file_rx_new(const md_dc_msg *offer, const md_dc_limits *lim, md_dc_file_rx **ret);
/* A binary message: checks index and offset (in order, no gap, not past the
 * offered size), sniffs the type once enough bytes are in (-MD_E_FILE_TYPE,
 * -MD_E_FILE_TYPE_MISMATCH), hashes.  Returns the payload to store. */
int md_dc_file_rx_chunk(md_dc_file_rx *rx, const uint8_t *buf, size_t len,
                        const uint8_t **ret_payload, size_t *ret_len);
/* At file_done: every byte in, type checked, SHA-256 equal to the offer's;
 * else -MD_E_FILE_HASH (or the type errors).  Once. */
int md_dc_file_rx_finish(md_dc_file_rx *rx, uint8_t ret_sha256[MD_SHA256_LEN]);
uint64_t md_dc_file_rx_received(const md_dc_file_rx *rx);
md_dc_file_rx *md_dc_file_rx_free(md_dc_file_rx *rx);

#endif
