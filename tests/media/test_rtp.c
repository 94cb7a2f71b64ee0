/*
 * RTP/RTCP helpers: demultiplexing (RFC 7983, RFC 5761), header parse and
 * in-place rewrite, extension stripping, VP8 keyframes, compound RTCP walk,
 * NACK, REMB, PLI and FIR.
 */
#include "md_rtp.h"
#include "md_test.h"

#include <errno.h>
#include <glib.h>

static void test_classify(void)
{
    uint8_t stun[] = {0x00, 0x01, 0, 0};
    uint8_t dtls[] = {22, 0xfe, 0xfd};
    uint8_t rtp[12] = {0x80, 96};
    uint8_t rtcp[8] = {0x80, 200};
    uint8_t marker_rtp[12] = {0x80, 0x80 | 111}; /* M bit + PT 111 = 239: still RTP */
    ASSERT_EQ(md_packet_classify(stun, sizeof(stun)), MD_PACKET_STUN);
    ASSERT_EQ(md_packet_classify(dtls, sizeof(dtls)), MD_PACKET_DTLS);
    ASSERT_EQ(md_packet_classify(rtp, sizeof(rtp)), MD_PACKET_RTP);
    ASSERT_EQ(md_packet_classify(rtcp, sizeof(rtcp)), MD_PACKET_RTCP);
    ASSERT_EQ(md_packet_classify(marker_rtp, sizeof(marker_rtp)), MD_PACKET_RTP);
    ASSERT_EQ(md_packet_classify(rtp, 5), MD_PACKET_UNKNOWN);
    ASSERT_EQ(md_packet_classify((uint8_t[]){70}, 1), MD_PACKET_UNKNOWN);
    ASSERT_EQ(md_packet_classify(NULL, 0), MD_PACKET_UNKNOWN);
}

/* V=2, X=1, CC=1, M=1 PT=96, seq 65535, ts, ssrc, one CSRC, a one-byte
 * extension block of 2 words, 5 bytes payload, 3 bytes padding. */
static const uint8_t sample[] = {
    0xb1, 0xe0, 0xff, 0xff, 0x00, 0x01, 0x00, 0x02, 0xca, 0xfe, 0xba, 0xbe, /* fixed */
    0x11, 0x22, 0x33, 0x44,                                                 /* CSRC */
    0xbe, 0xde, 0x00, 0x02, 0x10, 0xaa, 0x22, 0xbb, 0xcc, 0x00, 0x00, 0x00, /* ext */
    'h',  'e',  'l',  'l',  'o',  0x00, 0x00, 0x03,                         /* payload, pad */
};

static void test_parse_rewrite(void)
{
    md_rtp_header h;
    ASSERT_OK(md_rtp_parse(sample, sizeof(sample), &h));
    ASSERT_EQ(h.payload_type, 96);
    ASSERT(h.marker && h.padding);
    ASSERT_EQ(h.seq, 65535);
    ASSERT_EQ(h.timestamp, 0x00010002);
    ASSERT_EQ(h.ssrc, 0xcafebabe);
    ASSERT_EQ(h.ext_offset, 16);
    ASSERT_EQ(h.ext_profile, 0xbede);
    ASSERT_EQ(h.ext_len, 8);
    ASSERT_EQ(h.header_len, 28);
    ASSERT_EQ(h.payload_len, 5);

    uint8_t p[sizeof(sample)];
    memcpy(p, sample, sizeof(p));
    md_rtp_set_ssrc(p, 0x01020304);
    md_rtp_set_payload_type(p, 100);
    md_rtp_set_seq(p, 7);
    md_rtp_set_timestamp(p, 0xfffffff0);
    md_rtp_header h2;
    ASSERT_OK(md_rtp_parse(p, sizeof(p), &h2));
    ASSERT_EQ(h2.ssrc, 0x01020304);
    ASSERT_EQ(h2.payload_type, 100);
    ASSERT(h2.marker); /* kept */
    ASSERT_EQ(h2.seq, 7);
    ASSERT_EQ(h2.timestamp, 0xfffffff0);

    size_t n = md_rtp_strip_extensions(p, sizeof(p), &h2);
    ASSERT_EQ(n, sizeof(sample) - 12);
    ASSERT_OK(md_rtp_parse(p, n, &h2));
    ASSERT_EQ(h2.ext_offset, 0);
    ASSERT_EQ(h2.header_len, 16);
    ASSERT_EQ(h2.payload_len, 5);
    ASSERT(memcmp(p + 16, "hello", 5) == 0);
    ASSERT_EQ(md_rtp_strip_extensions(p, n, &h2), n); /* nothing left to strip */
}

/* RFC 8285 4.2 / 4.3: abs-send-time (3 bytes) kept with the destination's
 * id, other elements dropped, the block padded to 32 bits. */
static size_t make_ext_packet(uint8_t *p, uint16_t profile, const uint8_t *ext, size_t ext_len)
{
    static const uint8_t fixed[] = {0x90, 96, 0x12, 0x34, 0, 0, 0, 1, 0xca, 0xfe, 0xba, 0xbe};
    memcpy(p, fixed, 12);
    md_put_u16(p + 12, profile);
    md_put_u16(p + 14, (uint16_t)(ext_len / 4));
    memcpy(p + 16, ext, ext_len);
    memcpy(p + 16 + ext_len, "payload", 7);
    return 16 + ext_len + 7;
}

static void assert_abs_send_time(const uint8_t *p, size_t n, uint8_t id)
{
    md_rtp_header h;
    ASSERT_OK(md_rtp_parse(p, n, &h));
    ASSERT(p[0] & 0x10);
    ASSERT_EQ(h.ext_offset, 12);
    ASSERT_EQ(h.ext_profile, 0xbede);
    ASSERT_EQ(h.ext_len, 4);
    ASSERT_EQ(p[16], id << 4 | 2);
    ASSERT(p[17] == 0xa1 && p[18] == 0xa2 && p[19] == 0xa3);
    ASSERT_EQ(h.header_len, 20);
    ASSERT_EQ(h.payload_len, 7);
    ASSERT(memcmp(p + 20, "payload", 7) == 0);
    ASSERT_EQ(h.seq, 0x1234);
    ASSERT_EQ(h.ssrc, 0xcafebabe);
}

static void test_rewrite_extensions(void)
{
    /* One-byte: toffset (id 14, 3 bytes), padding, abs-send-time (id 2),
     * mid (id 4, "0"), then padding: 3 words. */
    static const uint8_t one[] = {0xe2, 0x01, 0x02, 0x03, 0x00, 0x22,
                                  0xa1, 0xa2, 0xa3, 0x40, '0',  0x00};
    uint8_t p[64];
    size_t n = make_ext_packet(p, 0xbede, one, sizeof(one));
    md_rtp_header h;
    ASSERT_OK(md_rtp_parse(p, n, &h));
    size_t m = md_rtp_rewrite_extensions(p, n, &h, 2, 9);
    ASSERT_EQ(m, n - 8);
    assert_abs_send_time(p, m, 9);

    /* Same id on both legs: kept as is, still alone. */
    n = make_ext_packet(p, 0xbede, one, sizeof(one));
    ASSERT_OK(md_rtp_parse(p, n, &h));
    assert_abs_send_time(p, md_rtp_rewrite_extensions(p, n, &h, 2, 2), 2);

    /* Two-byte (profile 0x100 + appbits): mid (id 4), padding, abs-send-time
     * (id 3, length 3), transport-cc (id 200, 2 bytes): 3 words. */
    static const uint8_t two[] = {0x04, 0x01, '1',  0x00, 0x03, 0x03,
                                  0xa1, 0xa2, 0xa3, 200,  0x02, 0x55};
    n = make_ext_packet(p, 0x1005, two, sizeof(two));
    ASSERT_OK(md_rtp_parse(p, n, &h));
    m = md_rtp_rewrite_extensions(p, n, &h, 3, 14);
    ASSERT_EQ(m, n - 8);
    assert_abs_send_time(p, m, 14);

    /* Destination did not negotiate it, or the source did not, or the element
     * is absent: the whole block goes, X cleared. */
    const struct {
        uint16_t profile;
        const uint8_t *ext;
        uint8_t src, dst;
    } strip[] = {
        {0xbede, one, 2, 0}, {0xbede, one, 0, 9},  {0xbede, one, 5, 9},
        {0x1000, two, 2, 9}, {0xbede, one, 2, 15}, /* 15: not a one-byte id */
        {0x1234, one, 2, 9},                       /* unknown profile */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(strip); i++) {
        n = make_ext_packet(p, strip[i].profile, strip[i].ext, 12);
        ASSERT_OK(md_rtp_parse(p, n, &h));
        m = md_rtp_rewrite_extensions(p, n, &h, strip[i].src, strip[i].dst);
        ASSERT_EQ(m, n - 16);
        ASSERT_OK(md_rtp_parse(p, m, &h));
        ASSERT(!(p[0] & 0x10));
        ASSERT_EQ(h.ext_offset, 0);
        ASSERT(memcmp(p + 12, "payload", 7) == 0);
    }

    /* Malformed: an element running past the block, and id 15 (stop) before
     * the element; no extension at all is left alone. */
    static const uint8_t overrun[] = {0x00, 0x00, 0x00, 0x2f};
    static const uint8_t stop[] = {0xf0, 0x22, 0xa1, 0xa2, 0xa3, 0x00, 0x00, 0x00};
    n = make_ext_packet(p, 0xbede, overrun, sizeof(overrun));
    ASSERT_OK(md_rtp_parse(p, n, &h));
    ASSERT_EQ(md_rtp_rewrite_extensions(p, n, &h, 2, 9), n - 8);
    n = make_ext_packet(p, 0xbede, stop, sizeof(stop));
    ASSERT_OK(md_rtp_parse(p, n, &h));
    ASSERT_EQ(md_rtp_rewrite_extensions(p, n, &h, 2, 9), n - 12);
    ASSERT(!(p[0] & 0x10));
    memcpy(p, sample, sizeof(sample));
    p[0] &= (uint8_t)~0x10;
    ASSERT_OK(md_rtp_parse(p, sizeof(sample), &h));
    ASSERT_EQ(md_rtp_rewrite_extensions(p, sizeof(sample), &h, 2, 9), sizeof(sample));
}

static void test_parse_malformed(void)
{
    md_rtp_header h = {.seq = 1234};
    uint8_t p[sizeof(sample)];
    ASSERT_EQ(md_rtp_parse(sample, 11, &h), -EBADMSG);
    memcpy(p, sample, sizeof(p));
    p[0] = 0x71; /* version 1 */
    ASSERT_EQ(md_rtp_parse(p, sizeof(p), &h), -EBADMSG);
    ASSERT_EQ(md_rtp_parse(sample, 15, &h), -EBADMSG); /* CSRC cut */
    ASSERT_EQ(md_rtp_parse(sample, 22, &h), -EBADMSG); /* extension cut */
    memcpy(p, sample, sizeof(p));
    p[sizeof(p) - 1] = 0; /* padding count 0 */
    ASSERT_EQ(md_rtp_parse(p, sizeof(p), &h), -EBADMSG);
    p[sizeof(p) - 1] = 200; /* padding larger than the payload */
    ASSERT_EQ(md_rtp_parse(p, sizeof(p), &h), -EBADMSG);
    ASSERT_EQ(h.seq, 1234); /* untouched on failure */
}

static void test_seq_newer(void)
{
    ASSERT(md_seq_newer(1, 0));
    ASSERT(md_seq_newer(0, 65535));
    ASSERT(!md_seq_newer(65535, 0));
    ASSERT(!md_seq_newer(5, 5));
    ASSERT(md_seq_newer(0x7fff, 0));
    ASSERT(!md_seq_newer(0x8000, 0));
}

static void test_vp8_keyframe(void)
{
    /* X=1 S=1 PID=0; I=1 with 15-bit picture id; then P=0: keyframe */
    uint8_t key[] = {0x90, 0x80, 0x81, 0x23, 0x50};
    uint8_t delta[] = {0x90, 0x80, 0x81, 0x23, 0x51};
    uint8_t not_start[] = {0x80, 0x80, 0x81, 0x23, 0x50};
    uint8_t short_desc[] = {0x10, 0x00}; /* no X, S=1, P=0 */
    ASSERT(md_rtp_vp8_is_keyframe(key, sizeof(key)));
    ASSERT(!md_rtp_vp8_is_keyframe(delta, sizeof(delta)));
    ASSERT(!md_rtp_vp8_is_keyframe(not_start, sizeof(not_start)));
    ASSERT(md_rtp_vp8_is_keyframe(short_desc, sizeof(short_desc)));
    ASSERT(!md_rtp_vp8_is_keyframe(key, 3)); /* descriptor runs past the end */
}

static void test_rtcp_compound(void)
{
    uint8_t buf[64];
    size_t len = 0;
    /* empty RR, then a PLI, then a FIR */
    buf[0] = 0x80, buf[1] = MD_RTCP_RR, md_put_u16(buf + 2, 1), md_put_u32(buf + 4, 9);
    len = 8;
    len += (size_t)md_rtcp_build_pli(buf + len, sizeof(buf) - len, 1, 2);
    len += (size_t)md_rtcp_build_fir(buf + len, sizeof(buf) - len, 1, 3, 7);
    ASSERT_EQ(len, 40);

    md_rtcp_packet p;
    size_t off = 0;
    ASSERT_EQ(md_rtcp_next(buf, len, &off, &p), 1);
    ASSERT_EQ(p.type, MD_RTCP_RR);
    ASSERT_EQ(p.len, 8);
    ASSERT_EQ(md_rtcp_next(buf, len, &off, &p), 1);
    ASSERT_EQ(p.type, MD_RTCP_PSFB);
    ASSERT_EQ(p.count, MD_PSFB_PLI);
    ASSERT_EQ(md_rtcp_sender_ssrc(&p), 1);
    ASSERT_EQ(md_rtcp_media_ssrc(&p), 2);
    ASSERT_EQ(md_rtcp_next(buf, len, &off, &p), 1);
    ASSERT_EQ(p.count, MD_PSFB_FIR);
    ASSERT_EQ(md_rtcp_media_ssrc(&p), 0); /* RFC 5104: target in the FCI */
    ASSERT_EQ(md_get_u32(p.data + 12), 3);
    ASSERT_EQ(p.data[16], 7);
    ASSERT_EQ(md_rtcp_next(buf, len, &off, &p), 0);

    off = 0; /* a length running past the datagram */
    ASSERT_EQ(md_rtcp_next(buf, 30, &off, &p), 1);
    ASSERT_EQ(md_rtcp_next(buf, 30, &off, &p), 1);
    ASSERT_EQ(md_rtcp_next(buf, 30, &off, &p), -EBADMSG);
    off = 0;
    buf[0] = 0xa0; /* padding on a packet that is not the last */
    ASSERT_EQ(md_rtcp_next(buf, len, &off, &p), -EBADMSG);
    ASSERT_EQ(md_rtcp_build_pli(buf, 11, 1, 2), -ENOBUFS);
    ASSERT_EQ(md_rtcp_build_fir(buf, 19, 1, 2, 0), -ENOBUFS);
}

static bool collect(uint16_t seq, void *ud)
{
    GArray *a = ud;
    g_array_append_val(a, seq);
    return true;
}

static void test_nack(void)
{
    uint8_t buf[20] = {0x80 | MD_RTPFB_NACK, MD_RTCP_RTPFB, 0, 3};
    md_put_u32(buf + 4, 1);
    md_put_u32(buf + 8, 2);
    md_put_u16(buf + 12, 65534);  /* PID */
    md_put_u16(buf + 14, 0x8003); /* +1, +2, +16 */
    md_rtcp_packet p = {.type = MD_RTCP_RTPFB, .count = MD_RTPFB_NACK, .data = buf, .len = 16};
    GArray *seqs = g_array_new(FALSE, FALSE, sizeof(uint16_t));
    ASSERT_EQ(md_rtcp_nack_foreach(&p, collect, seqs), 4);
    ASSERT_EQ(seqs->len, 4);
    ASSERT_EQ(g_array_index(seqs, uint16_t, 0), 65534);
    ASSERT_EQ(g_array_index(seqs, uint16_t, 1), 65535);
    ASSERT_EQ(g_array_index(seqs, uint16_t, 2), 0);
    ASSERT_EQ(g_array_index(seqs, uint16_t, 3), 14);
    g_array_free(seqs, TRUE);
    p.len = 12;
    ASSERT_EQ(md_rtcp_nack_foreach(&p, collect, NULL), -EBADMSG);
}

static void test_remb(void)
{
    uint8_t buf[24] = {0x80 | MD_PSFB_AFB, MD_RTCP_PSFB, 0, 5};
    memcpy(buf + 12, "REMB", 4);
    buf[16] = 1;
    /* 1 500 000 bit/s = 187 500 * 2^3 (18-bit mantissa, 6-bit exponent) */
    uint32_t mantissa = 187500, exp = 3;
    buf[17] = (uint8_t)(exp << 2 | mantissa >> 16);
    md_put_u16(buf + 18, (uint16_t)mantissa);
    md_put_u32(buf + 20, 0xabcdef01);
    md_rtcp_packet p = {.type = MD_RTCP_PSFB, .count = MD_PSFB_AFB, .data = buf, .len = 24};
    uint64_t bitrate = 0;
    unsigned n = 0;
    ASSERT(md_rtcp_is_remb(&p, &bitrate, &n));
    ASSERT_EQ(bitrate, 1500000);
    ASSERT_EQ(n, 1);
    buf[16] = 2; /* claims a second SSRC that is not there */
    ASSERT(!md_rtcp_is_remb(&p, NULL, NULL));
    buf[16] = 1;
    buf[12] = 'X';
    ASSERT(!md_rtcp_is_remb(&p, NULL, NULL));
}

int main(void)
{
    RUN(test_classify);
    RUN(test_parse_rewrite);
    RUN(test_rewrite_extensions);
    RUN(test_parse_malformed);
    RUN(test_seq_newer);
    RUN(test_vp8_keyframe);
    RUN(test_rtcp_compound);
    RUN(test_nack);
    RUN(test_remb);
    return 0;
}
