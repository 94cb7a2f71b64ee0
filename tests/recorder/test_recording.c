/*
 * Recording files and rows (core/md_evidence.h "Recordings", core/
 * md_recording.h): a finished file reads back whole and at any offset; a
 * file closed without its final chunk, or torn inside a chunk, reads up to
 * the last complete chunk and is reported truncated, not corrupt; a flipped
 * byte, bytes after the final chunk or another recording's key are
 * tampering; the rows go recording -> complete/cut -> purged, recovery
 * after a crash marks "recording" rows cut, and a purge destroys the key
 * and the file and is idempotent.
 */
#include "md_crypto.h"
#include "md_err.h"
#include "md_evidence.h"
#include "md_recording.h"
#include "md_test.h"

#include <errno.h>
#include <glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static md_evidence *ev;
static char *dir;

static uint8_t *pattern(size_t len, unsigned seed)
{
    uint8_t *p = g_malloc(len);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)((i * 131 + seed) ^ (i >> 7));
    return p;
}

static char *rec_file(const char *id)
{
    char *name = g_strconcat(id, ".rec", NULL);
    char *path = g_build_filename(dir, "recordings", name, NULL);
    g_free(name);
    return path;
}

/* Writes len bytes in uneven pieces, flushing every few pieces as the
 * recorder does once a second. */
static void write_pieces(md_evidence_rec *w, const uint8_t *data, size_t len)
{
    size_t off = 0, piece = 1000;
    for (int i = 0; off < len; i++) {
        size_t n = MIN(piece, len - off);
        ASSERT_OK(md_evidence_rec_write(w, data + off, n));
        off += n;
        piece = piece * 3 % 70001 + 17;
        if (i % 5 == 4)
            ASSERT_OK(md_evidence_rec_flush(w));
    }
}

static void check_reads(md_evidence_rec_reader *rd, const uint8_t *data, uint64_t size)
{
    ASSERT_EQ(md_evidence_rec_reader_size(rd), size);
    uint8_t *buf = g_malloc(size + 10);
    ASSERT_EQ(md_evidence_rec_reader_read(rd, 0, buf, size + 10), (ssize_t)size);
    ASSERT(memcmp(buf, data, size) == 0);
    const uint64_t offsets[] = {0, 1, 999, 65535, 65536, 100000, size - 1, size};
    for (size_t i = 0; i < G_N_ELEMENTS(offsets); i++) {
        uint64_t off = MIN(offsets[i], size);
        ssize_t n = md_evidence_rec_reader_read(rd, off, buf, 4096);
        ASSERT_EQ(n, (ssize_t)MIN(4096, size - off));
        ASSERT(memcmp(buf, data + off, (size_t)n) == 0);
    }
    g_free(buf);
}

static void test_complete_round_trip(void)
{
    const size_t len = 300000;
    uint8_t *data = pattern(len, 1), key[MD_EVIDENCE_WRAPPED_KEY_LEN];
    char sha[MD_SHA256_HEX_LEN + 1], file_sha[MD_SHA256_HEX_LEN + 1];
    uint64_t bytes = 0, file_bytes = 0;
    md_evidence_rec *w;
    md_evidence_rec_reader *rd;

    ASSERT_OK(md_evidence_rec_begin(ev, "rec-a", key, &w));
    ASSERT_EQ(md_evidence_rec_begin(ev, "rec-a", key, &w), -EEXIST);
    write_pieces(w, data, len);
    ASSERT_OK(md_evidence_rec_finish(w, sha, &bytes));
    ASSERT_OK(md_evidence_rec_file_hash(ev, "rec-a", file_sha, &file_bytes));
    ASSERT_STR_EQ(sha, file_sha);
    ASSERT_EQ(bytes, file_bytes);

    ASSERT_OK(md_evidence_rec_reader_open(ev, "rec-a", key, sizeof(key), &rd));
    ASSERT(!md_evidence_rec_reader_truncated(rd));
    check_reads(rd, data, len);
    md_evidence_rec_reader_free(rd);

    /* The key is bound to its recording, even for a copy of its file. */
    ASSERT_EQ(md_evidence_rec_reader_open(ev, "rec-b", key, sizeof(key), &rd), -MD_E_EVIDENCE_KEY);
    char *a = rec_file("rec-a"), *b = rec_file("rec-b");
    ASSERT(link(a, b) == 0);
    ASSERT_EQ(md_evidence_rec_reader_open(ev, "rec-b", key, sizeof(key), &rd), -MD_E_EVIDENCE_KEY);
    unlink(b);
    g_free(a);
    g_free(b);
    g_free(data);
}

static void test_cut_is_truncation(void)
{
    const size_t len = 200000;
    uint8_t *data = pattern(len, 2), key[MD_EVIDENCE_WRAPPED_KEY_LEN];
    md_evidence_rec *w;
    md_evidence_rec_reader *rd;

    ASSERT_OK(md_evidence_rec_begin(ev, "rec-cut", key, &w));
    ASSERT_OK(md_evidence_rec_write(w, data, 150000));
    ASSERT_OK(md_evidence_rec_flush(w));
    uint64_t sealed = md_evidence_rec_size(w);
    ASSERT_EQ(sealed, 150000);
    ASSERT_OK(md_evidence_rec_write(w, data + 150000, 1000)); /* buffered, lost */
    md_evidence_rec_abandon(w);                               /* as a SIGKILL would */

    ASSERT_OK(md_evidence_rec_reader_open(ev, "rec-cut", key, sizeof(key), &rd));
    ASSERT(md_evidence_rec_reader_truncated(rd));
    check_reads(rd, data, sealed);
    md_evidence_rec_reader_free(rd);

    /* Torn inside the last chunk: still truncation, one chunk shorter. */
    char *path = rec_file("rec-cut");
    struct stat st;
    ASSERT(stat(path, &st) == 0);
    ASSERT(truncate(path, st.st_size - 100) == 0);
    ASSERT_OK(md_evidence_rec_reader_open(ev, "rec-cut", key, sizeof(key), &rd));
    ASSERT(md_evidence_rec_reader_truncated(rd));
    ASSERT(md_evidence_rec_reader_size(rd) < sealed);
    check_reads(rd, data, md_evidence_rec_reader_size(rd));
    md_evidence_rec_reader_free(rd);
    g_free(path);
    g_free(data);
}

static void flip(const char *path, off_t at)
{
    FILE *f = fopen(path, "r+b");
    ASSERT(f);
    fseeko(f, at, SEEK_SET);
    int c = fgetc(f);
    fseeko(f, at, SEEK_SET);
    fputc(c ^ 0x20, f);
    fclose(f);
}

static void test_tamper_is_corrupt(void)
{
    const size_t len = 140000;
    uint8_t *data = pattern(len, 3), key[MD_EVIDENCE_WRAPPED_KEY_LEN], buf[4096];
    md_evidence_rec *w;
    md_evidence_rec_reader *rd;

    ASSERT_OK(md_evidence_rec_begin(ev, "rec-t", key, &w));
    write_pieces(w, data, len);
    ASSERT_OK(md_evidence_rec_finish(w, NULL, NULL));
    char *path = rec_file("rec-t");

    flip(path, 100); /* inside the first chunk */
    ASSERT_OK(md_evidence_rec_reader_open(ev, "rec-t", key, sizeof(key), &rd));
    ASSERT_EQ(md_evidence_rec_reader_read(rd, 0, buf, sizeof(buf)), -MD_E_EVIDENCE_CORRUPT);
    md_evidence_rec_reader_free(rd);
    flip(path, 100);

    /* Bytes after the final chunk. */
    FILE *f = fopen(path, "ab");
    fwrite("junkjunkjunkjunkjunkjunk", 1, 24, f);
    fclose(f);
    ASSERT_EQ(md_evidence_rec_reader_open(ev, "rec-t", key, sizeof(key), &rd),
              -MD_E_EVIDENCE_CORRUPT);
    g_free(path);
    g_free(data);
}

static void test_rows(void)
{
    char *db = g_build_filename(dir, "rec.db", NULL);
    md_store *st;
    md_evidence_rec *w;
    md_evidence_rec_reader *rd;
    md_recording rec;
    char *id = NULL, *crashed = NULL;
    char sha[MD_SHA256_HEX_LEN + 1];
    uint64_t bytes;

    ASSERT_OK(md_store_open(db, &st));
    ASSERT_OK(md_recording_begin(st, ev, "s1", 1000, &id, &w));
    ASSERT_OK(md_evidence_rec_write(w, "matroska bytes", 14));
    ASSERT_OK(md_evidence_rec_finish(w, sha, &bytes));
    ASSERT_OK(md_recording_set_codec(st, id, "VP8"));
    ASSERT_OK(md_recording_end(st, id, MD_RECORDING_COMPLETE, 11000, 10000, sha, bytes));
    ASSERT_EQ(md_recording_get(st, id, &rec), 1);
    ASSERT_EQ(rec.state, MD_RECORDING_COMPLETE);
    ASSERT_STR_EQ(rec.codec, "VP8");
    ASSERT_STR_EQ(rec.sha256, sha);
    ASSERT(rec.has_key);
    md_recording_clear(&rec);

    /* A crash: the row stays "recording" until recovery marks it cut. */
    ASSERT_OK(md_recording_begin(st, ev, "s2", 2000, &crashed, &w));
    ASSERT_OK(md_evidence_rec_write(w, "partial", 7));
    ASSERT_OK(md_evidence_rec_flush(w));
    md_evidence_rec_abandon(w);
    ASSERT_EQ(md_recording_purge(st, ev, crashed, 3000), -MD_E_SESSION_STATE);
    ASSERT_EQ(md_recording_recover(st, ev, 5000), 1);
    ASSERT_EQ(md_recording_recover(st, ev, 5000), 0);
    ASSERT_EQ(md_recording_get(st, crashed, &rec), 1);
    ASSERT_EQ(rec.state, MD_RECORDING_CUT);
    ASSERT(rec.sha256 && strlen(rec.sha256) == MD_SHA256_HEX_LEN);
    md_recording_clear(&rec);
    ASSERT_OK(md_recording_open(st, ev, crashed, &rd));
    ASSERT(md_evidence_rec_reader_truncated(rd));
    ASSERT_EQ(md_evidence_rec_reader_size(rd), 7);
    md_evidence_rec_reader_free(rd);

    /* Purge: key and file gone, export refused, a second run is a no-op. */
    ASSERT_EQ(md_recording_purge(st, ev, id, 9000), 1);
    ASSERT_EQ(md_recording_purge(st, ev, id, 9000), 0);
    ASSERT_EQ(md_recording_open(st, ev, id, &rd), -MD_E_RECORDING_PURGED);
    char *path = rec_file(id);
    ASSERT(access(path, F_OK) != 0);
    g_free(path);
    ASSERT_EQ(md_recording_get(st, id, &rec), 1);
    ASSERT_EQ(rec.state, MD_RECORDING_PURGED);
    ASSERT(!rec.has_key);
    md_recording_clear(&rec);
    ASSERT_EQ(md_recording_open(st, ev, "rec-none", &rd), -MD_E_RECORDING_UNKNOWN);

    free(id);
    free(crashed);
    md_store_close(st);
    g_free(db);
}

int main(void)
{
    char *tmp = md_test_tmpdir();
    dir = g_build_filename(tmp, "evidence", NULL);
    char *master = g_build_filename(tmp, "master.key", NULL);
    ASSERT_OK(md_evidence_open(dir, master, &ev));
    RUN(test_complete_round_trip);
    RUN(test_cut_is_truncation);
    RUN(test_tamper_is_corrupt);
    RUN(test_rows);
    md_evidence_free(ev);
    g_free(master);
    g_free(dir);
    free(tmp);
    return 0;
}
