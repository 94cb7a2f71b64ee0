/*
 * The HTTP Range header of a GET (RFC 9110 14.1.2, 14.2), for bodies the
 * staff listener serves in parts (recordings played back).  Pure function:
 * no state, any thread; fuzzed by tests/fuzz/fuzz_range.c.
 */
#ifndef MD_HTTP_RANGE_H
#define MD_HTTP_RANGE_H

#include <stdint.h>

/*
 * One byte range of a body of `size` bytes: "bytes=A-B", "bytes=A-" or
 * "bytes=-N" (the last N).  Returns 1 with [*ret_start, *ret_end) set (end
 * exclusive, clipped to size), 0 when the header is absent, malformed or
 * asks for several ranges (the whole body is then sent: RFC 9110 14.2 lets
 * a server ignore Range), and -1 when it is valid but cannot be satisfied
 * (a start at or past the end, or a suffix of 0 bytes: 416).  Outputs are
 * untouched unless 1 is returned.
 */
int md_http_range_parse(const char *header, uint64_t size, uint64_t *ret_start, uint64_t *ret_end);

#endif
