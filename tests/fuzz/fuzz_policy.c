/* libFuzzer entry: a municipality's security policy object (md_policy_parse),
 * which arrives in registry import files. */
#include "md_registry.h"

#include <glib.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)data, size, 0, &jerr);
    if (!doc)
        return 0;
    md_policy p;
    char *err = NULL;
    if (md_policy_parse(doc, &p, &err) == 0)
        md_policy_clear(&p);
    g_free(err);
    json_decref(doc);
    return 0;
}
