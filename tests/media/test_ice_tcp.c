/*
 * ICE-TCP (RFC 6544) end to end through md_media, on 127.0.0.1 only.  The
 * tablet is a libnice controlling agent with ice-udp off and ice-tcp on, so
 * TCP is the only path it has; the verifier is an ordinary UDP-only agent.
 * Both offer by hand-written SDP with an md_dtls client identity, apply the
 * gateway's answer, run ICE, complete DTLS as clients over their agent, and
 * the gateway must report MD_MEDIA_LEG_CONNECTED for both.  One SRTP Opus
 * packet sent by the tablet over TCP must come out at the verifier over UDP.
 * Also checked: the answer's passive TCP candidate (port inside
 * media.port_min/max, priority below UDP), no active TCP candidate in it, the
 * selected pair really being TCP, media.ice_tcp=false, and which remote TCP
 * candidates md_ice accepts.
 */
#include "md_dtls.h"
#include "md_err.h"
#include "md_ice.h"
#include "md_media.h"
#include "md_rtp.h"
#include "md_sdp.h"
#include "md_srtp.h"
#include "md_test.h"

#include <glib.h>
#include <nice/agent.h>
#include <stdio.h>

#define COMPONENT 1
#define PT_OPUS 111
#define PT_VP8 96
#define PORT_MIN 47310
#define PORT_MAX 47389

struct client {
    const char *name;
    bool tcp;
    NiceAgent *agent;
    guint stream;
    md_dtls_identity *identity;
    md_dtls *dtls;
    md_srtp *tx, *rx;
    uint32_t audio_ssrc, video_ssrc;
    bool ice_up, dtls_up, failed;
    unsigned rtp_received;
    uint8_t buf[1600];
};

struct recorder {
    GPtrArray *events; /* "type leg error" strings */
    char *answers[2];  /* per leg */
    GPtrArray *trickled[2];
};

static const char *type_name(md_media_event_type t)
{
    switch (t) {
    case MD_MEDIA_ANSWER:
        return "answer";
    case MD_MEDIA_CANDIDATE:
        return "candidate";
    case MD_MEDIA_LEG_CONNECTED:
        return "connected";
    case MD_MEDIA_LEG_DISCONNECTED:
        return "disconnected";
    case MD_MEDIA_LEG_FAILED:
        return "failed";
    default:
        return "other";
    }
}

static void on_event(const md_media_event *ev, void *ud)
{
    struct recorder *rec = ud;
    if (ev->type == MD_MEDIA_QUALITY)
        return;
    g_ptr_array_add(rec->events,
                    g_strdup_printf("%s %s %s %s", type_name(ev->type), md_leg_name(ev->leg),
                                    ev->error ? md_err_code(ev->error) : "-",
                                    ev->error_detail ? ev->error_detail : ""));
    if (ev->type == MD_MEDIA_ANSWER) {
        g_free(rec->answers[ev->leg]);
        rec->answers[ev->leg] = g_strdup(ev->sdp);
    } else if (ev->type == MD_MEDIA_CANDIDATE && ev->candidate) {
        g_ptr_array_add(rec->trickled[ev->leg], g_strdup(ev->candidate));
    }
}

static bool has_event(struct recorder *rec, const char *text)
{
    for (guint i = 0; i < rec->events->len; i++)
        if (g_str_has_prefix(g_ptr_array_index(rec->events, i), text))
            return true;
    return false;
}

/* ---- the client side: libnice agent + md_dtls client + md_srtp ---- */

static void dtls_send(const uint8_t *buf, size_t len, void *ud)
{
    struct client *c = ud;
    nice_agent_send(c->agent, c->stream, COMPONENT, (guint)len, (const gchar *)buf);
}

static void dtls_connected(const md_dtls_keys *keys, void *ud)
{
    struct client *c = ud;
    ASSERT_OK(md_srtp_new(keys->profile, true, keys->local_key, keys->local_salt, &c->tx));
    ASSERT_OK(md_srtp_new(keys->profile, false, keys->remote_key, keys->remote_salt, &c->rx));
    c->dtls_up = true;
}

static void dtls_failed(int error, const char *detail, void *ud)
{
    struct client *c = ud;
    fprintf(stderr, "%s: DTLS failed: %s (%s)\n", c->name, md_err_code(error), detail);
    c->failed = true;
}

static const md_dtls_callbacks dtls_callbacks = {
    .send = dtls_send, .on_connected = dtls_connected, .on_failed = dtls_failed};

static void client_recv(NiceAgent *agent, guint stream, guint component, guint len, gchar *buf,
                        gpointer data)
{
    struct client *c = data;
    md_packet_kind kind = md_packet_classify((const uint8_t *)buf, len);
    if (kind == MD_PACKET_DTLS && c->dtls) {
        md_dtls_feed(c->dtls, (const uint8_t *)buf, len);
    } else if (kind == MD_PACKET_RTP && c->rx && len <= sizeof(c->buf)) {
        size_t n = len;
        memcpy(c->buf, buf, len);
        md_rtp_header h;
        if (md_srtp_unprotect_rtp(c->rx, c->buf, &n) >= 0 && md_rtp_parse(c->buf, n, &h) >= 0 &&
            h.payload_len == 4 && memcmp(c->buf + h.header_len, "TCP!", 4) == 0)
            c->rtp_received++;
    }
}

static void client_state(NiceAgent *agent, guint stream, guint component, guint state,
                         gpointer data)
{
    struct client *c = data;
    if ((state == NICE_COMPONENT_STATE_CONNECTED || state == NICE_COMPONENT_STATE_READY) &&
        !c->ice_up) {
        c->ice_up = true;
        if (c->dtls)
            ASSERT_OK(md_dtls_start(c->dtls));
    } else if (state == NICE_COMPONENT_STATE_FAILED) {
        fprintf(stderr, "%s: ICE failed\n", c->name);
        c->failed = true;
    }
}

static void client_init(struct client *c, const char *name, bool tcp)
{
    *c = (struct client){.name = name, .tcp = tcp};
    ASSERT_OK(md_dtls_identity_new(&c->identity));
    c->audio_ssrc = g_random_int() | 1;
    c->video_ssrc = g_random_int() | 2;
    c->agent = nice_agent_new_full(g_main_context_default(), NICE_COMPATIBILITY_RFC5245,
                                   NICE_AGENT_OPTION_NONE);
    /* RFC 8445 6.1.1: the offerer is controlling. */
    g_object_set(c->agent, "controlling-mode", TRUE, "ice-udp", (gboolean)!tcp, "ice-tcp",
                 (gboolean)tcp, "upnp", FALSE, NULL);
    NiceAddress addr;
    nice_address_init(&addr);
    ASSERT(nice_address_set_from_string(&addr, "127.0.0.1"));
    ASSERT(nice_agent_add_local_address(c->agent, &addr));
    c->stream = nice_agent_add_stream(c->agent, 1);
    ASSERT(c->stream > 0);
    g_signal_connect(c->agent, "component-state-changed", G_CALLBACK(client_state), c);
    ASSERT(nice_agent_attach_recv(c->agent, c->stream, COMPONENT, g_main_context_default(),
                                  client_recv, c));
    ASSERT(nice_agent_gather_candidates(c->agent, c->stream));
}

static void client_clear(struct client *c)
{
    md_dtls_free(c->dtls);
    md_srtp_free(c->tx);
    md_srtp_free(c->rx);
    g_signal_handlers_disconnect_by_data(c->agent, c);
    nice_agent_attach_recv(c->agent, c->stream, COMPONENT, g_main_context_default(), NULL, NULL);
    nice_agent_remove_stream(c->agent, c->stream);
    g_object_unref(c->agent);
    md_dtls_identity_unref(c->identity);
}

/* Offer with BUNDLE and rtcp-mux, Opus and VP8, our DTLS identity and, for
 * the TCP client, only its active TCP candidates (RFC 6544 4.5: port 9). */
static char *client_offer(struct client *c)
{
    gchar *ufrag = NULL, *pwd = NULL;
    ASSERT(nice_agent_get_local_credentials(c->agent, c->stream, &ufrag, &pwd));
    GString *s = g_string_new(NULL);
    g_string_append_printf(s,
                           "v=0\r\no=- %u 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
                           "a=group:BUNDLE 0 1\r\na=msid-semantic: WMS t\r\n",
                           g_random_int() >> 1);
    for (int m = 0; m < 2; m++) {
        if (m == 0)
            g_string_append_printf(s, "m=audio 9 UDP/TLS/RTP/SAVPF %u\r\n", PT_OPUS);
        else
            g_string_append_printf(s, "m=video 9 UDP/TLS/RTP/SAVPF %u\r\n", PT_VP8);
        g_string_append_printf(s,
                               "c=IN IP4 0.0.0.0\r\na=ice-ufrag:%s\r\na=ice-pwd:%s\r\n"
                               "a=fingerprint:%s\r\na=setup:actpass\r\na=mid:%d\r\n"
                               "a=sendrecv\r\na=rtcp-mux\r\n",
                               ufrag, pwd, md_dtls_identity_fingerprint(c->identity), m);
        if (m == 0) {
            GSList *cands = nice_agent_get_local_candidates(c->agent, c->stream, COMPONENT);
            for (GSList *l = cands; l; l = l->next) {
                NiceCandidate *nc = l->data;
                if (c->tcp && nc->transport != NICE_CANDIDATE_TRANSPORT_TCP_ACTIVE)
                    continue;
                gchar *line = nice_agent_generate_local_candidate_sdp(c->agent, nc);
                g_string_append_printf(s, "%s\r\n", line);
                g_free(line);
            }
            g_slist_free_full(cands, (GDestroyNotify)nice_candidate_free);
            g_string_append(s, "a=end-of-candidates\r\n");
            g_string_append_printf(s,
                                   "a=rtpmap:%u opus/48000/2\r\na=fmtp:%u minptime=10\r\n"
                                   "a=ssrc:%u cname:t\r\n",
                                   PT_OPUS, PT_OPUS, c->audio_ssrc);
        } else {
            g_string_append_printf(s,
                                   "a=rtcp-rsize\r\na=rtpmap:%u VP8/90000\r\n"
                                   "a=rtcp-fb:%u nack\r\na=rtcp-fb:%u nack pli\r\n"
                                   "a=ssrc:%u cname:t\r\n",
                                   PT_VP8, PT_VP8, PT_VP8, c->video_ssrc);
        }
    }
    g_free(ufrag);
    g_free(pwd);
    return g_string_free(s, FALSE);
}

static void client_add_candidate(struct client *c, const char *cand)
{
    if (g_str_has_prefix(cand, "a="))
        cand += 2;
    char *line = g_strconcat("a=", cand, NULL);
    NiceCandidate *nc = nice_agent_parse_remote_candidate_sdp(c->agent, c->stream, line);
    g_free(line);
    ASSERT(nc);
    GSList one = {.data = nc, .next = NULL};
    ASSERT(nice_agent_set_remote_candidates(c->agent, c->stream, COMPONENT, &one) >= 0);
    nice_candidate_free(nc);
}

/* The gateway answered a=setup:passive, so we are the DTLS client (RFC 5763 5). */
static void client_answer(struct client *c, const char *answer)
{
    md_sdp *sdp = NULL;
    char err[160];
    ASSERT_OK(md_sdp_parse(answer, strlen(answer), MD_SDP_MAX_BYTES, &sdp, err, sizeof(err)));
    md_sdp_transport t;
    md_sdp_bundle_transport(sdp, &t);
    ASSERT(t.n_fingerprints > 0 && t.ice_ufrag[0]);
    ASSERT_EQ(t.setup, MD_SDP_SETUP_PASSIVE);
    md_dtls_options o = {.role = MD_DTLS_CLIENT, .initial_timeout_ms = 100};
    ASSERT_OK(md_dtls_new(c->identity, &o, t.fingerprints, t.n_fingerprints,
                          g_main_context_default(), &dtls_callbacks, c, &c->dtls));
    ASSERT(nice_agent_set_remote_credentials(c->agent, c->stream, t.ice_ufrag, t.ice_pwd));
    for (size_t m = 0; m < sdp->n_media; m++)
        for (size_t i = 0; i < sdp->media[m].n_candidates; i++)
            client_add_candidate(c, sdp->media[m].candidates[i]);
    nice_agent_peer_candidate_gathering_done(c->agent, c->stream);
    if (c->ice_up)
        ASSERT_OK(md_dtls_start(c->dtls));
    md_sdp_free(sdp);
}

static void client_send_opus(struct client *c, uint16_t seq)
{
    uint8_t pkt[12 + 4 + MD_SRTP_MAX_OVERHEAD] = {0x80, PT_OPUS};
    md_rtp_set_seq(pkt, seq);
    md_rtp_set_timestamp(pkt, 960u * seq);
    md_rtp_set_ssrc(pkt, c->audio_ssrc);
    memcpy(pkt + 12, "TCP!", 4);
    size_t len = 16;
    ASSERT_OK(md_srtp_protect_rtp(c->tx, pkt, &len, sizeof(pkt)));
    nice_agent_send(c->agent, c->stream, COMPONENT, (guint)len, (const gchar *)pkt);
}

/* ---- the answer ---- */

/* RFC 8839 5.1 fields of the first candidate line containing needle:
 * priority and port, or false when there is none. */
static bool find_candidate(const char *sdp, const char *needle, unsigned long *ret_priority,
                           unsigned *ret_port)
{
    gchar **lines = g_strsplit(sdp, "\r\n", -1);
    bool found = false;
    for (gchar **l = lines; *l && !found; l++) {
        if (!g_str_has_prefix(*l, "a=candidate:") || !strstr(*l, needle))
            continue;
        gchar **tok = g_strsplit(*l, " ", -1);
        ASSERT(g_strv_length(tok) >= 8);
        *ret_priority = strtoul(tok[3], NULL, 10);
        *ret_port = (unsigned)strtoul(tok[5], NULL, 10);
        g_strfreev(tok);
        found = true;
    }
    g_strfreev(lines);
    return found;
}

static void check_answer(const char *answer)
{
    char *a = g_ascii_strdown(answer, -1); /* libnice writes "UDP", "TCP" */
    unsigned long udp_prio = 0, tcp_prio = 0;
    unsigned udp_port = 0, tcp_port = 0;
    ASSERT(find_candidate(a, " udp ", &udp_prio, &udp_port));
    ASSERT(find_candidate(a, " tcp ", &tcp_prio, &tcp_port));
    ASSERT(strstr(a, " 127.0.0.1 ") && strstr(a, " typ host tcptype passive"));
    ASSERT(!strstr(a, "tcptype active")); /* we never connect out */
    ASSERT(tcp_port >= PORT_MIN && tcp_port <= PORT_MAX);
    ASSERT(udp_port >= PORT_MIN && udp_port <= PORT_MAX);
    /* RFC 6544 4.2: priority = 2^24 type-pref + 2^8 local-pref + (256 - component),
     * local-pref = 2^13 direction-pref + other-pref; libnice picks the values
     * (0.1.21: direction-pref 2 for a passive host candidate where 4.2
     * recommends 4, and a lower type-pref for TCP than for UDP). */
    ASSERT(tcp_prio < udp_prio);
    ASSERT_EQ(tcp_prio & 0xff, 255);
    unsigned direction_pref = (unsigned)((tcp_prio >> 8) & 0xffff) >> 13;
    ASSERT(direction_pref >= 1 && direction_pref <= 7);
    g_free(a);
}

static void load_config(md_config *cfg)
{
    ASSERT_OK(md_config_load(NULL, cfg, NULL));
    ASSERT(cfg->media.ice_tcp); /* the default */
    g_free(cfg->media.bind_address);
    cfg->media.bind_address = g_strdup("127.0.0.1");
    cfg->media.workers = 1;
    cfg->media.port_min = PORT_MIN;
    cfg->media.port_max = PORT_MAX;
}

static bool all_up(struct client *c, struct recorder *rec)
{
    return c[0].dtls_up && c[1].dtls_up && has_event(rec, "connected tablet") &&
           has_event(rec, "connected verifier");
}

static void test_tcp_tablet(void)
{
    md_config cfg;
    md_media *m = NULL;
    struct recorder rec = {.events = g_ptr_array_new_with_free_func(g_free)};
    for (int i = 0; i < 2; i++)
        rec.trickled[i] = g_ptr_array_new_with_free_func(g_free);
    load_config(&cfg);
    ASSERT_OK(md_media_new(&cfg, g_main_context_default(), on_event, &rec, &m));
    const char *vp8[] = {"VP8", NULL};
    ASSERT_OK(md_media_session_open(m, "tcp", &(md_media_session_options){.video_codecs = vp8}));

    struct client c[2];
    client_init(&c[MD_LEG_TABLET], "tablet", true);
    client_init(&c[MD_LEG_VERIFIER], "verifier", false);
    for (int i = 0; i < 2; i++) {
        char *offer = client_offer(&c[i]), *detail = NULL;
        if (i == MD_LEG_TABLET)
            ASSERT(strstr(offer, " TCP ") && strstr(offer, "tcptype active") &&
                   !strstr(offer, " UDP "));
        int r = md_media_leg_offer(m, "tcp", (md_leg)i, offer, strlen(offer), &detail);
        if (r < 0)
            MD_FAIL("offer refused: %s (%s)", md_err_code(r), detail);
        g_free(offer);
    }

    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    while ((!rec.answers[0] || !rec.answers[1]) && g_get_monotonic_time() < deadline)
        g_main_context_iteration(NULL, TRUE);
    ASSERT(rec.answers[0] && rec.answers[1]);
    check_answer(rec.answers[MD_LEG_TABLET]);
    for (int i = 0; i < 2; i++) {
        client_answer(&c[i], rec.answers[i]);
        for (guint k = 0; k < rec.trickled[i]->len; k++)
            client_add_candidate(&c[i], g_ptr_array_index(rec.trickled[i], k));
    }

    deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    while (!all_up(c, &rec) && !c[0].failed && !c[1].failed && !has_event(&rec, "failed") &&
           g_get_monotonic_time() < deadline)
        g_main_context_iteration(NULL, TRUE);
    for (guint i = 0; !all_up(c, &rec) && i < rec.events->len; i++)
        fprintf(stderr, "event: %s\n", (char *)g_ptr_array_index(rec.events, i));
    ASSERT(all_up(c, &rec));

    /* The tablet's path is TCP: its active candidate to our passive one. */
    NiceCandidate *local = NULL, *remote = NULL;
    ASSERT(nice_agent_get_selected_pair(c[MD_LEG_TABLET].agent, c[MD_LEG_TABLET].stream, COMPONENT,
                                        &local, &remote));
    ASSERT_EQ(local->transport, NICE_CANDIDATE_TRANSPORT_TCP_ACTIVE);
    ASSERT_EQ(remote->transport, NICE_CANDIDATE_TRANSPORT_TCP_PASSIVE);
    ASSERT(nice_agent_get_selected_pair(c[MD_LEG_VERIFIER].agent, c[MD_LEG_VERIFIER].stream,
                                        COMPONENT, &local, &remote));
    ASSERT_EQ(local->transport, NICE_CANDIDATE_TRANSPORT_UDP);

    /* SRTP relayed from the TCP leg to the UDP leg (resent until one arrives:
     * the gateway may still be installing its keys). */
    deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    for (uint16_t seq = 1;
         c[MD_LEG_VERIFIER].rtp_received == 0 && g_get_monotonic_time() < deadline; seq++) {
        client_send_opus(&c[MD_LEG_TABLET], seq);
        gint64 until = g_get_monotonic_time() + 20000;
        while (c[MD_LEG_VERIFIER].rtp_received == 0 && g_get_monotonic_time() < until)
            g_main_context_iteration(NULL, FALSE);
    }
    ASSERT(c[MD_LEG_VERIFIER].rtp_received > 0);

    md_media_free(m);
    for (int i = 0; i < 2; i++) {
        client_clear(&c[i]);
        g_free(rec.answers[i]);
        g_ptr_array_unref(rec.trickled[i]);
    }
    md_config_clear(&cfg);
    g_ptr_array_unref(rec.events);
}

/* media.ice_tcp = false: no TCP candidate in the answer. */
static void test_config_off(void)
{
    md_config cfg;
    md_media *m = NULL;
    struct recorder rec = {.events = g_ptr_array_new_with_free_func(g_free)};
    for (int i = 0; i < 2; i++)
        rec.trickled[i] = g_ptr_array_new_with_free_func(g_free);
    load_config(&cfg);
    cfg.media.ice_tcp = false;
    ASSERT_OK(md_media_new(&cfg, g_main_context_default(), on_event, &rec, &m));
    const char *vp8[] = {"VP8", NULL};
    ASSERT_OK(md_media_session_open(m, "off", &(md_media_session_options){.video_codecs = vp8}));
    struct client c;
    client_init(&c, "verifier", false);
    char *offer = client_offer(&c);
    for (int i = 0; i < 2; i++)
        ASSERT_OK(md_media_leg_offer(m, "off", (md_leg)i, offer, strlen(offer), NULL));
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    while ((!rec.answers[0] || !rec.answers[1]) && g_get_monotonic_time() < deadline)
        g_main_context_iteration(NULL, TRUE);
    ASSERT(rec.answers[0] && rec.answers[1]);
    char *a = g_ascii_strdown(rec.answers[0], -1);
    ASSERT(strstr(a, " udp "));
    ASSERT(!strstr(a, " tcp ") && !strstr(a, "tcptype"));
    g_free(a);
    md_media_free(m);
    client_clear(&c);
    g_free(offer);
    for (int i = 0; i < 2; i++) {
        g_free(rec.answers[i]);
        g_ptr_array_unref(rec.trickled[i]);
    }
    md_config_clear(&cfg);
    g_ptr_array_unref(rec.events);
}

static void on_candidate(const char *candidate, void *ud)
{
}

static void on_state(md_ice_state state, void *ud)
{
}

static void on_packet(const uint8_t *buf, size_t len, void *ud)
{
}

/* Which remote TCP candidates md_ice takes (RFC 6544 4.5). */
static void test_remote_candidates(void)
{
    static const md_ice_callbacks cb = {on_candidate, on_state, on_packet};
    md_ice_options opt = {.bind_address = "127.0.0.1", .ice_tcp = true};
    md_ice *ice = NULL;
    ASSERT_OK(md_ice_new(g_main_context_default(), &opt, &cb, NULL, &ice));
    ASSERT_OK(md_ice_set_remote_credentials(ice, "abcd", "abcdefghijklmnopqrstuvwx"));
    ASSERT_OK(md_ice_add_remote_candidate(
        ice, "candidate:1 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active"));
    ASSERT_OK(md_ice_add_remote_candidate(
        ice, "a=candidate:2 1 TCP 1518280447 127.0.0.1 9 typ srflx raddr 10.0.0.1 rport 9 "
             "tcptype active"));
    ASSERT_OK(md_ice_add_remote_candidate(
        ice, "candidate:3 1 tcp 1518280447 127.0.0.1 40000 typ host tcptype so"));
    ASSERT_EQ(md_ice_add_remote_candidate(
                  ice, "candidate:4 1 tcp 1518280447 127.0.0.1 40001 typ host tcptype passive"),
              -ENOTSUP);
    ASSERT_EQ(md_ice_add_remote_candidate(ice, "candidate:5 1 tcp 1518280447 127.0.0.1 9 typ host"),
              -EINVAL);
    ASSERT_EQ(md_ice_add_remote_candidate(
                  ice, "candidate:6 1 tcp 1518280447 127.0.0.1 9 typ host tcptype"),
              -EINVAL);
    ASSERT_EQ(md_ice_add_remote_candidate(
                  ice, "candidate:7 2 tcp 1518280447 127.0.0.1 9 typ host tcptype active"),
              -ENOTSUP);
    /* Our own list: passive advertised, active (port 9) not. */
    char **local = md_ice_local_candidates(ice);
    bool passive = false;
    for (char **l = local; *l; l++) {
        ASSERT(!strstr(*l, "tcptype active"));
        passive |= strstr(*l, "tcptype passive") != NULL;
    }
    ASSERT(passive);
    g_strfreev(local);
    md_ice_free(ice);

    opt.ice_tcp = false;
    ASSERT_OK(md_ice_new(g_main_context_default(), &opt, &cb, NULL, &ice));
    ASSERT_OK(md_ice_set_remote_credentials(ice, "abcd", "abcdefghijklmnopqrstuvwx"));
    ASSERT_EQ(md_ice_add_remote_candidate(
                  ice, "candidate:1 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active"),
              -ENOTSUP);
    ASSERT_OK(
        md_ice_add_remote_candidate(ice, "candidate:1 1 udp 2122260223 127.0.0.1 9 typ host"));
    md_ice_free(ice);
}

int main(void)
{
    RUN(test_remote_candidates);
    RUN(test_config_off);
    RUN(test_tcp_tablet);
    return 0;
}
