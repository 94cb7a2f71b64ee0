/*
 * Evidence store (md_evidence): files round-trip at sizes around the chunk
 * boundary; flipping a byte, truncating (also at a chunk boundary),
 * swapping chunks or renaming a file to another id is detected; an aborted
 * file leaves nothing; a wrong master key cannot open the session key; a
 * destroyed session key makes even a saved copy of the ciphertext
 * unreadable; the plaintext never appears on disk; chat records append and
 * read back in order and tampering with them is detected.
 */
#include "md_crypto.h"
#include "md_err.h"
#include "md_evidence.h"
#include "md_test.h"

#include <errno.h>

#include <dirent.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <sys/stat.h>

static char *dir, *master;

static int collect(const uint8_t *buf, size_t len, void *ud)
{
    g_byte_array_append(ud, buf, (guint)len);
    return 0;
}

static uint8_t *pattern(size_t len, unsigned seed)
{
    uint8_t *p = g_malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)((i * 31 + seed) ^ (i >> 9));
    return p;
}

static char *ev_path(const char *session, const char *file)
{
    char *name = g_strconcat(file, ".ev", NULL);
    char *p = g_build_filename(dir, "sessions", session, name, NULL);
    g_free(name);
    return p;
}

static void store(md_evidence *ev, const char *session, const char *file, const uint8_t *data,
                  size_t len, size_t step)
{
    md_evidence_file *w;
    uint8_t digest[MD_SHA256_LEN], want[MD_SHA256_LEN];
    ASSERT_OK(md_evidence_file_begin(ev, session, file, &w));
    for (size_t off = 0; off < len; off += step)
        ASSERT_OK(md_evidence_file_write(w, data + off, MIN(step, len - off)));
    ASSERT_OK(md_evidence_file_commit(w, digest));
    ASSERT_OK(md_sha256(data, len, want));
    ASSERT(memcmp(digest, want, sizeof(want)) == 0);
}

static int read_back(md_evidence *ev, const char *session, const char *file, GByteArray **ret)
{
    GByteArray *out = g_byte_array_new();
    int r = md_evidence_file_read(ev, session, file, collect, out);
    if (ret)
        *ret = out;
    else
        g_byte_array_unref(out);
    return r;
}

static void test_round_trip(void)
{
    md_evidence *ev;
    ASSERT_OK(md_evidence_open(dir, master, &ev));
    struct stat st;
    ASSERT_OK(stat(master, &st));
    ASSERT_EQ(st.st_mode & 0777, 0600);
    ASSERT_EQ(st.st_size, 32);
    ASSERT_EQ(md_evidence_session_key(ev, "s1"), 1);
    ASSERT_EQ(md_evidence_session_key(ev, "s1"), 0);

    const size_t sizes[] = {0, 1, 65535, 65536, 65537, 3 * 65536, 1000000};
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        char id[16];
        snprintf(id, sizeof(id), "f%zu", i);
        uint8_t *data = pattern(sizes[i], (unsigned)i);
        store(ev, "s1", id, data, sizes[i], 7000);
        GByteArray *out;
        ASSERT_OK(read_back(ev, "s1", id, &out));
        ASSERT_EQ(out->len, sizes[i]);
        ASSERT(sizes[i] == 0 || memcmp(out->data, data, sizes[i]) == 0);
        g_byte_array_unref(out);
        g_free(data);
    }
    /* Same id twice: refused. */
    md_evidence_file *w;
    ASSERT_EQ(md_evidence_file_begin(ev, "s1", "f1", &w), -EEXIST);
    ASSERT_EQ(md_evidence_file_begin(ev, "s1", "../x", &w), -EINVAL);
    ASSERT_EQ(read_back(ev, "s1", "nope", NULL), -ENOENT);

    /* A new md_evidence (restart) reads with the same master key. */
    md_evidence_free(ev);
    ASSERT_OK(md_evidence_open(dir, master, &ev));
    ASSERT_OK(read_back(ev, "s1", "f6", NULL));
    FILE *f = tmpfile();
    ASSERT_OK(md_evidence_file_export(ev, "s1", "f6", f));
    ASSERT_EQ(ftell(f), 1000000);
    fclose(f);
    md_evidence_free(ev);
}

static void test_plaintext_not_on_disk(void)
{
    md_evidence *ev;
    const char *secret = "MYNUMBER-1234-5678-9012-SECRET-TEXT";
    GString *doc = g_string_new("%PDF-1.7\n");
    for (int i = 0; i < 5000; i++)
        g_string_append(doc, secret);
    ASSERT_OK(md_evidence_open(dir, master, &ev));
    store(ev, "s2", "doc", (const uint8_t *)doc->str, doc->len, 4096);
    ASSERT(md_evidence_chat_append(ev, "s2", secret, strlen(secret)) >= 0);
    md_evidence_free(ev);

    const char *files[] = {"doc.ev", "transcript"};
    for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
        char *p = g_build_filename(dir, "sessions", "s2", files[i], NULL), *contents;
        gsize len;
        ASSERT(g_file_get_contents(p, &contents, &len, NULL));
        ASSERT(memmem(contents, len, secret, strlen(secret)) == NULL);
        ASSERT(memmem(contents, len, "%PDF", 4) == NULL);
        g_free(contents);
        g_free(p);
    }
    g_string_free(doc, TRUE);
}

static void rewrite(const char *path, void (*edit)(GByteArray *))
{
    char *contents;
    gsize len;
    ASSERT(g_file_get_contents(path, &contents, &len, NULL));
    GByteArray *b = g_byte_array_new_take((guint8 *)contents, len);
    edit(b);
    ASSERT(g_file_set_contents(path, (const char *)b->data, b->len, NULL));
    g_byte_array_unref(b);
}

#define HDR 16
#define SEALED (65536 + 16)

static void flip_middle(GByteArray *b)
{
    b->data[b->len / 2] ^= 0x01;
}

static void flip_header(GByteArray *b)
{
    b->data[9] ^= 0x80;
}

static void truncate_tail(GByteArray *b)
{
    g_byte_array_set_size(b, b->len - 100);
}

static void truncate_at_chunk(GByteArray *b)
{
    g_byte_array_set_size(b, HDR + 2 * SEALED);
}

static void swap_chunks(GByteArray *b)
{
    uint8_t *tmp = g_malloc(SEALED);
    memcpy(tmp, b->data + HDR, SEALED);
    memcpy(b->data + HDR, b->data + HDR + SEALED, SEALED);
    memcpy(b->data + HDR + SEALED, tmp, SEALED);
    g_free(tmp);
}

static void append_byte(GByteArray *b)
{
    g_byte_array_append(b, (const guint8 *)"x", 1);
}

static void test_tamper(void)
{
    void (*edits[])(GByteArray *) = {flip_middle,       flip_header, truncate_tail,
                                     truncate_at_chunk, swap_chunks, append_byte};
    md_evidence *ev;
    ASSERT_OK(md_evidence_open(dir, master, &ev));
    uint8_t *data = pattern(4 * 65536 + 500, 9);
    for (size_t i = 0; i < G_N_ELEMENTS(edits); i++) {
        char id[16];
        snprintf(id, sizeof(id), "t%zu", i);
        store(ev, "s3", id, data, 4 * 65536 + 500, 65536);
        char *path = ev_path("s3", id);
        rewrite(path, edits[i]);
        if (read_back(ev, "s3", id, NULL) != -MD_E_EVIDENCE_CORRUPT)
            MD_FAIL("edit %zu not detected", i);
        g_free(path);
    }
    /* A valid file renamed to another id: the AAD binds the id. */
    store(ev, "s3", "orig", data, 1000, 1000);
    char *from = ev_path("s3", "orig"), *to = ev_path("s3", "other");
    ASSERT_OK(rename(from, to));
    ASSERT_EQ(read_back(ev, "s3", "other", NULL), -MD_E_EVIDENCE_CORRUPT);
    g_free(from);
    g_free(to);
    g_free(data);
    md_evidence_free(ev);
}

static unsigned count_entries(const char *path)
{
    unsigned n = 0;
    DIR *d = opendir(path);
    ASSERT(d);
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."));
    closedir(d);
    return n;
}

static void test_abort_leaves_nothing(void)
{
    md_evidence *ev;
    md_evidence_file *w;
    ASSERT_OK(md_evidence_open(dir, master, &ev));
    ASSERT_OK(md_evidence_file_begin(ev, "s4", "partial", &w));
    uint8_t *data = pattern(200000, 1);
    ASSERT_OK(md_evidence_file_write(w, data, 200000));
    md_evidence_file_abort(w);
    char *sdir = g_build_filename(dir, "sessions", "s4", NULL);
    ASSERT_EQ(count_entries(sdir), 0);
    ASSERT_EQ(read_back(ev, "s4", "partial", NULL), -ENOENT);
    /* The id is free again. */
    store(ev, "s4", "partial", data, 10, 10);
    ASSERT_EQ(count_entries(sdir), 1);
    g_free(sdir);
    g_free(data);
    md_evidence_free(ev);
}

static void test_wrong_master_key(void)
{
    md_evidence *ev;
    char *other = g_build_filename(dir, "other-master.key", NULL);
    ASSERT_OK(md_evidence_open(dir, other, &ev));
    ASSERT_EQ(md_evidence_session_key(ev, "s1"), -MD_E_EVIDENCE_KEY);
    ASSERT_EQ(read_back(ev, "s1", "f1", NULL), -MD_E_EVIDENCE_KEY);
    md_evidence_free(ev);

    /* A master key readable by others, or of the wrong size, is refused. */
    ASSERT_OK(chmod(other, 0644));
    ASSERT_EQ(md_evidence_open(dir, other, &ev), -MD_E_EVIDENCE_KEY);
    ASSERT(g_file_set_contents(other, "short", 5, NULL));
    ASSERT_OK(chmod(other, 0600));
    ASSERT_EQ(md_evidence_open(dir, other, &ev), -MD_E_EVIDENCE_KEY);
    g_free(other);
}

static void test_destroyed_key_unrecoverable(void)
{
    md_evidence *ev;
    ASSERT_OK(md_evidence_open(dir, master, &ev));
    uint8_t *data = pattern(100000, 5);
    store(ev, "s5", "id-card", data, 100000, 100000);
    ASSERT(md_evidence_chat_append(ev, "s5", "hello", 5) == 0);
    char *path = ev_path("s5", "id-card"), *saved;
    gsize saved_len;
    ASSERT(g_file_get_contents(path, &saved, &saved_len, NULL));

    ASSERT_OK(md_evidence_session_destroy(ev, "s5"));
    ASSERT_EQ(md_evidence_session_destroy(ev, "s5"), -ENOENT);
    ASSERT_EQ(read_back(ev, "s5", "id-card", NULL), -MD_E_EVIDENCE_KEY);
    /* Someone kept a copy of the ciphertext: still useless, even to a new
     * process with the right master key, and even once a new key exists. */
    md_evidence_free(ev);
    ASSERT_OK(md_evidence_open(dir, master, &ev));
    char *sdir = g_build_filename(dir, "sessions", "s5", NULL);
    ASSERT_OK(g_mkdir_with_parents(sdir, 0700));
    ASSERT(g_file_set_contents(path, saved, (gssize)saved_len, NULL));
    ASSERT_EQ(read_back(ev, "s5", "id-card", NULL), -MD_E_EVIDENCE_KEY);
    ASSERT_EQ(md_evidence_session_key(ev, "s5"), 1);
    ASSERT_EQ(read_back(ev, "s5", "id-card", NULL), -MD_E_EVIDENCE_CORRUPT);
    g_free(sdir);
    g_free(saved);
    g_free(path);
    g_free(data);
    md_evidence_free(ev);
}

struct records {
    GPtrArray *texts;
    uint64_t next;
};

static int collect_record(uint64_t seq, const uint8_t *buf, size_t len, void *ud)
{
    struct records *r = ud;
    ASSERT_EQ(seq, r->next);
    r->next++;
    g_ptr_array_add(r->texts, g_strndup((const char *)buf, len));
    return 0;
}

static void swap_records(GByteArray *b)
{
    /* Records are equal-sized here: 4 + 12 + 16 + 16 bytes after the magic. */
    const size_t rec = 4 + 12 + 16 + 16;
    uint8_t tmp[48];
    memcpy(tmp, b->data + 8, rec);
    memcpy(b->data + 8, b->data + 8 + rec, rec);
    memcpy(b->data + 8 + rec, tmp, rec);
}

static void test_chat_transcript(void)
{
    md_evidence *ev;
    ASSERT_OK(md_evidence_open(dir, master, &ev));
    const char *lines[] = {"{\"text\":\"record 0000\"}", "{\"text\":\"record 0001\"}",
                           "{\"text\":\"record 0002\"}"};
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(md_evidence_chat_append(ev, "s6", lines[i], strlen(lines[i])), i);
    md_evidence_free(ev);
    /* After a restart the sequence continues. */
    ASSERT_OK(md_evidence_open(dir, master, &ev));
    ASSERT_EQ(md_evidence_chat_append(ev, "s6", lines[2], strlen(lines[2])), 2);
    struct records r = {g_ptr_array_new_with_free_func(g_free), 0};
    ASSERT_OK(md_evidence_chat_read(ev, "s6", collect_record, &r));
    ASSERT_EQ(r.texts->len, 3);
    for (int i = 0; i < 3; i++)
        ASSERT_STR_EQ(g_ptr_array_index(r.texts, i), lines[i]);
    g_ptr_array_unref(r.texts);

    char *path = g_build_filename(dir, "sessions", "s6", "transcript", NULL);
    char *orig;
    gsize orig_len;
    ASSERT(g_file_get_contents(path, &orig, &orig_len, NULL));
    void (*edits[])(GByteArray *) = {flip_middle, truncate_tail, swap_records};
    for (size_t i = 0; i < G_N_ELEMENTS(edits); i++) {
        ASSERT(g_file_set_contents(path, orig, (gssize)orig_len, NULL));
        rewrite(path, edits[i]);
        r = (struct records){g_ptr_array_new_with_free_func(g_free), 0};
        if (md_evidence_chat_read(ev, "s6", collect_record, &r) != -MD_E_EVIDENCE_CORRUPT)
            MD_FAIL("transcript edit %zu not detected", i);
        g_ptr_array_unref(r.texts);
    }
    ASSERT_EQ(md_evidence_chat_read(ev, "nobody", collect_record, &r), -MD_E_EVIDENCE_KEY);
    g_free(orig);
    g_free(path);
    md_evidence_free(ev);
}

int main(void)
{
    dir = md_test_tmpdir();
    master = g_build_filename(dir, "master.key", NULL);
    char *store_dir = g_build_filename(dir, "evidence", NULL);
    g_free(dir);
    dir = store_dir;
    RUN(test_round_trip);
    RUN(test_plaintext_not_on_disk);
    RUN(test_tamper);
    RUN(test_abort_leaves_nothing);
    RUN(test_wrong_master_key);
    RUN(test_destroyed_key_unrecoverable);
    RUN(test_chat_transcript);
    g_free(master);
    g_free(dir);
    return 0;
}
