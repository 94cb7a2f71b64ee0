/*
 * DCEP (RFC 8832): OPEN/ACK round trips for every channel type, the exact
 * bytes of a browser's OPEN, strict refusal of malformed messages (short,
 * trailing bytes, bad lengths, unknown type, invalid UTF-8, NUL), the
 * label cap, and the stream parity rule of RFC 8832 6.
 */
#include "md_dcep.h"
#include "md_err.h"
#include "md_test.h"

#include <errno.h>

/* new RTCDataChannel("chat") in Chromium: reliable, priority 256. */
static const uint8_t chrome_open[] = {0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
                                      0x00, 0x04, 0x00, 0x00, 'c',  'h',  'a',  't'};

static void test_parse_browser_open(void)
{
    md_dcep_open o;
    ASSERT_EQ(md_dcep_message_type(chrome_open, sizeof(chrome_open)), MD_DCEP_OPEN);
    ASSERT_OK(md_dcep_parse_open(chrome_open, sizeof(chrome_open), &o));
    ASSERT_EQ(o.channel_type, MD_DCEP_RELIABLE);
    ASSERT_EQ(o.priority, 256);
    ASSERT_EQ(o.reliability, 0);
    ASSERT_STR_EQ(o.label, "chat");
    ASSERT_STR_EQ(o.protocol, "");
    ASSERT(md_dcep_ordered(o.channel_type));
    ASSERT_EQ(md_dcep_pr_policy(o.channel_type), 0);
}

static void test_round_trip_all_types(void)
{
    static const uint8_t types[] = {MD_DCEP_RELIABLE,
                                    MD_DCEP_RELIABLE_UNORDERED,
                                    MD_DCEP_PARTIAL_RELIABLE_REXMIT,
                                    MD_DCEP_PARTIAL_RELIABLE_REXMIT_UNORDERED,
                                    MD_DCEP_PARTIAL_RELIABLE_TIMED,
                                    MD_DCEP_PARTIAL_RELIABLE_TIMED_UNORDERED};
    for (size_t i = 0; i < sizeof(types); i++) {
        md_dcep_open o = {.channel_type = types[i], .priority = 512, .reliability = 1500};
        md_dcep_open back;
        uint8_t buf[MD_DCEP_MAX_OPEN_LEN];
        strcpy(o.label, "ファイル");
        strcpy(o.protocol, "madoguchi-file/1");
        int n = md_dcep_build_open(&o, buf, sizeof(buf));
        ASSERT_EQ(n, MD_DCEP_HEADER_LEN + strlen(o.label) + strlen(o.protocol));
        ASSERT_OK(md_dcep_parse_open(buf, (size_t)n, &back));
        ASSERT_EQ(back.channel_type, types[i]);
        ASSERT_EQ(back.priority, 512);
        /* RFC 8832 5.1: reliable channels carry and read 0. */
        ASSERT_EQ(back.reliability, (types[i] & 0x7f) ? 1500 : 0);
        ASSERT_STR_EQ(back.label, o.label);
        ASSERT_STR_EQ(back.protocol, o.protocol);
        ASSERT_EQ(md_dcep_ordered(types[i]), (types[i] & 0x80) == 0);
        ASSERT_EQ(md_dcep_pr_policy(types[i]), types[i] & 3);
        ASSERT_EQ(md_dcep_build_open(&o, buf, (size_t)n - 1), -ENOBUFS);
    }
    uint8_t ack[4];
    ASSERT_EQ(md_dcep_build_ack(ack, sizeof(ack)), 1);
    ASSERT_OK(md_dcep_parse_ack(ack, 1));
    ASSERT_EQ(md_dcep_message_type(ack, 1), MD_DCEP_ACK);
    ASSERT_EQ(md_dcep_build_ack(ack, 0), -ENOBUFS);
}

static void expect_bad(const uint8_t *buf, size_t len, int code)
{
    md_dcep_open o;
    memset(&o, 0x5a, sizeof(o));
    ASSERT_EQ(md_dcep_parse_open(buf, len, &o), code);
    ASSERT_EQ(o.label[0], 0x5a); /* untouched on failure */
}

static void test_refuses_malformed(void)
{
    uint8_t b[64];
    memcpy(b, chrome_open, sizeof(chrome_open));
    expect_bad(b, 0, -MD_E_DC_PROTOCOL);
    expect_bad(b, 11, -MD_E_DC_PROTOCOL);                      /* short header */
    expect_bad(b, sizeof(chrome_open) - 1, -MD_E_DC_PROTOCOL); /* label cut */
    b[sizeof(chrome_open)] = 'x';
    expect_bad(b, sizeof(chrome_open) + 1, -MD_E_DC_PROTOCOL); /* trailing byte */
    b[1] = 0x03;
    expect_bad(b, sizeof(chrome_open), -MD_E_DC_PROTOCOL); /* unknown channel type */
    b[1] = 0x00;
    b[0] = 0x02;
    expect_bad(b, sizeof(chrome_open), -MD_E_DC_PROTOCOL); /* an ACK is no OPEN */
    b[0] = 0x03;
    b[12] = 0xff;
    expect_bad(b, sizeof(chrome_open), -MD_E_DC_PROTOCOL); /* not UTF-8 */
    b[12] = 0x00;
    expect_bad(b, sizeof(chrome_open), -MD_E_DC_PROTOCOL); /* NUL */
    b[12] = 'c';
    b[9] = 0xff; /* label length beyond the buffer */
    expect_bad(b, sizeof(chrome_open), -MD_E_DC_PROTOCOL);

    /* A well-formed but long label is refused, not truncated. */
    uint8_t big[12 + 300];
    memset(big, 'a', sizeof(big));
    memcpy(big, chrome_open, 12);
    big[8] = 300 >> 8;
    big[9] = 300 & 0xff;
    expect_bad(big, sizeof(big), -MD_E_DC_REFUSED);

    ASSERT_EQ(md_dcep_parse_ack((const uint8_t *)"\x02\x00", 2), -MD_E_DC_PROTOCOL);
    ASSERT_EQ(md_dcep_parse_ack((const uint8_t *)"\x03", 1), -MD_E_DC_PROTOCOL);
    ASSERT_EQ(md_dcep_message_type((const uint8_t *)"\x04", 1), -MD_E_DC_PROTOCOL);
    ASSERT_EQ(md_dcep_message_type(NULL, 0), -MD_E_DC_PROTOCOL);

    md_dcep_open o = {.channel_type = 0x42};
    ASSERT_EQ(md_dcep_build_open(&o, b, sizeof(b)), -EINVAL);
}

static void test_stream_parity(void)
{
    /* The gateway answers a=setup:passive: DTLS server, odd streams. */
    ASSERT_EQ(md_dcep_first_local_stream(false), 1);
    ASSERT_EQ(md_dcep_first_local_stream(true), 0);
    ASSERT(md_dcep_stream_is_local(1, false));
    ASSERT(!md_dcep_stream_is_local(2, false));
    ASSERT(md_dcep_stream_is_local(2, true));
    ASSERT_OK(md_dcep_check_remote_stream(0, false));
    ASSERT_OK(md_dcep_check_remote_stream(4, false));
    ASSERT_EQ(md_dcep_check_remote_stream(3, false), -MD_E_DC_REFUSED);
    ASSERT_EQ(md_dcep_check_remote_stream(2, true), -MD_E_DC_REFUSED);
    ASSERT_OK(md_dcep_check_remote_stream(3, true));
    ASSERT_EQ(md_dcep_check_remote_stream(65535, true), -MD_E_DC_REFUSED);
}

int main(void)
{
    RUN(test_parse_browser_open);
    RUN(test_round_trip_all_types);
    RUN(test_refuses_malformed);
    RUN(test_stream_parity);
    return 0;
}
