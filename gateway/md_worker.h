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
