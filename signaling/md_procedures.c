/*
 * The procedure list (data/procedures.json): what a post office may handle,
 * with its Japanese name, legal basis, the kind of designation it needs
 * (council resolution or plain contract), whether simplified offices are
 * excluded, and whether it waits for the integrated-terminal upgrade.
 *
 * The list is loaded once at start-up and is immutable afterwards, so a
 * loaded md_procedures may be read from any thread.  Every field is
 * validated at load: a typo in the legal table must stop the gateway rather
 * than silently admit or refuse sessions.
 */
#include "md_err.h"
#include "md_registry.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

/* Ids become designation_procedure rows and protocol values; keep them short. */
#define PROCEDURE_ID_MAX 64

struct md_procedures {
    md_procedure *items;
    size_t n;
};

static void procedure_clear(md_procedure *p)
{
    g_free(p->id);
    g_free(p->ja);
    g_free(p->en);
    g_free(p->law);
}

static bool valid_procedure_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PROCEDURE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_islower(s[i]) && !g_ascii_isdigit(s[i]) && s[i] != '.' && s[i] != '_')
            return false;
    return true;
}

static const char *nonempty_string(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && *s ? s : NULL;
}

static int parse_procedure(json_t *obj, md_procedure *ret)
{
    const char *id = nonempty_string(obj, "id");
    const char *ja = nonempty_string(obj, "ja");
    const char *en = nonempty_string(obj, "en");
    const char *law = nonempty_string(obj, "law");
    const char *designation = nonempty_string(obj, "designation");
    const char *available = nonempty_string(obj, "available");
    json_t *direct_only = json_object_get(obj, "direct_only");

    if (!id || !valid_procedure_id(id) || !ja || !en || !law || !designation || !available ||
        !json_is_boolean(direct_only))
        return -MD_E_CONFIG;

    md_procedure p = {.direct_only = json_is_true(direct_only)};
    if (strcmp(designation, "council") == 0)
        p.designation = MD_DESIGNATION_COUNCIL;
    else if (strcmp(designation, "contract") == 0)
        p.designation = MD_DESIGNATION_CONTRACT;
    else
        return -MD_E_CONFIG;
    if (strcmp(available, "now") == 0)
        p.available = MD_AVAILABLE_NOW;
    else if (strcmp(available, "after_terminal_upgrade") == 0)
        p.available = MD_AVAILABLE_AFTER_UPGRADE;
    else
        return -MD_E_CONFIG;

    p.id = g_strdup(id);
    p.ja = g_strdup(ja);
    p.en = g_strdup(en);
    p.law = g_strdup(law);
    *ret = p;
    return 0;
}

int md_procedures_load(const char *path, md_procedures **ret)
{
    json_error_t jerr;
    md_procedures *procs = NULL;
    json_t *doc = NULL;
    int r;

    if (!path || !ret)
        return -EINVAL;
    doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        r = json_error_code(&jerr) == json_error_cannot_open_file ? -ENOENT : -MD_E_CONFIG;
        goto out;
    }
    json_t *list = json_object_get(doc, "procedures");
    if (!json_is_array(list) || json_array_size(list) == 0) {
        r = -MD_E_CONFIG;
        goto out;
    }

    procs = g_new0(md_procedures, 1);
    procs->items = g_new0(md_procedure, json_array_size(list));
    size_t i;
    json_t *item;
    json_array_foreach (list, i, item) {
        r = parse_procedure(item, &procs->items[procs->n]);
        if (r < 0)
            goto out;
        procs->n++;
        /* A duplicate id would make the lookup depend on file order. */
        for (size_t j = 0; j + 1 < procs->n; j++)
            if (strcmp(procs->items[j].id, procs->items[procs->n - 1].id) == 0) {
                r = -MD_E_CONFIG;
                goto out;
            }
    }
    *ret = procs;
    procs = NULL;
    r = 0;
out:
    md_procedures_free(procs);
    json_decref(doc);
    return r;
}

md_procedures *md_procedures_free(md_procedures *p)
{
    if (!p)
        return NULL;
    for (size_t i = 0; i < p->n; i++)
        procedure_clear(&p->items[i]);
    g_free(p->items);
    g_free(p);
    return NULL;
}

const md_procedure *md_procedures_find(const md_procedures *p, const char *id)
{
    if (!p || !id)
        return NULL;
    /* Fifteen entries: a linear scan beats a hash table here. */
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->items[i].id, id) == 0)
            return &p->items[i];
    return NULL;
}

size_t md_procedures_count(const md_procedures *p)
{
    return p ? p->n : 0;
}

const md_procedure *md_procedures_at(const md_procedures *p, size_t i)
{
    return p && i < p->n ? &p->items[i] : NULL;
}
