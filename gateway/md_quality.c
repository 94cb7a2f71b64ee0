/*
 * Receive statistics math (see md_quality.h): RFC 3550 A.1 sequence
 * validation without the probation step (SRTP authentication already
 * vouches for the source), A.3 loss, A.8 jitter in its integer form.  Pure
 * functions over one md_rx_stats; the per-second events that use them are
 * built in md_quality_tick.c.
 */
#include "md_quality.h"

#define RTP_SEQ_MOD 65536u

static void init_seq(md_rx_stats *s, uint16_t seq)
{
    s->base_seq = seq;
    s->max_seq = seq;
    s->bad_seq = RTP_SEQ_MOD + 1;
    s->cycles = 0;
    s->received = 0;
    s->expected_prior = 0;
    s->received_prior = 0;
    s->have_transit = false;
}

/* RFC 3550 A.8: J += (|D| - J) / 16, kept as 16 * J. */
static void update_jitter(md_rx_stats *s, uint32_t ts, uint32_t arrival)
{
    uint32_t transit = arrival - ts;
    if (s->have_transit) {
        int64_t d = (int32_t)(transit - s->last_transit);
        if (d < 0)
            d = -d;
        int64_t j = (int64_t)s->jitter_q4 + d - (((int64_t)s->jitter_q4 + 8) >> 4);
        s->jitter_q4 = j < 0 ? 0 : j > UINT32_MAX ? UINT32_MAX : (uint32_t)j;
    }
    s->last_transit = transit;
    s->have_transit = true;
}

unsigned md_rx_update(md_rx_stats *s, uint32_t ssrc, uint16_t seq, uint32_t ts, uint32_t arrival,
                      uint64_t bytes)
{
    unsigned gap = 0;
    bool in_order = false;
    if (!s->started || s->ssrc != ssrc) {
        s->started = true;
        s->ssrc = ssrc;
        init_seq(s, seq);
        s->last_ts = ts + 1; /* anything but ts: the first packet starts a frame */
        in_order = true;
    } else {
        uint16_t udelta = (uint16_t)(seq - s->max_seq);
        if (udelta == 0) {
            /* a duplicate: counted as received, as in A.1 */
        } else if (udelta < MD_RX_MAX_DROPOUT) {
            if (seq < s->max_seq)
                s->cycles += RTP_SEQ_MOD;
            s->max_seq = seq;
            gap = udelta - 1u;
            in_order = true;
        } else if (udelta <= RTP_SEQ_MOD - MD_RX_MAX_MISORDER) {
            if (seq != s->bad_seq) { /* a big jump: believe it only if the next follows */
                s->bad_seq = (seq + 1u) & (RTP_SEQ_MOD - 1);
                return 0;
            }
            init_seq(s, seq); /* the sender restarted */
            in_order = true;
        }
        /* else: late or retransmitted, counted but it moves nothing */
    }
    s->received++;
    s->bytes += bytes;
    if (in_order && ts != s->last_ts) {
        s->frames++;
        update_jitter(s, ts, arrival);
        s->last_ts = ts;
    }
    return gap;
}

static double pct(int64_t lost, uint64_t expected)
{
    if (lost <= 0 || expected == 0)
        return 0;
    if ((uint64_t)lost >= expected)
        return 100;
    return 100.0 * (double)lost / (double)expected;
}

void md_rx_take_interval(md_rx_stats *s, md_rx_interval *ret)
{
    *ret = (md_rx_interval){0};
    if (!s->started)
        return;
    uint64_t extended_max = s->cycles + s->max_seq;
    uint64_t expected = extended_max - s->base_seq + 1;
    ret->expected = expected - s->expected_prior;
    ret->received = s->received - s->received_prior;
    ret->lost = (int64_t)ret->expected - (int64_t)ret->received;
    ret->loss_pct = pct(ret->lost, ret->expected);
    ret->loss_pct_total = pct((int64_t)expected - (int64_t)s->received, expected);
    ret->bytes = s->bytes - s->bytes_prior;
    ret->frames = s->frames - s->frames_prior;
    ret->jitter = s->jitter_q4 >> 4;
    s->expected_prior = expected;
    s->received_prior = s->received;
    s->bytes_prior = s->bytes;
    s->frames_prior = s->frames;
}

uint32_t md_rx_arrival(int64_t time_us, uint32_t clock_rate)
{
    return (uint32_t)((uint64_t)time_us * clock_rate / 1000000u);
}

/* RFC 5905 6: the NTP era starts 70 years (2208988800 s) before 1970. */
uint64_t md_ntp_from_unix_us(int64_t unix_us)
{
    uint64_t secs = (uint64_t)(unix_us / 1000000) + 2208988800u;
    uint64_t frac = ((uint64_t)(unix_us % 1000000) << 32) / 1000000u;
    return secs << 32 | frac;
}

double md_rtt_ms(uint32_t now_compact, uint32_t lsr, uint32_t dlsr)
{
    if (lsr == 0)
        return -1;
    uint32_t units = now_compact - lsr - dlsr; /* 1/65536 s */
    if (units > 60u * 65536u)
        return -1;
    return (double)units * 1000.0 / 65536.0;
}
