/*
 * What the gateway does with a parsed offer (see md_sdp.h): the WebRTC checks
 * (BUNDLE, rtcp-mux, ICE and DTLS attributes), codec matching, the choice of
 * m-lines and payload types, and the answer text (RFC 8829 5.3.1 order of
 * attributes).  Pure functions over md_sdp: callable from any thread.
 */
#include "md_sdp.h"
#include "md_err.h"

#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define ERR(...)                                                                                   \
    do {                                                                                           \
        if (err && err_len)                                                                        \
            snprintf(err, err_len, __VA_ARGS__);                                                   \
    } while (0)

static const char *const known_video_codecs[] = {"VP8", "H264", "VP9", "AV1"};

static bool media_used(const md_sdp_media *m)
{
    return m->port != 0 || m->bundle_only;
}

static bool in_bundle(const md_sdp *sdp, const char *mid)
{
    for (size_t i = 0; i < sdp->n_bundle; i++)
        if (strcmp(sdp->bundle[i], mid) == 0)
            return true;
    return false;
}

static const md_sdp_media *tagged_media(const md_sdp *sdp)
{
    if (sdp->n_bundle == 0)
        return NULL;
    for (size_t i = 0; i < sdp->n_media; i++)
        if (media_used(&sdp->media[i]) && strcmp(sdp->media[i].mid, sdp->bundle[0]) == 0)
            return &sdp->media[i];
    return NULL;
}

/* Media-level attributes win over session-level ones, each on its own. */
void md_sdp_bundle_transport(const md_sdp *sdp, md_sdp_transport *ret)
{
    const md_sdp_media *tag = tagged_media(sdp);
    *ret = sdp->session;
    if (!tag)
        return;
    const md_sdp_transport *t = &tag->transport;
    if (t->ice_ufrag[0])
        memcpy(ret->ice_ufrag, t->ice_ufrag, sizeof(ret->ice_ufrag));
    if (t->ice_pwd[0])
        memcpy(ret->ice_pwd, t->ice_pwd, sizeof(ret->ice_pwd));
    if (t->n_fingerprints) {
        memcpy(ret->fingerprints, t->fingerprints, sizeof(ret->fingerprints));
        ret->n_fingerprints = t->n_fingerprints;
    }
    if (t->setup)
        ret->setup = t->setup;
    ret->ice_trickle |= t->ice_trickle;
}

int md_sdp_find_media(const md_sdp *sdp, md_sdp_kind kind)
{
    for (size_t i = 0; i < sdp->n_media; i++)
        if (sdp->media[i].kind == kind && media_used(&sdp->media[i]))
            return (int)i;
    return -1;
}

int md_sdp_check_offer(const md_sdp *sdp, char *err, size_t err_len)
{
    md_sdp_transport t;
    if (sdp->n_bundle == 0) {
        ERR("offer has no a=group:BUNDLE");
        return -MD_E_BUNDLE_REQUIRED;
    }
    for (size_t i = 0; i < sdp->n_media; i++) {
        const md_sdp_media *m = &sdp->media[i];
        if (!media_used(m))
            continue;
        if (!m->mid[0] || !in_bundle(sdp, m->mid)) {
            ERR("m-line %zu is not in the BUNDLE group", i);
            return -MD_E_BUNDLE_REQUIRED;
        }
        if (strstr(m->proto, "RTP/") && !m->rtcp_mux) {
            ERR("m-line %zu lacks a=rtcp-mux", i);
            return -MD_E_BUNDLE_REQUIRED;
        }
    }
    if (!tagged_media(sdp)) {
        ERR("the BUNDLE tag names no m-line in use");
        return -MD_E_SDP_INVALID;
    }
    /* The checks below apply to the bundle transport (RFC 8843 7.1). */
    md_sdp_bundle_transport(sdp, &t);
    if (!t.ice_ufrag[0] || !t.ice_pwd[0]) {
        ERR("offer lacks a=ice-ufrag or a=ice-pwd");
        return -MD_E_SDP_INVALID;
    }
    if (t.n_fingerprints == 0) {
        ERR("offer lacks a supported a=fingerprint");
        return -MD_E_SDP_INVALID;
    }
    if (t.setup == MD_SDP_SETUP_UNSET) {
        ERR("offer lacks a=setup");
        return -MD_E_SDP_INVALID;
    }
    static const md_sdp_kind needed[] = {MD_SDP_AUDIO, MD_SDP_VIDEO};
    for (size_t k = 0; k < G_N_ELEMENTS(needed); k++) {
        int i = md_sdp_find_media(sdp, needed[k]);
        if (i < 0) {
            ERR("offer has no %s m-line", needed[k] == MD_SDP_AUDIO ? "audio" : "video");
            return -MD_E_SDP_UNSUPPORTED;
        }
        if (strcmp(sdp->media[i].proto, "UDP/TLS/RTP/SAVPF") != 0) {
            ERR("m-line %d uses a transport other than UDP/TLS/RTP/SAVPF", i);
            return -MD_E_SDP_UNSUPPORTED;
        }
    }
    return 0;
}

/* Value of key in an fmtp "k=v;k=v" list, copied to out; false if absent. */
static bool fmtp_get(const char *fmtp, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    for (const char *p = fmtp; *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        size_t n = strcspn(p, ";");
        if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            size_t vlen = n - klen - 1;
            if (vlen >= cap)
                return false;
            memcpy(out, p + klen + 1, vlen);
            out[vlen] = '\0';
            g_strstrip(out);
            return true;
        }
        p += n;
    }
    return false;
}

static bool fmtp_is(const char *fmtp, const char *key, const char *value, bool if_absent)
{
    char v[32];
    if (!fmtp_get(fmtp, key, v, sizeof(v)))
        return if_absent;
    return strcmp(v, value) == 0;
}

/* RFC 6184 8.1: profile-level-id = profile_idc, profile-iop, level_idc (hex).
 * Constrained baseline is profile_idc 0x42 with constraint_set1_flag (0x40). */
static bool h264_usable(const char *fmtp)
{
    char plid[16];
    if (!fmtp_is(fmtp, "packetization-mode", "1", false))
        return false;
    if (!fmtp_get(fmtp, "profile-level-id", plid, sizeof(plid)) || strlen(plid) != 6)
        return false;
    for (size_t i = 0; i < 6; i++)
        if (!g_ascii_isxdigit(plid[i]))
            return false;
    unsigned long v = strtoul(plid, NULL, 16);
    return (v >> 16) == 0x42 && ((v >> 8) & 0x40);
}

static bool format_is(const md_sdp_format *f, const char *codec)
{
    if (!f->has_rtpmap || g_ascii_strcasecmp(f->encoding, codec) != 0)
        return false;
    if (g_ascii_strcasecmp(codec, "opus") == 0) /* RFC 7587 7 */
        return f->clock_rate == 48000 && f->channels == 2;
    if (f->clock_rate != 90000)
        return false;
    if (strcmp(codec, "H264") == 0)
        return h264_usable(f->fmtp);
    if (strcmp(codec, "VP9") == 0)
        return fmtp_is(f->fmtp, "profile-id", "0", true);
    if (strcmp(codec, "AV1") == 0)
        return fmtp_is(f->fmtp, "profile", "0", true);
    return strcmp(codec, "VP8") == 0;
}

bool md_sdp_codec_known(const char *codec)
{
    for (size_t i = 0; i < G_N_ELEMENTS(known_video_codecs); i++)
        if (strcmp(codec, known_video_codecs[i]) == 0)
            return true;
    return false;
}

int md_sdp_find_codec(const md_sdp_media *m, const char *codec)
{
    if (strcmp(codec, "opus") != 0 && !md_sdp_codec_known(codec))
        return -1;
    for (size_t i = 0; i < m->n_formats; i++)
        if (format_is(&m->formats[i], codec))
            return (int)i;
    return -1;
}

static bool offers_codec(const md_sdp *sdp, const char *codec)
{
    int v = md_sdp_find_media(sdp, MD_SDP_VIDEO);
    return v >= 0 && md_sdp_find_codec(&sdp->media[v], codec) >= 0;
}

static void describe_offer(GString *s, const char *name, const md_sdp *sdp)
{
    g_string_append_printf(s, "; %s offers", name);
    size_t before = s->len;
    for (size_t i = 0; i < G_N_ELEMENTS(known_video_codecs); i++)
        if (offers_codec(sdp, known_video_codecs[i]))
            g_string_append_printf(s, " %s", known_video_codecs[i]);
    if (s->len == before)
        g_string_append(s, " none usable");
}

int md_sdp_choose_video_codec(const char *const *pref, const md_sdp *a, const char *a_name,
                              const md_sdp *b, const char *b_name, const char **ret_codec,
                              char *err, size_t err_len)
{
    for (size_t i = 0; pref && pref[i]; i++) {
        if (offers_codec(a, pref[i]) && offers_codec(b, pref[i])) {
            *ret_codec = pref[i];
            return 0;
        }
    }
    GString *s = g_string_new("no common video codec: policy allows");
    for (size_t i = 0; pref && pref[i]; i++)
        g_string_append_printf(s, "%s%s", i ? "," : " ", pref[i]);
    describe_offer(s, a_name, a);
    describe_offer(s, b_name, b);
    ERR("%s", s->str);
    g_string_free(s, TRUE);
    return -MD_E_CODEC_MISMATCH;
}

static bool is_rtx_ssrc(const md_sdp_media *m, uint32_t ssrc)
{
    for (size_t i = 0; i < m->n_fid; i++)
        if (m->fid[i].rtx == ssrc)
            return true;
    return false;
}

static uint32_t primary_ssrc(const md_sdp_media *m)
{
    for (size_t i = 0; i < m->n_ssrcs; i++)
        if (!is_rtx_ssrc(m, m->ssrcs[i]))
            return m->ssrcs[i];
    return 0;
}

/* RFC 8841 4.1: the m-line for data channels, "UDP/DTLS/SCTP webrtc-datachannel";
 * or its predecessor (draft-ietf-mmusic-sctp-sdp-05) "DTLS/SCTP <port>" with
 * a=sctpmap:<port> webrtc-datachannel, which aiortc 1.4 offers.  Any other
 * application m-line is rejected in the answer. */
static int find_data_channel(const md_sdp *offer, bool *ret_legacy)
{
    for (size_t i = 0; i < offer->n_media; i++) {
        const md_sdp_media *m = &offer->media[i];
        if (m->kind != MD_SDP_APPLICATION || !media_used(m) || !m->mid[0])
            continue;
        if (strcmp(m->proto, "UDP/DTLS/SCTP") == 0 &&
            strcmp(m->first_format, "webrtc-datachannel") == 0) {
            *ret_legacy = false;
            return (int)i;
        }
        if (strcmp(m->proto, "DTLS/SCTP") == 0 && m->sctpmap_datachannel) {
            *ret_legacy = true;
            return (int)i;
        }
    }
    return -1;
}

int md_sdp_choose(const md_sdp *offer, const char *video_codec, md_sdp_choice *ret, char *err,
                  size_t err_len)
{
    md_sdp_choice c = {.audio_index = md_sdp_find_media(offer, MD_SDP_AUDIO),
                       .video_index = md_sdp_find_media(offer, MD_SDP_VIDEO)};
    if (c.audio_index < 0 || c.video_index < 0) {
        ERR("offer lacks an audio or a video m-line");
        return -MD_E_SDP_UNSUPPORTED;
    }
    const md_sdp_media *am = &offer->media[c.audio_index], *vm = &offer->media[c.video_index];
    int af = md_sdp_find_codec(am, "opus");
    if (af < 0) {
        ERR("offer has no Opus audio");
        return -MD_E_CODEC_MISMATCH;
    }
    int vf = md_sdp_find_codec(vm, video_codec);
    if (vf < 0) {
        ERR("offer lacks the session's video codec %s", video_codec);
        return -MD_E_CODEC_MISMATCH;
    }
    c.audio_pt = am->formats[af].pt;
    c.video_pt = vm->formats[vf].pt;
    c.audio_feedback = 0; /* transport-cc is not terminated yet; nothing else applies */
    c.video_feedback = vm->formats[vf].feedback &
                       (MD_SDP_FB_NACK | MD_SDP_FB_PLI | MD_SDP_FB_FIR | MD_SDP_FB_REMB);
    c.remote_audio_ssrc = primary_ssrc(am);
    c.remote_video_ssrc = primary_ssrc(vm);
    memcpy(c.audio_mid, am->mid, sizeof(c.audio_mid));
    memcpy(c.video_mid, vm->mid, sizeof(c.video_mid));
    c.audio_direction = am->has_direction ? am->direction : MD_SDP_SENDRECV;
    c.video_direction = vm->has_direction ? vm->direction : MD_SDP_SENDRECV;
    c.rtcp_rsize = vm->rtcp_rsize;
    /* Only ids the one-byte form can carry (RFC 8285 4.2): what the relay
     * writes on the way out (md_rtp_rewrite_extensions). */
    for (size_t i = 0; i < vm->n_extmaps; i++)
        if (strcmp(vm->extmaps[i].uri, MD_SDP_EXT_ABS_SEND_TIME) == 0 && vm->extmaps[i].id >= 1 &&
            vm->extmaps[i].id <= 14)
            c.video_abs_send_time_id = (uint8_t)vm->extmaps[i].id;
    c.data_index = find_data_channel(offer, &c.data_legacy);
    if (c.data_index >= 0) {
        const md_sdp_media *dm = &offer->media[c.data_index];
        memcpy(c.data_mid, dm->mid, sizeof(c.data_mid));
        c.remote_sctp_port = dm->sctp_port ? dm->sctp_port : 5000; /* RFC 8841 5.1 */
        c.remote_max_message_size = dm->max_message_size;
    }
    *ret = c;
    return 0;
}

/* RFC 5763 5: the answerer to actpass picks passive, so the client connects. */
md_sdp_setup md_sdp_answer_setup(md_sdp_setup offered)
{
    return offered == MD_SDP_SETUP_PASSIVE ? MD_SDP_SETUP_ACTIVE : MD_SDP_SETUP_PASSIVE;
}

static const char *answer_direction(md_sdp_direction offered)
{
    switch (offered) {
    case MD_SDP_SENDONLY:
        return "recvonly";
    case MD_SDP_RECVONLY:
        return "sendonly";
    case MD_SDP_INACTIVE:
        return "inactive";
    default:
        return "sendrecv";
    }
}

static void append_feedback(GString *s, uint8_t pt, unsigned fb)
{
    if (fb & MD_SDP_FB_NACK)
        g_string_append_printf(s, "a=rtcp-fb:%u nack\r\n", pt);
    if (fb & MD_SDP_FB_PLI)
        g_string_append_printf(s, "a=rtcp-fb:%u nack pli\r\n", pt);
    if (fb & MD_SDP_FB_FIR)
        g_string_append_printf(s, "a=rtcp-fb:%u ccm fir\r\n", pt);
    if (fb & MD_SDP_FB_REMB)
        g_string_append_printf(s, "a=rtcp-fb:%u goog-remb\r\n", pt);
}

/* ICE credentials, DTLS fingerprint and role: the same in every m-section
 * (RFC 8843 7.1: one BUNDLE transport). */
static void append_transport(GString *s, const md_sdp_answer_params *p)
{
    g_string_append_printf(s, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=ice-options:trickle\r\n",
                           p->ice_ufrag, p->ice_pwd);
    g_string_append_printf(s, "a=fingerprint:%s\r\na=setup:%s\r\n", p->fingerprint,
                           p->setup == MD_SDP_SETUP_ACTIVE ? "active" : "passive");
}

/* RFC 8843 7.3.1 and RFC 8838 9: the bundle transport's candidates, once, in
 * the first m-section. */
static void append_candidates(GString *s, const md_sdp_answer_params *p)
{
    for (size_t i = 0; i < p->n_candidates; i++)
        g_string_append_printf(s, "a=%s\r\n", p->candidates[i]);
    if (p->end_of_candidates)
        g_string_append(s, "a=end-of-candidates\r\n");
}

/* One accepted m-line (RFC 8829 5.3.1 lists what an answer m-section holds). */
static void append_accepted(GString *s, const md_sdp_media *m, const md_sdp_format *f,
                            unsigned feedback, uint32_t ssrc, uint8_t abs_send_time_id, bool first,
                            const md_sdp_answer_params *p)
{
    bool audio = m->kind == MD_SDP_AUDIO;
    const char *dir = answer_direction(m->has_direction ? m->direction : MD_SDP_SENDRECV);
    bool sending = strcmp(dir, "sendrecv") == 0 || strcmp(dir, "sendonly") == 0;

    g_string_append_printf(s, "m=%s 9 UDP/TLS/RTP/SAVPF %u\r\n", audio ? "audio" : "video", f->pt);
    g_string_append(s, "c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n");
    append_transport(s, p);
    g_string_append_printf(s, "a=mid:%s\r\na=%s\r\n", m->mid, dir);
    if (sending)
        g_string_append_printf(s, "a=msid:%s %s-%s\r\n", p->stream_id, p->stream_id,
                               audio ? "audio" : "video");
    g_string_append(s, "a=rtcp-mux\r\n");
    /* RFC 8285 5: the offered id, kept; the only extension the relay passes. */
    if (abs_send_time_id)
        g_string_append_printf(s, "a=extmap:%u " MD_SDP_EXT_ABS_SEND_TIME "\r\n", abs_send_time_id);
    if (m->rtcp_rsize)
        g_string_append(s, "a=rtcp-rsize\r\n");
    g_string_append_printf(s, "a=rtpmap:%u %s/%" PRIu32, f->pt, f->encoding, f->clock_rate);
    if (f->channels > 1)
        g_string_append_printf(s, "/%u", f->channels);
    g_string_append(s, "\r\n");
    append_feedback(s, f->pt, feedback);
    if (f->fmtp[0])
        g_string_append_printf(s, "a=fmtp:%u %s\r\n", f->pt, f->fmtp);
    if (sending)
        g_string_append_printf(s, "a=ssrc:%" PRIu32 " cname:%s\r\n", ssrc, p->cname);
    if (!first)
        return;
    append_candidates(s, p);
}

/* RFC 8841 4.1, 5 and 6: the accepted data-channel m-line.  The gateway
 * listens on SCTP port 5000 and reassembles up to max_message_size. */
static void append_data_channel(GString *s, const md_sdp_media *m, bool legacy, bool first,
                                const md_sdp_answer_params *p)
{
    g_string_append_printf(s, "m=application 9 %s\r\nc=IN IP4 0.0.0.0\r\n",
                           legacy ? "DTLS/SCTP 5000" : "UDP/DTLS/SCTP webrtc-datachannel");
    append_transport(s, p);
    g_string_append_printf(s, "a=mid:%s\r\n", m->mid);
    if (legacy) /* sctp-sdp-05 8.1: the stream count is informative */
        g_string_append(s, "a=sctpmap:5000 webrtc-datachannel 1024\r\n");
    else
        g_string_append(s, "a=sctp-port:5000\r\n");
    g_string_append_printf(s, "a=max-message-size:%" PRIu64 "\r\n",
                           p->max_message_size ? p->max_message_size : 65536);
    if (!first)
        return;
    append_candidates(s, p);
}

int md_sdp_answer(const md_sdp *offer, const md_sdp_choice *choice, const md_sdp_answer_params *p,
                  char **ret_text)
{
    if (choice->audio_index < 0 || choice->video_index < 0 ||
        (size_t)choice->audio_index >= offer->n_media ||
        (size_t)choice->video_index >= offer->n_media)
        return -EINVAL;
    GString *s = g_string_sized_new(2048);
    g_string_append_printf(s,
                           "v=0\r\no=- %" PRIu64 " %" PRIu64 " IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",
                           p->session_id, p->session_version);
    /* RFC 8843 7.3.3: the group lists accepted m-lines only, in offer order. */
    g_string_append(s, "a=group:BUNDLE");
    for (size_t i = 0; i < offer->n_media; i++)
        if ((int)i == choice->audio_index || (int)i == choice->video_index ||
            (int)i == choice->data_index)
            g_string_append_printf(s, " %s", offer->media[i].mid);
    g_string_append_printf(s, "\r\na=msid-semantic: WMS %s\r\n", p->stream_id);

    bool first = true;
    for (size_t i = 0; i < offer->n_media; i++) {
        const md_sdp_media *m = &offer->media[i];
        if ((int)i == choice->audio_index || (int)i == choice->video_index) {
            bool audio = (int)i == choice->audio_index;
            uint8_t pt = audio ? choice->audio_pt : choice->video_pt;
            const md_sdp_format *f = NULL;
            for (size_t k = 0; k < m->n_formats; k++)
                if (m->formats[k].pt == pt)
                    f = &m->formats[k];
            if (!f) {
                g_string_free(s, TRUE);
                return -EINVAL;
            }
            append_accepted(s, m, f, audio ? choice->audio_feedback : choice->video_feedback,
                            audio ? p->audio_ssrc : p->video_ssrc,
                            audio ? 0 : choice->video_abs_send_time_id, first, p);
            first = false;
            continue;
        }
        if ((int)i == choice->data_index) {
            append_data_channel(s, m, choice->data_legacy, first, p);
            first = false;
            continue;
        }
        /* RFC 8829 5.3.1 / RFC 3264 6: rejected with port 0. */
        g_string_append_printf(s, "m=%s 0 %s %s\r\nc=IN IP4 0.0.0.0\r\n", m->kind_name, m->proto,
                               m->first_format);
        if (m->mid[0])
            g_string_append_printf(s, "a=mid:%s\r\n", m->mid);
        g_string_append(s, "a=inactive\r\n");
    }
    *ret_text = g_string_free(s, FALSE);
    return 0;
}
