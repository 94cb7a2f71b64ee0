/*
 * The seam between a verification session and the media plane
 * (gateway/md_media.h).  Commands are posted to the session's media worker;
 * answers, candidates and connection state come back through
 * md_sessions_on_media_event() on the control thread.
 */
#include "md_crypto.h"
#include "md_err.h"
#include "md_server_private.h"
#include "md_time.h"

#include <string.h>

/* Both legs must share one video codec (nothing is transcoded); the
 * preference follows DESIGN.md section 4: VP8, then H.264 constrained
 * baseline for iPad/Safari tablets, VP9 and AV1 passed through. */
static const char *const video_codecs[] = {"VP8", "H264", "VP9", "AV1", NULL};

int md_session_media_open(md_server *srv, md_session *s)
{
    md_policy policy;
    int r = md_registry_policy(srv->store, s->municipality, &policy);
    if (r < 0)
        return r;
    /* Files: the municipality's cap and types; the worker writes into the
     * server's evidence store (opened before and freed after md_media). */
    md_media_session_options opt = {
        .video_codecs = video_codecs,
        .require_srtp_gcm = policy.require_srtp_gcm,
        .evidence = srv->evidence,
        .max_file_size = (uint64_t)policy.max_file_mb << 20,
        .file_types = (const char *const *)policy.file_types,
        .max_chat_bytes = (size_t)policy.chat_max_bytes,
    };
    s->quality = policy.quality;
    r = md_media_session_open(srv->media, s->id, &opt); /* copies file_types */
    md_policy_clear(&policy);
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

/*
 * TURN servers for the clients (RFC 8656), with time-limited credentials in
 * the scheme coturn calls use-auth-secret: username "<expiry>:<session>",
 * password base64(HMAC-SHA1(secret, username)).  The credential expires with
 * turn.ttl_seconds and names the session, so a leaked one is of little use.
 */
json_t *md_session_ice_servers(md_server *srv, const md_session *s)
{
    json_t *list = json_array();
    const char *urls = srv->cfg->turn.urls;
    if (!urls || !*urls)
        return list;
    json_t *server = json_object();
    json_t *url_array = json_array();
    g_auto(GStrv) parts = g_strsplit_set(urls, " ,", -1);
    for (char **u = parts; *u; u++)
        if (**u)
            json_array_append_new(url_array, json_string(*u));
    json_object_set_new(server, "urls", url_array);
    const char *secret = srv->cfg->turn.secret;
    if (secret && *secret) {
        int64_t expiry = md_now_ms() / 1000 + srv->cfg->turn.ttl_seconds;
        g_autofree char *username = g_strdup_printf("%lld:%s", (long long)expiry, s->id);
        uint8_t mac[MD_HMAC_MAX_LEN];
        size_t mac_len = 0;
        if (md_hmac("SHA1", secret, strlen(secret), username, strlen(username), mac, &mac_len) ==
            0) {
            g_autofree char *credential = g_base64_encode(mac, mac_len);
            json_object_set_new(server, "username", json_string(username));
            json_object_set_new(server, "credential", json_string(credential));
        }
    }
    json_array_append_new(list, server);
    return list;
}
