/*
 * Login admission: what is decided before a password is hashed
 * (docs/internals/auth.md, "Throttling").
 *
 * Three independent limits, all in memory:
 *   - overall: at most login_per_minute attempts per minute (token bucket);
 *   - per source address: at most login_per_source_per_minute;
 *   - per account name and source address: after `threshold` consecutive
 *     failures the pair must wait 2^(n - threshold) seconds (n = failures),
 *     at most `max_backoff_seconds`, before its next attempt is looked at.
 * The third limit is what replaces a lock on the account: failures from one
 * address never slow down the same account from another address, so an
 * outsider cannot lock a verifier out; and it is kept for every name asked
 * for, known or not, so its answers do not tell which names exist.
 *
 * A refusal costs a hash lookup, no hashing and no database access.  Tables
 * are bounded: entries are dropped once their bucket is full again or their
 * backoff has run out for max_backoff_seconds, and each table holds at most
 * MD_LIMITS_MAX_ENTRIES entries (the oldest are dropped first).  Control
 * thread only; times are monotonic milliseconds.
 */
#ifndef MD_LIMITS_H
#define MD_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#define MD_LIMITS_MAX_ENTRIES 65536

typedef struct md_login_limiter md_login_limiter;

typedef struct md_login_limits {
    int per_minute;            /* all sources together */
    int per_source_per_minute; /* one client address */
    int threshold;             /* failures of one name from one source before backoff */
    int max_backoff_seconds;
} md_login_limits;

md_login_limiter *md_login_limiter_new(const md_login_limits *limits);
md_login_limiter *md_login_limiter_free(md_login_limiter *lim);

/*
 * Whether an attempt for `username` from `source` may go on to the password
 * check.  Returns 0 (and counts it against the buckets) or -MD_E_RATE_LIMITED
 * with *ret_retry_after_s (seconds, >= 1) set.
 */
int md_login_limiter_admit(md_login_limiter *lim, const char *username, const char *source,
                           int64_t now_ms, int *ret_retry_after_s);
/* The attempt was refused (either factor): one more consecutive failure. */
void md_login_limiter_failed(md_login_limiter *lim, const char *username, const char *source,
                             int64_t now_ms);
/* The attempt succeeded: the pair's failures are forgotten. */
void md_login_limiter_succeeded(md_login_limiter *lim, const char *username, const char *source);
/* An admin's unlock: the failures of `username` from every source are forgotten. */
void md_login_limiter_forget_account(md_login_limiter *lim, const char *username);
/* Whether some source must wait before its next attempt for `username`. */
bool md_login_limiter_backing_off(md_login_limiter *lim, const char *username, int64_t now_ms);

#endif
