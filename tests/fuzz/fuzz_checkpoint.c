/* libFuzzer entry: an audit checkpoint file handed back by an operator
 * (md_audit_checkpoint_parse, `audit verify --checkpoint FILE`). */
#include "md_audit.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    md_audit_checkpoint cp;
    if (md_audit_checkpoint_parse((const char *)data, size, &cp) == 0 &&
        (cp.seq <= 0 || strlen(cp.hash) != 64 || strlen(cp.key_id) != 16))
        __builtin_trap(); /* parse promised a well-formed checkpoint */
    return 0;
}
