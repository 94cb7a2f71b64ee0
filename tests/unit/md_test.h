/*
 * Minimal test harness: each test file is one process with a main() that
 * calls RUN(test_fn) for each case; the first failed ASSERT prints file:line
 * and exits 1.  meson runs each file with a timeout.
 */
#ifndef MD_TEST_H
#define MD_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MD_FAIL(...)                                                                               \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            MD_FAIL("assertion failed: %s", #cond);                                                \
    } while (0)

#define ASSERT_INT(a, op, b)                                                                       \
    do {                                                                                           \
        int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                                              \
        if (!(a_ op b_))                                                                           \
            MD_FAIL("%s %s %s: %" PRId64 " vs %" PRId64, #a, #op, #b, a_, b_);                     \
    } while (0)

#define ASSERT_EQ(a, b) ASSERT_INT(a, ==, b)
#define ASSERT_OK(expr) ASSERT_INT(expr, >=, 0)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                     \
            MD_FAIL("%s == %s: \"%s\" vs \"%s\"", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
    } while (0)

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        fprintf(stderr, "-- %s\n", #fn);                                                           \
        fn();                                                                                      \
    } while (0)

/* A fresh temporary directory for this process; removed by the OS tmp cleaner. */
static inline char *md_test_tmpdir(void)
{
    char tmpl[] = "/tmp/md-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    if (!d)
        MD_FAIL("mkdtemp failed");
    return strdup(d);
}

#endif
