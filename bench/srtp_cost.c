/*
 * mdb-srtp-cost: what SRTP costs per RTP packet on one thread, through the
 * gateway's own md_srtp (libsrtp2; Debian's is built on NSS) and through
 * OpenSSL's EVP AES doing the same cryptographic work.  For each profile
 * (AES128_CM_SHA1_80, AEAD_AES_128_GCM) and payload size it times protect
 * alone and a forwarded packet (unprotect on ingress + protect on egress, as
 * the relay does); unprotect is the difference.  Figures are thread CPU time,
 * the median of the repeats after a warm-up.  With --sessions K the packets
 * go to K session pairs in turn, so that contexts leave the cache as they do
 * on a worker with many legs.
 *
 * The OpenSSL side is a measurement of the crypto cost only, not a second
 * SRTP implementation for the product: it knows one fixed 12-byte header,
 * estimates the ROC from the sequence number alone and keeps no replay
 * window.  It keeps one EVP_CIPHER_CTX (and for the CM profile one HMAC
 * EVP_MAC_CTX) per direction, keyed once, and gives it only a new IV per
 * packet.  Its session keys come from the same master key and salt as
 * libsrtp's (RFC 3711 4.3), and one packet of each profile is checked to be
 * byte for byte what md_srtp produces, so both sides do the same work.
 *
 * Under callgrind (bench/srtp-cost-ir.sh) each measured loop is bracketed by
 * a zero and a named dump, for instruction counts that do not depend on the
 * machine's load.
 */
#include "md_bytes.h"
#include "md_srtp.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef MDB_HAVE_CALLGRIND
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(label) ((void)(label))
#endif

#define HDR_LEN 12
#define MAX_PAYLOAD 1400
#define BUF_CAP (HDR_LEN + MAX_PAYLOAD + MD_SRTP_MAX_OVERHEAD)
#define SSRC 0x5eed1e55u
#define MAX_REPEATS 15
#define GCM_TAG_LEN 16 /* RFC 7714 14.2 */
#define CM_TAG_LEN 10  /* HMAC-SHA1-80, RFC 3711 5.2 */

/* One direction of the OpenSSL side. */
typedef struct ossl_dir {
    bool gcm;
    EVP_CIPHER_CTX *cipher;
    EVP_MAC_CTX *mac; /* CM only */
    uint8_t salt[14];
    uint32_t roc;
    uint16_t last_seq;
    bool started;
} ossl_dir;

/* A way to protect and unprotect, with its two directions. */
typedef struct path {
    const char *name;
    int (*protect)(void *dir, uint8_t *buf, size_t *len);
    int (*unprotect)(void *dir, uint8_t *buf, size_t *len);
    int (*make)(md_srtp_profile profile, bool outbound, const uint8_t *master, void **ret);
    void (*drop)(void *dir);
} path;

static void die(const char *what)
{
    fprintf(stderr, "mdb-srtp-cost: %s failed\n", what);
    exit(1);
}

/* ---- md_srtp, as the gateway calls it ---- */

static int srtp_make(md_srtp_profile profile, bool outbound, const uint8_t *master, void **ret)
{
    size_t key_len, salt_len;
    md_srtp *s;
    int r = md_srtp_profile_lengths(profile, &key_len, &salt_len);
    if (r == 0 && (r = md_srtp_new(profile, outbound, master, master + key_len, &s)) == 0)
        *ret = s;
    return r;
}

static void srtp_drop(void *dir)
{
    md_srtp_free(dir);
}

static int srtp_protect(void *dir, uint8_t *buf, size_t *len)
{
    return md_srtp_protect_rtp(dir, buf, len, BUF_CAP);
}

static int srtp_unprotect(void *dir, uint8_t *buf, size_t *len)
{
    return md_srtp_unprotect_rtp(dir, buf, len);
}

/* ---- OpenSSL EVP ---- */

/* RFC 3711 4.3.1 with the AES-CM PRF (4.3.3); a 12-byte GCM master salt is
 * zero-padded to 14 as libsrtp does. */
static int kdf(const uint8_t *master_key, const uint8_t *master_salt, size_t salt_len,
               uint8_t label, uint8_t *out, int n)
{
    uint8_t iv[16] = {0};
    uint8_t zero[32] = {0};
    int len, ok;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    memcpy(iv, master_salt, salt_len);
    iv[7] ^= label;
    ok = c && EVP_EncryptInit_ex(c, EVP_aes_128_ctr(), NULL, master_key, iv) &&
         EVP_EncryptUpdate(c, out, &len, zero, n);
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -EIO;
}

static int ossl_make(md_srtp_profile profile, bool outbound, const uint8_t *master, void **ret)
{
    uint8_t key[16], auth[20];
    size_t key_len, salt_len;
    int r = md_srtp_profile_lengths(profile, &key_len, &salt_len);
    if (r < 0)
        return r;
    ossl_dir *d = calloc(1, sizeof(*d));
    d->gcm = profile == MD_SRTP_AEAD_AES_128_GCM;
    const uint8_t *msalt = master + key_len;
    if (kdf(master, msalt, salt_len, 0, key, 16) < 0 ||
        kdf(master, msalt, salt_len, 2, d->salt, (int)salt_len) < 0 ||
        (!d->gcm && kdf(master, msalt, salt_len, 1, auth, 20) < 0))
        die("kdf");
    d->cipher = EVP_CIPHER_CTX_new();
    if (!d->cipher)
        die("EVP_CIPHER_CTX_new");
    if (d->gcm) {
        int ok = outbound ? EVP_EncryptInit_ex(d->cipher, EVP_aes_128_gcm(), NULL, key, NULL)
                          : EVP_DecryptInit_ex(d->cipher, EVP_aes_128_gcm(), NULL, key, NULL);
        if (!ok)
            die("GCM init");
    } else {
        /* CTR is its own inverse: both directions encrypt. */
        if (!EVP_EncryptInit_ex(d->cipher, EVP_aes_128_ctr(), NULL, key, NULL))
            die("CTR init");
        EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA1", 0),
            OSSL_PARAM_construct_end(),
        };
        d->mac = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
        EVP_MAC_free(hmac);
        if (!d->mac || !EVP_MAC_init(d->mac, auth, sizeof(auth), params))
            die("HMAC init");
    }
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(auth, sizeof(auth));
    *ret = d;
    return 0;
}

static void ossl_drop(void *dir)
{
    ossl_dir *d = dir;
    EVP_CIPHER_CTX_free(d->cipher);
    EVP_MAC_CTX_free(d->mac);
    OPENSSL_cleanse(d, sizeof(*d));
    free(d);
}

/* RFC 3711 3.3.1 without its window: enough for packets in order. */
static uint32_t guess_roc(const ossl_dir *d, uint16_t seq)
{
    if (d->started && seq < d->last_seq && d->last_seq - seq > 0x8000)
        return d->roc + 1;
    return d->roc;
}

static void advance(ossl_dir *d, uint16_t seq, uint32_t roc)
{
    d->roc = roc;
    d->last_seq = seq;
    d->started = true;
}

/* RFC 7714 8.1: IV = (0x0000 || SSRC || ROC || SEQ) XOR salt. */
static void gcm_iv(const ossl_dir *d, uint32_t ssrc, uint32_t roc, uint16_t seq, uint8_t iv[12])
{
    iv[0] = iv[1] = 0;
    md_put_u32(iv + 2, ssrc);
    md_put_u32(iv + 6, roc);
    md_put_u16(iv + 10, seq);
    for (int i = 0; i < 12; i++)
        iv[i] ^= d->salt[i];
}

/* RFC 3711 4.1.1: IV = (salt * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16). */
static void cm_iv(const ossl_dir *d, uint32_t ssrc, uint32_t roc, uint16_t seq, uint8_t iv[16])
{
    memset(iv, 0, 16);
    md_put_u32(iv + 4, ssrc);
    md_put_u32(iv + 8, roc);
    md_put_u16(iv + 12, seq);
    for (int i = 0; i < 14; i++)
        iv[i] ^= d->salt[i];
}

/* RFC 3711 4.2: HMAC-SHA1 over the packet and the ROC, first 80 bits. */
static int cm_tag(ossl_dir *d, const uint8_t *buf, size_t len, uint32_t roc, uint8_t *tag)
{
    uint8_t roc_be[4], full[20];
    size_t n;
    md_put_u32(roc_be, roc);
    if (!EVP_MAC_init(d->mac, NULL, 0, NULL) || !EVP_MAC_update(d->mac, buf, len) ||
        !EVP_MAC_update(d->mac, roc_be, 4) || !EVP_MAC_final(d->mac, full, &n, sizeof(full)))
        return -EIO;
    memcpy(tag, full, CM_TAG_LEN);
    return 0;
}

static int ossl_protect(void *dir, uint8_t *buf, size_t *len)
{
    ossl_dir *d = dir;
    uint8_t iv[16];
    int n, plen = (int)(*len - HDR_LEN);
    uint16_t seq = md_get_u16(buf + 2);
    uint32_t roc = guess_roc(d, seq);
    if (d->gcm) {
        gcm_iv(d, md_get_u32(buf + 8), roc, seq, iv);
        if (!EVP_EncryptInit_ex(d->cipher, NULL, NULL, NULL, iv) ||
            !EVP_EncryptUpdate(d->cipher, NULL, &n, buf, HDR_LEN) ||
            !EVP_EncryptUpdate(d->cipher, buf + HDR_LEN, &n, buf + HDR_LEN, plen) ||
            !EVP_EncryptFinal_ex(d->cipher, buf + *len, &n) ||
            !EVP_CIPHER_CTX_ctrl(d->cipher, EVP_CTRL_AEAD_GET_TAG, GCM_TAG_LEN, buf + *len))
            return -EIO;
        *len += GCM_TAG_LEN;
    } else {
        cm_iv(d, md_get_u32(buf + 8), roc, seq, iv);
        if (!EVP_EncryptInit_ex(d->cipher, NULL, NULL, NULL, iv) ||
            !EVP_EncryptUpdate(d->cipher, buf + HDR_LEN, &n, buf + HDR_LEN, plen) ||
            cm_tag(d, buf, *len, roc, buf + *len) < 0)
            return -EIO;
        *len += CM_TAG_LEN;
    }
    advance(d, seq, roc);
    return 0;
}

static int ossl_unprotect(void *dir, uint8_t *buf, size_t *len)
{
    ossl_dir *d = dir;
    uint8_t iv[16], tag[CM_TAG_LEN];
    int n;
    size_t tag_len = d->gcm ? GCM_TAG_LEN : CM_TAG_LEN;
    if (*len < HDR_LEN + tag_len)
        return -EBADMSG;
    size_t body = *len - tag_len;
    int plen = (int)(body - HDR_LEN);
    uint16_t seq = md_get_u16(buf + 2);
    uint32_t roc = guess_roc(d, seq);
    if (d->gcm) {
        gcm_iv(d, md_get_u32(buf + 8), roc, seq, iv);
        if (!EVP_DecryptInit_ex(d->cipher, NULL, NULL, NULL, iv) ||
            !EVP_DecryptUpdate(d->cipher, NULL, &n, buf, HDR_LEN) ||
            !EVP_DecryptUpdate(d->cipher, buf + HDR_LEN, &n, buf + HDR_LEN, plen) ||
            !EVP_CIPHER_CTX_ctrl(d->cipher, EVP_CTRL_AEAD_SET_TAG, GCM_TAG_LEN, buf + body) ||
            EVP_DecryptFinal_ex(d->cipher, buf + body, &n) <= 0)
            return -EBADMSG;
    } else {
        if (cm_tag(d, buf, body, roc, tag) < 0)
            return -EIO;
        if (CRYPTO_memcmp(tag, buf + body, CM_TAG_LEN) != 0)
            return -EBADMSG;
        cm_iv(d, md_get_u32(buf + 8), roc, seq, iv);
        if (!EVP_EncryptInit_ex(d->cipher, NULL, NULL, NULL, iv) ||
            !EVP_EncryptUpdate(d->cipher, buf + HDR_LEN, &n, buf + HDR_LEN, plen))
            return -EIO;
    }
    advance(d, seq, roc);
    *len = body;
    return 0;
}

/* ---- the runs ---- */

static const path paths[] = {
    {"libsrtp2", srtp_protect, srtp_unprotect, srtp_make, srtp_drop},
    {"OpenSSL", ossl_protect, ossl_unprotect, ossl_make, ossl_drop},
};

typedef struct pair {
    const path *p;
    void *out, *in;
    uint8_t buf[BUF_CAP];
    size_t payload;
    uint32_t index; /* ROC << 16 | SEQ of the next packet */
} pair;

static size_t next_packet(pair *pr)
{
    md_put_u16(pr->buf + 2, (uint16_t)pr->index);
    md_put_u32(pr->buf + 4, pr->index * 960u);
    pr->index++;
    return HDR_LEN + pr->payload;
}

/* Packets go to the sessions in turn, as a worker's packets go to its legs. */
static void loop_protect(pair *prs, int k, unsigned long n)
{
    for (unsigned long i = 0; i < n; i++) {
        pair *pr = &prs[i % (unsigned long)k];
        size_t len = next_packet(pr);
        if (pr->p->protect(pr->out, pr->buf, &len) < 0)
            die("protect");
    }
}

static void loop_forward(pair *prs, int k, unsigned long n)
{
    for (unsigned long i = 0; i < n; i++) {
        pair *pr = &prs[i % (unsigned long)k];
        size_t len = next_packet(pr), sent = len;
        if (pr->p->protect(pr->out, pr->buf, &len) < 0)
            die("protect");
        if (pr->p->unprotect(pr->in, pr->buf, &len) < 0 || len != sent)
            die("unprotect");
    }
}

static void pair_open(pair *pr, const path *p, md_srtp_profile profile, const uint8_t *master,
                      size_t payload)
{
    memset(pr, 0, sizeof(*pr));
    pr->p = p;
    pr->payload = payload;
    if (p->make(profile, true, master, &pr->out) < 0 || p->make(profile, false, master, &pr->in))
        die("session");
    pr->buf[0] = 0x80;
    pr->buf[1] = 96;
    md_put_u32(pr->buf + 8, SSRC);
    for (size_t i = 0; i < payload; i++)
        pr->buf[HDR_LEN + i] = (uint8_t)(i * 7);
}

static void pair_close(pair *pr)
{
    pr->p->drop(pr->out);
    pr->p->drop(pr->in);
}

static double now_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct opts {
    unsigned long count, warmup;
    int repeats, sessions;
    size_t payloads[8];
    int n_payloads;
    bool want_cm, want_gcm;
} opts;

/* Median ns per packet of one loop over fresh sessions. */
static double measure(const opts *o, const path *p, md_srtp_profile profile, const uint8_t *master,
                      size_t payload, bool forward)
{
    double ns[MAX_REPEATS];
    char label[96];
    void (*loop)(pair *, int, unsigned long) = forward ? loop_forward : loop_protect;
    pair *prs = calloc((size_t)o->sessions, sizeof(*prs));
    if (!prs)
        die("calloc");
    for (int i = 0; i < o->sessions; i++)
        pair_open(&prs[i], p, profile, master, payload);
    loop(prs, o->sessions, o->warmup);
    snprintf(label, sizeof(label), "%s %s %zu %s", md_srtp_profile_name(profile), p->name, payload,
             forward ? "forward" : "protect");
    for (int r = 0; r < o->repeats; r++) {
        CALLGRIND_ZERO_STATS;
        double t0 = now_cpu_ns();
        loop(prs, o->sessions, o->count);
        ns[r] = (now_cpu_ns() - t0) / (double)o->count;
        CALLGRIND_DUMP_STATS_AT(label);
    }
    for (int i = 0; i < o->sessions; i++)
        pair_close(&prs[i]);
    free(prs);
    qsort(ns, (size_t)o->repeats, sizeof(ns[0]), cmp_double);
    return ns[o->repeats / 2];
}

/* One packet through both paths under the same master key: the same bytes. */
static void check_same(md_srtp_profile profile, const uint8_t *master)
{
    pair a, b;
    pair_open(&a, &paths[0], profile, master, 200);
    pair_open(&b, &paths[1], profile, master, 200);
    size_t la = next_packet(&a), lb = next_packet(&b);
    if (a.p->protect(a.out, a.buf, &la) < 0 || b.p->protect(b.out, b.buf, &lb) < 0)
        die("check protect");
    if (la != lb || memcmp(a.buf, b.buf, la) != 0) {
        fprintf(stderr, "mdb-srtp-cost: %s: OpenSSL's packet differs from md_srtp's\n",
                md_srtp_profile_name(profile));
        exit(1);
    }
    pair_close(&a);
    pair_close(&b);
}

static void print_row(const char *op, double lib, double ossl)
{
    printf("  %-10s %10.0f %12.0f %10.0f %12.0f %9.2f\n", op, lib, 1e9 / lib, ossl, 1e9 / ossl,
           ossl / lib);
}

static void run_profile(const opts *o, md_srtp_profile profile)
{
    uint8_t master[MD_SRTP_MAX_KEY_LEN + MD_SRTP_MAX_SALT_LEN];
    if (RAND_bytes(master, sizeof(master)) != 1)
        die("RAND_bytes");
    check_same(profile, master);
    for (int i = 0; i < o->n_payloads; i++) {
        size_t payload = o->payloads[i];
        double lp = measure(o, &paths[0], profile, master, payload, false);
        double lf = measure(o, &paths[0], profile, master, payload, true);
        double op = measure(o, &paths[1], profile, master, payload, false);
        double of = measure(o, &paths[1], profile, master, payload, true);
        printf("%s, %zu-byte payload\n", md_srtp_profile_name(profile), payload);
        print_row("protect", lp, op);
        print_row("unprotect", lf - lp, of - op);
        print_row("forward", lf, of);
    }
    OPENSSL_cleanse(master, sizeof(master));
}

static void usage(void)
{
    fputs("usage: mdb-srtp-cost [--count N] [--warmup N] [--repeats R] [--payload B[,B...]]\n"
          "                     [--profile cm|gcm|all] [--sessions K]\n",
          stderr);
    exit(2);
}

static unsigned long parse_ulong(const char *s, unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max)
        usage();
    return v;
}

static void parse_payloads(opts *o, const char *s)
{
    char copy[128];
    char *save = NULL;
    snprintf(copy, sizeof(copy), "%s", s);
    o->n_payloads = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->n_payloads == (int)(sizeof(o->payloads) / sizeof(o->payloads[0])))
            usage();
        o->payloads[o->n_payloads++] = parse_ulong(t, MAX_PAYLOAD);
    }
    if (o->n_payloads == 0)
        usage();
}

int main(int argc, char **argv)
{
    opts o = {.count = 200000,
              .warmup = 20000,
              .repeats = 5,
              .sessions = 1,
              .payloads = {100, 1200},
              .n_payloads = 2,
              .want_cm = true,
              .want_gcm = true};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val)
            usage();
        if (strcmp(arg, "--count") == 0)
            o.count = parse_ulong(val, 1000000000);
        else if (strcmp(arg, "--warmup") == 0)
            o.warmup = parse_ulong(val, 1000000000);
        else if (strcmp(arg, "--repeats") == 0)
            o.repeats = (int)parse_ulong(val, MAX_REPEATS);
        else if (strcmp(arg, "--sessions") == 0)
            o.sessions = (int)parse_ulong(val, 10000);
        else if (strcmp(arg, "--payload") == 0)
            parse_payloads(&o, val);
        else if (strcmp(arg, "--profile") == 0) {
            o.want_cm = strcmp(val, "cm") == 0 || strcmp(val, "all") == 0;
            o.want_gcm = strcmp(val, "gcm") == 0 || strcmp(val, "all") == 0;
            if (!o.want_cm && !o.want_gcm)
                usage();
        } else
            usage();
        i++;
    }
    if (o.count == 0 || o.repeats == 0 || o.sessions == 0)
        usage();
    if (md_srtp_init() < 0)
        die("md_srtp_init");
    printf("mdb-srtp-cost: %lu packets x %d repeats after %lu warm-up, median thread CPU time,\n"
           "one thread, %d session pair(s) in turn; libsrtp2 through md_srtp, OpenSSL %s EVP\n"
           "with kept contexts\n"
           "forward = unprotect + protect (one relayed packet); unprotect = forward - protect\n\n"
           "  %-10s %10s %12s %10s %12s %9s\n",
           o.count, o.repeats, o.warmup, o.sessions, OpenSSL_version(OPENSSL_VERSION_STRING), "",
           "libsrtp ns", "libsrtp pkt/s", "OpenSSL ns", "OpenSSL pkt/s", "OSSL/lib");
    if (o.want_cm)
        run_profile(&o, MD_SRTP_AES128_CM_SHA1_80);
    if (o.want_gcm)
        run_profile(&o, MD_SRTP_AEAD_AES_128_GCM);
    md_srtp_deinit();
    return 0;
}
