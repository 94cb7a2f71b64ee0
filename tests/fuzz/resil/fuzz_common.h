/*
 * Shared set-up for the harnesses of tests/fuzz/resil: a private scratch
 * directory made once per process (libFuzzer runs many inputs in one) and
 * removed at exit, and writing an input to a file there.  Test code only.
 */
#ifndef MD_FUZZ_COMMON_H
#define MD_FUZZ_COMMON_H

#include <errno.h>
#include <ftw.h>
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Set-up steps must work: a failure is a broken harness, said loudly. */
#define FUZZ_CHECK(expr)                                                                           \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            fprintf(stderr, "%s:%d: set-up failed: %s\n", __FILE__, __LINE__, #expr);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char *fuzz_scratch;

static inline int fuzz_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static inline void fuzz_cleanup(void)
{
    if (fuzz_scratch)
        nftw(fuzz_scratch, fuzz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* The process's scratch directory (under /dev/shm when it exists, so that
 * SQLite's and the evidence store's fsyncs cost little). */
static inline const char *fuzz_dir(void)
{
    if (!fuzz_scratch) {
        const char *base =
            g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm" : g_get_tmp_dir();
        fuzz_scratch = g_build_filename(base, "md-fuzz-XXXXXX", NULL);
        if (!g_mkdtemp_full(fuzz_scratch, 0700)) {
            fprintf(stderr, "mkdtemp %s: %s\n", fuzz_scratch, strerror(errno));
            abort();
        }
        atexit(fuzz_cleanup);
    }
    return fuzz_scratch;
}

static inline char *fuzz_write(const char *name, const uint8_t *data, size_t size)
{
    char *path = g_build_filename(fuzz_dir(), name, NULL);
    if (!g_file_set_contents(path, (const char *)data, (gssize)size, NULL))
        abort();
    return path;
}

#endif
