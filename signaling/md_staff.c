/*
 * Staff accounts and their web sessions (see md_staff.h and
 * docs/internals/auth.md).
 *
 * Invariants: a password is checked only by scrypt (md_password_verify), also
 * for unknown users, so response time does not reveal which names exist; the
 * TOTP code is looked at only after the password matched; staff.totp_last_step
 * only grows, and it is advanced with a compare-and-set so two logins racing
 * with one code cannot both win; staff.failed_logins counts consecutive
 * failures of either factor and is reset by a success (it locks nothing:
 * throttling is md_limits.c's, per account and source); only the SHA-256 of
 * a session token is stored.  A login is split in three so that the gateway
 * can hash on a worker thread: md_staff_login_begin and _finish use the
 * store, the password check in between uses nothing but the two strings.  Passwords, codes and
 * tokens never reach a log line or the audit.
 *
 * Every function runs on the thread that owns the store.
 */
#include "md_staff.h"
#include "md_crypto.h"
#include "md_err.h"
#include "md_log.h"
#include "md_sealed.h"
#include "md_totp.h"

#include <errno.h>
#include <glib.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define USERNAME_MAX 64
#define PASSWORD_MIN_CHARS 12
/* scrypt reads the whole password; a cap keeps a login request cheap to refuse. */
#define PASSWORD_MAX_BYTES 1024
#define TOKEN_BYTES 32
#define TOKEN_TEXT_LEN 43 /* base64url of 32 bytes, no padding */
#define REMOTE_MAX 64
#define TOTP_ISSUER "madoguchi"
/* Audit and detail keys identify a web session by this many hex characters of
 * its token hash: enough to match a login to its logout, useless as a key. */
#define SESSION_ID_LEN 16

/*
 * A well-formed hash of a random password nobody knows, with the same cost as
 * real ones.  Unknown users are checked against it so that they take as long
 * as known ones; it can never match because the salt and key are unrelated.
 */
static const char dummy_password_hash[] = "$scrypt$ln=15,r=8,p=1$bWFkb2d1Y2hpLWR1bW15IQ$"
                                          "omy1FoTkni0N_Hr_1wVyumi_R10ckB8dkX0vXb0FhNE";

static const char *const role_names[] = {
    [MD_ROLE_VERIFIER] = "verifier",
    [MD_ROLE_AUDITOR] = "auditor",
    [MD_ROLE_ADMIN] = "admin",
};

#define N_ROLES (sizeof(role_names) / sizeof(role_names[0]))

void md_staff_clear(md_staff *s)
{
    if (!s)
        return;
    free(s->username);
    free(s->municipality);
    s->username = NULL;
    s->municipality = NULL;
}

const char *md_role_name(enum md_role role)
{
    return (unsigned)role < N_ROLES ? role_names[role] : NULL;
}

int md_role_parse(const char *name, enum md_role *ret)
{
    for (size_t i = 0; name && i < N_ROLES; i++)
        if (strcmp(name, role_names[i]) == 0) {
            *ret = (enum md_role)i;
            return 0;
        }
    return -EINVAL;
}

/* Usernames appear in audit actors, logs and URLs: keep them plain. */
static bool valid_username(const char *s)
{
    size_t n = s ? strnlen(s, USERNAME_MAX + 1) : 0;
    if (n == 0 || n > USERNAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == '-'))
            return false;
    }
    return true;
}

/* Characters, not bytes: a Japanese passphrase of 12 kanji is 36 bytes. */
static bool strong_enough(const char *password)
{
    size_t n_bytes = strnlen(password, PASSWORD_MAX_BYTES + 1), n_chars = 0;
    if (n_bytes > PASSWORD_MAX_BYTES)
        return false;
    for (size_t i = 0; i < n_bytes; i++)
        if (((unsigned char)password[i] & 0xc0) != 0x80) /* not a UTF-8 continuation byte */
            n_chars++;
    return n_chars >= PASSWORD_MIN_CHARS;
}

static char *actor_for(const char *username)
{
    char *actor = NULL;
    /* A name that failed validation is not copied into the audit as is. */
    if (asprintf(&actor, "staff:%s", valid_username(username) ? username : "(invalid)") < 0)
        return NULL;
    return actor;
}

/* The stored form of a cookie token; a malformed token is simply not a session. */
static int token_hash(const char *token, char out[MD_SHA256_HEX_LEN + 1])
{
    if (!token || strnlen(token, TOKEN_TEXT_LEN + 1) != TOKEN_TEXT_LEN)
        return -MD_E_SESSION_EXPIRED;
    return md_sha256_hex(token, TOKEN_TEXT_LEN, out);
}

static int64_t audit_staff(md_audit *audit, const char *actor, const char *event,
                           const char *municipality, json_t *detail)
{
    if (!detail)
        return -ENOMEM;
    return md_audit_append_new(audit, actor, event, municipality, NULL, NULL, detail);
}

/* The remote address comes from the HTTP layer; a proxy header could make it
 * anything, so only a short value is kept. */
static const char *remote_for_audit(const char *remote)
{
    if (!remote)
        return NULL;
    return strnlen(remote, REMOTE_MAX + 1) <= REMOTE_MAX ? remote : "(too long)";
}

static int audit_login_failed(md_audit *audit, const char *username, const char *municipality,
                              int code, const char *remote, bool disabled)
{
    char *actor = actor_for(username);
    if (!actor)
        return -ENOMEM;
    json_t *detail =
        json_pack("{s:s, s:s?}", "code", md_err_code(code), "remote", remote_for_audit(remote));
    if (detail && disabled)
        json_object_set_new(detail, "disabled", json_true());
    int64_t seq = audit_staff(audit, actor, "login_failed", municipality, detail);
    free(actor);
    return seq < 0 ? (int)seq : 0;
}

/* ---- accounts ---- */

static int municipality_exists(md_store *st, const char *code)
{
    int64_t one;
    return md_store_query_int(st, "SELECT 1 FROM municipality WHERE code = ?",
                              MD_PARAMS(MD_P_TEXT(code)), &one);
}

static int user_exists(md_store *st, const char *username)
{
    int64_t one;
    return md_store_query_int(st, "SELECT 1 FROM staff WHERE username = ?",
                              MD_PARAMS(MD_P_TEXT(username)), &one);
}

/* staff.totp_secret holds the base32 secret sealed for its row
 * (core/md_sealed.h); these two are the only places that touch it. */
static int seal_totp_secret(md_store *st, const char *username, const char *secret,
                            char **ret_sealed)
{
    g_autofree char *context = g_strconcat("staff.totp_secret:", username, NULL);
    return md_store_seal(st, context, secret, ret_sealed);
}

static int open_totp_secret(md_store *st, const char *username, const char *stored,
                            char **ret_secret)
{
    g_autofree char *context = g_strconcat("staff.totp_secret:", username, NULL);
    int r = md_store_unseal(st, context, stored, ret_secret);
    if (r < 0)
        md_debug("staff", "totp_secret_unreadable", "{s:s, s:s}", "username", username, "error",
                 md_strerror(r));
    return r;
}

int md_staff_new_totp_secret(md_store *st, const char *username, char **ret_sealed,
                             char **ret_otpauth_uri)
{
    char *secret = NULL, *sealed = NULL, *uri = NULL;
    int r = md_totp_new_secret(&secret);
    if (r < 0)
        return r;
    uri = md_totp_uri(TOTP_ISSUER, username, secret);
    r = uri ? seal_totp_secret(st, username, secret, &sealed) : -ENOMEM;
    md_wipe(secret, strlen(secret));
    free(secret);
    if (r < 0) {
        if (uri)
            md_wipe(uri, strlen(uri));
        free(uri);
        return r;
    }
    *ret_sealed = sealed;
    *ret_otpauth_uri = uri;
    return 0;
}

int md_staff_add(md_store *st, md_audit *audit, const char *username, enum md_role role,
                 const char *municipality, const char *password, const char *actor, int64_t now_ms,
                 char **ret_otpauth_uri)
{
    char *hash = NULL, *secret = NULL, *uri = NULL, *sealed = NULL;
    bool inserted = false;
    int r;

    if (!st || !audit || !ret_otpauth_uri || !md_role_name(role) || !valid_username(username))
        return -EINVAL;
    if (!password || !strong_enough(password))
        return -EINVAL;
    if (role == MD_ROLE_VERIFIER && !municipality)
        return -MD_E_MUNICIPALITY_UNKNOWN;
    if (municipality) {
        r = municipality_exists(st, municipality);
        if (r < 0)
            return r;
        if (r == 0)
            return -MD_E_MUNICIPALITY_UNKNOWN;
    }
    r = user_exists(st, username);
    if (r < 0)
        return r;
    if (r > 0)
        return -EEXIST;

    r = md_password_hash(password, &hash);
    if (r < 0)
        goto out;
    r = md_totp_new_secret(&secret);
    if (r < 0)
        goto out;
    uri = md_totp_uri(TOTP_ISSUER, username, secret);
    if (!uri) {
        r = -ENOMEM;
        goto out;
    }
    /* Sealed: reading the database must not yield the second factor. */
    r = seal_totp_secret(st, username, secret, &sealed);
    if (r < 0)
        goto out;
    r = md_store_exec(st,
                      "INSERT INTO staff (username, role, municipality, password_hash, "
                      "totp_secret, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                      MD_PARAMS(MD_P_TEXT(username), MD_P_TEXT(md_role_name(role)),
                                MD_P_TEXT(municipality), MD_P_TEXT(hash), MD_P_TEXT(sealed),
                                MD_P_INT(now_ms)));
    if (r < 0) {
        /* Lost a race with another writer (the CLI and the gateway share the file). */
        if (user_exists(st, username) > 0)
            r = -EEXIST;
        goto out;
    }
    inserted = true;

    int64_t seq =
        audit_staff(audit, actor ? actor : "operator", "staff_added", municipality,
                    json_pack("{s:s, s:s}", "username", username, "role", md_role_name(role)));
    if (seq < 0) {
        r = (int)seq;
        goto out;
    }
    *ret_otpauth_uri = uri;
    uri = NULL;
    r = 0;
out:
    /* An account nobody audited must not exist. */
    if (r < 0 && inserted)
        md_store_exec(st, "DELETE FROM staff WHERE username = ?", MD_PARAMS(MD_P_TEXT(username)));
    if (secret)
        md_wipe(secret, strlen(secret));
    if (uri)
        md_wipe(uri, strlen(uri));
    free(secret);
    free(uri);
    free(hash);
    free(sealed);
    return r;
}

int md_staff_totp_secret(md_store *st, const char *username, char **ret_secret)
{
    char *stored = NULL;
    int r;

    if (!st || !ret_secret || !valid_username(username))
        return -EINVAL;
    r = md_store_query_text(st, "SELECT totp_secret FROM staff WHERE username = ?",
                            MD_PARAMS(MD_P_TEXT(username)), &stored);
    if (r < 0)
        return r;
    if (r == 0 || !stored) {
        free(stored);
        return -ENOENT;
    }
    r = open_totp_secret(st, username, stored, ret_secret);
    free(stored);
    return r;
}

/* ---- login ---- */

struct account {
    char *role;
    char *municipality;
    char *password_hash;
    char *totp_secret;
    int64_t totp_last_step;
    int64_t locked_until;
    int64_t disabled;
};

static char *dup_nullable(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int on_account_row(const md_row *row, void *userdata)
{
    struct account *a = userdata;
    a->role = dup_nullable(md_row_text(row, 0));
    a->municipality = dup_nullable(md_row_text(row, 1));
    a->password_hash = dup_nullable(md_row_text(row, 2));
    a->totp_secret = dup_nullable(md_row_text(row, 3));
    a->totp_last_step = md_row_int(row, 4);
    a->locked_until = md_row_int(row, 5);
    a->disabled = md_row_int(row, 6);
    if (!a->role || !a->password_hash || !a->totp_secret ||
        (!md_row_is_null(row, 1) && !a->municipality))
        return -ENOMEM;
    return 1;
}

static void account_clear(struct account *a)
{
    free(a->role);
    free(a->municipality);
    free(a->password_hash);
    if (a->totp_secret)
        md_wipe(a->totp_secret, strlen(a->totp_secret));
    free(a->totp_secret);
    memset(a, 0, sizeof(*a));
}

/* Returns 1 with *a filled (the TOTP secret opened), 0 when there is no such user. */
static int account_load(md_store *st, const char *username, struct account *a)
{
    int r = md_store_query(st,
                           "SELECT role, municipality, password_hash, totp_secret, totp_last_step, "
                           "locked_until, disabled FROM staff WHERE username = ?",
                           MD_PARAMS(MD_P_TEXT(username)), on_account_row, a);
    if (r > 0) {
        char *secret = NULL;
        int o = open_totp_secret(st, username, a->totp_secret, &secret);
        free(a->totp_secret);
        a->totp_secret = secret;
        if (o < 0)
            r = o;
    }
    if (r < 0)
        account_clear(a);
    return r < 0 ? r : (r > 0 ? 1 : 0);
}

/*
 * Counts one failed factor on the account's row (a figure for operators).  It
 * no longer locks anything: throttling is per account *and source* in memory
 * (md_limits.c), so that nobody can lock someone else out.  Done in one
 * statement so that concurrent failures are all counted.
 */
static int record_failure(md_store *st, const char *username)
{
    int r =
        md_store_exec(st, "UPDATE staff SET failed_logins = failed_logins + 1 WHERE username = ?",
                      MD_PARAMS(MD_P_TEXT(username)));
    return r < 0 ? r : 0;
}

static bool limits_valid(const md_auth_limits *l)
{
    return l && l->session_ttl_seconds >= 1;
}

/* Removes expired sessions; a failure here only delays the cleanup. */
static void sweep_sessions(md_store *st, int64_t now_ms)
{
    int r = md_store_exec(st, "DELETE FROM web_session WHERE expires_at <= ?",
                          MD_PARAMS(MD_P_INT(now_ms)));
    if (r < 0)
        md_debug("staff", "session_sweep_failed", "{s:s}", "code", md_err_code(r));
}

static int session_create(md_store *st, const char *username, int64_t now_ms, int ttl_seconds,
                          char **ret_token, char ret_hash[MD_SHA256_HEX_LEN + 1])
{
    uint8_t raw[TOKEN_BYTES];
    char hash[MD_SHA256_HEX_LEN + 1];
    char *token = NULL;
    int r;

    r = md_random_bytes(raw, sizeof(raw));
    if (r < 0)
        return r;
    token = md_base64url_encode(raw, sizeof(raw));
    md_wipe(raw, sizeof(raw));
    if (!token)
        return -ENOMEM;
    r = md_sha256_hex(token, strlen(token), hash);
    if (r < 0)
        goto out;
    r = md_store_exec(st,
                      "INSERT INTO web_session (token_hash, username, created_at, expires_at) "
                      "VALUES (?, ?, ?, ?)",
                      MD_PARAMS(MD_P_TEXT(hash), MD_P_TEXT(username), MD_P_INT(now_ms),
                                MD_P_INT(now_ms + (int64_t)ttl_seconds * 1000)));
    if (r < 0)
        goto out;
    memcpy(ret_hash, hash, sizeof(hash));
    *ret_token = token;
    token = NULL;
    r = 0;
out:
    if (token)
        md_wipe(token, strlen(token));
    free(token);
    return r;
}

/*
 * Checks the TOTP of an account whose password matched (verified by the
 * caller, maybe on another thread) and records the outcome on its row.
 */
static int check_second_factor(md_store *st, const char *username, const struct account *a,
                               int verified, const char *totp_code, int64_t now_ms)
{
    int r;
    if (verified < 0)
        return verified; /* a corrupt row: an operator problem, not a failed attempt */
    if (verified == 0) {
        r = record_failure(st, username);
        return r < 0 ? r : -MD_E_CREDENTIALS;
    }
    /* A disabled account is refused like a wrong password, after the same work. */
    if (a->disabled)
        return -MD_E_CREDENTIALS;

    int64_t step =
        md_totp_check(a->totp_secret, totp_code ? totp_code : "", now_ms / 1000, a->totp_last_step);
    if (step == -MD_E_TOTP) {
        r = record_failure(st, username);
        return r < 0 ? r : -MD_E_TOTP;
    }
    if (step < 0)
        return (int)step;

    /* Compare-and-set: of two logins racing with one code only one advances it. */
    r = md_store_exec(st,
                      "UPDATE staff SET totp_last_step = ?, failed_logins = 0, locked_until = 0 "
                      "WHERE username = ? AND totp_last_step < ?",
                      MD_PARAMS(MD_P_INT(step), MD_P_TEXT(username), MD_P_INT(step)));
    if (r < 0)
        return r;
    return r == 0 ? -MD_E_TOTP : 0;
}

struct md_login_attempt {
    char *username;
    bool found;
    bool too_long; /* longer than any password that could have been set: not hashed */
    struct account account;
};

int md_staff_login_begin(md_store *st, const char *username, const char *password,
                         md_login_attempt **ret, const char **ret_hash)
{
    if (!st || !ret || !ret_hash || !password)
        return -EINVAL;
    md_login_attempt *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->username = strdup(username ? username : "");
    if (!a->username) {
        free(a);
        return -ENOMEM;
    }
    if (valid_username(username)) {
        int r = account_load(st, username, &a->account);
        if (r < 0) {
            md_login_attempt_free(a);
            return r;
        }
        a->found = r > 0;
    }
    a->too_long = strnlen(password, PASSWORD_MAX_BYTES + 1) > PASSWORD_MAX_BYTES;
    /* Unknown names are checked against a dummy hash of the same cost, so
     * they take as long as known ones. */
    *ret_hash = a->too_long ? NULL : a->found ? a->account.password_hash : dummy_password_hash;
    *ret = a;
    return 0;
}

md_login_attempt *md_login_attempt_free(md_login_attempt *a)
{
    if (!a)
        return NULL;
    account_clear(&a->account);
    free(a->username);
    free(a);
    return NULL;
}

/* After a successful login: a new web session, audited before it is handed out. */
static int start_session(md_store *st, md_audit *audit, const md_auth_limits *limits,
                         const char *username, const struct account *a, const char *remote,
                         int64_t now_ms, md_staff *ret, char **ret_token)
{
    char *token = NULL, *actor = NULL, *user_copy = NULL, *muni_copy = NULL;
    char hash[MD_SHA256_HEX_LEN + 1];
    bool session_made = false;
    enum md_role role;
    int r;

    if (md_role_parse(a->role, &role) < 0)
        return -MD_E_STORE;
    user_copy = strdup(username);
    muni_copy = dup_nullable(a->municipality);
    actor = actor_for(username);
    if (!user_copy || (a->municipality && !muni_copy) || !actor) {
        r = -ENOMEM;
        goto out;
    }
    sweep_sessions(st, now_ms);
    r = session_create(st, username, now_ms, limits->session_ttl_seconds, &token, hash);
    if (r < 0)
        goto out;
    session_made = true;

    int64_t seq =
        audit_staff(audit, actor, "login", a->municipality,
                    json_pack("{s:s, s:s?, s:s%}", "code", "ok", "remote", remote_for_audit(remote),
                              "web_session", hash, (size_t)SESSION_ID_LEN));
    if (seq < 0) {
        r = (int)seq;
        goto out;
    }
    ret->username = user_copy;
    ret->role = role;
    ret->municipality = muni_copy;
    user_copy = muni_copy = NULL;
    *ret_token = token;
    token = NULL;
    session_made = false; /* handed over to the caller */
    r = 0;
out:
    /* A session the audit does not know of must not work. */
    if (session_made)
        md_store_exec(st, "DELETE FROM web_session WHERE token_hash = ?",
                      MD_PARAMS(MD_P_TEXT(hash)));
    if (token)
        md_wipe(token, strlen(token));
    free(token);
    free(actor);
    free(user_copy);
    free(muni_copy);
    return r;
}

int md_staff_login_finish(md_store *st, md_audit *audit, const md_auth_limits *limits,
                          md_login_attempt *attempt, int verified, const char *totp_code,
                          const char *remote, int64_t now_ms, md_staff *ret, char **ret_token)
{
    struct account *a = &attempt->account;
    int r;

    if (!st || !audit || !limits_valid(limits) || !ret || !ret_token)
        return -EINVAL;
    if (!attempt->found)
        r = -MD_E_CREDENTIALS;
    else
        r = check_second_factor(st, attempt->username, a, attempt->too_long ? 0 : verified,
                                totp_code, now_ms);
    if (r < 0) {
        /* The refusal stands either way; an audit failure is returned instead
         * because an unaudited attempt must not pass for an ordinary one. */
        int ar = audit_login_failed(audit, attempt->username, a->municipality, r, remote,
                                    a->disabled != 0);
        if (ar < 0)
            r = ar;
        return r;
    }
    return start_session(st, audit, limits, attempt->username, a, remote, now_ms, ret, ret_token);
}

int md_staff_login(md_store *st, md_audit *audit, const md_auth_limits *limits,
                   const char *username, const char *password, const char *totp_code,
                   const char *remote, int64_t now_ms, md_staff *ret, char **ret_token)
{
    md_login_attempt *attempt = NULL;
    const char *hash = NULL;

    if (!st || !audit || !limits_valid(limits) || !ret || !ret_token || !password)
        return -EINVAL;
    int r = md_staff_login_begin(st, username, password, &attempt, &hash);
    if (r < 0)
        return r;
    int verified = hash ? md_password_verify(password, hash) : 0;
    if (!attempt->found && verified < 0)
        md_debug("staff", "dummy_hash_failed", NULL);
    r = md_staff_login_finish(st, audit, limits, attempt, verified, totp_code, remote, now_ms, ret,
                              ret_token);
    md_login_attempt_free(attempt);
    return r;
}

/* ---- sessions ---- */

struct session_row {
    char *username;
    char *role;
    char *municipality;
    int64_t expires_at;
    int64_t disabled;
    bool oom;
};

static int on_session_row(const md_row *row, void *userdata)
{
    struct session_row *s = userdata;
    s->username = dup_nullable(md_row_text(row, 0));
    s->role = dup_nullable(md_row_text(row, 1));
    s->municipality = dup_nullable(md_row_text(row, 2));
    s->expires_at = md_row_int(row, 3);
    s->disabled = md_row_int(row, 4);
    if (!s->username || !s->role || (!md_row_is_null(row, 2) && !s->municipality))
        return -ENOMEM;
    return 1;
}

static void session_row_clear(struct session_row *s)
{
    free(s->username);
    free(s->role);
    free(s->municipality);
    memset(s, 0, sizeof(*s));
}

int md_staff_session(md_store *st, const char *token, int64_t now_ms, md_staff *ret)
{
    struct session_row s = {0};
    char hash[MD_SHA256_HEX_LEN + 1];
    enum md_role role;
    int r;

    if (!st || !ret)
        return -EINVAL;
    r = token_hash(token, hash);
    if (r < 0)
        return r;
    r = md_store_query(st,
                       "SELECT s.username, s.role, s.municipality, w.expires_at, s.disabled "
                       "FROM web_session w JOIN staff s ON s.username = w.username "
                       "WHERE w.token_hash = ?",
                       MD_PARAMS(MD_P_TEXT(hash)), on_session_row, &s);
    if (r < 0)
        goto out;
    if (r == 0) {
        r = -MD_E_SESSION_EXPIRED;
        goto out;
    }
    if (s.expires_at <= now_ms || s.disabled) {
        /* Expired or disabled: the row is of no further use. */
        md_store_exec(st, "DELETE FROM web_session WHERE token_hash = ?",
                      MD_PARAMS(MD_P_TEXT(hash)));
        r = -MD_E_SESSION_EXPIRED;
        goto out;
    }
    if (md_role_parse(s.role, &role) < 0) {
        r = -MD_E_STORE;
        goto out;
    }
    ret->username = s.username;
    ret->role = role;
    ret->municipality = s.municipality;
    s.username = s.municipality = NULL;
    r = 0;
out:
    session_row_clear(&s);
    return r;
}

int md_staff_logout(md_store *st, md_audit *audit, const char *token, int64_t now_ms)
{
    char hash[MD_SHA256_HEX_LEN + 1];
    char *username = NULL, *actor = NULL;
    int r;

    if (!st || !audit)
        return -EINVAL;
    r = token_hash(token, hash);
    if (r < 0)
        return r;
    r = md_store_query_text(st, "SELECT username FROM web_session WHERE token_hash = ?",
                            MD_PARAMS(MD_P_TEXT(hash)), &username);
    if (r < 0)
        goto out;
    if (r == 0 || !username) {
        r = -MD_E_SESSION_EXPIRED;
        goto out;
    }
    r = md_store_exec(st, "DELETE FROM web_session WHERE token_hash = ?",
                      MD_PARAMS(MD_P_TEXT(hash)));
    if (r < 0)
        goto out;
    sweep_sessions(st, now_ms);

    actor = actor_for(username);
    if (!actor) {
        r = -ENOMEM;
        goto out;
    }
    int64_t seq = audit_staff(audit, actor, "logout", NULL,
                              json_pack("{s:s%}", "web_session", hash, (size_t)SESSION_ID_LEN));
    r = seq < 0 ? (int)seq : 0;
out:
    free(actor);
    free(username);
    return r;
}
