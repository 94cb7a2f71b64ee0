/*
 * The Data Channel Establishment Protocol (RFC 8832): a strict, bounded
 * parser and builder for DATA_CHANNEL_OPEN and DATA_CHANNEL_ACK, which travel
 * on the channel's own SCTP stream with PPID 50 (RFC 8831 8), plus the
 * stream-id parity rule of RFC 8832 6.  Pure functions over caller buffers:
 * no allocation, no state, safe from any thread.  Anything malformed is
 * -MD_E_DC_PROTOCOL; a well-formed request the gateway will not serve (label
 * or protocol too long, stream of the wrong parity) is -MD_E_DC_REFUSED.
 */
#ifndef MD_DCEP_H
#define MD_DCEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 8832 8.2.1 message types. */
#define MD_DCEP_ACK 0x02
#define MD_DCEP_OPEN 0x03

/* RFC 8832 5.1 channel types (the 0x80 bit means unordered). */
typedef enum md_dcep_channel_type {
    MD_DCEP_RELIABLE = 0x00,
    MD_DCEP_RELIABLE_UNORDERED = 0x80,
    MD_DCEP_PARTIAL_RELIABLE_REXMIT = 0x01,
    MD_DCEP_PARTIAL_RELIABLE_REXMIT_UNORDERED = 0x81,
    MD_DCEP_PARTIAL_RELIABLE_TIMED = 0x02,
    MD_DCEP_PARTIAL_RELIABLE_TIMED_UNORDERED = 0x82,
} md_dcep_channel_type;

/* Our caps; RFC 8832 allows 65535 bytes each, no browser needs more. */
#define MD_DCEP_MAX_LABEL 255
#define MD_DCEP_MAX_PROTOCOL 255
#define MD_DCEP_HEADER_LEN 12
#define MD_DCEP_MAX_OPEN_LEN (MD_DCEP_HEADER_LEN + MD_DCEP_MAX_LABEL + MD_DCEP_MAX_PROTOCOL)

typedef struct md_dcep_open {
    uint8_t channel_type;                    /* md_dcep_channel_type */
    uint16_t priority;                       /* RFC 8832 5.1; informational here */
    uint32_t reliability;                    /* retransmissions or lifetime in ms; 0 for reliable */
    char label[MD_DCEP_MAX_LABEL + 1];       /* NUL-terminated UTF-8 */
    char protocol[MD_DCEP_MAX_PROTOCOL + 1]; /* NUL-terminated UTF-8, often "" */
} md_dcep_open;

/* Message type of buf (MD_DCEP_OPEN or MD_DCEP_ACK), or -MD_E_DC_PROTOCOL. */
int md_dcep_message_type(const uint8_t *buf, size_t len);

/* RFC 8832 5.1.  Exact length (12 + label + protocol), known channel type,
 * UTF-8 label and protocol without NUL.  *ret is untouched on failure. */
int md_dcep_parse_open(const uint8_t *buf, size_t len, md_dcep_open *ret);
/* RFC 8832 5.2: exactly one byte, 0x02. */
int md_dcep_parse_ack(const uint8_t *buf, size_t len);

/* Writes the message into out; returns its length, or -ENOBUFS / -EINVAL. */
int md_dcep_build_open(const md_dcep_open *o, uint8_t *out, size_t cap);
int md_dcep_build_ack(uint8_t *out, size_t cap);

bool md_dcep_ordered(uint8_t channel_type);
/* 0 reliable, 1 limited retransmissions, 2 limited lifetime (ms). */
int md_dcep_pr_policy(uint8_t channel_type);

/* RFC 8832 6: the DTLS client opens even stream ids, the server odd ones.
 * The gateway answers with a=setup:passive, so it is normally the server. */
bool md_dcep_stream_is_local(uint16_t stream, bool dtls_client);
/* An OPEN from the peer must use the peer's parity: 0 or -MD_E_DC_REFUSED.
 * 65535 is reserved (RFC 8831 6.6 / RFC 4960 limits) and refused too. */
int md_dcep_check_remote_stream(uint16_t stream, bool dtls_client);
/* First stream id this endpoint may open; the next ones are +2. */
uint16_t md_dcep_first_local_stream(bool dtls_client);

#endif
