/*
 * Chat and file protocol (md_dc_proto): every message type parses and
 * round-trips through the builder; the parser refuses extra, missing,
 * ill-typed and duplicated fields and messages of the other channel with
 * stable codes; chat text and file names are capped and sanitized; types
 * are sniffed by magic bytes; md_dc_file_rx accepts a correct file and
 * refuses wrong order, wrong size, a type that is not allowed or not the
 * one claimed, and a wrong SHA-256.
 */
#include "md_crypto.h"
#include "md_dc_proto.h"
#include "md_err.h"
#include "md_test.h"

#include <errno.h>

#include <glib.h>

static const char *const HASH = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static int parse(md_dc_channel ch, const char *json, md_dc_msg *m)
{
    return md_dc_parse(ch, json, strlen(json), NULL, m);
}

static void expect(md_dc_channel ch, const char *json, int code)
{
    md_dc_msg m;
    int r = parse(ch, json, &m);
    if (r != code)
        MD_FAIL("%s: got %s, want %s", json, md_err_code(r), md_err_code(code));
    if (r >= 0)
        md_dc_msg_clear(&m);
}

static void test_chat_messages(void)
{
    md_dc_msg m;
    ASSERT_OK(parse(MD_DC_CHANNEL_CHAT,
                    "{\"type\":\"chat\",\"id\":\"m-1\",\"ts\":1764000000000,"
                    "\"text\":\"本人確認書類を\\nお願いします\"}",
                    &m));
    ASSERT_EQ(m.type, MD_DC_CHAT);
    ASSERT_STR_EQ(m.id, "m-1");
    ASSERT_EQ(m.ts, 1764000000000LL);
    ASSERT_STR_EQ(m.text, "本人確認書類を\nお願いします");
    char *json;
    ASSERT_OK(md_dc_build(&m, &json));
    md_dc_msg back;
    ASSERT_OK(parse(MD_DC_CHANNEL_CHAT, json, &back));
    ASSERT_STR_EQ(back.text, m.text);
    free(json);
    md_dc_msg_clear(&back);
    md_dc_msg_clear(&m);

    expect(MD_DC_CHANNEL_CHAT, "{\"type\":\"chat_ack\",\"id\":\"m-1\"}", 0);
    /* Strictness. */
    expect(MD_DC_CHANNEL_CHAT, "{\"type\":\"chat_ack\",\"id\":\"m-1\",\"x\":1}", -MD_E_DC_PROTOCOL);
    expect(MD_DC_CHANNEL_CHAT, "{\"type\":\"chat\",\"id\":\"m\",\"ts\":1}", -MD_E_DC_PROTOCOL);
    expect(MD_DC_CHANNEL_CHAT, "{\"type\":\"chat\",\"id\":\"m\",\"ts\":1.5,\"text\":\"a\"}",
           -MD_E_DC_PROTOCOL);
    expect(MD_DC_CHANNEL_CHAT, "{\"type\":\"chat\",\"id\":\"m\",\"ts\":-1,\"text\":\"a\"}",
           -MD_E_DC_PROTOCOL);
    expect(MD_DC_CHANNEL_CHAT, "{\"type\":\"chat\",\"id\":\"a/b\",\"ts\":1,\"text\":\"a\"}",
           -MD_E_DC_PROTOCOL);
    expect(MD_DC_CHANNEL_CHAT, "{\"type\":\"chat_ack\",\"id\":\"a\",\"id\":\"b\"}", -MD_E_BAD_JSON);
    expect(MD_DC_CHANNEL_CHAT, "{\"type\":\"file_done\",\"id\":\"a\"}", -MD_E_UNKNOWN_TYPE);
    expect(MD_DC_CHANNEL_CHAT, "{\"type\":\"shout\",\"id\":\"a\"}", -MD_E_UNKNOWN_TYPE);
    expect(MD_DC_CHANNEL_CHAT, "{\"id\":\"a\"}", -MD_E_DC_PROTOCOL);
    expect(MD_DC_CHANNEL_CHAT, "[1]", -MD_E_DC_PROTOCOL);
    expect(MD_DC_CHANNEL_CHAT, "{\"type\":", -MD_E_BAD_JSON);
    /* Text: empty, control characters, NUL, too long. */
    expect(MD_DC_CHANNEL_CHAT, "{\"type\":\"chat\",\"id\":\"m\",\"ts\":1,\"text\":\"\"}",
           -MD_E_CHAT_INVALID);
    expect(MD_DC_CHANNEL_CHAT, "{\"type\":\"chat\",\"id\":\"m\",\"ts\":1,\"text\":\"a\\u001bb\"}",
           -MD_E_CHAT_INVALID);
    expect(MD_DC_CHANNEL_CHAT, "{\"type\":\"chat\",\"id\":\"m\",\"ts\":1,\"text\":\"a\\u0000b\"}",
           -MD_E_BAD_JSON);
    GString *s = g_string_new("{\"type\":\"chat\",\"id\":\"m\",\"ts\":1,\"text\":\"");
    for (int i = 0; i < 2001; i++)
        g_string_append_c(s, 'a');
    g_string_append(s, "\"}");
    expect(MD_DC_CHANNEL_CHAT, s->str, -MD_E_CHAT_INVALID);
    md_dc_limits lim = {.max_chat_bytes = 4000};
    ASSERT_OK(md_dc_parse(MD_DC_CHANNEL_CHAT, s->str, s->len, &lim, &m));
    md_dc_msg_clear(&m);
    g_string_free(s, TRUE);

    char big[MD_DC_JSON_MAX + 2];
    memset(big, ' ', sizeof(big));
    ASSERT_EQ(md_dc_parse(MD_DC_CHANNEL_CHAT, big, sizeof(big), NULL, &m), -MD_E_TOO_LARGE);
}

static char *offer_json(const char *name, long long size, const char *mime, const char *kind,
                        const char *extra)
{
    return g_strdup_printf("{\"type\":\"file_offer\",\"id\":\"f1\",\"index\":7,\"name\":\"%s\","
                           "\"size\":%lld,\"mime\":\"%s\",\"sha256\":\"%s\",\"kind\":\"%s\"%s}",
                           name, size, mime, HASH, kind, extra);
}

static void expect_offer(const char *name, long long size, const char *mime, const char *kind,
                         const char *extra, int code)
{
    char *j = offer_json(name, size, mime, kind, extra);
    expect(MD_DC_CHANNEL_FILE, j, code);
    g_free(j);
}

static void test_file_messages(void)
{
    md_dc_msg m;
    char *j = offer_json("住民票.pdf", 123456, "application/pdf", "file", "");
    ASSERT_OK(parse(MD_DC_CHANNEL_FILE, j, &m));
    g_free(j);
    ASSERT_EQ(m.type, MD_DC_FILE_OFFER);
    ASSERT_EQ(m.index, 7);
    ASSERT_STR_EQ(m.name, "住民票.pdf");
    ASSERT_EQ(m.size, 123456);
    ASSERT_STR_EQ(m.mime, "application/pdf");
    ASSERT_STR_EQ(m.sha256, HASH);
    ASSERT_EQ(m.kind, MD_DC_KIND_FILE);

    expect_offer("photo.jpg", 5000000, "image/jpeg", "still", ",\"width\":4032,\"height\":3024", 0);
    expect_offer("photo.jpg", 5000000, "image/jpeg", "file", ",\"width\":4032", -MD_E_DC_PROTOCOL);
    expect_offer("doc.pdf", 5000, "application/pdf", "still", "", -MD_E_FILE_TYPE);
    expect_offer("x.gif", 5000, "image/gif", "file", "", -MD_E_FILE_TYPE);
    expect_offer("big.pdf", (20LL << 20) + 1, "application/pdf", "file", "", -MD_E_FILE_TOO_LARGE);
    expect_offer("empty.pdf", 0, "application/pdf", "file", "", -MD_E_DC_PROTOCOL);
    expect_offer("../etc/passwd", 10, "application/pdf", "file", "", -MD_E_FILE_NAME);
    expect_offer("a\\\\b.pdf", 10, "application/pdf", "file", "", -MD_E_FILE_NAME);
    expect_offer("a\\u0007.pdf", 10, "application/pdf", "file", "", -MD_E_FILE_NAME);
    expect_offer("invoice\\u202efdp.exe", 10, "application/pdf", "file", "", -MD_E_FILE_NAME);
    expect_offer("still", 10, "image/png", "video", "", -MD_E_DC_PROTOCOL);
    expect_offer("p.png", 10, "image/png", "still", ",\"width\":0", -MD_E_DC_PROTOCOL);
    expect_offer("p.png", 10, "image/png", "still", "", -MD_E_DC_PROTOCOL); /* sides required */

    /* Policy: a smaller cap and only PDF. */
    static const char *const pdf_only[] = {"application/pdf", NULL};
    md_dc_limits lim = {.max_file_size = 1000, .allowed_mime = pdf_only};
    j = offer_json("p.png", 10, "image/png", "file", "");
    ASSERT_EQ(md_dc_parse(MD_DC_CHANNEL_FILE, j, strlen(j), &lim, &m), -MD_E_FILE_TYPE);
    g_free(j);
    j = offer_json("p.pdf", 1001, "application/pdf", "file", "");
    ASSERT_EQ(md_dc_parse(MD_DC_CHANNEL_FILE, j, strlen(j), &lim, &m), -MD_E_FILE_TOO_LARGE);
    g_free(j);

    expect(MD_DC_CHANNEL_FILE, "{\"type\":\"file_accept\",\"id\":\"f1\"}", 0);
    expect(MD_DC_CHANNEL_FILE,
           "{\"type\":\"file_refuse\",\"id\":\"f1\",\"code\":\"file_too_large\"}", 0);
    expect(MD_DC_CHANNEL_FILE, "{\"type\":\"file_refuse\",\"id\":\"f1\",\"code\":\"Too Large\"}",
           -MD_E_DC_PROTOCOL);
    expect(MD_DC_CHANNEL_FILE, "{\"type\":\"file_progress\",\"id\":\"f1\",\"bytes\":65536}", 0);
    expect(MD_DC_CHANNEL_FILE, "{\"type\":\"file_done\",\"id\":\"f1\"}", 0);
    expect(MD_DC_CHANNEL_FILE, "{\"type\":\"file_verified\",\"id\":\"f1\",\"sha256\":\"ABC\"}",
           -MD_E_DC_PROTOCOL);
    expect(MD_DC_CHANNEL_FILE,
           "{\"type\":\"file_error\",\"id\":\"f1\",\"code\":\"file_hash_mismatch\"}", 0);
    expect(MD_DC_CHANNEL_FILE, "{\"type\":\"file_cancel\",\"id\":\"f1\"}", 0);
    expect(MD_DC_CHANNEL_FILE, "{\"type\":\"still_request\",\"id\":\"s1\"}",
           -MD_E_UNKNOWN_TYPE); /* a still is asked for over signaling ("still") */
    expect(MD_DC_CHANNEL_FILE, "{\"type\":\"chat\",\"id\":\"m\",\"ts\":1,\"text\":\"a\"}",
           -MD_E_UNKNOWN_TYPE);

    /* Every type round-trips. */
    for (md_dc_msg_type t = MD_DC_CHAT; t <= MD_DC_FILE_CANCEL; t++) {
        md_dc_msg src = m, back;
        src.type = t;
        src.text = (char *)"hello";
        src.bytes = 42;
        g_strlcpy(src.code, "file_hash_mismatch", sizeof(src.code));
        char *json;
        ASSERT_OK(md_dc_build(&src, &json));
        md_dc_channel ch = t <= MD_DC_CHAT_ACK ? MD_DC_CHANNEL_CHAT : MD_DC_CHANNEL_FILE;
        if (md_dc_parse(ch, json, strlen(json), NULL, &back) < 0)
            MD_FAIL("round trip of %s: %s", md_dc_type_name(t), json);
        ASSERT_EQ(back.type, t);
        ASSERT_STR_EQ(back.id, src.id);
        md_dc_msg_clear(&back);
        free(json);
    }
}

static const uint8_t png_head[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};

static void test_sniff_and_chunks(void)
{
    ASSERT_STR_EQ(md_dc_sniff_mime((const uint8_t *)"\xff\xd8\xff\xe0", 4), "image/jpeg");
    ASSERT_STR_EQ(md_dc_sniff_mime(png_head, 8), "image/png");
    ASSERT(md_dc_sniff_mime(png_head, 7) == NULL);
    ASSERT_STR_EQ(md_dc_sniff_mime((const uint8_t *)"%PDF-1.7\n", 9), "application/pdf");
    ASSERT(md_dc_sniff_mime((const uint8_t *)"GIF89a", 6) == NULL);
    ASSERT(md_dc_sniff_mime((const uint8_t *)"MZ\x90", 3) == NULL);

    uint8_t buf[MD_DC_CHUNK_HEADER + 3];
    md_dc_chunk_header(7, 0x0102030405ULL, buf);
    memcpy(buf + MD_DC_CHUNK_HEADER, "abc", 3);
    uint32_t index;
    uint64_t offset;
    const uint8_t *payload;
    size_t n;
    ASSERT_OK(md_dc_chunk_parse(buf, sizeof(buf), &index, &offset, &payload, &n));
    ASSERT_EQ(index, 7);
    ASSERT_EQ(offset, 0x0102030405ULL);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(md_dc_chunk_parse(buf, MD_DC_CHUNK_HEADER, &index, &offset, &payload, &n),
              -MD_E_DC_PROTOCOL);
    md_dc_chunk_header(0, 0, buf);
    ASSERT_EQ(md_dc_chunk_parse(buf, sizeof(buf), &index, &offset, &payload, &n),
              -MD_E_DC_PROTOCOL);
}

/* A fake file: magic then filler. */
static uint8_t *make_file(const uint8_t *magic, size_t magic_len, size_t size, char hex[65])
{
    uint8_t *f = g_malloc(size);
    for (size_t i = 0; i < size; i++)
        f[i] = (uint8_t)(i * 7);
    memcpy(f, magic, MIN(magic_len, size));
    ASSERT_OK(md_sha256_hex(f, size, hex));
    return f;
}

static md_dc_msg offer_for(const char *mime, size_t size, const char *hex)
{
    md_dc_msg m;
    memset(&m, 0, sizeof(m));
    m.type = MD_DC_FILE_OFFER;
    strcpy(m.id, "f1");
    m.index = 3;
    strcpy(m.name, "x");
    m.size = size;
    g_strlcpy(m.mime, mime, sizeof(m.mime));
    g_strlcpy(m.sha256, hex, sizeof(m.sha256));
    return m;
}

/* Sends f in chunks of `step`; returns the first error or finish's result. */
static int receive(const md_dc_msg *offer, const uint8_t *f, size_t size, size_t step,
                   uint32_t index)
{
    md_dc_file_rx *rx;
    uint8_t chunk[MD_DC_CHUNK_HEADER + MD_DC_CHUNK_MAX];
    int r = md_dc_file_rx_new(offer, NULL, &rx);
    if (r < 0)
        return r;
    for (size_t off = 0; off < size; off += step) {
        size_t n = MIN(step, size - off);
        const uint8_t *p;
        size_t plen;
        md_dc_chunk_header(index, off, chunk);
        memcpy(chunk + MD_DC_CHUNK_HEADER, f + off, n);
        if ((r = md_dc_file_rx_chunk(rx, chunk, MD_DC_CHUNK_HEADER + n, &p, &plen)) < 0)
            goto out;
        ASSERT_EQ(plen, n);
        ASSERT(memcmp(p, f + off, n) == 0);
    }
    ASSERT_EQ(md_dc_file_rx_received(rx), size);
    uint8_t digest[MD_SHA256_LEN];
    r = md_dc_file_rx_finish(rx, digest);
out:
    md_dc_file_rx_free(rx);
    return r;
}

static void test_file_rx(void)
{
    char hex[65];
    uint8_t *png = make_file(png_head, 8, 300000, hex);
    md_dc_msg offer = offer_for("image/png", 300000, hex);
    ASSERT_OK(receive(&offer, png, 300000, MD_DC_CHUNK_MAX, 3));
    ASSERT_OK(receive(&offer, png, 300000, 5, 3)); /* magic split over chunks */
    ASSERT_EQ(receive(&offer, png, 300000, MD_DC_CHUNK_MAX, 4), -MD_E_DC_PROTOCOL);
    ASSERT_EQ(receive(&offer, png, 299999, MD_DC_CHUNK_MAX, 3), -MD_E_FILE_HASH); /* short */
    offer.size = 299999; /* more bytes than offered */
    ASSERT_EQ(receive(&offer, png, 300000, MD_DC_CHUNK_MAX, 3), -MD_E_FILE_HASH);
    offer = offer_for("image/png", 300000, HASH); /* wrong digest */
    ASSERT_EQ(receive(&offer, png, 300000, MD_DC_CHUNK_MAX, 3), -MD_E_FILE_HASH);
    /* Claimed JPEG, content PNG: refused on the first chunk. */
    offer = offer_for("image/jpeg", 300000, hex);
    ASSERT_EQ(receive(&offer, png, 300000, MD_DC_CHUNK_MAX, 3), -MD_E_FILE_TYPE_MISMATCH);
    g_free(png);

    /* Content not an allowed type at all (an executable claiming PDF). */
    uint8_t *exe = make_file((const uint8_t *)"MZ\x90\x00", 4, 5000, hex);
    offer = offer_for("application/pdf", 5000, hex);
    ASSERT_EQ(receive(&offer, exe, 5000, 1000, 3), -MD_E_FILE_TYPE);
    g_free(exe);

    /* A 3-byte JPEG: the type check happens at the last byte. */
    uint8_t *tiny = make_file((const uint8_t *)"\xff\xd8\xff", 3, 3, hex);
    offer = offer_for("image/jpeg", 3, hex);
    ASSERT_OK(receive(&offer, tiny, 3, 1, 3));
    g_free(tiny);

    /* Out-of-order chunk. */
    md_dc_file_rx *rx;
    uint8_t chunk[MD_DC_CHUNK_HEADER + 4];
    const uint8_t *p;
    size_t n;
    offer = offer_for("image/png", 100, HASH);
    ASSERT_OK(md_dc_file_rx_new(&offer, NULL, &rx));
    md_dc_chunk_header(3, 10, chunk);
    ASSERT_EQ(md_dc_file_rx_chunk(rx, chunk, sizeof(chunk), &p, &n), -MD_E_DC_PROTOCOL);
    ASSERT_EQ(md_dc_file_rx_chunk(rx, chunk, sizeof(chunk), &p, &n), -MD_E_DC_PROTOCOL);
    ASSERT_EQ(md_dc_file_rx_finish(rx, NULL), -MD_E_DC_PROTOCOL);
    md_dc_file_rx_free(rx);
}

int main(void)
{
    RUN(test_chat_messages);
    RUN(test_file_messages);
    RUN(test_sniff_and_chunks);
    RUN(test_file_rx);
    return 0;
}
