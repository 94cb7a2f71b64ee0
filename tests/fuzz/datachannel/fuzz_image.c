/*
 * libFuzzer harness for md_image_size(), which reads the width and height of
 * a still (PNG, JPEG) sent by a tablet.  Any input: no crash, no read past
 * the buffer (ASan), a success gives nonzero sides, and the answer depends
 * only on the bytes (the same input gives the same result).  Replayed from
 * tests/fuzz/datachannel/corpus/image by the test suite.
 */
#include "md_image.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t w = 0, h = 0, w2 = 0, h2 = 0;
    int r = md_image_size(data, size, &w, &h);
    if (r == 0 && (w == 0 || h == 0))
        abort();
    if (md_image_size(data, size, &w2, &h2) != r || (r == 0 && (w != w2 || h != h2)))
        abort();
    return 0;
}
