/*
 * The auditor's chain check off the control loop (signaling/md_audit_check.c):
 * the loop keeps running while a long log is walked; the verdict is the one
 * the inline check gives; requests made during a check are answered by a
 * check that began after them, several at once; a tampered row is found; the
 * waiting list is bounded; freeing answers everything.
 */
#include "md_audit.h"
#include "md_audit_check.h"
#include "md_err.h"
#include "md_store.h"
#include "md_test.h"

#include <errno.h>
#include <glib.h>
#include <sqlite3.h>
#include <stdio.h>

/* Long enough that a walk spans many turns of a 2 ms timer even on a fast
 * machine; short enough for the sanitizer build. */
#define LOG_ENTRIES 4000

static char *tmpdir;
static char db_path[512], key_path[512];

struct answer {
    int calls;
    int err;
    json_t *verdict;
    int ticks_before; /* the loop's ticks when the answer came */
};

static int ticks;

static gboolean on_tick(gpointer data)
{
    (void)data;
    ticks++;
    return G_SOURCE_CONTINUE;
}

static void on_done(int err, json_t *verdict, void *ud)
{
    struct answer *a = ud;
    a->calls++;
    a->err = err;
    json_decref(a->verdict);
    a->verdict = json_incref(verdict);
    a->ticks_before = ticks;
}

static void append_entries(md_audit *a, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        char session[16];
        snprintf(session, sizeof(session), "S-%d", i);
        ASSERT(md_audit_append_new(a, "staff:alice", "note", "204111", "PO-NUKUTA", session,
                                   json_pack("{s:i}", "i", i)) > 0);
    }
}

static void make_log(void)
{
    md_store *st = NULL;
    md_audit *a = NULL;
    ASSERT_OK(md_store_open(db_path, &st));
    ASSERT_OK(md_audit_open(st, key_path, 500, 3600, &a));
    /* Each append commits; without a sync per commit the log is made quickly. */
    ASSERT_OK(md_store_defer_sync(st, true));
    append_entries(a, 1, LOG_ENTRIES);
    ASSERT_OK(md_store_sync(st));
    md_audit_close(a);
    md_store_close(st);
}

static void wait_for(struct answer *a, int calls)
{
    while (a->calls < calls)
        g_main_context_iteration(NULL, TRUE);
}

static void free_answer(struct answer *a)
{
    json_decref(a->verdict);
    a->verdict = NULL;
}

static int64_t verdict_int(json_t *v, const char *key)
{
    return json_integer_value(json_object_get(v, key));
}

static void test_the_loop_runs_during_a_check(void)
{
    md_audit_check *c = NULL;
    ASSERT_OK(md_audit_check_new(db_path, NULL, key_path, &c));
    guint timer = g_timeout_add(2, on_tick, NULL);
    struct answer a = {0};
    ticks = 0;
    ASSERT_OK(md_audit_check_request(c, on_done, &a));
    ASSERT_EQ(a.calls, 0); /* never answered from inside the request */
    wait_for(&a, 1);
    /* The timer kept firing while the worker walked the log. */
    ASSERT(a.ticks_before >= 3);
    ASSERT_OK(a.err);
    ASSERT(json_is_true(json_object_get(a.verdict, "ok")));
    ASSERT(verdict_int(a.verdict, "entries") >= LOG_ENTRIES);
    ASSERT(verdict_int(a.verdict, "checkpoints") >= LOG_ENTRIES / 500);

    /* The same verdict as the inline check on the gateway's own connection. */
    md_store *st = NULL;
    json_t *inline_verdict = NULL;
    ASSERT_OK(md_store_open(db_path, &st));
    ASSERT_OK(md_audit_check_run(st, NULL, key_path, &inline_verdict));
    ASSERT(json_equal(inline_verdict, a.verdict));
    json_decref(inline_verdict);
    md_store_close(st);

    g_source_remove(timer);
    free_answer(&a);
    md_audit_check_free(c);
}

static void test_requests_during_a_check_get_a_later_one(void)
{
    md_store *st = NULL;
    md_audit *log = NULL;
    ASSERT_OK(md_store_open(db_path, &st));
    ASSERT_OK(md_audit_open(st, key_path, 500, 3600, &log));
    md_audit_check *c = NULL;
    ASSERT_OK(md_audit_check_new(db_path, NULL, key_path, &c));

    struct answer first = {0}, later[3] = {{0}};
    ASSERT_OK(md_audit_check_request(c, on_done, &first));
    /* Appended on this thread while the worker walks: the first check may or
     * may not see them, the later ones must. */
    append_entries(log, 100000, 5);
    int64_t total = 0;
    ASSERT_EQ(md_store_query_int(st, "SELECT count(*) FROM audit", MD_NO_PARAMS, &total), 1);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(md_audit_check_request(c, on_done, &later[i]));
    wait_for(&first, 1);
    for (int i = 0; i < 3; i++)
        wait_for(&later[i], 1);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(later[i].calls, 1);
        ASSERT_OK(later[i].err);
        ASSERT_EQ(verdict_int(later[i].verdict, "entries"), total);
        ASSERT(json_equal(later[i].verdict, later[0].verdict));
    }
    for (int i = 0; i < 3; i++)
        free_answer(&later[i]);
    ASSERT(verdict_int(first.verdict, "entries") <= total);
    free_answer(&first);
    md_audit_check_free(c);
    md_audit_close(log);
    md_store_close(st);
}

static void test_waiting_is_bounded_and_free_answers_all(void)
{
    md_audit_check *c = NULL;
    ASSERT_OK(md_audit_check_new(db_path, NULL, key_path, &c));
    struct answer a[MD_AUDIT_CHECK_MAX_WAITING + 1] = {{0}};
    /* The first starts at once; the next 64 wait; one more is refused. */
    for (int i = 0; i <= MD_AUDIT_CHECK_MAX_WAITING; i++)
        ASSERT_OK(md_audit_check_request(c, on_done, &a[i]));
    struct answer refused = {0};
    ASSERT_EQ(md_audit_check_request(c, on_done, &refused), -MD_E_RATE_LIMITED);
    md_audit_check_free(c);
    /* The running check ended with a verdict; those still waiting were told. */
    ASSERT_EQ(a[0].calls, 1);
    ASSERT_OK(a[0].err);
    for (int i = 0; i <= MD_AUDIT_CHECK_MAX_WAITING; i++) {
        ASSERT_EQ(a[i].calls, 1);
        if (i > 0)
            ASSERT_EQ(a[i].err, -ECANCELED);
        free_answer(&a[i]);
    }
    ASSERT_EQ(refused.calls, 0);
    /* The verdict's idle source went with the checker: nothing more is called. */
    while (g_main_context_iteration(NULL, FALSE))
        ;
    ASSERT_EQ(a[0].calls, 1);
}

static void test_a_changed_row_is_found(void)
{
    sqlite3 *db = NULL;
    ASSERT_EQ(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "UPDATE audit SET actor = 'staff:mallory' WHERE seq = 1234", NULL,
                           NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);
    md_audit_check *c = NULL;
    ASSERT_OK(md_audit_check_new(db_path, NULL, key_path, &c));
    struct answer a = {0};
    ASSERT_OK(md_audit_check_request(c, on_done, &a));
    wait_for(&a, 1);
    ASSERT_OK(a.err); /* a broken chain is a verdict */
    ASSERT(json_is_false(json_object_get(a.verdict, "ok")));
    ASSERT_EQ(verdict_int(a.verdict, "bad_seq"), 1234);
    ASSERT(json_string_length(json_object_get(a.verdict, "reason")) > 0);
    free_answer(&a);
    md_audit_check_free(c);
}

static void test_refusals(void)
{
    md_audit_check *c = NULL;
    ASSERT_EQ(md_audit_check_new(":memory:", NULL, key_path, &c), -EINVAL);
    ASSERT_EQ(md_audit_check_new(db_path, NULL, NULL, &c), -EINVAL);
    /* A key that is not there is an error, not a verdict. */
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/no-such-key.pem", tmpdir);
    ASSERT_OK(md_audit_check_new(db_path, NULL, missing, &c));
    struct answer a = {0};
    ASSERT_OK(md_audit_check_request(c, on_done, &a));
    wait_for(&a, 1);
    ASSERT(a.err < 0);
    ASSERT(a.verdict == NULL);
    md_audit_check_free(c);
}

int main(void)
{
    tmpdir = md_test_tmpdir();
    snprintf(db_path, sizeof(db_path), "%s/madoguchi.db", tmpdir);
    snprintf(key_path, sizeof(key_path), "%s/audit.key", tmpdir);
    make_log();
    RUN(test_the_loop_runs_during_a_check);
    RUN(test_requests_during_a_check_get_a_later_one);
    RUN(test_waiting_is_bounded_and_free_answers_all);
    RUN(test_a_changed_row_is_found);
    RUN(test_refusals);
    free(tmpdir);
    return 0;
}
