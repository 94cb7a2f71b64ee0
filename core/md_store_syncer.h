/*
 * Group commit for deferred durability (md_store.h, docs/internals/store.md):
 * a thread with a store handle of its own makes the database's commits
 * durable, so that the thread that writes (the control loop) never waits for
 * the disk.
 *
 * The owner numbers its deferred work with increasing values, calls
 * md_store_syncer_request(upto) once the commits it covers have returned,
 * and learns on the GMainContext that was the thread default at
 * md_store_syncer_new() (the control thread), through cb(upto, error), that a
 * sync which began after the request has finished.  Requests made while a
 * sync runs are served together by the next one: under load one fsync
 * covers many commits, and results may skip values (upto is the highest
 * request covered).  error < 0 means the disk refused: what was committed
 * since the last success may be lost in a power cut, and the owner must not
 * acknowledge it.  md_store_syncer_free() (owner's thread) waits for a sync
 * in progress; results not yet delivered are dropped.
 */
#ifndef MD_STORE_SYNCER_H
#define MD_STORE_SYNCER_H

#include <stdint.h>

typedef struct md_store_syncer md_store_syncer;
typedef void (*md_store_synced_cb)(uint64_t upto, int error, void *ud);

/* url: the owner's database (md_store_open); a second handle is opened. */
int md_store_syncer_new(const char *url, md_store_synced_cb cb, void *ud, md_store_syncer **ret);
void md_store_syncer_request(md_store_syncer *s, uint64_t upto);
md_store_syncer *md_store_syncer_free(md_store_syncer *s);

#endif
