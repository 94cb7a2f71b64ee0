/*
 * libFuzzer harness for `registry import` (signaling/md_registry_import.c):
 * any bytes as the import document, parsed as the CLI does (duplicate keys
 * refused) and imported into an in-memory store with a real audit log.  The
 * store is made once; entries accumulate across inputs, as on a deployment
 * that imports many files.  Replayed from tests/fuzz/resil/corpus/registry.
 */
#include "fuzz_common.h"
#include "md_audit.h"
#include "md_registry.h"
#include "md_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static md_store *store;
static md_audit *audit;
static md_procedures *procs;

static void set_up(void)
{
    const char *root = getenv("MD_SOURCE_ROOT");
    g_autofree char *procedures =
        g_build_filename(root ? root : MD_FUZZ_SOURCE_ROOT, "data", "procedures.json", NULL);
    g_autofree char *key = g_build_filename(fuzz_dir(), "audit.key", NULL);
    if (md_store_open(":memory:", &store) < 0 ||
        md_audit_open(store, key, 1000, 3600, &audit) < 0 ||
        md_procedures_load(procedures, &procs) < 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!store)
        set_up();
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return 0;
    FILE *report = fopen("/dev/null", "w");
    md_registry_import(store, audit, procs, doc, "fuzz", 1767225600000, report);
    fclose(report);
    json_decref(doc);
    return 0;
}
