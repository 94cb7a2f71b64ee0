/*
 * The chain check on a thread of its own (see md_audit_check.h).
 *
 * One worker thread, woken through a mutex and condition; it owns its store
 * connection from the first check to the end.  Requests are batched on the
 * control thread: `running` holds those the check in progress will answer,
 * `waiting` those that came after it began.  The worker hands its verdict
 * back under the lock and attaches an idle source to the control thread's
 * context, which it keeps (`pending`) until the source has run: freeing the
 * checker destroys a source that has not, so none runs after it is gone.
 */
#include "md_audit_check.h"
#include "md_audit.h"
#include "md_crypto.h"
#include "md_err.h"
#include "md_log.h"
#include "md_store.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

struct waiter {
    md_audit_check_done done;
    void *ud;
};

struct md_audit_check {
    char *database;
    char *pinned_key;
    char *signing_key;
    GThread *thread;
    GMainContext *context;
    GArray *running; /* struct waiter; control thread only */
    GArray *waiting; /* struct waiter; control thread only */

    GMutex lock; /* guards the fields below */
    GCond wake;
    bool requested;
    bool stopping;
    bool finished;
    int result_err;
    json_t *result;
    GSource *pending; /* the verdict's idle source until it runs */
};

int md_audit_check_run(md_store *st, const char *pinned_key, const char *signing_key, json_t **ret)
{
    md_sign_key *key = NULL;
    bool pinned = false;
    md_audit_summary sum;
    int r = md_audit_trusted_key(pinned_key, signing_key, &key, &pinned);
    if (r == 0)
        r = md_audit_verify_key(st, key, NULL, &sum);
    md_sign_key_free(key);
    if (r < 0 && r != -MD_E_AUDIT_BROKEN)
        return r;
    int64_t cp_ts = 0;
    md_store_query_int(st, "SELECT ts FROM audit_checkpoint WHERE seq = ?",
                       MD_PARAMS(MD_P_INT(sum.last_checkpoint)), &cp_ts);
    json_t *j = json_pack("{s:b, s:I, s:I, s:I, s:I, s:b}", "ok", r == 0, "entries",
                          (json_int_t)sum.entries, "checkpoints", (json_int_t)sum.checkpoints,
                          "last_checkpoint", (json_int_t)sum.last_checkpoint, "last_checkpoint_at",
                          (json_int_t)cp_ts, "pinned", pinned);
    if (!j)
        return -ENOMEM;
    if (r != 0) {
        json_object_set_new(j, "bad_seq", json_integer(sum.bad_seq));
        json_object_set_new(j, "reason", json_string(sum.reason));
    }
    *ret = j;
    return 0;
}

/* Its own connection, refused any write, so that nothing on this thread can
 * change the log it checks. */
static int open_reader(const char *database, md_store **ret)
{
    md_store *st = NULL;
    int r = md_store_open(database, &st);
    if (r == 0)
        r = md_store_exec(st, "PRAGMA query_only = 1", MD_NO_PARAMS);
    if (r < 0) {
        md_store_close(st);
        return r;
    }
    *ret = st;
    return 0;
}

/* One read transaction: the walk, the checkpoints and the checkpoint's time
 * all come from one snapshot, whatever the control thread appends meanwhile. */
static int check_snapshot(md_audit_check *c, md_store *st, json_t **ret)
{
    int r = md_store_begin_read(st);
    if (r < 0)
        return r;
    r = md_audit_check_run(st, c->pinned_key, c->signing_key, ret);
    md_store_rollback(st);
    return r;
}

static void answer(GArray *batch, int err, json_t *verdict)
{
    for (guint i = 0; i < batch->len; i++) {
        struct waiter *w = &g_array_index(batch, struct waiter, i);
        w->done(err, verdict, w->ud);
    }
    g_array_set_size(batch, 0);
}

/* Control thread: the waiting batch becomes the running one. */
static void start(md_audit_check *c)
{
    GArray *t = c->running;
    c->running = c->waiting;
    c->waiting = t;
    g_mutex_lock(&c->lock);
    c->requested = true;
    g_cond_signal(&c->wake);
    g_mutex_unlock(&c->lock);
}

/* Control thread: answers the running batch if its check has ended; with
 * restart, starts the next check for those that waited meanwhile. */
static void deliver(md_audit_check *c, bool restart)
{
    g_mutex_lock(&c->lock);
    bool finished = c->finished;
    int err = c->result_err;
    json_t *verdict = c->result;
    c->finished = false;
    c->result = NULL;
    if (c->pending) {
        g_source_destroy(c->pending);
        g_source_unref(c->pending);
        c->pending = NULL;
    }
    g_mutex_unlock(&c->lock);
    if (!finished)
        return;
    GArray *batch = c->running;
    c->running = g_array_new(FALSE, FALSE, sizeof(struct waiter));
    if (restart && c->waiting->len)
        start(c);
    answer(batch, err, verdict);
    g_array_free(batch, TRUE);
    json_decref(verdict);
}

static gboolean on_finished(gpointer data)
{
    deliver(data, true);
    return G_SOURCE_REMOVE;
}

static gpointer worker_main(gpointer data)
{
    md_audit_check *c = data;
    md_store *st = NULL;
    g_mutex_lock(&c->lock);
    for (;;) {
        while (!c->requested && !c->stopping)
            g_cond_wait(&c->wake, &c->lock);
        if (!c->requested)
            break;
        c->requested = false;
        g_mutex_unlock(&c->lock);

        json_t *verdict = NULL;
        int r = st ? 0 : open_reader(c->database, &st);
        if (r == 0)
            r = check_snapshot(c, st, &verdict);
        if (r < 0)
            md_warn("audit", "chain_check_failed", "{s:s}", "error", md_strerror(r));

        g_mutex_lock(&c->lock);
        c->finished = true;
        c->result_err = r;
        c->result = verdict;
        c->pending = g_idle_source_new();
        g_source_set_priority(c->pending, G_PRIORITY_DEFAULT);
        g_source_set_callback(c->pending, on_finished, c, NULL);
        g_source_attach(c->pending, c->context);
    }
    g_mutex_unlock(&c->lock);
    md_store_close(st);
    md_crypto_thread_done();
    return NULL;
}

static bool is_memory(const char *database)
{
    return !strcmp(database, ":memory:") || !strcmp(database, "sqlite::memory:");
}

int md_audit_check_new(const char *database, const char *pinned_key, const char *signing_key,
                       md_audit_check **ret)
{
    if (!database || is_memory(database) || (!pinned_key && !signing_key) || !ret)
        return -EINVAL;
    md_audit_check *c = g_new0(md_audit_check, 1);
    c->database = g_strdup(database);
    c->pinned_key = g_strdup(pinned_key);
    c->signing_key = g_strdup(signing_key);
    c->context = g_main_context_ref_thread_default();
    c->running = g_array_new(FALSE, FALSE, sizeof(struct waiter));
    c->waiting = g_array_new(FALSE, FALSE, sizeof(struct waiter));
    g_mutex_init(&c->lock);
    g_cond_init(&c->wake);
    c->thread = g_thread_try_new("md-audit-check", worker_main, c, NULL);
    if (!c->thread) {
        md_audit_check_free(c);
        return -EAGAIN;
    }
    *ret = c;
    return 0;
}

md_audit_check *md_audit_check_free(md_audit_check *c)
{
    if (!c)
        return NULL;
    if (c->thread) {
        g_mutex_lock(&c->lock);
        c->stopping = true;
        g_cond_signal(&c->wake);
        g_mutex_unlock(&c->lock);
        g_thread_join(c->thread);
    }
    deliver(c, false);
    answer(c->waiting, -ECANCELED, NULL);
    g_array_free(c->running, TRUE);
    g_array_free(c->waiting, TRUE);
    g_mutex_clear(&c->lock);
    g_cond_clear(&c->wake);
    g_main_context_unref(c->context);
    g_free(c->database);
    g_free(c->pinned_key);
    g_free(c->signing_key);
    g_free(c);
    return NULL;
}

int md_audit_check_request(md_audit_check *c, md_audit_check_done done, void *ud)
{
    if (!c || !done)
        return -EINVAL;
    if (c->waiting->len >= MD_AUDIT_CHECK_MAX_WAITING)
        return -MD_E_RATE_LIMITED;
    g_array_append_val(c->waiting, ((struct waiter){.done = done, .ud = ud}));
    if (!c->running->len)
        start(c);
    return 0;
}
