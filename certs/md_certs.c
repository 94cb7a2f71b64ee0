/*
 * Deployment PKI over the OpenSSL 3 C API: certificate profiles, the CA, the
 * server and device certificates, PKCS#12 bundles, the CRL, and reading a
 * device's identity back (contract in md_certs.h; layout and revocation in
 * docs/internals/certs.md).
 *
 * Invariants: every key is a fresh ECDSA P-256 key, every certificate and CRL
 * is signed with SHA-256, and every serial is random.  Files go through the
 * staged writes of core/md_durable.c, so outputs appear whole or not at all;
 * the CA pair is linked in rather than renamed so an existing CA is never
 * overwritten.  No global state; issuing is called from the CLI on the main
 * thread, the identity readers also from the TLS listeners (md_certs_tls.c).
 */
#include "md_certs.h"
#include "md_certs_io.h"
#include "md_err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CA_DAYS 3650
#define SERVER_DAYS 825
#define CRL_DAYS 30
#define DEVICE_MAX_DAYS 3650
/* Tablets whose clock runs a little slow must still accept a certificate issued now. */
#define BACKDATE_SECONDS 600
#define ID_MAX 64
#define CA_NAME_MAX 64 /* characters; RFC 5280 ub-common-name */
#define DNS_NAME_MAX 253
#define SERIAL_BYTES 16 /* 128 bits, top bit cleared: positive and at most 16 octets */
/* RFC 5280 4.1.2.2 allows 20 octets; the registry (signaling/md_device.c) accepts
 * 64 digits, and one serial it holds but we refused would block every CRL update. */
#define SERIAL_HEX_MAX 64
#define P12_ITER 2048
#define DEVICE_O "madoguchi-device"
#define DEPLOYMENT_O "madoguchi"

/* ---- validation ---- */

/* Ids become file names and subject fields: a closed alphabet keeps both safe. */
static bool valid_id(const char *s)
{
    if (!s)
        return false;
    size_t n = strnlen(s, ID_MAX + 1);
    if (n == 0 || n > ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

/* Host names only (LDH labels, optional leading "*."), so a SAN can never smuggle
 * a URI or an e-mail address past a careless caller. */
static bool valid_dns_name(const char *s)
{
    size_t n = strnlen(s, DNS_NAME_MAX + 1);
    if (n == 0 || n > DNS_NAME_MAX)
        return false;
    if (strncmp(s, "*.", 2) == 0)
        s += 2;
    size_t label = 0;
    for (; *s; s++) {
        if (*s == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (g_ascii_isalnum(*s) || *s == '-') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* ---- certificates ---- */

typedef struct cert_profile {
    const char *organization; /* subject O */
    const char *basic_constraints;
    const char *key_usage;
    const char *ext_key_usage; /* nullable */
    bool authority_key_id;     /* false for the self-signed CA */
} cert_profile;

static const cert_profile ca_profile = {DEPLOYMENT_O, "critical,CA:TRUE,pathlen:0",
                                        "critical,keyCertSign,cRLSign", NULL, false};
/* ECDHE suites only need signatures, hence digitalSignature alone. */
static const cert_profile server_profile = {DEPLOYMENT_O, "critical,CA:FALSE",
                                            "critical,digitalSignature", "serverAuth", true};
static const cert_profile device_profile = {DEVICE_O, "critical,CA:FALSE",
                                            "critical,digitalSignature", "clientAuth", true};

/* One certificate to issue for a fresh key. */
typedef struct cert_request {
    const cert_profile *profile;
    const char *unit; /* subject OU; nullable */
    const char *name; /* subject CN */
    int days;
    GENERAL_NAMES *san; /* nullable; borrowed */
} cert_request;

/* Random positive 128-bit serial: unpredictable serials are what stop
 * chosen-prefix collision games, and they need no counter file. */
static int set_random_serial(X509 *x)
{
    unsigned char bytes[SERIAL_BYTES];
    BIGNUM *bn = NULL;
    int r = 0;
    do {
        if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
            r = md_certs_crypto_error("rand_bytes");
            goto out;
        }
        bytes[0] &= 0x7f;
        BN_free(bn);
        bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
        if (!bn) {
            r = md_certs_crypto_error("serial_bn");
            goto out;
        }
    } while (BN_is_zero(bn));
    if (!BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        r = md_certs_crypto_error("serial_set");
out:
    BN_free(bn);
    return r;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    if (!ext)
        return md_certs_crypto_error(OBJ_nid2sn(nid));
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : md_certs_crypto_error(OBJ_nid2sn(nid));
}

static int add_name_entry(X509_NAME *name, int nid, const char *value)
{
    if (!X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (const unsigned char *)value, -1, -1,
                                    0))
        return md_certs_crypto_error("subject_name");
    return 0;
}

/* The request's subject: O, then OU when given, then CN (most significant
 * first). */
static int build_subject(const cert_request *req, X509_NAME **ret)
{
    X509_NAME *name = X509_NAME_new();
    int r = name ? 0 : md_certs_crypto_error("subject_name");
    if (r == 0)
        r = add_name_entry(name, NID_organizationName, req->profile->organization);
    if (r == 0 && req->unit)
        r = add_name_entry(name, NID_organizationalUnitName, req->unit);
    if (r == 0)
        r = add_name_entry(name, NID_commonName, req->name);
    if (r < 0) {
        X509_NAME_free(name);
        return r;
    }
    *ret = name;
    return 0;
}

/* Issues the requested certificate for key under ca, signed with ca_key (or
 * self-signed when ca is NULL).  Validity is clamped to the CA's: a leaf that
 * outlives its issuer would only fail later with a less obvious error. */
static int issue_cert(const cert_request *req, const X509_NAME *subject, EVP_PKEY *key, X509 *ca,
                      EVP_PKEY *ca_key, X509 **ret)
{
    const cert_profile *p = req->profile;
    X509 *x = X509_new();
    X509V3_CTX ctx;
    int r = 0;
    if (!x) {
        r = md_certs_crypto_error("x509_new");
        goto out;
    }
    if (!X509_set_version(x, X509_VERSION_3) || !X509_set_subject_name(x, subject) ||
        !X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : subject) ||
        !X509_set_pubkey(x, key)) {
        r = md_certs_crypto_error("x509_fields");
        goto out;
    }
    r = set_random_serial(x);
    if (r < 0)
        goto out;
    if (!X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE_SECONDS) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), req->days, 0, NULL)) {
        r = md_certs_crypto_error("x509_validity");
        goto out;
    }
    if (ca && ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca)) > 0 &&
        !X509_set1_notAfter(x, X509_get0_notAfter(ca))) {
        r = md_certs_crypto_error("x509_validity");
        goto out;
    }

    X509V3_set_ctx(&ctx, ca ? ca : x, x, NULL, NULL, 0);
    if ((r = add_ext(x, &ctx, NID_basic_constraints, p->basic_constraints)) < 0 ||
        (r = add_ext(x, &ctx, NID_key_usage, p->key_usage)) < 0 ||
        (r = add_ext(x, &ctx, NID_subject_key_identifier, "hash")) < 0)
        goto out;
    if (p->ext_key_usage && (r = add_ext(x, &ctx, NID_ext_key_usage, p->ext_key_usage)) < 0)
        goto out;
    if (p->authority_key_id &&
        (r = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always")) < 0)
        goto out;
    /* Not critical: the subject is never empty (RFC 5280 4.2.1.6). */
    if (req->san && !X509_add1_ext_i2d(x, NID_subject_alt_name, req->san, 0, X509V3_ADD_DEFAULT)) {
        r = md_certs_crypto_error("subject_alt_name");
        goto out;
    }
    if (!X509_sign(x, ca ? ca_key : key, EVP_sha256())) {
        r = md_certs_crypto_error("x509_sign");
        goto out;
    }
    *ret = x;
    x = NULL;
out:
    X509_free(x);
    return r;
}

/* The one issuance sequence of the CA, the server and the devices: a fresh
 * key, the subject, the certificate (under ca, or self-signed). */
static int issue_new(const cert_request *req, X509 *ca, EVP_PKEY *ca_key, EVP_PKEY **ret_key,
                     X509 **ret_cert)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_NAME *subject = NULL;
    X509 *cert = NULL;
    int r = key ? 0 : md_certs_crypto_error("generate_key");
    if (r == 0)
        r = build_subject(req, &subject);
    if (r == 0)
        r = issue_cert(req, subject, key, ca, ca_key, &cert);
    X509_NAME_free(subject);
    if (r < 0) {
        EVP_PKEY_free(key);
        return r;
    }
    *ret_key = key;
    *ret_cert = cert;
    return 0;
}

/* Loads the CA and issues req under it: what the server and the device
 * certificates share.  *ret_ca is kept for the chain or the bundle. */
static int issue_under_ca(const char *ca_cert_path, const char *ca_key_path,
                          const cert_request *req, X509 **ret_ca, EVP_PKEY **ret_key,
                          X509 **ret_cert)
{
    X509 *ca = NULL;
    EVP_PKEY *ca_key = NULL;
    int r = md_certs_load_ca(ca_cert_path, ca_key_path, &ca, &ca_key);
    if (r == 0)
        r = issue_new(req, ca, ca_key, ret_key, ret_cert);
    EVP_PKEY_free(ca_key);
    if (r < 0) {
        X509_free(ca);
        return r;
    }
    *ret_ca = ca;
    return 0;
}

/* One output file of a call. */
typedef struct output {
    const char *path;
    mode_t mode;
    md_durable_writer writer;
    const void *obj;
} output;

#define MAX_OUTPUTS 3

/* Stages every output before moving any into place, so a call that fails
 * halfway leaves the files from before it whole.  Without replace an existing
 * file wins (-EEXIST), and the outputs this call had already moved in are
 * removed again: a CA that lost a race to another must not leave its key
 * beside the other's certificate. */
static int write_outputs(const output *out, size_t n, bool replace)
{
    md_durable files[MAX_OUTPUTS] = {{0}};
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++)
        r = md_certs_stage(&files[i], out[i].path, out[i].mode, out[i].writer, out[i].obj);
    for (size_t i = 0; i < n && r == 0; i++) {
        r = md_durable_commit(&files[i], replace);
        for (size_t j = 0; r == -EEXIST && !replace && j < i; j++)
            unlink(out[j].path);
    }
    for (size_t i = 0; i < n; i++)
        md_durable_clear(&files[i]);
    return r;
}

/* Lower-case hex without leading zeros, as md_certs.h promises; the registry
 * upper-cases it and md_certs_crl_write takes either case. */
static int serial_hex(const X509 *x, char **ret)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    int r = 0;
    if (!hex) {
        r = md_certs_crypto_error("serial_hex");
        goto out;
    }
    char *copy = strdup(hex);
    if (!copy) {
        r = -ENOMEM;
        goto out;
    }
    for (char *c = copy; *c; c++)
        *c = g_ascii_tolower(*c);
    *ret = copy;
out:
    OPENSSL_free(hex);
    BN_free(bn);
    return r;
}

/* SHA-256 of the certificate's DER encoding, lower-case hex: what
 * `openssl x509 -fingerprint -sha256` prints, without the colons. */
static int cert_sha256(const X509 *x, char ret[MD_CERTS_SHA256_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!X509_digest(x, EVP_sha256(), md, &len) || len != MD_CERTS_SHA256_HEX_LEN / 2)
        return md_certs_crypto_error("cert_sha256");
    for (unsigned int i = 0; i < len; i++)
        snprintf(ret + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* ---- CA ---- */

int md_certs_ca_init(const char *ca_cert_path, const char *ca_key_path, const char *name)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;

    if (!ca_cert_path || !ca_key_path || !name || !g_utf8_validate(name, -1, NULL) ||
        g_utf8_strlen(name, -1) < 1 || g_utf8_strlen(name, -1) > CA_NAME_MAX)
        return -EINVAL;

    bool have_cert = g_file_test(ca_cert_path, G_FILE_TEST_EXISTS);
    bool have_key = g_file_test(ca_key_path, G_FILE_TEST_EXISTS);
    if (have_cert && have_key)
        return 0;
    /* Half a CA is an operator problem; generating the other half would
     * silently orphan every certificate the old key signed. */
    if (have_cert || have_key)
        return -EEXIST;

    const cert_request req = {&ca_profile, NULL, name, CA_DAYS, NULL};
    int r = issue_new(&req, NULL, NULL, &key, &cert);
    if (r == 0) {
        /* Linked in, never renamed over: an existing CA is never replaced. */
        const output out[] = {
            {ca_key_path, 0600, md_certs_write_key, key},
            {ca_cert_path, 0644, md_certs_write_cert, cert},
        };
        r = write_outputs(out, G_N_ELEMENTS(out), false);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    return r < 0 ? r : 1;
}

/* ---- server ---- */

/* One SAN entry per name; an address literal becomes an iPAddress, anything
 * else must be a host name. */
static int build_san(const char *const *names, GENERAL_NAMES **ret)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gen = NULL;
    ASN1_OCTET_STRING *ip = NULL;
    ASN1_IA5STRING *dns = NULL;
    int r = 0;
    if (!gens)
        return md_certs_crypto_error("subject_alt_name");
    for (size_t i = 0; names[i]; i++) {
        unsigned char addr[16];
        int len = 0;
        if (inet_pton(AF_INET, names[i], addr) == 1)
            len = 4;
        else if (inet_pton(AF_INET6, names[i], addr) == 1)
            len = 16;
        else if (!valid_dns_name(names[i])) {
            r = -EINVAL;
            goto out;
        }
        gen = GENERAL_NAME_new();
        if (!gen) {
            r = md_certs_crypto_error("subject_alt_name");
            goto out;
        }
        if (len) {
            ip = ASN1_OCTET_STRING_new();
            if (!ip || !ASN1_OCTET_STRING_set(ip, addr, len)) {
                r = md_certs_crypto_error("subject_alt_name");
                goto out;
            }
            GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
            ip = NULL;
        } else {
            dns = ASN1_IA5STRING_new();
            if (!dns || !ASN1_STRING_set(dns, names[i], -1)) {
                r = md_certs_crypto_error("subject_alt_name");
                goto out;
            }
            GENERAL_NAME_set0_value(gen, GEN_DNS, dns);
            dns = NULL;
        }
        if (!sk_GENERAL_NAME_push(gens, gen)) {
            r = md_certs_crypto_error("subject_alt_name");
            goto out;
        }
        gen = NULL;
    }
    *ret = gens;
    gens = NULL;
out:
    ASN1_OCTET_STRING_free(ip);
    ASN1_IA5STRING_free(dns);
    GENERAL_NAME_free(gen);
    GENERAL_NAMES_free(gens);
    return r;
}

int md_certs_server_issue(const char *ca_cert_path, const char *ca_key_path,
                          const char *const *names, const char *cert_path, const char *key_path)
{
    X509 *ca = NULL, *cert = NULL;
    EVP_PKEY *key = NULL;
    GENERAL_NAMES *san = NULL;
    int r;

    if (!ca_cert_path || !ca_key_path || !names || !names[0] || !cert_path || !key_path)
        return -EINVAL;
    r = build_san(names, &san);
    if (r < 0)
        goto out;
    /* Clients match the SAN only; the CN is for humans reading logs, and a long
     * host name does not fit its 64-character bound. */
    const char *cn = strlen(names[0]) <= 64 ? names[0] : "madoguchi gateway";
    const cert_request req = {&server_profile, NULL, cn, SERVER_DAYS, san};
    r = issue_under_ca(ca_cert_path, ca_key_path, &req, &ca, &key, &cert);
    if (r < 0)
        goto out;
    /* Key first: a gateway reloading between the two renames then fails its
     * key/cert check and keeps the old pair, instead of loading a mismatch. */
    const output outputs[] = {
        {key_path, 0600, md_certs_write_key, key},
        {cert_path, 0644, md_certs_write_chain, (X509 *const[]){cert, ca}},
    };
    r = write_outputs(outputs, G_N_ELEMENTS(outputs), true);
out:
    GENERAL_NAMES_free(san);
    X509_free(cert);
    X509_free(ca);
    EVP_PKEY_free(key);
    return r;
}

/* ---- devices ---- */

/* AES-256-CBC under PBKDF2-HMAC-SHA256 for both bags and an HMAC-SHA256 MAC:
 * what current Chromium/BoringSSL, Android and Windows import, without the
 * RC2/3DES defaults of old OpenSSL.  PKCS12_create would MAC with SHA-1, so
 * the MAC is set separately (mac_iter -1 skips it there). */
static int build_p12(const char *password, const char *friendly_name, EVP_PKEY *key, X509 *cert,
                     X509 *ca, PKCS12 **ret)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    PKCS12 *p12 = NULL;
    int r = 0;
    if (!chain || !sk_X509_push(chain, ca)) {
        r = md_certs_crypto_error("pkcs12_chain");
        goto out;
    }
    p12 = PKCS12_create(password, friendly_name, key, cert, chain, NID_aes_256_cbc, NID_aes_256_cbc,
                        P12_ITER, -1, 0);
    if (!p12) {
        r = md_certs_crypto_error("pkcs12_create");
        goto out;
    }
    if (!PKCS12_set_mac(p12, password, -1, NULL, 0, P12_ITER, EVP_sha256())) {
        r = md_certs_crypto_error("pkcs12_mac");
        goto out;
    }
    *ret = p12;
    p12 = NULL;
out:
    PKCS12_free(p12);
    sk_X509_free(chain); /* ca is borrowed */
    return r;
}

int md_certs_device_issue(const char *ca_cert_path, const char *ca_key_path, const char *device_id,
                          const char *post_office_id, int valid_days, const char *out_dir,
                          const char *p12_password, char **ret_serial,
                          char ret_sha256[MD_CERTS_SHA256_HEX_LEN + 1])
{
    X509 *ca = NULL, *cert = NULL;
    EVP_PKEY *key = NULL;
    PKCS12 *p12 = NULL;
    char *serial = NULL;
    char *paths[3] = {NULL};
    int r;

    if (!ca_cert_path || !ca_key_path || !out_dir || !ret_serial || !valid_id(device_id) ||
        !valid_id(post_office_id) || valid_days < 1 || valid_days > DEVICE_MAX_DAYS)
        return -EINVAL;
    if (!p12_password)
        p12_password = "";

    const cert_request req = {&device_profile, post_office_id, device_id, valid_days, NULL};
    r = issue_under_ca(ca_cert_path, ca_key_path, &req, &ca, &key, &cert);
    if (r < 0)
        goto out;
    r = build_p12(p12_password, device_id, key, cert, ca, &p12);
    if (r < 0)
        goto out;
    r = serial_hex(cert, &serial);
    if (r < 0)
        goto out;
    char fingerprint[MD_CERTS_SHA256_HEX_LEN + 1];
    r = cert_sha256(cert, fingerprint);
    if (r < 0)
        goto out;

    /* All three are staged before any replaces its predecessor, so a reissue
     * that fails halfway leaves the previous bundle whole. */
    static const char *const suffixes[3] = {".key", ".crt", ".p12"};
    for (size_t i = 0; i < 3; i++) {
        g_autofree char *base = g_strconcat(device_id, suffixes[i], NULL);
        paths[i] = g_build_filename(out_dir, base, NULL);
    }
    const output outputs[3] = {
        {paths[0], 0600, md_certs_write_key, key},
        {paths[1], 0644, md_certs_write_cert, cert},
        {paths[2], 0600, md_certs_write_p12, p12}, /* holds the key, even if password-protected */
    };
    r = write_outputs(outputs, 3, true);
    if (r < 0)
        goto out;
    *ret_serial = serial;
    serial = NULL;
    if (ret_sha256)
        memcpy(ret_sha256, fingerprint, sizeof(fingerprint));
out:
    for (size_t i = 0; i < 3; i++)
        g_free(paths[i]);
    free(serial);
    PKCS12_free(p12);
    X509_free(cert);
    X509_free(ca);
    EVP_PKEY_free(key);
    return r;
}

/* ---- revocation ---- */

static int parse_serial(const char *hex, ASN1_INTEGER **ret)
{
    size_t n = strnlen(hex, SERIAL_HEX_MAX + 1);
    if (n == 0 || n > SERIAL_HEX_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isxdigit(hex[i]))
            return -EINVAL;
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    int r = 0;
    if (!BN_hex2bn(&bn, hex) || !(serial = BN_to_ASN1_INTEGER(bn, NULL))) {
        r = md_certs_crypto_error("crl_serial");
        goto out;
    }
    *ret = serial;
out:
    BN_free(bn);
    return r;
}

/* The revocation date is "now" for every entry: the API carries no dates, and
 * TLS verification only asks whether a serial is listed. */
static int add_revoked(X509_CRL *crl, const char *hex, const ASN1_TIME *now)
{
    ASN1_INTEGER *serial = NULL;
    X509_REVOKED *rev = NULL;
    int r = parse_serial(hex, &serial);
    if (r < 0)
        goto out;
    rev = X509_REVOKED_new();
    if (!rev || !X509_REVOKED_set_serialNumber(rev, serial) ||
        !X509_REVOKED_set_revocationDate(rev, (ASN1_TIME *)now) ||
        !X509_CRL_add0_revoked(crl, rev)) {
        r = md_certs_crypto_error("crl_entry");
        goto out;
    }
    rev = NULL;
out:
    X509_REVOKED_free(rev);
    ASN1_INTEGER_free(serial);
    return r;
}

int md_certs_crl_write(const char *ca_cert_path, const char *ca_key_path,
                       const char *const *revoked_serials, const char *crl_path)
{
    X509 *ca = NULL;
    EVP_PKEY *ca_key = NULL;
    X509_CRL *crl = NULL;
    ASN1_TIME *last = NULL, *next = NULL;
    ASN1_INTEGER *number = NULL;
    X509V3_CTX ctx;
    int r;

    if (!ca_cert_path || !ca_key_path || !crl_path)
        return -EINVAL;
    r = md_certs_load_ca(ca_cert_path, ca_key_path, &ca, &ca_key);
    if (r < 0)
        goto out;
    time_t now = time(NULL);
    crl = X509_CRL_new();
    last = X509_time_adj_ex(NULL, 0, 0, &now);
    next = X509_time_adj_ex(NULL, CRL_DAYS, 0, &now);
    if (!crl || !last || !next || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) ||
        !X509_CRL_set1_lastUpdate(crl, last) || !X509_CRL_set1_nextUpdate(crl, next)) {
        r = md_certs_crypto_error("crl_fields");
        goto out;
    }
    for (size_t i = 0; revoked_serials && revoked_serials[i]; i++) {
        r = add_revoked(crl, revoked_serials[i], last);
        if (r < 0)
            goto out;
    }

    /* RFC 5280 5.2.1 and 5.2.3 make authorityKeyIdentifier and cRLNumber
     * mandatory.  The issue time is a monotonic number without a state file. */
    X509V3_set_ctx(&ctx, ca, NULL, NULL, crl, 0);
    X509_EXTENSION *aki =
        X509V3_EXT_nconf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
    int ok = aki && X509_CRL_add_ext(crl, aki, -1);
    X509_EXTENSION_free(aki);
    number = ASN1_INTEGER_new();
    if (!ok || !number || !ASN1_INTEGER_set_int64(number, (int64_t)now) ||
        !X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, X509V3_ADD_DEFAULT)) {
        r = md_certs_crypto_error("crl_extensions");
        goto out;
    }
    if (!X509_CRL_sort(crl) || !X509_CRL_sign(crl, ca_key, EVP_sha256())) {
        r = md_certs_crypto_error("crl_sign");
        goto out;
    }
    r = write_outputs(&(output){crl_path, 0644, md_certs_write_crl, crl}, 1, true);
out:
    ASN1_INTEGER_free(number);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    X509_CRL_free(crl);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return r;
}

/* ---- identity ---- */

/* The single entry for nid, as a NUL-terminated id.  A repeated attribute is
 * refused: which CN a peer "means" must never depend on the reader. */
static int name_entry_id(const X509_NAME *name, int nid, char **ret)
{
    int i = X509_NAME_get_index_by_NID(name, nid, -1);
    if (i < 0 || X509_NAME_get_index_by_NID(name, nid, i) >= 0)
        return -MD_E_DEVICE_CERT_INVALID;
    const ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, data);
    if (len < 0)
        return md_certs_crypto_error("subject_utf8");
    int r = 0;
    /* An embedded NUL would make the C string disagree with the certificate. */
    if ((size_t)len != strlen((char *)utf8) || !valid_id((char *)utf8)) {
        r = -MD_E_DEVICE_CERT_INVALID;
        goto out;
    }
    char *copy = strdup((char *)utf8);
    if (!copy) {
        r = -ENOMEM;
        goto out;
    }
    *ret = copy;
out:
    OPENSSL_free(utf8);
    return r;
}

int md_certs_device_identity(const void *x509, char **ret_device_id, char **ret_post_office)
{
    if (!x509 || !ret_device_id || !ret_post_office)
        return -EINVAL;
    const X509_NAME *name = X509_get_subject_name(x509);
    char *org = NULL, *device = NULL, *office = NULL;
    /* O tells device certificates from the gateway's own, which share the CA. */
    int r = name_entry_id(name, NID_organizationName, &org);
    if (r < 0)
        goto out;
    if (strcmp(org, DEVICE_O) != 0) {
        r = -MD_E_DEVICE_CERT_INVALID;
        goto out;
    }
    r = name_entry_id(name, NID_commonName, &device);
    if (r < 0)
        goto out;
    r = name_entry_id(name, NID_organizationalUnitName, &office);
    if (r < 0)
        goto out;
    *ret_device_id = device;
    *ret_post_office = office;
    device = office = NULL;
out:
    free(org);
    free(device);
    free(office);
    return r;
}

int md_certs_binding(const void *x509, char **ret_serial,
                     char ret_sha256[MD_CERTS_SHA256_HEX_LEN + 1])
{
    char fingerprint[MD_CERTS_SHA256_HEX_LEN + 1];
    char *serial = NULL;
    if (!x509 || !ret_serial || !ret_sha256)
        return -EINVAL;
    int r = cert_sha256(x509, fingerprint);
    if (r < 0)
        return r;
    r = serial_hex(x509, &serial);
    if (r < 0)
        return r;
    for (char *c = serial; *c; c++)
        *c = g_ascii_toupper(*c);
    *ret_serial = serial;
    memcpy(ret_sha256, fingerprint, sizeof(fingerprint));
    return 0;
}
