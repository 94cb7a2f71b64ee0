/*
 * Staff accounts and login against a real SQLite file and audit log: adding
 * accounts, both factors, TOTP replay, that failures never lock an account
 * (throttling is md_limits.c's, tested in test_limits.c), web sessions,
 * and that every attempt is audited without passwords, codes or tokens.
 * Time is moved with the now_ms parameter.
 */
#include "md_audit.h"
#include "md_crypto.h"
#include "md_err.h"
#include "md_staff.h"
#include "md_store.h"
#include "md_test.h"
#include "md_totp.h"

#include <errno.h>

#define MUNI "131016"
#define T0 ((int64_t)1800000000000 + 5000) /* 5 s into a TOTP step */
#define STEP_MS ((int64_t)MD_TOTP_STEP_S * 1000)

static const md_auth_limits limits = {
    .session_ttl_seconds = 3600,
};

static const char alice_pw[] = "alice-long-passphrase";
static const char bob_pw[] = "bob-long-passphrase!";

/* Everything secret the test used, to look for in the audit afterwards. */
static char *secrets[64];
static size_t n_secrets;

static void remember(const char *s)
{
    ASSERT(n_secrets < sizeof(secrets) / sizeof(secrets[0]));
    secrets[n_secrets++] = strdup(s);
}

/* The key of sealed columns (core/md_sealed.h) a gateway derives from its master key. */
static const uint8_t FIELD_KEY[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                      12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                      23, 24, 25, 26, 27, 28, 29, 30, 31};

/* One store and audit log shared by the cases, which run in order. */
struct fixture {
    char *dir, *db_path, *key_path, *pub_path;
    md_store *st;
    md_audit *audit;
};
static struct fixture fx;

static void fixture_open(void)
{
    struct fixture *f = &fx;
    f->dir = md_test_tmpdir();
    ASSERT(asprintf(&f->db_path, "%s/madoguchi.db", f->dir) > 0);
    ASSERT(asprintf(&f->key_path, "%s/audit.key", f->dir) > 0);
    ASSERT(asprintf(&f->pub_path, "%s/audit.key.pub", f->dir) > 0);
    ASSERT_OK(md_store_open(f->db_path, &f->st));
    ASSERT_OK(md_audit_open(f->st, f->key_path, 100, 60, &f->audit));
    md_store_set_field_key(f->st, FIELD_KEY);
    ASSERT_OK(md_store_exec(
        f->st,
        "INSERT INTO municipality (code, name, policy, updated_at) "
        "VALUES (?, ?, ?, ?)",
        MD_PARAMS(MD_P_TEXT(MUNI), MD_P_TEXT("Chiyoda"), MD_P_TEXT("{}"), MD_P_INT(0))));
}

static void fixture_close(void)
{
    struct fixture *f = &fx;
    md_audit_close(f->audit);
    md_store_close(f->st);
    /* The audit log is intact after everything the tests did. */
    int64_t bad = -1;
    md_store *st = NULL;
    ASSERT_OK(md_store_open(f->db_path, &st));
    ASSERT_EQ(md_audit_verify(st, f->pub_path, NULL, &bad), 0);
    md_store_close(st);
    free(f->dir);
    free(f->db_path);
    free(f->key_path);
    free(f->pub_path);
}

/* The 6-digit code a user's authenticator shows at now_ms. */
static void code_at(md_store *st, const char *username, int64_t now_ms, char out[7])
{
    char *secret = NULL;
    uint8_t key[64];
    uint32_t code;

    ASSERT_OK(md_staff_totp_secret(st, username, &secret));
    int n = md_base32_decode(secret, key, sizeof(key));
    ASSERT_EQ(n, MD_TOTP_SECRET_LEN);
    ASSERT_OK(md_totp_at("SHA1", key, (size_t)n, now_ms / 1000, 6, &code));
    snprintf(out, 7, "%06u", (unsigned)code);
    remember(out);
    free(secret);
}

static int64_t query_int(md_store *st, const char *sql, const char *arg)
{
    int64_t v = -1;
    ASSERT_EQ(md_store_query_int(st, sql, MD_PARAMS(MD_P_TEXT(arg)), &v), 1);
    return v;
}

/* Audit rows for one user with this event and detail code. */
static int64_t count_audit(md_store *st, const char *actor, const char *event, const char *code)
{
    int64_t n = -1;
    char like[128];
    snprintf(like, sizeof(like), "%%\"code\":\"%s\"%%", code);
    ASSERT_EQ(md_store_query_int(st,
                                 "SELECT COUNT(*) FROM audit WHERE actor = ? AND event = ? "
                                 "AND detail LIKE ?",
                                 MD_PARAMS(MD_P_TEXT(actor), MD_P_TEXT(event), MD_P_TEXT(like)),
                                 &n),
              1);
    return n;
}

static int login(struct fixture *f, const char *user, const char *pw, const char *code,
                 int64_t now_ms, md_staff *ret, char **ret_token)
{
    return md_staff_login(f->st, f->audit, &limits, user, pw, code, "192.0.2.7", now_ms, ret,
                          ret_token);
}

static void test_roles(void)
{
    enum md_role role = MD_ROLE_ADMIN;
    ASSERT_STR_EQ(md_role_name(MD_ROLE_VERIFIER), "verifier");
    ASSERT_STR_EQ(md_role_name(MD_ROLE_AUDITOR), "auditor");
    ASSERT_STR_EQ(md_role_name(MD_ROLE_ADMIN), "admin");
    ASSERT(md_role_name((enum md_role)7) == NULL);
    ASSERT_OK(md_role_parse("auditor", &role));
    ASSERT_EQ(role, MD_ROLE_AUDITOR);
    ASSERT_EQ(md_role_parse("root", &role), -EINVAL);
    ASSERT_EQ(md_role_parse("Admin", &role), -EINVAL);
    ASSERT_EQ(role, MD_ROLE_AUDITOR);
}

static void test_add_accounts(void)
{
    struct fixture *f = &fx;
    char *uri = NULL;

    remember(alice_pw);
    remember(bob_pw);
    ASSERT_OK(md_staff_add(f->st, f->audit, "alice", MD_ROLE_VERIFIER, MUNI, alice_pw, "operator",
                           T0, &uri));
    ASSERT(strncmp(uri, "otpauth://totp/madoguchi:alice?secret=", 38) == 0);
    ASSERT(strstr(uri, "&issuer=madoguchi&digits=6&period=30") != NULL);
    free(uri);
    uri = NULL;
    ASSERT_OK(md_staff_add(f->st, f->audit, "bob.auditor@kita", MD_ROLE_AUDITOR, NULL, bob_pw,
                           "staff:root", T0, &uri));
    free(uri);
    uri = NULL;
    /* Twelve characters that are 36 bytes in UTF-8. */
    const char kana_pw[] = "あいうえおかきくけこさし";
    remember(kana_pw);
    ASSERT_OK(md_staff_add(f->st, f->audit, "carol", MD_ROLE_ADMIN, NULL, kana_pw, NULL, T0, &uri));
    free(uri);
    uri = (char *)"untouched";

    /* Refusals leave the output alone. */
    ASSERT_EQ(
        md_staff_add(f->st, f->audit, "alice", MD_ROLE_AUDITOR, NULL, alice_pw, NULL, T0, &uri),
        -EEXIST);
    ASSERT_EQ(
        md_staff_add(f->st, f->audit, "dave", MD_ROLE_VERIFIER, NULL, alice_pw, NULL, T0, &uri),
        -MD_E_MUNICIPALITY_UNKNOWN);
    ASSERT_EQ(
        md_staff_add(f->st, f->audit, "dave", MD_ROLE_VERIFIER, "999999", alice_pw, NULL, T0, &uri),
        -MD_E_MUNICIPALITY_UNKNOWN);
    ASSERT_EQ(md_staff_add(f->st, f->audit, "dave", MD_ROLE_ADMIN, NULL, "short", NULL, T0, &uri),
              -EINVAL);
    ASSERT_EQ(
        md_staff_add(f->st, f->audit, "dave", MD_ROLE_ADMIN, NULL, "elevenchars", NULL, T0, &uri),
        -EINVAL);
    ASSERT_EQ(md_staff_add(f->st, f->audit, "dave", MD_ROLE_ADMIN, NULL, "あいうえおかきくけこさ",
                           NULL, T0, &uri),
              -EINVAL);
    ASSERT_EQ(md_staff_add(f->st, f->audit, "da ve", MD_ROLE_ADMIN, NULL, alice_pw, NULL, T0, &uri),
              -EINVAL);
    ASSERT_EQ(md_staff_add(f->st, f->audit, "", MD_ROLE_ADMIN, NULL, alice_pw, NULL, T0, &uri),
              -EINVAL);
    char long_name[66];
    memset(long_name, 'x', 65);
    long_name[65] = '\0';
    ASSERT_EQ(
        md_staff_add(f->st, f->audit, long_name, MD_ROLE_ADMIN, NULL, alice_pw, NULL, T0, &uri),
        -EINVAL);
    long_name[64] = '\0'; /* 64 is the limit, inclusive */
    ASSERT_STR_EQ(uri, "untouched");
    ASSERT_OK(
        md_staff_add(f->st, f->audit, long_name, MD_ROLE_ADMIN, NULL, alice_pw, NULL, T0, &uri));
    free(uri);

    ASSERT_EQ(query_int(f->st, "SELECT COUNT(*) FROM staff WHERE username <> ?", ""), 4);
    ASSERT_EQ(query_int(f->st, "SELECT COUNT(*) FROM staff WHERE username = ?", "dave"), 0);
    /* The password is stored as scrypt only. */
    char *hash = NULL;
    ASSERT_EQ(md_store_query_text(f->st, "SELECT password_hash FROM staff WHERE username = ?",
                                  MD_PARAMS(MD_P_TEXT("alice")), &hash),
              1);
    ASSERT(strncmp(hash, "$scrypt$ln=15,r=8,p=1$", 22) == 0);
    ASSERT_EQ(md_password_verify(alice_pw, hash), 1);
    free(hash);

    char *secret = NULL;
    ASSERT_EQ(md_staff_totp_secret(f->st, "nobody", &secret), -ENOENT);
    ASSERT(secret == NULL);

    /* The TOTP secret is stored sealed for its row, never in base32
     * (issue #11 item 10); md_staff_totp_secret opens it. */
    char *stored = NULL;
    ASSERT_EQ(md_store_query_text(f->st, "SELECT totp_secret FROM staff WHERE username = ?",
                                  MD_PARAMS(MD_P_TEXT("alice")), &stored),
              1);
    ASSERT(strncmp(stored, "sealed1:", 8) == 0);
    ASSERT_OK(md_staff_totp_secret(f->st, "alice", &secret));
    ASSERT(strstr(stored, secret) == NULL);
    ASSERT_EQ(md_base32_decode(secret, (uint8_t[64]){0}, 64), MD_TOTP_SECRET_LEN);
    /* Moved to another row, it does not open. */
    char *carol = NULL, *moved = NULL;
    ASSERT_EQ(md_store_query_text(f->st, "SELECT totp_secret FROM staff WHERE username = ?",
                                  MD_PARAMS(MD_P_TEXT("carol")), &carol),
              1);
    ASSERT_OK(md_store_exec(f->st, "UPDATE staff SET totp_secret = ? WHERE username = 'carol'",
                            MD_PARAMS(MD_P_TEXT(stored))));
    ASSERT_EQ(md_staff_totp_secret(f->st, "carol", &moved), -MD_E_EVIDENCE_CORRUPT);
    ASSERT_OK(md_store_exec(f->st, "UPDATE staff SET totp_secret = ? WHERE username = 'carol'",
                            MD_PARAMS(MD_P_TEXT(carol))));
    free(carol);
    free(secret);
    secret = NULL;
    free(stored);

    /* Without the key nothing is stored in the clear: the account is refused. */
    md_store *bare = NULL;
    ASSERT_OK(md_store_open(f->db_path, &bare));
    ASSERT_EQ(md_staff_add(bare, f->audit, "erin", MD_ROLE_ADMIN, NULL, alice_pw, NULL, T0, &uri),
              -MD_E_EVIDENCE_KEY);
    md_store_close(bare);

    ASSERT_EQ(query_int(f->st, "SELECT COUNT(*) FROM audit WHERE event = ?", "staff_added"), 4);
    ASSERT_EQ(query_int(f->st,
                        "SELECT COUNT(*) FROM audit WHERE event = 'staff_added' AND actor = ?",
                        "operator"),
              3);
    ASSERT_EQ(query_int(f->st,
                        "SELECT COUNT(*) FROM audit WHERE event = 'staff_added' AND actor = ?",
                        "staff:root"),
              1);
}

static void test_login_and_session(void)
{
    struct fixture *f = &fx;
    md_staff who = {0};
    char *token = NULL, *token2 = NULL;
    char code[7];
    int64_t now = T0;

    code_at(f->st, "alice", now, code);
    ASSERT_OK(login(f, "alice", alice_pw, code, now, &who, &token));
    remember(token);
    ASSERT_STR_EQ(who.username, "alice");
    ASSERT_EQ(who.role, MD_ROLE_VERIFIER);
    ASSERT_STR_EQ(who.municipality, MUNI);
    ASSERT_EQ(strlen(token), 43);
    md_staff_clear(&who);
    ASSERT_EQ(count_audit(f->st, "staff:alice", "login", "ok"), 1);
    ASSERT_EQ(query_int(f->st, "SELECT totp_last_step FROM staff WHERE username = ?", "alice"),
              now / 1000 / MD_TOTP_STEP_S);

    /* Only the token's SHA-256 is stored. */
    char hash[MD_SHA256_HEX_LEN + 1];
    ASSERT_OK(md_sha256_hex(token, strlen(token), hash));
    ASSERT_EQ(query_int(f->st, "SELECT COUNT(*) FROM web_session WHERE token_hash = ?", hash), 1);
    ASSERT_EQ(query_int(f->st, "SELECT COUNT(*) FROM web_session WHERE token_hash = ?", token), 0);
    ASSERT_EQ(query_int(f->st, "SELECT expires_at FROM web_session WHERE token_hash = ?", hash),
              now + limits.session_ttl_seconds * 1000);

    /* The same code again, even seconds later in the same step: replay. */
    md_staff bad = {.username = (char *)"untouched"};
    char *no_token = (char *)"untouched";
    ASSERT_EQ(login(f, "alice", alice_pw, code, now + 2000, &bad, &no_token), -MD_E_TOTP);
    ASSERT_STR_EQ(bad.username, "untouched");
    ASSERT_STR_EQ(no_token, "untouched");
    ASSERT_EQ(count_audit(f->st, "staff:alice", "login_failed", "totp_invalid"), 1);
    /* ...and the replay counted as a failure; the next success resets it. */
    ASSERT_EQ(query_int(f->st, "SELECT failed_logins FROM staff WHERE username = ?", "alice"), 1);

    /* The next step's code works once. */
    now += STEP_MS;
    code_at(f->st, "alice", now, code);
    ASSERT_OK(login(f, "alice", alice_pw, code, now, &who, &token2));
    remember(token2);
    md_staff_clear(&who);
    ASSERT_EQ(query_int(f->st, "SELECT failed_logins FROM staff WHERE username = ?", "alice"), 0);
    ASSERT(strcmp(token, token2) != 0);

    /* Session lookup, up to and at expiry. */
    int64_t expiry = now + limits.session_ttl_seconds * 1000;
    ASSERT_OK(md_staff_session(f->st, token2, expiry - 1, &who));
    ASSERT_STR_EQ(who.username, "alice");
    ASSERT_EQ(who.role, MD_ROLE_VERIFIER);
    ASSERT_STR_EQ(who.municipality, MUNI);
    md_staff_clear(&who);
    who.username = (char *)"untouched";
    ASSERT_EQ(md_staff_session(f->st, token2, expiry, &who), -MD_E_SESSION_EXPIRED);
    ASSERT_STR_EQ(who.username, "untouched");
    /* The expired row is gone, so moving the clock back does not revive it. */
    ASSERT_EQ(md_staff_session(f->st, token2, now, &who), -MD_E_SESSION_EXPIRED);

    /* Garbage tokens. */
    ASSERT_EQ(md_staff_session(f->st, "", now, &who), -MD_E_SESSION_EXPIRED);
    ASSERT_EQ(md_staff_session(f->st, NULL, now, &who), -MD_E_SESSION_EXPIRED);
    ASSERT_EQ(md_staff_session(f->st, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", now, &who),
              -MD_E_SESSION_EXPIRED);
    ASSERT_EQ(md_staff_session(f->st, hash, now, &who), -MD_E_SESSION_EXPIRED);

    /* Logout ends the first session and is audited; a second logout finds nothing. */
    ASSERT_OK(md_staff_session(f->st, token, now, &who));
    md_staff_clear(&who);
    ASSERT_OK(md_staff_logout(f->st, f->audit, token, now));
    ASSERT_EQ(md_staff_session(f->st, token, now, &who), -MD_E_SESSION_EXPIRED);
    ASSERT_EQ(md_staff_logout(f->st, f->audit, token, now), -MD_E_SESSION_EXPIRED);
    ASSERT_EQ(query_int(f->st, "SELECT COUNT(*) FROM audit WHERE event = 'logout' AND actor = ?",
                        "staff:alice"),
              1);
    ASSERT_EQ(query_int(f->st, "SELECT COUNT(*) FROM web_session WHERE username = ?", "alice"), 0);

    free(token);
    free(token2);
}

static void test_wrong_factors(void)
{
    struct fixture *f = &fx;
    md_staff who = {0};
    char *token = NULL;
    char code[7], wrong[7];
    int64_t now = T0 + 10 * STEP_MS;

    code_at(f->st, "carol", now, code);
    memcpy(wrong, code, sizeof(wrong));
    wrong[5] = wrong[5] == '9' ? '0' : (char)(wrong[5] + 1);
    remember(wrong);

    /* 1: wrong password (with the right code); 2, 3: right password, bad code. */
    ASSERT_EQ(login(f, "carol", "wrong-password-here", code, now, &who, &token), -MD_E_CREDENTIALS);
    remember("wrong-password-here");
    ASSERT_EQ(login(f, "carol", "あいうえおかきくけこさし", wrong, now, &who, &token), -MD_E_TOTP);
    ASSERT_EQ(login(f, "carol", "あいうえおかきくけこさし", "12345", now, &who, &token),
              -MD_E_TOTP);
    /* Unknown and malformed names look like a wrong password. */
    ASSERT_EQ(login(f, "mallory", "whatever-password", code, now, &who, &token), -MD_E_CREDENTIALS);
    ASSERT_EQ(login(f, "mal lory", "whatever-password", code, now, &who, &token),
              -MD_E_CREDENTIALS);
    remember("whatever-password");
    ASSERT(who.username == NULL && token == NULL);

    /* A wrong password with a right code says credentials, not totp: the
     * code is looked at only after the password matched. */
    ASSERT_EQ(count_audit(f->st, "staff:carol", "login_failed", "credentials_invalid"), 1);
    ASSERT_EQ(count_audit(f->st, "staff:carol", "login_failed", "totp_invalid"), 2);
    ASSERT_EQ(count_audit(f->st, "staff:mallory", "login_failed", "credentials_invalid"), 1);
    ASSERT_EQ(count_audit(f->st, "staff:(invalid)", "login_failed", "credentials_invalid"), 1);
    /* Failures are counted on the row but lock nothing: with the right
     * password and a fresh code carol gets in (issue #11 item 4). */
    ASSERT_EQ(query_int(f->st, "SELECT failed_logins FROM staff WHERE username = ?", "carol"), 3);
    ASSERT_EQ(query_int(f->st,
                        "SELECT COUNT(*) FROM audit WHERE actor = ? AND detail LIKE "
                        "'%\"locked\":true%'",
                        "staff:carol"),
              0);
    code_at(f->st, "carol", now + STEP_MS, code);
    ASSERT_OK(login(f, "carol", "あいうえおかきくけこさし", code, now + STEP_MS, &who, &token));
    remember(token);
    md_staff_clear(&who);
    free(token);
}

static void test_failures_never_lock(void)
{
    struct fixture *f = &fx;
    md_staff who = {0};
    char *token = NULL;
    char code[7];
    int64_t now = T0 + 100 * STEP_MS;
    const char *user = "bob.auditor@kita", *actor = "staff:bob.auditor@kita";

    /* Failures below the threshold are forgotten after a success. */
    ASSERT_EQ(login(f, user, "not-bobs-password", NULL, now, &who, &token), -MD_E_CREDENTIALS);
    ASSERT_EQ(login(f, user, "not-bobs-password", NULL, now, &who, &token), -MD_E_CREDENTIALS);
    remember("not-bobs-password");
    ASSERT_EQ(query_int(f->st, "SELECT failed_logins FROM staff WHERE username = ?", user), 2);
    code_at(f->st, user, now, code);
    ASSERT_OK(login(f, user, bob_pw, code, now, &who, &token));
    remember(token);
    ASSERT_EQ(who.role, MD_ROLE_AUDITOR);
    ASSERT(who.municipality == NULL);
    md_staff_clear(&who);
    free(token);
    token = NULL;
    ASSERT_EQ(query_int(f->st, "SELECT failed_logins FROM staff WHERE username = ?", user), 0);

    /* Many consecutive failures of either factor still lock nothing. */
    now += STEP_MS;
    for (int i = 0; i < 20; i++)
        ASSERT_EQ(login(f, user, "not-bobs-password", NULL, now + i, &who, &token),
                  -MD_E_CREDENTIALS);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(login(f, user, bob_pw, "000000", now, &who, &token), -MD_E_TOTP);
    ASSERT_EQ(query_int(f->st, "SELECT failed_logins FROM staff WHERE username = ?", user), 25);
    code_at(f->st, user, now, code);
    ASSERT_OK(login(f, user, bob_pw, code, now + 1000, &who, &token));
    remember(token);
    md_staff_clear(&who);
    free(token);
    ASSERT_EQ(query_int(f->st, "SELECT failed_logins FROM staff WHERE username = ?", user), 0);
    ASSERT_EQ(count_audit(f->st, actor, "login_failed", "account_locked"), 0);
}

static void test_disabled(void)
{
    struct fixture *f = &fx;
    md_staff who = {0};
    char *token = NULL, *token2 = NULL;
    char code[7];
    int64_t now = T0 + 1000 * STEP_MS;

    code_at(f->st, "alice", now, code);
    ASSERT_OK(login(f, "alice", alice_pw, code, now, &who, &token));
    remember(token);
    md_staff_clear(&who);
    ASSERT_OK(md_store_exec(f->st, "UPDATE staff SET disabled = 1 WHERE username = ?",
                            MD_PARAMS(MD_P_TEXT("alice"))));
    /* A disabled account's live sessions stop working at once. */
    ASSERT_EQ(md_staff_session(f->st, token, now + 1, &who), -MD_E_SESSION_EXPIRED);
    /* And it cannot log in, though it is told no more than "wrong password". */
    code_at(f->st, "alice", now + STEP_MS, code);
    ASSERT_EQ(login(f, "alice", alice_pw, code, now + STEP_MS, &who, &token2), -MD_E_CREDENTIALS);
    ASSERT_EQ(query_int(f->st,
                        "SELECT COUNT(*) FROM audit WHERE actor = ? AND detail LIKE "
                        "'%\"disabled\":true%'",
                        "staff:alice"),
              1);
    free(token);
}

/* No audit row holds a password, a code or a token; failures carry the remote. */
static void test_audit_clean(void)
{
    struct fixture *f = &fx;
    for (size_t i = 0; i < n_secrets; i++) {
        char like[256];
        snprintf(like, sizeof(like), "%%%s%%", secrets[i]);
        int64_t n = -1;
        ASSERT_EQ(md_store_query_int(f->st,
                                     "SELECT COUNT(*) FROM audit WHERE detail LIKE ? OR actor "
                                     "LIKE ? OR event LIKE ?",
                                     MD_PARAMS(MD_P_TEXT(like), MD_P_TEXT(like), MD_P_TEXT(like)),
                                     &n),
                  1);
        if (n != 0)
            MD_FAIL("secret #%zu appears in the audit", i);
    }
    ASSERT_EQ(query_int(f->st,
                        "SELECT COUNT(*) FROM audit WHERE event = ? AND detail NOT LIKE "
                        "'%\"remote\":\"192.0.2.7\"%'",
                        "login_failed"),
              0);
    ASSERT(query_int(f->st, "SELECT COUNT(*) FROM audit WHERE event = ?", "login") >= 4);
}

int main(void)
{
    RUN(test_roles);
    fixture_open();
    RUN(test_add_accounts);
    RUN(test_login_and_session);
    RUN(test_wrong_factors);
    RUN(test_failures_never_lock);
    RUN(test_disabled);
    RUN(test_audit_clean);
    fixture_close();
    for (size_t i = 0; i < n_secrets; i++)
        free(secrets[i]);
    return 0;
}
