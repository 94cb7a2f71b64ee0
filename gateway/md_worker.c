/*
 * Media worker threads (see md_worker.h).  Posting attaches an idle source
 * to the worker's context instead of calling g_main_context_invoke(), which
 * would run the function in the caller's thread whenever the context is not
 * owned at that instant.  The thread acquires its context before it reports
 * ready and keeps it until it exits.
 */
#include "md_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

struct md_worker {
    GThread *thread;
    GMainContext *ctx;
    GMainLoop *loop;
    GMutex lock;
    GCond cond;
    bool running;
    /* load: written by the thread's sampling timer, read by any thread */
    atomic_uint load_permille;
    int schedstat_fd; /* this thread's /proc/thread-self/schedstat, or -1 */
    md_load_meter meter;
};

/* The thread's CPU demand so far, in µs: the time it ran plus the time it
 * was ready to run and waited for a CPU (/proc/thread-self/schedstat, fields
 * 1 and 2, in ns).  Where the kernel has no schedstat, the time it ran. */
static gint64 thread_demand_us(int schedstat_fd)
{
    char buf[96];
    ssize_t n = schedstat_fd >= 0 ? pread(schedstat_fd, buf, sizeof(buf) - 1, 0) : -1;
    if (n > 0) {
        buf[n] = '\0';
        unsigned long long run_ns, wait_ns;
        if (sscanf(buf, "%llu %llu", &run_ns, &wait_ns) == 2)
            return (gint64)((run_ns + wait_ns) / 1000);
    }
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (gint64)ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

void md_load_meter_start(md_load_meter *lm, gint64 busy_us)
{
    *lm = (md_load_meter){.wall_us = g_get_monotonic_time(), .busy_us = busy_us};
}

void md_load_meter_update(md_load_meter *lm, gint64 busy_us, unsigned cpus)
{
    gint64 wall = g_get_monotonic_time(), dt = (wall - lm->wall_us) * cpus;
    if (dt > 0)
        lm->permille = (unsigned)CLAMP((busy_us - lm->busy_us) * 1000 / dt, 0, 1000);
    lm->wall_us = wall;
    lm->busy_us = busy_us;
}

/* Once per MD_WORKER_LOAD_MS on the worker: its demand over the interval.
 * One small read a second: nothing is added to the per-packet path. */
static gboolean sample_load(gpointer data)
{
    md_worker *w = data;
    md_load_meter_update(&w->meter, thread_demand_us(w->schedstat_fd), 1);
    atomic_store_explicit(&w->load_permille, w->meter.permille, memory_order_relaxed);
    return G_SOURCE_CONTINUE;
}

static gpointer worker_main(gpointer data)
{
    md_worker *w = data;
    g_main_context_push_thread_default(w->ctx);
    w->schedstat_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    md_load_meter_start(&w->meter, thread_demand_us(w->schedstat_fd));
    GSource *timer = g_timeout_source_new(MD_WORKER_LOAD_MS);
    g_source_set_callback(timer, sample_load, w, NULL);
    g_source_attach(timer, w->ctx);
    g_mutex_lock(&w->lock);
    w->running = true;
    g_cond_signal(&w->cond);
    g_mutex_unlock(&w->lock);
    g_main_loop_run(w->loop);
    g_source_destroy(timer);
    g_source_unref(timer);
    if (w->schedstat_fd >= 0)
        close(w->schedstat_fd);
    g_main_context_pop_thread_default(w->ctx);
    return NULL;
}

int md_worker_new(unsigned index, md_worker **ret)
{
    md_worker *w = g_new0(md_worker, 1);
    char name[16];
    GError *error = NULL;
    g_mutex_init(&w->lock);
    g_cond_init(&w->cond);
    w->ctx = g_main_context_new();
    w->loop = g_main_loop_new(w->ctx, FALSE);
    g_snprintf(name, sizeof(name), "md-media-%u", index);
    /* push_thread_default acquires the context for the thread. */
    w->thread = g_thread_try_new(name, worker_main, w, &error);
    if (!w->thread) {
        g_error_free(error);
        g_main_loop_unref(w->loop);
        g_main_context_unref(w->ctx);
        g_mutex_clear(&w->lock);
        g_cond_clear(&w->cond);
        g_free(w);
        return -EAGAIN;
    }
    g_mutex_lock(&w->lock);
    while (!w->running)
        g_cond_wait(&w->cond, &w->lock);
    g_mutex_unlock(&w->lock);
    *ret = w;
    return 0;
}

void md_worker_post(md_worker *w, GSourceFunc fn, gpointer data, GDestroyNotify destroy)
{
    GSource *src = g_idle_source_new();
    g_source_set_priority(src, G_PRIORITY_DEFAULT);
    g_source_set_callback(src, fn, data, destroy);
    g_source_attach(src, w->ctx);
    g_source_unref(src);
}

GMainContext *md_worker_context(md_worker *w)
{
    return w->ctx;
}

unsigned md_worker_load_permille(const md_worker *w)
{
    return atomic_load_explicit(&w->load_permille, memory_order_relaxed);
}

void md_worker_trim_heap(void)
{
#ifdef __GLIBC__
    static GMutex lock;
    static gint64 last_us;
    gint64 now = g_get_monotonic_time();
    g_mutex_lock(&lock);
    bool due = last_us == 0 || now - last_us >= (gint64)MD_WORKER_TRIM_MS * 1000;
    if (due)
        last_us = now;
    g_mutex_unlock(&lock);
    if (due)
        malloc_trim(0); /* every arena, free pages in the middle too */
#endif
}

static gboolean quit(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_REMOVE;
}

md_worker *md_worker_free(md_worker *w)
{
    if (!w)
        return NULL;
    md_worker_post(w, quit, w->loop, NULL);
    g_thread_join(w->thread);
    g_main_loop_unref(w->loop);
    g_main_context_unref(w->ctx); /* destroys what is still attached */
    g_mutex_clear(&w->lock);
    g_cond_clear(&w->cond);
    g_free(w);
    return NULL;
}
