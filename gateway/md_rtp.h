/*
 * RTP and RTCP wire helpers: classify a datagram received on a BUNDLE transport
 * (RFC 7983 7, RFC 5761 4), parse and rewrite RTP headers in place (RFC 3550
 * 5.1, RFC 8285), walk compound RTCP (RFC 3550 6.4) and its feedback messages
 * (RFC 4585 6, RFC 5104 4.3.1, draft-alvestrand-rmcat-remb), and build the few
 * RTCP packets the gateway sends itself.  Every function is pure over the
 * buffer it is given, bounded by the length it is given, and allocation free:
 * safe on the packet path of any thread.
 */
#ifndef MD_RTP_H
#define MD_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "md_bytes.h"

#define MD_RTP_HEADER_LEN 12
#define MD_RTCP_HEADER_LEN 4

typedef enum md_packet_kind {
    MD_PACKET_UNKNOWN = 0,
    MD_PACKET_STUN,
    MD_PACKET_DTLS,
    MD_PACKET_RTP,
    MD_PACKET_RTCP,
} md_packet_kind;

/* What a datagram on a BUNDLE + rtcp-mux transport is, from its first bytes. */
md_packet_kind md_packet_classify(const uint8_t *buf, size_t len);

typedef struct md_rtp_header {
    uint8_t payload_type;
    bool marker;
    bool padding;
    uint16_t seq;
    uint32_t timestamp;
    uint32_t ssrc;
    size_t header_len;  /* fixed header + CSRCs + extension block */
    size_t payload_len; /* after the header, without padding */
    size_t ext_offset;  /* of the extension block's 4-byte header; 0 when absent */
    size_t ext_len;     /* of the extension data after that header */
    uint16_t ext_profile;
} md_rtp_header;

/* -EBADMSG when not a well-formed RTP packet; *ret untouched then. */
int md_rtp_parse(const uint8_t *buf, size_t len, md_rtp_header *ret);

/* In-place rewrites of the fixed header; buf must hold a parsed packet. */
void md_rtp_set_payload_type(uint8_t *buf, uint8_t pt);
void md_rtp_set_seq(uint8_t *buf, uint16_t seq);
void md_rtp_set_timestamp(uint8_t *buf, uint32_t ts);
void md_rtp_set_ssrc(uint8_t *buf, uint32_t ssrc);

/* Removes the header extension block, moving the payload down; returns the new
 * length.  Used when the receiving leg negotiated no extensions. */
size_t md_rtp_strip_extensions(uint8_t *buf, size_t len, const md_rtp_header *h);

/* Keeps one header extension element and drops the others (RFC 8285): the
 * element with src_id, in the one-byte (4.2) or two-byte (4.3) form, is
 * rewritten in place as a one-byte element with dst_id, in a block padded to
 * 32 bits; the payload moves down.  The whole block is removed (X cleared)
 * when src_id or dst_id is 0, dst_id is above 14, the element is absent, its
 * data is not 1..16 bytes, or the block is malformed.  h is the packet's
 * parse before the call and is stale afterwards except for the fixed header
 * fields and payload_len.  Returns the new length. */
size_t md_rtp_rewrite_extensions(uint8_t *buf, size_t len, const md_rtp_header *h, uint8_t src_id,
                                 uint8_t dst_id);

/* RFC 7741 4.3: true when a VP8 payload starts a keyframe. */
bool md_rtp_vp8_is_keyframe(const uint8_t *payload, size_t len);

/* Serial number arithmetic (RFC 1982) on 16-bit sequence numbers. */
static inline bool md_seq_newer(uint16_t a, uint16_t b)
{
    return a != b && (uint16_t)(a - b) < 0x8000;
}

/* One packet of a compound RTCP datagram. */
typedef struct md_rtcp_packet {
    uint8_t type;        /* PT: 200 SR, 201 RR, 202 SDES, 203 BYE, 205 RTPFB, 206 PSFB */
    uint8_t count;       /* RC / SC / FMT field */
    const uint8_t *data; /* the whole packet, header included */
    size_t len;
} md_rtcp_packet;

enum {
    MD_RTCP_SR = 200,
    MD_RTCP_RR = 201,
    MD_RTCP_SDES = 202,
    MD_RTCP_BYE = 203,
    MD_RTCP_APP = 204,
    MD_RTCP_RTPFB = 205,
    MD_RTCP_PSFB = 206,
};
enum { MD_RTPFB_NACK = 1 };
enum { MD_PSFB_PLI = 1, MD_PSFB_FIR = 4, MD_PSFB_AFB = 15 };

/* Iterates a compound packet: start with *offset = 0.  Returns 1 with *ret
 * filled, 0 at the end, -EBADMSG when the datagram is malformed (RFC 3550
 * A.2: version 2, lengths adding up exactly, no padding except last). */
int md_rtcp_next(const uint8_t *buf, size_t len, size_t *offset, md_rtcp_packet *ret);

/* Feedback header fields (RFC 4585 6.1); the packet must be at least 12 bytes. */
uint32_t md_rtcp_sender_ssrc(const md_rtcp_packet *p);
uint32_t md_rtcp_media_ssrc(const md_rtcp_packet *p);

/* True when a PSFB AFB packet is a REMB (draft-alvestrand-rmcat-remb 2.2);
 * ret_bitrate in bit/s (saturated), ret_n_ssrcs the SSRC count. */
bool md_rtcp_is_remb(const md_rtcp_packet *p, uint64_t *ret_bitrate, unsigned *ret_n_ssrcs);

/* Calls fn for each sequence number a generic NACK asks for (RFC 4585
 * 6.2.1), stopping early when fn returns false.  Returns how many were
 * visited, or -EBADMSG. */
int md_rtcp_nack_foreach(const md_rtcp_packet *p, bool (*fn)(uint16_t seq, void *ud), void *ud);

/* Builders: write into out (cap bytes) and return the length, or -ENOBUFS. */
int md_rtcp_build_pli(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc);
int md_rtcp_build_fir(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                      uint8_t fir_seq);
/* RFC 3550 6.4.1 sender report without report blocks; ntp is the 64-bit NTP
 * timestamp (seconds since 1900 in the high 32 bits). */
int md_rtcp_build_sr(uint8_t *out, size_t cap, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts,
                     uint32_t packets, uint32_t octets);
/* RFC 4585 6.2.1 generic NACK for the count sequence numbers from first on:
 * one FCI (PID + BLP) per 17.  -EINVAL when count is 0 or above
 * MD_RTCP_NACK_MAX_SEQS, -ENOBUFS when cap is short. */
#define MD_RTCP_NACK_MAX_SEQS 68
int md_rtcp_build_nack(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                       uint16_t first, unsigned count);

#endif
