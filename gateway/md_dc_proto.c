/*
 * Chat and file messages (md_dc_proto.h).  Parsing is table-driven: each
 * message type lists its required and optional fields, each field has one
 * validator, and a key not listed for the type is an error, so adding a
 * field is a one-line change and nothing unvalidated reaches the gateway.
 * Types are checked by content, never by the claimed MIME alone (DESIGN 4):
 * md_dc_file_rx sniffs the first bytes and refuses a file whose content is
 * not an allowed type or is another type than the offer said.
 */
#include "md_dc_proto.h"
#include "md_bytes.h"
#include "md_err.h"

#include <errno.h>
#include <glib.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHAT_BYTES 2000
#define DEFAULT_FILE_SIZE (20u << 20)
#define MAX_JSON_INT ((int64_t)1 << 53) /* exact in a JavaScript number */

static const char *const default_mime[] = {"image/jpeg", "image/png", "application/pdf", NULL};

enum field {
    F_ID = 1 << 0,
    F_TS = 1 << 1,
    F_TEXT = 1 << 2,
    F_INDEX = 1 << 3,
    F_NAME = 1 << 4,
    F_SIZE = 1 << 5,
    F_MIME = 1 << 6,
    F_SHA256 = 1 << 7,
    F_KIND = 1 << 8,
    F_WIDTH = 1 << 9,
    F_HEIGHT = 1 << 10,
    F_BYTES = 1 << 11,
    F_CODE = 1 << 12,
};

struct limits {
    size_t chat_bytes;
    uint64_t file_size;
    const char *const *mime;
};

typedef int (*field_parser)(json_t *v, md_dc_msg *m, const struct limits *lim);

struct field_def {
    const char *name;
    enum field bit;
    field_parser parse;
};

struct type_def {
    const char *name;
    md_dc_msg_type type;
    md_dc_channel channel;
    unsigned required, optional;
};

static const struct type_def types[] = {
    {"chat", MD_DC_CHAT, MD_DC_CHANNEL_CHAT, F_ID | F_TS | F_TEXT, 0},
    {"chat_ack", MD_DC_CHAT_ACK, MD_DC_CHANNEL_CHAT, F_ID, 0},
    {"file_offer", MD_DC_FILE_OFFER, MD_DC_CHANNEL_FILE,
     F_ID | F_INDEX | F_NAME | F_SIZE | F_MIME | F_SHA256 | F_KIND, F_WIDTH | F_HEIGHT},
    {"file_accept", MD_DC_FILE_ACCEPT, MD_DC_CHANNEL_FILE, F_ID, 0},
    {"file_refuse", MD_DC_FILE_REFUSE, MD_DC_CHANNEL_FILE, F_ID | F_CODE, 0},
    {"file_progress", MD_DC_FILE_PROGRESS, MD_DC_CHANNEL_FILE, F_ID | F_BYTES, 0},
    {"file_done", MD_DC_FILE_DONE, MD_DC_CHANNEL_FILE, F_ID, 0},
    {"file_verified", MD_DC_FILE_VERIFIED, MD_DC_CHANNEL_FILE, F_ID | F_SHA256, 0},
    {"file_error", MD_DC_FILE_ERROR, MD_DC_CHANNEL_FILE, F_ID | F_CODE, 0},
    {"file_cancel", MD_DC_FILE_CANCEL, MD_DC_CHANNEL_FILE, F_ID, 0},
};

static const struct type_def *type_by_name(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(types); i++)
        if (strcmp(types[i].name, name) == 0)
            return &types[i];
    return NULL;
}

static const struct type_def *type_by_value(md_dc_msg_type t)
{
    for (size_t i = 0; i < G_N_ELEMENTS(types); i++)
        if (types[i].type == t)
            return &types[i];
    return NULL;
}

const char *md_dc_type_name(md_dc_msg_type t)
{
    const struct type_def *d = type_by_value(t);
    return d ? d->name : NULL;
}

/* ---- field validators ------------------------------------------------------ */

static bool id_ok(const char *s, size_t len)
{
    if (len == 0 || len > MD_DC_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!g_ascii_isalnum(s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

/* A JSON string without NUL (jansson refuses \u0000 unless asked). */
static int get_string(json_t *v, const char **ret, size_t *ret_len)
{
    if (!json_is_string(v))
        return -MD_E_DC_PROTOCOL;
    *ret = json_string_value(v);
    *ret_len = json_string_length(v);
    return 0;
}

static int get_int(json_t *v, int64_t min, int64_t max, int64_t *ret)
{
    if (!json_is_integer(v))
        return -MD_E_DC_PROTOCOL;
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return -MD_E_DC_PROTOCOL;
    *ret = (int64_t)x;
    return 0;
}

static int parse_id(json_t *v, md_dc_msg *m, const struct limits *lim)
{
    const char *s;
    size_t len;
    if (get_string(v, &s, &len) < 0 || !id_ok(s, len))
        return -MD_E_DC_PROTOCOL;
    memcpy(m->id, s, len + 1);
    return 0;
}

static int parse_ts(json_t *v, md_dc_msg *m, const struct limits *lim)
{
    return get_int(v, 0, MAX_JSON_INT, &m->ts);
}

static int parse_text(json_t *v, md_dc_msg *m, const struct limits *lim)
{
    const char *s;
    size_t len;
    if (get_string(v, &s, &len) < 0)
        return -MD_E_DC_PROTOCOL;
    int r = md_dc_check_chat_text(s, lim->chat_bytes);
    if (r < 0)
        return r;
    m->text = g_strndup(s, len);
    return 0;
}

static int parse_index(json_t *v, md_dc_msg *m, const struct limits *lim)
{
    int64_t x;
    if (get_int(v, 1, INT32_MAX, &x) < 0)
        return -MD_E_DC_PROTOCOL;
    m->index = (uint32_t)x;
    return 0;
}

static int parse_name(json_t *v, md_dc_msg *m, const struct limits *lim)
{
    const char *s;
    size_t len;
    if (get_string(v, &s, &len) < 0)
        return -MD_E_DC_PROTOCOL;
    int r = md_dc_check_file_name(s);
    if (r < 0)
        return r;
    memcpy(m->name, s, len + 1);
    return 0;
}

static int parse_size(json_t *v, md_dc_msg *m, const struct limits *lim)
{
    int64_t x;
    if (get_int(v, 1, MAX_JSON_INT, &x) < 0)
        return -MD_E_DC_PROTOCOL;
    if ((uint64_t)x > lim->file_size)
        return -MD_E_FILE_TOO_LARGE;
    m->size = (uint64_t)x;
    return 0;
}

static bool mime_allowed(const char *mime, const struct limits *lim)
{
    for (const char *const *p = lim->mime; *p; p++)
        if (strcmp(*p, mime) == 0)
            return true;
    return false;
}

static int parse_mime(json_t *v, md_dc_msg *m, const struct limits *lim)
{
    const char *s;
    size_t len;
    if (get_string(v, &s, &len) < 0 || len == 0 || len > MD_DC_MIME_MAX)
        return -MD_E_DC_PROTOCOL;
    if (!mime_allowed(s, lim))
        return -MD_E_FILE_TYPE;
    memcpy(m->mime, s, len + 1);
    return 0;
}

static int parse_sha256(json_t *v, md_dc_msg *m, const struct limits *lim)
{
    const char *s;
    size_t len;
    if (get_string(v, &s, &len) < 0 || len != MD_SHA256_HEX_LEN)
        return -MD_E_DC_PROTOCOL;
    for (size_t i = 0; i < len; i++)
        if (!g_ascii_isdigit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
            return -MD_E_DC_PROTOCOL;
    memcpy(m->sha256, s, len + 1);
    return 0;
}

static int parse_kind(json_t *v, md_dc_msg *m, const struct limits *lim)
{
    const char *s;
    size_t len;
    if (get_string(v, &s, &len) < 0)
        return -MD_E_DC_PROTOCOL;
    if (strcmp(s, "file") == 0)
        m->kind = MD_DC_KIND_FILE;
    else if (strcmp(s, "still") == 0)
        m->kind = MD_DC_KIND_STILL;
    else
        return -MD_E_DC_PROTOCOL;
    return 0;
}

static int parse_side(json_t *v, uint32_t *ret)
{
    int64_t x;
    if (get_int(v, 1, MD_DC_STILL_MAX_SIDE, &x) < 0)
        return -MD_E_DC_PROTOCOL;
    *ret = (uint32_t)x;
    return 0;
}

static int parse_width(json_t *v, md_dc_msg *m, const struct limits *lim)
{
    return parse_side(v, &m->width);
}

static int parse_height(json_t *v, md_dc_msg *m, const struct limits *lim)
{
    return parse_side(v, &m->height);
}

static int parse_bytes(json_t *v, md_dc_msg *m, const struct limits *lim)
{
    int64_t x;
    if (get_int(v, 0, MAX_JSON_INT, &x) < 0 || (uint64_t)x > lim->file_size)
        return -MD_E_DC_PROTOCOL;
    m->bytes = (uint64_t)x;
    return 0;
}

static int parse_code(json_t *v, md_dc_msg *m, const struct limits *lim)
{
    const char *s;
    size_t len;
    if (get_string(v, &s, &len) < 0 || len == 0 || len > MD_DC_CODE_MAX)
        return -MD_E_DC_PROTOCOL;
    for (size_t i = 0; i < len; i++)
        if (!g_ascii_islower(s[i]) && !g_ascii_isdigit(s[i]) && s[i] != '_')
            return -MD_E_DC_PROTOCOL;
    memcpy(m->code, s, len + 1);
    return 0;
}

static const struct field_def fields[] = {
    {"id", F_ID, parse_id},
    {"ts", F_TS, parse_ts},
    {"text", F_TEXT, parse_text},
    {"index", F_INDEX, parse_index},
    {"name", F_NAME, parse_name},
    {"size", F_SIZE, parse_size},
    {"mime", F_MIME, parse_mime},
    {"sha256", F_SHA256, parse_sha256},
    {"kind", F_KIND, parse_kind},
    {"width", F_WIDTH, parse_width},
    {"height", F_HEIGHT, parse_height},
    {"bytes", F_BYTES, parse_bytes},
    {"code", F_CODE, parse_code},
};

static const struct field_def *field_by_name(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(fields); i++)
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    return NULL;
}

static struct limits limits_of(const md_dc_limits *lim)
{
    struct limits l = {DEFAULT_CHAT_BYTES, DEFAULT_FILE_SIZE, default_mime};
    if (lim && lim->max_chat_bytes)
        l.chat_bytes = lim->max_chat_bytes;
    if (lim && lim->max_file_size)
        l.file_size = lim->max_file_size;
    if (lim && lim->allowed_mime)
        l.mime = lim->allowed_mime;
    return l;
}

/* Rules that span fields of a file_offer. */
static int check_offer(const md_dc_msg *m)
{
    bool image = strncmp(m->mime, "image/", 6) == 0;
    if (m->kind == MD_DC_KIND_STILL && !image)
        return -MD_E_FILE_TYPE;
    if (m->kind == MD_DC_KIND_STILL && (!m->width || !m->height))
        return -MD_E_DC_PROTOCOL;
    if (m->kind == MD_DC_KIND_FILE && (m->width || m->height))
        return -MD_E_DC_PROTOCOL;
    return 0;
}

/* ---- parse / build ------------------------------------------------------- */

int md_dc_parse(md_dc_channel ch, const char *buf, size_t len, const md_dc_limits *lim,
                md_dc_msg *ret)
{
    struct limits l = limits_of(lim);
    md_dc_msg m;
    json_t *root = NULL;
    unsigned seen = 0;
    int r = 0;

    if (!buf || !ret)
        return -EINVAL;
    if (len > MD_DC_JSON_MAX)
        return -MD_E_TOO_LARGE;
    memset(&m, 0, sizeof(m));
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
    if (!root) {
        r = -MD_E_BAD_JSON;
        goto out;
    }
    if (!json_is_object(root)) {
        r = -MD_E_DC_PROTOCOL;
        goto out;
    }
    json_t *type = json_object_get(root, "type");
    if (!json_is_string(type)) {
        r = -MD_E_DC_PROTOCOL;
        goto out;
    }
    const struct type_def *td = type_by_name(json_string_value(type));
    if (!td || td->channel != ch) {
        r = -MD_E_UNKNOWN_TYPE;
        goto out;
    }
    m.type = td->type;
    const char *key;
    json_t *value;
    json_object_foreach (root, key, value) {
        if (strcmp(key, "type") == 0)
            continue;
        const struct field_def *fd = field_by_name(key);
        if (!fd || !((td->required | td->optional) & fd->bit)) {
            r = -MD_E_DC_PROTOCOL;
            goto out;
        }
        if ((r = fd->parse(value, &m, &l)) < 0)
            goto out;
        seen |= fd->bit;
    }
    if ((seen & td->required) != td->required) {
        r = -MD_E_DC_PROTOCOL;
        goto out;
    }
    if (m.type == MD_DC_FILE_OFFER && (r = check_offer(&m)) < 0)
        goto out;
    *ret = m;
    m.text = NULL;
out:
    g_free(m.text);
    json_decref(root);
    return r;
}

void md_dc_msg_clear(md_dc_msg *m)
{
    if (m) {
        g_free(m->text);
        m->text = NULL;
    }
}

/* json_string() of invalid UTF-8 is NULL: remember that as an error rather
 * than send a message with a field missing. */
static void set(json_t *o, const char *key, json_t *v, int *r)
{
    if (!v || json_object_set_new(o, key, v) < 0)
        *r = -EINVAL;
}

int md_dc_build(const md_dc_msg *m, char **ret_json)
{
    const struct type_def *td = m ? type_by_value(m->type) : NULL;
    json_t *o;
    int r = 0;

    if (!td || !ret_json || !id_ok(m->id, strnlen(m->id, sizeof(m->id))))
        return -EINVAL;
    unsigned f = td->required | td->optional;
    o = json_pack("{s:s, s:s}", "type", td->name, "id", m->id);
    if (!o)
        return -ENOMEM;
    if (f & F_TS)
        set(o, "ts", json_integer(m->ts), &r);
    if (f & F_TEXT)
        set(o, "text", m->text ? json_string(m->text) : NULL, &r);
    if (f & F_INDEX)
        set(o, "index", json_integer(m->index), &r);
    if (f & F_NAME)
        set(o, "name", json_string(m->name), &r);
    if (f & F_SIZE)
        set(o, "size", json_integer((json_int_t)m->size), &r);
    if (f & F_MIME)
        set(o, "mime", json_string(m->mime), &r);
    if (f & F_SHA256)
        set(o, "sha256", json_string(m->sha256), &r);
    if (f & F_KIND)
        set(o, "kind", json_string(m->kind == MD_DC_KIND_STILL ? "still" : "file"), &r);
    if ((f & F_WIDTH) && m->width)
        set(o, "width", json_integer(m->width), &r);
    if ((f & F_HEIGHT) && m->height)
        set(o, "height", json_integer(m->height), &r);
    if (f & F_BYTES)
        set(o, "bytes", json_integer((json_int_t)m->bytes), &r);
    if (f & F_CODE)
        set(o, "code", json_string(m->code), &r);
    if (r < 0)
        goto out;
    *ret_json = json_dumps(o, JSON_COMPACT);
    if (!*ret_json)
        r = -ENOMEM;
out:
    json_decref(o);
    return r;
}

/* ---- text checks ------------------------------------------------------------ */

static bool is_bidi_control(gunichar c)
{
    return c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2066 && c <= 0x2069);
}

static bool is_control(gunichar c)
{
    return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

int md_dc_check_file_name(const char *name)
{
    if (!name)
        return -MD_E_FILE_NAME;
    size_t len = strnlen(name, MD_DC_NAME_MAX + 1);
    if (len == 0 || len > MD_DC_NAME_MAX || !g_utf8_validate_len(name, len, NULL))
        return -MD_E_FILE_NAME;
    if (name[0] == '.' || name[len - 1] == '.' || name[len - 1] == ' ')
        return -MD_E_FILE_NAME;
    for (const char *p = name; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (c == '/' || c == '\\' || c == ':' || is_control(c) || is_bidi_control(c))
            return -MD_E_FILE_NAME;
    }
    return 0;
}

int md_dc_check_chat_text(const char *text, size_t max_bytes)
{
    if (!text)
        return -MD_E_CHAT_INVALID;
    size_t len = strnlen(text, max_bytes + 1);
    if (len == 0 || len > max_bytes || !g_utf8_validate_len(text, len, NULL))
        return -MD_E_CHAT_INVALID;
    for (const char *p = text; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (is_control(c) && c != '\n' && c != '\t')
            return -MD_E_CHAT_INVALID;
    }
    return 0;
}

/* ---- types by content and chunks ------------------------------------------- */

const char *md_dc_sniff_mime(const uint8_t *buf, size_t len)
{
    static const uint8_t png[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    if (!buf)
        return NULL;
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
        return "image/jpeg";
    if (len >= sizeof(png) && memcmp(buf, png, sizeof(png)) == 0)
        return "image/png";
    if (len >= 5 && memcmp(buf, "%PDF-", 5) == 0)
        return "application/pdf";
    return NULL;
}

void md_dc_chunk_header(uint32_t index, uint64_t offset, uint8_t out[MD_DC_CHUNK_HEADER])
{
    md_put_u32(out, index);
    md_put_u64(out + 4, offset);
}

int md_dc_chunk_parse(const uint8_t *buf, size_t len, uint32_t *ret_index, uint64_t *ret_offset,
                      const uint8_t **ret_payload, size_t *ret_payload_len)
{
    if (!buf || len <= MD_DC_CHUNK_HEADER || len - MD_DC_CHUNK_HEADER > MD_DC_CHUNK_MAX)
        return -MD_E_DC_PROTOCOL;
    uint32_t index = md_get_u32(buf);
    uint64_t offset = md_get_u64(buf + 4);
    if (index == 0 || index > INT32_MAX)
        return -MD_E_DC_PROTOCOL;
    *ret_index = index;
    *ret_offset = offset;
    *ret_payload = buf + MD_DC_CHUNK_HEADER;
    *ret_payload_len = len - MD_DC_CHUNK_HEADER;
    return 0;
}

/* ---- one incoming file ----------------------------------------------------- */

#define SNIFF_LEN 8 /* the longest magic (PNG) */

struct md_dc_file_rx {
    uint32_t index;
    uint64_t size, received;
    char mime[MD_DC_MIME_MAX + 1];
    uint8_t expected[MD_SHA256_LEN];
    struct limits lim;
    uint8_t head[SNIFF_LEN];
    bool type_checked, finished;
    int failed; /* sticky error */
    md_sha256_ctx *hash;
};

int md_dc_file_rx_new(const md_dc_msg *offer, const md_dc_limits *lim, md_dc_file_rx **ret)
{
    struct limits l = limits_of(lim);
    md_dc_file_rx *rx;
    int r;

    if (!offer || !ret || offer->type != MD_DC_FILE_OFFER || offer->index == 0 || offer->size == 0)
        return -EINVAL;
    if (offer->size > l.file_size)
        return -MD_E_FILE_TOO_LARGE;
    if (!mime_allowed(offer->mime, &l))
        return -MD_E_FILE_TYPE;
    if ((r = check_offer(offer)) < 0)
        return r;
    rx = g_new0(md_dc_file_rx, 1);
    rx->index = offer->index;
    rx->size = offer->size;
    rx->lim = l;
    g_strlcpy(rx->mime, offer->mime, sizeof(rx->mime));
    if (md_hex_decode(offer->sha256, rx->expected, sizeof(rx->expected)) < 0) {
        g_free(rx);
        return -MD_E_DC_PROTOCOL;
    }
    if ((r = md_sha256_ctx_new(&rx->hash)) < 0) {
        g_free(rx);
        return r;
    }
    *ret = rx;
    return 0;
}

/* By content: the sniffed type must be allowed and equal the claimed one. */
static int check_type(md_dc_file_rx *rx)
{
    const char *sniffed = md_dc_sniff_mime(rx->head, (size_t)MIN(rx->received, SNIFF_LEN));
    rx->type_checked = true;
    if (!sniffed || !mime_allowed(sniffed, &rx->lim))
        return -MD_E_FILE_TYPE;
    if (strcmp(sniffed, rx->mime) != 0)
        return -MD_E_FILE_TYPE_MISMATCH;
    return 0;
}

int md_dc_file_rx_chunk(md_dc_file_rx *rx, const uint8_t *buf, size_t len,
                        const uint8_t **ret_payload, size_t *ret_len)
{
    uint32_t index;
    uint64_t offset;
    const uint8_t *payload;
    size_t n;
    int r;

    if (!rx || rx->finished)
        return -EINVAL;
    if (rx->failed)
        return rx->failed;
    if ((r = md_dc_chunk_parse(buf, len, &index, &offset, &payload, &n)) < 0)
        goto fail;
    /* Ordered, reliable channel: chunks arrive in order without gaps. */
    if (index != rx->index || offset != rx->received) {
        r = -MD_E_DC_PROTOCOL;
        goto fail;
    }
    if (n > rx->size - rx->received) {
        r = -MD_E_FILE_HASH; /* more bytes than offered */
        goto fail;
    }
    if (rx->received < SNIFF_LEN)
        memcpy(rx->head + rx->received, payload, MIN(n, SNIFF_LEN - rx->received));
    rx->received += n;
    if (!rx->type_checked && (rx->received >= SNIFF_LEN || rx->received == rx->size) &&
        (r = check_type(rx)) < 0)
        goto fail;
    if ((r = md_sha256_ctx_update(rx->hash, payload, n)) < 0)
        goto fail;
    *ret_payload = payload;
    *ret_len = n;
    return 0;
fail:
    rx->failed = r;
    return r;
}

int md_dc_file_rx_finish(md_dc_file_rx *rx, uint8_t ret_sha256[MD_SHA256_LEN])
{
    uint8_t digest[MD_SHA256_LEN];
    int r;

    if (!rx || rx->finished)
        return -EINVAL;
    rx->finished = true;
    if (rx->failed)
        return rx->failed;
    if (rx->received != rx->size)
        return -MD_E_FILE_HASH;
    if (!rx->type_checked && (r = check_type(rx)) < 0)
        return r;
    if ((r = md_sha256_ctx_final(rx->hash, digest)) < 0)
        return r;
    if (!md_memeq_const(digest, rx->expected, sizeof(digest)))
        return -MD_E_FILE_HASH;
    if (ret_sha256)
        memcpy(ret_sha256, digest, sizeof(digest));
    return 0;
}

uint64_t md_dc_file_rx_received(const md_dc_file_rx *rx)
{
    return rx ? rx->received : 0;
}

md_dc_file_rx *md_dc_file_rx_free(md_dc_file_rx *rx)
{
    if (rx) {
        md_sha256_ctx_free(rx->hash);
        g_free(rx);
    }
    return NULL;
}
