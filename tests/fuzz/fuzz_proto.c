/* libFuzzer entry: signaling messages from any role (md_proto_parse). */
#include "md_proto.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned senders[] = {1u << 0, 1u << 1, 1u << 2, 1u << 3};
    md_proto_result r;
    unsigned sender = size ? senders[data[0] % 4] : senders[0];
    static const md_proto_limits lim = {.sdp_bytes = 65536, .candidate_bytes = 512};
    md_proto_parse((const char *)data, size, sender, &lim, &r);
    if (r.msg)
        (void)md_proto_type_name(r.type);
    md_proto_result_clear(&r);
    return 0;
}
