/*
 * The seam between a verification session and the media plane
 * (gateway/md_media.h).  Commands are posted to the session's media worker;
 * answers, candidates and connection state come back through
 * md_sessions_on_media_event() on the control thread.
 */
#include "md_err.h"
#include "md_server_private.h"

int md_session_media_open(md_server *srv, md_session *s)
{
    if (!srv->media)
        return -MD_E_MEDIA;
    s->media_open = true;
    return 0;
}

int md_session_media_offer(md_server *srv, md_session *s, md_leg leg, const char *sdp)
{
    (void)leg;
    (void)sdp;
    if (!srv->media || !s->media_open)
        return -MD_E_MEDIA;
    return -MD_E_MEDIA;
}

int md_session_media_candidate(md_server *srv, md_session *s, md_leg leg, const char *candidate,
                               const char *mid)
{
    (void)leg;
    (void)candidate;
    (void)mid;
    if (!srv->media || !s->media_open)
        return -MD_E_MEDIA;
    return -MD_E_MEDIA;
}

void md_session_media_close(md_server *srv, md_session *s)
{
    s->media_open = false;
}
