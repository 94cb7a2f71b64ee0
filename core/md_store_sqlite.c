/*
 * The SQLite backend of the store: the only file that includes sqlite3.h
 * (tests aside).  A connection is opened in WAL mode with synchronous=FULL, so
 * a committed transaction survives a power cut, with foreign keys on and a
 * 5 s busy timeout so that the CLI and the gateway can share one file.  Every
 * statement is prepared, bound from md_param and finalized in the same call;
 * SQL text never carries values.  Every SQLite failure becomes -MD_E_STORE
 * after one debug line with sqlite3_errmsg().  A connection belongs to the
 * thread of its md_store (opened with SQLITE_OPEN_NOMUTEX).
 */
#define MD_STORE_BACKEND
#include "md_err.h"
#include "md_log.h"
#include "md_store.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#define BUSY_TIMEOUT_MS 5000

static int fail(sqlite3 *db, const char *op, const char *sql)
{
    md_debug("store", "sqlite_error", "{s:s, s:i, s:s, s:s?}", "op", op, "code",
             sqlite3_extended_errcode(db), "message", sqlite3_errmsg(db), "sql", sql);
    return -MD_E_STORE;
}

/* Runs a statement that returns at most one text row (a PRAGMA) and copies the value. */
static int pragma_text(sqlite3 *db, const char *sql, char *out, size_t out_len)
{
    sqlite3_stmt *stmt = NULL;
    int r = 0;

    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return fail(db, "prepare", sql);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && out) {
        const unsigned char *v = sqlite3_column_text(stmt, 0);
        snprintf(out, out_len, "%s", v ? (const char *)v : "");
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        r = fail(db, "step", sql);
    }
    sqlite3_finalize(stmt);
    return r;
}

static void sqlite_close(void *conn)
{
    /* v2: statements still open by mistake are finalized later instead of leaking the handle. */
    sqlite3_close_v2(conn);
}

static int sqlite_open(const char *path, void **ret_conn)
{
    sqlite3 *db = NULL;
    char mode[16];
    int r;

    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        /* db may still be allocated and carries the message. */
        md_debug("store", "sqlite_error", "{s:s, s:i, s:s}", "op", "open", "code", rc, "message",
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        r = -MD_E_STORE;
        goto out;
    }
    sqlite3_extended_result_codes(db, 1);
    /* A damaged or hostile file must not be able to make writable_schema tricks work. */
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);

    r = pragma_text(db, "PRAGMA journal_mode = WAL", mode, sizeof(mode));
    if (r < 0)
        goto out;
    /* The durability promise of md_store.h rests on WAL; in-memory databases are for tests. */
    if (strcmp(mode, "wal") != 0 && strcmp(path, ":memory:") != 0) {
        md_debug("store", "sqlite_no_wal", "{s:s}", "journal_mode", mode);
        r = -MD_E_STORE;
        goto out;
    }
    r = pragma_text(db, "PRAGMA synchronous = FULL", NULL, 0);
    if (r < 0)
        goto out;
    r = pragma_text(db, "PRAGMA foreign_keys = ON", NULL, 0);
    if (r < 0)
        goto out;

    *ret_conn = db;
    db = NULL;
    r = 0;
out:
    sqlite3_close_v2(db);
    return r;
}

static int bind_params(sqlite3 *db, sqlite3_stmt *stmt, const char *sql, const md_param *params,
                       size_t n_params)
{
    int expected = sqlite3_bind_parameter_count(stmt);
    if (n_params != (size_t)expected) {
        md_debug("store", "sqlite_bind_count", "{s:i, s:I, s:s}", "expected", expected, "given",
                 (long long)n_params, "sql", sql);
        return -EINVAL;
    }
    for (size_t i = 0; i < n_params; i++) {
        const md_param *p = &params[i];
        int idx = (int)i + 1, rc;
        switch (p->type) {
        case MD_PARAM_INT:
            rc = sqlite3_bind_int64(stmt, idx, p->i);
            break;
        case MD_PARAM_TEXT:
            /* The caller's strings outlive the statement: no copy needed. */
            rc = p->s ? sqlite3_bind_text(stmt, idx, p->s, -1, SQLITE_STATIC)
                      : sqlite3_bind_null(stmt, idx);
            break;
        case MD_PARAM_BLOB:
            /* SQLite binds a NULL pointer as SQL NULL; an empty blob must stay a blob. */
            rc = p->b ? sqlite3_bind_blob64(stmt, idx, p->b, p->len, SQLITE_STATIC)
                      : sqlite3_bind_zeroblob(stmt, idx, 0);
            break;
        case MD_PARAM_NULL:
            rc = sqlite3_bind_null(stmt, idx);
            break;
        default:
            return -EINVAL;
        }
        if (rc != SQLITE_OK)
            return fail(db, "bind", sql);
    }
    return 0;
}

/* Prepares exactly one statement: trailing SQL would otherwise be ignored silently. */
static int prepare(sqlite3 *db, const char *sql, const md_param *params, size_t n_params,
                   sqlite3_stmt **ret)
{
    sqlite3_stmt *stmt = NULL;
    const char *tail = NULL;
    int r;

    if (sqlite3_prepare_v2(db, sql, -1, &stmt, &tail) != SQLITE_OK)
        return fail(db, "prepare", sql);
    if (!stmt) {
        r = -EINVAL; /* only whitespace or comments */
        goto out;
    }
    tail += strspn(tail, " \t\r\n;");
    if (*tail) {
        md_debug("store", "sqlite_several_statements", "{s:s}", "sql", sql);
        r = -EINVAL;
        goto out;
    }
    r = bind_params(db, stmt, sql, params, n_params);
    if (r < 0)
        goto out;
    *ret = stmt;
    stmt = NULL;
out:
    sqlite3_finalize(stmt);
    return r;
}

static int sqlite_exec(void *conn, const char *sql, const md_param *params, size_t n_params)
{
    sqlite3 *db = conn;
    sqlite3_stmt *stmt = NULL;
    int rc;

    int r = prepare(db, sql, params, n_params, &stmt);
    if (r < 0)
        return r;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE) {
        r = fail(db, "step", sql);
        goto out;
    }
    /* sqlite3_changes() keeps the last write's count; a read changed nothing. */
    if (!sqlite3_stmt_readonly(stmt)) {
        sqlite3_int64 n = sqlite3_changes64(db);
        r = n > INT_MAX ? INT_MAX : (int)n;
    }
out:
    sqlite3_finalize(stmt);
    return r;
}

static int sqlite_exec_script(void *conn, const char *sql)
{
    sqlite3 *db = conn;
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return fail(db, "exec", NULL);
    return 0;
}

static int sqlite_query(void *conn, const char *sql, const md_param *params, size_t n_params,
                        md_row_cb cb, void *userdata)
{
    sqlite3 *db = conn;
    sqlite3_stmt *stmt = NULL;
    int rows = 0, rc;

    int r = prepare(db, sql, params, n_params, &stmt);
    if (r < 0)
        return r;
    const md_row row = {.ops = &md_store_sqlite_ops, .cursor = stmt};
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (rows < INT_MAX)
            rows++;
        r = cb(&row, userdata);
        if (r < 0)
            goto out;
        if (r > 0)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        r = fail(db, "step", sql);
        goto out;
    }
    r = rows;
out:
    sqlite3_finalize(stmt);
    return r;
}

/*
 * IMMEDIATE takes the write lock now, where busy_timeout can wait for it; a
 * deferred transaction that later upgrades may get SQLITE_BUSY without waiting
 * when another connection wrote in between.  A reading transaction is
 * deferred: its snapshot starts at its first read and holds to its end
 * (https://sqlite.org/lang_transaction.html, https://sqlite.org/wal.html).
 */
static int sqlite_begin(void *conn, bool write)
{
    return sqlite_exec_script(conn, write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
}

static int sqlite_commit(void *conn)
{
    return sqlite_exec_script(conn, "COMMIT");
}

static int sqlite_rollback(void *conn)
{
    sqlite3 *db = conn;
    /* Some errors (I/O, full disk) already rolled back: nothing left to undo. */
    if (sqlite3_get_autocommit(db))
        return 0;
    return sqlite_exec_script(conn, "ROLLBACK");
}

static int row_columns(const void *cursor)
{
    return sqlite3_data_count((sqlite3_stmt *)cursor);
}

static bool row_is_null(const void *cursor, int col)
{
    return sqlite3_column_type((sqlite3_stmt *)cursor, col) == SQLITE_NULL;
}

static int64_t row_int(const void *cursor, int col)
{
    return sqlite3_column_int64((sqlite3_stmt *)cursor, col);
}

static const char *row_text(const void *cursor, int col)
{
    return (const char *)sqlite3_column_text((sqlite3_stmt *)cursor, col);
}

static const void *row_blob(const void *cursor, int col, size_t *ret_len)
{
    sqlite3_stmt *stmt = (sqlite3_stmt *)cursor;
    if (sqlite3_column_type(stmt, col) == SQLITE_NULL) {
        *ret_len = 0;
        return NULL;
    }
    /* blob before bytes: the documented order that avoids a second conversion. */
    const void *p = sqlite3_column_blob(stmt, col);
    int n = sqlite3_column_bytes(stmt, col);
    *ret_len = (size_t)n;
    /* SQLite returns NULL for a zero-length blob; callers read NULL as SQL NULL. */
    return p ? p : "";
}

/* WAL's synchronous=NORMAL writes a commit's frames to the log without
 * waiting for the disk; FULL waits for them (an fsync of the log) at every
 * commit.  Both are consistent after a power cut; only FULL is durable at
 * once (https://sqlite.org/pragma.html#pragma_synchronous). */
static int sqlite_defer_sync(void *conn, bool defer)
{
    return sqlite_exec_script(conn,
                              defer ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL");
}

/*
 * What FULL does at each commit, once for every commit so far: an fsync of
 * the write-ahead log.  The log is one file per database, and fsync acts on
 * the file, not on the descriptor, so this makes every frame written to it
 * (through any connection) durable.  SQLITE_FCNTL_JOURNAL_POINTER is the
 * connection's own handle on the log; it is open once the connection has
 * read the database in WAL mode (a fresh connection reads the schema first).
 * Frames already checkpointed are in the database file, which a checkpoint
 * syncs itself.
 */
static int sqlite_sync(void *conn)
{
    sqlite3 *db = conn;
    sqlite3_file *log = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &log) != SQLITE_OK)
        return fail(db, "journal_pointer", NULL);
    if (!log || !log->pMethods) {
        int r = pragma_text(db, "SELECT count(*) FROM sqlite_schema", NULL, 0);
        if (r < 0)
            return r;
        if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &log) != SQLITE_OK)
            return fail(db, "journal_pointer", NULL);
    }
    if (!log || !log->pMethods)
        return 0; /* no log on disk (":memory:"): nothing to make durable */
    int rc = log->pMethods->xSync(log, SQLITE_SYNC_NORMAL);
    if (rc != SQLITE_OK) {
        md_debug("store", "sqlite_error", "{s:s, s:i}", "op", "sync", "code", rc);
        return -MD_E_STORE;
    }
    return 0;
}

const md_store_ops md_store_sqlite_ops = {
    .scheme = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .exec = sqlite_exec,
    .exec_script = sqlite_exec_script,
    .query = sqlite_query,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .defer_sync = sqlite_defer_sync,
    .sync = sqlite_sync,
    .row_columns = row_columns,
    .row_is_null = row_is_null,
    .row_int = row_int,
    .row_text = row_text,
    .row_blob = row_blob,
};
