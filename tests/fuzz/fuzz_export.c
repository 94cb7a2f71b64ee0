/* libFuzzer entry: an audit export as `madoguchi audit verify --export` reads
 * it (md_audit_export_verify; core/md_audit_export.h), checked against the
 * committed key tests/fuzz/data/export.pub that signs the seed corpus
 * (make_export_corpus.py); and the same bytes as a from/until value of the
 * auditor API (md_time_parse_iso). */
#include "md_audit_export.h"
#include "md_err.h"
#include "md_time.h"

#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = g_strndup((const char *)data, size);
    int64_t ms;
    (void)md_time_parse_iso(text, &ms);

    static md_sign_key *key;
    if (!key && md_audit_load_public_key(MD_FUZZ_DATA "/export.pub", &key) < 0)
        __builtin_trap();
    FILE *in = fmemopen((void *)data, size ? size : 1, "r");
    if (!in)
        return 0;
    FILE *report = fopen("/dev/null", "w");
    int64_t bad = 0;
    int r = md_audit_export_verify(in, key, report, &bad);
    if (r < 0 && r != -MD_E_AUDIT_BROKEN && r != -EIO && r != -ENOMEM) {
        fprintf(stderr, "unexpected result %d\n", r);
        __builtin_trap();
    }
    if (report)
        fclose(report);
    fclose(in);
    return 0;
}
