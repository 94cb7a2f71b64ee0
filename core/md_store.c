/*
 * The backend-neutral half of the store (md_store.h): picks a backend from the
 * URL, checks arguments, keeps the transaction flag, applies the migrations of
 * md_schema.c and dispatches everything else through the backend's ops table.
 * Invariants: st->in_tx mirrors the backend's transaction exactly (a failed
 * commit is rolled back so the two cannot drift); schema_version is the
 * highest migration applied.  A store and its rows belong to the thread that
 * opened it; nothing here is shared.
 */
#define MD_STORE_BACKEND
#include "md_store.h"
#include "md_crypto.h"
#include "md_err.h"
#include "md_log.h"
#include "md_schema.h"
#include "md_time.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct md_store {
    const md_store_ops *ops;
    void *conn;
    bool in_tx;
    int schema_version;
    bool has_field_key;
    uint8_t field_key[MD_STORE_FIELD_KEY_LEN];
};

static const md_store_ops *const backends[] = {
    &md_store_sqlite_ops,
};

/* Known but not built in: refused with a clear code rather than read as a file name. */
static const char *const unsupported_schemes[] = {"postgres", "postgresql"};

/* Splits "scheme:rest"; a URL without a known scheme is a SQLite path. */
static int parse_url(const char *url, const md_store_ops **ret_ops, const char **ret_target)
{
    const char *colon = strchr(url, ':');
    if (colon) {
        size_t n = (size_t)(colon - url);
        for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
            if (strlen(backends[i]->scheme) == n && memcmp(url, backends[i]->scheme, n) == 0) {
                *ret_ops = backends[i];
                *ret_target = colon + 1;
                return 0;
            }
        }
        for (size_t i = 0; i < sizeof(unsupported_schemes) / sizeof(unsupported_schemes[0]); i++)
            if (strlen(unsupported_schemes[i]) == n && memcmp(url, unsupported_schemes[i], n) == 0)
                return -EPROTONOSUPPORT;
    }
    *ret_ops = &md_store_sqlite_ops;
    *ret_target = url;
    return 0;
}

static int check_params(const md_param *params, size_t n_params)
{
    return n_params > 0 && !params ? -EINVAL : 0;
}

/*
 * The version table is created outside the migrations so that migration 1 is
 * like every other.  One row per applied migration keeps the history.
 */
static const char version_table_sql[] = "CREATE TABLE IF NOT EXISTS schema_version ("
                                        "  version BIGINT PRIMARY KEY,"
                                        "  applied_at BIGINT NOT NULL)";

static int read_version(md_store *st, int64_t *ret)
{
    int64_t v = 0;
    int r = md_store_query_int(st, "SELECT MAX(version) FROM schema_version", MD_NO_PARAMS, &v);
    if (r < 0)
        return r;
    *ret = v;
    return 0;
}

/*
 * Applies one missing migration per transaction.  The version is read again
 * inside each transaction, so two processes opening a fresh database at once
 * do not both apply the same step.
 */
static int migrate(md_store *st)
{
    int r = st->ops->exec_script(st->conn, version_table_sql);
    if (r < 0)
        return r;

    for (;;) {
        int64_t version;
        r = md_store_begin(st);
        if (r < 0)
            return r;
        r = read_version(st, &version);
        if (r < 0)
            goto out;
        if (version > (int64_t)md_schema_n_migrations) {
            md_debug("store", "schema_too_new", "{s:I, s:i}", "version", (long long)version,
                     "known", (int)md_schema_n_migrations);
            r = -MD_E_STORE;
            goto out;
        }
        if (version == (int64_t)md_schema_n_migrations) {
            r = md_store_commit(st);
            if (r < 0)
                return r;
            st->schema_version = (int)version;
            return 0;
        }
        r = st->ops->exec_script(st->conn, md_schema_migrations[version]);
        if (r < 0)
            goto out;
        r = md_store_exec(st, "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                          MD_PARAMS(MD_P_INT(version + 1), MD_P_INT(md_now_ms())));
        if (r < 0)
            goto out;
        r = md_store_commit(st);
        if (r < 0)
            return r;
        md_debug("store", "migrated", "{s:I}", "version", (long long)(version + 1));
    }
out:
    md_store_rollback(st);
    return r;
}

int md_store_open(const char *url, md_store **ret)
{
    const md_store_ops *ops;
    const char *target;
    md_store *st = NULL;
    int r;

    if (!url || !ret)
        return -EINVAL;
    r = parse_url(url, &ops, &target);
    if (r < 0)
        return r;
    if (!*target)
        return -EINVAL;

    st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->ops = ops;
    r = ops->open(target, &st->conn);
    if (r < 0)
        goto out;
    r = migrate(st);
    if (r < 0)
        goto out;
    *ret = st;
    st = NULL;
    r = 0;
out:
    md_store_close(st);
    return r;
}

md_store *md_store_close(md_store *st)
{
    if (!st)
        return NULL;
    md_store_rollback(st);
    if (st->conn)
        st->ops->close(st->conn);
    md_wipe(st->field_key, sizeof(st->field_key));
    free(st);
    return NULL;
}

void md_store_set_field_key(md_store *st, const uint8_t key[MD_STORE_FIELD_KEY_LEN])
{
    if (!st || !key)
        return;
    memcpy(st->field_key, key, sizeof(st->field_key));
    st->has_field_key = true;
}

const uint8_t *md_store_field_key(const md_store *st)
{
    return st && st->has_field_key ? st->field_key : NULL;
}

int md_store_exec(md_store *st, const char *sql, const md_param *params, size_t n_params)
{
    if (!st || !sql || check_params(params, n_params) < 0)
        return -EINVAL;
    return st->ops->exec(st->conn, sql, params, n_params);
}

int md_store_query(md_store *st, const char *sql, const md_param *params, size_t n_params,
                   md_row_cb cb, void *userdata)
{
    if (!st || !sql || !cb || check_params(params, n_params) < 0)
        return -EINVAL;
    return st->ops->query(st->conn, sql, params, n_params, cb, userdata);
}

/* Out-of-range columns read as NULL rather than reaching into the backend. */
static bool col_ok(const md_row *row, int col)
{
    return row && col >= 0 && col < row->ops->row_columns(row->cursor);
}

int md_row_columns(const md_row *row)
{
    return row ? row->ops->row_columns(row->cursor) : 0;
}

bool md_row_is_null(const md_row *row, int col)
{
    return !col_ok(row, col) || row->ops->row_is_null(row->cursor, col);
}

int64_t md_row_int(const md_row *row, int col)
{
    return col_ok(row, col) ? row->ops->row_int(row->cursor, col) : 0;
}

const char *md_row_text(const md_row *row, int col)
{
    return col_ok(row, col) ? row->ops->row_text(row->cursor, col) : NULL;
}

const void *md_row_blob(const md_row *row, int col, size_t *ret_len)
{
    size_t len = 0;
    const void *p = col_ok(row, col) ? row->ops->row_blob(row->cursor, col, &len) : NULL;
    if (ret_len)
        *ret_len = len;
    return p;
}

struct first_int {
    bool found;
    int64_t value;
};

static int on_first_int(const md_row *row, void *userdata)
{
    struct first_int *fi = userdata;
    if (!md_row_is_null(row, 0)) {
        fi->found = true;
        fi->value = md_row_int(row, 0);
    }
    return 1;
}

int md_store_query_int(md_store *st, const char *sql, const md_param *params, size_t n_params,
                       int64_t *ret)
{
    struct first_int fi = {0};
    if (!ret)
        return -EINVAL;
    int r = md_store_query(st, sql, params, n_params, on_first_int, &fi);
    if (r < 0)
        return r;
    if (!fi.found)
        return 0;
    *ret = fi.value;
    return 1;
}

struct first_text {
    bool found;
    int err;
    char *value;
};

static int on_first_text(const md_row *row, void *userdata)
{
    struct first_text *ft = userdata;
    const char *s = md_row_text(row, 0);
    ft->found = true;
    if (s) {
        ft->value = strdup(s);
        if (!ft->value)
            return -ENOMEM;
    }
    return 1;
}

int md_store_query_text(md_store *st, const char *sql, const md_param *params, size_t n_params,
                        char **ret)
{
    struct first_text ft = {0};
    if (!ret)
        return -EINVAL;
    int r = md_store_query(st, sql, params, n_params, on_first_text, &ft);
    if (r < 0) {
        free(ft.value);
        return r;
    }
    if (!ft.found)
        return 0;
    *ret = ft.value;
    return 1;
}

static int begin(md_store *st, bool write)
{
    if (!st)
        return -EINVAL;
    if (st->in_tx)
        return -EBUSY;
    int r = st->ops->begin(st->conn, write);
    if (r < 0)
        return r;
    st->in_tx = true;
    return 0;
}

int md_store_begin(md_store *st)
{
    return begin(st, true);
}

int md_store_begin_read(md_store *st)
{
    return begin(st, false);
}

int md_store_commit(md_store *st)
{
    if (!st || !st->in_tx)
        return -EINVAL;
    int r = st->ops->commit(st->conn);
    if (r < 0) {
        /* Leave no half-open transaction behind: the caller's next begin must work. */
        st->ops->rollback(st->conn);
    }
    st->in_tx = false;
    return r < 0 ? r : 0;
}

void md_store_rollback(md_store *st)
{
    if (!st || !st->in_tx)
        return;
    st->ops->rollback(st->conn);
    st->in_tx = false;
}

int md_store_defer_sync(md_store *st, bool defer)
{
    if (!st)
        return -EINVAL;
    if (st->in_tx)
        return -EBUSY;
    return st->ops->defer_sync ? st->ops->defer_sync(st->conn, defer) : 0;
}

int md_store_sync(md_store *st)
{
    if (!st)
        return -EINVAL;
    return st->ops->sync ? st->ops->sync(st->conn) : 0;
}

int md_store_schema_version(md_store *st)
{
    return st ? st->schema_version : -EINVAL;
}
