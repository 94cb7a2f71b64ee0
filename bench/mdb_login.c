/*
 * Staff login for the load generator's verifiers: POST /api/login with the
 * password and a TOTP code (RFC 6238 over RFC 4226, HMAC-SHA1, 30 s steps,
 * 6 digits) computed here from the base32 secret `user add` printed, over a
 * blocking OpenSSL connection verified against the deployment CA.  Returns
 * the md_session cookie.  Runs before the run starts, from a few threads
 * at once: everything here is per call.
 */
#include "mdb.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <string.h>
#include <time.h>

static int base32_decode(const char *in, uint8_t *out, size_t cap)
{
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *in; in++) {
        char ch = g_ascii_toupper(*in);
        int v;
        if (ch >= 'A' && ch <= 'Z')
            v = ch - 'A';
        else if (ch >= '2' && ch <= '7')
            v = ch - '2' + 26;
        else if (ch == '=' || ch == ' ')
            continue;
        else
            return -EINVAL;
        acc = acc << 5 | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            if (n == cap)
                return -ENOBUFS;
            out[n++] = (uint8_t)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    return (int)n;
}

/* RFC 4226 5.3 */
static int totp_code(const char *secret, uint64_t step, char out[7])
{
    uint8_t key[64], msg[8], mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    int klen = base32_decode(secret, key, sizeof(key));
    if (klen <= 0)
        return -EINVAL;
    for (int i = 7; i >= 0; i--, step >>= 8)
        msg[i] = (uint8_t)step;
    if (!HMAC(EVP_sha1(), key, klen, msg, sizeof(msg), mac, &mac_len))
        return -EIO;
    unsigned off = mac[mac_len - 1] & 0x0f;
    uint32_t bin = ((uint32_t)(mac[off] & 0x7f) << 24) | (uint32_t)mac[off + 1] << 16 |
                   (uint32_t)mac[off + 2] << 8 | mac[off + 3];
    snprintf(out, 7, "%06u", bin % 1000000);
    return 0;
}

static int post_login(const mdb_target *t, const char *body, char *resp, size_t cap, char *err,
                      size_t err_len)
{
    int r = -EIO;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    BIO *bio = NULL;
    char hostport[300];
    if (!ctx)
        goto out;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (!SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL)) {
        snprintf(err, err_len, "cannot load CA %s", t->ca_file);
        goto out;
    }
    bio = BIO_new_ssl_connect(ctx);
    snprintf(hostport, sizeof(hostport), "%s:%d", t->host, t->staff_port);
    BIO_set_conn_hostname(bio, hostport);
    if (BIO_do_connect(bio) <= 0 || BIO_do_handshake(bio) <= 0) {
        snprintf(err, err_len, "TLS to %s: %s", hostport, ERR_reason_error_string(ERR_get_error()));
        goto out;
    }
    char *req = g_strdup_printf("POST /api/login HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\n"
                                "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                                "Connection: close\r\n\r\n%s",
                                hostport, t->origin, strlen(body), body);
    int w = BIO_write(bio, req, (int)strlen(req));
    g_free(req);
    if (w <= 0)
        goto out;
    size_t n = 0;
    for (;;) {
        int k = BIO_read(bio, resp + n, (int)(cap - 1 - n));
        if (k <= 0)
            break;
        n += (size_t)k;
        if (n == cap - 1)
            break;
    }
    resp[n] = '\0';
    r = 0;
out:
    ERR_clear_error();
    BIO_free_all(bio);
    SSL_CTX_free(ctx);
    return r;
}

static int login_step(const mdb_target *t, const char *username, const char *password,
                      const char *totp_secret, uint64_t step, char **ret_cookie, char *err,
                      size_t err_len)
{
    char code[7];
    int r = totp_code(totp_secret, step, code);
    if (r < 0) {
        snprintf(err, err_len, "bad TOTP secret");
        return r;
    }
    json_t *j =
        json_pack("{s:s, s:s, s:s}", "username", username, "password", password, "totp", code);
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    char resp[8192];
    r = post_login(t, body, resp, sizeof(resp), err, err_len);
    free(body);
    if (r < 0)
        return r;
    const char *line = strstr(resp, "\r\nSet-Cookie: __Host-md_session=");
    if (!line)
        line = strstr(resp, "\r\nset-cookie: __Host-md_session=");
    if (strncmp(resp, "HTTP/1.1 200", 12) != 0 || !line) {
        char *eol = strstr(resp, "\r\n\r\n");
        snprintf(err, err_len, "%.*s %s", 12, resp, eol ? eol + 4 : "");
        return -EACCES;
    }
    line += strlen("\r\nSet-Cookie: __Host-md_session=");
    size_t len = strcspn(line, ";\r\n");
    *ret_cookie = g_strndup(line, len);
    return 0;
}

int mdb_login(const mdb_target *t, const char *username, const char *password,
              const char *totp_secret, char **ret_cookie, char *err, size_t err_len)
{
    /* A code is accepted once (RFC 6238 5.2): after a recent run with the same
     * account, the next step is still inside the +-1 window. */
    uint64_t step = (uint64_t)time(NULL) / 30;
    int r = login_step(t, username, password, totp_secret, step, ret_cookie, err, err_len);
    if (r == -EACCES && strstr(err, "totp"))
        r = login_step(t, username, password, totp_secret, step + 1, ret_cookie, err, err_len);
    return r;
}
