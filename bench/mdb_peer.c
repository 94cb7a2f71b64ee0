/*
 * One benchmark PeerConnection: a libnice agent (ICE-controlling when we
 * offer, controlled when we answer, as RFC 8445 6.1.1 wants for a full
 * agent), the gateway's md_dtls in the client or server role and md_srtp
 * both ways, and the pacing of the shared pre-encoded tracks.  A peer lives
 * on its client's media thread and is only touched there.
 *
 * Every RTP packet sent gets a 16-byte trailer appended to its payload
 * ("MDBv"/"MDBa", a per-stream sequence number, CLOCK_MONOTONIC send time in
 * ns): gateways rewrite headers and strip header extensions, never payloads,
 * so the receiver finds it again at the end of the payload and measures loss
 * and one-way latency with the sender's clock (same process).  This file is
 * the bench's only user of libnice.
 *
 * Once the ICE pair is selected and SRTP is up, the peer moves to its media
 * thread's batched path (mdb_io.c): it sends each pacing tick's packets in
 * one sendmmsg and receives through the thread's epoll set; libnice keeps
 * the ICE state, its timers and the socket.
 */
#include "mdb.h"

#include "md_dtls.h"
#include "md_rtp.h"
#include "md_sdp.h"
#include "md_srtp.h"

#include <agent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT 1
#define LATE_RESET_US 500000 /* a sender this far behind restarts its clock */

/* MDB_DEBUG=1: descriptions and state changes; MDB_DEBUG_LAT=1: every packet
 * later than 5 ms.  Read once, before the media threads start. */
static bool debug, debug_latency;

typedef struct stream {
    const mdb_track *track;
    size_t idx;
    int64_t base_us;  /* when the current pass started */
    uint32_t ts_base; /* RTP timestamp at the start of the pass */
    uint32_t ssrc;
    uint16_t seq;
    uint32_t trailer_seq;
    /* receive side, for the stream of the same kind from the partner */
    bool rx_started;
    uint32_t rx_first, rx_max;
    uint64_t rx_count;
} stream;

struct mdb_peer {
    mdb_client *client;
    GMainContext *ctx;
    mdb_stats *stats;
    mdb_io *io;        /* the thread's batched path, NULL with --no-batch */
    mdb_io_link *link; /* set once this peer moved onto it */
    NiceAgent *agent;
    guint stream_id;
    bool controlling, ice_up, ice_ready, link_tried;
    md_dtls *dtls;
    md_srtp *tx, *rx;
    md_sdp_fingerprint remote_fp[MD_SDP_MAX_FINGERPRINTS];
    size_t n_remote_fp;
    md_dtls_role role;
    bool have_remote;
    stream audio, video;
    uint8_t buf[1600 + MD_SRTP_MAX_OVERHEAD];
};

static void dtls_send(const uint8_t *buf, size_t len, void *ud)
{
    mdb_peer *p = ud;
    nice_agent_send(p->agent, p->stream_id, COMPONENT, (guint)len, (const gchar *)buf);
}

static void dtls_connected(const md_dtls_keys *keys, void *ud)
{
    mdb_peer *p = ud;
    int r = md_srtp_new(keys->profile, true, keys->local_key, keys->local_salt, &p->tx);
    if (r >= 0)
        r = md_srtp_new(keys->profile, false, keys->remote_key, keys->remote_salt, &p->rx);
    if (r < 0) {
        atomic_store(&p->client->media_failed, 1);
        return;
    }
    int64_t now = g_get_monotonic_time();
    atomic_store(&p->client->t_media_up_us, now);
    p->audio.base_us = p->video.base_us = now;
}

static void dtls_failed(int error, const char *detail, void *ud)
{
    mdb_peer *p = ud;
    if (debug)
        fprintf(stderr, "%s dtls failed %d %s\n", p->client->name, error, detail);
    atomic_store(&p->client->media_failed, 1);
}

static const md_dtls_callbacks dtls_callbacks = {
    .send = dtls_send, .on_connected = dtls_connected, .on_failed = dtls_failed};

static void on_rtp(mdb_peer *p, uint8_t *buf, size_t len)
{
    if (!p->rx || md_srtp_unprotect_rtp(p->rx, buf, &len) < 0)
        return;
    md_rtp_header h;
    if (md_rtp_parse(buf, len, &h) < 0 || h.payload_len < MDB_TRAILER_LEN)
        return;
    const uint8_t *t = buf + h.header_len + h.payload_len - MDB_TRAILER_LEN;
    if (memcmp(t, "MDB", 3) != 0 || (t[3] != 'v' && t[3] != 'a'))
        return;
    stream *s = t[3] == 'v' ? &p->video : &p->audio;
    uint32_t seq = md_get_u32(t + 4);
    int64_t sent_ns = (int64_t)md_get_u64(t + 8);
    int64_t now_ns = mdb_now_ns();
    if (!s->rx_started) {
        s->rx_started = true;
        s->rx_first = s->rx_max = seq;
    } else if ((int32_t)(seq - s->rx_max) > 0) {
        s->rx_max = seq;
    } else if ((int32_t)(seq - s->rx_first) < 0) {
        return; /* older than the first we saw: not counted either way */
    }
    s->rx_count++;
    atomic_fetch_add_explicit(&p->stats->rx_packets, 1, memory_order_relaxed);
    int64_t zero = 0;
    atomic_compare_exchange_strong(&p->client->t_first_rx_us, &zero, now_ns / 1000);
    if (atomic_load_explicit(&p->client->run->measuring, memory_order_relaxed)) {
        mdb_stats_add_latency(p->stats, (now_ns - sent_ns) / 1000);
        if (debug_latency && now_ns - sent_ns > 5000000)
            fprintf(stderr, "late %c seq %u %lld us at %lld\n", t[3], seq,
                    (long long)(now_ns - sent_ns) / 1000, (long long)now_ns / 1000000);
    }
}

/* A datagram that is not STUN; buf may be changed in place. */
static void on_datagram(void *data, uint8_t *buf, size_t len)
{
    mdb_peer *p = data;
    switch (md_packet_classify(buf, len)) {
    case MD_PACKET_DTLS:
        if (p->dtls)
            md_dtls_feed(p->dtls, buf, len);
        break;
    case MD_PACKET_RTP:
        on_rtp(p, buf, len);
        break;
    default:
        break; /* RTCP (SR, NACK, PLI) is not acted on: loss is measured, not repaired */
    }
}

/* libnice's receive callback, until the peer moves to the batched path. */
static void on_recv(NiceAgent *agent, guint stream_id, guint component, guint len, gchar *buf,
                    gpointer data)
{
    mdb_peer *p = data;
    if (md_packet_classify((const uint8_t *)buf, len) != MD_PACKET_RTP) {
        on_datagram(p, (uint8_t *)buf, len); /* DTLS reads it, nothing else keeps it */
    } else if (len <= sizeof(p->buf)) {
        memcpy(p->buf, buf, len); /* libnice's buffer: unprotected in ours */
        on_rtp(p, p->buf, len);
    }
}

static void on_state(NiceAgent *agent, guint stream_id, guint component, guint state, gpointer data)
{
    mdb_peer *p = data;
    if (debug)
        fprintf(stderr, "%s ice state %u\n", p->client->name, state);
    if (state == NICE_COMPONENT_STATE_READY)
        p->ice_ready = true;
    if ((state == NICE_COMPONENT_STATE_CONNECTED || state == NICE_COMPONENT_STATE_READY) &&
        !p->ice_up) {
        p->ice_up = true;
        if (p->dtls)
            md_dtls_start(p->dtls);
    } else if (state == NICE_COMPONENT_STATE_FAILED) {
        atomic_store(&p->client->media_failed, 1);
    }
}

void mdb_peer_debug_init(void)
{
    debug = getenv("MDB_DEBUG") != NULL;
    debug_latency = getenv("MDB_DEBUG_LAT") != NULL;
}

int mdb_peer_new(mdb_client *c, mdb_peer **ret)
{
    GMainContext *ctx = mdb_media_context(c->media);
    mdb_peer *p = g_new0(mdb_peer, 1);
    p->client = c;
    p->ctx = ctx;
    p->stats = mdb_media_stats(c->media);
    p->io = mdb_media_io(c->media);
    p->audio.track = &c->run->audio;
    p->video.track = &c->run->video;
    p->audio.ssrc = g_random_int() | 1;
    p->video.ssrc = g_random_int() | 2;
    p->audio.seq = (uint16_t)g_random_int();
    p->video.seq = (uint16_t)g_random_int();
    p->agent = nice_agent_new_full(ctx, NICE_COMPATIBILITY_RFC5245, NICE_AGENT_OPTION_NONE);
    g_object_set(p->agent, "ice-tcp", FALSE, "upnp", FALSE, NULL);
    int r = -EINVAL;
    const char *bind = c->run->target.bind_address;
    if (bind && bind[0]) {
        NiceAddress addr;
        nice_address_init(&addr);
        if (!nice_address_set_from_string(&addr, bind) ||
            !nice_agent_add_local_address(p->agent, &addr))
            goto fail;
    }
    r = -EIO;
    p->stream_id = nice_agent_add_stream(p->agent, 1);
    if (p->stream_id == 0)
        goto fail;
    g_signal_connect(p->agent, "component-state-changed", G_CALLBACK(on_state), p);
    if (!nice_agent_attach_recv(p->agent, p->stream_id, COMPONENT, ctx, on_recv, p) ||
        !nice_agent_gather_candidates(p->agent, p->stream_id))
        goto fail;
    *ret = p;
    return 0;
fail:
    mdb_peer_free(p);
    return r;
}

mdb_peer *mdb_peer_free(mdb_peer *p)
{
    if (!p)
        return NULL;
    p->link = mdb_io_link_free(p->link);
    md_dtls_free(p->dtls);
    md_srtp_free(p->tx);
    md_srtp_free(p->rx);
    if (p->agent) {
        g_signal_handlers_disconnect_by_data(p->agent, p);
        if (p->stream_id) {
            nice_agent_attach_recv(p->agent, p->stream_id, COMPONENT, p->ctx, NULL, NULL);
            nice_agent_remove_stream(p->agent, p->stream_id);
        }
        g_object_unref(p->agent);
    }
    g_free(p);
    return NULL;
}

static void append_transport(GString *s, mdb_peer *p, const char *setup, bool candidates)
{
    gchar *ufrag = NULL, *pwd = NULL;
    nice_agent_get_local_credentials(p->agent, p->stream_id, &ufrag, &pwd);
    g_string_append_printf(s,
                           "c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"
                           "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:%s\r\na=setup:%s\r\n",
                           ufrag, pwd, md_dtls_identity_fingerprint(p->client->run->identity),
                           setup);
    g_free(ufrag);
    g_free(pwd);
    if (!candidates)
        return;
    GSList *cands = nice_agent_get_local_candidates(p->agent, p->stream_id, COMPONENT);
    for (GSList *l = cands; l; l = l->next) {
        gchar *line = nice_agent_generate_local_candidate_sdp(p->agent, l->data);
        g_string_append_printf(s, "%s\r\n", line);
        g_free(line);
    }
    g_slist_free_full(cands, (GDestroyNotify)nice_candidate_free);
    g_string_append(s, "a=end-of-candidates\r\n");
}

/* One description for both directions: the offer, or an answer with the
 * offer's mids and payload types (VP8 and Opus are all we send). */
static char *description(mdb_peer *p, const char *setup, const char *mid_a, const char *mid_v,
                         unsigned pt_a, unsigned pt_v)
{
    GString *s = g_string_new(NULL);
    g_string_append_printf(s,
                           "v=0\r\no=- %u 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
                           "a=group:BUNDLE %s %s\r\na=msid-semantic: WMS mdb\r\n",
                           g_random_int() >> 1, mid_a, mid_v);
    g_string_append_printf(s, "m=audio 9 UDP/TLS/RTP/SAVPF %u\r\n", pt_a);
    append_transport(s, p, setup, true);
    g_string_append_printf(s,
                           "a=mid:%s\r\na=sendrecv\r\na=msid:mdb a\r\na=rtcp-mux\r\n"
                           "a=rtpmap:%u opus/48000/2\r\na=fmtp:%u minptime=10;useinbandfec=1\r\n"
                           "a=ssrc:%u cname:mdb\r\n",
                           mid_a, pt_a, pt_a, p->audio.ssrc);
    g_string_append_printf(s, "m=video 9 UDP/TLS/RTP/SAVPF %u\r\n", pt_v);
    append_transport(s, p, setup, false);
    g_string_append_printf(
        s,
        "a=mid:%s\r\na=sendrecv\r\na=msid:mdb v\r\na=rtcp-mux\r\na=rtcp-rsize\r\n"
        "a=rtpmap:%u VP8/90000\r\na=rtcp-fb:%u nack\r\na=rtcp-fb:%u nack pli\r\n"
        "a=rtcp-fb:%u ccm fir\r\na=ssrc:%u cname:mdb\r\n",
        mid_v, pt_v, pt_v, pt_v, pt_v, p->video.ssrc);
    return g_string_free(s, FALSE);
}

char *mdb_peer_offer(mdb_peer *p)
{
    p->controlling = true;
    g_object_set(p->agent, "controlling-mode", TRUE, NULL);
    return description(p, "actpass", "0", "1", MDB_PT_OPUS, MDB_PT_VP8);
}

static int add_candidate_line(mdb_peer *p, const char *cand)
{
    if (g_str_has_prefix(cand, "a="))
        cand += 2;
    if (!g_str_has_prefix(cand, "candidate:") || strstr(cand, " tcp ") || strstr(cand, " TCP "))
        return -ENOTSUP;
    char *line = g_strconcat("a=", cand, NULL);
    NiceCandidate *nc = nice_agent_parse_remote_candidate_sdp(p->agent, p->stream_id, line);
    g_free(line);
    if (!nc)
        return -EINVAL;
    int r = 0;
    if (nc->component_id == COMPONENT) {
        GSList one = {.data = nc, .next = NULL};
        r = nice_agent_set_remote_candidates(p->agent, p->stream_id, COMPONENT, &one) >= 0
                ? 0
                : -EINVAL;
    }
    nice_candidate_free(nc);
    return r;
}

int mdb_peer_add_candidate(mdb_peer *p, const char *candidate)
{
    return add_candidate_line(p, candidate);
}

/* Janus 1.1.2 writes a=mid twice in the m-sections of its answers, which the
 * gateway's strict reader refuses: drop a line repeated within a section. */
static char *dedup_lines(const char *text)
{
    gchar **lines = g_strsplit(text, "\n", -1);
    GString *out = g_string_new(NULL);
    GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (gchar **l = lines; *l; l++) {
        if (g_str_has_prefix(*l, "m="))
            g_hash_table_remove_all(seen);
        else if (g_str_has_prefix(*l, "a=mid:") && !g_hash_table_add(seen, *l))
            continue;
        g_string_append(out, *l);
        if (l[1])
            g_string_append_c(out, '\n');
    }
    g_hash_table_destroy(seen);
    g_strfreev(lines);
    return g_string_free(out, FALSE);
}

int mdb_peer_remote_description(mdb_peer *p, const char *raw, bool is_offer, char **ret_answer)
{
    char *text = dedup_lines(raw);
    md_sdp *sdp = NULL;
    char err[160];
    int r = md_sdp_parse(text, strlen(text), MD_SDP_MAX_BYTES, &sdp, err, sizeof(err));
    if (debug)
        fprintf(stderr, "%s remote %s: %s\n", p->client->name, is_offer ? "offer" : "answer",
                r < 0 ? err : "ok");
    if (r < 0) {
        g_free(text);
        return r;
    }
    md_sdp_transport t;
    md_sdp_bundle_transport(sdp, &t);
    r = -EINVAL;
    if (t.n_fingerprints == 0 || !t.ice_ufrag[0])
        goto out;
    memcpy(p->remote_fp, t.fingerprints, sizeof(p->remote_fp));
    p->n_remote_fp = t.n_fingerprints;
    char *answer = NULL;
    if (is_offer) {
        /* we answer: controlled, and DTLS client (a=setup:active, RFC 5763 5) */
        int ia = md_sdp_find_media(sdp, MD_SDP_AUDIO), iv = md_sdp_find_media(sdp, MD_SDP_VIDEO);
        if (ia < 0 || iv < 0)
            goto out;
        int fa = md_sdp_find_codec(&sdp->media[ia], "opus");
        int fv = md_sdp_find_codec(&sdp->media[iv], "VP8");
        if (fa < 0 || fv < 0)
            goto out;
        g_object_set(p->agent, "controlling-mode", FALSE, NULL);
        answer = description(p, "active", sdp->media[ia].mid, sdp->media[iv].mid,
                             sdp->media[ia].formats[fa].pt, sdp->media[iv].formats[fv].pt);
        p->role = MD_DTLS_CLIENT;
    } else {
        p->role = t.setup == MD_SDP_SETUP_ACTIVE ? MD_DTLS_SERVER : MD_DTLS_CLIENT;
    }
    md_dtls_options o = {.role = p->role, .initial_timeout_ms = 100};
    r = md_dtls_new(p->client->run->identity, &o, p->remote_fp, p->n_remote_fp, p->ctx,
                    &dtls_callbacks, p, &p->dtls);
    if (r < 0) {
        g_free(answer);
        goto out;
    }
    nice_agent_set_remote_credentials(p->agent, p->stream_id, t.ice_ufrag, t.ice_pwd);
    for (size_t m = 0; m < sdp->n_media; m++)
        for (size_t i = 0; i < sdp->media[m].n_candidates; i++)
            add_candidate_line(p, sdp->media[m].candidates[i]);
    p->have_remote = true;
    if (p->ice_up)
        md_dtls_start(p->dtls);
    if (ret_answer)
        *ret_answer = answer;
    else
        g_free(answer);
    r = 0;
out:
    md_sdp_free(sdp);
    g_free(text);
    return r;
}

bool mdb_peer_sending(const mdb_peer *p)
{
    return p->tx != NULL;
}

/* Writes pkt, restamped for stream s and protected, into buf; its length,
 * or 0 when it does not fit or fails. */
static size_t build_one(mdb_peer *p, stream *s, const mdb_packet *pkt, int64_t now_ns, uint8_t *buf,
                        size_t cap)
{
    size_t len = pkt->len;
    if (len + MDB_TRAILER_LEN + MD_SRTP_MAX_OVERHEAD > cap)
        return 0;
    memcpy(buf, pkt->rtp, len);
    md_rtp_header h;
    if (md_rtp_parse(buf, len, &h) < 0 || h.padding)
        return 0;
    md_rtp_set_payload_type(buf, s->track->video ? MDB_PT_VP8 : MDB_PT_OPUS);
    md_rtp_set_ssrc(buf, s->ssrc);
    md_rtp_set_seq(buf, s->seq++);
    md_rtp_set_timestamp(buf, s->ts_base + pkt->ts);
    uint8_t *t = buf + len;
    memcpy(t, s->track->video ? "MDBv" : "MDBa", 4);
    md_put_u32(t + 4, s->trailer_seq++);
    md_put_u64(t + 8, (uint64_t)now_ns);
    len += MDB_TRAILER_LEN;
    if (md_srtp_protect_rtp(p->tx, buf, &len, cap) < 0)
        return 0;
    return len;
}

static void count_sent(mdb_peer *p, int n)
{
    if (n > 0)
        atomic_fetch_add_explicit(&p->stats->tx_packets, (uint64_t)n, memory_order_relaxed);
}

static void send_one(mdb_peer *p, stream *s, const mdb_packet *pkt, int64_t now_ns)
{
    if (p->link) { /* into the batch, sent by mdb_peer_pace() */
        size_t cap = 0;
        uint8_t *slot = mdb_io_tx_slot(p->io, &cap);
        if (!slot) {
            count_sent(p, mdb_io_tx_flush(p->link));
            slot = mdb_io_tx_slot(p->io, &cap);
        }
        size_t len = build_one(p, s, pkt, now_ns, slot, cap);
        if (len)
            mdb_io_tx_commit(p->io, len);
        return;
    }
    size_t len = build_one(p, s, pkt, now_ns, p->buf, sizeof(p->buf));
    if (len && nice_agent_send(p->agent, p->stream_id, COMPONENT, (guint)len,
                               (const gchar *)p->buf) == (gint)len)
        count_sent(p, 1);
}

/* Moves the peer to the batched path once its pair is final (READY: the
 * nomination is answered, so no ICE response is still due to libnice). */
static void link_up(mdb_peer *p)
{
    p->link_tried = true;
    if (mdb_io_link_new(p->io, p->agent, p->stream_id, COMPONENT, p->controlling,
                        p->client->run->rcvbuf_bytes, on_datagram, p, &p->link) < 0)
        return;
    nice_agent_attach_recv(p->agent, p->stream_id, COMPONENT, p->ctx, NULL, NULL);
    p->stats->links++;
}

static void pace(mdb_peer *p, stream *s, int64_t now_us)
{
    const mdb_track *tr = s->track;
    if (tr->n == 0)
        return;
    if (now_us - (s->base_us + tr->pkts[s->idx].at_us) > LATE_RESET_US) {
        /* the generator could not keep up: say so rather than burst */
        p->stats->late_ticks++;
        s->base_us = now_us - tr->pkts[s->idx].at_us;
    }
    int64_t now_ns = mdb_now_ns();
    while (s->base_us + tr->pkts[s->idx].at_us <= now_us) {
        send_one(p, s, &tr->pkts[s->idx], now_ns);
        if (++s->idx == tr->n) {
            s->idx = 0;
            s->base_us += tr->loop_us;
            s->ts_base += tr->loop_ts;
        }
    }
}

void mdb_peer_pace(mdb_peer *p, int64_t now_us)
{
    if (!p->tx)
        return;
    if (p->io && p->ice_ready && !p->link_tried)
        link_up(p);
    pace(p, &p->audio, now_us);
    pace(p, &p->video, now_us);
    if (p->link)
        count_sent(p, mdb_io_tx_flush(p->link));
}

void mdb_peer_loss(const mdb_peer *p, uint64_t *ret_expected, uint64_t *ret_received)
{
    uint64_t e = 0, r = 0;
    const stream *ss[2] = {&p->audio, &p->video};
    for (int i = 0; i < 2; i++) {
        if (!ss[i]->rx_started)
            continue;
        e += (uint64_t)(ss[i]->rx_max - ss[i]->rx_first) + 1;
        r += ss[i]->rx_count;
    }
    *ret_expected = e;
    *ret_received = r;
}
