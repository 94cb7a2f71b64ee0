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
 * worker; each gets a row in the evidence table (with its name) and is
 * audited as "file" {id, sha256, size, mime, leg, kind, width?, height?} --
 * never the name, which may be personal data -- and only then offered to the
 * other leg with md_media_file_deliver().  Refused and failed transfers
 * (MD_MEDIA_FILE_FAILED) are audited as "file_refused" {id, leg, kind, code}.
 * A still is asked for by the verifier (signaling "still"): audited "still"
 * {id}, expected on the tablet's file channel under that id, and announced
 * to both parties.
 * Everything here runs on the control thread.
 */
#include "md_err.h"
#include "md_log.h"
#include "md_sealed.h"
#include "md_server_private.h"
#include "md_time.h"

#include <stdlib.h>
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

/* The audit detail of a file: identifiers and hashes, never the name. */
static json_t *file_detail(const md_media_event *ev)
{
    const md_media_file *f = &ev->file;
    json_t *d = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "id", f->id, "sha256", f->sha256,
                          "size", (json_int_t)f->size, "mime", f->mime, "leg", md_leg_name(ev->leg),
                          "kind", f->still ? "still" : "file");
    if (d && f->still) {
        json_object_set_new(d, "width", json_integer(f->width));
        json_object_set_new(d, "height", json_integer(f->height));
    }
    return d;
}

void md_session_file_received(md_server *srv, md_session *s, const md_media_event *ev)
{
    md_party *p = s->leg[ev->leg];
    const md_media_file *f = &ev->file;
    if (!f->id || !f->sha256 || !f->mime || !f->name)
        return;
    /* The name may be personal data: sealed for its row (core/md_sealed.h). */
    g_autofree char *context = g_strconcat("evidence.name:", s->id, "/", f->id, NULL);
    char *sealed_name = NULL;
    int r = md_store_seal(srv->store, context, f->name, &sealed_name);
    if (r < 0) {
        md_error("file", "evidence_row_failed", "{s:s, s:s}", "session", s->id, "error",
                 md_strerror(r));
        return;
    }
    r = md_store_exec(
        srv->store,
        "INSERT INTO evidence (session_id, file_id, leg, kind, name, mime, size, sha256, width, "
        "height, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        MD_PARAMS(MD_P_TEXT(s->id), MD_P_TEXT(f->id), MD_P_TEXT(md_leg_name(ev->leg)),
                  MD_P_TEXT(f->still ? "still" : "file"), MD_P_TEXT(sealed_name),
                  MD_P_TEXT(f->mime), MD_P_INT(f->size), MD_P_TEXT(f->sha256),
                  f->still ? MD_P_INT(f->width) : MD_P_NULL,
                  f->still ? MD_P_INT(f->height) : MD_P_NULL, MD_P_INT(md_now_ms())));
    free(sealed_name);
    if (r < 0) {
        md_error("file", "evidence_row_failed", "{s:s, s:s}", "session", s->id, "error",
                 md_strerror(r));
        return;
    }
    if (md_server_audit(srv, p ? p->actor : "system", "file", s->municipality, s->post_office,
                        s->id, file_detail(ev)) < 0) {
        /* Not offered on without its audit entry; the row goes with it. */
        md_store_exec(srv->store, "DELETE FROM evidence WHERE session_id = ? AND file_id = ?",
                      MD_PARAMS(MD_P_TEXT(s->id), MD_P_TEXT(f->id)));
        return;
    }
    md_leg to = ev->leg == MD_LEG_TABLET ? MD_LEG_VERIFIER : MD_LEG_TABLET;
    r = md_media_file_deliver(srv->media, s->id, to, f);
    if (r < 0)
        md_error("file", "deliver_failed", "{s:s, s:s}", "session", s->id, "error", md_strerror(r));
}

void md_session_file_failed(md_server *srv, md_session *s, const md_media_event *ev)
{
    md_party *p = s->leg[ev->leg];
    md_server_audit(srv, p ? p->actor : "system", "file_refused", s->municipality, s->post_office,
                    s->id,
                    json_pack("{s:s, s:s, s:s, s:s}", "id", ev->file.id ? ev->file.id : "", "leg",
                              md_leg_name(ev->leg), "kind", ev->file.still ? "still" : "file",
                              "code", md_err_code(ev->error ? ev->error : -MD_E_INTERNAL)));
}

void md_session_still_request(md_server *srv, md_session *s, md_party *verifier, const char *re)
{
    md_party *tablet = s->leg[MD_LEG_TABLET];
    if (s->state != MD_STATE_LIVE || !tablet) {
        md_party_send_error(verifier, -MD_E_SESSION_STATE, "the session is not live", re, s->id);
        return;
    }
    char id[32];
    g_snprintf(id, sizeof(id), "still-%u", ++s->stills);
    int r = md_media_still_expect(srv->media, s->id, id);
    if (r == 0 && md_server_audit(srv, verifier->actor, "still", s->municipality, s->post_office,
                                  s->id, json_pack("{s:s}", "id", id)) < 0)
        r = -MD_E_INTERNAL;
    if (r < 0) {
        md_party_send_error(verifier, r, "the still could not be requested", re, s->id);
        return;
    }
    md_party_send(tablet,
                  json_pack("{s:s, s:s, s:s}", "type", "still", "session", s->id, "id", id));
    md_party_send(verifier,
                  json_pack("{s:s, s:s, s:s}", "type", "still", "session", s->id, "id", id));
}
