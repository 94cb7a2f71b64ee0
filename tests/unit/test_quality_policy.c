/* Quality thresholds: parsing and the warnings raised for a leg's figures. */
#include "md_err.h"
#include "md_quality_policy.h"
#include "md_test.h"

static json_t *stats(void)
{
    /* the shape of a media-plane quality report (docs/internals/media.md) */
    return json_loads("{\"leg\": \"tablet\", \"video\": {\"kbps\": 250.0, \"fps\": 29.97,"
                      " \"width\": 640, \"height\": 480, \"loss_pct\": 7.5, \"jitter_ms\": 12.0},"
                      " \"audio\": {\"kbps\": 32.0}, \"rtt_ms\": null}",
                      0, NULL);
}

static md_quality_thresholds parse(const char *text)
{
    json_t *obj = json_loads(text, 0, NULL);
    md_quality_thresholds t;
    const char *why = NULL;
    ASSERT_OK(md_quality_thresholds_parse(obj, &t, &why));
    json_decref(obj);
    return t;
}

static bool has(json_t *warnings, const char *code)
{
    size_t i;
    json_t *w;
    json_array_foreach (warnings, i, w) {
        if (strcmp(json_string_value(json_object_get(w, "code")), code) == 0)
            return true;
    }
    return false;
}

static void test_no_thresholds_no_warnings(void)
{
    md_quality_thresholds t = parse("{}");
    ASSERT(!md_quality_thresholds_any(&t));
    json_t *s = stats(), *w = md_quality_warnings(&t, s);
    ASSERT_EQ(json_array_size(w), 0);
    json_decref(w);
    json_decref(s);
}

static void test_each_threshold(void)
{
    md_quality_thresholds t =
        parse("{\"min_video_kbps\": 300, \"min_fps\": 15, \"min_width\": 1280,"
              " \"min_height\": 720, \"max_loss_pct\": 5, \"max_jitter_ms\": 30,"
              " \"max_rtt_ms\": 200}");
    ASSERT(md_quality_thresholds_any(&t));
    json_t *s = stats(), *w = md_quality_warnings(&t, s);
    ASSERT(has(w, "video_bitrate_low"));
    ASSERT(!has(w, "frame_rate_low"));
    ASSERT(has(w, "resolution_low"));
    ASSERT(has(w, "loss_high"));
    ASSERT(!has(w, "jitter_high"));
    ASSERT(!has(w, "rtt_high")); /* no RTT measured yet: nothing to judge */
    json_t *first = json_array_get(w, 0);
    ASSERT(json_real_value(json_object_get(first, "value")) == 250.0);
    ASSERT(json_real_value(json_object_get(first, "limit")) == 300.0);
    json_decref(w);
    json_decref(s);
}

static void test_missing_figures_raise_nothing(void)
{
    md_quality_thresholds t = parse("{\"min_width\": 640, \"max_rtt_ms\": 100}");
    json_t *s = json_loads("{\"video\": {\"kbps\": 10}}", 0, NULL); /* no keyframe yet */
    json_t *w = md_quality_warnings(&t, s);
    ASSERT_EQ(json_array_size(w), 0);
    json_decref(w);
    json_decref(s);
}

static void test_parse_errors(void)
{
    static const char *const bad[] = {
        "[]",
        "{\"min_kbps\": 1}",
        "{\"min_width\": 1.5}",
        "{\"min_fps\": 0}",
        "{\"max_loss_pct\": 101}",
        "{\"max_rtt_ms\": \"x\"}",
        "{\"min_height\": -1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *obj = json_loads(bad[i], 0, NULL);
        md_quality_thresholds t = {.min_fps = 42};
        const char *why = NULL;
        ASSERT_EQ(md_quality_thresholds_parse(obj, &t, &why), -MD_E_CONFIG);
        ASSERT(why != NULL);
        ASSERT(t.min_fps == 42); /* untouched on failure */
        json_decref(obj);
    }
}

int main(void)
{
    RUN(test_no_thresholds_no_warnings);
    RUN(test_each_threshold);
    RUN(test_missing_figures_raise_nothing);
    RUN(test_parse_errors);
    return 0;
}
