/*
 * Password checks on a GThreadPool (see md_login_pool.h).  Workers only
 * hash: they touch no store, audit or connection.  A finished job goes to a
 * queue that an idle source on the control thread drains; the idle source
 * holds a reference to a small shell so that it is harmless if it runs after
 * the pool is gone.
 */
#include "md_login_pool.h"
#include "md_crypto.h"
#include "md_err.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

struct shell {
    gatomicrefcount refs;
    md_login_pool *pool; /* NULL once freed; read and written on the control thread */
};

struct job {
    char *password;
    char *hash;
    int verified;
    md_login_pool_done done;
    void *ud;
};

struct md_login_pool {
    GThreadPool *threads;
    GAsyncQueue *finished; /* struct job * */
    GMainContext *context;
    struct shell *shell;
    int queue;
    int pending; /* control thread only */
};

static struct shell *shell_ref(struct shell *s)
{
    g_atomic_ref_count_inc(&s->refs);
    return s;
}

static void shell_unref(gpointer data)
{
    struct shell *s = data;
    if (g_atomic_ref_count_dec(&s->refs))
        g_free(s);
}

static void job_finish(md_login_pool *pool, struct job *j)
{
    pool->pending--;
    j->done(j->verified, j->ud);
    g_free(j->hash);
    g_free(j);
}

static void drain(md_login_pool *pool)
{
    struct job *j;
    while ((j = g_async_queue_try_pop(pool->finished)))
        job_finish(pool, j);
}

static gboolean on_finished(gpointer data)
{
    struct shell *s = data;
    /* The pool is freed on this (the control) thread only. */
    md_login_pool *pool = s->pool;
    if (pool)
        drain(pool);
    return G_SOURCE_REMOVE;
}

static void run_job(gpointer data, gpointer user_data)
{
    struct job *j = data;
    md_login_pool *pool = user_data;
    j->verified = md_password_verify(j->password, j->hash);
    md_wipe(j->password, strlen(j->password));
    g_free(j->password);
    j->password = NULL;
    g_async_queue_push(pool->finished, j);
    GSource *src = g_idle_source_new();
    g_source_set_priority(src, G_PRIORITY_DEFAULT);
    g_source_set_callback(src, on_finished, shell_ref(pool->shell), shell_unref);
    g_source_attach(src, pool->context);
    g_source_unref(src);
}

int md_login_pool_new(int workers, int queue, md_login_pool **ret)
{
    if (workers < 1 || queue < 1)
        return -EINVAL;
    md_login_pool *pool = g_new0(md_login_pool, 1);
    GError *err = NULL;
    /* Exclusive: the threads start now and stay for the pool's life, so the
     * daemon's thread count does not drift with GLib's idle-thread reaping. */
    pool->threads = g_thread_pool_new(run_job, pool, workers, TRUE, &err);
    if (!pool->threads) {
        g_clear_error(&err);
        g_free(pool);
        return -EAGAIN;
    }
    pool->finished = g_async_queue_new();
    pool->context = g_main_context_ref_thread_default();
    pool->shell = g_new0(struct shell, 1);
    g_atomic_ref_count_init(&pool->shell->refs);
    pool->shell->pool = pool;
    pool->queue = queue;
    *ret = pool;
    return 0;
}

md_login_pool *md_login_pool_free(md_login_pool *pool)
{
    if (!pool)
        return NULL;
    /* Runs what is queued, waits for it, then delivers every result. */
    g_thread_pool_free(pool->threads, FALSE, TRUE);
    drain(pool);
    pool->shell->pool = NULL;
    shell_unref(pool->shell);
    g_async_queue_unref(pool->finished);
    g_main_context_unref(pool->context);
    g_free(pool);
    return NULL;
}

int md_login_pool_verify(md_login_pool *pool, const char *password, const char *hash,
                         md_login_pool_done done, void *ud)
{
    /* Running checks occupy the workers; `queue` more may wait. */
    if (pool->pending >= pool->queue + (int)g_thread_pool_get_max_threads(pool->threads))
        return -MD_E_RATE_LIMITED;
    struct job *j = g_new0(struct job, 1);
    j->password = g_strdup(password);
    j->hash = g_strdup(hash);
    j->done = done;
    j->ud = ud;
    pool->pending++;
    if (!g_thread_pool_push(pool->threads, j, NULL)) {
        pool->pending--;
        md_wipe(j->password, strlen(j->password));
        g_free(j->password);
        g_free(j->hash);
        g_free(j);
        return -EAGAIN;
    }
    return 0;
}

int md_login_pool_pending(const md_login_pool *pool)
{
    return pool->pending;
}
