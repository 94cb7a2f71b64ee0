/*
 * The retransmission store (gateway/md_rtx.h): packets found by sequence
 * number, byte for byte, for as long as the receiver's round trip asks (3
 * RTTs within the configured floor and ceiling) and no longer; at most
 * max_packets of them; kept at their real length, so memory follows what
 * the stream sent in that time; sequence and clock wrap, reordered and
 * repeated sequence numbers, a stream that stops, oversize packets.
 */
#include "md_rtx.h"
#include "md_test.h"

#include <glib.h>
#include <stdbool.h>
#include <string.h>

#define MS 1000 /* µs */

static void fill(uint8_t *buf, size_t len, uint16_t seq)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seq * 31 + i);
}

static bool holds(const md_rtx *rtx, uint16_t seq, size_t want_len, int64_t now)
{
    uint8_t expect[MD_RTX_MAX_PACKET];
    size_t len = 0;
    const uint8_t *p = md_rtx_get(rtx, seq, now, &len);
    if (!p || len != want_len)
        return false;
    fill(expect, len, seq);
    return memcmp(p, expect, len) == 0;
}

static bool missing(const md_rtx *rtx, uint16_t seq, int64_t now)
{
    return md_rtx_get(rtx, seq, now, &(size_t){0}) == NULL;
}

static void put(md_rtx *rtx, uint16_t seq, size_t len, int64_t now)
{
    uint8_t buf[MD_RTX_MAX_PACKET];
    fill(buf, len, seq);
    md_rtx_put(rtx, seq, buf, len, now);
}

static size_t len_of(uint16_t seq)
{
    return 200 + (seq * 7919u) % 1300; /* 200..1499 bytes */
}

/* What `records` records of `len` bytes can take: the chunks they fill
 * (8 KiB, 24 bytes of header, records padded to 8 after an 8-byte header),
 * the oldest chunk partly too old and the newest partly empty. */
static size_t bound(size_t records, size_t len)
{
    size_t per_chunk = (8192 - 24) / (8 + ((len + 7) & ~(size_t)7));
    return ((records + per_chunk - 1) / per_chunk + 2) * 8192;
}

/* 200 packets/s for 30 s across the sequence wrap: what was sent in the
 * last min_ms is there, what is older is not, and memory is that much. */
static void test_kept_for_the_floor(void)
{
    md_rtx *rtx = md_rtx_new(2048, 200, 1000);
    ASSERT(rtx);
    ASSERT_INT(md_rtx_keep_ms(rtx), ==, 200);
    ASSERT(missing(rtx, 0, 0));
    int64_t t0 = 5 * G_USEC_PER_SEC, now = t0;
    uint16_t first = 65000, seq = first;
    for (unsigned i = 0; i < 6000; i++, seq++, now += 5 * MS)
        put(rtx, seq, len_of(seq), now);
    uint16_t last = (uint16_t)(seq - 1);
    now -= 5 * MS; /* the time `last` was stored */
    for (unsigned back = 0; back <= 40; back++) {
        uint16_t s = (uint16_t)(last - back);
        ASSERT(holds(rtx, s, len_of(s), now));
    }
    ASSERT(missing(rtx, (uint16_t)(last - 41), now)); /* 205 ms old */
    ASSERT(missing(rtx, (uint16_t)(last + 1), now));  /* never sent */
    ASSERT(missing(rtx, last, now + 201 * MS));       /* too old by then */
    ASSERT(holds(rtx, last, len_of(last), now + 200 * MS));
    ASSERT_INT(md_rtx_bytes(rtx), <=, bound(41, 1499));
    md_rtx_free(rtx);
}

/* Keep 3 RTTs, within min_ms..max_ms; min_ms while the RTT is unknown. */
static void test_rtt_sets_the_time(void)
{
    md_rtx *rtx = md_rtx_new(2048, 200, 1000);
    md_rtx_set_rtt(rtx, 10);
    ASSERT_INT(md_rtx_keep_ms(rtx), ==, 200);
    md_rtx_set_rtt(rtx, 150);
    ASSERT_INT(md_rtx_keep_ms(rtx), >=, 450);
    ASSERT_INT(md_rtx_keep_ms(rtx), <=, 451);
    md_rtx_set_rtt(rtx, 900);
    ASSERT_INT(md_rtx_keep_ms(rtx), ==, 1000);
    md_rtx_set_rtt(rtx, -1);
    ASSERT_INT(md_rtx_keep_ms(rtx), ==, 200);

    /* 150 ms RTT: a packet 440 ms old is still answered. */
    md_rtx_set_rtt(rtx, 150);
    int64_t now = G_USEC_PER_SEC;
    for (unsigned i = 0; i < 100; i++)
        put(rtx, (uint16_t)i, 1200, now + i * 10 * MS);
    now += 99 * 10 * MS;
    ASSERT(holds(rtx, 55, 1200, now)); /* 440 ms */
    ASSERT(missing(rtx, 53, now));     /* 460 ms */
    md_rtx_set_rtt(rtx, 10);           /* the link got faster */
    ASSERT(missing(rtx, 55, now));
    ASSERT(holds(rtx, 80, 1200, now)); /* 190 ms */
    md_rtx_free(rtx);
}

/* Never more than max_packets, however young. */
static void test_packet_cap(void)
{
    md_rtx *rtx = md_rtx_new(16, 1000, 1000);
    int64_t now = G_USEC_PER_SEC;
    for (unsigned i = 0; i < 100; i++)
        put(rtx, (uint16_t)i, 1200, now);
    unsigned found = 0;
    for (unsigned i = 0; i < 100; i++)
        found += !missing(rtx, (uint16_t)i, now);
    ASSERT_INT(found, <=, 16);
    ASSERT_INT(found, >=, 10); /* the cap drops a whole chunk at a time */
    ASSERT(holds(rtx, 99, 1200, now));
    ASSERT(missing(rtx, 99 - 16, now));
    md_rtx_free(rtx);

    rtx = md_rtx_new(1, 200, 200);
    for (unsigned i = 0; i < 100; i++)
        put(rtx, (uint16_t)i, 1500, now);
    ASSERT(holds(rtx, 99, 1500, now));
    ASSERT(missing(rtx, 98, now));
    ASSERT_INT(md_rtx_bytes(rtx), <=, 2 * 8192);
    md_rtx_free(rtx);
}

/* Memory follows the bytes sent: small packets take little. */
static void test_real_length(void)
{
    md_rtx *small = md_rtx_new(2048, 200, 1000), *large = md_rtx_new(2048, 200, 1000);
    int64_t now = G_USEC_PER_SEC;
    for (unsigned i = 0; i < 3000; i++, now += 2 * MS) {
        put(small, (uint16_t)i, 100, now);
        put(large, (uint16_t)i, 1200, now);
    }
    /* 101 packets in 200 ms */
    ASSERT_INT(md_rtx_bytes(small), <=, bound(101, 100));
    ASSERT_INT(md_rtx_bytes(large), <=, bound(101, 1200));
    for (unsigned i = 3000 - 100; i < 3000; i++) {
        ASSERT(holds(small, (uint16_t)i, 100, now - 2 * MS));
        ASSERT(holds(large, (uint16_t)i, 1200, now - 2 * MS));
    }
    md_rtx_free(small);
    md_rtx_free(large);
}

/* Once a second the quality tick trims: a steady stream frees nothing, a
 * burst is given back within two trims, a stream that stops goes to
 * nothing. */
static void test_trim(void)
{
    md_rtx *rtx = md_rtx_new(256, 200, 1000);
    int64_t now = G_USEC_PER_SEC;
    size_t freed = 0;
    for (unsigned i = 0; i < 2000; i++, now += 5 * MS) { /* 200 packets/s, 10 s */
        put(rtx, (uint16_t)i, 1200, now);
        if (i % 200 == 199)
            freed += md_rtx_trim(rtx, now);
    }
    ASSERT_INT(freed, ==, 0);
    size_t steady = md_rtx_bytes(rtx);
    ASSERT_INT(steady, <=, bound(41, 1200));

    for (unsigned i = 2000; i < 2200; i++) /* a late second, all at once */
        put(rtx, (uint16_t)i, 1200, now);
    ASSERT_INT(md_rtx_bytes(rtx), >, steady + 100 * 1200);
    for (unsigned i = 2200; i < 2600; i++, now += 5 * MS) {
        put(rtx, (uint16_t)i, 1200, now);
        if (i % 200 == 199)
            freed += md_rtx_trim(rtx, now);
    }
    ASSERT_INT(freed, >=, 100 * 1200);
    ASSERT_INT(md_rtx_bytes(rtx), <=, steady + 8192);
    ASSERT(holds(rtx, 2599, 1200, now - 5 * MS));

    ASSERT_INT(md_rtx_trim(rtx, now + 300 * MS), >, 0); /* stopped: one chunk waits */
    ASSERT_INT(md_rtx_bytes(rtx), ==, 8192);
    ASSERT(missing(rtx, 2599, now + 300 * MS));
    ASSERT_INT(md_rtx_trim(rtx, now + 1300 * MS), ==, 8192);
    ASSERT_INT(md_rtx_bytes(rtx), ==, 0);
    put(rtx, 1, 1200, now + 1400 * MS); /* and it starts again */
    ASSERT(holds(rtx, 1, 1200, now + 1400 * MS));
    md_rtx_free(rtx);
}

/* Gaps, reordering (a late retransmission from the sender relayed on) and
 * a sequence number sent twice: the later copy is answered. */
static void test_order_and_repeats(void)
{
    md_rtx *rtx = md_rtx_new(256, 200, 1000);
    int64_t now = G_USEC_PER_SEC;
    uint16_t seq = 65530;
    for (unsigned i = 0; i < 60; i++, now += MS) {
        if (i % 7 == 3)
            seq += 3; /* lost before the gateway */
        put(rtx, seq, len_of(seq), now);
        seq++;
    }
    put(rtx, 65534, len_of(65534), now); /* late, and across the wrap */
    ASSERT(holds(rtx, 65534, len_of(65534), now));
    ASSERT(holds(rtx, (uint16_t)(seq - 1), len_of((uint16_t)(seq - 1)), now));
    ASSERT(missing(rtx, 65533, now)); /* the first gap */

    put(rtx, 7000, 300, now);
    put(rtx, 7001, 400, now);
    put(rtx, 7000, 500, now);
    ASSERT(holds(rtx, 7000, 500, now));
    ASSERT(holds(rtx, 7001, 400, now));
    md_rtx_free(rtx);
}

/* The millisecond clock wraps at 2^32 (49.7 days of monotonic time). */
static void test_clock_wrap(void)
{
    md_rtx *rtx = md_rtx_new(256, 200, 1000);
    int64_t now = ((int64_t)1 << 32) * MS - 100 * MS;
    for (unsigned i = 0; i < 40; i++, now += 10 * MS)
        put(rtx, (uint16_t)i, 1000, now);
    now -= 10 * MS;
    ASSERT(holds(rtx, 39, 1000, now));
    ASSERT(holds(rtx, 20, 1000, now)); /* 190 ms, stored before the wrap */
    ASSERT(missing(rtx, 18, now));
    md_rtx_free(rtx);
}

static void test_edges(void)
{
    uint8_t big[MD_RTX_MAX_PACKET + 1] = {0};
    md_rtx *rtx = md_rtx_new(8, 200, 1000);
    md_rtx_put(rtx, 1, big, sizeof(big), 0); /* not stored */
    md_rtx_put(rtx, 2, big, 0, 0);
    ASSERT(missing(rtx, 1, 0));
    ASSERT(missing(rtx, 2, 0));
    ASSERT_INT(md_rtx_bytes(rtx), ==, 0);
    md_rtx_put(rtx, 3, big, MD_RTX_MAX_PACKET, 0);
    ASSERT(md_rtx_get(rtx, 3, 0, &(size_t){0}));
    md_rtx_free(rtx);
    md_rtx_put(NULL, 1, big, 10, 0);
    md_rtx_set_rtt(NULL, 10);
    ASSERT_INT(md_rtx_trim(NULL, 0), ==, 0);
    ASSERT(missing(NULL, 1, 0));
    ASSERT(md_rtx_free(NULL) == NULL);
    ASSERT_INT(md_rtx_bytes(NULL), ==, 0);
}

int main(void)
{
    RUN(test_kept_for_the_floor);
    RUN(test_rtt_sets_the_time);
    RUN(test_packet_cap);
    RUN(test_real_length);
    RUN(test_trim);
    RUN(test_order_and_repeats);
    RUN(test_clock_wrap);
    RUN(test_edges);
    return 0;
}
