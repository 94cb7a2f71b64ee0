/*
 * Signaling messages: the schema of every client message (docs/protocol.md)
 * as one table, and the validator that turns untrusted bytes into a checked
 * jansson object or a stable error code.  Pure functions: no state, safe
 * from any thread, fuzzed by tests/fuzz/fuzz_proto.c.
 */
#ifndef MD_PROTO_H
#define MD_PROTO_H

#include <jansson.h>
#include <stddef.h>

typedef enum md_msg_type {
    MD_MSG_REQUEST,
    MD_MSG_CANCEL,
    MD_MSG_ACCEPT,
    MD_MSG_OUTCOME,
    MD_MSG_OFFER,
    MD_MSG_RESTART,
    MD_MSG_CANDIDATE,
    MD_MSG_HANGUP,
    MD_MSG_STILL,
    MD_MSG_RECORD,
    MD_MSG_CONSENT,
    MD_MSG__COUNT
} md_msg_type;

/* Who may send a message: a bit per role. */
enum md_sender {
    MD_SENDER_TABLET = 1 << 0,
    MD_SENDER_VERIFIER = 1 << 1,
    MD_SENDER_AUDITOR = 1 << 2,
    MD_SENDER_ADMIN = 1 << 3,
};

#define MD_PROTO_ID_MAX 64

typedef struct md_proto_result {
    md_msg_type type;
    json_t *msg;  /* owned: the validated object */
    char *id;     /* the client's "id" if present and valid (malloc'd), else NULL */
    char *detail; /* on failure: which field or why (malloc'd), else NULL */
} md_proto_result;

/*
 * Parses one message from `sender`.  Returns 0 with ret->msg set, or one of
 * -MD_E_BAD_JSON, -MD_E_UNKNOWN_TYPE, -MD_E_SCHEMA, -MD_E_FORBIDDEN with
 * ret->detail (and ret->id when the message carried a readable id).
 * Always call md_proto_result_clear() afterwards.
 */
typedef struct md_proto_limits {
    size_t sdp_bytes;       /* `sdp` of offer/restart: media.max_sdp_bytes */
    size_t candidate_bytes; /* `candidate`: MD_MEDIA_MAX_CANDIDATE_BYTES */
} md_proto_limits;

int md_proto_parse(const char *text, size_t len, unsigned sender, const md_proto_limits *lim,
                   md_proto_result *ret);
void md_proto_result_clear(md_proto_result *r);

const char *md_proto_type_name(md_msg_type type);

/* {"type":"error","code":..,"message":..[,"re":..][,"session":..][,"detail":..]} */
json_t *md_proto_error(int err, const char *detail, const char *re, const char *session);

#endif
