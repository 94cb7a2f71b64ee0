/*
 * A small bounded pool of threads that check passwords (scrypt, about 0.4 s
 * and 32 MiB each) off the control loop, so a burst of logins cannot stall
 * signaling, /healthz or open sessions (docs/internals/auth.md).
 *
 * md_login_pool_verify() is called on the control thread; the check runs on
 * one of `workers` threads; `done` is called back on the GMainContext that
 * was current when the pool was made (the control thread), never on a
 * worker.  At most `queue` checks wait for a thread; beyond that the call
 * returns -MD_E_RATE_LIMITED at once.  The password is copied and wiped
 * after use.  md_login_pool_free() waits for running and queued checks and
 * delivers their results before it returns.
 */
#ifndef MD_LOGIN_POOL_H
#define MD_LOGIN_POOL_H

typedef struct md_login_pool md_login_pool;

/* verified: 1 the password matches, 0 it does not, < 0 the hash is corrupt. */
typedef void (*md_login_pool_done)(int verified, void *ud);

int md_login_pool_new(int workers, int queue, md_login_pool **ret);
md_login_pool *md_login_pool_free(md_login_pool *pool);

int md_login_pool_verify(md_login_pool *pool, const char *password, const char *hash,
                         md_login_pool_done done, void *ud);

/* Checks waiting or running (for tests and the flood script's figures). */
int md_login_pool_pending(const md_login_pool *pool);

#endif
