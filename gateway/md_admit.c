/*
 * Admission of a new session's media (see md_admit.h).
 */
#include "md_admit.h"

#include <stdbool.h>

/* The load the worker is expected to reach once its settling sessions and one
 * more carry media, in permille (may exceed 1000). */
static unsigned projected_permille(const md_admit_worker *w)
{
    unsigned settled = w->sessions > w->settling ? w->sessions - w->settling : 0;
    if (settled < MD_ADMIT_MIN_SETTLED)
        return w->load_permille;
    /* the measured load is the settled sessions' cost; each new one costs the same */
    unsigned long long add = (unsigned long long)w->load_permille * (w->settling + 1) / settled;
    return w->load_permille + (unsigned)(add > 100000 ? 100000 : add);
}

static bool room(const md_admit_worker *w, const md_admit_limits *lim)
{
    return lim->load_permille >= 1000 || projected_permille(w) < lim->load_permille;
}

/* The process's load counts only once media is most of it: with fewer than
 * MD_ADMIT_MIN_SETTLED settled sessions, logins being hashed or an export
 * being written would refuse media that the workers have room for. */
static bool process_room(const md_admit_worker *process, const md_admit_limits *lim)
{
    if (process->sessions < process->settling + MD_ADMIT_MIN_SETTLED)
        return true;
    return room(process, lim);
}

int md_admit_pick(const md_admit_worker *w, unsigned n, const md_admit_worker *process,
                  const md_admit_limits *lim)
{
    if (process->settling >= lim->settling || !process_room(process, lim))
        return -1;
    int best = -1;
    for (unsigned i = 0; i < n; i++)
        if (room(&w[i], lim) && (best < 0 || w[i].sessions < w[(unsigned)best].sessions))
            best = (int)i;
    return best;
}
