/*
 * A municipality's video/audio quality thresholds (security_policy.quality)
 * and their evaluation against the media plane's per-second figures
 * (docs/internals/media.md, "Quality").  Identity verification needs a
 * picture good enough to read a document and see a face (BSI TR-03147 and
 * BaFin RS 3/2017 ask to abort on inadequate quality); the gateway warns the
 * verifier, who decides.  Pure functions: safe from any thread.
 */
#ifndef MD_QUALITY_POLICY_H
#define MD_QUALITY_POLICY_H

#include <jansson.h>
#include <stdbool.h>

/* 0 means "no threshold". */
typedef struct md_quality_thresholds {
    double min_video_kbps;
    double min_fps;
    int min_width;
    int min_height;
    double max_loss_pct;
    double max_jitter_ms;
    double max_rtt_ms;
} md_quality_thresholds;

/* Parses the policy object; unknown keys and bad values are refused with a
 * static text naming the threshold in *ret_why.  *ret untouched on failure. */
int md_quality_thresholds_parse(json_t *obj, md_quality_thresholds *ret, const char **ret_why);

bool md_quality_thresholds_any(const md_quality_thresholds *t);

/*
 * The warnings for one leg's figures (the `stats` object of a quality event):
 * an array of {"code", "value", "limit"} with codes video_bitrate_low,
 * frame_rate_low, resolution_low, loss_high, jitter_high, rtt_high.  Figures
 * absent from stats (no keyframe yet, no RTT yet) raise nothing.  Never NULL.
 */
json_t *md_quality_warnings(const md_quality_thresholds *t, json_t *stats);

#endif
