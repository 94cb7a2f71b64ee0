/*
 * Login admission before any hashing (see md_limits.h).  Token buckets per
 * source and overall, and an exponential backoff per (name, source) pair
 * that stands in for an account lock.  Control thread only.
 */
#include "md_limits.h"
#include "md_err.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#define MS_PER_MINUTE 60000.0
/* Prune a table when it has grown by this many entries since the last sweep. */
#define PRUNE_EVERY 1024

struct bucket {
    double tokens;
    int64_t at_ms;
};

struct pair {
    int failures;
    int64_t last_ms;
    int64_t next_ms; /* no attempt before this */
};

struct md_login_limiter {
    md_login_limits limits;
    struct bucket overall;
    GHashTable *sources; /* address -> struct bucket */
    GHashTable *pairs;   /* "name\nsource" -> struct pair */
    guint sources_at_sweep, pairs_at_sweep;
};

md_login_limiter *md_login_limiter_new(const md_login_limits *limits)
{
    md_login_limiter *lim = g_new0(md_login_limiter, 1);
    lim->limits = *limits;
    lim->overall.tokens = limits->per_minute;
    lim->sources = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    lim->pairs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return lim;
}

md_login_limiter *md_login_limiter_free(md_login_limiter *lim)
{
    if (!lim)
        return NULL;
    g_hash_table_destroy(lim->sources);
    g_hash_table_destroy(lim->pairs);
    g_free(lim);
    return NULL;
}

/* Refills at per_minute tokens a minute up to per_minute. */
static void refill(struct bucket *b, int per_minute, int64_t now_ms)
{
    if (now_ms > b->at_ms)
        b->tokens = MIN((double)per_minute,
                        b->tokens + (double)(now_ms - b->at_ms) * per_minute / MS_PER_MINUTE);
    b->at_ms = now_ms;
}

/* Seconds until the bucket holds one token again (>= 1). */
static int bucket_wait_s(const struct bucket *b, int per_minute)
{
    double need = 1.0 - b->tokens;
    return MAX(1, (int)ceil(need * MS_PER_MINUTE / per_minute / 1000.0));
}

static gboolean source_idle(gpointer key, gpointer value, gpointer data)
{
    md_login_limiter *lim = ((gpointer *)data)[0];
    int64_t now = *(int64_t *)((gpointer *)data)[1];
    struct bucket *b = value;
    refill(b, lim->limits.per_source_per_minute, now);
    return b->tokens >= lim->limits.per_source_per_minute;
}

static gboolean pair_idle(gpointer key, gpointer value, gpointer data)
{
    md_login_limiter *lim = ((gpointer *)data)[0];
    int64_t now = *(int64_t *)((gpointer *)data)[1];
    const struct pair *p = value;
    return now >= p->next_ms + (int64_t)lim->limits.max_backoff_seconds * 1000;
}

/* Drops finished entries; if a table is still at its cap, empties it (an
 * attacker who fills it with fresh entries only resets his own backoffs, and
 * the buckets still bound the rate). */
static void prune(md_login_limiter *lim, int64_t now_ms)
{
    gpointer data[2] = {lim, &now_ms};
    if (g_hash_table_size(lim->sources) >= lim->sources_at_sweep + PRUNE_EVERY ||
        g_hash_table_size(lim->sources) >= MD_LIMITS_MAX_ENTRIES) {
        g_hash_table_foreach_remove(lim->sources, source_idle, data);
        if (g_hash_table_size(lim->sources) >= MD_LIMITS_MAX_ENTRIES)
            g_hash_table_remove_all(lim->sources);
        lim->sources_at_sweep = g_hash_table_size(lim->sources);
    }
    if (g_hash_table_size(lim->pairs) >= lim->pairs_at_sweep + PRUNE_EVERY ||
        g_hash_table_size(lim->pairs) >= MD_LIMITS_MAX_ENTRIES) {
        g_hash_table_foreach_remove(lim->pairs, pair_idle, data);
        if (g_hash_table_size(lim->pairs) >= MD_LIMITS_MAX_ENTRIES)
            g_hash_table_remove_all(lim->pairs);
        lim->pairs_at_sweep = g_hash_table_size(lim->pairs);
    }
}

static char *pair_key(const char *username, const char *source)
{
    return g_strdup_printf("%s\n%s", username ? username : "", source ? source : "");
}

int md_login_limiter_admit(md_login_limiter *lim, const char *username, const char *source,
                           int64_t now_ms, int *ret_retry_after_s)
{
    const md_login_limits *l = &lim->limits;
    prune(lim, now_ms);
    const char *src = source ? source : "";

    /* The source first: a flooding address uses up its own tokens only. */
    struct bucket *sb = g_hash_table_lookup(lim->sources, src);
    if (!sb) {
        sb = g_new(struct bucket, 1);
        *sb = (struct bucket){.tokens = l->per_source_per_minute, .at_ms = now_ms};
        g_hash_table_insert(lim->sources, g_strdup(src), sb);
    }
    refill(sb, l->per_source_per_minute, now_ms);
    if (sb->tokens < 1.0) {
        *ret_retry_after_s = bucket_wait_s(sb, l->per_source_per_minute);
        return -MD_E_RATE_LIMITED;
    }

    g_autofree char *key = pair_key(username, source);
    const struct pair *p = g_hash_table_lookup(lim->pairs, key);
    if (p && now_ms < p->next_ms) {
        *ret_retry_after_s = MAX(1, (int)((p->next_ms - now_ms + 999) / 1000));
        return -MD_E_RATE_LIMITED;
    }

    refill(&lim->overall, l->per_minute, now_ms);
    if (lim->overall.tokens < 1.0) {
        *ret_retry_after_s = bucket_wait_s(&lim->overall, l->per_minute);
        return -MD_E_RATE_LIMITED;
    }
    sb->tokens -= 1.0;
    lim->overall.tokens -= 1.0;
    return 0;
}

void md_login_limiter_failed(md_login_limiter *lim, const char *username, const char *source,
                             int64_t now_ms)
{
    char *key = pair_key(username, source);
    struct pair *p = g_hash_table_lookup(lim->pairs, key);
    if (!p) {
        p = g_new0(struct pair, 1);
        g_hash_table_insert(lim->pairs, key, p);
    } else {
        g_free(key);
    }
    p->failures++;
    p->last_ms = now_ms;
    int over = p->failures - lim->limits.threshold;
    if (over >= 0) {
        int64_t max_ms = (int64_t)lim->limits.max_backoff_seconds * 1000;
        int64_t wait_ms = over >= 30 ? max_ms : MIN(max_ms, ((int64_t)1000) << over);
        p->next_ms = now_ms + wait_ms;
    }
}

void md_login_limiter_succeeded(md_login_limiter *lim, const char *username, const char *source)
{
    g_autofree char *key = pair_key(username, source);
    g_hash_table_remove(lim->pairs, key);
}

/* The pairs of one account: their keys start with "username\n". */
static gboolean pair_of_account(gpointer key, gpointer value, gpointer prefix)
{
    return g_str_has_prefix(key, prefix);
}

void md_login_limiter_forget_account(md_login_limiter *lim, const char *username)
{
    g_autofree char *prefix = pair_key(username, NULL);
    g_hash_table_foreach_remove(lim->pairs, pair_of_account, prefix);
}

bool md_login_limiter_backing_off(md_login_limiter *lim, const char *username, int64_t now_ms)
{
    g_autofree char *prefix = pair_key(username, NULL);
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, lim->pairs);
    while (g_hash_table_iter_next(&it, &key, &value))
        if (g_str_has_prefix(key, prefix) && ((const struct pair *)value)->next_ms > now_ms)
            return true;
    return false;
}
