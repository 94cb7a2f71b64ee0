/* Calendar arithmetic and the JST day boundary that designation periods use. */
#include "md_test.h"
#include "md_time.h"

static void test_date_roundtrip(void)
{
    int32_t d;
    char buf[11];
    ASSERT_OK(md_date_parse("1970-01-01", &d));
    ASSERT_EQ(d, 0);
    ASSERT_OK(md_date_parse("2026-03-31", &d));
    md_date_format(d, buf, sizeof(buf));
    ASSERT_STR_EQ(buf, "2026-03-31");
    ASSERT_OK(md_date_parse("2024-02-29", &d));
    ASSERT(md_date_parse("2023-02-29", &d) < 0);
    ASSERT(md_date_parse("2026-13-01", &d) < 0);
    ASSERT(md_date_parse("2026-04-31", &d) < 0);
    ASSERT(md_date_parse("2026-4-1", &d) < 0);
    ASSERT(md_date_parse("2026-04-01x", &d) < 0);
    ASSERT(md_date_parse("", &d) < 0);
}

static void test_jst_boundary(void)
{
    int32_t mar31, apr1;
    int64_t ms;
    ASSERT_OK(md_date_parse("2026-03-31", &mar31));
    ASSERT_OK(md_date_parse("2026-04-01", &apr1));
    /* 2026-03-31T14:59:59Z is 23:59:59 JST on the 31st; one second later is April. */
    ASSERT_OK(md_time_parse_iso("2026-03-31T14:59:59Z", &ms));
    ASSERT_EQ(md_date_jst(ms), mar31);
    ASSERT_OK(md_time_parse_iso("2026-03-31T15:00:00Z", &ms));
    ASSERT_EQ(md_date_jst(ms), apr1);
    /* A plain date means midnight in Japan. */
    ASSERT_OK(md_time_parse_iso("2026-04-01", &ms));
    ASSERT_EQ(md_date_jst(ms), apr1);
    ASSERT_EQ(md_date_jst(ms - 1), mar31);
}

static void test_iso_format(void)
{
    char buf[32];
    int64_t ms;
    ASSERT_OK(md_time_parse_iso("2026-11-22T16:50:01.123Z", &ms));
    md_time_format_iso(ms, buf, sizeof(buf));
    ASSERT_STR_EQ(buf, "2026-11-22T16:50:01.123Z");
    /* offsets (issue #10: "+09:00" was refused) */
    ASSERT_OK(md_time_parse_iso("2026-11-23T01:50:01.123+09:00", &ms));
    md_time_format_iso(ms, buf, sizeof(buf));
    ASSERT_STR_EQ(buf, "2026-11-22T16:50:01.123Z");
    ASSERT_OK(md_time_parse_iso("2026-11-22T12:50:01-04:00", &ms));
    md_time_format_iso(ms, buf, sizeof(buf));
    ASSERT_STR_EQ(buf, "2026-11-22T16:50:01.000Z");
    ASSERT(md_time_parse_iso("2026-11-22T16:50:01+0900", &ms) < 0);
    ASSERT(md_time_parse_iso("2026-11-22T16:50:01+09:00x", &ms) < 0);
    ASSERT(md_time_parse_iso("2026-11-22T16:50:01+24:00", &ms) < 0);
    ASSERT(md_time_parse_iso("2026-11-22T25:00:00Z", &ms) < 0);
}

int main(void)
{
    RUN(test_date_roundtrip);
    RUN(test_jst_boundary);
    RUN(test_iso_format);
    return 0;
}
