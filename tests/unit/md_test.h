/*
 * Minimal test harness: each test file is one program with a main() that
 * calls RUN(test_fn) for each case.  Every case runs in a child process of its
 * own, so a failed ASSERT (which prints file:line and exits the child) or a
 * crash ends that case only: the file goes on with the next one, names every
 * failed case at the end and exits 1.  MD_TEST_CASE=test_fn runs one case.
 * meson runs each file with a timeout.
 */
#ifndef MD_TEST_H
#define MD_TEST_H

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

#define RUN(fn) md_test_run(#fn, fn)

static char md_test_failed_names[4096];
static int md_test_n_failed;
static int md_test_in_child;

/* Runs at exit of the test program: a failed case fails the whole file. */
static inline void md_test_report(void)
{
    if (md_test_in_child || md_test_n_failed == 0)
        return;
    fprintf(stderr, "%d case(s) failed:%s\n", md_test_n_failed, md_test_failed_names);
    fflush(NULL);
    _exit(1);
}

static inline void md_test_run(const char *name, void (*fn)(void))
{
    static int registered;
    const char *only = getenv("MD_TEST_CASE");
    if (only && *only && strcmp(only, name) != 0)
        return;
    if (!registered) {
        registered = 1;
        atexit(md_test_report);
    }
    fprintf(stderr, "-- %s\n", name);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        MD_FAIL("fork failed");
    if (pid == 0) {
        md_test_in_child = 1;
        fn();
        exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            MD_FAIL("waitpid failed");
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return;
    if (WIFSIGNALED(status))
        fprintf(stderr, "%s: killed by signal %d\n", name, WTERMSIG(status));
    md_test_n_failed++;
    size_t used = strlen(md_test_failed_names);
    snprintf(md_test_failed_names + used, sizeof(md_test_failed_names) - used, " %s", name);
}

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
