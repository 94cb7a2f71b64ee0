/*
 * Chat on the control thread (DESIGN 4: "persisted to the session transcript,
 * then relayed").  A chat message arrives from a leg's media worker as an
 * MD_MEDIA_CHAT event, already validated by md_dc_parse().  It is appended
 * to the session's encrypted transcript (core/md_evidence, fsynced), then
 * audited as "chat" with its id, leg and SHA-256 -- never its text -- and
 * only when both are durable is md_media_chat_deliver() posted, which relays
 * it to the other leg and acknowledges it to the sender.  A message that
 * cannot be stored or audited is not relayed and not acknowledged.
 * Files (MD_MEDIA_FILE) come already committed to the evidence store by the
 * worker; they are audited as "file" {id, sha256, size, mime, leg} -- never
 * the name, which may be personal data -- and only then offered to the other
 * leg with md_media_file_deliver().
 * Everything here runs on the control thread.
 */
#include "md_err.h"
#include "md_log.h"
#include "md_server_private.h"
#include "md_time.h"

#include <string.h>

void md_session_chat_received(md_server *srv, md_session *s, const md_media_event *ev)
{
    md_party *p = s->leg[ev->leg];
    const char *actor = p ? p->actor : "system";
    if (!ev->chat_id || !ev->chat_text || !ev->chat_sha256)
        return;
    /* The transcript record: one JSON object per message. */
    json_t *record =
        json_pack("{s:s, s:s, s:I, s:I, s:s, s:s}", "leg", md_leg_name(ev->leg), "id", ev->chat_id,
                  "ts", (json_int_t)ev->chat_ts, "received_ms", (json_int_t)md_now_ms(), "sha256",
                  ev->chat_sha256, "text", ev->chat_text);
    char *text = record ? json_dumps(record, JSON_COMPACT) : NULL;
    json_decref(record);
    int64_t seq =
        text ? md_evidence_chat_append(srv->evidence, s->id, text, strlen(text)) : -MD_E_INTERNAL;
    if (text) {
        md_wipe(text, strlen(text));
        free(text);
    }
    if (seq < 0) {
        md_error("chat", "transcript_append_failed", "{s:s, s:s, s:s}", "session", s->id, "leg",
                 md_leg_name(ev->leg), "error", md_strerror((int)seq));
        md_server_audit(srv, actor, "chat_failed", s->municipality, s->post_office, s->id,
                        json_pack("{s:s, s:s, s:s}", "id", ev->chat_id, "leg", md_leg_name(ev->leg),
                                  "code", md_err_code((int)seq)));
        return;
    }
    if (md_server_audit(srv, actor, "chat", s->municipality, s->post_office, s->id,
                        json_pack("{s:s, s:s, s:s, s:I}", "id", ev->chat_id, "sha256",
                                  ev->chat_sha256, "leg", md_leg_name(ev->leg), "transcript_seq",
                                  (json_int_t)seq)) < 0)
        return; /* audit durable before acknowledgement */
    md_leg to = ev->leg == MD_LEG_TABLET ? MD_LEG_VERIFIER : MD_LEG_TABLET;
    int r = md_media_chat_deliver(srv->media, s->id, to, ev->chat_id, ev->chat_ts, ev->chat_text);
    if (r < 0)
        md_error("chat", "deliver_failed", "{s:s, s:s}", "session", s->id, "error", md_strerror(r));
}

void md_session_channel_refused(md_server *srv, md_session *s, const md_media_event *ev)
{
    md_party *p = s->leg[ev->leg];
    /* The label is the client's text: logged at debug, not audited. */
    md_debug("chat", "channel_refused", "{s:s, s:s, s:s}", "session", s->id, "leg",
             md_leg_name(ev->leg), "label", ev->label ? ev->label : "");
    md_server_audit(srv, p ? p->actor : "system", "datachannel_refused", s->municipality,
                    s->post_office, s->id,
                    json_pack("{s:s, s:s}", "leg", md_leg_name(ev->leg), "code",
                              md_err_code(ev->error ? ev->error : -MD_E_DC_REFUSED)));
}

void md_session_file_received(md_server *srv, md_session *s, const md_media_event *ev)
{
    md_party *p = s->leg[ev->leg];
    if (!ev->file_id || !ev->file_sha256 || !ev->file_mime || !ev->file_name)
        return;
    if (md_server_audit(srv, p ? p->actor : "system", "file", s->municipality, s->post_office,
                        s->id,
                        json_pack("{s:s, s:s, s:I, s:s, s:s}", "id", ev->file_id, "sha256",
                                  ev->file_sha256, "size", (json_int_t)ev->file_size, "mime",
                                  ev->file_mime, "leg", md_leg_name(ev->leg))) < 0)
        return; /* audit durable before the file is offered on */
    md_leg to = ev->leg == MD_LEG_TABLET ? MD_LEG_VERIFIER : MD_LEG_TABLET;
    int r = md_media_file_deliver(srv->media, s->id, to, ev->file_id, ev->file_name, ev->file_size,
                                  ev->file_mime, ev->file_sha256);
    if (r < 0)
        md_error("file", "deliver_failed", "{s:s, s:s}", "session", s->id, "error", md_strerror(r));
}
