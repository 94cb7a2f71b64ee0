/*
 * Calendar arithmetic without the C library's time zone state (which is not
 * thread-safe and depends on TZ): days-from-civil after H. Hinnant's public
 * domain algorithm.  Pure functions, safe from any thread.
 */
#include "md_time.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define JST_OFFSET_MS (9LL * 3600 * 1000)
#define DAY_MS (86400LL * 1000)

int64_t md_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t md_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int32_t days_from_civil(int y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int32_t)doe - 719468;
}

static void civil_from_days(int32_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int yy = (int)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

void md_time_format_iso(int64_t ms, char *buf, size_t len)
{
    int64_t days = floor_div(ms, DAY_MS);
    int64_t rem = ms - days * DAY_MS;
    int y;
    unsigned m, d;
    civil_from_days((int32_t)days, &y, &m, &d);
    snprintf(buf, len, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d, (int)(rem / 3600000),
             (int)(rem / 60000 % 60), (int)(rem / 1000 % 60), (int)(rem % 1000));
}

static int parse_digits(const char *s, int n, int *ret)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *ret = v;
    return 0;
}

static int parse_date_prefix(const char *s, int32_t *ret_days)
{
    int y, m, d;
    if (parse_digits(s, 4, &y) < 0 || s[4] != '-' || parse_digits(s + 5, 2, &m) < 0 ||
        s[7] != '-' || parse_digits(s + 8, 2, &d) < 0)
        return -EINVAL;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return -EINVAL;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m == 2 && d == 29 && !leap)
        return -EINVAL;
    *ret_days = days_from_civil(y, (unsigned)m, (unsigned)d);
    return 0;
}

int md_date_parse(const char *s, int32_t *ret_days)
{
    if (!s || strlen(s) != 10)
        return -EINVAL;
    return parse_date_prefix(s, ret_days);
}

int32_t md_date_jst(int64_t ms)
{
    return (int32_t)floor_div(ms + JST_OFFSET_MS, DAY_MS);
}

void md_date_format(int32_t days, char *buf, size_t len)
{
    int y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, len, "%04d-%02u-%02u", y, m, d);
}

int md_time_parse_iso(const char *s, int64_t *ret_ms)
{
    int32_t days;
    if (!s || strlen(s) < 10 || parse_date_prefix(s, &days) < 0)
        return -EINVAL;
    if (s[10] == '\0') {
        *ret_ms = (int64_t)days * DAY_MS - JST_OFFSET_MS;
        return 0;
    }
    int hh, mm, ss, frac = 0;
    const char *p = s + 10;
    if (*p != 'T' || parse_digits(p + 1, 2, &hh) < 0 || p[3] != ':' ||
        parse_digits(p + 4, 2, &mm) < 0 || p[6] != ':' || parse_digits(p + 7, 2, &ss) < 0)
        return -EINVAL;
    p += 9;
    if (*p == '.') {
        int n = 0;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (n < 3)
                frac = frac * 10 + (*p - '0');
            n++;
            p++;
        }
        if (n == 0)
            return -EINVAL;
        for (; n < 3; n++)
            frac *= 10;
    }
    /* RFC 3339 5.6: "Z" or a numeric offset such as "+09:00" */
    int64_t offset_ms = 0;
    if (*p == '+' || *p == '-') {
        int oh, om;
        if (parse_digits(p + 1, 2, &oh) < 0 || p[3] != ':' || parse_digits(p + 4, 2, &om) < 0 ||
            p[6] != '\0' || oh > 23 || om > 59)
            return -EINVAL;
        offset_ms = ((int64_t)oh * 60 + om) * 60000 * (*p == '-' ? -1 : 1);
    } else if (strcmp(p, "Z") != 0) {
        return -EINVAL;
    }
    if (hh > 23 || mm > 59 || ss > 60)
        return -EINVAL;
    *ret_ms =
        (int64_t)days * DAY_MS + ((int64_t)hh * 3600 + mm * 60 + ss) * 1000 + frac - offset_ms;
    return 0;
}
