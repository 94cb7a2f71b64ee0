/*
 * libFuzzer harness for the SDP reader and everything that consumes its
 * output: the WebRTC checks, codec choice and the answer writer.  Built with
 * -fsanitize=fuzzer when meson's "fuzzing" option is on; otherwise
 * replay.c feeds it the committed corpus (tests/fuzz/media/corpus/sdp) as an
 * ordinary test.
 */
#include "md_sdp.h"

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const codecs[] = {"VP8", "H264", "VP9", "AV1", NULL};
    char err[256];
    md_sdp *sdp = NULL;
    if (md_sdp_parse((const char *)data, size, MD_SDP_MAX_BYTES, &sdp, err, sizeof(err)) < 0)
        return 0;
    md_sdp_transport t;
    md_sdp_bundle_transport(sdp, &t);
    if (md_sdp_check_offer(sdp, err, sizeof(err)) == 0) {
        const char *codec = NULL;
        md_sdp_choose_video_codec(codecs, sdp, "a", sdp, "b", &codec, err, sizeof(err));
        md_sdp_choice choice;
        if (codec && md_sdp_choose(sdp, codec, &choice, err, sizeof(err)) == 0) {
            const char *cands[] = {"candidate:1 1 udp 1 127.0.0.1 9 typ host"};
            md_sdp_answer_params p = {
                .ice_ufrag = "uuuu",
                .ice_pwd = "pppppppppppppppppppppp",
                .fingerprint = "sha-256 00",
                .setup = md_sdp_answer_setup(t.setup),
                .candidates = cands,
                .n_candidates = 1,
                .cname = "c",
                .stream_id = "s",
                .audio_ssrc = 1,
                .video_ssrc = 2,
            };
            char *text = NULL;
            if (md_sdp_answer(sdp, &choice, &p, &text) == 0)
                g_free(text);
        }
    }
    md_sdp_free(sdp);
    return 0;
}
