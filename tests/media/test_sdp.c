/*
 * SDP: Chromium- and Firefox-style offers (tests/media/data/) parse into what
 * the gateway needs; codec choice across two offers; the answer's content and
 * that it parses back; and malformed or unsupported offers refused with the
 * right code and a reason.
 */
#include "md_err.h"
#include "md_sdp.h"
#include "md_test.h"

#include <glib.h>

static char *load(const char *name, size_t *len)
{
    const char *root = getenv("MD_SOURCE_ROOT");
    char *path = g_build_filename(root ? root : ".", "tests", "media", "data", name, NULL);
    char *text = NULL;
    gsize n = 0;
    if (!g_file_get_contents(path, &text, &n, NULL))
        MD_FAIL("cannot read %s", path);
    g_free(path);
    *len = n;
    return text;
}

static md_sdp *parse_file(const char *name)
{
    size_t len;
    char *text = load(name, &len);
    char err[256] = "";
    md_sdp *sdp = NULL;
    int r = md_sdp_parse(text, len, 65536, &sdp, err, sizeof(err));
    if (r < 0)
        MD_FAIL("%s: %s", name, err);
    ASSERT_OK(md_sdp_check_offer(sdp, err, sizeof(err)));
    g_free(text);
    return sdp;
}

static void test_chromium_offer(void)
{
    md_sdp *sdp = parse_file("chromium_offer.sdp");
    md_sdp_transport t;
    ASSERT_EQ(sdp->n_media, 3);
    ASSERT_EQ(sdp->n_bundle, 3);
    ASSERT_STR_EQ(sdp->bundle[0], "0");
    md_sdp_bundle_transport(sdp, &t);
    ASSERT_STR_EQ(t.ice_ufrag, "Vq8e");
    ASSERT_STR_EQ(t.ice_pwd, "XbE6rY1o8Aq4CqNf3mTtKqZP");
    ASSERT(t.ice_trickle);
    ASSERT_EQ(t.n_fingerprints, 1);
    ASSERT_STR_EQ(t.fingerprints[0].hash, "sha-256");
    ASSERT_EQ(t.fingerprints[0].len, 32);
    ASSERT_EQ(t.fingerprints[0].digest[0], 0x3c);
    ASSERT_EQ(t.setup, MD_SDP_SETUP_ACTPASS);

    const md_sdp_media *video = &sdp->media[1];
    ASSERT_EQ(video->kind, MD_SDP_VIDEO);
    ASSERT_EQ(video->n_formats, 21);
    ASSERT(video->rtcp_mux && video->rtcp_rsize);
    ASSERT_EQ(video->n_extmaps, 8);
    ASSERT_EQ(video->n_fid, 1);
    ASSERT_EQ(video->fid[0].rtx, 3934551281u);
    ASSERT_EQ(video->formats[md_sdp_find_codec(video, "VP8")].pt, 96);
    /* 102 is 42001f (baseline); constrained baseline with mode 1 is 106 */
    ASSERT_EQ(video->formats[md_sdp_find_codec(video, "H264")].pt, 106);
    ASSERT_EQ(video->formats[md_sdp_find_codec(video, "VP9")].pt, 98);
    ASSERT_EQ(md_sdp_find_codec(video, "AV1"), -1);
    ASSERT_EQ(sdp->media[2].kind, MD_SDP_APPLICATION);
    ASSERT_STR_EQ(sdp->media[2].first_format, "webrtc-datachannel");

    md_sdp_choice c;
    ASSERT_OK(md_sdp_choose(sdp, "VP8", &c, NULL, 0));
    ASSERT_EQ(c.audio_index, 0);
    ASSERT_EQ(c.video_index, 1);
    ASSERT_EQ(c.audio_pt, 111);
    ASSERT_EQ(c.video_pt, 96);
    ASSERT_EQ(c.video_feedback, MD_SDP_FB_NACK | MD_SDP_FB_PLI | MD_SDP_FB_FIR | MD_SDP_FB_REMB);
    ASSERT_EQ(c.remote_audio_ssrc, 2871530271u);
    ASSERT_EQ(c.remote_video_ssrc, 1645016214u);
    ASSERT(c.rtcp_rsize);
    ASSERT_EQ(c.video_abs_send_time_id, 2);
    md_sdp_free(sdp);
}

static void test_firefox_offer(void)
{
    md_sdp *sdp = parse_file("firefox_offer.sdp");
    md_sdp_transport t;
    md_sdp_bundle_transport(sdp, &t);
    ASSERT_STR_EQ(t.ice_ufrag, "3f9a1c2e"); /* media level */
    ASSERT_EQ(t.n_fingerprints, 1);         /* session level */
    ASSERT_EQ(t.fingerprints[0].digest[31], 0xc8);
    ASSERT(t.ice_trickle);
    ASSERT_EQ(t.setup, MD_SDP_SETUP_ACTPASS);
    ASSERT_EQ(sdp->media[0].n_candidates, 3);
    ASSERT(g_str_has_prefix(sdp->media[0].candidates[0], "candidate:0 1 UDP 2122252543"));
    ASSERT(sdp->media[0].end_of_candidates);
    ASSERT_EQ(sdp->media[0].extmaps[1].id, 2); /* "2/recvonly" */

    md_sdp_choice c;
    ASSERT_OK(md_sdp_choose(sdp, "H264", &c, NULL, 0));
    ASSERT_EQ(c.audio_pt, 109);
    ASSERT_EQ(c.video_pt, 126);
    ASSERT_EQ(c.remote_video_ssrc, 2213640093u); /* not the FID (RTX) one */
    ASSERT_OK(md_sdp_choose(sdp, "VP8", &c, NULL, 0));
    ASSERT_EQ(c.video_pt, 120);
    ASSERT_EQ(c.video_abs_send_time_id, 4);
    md_sdp_free(sdp);
}

static void test_codec_choice(void)
{
    md_sdp *chrome = parse_file("chromium_offer.sdp"), *firefox = parse_file("firefox_offer.sdp");
    const char *codec = NULL;
    char err[320];
    const char *h264_first[] = {"H264", "VP8", NULL};
    ASSERT_OK(md_sdp_choose_video_codec(h264_first, chrome, "tablet", firefox, "verifier", &codec,
                                        err, sizeof(err)));
    ASSERT_STR_EQ(codec, "H264");
    const char *vp9_first[] = {"VP9", "VP8", NULL};
    ASSERT_OK(md_sdp_choose_video_codec(vp9_first, chrome, "tablet", firefox, "verifier", &codec,
                                        err, sizeof(err)));
    ASSERT_STR_EQ(codec, "VP9");
    const char *av1[] = {"AV1", NULL};
    codec = "untouched";
    ASSERT_EQ(md_sdp_choose_video_codec(av1, chrome, "tablet", firefox, "verifier", &codec, err,
                                        sizeof(err)),
              -MD_E_CODEC_MISMATCH);
    ASSERT_STR_EQ(codec, "untouched");
    ASSERT_STR_EQ(err, "no common video codec: policy allows AV1; tablet offers VP8 H264 VP9; "
                       "verifier offers VP8 H264 VP9");
    md_sdp_choice c;
    ASSERT_EQ(md_sdp_choose(chrome, "AV1", &c, err, sizeof(err)), -MD_E_CODEC_MISMATCH);
    ASSERT(strstr(err, "AV1"));
    md_sdp_free(chrome);
    md_sdp_free(firefox);
}

static void test_answer(void)
{
    md_sdp *offer = parse_file("chromium_offer.sdp");
    md_sdp_choice c;
    ASSERT_OK(md_sdp_choose(offer, "VP8", &c, NULL, 0));
    const char *cands[] = {"candidate:1 1 udp 2015363327 127.0.0.1 40000 typ host"};
    md_sdp_answer_params p = {
        .session_id = 42,
        .session_version = 2,
        .ice_ufrag = "abcdEFGH",
        .ice_pwd = "0123456789abcdefghijklmn",
        .fingerprint = "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:"
                       "66:77:88:99:AA:BB:CC:DD:EE:FF",
        .setup = md_sdp_answer_setup(MD_SDP_SETUP_ACTPASS),
        .candidates = cands,
        .n_candidates = 1,
        .end_of_candidates = true,
        .audio_ssrc = 1111,
        .video_ssrc = 2222,
        .cname = "madoguchi",
        .stream_id = "verifier",
        .max_message_size = 262144,
    };
    char *text = NULL;
    ASSERT_EQ(c.data_index, 2);
    ASSERT_STR_EQ(c.data_mid, "2");
    ASSERT_EQ(c.remote_sctp_port, 5000);
    ASSERT_OK(md_sdp_answer(offer, &c, &p, &text));
    static const char *const expected[] = {
        "o=- 42 2 IN IP4 0.0.0.0\r\n",
        "a=group:BUNDLE 0 1 2\r\n",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
        "a=rtpmap:111 opus/48000/2\r\n",
        "a=fmtp:111 minptime=10;useinbandfec=1\r\n",
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
        "a=rtpmap:96 VP8/90000\r\n",
        "a=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\n"
        "a=rtcp-fb:96 goog-remb\r\n",
        "a=setup:passive\r\n",
        "a=ssrc:2222 cname:madoguchi\r\n",
        "a=msid:verifier verifier-video\r\n",
        "a=rtcp-rsize\r\n",
        /* RFC 8841 4.1, 5.1, 6.1: the data channel m-line is accepted. */
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
        "a=mid:2\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n",
        "a=candidate:1 1 udp 2015363327 127.0.0.1 40000 typ host\r\na=end-of-candidates\r\n",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(expected); i++)
        if (!strstr(text, expected[i]))
            MD_FAIL("answer lacks \"%s\":\n%s", expected[i], text);
    ASSERT(!strstr(text, "transport-cc")); /* not terminated yet: not negotiated */
    /* RFC 8285 5: abs-send-time only, on video, with the offer's id (2). */
    const char *ext = strstr(text, "a=extmap:");
    ASSERT(ext && ext > strstr(text, "m=video") && ext < strstr(text, "m=application"));
    ASSERT(g_str_has_prefix(ext, "a=extmap:2 " MD_SDP_EXT_ABS_SEND_TIME "\r\n"));
    ASSERT(!strstr(ext + 1, "a=extmap"));
    ASSERT(!strstr(text, "rtx/90000"));
    /* candidates once, in the first m-line of the bundle */
    ASSERT(strstr(text, "a=candidate") < strstr(text, "m=video"));
    ASSERT(!strstr(strstr(text, "m=video"), "a=candidate"));

    /* The answer is itself a well-formed description with the same transport. */
    md_sdp *back = NULL;
    char err[256];
    ASSERT_OK(md_sdp_parse(text, strlen(text), 65536, &back, err, sizeof(err)));
    ASSERT_OK(md_sdp_check_offer(back, err, sizeof(err)));
    ASSERT_EQ(back->n_media, 3);
    ASSERT_EQ(back->media[2].port, 9);
    ASSERT_EQ(back->media[2].sctp_port, 5000);
    ASSERT_EQ(back->media[2].max_message_size, 262144);
    ASSERT_EQ(back->media[1].n_formats, 1);
    md_sdp_transport t;
    md_sdp_bundle_transport(back, &t);
    ASSERT_STR_EQ(t.ice_ufrag, "abcdEFGH");
    ASSERT_EQ(t.setup, MD_SDP_SETUP_PASSIVE);
    ASSERT_EQ(back->media[0].n_candidates, 1);
    ASSERT_EQ(back->media[1].n_candidates, 0);
    md_sdp_free(back);
    g_free(text);
    md_sdp_free(offer);
}

static void test_setup_roles(void)
{
    ASSERT_EQ(md_sdp_answer_setup(MD_SDP_SETUP_ACTPASS), MD_SDP_SETUP_PASSIVE);
    ASSERT_EQ(md_sdp_answer_setup(MD_SDP_SETUP_ACTIVE), MD_SDP_SETUP_PASSIVE);
    ASSERT_EQ(md_sdp_answer_setup(MD_SDP_SETUP_PASSIVE), MD_SDP_SETUP_ACTIVE);
}

/* A small valid offer; the cases below each break one thing. */
static const char base[] =
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE a v\r\n"
    "a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:"
    "77:88:99:AA:BB:CC:DD:EE:FF\r\n"
    "a=ice-ufrag:uf01\r\na=ice-pwd:pppppppppppppppppppppp\r\na=setup:actpass\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:a\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n";

struct bad_case {
    const char *from, *to; /* one replacement in base */
    int code;
    const char *reason;
};

static const struct bad_case bad_cases[] = {
    {"v=0", "v=1", -MD_E_SDP_INVALID, "v=0"},
    {"s=-\r\n", "s=-\r\nbogus\r\n", -MD_E_SDP_INVALID, "<type>=<value>"},
    {"a=group:BUNDLE a v\r\n", "", -MD_E_BUNDLE_REQUIRED, "BUNDLE"},
    {"a=group:BUNDLE a v", "a=group:BUNDLE a", -MD_E_BUNDLE_REQUIRED, "not in the BUNDLE"},
    {"a=mid:v\r\na=rtcp-mux\r\n", "a=mid:v\r\n", -MD_E_BUNDLE_REQUIRED, "rtcp-mux"},
    {"a=group:BUNDLE a v", "a=group:BUNDLE x a v", -MD_E_SDP_INVALID, "BUNDLE tag"},
    {"EE:FF\r\n", "EE\r\n", -MD_E_SDP_INVALID, "fingerprint"},
    {"a=fingerprint:sha-256", "a=fingerprint:md5", -MD_E_SDP_INVALID, "fingerprint"},
    {"a=ice-ufrag:uf01", "a=ice-ufrag:u", -MD_E_SDP_INVALID, "ice-ufrag"},
    {"a=ice-pwd:pppppppppppppppppppppp", "a=ice-pwd:short", -MD_E_SDP_INVALID, "ice-pwd"},
    {"a=ice-pwd:pppppppppppppppppppppp\r\n", "", -MD_E_SDP_INVALID, "ice-pwd"},
    {"a=setup:actpass", "a=setup:holdconn", -MD_E_SDP_INVALID, "setup"},
    {"a=setup:actpass\r\n", "", -MD_E_SDP_INVALID, "setup"},
    {"SAVPF 96", "SAVPF 128", -MD_E_SDP_INVALID, "payload type"},
    {"SAVPF 96", "SAVPF 96 96", -MD_E_SDP_INVALID, "duplicate payload"},
    {"SAVPF 96", "SAVPF", -MD_E_SDP_INVALID, "m-line"},
    {"a=mid:v", "a=mid:a", -MD_E_SDP_INVALID, "duplicate a=mid"},
    {"a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP8/0", -MD_E_SDP_INVALID, "clock"},
    {"a=rtpmap:96 VP8/90000", "a=ssrc:99999999999 cname:x", -MD_E_SDP_INVALID, "ssrc"},
    {"a=rtpmap:96 VP8/90000", "a=extmap:15 urn:x", -MD_E_SDP_INVALID, "extmap"},
    {"UDP/TLS/RTP/SAVPF 111", "RTP/AVP 111", -MD_E_SDP_UNSUPPORTED, "UDP/TLS/RTP/SAVPF"},
    {"m=audio 9", "m=audio 0", -MD_E_SDP_INVALID, "BUNDLE tag"},
    {"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:a\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2",
     "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:a", -MD_E_SDP_UNSUPPORTED,
     "no audio"},
    {"o=- 1 1", "o=- 1", -MD_E_SDP_INVALID, "o="},
};

static int try_parse(const char *text, size_t len, char *err, size_t err_len)
{
    md_sdp *sdp = NULL;
    int r = md_sdp_parse(text, len, 65536, &sdp, err, err_len);
    if (r == 0)
        r = md_sdp_check_offer(sdp, err, err_len);
    md_sdp_free(sdp);
    return r;
}

static void test_refused(void)
{
    char err[256];
    ASSERT_OK(try_parse(base, strlen(base), err, sizeof(err)));
    for (size_t i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        const struct bad_case *bc = &bad_cases[i];
        GString *s = g_string_new(base);
        ASSERT(g_string_replace(s, bc->from, bc->to, 1) == 1);
        err[0] = '\0';
        int r = try_parse(s->str, s->len, err, sizeof(err));
        if (r != bc->code || !strstr(err, bc->reason))
            MD_FAIL("case %zu (%s -> %s): got %s \"%s\"", i, bc->from, bc->to, md_err_code(r), err);
        g_string_free(s, TRUE);
    }
}

/* RFC 8841: only UDP/DTLS/SCTP webrtc-datachannel is served; the legacy
 * DTLS/SCTP form and other application m-lines are rejected with port 0. */
static void test_data_channel_lines(void)
{
    static const struct {
        const char *mline, *attrs;
        int index;
        uint16_t port;
        uint64_t max;
    } cases[] = {
        {"m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "a=sctp-port:5001\r\n", 2, 5001, 0},
        {"m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "a=max-message-size:0\r\n", 2, 5000,
         UINT64_MAX},
        {"m=application 9 DTLS/SCTP 5000", "a=sctpmap:5000 webrtc-datachannel 1024\r\n", 2, 5000,
         0},
        {"m=application 9 DTLS/SCTP 5000", "", -1, 0, 0},
        {"m=application 9 DTLS/SCTP 5000", "a=sctpmap:5000 bfcp 1\r\n", -1, 0, 0},
        {"m=application 9 UDP/DTLS/SCTP bfcp", "", -1, 0, 0},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        GString *text = g_string_new(base);
        g_string_replace(text, "a=group:BUNDLE a v", "a=group:BUNDLE a v d", 1);
        g_string_append_printf(text, "%s\r\na=mid:d\r\n%s", cases[i].mline, cases[i].attrs);
        md_sdp *offer = NULL;
        char err[256];
        ASSERT_OK(md_sdp_parse(text->str, text->len, 65536, &offer, err, sizeof(err)));
        ASSERT_OK(md_sdp_check_offer(offer, err, sizeof(err)));
        md_sdp_choice c;
        ASSERT_OK(md_sdp_choose(offer, "VP8", &c, err, sizeof(err)));
        ASSERT_EQ(c.data_index, cases[i].index);
        md_sdp_answer_params p = {.ice_ufrag = "abcd",
                                  .ice_pwd = "0123456789abcdefghijklmn",
                                  .fingerprint = "sha-256 00",
                                  .cname = "x",
                                  .stream_id = "y"};
        char *answer = NULL;
        ASSERT_OK(md_sdp_answer(offer, &c, &p, &answer));
        if (cases[i].index >= 0) {
            ASSERT_EQ(c.remote_sctp_port, cases[i].port);
            ASSERT_EQ(c.remote_max_message_size, cases[i].max);
            ASSERT(strstr(answer, "a=group:BUNDLE a v d\r\n"));
            if (c.data_legacy) { /* answered in the form offered (RFC 3264 6) */
                ASSERT(strstr(answer, "m=application 9 DTLS/SCTP 5000\r\n"));
                ASSERT(strstr(answer, "a=sctpmap:5000 webrtc-datachannel 1024\r\n"
                                      "a=max-message-size:65536\r\n"));
            } else {
                ASSERT(strstr(answer, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"));
                ASSERT(strstr(answer, "a=sctp-port:5000\r\na=max-message-size:65536\r\n"));
            }
        } else {
            ASSERT(strstr(answer, "a=group:BUNDLE a v\r\n"));
            ASSERT(strstr(answer, "m=application 0 "));
            ASSERT(!strstr(answer, "a=sctp-port"));
        }
        g_free(answer);
        md_sdp_free(offer);
        g_string_free(text, TRUE);
    }
    ASSERT_EQ(try_parse("v=0\r\na=sctp-port:5000\r\n", 24, NULL, 0), -MD_E_SDP_INVALID);
}

static void test_limits(void)
{
    char err[256];
    md_sdp *sdp = (md_sdp *)0x1; /* must stay untouched on failure */
    ASSERT_EQ(md_sdp_parse("", 0, 65536, &sdp, err, sizeof(err)), -MD_E_SDP_INVALID);
    ASSERT_EQ(md_sdp_parse(base, strlen(base), 100, &sdp, err, sizeof(err)), -MD_E_SDP_INVALID);
    ASSERT(sdp == (md_sdp *)0x1);
    char with_nul[sizeof(base)];
    memcpy(with_nul, base, sizeof(base));
    with_nul[20] = '\0';
    ASSERT_EQ(try_parse(with_nul, sizeof(base) - 1, err, sizeof(err)), -MD_E_SDP_INVALID);

    GString *s = g_string_new(base);
    g_string_append(s, "a=x:");
    for (int i = 0; i < 1100; i++)
        g_string_append_c(s, 'y');
    ASSERT_EQ(try_parse(s->str, s->len, err, sizeof(err)), -MD_E_SDP_INVALID);
    ASSERT(strstr(err, "longer"));
    g_string_assign(s, base);
    for (int i = 0; i < 7; i++)
        g_string_append_printf(s, "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:x%d\r\n", i);
    ASSERT_EQ(try_parse(s->str, s->len, err, sizeof(err)), -MD_E_SDP_INVALID);
    ASSERT(strstr(err, "too many m-lines"));
    g_string_assign(s, base);
    for (int i = 0; i < MD_SDP_MAX_CANDIDATES + 1; i++)
        g_string_append_printf(s, "a=candidate:%d 1 udp 1 127.0.0.1 %d typ host\r\n", i, 1000 + i);
    ASSERT_EQ(try_parse(s->str, s->len, err, sizeof(err)), -MD_E_SDP_INVALID);
    ASSERT(strstr(err, "candidate"));
    g_string_assign(s, "v=0\r\n");
    for (int i = 0; i < MD_SDP_MAX_LINES + 1; i++)
        g_string_append(s, "a=x\r\n");
    ASSERT_EQ(md_sdp_parse(s->str, s->len, MD_SDP_MAX_BYTES, &sdp, err, sizeof(err)),
              -MD_E_SDP_INVALID);
    ASSERT(strstr(err, "lines"));
    /* bare LF line ends are accepted (RFC 8866 5) */
    g_string_assign(s, base);
    g_string_replace(s, "\r\n", "\n", 0);
    ASSERT_OK(try_parse(s->str, s->len, err, sizeof(err)));
    g_string_free(s, TRUE);
}

int main(void)
{
    RUN(test_chromium_offer);
    RUN(test_firefox_offer);
    RUN(test_codec_choice);
    RUN(test_answer);
    RUN(test_setup_roles);
    RUN(test_refused);
    RUN(test_data_channel_lines);
    RUN(test_limits);
    return 0;
}
