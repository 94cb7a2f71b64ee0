/*
 * HOTP against RFC 4226 Appendix D, TOTP against every RFC 6238 Appendix B
 * vector, and md_totp_check's window, replay and input rules.
 */
#include "md_crypto.h"
#include "md_err.h"
#include "md_test.h"
#include "md_totp.h"

#include <errno.h>

/* RFC 6238 Appendix B seeds: the ASCII digits repeated to the hash's size. */
static const char seed_sha1[] = "12345678901234567890";
static const char seed_sha256[] = "12345678901234567890123456789012";
static const char seed_sha512[] =
    "1234567890123456789012345678901234567890123456789012345678901234";
/* base32 of seed_sha1 */
static const char secret_sha1[] = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

static void test_hotp_rfc4226(void)
{
    /* RFC 4226 Appendix D, counters 0..9. */
    static const uint32_t want[] = {755224, 287082, 359152, 969429, 338314,
                                    254676, 287922, 162583, 399871, 520489};
    for (uint64_t c = 0; c < 10; c++) {
        uint32_t code = 0;
        ASSERT_OK(md_hotp("SHA1", (const uint8_t *)seed_sha1, 20, c, 6, &code));
        ASSERT_EQ(code, want[c]);
    }
}

static void test_hotp_arguments(void)
{
    uint32_t code = 42;
    ASSERT_EQ(md_hotp("SHA1", (const uint8_t *)seed_sha1, 20, 0, 5, &code), -EINVAL);
    ASSERT_EQ(md_hotp("SHA1", (const uint8_t *)seed_sha1, 20, 0, 9, &code), -EINVAL);
    ASSERT_EQ(md_hotp("MD5", (const uint8_t *)seed_sha1, 20, 0, 6, &code), -EINVAL);
    ASSERT_EQ(code, 42);
    ASSERT_EQ(md_totp_at("SHA1", (const uint8_t *)seed_sha1, 20, -1, 6, &code), -EINVAL);
    ASSERT_EQ(code, 42);
    /* 7 digits: same truncated value, one more digit kept. */
    ASSERT_OK(md_hotp("SHA1", (const uint8_t *)seed_sha1, 20, 0, 7, &code));
    ASSERT_EQ(code, 4755224); /* 0x4c93cf18 = 1284755224 */
}

static void test_totp_rfc6238(void)
{
    /* RFC 6238 Appendix B, all 18 rows. */
    static const struct {
        int64_t t;
        const char *digest;
        uint32_t code;
    } rows[] = {
        {59, "SHA1", 94287082},
        {59, "SHA256", 46119246},
        {59, "SHA512", 90693936},
        {1111111109, "SHA1", 7081804},
        {1111111109, "SHA256", 68084774},
        {1111111109, "SHA512", 25091201},
        {1111111111, "SHA1", 14050471},
        {1111111111, "SHA256", 67062674},
        {1111111111, "SHA512", 99943326},
        {1234567890, "SHA1", 89005924},
        {1234567890, "SHA256", 91819424},
        {1234567890, "SHA512", 93441116},
        {2000000000, "SHA1", 69279037},
        {2000000000, "SHA256", 90698825},
        {2000000000, "SHA512", 38618901},
        {20000000000, "SHA1", 65353130},
        {20000000000, "SHA256", 77737706},
        {20000000000, "SHA512", 47863826},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *seed = strcmp(rows[i].digest, "SHA1") == 0     ? seed_sha1
                           : strcmp(rows[i].digest, "SHA256") == 0 ? seed_sha256
                                                                   : seed_sha512;
        uint32_t code = 0;
        ASSERT_OK(
            md_totp_at(rows[i].digest, (const uint8_t *)seed, strlen(seed), rows[i].t, 8, &code));
        if (code != rows[i].code)
            MD_FAIL("row %zu (%s at %" PRId64 "): %08u, want %08u", i, rows[i].digest, rows[i].t,
                    (unsigned)code, (unsigned)rows[i].code);
    }
}

/* With the RFC 4226 seed, step n's 6-digit TOTP is HOTP(n): Appendix D. */
#define AT_STEP(n, s) ((int64_t)(n)*MD_TOTP_STEP_S + (s))

static void test_check_window(void)
{
    /* Now is step 5 (10 s in): steps 4, 5 and 6 are accepted. */
    int64_t now = AT_STEP(5, 10);
    ASSERT_EQ(md_totp_check(secret_sha1, "338314", now, 0), 4);
    ASSERT_EQ(md_totp_check(secret_sha1, "254676", now, 0), 5);
    ASSERT_EQ(md_totp_check(secret_sha1, "287922", now, 0), 6);
    ASSERT_EQ(md_totp_check(secret_sha1, "969429", now, 0), -MD_E_TOTP); /* step 3 */
    ASSERT_EQ(md_totp_check(secret_sha1, "162583", now, 0), -MD_E_TOTP); /* step 7 */
    ASSERT_EQ(md_totp_check(secret_sha1, "000000", now, 0), -MD_E_TOTP);
    /* Window edges follow the step boundary, not "now +- 30 s". */
    ASSERT_EQ(md_totp_check(secret_sha1, "338314", AT_STEP(5, 29), 0), 4);
    ASSERT_EQ(md_totp_check(secret_sha1, "338314", AT_STEP(6, 0), 0), -MD_E_TOTP);
    /* Lower case and spaces in the stored secret are fine. */
    ASSERT_EQ(md_totp_check("gezd gnbv gy3t qojq gezd gnbv gy3t qojq", "254676", now, 0), 5);
}

static void test_check_replay(void)
{
    int64_t now = AT_STEP(5, 10);
    /* Step 5 was accepted: it and everything before are spent. */
    ASSERT_EQ(md_totp_check(secret_sha1, "254676", now, 5), -MD_E_TOTP);
    ASSERT_EQ(md_totp_check(secret_sha1, "338314", now, 5), -MD_E_TOTP);
    ASSERT_EQ(md_totp_check(secret_sha1, "287922", now, 5), 6);
    /* After a code from the future step, even the current step's code is spent. */
    ASSERT_EQ(md_totp_check(secret_sha1, "254676", now, 6), -MD_E_TOTP);
    ASSERT_EQ(md_totp_check(secret_sha1, "287922", now, 6), -MD_E_TOTP);
    /* Time moves on: the next step's code works once. */
    ASSERT_EQ(md_totp_check(secret_sha1, "162583", AT_STEP(7, 0), 6), 7);
    ASSERT_EQ(md_totp_check(secret_sha1, "162583", AT_STEP(7, 1), 7), -MD_E_TOTP);
}

static void test_check_input(void)
{
    int64_t now = AT_STEP(5, 10);
    const char *bad[] = {"",       "25467",  "2546760",      " 254676",  "254676 ", "+25467",
                         "-25467", "25467a", "２５４６７６", "254676\n", "0x1234",  "254 676"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (md_totp_check(secret_sha1, bad[i], now, 0) != -MD_E_TOTP)
            MD_FAIL("accepted code #%zu", i);
    ASSERT(md_totp_check(secret_sha1, NULL, now, 0) < 0);
    ASSERT_EQ(md_totp_check("not base32!", "254676", now, 0), -EINVAL);
    ASSERT_EQ(md_totp_check("", "254676", now, 0), -EINVAL);
    ASSERT(md_totp_check(secret_sha1, "254676", -1, 0) < 0);
    /* A secret longer than any HMAC block is refused, not truncated. */
    char long_secret[200];
    memset(long_secret, 'A', sizeof(long_secret) - 1);
    long_secret[sizeof(long_secret) - 1] = '\0';
    ASSERT_EQ(md_totp_check(long_secret, "254676", now, 0), -EINVAL);
}

static void test_new_secret_and_uri(void)
{
    char *a = NULL, *b = NULL;
    uint8_t key[64];

    ASSERT_OK(md_totp_new_secret(&a));
    ASSERT_OK(md_totp_new_secret(&b));
    ASSERT_EQ(strlen(a), 32);
    ASSERT(strcmp(a, b) != 0);
    ASSERT_EQ(md_base32_decode(a, key, sizeof(key)), MD_TOTP_SECRET_LEN);

    /* A fresh secret works end to end with md_totp_at. */
    uint32_t code;
    char text[8];
    int64_t now = 1800000000;
    ASSERT_OK(md_totp_at("SHA1", key, MD_TOTP_SECRET_LEN, now, 6, &code));
    snprintf(text, sizeof(text), "%06u", (unsigned)code);
    ASSERT_EQ(md_totp_check(a, text, now, 0), now / MD_TOTP_STEP_S);

    char *uri = md_totp_uri("madoguchi", "alice", secret_sha1);
    ASSERT_STR_EQ(uri, "otpauth://totp/madoguchi:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
                       "&issuer=madoguchi&digits=6&period=30");
    free(uri);
    uri = md_totp_uri("Madoguchi City", "bob@kita.example", "MZXW6");
    ASSERT_STR_EQ(uri, "otpauth://totp/Madoguchi%20City:bob%40kita.example?secret=MZXW6"
                       "&issuer=Madoguchi%20City&digits=6&period=30");
    free(uri);
    ASSERT(md_totp_uri(NULL, "alice", "MZXW6") == NULL);

    free(a);
    free(b);
}

int main(void)
{
    RUN(test_hotp_rfc4226);
    RUN(test_hotp_arguments);
    RUN(test_totp_rfc6238);
    RUN(test_check_window);
    RUN(test_check_replay);
    RUN(test_check_input);
    RUN(test_new_secret_and_uri);
    return 0;
}
