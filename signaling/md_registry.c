/*
 * The registry's legal rules at run time: the municipality code check digit,
 * the admission check a tablet's request goes through before it is queued,
 * a municipality's security policy, and the operator switch for procedures
 * that wait for the integrated-terminal upgrade (Q&A Q2).
 *
 * md_registry_check_request() reads the store fresh on every call rather
 * than caching, so a device disabled or a designation replaced by an import
 * takes effect on the next request.  Everything here runs on the thread
 * that owns the store.  Import lives in md_registry_import.c, the listings
 * in md_registry_publish.c, devices in md_device.c.
 */
#include "md_err.h"
#include "md_registry.h"
#include "md_time.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

/* Local government code (全国地方公共団体コード): 5 digits + check digit. */
int md_municipality_code_check(const char *code)
{
    static const int weights[5] = {6, 5, 4, 3, 2};
    int sum = 0;

    if (!code || strlen(code) != 6)
        return -MD_E_MUNICIPALITY_CODE;
    for (int i = 0; i < 6; i++)
        if (!g_ascii_isdigit(code[i]))
            return -MD_E_MUNICIPALITY_CODE;
    for (int i = 0; i < 5; i++)
        sum += (code[i] - '0') * weights[i];
    return (11 - sum % 11) % 10 == code[5] - '0' ? 0 : -MD_E_MUNICIPALITY_CODE;
}

void md_request_scope_clear(md_request_scope *s)
{
    if (!s)
        return;
    g_free(s->device_id);
    g_free(s->post_office);
    g_free(s->municipality);
    md_policy_clear(&s->policy);
    *s = (md_request_scope){0};
}

int md_registry_policy(md_store *st, const char *municipality, md_policy *ret)
{
    char *text = NULL;
    json_t *obj = NULL;
    int r;

    if (!st || !municipality || !ret)
        return -EINVAL;
    r = md_store_query_text(st, "SELECT policy FROM municipality WHERE code = ?",
                            MD_PARAMS(MD_P_TEXT(municipality)), &text);
    if (r <= 0) {
        r = r < 0 ? r : -MD_E_MUNICIPALITY_UNKNOWN;
        goto out;
    }
    /* Import validated it; failing here means the row was edited by hand. */
    obj = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
    r = obj ? md_policy_parse(obj, ret, NULL) : -MD_E_CONFIG;
out:
    json_decref(obj);
    free(text);
    return r;
}

/* ---- admission check ---- */

struct office_row {
    bool found;
    bool simplified;
    char *municipality;
};

static int on_office(const md_row *row, void *userdata)
{
    struct office_row *o = userdata;
    const char *kind = md_row_text(row, 0);
    o->found = true;
    o->simplified = !kind || strcmp(kind, "direct") != 0; /* unknown kind: the stricter rule */
    o->municipality = g_strdup(md_row_text(row, 1));
    return 1;
}

struct period_scan {
    int32_t today;
    bool in_force, not_yet, expired;
};

static int on_designation_period(const md_row *row, void *userdata)
{
    struct period_scan *s = userdata;
    int32_t from, until;
    if (md_date_parse(md_row_text(row, 0), &from) < 0 ||
        md_date_parse(md_row_text(row, 1), &until) < 0)
        return -MD_E_STORE;
    /* Both ends inclusive, as JST calendar days (md_time.h). */
    if (s->today < from)
        s->not_yet = true;
    else if (s->today > until)
        s->expired = true;
    else
        s->in_force = true;
    return 0;
}

/* NOT_DESIGNATED, NOT_YET, EXPIRED or 0 for procedure at office on today. */
static int check_designation(md_store *st, const char *office, const char *municipality,
                             const char *procedure, int32_t today)
{
    struct period_scan scan = {.today = today};
    int r =
        md_store_query(st,
                       "SELECT d.valid_from, d.valid_until FROM designation d"
                       " JOIN designation_procedure dp ON dp.designation = d.id"
                       " WHERE d.post_office = ? AND d.municipality = ? AND dp.procedure = ?",
                       MD_PARAMS(MD_P_TEXT(office), MD_P_TEXT(municipality), MD_P_TEXT(procedure)),
                       on_designation_period, &scan);
    if (r < 0)
        return r;
    if (scan.in_force)
        return 0;
    /* A renewal already decided says more to the clerk than the old period's end. */
    if (scan.not_yet)
        return -MD_E_DESIGNATION_NOT_YET;
    if (scan.expired)
        return -MD_E_DESIGNATION_EXPIRED;
    return -MD_E_NOT_DESIGNATED;
}

static int check_available(md_store *st, const md_procedure *proc)
{
    int64_t one;
    if (proc->available == MD_AVAILABLE_NOW)
        return 0;
    int r = md_store_query_int(st, "SELECT 1 FROM procedure_enabled WHERE procedure = ?",
                               MD_PARAMS(MD_P_TEXT(proc->id)), &one);
    if (r < 0)
        return r;
    return r == 1 ? 0 : -MD_E_AWAITING_UPGRADE;
}

static int device_status_error(enum md_device_status status)
{
    switch (status) {
    case MD_DEVICE_ACTIVE:
        return 0;
    case MD_DEVICE_DISABLED:
        return -MD_E_DEVICE_DISABLED;
    case MD_DEVICE_REVOKED:
        return -MD_E_DEVICE_REVOKED;
    }
    return -MD_E_DEVICE_DISABLED;
}

int md_registry_check_request(md_store *st, const md_procedures *procs, const char *device_id,
                              const char *procedure, int64_t now_ms, md_request_scope *ret)
{
    md_device device = {0};
    struct office_row office = {0};
    md_policy policy = {0};
    int r;

    if (!st || !procs || !device_id || !procedure || !ret)
        return -EINVAL;

    /* The order below is the documented one (md_registry.h): each step's
     * code tells the clerk what to fix, so the cheaper, more basic fault wins. */
    const md_procedure *proc = md_procedures_find(procs, procedure);
    if (!proc)
        return -MD_E_UNKNOWN_PROCEDURE;

    r = md_device_lookup(st, device_id, &device);
    if (r < 0)
        goto out;
    r = device_status_error(device.status);
    if (r < 0)
        goto out;

    r = md_store_query(st, "SELECT kind, municipality FROM post_office WHERE id = ?",
                       MD_PARAMS(MD_P_TEXT(device.post_office)), on_office, &office);
    if (r < 0)
        goto out;
    if (!office.found || !office.municipality) {
        r = -MD_E_POST_OFFICE_UNKNOWN;
        goto out;
    }
    r = md_registry_policy(st, office.municipality, &policy);
    if (r < 0)
        goto out;

    /* Q&A Q11: only directly operated offices take art. 2 procedures. */
    if (office.simplified && proc->direct_only) {
        r = -MD_E_SIMPLIFIED_OFFICE;
        goto out;
    }
    r = check_designation(st, device.post_office, office.municipality, proc->id,
                          md_date_jst(now_ms));
    if (r < 0)
        goto out;
    r = check_available(st, proc);
    if (r < 0)
        goto out;

    *ret = (md_request_scope){
        .device_id = g_strdup(device.id),
        .post_office = g_strdup(device.post_office),
        .municipality = g_strdup(office.municipality),
        .policy = policy,
    };
    policy = (md_policy){0};
    r = 0;
out:
    md_policy_clear(&policy);
    g_free(office.municipality);
    md_device_clear(&device);
    return r;
}

/* ---- operator switch (Q&A Q2) ---- */

int md_registry_enable_procedure(md_store *st, md_audit *audit, const md_procedures *procs,
                                 const char *procedure, const char *actor, int64_t now_ms)
{
    if (!st || !audit || !procs || !procedure)
        return -EINVAL;
    const md_procedure *proc = md_procedures_find(procs, procedure);
    if (!proc)
        return -MD_E_UNKNOWN_PROCEDURE;
    /* Only the Q2 procedures have a switch; the others are always available. */
    if (proc->available != MD_AVAILABLE_AFTER_UPGRADE)
        return -EINVAL;

    actor = actor ? actor : "operator";
    int r = md_store_exec(st,
                          "INSERT INTO procedure_enabled (procedure, enabled_at, enabled_by)"
                          " VALUES (?, ?, ?) ON CONFLICT (procedure) DO NOTHING",
                          MD_PARAMS(MD_P_TEXT(proc->id), MD_P_INT(now_ms), MD_P_TEXT(actor)));
    if (r <= 0)
        return r; /* 0: already enabled, nothing changed, nothing to audit */

    json_t *detail = json_pack("{s:s, s:s}", "procedure", proc->id, "action", "enabled");
    if (!detail)
        return -ENOMEM;
    int64_t seq = md_audit_append_new(audit, actor, "procedure_enabled", NULL, NULL, NULL, detail);
    return seq < 0 ? (int)seq : 1;
}
