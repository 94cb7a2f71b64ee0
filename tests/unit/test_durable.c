/*
 * Atomic, durable writes (core/md_durable.h): the content and the exact mode
 * arrive together, a failed write leaves the earlier file and no temporary,
 * and a commit without replace never overwrites.
 */
#include "md_durable.h"
#include "md_test.h"

#include <dirent.h>
#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int file_mode(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    return (int)(st.st_mode & 07777);
}

static char *contents(const char *path)
{
    char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return NULL;
    return text;
}

static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    if (d)
        closedir(d);
    return n;
}

static int fail_writer(FILE *f, const void *obj)
{
    fputs(obj, f);
    return -EIO;
}

static int text_writer(FILE *f, const void *obj)
{
    return fputs(obj, f) < 0 ? -EIO : 0;
}

static void test_write_and_replace(void)
{
    char *dir = md_test_tmpdir();
    g_autofree char *path = g_build_filename(dir, "key", NULL);
    char *text;

    /* umask must not loosen or tighten what the caller asked for */
    mode_t old = umask(077);
    ASSERT_OK(md_durable_write(path, 0644, "one", 3));
    umask(old);
    ASSERT_EQ(file_mode(path), 0644);
    ASSERT_STR_EQ((text = contents(path)), "one");
    g_free(text);

    ASSERT_OK(md_durable_write(path, 0600, "two", 3));
    ASSERT_EQ(file_mode(path), 0600);
    ASSERT_STR_EQ((text = contents(path)), "two");
    g_free(text);

    /* A failing writer: the earlier file stays, no temporary is left. */
    md_durable d = {0};
    ASSERT_EQ(md_durable_stage(&d, path, 0600, fail_writer, "three"), -EIO);
    md_durable_clear(&d);
    ASSERT_STR_EQ((text = contents(path)), "two");
    g_free(text);
    ASSERT_EQ(entries(dir), 1);

    /* A missing directory is an error, not created. */
    g_autofree char *missing = g_build_filename(dir, "no", "key", NULL);
    ASSERT_EQ(md_durable_write(missing, 0600, "x", 1), -ENOENT);

    unlink(path);
    ASSERT_OK(rmdir(dir));
    free(dir);
}

static void test_no_replace(void)
{
    char *dir = md_test_tmpdir();
    g_autofree char *path = g_build_filename(dir, "ca.crt", NULL);
    char *text;
    md_durable a = {0}, b = {0};

    ASSERT_OK(md_durable_stage(&a, path, 0644, text_writer, "first"));
    ASSERT_OK(md_durable_stage(&b, path, 0644, text_writer, "second"));
    ASSERT_EQ(entries(dir), 2); /* two temporaries, no final file yet */
    ASSERT_OK(md_durable_commit(&a, false));
    ASSERT_EQ(md_durable_commit(&b, false), -EEXIST);
    md_durable_clear(&a);
    md_durable_clear(&b);
    ASSERT_STR_EQ((text = contents(path)), "first");
    g_free(text);
    ASSERT_EQ(entries(dir), 1);

    unlink(path);
    ASSERT_OK(rmdir(dir));
    free(dir);
}

int main(void)
{
    RUN(test_write_and_replace);
    RUN(test_no_replace);
    return 0;
}
