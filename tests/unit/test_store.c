/*
 * The store front and its SQLite backend: URL forms, migrations, parameter
 * binding, NULLs, transactions, the single-value helpers, error mapping and
 * durability across a reopen.
 */
#include "md_err.h"
#include "md_schema.h"
#include "md_store.h"
#include "md_test.h"

#include <errno.h>

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
    free(tmpdir);
    return 0;
}
