/*
 * The seam between a verification session and the media plane
 * (gateway/md_media.h).  Commands are posted to the session's media worker;
 * answers, candidates and connection state come back through
 * md_sessions_on_media_event() on the control thread.
 */
#include "md_err.h"
#include "md_server_private.h"

#include <string.h>

/* Both legs must share one video codec (nothing is transcoded); the
 * preference follows DESIGN.md section 4: VP8, then H.264 constrained
 * baseline for iPad/Safari tablets, VP9 and AV1 passed through. */
static const char *const video_codecs[] = {"VP8", "H264", "VP9", "AV1", NULL};

int md_session_media_open(md_server *srv, md_session *s)
{
    int r = md_media_session_open(srv->media, s->id, video_codecs);
    if (r == 0)
        s->media_open = true;
    return r;
}

int md_session_media_offer(md_server *srv, md_session *s, md_leg leg, const char *sdp,
                           char **ret_detail)
{
    if (!s->media_open)
        return -MD_E_SESSION_STATE;
    return md_media_leg_offer(srv->media, s->id, leg, sdp, strlen(sdp), ret_detail);
}

int md_session_media_candidate(md_server *srv, md_session *s, md_leg leg, const char *candidate,
                               const char *mid)
{
    if (!s->media_open)
        return -MD_E_SESSION_STATE;
    return md_media_leg_candidate(srv->media, s->id, leg, candidate, mid);
}

void md_session_media_close(md_server *srv, md_session *s)
{
    if (s->media_open)
        md_media_session_close(srv->media, s->id);
    s->media_open = false;
}
