/*
 * Preloaded into the gateway by test_durability.py (LD_PRELOAD) to show when
 * SQLite's write-ahead log reaches the disk.  While the file named by
 * MD_TEST_SYNC_CONTROL exists, an fsync or fdatasync of a file whose name
 * ends in "-wal" first sleeps the milliseconds that file holds, or fails
 * with EIO when it holds "fail"; each such call that succeeds appends
 * "<start> <end>\n" (CLOCK_MONOTONIC, microseconds) to
 * MD_TEST_SYNC_CONTROL.log.  The real call does the work: this only delays,
 * refuses and reports it.  Other files pass straight through.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool is_log(int fd)
{
    char link[64], path[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n < 4)
        return false;
    path[n] = '\0';
    return strcmp(path + n - 4, "-wal") == 0;
}

/* 0: no control file (pass through); > 0: delay in ms; -1: fail. */
static int control(const char *file)
{
    char buf[32] = "";
    FILE *f = fopen(file, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (strncmp(buf, "fail", 4) == 0)
        return -1;
    int ms = atoi(buf);
    return ms > 0 ? ms : 1;
}

static int wrap(int fd, const char *name)
{
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, name);
    const char *file = getenv("MD_TEST_SYNC_CONTROL");
    if (!file || !is_log(fd))
        return real(fd);
    int c = control(file);
    if (c == 0)
        return real(fd);
    if (c < 0) {
        errno = EIO;
        return -1;
    }
    long long start = now_us();
    usleep((useconds_t)c * 1000);
    int r = real(fd);
    if (r == 0) {
        char log[4096], line[64];
        snprintf(log, sizeof(log), "%s.log", file);
        int lf = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (lf >= 0) {
            int len = snprintf(line, sizeof(line), "%lld %lld\n", start, now_us());
            ssize_t w = write(lf, line, (size_t)len);
            (void)w;
            close(lf);
        }
    }
    return r;
}

int fdatasync(int fd)
{
    return wrap(fd, "fdatasync");
}

int fsync(int fd)
{
    return wrap(fd, "fsync");
}
