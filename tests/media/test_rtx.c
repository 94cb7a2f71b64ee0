/*
 * The retransmission store (gateway/md_rtx.h): packets found by sequence
 * number while their slot holds them, byte for byte; kept at their real
 * length, so memory follows what was sent; sequence wrap, oversize packets,
 * a one-slot store.
 */
#include "md_rtx.h"
#include "md_test.h"

#include <glib.h>
#include <stdbool.h>
#include <string.h>

static void fill(uint8_t *buf, size_t len, uint16_t seq)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seq * 31 + i);
}

static bool holds(const md_rtx *rtx, uint16_t seq, size_t want_len)
{
    uint8_t expect[MD_RTX_MAX_PACKET];
    size_t len = 0;
    const uint8_t *p = md_rtx_get(rtx, seq, &len);
    if (!p || len != want_len)
        return false;
    fill(expect, len, seq);
    return memcmp(p, expect, len) == 0;
}

static void put(md_rtx *rtx, uint16_t seq, size_t len)
{
    uint8_t buf[MD_RTX_MAX_PACKET];
    fill(buf, len, seq);
    md_rtx_put(rtx, seq, buf, len);
}

static size_t len_of(uint16_t seq)
{
    return 200 + (seq * 7919u) % 1300; /* 200..1499 bytes */
}

static void test_last_slots_found(void)
{
    md_rtx *rtx = md_rtx_new(256);
    ASSERT(rtx);
    ASSERT(!md_rtx_get(rtx, 0, &(size_t){0}));
    uint16_t first = 65000; /* crosses the sequence wrap */
    for (unsigned i = 0; i < 5000; i++)
        put(rtx, (uint16_t)(first + i), len_of((uint16_t)(first + i)));
    uint16_t last = (uint16_t)(first + 4999);
    for (unsigned back = 0; back < 256; back++) {
        uint16_t seq = (uint16_t)(last - back);
        ASSERT(holds(rtx, seq, len_of(seq)));
    }
    ASSERT(!md_rtx_get(rtx, (uint16_t)(last - 256), &(size_t){0})); /* slot taken by last */
    ASSERT(!md_rtx_get(rtx, (uint16_t)(last + 1), &(size_t){0}));   /* never sent */
    md_rtx_free(rtx);
}

/* Memory is what the last packets take, not slots x the largest packet. */
static void test_real_length(void)
{
    md_rtx *small = md_rtx_new(256), *large = md_rtx_new(256);
    for (unsigned i = 0; i < 3000; i++) {
        put(small, (uint16_t)i, 100);
        put(large, (uint16_t)i, 1200);
    }
    ASSERT_INT(md_rtx_bytes(small), <=, 3 * 16 * 1024 + 512);
    ASSERT_INT(md_rtx_bytes(large), <=, 256 * 1200 + 3 * 16 * 1024);
    for (unsigned i = 3000 - 256; i < 3000; i++) {
        ASSERT(holds(small, (uint16_t)i, 100));
        ASSERT(holds(large, (uint16_t)i, 1200));
    }
    md_rtx_free(small);
    md_rtx_free(large);
}

/* Gaps in the sequence (loss before the gateway) leave old entries whose
 * slot nobody overwrote: they must not pin old chunks. */
static void test_gaps_do_not_pin_memory(void)
{
    md_rtx *rtx = md_rtx_new(256);
    uint16_t seq = 0;
    for (unsigned i = 0; i < 20000; i++, seq++) {
        if (i % 7 == 3)
            seq += (uint16_t)(1 + i % 5); /* a hole of 1..5 */
        put(rtx, seq, 1200);
    }
    ASSERT_INT(md_rtx_bytes(rtx), <=, 256 * 1200 + 3 * 16 * 1024);
    ASSERT(holds(rtx, (uint16_t)(seq - 1), 1200));
    ASSERT(!md_rtx_get(rtx, (uint16_t)(seq - 1 - 300), &(size_t){0})); /* beyond the window */
    md_rtx_free(rtx);
}

/* Retransmitted or reordered sends of one sequence number keep the last. */
static void test_same_seq_again(void)
{
    md_rtx *rtx = md_rtx_new(16);
    put(rtx, 7, 300);
    put(rtx, 8, 400);
    put(rtx, 7, 500);
    ASSERT(holds(rtx, 7, 500));
    ASSERT(holds(rtx, 8, 400));
    md_rtx_free(rtx);
}

static void test_edges(void)
{
    uint8_t big[MD_RTX_MAX_PACKET + 1] = {0};
    md_rtx *rtx = md_rtx_new(1);
    md_rtx_put(rtx, 1, big, sizeof(big)); /* not stored */
    ASSERT(!md_rtx_get(rtx, 1, &(size_t){0}));
    for (unsigned i = 0; i < 100; i++)
        put(rtx, (uint16_t)i, 1500);
    ASSERT(holds(rtx, 99, 1500));
    ASSERT(!md_rtx_get(rtx, 98, &(size_t){0}));
    ASSERT_INT(md_rtx_bytes(rtx), <=, 16 * 1024 + 512);
    md_rtx_free(rtx);
    md_rtx_put(NULL, 1, big, 10);
    ASSERT(!md_rtx_get(NULL, 1, &(size_t){0}));
    ASSERT(md_rtx_free(NULL) == NULL);
}

int main(void)
{
    RUN(test_last_slots_found);
    RUN(test_real_length);
    RUN(test_gaps_do_not_pin_memory);
    RUN(test_same_seq_again);
    RUN(test_edges);
    return 0;
}
