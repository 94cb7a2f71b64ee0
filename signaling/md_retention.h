/*
 * Retention (DESIGN 5 and 6): per municipality's security_policy
 * retention_days, what a finished session left behind is made unrecoverable
 * once it is older than that: recordings (their wrapped key destroyed, then
 * their ciphertext deleted) and the session's evidence -- files, stills and
 * the chat transcript -- (its wrapped session key, then its files).  Each
 * purge is audited ("retention_purge") before it happens; a purge cut short
 * (crash, kill) is finished by the next run, and a run after a complete one
 * changes nothing.  Run by `madoguchi retention run` and daily by `serve`.
 * The store, audit and evidence belong to the calling thread.
 */
#ifndef MD_RETENTION_H
#define MD_RETENTION_H

#include "md_audit.h"
#include "md_evidence.h"
#include "md_store.h"

#include <stdint.h>
#include <stdio.h>

typedef struct md_retention_result {
    int recordings; /* recordings purged by this run */
    int sessions;   /* sessions whose evidence was purged */
    int leftovers;  /* ciphertext of an earlier, interrupted purge deleted */
    int failures;   /* purges that failed (audited as retention_purge_failed) */
} md_retention_result;

/*
 * Purges everything past retention at now_ms.  report (nullable) gets one
 * line per purge.  Returns 0 (failures are counted, not fatal, so one bad
 * file does not keep the rest), or a negative code when the store cannot be
 * read.
 */
int md_retention_run(md_store *st, md_audit *audit, md_evidence *ev, const char *actor,
                     int64_t now_ms, FILE *report, md_retention_result *ret);

#endif
