/*
 * Crypto helpers over OpenSSL 3 EVP (see md_crypto.h).  Nothing here keeps
 * state between calls, so every function is safe from any thread.  Each failed
 * libcrypto call goes through crypto_fail(), which drains the OpenSSL error
 * queue into one debug line and returns -MD_E_CRYPTO: the queue is per thread
 * and a stale entry would otherwise be blamed on the next, unrelated failure.
 * Encoders are written out here rather than borrowed from EVP_EncodeBlock so
 * that the strict decoders the password format needs sit next to them.
 * Secrets that pass through local buffers are wiped before returning.
 */
#include "md_crypto.h"
#include "md_durable.h"
#include "md_err.h"
#include "md_log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

struct md_sign_key {
    EVP_PKEY *pkey;
    bool has_private;
};

size_t md_crypto_drain_errors(char *buf, size_t cap)
{
    size_t used = 0;
    unsigned long e;

    if (cap > 0)
        buf[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        /* Keep draining even when the line is full: the queue must end empty. */
        if (used + 3 >= cap)
            continue;
        if (used > 0) {
            memcpy(buf + used, "; ", 3);
            used += 2;
        }
        ERR_error_string_n(e, buf + used, cap - used);
        used += strlen(buf + used);
    }
    return used;
}

/* Drains the thread's OpenSSL error queue into one debug line. */
static int crypto_fail(const char *op)
{
    char text[512];
    size_t used = md_crypto_drain_errors(text, sizeof(text));
    md_debug("crypto", "openssl_failed", "{s:s, s:s}", "op", op, "error",
             used > 0 ? text : "(no OpenSSL error queued)");
    return -MD_E_CRYPTO;
}

int md_sha256(const void *data, size_t len, uint8_t ret_digest[MD_SHA256_LEN])
{
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (!data && len > 0)
        return -EINVAL;
    if (!EVP_Digest(data ? data : "", len, digest, &n, EVP_sha256(), NULL) || n != MD_SHA256_LEN)
        return crypto_fail("sha256");
    memcpy(ret_digest, digest, MD_SHA256_LEN);
    return 0;
}

int md_sha256_hex(const void *data, size_t len, char out[MD_SHA256_HEX_LEN + 1])
{
    uint8_t digest[MD_SHA256_LEN];
    int r = md_sha256(data, len, digest);
    if (r < 0)
        return r;
    md_hex_encode(digest, sizeof(digest), out);
    return 0;
}

int md_hmac(const char *digest, const void *key, size_t key_len, const void *data, size_t len,
            uint8_t *ret_mac, size_t *ret_mac_len)
{
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    uint8_t out[EVP_MAX_MD_SIZE];
    size_t out_len = 0;
    int r;

    if (!digest || (!key && key_len > 0) || (!data && len > 0) || !ret_mac || !ret_mac_len)
        return -EINVAL;
    /* Only the digests TOTP and our callers use; anything else is a caller bug. */
    if (strcmp(digest, "SHA1") != 0 && strcmp(digest, "SHA256") != 0 &&
        strcmp(digest, "SHA512") != 0)
        return -EINVAL;

    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0),
        OSSL_PARAM_construct_end(),
    };
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac) {
        r = crypto_fail("hmac_fetch");
        goto out;
    }
    ctx = EVP_MAC_CTX_new(mac);
    if (!ctx) {
        r = crypto_fail("hmac_ctx");
        goto out;
    }
    /* A NULL key means "reuse the previous key" to EVP_MAC_init; an empty
     * key must still be passed as a real pointer. */
    if (!EVP_MAC_init(ctx, key ? key : (const void *)"", key_len, params) ||
        !EVP_MAC_update(ctx, data ? data : (const void *)"", len) ||
        !EVP_MAC_final(ctx, out, &out_len, sizeof(out))) {
        r = crypto_fail("hmac");
        goto out;
    }
    memcpy(ret_mac, out, out_len);
    *ret_mac_len = out_len;
    r = 0;
out:
    md_wipe(out, sizeof(out));
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return r;
}

int md_random_bytes(void *buf, size_t len)
{
    if (len > INT_MAX || (!buf && len > 0))
        return -EINVAL;
    if (len > 0 && RAND_bytes(buf, (int)len) != 1)
        return crypto_fail("rand_bytes");
    return 0;
}

void md_hex_encode(const void *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = data;

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0xf];
    }
    out[2 * len] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int md_hex_decode(const char *hex, uint8_t *out, size_t out_len)
{
    if (!hex || (!out && out_len > 0))
        return -EINVAL;
    /* strnlen: a long string is refused without reading all of it. */
    if (out_len > SIZE_MAX / 2 - 1 || strnlen(hex, 2 * out_len + 1) != 2 * out_len)
        return -EINVAL;
    /* Validate everything before writing so out stays untouched on failure. */
    for (size_t i = 0; i < 2 * out_len; i++)
        if (hex_value(hex[i]) < 0)
            return -EINVAL;
    for (size_t i = 0; i < out_len; i++)
        out[i] = (uint8_t)(hex_value(hex[2 * i]) << 4 | hex_value(hex[2 * i + 1]));
    return 0;
}

/* RFC 4648 5: the URL- and filename-safe alphabet. */
static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *md_base64url_encode(const void *data, size_t len)
{
    const uint8_t *p = data;
    char *out, *o;

    if ((!data && len > 0) || len > (SIZE_MAX - 4) / 4 * 3)
        return NULL;
    out = malloc((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    o = out;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        size_t rest = len - i;
        if (rest > 1)
            v |= (uint32_t)p[i + 1] << 8;
        if (rest > 2)
            v |= p[i + 2];
        *o++ = b64url_alphabet[v >> 18 & 0x3f];
        *o++ = b64url_alphabet[v >> 12 & 0x3f];
        if (rest > 1)
            *o++ = b64url_alphabet[v >> 6 & 0x3f];
        if (rest > 2)
            *o++ = b64url_alphabet[v & 0x3f];
    }
    *o = '\0';
    return out;
}

static int b64url_value(char c)
{
    const char *hit = c ? strchr(b64url_alphabet, c) : NULL;
    return hit ? (int)(hit - b64url_alphabet) : -1;
}

/*
 * Strict base64url decoding of s[0..n) (no padding, no whitespace, zero
 * trailing bits), so that one byte string has exactly one encoding.  Returns
 * the decoded length; out is written only on success.
 */
static int b64url_decode(const char *s, size_t n, uint8_t *out, size_t out_cap)
{
    size_t out_len = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    uint32_t acc = 0;
    int bits = 0;

    if (n % 4 == 1 || out_len > out_cap || out_len > INT_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (b64url_value(s[i]) < 0)
            return -EINVAL;
    /* The last character may carry bits beyond the data: they must be zero. */
    if (n % 4 == 2 && (b64url_value(s[n - 1]) & 0x0f) != 0)
        return -EINVAL;
    if (n % 4 == 3 && (b64url_value(s[n - 1]) & 0x03) != 0)
        return -EINVAL;

    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 6 | (uint32_t)b64url_value(s[i])) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (int)o;
}

/* RFC 4648 6. */
static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

char *md_base32_encode(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t acc = 0;
    int bits = 0;
    char *out, *o;

    if ((!data && len > 0) || len > (SIZE_MAX - 8) / 8)
        return NULL;
    out = malloc((len * 8 + 4) / 5 + 1);
    if (!out)
        return NULL;
    o = out;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8 | p[i]) & 0xfff;
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            *o++ = b32_alphabet[acc >> bits & 0x1f];
        }
    }
    if (bits > 0)
        *o++ = b32_alphabet[acc << (5 - bits) & 0x1f];
    *o = '\0';
    return out;
}

static int b32_value(char c)
{
    if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    const char *hit = c ? strchr(b32_alphabet, c) : NULL;
    return hit ? (int)(hit - b32_alphabet) : -1;
}

int md_base32_decode(const char *s, uint8_t *out, size_t out_cap)
{
    size_t n_chars = 0;
    bool padding = false;

    if (!s || (!out && out_cap > 0))
        return -EINVAL;
    /* First pass: validate and count, so out stays untouched on failure.
     * Padding is accepted only at the end, as authenticator exports have it. */
    for (const char *c = s; *c; c++) {
        if (*c == ' ')
            continue;
        if (*c == '=') {
            padding = true;
            continue;
        }
        if (padding || b32_value(*c) < 0)
            return -EINVAL;
        n_chars++;
    }
    /* 1, 3 or 6 characters left over cannot end a whole byte (RFC 4648 6). */
    size_t rest = n_chars % 8;
    if (rest == 1 || rest == 3 || rest == 6)
        return -EINVAL;
    size_t out_len = n_chars * 5 / 8;
    if (out_len > INT_MAX)
        return -EINVAL;
    if (out_len > out_cap)
        return -ENOBUFS;

    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (const char *c = s; *c && *c != '='; c++) {
        if (*c == ' ')
            continue;
        acc = (acc << 5 | (uint32_t)b32_value(*c)) & 0x1fff;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (int)o;
}

bool md_memeq_const(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

void md_wipe(void *p, size_t len)
{
    if (p && len > 0)
        OPENSSL_cleanse(p, len);
}

void md_crypto_thread_done(void)
{
    /* Frees OpenSSL's per-thread state now rather than in a thread-exit
     * destructor that may run after the process has decided to exit. */
    OPENSSL_thread_stop();
}

/* Password hashing ------------------------------------------------------- */

#define SCRYPT_LOG_N 15
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SCRYPT_SALT_LEN 16
#define SCRYPT_KEY_LEN 32
/* scrypt needs 128 * r * N bytes (32 MiB at our cost); OpenSSL's default cap
 * is exactly 32 MiB and refuses it, so the limit is set explicitly. */
#define SCRYPT_MAXMEM ((uint64_t)64 << 20)
#define SCRYPT_PREFIX "$scrypt$"

static int scrypt_derive(const char *password, const uint8_t *salt, size_t salt_len, int log_n,
                         uint32_t r, uint32_t p, uint8_t *key, size_t key_len)
{
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *ctx = NULL;
    uint64_t n = (uint64_t)1 << log_n;
    uint64_t maxmem = SCRYPT_MAXMEM;
    int ret;

    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)password,
                                          strlen(password)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    if (!kdf) {
        ret = crypto_fail("scrypt_fetch");
        goto out;
    }
    ctx = EVP_KDF_CTX_new(kdf);
    if (!ctx) {
        ret = crypto_fail("scrypt_ctx");
        goto out;
    }
    if (EVP_KDF_derive(ctx, key, key_len, params) != 1) {
        ret = crypto_fail("scrypt");
        goto out;
    }
    ret = 0;
out:
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ret;
}

int md_password_hash(const char *password, char **ret_encoded)
{
    uint8_t salt[SCRYPT_SALT_LEN], key[SCRYPT_KEY_LEN];
    char *salt_text = NULL, *key_text = NULL, *encoded = NULL;
    int r;

    if (!password || !ret_encoded)
        return -EINVAL;
    r = md_random_bytes(salt, sizeof(salt));
    if (r < 0)
        goto out;
    r = scrypt_derive(password, salt, sizeof(salt), SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P, key,
                      sizeof(key));
    if (r < 0)
        goto out;
    salt_text = md_base64url_encode(salt, sizeof(salt));
    key_text = md_base64url_encode(key, sizeof(key));
    if (!salt_text || !key_text) {
        r = -ENOMEM;
        goto out;
    }
    if (asprintf(&encoded, SCRYPT_PREFIX "ln=%d,r=%d,p=%d$%s$%s", SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P,
                 salt_text, key_text) < 0) {
        encoded = NULL;
        r = -ENOMEM;
        goto out;
    }
    *ret_encoded = encoded;
    r = 0;
out:
    md_wipe(key, sizeof(key));
    if (key_text)
        md_wipe(key_text, strlen(key_text));
    free(key_text);
    free(salt_text);
    return r;
}

/* Parses "<name>=<decimal>" at *p into [lo, hi] and advances past it. */
static int parse_param(const char **p, const char *name, long lo, long hi, long *ret)
{
    size_t name_len = strlen(name);
    const char *s = *p;
    long v = 0;
    int n_digits = 0;

    if (strncmp(s, name, name_len) != 0 || s[name_len] != '=')
        return -EINVAL;
    s += name_len + 1;
    /* At most 3 digits: bounds below are small, and no overflow is possible. */
    while (*s >= '0' && *s <= '9' && n_digits < 3) {
        v = v * 10 + (*s - '0');
        s++;
        n_digits++;
    }
    if (n_digits == 0 || (*s >= '0' && *s <= '9') || v < lo || v > hi)
        return -EINVAL;
    *p = s;
    *ret = v;
    return 0;
}

int md_password_verify(const char *password, const char *encoded)
{
    uint8_t salt[64], want[SCRYPT_KEY_LEN], got[SCRYPT_KEY_LEN];
    long log_n, r_cost, p_cost;
    const char *p, *salt_end;
    int salt_len, r;

    if (!password || !encoded)
        return -EINVAL;
    if (strncmp(encoded, SCRYPT_PREFIX, strlen(SCRYPT_PREFIX)) != 0)
        return -EINVAL;
    p = encoded + strlen(SCRYPT_PREFIX);
    /* Bounds keep a tampered row from asking for unbounded CPU or memory;
     * they admit costs up to 128 * 8 * 2^18 = 256 MiB, still refused by maxmem. */
    if (parse_param(&p, "ln", 10, 18, &log_n) < 0 || *p++ != ',' ||
        parse_param(&p, "r", 1, 16, &r_cost) < 0 || *p++ != ',' ||
        parse_param(&p, "p", 1, 4, &p_cost) < 0 || *p++ != '$')
        return -EINVAL;
    salt_end = strchr(p, '$');
    if (!salt_end)
        return -EINVAL;
    salt_len = b64url_decode(p, (size_t)(salt_end - p), salt, sizeof(salt));
    if (salt_len < SCRYPT_SALT_LEN)
        return -EINVAL;
    p = salt_end + 1;
    if (b64url_decode(p, strlen(p), want, sizeof(want)) != (int)sizeof(want))
        return -EINVAL;

    r = scrypt_derive(password, salt, (size_t)salt_len, (int)log_n, (uint32_t)r_cost,
                      (uint32_t)p_cost, got, sizeof(got));
    if (r >= 0)
        r = md_memeq_const(got, want, sizeof(got)) ? 1 : 0;
    md_wipe(got, sizeof(got));
    md_wipe(want, sizeof(want));
    return r;
}

/* Ed25519 keys ------------------------------------------------------------ */

static int write_private_pem(FILE *fp, const void *pkey)
{
    return PEM_write_PrivateKey(fp, (EVP_PKEY *)pkey, NULL, NULL, 0, NULL, NULL)
               ? 0
               : crypto_fail("pem_write");
}

static int write_public_pem(FILE *fp, const void *pkey)
{
    return PEM_write_PUBKEY(fp, (EVP_PKEY *)pkey) ? 0 : crypto_fail("pem_write");
}

int md_sign_key_generate(const char *private_pem_path, const char *public_pem_path)
{
    md_durable priv = {0}, pub = {0};
    EVP_PKEY *pkey = NULL;
    int r;

    if (!private_pem_path || !public_pem_path)
        return -EINVAL;
    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!pkey)
        return crypto_fail("ed25519_keygen");
    /* Both files are written aside and moved into place only once both are
     * complete, so a failure leaves any earlier pair as it was. */
    r = md_durable_stage(&priv, private_pem_path, 0600, write_private_pem, pkey);
    if (r == 0)
        r = md_durable_stage(&pub, public_pem_path, 0644, write_public_pem, pkey);
    if (r == 0)
        r = md_durable_commit(&priv, true);
    if (r == 0)
        r = md_durable_commit(&pub, true);
    md_durable_clear(&priv);
    md_durable_clear(&pub);
    EVP_PKEY_free(pkey); /* OpenSSL wipes the private key on free */
    return r;
}

static int load_key(const char *path, bool private, md_sign_key **ret)
{
    EVP_PKEY *pkey = NULL;
    md_sign_key *key = NULL;
    FILE *fp;
    int r;

    if (!path || !ret)
        return -EINVAL;
    fp = fopen(path, "re");
    if (!fp)
        return -errno;
    pkey =
        private ? PEM_read_PrivateKey(fp, NULL, NULL, NULL) : PEM_read_PUBKEY(fp, NULL, NULL, NULL);
    fclose(fp);
    if (!pkey) {
        r = crypto_fail(private ? "pem_read_private" : "pem_read_public");
        goto out;
    }
    if (!EVP_PKEY_is_a(pkey, "ED25519")) {
        md_debug("crypto", "key_type_refused", "{s:s}", "type", EVP_PKEY_get0_type_name(pkey));
        r = -EINVAL;
        goto out;
    }
    key = calloc(1, sizeof(*key));
    if (!key) {
        r = -ENOMEM;
        goto out;
    }
    key->pkey = pkey;
    key->has_private = private;
    pkey = NULL;
    *ret = key;
    r = 0;
out:
    EVP_PKEY_free(pkey);
    return r;
}

int md_sign_key_load_private(const char *path, md_sign_key **ret)
{
    return load_key(path, true, ret);
}

int md_sign_key_load_public(const char *path, md_sign_key **ret)
{
    return load_key(path, false, ret);
}

int md_sign_key_from_raw_public(const uint8_t raw[MD_ED25519_PUBLIC_LEN], md_sign_key **ret)
{
    if (!raw || !ret)
        return -EINVAL;
    EVP_PKEY *pkey =
        EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, MD_ED25519_PUBLIC_LEN);
    if (!pkey)
        return crypto_fail("ed25519_from_raw");
    md_sign_key *key = calloc(1, sizeof(*key));
    if (!key) {
        EVP_PKEY_free(pkey);
        return -ENOMEM;
    }
    key->pkey = pkey;
    *ret = key;
    return 0;
}

int md_sign_key_raw_public(const md_sign_key *key, uint8_t ret[MD_ED25519_PUBLIC_LEN])
{
    size_t len = MD_ED25519_PUBLIC_LEN;
    if (!key || !ret)
        return -EINVAL;
    if (!EVP_PKEY_get_raw_public_key(key->pkey, ret, &len) || len != MD_ED25519_PUBLIC_LEN)
        return crypto_fail("ed25519_raw_public");
    return 0;
}

md_sign_key *md_sign_key_free(md_sign_key *key)
{
    if (!key)
        return NULL;
    EVP_PKEY_free(key->pkey);
    free(key);
    return NULL;
}

int md_sign_key_id(const md_sign_key *key, char out[17])
{
    uint8_t raw[32];
    size_t raw_len = sizeof(raw);
    char hex[MD_SHA256_HEX_LEN + 1];
    int r;

    if (!key || !out)
        return -EINVAL;
    if (!EVP_PKEY_get_raw_public_key(key->pkey, raw, &raw_len) || raw_len != sizeof(raw))
        return crypto_fail("ed25519_raw_public");
    r = md_sha256_hex(raw, raw_len, hex);
    if (r < 0)
        return r;
    memcpy(out, hex, 16);
    out[16] = '\0';
    return 0;
}

int md_sign(const md_sign_key *key, const void *msg, size_t len, uint8_t ret_sig[64])
{
    EVP_MD_CTX *ctx = NULL;
    uint8_t sig[64];
    size_t sig_len = sizeof(sig);
    int r;

    if (!key || !key->has_private || (!msg && len > 0) || !ret_sig)
        return -EINVAL;
    ctx = EVP_MD_CTX_new();
    if (!ctx)
        return crypto_fail("md_ctx");
    /* Ed25519 is one-shot (PureEdDSA, RFC 8032 5.1): no digest, no update. */
    if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key->pkey) != 1 ||
        EVP_DigestSign(ctx, sig, &sig_len, msg ? msg : (const void *)"", len) != 1 ||
        sig_len != sizeof(sig)) {
        r = crypto_fail("ed25519_sign");
        goto out;
    }
    memcpy(ret_sig, sig, sizeof(sig));
    r = 0;
out:
    EVP_MD_CTX_free(ctx);
    return r;
}

int md_verify(const md_sign_key *key, const void *msg, size_t len, const uint8_t sig[64])
{
    EVP_MD_CTX *ctx = NULL;
    int r;

    if (!key || (!msg && len > 0) || !sig)
        return -EINVAL;
    ctx = EVP_MD_CTX_new();
    if (!ctx)
        return crypto_fail("md_ctx");
    if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key->pkey) != 1) {
        r = crypto_fail("ed25519_verify_init");
        goto out;
    }
    r = EVP_DigestVerify(ctx, sig, 64, msg ? msg : (const void *)"", len);
    if (r == 1) {
        r = 1;
    } else if (r == 0) {
        /* A bad signature is an answer, not an error; drop what it queued. */
        ERR_clear_error();
        r = 0;
    } else {
        r = crypto_fail("ed25519_verify");
    }
out:
    EVP_MD_CTX_free(ctx);
    return r;
}

/* Streaming SHA-256: a thin owner of an EVP_MD_CTX. */
struct md_sha256_ctx {
    EVP_MD_CTX *md;
    bool finished;
};

int md_sha256_ctx_new(md_sha256_ctx **ret)
{
    md_sha256_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->md = EVP_MD_CTX_new();
    if (!c->md || !EVP_DigestInit_ex(c->md, EVP_sha256(), NULL)) {
        md_sha256_ctx_free(c);
        return crypto_fail("sha256_init");
    }
    *ret = c;
    return 0;
}

int md_sha256_ctx_update(md_sha256_ctx *c, const void *data, size_t len)
{
    if (!c || c->finished || (!data && len > 0))
        return -EINVAL;
    if (len > 0 && !EVP_DigestUpdate(c->md, data, len))
        return crypto_fail("sha256_update");
    return 0;
}

int md_sha256_ctx_final(md_sha256_ctx *c, uint8_t ret_digest[MD_SHA256_LEN])
{
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (!c || c->finished)
        return -EINVAL;
    c->finished = true;
    if (!EVP_DigestFinal_ex(c->md, digest, &n) || n != MD_SHA256_LEN)
        return crypto_fail("sha256_final");
    memcpy(ret_digest, digest, MD_SHA256_LEN);
    return 0;
}

md_sha256_ctx *md_sha256_ctx_free(md_sha256_ctx *c)
{
    if (c) {
        EVP_MD_CTX_free(c->md);
        free(c);
    }
    return NULL;
}

/* One AES-256-GCM operation; the tag follows the ciphertext. */
static int aead(bool seal, const uint8_t *key, const uint8_t *nonce, const void *aad,
                size_t aad_len, const uint8_t *in, size_t len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = NULL;
    int n = 0, r = 0;

    if (len > INT_MAX || aad_len > INT_MAX || (!aad && aad_len > 0) || (!in && len > 0))
        return -EINVAL;
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return crypto_fail("aead_new");
    if (!EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, seal ? 1 : 0) ||
        !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, MD_AEAD_NONCE_LEN, NULL) ||
        !EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, seal ? 1 : 0)) {
        r = crypto_fail("aead_init");
        goto out;
    }
    if (aad_len > 0 && !EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len)) {
        r = crypto_fail("aead_aad");
        goto out;
    }
    if (len > 0 && !EVP_CipherUpdate(ctx, out, &n, in, (int)len)) {
        r = crypto_fail("aead_update");
        goto out;
    }
    if (!seal &&
        !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, MD_AEAD_TAG_LEN, (void *)(in + len))) {
        r = crypto_fail("aead_set_tag");
        goto out;
    }
    if (!EVP_CipherFinal_ex(ctx, out + len, &n)) {
        /* For open this is the tag check: not an OpenSSL fault worth a log. */
        ERR_clear_error();
        r = -MD_E_CRYPTO;
        goto out;
    }
    if (seal && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, MD_AEAD_TAG_LEN, out + len)) {
        r = crypto_fail("aead_get_tag");
        goto out;
    }
out:
    EVP_CIPHER_CTX_free(ctx);
    return r;
}

int md_aead_seal(const uint8_t key[MD_AEAD_KEY_LEN], const uint8_t nonce[MD_AEAD_NONCE_LEN],
                 const void *aad, size_t aad_len, const void *in, size_t len, uint8_t *out)
{
    return aead(true, key, nonce, aad, aad_len, in, len, out);
}

int md_aead_open(const uint8_t key[MD_AEAD_KEY_LEN], const uint8_t nonce[MD_AEAD_NONCE_LEN],
                 const void *aad, size_t aad_len, const void *in, size_t in_len, uint8_t *out)
{
    if (in_len < MD_AEAD_TAG_LEN)
        return -MD_E_CRYPTO;
    return aead(false, key, nonce, aad, aad_len, in, in_len - MD_AEAD_TAG_LEN, out);
}
