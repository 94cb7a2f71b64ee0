/*
 * A media worker: one thread running one GMainLoop on its own GMainContext.
 * Everything attached to that context (libnice agents, DTLS timers, the
 * sessions pinned there) is touched by that thread only.  Other threads hand
 * work over with md_worker_post(), which is always asynchronous and FIFO
 * among posts; nothing is shared between workers.
 */
#ifndef MD_WORKER_H
#define MD_WORKER_H

#include <glib.h>

typedef struct md_worker md_worker;

/* Starts the thread and returns once its loop runs.  -EAGAIN if no thread. */
int md_worker_new(unsigned index, md_worker **ret);

/* Runs fn(data) on the worker, then destroy(data) (nullable).  fn returns
 * G_SOURCE_REMOVE.  If the worker stops first, only destroy runs. */
void md_worker_post(md_worker *w, GSourceFunc fn, gpointer data, GDestroyNotify destroy);

GMainContext *md_worker_context(md_worker *w);

/* The worker thread's CPU demand over the last MD_WORKER_LOAD_MS of wall
 * time, in permille (0 to 1000): the time it ran plus the time it was ready
 * and waited for a CPU (the kernel's schedstat; the time it ran alone where
 * the kernel keeps no schedstat).  Near 1000, work waits for the thread:
 * because it has too much, or because other threads (other workers, other
 * processes) hold the cores it may run on.  Any thread. */
#define MD_WORKER_LOAD_MS 1000
unsigned md_worker_load_permille(const md_worker *w);

/* A busy-time meter, sampled every MD_WORKER_LOAD_MS (the workers' demand,
 * md_media.c's process load): md_load_meter_update() takes the busy time so
 * far and sets `permille` to the share of `cpus` CPUs it used since the last
 * update, over the real interval (a late timer widens it). */
typedef struct md_load_meter {
    gint64 wall_us, busy_us;
    unsigned permille;
} md_load_meter;
void md_load_meter_start(md_load_meter *lm, gint64 busy_us);
void md_load_meter_update(md_load_meter *lm, gint64 busy_us, unsigned cpus);

/* Hands freed heap memory back to the system (glibc's malloc_trim), at most
 * once per MD_WORKER_TRIM_MS in the process.  A session's setup frees much
 * more than it keeps (DTLS handshake, offers, ICE gathering), and the
 * allocator keeps those pages otherwise.  Any thread. */
#define MD_WORKER_TRIM_MS 2000
void md_worker_trim_heap(void);

/* Runs what was posted before, stops the loop and joins the thread.  Called
 * by the thread that created the worker. */
md_worker *md_worker_free(md_worker *w);

#endif
