/*
 * libFuzzer harness for the quality code that reads untrusted payloads and
 * numbers: the VP8 and H.264 picture size probes (md_codec_probe.h, fed the
 * whole input as an RTP payload, and as a bare SPS) and the RFC 3550 receive
 * statistics (md_quality.h, fed the input as a sequence of 10-byte
 * seq/timestamp/arrival records).  Any size reported must be in range and
 * loss percentages in 0..100.  Replayed from tests/fuzz/media/corpus/codec by
 * the ordinary test run (replay.c).
 */
#include "md_codec_probe.h"
#include "md_quality.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_size(int r, unsigned w, unsigned h)
{
    if (r == 1 && (w == 0 || h == 0 || w > MD_PROBE_MAX_DIMENSION || h > MD_PROBE_MAX_DIMENSION))
        __builtin_trap();
}

static void probes(const uint8_t *data, size_t size)
{
    int (*const probe[])(const uint8_t *, size_t, unsigned *,
                         unsigned *) = {md_probe_vp8, md_probe_h264, md_probe_h264_sps};
    for (size_t i = 0; i < sizeof(probe) / sizeof(probe[0]); i++) {
        unsigned w = 0, h = 0;
        int r = probe[i](data, size, &w, &h);
        check_size(r, w, h);
    }
}

static void receive_stats(const uint8_t *data, size_t size)
{
    md_rx_stats s = {0};
    md_rx_interval iv;
    for (size_t off = 0; off + 10 <= size; off += 10) {
        const uint8_t *p = data + off;
        uint16_t seq = (uint16_t)(p[0] << 8 | p[1]);
        uint32_t ts = (uint32_t)p[2] << 24 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 8 | p[5];
        uint32_t at = (uint32_t)p[6] << 24 | (uint32_t)p[7] << 16 | (uint32_t)p[8] << 8 | p[9];
        md_rx_update(&s, seq & 0x8000 ? 1 : 2, seq, ts, at, size);
        if (p[9] == 0xff) {
            md_rx_take_interval(&s, &iv);
            if (iv.loss_pct < 0 || iv.loss_pct > 100 || iv.loss_pct_total < 0 ||
                iv.loss_pct_total > 100)
                __builtin_trap();
        }
    }
    md_rx_take_interval(&s, &iv);
    if (iv.loss_pct < 0 || iv.loss_pct > 100)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    probes(data, size);
    receive_stats(data, size);
    return 0;
}
