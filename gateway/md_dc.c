/*
 * The channel manager of one leg (see md_dc.h).  It owns the leg's md_sctp
 * and a fixed table of at most MD_DC_MAX_CHANNELS channels, each a stream id
 * the client opened with a DCEP OPEN (RFC 8832 5.1) and the protocol served
 * on it.  Invariants: a stream is in the table only after its OPEN was
 * accepted and acknowledged; at most one "chat" and one "file" channel; a
 * refused or closed stream is not in the table.  Messages on streams not in
 * the table are dropped.  Everything runs on the leg's media worker.
 */
#include "md_dc.h"
#include "md_dcep.h"
#include "md_err.h"
#include "md_log.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct channel {
    bool used;
    uint16_t stream;
    md_dc_channel kind;
} channel;

struct md_dc {
    md_sctp *sctp;
    md_dc_callbacks cb;
    void *ud;
    bool dtls_client;
    bool connected; /* SCTP_COMM_UP seen, association not ended */
    md_dc_limits limits;
    channel channels[MD_DC_MAX_CHANNELS];
};

static channel *find_stream(md_dc *dc, uint16_t stream)
{
    for (size_t i = 0; i < MD_DC_MAX_CHANNELS; i++)
        if (dc->channels[i].used && dc->channels[i].stream == stream)
            return &dc->channels[i];
    return NULL;
}

static channel *find_kind(const md_dc *dc, md_dc_channel kind)
{
    for (size_t i = 0; i < MD_DC_MAX_CHANNELS; i++)
        if (dc->channels[i].used && dc->channels[i].kind == kind)
            return (channel *)&dc->channels[i];
    return NULL;
}

static void refuse(md_dc *dc, uint16_t stream, const char *label, int error)
{
    /* RFC 8832 has no negative ACK: closing the stream is the refusal (RFC 8831 6.7). */
    md_sctp_close_stream(dc->sctp, stream);
    md_debug("datachannel", "channel_refused", "{s:i, s:s}", "stream", (int)stream, "error",
             md_err_code(error));
    if (dc->cb.on_refused)
        dc->cb.on_refused(label, stream, error, dc->ud);
}

/* RFC 8832 5.1 / 6: OPEN on a stream of the peer's parity, label served. */
static void on_open(md_dc *dc, uint16_t stream, const uint8_t *buf, size_t len)
{
    md_dcep_open o;
    int r = md_dcep_parse_open(buf, len, &o);
    if (r < 0) {
        refuse(dc, stream, "", r);
        return;
    }
    /* RFC 8832 6 gives the DTLS client even ids so that both ends can open
     * channels without colliding.  The gateway opens none, so a peer on the
     * wrong parity cannot collide with us; aiortc 1.4 picks the parity from
     * its ICE role and opens odd ids as DTLS client, so the rule is relaxed
     * (and must come back once the gateway opens channels of its own). */
    if (md_dcep_check_remote_stream(stream, dc->dtls_client) < 0)
        md_debug("datachannel", "stream_parity_tolerated", "{s:i}", "stream", (int)stream);
    if (stream == 65535 || find_stream(dc, stream)) {
        refuse(dc, stream, o.label, -MD_E_DC_REFUSED);
        return;
    }
    md_dc_channel kind;
    if (strcmp(o.label, "chat") == 0)
        kind = MD_DC_CHANNEL_CHAT;
    else if (strcmp(o.label, "file") == 0)
        kind = MD_DC_CHANNEL_FILE;
    else {
        refuse(dc, stream, o.label, -MD_E_DC_REFUSED);
        return;
    }
    channel *slot = NULL;
    for (size_t i = 0; i < MD_DC_MAX_CHANNELS && !slot; i++)
        if (!dc->channels[i].used)
            slot = &dc->channels[i];
    if (!slot || find_kind(dc, kind)) {
        refuse(dc, stream, o.label, -MD_E_DC_REFUSED);
        return;
    }
    md_sctp_stream_params p = {
        .unordered = !md_dcep_ordered(o.channel_type),
        .pr = (md_sctp_pr)md_dcep_pr_policy(o.channel_type),
        .pr_value = o.reliability,
    };
    uint8_t ack[4];
    int n = md_dcep_build_ack(ack, sizeof(ack));
    if (n < 0 || md_sctp_set_stream_params(dc->sctp, stream, &p) < 0 ||
        md_sctp_send(dc->sctp, stream, MD_SCTP_PPID_DCEP, ack, (size_t)n) < 0) {
        refuse(dc, stream, o.label, -MD_E_SCTP_FAILED);
        return;
    }
    *slot = (channel){.used = true, .stream = stream, .kind = kind};
    md_debug("datachannel", "channel_open", "{s:s, s:i}", "label", o.label, "stream", (int)stream);
    if (kind == MD_DC_CHANNEL_CHAT && dc->cb.on_chat_writable)
        dc->cb.on_chat_writable(dc->ud);
    if (kind == MD_DC_CHANNEL_FILE && dc->cb.on_file_writable)
        dc->cb.on_file_writable(dc->ud);
}

static int send_json(md_dc *dc, uint16_t stream, const md_dc_msg *m)
{
    char *json = NULL;
    int r = md_dc_build(m, &json);
    if (r < 0)
        return r;
    r = md_sctp_send(dc->sctp, stream, MD_SCTP_PPID_STRING, (const uint8_t *)json, strlen(json));
    free(json);
    return r;
}

static void on_chat_text(md_dc *dc, const uint8_t *buf, size_t len)
{
    md_dc_msg m;
    char sha256[MD_SHA256_HEX_LEN + 1];
    int r = md_dc_parse(MD_DC_CHANNEL_CHAT, (const char *)buf, len, &dc->limits, &m);
    if (r < 0) {
        md_debug("datachannel", "chat_refused", "{s:s}", "error", md_err_code(r));
        return;
    }
    if (m.type == MD_DC_CHAT && md_sha256_hex(m.text, strlen(m.text), sha256) == 0)
        dc->cb.on_chat(&m, sha256, dc->ud);
    else if (m.type == MD_DC_CHAT_ACK && dc->cb.on_chat_ack)
        dc->cb.on_chat_ack(m.id, dc->ud); /* the client has a chat we relayed */
    md_dc_msg_clear(&m);
}

/* An offer md_dc_parse() refused (size over the cap, type not allowed, bad
 * name) still deserves an answer naming it, when its id is readable. */
static void refuse_unparsed_offer(md_dc *dc, uint16_t stream, const uint8_t *buf, size_t len,
                                  int error)
{
    json_t *root = len <= MD_DC_JSON_MAX ? json_loadb((const char *)buf, len, 0, NULL) : NULL;
    const char *type = json_string_value(json_object_get(root, "type"));
    const char *id = json_string_value(json_object_get(root, "id"));
    size_t n = id ? strlen(id) : 0;
    bool id_ok = n >= 1 && n <= MD_DC_ID_MAX;
    for (size_t i = 0; id_ok && i < n; i++)
        id_ok = g_ascii_isalnum(id[i]) || id[i] == '_' || id[i] == '-';
    if (type && strcmp(type, "file_offer") == 0 && id_ok) {
        md_dc_msg refusal = {.type = MD_DC_FILE_REFUSE};
        g_strlcpy(refusal.id, id, sizeof(refusal.id));
        g_strlcpy(refusal.code, md_err_code(error), sizeof(refusal.code));
        send_json(dc, stream, &refusal);
        if (dc->cb.on_file_refused)
            dc->cb.on_file_refused(refusal.id, error, dc->ud);
    }
    json_decref(root);
}

static void on_file_text(md_dc *dc, uint16_t stream, const uint8_t *buf, size_t len)
{
    md_dc_msg m;
    int r = md_dc_parse(MD_DC_CHANNEL_FILE, (const char *)buf, len, &dc->limits, &m);
    if (r < 0) {
        md_debug("datachannel", "file_message_refused", "{s:s}", "error", md_err_code(r));
        refuse_unparsed_offer(dc, stream, buf, len, r);
        return;
    }
    if (dc->cb.on_file)
        dc->cb.on_file(&m, dc->ud);
    else if (m.type == MD_DC_FILE_OFFER) {
        md_dc_msg refusal = {.type = MD_DC_FILE_REFUSE};
        memcpy(refusal.id, m.id, sizeof(refusal.id));
        g_strlcpy(refusal.code, md_err_code(-MD_E_DC_REFUSED), sizeof(refusal.code));
        send_json(dc, stream, &refusal);
    }
    md_dc_msg_clear(&m);
}

/* ---- md_sctp callbacks ---- */

static void on_sctp_send(const uint8_t *buf, size_t len, void *ud)
{
    md_dc *dc = ud;
    dc->cb.send(buf, len, dc->ud);
}

static void on_sctp_connected(void *ud)
{
    md_dc *dc = ud;
    dc->connected = true;
}

static void on_sctp_message(uint16_t stream, uint32_t ppid, const uint8_t *buf, size_t len,
                            void *ud)
{
    md_dc *dc = ud;
    if (ppid == MD_SCTP_PPID_DCEP) {
        int type = md_dcep_message_type(buf, len);
        if (type == MD_DCEP_OPEN)
            on_open(dc, stream, buf, len);
        return; /* an ACK would answer an OPEN of ours; we open none */
    }
    channel *ch = find_stream(dc, stream);
    if (!ch)
        return; /* unknown stream */
    if (ppid == MD_SCTP_PPID_BINARY) {
        if (ch->kind == MD_DC_CHANNEL_FILE && dc->cb.on_file_chunk)
            dc->cb.on_file_chunk(buf, len, dc->ud);
        return; /* binary on chat: dropped */
    }
    if (ppid != MD_SCTP_PPID_STRING)
        return;
    if (ch->kind == MD_DC_CHANNEL_CHAT)
        on_chat_text(dc, buf, len);
    else
        on_file_text(dc, stream, buf, len);
}

static void on_sctp_low(void *ud)
{
    md_dc *dc = ud;
    if (find_kind(dc, MD_DC_CHANNEL_CHAT) && dc->cb.on_chat_writable)
        dc->cb.on_chat_writable(dc->ud);
    if (find_kind(dc, MD_DC_CHANNEL_FILE) && dc->cb.on_file_writable)
        dc->cb.on_file_writable(dc->ud);
}

static void on_sctp_stream_closed(uint16_t stream, void *ud)
{
    channel *ch = find_stream(ud, stream);
    if (ch)
        ch->used = false;
}

static void on_sctp_closed(int error, void *ud)
{
    md_dc *dc = ud;
    dc->connected = false;
    memset(dc->channels, 0, sizeof(dc->channels));
    md_debug("datachannel", "association_closed", "{s:s}", "error",
             error ? md_err_code(error) : "none");
}

static const md_sctp_callbacks sctp_callbacks = {
    .send = on_sctp_send,
    .on_connected = on_sctp_connected,
    .on_message = on_sctp_message,
    .on_buffered_amount_low = on_sctp_low,
    .on_stream_closed = on_sctp_stream_closed,
    .on_closed = on_sctp_closed,
};

/* ---- API ---- */

int md_dc_new(const md_dc_options *opt, GMainContext *ctx, const md_dc_callbacks *cb, void *ud,
              md_dc **ret)
{
    if (!cb || !cb->send || !cb->on_chat)
        return -EINVAL;
    md_dc *dc = g_new0(md_dc, 1);
    dc->cb = *cb;
    dc->ud = ud;
    dc->dtls_client = opt->dtls_client;
    dc->limits = opt->limits;
    int r = md_sctp_new(&opt->sctp, ctx, &sctp_callbacks, dc, &dc->sctp);
    if (r < 0) {
        g_free(dc);
        return r;
    }
    *ret = dc;
    return 0;
}

int md_dc_start(md_dc *dc)
{
    return md_sctp_start(dc->sctp);
}

int md_dc_input(md_dc *dc, const uint8_t *buf, size_t len)
{
    return md_sctp_input(dc->sctp, buf, len);
}

bool md_dc_chat_ready(const md_dc *dc)
{
    return dc && dc->connected && find_kind(dc, MD_DC_CHANNEL_CHAT);
}

int md_dc_send_chat(md_dc *dc, const char *id, int64_t ts, const char *text)
{
    channel *ch = dc && dc->connected ? find_kind(dc, MD_DC_CHANNEL_CHAT) : NULL;
    if (!ch)
        return -ENOTCONN;
    md_dc_msg m = {.type = MD_DC_CHAT, .ts = ts, .text = (char *)text};
    g_strlcpy(m.id, id, sizeof(m.id));
    return send_json(dc, ch->stream, &m);
}

int md_dc_send_chat_ack(md_dc *dc, const char *id)
{
    channel *ch = dc && dc->connected ? find_kind(dc, MD_DC_CHANNEL_CHAT) : NULL;
    if (!ch)
        return -ENOTCONN;
    md_dc_msg m = {.type = MD_DC_CHAT_ACK};
    g_strlcpy(m.id, id, sizeof(m.id));
    return send_json(dc, ch->stream, &m);
}

bool md_dc_file_ready(const md_dc *dc)
{
    return dc && dc->connected && find_kind(dc, MD_DC_CHANNEL_FILE);
}

int md_dc_send_file_msg(md_dc *dc, const md_dc_msg *m)
{
    channel *ch = dc && dc->connected ? find_kind(dc, MD_DC_CHANNEL_FILE) : NULL;
    if (!ch)
        return -ENOTCONN;
    return send_json(dc, ch->stream, m);
}

int md_dc_send_file_chunk(md_dc *dc, uint32_t index, uint64_t offset, const uint8_t *payload,
                          size_t len)
{
    uint8_t buf[MD_DC_CHUNK_HEADER + MD_DC_CHUNK_MAX];
    channel *ch = dc && dc->connected ? find_kind(dc, MD_DC_CHANNEL_FILE) : NULL;
    if (!ch)
        return -ENOTCONN;
    if (len == 0 || len > MD_DC_CHUNK_MAX)
        return -EINVAL;
    md_dc_chunk_header(index, offset, buf);
    memcpy(buf + MD_DC_CHUNK_HEADER, payload, len);
    return md_sctp_send(dc->sctp, ch->stream, MD_SCTP_PPID_BINARY, buf, MD_DC_CHUNK_HEADER + len);
}

md_dc *md_dc_free(md_dc *dc)
{
    if (!dc)
        return NULL;
    md_sctp_free(dc->sctp);
    g_free(dc);
    return NULL;
}
