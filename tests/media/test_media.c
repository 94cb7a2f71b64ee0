/*
 * md_media's contract without a real peer: argument and capacity checks,
 * offers refused synchronously with a reason, the codec rule (no answer
 * until both offers are in; both answered with one codec, or both legs fail
 * with codec_mismatch), the answer's transport (our fingerprint, host
 * candidates on the bind address, the 1:1 NAT address when configured), and
 * no events after close.  Real peers are in aiortc_relay.py.
 */
#include "md_err.h"
#include "md_media.h"
#include "md_test.h"

#include <glib.h>

struct recorder {
    GPtrArray *events; /* "type leg error" strings */
    GPtrArray *answers;
};

static int open_session(md_media *m, const char *id, const char *const *codecs)
{
    return md_media_session_open(m, id, &(md_media_session_options){.video_codecs = codecs});
}

static const char *type_name(md_media_event_type t)
{
    static const char *const names[] = {"answer",       "candidate", "connected",
                                        "disconnected", "failed",    "quality"};
    return names[t];
}

static void on_event(const md_media_event *ev, void *ud)
{
    struct recorder *rec = ud;
    g_ptr_array_add(rec->events,
                    g_strdup_printf("%s %s %s %s %s", ev->session_id, type_name(ev->type),
                                    md_leg_name(ev->leg), ev->error ? md_err_code(ev->error) : "-",
                                    ev->error_detail ? ev->error_detail : ""));
    if (ev->type == MD_MEDIA_ANSWER)
        g_ptr_array_add(rec->answers, g_strdup(ev->sdp));
}

static void load_config(md_config *cfg, const char *public_address)
{
    ASSERT_OK(md_config_load(NULL, cfg, NULL));
    g_free(cfg->media.bind_address);
    cfg->media.bind_address = g_strdup("127.0.0.1");
    g_free(cfg->media.public_address);
    cfg->media.public_address = g_strdup(public_address ? public_address : "");
    cfg->media.workers = 1; /* FIFO order across sessions: used as a barrier below */
    cfg->media.max_sessions = 3;
}

static char *fixture(const char *name)
{
    const char *root = getenv("MD_SOURCE_ROOT");
    char *path = g_build_filename(root ? root : ".", "tests", "media", "data", name, NULL);
    char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        MD_FAIL("cannot read %s", path);
    g_free(path);
    return text;
}

/* Runs the control context until n events were recorded (bounded). */
static void wait_events(struct recorder *rec, guint n)
{
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    while (rec->events->len < n && g_get_monotonic_time() < deadline)
        g_main_context_iteration(NULL, TRUE);
    if (rec->events->len < n)
        MD_FAIL("only %u of %u events arrived", rec->events->len, n);
}

static bool has_event(struct recorder *rec, const char *prefix)
{
    for (guint i = 0; i < rec->events->len; i++)
        if (g_str_has_prefix(g_ptr_array_index(rec->events, i), prefix))
            return true;
    return false;
}

static void offer(md_media *m, const char *sid, md_leg leg, const char *text)
{
    char *detail = NULL;
    int r = md_media_leg_offer(m, sid, leg, text, strlen(text), &detail);
    if (r < 0)
        MD_FAIL("offer refused: %s (%s)", md_err_code(r), detail);
}

static void test_arguments(void)
{
    md_config cfg;
    md_media *m = NULL;
    struct recorder rec = {g_ptr_array_new_with_free_func(g_free),
                           g_ptr_array_new_with_free_func(g_free)};
    load_config(&cfg, NULL);
    cfg.media.port_min = 50000; /* a range needs both ends */
    ASSERT_EQ(md_media_new(&cfg, g_main_context_default(), on_event, &rec, &m), -MD_E_CONFIG);
    ASSERT(m == NULL);
    cfg.media.port_min = 0;
    ASSERT_OK(md_media_new(&cfg, g_main_context_default(), on_event, &rec, &m));
    ASSERT(g_str_has_prefix(md_media_fingerprint(m), "sha-256 "));

    const char *vp8[] = {"VP8", NULL}, *bad[] = {"VP8", "THEORA", NULL}, *none[] = {NULL};
    ASSERT_EQ(open_session(m, "s", bad), -EINVAL);
    ASSERT_EQ(open_session(m, "s", none), -EINVAL);
    ASSERT_EQ(open_session(m, "", vp8), -EINVAL);
    ASSERT_EQ(open_session(m, "bad\nid", vp8), -EINVAL);
    ASSERT_OK(open_session(m, "s1", vp8));
    ASSERT_EQ(open_session(m, "s1", vp8), -EEXIST);
    ASSERT_OK(open_session(m, "s2", vp8));
    ASSERT_OK(open_session(m, "s3", vp8));
    ASSERT_EQ(open_session(m, "s4", vp8), -MD_E_MEDIA_CAPACITY); /* media.max_sessions */

    char *detail = NULL;
    ASSERT_EQ(md_media_leg_offer(m, "nope", MD_LEG_TABLET, "v=0", 3, &detail),
              -MD_E_SESSION_UNKNOWN);
    ASSERT_EQ(md_media_leg_offer(m, "s1", MD_LEG_TABLET, "x=0", 3, &detail), -MD_E_SDP_INVALID);
    ASSERT(detail && strstr(detail, "v=0"));
    g_free(detail);
    detail = NULL;
    const char *no_bundle = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n";
    ASSERT_EQ(md_media_leg_offer(m, "s1", MD_LEG_TABLET, no_bundle, strlen(no_bundle), &detail),
              -MD_E_BUNDLE_REQUIRED);
    g_free(detail);
    ASSERT_EQ(md_media_leg_offer(m, "s1", MD_LEG_TABLET, "v=0", 3, NULL), -MD_E_BUNDLE_REQUIRED);

    ASSERT_EQ(md_media_leg_candidate(m, "s1", MD_LEG_TABLET, "rubbish", NULL), -EINVAL);
    ASSERT_EQ(md_media_leg_candidate(m, "s1", MD_LEG_TABLET, "candidate:1 1 udp\n", NULL), -EINVAL);
    ASSERT_OK(md_media_leg_candidate(m, "s1", MD_LEG_TABLET,
                                     "candidate:1 1 udp 1 127.0.0.1 9 typ host", "0"));
    ASSERT_OK(md_media_leg_candidate(m, "s1", MD_LEG_TABLET, NULL, NULL));
    ASSERT_EQ(md_media_leg_candidate(m, "nope", MD_LEG_TABLET, NULL, NULL), -MD_E_SESSION_UNKNOWN);
    ASSERT_OK(md_media_session_close(m, "s1"));
    ASSERT_EQ(md_media_session_close(m, "s1"), -MD_E_SESSION_UNKNOWN);
    ASSERT_OK(open_session(m, "s1", vp8)); /* the id is free again */
    md_media_free(m);                      /* with sessions still open */
    ASSERT_EQ(rec.events->len, 0);
    md_config_clear(&cfg);
    g_ptr_array_unref(rec.events);
    g_ptr_array_unref(rec.answers);
}

static void test_codec_rule(void)
{
    md_config cfg;
    md_media *m;
    struct recorder rec = {g_ptr_array_new_with_free_func(g_free),
                           g_ptr_array_new_with_free_func(g_free)};
    char *chrome = fixture("chromium_offer.sdp"), *firefox = fixture("firefox_offer.sdp");
    load_config(&cfg, NULL);
    ASSERT_OK(md_media_new(&cfg, g_main_context_default(), on_event, &rec, &m));

    const char *h264[] = {"H264", "VP8", NULL}, *av1[] = {"AV1", NULL};
    ASSERT_OK(open_session(m, "ok", h264));
    ASSERT_OK(open_session(m, "refused", av1));
    offer(m, "ok", MD_LEG_TABLET, chrome);
    /* Barrier: the refusal below is produced after "ok"'s tablet offer was
     * handled (one worker, FIFO), and that offer alone must not be answered. */
    offer(m, "refused", MD_LEG_TABLET, chrome);
    offer(m, "refused", MD_LEG_VERIFIER, firefox);
    wait_events(&rec, 2);
    ASSERT_EQ(rec.answers->len, 0);
    ASSERT(has_event(&rec, "refused failed tablet codec_mismatch no common video codec: policy "
                           "allows AV1; tablet offers VP8 H264 VP9; verifier offers VP8 H264 VP9"));
    ASSERT(has_event(&rec, "refused failed verifier codec_mismatch"));
    /* A later offer on a refused session fails again, without an answer. */
    offer(m, "refused", MD_LEG_TABLET, chrome);
    wait_events(&rec, 3);
    ASSERT(has_event(&rec, "refused failed tablet codec_mismatch the session was refused"));

    offer(m, "ok", MD_LEG_VERIFIER, firefox);
    wait_events(&rec, 5);
    ASSERT_EQ(rec.answers->len, 2);
    ASSERT(has_event(&rec, "ok answer tablet"));
    ASSERT(has_event(&rec, "ok answer verifier"));
    for (guint i = 0; i < 2; i++) {
        const char *a = g_ptr_array_index(rec.answers, i);
        ASSERT(strstr(a, "H264/90000"));
        ASSERT(!strstr(a, "VP8/90000"));
        ASSERT(strstr(a, "opus/48000/2"));
        ASSERT(strstr(a, md_media_fingerprint(m)));
        ASSERT(strstr(a, "a=setup:passive"));
        ASSERT(strstr(a, " 127.0.0.1 ")); /* host candidate on the bind address */
    }
    ASSERT_OK(md_media_session_close(m, "ok"));
    guint before = rec.events->len;
    /* nothing arrives for a closed session, even what was already queued */
    for (int i = 0; i < 50; i++)
        g_main_context_iteration(NULL, FALSE);
    for (guint i = before; i < rec.events->len; i++)
        ASSERT(!g_str_has_prefix(g_ptr_array_index(rec.events, i), "ok "));
    md_media_free(m);
    g_free(chrome);
    g_free(firefox);
    md_config_clear(&cfg);
    g_ptr_array_unref(rec.events);
    g_ptr_array_unref(rec.answers);
}

/* 1:1 NAT: host candidates are advertised with the public address. */
static void test_public_address(void)
{
    md_config cfg;
    md_media *m;
    struct recorder rec = {g_ptr_array_new_with_free_func(g_free),
                           g_ptr_array_new_with_free_func(g_free)};
    char *chrome = fixture("chromium_offer.sdp");
    load_config(&cfg, "192.0.2.10"); /* TEST-NET-1: only written into SDP, never used */
    ASSERT_OK(md_media_new(&cfg, g_main_context_default(), on_event, &rec, &m));
    const char *vp8[] = {"VP8", NULL};
    ASSERT_OK(open_session(m, "nat", vp8));
    offer(m, "nat", MD_LEG_TABLET, chrome);
    offer(m, "nat", MD_LEG_VERIFIER, chrome);
    wait_events(&rec, 2);
    ASSERT_EQ(rec.answers->len, 2);
    const char *a = g_ptr_array_index(rec.answers, 0);
    ASSERT(strstr(a, " 192.0.2.10 "));
    ASSERT(!strstr(a, "127.0.0.1")); /* not even as raddr */
    md_media_free(m);
    g_free(chrome);
    md_config_clear(&cfg);
    g_ptr_array_unref(rec.events);
    g_ptr_array_unref(rec.answers);
}

static char *answer_attr(const char *sdp, const char *attr)
{
    const char *p = strstr(sdp, attr);
    ASSERT(p);
    return g_strndup(p, strcspn(p, "\r\n"));
}

/* A second offer with new ICE credentials restarts ICE (RFC 8445 9): the new
 * answer has new credentials, a higher o= version, the same certificate and
 * codec.  A later offer without the session's codec fails that leg. */
static void test_restart_and_renegotiation(void)
{
    md_config cfg;
    md_media *m;
    struct recorder rec = {g_ptr_array_new_with_free_func(g_free),
                           g_ptr_array_new_with_free_func(g_free)};
    char *chrome = fixture("chromium_offer.sdp");
    load_config(&cfg, NULL);
    ASSERT_OK(md_media_new(&cfg, g_main_context_default(), on_event, &rec, &m));
    const char *vp8[] = {"VP8", NULL};
    ASSERT_OK(open_session(m, "r", vp8));
    offer(m, "r", MD_LEG_TABLET, chrome);
    offer(m, "r", MD_LEG_VERIFIER, chrome);
    wait_events(&rec, 2);
    const char *first = g_ptr_array_index(rec.answers, 0);
    ASSERT(strstr(first, "o=- ") && strstr(first, " 1 IN IP4"));

    GString *restart = g_string_new(chrome);
    g_string_replace(restart, "a=ice-ufrag:Vq8e", "a=ice-ufrag:Zz9y", 0);
    g_string_replace(restart, "a=ice-pwd:XbE6rY1o8Aq4CqNf3mTtKqZP",
                     "a=ice-pwd:NewPasswordNewPassword00", 0);
    offer(m, "r", MD_LEG_TABLET, restart->str);
    wait_events(&rec, 3);
    ASSERT(has_event(&rec, "r answer tablet"));
    const char *second = g_ptr_array_index(rec.answers, 2);
    char *u1 = answer_attr(first, "a=ice-ufrag:"), *u2 = answer_attr(second, "a=ice-ufrag:");
    ASSERT(strcmp(u1, u2) != 0);
    ASSERT(strstr(second, " 2 IN IP4")); /* o= version grows */
    ASSERT(strstr(second, md_media_fingerprint(m)));
    ASSERT(strstr(second, "VP8/90000"));
    g_free(u1);
    g_free(u2);

    GString *no_vp8 = g_string_new(chrome);
    g_string_replace(no_vp8, "a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP7/90000", 0);
    offer(m, "r", MD_LEG_VERIFIER, no_vp8->str);
    wait_events(&rec, 4);
    ASSERT(has_event(&rec, "r failed verifier codec_mismatch offer lacks the session's video "
                           "codec VP8"));
    md_media_free(m);
    g_string_free(restart, TRUE);
    g_string_free(no_vp8, TRUE);
    g_free(chrome);
    md_config_clear(&cfg);
    g_ptr_array_unref(rec.events);
    g_ptr_array_unref(rec.answers);
}

int main(void)
{
    RUN(test_arguments);
    RUN(test_codec_rule);
    RUN(test_public_address);
    RUN(test_restart_and_renegotiation);
    return 0;
}
