/*
 * Receive statistics of one incoming RTP stream, as RFC 3550 Appendix A
 * computes them: sequence tracking with wrap and restart detection (A.1),
 * expected vs received per interval and in total (A.3), interarrival jitter
 * (A.8), plus byte and frame counts for bitrate and frame rate, and the
 * picture size last seen in a keyframe.  md_rx_update() runs once per packet
 * on the worker: O(1), no allocation.  md_rx_take_interval() runs once per
 * quality tick and moves the interval baseline.  The struct lives inside the
 * leg's md_stream_in (md_bridge.h) and is owned by its worker.
 */
#ifndef MD_QUALITY_H
#define MD_QUALITY_H

#include <stdbool.h>
#include <stdint.h>

#define MD_QUALITY_INTERVAL_MS 1000
#define MD_RX_MAX_DROPOUT 3000 /* RFC 3550 A.1 */
#define MD_RX_MAX_MISORDER 100

typedef struct md_rx_stats {
    bool started;
    uint32_t ssrc;
    uint16_t max_seq;
    uint64_t cycles; /* count of sequence wraps, shifted by 16 */
    uint32_t base_seq;
    uint32_t bad_seq; /* 65536 + 1: none pending */
    uint64_t received, bytes, frames;
    uint32_t last_ts;
    uint32_t last_transit;
    bool have_transit;
    uint32_t jitter_q4; /* RFC 3550 A.8: jitter * 16, in timestamp units */
    uint64_t expected_prior, received_prior, bytes_prior, frames_prior;
    unsigned width, height; /* 0 until a keyframe told */
} md_rx_stats;

/* One interval's figures (and the totals since the stream (re)started). */
typedef struct md_rx_interval {
    uint64_t expected, received, bytes, frames;
    int64_t lost;          /* may be negative: duplicates (A.3) */
    double loss_pct;       /* of the interval, clamped to 0..100 */
    double loss_pct_total; /* since the first packet, clamped to 0..100 */
    uint32_t jitter;       /* timestamp units */
} md_rx_interval;

/* A valid packet of ssrc: seq, RTP timestamp ts, arrival in the same
 * timestamp units (wall time * clock rate), bytes on the wire.  Returns how
 * many sequence numbers were skipped just before this one (0 unless a gap
 * opened), which the caller may NACK (RFC 4585 6.2.1).  A new SSRC, or a
 * second packet confirming a large jump, restarts sequence tracking (A.1).
 * Jitter and frames are updated only by in-order packets that start a new
 * timestamp: packets of one video frame share it and leave the sender paced. */
unsigned md_rx_update(md_rx_stats *s, uint32_t ssrc, uint16_t seq, uint32_t ts, uint32_t arrival,
                      uint64_t bytes);

/* RFC 3550 A.3: fills ret for the interval since the last call and starts a
 * new one. */
void md_rx_take_interval(md_rx_stats *s, md_rx_interval *ret);

/* Arrival time in timestamp units of a clock_rate stream, from microseconds. */
uint32_t md_rx_arrival(int64_t time_us, uint32_t clock_rate);

/* 64-bit NTP time (RFC 5905 6, seconds since 1900 in the high half) from
 * g_get_real_time()-style microseconds since 1970, and its middle 32 bits as
 * used by LSR/DLSR (RFC 3550 6.4.1). */
uint64_t md_ntp_from_unix_us(int64_t unix_us);
static inline uint32_t md_ntp_compact(uint64_t ntp)
{
    return (uint32_t)(ntp >> 16);
}

/* RFC 3550 6.4.1: round trip from a report block's LSR and DLSR, received at
 * compact NTP time now; -1 when LSR is 0 or the result is not plausible
 * (negative or above a minute). */
double md_rtt_ms(uint32_t now_compact, uint32_t lsr, uint32_t dlsr);

#endif
