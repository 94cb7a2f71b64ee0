/* libFuzzer entry: the HTTP Range header of a recording playback
 * (md_http_range_parse), against a few body sizes; a range it returns must
 * lie inside the body. */
#include "md_http_range.h"

#include <glib.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t sizes[] = {0, 1, 1000, UINT64_MAX / 2};
    char *header = g_strndup((const char *)data, size);
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        uint64_t a = 0, b = 0;
        if (md_http_range_parse(header, sizes[i], &a, &b) == 1 && (a >= b || b > sizes[i]))
            abort();
    }
    g_free(header);
    return 0;
}
