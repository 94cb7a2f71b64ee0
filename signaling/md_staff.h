/*
 * Staff accounts (verifier, auditor, admin) and their web login sessions.
 *
 * Login = password (scrypt, md_crypto) + TOTP (RFC 6238, md_totp).  Accounts
 * are never locked by failed logins (that would let anyone lock a verifier
 * out); the gateway throttles per account name and source address before a
 * password is hashed (md_limits.h).  A successful login returns a random 32-byte
 * token (base64url) for the cookie; only its SHA-256 is stored.  Every login
 * attempt is audited ("login" / "login_failed" with the code); passwords,
 * codes and tokens never reach the log or the audit.
 *
 * Functions take the store of the calling thread.
 */
#ifndef MD_STAFF_H
#define MD_STAFF_H

#include "md_audit.h"
#include "md_store.h"

#include <stdint.h>

enum md_role { MD_ROLE_VERIFIER, MD_ROLE_AUDITOR, MD_ROLE_ADMIN };

typedef struct md_staff {
    char *username;
    enum md_role role;
    char *municipality; /* required for verifiers; nullable for others */
} md_staff;

void md_staff_clear(md_staff *s);
const char *md_role_name(enum md_role role);
int md_role_parse(const char *name, enum md_role *ret);

typedef struct md_auth_limits {
    int session_ttl_seconds;
} md_auth_limits;

/*
 * Adds an account.  Usernames: 1-64 chars of [A-Za-z0-9._@-].  Passwords: at
 * least 12 characters.  A verifier needs an existing municipality.  Returns
 * the otpauth:// URI of the new TOTP secret in *ret_otpauth_uri (to be shown
 * once).  -EEXIST if the user exists.
 */
int md_staff_add(md_store *st, md_audit *audit, const char *username, enum md_role role,
                 const char *municipality, const char *password, const char *actor, int64_t now_ms,
                 char **ret_otpauth_uri);

/* A new TOTP secret for username (md_admin_staff_reset_totp): *ret_sealed
 * is the value to store in staff.totp_secret, *ret_otpauth_uri the URI to
 * show once; both malloc'd.  Needs the store's field key. */
int md_staff_new_totp_secret(md_store *st, const char *username, char **ret_sealed,
                             char **ret_otpauth_uri);

/*
 * Checks a login.  On success returns 0, fills *ret and *ret_token (malloc'd
 * cookie value).  Failures: -MD_E_CREDENTIALS (unknown user, wrong password
 * or disabled account), -MD_E_TOTP (wrong or replayed code).  `remote` is
 * the client address for the audit entry (not personal data of applicants).
 * Hashes on the calling thread; the gateway uses the split form below.
 */
int md_staff_login(md_store *st, md_audit *audit, const md_auth_limits *limits,
                   const char *username, const char *password, const char *totp_code,
                   const char *remote, int64_t now_ms, md_staff *ret, char **ret_token);

/*
 * The same login in three steps.  _begin (store thread) loads the account
 * and gives the hash to check the password against in *ret_hash: the
 * account's, a dummy of the same cost for an unknown name, or NULL when the
 * password is too long to have been set (count it as wrong without
 * hashing).  The caller runs md_password_verify(password, hash) wherever it
 * likes, then _finish (store thread) with its result checks the TOTP,
 * audits, and makes the web session.  *ret_hash lives as long as the attempt.
 */
typedef struct md_login_attempt md_login_attempt;
int md_staff_login_begin(md_store *st, const char *username, const char *password,
                         md_login_attempt **ret, const char **ret_hash);
int md_staff_login_finish(md_store *st, md_audit *audit, const md_auth_limits *limits,
                          md_login_attempt *attempt, int verified, const char *totp_code,
                          const char *remote, int64_t now_ms, md_staff *ret, char **ret_token);
md_login_attempt *md_login_attempt_free(md_login_attempt *a);

/* Resolves a cookie token to its account; -MD_E_SESSION_EXPIRED if unknown or expired. */
int md_staff_session(md_store *st, const char *token, int64_t now_ms, md_staff *ret);

/* Ends a web session (logout). */
int md_staff_logout(md_store *st, md_audit *audit, const char *token, int64_t now_ms);

/* For tests and operators: the TOTP secret (base32) of a user, malloc'd.
 * It is stored sealed (core/md_sealed.h): md_staff_add, login and this need
 * the store's field key (-MD_E_EVIDENCE_KEY without it). */
int md_staff_totp_secret(md_store *st, const char *username, char **ret_secret);

#endif
