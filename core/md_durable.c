/*
 * Atomic, durable file writes (contract in md_durable.h).
 */
#include "md_durable.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

int md_durable_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return r;
}

static int sync_parent_dir(const char *path)
{
    g_autofree char *dir = g_path_get_dirname(path);
    return md_durable_sync_dir(dir);
}

int md_durable_stage(md_durable *d, const char *path, mode_t mode, md_durable_writer writer,
                     const void *obj)
{
    char *tmp = g_strconcat(path, ".XXXXXX.tmp", NULL);
    FILE *f = NULL;
    int r = 0;
    int fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = -errno;
        g_free(tmp);
        return r;
    }
    if (fchmod(fd, mode) < 0) {
        r = -errno;
        close(fd);
        goto out;
    }
    f = fdopen(fd, "w");
    if (!f) {
        r = -errno;
        close(fd);
        goto out;
    }
    if ((r = writer(f, obj)) < 0)
        goto out;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        r = -errno;
        goto out;
    }
    int closed = fclose(f);
    f = NULL;
    if (closed != 0) {
        r = -errno;
        goto out;
    }
    d->path = g_strdup(path);
    d->tmp = tmp;
    tmp = NULL;
out:
    if (f)
        fclose(f);
    if (tmp)
        unlink(tmp);
    g_free(tmp);
    return r;
}

int md_durable_commit(md_durable *d, bool replace)
{
    if (replace) {
        if (rename(d->tmp, d->path) < 0)
            return -errno;
    } else {
        if (link(d->tmp, d->path) < 0)
            return -errno;
        unlink(d->tmp);
    }
    g_clear_pointer(&d->tmp, g_free);
    return sync_parent_dir(d->path);
}

void md_durable_clear(md_durable *d)
{
    if (d->tmp)
        unlink(d->tmp);
    g_clear_pointer(&d->tmp, g_free);
    g_clear_pointer(&d->path, g_free);
}

struct bytes {
    const void *buf;
    size_t len;
};

static int write_bytes(FILE *f, const void *obj)
{
    const struct bytes *b = obj;
    return fwrite(b->buf, 1, b->len, f) == b->len ? 0 : -EIO;
}

int md_durable_write(const char *path, mode_t mode, const void *buf, size_t len)
{
    md_durable d = {0};
    int r = md_durable_stage(&d, path, mode, write_bytes, &(struct bytes){buf, len});
    if (r == 0)
        r = md_durable_commit(&d, true);
    md_durable_clear(&d);
    return r;
}
