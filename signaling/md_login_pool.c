/*
 * Password checks on a few threads of our own (see md_login_pool.h).
 * Workers only hash: they touch no store, audit or connection.  Jobs go to
 * the workers through one queue; a finished job goes to a second queue that
 * an idle source on the control thread drains.  The idle source holds a
 * reference to a small shell so that it is harmless if it runs after the
 * pool is gone.  Freeing the pool queues one stop job per worker behind the
 * real ones and joins every thread, so nothing runs once it returns (and
 * each worker frees OpenSSL's per-thread state before it ends).
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
    char *password; /* NULL: the stop job */
    char *hash;
    int verified;
    md_login_pool_done done;
    void *ud;
};

struct md_login_pool {
    GPtrArray *threads;
    GAsyncQueue *todo;     /* struct job * */
    GAsyncQueue *finished; /* struct job * */
    GMainContext *context;
    struct shell *shell;
    int workers;
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

static gpointer worker_main(gpointer data)
{
    md_login_pool *pool = data;
    for (;;) {
        struct job *j = g_async_queue_pop(pool->todo);
        if (!j->password) {
            g_free(j);
            break;
        }
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
    md_crypto_thread_done();
    return NULL;
}

int md_login_pool_new(int workers, int queue, md_login_pool **ret)
{
    if (workers < 1 || queue < 1)
        return -EINVAL;
    md_login_pool *pool = g_new0(md_login_pool, 1);
    pool->todo = g_async_queue_new();
    pool->finished = g_async_queue_new();
    pool->context = g_main_context_ref_thread_default();
    pool->shell = g_new0(struct shell, 1);
    g_atomic_ref_count_init(&pool->shell->refs);
    pool->shell->pool = pool;
    pool->workers = workers;
    pool->queue = queue;
    pool->threads = g_ptr_array_new();
    for (int i = 0; i < workers; i++) {
        GThread *t = g_thread_try_new("md-login", worker_main, pool, NULL);
        if (!t) {
            md_login_pool_free(pool);
            return -EAGAIN;
        }
        g_ptr_array_add(pool->threads, t);
    }
    *ret = pool;
    return 0;
}

md_login_pool *md_login_pool_free(md_login_pool *pool)
{
    if (!pool)
        return NULL;
    /* Queued checks run first (the queue is FIFO), then each worker takes
     * one stop job and ends. */
    for (guint i = 0; i < pool->threads->len; i++)
        g_async_queue_push(pool->todo, g_new0(struct job, 1));
    for (guint i = 0; i < pool->threads->len; i++)
        g_thread_join(g_ptr_array_index(pool->threads, i));
    g_ptr_array_free(pool->threads, TRUE);
    drain(pool);
    pool->shell->pool = NULL;
    shell_unref(pool->shell);
    g_async_queue_unref(pool->todo);
    g_async_queue_unref(pool->finished);
    g_main_context_unref(pool->context);
    g_free(pool);
    return NULL;
}

int md_login_pool_verify(md_login_pool *pool, const char *password, const char *hash,
                         md_login_pool_done done, void *ud)
{
    /* Running checks occupy the workers; `queue` more may wait. */
    if (pool->pending >= pool->queue + pool->workers)
        return -MD_E_RATE_LIMITED;
    struct job *j = g_new0(struct job, 1);
    j->password = g_strdup(password);
    j->hash = g_strdup(hash);
    j->done = done;
    j->ud = ud;
    pool->pending++;
    g_async_queue_push(pool->todo, j);
    return 0;
}

int md_login_pool_pending(const md_login_pool *pool)
{
    return pool ? pool->pending : 0;
}
