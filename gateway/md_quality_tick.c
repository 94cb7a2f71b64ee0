/*
 * Quality around the packet path of a session, on its worker.  Per RTP packet
 * (O(1), no allocation) it feeds the stream's md_rx_stats, reads the picture
 * size from keyframes (md_codec_probe.h) and NACKs gaps back to the sending
 * leg at once (RFC 4585 6.2.1), so a packet lost on the way in is usually
 * back before the receiver misses it.  Once a second a session timer sends
 * our own sender report on every outgoing stream (RFC 3550 6.4.1), so each
 * leg's receiver reports give us that leg's round trip (now - LSR - DLSR),
 * and posts one MD_MEDIA_QUALITY event per connected leg with the figures of
 * the interval (JSON shape in docs/internals/media.md).  Our SR maps the
 * source leg's own SR onto our clock with one offset per leg, the same for
 * audio and video, so the receiver's lip sync holds.
 */
#include "md_codec_probe.h"
#include "md_bridge.h"

#include <jansson.h>
#include <string.h>

#define NTP_UNITS 4294967296.0 /* 2^32 per second */

/* Our clock: the SRs we send and the LSR in reports about them use it. */
static uint64_t ntp_now(void)
{
    return md_ntp_from_unix_us(g_get_real_time());
}

static void nack_gap(md_leg_ctx *from, const md_rtp_header *h, unsigned gap)
{
    uint8_t buf[8 + 12 + 4 * ((MD_RTCP_NACK_MAX_SEQS + 16) / 17) + MD_SRTP_MAX_OVERHEAD];
    size_t len = 0;
    if (gap > MD_RTCP_NACK_MAX_SEQS) { /* too much to fetch packet by packet */
        md_relay_request_keyframe(from, false);
        return;
    }
    uint32_t sender = from->out[MD_KIND_VIDEO].ssrc ? from->out[MD_KIND_VIDEO].ssrc
                                                    : from->out[MD_KIND_AUDIO].ssrc;
    if (!from->choice.rtcp_rsize) { /* RFC 3550 6.1: a compound starts with a report */
        buf[0] = 0x80;
        buf[1] = MD_RTCP_RR;
        md_put_u16(buf + 2, 1);
        md_put_u32(buf + 4, sender);
        len = 8;
    }
    int r = md_rtcp_build_nack(buf + len, sizeof(buf) - len, sender, h->ssrc,
                               (uint16_t)(h->seq - gap), gap);
    if (r < 0)
        return;
    from->counters.nack_sent++;
    from->counters.nack_sent_seqs += gap;
    md_relay_send_rtcp(from, buf, len + (size_t)r, sizeof(buf));
}

void md_quality_on_rtp(md_leg_ctx *from, int k, const md_rtp_header *h, const uint8_t *packet,
                       size_t len, gint64 now_us)
{
    md_stream_in *in = &from->in[k];
    unsigned gap = md_rx_update(&in->rx, h->ssrc, h->seq, h->timestamp,
                                md_rx_arrival(now_us, in->clock_rate), len);
    if (k != MD_KIND_VIDEO)
        return;
    unsigned w, ht;
    if (from->session->video_probe &&
        from->session->video_probe(packet + h->header_len, h->payload_len, &w, &ht) == 1) {
        in->rx.width = w;
        in->rx.height = ht;
    }
    if (gap && (in->feedback & MD_SDP_FB_NACK) && from->srtp_out && from->ice)
        nack_gap(from, h, gap);
}

void md_quality_on_report_block(md_leg_ctx *from, const uint8_t *block)
{
    uint32_t ssrc = md_get_u32(block);
    from->counters.rr_blocks++;
    if (ssrc != from->out[MD_KIND_AUDIO].ssrc && ssrc != from->out[MD_KIND_VIDEO].ssrc)
        return;
    double rtt =
        md_rtt_ms(md_ntp_compact(ntp_now()), md_get_u32(block + 16), md_get_u32(block + 20));
    if (rtt >= 0) {
        from->rtt_ms = rtt;
        md_rtx_set_rtt(from->out[MD_KIND_VIDEO].rtx, rtt); /* the store of what it receives */
    }
}

void md_quality_on_sr(md_leg_ctx *from, const uint8_t *sr, size_t len)
{
    if (len < 28)
        return;
    uint32_t ssrc = md_get_u32(sr + 4);
    uint64_t ntp = (uint64_t)md_get_u32(sr + 8) << 32 | md_get_u32(sr + 12);
    for (int k = 0; k < MD_KINDS; k++) {
        md_stream_in *in = &from->in[k];
        if (in->ssrc != ssrc)
            continue;
        in->have_sr = true;
        in->sr_ssrc = ssrc;
        in->sr_ntp = ntp;
        in->sr_rtp = md_get_u32(sr + 16);
        in->sr_arrival_us = g_get_monotonic_time();
        if (!from->have_clock_offset) {
            from->have_clock_offset = true;
            from->clock_offset = (int64_t)(ntp_now() - ntp);
        }
    }
}

/* The RTP time of `now` on an outgoing stream: through the source's SR when
 * there is one, else extrapolated from the last packet sent. */
static uint32_t rtp_time_now(const md_leg_ctx *to, int k, uint64_t ntp, gint64 now_us)
{
    const md_stream_out *o = &to->out[k];
    const md_leg_ctx *src = &to->session->legs[!to->which];
    const md_stream_in *in = &src->in[k];
    if (in->have_sr && in->sr_ssrc == o->source_ssrc && src->have_clock_offset) {
        int64_t dt = (int64_t)(ntp - (uint64_t)src->clock_offset - in->sr_ntp);
        int64_t ticks = (int64_t)((double)dt / NTP_UNITS * o->clock_rate);
        return in->sr_rtp + (uint32_t)ticks + o->ts_offset;
    }
    return o->last_ts + (uint32_t)((now_us - o->last_time_us) * o->clock_rate / G_USEC_PER_SEC);
}

static void send_sender_reports(md_leg_ctx *leg, gint64 now_us)
{
    uint8_t buf[28 + MD_SRTP_MAX_OVERHEAD];
    uint64_t ntp = ntp_now();
    for (int k = 0; k < MD_KINDS; k++) {
        const md_stream_out *o = &leg->out[k];
        if (!o->active || !o->have_source || !o->packets)
            continue;
        int r = md_rtcp_build_sr(buf, sizeof(buf), o->ssrc, ntp, rtp_time_now(leg, k, ntp, now_us),
                                 (uint32_t)o->packets, (uint32_t)o->octets);
        if (r < 0)
            continue;
        leg->counters.sr_sent++;
        md_relay_send_rtcp(leg, buf, (size_t)r, sizeof(buf));
    }
}

static json_t *stream_json(md_stream_in *in, double seconds, bool video, const char *codec)
{
    md_rx_interval iv;
    md_rx_take_interval(&in->rx, &iv);
    json_t *o = json_pack("{s:f, s:I, s:I, s:f, s:f, s:f}", "kbps",
                          (double)iv.bytes * 8 / 1000 / seconds, "packets", (json_int_t)iv.received,
                          "lost", (json_int_t)(iv.lost > 0 ? iv.lost : 0), "loss_pct", iv.loss_pct,
                          "loss_pct_total", iv.loss_pct_total, "jitter_ms",
                          in->clock_rate ? iv.jitter * 1000.0 / in->clock_rate : 0.0);
    if (video) {
        json_object_set_new(o, "codec", codec ? json_string(codec) : json_null());
        json_object_set_new(o, "fps", json_real((double)iv.frames / seconds));
        json_object_set_new(o, "width", json_integer(in->rx.width));
        json_object_set_new(o, "height", json_integer(in->rx.height));
    }
    return o;
}

static json_t *counters_json(const md_leg_ctx *leg)
{
    const md_leg_counters *c = &leg->counters;
    json_t *o = json_object();
    const struct {
        const char *name;
        uint64_t value;
    } fields[] = {
        {"packets_in", leg->in[0].packets + leg->in[1].packets},
        {"packets_out", leg->out[0].packets + leg->out[1].packets},
        {"bytes_in", leg->in[0].bytes + leg->in[1].bytes},
        {"bytes_out", leg->out[0].bytes + leg->out[1].bytes},
        {"dropped_malformed", c->malformed},
        {"dropped_oversize", c->oversize},
        {"dropped_unknown_pt", c->unknown_pt},
        {"dropped_srtp", c->srtp_errors},
        {"dropped_not_ready", c->not_ready},
        {"nack_received", c->nack_received},
        {"nack_answered", c->nack_answered},
        {"nack_missed", c->nack_missed},
        {"nack_sent", c->nack_sent},
        {"nack_sent_seqs", c->nack_sent_seqs},
        {"pli_fir_received", c->pli_fir_received},
        {"pli_fir_forwarded", c->pli_fir_forwarded},
        {"keyframe_requests_sent", c->keyframe_requests_sent},
        {"keyframe_requests_suppressed", c->keyframe_suppressed},
        {"remb_forwarded", c->remb_forwarded},
        {"sr_sent", c->sr_sent},
        {"report_blocks_received", c->rr_blocks},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(fields); i++)
        json_object_set_new(o, fields[i].name, json_integer((json_int_t)fields[i].value));
    return o;
}

static void report(md_leg_ctx *leg, gint64 now_us)
{
    double seconds = leg->last_tick_us ? (double)(now_us - leg->last_tick_us) / G_USEC_PER_SEC
                                       : MD_QUALITY_INTERVAL_MS / 1000.0;
    if (seconds <= 0)
        seconds = MD_QUALITY_INTERVAL_MS / 1000.0;
    leg->last_tick_us = now_us;
    json_t *stats = json_pack(
        "{s:s, s:s, s:i, s:o, s:o, s:o, s:o}", "leg", md_leg_name(leg->which), "direction", "in",
        "interval_ms", (int)(seconds * 1000 + 0.5), "video",
        stream_json(&leg->in[MD_KIND_VIDEO], seconds, true, leg->session->video_codec), "audio",
        stream_json(&leg->in[MD_KIND_AUDIO], seconds, false, NULL), "rtt_ms",
        leg->rtt_ms >= 0 ? json_real(leg->rtt_ms) : json_null(), "counters", counters_json(leg));
    md_media_event ev = {
        .type = MD_MEDIA_QUALITY,
        .session_id = leg->session->id,
        .leg = leg->which,
        .stats = stats,
    };
    md_event_sink_post(leg->session->host->sink, &ev, leg->session->serial);
    json_decref(stats);
}

static gboolean tick(gpointer data)
{
    md_bridge *s = data;
    gint64 now = g_get_monotonic_time();
    size_t freed = 0;
    for (int i = 0; i < 2; i++)
        freed += md_rtx_trim(s->legs[i].out[MD_KIND_VIDEO].rtx, now);
    md_bridge_heap_freed(s->host, freed);
    for (int i = 0; i < 2; i++) {
        md_leg_ctx *leg = &s->legs[i];
        if (leg->state != MD_LEG_CONNECTED)
            continue;
        send_sender_reports(leg, now);
        report(leg, now);
    }
    return G_SOURCE_CONTINUE;
}

void md_quality_start(md_bridge *s)
{
    for (int i = 0; i < 2; i++)
        s->legs[i].rtt_ms = -1;
    s->quality_timer = g_timeout_source_new(MD_QUALITY_INTERVAL_MS);
    g_source_set_callback(s->quality_timer, tick, s, NULL);
    g_source_attach(s->quality_timer, s->host->ctx);
}

void md_quality_stop(md_bridge *s)
{
    if (!s->quality_timer)
        return;
    g_source_destroy(s->quality_timer);
    g_clear_pointer(&s->quality_timer, g_source_unref);
}
