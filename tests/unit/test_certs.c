/* Deployment PKI: CA, server and device certificates, PKCS#12 bundles and the CRL,
 * each checked with OpenSSL's own verifier the way the TLS layer will use it. */
#include "md_certs.h"
#include "md_err.h"
#include "md_log.h"
#include "md_test.h"

#include <errno.h>
#include <glib.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;
static char *ca_crt, *ca_key;

static char *path_in(const char *name)
{
    return g_build_filename(dir, name, NULL);
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    ASSERT(f != NULL);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    ASSERT(x != NULL);
    return x;
}

static X509_CRL *read_crl(const char *path)
{
    FILE *f = fopen(path, "r");
    ASSERT(f != NULL);
    X509_CRL *crl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
    fclose(f);
    ASSERT(crl != NULL);
    return crl;
}

static int file_mode(const char *path)
{
    struct stat st;
    ASSERT_EQ(stat(path, &st), 0);
    return (int)(st.st_mode & 07777);
}

/* Returns the X509_V_ERR_* of verifying leaf against the CA (0 when it verifies). */
static int verify(X509 *leaf, int purpose, X509_CRL *crl)
{
    X509 *ca = read_cert(ca_crt);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    ASSERT(store && ctx);
    ASSERT_EQ(X509_STORE_add_cert(store, ca), 1);
    if (crl) {
        ASSERT_EQ(X509_STORE_add_crl(store, crl), 1);
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    ASSERT_EQ(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    ASSERT_EQ(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
    int ok = X509_verify_cert(ctx);
    int err = X509_STORE_CTX_get_error(ctx);
    ASSERT(ok == 1 ? err == X509_V_OK : err != X509_V_OK);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(ca);
    return err;
}

static void issue_device(const char *id, const char *office, const char *password,
                         char **ret_serial)
{
    g_autofree char *devices = path_in("devices");
    ASSERT_EQ(
        md_certs_device_issue(ca_crt, ca_key, id, office, 365, devices, password, ret_serial, NULL),
        0);
}

static X509 *read_device(const char *id)
{
    g_autofree char *base = g_strconcat(id, ".crt", NULL);
    g_autofree char *path = g_build_filename(dir, "devices", base, NULL);
    return read_cert(path);
}

static void test_ca_init(void)
{
    ASSERT_EQ(md_certs_ca_init(ca_crt, ca_key, "Madoguchi テスト CA"), 1);
    ASSERT_EQ(md_certs_ca_init(ca_crt, ca_key, "Madoguchi テスト CA"), 0);
    ASSERT_EQ(file_mode(ca_key), 0600);

    X509 *ca = read_cert(ca_crt);
    ASSERT_EQ(X509_check_ca(ca), 1);
    ASSERT(X509_get_extension_flags(ca) & EXFLAG_SS);
    ASSERT_EQ(X509_get_pathlen(ca), 0);
    ASSERT_EQ(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    ASSERT(X509_get0_subject_key_id(ca) != NULL);
    int bc_crit = -1;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(ca, NID_basic_constraints, &bc_crit, NULL);
    ASSERT(bc && bc->ca);
    ASSERT_EQ(bc_crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    /* About ten years. */
    int days, secs;
    ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(ca), X509_get0_notAfter(ca)), 1);
    ASSERT(days >= 3650 && days <= 3653);
    ASSERT_EQ(X509_get_signature_nid(ca), NID_ecdsa_with_SHA256);
    X509_free(ca);

    /* Half a CA is refused rather than silently completed. */
    g_autofree char *lone_crt = path_in("lone.crt");
    g_autofree char *lone_key = path_in("lone.key");
    ASSERT_EQ(md_certs_ca_init(lone_crt, lone_key, "x"), 1);
    ASSERT_EQ(unlink(lone_crt), 0);
    ASSERT_EQ(md_certs_ca_init(lone_crt, lone_key, "x"), -EEXIST);
    ASSERT_EQ(md_certs_ca_init(lone_crt, lone_key, ""), -EINVAL);
}

static void test_server(void)
{
    g_autofree char *crt = path_in("server.crt");
    g_autofree char *key = path_in("server.key");
    const char *names[] = {"localhost", "gw.example.lg.jp", "127.0.0.1", "::1", NULL};
    ASSERT_EQ(md_certs_server_issue(ca_crt, ca_key, names, crt, key), 0);
    ASSERT_EQ(file_mode(key), 0600);

    X509 *x = read_cert(crt);
    ASSERT_EQ(verify(x, X509_PURPOSE_SSL_SERVER, NULL), X509_V_OK);
    /* serverAuth only: the gateway's certificate cannot log in as a tablet. */
    ASSERT(verify(x, X509_PURPOSE_SSL_CLIENT, NULL) != X509_V_OK);
    ASSERT_EQ(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    ASSERT_EQ(X509_check_host(x, "gw.example.lg.jp", 0, 0, NULL), 1);
    ASSERT_EQ(X509_check_host(x, "other.example", 0, 0, NULL), 0);
    ASSERT_EQ(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    ASSERT_EQ(X509_check_ip_asc(x, "::1", 0), 1);
    ASSERT_EQ(X509_check_ip_asc(x, "127.0.0.2", 0), 0);
    /* The address literal is an iPAddress entry, not a DNS one. */
    ASSERT_EQ(X509_check_host(x, "127.0.0.1", 0, 0, NULL), 0);
    ASSERT_EQ(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    ASSERT_EQ(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
    ASSERT(X509_get0_authority_key_id(x) != NULL);

    EVP_PKEY *pub = X509_get0_pubkey(x);
    ASSERT(EVP_PKEY_is_a(pub, "EC"));
    char group[32];
    ASSERT_EQ(EVP_PKEY_get_group_name(pub, group, sizeof(group), NULL), 1);
    ASSERT_STR_EQ(group, "prime256v1");
    int days, secs;
    ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)), 1);
    ASSERT_EQ(days, 825);

    /* The key file holds the matching private key. */
    FILE *f = fopen(key, "r");
    ASSERT(f != NULL);
    EVP_PKEY *priv = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    ASSERT(priv != NULL);
    ASSERT_EQ(X509_check_private_key(x, priv), 1);
    EVP_PKEY_free(priv);
    X509_free(x);

    const char *bad[] = {"localhost", "evil,DNS:x", NULL};
    ASSERT_EQ(md_certs_server_issue(ca_crt, ca_key, bad, crt, key), -EINVAL);
    const char *none[] = {NULL};
    ASSERT_EQ(md_certs_server_issue(ca_crt, ca_key, none, crt, key), -EINVAL);
    g_autofree char *missing = path_in("nope.crt");
    ASSERT_EQ(md_certs_server_issue(missing, ca_key, names, crt, key), -ENOENT);
}

static void test_device(void)
{
    char *serial = NULL;
    issue_device("TAB-NUKUTA-1", "PO-NUKUTA", "s3cret", &serial);
    ASSERT(serial != NULL);
    ASSERT(strlen(serial) > 0 && strlen(serial) <= 32);
    for (const char *c = serial; *c; c++)
        ASSERT(g_ascii_isxdigit(*c) && !g_ascii_isupper(*c));

    g_autofree char *p12_path = g_build_filename(dir, "devices", "TAB-NUKUTA-1.p12", NULL);
    g_autofree char *key_path = g_build_filename(dir, "devices", "TAB-NUKUTA-1.key", NULL);
    ASSERT_EQ(file_mode(key_path), 0600);
    ASSERT_EQ(file_mode(p12_path), 0600);

    X509 *x = read_device("TAB-NUKUTA-1");
    ASSERT_EQ(verify(x, X509_PURPOSE_SSL_CLIENT, NULL), X509_V_OK);
    ASSERT(verify(x, X509_PURPOSE_SSL_SERVER, NULL) != X509_V_OK);
    ASSERT_EQ(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);

    /* The serial we were told is the certificate's. */
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = BN_bn2hex(bn);
    ASSERT(g_ascii_strcasecmp(hex, serial) == 0);
    OPENSSL_free(hex);
    ASSERT(!BN_is_negative(bn) && BN_num_bits(bn) <= 127);
    BN_free(bn);

    char *device = NULL, *office = NULL;
    ASSERT_EQ(md_certs_device_identity(x, &device, &office), 0);
    ASSERT_STR_EQ(device, "TAB-NUKUTA-1");
    ASSERT_STR_EQ(office, "PO-NUKUTA");
    free(device);
    free(office);

    /* The bundle opens with the password and carries key, certificate and CA. */
    FILE *f = fopen(p12_path, "rb");
    ASSERT(f != NULL);
    PKCS12 *p12 = d2i_PKCS12_fp(f, NULL);
    fclose(f);
    ASSERT(p12 != NULL);
    ASSERT_EQ(PKCS12_verify_mac(p12, "wrong", -1), 0);
    const X509_ALGOR *macalg = NULL;
    const ASN1_INTEGER *iter = NULL;
    PKCS12_get0_mac(NULL, &macalg, NULL, &iter, p12);
    const ASN1_OBJECT *macoid = NULL;
    X509_ALGOR_get0(&macoid, NULL, NULL, macalg);
    ASSERT_EQ(OBJ_obj2nid(macoid), NID_sha256);
    ASSERT_EQ(ASN1_INTEGER_get(iter), 2048);
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    ASSERT_EQ(PKCS12_parse(p12, "s3cret", &pkey, &cert, &chain), 1);
    ASSERT(pkey && cert && chain);
    ASSERT_EQ(X509_cmp(cert, x), 0);
    ASSERT_EQ(X509_check_private_key(cert, pkey), 1);
    ASSERT_EQ(sk_X509_num(chain), 1);
    X509 *ca = read_cert(ca_crt);
    ASSERT_EQ(X509_cmp(sk_X509_value(chain, 0), ca), 0);
    X509_free(ca);
    EVP_PKEY_free(pkey);
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    PKCS12_free(p12);
    X509_free(x);
    free(serial);

    /* An empty password is allowed (kiosk provisioning) and still parses. */
    issue_device("TAB-NUKUTA-2", "PO-NUKUTA", "", &serial);
    free(serial);
    g_autofree char *p12b = g_build_filename(dir, "devices", "TAB-NUKUTA-2.p12", NULL);
    f = fopen(p12b, "rb");
    ASSERT(f != NULL);
    p12 = d2i_PKCS12_fp(f, NULL);
    fclose(f);
    ASSERT(p12 != NULL);
    pkey = NULL;
    cert = NULL;
    ASSERT_EQ(PKCS12_parse(p12, "", &pkey, &cert, NULL), 1);
    EVP_PKEY_free(pkey);
    X509_free(cert);
    PKCS12_free(p12);
}

static void test_device_refusals(void)
{
    g_autofree char *devices = path_in("devices");
    char *serial = (char *)"untouched";
    const char *bad_ids[] = {"",
                             "a/b",
                             "../x",
                             "a b",
                             "タブレット",
                             "x\n",
                             "12345678901234567890123456789012345678901234567890123456789012345"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad_ids); i++) {
        ASSERT_EQ(md_certs_device_issue(ca_crt, ca_key, bad_ids[i], "PO-1", 365, devices, "p",
                                        &serial, NULL),
                  -EINVAL);
        ASSERT_EQ(md_certs_device_issue(ca_crt, ca_key, "TAB-1", bad_ids[i], 365, devices, "p",
                                        &serial, NULL),
                  -EINVAL);
    }
    ASSERT_EQ(md_certs_device_issue(ca_crt, ca_key, NULL, "PO-1", 365, devices, "p", &serial, NULL),
              -EINVAL);
    ASSERT_EQ(
        md_certs_device_issue(ca_crt, ca_key, "TAB-1", "PO-1", 0, devices, "p", &serial, NULL),
        -EINVAL);
    /* 64 characters is the limit, not beyond it. */
    const char *id64 = "1234567890123456789012345678901234567890123456789012345678901234";
    char *ok = NULL;
    ASSERT_EQ(md_certs_device_issue(ca_crt, ca_key, id64, "PO_1.a", 30, devices, "p", &ok, NULL),
              0);
    free(ok);

    /* A key that is not the CA's is refused before anything is written. */
    g_autofree char *other_crt = path_in("other-ca.crt");
    g_autofree char *other_key = path_in("other-ca.key");
    ASSERT_EQ(md_certs_ca_init(other_crt, other_key, "other"), 1);
    ASSERT_EQ(
        md_certs_device_issue(ca_crt, other_key, "TAB-X", "PO-1", 30, devices, "p", &serial, NULL),
        -MD_E_CRYPTO);
    /* File errors come back as -errno: here the output "directory" is a file. */
    ASSERT_EQ(
        md_certs_device_issue(ca_crt, ca_key, "TAB-X", "PO-1", 30, ca_crt, "p", &serial, NULL),
        -ENOTDIR);
    g_autofree char *never = g_build_filename(devices, "TAB-X.p12", NULL);
    ASSERT(access(never, F_OK) != 0);
    ASSERT_STR_EQ(serial, "untouched");
}

static void test_identity_refusals(void)
{
    /* The gateway's own certificate shares the CA but is not a device. */
    g_autofree char *crt = path_in("server.crt");
    X509 *x = read_cert(crt);
    char *device = (char *)"untouched", *office = (char *)"untouched";
    ASSERT_EQ(md_certs_device_identity(x, &device, &office), -MD_E_DEVICE_CERT_INVALID);
    ASSERT_STR_EQ(device, "untouched");
    X509_free(x);

    /* A duplicated CN is ambiguous and refused. */
    x = read_device("TAB-NUKUTA-1");
    X509_NAME *name = X509_NAME_dup(X509_get_subject_name(x));
    ASSERT_EQ(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                         (const unsigned char *)"TAB-OTHER", -1, -1, 0),
              1);
    ASSERT_EQ(X509_set_subject_name(x, name), 1);
    ASSERT_EQ(md_certs_device_identity(x, &device, &office), -MD_E_DEVICE_CERT_INVALID);
    X509_NAME_free(name);
    X509_free(x);
    ASSERT_EQ(md_certs_device_identity(NULL, &device, &office), -EINVAL);
}

static void test_crl(void)
{
    char *revoked = NULL, *kept = NULL;
    issue_device("TAB-REVOKED", "PO-NUKUTA", "p", &revoked);
    issue_device("TAB-KEPT", "PO-NUKUTA", "p", &kept);

    g_autofree char *crl_path = path_in("ca.crl");
    /* The registry keeps serials upper-case (signaling/md_device.c): both cases work. */
    g_autofree char *revoked_upper = g_ascii_strup(revoked, -1);
    const char *serials[] = {"0abc", revoked_upper, NULL};
    ASSERT_EQ(md_certs_crl_write(ca_crt, ca_key, serials, crl_path), 0);

    X509_CRL *crl = read_crl(crl_path);
    ASSERT_EQ(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
    X509 *ca = read_cert(ca_crt);
    ASSERT_EQ(X509_CRL_verify(crl, X509_get0_pubkey(ca)), 1);
    X509_free(ca);
    int days, secs;
    ASSERT_EQ(
        ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(crl), X509_CRL_get0_nextUpdate(crl)),
        1);
    ASSERT_EQ(days, 30);
    ASSERT_EQ(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 2);
    ASN1_INTEGER *number = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    ASSERT(number != NULL);
    ASN1_INTEGER_free(number);

    X509 *rx = read_device("TAB-REVOKED");
    X509 *kx = read_device("TAB-KEPT");
    X509_REVOKED *entry = NULL;
    ASSERT_EQ(X509_CRL_get0_by_serial(crl, &entry, X509_get0_serialNumber(rx)), 1);
    ASSERT_EQ(X509_CRL_get0_by_serial(crl, &entry, X509_get0_serialNumber(kx)), 0);
    ASSERT_EQ(verify(rx, X509_PURPOSE_SSL_CLIENT, crl), X509_V_ERR_CERT_REVOKED);
    ASSERT_EQ(verify(kx, X509_PURPOSE_SSL_CLIENT, crl), X509_V_OK);
    X509_CRL_free(crl);

    /* Rewritten without the serial (a mistaken revocation undone), it verifies again. */
    const char *empty[] = {NULL};
    ASSERT_EQ(md_certs_crl_write(ca_crt, ca_key, empty, crl_path), 0);
    crl = read_crl(crl_path);
    ASSERT_EQ(verify(rx, X509_PURPOSE_SSL_CLIENT, crl), X509_V_OK);
    X509_CRL_free(crl);
    ASSERT_EQ(md_certs_crl_write(ca_crt, ca_key, NULL, crl_path), 0);

    const char *bad[] = {"xyz", NULL};
    ASSERT_EQ(md_certs_crl_write(ca_crt, ca_key, bad, crl_path), -EINVAL);
    const char *too_long[] = {"0123456789012345678901234567890123456789012345678901234567890123a",
                              NULL};
    ASSERT_EQ(md_certs_crl_write(ca_crt, ca_key, too_long, crl_path), -EINVAL);
    const char *blank[] = {"", NULL};
    ASSERT_EQ(md_certs_crl_write(ca_crt, ca_key, blank, crl_path), -EINVAL);

    X509_free(rx);
    X509_free(kx);
    free(revoked);
    free(kept);
}

/* Nothing half-written or temporary is left beside the outputs. */
static void test_no_leftovers(void)
{
    g_autofree char *devices = path_in("devices");
    const char *dirs[] = {dir, devices};
    for (size_t d = 0; d < 2; d++) {
        GDir *gd = g_dir_open(dirs[d], 0, NULL);
        ASSERT(gd != NULL);
        const char *name;
        while ((name = g_dir_read_name(gd)) != NULL) {
            if (d == 0 && strcmp(name, "devices") == 0)
                continue;
            const char *dot = strrchr(name, '.');
            ASSERT(dot != NULL);
            if (strcmp(dot, ".crt") != 0 && strcmp(dot, ".key") != 0 && strcmp(dot, ".p12") != 0 &&
                strcmp(dot, ".crl") != 0)
                MD_FAIL("unexpected file %s", name);
        }
        g_dir_close(gd);
    }
    ASSERT_EQ(file_mode(devices), 0700);
}

/* The directory holds private keys, test ones but keys: do not leave it behind. */
static void remove_tree(const char *path)
{
    GDir *gd = g_dir_open(path, 0, NULL);
    if (gd) {
        const char *name;
        while ((name = g_dir_read_name(gd)) != NULL) {
            g_autofree char *child = g_build_filename(path, name, NULL);
            remove_tree(child);
        }
        g_dir_close(gd);
        ASSERT_EQ(rmdir(path), 0);
    } else {
        ASSERT_EQ(unlink(path), 0);
    }
}

int main(void)
{
    /* Exercise the OpenSSL error drain on the refusal paths. */
    md_log_set_level(MD_LOG_DEBUG);
    dir = md_test_tmpdir();
    ca_crt = path_in("ca.crt");
    ca_key = path_in("ca.key");
    RUN(test_ca_init);
    RUN(test_server);
    RUN(test_device);
    RUN(test_device_refusals);
    RUN(test_identity_refusals);
    RUN(test_crl);
    RUN(test_no_leftovers);
    remove_tree(dir);
    g_free(ca_crt);
    g_free(ca_key);
    free(dir);
    return 0;
}
