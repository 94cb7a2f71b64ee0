/*
 * The password-checking pool (signaling/md_login_pool.c): checks run on a
 * worker thread and their results come back on the thread that made the
 * pool; the waiting queue is bounded; freeing the pool delivers what is
 * still in flight.
 */
#include "md_crypto.h"
#include "md_err.h"
#include "md_login_pool.h"
#include "md_test.h"

#include <glib.h>

struct result {
    int verified;
    GThread *thread;
    int *done;
};

static void on_done(int verified, void *ud)
{
    struct result *r = ud;
    r->verified = verified;
    r->thread = g_thread_self();
    (*r->done)++;
}

static void test_results_come_back_on_the_loop(void)
{
    char *hash = NULL;
    ASSERT_OK(md_password_hash("correct horse battery", &hash));
    md_login_pool *pool = NULL;
    ASSERT_OK(md_login_pool_new(2, 1, &pool));
    int done = 0;
    struct result good = {.verified = -99, .done = &done};
    struct result bad = {.verified = -99, .done = &done};
    ASSERT_OK(md_login_pool_verify(pool, "correct horse battery", hash, on_done, &good));
    ASSERT_OK(md_login_pool_verify(pool, "wrong horse battery", hash, on_done, &bad));
    ASSERT_EQ(md_login_pool_pending(pool), 2);
    /* two running plus one waiting at most: the fourth is refused at once */
    struct result third = {.verified = -99, .done = &done};
    ASSERT_OK(md_login_pool_verify(pool, "x", hash, on_done, &third));
    ASSERT_EQ(md_login_pool_verify(pool, "y", hash, on_done, &third), -MD_E_RATE_LIMITED);
    ASSERT_EQ(done, 0); /* never called from inside verify */
    while (done < 3)
        g_main_context_iteration(NULL, TRUE);
    ASSERT_EQ(good.verified, 1);
    ASSERT_EQ(bad.verified, 0);
    ASSERT(good.thread == g_thread_self());
    ASSERT_EQ(md_login_pool_pending(pool), 0);
    md_login_pool_free(pool);
    free(hash);
}

static void test_free_delivers_in_flight_results(void)
{
    char *hash = NULL;
    ASSERT_OK(md_password_hash("another long password", &hash));
    md_login_pool *pool = NULL;
    ASSERT_OK(md_login_pool_new(1, 4, &pool));
    int done = 0;
    struct result r[3];
    for (int i = 0; i < 3; i++) {
        r[i] = (struct result){.verified = -99, .done = &done};
        ASSERT_OK(md_login_pool_verify(pool, "another long password", hash, on_done, &r[i]));
    }
    md_login_pool_free(pool);
    ASSERT_EQ(done, 3);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(r[i].verified, 1);
    /* idle sources left behind by the workers find no pool and do nothing */
    while (g_main_context_iteration(NULL, FALSE))
        ;
    ASSERT_EQ(done, 3);
    free(hash);
}

int main(void)
{
    RUN(test_results_come_back_on_the_loop);
    RUN(test_free_delivers_in_flight_results);
    return 0;
}
