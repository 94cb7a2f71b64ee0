/*
 * Range header parsing (md_http_range.h).  Only the "bytes" unit and one
 * range; digits only (no sign, no spaces), each at most 19 digits so that
 * the value fits in 63 bits.  RFC 9110 14.1.2 cited inline.
 */
#include "md_http_range.h"

#include <stdbool.h>
#include <string.h>

#define DIGITS_MAX 19

/* Decimal digits from *p up to a non-digit; false if none or too many. */
static bool read_number(const char **p, uint64_t *ret)
{
    uint64_t v = 0;
    int n = 0;
    while (**p >= '0' && **p <= '9') {
        if (++n > DIGITS_MAX)
            return false;
        v = v * 10 + (uint64_t)(**p - '0');
        (*p)++;
    }
    if (n == 0)
        return false;
    *ret = v;
    return true;
}

int md_http_range_parse(const char *header, uint64_t size, uint64_t *ret_start, uint64_t *ret_end)
{
    static const char unit[] = "bytes=";
    if (!header || strncmp(header, unit, sizeof(unit) - 1) != 0)
        return 0;
    const char *p = header + sizeof(unit) - 1;
    uint64_t first = 0, last = 0;
    if (*p == '-') { /* suffix-range = "-" suffix-length */
        p++;
        if (!read_number(&p, &last) || *p)
            return 0;
        if (last == 0 || size == 0)
            return -1;
        *ret_start = last >= size ? 0 : size - last;
        *ret_end = size;
        return 1;
    }
    /* int-range = first-pos "-" [ last-pos ] */
    if (!read_number(&p, &first) || *p != '-')
        return 0;
    p++;
    bool has_last = *p != '\0';
    if (has_last && (!read_number(&p, &last) || *p))
        return 0; /* also "A-B,C-D": several ranges are not served as multipart */
    if (has_last && last < first)
        return 0; /* invalid range: ignored (14.1.2) */
    if (first >= size)
        return -1;
    *ret_start = first;
    *ret_end = has_last && last < size - 1 ? last + 1 : size;
    return 1;
}
