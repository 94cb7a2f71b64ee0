/*
 * HOTP (RFC 4226) and TOTP (RFC 6238) over md_hmac (see md_totp.h).  Pure
 * functions: no state, safe from any thread.  The replay rule lives in the
 * caller's storage (staff.totp_last_step); md_totp_check only refuses steps at
 * or before the one it is given and reports the step it matched so that the
 * caller can store it.
 */
#include "md_totp.h"
#include "md_crypto.h"
#include "md_err.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest secret we accept: a SHA-512 block's worth (RFC 6238 B uses 64). */
#define TOTP_SECRET_MAX 64
#define CHECK_DIGITS 6

static const uint32_t powers_of_ten[] = {1,      10,      100,      1000,     10000,
                                         100000, 1000000, 10000000, 100000000};

int md_hotp(const char *digest, const uint8_t *key, size_t key_len, uint64_t counter, int digits,
            uint32_t *ret_code)
{
    uint8_t msg[8], mac[MD_HMAC_MAX_LEN];
    size_t mac_len = 0;
    int r;

    if (!digest || !ret_code || digits < 6 || digits > 8)
        return -EINVAL;
    /* RFC 4226 5.1: the counter is an 8-byte big-endian value. */
    for (int i = 7; i >= 0; i--) {
        msg[i] = (uint8_t)(counter & 0xff);
        counter >>= 8;
    }
    r = md_hmac(digest, key, key_len, msg, sizeof(msg), mac, &mac_len);
    if (r < 0)
        return r;

    /* RFC 4226 5.3 dynamic truncation: the low nibble of the last byte picks
     * 4 bytes; the top bit is masked so the value is the same signed or not.
     * mac_len >= 20, so offset + 3 <= 18 stays inside the MAC. */
    size_t offset = mac[mac_len - 1] & 0x0f;
    uint32_t bin = (uint32_t)(mac[offset] & 0x7f) << 24 | (uint32_t)mac[offset + 1] << 16 |
                   (uint32_t)mac[offset + 2] << 8 | (uint32_t)mac[offset + 3];
    md_wipe(mac, sizeof(mac));
    *ret_code = bin % powers_of_ten[digits];
    return 0;
}

int md_totp_at(const char *digest, const uint8_t *key, size_t key_len, int64_t unix_seconds,
               int digits, uint32_t *ret_code)
{
    if (unix_seconds < 0)
        return -EINVAL;
    /* RFC 6238 4.2: T = floor((unix - T0) / X) with T0 = 0, X = 30. */
    return md_hotp(digest, key, key_len, (uint64_t)(unix_seconds / MD_TOTP_STEP_S), digits,
                   ret_code);
}

int64_t md_totp_check(const char *secret_base32, const char *code, int64_t unix_seconds,
                      int64_t last_step)
{
    uint8_t key[TOTP_SECRET_MAX];
    int64_t matched = -MD_E_TOTP;
    int key_len, r;

    if (!secret_base32 || !code || unix_seconds < 0)
        return -EINVAL;
    /* Exactly six ASCII digits: no sign, no spaces, nothing after. */
    for (int i = 0; i < CHECK_DIGITS; i++)
        if (code[i] < '0' || code[i] > '9')
            return -MD_E_TOTP;
    if (code[CHECK_DIGITS] != '\0')
        return -MD_E_TOTP;

    key_len = md_base32_decode(secret_base32, key, sizeof(key));
    if (key_len <= 0)
        return -EINVAL;

    /* RFC 6238 5.2: one step either side allows for clock drift and typing
     * time.  All three are computed whatever matches, so the time taken says
     * nothing about which step (if any) was right. */
    int64_t now_step = unix_seconds / MD_TOTP_STEP_S;
    for (int64_t step = now_step - 1; step <= now_step + 1; step++) {
        uint32_t expect;
        char expect_text[CHECK_DIGITS + 1];

        if (step < 0)
            continue;
        r = md_hotp("SHA1", key, (size_t)key_len, (uint64_t)step, CHECK_DIGITS, &expect);
        if (r < 0) {
            matched = r;
            break;
        }
        snprintf(expect_text, sizeof(expect_text), "%06u", (unsigned)expect);
        bool same = md_memeq_const(expect_text, code, CHECK_DIGITS);
        md_wipe(expect_text, sizeof(expect_text));
        /* RFC 6238 5.2: a code is good once; steps up to last_step are spent. */
        if (same && step > last_step && matched < 0)
            matched = step;
    }
    md_wipe(key, sizeof(key));
    return matched;
}

int md_totp_new_secret(char **ret_base32)
{
    uint8_t key[MD_TOTP_SECRET_LEN];
    char *text;
    int r;

    if (!ret_base32)
        return -EINVAL;
    r = md_random_bytes(key, sizeof(key));
    if (r < 0)
        return r;
    text = md_base32_encode(key, sizeof(key));
    md_wipe(key, sizeof(key));
    if (!text)
        return -ENOMEM;
    *ret_base32 = text;
    return 0;
}

/* Percent-encodes everything but RFC 3986 2.3 unreserved characters. */
static void append_escaped(char **o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            *(*o)++ = (char)c;
        } else {
            *(*o)++ = '%';
            *(*o)++ = hex[c >> 4];
            *(*o)++ = hex[c & 0x0f];
        }
    }
}

char *md_totp_uri(const char *issuer, const char *account, const char *secret_base32)
{
    static const char fixed[] = "otpauth://totp/:?secret=&issuer=&digits=6&period=30";
    size_t cap;
    char *uri, *o;

    if (!issuer || !account || !secret_base32)
        return NULL;
    /* Each input byte becomes at most 3; the secret is base32 and never
     * escaped, but is sized the same way for simplicity. */
    size_t n_issuer = strlen(issuer), n_account = strlen(account), n_secret = strlen(secret_base32);
    if (n_issuer > 1024 || n_account > 1024 || n_secret > 1024)
        return NULL;
    cap = sizeof(fixed) + 3 * (2 * n_issuer + n_account + n_secret);
    uri = malloc(cap);
    if (!uri)
        return NULL;

    /* Key URI format: label "issuer:account", issuer repeated as a parameter. */
    o = uri;
    memcpy(o, "otpauth://totp/", 15);
    o += 15;
    append_escaped(&o, issuer);
    *o++ = ':';
    append_escaped(&o, account);
    memcpy(o, "?secret=", 8);
    o += 8;
    append_escaped(&o, secret_base32);
    memcpy(o, "&issuer=", 8);
    o += 8;
    append_escaped(&o, issuer);
    memcpy(o, "&digits=6&period=30", 20); /* with the NUL */
    return uri;
}
