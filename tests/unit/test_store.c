/*
 * The store front and its SQLite backend: URL forms, migrations, parameter
 * binding, NULLs, transactions, the single-value helpers, error mapping,
 * durability across a reopen, and deferred durability with its syncer thread
 * (observed through a VFS that counts the fsyncs of the write-ahead log).
 */
#include "md_err.h"
#include "md_schema.h"
#include "md_store.h"
#include "md_store_syncer.h"
#include "md_test.h"

#include <errno.h>
#include <glib.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <string.h>

static char *tmpdir;

static char *db_path(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof(buf), "%s/%s", tmpdir, name);
    return buf;
}

static md_store *open_store(const char *name)
{
    char url[600];
    md_store *st = NULL;
    snprintf(url, sizeof(url), "sqlite:%s", db_path(name));
    ASSERT_OK(md_store_open(url, &st));
    ASSERT(st);
    return st;
}

static int64_t count_rows(md_store *st, const char *table)
{
    char sql[128];
    int64_t n = -1;
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", table);
    ASSERT_EQ(md_store_query_int(st, sql, MD_NO_PARAMS, &n), 1);
    return n;
}

static void test_open_migrate_reopen(void)
{
    md_store *st = open_store("migrate.db");
    ASSERT_EQ(md_store_schema_version(st), (int64_t)md_schema_n_migrations);
    ASSERT_EQ(count_rows(st, "schema_version"), (int64_t)md_schema_n_migrations);
    /* The schema's tables exist. */
    ASSERT_EQ(count_rows(st, "audit"), 0);
    ASSERT_EQ(count_rows(st, "municipality"), 0);
    st = md_store_close(st);
    ASSERT(st == NULL);

    /* A plain path is SQLite too; nothing is applied twice. */
    ASSERT_OK(md_store_open(db_path("migrate.db"), &st));
    ASSERT_EQ(md_store_schema_version(st), (int64_t)md_schema_n_migrations);
    ASSERT_EQ(count_rows(st, "schema_version"), (int64_t)md_schema_n_migrations);
    md_store_close(st);
    ASSERT(md_store_close(NULL) == NULL);
}

static void test_pragmas(void)
{
    md_store *st = open_store("pragmas.db");
    char *mode = NULL;
    int64_t v = -1;
    ASSERT_EQ(md_store_query_text(st, "PRAGMA journal_mode", MD_NO_PARAMS, &mode), 1);
    ASSERT_STR_EQ(mode, "wal");
    free(mode);
    ASSERT_EQ(md_store_query_int(st, "PRAGMA synchronous", MD_NO_PARAMS, &v), 1);
    ASSERT_EQ(v, 2); /* FULL */
    ASSERT_EQ(md_store_query_int(st, "PRAGMA foreign_keys", MD_NO_PARAMS, &v), 1);
    ASSERT_EQ(v, 1);
    md_store_close(st);
}

struct seen {
    int rows;
    int columns;
    bool null_n;
    int64_t i;
    char s[64];
    unsigned char b[16];
    size_t blen;
    bool blob_null;
    bool text_null;
};

static int on_typed_row(const md_row *row, void *userdata)
{
    struct seen *s = userdata;
    s->rows++;
    s->columns = md_row_columns(row);
    s->i = md_row_int(row, 0);
    const char *t = md_row_text(row, 1);
    s->text_null = t == NULL;
    if (t)
        snprintf(s->s, sizeof(s->s), "%s", t);
    const void *b = md_row_blob(row, 2, &s->blen);
    s->blob_null = b == NULL;
    if (b && s->blen <= sizeof(s->b))
        memcpy(s->b, b, s->blen);
    s->null_n = md_row_is_null(row, 3);
    return 0;
}

static void test_params_and_nulls(void)
{
    md_store *st = open_store("params.db");
    static const unsigned char blob[5] = {0x00, 0x01, 0xff, 0x00, 0x7f};
    const char text[] = "窓口 'quoted' \"x\"";
    struct seen s = {0};

    ASSERT_OK(md_store_exec(st, "CREATE TABLE t (i BIGINT, s TEXT, b BLOB, n TEXT)", MD_NO_PARAMS));
    ASSERT_EQ(md_store_exec(st, "INSERT INTO t VALUES (?, ?, ?, ?)",
                            MD_PARAMS(MD_P_INT(INT64_MIN), MD_P_TEXT(text),
                                      MD_P_BLOB(blob, sizeof(blob)), MD_P_NULL)),
              1);
    ASSERT_EQ(md_store_query(st, "SELECT i, s, b, n FROM t", MD_NO_PARAMS, on_typed_row, &s), 1);
    ASSERT_EQ(s.rows, 1);
    ASSERT_EQ(s.columns, 4);
    ASSERT_EQ(s.i, INT64_MIN);
    ASSERT_STR_EQ(s.s, text);
    ASSERT_EQ(s.blen, sizeof(blob));
    ASSERT(memcmp(s.b, blob, sizeof(blob)) == 0);
    ASSERT(s.null_n);

    /* A NULL string binds SQL NULL; an empty blob stays a blob, not NULL. */
    const char *none = NULL;
    ASSERT_OK(md_store_exec(st, "DELETE FROM t", MD_NO_PARAMS));
    ASSERT_EQ(md_store_exec(st, "INSERT INTO t VALUES (?, ?, ?, ?)",
                            MD_PARAMS(MD_P_INT(INT64_MAX), MD_P_TEXT(none), MD_P_BLOB(NULL, 0),
                                      MD_P_TEXT("not null"))),
              1);
    memset(&s, 0, sizeof(s));
    ASSERT_EQ(md_store_query(st, "SELECT i, s, b, n FROM t", MD_NO_PARAMS, on_typed_row, &s), 1);
    ASSERT_EQ(s.i, INT64_MAX);
    ASSERT(s.text_null);
    ASSERT(!s.blob_null);
    ASSERT_EQ(s.blen, 0);
    ASSERT(!s.null_n);
    int64_t n = -1;
    ASSERT_EQ(md_store_query_int(st, "SELECT COUNT(*) FROM t WHERE s IS NULL AND b IS NOT NULL",
                                 MD_NO_PARAMS, &n),
              1);
    ASSERT_EQ(n, 1);

    /* Parameters in a WHERE clause; exec reports the rows it changed. */
    ASSERT_OK(md_store_exec(st, "DELETE FROM t", MD_NO_PARAMS));
    for (int k = 0; k < 5; k++)
        ASSERT_EQ(md_store_exec(st, "INSERT INTO t (i, s) VALUES (?, ?)",
                                MD_PARAMS(MD_P_INT(k), MD_P_TEXT(k % 2 ? "odd" : "even"))),
                  1);
    ASSERT_EQ(md_store_exec(st, "UPDATE t SET n = ? WHERE s = ?",
                            MD_PARAMS(MD_P_TEXT("x"), MD_P_TEXT("even"))),
              3);
    ASSERT_EQ(md_store_exec(st, "SELECT * FROM t", MD_NO_PARAMS), 0);
    md_store_close(st);
}

static int on_stop_after_two(const md_row *row, void *userdata)
{
    int *n = userdata;
    (void)row;
    return ++*n == 2 ? 1 : 0;
}

static int on_fail(const md_row *row, void *userdata)
{
    (void)row;
    (void)userdata;
    return -EPIPE;
}

static int on_out_of_range(const md_row *row, void *userdata)
{
    size_t len = 99;
    (void)userdata;
    ASSERT(md_row_is_null(row, 5));
    ASSERT(md_row_is_null(row, -1));
    ASSERT_EQ(md_row_int(row, 5), 0);
    ASSERT(md_row_text(row, 5) == NULL);
    ASSERT(md_row_blob(row, 5, &len) == NULL);
    ASSERT_EQ(len, 0);
    return 0;
}

static void test_query_callbacks(void)
{
    md_store *st = open_store("query.db");
    int n = 0;
    ASSERT_OK(md_store_exec(st, "CREATE TABLE t (i BIGINT)", MD_NO_PARAMS));
    for (int k = 0; k < 5; k++)
        ASSERT_OK(md_store_exec(st, "INSERT INTO t VALUES (?)", MD_PARAMS(MD_P_INT(k))));
    ASSERT_EQ(md_store_query(st, "SELECT i FROM t ORDER BY i", MD_NO_PARAMS, on_stop_after_two, &n),
              2);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(md_store_query(st, "SELECT i FROM t", MD_NO_PARAMS, on_fail, NULL), -EPIPE);
    ASSERT_EQ(
        md_store_query(st, "SELECT i FROM t WHERE i > ?", MD_PARAMS(MD_P_INT(100)), on_fail, NULL),
        0);
    ASSERT_EQ(md_store_query(st, "SELECT i FROM t LIMIT 1", MD_NO_PARAMS, on_out_of_range, NULL),
              1);
    md_store_close(st);
}

static void test_transactions(void)
{
    md_store *st = open_store("tx.db");
    ASSERT_OK(md_store_exec(st, "CREATE TABLE t (i BIGINT PRIMARY KEY)", MD_NO_PARAMS));

    ASSERT_OK(md_store_begin(st));
    ASSERT_EQ(md_store_begin(st), -EBUSY); /* no nesting */
    ASSERT_OK(md_store_exec(st, "INSERT INTO t VALUES (1)", MD_NO_PARAMS));
    md_store_rollback(st);
    ASSERT_EQ(count_rows(st, "t"), 0);

    md_store_rollback(st); /* nothing open: a no-op */
    ASSERT_EQ(md_store_commit(st), -EINVAL);

    ASSERT_OK(md_store_begin(st));
    ASSERT_OK(md_store_exec(st, "INSERT INTO t VALUES (1)", MD_NO_PARAMS));
    ASSERT_OK(md_store_exec(st, "INSERT INTO t VALUES (2)", MD_NO_PARAMS));
    ASSERT_OK(md_store_commit(st));
    ASSERT_EQ(count_rows(st, "t"), 2);

    /* A failed statement leaves the transaction to the caller; rollback undoes all of it. */
    ASSERT_OK(md_store_begin(st));
    ASSERT_OK(md_store_exec(st, "INSERT INTO t VALUES (3)", MD_NO_PARAMS));
    ASSERT_EQ(md_store_exec(st, "INSERT INTO t VALUES (1)", MD_NO_PARAMS), -MD_E_STORE);
    md_store_rollback(st);
    ASSERT_EQ(count_rows(st, "t"), 2);

    /* Closing with a transaction open rolls it back. */
    ASSERT_OK(md_store_begin(st));
    ASSERT_OK(md_store_exec(st, "INSERT INTO t VALUES (4)", MD_NO_PARAMS));
    md_store_close(st);
    st = open_store("tx.db");
    ASSERT_EQ(count_rows(st, "t"), 2);
    md_store_close(st);
}

static void test_single_value_helpers(void)
{
    md_store *st = open_store("helpers.db");
    int64_t v = 42;
    char *s = (char *)"untouched";

    ASSERT_OK(
        md_store_exec(st, "CREATE TABLE t (k TEXT PRIMARY KEY, i BIGINT, s TEXT)", MD_NO_PARAMS));
    ASSERT_OK(md_store_exec(st, "INSERT INTO t VALUES ('a', 7, 'seven'), ('b', NULL, NULL)",
                            MD_NO_PARAMS));

    ASSERT_EQ(md_store_query_int(st, "SELECT i FROM t WHERE k = ?", MD_PARAMS(MD_P_TEXT("a")), &v),
              1);
    ASSERT_EQ(v, 7);
    v = 42;
    ASSERT_EQ(md_store_query_int(st, "SELECT i FROM t WHERE k = ?", MD_PARAMS(MD_P_TEXT("zz")), &v),
              0);
    ASSERT_EQ(v, 42);
    /* A NULL counts as no value: MAX() over nothing. */
    ASSERT_EQ(md_store_query_int(st, "SELECT i FROM t WHERE k = 'b'", MD_NO_PARAMS, &v), 0);
    ASSERT_EQ(md_store_query_int(st, "SELECT MAX(i) FROM t WHERE k = 'zz'", MD_NO_PARAMS, &v), 0);
    ASSERT_EQ(v, 42);

    ASSERT_EQ(md_store_query_text(st, "SELECT s FROM t WHERE k = ?", MD_PARAMS(MD_P_TEXT("a")), &s),
              1);
    ASSERT_STR_EQ(s, "seven");
    free(s);
    s = (char *)"untouched";
    ASSERT_EQ(md_store_query_text(st, "SELECT s FROM t WHERE k = 'zz'", MD_NO_PARAMS, &s), 0);
    ASSERT_STR_EQ(s, "untouched");
    ASSERT_EQ(md_store_query_text(st, "SELECT s FROM t WHERE k = 'b'", MD_NO_PARAMS, &s), 1);
    ASSERT(s == NULL);

    /* Errors leave the output alone. */
    v = 42;
    ASSERT_EQ(md_store_query_int(st, "SELECT nope FROM t", MD_NO_PARAMS, &v), -MD_E_STORE);
    ASSERT_EQ(v, 42);
    md_store_close(st);
}

static void test_errors(void)
{
    md_store *st = NULL;
    md_store *sentinel = (md_store *)&st;
    int64_t v;

    /* Unknown or unbuilt backends and a missing directory. */
    st = sentinel;
    ASSERT_EQ(md_store_open("postgresql://db.example/madoguchi", &st), -EPROTONOSUPPORT);
    ASSERT(st == sentinel);
    ASSERT_EQ(md_store_open("sqlite:", &st), -EINVAL);
    ASSERT_EQ(md_store_open("sqlite:/nonexistent-dir-md/x.db", &st), -MD_E_STORE);
    ASSERT(st == sentinel);

    st = open_store("errors.db");
    ASSERT_EQ(md_store_exec(st, "CREAT TABLE x (i)", MD_NO_PARAMS), -MD_E_STORE);
    ASSERT_EQ(md_store_exec(st, "INSERT INTO no_such_table VALUES (1)", MD_NO_PARAMS), -MD_E_STORE);
    ASSERT_EQ(md_store_query(st, "SELECT * FROM no_such_table", MD_NO_PARAMS, on_fail, NULL),
              -MD_E_STORE);
    ASSERT_EQ(md_store_query_int(st, "SELEC 1", MD_NO_PARAMS, &v), -MD_E_STORE);
    /* A constraint from the schema. */
    ASSERT_EQ(md_store_exec(st,
                            "INSERT INTO post_office (id, name, kind, municipality, updated_at)"
                            " VALUES ('PO', 'x', 'direct', 'nowhere', 0)",
                            MD_NO_PARAMS),
              -MD_E_STORE);

    /* Misuse is an argument error, not a database one. */
    ASSERT_EQ(md_store_exec(st, "SELECT 1; SELECT 2", MD_NO_PARAMS), -EINVAL);
    ASSERT_EQ(md_store_exec(st, "SELECT ?", MD_NO_PARAMS), -EINVAL);
    ASSERT_EQ(md_store_exec(st, "SELECT 1", MD_PARAMS(MD_P_INT(1))), -EINVAL);
    ASSERT_EQ(md_store_exec(st, "SELECT 1", NULL, 1), -EINVAL);
    ASSERT_EQ(md_store_exec(NULL, "SELECT 1", MD_NO_PARAMS), -EINVAL);
    ASSERT_EQ(md_store_query(st, "SELECT 1", MD_NO_PARAMS, NULL, NULL), -EINVAL);
    /* A trailing semicolon is still one statement. */
    ASSERT_OK(md_store_exec(st, "SELECT 1;", MD_NO_PARAMS));
    md_store_close(st);
}

static void test_persisted(void)
{
    md_store *st = open_store("persist.db");
    char *s = NULL;
    ASSERT_OK(md_store_exec(st,
                            "INSERT INTO municipality (code, name, prefecture, policy, updated_at)"
                            " VALUES (?, ?, ?, ?, ?)",
                            MD_PARAMS(MD_P_TEXT("131016"), MD_P_TEXT("千代田区"),
                                      MD_P_TEXT("東京都"), MD_P_TEXT("{}"), MD_P_INT(1))));
    md_store_close(st);

    /* A separate handle on the same file, as after a restart. */
    ASSERT_OK(md_store_open(db_path("persist.db"), &st));
    ASSERT_EQ(md_store_query_text(st, "SELECT name FROM municipality WHERE code = ?",
                                  MD_PARAMS(MD_P_TEXT("131016")), &s),
              1);
    ASSERT_STR_EQ(s, "千代田区");
    free(s);
    md_store_close(st);
}

/* ---- a VFS over the default one that counts syncs of "-wal" files ---- */

static sqlite3_vfs *real_vfs;
static sqlite3_vfs counting_vfs;
static _Atomic int wal_syncs;

struct counted_file {
    sqlite3_file base;
    bool wal;
    sqlite3_file *real; /* follows this struct in the same allocation */
};

#define REAL(f) (((struct counted_file *)(f))->real)
static int c_close(sqlite3_file *f)
{
    return REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
}
static int c_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int c_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int c_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int c_sync(sqlite3_file *f, int flags)
{
    if (((struct counted_file *)f)->wal)
        atomic_fetch_add(&wal_syncs, 1);
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int c_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int c_lock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int c_unlock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int c_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int c_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int c_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int c_device(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int c_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, extend, pp);
}
static int c_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void c_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int c_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int c_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp)
{
    return REAL(f)->pMethods->xFetch(REAL(f), o, n, pp);
}
static int c_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}

static const sqlite3_io_methods counted_methods = {
    .iVersion = 3,
    .xClose = c_close,
    .xRead = c_read,
    .xWrite = c_write,
    .xTruncate = c_truncate,
    .xSync = c_sync,
    .xFileSize = c_file_size,
    .xLock = c_lock,
    .xUnlock = c_unlock,
    .xCheckReservedLock = c_check_reserved,
    .xFileControl = c_file_control,
    .xSectorSize = c_sector_size,
    .xDeviceCharacteristics = c_device,
    .xShmMap = c_shm_map,
    .xShmLock = c_shm_lock,
    .xShmBarrier = c_shm_barrier,
    .xShmUnmap = c_shm_unmap,
    .xFetch = c_fetch,
    .xUnfetch = c_unfetch,
};

static int c_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    struct counted_file *cf = (struct counted_file *)f;
    cf->real = (sqlite3_file *)(cf + 1);
    cf->wal = (flags & SQLITE_OPEN_WAL) != 0;
    int rc = real_vfs->xOpen(real_vfs, name, cf->real, flags, out_flags);
    /* Our close forwards only to a real file that opened. */
    cf->base.pMethods = rc == SQLITE_OK ? &counted_methods : NULL;
    return rc;
}

/* Every later sqlite3_open in this (child) process goes through the counter. */
static void count_wal_syncs(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    counting_vfs = *real_vfs;
    counting_vfs.zName = "md-test-counting";
    counting_vfs.szOsFile = (int)sizeof(struct counted_file) + real_vfs->szOsFile;
    counting_vfs.xOpen = c_open;
    ASSERT_EQ(sqlite3_vfs_register(&counting_vfs, 1), SQLITE_OK);
}

static void insert_row(md_store *st, const char *code)
{
    ASSERT_OK(md_store_exec(st,
                            "INSERT INTO municipality (code, name, prefecture, policy, updated_at)"
                            " VALUES (?, 'x', 'y', '{}', 0)",
                            MD_PARAMS(MD_P_TEXT(code))));
}

static void test_deferred_sync(void)
{
    count_wal_syncs();
    md_store *st = open_store("deferred.db");
    md_store *other = open_store("deferred.db");

    /* By default every commit waits for the log to reach the disk. */
    int before = atomic_load(&wal_syncs);
    insert_row(st, "000001");
    ASSERT(atomic_load(&wal_syncs) > before);

    /* Deferred: committed and visible at once, no fsync yet. */
    ASSERT_OK(md_store_defer_sync(st, true));
    before = atomic_load(&wal_syncs);
    insert_row(st, "000002");
    ASSERT_OK(md_store_begin(st));
    insert_row(st, "000003");
    ASSERT_OK(md_store_commit(st));
    ASSERT_EQ(atomic_load(&wal_syncs), before);
    ASSERT_EQ(count_rows(other, "municipality"), 3);

    /* One sync covers both, from any handle on the database. */
    ASSERT_OK(md_store_sync(other));
    ASSERT_EQ(atomic_load(&wal_syncs), before + 1);

    /* Not inside a transaction. */
    ASSERT_OK(md_store_begin(st));
    ASSERT_EQ(md_store_defer_sync(st, false), -EBUSY);
    md_store_rollback(st);

    ASSERT_OK(md_store_defer_sync(st, false));
    before = atomic_load(&wal_syncs);
    insert_row(st, "000004");
    ASSERT(atomic_load(&wal_syncs) > before);

    ASSERT_EQ(md_store_defer_sync(NULL, true), -EINVAL);
    ASSERT_EQ(md_store_sync(NULL), -EINVAL);
    md_store_close(other);
    md_store_close(st);

    /* No log on disk: nothing to sync. */
    ASSERT_OK(md_store_open(":memory:", &st));
    ASSERT_OK(md_store_defer_sync(st, true));
    ASSERT_OK(md_store_sync(st));
    md_store_close(st);
}

struct synced {
    uint64_t last;
    int calls, error;
    bool decreasing;
};

static void on_synced(uint64_t upto, int error, void *ud)
{
    struct synced *s = ud;
    if (upto < s->last)
        s->decreasing = true;
    s->last = upto;
    s->error = error;
    s->calls++;
}

static void wait_synced(struct synced *s, uint64_t upto)
{
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    while (s->last < upto && g_get_monotonic_time() < deadline)
        g_main_context_iteration(NULL, TRUE);
    ASSERT_EQ(s->last, upto);
}

static void test_syncer(void)
{
    count_wal_syncs();
    char url[600];
    snprintf(url, sizeof(url), "sqlite:%s", db_path("syncer.db"));
    md_store *st = open_store("syncer.db");
    struct synced got = {0};
    md_store_syncer *syncer = NULL;
    ASSERT_EQ(md_store_syncer_new(NULL, on_synced, &got, &syncer), -EINVAL);
    ASSERT_OK(md_store_syncer_new(url, on_synced, &got, &syncer));

    /* Deferred commits, then a request: the answer comes on this thread's
     * context after a sync of the log by the syncer's own handle. */
    ASSERT_OK(md_store_defer_sync(st, true));
    int before = atomic_load(&wal_syncs);
    insert_row(st, "000001");
    ASSERT_EQ(atomic_load(&wal_syncs), before);
    md_store_syncer_request(syncer, 1);
    wait_synced(&got, 1);
    ASSERT_EQ(got.error, 0);
    ASSERT(atomic_load(&wal_syncs) > before);

    /* A burst of requests: answered up to the last one, never backwards
     * (requests that pile up during a sync share the next one). */
    for (uint64_t i = 2; i <= 50; i++) {
        char code[16];
        snprintf(code, sizeof(code), "%06d", (int)i);
        insert_row(st, code);
        md_store_syncer_request(syncer, i);
    }
    md_store_syncer_request(syncer, 7); /* stale: ignored */
    wait_synced(&got, 50);
    ASSERT(!got.decreasing);
    ASSERT(got.calls <= 50);

    /* Freed with a request pending: no callback afterwards. */
    insert_row(st, "000051");
    md_store_syncer_request(syncer, 51);
    int calls = got.calls;
    syncer = md_store_syncer_free(syncer);
    ASSERT(syncer == NULL);
    while (g_main_context_iteration(NULL, FALSE))
        ;
    ASSERT_EQ(got.calls, calls);
    ASSERT(md_store_syncer_free(NULL) == NULL);
    md_store_close(st);
}

int main(void)
{
    tmpdir = md_test_tmpdir();
    RUN(test_open_migrate_reopen);
    RUN(test_pragmas);
    RUN(test_params_and_nulls);
    RUN(test_query_callbacks);
    RUN(test_transactions);
    RUN(test_single_value_helpers);
    RUN(test_errors);
    RUN(test_persisted);
    RUN(test_deferred_sync);
    RUN(test_syncer);
    free(tmpdir);
    return 0;
}
