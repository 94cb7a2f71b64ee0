/*
 * libFuzzer harness for the RTP/RTCP helpers of the relay path: datagram
 * classification, RTP header parse and in-place rewrite, extension
 * stripping, VP8 keyframe detection, and the compound RTCP walk with its
 * NACK/REMB/feedback accessors.  Replayed from tests/fuzz/media/corpus/rtp by
 * the ordinary test run (replay.c).
 */
#include "md_rtp.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool count(uint16_t seq, void *ud)
{
    (*(unsigned *)ud)++;
    return *(unsigned *)ud < 10000;
}

static void rtp(const uint8_t *data, size_t size)
{
    uint8_t buf[2048];
    md_rtp_header h;
    if (size > sizeof(buf) || md_rtp_parse(data, size, &h) < 0)
        return;
    memcpy(buf, data, size);
    md_rtp_set_ssrc(buf, 1);
    md_rtp_set_payload_type(buf, 96);
    md_rtp_set_seq(buf, (uint16_t)(h.seq + 1));
    md_rtp_set_timestamp(buf, h.timestamp + 3000);
    size_t n = md_rtp_strip_extensions(buf, size, &h);
    md_rtp_header h2;
    if (md_rtp_parse(buf, n, &h2) < 0 || h2.ext_offset != 0 || h2.payload_len != h.payload_len)
        __builtin_trap(); /* stripping must keep a valid packet with the same payload */
    md_rtp_vp8_is_keyframe(buf + h2.header_len, h2.payload_len);
    /* Keeping one element (ids from the input) must too. */
    memcpy(buf, data, size);
    n = md_rtp_rewrite_extensions(buf, size, &h, data[size - 1] & 0x0f,
                                  (data[size - 1] >> 4) & 0x0f);
    if (n > size || md_rtp_parse(buf, n, &h2) < 0 || h2.payload_len != h.payload_len ||
        (h2.ext_offset && (h2.ext_profile != 0xBEDE || h2.ext_len != 4 * ((h2.ext_len + 3) / 4))))
        __builtin_trap();
}

static void rtcp(const uint8_t *data, size_t size)
{
    md_rtcp_packet p;
    size_t off = 0;
    while (md_rtcp_next(data, size, &off, &p) > 0) {
        uint64_t bitrate;
        unsigned n = 0, seqs = 0;
        md_rtcp_sender_ssrc(&p);
        md_rtcp_media_ssrc(&p);
        md_rtcp_is_remb(&p, &bitrate, &n);
        if (p.type == MD_RTCP_RTPFB && p.count == MD_RTPFB_NACK)
            md_rtcp_nack_foreach(&p, count, &seqs);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    switch (md_packet_classify(data, size)) {
    case MD_PACKET_RTP:
        rtp(data, size);
        break;
    case MD_PACKET_RTCP:
        rtcp(data, size);
        break;
    default:
        rtp(data, size); /* the parsers must refuse it without harm too */
        rtcp(data, size);
        break;
    }
    return 0;
}
