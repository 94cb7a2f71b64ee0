/*
 * libFuzzer harness for the configuration file (core/md_config.c): any bytes
 * as config.json, loaded with md_config_load.  It must load or refuse with a
 * message, never crash or leak.  Replayed from tests/fuzz/resil/corpus/config.
 */
#include "fuzz_common.h"
#include "md_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path = fuzz_write("config.json", data, size);
    md_config cfg;
    char *err = NULL;
    if (md_config_load(path, &cfg, &err) == 0)
        md_config_clear(&cfg);
    free(err);
    g_free(path);
    return 0;
}
