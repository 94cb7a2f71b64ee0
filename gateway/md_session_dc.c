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
 *
 * Files (DESIGN 4) are received here too, and the worker owns the evidence
 * writer of each incoming file: md_evidence is safe to share across threads
 * (its key cache is locked) and a writer belongs to one thread, so the
 * plaintext never crosses threads and back-pressure is SCTP's own receive
 * window (the worker writes each chunk before reading the next).  The cost
 * is that md_evidence_file_commit()'s fsync runs on the worker loop, once
 * per file.  Offer -> md_dc_file_rx_new (policy size cap, allowed types) ->
 * file_accept | file_refuse{code}; chunks -> md_dc_file_rx_chunk (order,
 * magic bytes, SHA-256) -> md_evidence_file_write; file_done ->
 * md_dc_file_rx_finish (hash) -> commit -> MD_MEDIA_FILE.  Any error sends
 * file_error{code} and aborts the writer: nothing is stored.  The control
 * thread audits, then md_session_file_deliver() reads the file back from the
 * store into memory (bounded by the policy's file cap, wiped when freed),
 * offers it to the other leg, streams it on file_accept with
 * buffered-amount-low flow control, and sends file_verified to the sender.
 */
#include "md_session.h"
#include "md_err.h"
#include "md_log.h"

#include <errno.h>
#include <string.h>

#define SCTP_TICK_MS 10
#define FILE_SEND_CHUNK 16384 /* payload per binary message: under any peer's 64 KiB */
/* The read-back buffer of an outgoing file; the policy cap (at most 100 MB)
 * is below it, so it only guards against a corrupt store. */
#define FILE_READ_MAX ((size_t)256 << 20)

struct md_file_in {
    md_dc_msg offer;
    md_dc_file_rx *rx;
    md_evidence_file *writer;
};

struct md_file_out {
    md_dc_msg offer;     /* as sent to the leg */
    GByteArray *data;    /* plaintext read back from the store, wiped when freed */
    bool accepted, done; /* done: file_done sent, awaiting the receiver's answer */
    uint64_t sent;
};

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

/* ---- files ---- */

void md_session_file_clear(md_session_file *f)
{
    g_free(f->id);
    g_free(f->name);
    g_free(f->mime);
    g_free(f->sha256);
    memset(f, 0, sizeof(*f));
}

static md_dc_limits file_limits(const md_session *s)
{
    return (md_dc_limits){.max_file_size = s->files.max_file_size,
                          .allowed_mime = (const char *const *)s->files.file_types};
}

static void send_file_answer(md_leg_ctx *leg, md_dc_msg_type type, const char *id, int error)
{
    md_dc_msg m = {.type = type};
    g_strlcpy(m.id, id, sizeof(m.id));
    if (error)
        g_strlcpy(m.code, md_err_code(error), sizeof(m.code));
    int r = md_dc_send_file_msg(leg->dc, &m);
    if (r < 0)
        md_debug("datachannel", "file_answer_failed", "{s:s, s:s}", "session", leg->session->id,
                 "error", md_err_code(r));
}

static void file_in_free(md_file_in *in)
{
    if (!in)
        return;
    md_evidence_file_abort(in->writer); /* nothing stored unless committed */
    md_dc_file_rx_free(in->rx);
    g_free(in);
}

static void file_out_free(md_file_out *out)
{
    if (!out)
        return;
    if (out->data) {
        md_wipe(out->data->data, out->data->len);
        g_byte_array_unref(out->data);
    }
    g_free(out);
}

/* Ends the incoming transfer with file_error{code}; the writer is aborted. */
static void file_in_fail(md_leg_ctx *leg, int error)
{
    md_debug("datachannel", "file_failed", "{s:s, s:s, s:s}", "session", leg->session->id, "leg",
             md_leg_name(leg->which), "error", md_err_code(error));
    send_file_answer(leg, MD_DC_FILE_ERROR, leg->file_in->offer.id, error);
    file_in_free(leg->file_in);
    leg->file_in = NULL;
}

static void on_file_offer(md_leg_ctx *leg, const md_dc_msg *offer)
{
    md_session *s = leg->session;
    md_dc_limits lim = file_limits(s);
    md_file_in *in = NULL;
    int r;

    if (leg->file_in || !s->files.evidence) {
        r = -MD_E_DC_REFUSED; /* one file at a time; or no store */
        goto out;
    }
    in = g_new0(md_file_in, 1);
    in->offer = *offer;
    in->offer.text = NULL;
    if ((r = md_dc_file_rx_new(offer, &lim, &in->rx)) < 0)
        goto out;
    if ((r = md_evidence_file_begin(s->files.evidence, s->id, offer->id, &in->writer)) < 0)
        goto out;
    leg->file_in = in;
    in = NULL;
    send_file_answer(leg, MD_DC_FILE_ACCEPT, offer->id, 0);
out:
    if (r < 0) {
        md_debug("datachannel", "file_refused", "{s:s, s:s, s:s}", "session", s->id, "leg",
                 md_leg_name(leg->which), "error", md_err_code(r));
        send_file_answer(leg, MD_DC_FILE_REFUSE, offer->id, r);
    }
    file_in_free(in);
}

static void on_file_done(md_leg_ctx *leg)
{
    md_file_in *in = leg->file_in;
    uint8_t digest[MD_SHA256_LEN];
    char hex[MD_SHA256_HEX_LEN + 1];
    int r = md_dc_file_rx_finish(in->rx, digest);
    if (r < 0) {
        file_in_fail(leg, r);
        return;
    }
    md_evidence_file *w = in->writer;
    in->writer = NULL;
    if ((r = md_evidence_file_commit(w, NULL)) < 0) {
        file_in_fail(leg, r);
        return;
    }
    md_hex_encode(digest, sizeof(digest), hex);
    emit(leg, (md_media_event){.type = MD_MEDIA_FILE,
                               .file_id = in->offer.id,
                               .file_name = in->offer.name,
                               .file_size = in->offer.size,
                               .file_mime = in->offer.mime,
                               .file_sha256 = hex});
    file_in_free(in);
    leg->file_in = NULL;
}

/* Sends chunks until the buffer is full (on_file_writable resumes), then
 * file_done. */
static void pump_file_out(md_leg_ctx *leg)
{
    md_file_out *out = leg->file_out;
    if (!out || !out->accepted || out->done)
        return;
    while (out->sent < out->data->len) {
        size_t n = MIN((size_t)(out->data->len - out->sent), (size_t)FILE_SEND_CHUNK);
        int r = md_dc_send_file_chunk(leg->dc, out->offer.index, out->sent,
                                      out->data->data + out->sent, n);
        if (r == -EAGAIN)
            return;
        if (r < 0) {
            md_debug("datachannel", "file_send_failed", "{s:s, s:s}", "session", leg->session->id,
                     "error", md_err_code(r));
            file_out_free(leg->file_out);
            leg->file_out = NULL;
            return;
        }
        out->sent += n;
    }
    md_dc_msg done = {.type = MD_DC_FILE_DONE};
    memcpy(done.id, out->offer.id, sizeof(done.id));
    if (md_dc_send_file_msg(leg->dc, &done) == -EAGAIN)
        return; /* the last chunk filled the buffer: on_file_writable retries */
    out->done = true;
    /* The receiver's file_verified / file_error only ends the transfer. */
    md_wipe(out->data->data, out->data->len);
    g_byte_array_set_size(out->data, 0);
}

/* A message from the leg about the file we offered it. */
static void on_file_out_answer(md_leg_ctx *leg, const md_dc_msg *m)
{
    md_file_out *out = leg->file_out;
    if (!out || strcmp(out->offer.id, m->id) != 0)
        return;
    if (m->type == MD_DC_FILE_ACCEPT && !out->accepted) {
        out->accepted = true;
        pump_file_out(leg);
        return;
    }
    if (m->type == MD_DC_FILE_REFUSE || m->type == MD_DC_FILE_ERROR ||
        m->type == MD_DC_FILE_VERIFIED || m->type == MD_DC_FILE_CANCEL) {
        md_debug("datachannel", "file_delivered", "{s:s, s:s, s:s, s:s}", "session",
                 leg->session->id, "leg", md_leg_name(leg->which), "result",
                 md_dc_type_name(m->type), "code", m->code);
        file_out_free(out);
        leg->file_out = NULL;
    }
}

static int collect(const uint8_t *buf, size_t len, void *ud)
{
    GByteArray *a = ud;
    if (len > (size_t)FILE_READ_MAX - a->len)
        return -MD_E_FILE_TOO_LARGE;
    g_byte_array_append(a, buf, (guint)len);
    return 0;
}

void md_session_file_deliver(md_session_host *host, const char *id, md_leg to_leg,
                             const md_session_file *f)
{
    md_session *s = g_hash_table_lookup(host->sessions, id);
    if (!s)
        return;
    md_leg_ctx *to = &s->legs[to_leg], *from = md_leg_other(to);
    md_file_out *out = NULL;
    int r;

    /* Stored and audited by now: the sender may show it as verified. */
    md_dc_msg verified = {.type = MD_DC_FILE_VERIFIED};
    g_strlcpy(verified.id, f->id, sizeof(verified.id));
    g_strlcpy(verified.sha256, f->sha256, sizeof(verified.sha256));
    if ((r = md_dc_send_file_msg(from->dc, &verified)) < 0)
        md_debug("datachannel", "file_verified_failed", "{s:s, s:s}", "session", s->id, "error",
                 md_err_code(r));

    if (to->file_out || !md_dc_file_ready(to->dc) || !s->files.evidence) {
        r = to->file_out ? -EBUSY : -ENOTCONN;
        goto out;
    }
    out = g_new0(md_file_out, 1);
    out->data = g_byte_array_sized_new((guint)MIN(f->size, (uint64_t)FILE_READ_MAX));
    if ((r = md_evidence_file_read(s->files.evidence, s->id, f->id, collect, out->data)) < 0)
        goto out;
    if (out->data->len != f->size) {
        r = -MD_E_EVIDENCE_CORRUPT;
        goto out;
    }
    out->offer = (md_dc_msg){.type = MD_DC_FILE_OFFER,
                             .index = ++to->next_file_index,
                             .size = f->size,
                             .kind = MD_DC_KIND_FILE};
    g_strlcpy(out->offer.id, f->id, sizeof(out->offer.id));
    g_strlcpy(out->offer.name, f->name, sizeof(out->offer.name));
    g_strlcpy(out->offer.mime, f->mime, sizeof(out->offer.mime));
    g_strlcpy(out->offer.sha256, f->sha256, sizeof(out->offer.sha256));
    if ((r = md_dc_send_file_msg(to->dc, &out->offer)) < 0)
        goto out;
    to->file_out = out;
    out = NULL;
out:
    if (r < 0)
        md_debug("datachannel", "file_offer_failed", "{s:s, s:s, s:s}", "session", s->id, "leg",
                 md_leg_name(to_leg), "error", md_err_code(r));
    file_out_free(out);
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

static void on_dc_file(const md_dc_msg *m, void *ud)
{
    md_leg_ctx *leg = ud;
    md_file_in *in = leg->file_in;
    switch (m->type) {
    case MD_DC_FILE_OFFER:
        on_file_offer(leg, m);
        break;
    case MD_DC_FILE_DONE:
        if (in && strcmp(in->offer.id, m->id) == 0)
            on_file_done(leg);
        break;
    case MD_DC_FILE_CANCEL:
        if (in && strcmp(in->offer.id, m->id) == 0) {
            file_in_free(in);
            leg->file_in = NULL;
            break;
        }
        on_file_out_answer(leg, m);
        break;
    default: /* accept, refuse, verified, error: about what we offered */
        on_file_out_answer(leg, m);
        break;
    }
}

static void on_dc_file_chunk(const uint8_t *buf, size_t len, void *ud)
{
    md_leg_ctx *leg = ud;
    const uint8_t *payload;
    size_t n;
    if (!leg->file_in)
        return; /* after a failure the sender may still be sending */
    int r = md_dc_file_rx_chunk(leg->file_in->rx, buf, len, &payload, &n);
    if (r == 0)
        r = md_evidence_file_write(leg->file_in->writer, payload, n);
    if (r < 0)
        file_in_fail(leg, r);
}

static void on_dc_file_writable(void *ud)
{
    pump_file_out(ud);
}

static const md_dc_callbacks dc_callbacks = {
    .send = on_dc_send,
    .on_chat = on_dc_chat,
    .on_chat_writable = on_dc_chat_writable,
    .on_refused = on_dc_refused,
    .on_file = on_dc_file,
    .on_file_chunk = on_dc_file_chunk,
    .on_file_writable = on_dc_file_writable,
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
        .limits = file_limits(leg->session),
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
    /* A transfer cut by the association's end leaves nothing stored. */
    file_in_free(leg->file_in);
    leg->file_in = NULL;
    file_out_free(leg->file_out);
    leg->file_out = NULL;
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
