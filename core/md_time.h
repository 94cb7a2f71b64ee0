/*
 * Time helpers.  Timestamps are int64 milliseconds since the Unix epoch (UTC).
 * Registry dates ("2026-03-31") are calendar dates in Japan Standard Time
 * (UTC+9, no daylight saving): a designation "until 2026-03-31" is valid
 * through the end of that day in Japan.
 */
#ifndef MD_TIME_H
#define MD_TIME_H

#include <stddef.h>
#include <stdint.h>

int64_t md_now_ms(void);       /* wall clock (CLOCK_REALTIME) */
int64_t md_monotonic_ms(void); /* for timeouts and rates */

/* "2026-11-22T16:50:01.123Z"; buf needs 25 bytes. */
void md_time_format_iso(int64_t ms, char *buf, size_t len);

/* Parses "YYYY-MM-DD" strictly (valid month/day) into days since 1970-01-01. */
int md_date_parse(const char *s, int32_t *ret_days);

/* The calendar day in Japan for an instant, as days since 1970-01-01. */
int32_t md_date_jst(int64_t ms);

/* Formats days since 1970-01-01 as "YYYY-MM-DD"; buf needs 11 bytes. */
void md_date_format(int32_t days, char *buf, size_t len);

/* Parses an ISO 8601 instant with "Z" or a numeric offset
 * ("2026-11-22T16:50:01Z", "2026-11-23T01:50:01.5+09:00"; fraction optional)
 * or a plain date (taken as 00:00 JST) into ms. */
int md_time_parse_iso(const char *s, int64_t *ret_ms);

#endif
