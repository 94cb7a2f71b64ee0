/*
 * Structured logs: one JSON object per line on stderr,
 *   {"ts":"2026-11-22T16:50:01.123Z","level":"info","mod":"signaling","event":"listening",...}
 * Fields come from a jansson json_pack() format, so callers never build strings
 * by hand.  Never log personal data: ids and codes only, no names, no chat
 * text, no passwords or codes.  Library layers log at debug only; the caller
 * logs once, with context.  Thread-safe (one write(2) per line).
 */
#ifndef MD_LOG_H
#define MD_LOG_H

enum md_log_level { MD_LOG_DEBUG, MD_LOG_INFO, MD_LOG_WARN, MD_LOG_ERROR };

void md_log_set_level(enum md_log_level level);
int md_log_level_from_string(const char *s); /* -EINVAL when unknown */

/* fields: json_pack() format for an object ("{s:s, s:i}") or NULL. */
void md_log(enum md_log_level level, const char *mod, const char *event, const char *fields, ...);

/*
 * One step of a session's set-up, at debug level, with a CLOCK_MONOTONIC
 * timestamp in microseconds ("t_us"; the same clock on every thread and in
 * every network namespace of the host), so that a debug log shows where the
 * time between `accept` and the first media goes (docs/internals/signaling.md,
 * "Where set-up time goes").  leg may be NULL.  Costs one comparison when
 * debug is off.
 */
void md_log_setup(const char *event, const char *session, const char *leg);

#define md_debug(mod, ev, ...) md_log(MD_LOG_DEBUG, mod, ev, __VA_ARGS__)
#define md_info(mod, ev, ...) md_log(MD_LOG_INFO, mod, ev, __VA_ARGS__)
#define md_warn(mod, ev, ...) md_log(MD_LOG_WARN, mod, ev, __VA_ARGS__)
#define md_error(mod, ev, ...) md_log(MD_LOG_ERROR, mod, ev, __VA_ARGS__)

#endif
