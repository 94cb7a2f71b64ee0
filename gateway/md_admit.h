/*
 * Admission of a new session's media (docs/internals/media.md, "Admission"):
 * which worker may take one more session without overloading the sessions it
 * already carries.  A pure decision over figures md_media gathers on the
 * control thread, so that it can be tested on its own.
 */
#ifndef MD_ADMIT_H
#define MD_ADMIT_H

/* A session opened less than this long ago is "settling": its media may not
 * flow yet, so the worker's measured load does not include it. */
#define MD_ADMIT_SETTLE_MS 3000

/* Below this many settled sessions a worker's load is not divided into a cost
 * per session: set-up work and the sampling's granularity dominate it. */
#define MD_ADMIT_MIN_SETTLED 8

typedef struct md_admit_worker {
    unsigned sessions;      /* open on the worker, settling ones included */
    unsigned settling;      /* opened within MD_ADMIT_SETTLE_MS */
    unsigned load_permille; /* a worker: md_worker_load_permille(); the process: its
                             * CPU time's share of the CPUs it may run on */
} md_admit_worker;

typedef struct md_admit_limits {
    unsigned load_permille; /* media.admit_cpu_percent × 10; 1000: load never refuses */
    unsigned settling;      /* media.admit_settling: settling sessions, all workers */
} md_admit_limits;

/* The worker to open the next session on, or -1 when none may take it.
 * `process` sums the workers' sessions and settling sessions, with the
 * process's share of the CPUs it may run on as its load.  Nothing is admitted
 * while lim->settling sessions are settling, or while the process's load,
 * with what its settling sessions and the new one are expected to add at its
 * measured cost per settled session, would reach lim->load_permille (from
 * MD_ADMIT_MIN_SETTLED settled sessions on: below, its load is not the
 * media's, e.g. logins being hashed).  Then a
 * worker may take it when its own load, projected the same way, stays under
 * lim->load_permille.  Among those, the one with the fewest sessions. */
int md_admit_pick(const md_admit_worker *w, unsigned n, const md_admit_worker *process,
                  const md_admit_limits *lim);

#endif
