/*
 * The auditor's chain check (GET /api/audit/verify) off the control loop.
 *
 * md_audit_verify_key() walks every entry of the log and every checkpoint
 * signature; on a municipality's log of years that takes seconds, and on the
 * control loop it would hold up every session's signaling meanwhile.  Here it
 * runs on a thread of its own with a store connection of its own, opened
 * read-only (PRAGMA query_only) on the same database file, inside one read
 * transaction, so it checks one consistent snapshot of the WAL database while
 * the control thread goes on appending (docs/internals/audit.md, "Checking
 * the chain").
 *
 * Requests that arrive while a check runs wait for the next one, which
 * starts when the running one ends and answers all of them: every answer
 * comes from a check that began after its request, and a burst of clicks
 * costs two walks, not one each.  At most MD_AUDIT_CHECK_MAX_WAITING requests
 * wait; beyond that md_audit_check_request() returns -MD_E_RATE_LIMITED.
 *
 * Everything here but the worker's body runs on the thread that made the
 * checker (the control thread); `done` is called there, never from inside
 * md_audit_check_request().  md_audit_check_free() lets a running check end
 * and answers its requests, then answers those still waiting with
 * -ECANCELED; nothing is called after it returns.
 */
#ifndef MD_AUDIT_CHECK_H
#define MD_AUDIT_CHECK_H

#include <jansson.h>

typedef struct md_store md_store;
typedef struct md_audit_check md_audit_check;

#define MD_AUDIT_CHECK_MAX_WAITING 64

/*
 * The check itself, on the calling thread and its store: the trust anchor
 * (the pinned audit.public_key when set, else the signing key's .pub file;
 * md_audit_trusted_key), the walk, and the time of the last valid checkpoint.
 * On success *ret is the verdict as the API returns it:
 *   {"ok", "entries", "checkpoints", "last_checkpoint", "last_checkpoint_at",
 *    "pinned"} and, when broken, "bad_seq" and "reason".
 * A broken chain is a verdict (returns 0); < 0 only when no verdict could be
 * reached (no key, store error).
 */
int md_audit_check_run(md_store *st, const char *pinned_key, const char *signing_key, json_t **ret);

/* verdict is borrowed (NULL when err < 0). */
typedef void (*md_audit_check_done)(int err, json_t *verdict, void *ud);

/* database: the gateway's store URL (a file: ":memory:" cannot be shared and
 * gives -EINVAL).  The key arguments are copied. */
int md_audit_check_new(const char *database, const char *pinned_key, const char *signing_key,
                       md_audit_check **ret);
md_audit_check *md_audit_check_free(md_audit_check *c);

int md_audit_check_request(md_audit_check *c, md_audit_check_done done, void *ud);

#endif
