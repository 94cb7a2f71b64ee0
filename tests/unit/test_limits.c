/*
 * Login admission (signaling/md_limits.c): per-source and overall buckets,
 * and the per (name, source) backoff that replaced the account lock.  Time is
 * moved by hand.
 */
#include "md_err.h"
#include "md_limits.h"
#include "md_test.h"

static const md_login_limits limits = {
    .per_minute = 30,
    .per_source_per_minute = 10,
    .threshold = 3,
    .max_backoff_seconds = 60,
};

static int admit(md_login_limiter *lim, const char *user, const char *src, int64_t now)
{
    int retry = 0;
    int r = md_login_limiter_admit(lim, user, src, now, &retry);
    if (r < 0)
        ASSERT(retry >= 1);
    return r;
}

static void test_per_source_bucket(void)
{
    md_login_limiter *lim = md_login_limiter_new(&limits);
    int64_t t = 1000000;
    for (int i = 0; i < 10; i++)
        ASSERT_OK(admit(lim, "u", "192.0.2.1", t));
    ASSERT_EQ(admit(lim, "u", "192.0.2.1", t), -MD_E_RATE_LIMITED);
    /* another source is not affected */
    ASSERT_OK(admit(lim, "u", "192.0.2.2", t));
    /* one token back after 6 s (10 a minute) */
    ASSERT_OK(admit(lim, "u", "192.0.2.1", t + 6000));
    ASSERT_EQ(admit(lim, "u", "192.0.2.1", t + 6000), -MD_E_RATE_LIMITED);
    md_login_limiter_free(lim);
}

static void test_overall_bucket(void)
{
    md_login_limiter *lim = md_login_limiter_new(&limits);
    int64_t t = 1000000;
    char src[32];
    for (int i = 0; i < 30; i++) {
        snprintf(src, sizeof(src), "198.51.100.%d", i);
        ASSERT_OK(admit(lim, "u", src, t));
    }
    ASSERT_EQ(admit(lim, "u", "203.0.113.1", t), -MD_E_RATE_LIMITED);
    ASSERT_OK(admit(lim, "u", "203.0.113.1", t + 2000));
    md_login_limiter_free(lim);
}

static void test_backoff_per_name_and_source(void)
{
    md_login_limiter *lim = md_login_limiter_new(&limits);
    int64_t t = 1000000;
    const char *att = "192.0.2.66", *own = "192.0.2.10";
    /* Below the threshold: no wait. */
    for (int i = 0; i < 2; i++) {
        ASSERT_OK(admit(lim, "verifier", att, t));
        md_login_limiter_failed(lim, "verifier", att, t);
    }
    ASSERT_OK(admit(lim, "verifier", att, t));
    md_login_limiter_failed(lim, "verifier", att, t); /* 3rd: 1 s */
    ASSERT_EQ(admit(lim, "verifier", att, t + 999), -MD_E_RATE_LIMITED);
    ASSERT_OK(admit(lim, "verifier", att, t + 1000));
    md_login_limiter_failed(lim, "verifier", att, t + 1000); /* 4th: 2 s */
    ASSERT_EQ(admit(lim, "verifier", att, t + 2999), -MD_E_RATE_LIMITED);
    /* The account owner from elsewhere is not held back: no lock-out by others. */
    ASSERT_OK(admit(lim, "verifier", own, t + 1000));
    /* Unknown names back off exactly like known ones (the limiter cannot tell). */
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(admit(lim, "nobody", att, t + 10000 + i * 1000));
        md_login_limiter_failed(lim, "nobody", att, t + 10000 + i * 1000);
    }
    ASSERT_EQ(admit(lim, "nobody", att, t + 12500), -MD_E_RATE_LIMITED);
    /* Success forgets the pair. */
    md_login_limiter_succeeded(lim, "verifier", att);
    ASSERT_OK(admit(lim, "verifier", att, t + 3000));
    md_login_limiter_free(lim);
}

static void test_backoff_is_capped(void)
{
    md_login_limits l = limits;
    l.per_source_per_minute = 100000;
    l.per_minute = 100000;
    md_login_limiter *lim = md_login_limiter_new(&l);
    int64_t t = 1000000;
    for (int i = 0; i < 80; i++)
        md_login_limiter_failed(lim, "x", "192.0.2.1", t);
    ASSERT_EQ(admit(lim, "x", "192.0.2.1", t + 59999), -MD_E_RATE_LIMITED);
    ASSERT_OK(admit(lim, "x", "192.0.2.1", t + 60000));
    md_login_limiter_free(lim);
}

static void test_tables_are_bounded(void)
{
    md_login_limits l = limits;
    l.per_minute = 1000000;
    md_login_limiter *lim = md_login_limiter_new(&l);
    char src[64];
    for (int i = 0; i < MD_LIMITS_MAX_ENTRIES + 10; i++) {
        snprintf(src, sizeof(src), "2001:db8::%x", i);
        admit(lim, "u", src, 1000000);
        md_login_limiter_failed(lim, "u", src, 1000000);
    }
    /* Still answering; memory stays bounded (ASan would report a leak). */
    ASSERT_OK(admit(lim, "u", "192.0.2.200", 1000000));
    md_login_limiter_free(lim);
}

static void test_unlock_forgets_every_source(void)
{
    md_login_limiter *lim = md_login_limiter_new(&limits);
    int64_t t = 1000000;
    for (int i = 0; i < 3; i++) {
        md_login_limiter_failed(lim, "v-a", "192.0.2.1", t);
        md_login_limiter_failed(lim, "v-a", "192.0.2.2", t);
        md_login_limiter_failed(lim, "v-ab", "192.0.2.1", t);
    }
    ASSERT(md_login_limiter_backing_off(lim, "v-a", t));
    ASSERT(!md_login_limiter_backing_off(lim, "v-x", t));
    ASSERT_EQ(admit(lim, "v-a", "192.0.2.2", t), -MD_E_RATE_LIMITED);
    md_login_limiter_forget_account(lim, "v-a");
    ASSERT(!md_login_limiter_backing_off(lim, "v-a", t));
    ASSERT_OK(admit(lim, "v-a", "192.0.2.2", t));
    /* a name that merely starts with the same letters keeps its backoff */
    ASSERT(md_login_limiter_backing_off(lim, "v-ab", t));
    md_login_limiter_free(lim);
}

int main(void)
{
    RUN(test_per_source_bucket);
    RUN(test_overall_bucket);
    RUN(test_backoff_per_name_and_source);
    RUN(test_backoff_is_capped);
    RUN(test_tables_are_bounded);
    RUN(test_unlock_forgets_every_source);
    return 0;
}
