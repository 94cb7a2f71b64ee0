/*
 * The packet path of a session, on its worker (see md_bridge.h).  A datagram
 * from leg A is copied once into the host's scratch buffer, unprotected,
 * parsed, rewritten in place to the numbering leg B negotiated (SSRC, payload
 * type, sequence number and timestamp as continuous offsets, RFC 3550 5.1 /
 * 8.2 translator rules), protected for B and sent on B's ICE pair.  Video
 * packets sent to B are kept, protected, in B's retransmission store
 * (md_rtx.h) so B's NACKs are answered locally (RFC 4585 6.2.1).  RTCP is
 * translated, not forwarded blindly: receiver report blocks are SSRC- and
 * sequence-mapped, sender reports are replaced by the gateway's own
 * (md_quality_tick.c), PLI/FIR become a rate-limited
 * keyframe request to the sender (RFC 4585 6.3.1, RFC 5104 4.3.1), REMB is
 * re-addressed to the sender's SSRC, everything else is dropped.  No
 * allocation happens per packet; nothing is shared with other workers.
 */
#include "md_err.h"
#include "md_log.h"
#include "md_recorder.h"
#include "md_rtp.h"
#include "md_bridge.h"

#include <errno.h>
#include <string.h>

#define MAX_NACK_ANSWERS 64 /* per RTCP packet: bounds what one NACK can make us send */
#define REPORT_BLOCK_LEN 24

static uint32_t random_ssrc(uint32_t avoid)
{
    uint32_t v;
    do
        v = g_random_int();
    while (v == 0 || v == avoid);
    return v;
}

static bool receives(md_sdp_direction offered)
{
    return offered == MD_SDP_SENDRECV || offered == MD_SDP_SENDONLY;
}

static bool sends(md_sdp_direction offered)
{
    return offered == MD_SDP_SENDRECV || offered == MD_SDP_RECVONLY;
}

int md_relay_leg_prepare(md_leg_ctx *leg, const md_bridge_config *cfg)
{
    const md_sdp_choice *c = &leg->choice;
    const md_sdp_direction dir[MD_KINDS] = {c->audio_direction, c->video_direction};
    const uint8_t pt[MD_KINDS] = {c->audio_pt, c->video_pt};
    const uint32_t ssrc[MD_KINDS] = {c->remote_audio_ssrc, c->remote_video_ssrc};
    const unsigned fb[MD_KINDS] = {c->audio_feedback, c->video_feedback};
    const uint32_t clock[MD_KINDS] = {48000, 90000};

    for (int k = 0; k < MD_KINDS; k++) {
        md_stream_in *in = &leg->in[k];
        md_stream_out *out = &leg->out[k];
        in->pt = pt[k];
        in->feedback = fb[k];
        in->clock_rate = clock[k];
        if (ssrc[k])
            in->ssrc = ssrc[k];
        if (!receives(dir[k]))
            in->ssrc = 0;
        out->active = sends(dir[k]);
        out->pt = pt[k];
        out->clock_rate = clock[k];
        if (!out->ssrc)
            out->ssrc = random_ssrc(leg->out[!k].ssrc);
    }
    md_stream_out *video = &leg->out[MD_KIND_VIDEO];
    if (cfg->nack_packets && !video->rtx && (c->video_feedback & MD_SDP_FB_NACK)) {
        video->rtx = md_rtx_new(cfg->nack_packets, cfg->nack_min_ms, cfg->nack_max_ms);
        md_rtx_set_rtt(video->rtx, leg->rtt_ms);
    }
    return 0;
}

void md_relay_leg_clear(md_leg_ctx *leg)
{
    for (int k = 0; k < MD_KINDS; k++) {
        leg->out[k].rtx = md_rtx_free(leg->out[k].rtx);
        leg->out[k].have_source = false;
        leg->in[k].have_sr = false;
    }
    leg->have_clock_offset = false; /* a new transport may be a new clock */
}

/* RFC 3550 8.2: a new source behind the same outgoing SSRC continues its
 * sequence and timestamp space. */
static void rewrite(md_stream_out *o, uint8_t *p, const md_rtp_header *h, gint64 now)
{
    if (!o->have_source) {
        o->have_source = true;
        o->source_ssrc = h->ssrc;
        o->seq_offset = (uint16_t)g_random_int(); /* RFC 3550 5.1: random start */
        o->ts_offset = g_random_int();
    } else if (o->source_ssrc != h->ssrc) {
        uint64_t elapsed = (uint64_t)(now - o->last_time_us) * o->clock_rate / G_USEC_PER_SEC;
        o->source_ssrc = h->ssrc;
        o->seq_offset = (uint16_t)(o->last_seq + 1 - h->seq);
        o->ts_offset = o->last_ts + (uint32_t)(elapsed ? elapsed : 1) - h->timestamp;
    }
    uint16_t seq = (uint16_t)(h->seq + o->seq_offset);
    uint32_t ts = h->timestamp + o->ts_offset;
    if (o->packets == 0 || md_seq_newer(seq, o->last_seq)) {
        o->last_seq = seq;
        o->last_ts = ts;
        o->last_time_us = now;
    }
    md_rtp_set_ssrc(p, o->ssrc);
    md_rtp_set_payload_type(p, o->pt);
    md_rtp_set_seq(p, seq);
    md_rtp_set_timestamp(p, ts);
}

static bool can_send(const md_leg_ctx *leg)
{
    return leg->state != MD_LEG_FAILED && leg->srtp_out && leg->ice;
}

static void relay_rtp(md_leg_ctx *from, uint8_t *p, size_t len)
{
    md_rtp_header h;
    if (md_srtp_unprotect_rtp(from->srtp_in, p, &len) < 0) {
        from->counters.srtp_errors++;
        return;
    }
    if (md_rtp_parse(p, len, &h) < 0) {
        from->counters.malformed++;
        return;
    }
    int k = h.payload_type == from->in[MD_KIND_VIDEO].pt   ? MD_KIND_VIDEO
            : h.payload_type == from->in[MD_KIND_AUDIO].pt ? MD_KIND_AUDIO
                                                           : -1;
    if (k < 0) {
        from->counters.unknown_pt++;
        return;
    }
    md_stream_in *in = &from->in[k];
    gint64 now = g_get_monotonic_time();
    in->ssrc = h.ssrc;
    if (from->in[MD_KIND_AUDIO].packets + from->in[MD_KIND_VIDEO].packets == 0)
        md_log_setup("first_media_in", from->session->id, md_leg_name(from->which));
    in->packets++;
    in->bytes += len;
    md_quality_on_rtp(from, k, &h, p, len, now);
    /* A copy for the recorder before the rewrite; never waits (DESIGN 6). */
    if (from->session->recorder)
        md_recorder_push(from->session->recorder, from->which, k, p, len, now);

    md_leg_ctx *to = md_leg_other(from);
    md_stream_out *o = &to->out[k];
    if (!can_send(to) || !o->active) {
        from->counters.not_ready++;
        return;
    }
    /* Only abs-send-time is negotiated, on video, with each leg's own id
     * (docs/internals/media.md); other elements are dropped. */
    len = md_rtp_rewrite_extensions(p, len, &h,
                                    k == MD_KIND_VIDEO ? from->choice.video_abs_send_time_id : 0,
                                    k == MD_KIND_VIDEO ? to->choice.video_abs_send_time_id : 0);
    rewrite(o, p, &h, now);
    uint16_t seq = (uint16_t)(h.seq + o->seq_offset);
    if (md_srtp_protect_rtp(to->srtp_out, p, &len, MD_SCRATCH_LEN) < 0) {
        to->counters.srtp_errors++;
        return;
    }
    md_rtx_put(o->rtx, seq, p, len, now);
    if (to->out[MD_KIND_AUDIO].packets + to->out[MD_KIND_VIDEO].packets == 0)
        md_log_setup("first_media_out", to->session->id, md_leg_name(to->which));
    o->packets++;
    o->bytes += len;
    o->octets += h.payload_len;
    md_ice_send(to->ice, p, len);
}

/* ---- RTCP ---- */

struct rtcp_out {
    uint8_t *buf;
    size_t len, cap;
};

static bool append(struct rtcp_out *out, const uint8_t *data, size_t len)
{
    if (out->len + len > out->cap)
        return false;
    memcpy(out->buf + out->len, data, len);
    out->len += len;
    return true;
}

static int kind_of_out_ssrc(const md_leg_ctx *leg, uint32_t ssrc)
{
    for (int k = 0; k < MD_KINDS; k++)
        if (leg->out[k].ssrc == ssrc)
            return k;
    return -1;
}

/* The gateway's own SSRC on a leg, as RTCP sender (RFC 3550 6.4.2). */
static uint32_t local_ssrc(const md_leg_ctx *leg)
{
    return leg->out[MD_KIND_VIDEO].ssrc ? leg->out[MD_KIND_VIDEO].ssrc
                                        : leg->out[MD_KIND_AUDIO].ssrc;
}

/* A report block from `from` about a stream we send it becomes a block about
 * the original sender's stream, in its sequence space (RFC 3550 6.4.1).  Loss
 * and jitter stay end to end, for the sender's bandwidth estimate; LSR/DLSR
 * cannot (our SRs replace the sender's), so they answer the sender's last SR
 * from the gateway: its round trip is then the one to us. */
static bool map_report_block(md_leg_ctx *from, md_leg_ctx *to, const uint8_t *in, uint8_t *out)
{
    int k = kind_of_out_ssrc(from, md_get_u32(in));
    if (k < 0 || !to->in[k].ssrc || !from->out[k].have_source)
        return false;
    const md_stream_in *src = &to->in[k];
    bool sr = src->have_sr && src->sr_ssrc == src->ssrc;
    gint64 held_us = sr ? g_get_monotonic_time() - src->sr_arrival_us : 0;
    memcpy(out, in, REPORT_BLOCK_LEN);
    md_put_u32(out, src->ssrc);
    md_put_u32(out + 8, md_get_u32(in + 8) - from->out[k].seq_offset);
    md_put_u32(out + 16, sr ? md_ntp_compact(src->sr_ntp) : 0);
    md_put_u32(out + 20, sr ? (uint32_t)(held_us * 65536 / G_USEC_PER_SEC) : 0);
    return true;
}

static void translate_reports(md_leg_ctx *from, md_leg_ctx *to, const md_rtcp_packet *pkt,
                              size_t blocks_at, struct rtcp_out *out)
{
    uint8_t rr[8 + 2 * REPORT_BLOCK_LEN];
    unsigned n = 0;
    for (unsigned i = 0; i < pkt->count; i++) {
        size_t off = blocks_at + i * REPORT_BLOCK_LEN;
        if (off + REPORT_BLOCK_LEN > pkt->len)
            break;
        md_quality_on_report_block(from, pkt->data + off);
        if (to && n < 2 &&
            map_report_block(from, to, pkt->data + off, rr + 8 + n * REPORT_BLOCK_LEN))
            n++;
    }
    if (n == 0)
        return;
    rr[0] = (uint8_t)(0x80 | n);
    rr[1] = MD_RTCP_RR;
    md_put_u16(rr + 2, (uint16_t)(1 + n * REPORT_BLOCK_LEN / 4));
    md_put_u32(rr + 4, local_ssrc(to));
    append(out, rr, 8 + n * REPORT_BLOCK_LEN);
}

/* RFC 3550 6.4.1: the sender info is not forwarded.  The gateway sends its
 * own SRs on every outgoing stream (md_quality_tick.c), mapped from this one
 * onto its clock, so that receivers' LSR/DLSR give it the RTT of each leg. */
static void translate_sr(md_leg_ctx *from, md_leg_ctx *to, const md_rtcp_packet *pkt,
                         struct rtcp_out *out)
{
    if (pkt->len < 28)
        return;
    md_quality_on_sr(from, pkt->data, pkt->len);
    translate_reports(from, to, pkt, 28, out);
}

/* draft-alvestrand-rmcat-remb 2.2: the estimate goes to the sender of video. */
static void translate_remb(md_leg_ctx *from, md_leg_ctx *to, const md_rtcp_packet *pkt,
                           struct rtcp_out *out)
{
    uint8_t remb[24];
    if (!(to->in[MD_KIND_VIDEO].feedback & MD_SDP_FB_REMB) || !to->in[MD_KIND_VIDEO].ssrc)
        return;
    memcpy(remb, pkt->data, 20);
    remb[0] = 0x80 | MD_PSFB_AFB;
    md_put_u16(remb + 2, 5);
    md_put_u32(remb + 4, local_ssrc(to));
    md_put_u32(remb + 8, 0);
    remb[16] = 1;
    md_put_u32(remb + 20, to->in[MD_KIND_VIDEO].ssrc);
    if (append(out, remb, sizeof(remb)))
        from->counters.remb_forwarded++;
}

struct nack_ctx {
    md_leg_ctx *leg;
    md_stream_out *out;
    unsigned budget;
    gint64 now;
};

static bool answer_one(uint16_t seq, void *ud)
{
    struct nack_ctx *n = ud;
    size_t len;
    if (n->budget == 0)
        return false;
    n->budget--;
    const uint8_t *packet = md_rtx_get(n->out->rtx, seq, n->now, &len);
    if (packet) {
        md_ice_send(n->leg->ice, packet, len);
        n->leg->counters.nack_answered++;
    } else {
        n->leg->counters.nack_missed++;
    }
    return true;
}

static void answer_nack(md_leg_ctx *from, const md_rtcp_packet *pkt)
{
    int k = kind_of_out_ssrc(from, md_rtcp_media_ssrc(pkt));
    from->counters.nack_received++;
    if (k < 0 || !from->out[k].rtx) {
        from->counters.nack_missed++;
        return;
    }
    struct nack_ctx n = {from, &from->out[k], MAX_NACK_ANSWERS, g_get_monotonic_time()};
    md_rtcp_nack_foreach(pkt, answer_one, &n);
}

static bool asks_our_video(const md_leg_ctx *from, const md_rtcp_packet *pkt)
{
    uint32_t target = md_rtcp_media_ssrc(pkt);
    if (pkt->count == MD_PSFB_FIR && pkt->len >= 20)
        target = md_get_u32(pkt->data + 12); /* RFC 5104 4.3.1.2: SSRC in the FCI */
    return target == from->out[MD_KIND_VIDEO].ssrc;
}

static void handle_rtcp_packet(md_leg_ctx *from, md_leg_ctx *to, const md_rtcp_packet *pkt,
                               struct rtcp_out *out)
{
    switch (pkt->type) {
    case MD_RTCP_SR:
        translate_sr(from, to, pkt, out);
        break;
    case MD_RTCP_RR:
        translate_reports(from, to, pkt, 8, out);
        break;
    case MD_RTCP_RTPFB:
        if (pkt->count == MD_RTPFB_NACK)
            answer_nack(from, pkt);
        break;
    case MD_RTCP_PSFB:
        if (pkt->count == MD_PSFB_PLI || pkt->count == MD_PSFB_FIR) {
            from->counters.pli_fir_received++;
            if (asks_our_video(from, pkt) && md_relay_request_keyframe(to, false))
                from->counters.pli_fir_forwarded++;
        } else if (md_rtcp_is_remb(pkt, NULL, NULL)) {
            translate_remb(from, to, pkt, out);
        }
        break;
    default:
        break; /* SDES, BYE, APP, XR: not relayed */
    }
}

/* RFC 3550 6.1 unless reduced-size RTCP was negotiated (RFC 5506 3): a
 * compound packet starts with SR or RR; an empty RR is enough. */
static size_t put_empty_rr(uint8_t *p, uint32_t ssrc)
{
    p[0] = 0x80;
    p[1] = MD_RTCP_RR;
    md_put_u16(p + 2, 1);
    md_put_u32(p + 4, ssrc);
    return 8;
}

void md_relay_send_rtcp(md_leg_ctx *to, uint8_t *buf, size_t len, size_t cap)
{
    if (md_srtp_protect_rtcp(to->srtp_out, buf, &len, cap) < 0) {
        to->counters.srtp_errors++;
        return;
    }
    md_ice_send(to->ice, buf, len);
}

static void relay_rtcp(md_leg_ctx *from, uint8_t *p, size_t len)
{
    md_bridge_host *host = from->session->host;
    md_leg_ctx *to = md_leg_other(from);
    md_rtcp_packet pkt;
    size_t off = 0;
    int r;
    if (md_srtp_unprotect_rtcp(from->srtp_in, p, &len) < 0) {
        from->counters.srtp_errors++;
        return;
    }
    bool ready = can_send(to);
    struct rtcp_out out = {host->rtcp_out, 0, MD_MEDIA_MAX_PACKET};
    if (ready && !to->choice.rtcp_rsize)
        out.len = put_empty_rr(out.buf, local_ssrc(to));
    size_t header = out.len;
    while ((r = md_rtcp_next(p, len, &off, &pkt)) > 0) {
        if (ready)
            handle_rtcp_packet(from, to, &pkt, &out);
        else if (pkt.type == MD_RTCP_RTPFB) /* answered from our own buffer even so */
            handle_rtcp_packet(from, to, &pkt, &out);
        else if (pkt.type == MD_RTCP_SR) /* still our RTT and clock mapping */
            translate_sr(from, NULL, &pkt, &out);
        else if (pkt.type == MD_RTCP_RR)
            translate_reports(from, NULL, &pkt, 8, &out);
    }
    if (r < 0)
        from->counters.malformed++;
    if (ready && out.len > header)
        md_relay_send_rtcp(to, out.buf, out.len, MD_SCRATCH_LEN);
}

void md_relay_incoming(md_leg_ctx *from, const uint8_t *buf, size_t len)
{
    md_bridge_host *host = from->session->host;
    if (len > host->cfg.max_packet || len > MD_MEDIA_MAX_PACKET) {
        from->counters.oversize++;
        return;
    }
    if (!from->srtp_in) {
        from->counters.not_ready++;
        return;
    }
    memcpy(host->scratch, buf, len);
    if (md_packet_classify(buf, len) == MD_PACKET_RTCP)
        relay_rtcp(from, host->scratch, len);
    else
        relay_rtp(from, host->scratch, len);
}

bool md_relay_request_keyframe(md_leg_ctx *leg, bool force)
{
    const md_stream_in *in = &leg->in[MD_KIND_VIDEO];
    uint8_t buf[8 + 20 + MD_SRTP_MAX_OVERHEAD];
    size_t len = 0;
    int r;
    if (!can_send(leg) || !in->ssrc || !(in->feedback & (MD_SDP_FB_PLI | MD_SDP_FB_FIR)))
        return false;
    gint64 now = g_get_monotonic_time();
    gint64 gap = (gint64)leg->session->host->cfg.keyframe_interval_ms * 1000;
    if (!force && leg->last_keyframe_request_us && now - leg->last_keyframe_request_us < gap) {
        leg->counters.keyframe_suppressed++;
        return false;
    }
    if (!leg->choice.rtcp_rsize)
        len = put_empty_rr(buf, local_ssrc(leg));
    if (in->feedback & MD_SDP_FB_PLI)
        r = md_rtcp_build_pli(buf + len, sizeof(buf) - len, local_ssrc(leg), in->ssrc);
    else
        r = md_rtcp_build_fir(buf + len, sizeof(buf) - len, local_ssrc(leg), in->ssrc,
                              leg->fir_seq++);
    if (r < 0)
        return false;
    leg->last_keyframe_request_us = now;
    leg->counters.keyframe_requests_sent++;
    md_relay_send_rtcp(leg, buf, len + (size_t)r, sizeof(buf));
    return true;
}
