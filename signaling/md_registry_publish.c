/*
 * Reading the registry out: the public list of designations (Act art. 3(4):
 * a municipality makes known which post offices it designated, their names,
 * the procedures and the period) as JSON and as a self-contained Japanese
 * HTML page, and the operators' text listing.
 *
 * All three start from one snapshot of the tables (load_model), so the page
 * and the JSON cannot disagree.  The public outputs are built from an
 * explicit list of fields: post offices, procedures, periods and council
 * resolution references only; no device, staff or session data ever reaches
 * them.  Every string from the store goes through html_escape() on the page,
 * since names come from imported documents.  Runs on the store's thread.
 */
#include "md_err.h"
#include "md_registry.h"
#include "md_time.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

#define ACT_NAME "地方公共団体の特定の事務の郵便局における取扱いに関する法律"

/* ---- the snapshot ---- */

struct model {
    json_t *municipalities; /* {code, name, prefecture, policy} by code */
    json_t *offices;        /* {id, name, kind, municipality} by id */
    json_t *designations;   /* {id, municipality, post_office, from, until, resolution_date,
                               resolution_number, consultation_date, procedures[]} */
    json_t *devices;        /* {id, post_office, status, cert_serial}: operators only */
    json_t *enabled;        /* {procedure, enabled_at, enabled_by} */
};

static void model_clear(struct model *m)
{
    json_decref(m->municipalities);
    json_decref(m->offices);
    json_decref(m->designations);
    json_decref(m->devices);
    json_decref(m->enabled);
}

/* Column names for a row; a leading '#' reads the column as an integer. */
struct table_load {
    json_t *array;
    const char *const *cols;
};

static int on_table_row(const md_row *row, void *userdata)
{
    struct table_load *t = userdata;
    json_t *obj = json_object();
    for (int i = 0; obj && t->cols[i]; i++) {
        const char *name = t->cols[i];
        json_t *v;
        if (md_row_is_null(row, i))
            v = json_null();
        else if (name[0] == '#')
            v = json_integer(md_row_int(row, i));
        else
            v = json_string(md_row_text(row, i));
        if (json_object_set_new(obj, name + (name[0] == '#'), v) < 0) {
            json_decref(obj);
            obj = NULL;
        }
    }
    return obj && json_array_append_new(t->array, obj) == 0 ? 0 : -ENOMEM;
}

static int load_table(md_store *st, const char *sql, const char *const *cols, json_t **ret)
{
    struct table_load t = {.array = json_array(), .cols = cols};
    if (!t.array)
        return -ENOMEM;
    int r = md_store_query(st, sql, MD_NO_PARAMS, on_table_row, &t);
    if (r < 0) {
        json_decref(t.array);
        return r;
    }
    *ret = t.array;
    return 0;
}

/* Hangs each designation's procedure ids under it. */
static int attach_procedures(md_store *st, json_t *designations)
{
    static const char *const cols[] = {"designation", "procedure", NULL};
    GHashTable *by_id = g_hash_table_new(g_str_hash, g_str_equal);
    json_t *rows = NULL;
    size_t i;
    json_t *d;
    int r;

    json_array_foreach (designations, i, d) {
        json_object_set_new(d, "procedures", json_array());
        g_hash_table_insert(by_id, (gpointer)json_string_value(json_object_get(d, "id")), d);
    }
    r = load_table(st,
                   "SELECT designation, procedure FROM designation_procedure"
                   " ORDER BY designation, procedure",
                   cols, &rows);
    if (r < 0)
        goto out;
    json_array_foreach (rows, i, d) {
        json_t *owner =
            g_hash_table_lookup(by_id, json_string_value(json_object_get(d, "designation")));
        json_t *list = owner ? json_object_get(owner, "procedures") : NULL;
        if (list && json_array_append(list, json_object_get(d, "procedure")) < 0) {
            r = -ENOMEM;
            goto out;
        }
    }
out:
    json_decref(rows);
    g_hash_table_destroy(by_id);
    return r;
}

static int load_model(md_store *st, bool with_devices, struct model *ret)
{
    static const char *const m_cols[] = {"code", "name", "prefecture", "policy", NULL};
    static const char *const o_cols[] = {"id", "name", "kind", "municipality", NULL};
    static const char *const d_cols[] = {
        "id",    "municipality",    "post_office",       "from",
        "until", "resolution_date", "resolution_number", "consultation_date",
        NULL};
    static const char *const v_cols[] = {"id", "post_office", "status", "cert_serial", NULL};
    static const char *const e_cols[] = {"procedure", "#enabled_at", "enabled_by", NULL};
    struct model m = {0};
    int r;

    r = load_table(st, "SELECT code, name, prefecture, policy FROM municipality ORDER BY code",
                   m_cols, &m.municipalities);
    if (r >= 0)
        r = load_table(st, "SELECT id, name, kind, municipality FROM post_office ORDER BY id",
                       o_cols, &m.offices);
    if (r >= 0)
        r = load_table(st,
                       "SELECT id, municipality, post_office, valid_from, valid_until,"
                       " resolution_date, resolution_number, consultation_date"
                       " FROM designation ORDER BY post_office, valid_from",
                       d_cols, &m.designations);
    if (r >= 0)
        r = attach_procedures(st, m.designations);
    if (r >= 0)
        r = load_table(st,
                       "SELECT procedure, enabled_at, enabled_by FROM procedure_enabled"
                       " ORDER BY procedure",
                       e_cols, &m.enabled);
    if (r >= 0 && with_devices)
        r = load_table(st, "SELECT id, post_office, status, cert_serial FROM device ORDER BY id",
                       v_cols, &m.devices);
    if (r < 0) {
        model_clear(&m);
        return r;
    }
    *ret = m;
    return 0;
}

static const char *str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static json_t *find_by(json_t *array, const char *key, const char *value)
{
    size_t i;
    json_t *o;
    json_array_foreach (array, i, o) {
        if (g_strcmp0(str(o, key), value) == 0)
            return o;
    }
    return NULL;
}

static bool procedure_enabled(const struct model *m, const char *id)
{
    return find_by(m->enabled, "procedure", id) != NULL;
}

/* "in_force", "not_yet" or "expired" for JST day today; NULL if the row is corrupt. */
static const char *period_status(json_t *d, int32_t today)
{
    int32_t from, until;
    if (md_date_parse(str(d, "from"), &from) < 0 || md_date_parse(str(d, "until"), &until) < 0)
        return NULL;
    return today < from ? "not_yet" : today > until ? "expired" : "in_force";
}

/* ---- public JSON ---- */

/* Procedures in the order of procedures.json (the order of Act art. 2), unknown ids last. */
static json_t *public_procedures(const struct model *m, const md_procedures *procs, json_t *ids)
{
    json_t *out = json_array();
    size_t i;
    json_t *id;

    for (size_t k = 0; out && k < md_procedures_count(procs); k++) {
        const md_procedure *p = md_procedures_at(procs, k);
        json_array_foreach (ids, i, id) {
            if (g_strcmp0(json_string_value(id), p->id) != 0)
                continue;
            bool available = p->available == MD_AVAILABLE_NOW || procedure_enabled(m, p->id);
            json_array_append_new(out, json_pack("{s:s, s:s, s:b}", "id", p->id, "ja", p->ja,
                                                 "available", available));
        }
    }
    /* A procedure dropped from procedures.json since import: still shown, never available. */
    json_array_foreach (ids, i, id) {
        if (out && !md_procedures_find(procs, json_string_value(id)))
            json_array_append_new(out,
                                  json_pack("{s:O, s:n, s:b}", "id", id, "ja", "available", 0));
    }
    return out;
}

static json_t *public_designation(const struct model *m, const md_procedures *procs, json_t *d,
                                  int32_t today)
{
    const char *status = period_status(d, today);
    json_t *office = find_by(m->offices, "id", str(d, "post_office"));
    json_t *resolution = json_null();
    if (!status || !office)
        return NULL;
    if (str(d, "resolution_date"))
        resolution = json_pack("{s:s, s:s?}", "date", str(d, "resolution_date"), "number",
                               str(d, "resolution_number"));
    return json_pack(
        "{s:s, s:{s:s, s:s}, s:o, s:s, s:s, s:s, s:o, s:s?, s:s, s:b}", "id", str(d, "id"),
        "post_office", "id", str(office, "id"), "name", str(office, "name"), "procedures",
        public_procedures(m, procs, json_object_get(d, "procedures")), "from", str(d, "from"),
        "until", str(d, "until"), "basis", str(d, "resolution_date") ? "council" : "contract",
        "council_resolution", resolution, "japan_post_consultation", str(d, "consultation_date"),
        "status", status, "in_force", strcmp(status, "in_force") == 0);
}

static json_t *public_municipality(const struct model *m, const md_procedures *procs, json_t *mun,
                                   int32_t today)
{
    json_t *list = json_array();
    size_t i;
    json_t *d;
    json_array_foreach (m->designations, i, d) {
        if (!list || g_strcmp0(str(d, "municipality"), str(mun, "code")) != 0)
            continue;
        json_t *pd = public_designation(m, procs, d, today);
        if (!pd || json_array_append_new(list, pd) < 0) {
            json_decref(list);
            list = NULL;
        }
    }
    return json_pack("{s:s, s:s, s:s?, s:o}", "code", str(mun, "code"), "name", str(mun, "name"),
                     "prefecture", str(mun, "prefecture"), "designations", list);
}

int md_registry_designations_json(md_store *st, const md_procedures *procs,
                                  const char *municipality, int32_t today, json_t **ret)
{
    struct model m = {0};
    json_t *list = NULL;
    char day[11];
    int r;

    if (!st || !procs || !ret)
        return -EINVAL;
    r = load_model(st, false, &m);
    if (r < 0)
        return r;
    list = json_array();
    size_t i;
    json_t *mun;
    json_array_foreach (m.municipalities, i, mun) {
        if (municipality && strcmp(municipality, str(mun, "code")) != 0)
            continue;
        json_t *pm = public_municipality(&m, procs, mun, today);
        if (!pm || json_array_append_new(list, pm) < 0) {
            r = -ENOMEM;
            goto out;
        }
    }
    if (municipality && json_array_size(list) == 0) {
        r = -MD_E_MUNICIPALITY_UNKNOWN;
        goto out;
    }
    md_date_format(today, day, sizeof(day));
    json_t *doc = json_pack("{s:s, s:s, s:O}", "legal_basis", ACT_NAME " 第3条第4項", "as_of", day,
                            "municipalities", list);
    if (!doc) {
        r = -ENOMEM;
        goto out;
    }
    *ret = doc;
    r = 0;
out:
    json_decref(list);
    model_clear(&m);
    return r;
}

/* ---- public HTML ---- */

static void html_escape(GString *out, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            g_string_append(out, "&amp;");
            break;
        case '<':
            g_string_append(out, "&lt;");
            break;
        case '>':
            g_string_append(out, "&gt;");
            break;
        case '"':
            g_string_append(out, "&quot;");
            break;
        case '\'':
            g_string_append(out, "&#39;");
            break;
        default:
            g_string_append_c(out, *s);
        }
    }
}

/* "2019-07-29" -> "2019年7月29日"; the date was validated before it was stored. */
static void html_date(GString *out, const char *iso)
{
    int32_t days;
    if (md_date_parse(iso, &days) < 0) {
        html_escape(out, iso);
        return;
    }
    unsigned y = (unsigned)(iso[0] - '0') * 1000 + (unsigned)(iso[1] - '0') * 100 +
                 (unsigned)(iso[2] - '0') * 10 + (unsigned)(iso[3] - '0');
    unsigned mo = (unsigned)(iso[5] - '0') * 10 + (unsigned)(iso[6] - '0');
    unsigned d = (unsigned)(iso[8] - '0') * 10 + (unsigned)(iso[9] - '0');
    g_string_append_printf(out, "%u年%u月%u日", y, mo, d);
}

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"ja\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
    "style-src 'self'\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>郵便局において取り扱う事務の指定状況</title>\n"
    "<link rel=\"stylesheet\" href=\"/designations.css\">\n"
    "</head>\n<body>\n<h1>郵便局において取り扱う事務の指定状況</h1>\n<p>" ACT_NAME
    "第3条第4項に基づき、市町村が指定した郵便局の名称、郵便局において取り扱う事務及び"
    "取扱期間をお知らせします。</p>\n";

static void html_designation(GString *h, json_t *d)
{
    const char *status = str(d, "status");
    size_t i;
    json_t *p;

    g_string_append_printf(h, "<tr%s><td>",
                           strcmp(status, "in_force") == 0 ? "" : " class=\"ended\"");
    html_escape(h, str(json_object_get(d, "post_office"), "name"));
    g_string_append(h, "</td><td><ul>");
    json_array_foreach (json_object_get(d, "procedures"), i, p) {
        g_string_append(h, "<li>");
        html_escape(h, str(p, "ja") ? str(p, "ja") : str(p, "id"));
        if (!json_is_true(json_object_get(p, "available")))
            g_string_append(h, "（統合端末の改修後に開始）");
        g_string_append(h, "</li>");
    }
    g_string_append(h, "</ul></td><td>");
    html_date(h, str(d, "from"));
    g_string_append(h, "から<br>");
    html_date(h, str(d, "until"));
    g_string_append(h, "まで</td><td>");
    json_t *res = json_object_get(d, "council_resolution");
    if (json_is_object(res)) {
        g_string_append(h, "議会の議決 ");
        html_date(h, str(res, "date"));
        g_string_append(h, "（");
        html_escape(h, str(res, "number"));
        g_string_append(h, "）");
        if (str(d, "japan_post_consultation")) {
            g_string_append(h, "<br>日本郵便株式会社との協議 ");
            html_date(h, str(d, "japan_post_consultation"));
        }
    } else {
        g_string_append(h, "委託契約による（議会の議決を要しない事務）");
    }
    g_string_append_printf(h, "</td><td>%s</td></tr>\n",
                           strcmp(status, "in_force") == 0  ? "取扱中"
                           : strcmp(status, "not_yet") == 0 ? "取扱開始前"
                                                            : "取扱期間終了");
}

static void html_municipality(GString *h, json_t *mun)
{
    json_t *list = json_object_get(mun, "designations");
    size_t i;
    json_t *d;

    g_string_append(h, "<section>\n<h2>");
    if (str(mun, "prefecture")) {
        html_escape(h, str(mun, "prefecture"));
        g_string_append_c(h, ' ');
    }
    html_escape(h, str(mun, "name"));
    g_string_append(h, "（団体コード ");
    html_escape(h, str(mun, "code"));
    g_string_append(h, "）</h2>\n");
    if (json_array_size(list) == 0) {
        g_string_append(h, "<p>指定している郵便局はありません。</p>\n</section>\n");
        return;
    }
    g_string_append(h, "<table>\n<thead><tr><th>郵便局</th><th>取り扱う事務</th>"
                       "<th>取扱期間</th><th>議会の議決・協議</th><th>状況</th></tr></thead>\n"
                       "<tbody>\n");
    json_array_foreach (list, i, d) {
        html_designation(h, d);
    }
    g_string_append(h, "</tbody>\n</table>\n</section>\n");
}

int md_registry_designations_html(md_store *st, const md_procedures *procs, int32_t today,
                                  char **ret_html)
{
    json_t *doc = NULL;
    size_t i;
    json_t *mun;

    if (!ret_html)
        return -EINVAL;
    int r = md_registry_designations_json(st, procs, NULL, today, &doc);
    if (r < 0)
        return r;
    GString *h = g_string_new(page_head);
    g_string_append(h, "<p>");
    html_date(h, str(doc, "as_of"));
    g_string_append(h, "現在</p>\n");
    json_array_foreach (json_object_get(doc, "municipalities"), i, mun) {
        html_municipality(h, mun);
    }
    g_string_append(h, "</body>\n</html>\n");
    json_decref(doc);
    /* g_malloc is malloc since GLib 2.46: the caller may free() this. */
    *ret_html = g_string_free(h, FALSE);
    return 0;
}

/* ---- operators' listing ---- */

static void print_office(FILE *out, const struct model *m, json_t *office, int32_t today)
{
    size_t i;
    json_t *o;

    fprintf(out, "  post office %s %s [%s]\n", str(office, "id"), str(office, "name"),
            str(office, "kind"));
    json_array_foreach (m->designations, i, o) {
        if (g_strcmp0(str(o, "post_office"), str(office, "id")) != 0)
            continue;
        const char *status = period_status(o, today);
        fprintf(out, "    designation %s: %s .. %s (%s)\n", str(o, "id"), str(o, "from"),
                str(o, "until"), status ? status : "corrupt dates");
        if (str(o, "resolution_date"))
            fprintf(out, "      council resolution %s %s; Japan Post consulted %s\n",
                    str(o, "resolution_date"), str(o, "resolution_number"),
                    str(o, "consultation_date") ? str(o, "consultation_date") : "-");
        else
            fprintf(out, "      by contract (no council resolution)\n");
        size_t k;
        json_t *p;
        json_array_foreach (json_object_get(o, "procedures"), k, p)
            fprintf(out, "      - %s\n", json_string_value(p));
    }
    json_array_foreach (m->devices, i, o) {
        if (g_strcmp0(str(o, "post_office"), str(office, "id")) != 0)
            continue;
        fprintf(out, "    device %s %s", str(o, "id"), str(o, "status"));
        if (str(o, "cert_serial"))
            fprintf(out, " serial %s", str(o, "cert_serial"));
        fputc('\n', out);
    }
}

int md_registry_print(md_store *st, const md_procedures *procs, FILE *out)
{
    struct model m = {0};
    /* An operator's listing: "today" is the wall clock's day in Japan. */
    int32_t today = md_date_jst(md_now_ms());
    size_t i, j;
    json_t *mun, *office;

    if (!st || !procs || !out)
        return -EINVAL;
    int r = load_model(st, true, &m);
    if (r < 0)
        return r;
    json_array_foreach (m.municipalities, i, mun) {
        fprintf(out, "municipality %s %s%s%s%s\n  policy %s\n", str(mun, "code"), str(mun, "name"),
                str(mun, "prefecture") ? " (" : "",
                str(mun, "prefecture") ? str(mun, "prefecture") : "",
                str(mun, "prefecture") ? ")" : "", str(mun, "policy"));
        json_array_foreach (m.offices, j, office) {
            if (g_strcmp0(str(office, "municipality"), str(mun, "code")) == 0)
                print_office(out, &m, office, today);
        }
    }
    fprintf(out, "procedures awaiting the terminal upgrade (Q&A Q2):\n");
    for (size_t k = 0; k < md_procedures_count(procs); k++) {
        const md_procedure *p = md_procedures_at(procs, k);
        if (p->available != MD_AVAILABLE_AFTER_UPGRADE)
            continue;
        json_t *e = find_by(m.enabled, "procedure", p->id);
        char when[32];
        if (!e) {
            fprintf(out, "  %s: not enabled\n", p->id);
            continue;
        }
        md_time_format_iso(json_integer_value(json_object_get(e, "enabled_at")), when,
                           sizeof(when));
        fprintf(out, "  %s: enabled %s by %s\n", p->id, when, str(e, "enabled_by"));
    }
    model_clear(&m);
    return ferror(out) ? -EIO : 0;
}
