/*
 * libFuzzer harness for DCEP (RFC 8832): any input goes through the OPEN
 * and ACK parsers; an accepted OPEN must rebuild to the very same bytes
 * (strict parser, canonical builder) unless it was a reliable channel with
 * a nonzero reliability field, which the receiver ignores (RFC 8832 5.1).
 * Replayed from tests/fuzz/datachannel/corpus/dcep by the test suite.
 */
#include "md_dcep.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    md_dcep_open o;
    uint8_t out[MD_DCEP_MAX_OPEN_LEN];

    (void)md_dcep_message_type(data, size);
    (void)md_dcep_parse_ack(data, size);
    if (md_dcep_parse_open(data, size, &o) < 0)
        return 0;
    int n = md_dcep_build_open(&o, out, sizeof(out));
    if (n < 0 || (size_t)n != size)
        abort();
    bool reliable = (o.channel_type & 0x7f) == 0;
    if (memcmp(out, data, 4) != 0 || memcmp(out + 8, data + 8, size - 8) != 0 ||
        (!reliable && memcmp(out + 4, data + 4, 4) != 0))
        abort();
    (void)md_dcep_ordered(o.channel_type);
    (void)md_dcep_pr_policy(o.channel_type);
    return 0;
}
