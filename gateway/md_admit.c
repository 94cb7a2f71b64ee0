/*
 * Admission of a new session's media (see md_admit.h).
 */
#include "md_admit.h"

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

int md_admit_pick(const md_admit_worker *w, unsigned n, const md_admit_limits *lim)
{
    unsigned settling = 0;
    for (unsigned i = 0; i < n; i++)
        settling += w[i].settling;
    if (settling >= lim->settling)
        return -1;
    int best = -1;
    for (unsigned i = 0; i < n; i++) {
        if (lim->load_permille < 1000 && projected_permille(&w[i]) >= lim->load_permille)
            continue;
        if (best < 0 || w[i].sessions < w[(unsigned)best].sessions)
            best = (int)i;
    }
    return best;
}
