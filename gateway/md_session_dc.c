/*
 * The data channels of a session's legs, on the media worker (see
 * md_session.h and md_dc.h).  A leg gets an md_dc once its DTLS is connected
 * and its offer carried a data m-line; SCTP packets go out through
 * md_dtls_send_data() and come in through the DTLS on_data callback.  Chat is
 * never relayed from here directly: a chat message becomes an MD_MEDIA_CHAT
 * event; the control thread persists and audits it and only then posts
 * md_session_chat_deliver(), which sends it to the other leg and the
 * chat_ack to the sender (DESIGN 4).  Chat for a leg whose chat channel is not
 * open yet waits in leg->chat_queue, bounded by cfg.chat_queue (the oldest is
 * dropped beyond).  usrsctp's timers are driven by one 10 ms timer per worker
 * while any leg of the worker has an association.  Free order on a leg:
 * md_dc (which aborts SCTP through the still-alive DTLS) before md_dtls.
 */
#include "md_session.h"
#include "md_err.h"
#include "md_log.h"

#include <errno.h>
#include <string.h>

#define SCTP_TICK_MS 10

typedef struct queued_chat {
    char id[MD_DC_ID_MAX + 1];
    int64_t ts;
    char *text;
} queued_chat;

static void queued_chat_free(gpointer data)
{
    queued_chat *q = data;
    md_wipe(q->text, strlen(q->text));
    g_free(q->text);
    g_free(q);
}

static void emit(md_leg_ctx *leg, md_media_event ev)
{
    ev.session_id = leg->session->id;
    ev.leg = leg->which;
    md_event_sink_post(leg->session->host->sink, &ev, leg->session->serial);
}

static gboolean on_sctp_tick(gpointer data)
{
    (void)data;
    md_sctp_tick();
    return G_SOURCE_CONTINUE;
}

static void flush_chat(md_leg_ctx *leg)
{
    while (!g_queue_is_empty(&leg->chat_queue) && md_dc_chat_ready(leg->dc)) {
        queued_chat *q = g_queue_peek_head(&leg->chat_queue);
        int r = md_dc_send_chat(leg->dc, q->id, q->ts, q->text);
        if (r == -EAGAIN || r == -ENOTCONN)
            return; /* on_chat_writable comes back */
        if (r < 0)
            md_debug("datachannel", "chat_send_failed", "{s:s, s:s}", "session", leg->session->id,
                     "error", md_err_code(r));
        queued_chat_free(g_queue_pop_head(&leg->chat_queue));
    }
}

/* ---- md_dc callbacks ---- */

static void on_dc_send(const uint8_t *buf, size_t len, void *ud)
{
    md_leg_ctx *leg = ud;
    if (leg->dtls)
        md_dtls_send_data(leg->dtls, buf, len); /* a lost packet is retransmitted by SCTP */
}

static void on_dc_chat(const md_dc_msg *chat, const char *sha256, void *ud)
{
    emit(ud, (md_media_event){.type = MD_MEDIA_CHAT,
                              .chat_id = chat->id,
                              .chat_ts = chat->ts,
                              .chat_text = chat->text,
                              .chat_sha256 = sha256});
}

static void on_dc_chat_writable(void *ud)
{
    flush_chat(ud);
}

static void on_dc_refused(const char *label, uint16_t stream, int error, void *ud)
{
    (void)stream;
    emit(ud, (md_media_event){.type = MD_MEDIA_CHANNEL_REFUSED, .error = error, .label = label});
}

static const md_dc_callbacks dc_callbacks = {
    .send = on_dc_send,
    .on_chat = on_dc_chat,
    .on_chat_writable = on_dc_chat_writable,
    .on_refused = on_dc_refused,
};

/* ---- legs ---- */

void md_session_dc_start(md_leg_ctx *leg)
{
    md_session_host *host = leg->session->host;
    if (leg->dc || leg->choice.data_index < 0 || !leg->dtls || !md_dtls_connected(leg->dtls))
        return;
    md_dc_options opt = {
        .sctp = {.local_port = MD_SCTP_PORT,
                 .remote_port = leg->choice.remote_sctp_port,
                 .max_send_message_size =
                     leg->choice.remote_max_message_size > MD_SCTP_HARD_MAX_MESSAGE
                         ? MD_SCTP_HARD_MAX_MESSAGE
                         : (size_t)leg->choice.remote_max_message_size,
                 .max_receive_message_size = host->cfg.max_message_size},
        /* RFC 8832 6: the stream parity follows the DTLS role. */
        .dtls_client = md_sdp_answer_setup(leg->remote.setup) == MD_SDP_SETUP_ACTIVE,
    };
    int r = md_dc_new(&opt, host->ctx, &dc_callbacks, leg, &leg->dc);
    if (r == 0) {
        r = md_dc_start(leg->dc);
        host->n_dc++;
        if (!host->sctp_timer) {
            host->sctp_timer = g_timeout_source_new(SCTP_TICK_MS);
            g_source_set_callback(host->sctp_timer, on_sctp_tick, NULL, NULL);
            g_source_attach(host->sctp_timer, host->ctx);
        }
    }
    /* Media goes on without data channels; the client sees its channels fail. */
    if (r < 0)
        md_debug("datachannel", "sctp_start_failed", "{s:s, s:s, s:s}", "session", leg->session->id,
                 "leg", md_leg_name(leg->which), "error", md_err_code(r));
}

void md_session_dc_input(md_leg_ctx *leg, const uint8_t *buf, size_t len)
{
    if (leg->dc)
        md_dc_input(leg->dc, buf, len);
}

void md_session_dc_release(md_leg_ctx *leg)
{
    md_session_host *host = leg->session->host;
    if (!leg->dc)
        return;
    leg->dc = md_dc_free(leg->dc);
    if (--host->n_dc == 0 && host->sctp_timer) {
        g_source_destroy(host->sctp_timer);
        g_clear_pointer(&host->sctp_timer, g_source_unref);
    }
}

void md_session_dc_clear(md_leg_ctx *leg)
{
    g_queue_clear_full(&leg->chat_queue, queued_chat_free);
}

void md_session_chat_deliver(md_session_host *host, const char *id, md_leg to_leg,
                             const char *chat_id, int64_t ts, const char *text)
{
    md_session *s = g_hash_table_lookup(host->sessions, id);
    if (!s)
        return;
    md_leg_ctx *to = &s->legs[to_leg], *from = md_leg_other(to);
    while (g_queue_get_length(&to->chat_queue) >= host->cfg.chat_queue) {
        md_debug("datachannel", "chat_queue_full", "{s:s, s:s}", "session", s->id, "leg",
                 md_leg_name(to->which));
        queued_chat_free(g_queue_pop_head(&to->chat_queue));
    }
    queued_chat *q = g_new0(queued_chat, 1);
    g_strlcpy(q->id, chat_id, sizeof(q->id));
    q->ts = ts;
    q->text = g_strdup(text);
    g_queue_push_tail(&to->chat_queue, q);
    flush_chat(to);
    /* Stored and audited by now: the sender may show it as sent. */
    int r = md_dc_send_chat_ack(from->dc, chat_id);
    if (r < 0)
        md_debug("datachannel", "chat_ack_failed", "{s:s, s:s}", "session", s->id, "error",
                 md_err_code(r));
}
