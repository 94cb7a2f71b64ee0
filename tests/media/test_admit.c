/*
 * Admission (gateway/md_admit.h, md_worker.h): a worker's load is the CPU its
 * thread really used; a new session goes to the worker with the fewest
 * sessions among those whose load, with what their settling sessions and the
 * new one are expected to add, stays under the limit; a burst of set-ups is
 * let in a window at a time (all workers together); the process's share of
 * its CPUs is projected the same way; the load does not refuse
 * when the limit is 100 %; the worker's load is its thread's CPU demand.
 */
#include "md_admit.h"
#include "md_test.h"
#include "md_worker.h"

#include <glib.h>
#include <sched.h>
#include <time.h>

static const md_admit_limits limits = {.load_permille = 850, .settling = 64};

/* The process as the sum of its workers, with a load of its own (a quiet
 * process on many cores: 0, unless a test says otherwise). */
static int pick(const md_admit_worker *w, unsigned n, unsigned process_load,
                const md_admit_limits *lim)
{
    md_admit_worker process = {.load_permille = process_load};
    for (unsigned i = 0; i < n; i++) {
        process.sessions += w[i].sessions;
        process.settling += w[i].settling;
    }
    return md_admit_pick(w, n, &process, lim);
}

static void test_fewest_sessions_wins(void)
{
    md_admit_worker w[3] = {{.sessions = 5, .load_permille = 100},
                            {.sessions = 3, .load_permille = 100},
                            {.sessions = 4, .load_permille = 100}};
    ASSERT_EQ(pick(w, 3, 0, &limits), 1);
    w[1].load_permille = 900; /* busy: skipped, whatever its count */
    ASSERT_EQ(pick(w, 3, 0, &limits), 2);
}

static void test_projection(void)
{
    /* 40 settled sessions at 40 %: 1 % each */
    md_admit_worker w = {.sessions = 40, .load_permille = 400};
    ASSERT_EQ(pick(&w, 1, 0, &limits), 0);
    /* 40 more settling: 40 % + 41 × 1 % = 81 %, still under 85 % */
    w.sessions = 80, w.settling = 40;
    ASSERT_EQ(pick(&w, 1, 0, &limits), 0);
    /* 44 settling: 40 % + 45 % = 85 %: refused */
    w.sessions = 84, w.settling = 44;
    ASSERT_EQ(pick(&w, 1, 0, &limits), -1);
    /* once they are measured (settled) at the cost foreseen, the load says the same */
    w = (md_admit_worker){.sessions = 84, .load_permille = 840};
    ASSERT_EQ(pick(&w, 1, 0, &limits), -1);
    w = (md_admit_worker){.sessions = 83, .load_permille = 830};
    ASSERT_EQ(pick(&w, 1, 0, &limits), 0);
}

static void test_few_settled_are_not_divided(void)
{
    /* 2 settled sessions at 30 % (set-up work of the 6 settling ones): not 15 % each */
    md_admit_worker w = {.sessions = 8, .settling = 6, .load_permille = 300};
    ASSERT_EQ(pick(&w, 1, 0, &limits), 0);
    w.load_permille = 850; /* but a worker at the limit takes nothing */
    ASSERT_EQ(pick(&w, 1, 0, &limits), -1);
}

static void test_settling_window(void)
{
    /* the window counts settling sessions of all workers together */
    md_admit_worker w[2] = {{.sessions = 40, .settling = 40}, {.sessions = 30, .settling = 23}};
    ASSERT_EQ(pick(w, 2, 0, &limits), 1);
    w[1].settling = 24;
    ASSERT_EQ(pick(w, 2, 0, &limits), -1);
    ASSERT_EQ(pick(w, 0, 0, &limits), -1); /* no worker at all */
}

static void test_process_load(void)
{
    /* two workers at 40 % each, 20 sessions each: room for both... */
    md_admit_worker w[2] = {{.sessions = 20, .load_permille = 400},
                            {.sessions = 20, .load_permille = 400}};
    ASSERT_EQ(pick(w, 2, 0, &limits), 0);
    /* ...but the process is at 82 % of its CPUs (they share one core, or the
     * control thread fills it): 82 % + 1/40 of it per session reaches 85 % */
    ASSERT_EQ(pick(w, 2, 820, &limits), 0);
    ASSERT_EQ(pick(w, 2, 830, &limits), -1);
    /* settling sessions count against the process as they do for a worker */
    w[0].sessions = 24, w[0].settling = 4;
    ASSERT_EQ(pick(w, 2, 700, &limits), 1);
    w[1].sessions = 24, w[1].settling = 4; /* 70 % + 9 × 70/40 % = 85.75 % */
    ASSERT_EQ(pick(w, 2, 700, &limits), -1);
    /* a busy process with few sessions is busy with something else (logins
     * being hashed): that does not refuse media the workers have room for */
    md_admit_worker quiet[2] = {{.sessions = 3, .settling = 1, .load_permille = 20},
                                {.sessions = 4, .load_permille = 30}};
    ASSERT_EQ(pick(quiet, 2, 1000, &limits), 0);
    quiet[1].sessions = 7; /* 9 settled */
    ASSERT_EQ(pick(quiet, 2, 1000, &limits), -1);
}

static void test_limit_100_never_refuses_for_load(void)
{
    md_admit_limits off = {.load_permille = 1000, .settling = 64};
    md_admit_worker w = {.sessions = 200, .settling = 10, .load_permille = 1000};
    ASSERT_EQ(pick(&w, 1, 0, &off), 0);
    w.settling = 64;
    ASSERT_EQ(pick(&w, 1, 0, &off), -1); /* the window still holds */
}

/* ---- the worker's own measure ---- */

/* 100 ms of CPU per main-loop iteration, 30 times (an idle callback that
 * continues runs once per iteration), as media work comes: many callbacks */
static gboolean spin(gpointer data)
{
    int *left = data;
    gint64 until = g_get_monotonic_time() + 100000;
    while (g_get_monotonic_time() < until) {
    }
    return --*left > 0 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void test_worker_load(void)
{
    md_worker *w = NULL;
    ASSERT_OK(md_worker_new(0, &w));
    /* idle: after two samples, the thread used next to nothing */
    g_usleep(2 * MD_WORKER_LOAD_MS * 1000 + 200000);
    ASSERT_INT(md_worker_load_permille(w), <, 100);
    /* busy for 3 s: a sample inside
     * says so (CPU time, not wall time: on a loaded machine the thread may
     * get less than the whole core, so the bound is loose) */
    int left = 30;
    md_worker_post(w, spin, &left, NULL);
    g_usleep(2500000);
    ASSERT_INT(md_worker_load_permille(w), >, 300);
    md_worker_free(w);
}

/* Two busy workers on one CPU each run half the time; their waiting shows
 * that the core is full, so each reports nearly all of it. */
static void test_worker_load_counts_waiting_for_the_cpu(void)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    ASSERT_OK(sched_setaffinity(0, sizeof(one), &one)); /* new threads inherit it */
    md_worker *w[2] = {NULL, NULL};
    int left[2] = {30, 30};
    for (int i = 0; i < 2; i++) {
        ASSERT_OK(md_worker_new((unsigned)i, &w[i]));
        md_worker_post(w[i], spin, &left[i], NULL);
    }
    g_usleep(2500000);
    for (int i = 0; i < 2; i++)
        ASSERT_INT(md_worker_load_permille(w[i]), >, 700);
    for (int i = 0; i < 2; i++)
        md_worker_free(w[i]);
}

int main(void)
{
    RUN(test_fewest_sessions_wins);
    RUN(test_projection);
    RUN(test_few_settled_are_not_divided);
    RUN(test_settling_window);
    RUN(test_process_load);
    RUN(test_limit_100_never_refuses_for_load);
    RUN(test_worker_load);
    RUN(test_worker_load_counts_waiting_for_the_cpu);
    return 0;
}
