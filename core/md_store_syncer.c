/*
 * The syncer thread (see md_store_syncer.h).  Requests raise `requested`
 * under the lock; the thread takes the highest one, syncs through its own
 * handle (md_store_sync acts on the database's log, whoever wrote to it) and
 * posts the result to the owner's context as an idle source.  The source
 * holds a small refcounted shell whose pointer to the syncer is cleared at
 * free, so a result that arrives after md_store_syncer_free() is dropped
 * (the pattern of signaling/md_login_pool.c).  The store handle is used by
 * the thread alone once it runs.
 */
#include "md_store_syncer.h"
#include "md_store.h"

#include <errno.h>
#include <glib.h>

struct shell {
    gatomicrefcount refs;
    md_store_syncer *syncer; /* NULL once freed; owner's thread */
};

struct md_store_syncer {
    md_store *store;
    GThread *thread;
    GMainContext *owner;
    md_store_synced_cb cb;
    void *ud;
    struct shell *shell;
    GMutex lock;
    GCond wake;
    uint64_t requested, started; /* under lock */
    bool stop;                   /* under lock */
    uint64_t delivered;          /* owner's thread */
};

struct result {
    struct shell *shell;
    uint64_t upto;
    int error;
};

static void shell_unref(struct shell *s)
{
    if (g_atomic_ref_count_dec(&s->refs))
        g_free(s);
}

static void result_free(gpointer data)
{
    struct result *res = data;
    shell_unref(res->shell);
    g_free(res);
}

static gboolean deliver(gpointer data)
{
    struct result *res = data;
    md_store_syncer *s = res->shell->syncer;
    if (s && (res->error < 0 || res->upto > s->delivered)) {
        if (res->error == 0)
            s->delivered = res->upto;
        s->cb(res->upto, res->error, s->ud);
    }
    return G_SOURCE_REMOVE;
}

static gpointer syncer_main(gpointer data)
{
    md_store_syncer *s = data;
    g_mutex_lock(&s->lock);
    for (;;) {
        while (!s->stop && s->requested <= s->started)
            g_cond_wait(&s->wake, &s->lock);
        if (s->stop)
            break;
        uint64_t upto = s->requested;
        s->started = upto;
        g_mutex_unlock(&s->lock);

        struct result *res = g_new0(struct result, 1);
        res->upto = upto;
        res->error = md_store_sync(s->store);
        g_atomic_ref_count_inc(&s->shell->refs);
        res->shell = s->shell;
        /* Ahead of new input: held replies go out before more work comes in. */
        GSource *src = g_idle_source_new();
        g_source_set_priority(src, G_PRIORITY_HIGH);
        g_source_set_callback(src, deliver, res, result_free);
        g_source_attach(src, s->owner);
        g_source_unref(src);

        g_mutex_lock(&s->lock);
    }
    g_mutex_unlock(&s->lock);
    return NULL;
}

int md_store_syncer_new(const char *url, md_store_synced_cb cb, void *ud, md_store_syncer **ret)
{
    if (!url || !cb || !ret)
        return -EINVAL;
    md_store_syncer *s = g_new0(md_store_syncer, 1);
    int r = md_store_open(url, &s->store);
    if (r < 0) {
        g_free(s);
        return r;
    }
    s->cb = cb;
    s->ud = ud;
    s->owner = g_main_context_ref_thread_default();
    s->shell = g_new0(struct shell, 1);
    g_atomic_ref_count_init(&s->shell->refs);
    s->shell->syncer = s;
    g_mutex_init(&s->lock);
    g_cond_init(&s->wake);
    s->thread = g_thread_try_new("md-store-sync", syncer_main, s, NULL);
    if (!s->thread) {
        md_store_syncer_free(s);
        return -EAGAIN;
    }
    *ret = s;
    return 0;
}

void md_store_syncer_request(md_store_syncer *s, uint64_t upto)
{
    g_mutex_lock(&s->lock);
    if (upto > s->requested) {
        s->requested = upto;
        g_cond_signal(&s->wake);
    }
    g_mutex_unlock(&s->lock);
}

md_store_syncer *md_store_syncer_free(md_store_syncer *s)
{
    if (!s)
        return NULL;
    if (s->thread) {
        g_mutex_lock(&s->lock);
        s->stop = true;
        g_cond_signal(&s->wake);
        g_mutex_unlock(&s->lock);
        g_thread_join(s->thread);
    }
    s->shell->syncer = NULL;
    shell_unref(s->shell);
    g_mutex_clear(&s->lock);
    g_cond_clear(&s->wake);
    g_main_context_unref(s->owner);
    s->store = md_store_close(s->store);
    g_free(s);
    return NULL;
}
