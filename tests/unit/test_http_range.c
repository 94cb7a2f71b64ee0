/* The Range header of recording playback (RFC 9110 14.1.2): each form, the
 * clipping to the body, and what is ignored (0) or unsatisfiable (-1). */
#include "md_http_range.h"
#include "md_test.h"

static void expect(const char *header, uint64_t size, int want, uint64_t start, uint64_t end)
{
    uint64_t a = 7777, b = 8888;
    int got = md_http_range_parse(header, size, &a, &b);
    if (got != want)
        MD_FAIL("%s (size %llu): got %d, want %d", header ? header : "(null)",
                (unsigned long long)size, got, want);
    if (want == 1 && (a != start || b != end))
        MD_FAIL("%s: got [%llu, %llu), want [%llu, %llu)", header, (unsigned long long)a,
                (unsigned long long)b, (unsigned long long)start, (unsigned long long)end);
    if (want != 1)
        ASSERT(a == 7777 && b == 8888); /* outputs untouched */
}

static void test_forms(void)
{
    expect("bytes=0-", 1000, 1, 0, 1000);
    expect("bytes=0-0", 1000, 1, 0, 1);
    expect("bytes=100-199", 1000, 1, 100, 200);
    expect("bytes=900-5000", 1000, 1, 900, 1000); /* last-pos clipped */
    expect("bytes=999-", 1000, 1, 999, 1000);
    expect("bytes=-500", 1000, 1, 500, 1000);
    expect("bytes=-5000", 1000, 1, 0, 1000); /* suffix longer than the body */
}

static void test_unsatisfiable(void)
{
    expect("bytes=1000-", 1000, -1, 0, 0);
    expect("bytes=1000-2000", 1000, -1, 0, 0);
    expect("bytes=-0", 1000, -1, 0, 0);
    expect("bytes=0-", 0, -1, 0, 0);
    expect("bytes=-1", 0, -1, 0, 0);
}

static void test_ignored(void)
{
    expect(NULL, 1000, 0, 0, 0);
    expect("", 1000, 0, 0, 0);
    expect("items=0-1", 1000, 0, 0, 0);
    expect("bytes=", 1000, 0, 0, 0);
    expect("bytes=-", 1000, 0, 0, 0);
    expect("bytes=5-1", 1000, 0, 0, 0);     /* last < first */
    expect("bytes=0-1,5-9", 1000, 0, 0, 0); /* several ranges */
    expect("bytes= 0-1", 1000, 0, 0, 0);    /* no spaces */
    expect("bytes=+1-2", 1000, 0, 0, 0);    /* no sign */
    expect("bytes=0x10-", 1000, 0, 0, 0);
    expect("bytes=99999999999999999999-", 1000, 0, 0, 0); /* 20 digits */
    expect("bytes=1-2-3", 1000, 0, 0, 0);
}

int main(void)
{
    RUN(test_forms);
    RUN(test_unsatisfiable);
    RUN(test_ignored);
    return 0;
}
