/*
 * Quality thresholds: one table maps each policy key to a field and to the
 * figure of the quality report it limits (see md_quality_policy.h).
 */
#include "md_quality_policy.h"
#include "md_err.h"

#include <glib.h>
#include <stddef.h>
#include <string.h>

enum bound { AT_LEAST, AT_MOST };

static const struct threshold {
    const char *key; /* policy key */
    size_t offset;   /* double or int field of md_quality_thresholds */
    bool is_int;
    double max;          /* largest sensible limit */
    const char *path[2]; /* the figure in stats: {"video", "kbps"} or {"rtt_ms", NULL} */
    enum bound bound;
    const char *code; /* the warning */
    const char *bad;  /* error text for a bad value */
} thresholds[] = {
#define T(key, type, max, p0, p1, bound, code, bad)                                                \
    {                                                                                              \
#key, offsetof(md_quality_thresholds, key), type, max, {p0, p1 }, bound, code, bad         \
    }
    T(min_video_kbps, false, 100000, "video", "kbps", AT_LEAST, "video_bitrate_low",
      "\"min_video_kbps\" must be a number above 0, at most 100000"),
    T(min_fps, false, 120, "video", "fps", AT_LEAST, "frame_rate_low",
      "\"min_fps\" must be a number above 0, at most 120"),
    T(min_width, true, 8192, "video", "width", AT_LEAST, "resolution_low",
      "\"min_width\" must be an integer from 1 to 8192"),
    T(min_height, true, 8192, "video", "height", AT_LEAST, "resolution_low",
      "\"min_height\" must be an integer from 1 to 8192"),
    T(max_loss_pct, false, 100, "video", "loss_pct", AT_MOST, "loss_high",
      "\"max_loss_pct\" must be a number above 0, at most 100"),
    T(max_jitter_ms, false, 10000, "video", "jitter_ms", AT_MOST, "jitter_high",
      "\"max_jitter_ms\" must be a number above 0, at most 10000"),
    T(max_rtt_ms, false, 10000, "rtt_ms", NULL, AT_MOST, "rtt_high",
      "\"max_rtt_ms\" must be a number above 0, at most 10000"),
#undef T
};

static double limit_of(const md_quality_thresholds *t, const struct threshold *d)
{
    const char *field = (const char *)t + d->offset;
    return d->is_int ? *(const int *)field : *(const double *)field;
}

int md_quality_thresholds_parse(json_t *obj, md_quality_thresholds *ret, const char **ret_why)
{
    md_quality_thresholds t = {0};
    const char *key;
    json_t *v;
    if (!json_is_object(obj)) {
        *ret_why = "must be an object";
        return -MD_E_CONFIG;
    }
    json_object_foreach (obj, key, v) {
        const struct threshold *d = NULL;
        for (size_t i = 0; i < G_N_ELEMENTS(thresholds) && !d; i++)
            if (strcmp(thresholds[i].key, key) == 0)
                d = &thresholds[i];
        if (!d) {
            *ret_why = "unknown threshold (min_video_kbps, min_fps, min_width, min_height, "
                       "max_loss_pct, max_jitter_ms, max_rtt_ms)";
            return -MD_E_CONFIG;
        }
        double x = json_number_value(v);
        if (!json_is_number(v) || (d->is_int && !json_is_integer(v)) || x <= 0 || x > d->max) {
            *ret_why = d->bad;
            return -MD_E_CONFIG;
        }
        char *field = (char *)&t + d->offset;
        if (d->is_int)
            *(int *)field = (int)x;
        else
            *(double *)field = x;
    }
    *ret = t;
    return 0;
}

bool md_quality_thresholds_any(const md_quality_thresholds *t)
{
    for (size_t i = 0; i < G_N_ELEMENTS(thresholds); i++)
        if (limit_of(t, &thresholds[i]) > 0)
            return true;
    return false;
}

json_t *md_quality_warnings(const md_quality_thresholds *t, json_t *stats)
{
    json_t *warnings = json_array();
    for (size_t i = 0; i < G_N_ELEMENTS(thresholds); i++) {
        const struct threshold *d = &thresholds[i];
        double limit = limit_of(t, d);
        json_t *figure = json_object_get(stats, d->path[0]);
        if (d->path[1])
            figure = json_object_get(figure, d->path[1]);
        if (limit <= 0 || !json_is_number(figure))
            continue;
        double x = json_number_value(figure);
        if (d->bound == AT_LEAST ? x >= limit : x <= limit)
            continue;
        json_array_append_new(
            warnings, json_pack("{s:s, s:f, s:f}", "code", d->code, "value", x, "limit", limit));
    }
    return warnings;
}
