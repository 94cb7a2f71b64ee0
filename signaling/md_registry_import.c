/*
 * Registry import (data/sample-registry.json format): municipalities, then
 * post offices, then designations, so each entry can be checked against the
 * ones it names.
 *
 * Each entry is validated on its own and either upserted or refused; one bad
 * entry does not stop the others, because an operator fixing a council
 * resolution reference should not have to re-run a whole prefecture.  Import
 * is idempotent: a key that exists is updated in place (action "update"), or
 * left alone when nothing differs ("unchanged"), and a designation, keyed
 * "<post_office>/<from>", has its procedure set replaced.  Import never
 * deletes: a designation ends by its period, or by re-importing it with an
 * earlier "until".  Each entry is written (designations in one transaction)
 * and then audited; md_audit_append() commits on its own and transactions do
 * not nest, so the audit entry follows the committed change.  Runs on the
 * thread that owns the store.
 */
#include "md_err.h"
#include "md_registry.h"
#include "md_time.h"

#include <errno.h>
#include <glib.h>
#include <stdarg.h>
#include <string.h>

#define ID_MAX 64
#define NAME_MAX_BYTES 256
#define ROW_COLS_MAX 8

enum entry_kind { KIND_MUNICIPALITY, KIND_POST_OFFICE, KIND_DESIGNATION, KIND__N };

static const struct kind_info {
    const char *name;  /* in reports and audit details */
    const char *array; /* top-level key of the document */
} kinds[KIND__N] = {
    [KIND_MUNICIPALITY] = {"municipality", "municipalities"},
    [KIND_POST_OFFICE] = {"post_office", "post_offices"},
    [KIND_DESIGNATION] = {"designation", "designations"},
};

struct import_ctx {
    md_store *st;
    md_audit *audit;
    const md_procedures *procs;
    const char *actor;
    int64_t now_ms;
    FILE *report;
    int imported[KIND__N];
    int refused;
};

/* The outcome of one entry: an action, or a refusal code with its reason. */
struct entry {
    char *id;
    char *municipality; /* for the audit columns; only once validated */
    char *post_office;
    const char *action;
    int code;
    char *why;
};

static void entry_clear(struct entry *e)
{
    g_free(e->id);
    g_free(e->municipality);
    g_free(e->post_office);
    g_free(e->why);
}

G_GNUC_PRINTF(3, 4)
static int refuse(struct entry *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    e->code = code;
    e->why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return 0;
}

/* Plain ASCII ids: they become key parts ("PO-X/2024-04-01"), log fields and URLs. */
static bool valid_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(s[i]) && !strchr("._-", s[i]))
            return false;
    return true;
}

/*
 * Names are shown on the public page and in listings: bounded, and without
 * control or format characters (C0/C1 controls, bidi overrides, zero-width
 * characters) that could make the page say something other than the data.
 */
static bool valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > NAME_MAX_BYTES || !g_utf8_validate(s, (gssize)n, NULL))
        return false;
    for (const char *p = s; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (g_unichar_iscntrl(c) || g_unichar_type(c) == G_UNICODE_FORMAT)
            return false;
    }
    return true;
}

static const char *unknown_key(json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach (obj, key, v) {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i])
            return key;
    }
    return NULL;
}

/* The entry's own id when it is a plain one, else its position in the document. */
static char *entry_id(const char *candidate, enum entry_kind kind, size_t index)
{
    size_t n = candidate ? strlen(candidate) : 0;
    bool plain = n > 0 && n <= 2 * ID_MAX;
    for (size_t i = 0; plain && i < n; i++)
        plain = g_ascii_isalnum(candidate[i]) || strchr("._-/", candidate[i]);
    if (plain)
        return g_strdup(candidate);
    return g_strdup_printf("%s[%zu]", kinds[kind].array, index);
}

/* ---- reading existing rows, to tell "update" from "unchanged" ---- */

struct row_text {
    int n;
    char *col[ROW_COLS_MAX];
};

static int on_row_text(const md_row *row, void *userdata)
{
    struct row_text *t = userdata;
    t->n = MIN(md_row_columns(row), ROW_COLS_MAX);
    for (int i = 0; i < t->n; i++)
        t->col[i] = g_strdup(md_row_text(row, i));
    return 1;
}

static void row_text_clear(struct row_text *t)
{
    for (int i = 0; i < t->n; i++)
        g_free(t->col[i]);
    t->n = 0;
}

/* 1 and the columns when found, 0 when not, negative on store failure. */
static int load_row(md_store *st, const char *sql, const md_param *params, size_t n_params,
                    struct row_text *ret)
{
    int r = md_store_query(st, sql, params, n_params, on_row_text, ret);
    return r < 0 ? r : ret->n > 0;
}

static bool row_equals(const struct row_text *t, const char *const *values, int n)
{
    for (int i = 0; i < n; i++)
        if (g_strcmp0(t->col[i], values[i]) != 0)
            return false;
    return true;
}

static int municipality_exists(struct import_ctx *c, const char *code)
{
    int64_t one;
    return md_store_query_int(c->st, "SELECT 1 FROM municipality WHERE code = ?",
                              MD_PARAMS(MD_P_TEXT(code)), &one);
}

/* ---- municipalities ---- */

static int import_municipality(struct import_ctx *c, json_t *obj, struct entry *e)
{
    static const char *const keys[] = {"code", "name", "prefecture", "security_policy", NULL};
    json_t *policy_obj = json_object_get(obj, "security_policy");
    const char *code = json_string_value(json_object_get(obj, "code"));
    const char *name = json_string_value(json_object_get(obj, "name"));
    const char *prefecture = json_string_value(json_object_get(obj, "prefecture"));
    struct row_text old = {0};
    char *policy_text = NULL;
    char *policy_error = NULL;
    md_policy policy;
    const char *bad;
    int r = 0;

    if ((bad = unknown_key(obj, keys)))
        return refuse(e, -MD_E_SCHEMA, "unknown key \"%s\"", bad);
    if (md_municipality_code_check(code) < 0)
        return refuse(e, -MD_E_MUNICIPALITY_CODE,
                      "\"code\" must be 6 digits with a valid check digit");
    e->municipality = g_strdup(code);
    if (!valid_name(name))
        return refuse(e, -MD_E_SCHEMA, "\"name\" must be a non-empty string of at most %d bytes",
                      NAME_MAX_BYTES);
    if (json_object_get(obj, "prefecture") && !valid_name(prefecture))
        return refuse(e, -MD_E_SCHEMA, "\"prefecture\" must be a non-empty string");

    /* No policy means the defaults; store {} so they keep applying as they evolve. */
    json_t *empty = policy_obj ? NULL : json_object();
    if (!policy_obj && !empty)
        return -ENOMEM;
    r = md_policy_parse(policy_obj ? policy_obj : empty, &policy, &policy_error);
    json_decref(empty);
    if (r == -ENOMEM)
        goto out;
    if (r < 0) {
        r = refuse(e, r, "security_policy.%s", policy_error ? policy_error : "invalid");
        goto out;
    }
    md_policy_clear(&policy);
    policy_text =
        policy_obj ? json_dumps(policy_obj, JSON_COMPACT | JSON_SORT_KEYS) : g_strdup("{}");
    if (!policy_text) {
        r = -ENOMEM;
        goto out;
    }

    r = load_row(c->st, "SELECT name, prefecture, policy FROM municipality WHERE code = ?",
                 MD_PARAMS(MD_P_TEXT(code)), &old);
    if (r < 0)
        goto out;
    const char *now[] = {name, prefecture, policy_text};
    e->action = r == 0 ? "create" : row_equals(&old, now, 3) ? "unchanged" : "update";
    r = 0;
    if (strcmp(e->action, "unchanged") == 0)
        goto out;
    r = md_store_exec(c->st,
                      "INSERT INTO municipality (code, name, prefecture, policy, updated_at)"
                      " VALUES (?, ?, ?, ?, ?) ON CONFLICT (code) DO UPDATE SET"
                      " name = excluded.name, prefecture = excluded.prefecture,"
                      " policy = excluded.policy, updated_at = excluded.updated_at",
                      MD_PARAMS(MD_P_TEXT(code), MD_P_TEXT(name), MD_P_TEXT(prefecture),
                                MD_P_TEXT(policy_text), MD_P_INT(c->now_ms)));
out:
    row_text_clear(&old);
    free(policy_text); /* json_dumps() and g_strdup() both allocate with malloc */
    free(policy_error);
    return r < 0 ? r : 0;
}

/* ---- post offices ---- */

struct office_guard {
    const md_procedures *procs;
    const char *direct_only; /* first direct_only procedure designated, borrowed from procs */
};

static int on_designated_procedure(const md_row *row, void *userdata)
{
    struct office_guard *g = userdata;
    const md_procedure *p = md_procedures_find(g->procs, md_row_text(row, 0));
    if (p && p->direct_only) {
        g->direct_only = p->id;
        return 1;
    }
    return 0;
}

/* An update must not break the designations already standing on the office. */
static int check_office_change(struct import_ctx *c, struct entry *e, const char *id,
                               const char *kind, const char *municipality,
                               const struct row_text *old)
{
    struct office_guard g = {.procs = c->procs};
    int64_t one;
    int r;

    if (g_strcmp0(old->col[2], municipality) != 0) {
        r = md_store_query_int(c->st, "SELECT 1 FROM designation WHERE post_office = ?",
                               MD_PARAMS(MD_P_TEXT(id)), &one);
        if (r != 0)
            return r < 0 ? r
                         : refuse(e, -MD_E_WRONG_MUNICIPALITY,
                                  "%s has designations by municipality %s; it cannot move to %s",
                                  id, old->col[2], municipality);
    }
    if (strcmp(kind, "simplified") == 0 && g_strcmp0(old->col[1], "simplified") != 0) {
        r = md_store_query(
            c->st,
            "SELECT dp.procedure FROM designation d JOIN designation_procedure dp"
            " ON dp.designation = d.id WHERE d.post_office = ? ORDER BY dp.procedure",
            MD_PARAMS(MD_P_TEXT(id)), on_designated_procedure, &g);
        if (r < 0)
            return r;
        if (g.direct_only)
            return refuse(e, -MD_E_SIMPLIFIED_OFFICE,
                          "%s is designated for %s, which a simplified post office may not "
                          "handle (Q&A Q11)",
                          id, g.direct_only);
    }
    return 0;
}

static int import_post_office(struct import_ctx *c, json_t *obj, struct entry *e)
{
    static const char *const keys[] = {"id", "name", "kind", "municipality", NULL};
    const char *id = json_string_value(json_object_get(obj, "id"));
    const char *name = json_string_value(json_object_get(obj, "name"));
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const char *municipality = json_string_value(json_object_get(obj, "municipality"));
    struct row_text old = {0};
    const char *bad;
    int r;

    if ((bad = unknown_key(obj, keys)))
        return refuse(e, -MD_E_SCHEMA, "unknown key \"%s\"", bad);
    if (!valid_id(id))
        return refuse(e, -MD_E_SCHEMA, "\"id\" must be 1-%d characters of A-Z a-z 0-9 . _ -",
                      ID_MAX);
    e->post_office = g_strdup(id);
    if (!valid_name(name))
        return refuse(e, -MD_E_SCHEMA, "\"name\" must be a non-empty string of at most %d bytes",
                      NAME_MAX_BYTES);
    if (!kind || (strcmp(kind, "direct") != 0 && strcmp(kind, "simplified") != 0))
        return refuse(e, -MD_E_SCHEMA, "\"kind\" must be \"direct\" or \"simplified\"");
    if (md_municipality_code_check(municipality) < 0)
        return refuse(e, -MD_E_MUNICIPALITY_CODE, "\"municipality\" is not a valid code");
    r = municipality_exists(c, municipality);
    if (r <= 0)
        return r < 0 ? r
                     : refuse(e, -MD_E_MUNICIPALITY_UNKNOWN, "municipality %s is not registered",
                              municipality);
    e->municipality = g_strdup(municipality);

    r = load_row(c->st, "SELECT name, kind, municipality FROM post_office WHERE id = ?",
                 MD_PARAMS(MD_P_TEXT(id)), &old);
    if (r < 0)
        goto out;
    if (r == 0) {
        e->action = "create";
    } else {
        r = check_office_change(c, e, id, kind, municipality, &old);
        if (r < 0 || e->code < 0)
            goto out;
        const char *now[] = {name, kind, municipality};
        e->action = row_equals(&old, now, 3) ? "unchanged" : "update";
        if (strcmp(e->action, "unchanged") == 0) {
            r = 0;
            goto out;
        }
    }
    r = md_store_exec(c->st,
                      "INSERT INTO post_office (id, name, kind, municipality, updated_at)"
                      " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                      " name = excluded.name, kind = excluded.kind,"
                      " municipality = excluded.municipality, updated_at = excluded.updated_at",
                      MD_PARAMS(MD_P_TEXT(id), MD_P_TEXT(name), MD_P_TEXT(kind),
                                MD_P_TEXT(municipality), MD_P_INT(c->now_ms)));
out:
    row_text_clear(&old);
    return r < 0 ? r : 0;
}

/* ---- designations ---- */

struct designation {
    const char *municipality, *post_office, *from, *until; /* borrowed from the document */
    const char *resolution_date, *resolution_number, *consultation;
    GPtrArray *procedures; /* const md_procedure *, sorted by id */
    char *procedure_list;  /* "a,b,c": compared with the stored set */
    bool needs_council;
};

static int compare_procedure(const void *a, const void *b)
{
    const md_procedure *pa = *(const md_procedure *const *)a;
    const md_procedure *pb = *(const md_procedure *const *)b;
    return strcmp(pa->id, pb->id);
}

/* Procedures: known (procedures.json), no duplicates, sorted for comparison. */
static int parse_procedures(struct import_ctx *c, json_t *list, struct designation *d,
                            struct entry *e)
{
    size_t i;
    json_t *item;

    if (!json_is_array(list) || json_array_size(list) == 0 ||
        json_array_size(list) > md_procedures_count(c->procs))
        return refuse(e, -MD_E_SCHEMA,
                      "\"procedures\" must be a non-empty list of procedure ids without repeats");
    d->procedures = g_ptr_array_new();
    json_array_foreach (list, i, item) {
        const md_procedure *p = md_procedures_find(c->procs, json_string_value(item));
        if (!p)
            return refuse(e, -MD_E_UNKNOWN_PROCEDURE, "\"%s\" is not in procedures.json",
                          json_is_string(item) ? json_string_value(item) : "(not a string)");
        for (guint j = 0; j < d->procedures->len; j++)
            if (d->procedures->pdata[j] == p)
                return refuse(e, -MD_E_SCHEMA, "\"%s\" is listed twice", p->id);
        g_ptr_array_add(d->procedures, (gpointer)p);
        d->needs_council |= p->designation == MD_DESIGNATION_COUNCIL;
    }
    g_ptr_array_sort(d->procedures, compare_procedure);
    GString *joined = g_string_new(NULL);
    for (guint j = 0; j < d->procedures->len; j++) {
        const md_procedure *p = d->procedures->pdata[j];
        g_string_append_printf(joined, "%s%s", j ? "," : "", p->id);
    }
    d->procedure_list = g_string_free(joined, FALSE);
    return 0;
}

/*
 * Act art. 3(2),(3), Q&A Q3/Q4: council procedures need Japan Post consulted
 * first, then the council resolution, both before the designation starts.
 * Contract-only designations may carry the same fields; if given they must
 * make sense too.
 */
static int check_resolution(json_t *obj, struct designation *d, int32_t from, struct entry *e)
{
    json_t *res = json_object_get(obj, "council_resolution");
    json_t *cons = json_object_get(obj, "japan_post_consultation");
    int32_t res_day, cons_day;

    if (!res && !cons && !d->needs_council)
        return 0;
    if ((!res || !cons) && d->needs_council)
        return refuse(e, -MD_E_RESOLUTION_REQUIRED,
                      "a council procedure needs \"council_resolution\" {date, number} and "
                      "\"japan_post_consultation\" (Act art. 3(2),(3); Q&A Q3)");
    if (!res || !cons)
        return refuse(e, -MD_E_RESOLUTION_REQUIRED,
                      "a contract-only designation gives both \"council_resolution\" and "
                      "\"japan_post_consultation\" or neither (Q&A Q4)");
    static const char *const res_keys[] = {"date", "number", NULL};
    d->resolution_date = json_string_value(json_object_get(res, "date"));
    d->resolution_number = json_string_value(json_object_get(res, "number"));
    d->consultation = json_string_value(cons);
    if (!json_is_object(res) || unknown_key(res, res_keys) ||
        md_date_parse(d->resolution_date, &res_day) < 0 || !valid_name(d->resolution_number))
        return refuse(e, -MD_E_RESOLUTION_REQUIRED,
                      "\"council_resolution\" must be {\"date\": \"YYYY-MM-DD\", \"number\": "
                      "\"...\"}");
    if (md_date_parse(d->consultation, &cons_day) < 0)
        return refuse(e, -MD_E_RESOLUTION_REQUIRED,
                      "\"japan_post_consultation\" must be a date \"YYYY-MM-DD\"");
    if (cons_day > res_day || res_day > from)
        return refuse(e, -MD_E_RESOLUTION_REQUIRED,
                      "the Japan Post consultation (%s) must precede the council resolution "
                      "(%s), which must precede the start of the designation (Act art. 3(3))",
                      d->consultation, d->resolution_date);
    return 0;
}

/* Everything a designation must satisfy, in the order the codes are reported. */
static int validate_designation(struct import_ctx *c, json_t *obj, struct designation *d,
                                struct entry *e)
{
    static const char *const keys[] = {"municipality",
                                       "post_office",
                                       "procedures",
                                       "from",
                                       "until",
                                       "council_resolution",
                                       "japan_post_consultation",
                                       NULL};
    struct row_text office = {0};
    int32_t from, until;
    const char *bad;
    int r;

    if ((bad = unknown_key(obj, keys)))
        return refuse(e, -MD_E_SCHEMA, "unknown key \"%s\"", bad);
    if (md_municipality_code_check(d->municipality) < 0)
        return refuse(e, -MD_E_MUNICIPALITY_CODE, "\"municipality\" is not a valid code");
    r = municipality_exists(c, d->municipality);
    if (r <= 0)
        return r < 0 ? r
                     : refuse(e, -MD_E_MUNICIPALITY_UNKNOWN, "municipality %s is not registered",
                              d->municipality);
    e->municipality = g_strdup(d->municipality);

    r = md_store_query(c->st, "SELECT kind, municipality FROM post_office WHERE id = ?",
                       MD_PARAMS(MD_P_TEXT(d->post_office)), on_row_text, &office);
    if (r < 0)
        goto out;
    if (office.n == 0) {
        r = refuse(e, -MD_E_POST_OFFICE_UNKNOWN, "post office %s is not registered",
                   d->post_office);
        goto out;
    }
    e->post_office = g_strdup(d->post_office);
    if (g_strcmp0(office.col[1], d->municipality) != 0) {
        r = refuse(e, -MD_E_WRONG_MUNICIPALITY, "post office %s belongs to municipality %s",
                   d->post_office, office.col[1]);
        goto out;
    }
    r = parse_procedures(c, json_object_get(obj, "procedures"), d, e);
    if (r < 0 || e->code < 0)
        goto out;
    if (md_date_parse(d->from, &from) < 0 || md_date_parse(d->until, &until) < 0 || from > until) {
        r = refuse(e, -MD_E_PERIOD_INVALID,
                   "\"from\" and \"until\" must be dates \"YYYY-MM-DD\" with from <= until");
        goto out;
    }
    /* Q&A Q11; a contract for application_support alone is fine (Q&A Q4). */
    if (g_strcmp0(office.col[0], "direct") != 0) {
        for (guint i = 0; i < d->procedures->len; i++) {
            const md_procedure *p = d->procedures->pdata[i];
            if (p->direct_only) {
                r = refuse(e, -MD_E_SIMPLIFIED_OFFICE,
                           "%s is a simplified post office; %s may be handled only by directly "
                           "operated post offices (Q&A Q11)",
                           d->post_office, p->id);
                goto out;
            }
        }
    }
    r = check_resolution(obj, d, from, e);
out:
    row_text_clear(&office);
    return r < 0 ? r : 0;
}

static int on_procedure_list(const md_row *row, void *userdata)
{
    GString *s = userdata;
    g_string_append_printf(s, "%s%s", s->len ? "," : "", md_row_text(row, 0));
    return 0;
}

/* "create", "update" or "unchanged", comparing the stored row and procedure set. */
static int designation_action(struct import_ctx *c, const char *id, const struct designation *d,
                              const char **ret)
{
    struct row_text old = {0};
    GString *stored = g_string_new(NULL);
    int r = load_row(c->st,
                     "SELECT municipality, post_office, valid_until, resolution_date,"
                     " resolution_number, consultation_date FROM designation WHERE id = ?",
                     MD_PARAMS(MD_P_TEXT(id)), &old);
    if (r <= 0) {
        *ret = "create";
        goto out;
    }
    r = md_store_query(c->st,
                       "SELECT procedure FROM designation_procedure WHERE designation = ?"
                       " ORDER BY procedure",
                       MD_PARAMS(MD_P_TEXT(id)), on_procedure_list, stored);
    if (r < 0)
        goto out;
    const char *now[] = {d->municipality,    d->post_office,       d->until,
                         d->resolution_date, d->resolution_number, d->consultation};
    *ret = row_equals(&old, now, 6) && strcmp(stored->str, d->procedure_list) == 0 ? "unchanged"
                                                                                   : "update";
out:
    g_string_free(stored, TRUE);
    row_text_clear(&old);
    return r < 0 ? r : 0;
}

static int write_designation(struct import_ctx *c, const char *id, const struct designation *d)
{
    int r = md_store_begin(c->st);
    if (r < 0)
        return r;
    r = md_store_exec(c->st,
                      "INSERT INTO designation (id, municipality, post_office, valid_from,"
                      " valid_until, resolution_date, resolution_number, consultation_date,"
                      " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                      " ON CONFLICT (id) DO UPDATE SET municipality = excluded.municipality,"
                      " post_office = excluded.post_office, valid_until = excluded.valid_until,"
                      " resolution_date = excluded.resolution_date,"
                      " resolution_number = excluded.resolution_number,"
                      " consultation_date = excluded.consultation_date,"
                      " updated_at = excluded.updated_at",
                      MD_PARAMS(MD_P_TEXT(id), MD_P_TEXT(d->municipality),
                                MD_P_TEXT(d->post_office), MD_P_TEXT(d->from), MD_P_TEXT(d->until),
                                MD_P_TEXT(d->resolution_date), MD_P_TEXT(d->resolution_number),
                                MD_P_TEXT(d->consultation), MD_P_INT(c->now_ms)));
    if (r < 0)
        goto out;
    /* Re-import replaces the set: a procedure dropped from the document is no longer designated. */
    r = md_store_exec(c->st, "DELETE FROM designation_procedure WHERE designation = ?",
                      MD_PARAMS(MD_P_TEXT(id)));
    for (guint i = 0; r >= 0 && i < d->procedures->len; i++) {
        const md_procedure *p = d->procedures->pdata[i];
        r = md_store_exec(
            c->st, "INSERT INTO designation_procedure (designation, procedure) VALUES (?, ?)",
            MD_PARAMS(MD_P_TEXT(id), MD_P_TEXT(p->id)));
    }
    if (r < 0)
        goto out;
    r = md_store_commit(c->st);
out:
    if (r < 0)
        md_store_rollback(c->st);
    return r;
}

static int import_designation(struct import_ctx *c, json_t *obj, struct entry *e)
{
    struct designation d = {
        .municipality = json_string_value(json_object_get(obj, "municipality")),
        .post_office = json_string_value(json_object_get(obj, "post_office")),
        .from = json_string_value(json_object_get(obj, "from")),
        .until = json_string_value(json_object_get(obj, "until")),
    };
    int r;

    if (!valid_id(d.post_office) || !d.from) {
        r = refuse(e, -MD_E_SCHEMA, "\"post_office\" and \"from\" are required");
        goto out;
    }
    r = validate_designation(c, obj, &d, e);
    if (r < 0 || e->code < 0)
        goto out;
    r = designation_action(c, e->id, &d, &e->action);
    if (r < 0 || strcmp(e->action, "unchanged") == 0)
        goto out;
    r = write_designation(c, e->id, &d);
out:
    if (d.procedures)
        g_ptr_array_free(d.procedures, TRUE);
    g_free(d.procedure_list);
    return r < 0 ? r : 0;
}

/* ---- driver ---- */

static int audit_entry(struct import_ctx *c, enum entry_kind kind, const struct entry *e)
{
    json_t *detail = e->code < 0 ? json_pack("{s:s, s:s, s:s}", "kind", kinds[kind].name, "id",
                                             e->id, "code", md_err_code(e->code))
                                 : json_pack("{s:s, s:s, s:s}", "kind", kinds[kind].name, "id",
                                             e->id, "action", e->action);
    if (!detail)
        return -ENOMEM;
    int64_t seq = md_audit_append_new(c->audit, c->actor,
                                      e->code < 0 ? "registry_refused" : "registry_change",
                                      e->municipality, e->post_office, NULL, detail);
    return seq < 0 ? (int)seq : 0;
}

static int import_one(struct import_ctx *c, enum entry_kind kind, size_t index, json_t *obj)
{
    struct entry e = {0};
    int r;

    if (!json_is_object(obj)) {
        e.id = entry_id(NULL, kind, index);
        r = refuse(&e, -MD_E_SCHEMA, "entry must be an object");
    } else if (kind == KIND_MUNICIPALITY) {
        e.id = entry_id(json_string_value(json_object_get(obj, "code")), kind, index);
        r = import_municipality(c, obj, &e);
    } else if (kind == KIND_POST_OFFICE) {
        e.id = entry_id(json_string_value(json_object_get(obj, "id")), kind, index);
        r = import_post_office(c, obj, &e);
    } else {
        const char *po = json_string_value(json_object_get(obj, "post_office"));
        const char *from = json_string_value(json_object_get(obj, "from"));
        char *key = po && from ? g_strdup_printf("%s/%s", po, from) : NULL;
        e.id = entry_id(key, kind, index);
        g_free(key);
        r = import_designation(c, obj, &e);
    }
    if (r < 0)
        goto out;

    if (e.code < 0) {
        c->refused++;
        if (c->report)
            fprintf(c->report, "refused %s %s: %s: %s\n", kinds[kind].name, e.id,
                    md_err_code(e.code), e.why);
    } else {
        c->imported[kind]++;
    }
    r = audit_entry(c, kind, &e);
out:
    entry_clear(&e);
    return r;
}

/* The document as a whole: an object with known keys, each list an array. */
static int check_document(json_t *doc)
{
    static const char *const keys[] = {"about",        "notes",        "municipalities",
                                       "post_offices", "designations", NULL};
    if (!json_is_object(doc) || unknown_key(doc, keys))
        return -MD_E_SCHEMA;
    for (int k = 0; k < KIND__N; k++) {
        json_t *list = json_object_get(doc, kinds[k].array);
        if (list && !json_is_array(list))
            return -MD_E_SCHEMA;
    }
    return 0;
}

int md_registry_import(md_store *st, md_audit *audit, const md_procedures *procs, json_t *doc,
                       const char *actor, int64_t now_ms, FILE *report)
{
    struct import_ctx c = {
        .st = st,
        .audit = audit,
        .procs = procs,
        .actor = actor ? actor : "operator",
        .now_ms = now_ms,
        .report = report,
    };
    int r;

    if (!st || !audit || !procs)
        return -EINVAL;
    r = check_document(doc);
    if (r < 0) {
        if (report)
            fprintf(report,
                    "registry document refused: %s: expected an object with "
                    "municipalities, post_offices and designations lists\n",
                    md_err_code(r));
        return r;
    }
    /* Order matters: post offices name municipalities, designations name both. */
    for (int k = 0; k < KIND__N; k++) {
        json_t *list = json_object_get(doc, kinds[k].array);
        size_t i;
        json_t *item;
        json_array_foreach (list, i, item) {
            r = import_one(&c, (enum entry_kind)k, i, item);
            if (r < 0)
                return r;
        }
    }
    if (report)
        fprintf(report,
                "imported %d municipalities, %d post offices, %d designations; "
                "refused %d\n",
                c.imported[KIND_MUNICIPALITY], c.imported[KIND_POST_OFFICE],
                c.imported[KIND_DESIGNATION], c.refused);
    return c.refused;
}
