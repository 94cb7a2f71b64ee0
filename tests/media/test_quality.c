/*
 * Quality figures: picture size probes on real encoder output
 * (the .rtp and .nal files of tests/media/data, made by make_codec_fixtures.py) and on
 * variants built from it (descriptor forms, FU-A, truncation), the receive
 * statistics math of RFC 3550 A.1 / A.3 / A.8 on crafted sequences, NTP and
 * RTT arithmetic (RFC 3550 6.4.1), and the SR and NACK builders.
 */
#include "md_codec_probe.h"
#include "md_quality.h"
#include "md_rtp.h"
#include "md_test.h"

#include <errno.h>
#include <glib.h>
#include <math.h>

static uint8_t *fixture(const char *name, size_t *ret_len)
{
    const char *root = g_getenv("MD_SOURCE_ROOT");
    char *path = g_build_filename(root ? root : ".", "tests", "media", "data", name, NULL);
    char *data = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &data, &len, NULL))
        MD_FAIL("cannot read %s", path);
    g_free(path);
    *ret_len = len;
    return (uint8_t *)data;
}

static void test_vp8(void)
{
    size_t len, dlen;
    uint8_t *key = fixture("vp8_key_176x144.rtp", &len);
    uint8_t *delta = fixture("vp8_delta_176x144.rtp", &dlen);
    unsigned w = 0, h = 0;
    ASSERT_EQ(md_probe_vp8(key, len, &w, &h), 1);
    ASSERT_EQ(w, 176);
    ASSERT_EQ(h, 144);
    ASSERT(md_rtp_vp8_is_keyframe(key, len));
    w = h = 7;
    ASSERT_EQ(md_probe_vp8(delta, dlen, &w, &h), 0);
    ASSERT_EQ(w, 7); /* untouched */

    /* aiortc writes X + I with a 15-bit picture ID: 4 descriptor bytes. */
    ASSERT_EQ(key[0], 0x90);
    ASSERT_EQ(key[1], 0x80);
    const uint8_t *frame = key + 4;
    size_t frame_len = len - 4;
    uint8_t buf[256];
    /* the minimal descriptor (no X) */
    buf[0] = 0x10;
    memcpy(buf + 1, frame, frame_len);
    ASSERT_EQ(md_probe_vp8(buf, frame_len + 1, &w, &h), 1);
    ASSERT_EQ(w, 176);
    /* X with I (7-bit), L, T/K: 5 descriptor bytes */
    uint8_t ext[] = {0x90, 0xf0, 0x12, 0x34, 0x56};
    memcpy(buf, ext, sizeof(ext));
    memcpy(buf + sizeof(ext), frame, frame_len);
    w = 0;
    ASSERT_EQ(md_probe_vp8(buf, frame_len + sizeof(ext), &w, &h), 1);
    ASSERT_EQ(h, 144);
    /* not the start of partition 0: nothing to read */
    buf[0] = 0x80;
    ASSERT_EQ(md_probe_vp8(buf, frame_len + sizeof(ext), &w, &h), 0);
    buf[0] = 0x91; /* S set, but partition 1 */
    ASSERT_EQ(md_probe_vp8(buf, frame_len + sizeof(ext), &w, &h), 0);
    /* a bad start code */
    memcpy(buf, key, len);
    buf[4 + 3] = 0x9c;
    ASSERT_EQ(md_probe_vp8(buf, len, &w, &h), -EBADMSG);
    /* every truncation of the keyframe header fails cleanly */
    for (size_t n = 0; n < 4 + 10; n++) {
        int r = md_probe_vp8(key, n, &w, &h);
        ASSERT(r == -EBADMSG || r == 0);
    }
    g_free(key);
    g_free(delta);
}

static void test_h264_stap_a(void)
{
    size_t len;
    uint8_t *stap = fixture("h264_stapa_320x180.rtp", &len);
    unsigned w = 0, h = 0;
    ASSERT_EQ(stap[0] & 0x1f, 24);
    ASSERT_EQ(md_probe_h264(stap, len, &w, &h), 1);
    ASSERT_EQ(w, 320);
    ASSERT_EQ(h, 180); /* 12 macroblock rows, 12 lines cropped (frame_crop_bottom 6) */
    /* a STAP-A whose sizes overrun its packet */
    uint8_t bad[8] = {24, 0x00, 0x40, 0x67, 0x42};
    ASSERT_EQ(md_probe_h264(bad, sizeof(bad), &w, &h), -EBADMSG);
    /* a STAP-A without an SPS (the fixture's first aggregation unit dropped) */
    size_t first = (size_t)(stap[1] << 8 | stap[2]);
    uint8_t *rest = g_malloc(len);
    rest[0] = stap[0];
    memcpy(rest + 1, stap + 3 + first, len - 3 - first);
    ASSERT_EQ(md_probe_h264(rest, len - 2 - first, &w, &h), 0);
    g_free(rest);
    g_free(stap);
}

static void check_sps(const char *name, unsigned want_w, unsigned want_h)
{
    size_t len;
    uint8_t *sps = fixture(name, &len);
    unsigned w = 0, h = 0;
    /* RFC 6184 5.6: the SPS as a single NAL unit packet */
    ASSERT_EQ(md_probe_h264(sps, len, &w, &h), 1);
    ASSERT_EQ(w, want_w);
    ASSERT_EQ(h, want_h);
    /* RFC 6184 5.8: FU-A, start fragment of an SPS split in two */
    uint8_t fu[64];
    size_t half = len / 2 + 1;
    ASSERT(half + 2 <= sizeof(fu));
    fu[0] = (uint8_t)((sps[0] & 0xe0) | 28);
    fu[1] = 0x80 | 7;
    memcpy(fu + 2, sps + 1, len - 1);
    w = h = 0;
    ASSERT_EQ(md_probe_h264(fu, len + 1, &w, &h), 1);
    ASSERT_EQ(w, want_w);
    ASSERT_EQ(h, want_h);
    fu[1] = 7; /* not a start fragment */
    ASSERT_EQ(md_probe_h264(fu, len + 1, &w, &h), 0);
    /* every truncation: refused, or (when only the VUI is cut) still right */
    for (size_t n = 0; n < len; n++) {
        w = h = 0;
        int r = md_probe_h264_sps(sps, n, &w, &h);
        ASSERT(r == -EBADMSG || r == 0 || (r == 1 && w == want_w && h == want_h));
    }
    g_free(sps);
}

static void test_h264_sps(void)
{
    check_sps("h264_sps_high_1280x720.nal", 1280, 720);   /* chroma_format_idc read */
    check_sps("h264_sps_baseline_640x360.nal", 640, 360); /* cropped from 368 */
    unsigned w, h;
    uint8_t pps[] = {0x68, 0xce, 0x38, 0x80};
    ASSERT_EQ(md_probe_h264(pps, sizeof(pps), &w, &h), 0);
    uint8_t idr[] = {0x65, 0x88, 0x84};
    ASSERT_EQ(md_probe_h264(idr, sizeof(idr), &w, &h), 0);
    /* ue(v) with more than 31 leading zeros */
    uint8_t zeros[12] = {0x67, 0x42, 0xc0, 0x1f};
    ASSERT_EQ(md_probe_h264_sps(zeros, sizeof(zeros), &w, &h), -EBADMSG);
    ASSERT_EQ(md_probe_h264(NULL, 0, &w, &h), -EBADMSG);
}

/* ---- RFC 3550 A.1 / A.3 / A.8 ---- */

static unsigned feed(md_rx_stats *s, uint16_t seq, uint32_t ts, uint32_t arrival)
{
    return md_rx_update(s, 0x1234, seq, ts, arrival, 100);
}

static void test_loss(void)
{
    md_rx_stats s = {0};
    md_rx_interval iv;
    unsigned gaps = 0;
    /* 100 packets from 65500 (wrapping), every 10th lost */
    for (unsigned i = 0; i < 100; i++) {
        uint16_t seq = (uint16_t)(65500 + i);
        if (i % 10 == 5)
            continue;
        gaps += feed(&s, seq, i * 3000, i * 3000);
    }
    ASSERT_EQ(gaps, 10);
    md_rx_take_interval(&s, &iv);
    ASSERT_EQ(iv.expected, 100);
    ASSERT_EQ(iv.received, 90);
    ASSERT_EQ(iv.lost, 10);
    ASSERT(fabs(iv.loss_pct - 10.0) < 1e-9);
    ASSERT(fabs(iv.loss_pct_total - 10.0) < 1e-9);
    ASSERT_EQ(iv.bytes, 9000);
    ASSERT_EQ(iv.frames, 90);
    ASSERT_EQ(s.cycles, 65536);

    /* next interval: 20 more, none lost, plus a retransmission of 95 and a
     * duplicate of 110 (both within MD_RX_MAX_MISORDER): loss clamps to 0 */
    for (unsigned i = 100; i < 120; i++)
        ASSERT_EQ(feed(&s, (uint16_t)(65500 + i), i * 3000, i * 3000), 0);
    feed(&s, (uint16_t)(65500 + 95), 95 * 3000, 130 * 3000);
    feed(&s, (uint16_t)(65500 + 110), 110 * 3000, 130 * 3000);
    /* more than MD_RX_MAX_MISORDER late: taken as a jump candidate, not counted */
    feed(&s, (uint16_t)(65500 + 5), 5 * 3000, 130 * 3000);
    md_rx_take_interval(&s, &iv);
    ASSERT_EQ(iv.expected, 20);
    ASSERT_EQ(iv.received, 22);
    ASSERT_EQ(iv.lost, -2);
    ASSERT(iv.loss_pct == 0);
    ASSERT(fabs(iv.loss_pct_total - 100.0 * 8 / 120) < 1e-9); /* 10 lost, 2 recovered */
    ASSERT_EQ(iv.frames, 20);                                 /* late packets start no frame */

    /* A.1: a jump is believed only when the next packet follows it */
    ASSERT_EQ(feed(&s, 30000, 1, 1), 0);
    md_rx_take_interval(&s, &iv);
    ASSERT_EQ(iv.received, 0);
    ASSERT_EQ(feed(&s, 30001, 2, 2), 0); /* restart: new base */
    ASSERT_EQ(feed(&s, 30002, 3, 3), 0);
    md_rx_take_interval(&s, &iv);
    ASSERT_EQ(iv.expected, 2);
    ASSERT_EQ(iv.received, 2);
    ASSERT(iv.loss_pct_total == 0);

    /* a new SSRC restarts tracking */
    md_rx_update(&s, 0x9999, 7, 0, 0, 10);
    ASSERT_EQ(md_rx_update(&s, 0x9999, 10, 1, 1, 10), 2);
    md_rx_take_interval(&s, &iv);
    ASSERT_EQ(iv.expected, 4);
    ASSERT_EQ(iv.received, 2);
    ASSERT(fabs(iv.loss_pct - 50.0) < 1e-9);

    md_rx_stats empty = {0};
    md_rx_take_interval(&empty, &iv);
    ASSERT_EQ(iv.expected, 0);
}

static void test_jitter(void)
{
    md_rx_stats s = {0};
    md_rx_interval iv;
    /* constant transit: no jitter; several packets per timestamp change nothing */
    for (unsigned i = 0; i < 50; i++) {
        feed(&s, (uint16_t)(2 * i), i * 3000, 777 + i * 3000);
        feed(&s, (uint16_t)(2 * i + 1), i * 3000, 777 + i * 3000 + 500); /* paced */
    }
    md_rx_take_interval(&s, &iv);
    ASSERT_EQ(iv.jitter, 0);
    ASSERT_EQ(iv.frames, 50);
    /* A.8: |D| alternating 0 and 900 converges to the mean of |D|, 900 per
     * change: J -> 900 when every D has magnitude 900 */
    md_rx_stats t = {0};
    for (unsigned i = 0; i < 400; i++)
        feed(&t, (uint16_t)i, i * 3000, i * 3000 + (i % 2 ? 900 : 0));
    md_rx_take_interval(&t, &iv);
    ASSERT(iv.jitter >= 890 && iv.jitter <= 900);
    /* arrival conversion */
    ASSERT_EQ(md_rx_arrival(1000000, 90000), 90000);
    ASSERT_EQ(md_rx_arrival(20000, 48000), 960);
}

static void test_ntp_rtt(void)
{
    ASSERT(md_ntp_from_unix_us(0) == (uint64_t)2208988800u << 32);
    ASSERT(md_ntp_from_unix_us(1500000) == ((uint64_t)2208988801u << 32 | 0x80000000u));
    uint64_t ntp = md_ntp_from_unix_us(1700000000123456);
    ASSERT_EQ(md_ntp_compact(ntp), (uint32_t)(ntp >> 16));
    uint32_t lsr = 0x12345678;
    /* sent at lsr, held 1 s by the peer, back 50 ms after sending */
    double rtt = md_rtt_ms(lsr + 65536 + 3277, lsr, 65536);
    ASSERT(fabs(rtt - 50.0) < 0.1);
    ASSERT(md_rtt_ms(lsr + 10, 0, 0) < 0);           /* no SR received yet */
    ASSERT(md_rtt_ms(lsr, lsr, 65536) < 0);          /* negative */
    ASSERT(md_rtt_ms(lsr + 61 * 65536, lsr, 0) < 0); /* implausible */
}

static bool collect(uint16_t seq, void *ud)
{
    GArray *a = ud;
    g_array_append_val(a, seq);
    return true;
}

static void test_builders(void)
{
    uint8_t buf[64];
    int n = md_rtcp_build_nack(buf, sizeof(buf), 1, 2, 65530, 20);
    ASSERT_EQ(n, 12 + 8);
    md_rtcp_packet p;
    size_t off = 0;
    ASSERT_EQ(md_rtcp_next(buf, (size_t)n, &off, &p), 1);
    GArray *seqs = g_array_new(FALSE, FALSE, sizeof(uint16_t));
    ASSERT_EQ(md_rtcp_nack_foreach(&p, collect, seqs), 20);
    for (unsigned i = 0; i < 20; i++)
        ASSERT_EQ(g_array_index(seqs, uint16_t, i), (uint16_t)(65530 + i));
    g_array_free(seqs, TRUE);
    ASSERT_EQ(md_rtcp_media_ssrc(&p), 2);
    ASSERT_EQ(md_rtcp_build_nack(buf, sizeof(buf), 1, 2, 0, 0), -EINVAL);
    ASSERT_EQ(md_rtcp_build_nack(buf, sizeof(buf), 1, 2, 0, MD_RTCP_NACK_MAX_SEQS + 1), -EINVAL);
    ASSERT_EQ(md_rtcp_build_nack(buf, 15, 1, 2, 0, 1), -ENOBUFS);

    n = md_rtcp_build_sr(buf, sizeof(buf), 0xabcdef01, 0x1122334455667788ull, 90000, 7, 700);
    ASSERT_EQ(n, 28);
    off = 0;
    ASSERT_EQ(md_rtcp_next(buf, (size_t)n, &off, &p), 1);
    ASSERT_EQ(p.type, MD_RTCP_SR);
    ASSERT_EQ(p.count, 0);
    ASSERT_EQ(md_get_u32(buf + 4), 0xabcdef01);
    ASSERT_EQ(md_get_u32(buf + 8), 0x11223344);
    ASSERT_EQ(md_get_u32(buf + 12), 0x55667788);
    ASSERT_EQ(md_get_u32(buf + 16), 90000);
    ASSERT_EQ(md_get_u32(buf + 20), 7);
    ASSERT_EQ(md_get_u32(buf + 24), 700);
    ASSERT_EQ(md_rtcp_build_sr(buf, 27, 1, 0, 0, 0, 0), -ENOBUFS);
}

int main(void)
{
    RUN(test_vp8);
    RUN(test_h264_stap_a);
    RUN(test_h264_sps);
    RUN(test_loss);
    RUN(test_jitter);
    RUN(test_ntp_rtt);
    RUN(test_builders);
    return 0;
}
