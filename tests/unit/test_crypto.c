/*
 * md_crypto against published vectors (FIPS 180-2 SHA-256, RFC 4231 and
 * RFC 2202 HMAC, RFC 4648 encodings, RFC 8032 Ed25519) plus the properties
 * the callers rely on: malformed input refused, outputs untouched on failure,
 * key files written with mode 0600.
 */
#include "md_crypto.h"
#include "md_err.h"
#include "md_test.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static void hex_of(const uint8_t *p, size_t n, char *out)
{
    md_hex_encode(p, n, out);
}

static void test_sha256(void)
{
    char hex[MD_SHA256_HEX_LEN + 1];
    uint8_t digest[MD_SHA256_LEN];

    ASSERT_OK(md_sha256_hex("", 0, hex));
    ASSERT_STR_EQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ASSERT_OK(md_sha256_hex(NULL, 0, hex));
    ASSERT_STR_EQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ASSERT_OK(md_sha256_hex("abc", 3, hex));
    ASSERT_STR_EQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    ASSERT_OK(md_sha256(two_blocks, strlen(two_blocks), digest));
    hex_of(digest, sizeof(digest), hex);
    ASSERT_STR_EQ(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_hmac(void)
{
    uint8_t key[20], mac[MD_HMAC_MAX_LEN];
    size_t mac_len = 0;
    char hex[2 * MD_HMAC_MAX_LEN + 1];

    /* RFC 4231 4.2 test case 1 */
    memset(key, 0x0b, sizeof(key));
    ASSERT_OK(md_hmac("SHA256", key, sizeof(key), "Hi There", 8, mac, &mac_len));
    ASSERT_EQ(mac_len, 32);
    hex_of(mac, mac_len, hex);
    ASSERT_STR_EQ(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    ASSERT_OK(md_hmac("SHA512", key, sizeof(key), "Hi There", 8, mac, &mac_len));
    ASSERT_EQ(mac_len, 64);
    hex_of(mac, mac_len, hex);
    ASSERT_STR_EQ(hex, "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
                       "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854");
    /* RFC 2202 3 test case 1 */
    ASSERT_OK(md_hmac("SHA1", key, sizeof(key), "Hi There", 8, mac, &mac_len));
    ASSERT_EQ(mac_len, 20);
    hex_of(mac, mac_len, hex);
    ASSERT_STR_EQ(hex, "b617318655057264e28bc0b6fb378c8ef146be00");
    /* RFC 4231 4.3 test case 2: a key shorter than the block */
    const char *what = "what do ya want for nothing?";
    ASSERT_OK(md_hmac("SHA256", "Jefe", 4, what, strlen(what), mac, &mac_len));
    hex_of(mac, mac_len, hex);
    ASSERT_STR_EQ(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* An empty key is valid HMAC. */
    ASSERT_OK(md_hmac("SHA256", NULL, 0, "", 0, mac, &mac_len));
    hex_of(mac, mac_len, hex);
    ASSERT_STR_EQ(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");

    ASSERT_EQ(md_hmac("MD5", key, sizeof(key), "x", 1, mac, &mac_len), -EINVAL);
}

static void test_random(void)
{
    uint8_t a[32] = {0}, b[32] = {0}, zero[32] = {0};
    ASSERT_OK(md_random_bytes(a, sizeof(a)));
    ASSERT_OK(md_random_bytes(b, sizeof(b)));
    ASSERT(!md_memeq_const(a, b, sizeof(a)));
    ASSERT(!md_memeq_const(a, zero, sizeof(a)));
    ASSERT_OK(md_random_bytes(NULL, 0));
    md_wipe(a, sizeof(a));
    ASSERT(md_memeq_const(a, zero, sizeof(a)));
}

static void test_hex(void)
{
    const uint8_t bytes[] = {0x00, 0x01, 0xab, 0xff};
    uint8_t out[4], keep[4] = {9, 9, 9, 9};
    char hex[9];

    md_hex_encode(bytes, sizeof(bytes), hex);
    ASSERT_STR_EQ(hex, "0001abff");
    md_hex_encode(bytes, 0, hex);
    ASSERT_STR_EQ(hex, "");
    ASSERT_OK(md_hex_decode("0001ABff", out, sizeof(out)));
    ASSERT(memcmp(out, bytes, sizeof(out)) == 0);

    /* Wrong length, bad digits: refused and the output left alone. */
    memcpy(out, keep, sizeof(out));
    ASSERT_EQ(md_hex_decode("0001ab", out, sizeof(out)), -EINVAL);
    ASSERT_EQ(md_hex_decode("0001abff00", out, sizeof(out)), -EINVAL);
    ASSERT_EQ(md_hex_decode("0001abfg", out, sizeof(out)), -EINVAL);
    ASSERT_EQ(md_hex_decode("0001ab f", out, sizeof(out)), -EINVAL);
    ASSERT(memcmp(out, keep, sizeof(out)) == 0);
}

/* RFC 4648 10 test vectors (padding dropped where our encoders omit it). */
static const struct {
    const char *plain, *base32, *base64url;
} rfc4648[] = {
    {"", "", ""},
    {"f", "MY", "Zg"},
    {"fo", "MZXQ", "Zm8"},
    {"foo", "MZXW6", "Zm9v"},
    {"foob", "MZXW6YQ", "Zm9vYg"},
    {"fooba", "MZXW6YTB", "Zm9vYmE"},
    {"foobar", "MZXW6YTBOI", "Zm9vYmFy"},
};

static void test_base32(void)
{
    uint8_t out[16];

    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        const char *plain = rfc4648[i].plain;
        char *enc = md_base32_encode(plain, strlen(plain));
        ASSERT_STR_EQ(enc, rfc4648[i].base32);
        free(enc);
        int n = md_base32_decode(rfc4648[i].base32, out, sizeof(out));
        ASSERT_EQ(n, strlen(plain));
        ASSERT(memcmp(out, plain, (size_t)n) == 0);
    }
    /* Case, spaces and the RFC's own padding are accepted on input. */
    ASSERT_EQ(md_base32_decode("mzxw 6ytb oi======", out, sizeof(out)), 6);
    ASSERT(memcmp(out, "foobar", 6) == 0);
    ASSERT_EQ(md_base32_decode("MZXW6===", out, sizeof(out)), 3);

    uint8_t keep[16];
    memset(out, 0x55, sizeof(out));
    memcpy(keep, out, sizeof(out));
    ASSERT_EQ(md_base32_decode("MZXW1", out, sizeof(out)), -EINVAL);  /* '1' not in alphabet */
    ASSERT_EQ(md_base32_decode("M", out, sizeof(out)), -EINVAL);      /* 1 char: no byte */
    ASSERT_EQ(md_base32_decode("MZX", out, sizeof(out)), -EINVAL);    /* 3 chars: invalid */
    ASSERT_EQ(md_base32_decode("MZ=XW6", out, sizeof(out)), -EINVAL); /* data after padding */
    ASSERT_EQ(md_base32_decode("MZXW6YTBOI", out, 5), -ENOBUFS);      /* too small */
    ASSERT(memcmp(out, keep, sizeof(out)) == 0);
}

static void test_base64url(void)
{
    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        const char *plain = rfc4648[i].plain;
        char *enc = md_base64url_encode(plain, strlen(plain));
        ASSERT_STR_EQ(enc, rfc4648[i].base64url);
        free(enc);
    }
    /* The two characters that differ from base64 (RFC 4648 5). */
    const uint8_t url[] = {0xfb, 0xff, 0xbf};
    char *enc = md_base64url_encode(url, sizeof(url));
    ASSERT_STR_EQ(enc, "-_-_");
    free(enc);
    enc = md_base64url_encode(url, 2);
    ASSERT_STR_EQ(enc, "-_8");
    free(enc);
}

static void test_password(void)
{
    char *hash = NULL, *hash2 = NULL;

    ASSERT_OK(md_password_hash("correct horse battery", &hash));
    ASSERT(strncmp(hash, "$scrypt$ln=15,r=8,p=1$", 22) == 0);
    /* 16-byte salt = 22 chars, 32-byte key = 43 chars. */
    ASSERT_EQ(strlen(hash), 22 + 22 + 1 + 43);
    ASSERT_EQ(md_password_verify("correct horse battery", hash), 1);
    ASSERT_EQ(md_password_verify("correct horse batterY", hash), 0);
    ASSERT_EQ(md_password_verify("", hash), 0);

    /* Salted: the same password hashes differently. */
    ASSERT_OK(md_password_hash("correct horse battery", &hash2));
    ASSERT(strcmp(hash, hash2) != 0);
    ASSERT_EQ(md_password_verify("correct horse battery", hash2), 1);

    /* Malformed encodings are errors, never a match and never a crash. */
    const char *salt_and_key = strchr(hash + 8, '$'); /* "$<salt>$<key>" */
    char buf[256];
    const char *bad[] = {
        "",
        "$scrypt$",
        "$scrypt$ln=15,r=8,p=1",
        "$scrypt$ln=15,r=8,p=1$",
        "$scrypt$ln=15,r=8,p=1$$",
        "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$",
        "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAA",
        "$scrypt$ln=15,r=8,p=1$AA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$bcrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$scrypt$ln=99,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$scrypt$ln=15,r=8,p=9999999999$AAAAAAAAAAAAAAAAAAAAAA$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$scrypt$ln=15,r=-8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$scrypt$ln=15,p=1,r=8$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
        /* the last character carries bits beyond the 32 bytes */
        "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = md_password_verify("correct horse battery", bad[i]);
        if (r >= 0)
            MD_FAIL("accepted malformed hash #%zu: %d", i, r);
    }
    /* The real salt and key under a changed cost decode fine but do not match. */
    snprintf(buf, sizeof(buf), "$scrypt$ln=14,r=8,p=1%s", salt_and_key);
    ASSERT_EQ(md_password_verify("correct horse battery", buf), 0);
    /* Truncated real hash. */
    snprintf(buf, sizeof(buf), "%s", hash);
    buf[strlen(buf) - 1] = '\0';
    ASSERT(md_password_verify("correct horse battery", buf) < 0);
    ASSERT(md_password_verify(NULL, hash) < 0);
    ASSERT(md_password_verify("x", NULL) < 0);

    free(hash);
    free(hash2);
}

/* RFC 8032 7.1 TEST 1, written as the PKCS#8 / SPKI PEM files OpenSSL reads. */
static const char rfc8032_private_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n";
static const char rfc8032_public_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
    "-----END PUBLIC KEY-----\n";
static const char rfc8032_sig_hex[] =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b4"
    "6bd25bf5f0595bbe24655141438e7a100b";

static char *write_file(const char *dir, const char *name, const char *text)
{
    char *path = NULL;
    ASSERT(asprintf(&path, "%s/%s", dir, name) > 0);
    FILE *fp = fopen(path, "w");
    ASSERT(fp);
    fputs(text, fp);
    fclose(fp);
    return path;
}

static void test_ed25519_rfc8032(void)
{
    char *dir = md_test_tmpdir();
    char *priv_path = write_file(dir, "rfc.key", rfc8032_private_pem);
    char *pub_path = write_file(dir, "rfc.pub", rfc8032_public_pem);
    md_sign_key *priv = NULL, *pub = NULL;
    uint8_t sig[64], want[64];
    char id[17];

    ASSERT_OK(md_sign_key_load_private(priv_path, &priv));
    ASSERT_OK(md_sign_key_load_public(pub_path, &pub));
    ASSERT_OK(md_sign(priv, "", 0, sig));
    ASSERT_OK(md_hex_decode(rfc8032_sig_hex, want, sizeof(want)));
    ASSERT(memcmp(sig, want, sizeof(sig)) == 0);
    ASSERT_EQ(md_verify(pub, "", 0, sig), 1);

    /* Key id: SHA-256 of the raw public key d75a9801..., first 16 hex. */
    ASSERT_OK(md_sign_key_id(pub, id));
    ASSERT_STR_EQ(id, "21fe31dfa154a261");
    ASSERT_OK(md_sign_key_id(priv, id));
    ASSERT_STR_EQ(id, "21fe31dfa154a261");

    /* A public key cannot sign. */
    ASSERT_EQ(md_sign(pub, "x", 1, sig), -EINVAL);

    /* Files that are not Ed25519 keys are refused. */
    char *junk = write_file(dir, "junk.pem",
                            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END "
                            "PRIVATE KEY-----\n");
    md_sign_key *none = NULL;
    ASSERT_EQ(md_sign_key_load_private(junk, &none), -MD_E_CRYPTO);
    ASSERT(none == NULL);
    ASSERT_EQ(md_sign_key_load_public(priv_path, &none), -MD_E_CRYPTO);
    ASSERT_EQ(md_sign_key_load_private("/nonexistent/x.key", &none), -ENOENT);
    ASSERT(none == NULL);

    unlink(junk);
    unlink(priv_path);
    unlink(pub_path);
    rmdir(dir);
    free(junk);
    free(priv_path);
    free(pub_path);
    free(dir);
    md_sign_key_free(priv);
    md_sign_key_free(pub);
}

static void test_ed25519_generate(void)
{
    char *dir = md_test_tmpdir();
    char *priv_path = NULL, *pub_path = NULL;
    md_sign_key *priv = NULL, *pub = NULL, *other = NULL;
    uint8_t sig[64];
    char id1[17], id2[17];
    struct stat stp;
    const char msg[] = "madoguchi-audit-checkpoint\n1\nabc";

    ASSERT(asprintf(&priv_path, "%s/audit.key", dir) > 0);
    ASSERT(asprintf(&pub_path, "%s/audit.key.pub", dir) > 0);

    /* A pre-existing world-readable file is replaced by a 0600 one. */
    FILE *fp = fopen(priv_path, "w");
    ASSERT(fp);
    fclose(fp);
    ASSERT_OK(chmod(priv_path, 0644));

    ASSERT_OK(md_sign_key_generate(priv_path, pub_path));
    ASSERT_OK(stat(priv_path, &stp));
    ASSERT_EQ(stp.st_mode & 0777, 0600);
    ASSERT_OK(stat(pub_path, &stp));
    ASSERT_EQ(stp.st_mode & 0777, 0644);

    ASSERT_OK(md_sign_key_load_private(priv_path, &priv));
    ASSERT_OK(md_sign_key_load_public(pub_path, &pub));
    ASSERT_OK(md_sign_key_id(priv, id1));
    ASSERT_OK(md_sign_key_id(pub, id2));
    ASSERT_STR_EQ(id1, id2);
    ASSERT_EQ(strlen(id1), 16);

    ASSERT_OK(md_sign(priv, msg, strlen(msg), sig));
    ASSERT_EQ(md_verify(pub, msg, strlen(msg), sig), 1);
    ASSERT_EQ(md_verify(priv, msg, strlen(msg), sig), 1);

    /* Tampering with the message or the signature breaks it. */
    char tampered[sizeof(msg)];
    memcpy(tampered, msg, sizeof(msg));
    tampered[0] ^= 1;
    ASSERT_EQ(md_verify(pub, tampered, strlen(tampered), sig), 0);
    sig[10] ^= 0x40;
    ASSERT_EQ(md_verify(pub, msg, strlen(msg), sig), 0);
    sig[10] ^= 0x40;
    ASSERT_EQ(md_verify(pub, msg, strlen(msg) - 1, sig), 0);

    /* Another key does not verify it. */
    ASSERT_OK(md_sign_key_generate(priv_path, pub_path));
    ASSERT_OK(md_sign_key_load_public(pub_path, &other));
    ASSERT_OK(md_sign_key_id(other, id2));
    ASSERT(strcmp(id1, id2) != 0);
    ASSERT_EQ(md_verify(other, msg, strlen(msg), sig), 0);

    /* A directory that does not exist: an error, nothing created. */
    ASSERT(md_sign_key_generate("/nonexistent/dir/a.key", "/nonexistent/dir/a.pub") < 0);

    ASSERT(md_sign_key_free(NULL) == NULL);
    ASSERT(md_sign_key_free(priv) == NULL);
    md_sign_key_free(pub);
    md_sign_key_free(other);
    unlink(priv_path);
    unlink(pub_path);
    ASSERT_OK(rmdir(dir)); /* no temporary files left behind */
    free(priv_path);
    free(pub_path);
    free(dir);
}

int main(void)
{
    RUN(test_sha256);
    RUN(test_hmac);
    RUN(test_random);
    RUN(test_hex);
    RUN(test_base32);
    RUN(test_base64url);
    RUN(test_password);
    RUN(test_ed25519_rfc8032);
    RUN(test_ed25519_generate);
    return 0;
}
