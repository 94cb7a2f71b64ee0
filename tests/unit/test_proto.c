/* Message validation: every schema rule of docs/protocol.md gives its code. */
#include "md_err.h"
#include "md_proto.h"
#include "md_test.h"

#include <glib.h>

static int parse(const char *text, unsigned sender, md_proto_result *r)
{
    static const md_proto_limits lim = {.sdp_bytes = 32768, .candidate_bytes = 512};
    return md_proto_parse(text, strlen(text), sender, &lim, r);
}

static void expect(const char *text, unsigned sender, int code)
{
    md_proto_result r;
    int got = parse(text, sender, &r);
    if (got != code)
        MD_FAIL("%s: got %s, want %s", text, md_err_code(got), md_err_code(code));
    if (code < 0)
        ASSERT(r.detail != NULL && r.msg == NULL);
    md_proto_result_clear(&r);
}

static void test_valid_messages(void)
{
    md_proto_result r;
    ASSERT_EQ(parse("{\"type\":\"request\",\"procedure\":\"mynumber.new\",\"id\":\"r1\"}",
                    MD_SENDER_TABLET, &r),
              0);
    ASSERT_EQ(r.type, MD_MSG_REQUEST);
    ASSERT_STR_EQ(r.id, "r1");
    ASSERT_STR_EQ(json_string_value(json_object_get(r.msg, "procedure")), "mynumber.new");
    md_proto_result_clear(&r);

    expect("{\"type\":\"accept\",\"session\":\"abc\"}", MD_SENDER_VERIFIER, 0);
    expect("{\"type\":\"outcome\",\"session\":\"abc\",\"result\":\"verified\"}", MD_SENDER_VERIFIER,
           0);
    expect(
        "{\"type\":\"outcome\",\"session\":\"abc\",\"result\":\"aborted\",\"reason\":\"音声不良\"}",
        MD_SENDER_VERIFIER, 0);
    expect("{\"type\":\"candidate\",\"session\":\"abc\",\"candidate\":null}", MD_SENDER_TABLET, 0);
    expect("{\"type\":\"candidate\",\"session\":\"abc\",\"candidate\":\"candidate:1 1 udp 1 "
           "127.0.0.1 9 typ host\",\"mid\":\"0\"}",
           MD_SENDER_VERIFIER, 0);
    expect("{\"type\":\"hangup\",\"session\":\"abc\"}", MD_SENDER_TABLET, 0);
    expect("{\"type\":\"record\",\"session\":\"abc\",\"action\":\"start\"}", MD_SENDER_VERIFIER, 0);
    expect("{\"type\":\"record\",\"session\":\"abc\",\"action\":\"stop\"}", MD_SENDER_VERIFIER, 0);
    expect("{\"type\":\"consent\",\"session\":\"abc\",\"given\":true}", MD_SENDER_TABLET, 0);
    expect("{\"type\":\"consent\",\"session\":\"abc\",\"given\":false}", MD_SENDER_TABLET, 0);
}

/* record and consent (docs/protocol.md "Recording"): who may send them, and
 * "given" is a JSON boolean, not a truthy string or number. */
static void test_recording_messages(void)
{
    expect("{\"type\":\"record\",\"session\":\"a\",\"action\":\"pause\"}", MD_SENDER_VERIFIER,
           -MD_E_SCHEMA);
    expect("{\"type\":\"record\",\"session\":\"a\"}", MD_SENDER_VERIFIER, -MD_E_SCHEMA);
    expect("{\"type\":\"record\",\"session\":\"a\",\"action\":\"start\"}", MD_SENDER_TABLET,
           -MD_E_FORBIDDEN);
    expect("{\"type\":\"consent\",\"session\":\"a\",\"given\":true}", MD_SENDER_VERIFIER,
           -MD_E_FORBIDDEN);
    expect("{\"type\":\"consent\",\"session\":\"a\",\"given\":\"true\"}", MD_SENDER_TABLET,
           -MD_E_SCHEMA);
    expect("{\"type\":\"consent\",\"session\":\"a\",\"given\":1}", MD_SENDER_TABLET, -MD_E_SCHEMA);
    expect("{\"type\":\"consent\",\"session\":\"a\",\"given\":null}", MD_SENDER_TABLET,
           -MD_E_SCHEMA);
    expect("{\"type\":\"consent\",\"session\":\"a\"}", MD_SENDER_TABLET, -MD_E_SCHEMA);
    ASSERT_STR_EQ(md_err_code(-MD_E_RECORDING_OFF), "recording_off");
    ASSERT_STR_EQ(md_err_code(-MD_E_CONSENT_REFUSED), "consent_refused");
}

static void test_bad_json(void)
{
    expect("{\"type\":", MD_SENDER_TABLET, -MD_E_BAD_JSON);
    expect("[]", MD_SENDER_TABLET, -MD_E_BAD_JSON);
    expect("\"request\"", MD_SENDER_TABLET, -MD_E_BAD_JSON);
    expect("", MD_SENDER_TABLET, -MD_E_BAD_JSON);
    /* Duplicate keys could smuggle a second meaning past a validator. */
    expect("{\"type\":\"hangup\",\"session\":\"a\",\"session\":\"b\"}", MD_SENDER_TABLET,
           -MD_E_BAD_JSON);
    /* Invalid UTF-8 */
    expect("{\"type\":\"request\",\"procedure\":\"\xff\xfe\"}", MD_SENDER_TABLET, -MD_E_BAD_JSON);
    /* jansson refuses \u0000 unless asked, so no field can hide a NUL. */
    expect("{\"type\":\"request\",\"procedure\":\"a\\u0000b\"}", MD_SENDER_TABLET, -MD_E_BAD_JSON);
}

static void test_unknown_type(void)
{
    expect("{\"type\":\"teleport\"}", MD_SENDER_TABLET, -MD_E_UNKNOWN_TYPE);
    expect("{\"procedure\":\"x\"}", MD_SENDER_TABLET, -MD_E_UNKNOWN_TYPE);
    expect("{\"type\":7}", MD_SENDER_TABLET, -MD_E_UNKNOWN_TYPE);
}

static void test_schema(void)
{
    expect("{\"type\":\"request\"}", MD_SENDER_TABLET, -MD_E_SCHEMA);
    expect("{\"type\":\"request\",\"procedure\":\"\"}", MD_SENDER_TABLET, -MD_E_SCHEMA);
    expect("{\"type\":\"request\",\"procedure\":5}", MD_SENDER_TABLET, -MD_E_SCHEMA);
    expect("{\"type\":\"request\",\"procedure\":\"x\",\"extra\":1}", MD_SENDER_TABLET,
           -MD_E_SCHEMA);
    expect("{\"type\":\"outcome\",\"session\":\"a\",\"result\":\"maybe\"}", MD_SENDER_VERIFIER,
           -MD_E_SCHEMA);
    expect("{\"type\":\"hangup\",\"session\":\"a\",\"id\":\"\"}", MD_SENDER_TABLET, -MD_E_SCHEMA);
    char big[200];
    snprintf(big, sizeof(big), "{\"type\":\"request\",\"procedure\":\"%0100d\"}", 0);
    expect(big, MD_SENDER_TABLET, -MD_E_SCHEMA);
    /* the id survives a schema error so the client can match the reply */
    md_proto_result r;
    ASSERT_EQ(parse("{\"type\":\"request\",\"id\":\"q7\"}", MD_SENDER_TABLET, &r), -MD_E_SCHEMA);
    ASSERT_STR_EQ(r.id, "q7");
    md_proto_result_clear(&r);
}

static void test_roles(void)
{
    expect("{\"type\":\"accept\",\"session\":\"a\"}", MD_SENDER_TABLET, -MD_E_FORBIDDEN);
    expect("{\"type\":\"request\",\"procedure\":\"x\"}", MD_SENDER_VERIFIER, -MD_E_FORBIDDEN);
    expect("{\"type\":\"outcome\",\"session\":\"a\",\"result\":\"verified\"}", MD_SENDER_TABLET,
           -MD_E_FORBIDDEN);
    expect("{\"type\":\"offer\",\"session\":\"a\",\"sdp\":\"v=0\"}", MD_SENDER_AUDITOR,
           -MD_E_FORBIDDEN);
}

/* The sdp and candidate caps are the caller's (media.max_sdp_bytes and the
 * media plane's MD_MEDIA_MAX_CANDIDATE_BYTES), not the schema's own. */
static void test_caps_from_limits(void)
{
    const md_proto_limits lim = {.sdp_bytes = 100, .candidate_bytes = 10};
    for (size_t n = 99; n <= 101; n++) {
        char *sdp = g_strnfill(n, 'v');
        char *msg = g_strdup_printf("{\"type\":\"offer\",\"session\":\"s\",\"sdp\":\"%s\"}", sdp);
        md_proto_result r;
        ASSERT_EQ(md_proto_parse(msg, strlen(msg), MD_SENDER_TABLET, &lim, &r),
                  n <= 100 ? 0 : -MD_E_SCHEMA);
        md_proto_result_clear(&r);
        g_free(msg);
        g_free(sdp);
    }
    const char *ok = "{\"type\":\"candidate\",\"session\":\"s\",\"candidate\":\"0123456789\"}";
    const char *long_ = "{\"type\":\"candidate\",\"session\":\"s\",\"candidate\":\"0123456789a\"}";
    md_proto_result r;
    ASSERT_EQ(md_proto_parse(ok, strlen(ok), MD_SENDER_TABLET, &lim, &r), 0);
    md_proto_result_clear(&r);
    ASSERT_EQ(md_proto_parse(long_, strlen(long_), MD_SENDER_TABLET, &lim, &r), -MD_E_SCHEMA);
    md_proto_result_clear(&r);
}

static void test_error_message(void)
{
    json_t *e = md_proto_error(-MD_E_DESIGNATION_EXPIRED, NULL, "r1", "s1");
    ASSERT_STR_EQ(json_string_value(json_object_get(e, "type")), "error");
    ASSERT_STR_EQ(json_string_value(json_object_get(e, "code")), "designation_expired");
    ASSERT_STR_EQ(json_string_value(json_object_get(e, "re")), "r1");
    ASSERT_STR_EQ(json_string_value(json_object_get(e, "session")), "s1");
    json_decref(e);
    ASSERT_EQ(md_err_from_code("post_office_simplified"), MD_E_SIMPLIFIED_OFFICE);
    ASSERT_STR_EQ(md_err_code(-MD_E_TOTP), "totp_invalid");
}

int main(void)
{
    RUN(test_valid_messages);
    RUN(test_bad_json);
    RUN(test_unknown_type);
    RUN(test_schema);
    RUN(test_roles);
    RUN(test_recording_messages);
    RUN(test_caps_from_limits);
    RUN(test_error_message);
    return 0;
}
