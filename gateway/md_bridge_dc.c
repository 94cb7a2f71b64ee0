/*
 * The data channels of a session's legs, on the media worker (see
 * md_bridge.h and md_dc.h).  A leg gets an md_dc once its DTLS is connected
 * and its offer carried a data m-line; SCTP packets go out through
 * md_dtls_send_data() and come in through the DTLS on_data callback.  Chat is
 * never relayed from here directly: a chat message becomes an MD_MEDIA_CHAT
 * event; the control thread persists and audits it and only then posts
 * md_bridge_chat_deliver(), which sends it to the other leg and the
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
 * per file.  Offer -> md_dc_file_rx_new (policy size cap, allowed types; a
 * still only under the id the verifier asked for) -> file_accept |
 * file_refuse{code}; chunks -> md_dc_file_rx_chunk (order, magic bytes,
 * SHA-256) -> md_evidence_file_write, with file_progress to the sender;
 * file_done -> md_dc_file_rx_finish (hash; a still's size against its image
 * header) -> commit -> MD_MEDIA_FILE.  Any error sends file_error{code},
 * aborts the writer (nothing is stored) and posts MD_MEDIA_FILE_FAILED for
 * the audit.  The control thread records and audits, then
 * md_bridge_file_deliver() sends file_verified to the sender and queues the
 * file for the other leg, which is offered one file at a time and gets it
 * streamed from the store (md_evidence_reader, one 64 KiB chunk held) as its
 * SCTP send buffer drains.
 */
#include "md_bridge.h"
#include "md_err.h"
#include "md_image.h"
#include "md_log.h"

#include <errno.h>
#include <string.h>

#define SCTP_TICK_MS 10
#define FILE_SEND_CHUNK 16384 /* payload per binary message: under any peer's 64 KiB */
#define FILE_PROGRESS_BYTES ((uint64_t)1 << 20)
#define FILE_PROGRESS_US G_USEC_PER_SEC
#define MD_FILE_FAILURES_REPORTED 32

struct md_file_in {
    md_dc_msg offer;
    md_dc_file_rx *rx;
    md_evidence_file *writer;
    uint64_t progress_bytes; /* as of the last file_progress */
    gint64 progress_us;
    GByteArray *head; /* a still's first MD_IMAGE_HEAD_MAX bytes, for its size */
};

struct md_file_out {
    md_owned_file file; /* as stored and audited */
    uint32_t offer_index;
    md_evidence_reader *reader; /* NULL once file_done is sent */
    const uint8_t *chunk;       /* the reader's current chunk */
    size_t chunk_len, pos;
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
        queued_chat *sent = g_queue_pop_head(&leg->chat_queue);
        if (r < 0) {
            md_debug("datachannel", "chat_send_failed", "{s:s, s:s}", "session", leg->session->id,
                     "error", md_err_code(r));
            queued_chat_free(sent);
            continue;
        }
        /* Kept until the client acknowledges it, to be sent again on the
         * leg's next association if this one ends first. */
        if (g_queue_get_length(&leg->chat_unacked) >= leg->session->host->cfg.chat_queue)
            queued_chat_free(g_queue_pop_head(&leg->chat_unacked));
        g_queue_push_tail(&leg->chat_unacked, sent);
    }
}

static gint chat_id_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(((const queued_chat *)a)->id, b);
}

static void on_dc_chat_ack(const char *id, void *ud)
{
    md_leg_ctx *leg = ud;
    GList *l = g_queue_find_custom(&leg->chat_unacked, id, chat_id_cmp);
    if (l) {
        queued_chat_free(l->data);
        g_queue_delete_link(&leg->chat_unacked, l);
    }
}

/* ---- files ---- */

static void session_file_free(gpointer data)
{
    md_owned_file_clear(data);
    g_free(data);
}

static md_dc_limits file_limits(const md_bridge *s)
{
    return (md_dc_limits){.max_chat_bytes = s->files.max_chat_bytes,
                          .max_file_size = s->files.max_file_size,
                          .allowed_mime = (const char *const *)s->files.file_types};
}

static void send_file_msg(md_leg_ctx *leg, md_dc_msg_type type, const char *id, int error,
                          uint64_t bytes)
{
    md_dc_msg m = {.type = type, .bytes = bytes};
    g_strlcpy(m.id, id, sizeof(m.id));
    if (error)
        g_strlcpy(m.code, md_err_code(error), sizeof(m.code));
    int r = md_dc_send_file_msg(leg->dc, &m);
    if (r < 0)
        md_debug("datachannel", "file_message_failed", "{s:s, s:s, s:s}", "session",
                 leg->session->id, "type", md_dc_type_name(type), "error", md_err_code(r));
}

/* An offer refused or a transfer that failed: reported for the audit, at
 * most MD_FILE_FAILURES_REPORTED times per leg so that a client sending
 * refused offers in a loop cannot flood the audit trail. */
static void report_file_failed(md_leg_ctx *leg, const char *id, bool still, int error)
{
    md_debug("datachannel", "file_failed", "{s:s, s:s, s:s}", "session", leg->session->id, "leg",
             md_leg_name(leg->which), "error", md_err_code(error));
    if (leg->file_failures++ >= MD_FILE_FAILURES_REPORTED)
        return;
    emit(leg, (md_media_event){.type = MD_MEDIA_FILE_FAILED,
                               .error = error,
                               .file = {.id = id, .still = still}});
}

static void file_in_free(md_file_in *in)
{
    if (!in)
        return;
    md_evidence_file_abort(in->writer); /* nothing stored unless committed */
    md_dc_file_rx_free(in->rx);
    if (in->head)
        g_byte_array_unref(in->head);
    g_free(in);
}

/* Ends the incoming transfer with file_error{code}; the writer is aborted. */
static void file_in_fail(md_leg_ctx *leg, int error)
{
    md_file_in *in = leg->file_in;
    send_file_msg(leg, MD_DC_FILE_ERROR, in->offer.id, error, 0);
    report_file_failed(leg, in->offer.id, in->offer.kind == MD_DC_KIND_STILL, error);
    file_in_free(in);
    leg->file_in = NULL;
}

/* A still is accepted only from the tablet, once, for the id of the
 * verifier's last request (md_bridge_still_expect). */
static int check_still(md_leg_ctx *leg, const md_dc_msg *offer)
{
    if (offer->kind != MD_DC_KIND_STILL)
        return 0;
    if (leg->which != MD_LEG_TABLET || strcmp(leg->still_id, offer->id) != 0)
        return -MD_E_STILL_NOT_REQUESTED;
    leg->still_id[0] = '\0';
    return 0;
}

static void on_file_offer(md_leg_ctx *leg, const md_dc_msg *offer)
{
    md_bridge *s = leg->session;
    md_dc_limits lim = file_limits(s);
    md_file_in *in = NULL;
    int r;

    if (leg->file_in || !s->files.evidence) {
        r = -MD_E_DC_REFUSED; /* one file at a time; or no store */
        goto out;
    }
    if ((r = check_still(leg, offer)) < 0)
        goto out;
    in = g_new0(md_file_in, 1);
    in->offer = *offer;
    in->offer.text = NULL;
    in->progress_us = g_get_monotonic_time();
    if (offer->kind == MD_DC_KIND_STILL)
        in->head = g_byte_array_sized_new((guint)MIN(offer->size, (uint64_t)MD_IMAGE_HEAD_MAX));
    if ((r = md_dc_file_rx_new(offer, &lim, &in->rx)) < 0)
        goto out;
    if ((r = md_evidence_file_begin(s->files.evidence, s->id, offer->id, &in->writer)) < 0)
        goto out;
    leg->file_in = in;
    in = NULL;
    send_file_msg(leg, MD_DC_FILE_ACCEPT, offer->id, 0, 0);
out:
    if (r < 0) {
        send_file_msg(leg, MD_DC_FILE_REFUSE, offer->id, r, 0);
        report_file_failed(leg, offer->id, offer->kind == MD_DC_KIND_STILL, r);
    }
    file_in_free(in);
}

/* A still's claimed sides must be those of its image header. */
static int check_still_size(const md_file_in *in)
{
    uint32_t w, h;
    if (!in->head)
        return 0;
    int r = md_image_size(in->head->data, in->head->len, &w, &h);
    if (r < 0)
        return r == -MD_E_FILE_TYPE ? r : -MD_E_STILL_RESOLUTION;
    return w == in->offer.width && h == in->offer.height ? 0 : -MD_E_STILL_RESOLUTION;
}

static void on_file_done(md_leg_ctx *leg)
{
    md_file_in *in = leg->file_in;
    uint8_t digest[MD_SHA256_LEN];
    char hex[MD_SHA256_HEX_LEN + 1];
    int r = md_dc_file_rx_finish(in->rx, digest);
    if (r == 0)
        r = check_still_size(in);
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
    const md_dc_msg *o = &in->offer;
    emit(leg, (md_media_event){.type = MD_MEDIA_FILE,
                               .file = {.id = o->id,
                                        .name = o->name,
                                        .size = o->size,
                                        .mime = o->mime,
                                        .sha256 = hex,
                                        .still = o->kind == MD_DC_KIND_STILL,
                                        .width = o->width,
                                        .height = o->height}});
    file_in_free(in);
    leg->file_in = NULL;
}

/* file_progress {id, bytes} to the sender: at most every
 * FILE_PROGRESS_BYTES or FILE_PROGRESS_US, whichever comes first. */
static void file_in_progress(md_leg_ctx *leg)
{
    md_file_in *in = leg->file_in;
    gint64 now = g_get_monotonic_time();
    uint64_t received = md_dc_file_rx_received(in->rx);
    if (received - in->progress_bytes < FILE_PROGRESS_BYTES &&
        now - in->progress_us < FILE_PROGRESS_US)
        return;
    in->progress_bytes = received;
    in->progress_us = now;
    send_file_msg(leg, MD_DC_FILE_PROGRESS, in->offer.id, 0, received);
}

static void file_out_free(md_file_out *out)
{
    if (!out)
        return;
    md_evidence_reader_free(out->reader);
    md_owned_file_clear(&out->file);
    g_free(out);
}

static void offer_next_file(md_leg_ctx *leg);

/* The outgoing transfer is over (answered, or failed: the leg is told with
 * file_cancel); the next queued file goes. */
static void file_out_end(md_leg_ctx *leg, int error)
{
    md_file_out *out = leg->file_out;
    if (error) {
        md_debug("datachannel", "file_send_failed", "{s:s, s:s, s:s}", "session", leg->session->id,
                 "leg", md_leg_name(leg->which), "error", md_err_code(error));
        send_file_msg(leg, MD_DC_FILE_CANCEL, out->file.id, 0, 0);
    }
    file_out_free(out);
    leg->file_out = NULL;
    offer_next_file(leg);
}

/* Streams the accepted file from the evidence store until the send buffer
 * is full (on_file_writable resumes), then file_done.  At most one
 * decrypted store chunk (64 KiB) is held per outgoing file. */
static void pump_file_out(md_leg_ctx *leg)
{
    md_file_out *out = leg->file_out;
    int r;
    if (!out || !out->accepted || out->done)
        return;
    for (;;) {
        if (out->pos == out->chunk_len) {
            r = md_evidence_reader_next(out->reader, &out->chunk, &out->chunk_len);
            out->pos = 0;
            if (r == 0)
                break; /* every chunk sent */
            if (r < 0) {
                file_out_end(leg, r);
                return;
            }
            continue;
        }
        size_t n = MIN(out->chunk_len - out->pos, (size_t)FILE_SEND_CHUNK);
        r = md_dc_send_file_chunk(leg->dc, out->offer_index, out->sent, out->chunk + out->pos, n);
        if (r == -EAGAIN)
            return;
        if (r < 0) {
            file_out_end(leg, r);
            return;
        }
        out->pos += n;
        out->sent += n;
    }
    if (out->sent != out->file.size) { /* the store holds other than what was audited */
        file_out_end(leg, -MD_E_EVIDENCE_CORRUPT);
        return;
    }
    md_dc_msg done = {.type = MD_DC_FILE_DONE};
    g_strlcpy(done.id, out->file.id, sizeof(done.id));
    if (md_dc_send_file_msg(leg->dc, &done) == -EAGAIN) {
        out->pos = out->chunk_len = 0; /* the reader is finished: on_file_writable retries */
        return;
    }
    out->done = true; /* the receiver's file_verified / file_error ends it */
    out->reader = md_evidence_reader_free(out->reader);
}

/* Offers the leg the next queued file, if it has none in flight and its
 * file channel is open. */
static void offer_next_file(md_leg_ctx *leg)
{
    md_bridge *s = leg->session;
    while (!leg->file_out && md_dc_file_ready(leg->dc) && !g_queue_is_empty(&leg->file_queue)) {
        md_owned_file *f = g_queue_pop_head(&leg->file_queue);
        md_file_out *out = g_new0(md_file_out, 1);
        out->file = *f;
        g_free(f);
        int r = md_evidence_reader_open(s->files.evidence, s->id, out->file.id, &out->reader);
        if (r == 0) {
            md_dc_msg offer = {.type = MD_DC_FILE_OFFER,
                               .index = ++leg->next_file_index,
                               .size = out->file.size,
                               .kind = out->file.still ? MD_DC_KIND_STILL : MD_DC_KIND_FILE,
                               .width = out->file.width,
                               .height = out->file.height};
            g_strlcpy(offer.id, out->file.id, sizeof(offer.id));
            g_strlcpy(offer.name, out->file.name, sizeof(offer.name));
            g_strlcpy(offer.mime, out->file.mime, sizeof(offer.mime));
            g_strlcpy(offer.sha256, out->file.sha256, sizeof(offer.sha256));
            out->offer_index = offer.index;
            r = md_dc_send_file_msg(leg->dc, &offer);
        }
        if (r < 0) {
            md_debug("datachannel", "file_offer_failed", "{s:s, s:s, s:s}", "session", s->id, "leg",
                     md_leg_name(leg->which), "error", md_err_code(r));
            file_out_free(out);
            continue;
        }
        leg->file_out = out;
    }
}

/* A message from the leg about the file we offered it. */
static void on_file_out_answer(md_leg_ctx *leg, const md_dc_msg *m)
{
    md_file_out *out = leg->file_out;
    if (!out || strcmp(out->file.id, m->id) != 0)
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
        file_out_end(leg, 0);
    }
}

void md_bridge_file_deliver(md_bridge_host *host, const char *id, md_leg to_leg, md_owned_file *f)
{
    md_bridge *s = g_hash_table_lookup(host->sessions, id);
    if (!s || !s->files.evidence)
        return;
    md_leg_ctx *to = &s->legs[to_leg], *from = md_leg_other(to);

    /* Stored and audited by now: the sender may show it as verified. */
    md_dc_msg verified = {.type = MD_DC_FILE_VERIFIED};
    g_strlcpy(verified.id, f->id, sizeof(verified.id));
    g_strlcpy(verified.sha256, f->sha256, sizeof(verified.sha256));
    int r = md_dc_send_file_msg(from->dc, &verified);
    if (r < 0)
        md_debug("datachannel", "file_verified_failed", "{s:s, s:s}", "session", s->id, "error",
                 md_err_code(r));

    if (g_queue_get_length(&to->file_queue) >= host->cfg.file_queue) {
        md_debug("datachannel", "file_queue_full", "{s:s, s:s}", "session", s->id, "leg",
                 md_leg_name(to_leg));
        return; /* stored and audited; not offered */
    }
    md_owned_file *q = g_new(md_owned_file, 1);
    *q = *f;
    memset(f, 0, sizeof(*f)); /* taken */
    g_queue_push_tail(&to->file_queue, q);
    offer_next_file(to);
}

void md_bridge_still_expect(md_bridge_host *host, const char *id, const char *still_id)
{
    md_bridge *s = g_hash_table_lookup(host->sessions, id);
    if (s)
        g_strlcpy(s->legs[MD_LEG_TABLET].still_id, still_id,
                  sizeof(s->legs[MD_LEG_TABLET].still_id));
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

static void on_dc_file_refused(const char *id, int error, void *ud)
{
    report_file_failed(ud, id, false, error);
}

static void on_dc_file_chunk(const uint8_t *buf, size_t len, void *ud)
{
    md_leg_ctx *leg = ud;
    md_file_in *in = leg->file_in;
    const uint8_t *payload;
    size_t n;
    if (!in)
        return; /* after a failure the sender may still be sending */
    int r = md_dc_file_rx_chunk(in->rx, buf, len, &payload, &n);
    if (r == 0)
        r = md_evidence_file_write(in->writer, payload, n);
    if (r < 0) {
        file_in_fail(leg, r);
        return;
    }
    if (in->head && in->head->len < MD_IMAGE_HEAD_MAX)
        g_byte_array_append(in->head, payload, (guint)MIN(n, MD_IMAGE_HEAD_MAX - in->head->len));
    file_in_progress(leg);
}

static void on_dc_file_writable(void *ud)
{
    md_leg_ctx *leg = ud;
    if (leg->file_out)
        pump_file_out(leg);
    else
        offer_next_file(leg);
}

static const md_dc_callbacks dc_callbacks = {
    .send = on_dc_send,
    .on_chat = on_dc_chat,
    .on_chat_ack = on_dc_chat_ack,
    .on_chat_writable = on_dc_chat_writable,
    .on_refused = on_dc_refused,
    .on_file = on_dc_file,
    .on_file_refused = on_dc_file_refused,
    .on_file_chunk = on_dc_file_chunk,
    .on_file_writable = on_dc_file_writable,
};

/* ---- legs ---- */

void md_bridge_dc_start(md_leg_ctx *leg)
{
    md_bridge_host *host = leg->session->host;
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

void md_bridge_dc_input(md_leg_ctx *leg, const uint8_t *buf, size_t len)
{
    if (leg->dc)
        md_dc_input(leg->dc, buf, len);
}

void md_bridge_dc_release(md_leg_ctx *leg)
{
    md_bridge_host *host = leg->session->host;
    /* A transfer cut by the association's end leaves nothing stored. */
    if (leg->file_in)
        report_file_failed(leg, leg->file_in->offer.id,
                           leg->file_in->offer.kind == MD_DC_KIND_STILL, -MD_E_SCTP_FAILED);
    file_in_free(leg->file_in);
    leg->file_in = NULL;
    /* A file the leg has not answered (file_verified, file_error, ...) is
     * offered again, first, when it is back; as with chat, a client that
     * had it already recognises the id. */
    md_file_out *out = leg->file_out;
    if (out) {
        md_owned_file *f = g_new(md_owned_file, 1);
        *f = out->file;
        memset(&out->file, 0, sizeof(out->file));
        g_queue_push_head(&leg->file_queue, f);
    }
    file_out_free(out);
    leg->file_out = NULL;
    if (!leg->dc)
        return;
    /* Chat this association took but the client never acknowledged goes out
     * again, first, on the leg's next one; clients drop a repeated id. */
    while (!g_queue_is_empty(&leg->chat_unacked))
        g_queue_push_head(&leg->chat_queue, g_queue_pop_tail(&leg->chat_unacked));
    leg->dc = md_dc_free(leg->dc);
    if (--host->n_dc == 0 && host->sctp_timer) {
        g_source_destroy(host->sctp_timer);
        g_clear_pointer(&host->sctp_timer, g_source_unref);
    }
}

void md_bridge_dc_clear(md_leg_ctx *leg)
{
    g_queue_clear_full(&leg->chat_queue, queued_chat_free);
    g_queue_clear_full(&leg->chat_unacked, queued_chat_free);
    g_queue_clear_full(&leg->file_queue, session_file_free);
}

void md_bridge_chat_deliver(md_bridge_host *host, const char *id, md_leg to_leg,
                            const char *chat_id, int64_t ts, const char *text)
{
    md_bridge *s = g_hash_table_lookup(host->sessions, id);
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
