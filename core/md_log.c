/*
 * JSON-lines logger (see md_log.h).  The level is a process-wide atomic set
 * once at start-up; each line is formatted in a local buffer and written with
 * a single write(2) so lines from several threads never interleave.
 */
#include "md_log.h"
#include "md_time.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = MD_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void md_log_set_level(enum md_log_level level)
{
    atomic_store(&log_level, level);
}

int md_log_level_from_string(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -EINVAL;
}

void md_log(enum md_log_level level, const char *mod, const char *event, const char *fields, ...)
{
    if ((int)level < atomic_load(&log_level))
        return;

    json_t *obj = NULL;
    if (fields) {
        va_list ap;
        va_start(ap, fields);
        json_error_t jerr;
        obj = json_vpack_ex(&jerr, 0, fields, ap);
        va_end(ap);
    }
    if (!obj)
        obj = json_object();
    if (!obj)
        return;

    char ts[32];
    md_time_format_iso(md_now_ms(), ts, sizeof(ts));
    json_t *line = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level", level_names[level], "mod",
                             mod, "event", event);
    if (line) {
        json_object_update_missing(line, obj);
        char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (text) {
            size_t n = strlen(text);
            text[n] = '\n'; /* json_dumps allocates n+1: reuse the NUL slot */
            ssize_t w = write(STDERR_FILENO, text, n + 1);
            (void)w;
            free(text);
        }
        json_decref(line);
    }
    json_decref(obj);
}

void md_log_setup(const char *event, const char *session, const char *leg)
{
    if (MD_LOG_DEBUG < atomic_load(&log_level))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    json_int_t t_us = (json_int_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    md_log(MD_LOG_DEBUG, "setup", event, "{s:s, s:s*, s:I}", "session", session, "leg", leg, "t_us",
           t_us);
}
