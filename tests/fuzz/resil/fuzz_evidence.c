/*
 * libFuzzer harness for the evidence container readers (core/md_evidence.c):
 * the input becomes, in turn, a committed file (sessions/S/F.ev), a chat
 * transcript (sessions/S/transcript) and a wrapped session key
 * (keys/S.key) of a store whose master key is fixed, or a recording
 * (recordings/r1.rec), and is read back with md_evidence_file_read, the
 * chunk reader, md_evidence_chat_read or the recording reader.  A
 * hostile or damaged file must be refused (-MD_E_EVIDENCE_CORRUPT,
 * -MD_E_EVIDENCE_KEY) without crash or leak.  The first byte picks the
 * target; valid containers are in the corpus (written by
 * tests/fuzz/resil/make_corpus.py from the real writer).
 * Replayed from tests/fuzz/resil/corpus/evidence.
 */
#include "fuzz_common.h"
#include "md_evidence.h"

#include <glib/gstdio.h>

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SESSION "s1"

/* keys/s1.key as gen_evidence wrote it under the fixed master key below:
 * the corpus's files and transcripts open with it. */
static const uint8_t s1_key[68] = {
    77,  68,  69,  86,  75,  69,  89,  49,  103, 137, 162, 151, 19,  188, 169, 102, 210,
    10,  145, 141, 246, 157, 11,  190, 176, 202, 241, 82,  127, 237, 58,  47,  144, 225,
    41,  173, 94,  152, 97,  113, 208, 12,  56,  91,  156, 185, 167, 45,  150, 103, 9,
    244, 27,  143, 115, 162, 212, 124, 245, 125, 112, 151, 170, 210, 70,  110, 203, 127};

/* The wrapped key of recordings/r1.rec (the corpus's "recording"), as
 * gen_evidence's md_evidence_rec_begin returned it. */
static const uint8_t r1_key[68] = {
    77,  68,  69,  86,  82,  75,  89,  49,  94,  233, 66,  90,  192, 93,  231, 182, 27,
    207, 249, 113, 214, 199, 125, 87,  250, 32,  75,  239, 144, 10,  151, 82,  8,   157,
    88,  53,  235, 59,  30,  109, 115, 75,  232, 133, 51,  135, 9,   202, 70,  252, 248,
    54,  113, 55,  195, 152, 212, 89,  197, 186, 7,   121, 161, 124, 197, 47,  194, 73};

static md_evidence *ev;
static char *sessions_dir, *keys_dir;

static int sink(const uint8_t *buf, size_t len, void *ud)
{
    (void)buf;
    *(size_t *)ud += len;
    return 0;
}

static int record_sink(uint64_t seq, const uint8_t *buf, size_t len, void *ud)
{
    (void)seq, (void)buf;
    *(size_t *)ud += len;
    return 0;
}

static void put(const char *dir, const char *name, const uint8_t *data, size_t size)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    if (!g_file_set_contents(path, (const char *)data, (gssize)size, NULL))
        abort();
}

static void set_up(void)
{
    g_autofree char *dir = g_build_filename(fuzz_dir(), "evidence", NULL);
    g_autofree char *master = g_build_filename(fuzz_dir(), "master.key", NULL);
    static const uint8_t key[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
    if (!g_file_set_contents(master, (const char *)key, sizeof(key), NULL) ||
        g_chmod(master, 0600) < 0 || md_evidence_open(dir, master, &ev) < 0)
        abort();
    sessions_dir = g_build_filename(dir, "sessions", SESSION, NULL);
    keys_dir = g_build_filename(dir, "keys", NULL);
    put(keys_dir, SESSION ".key", s1_key, sizeof(s1_key));
    if (md_evidence_session_key(ev, SESSION) != 0) /* 0: loaded, not created */
        abort();
    g_mkdir_with_parents(sessions_dir, 0700);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ev)
        set_up();
    if (size < 1)
        return 0;
    size_t total = 0;
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    switch (data[0] % 4) {
    case 0: {
        put(sessions_dir, "f.ev", body, len);
        md_evidence_file_read(ev, SESSION, "f", sink, &total);
        md_evidence_reader *rd = NULL;
        if (md_evidence_reader_open(ev, SESSION, "f", &rd) == 0) {
            const uint8_t *buf;
            size_t n;
            while (md_evidence_reader_next(rd, &buf, &n) > 0)
                total += n;
            md_evidence_reader_free(rd);
        }
        break;
    }
    case 1:
        put(sessions_dir, "transcript", body, len);
        md_evidence_chat_read(ev, SESSION, record_sink, &total);
        break;
    case 2: {
        /* A wrapped key for another session, read through a fresh store
         * (the key cache would otherwise answer). */
        put(keys_dir, "k2.key", body, len);
        g_autofree char *dir = g_build_filename(fuzz_dir(), "evidence", NULL);
        g_autofree char *master = g_build_filename(fuzz_dir(), "master.key", NULL);
        md_evidence *fresh = NULL;
        if (md_evidence_open(dir, master, &fresh) == 0) {
            md_evidence_file_read(fresh, "k2", "f", sink, &total);
            md_evidence_free(fresh);
        }
        break;
    }
    case 3: {
        /* A recording (written in place while the call runs; a cut one is
         * normal, a tampered one must be refused). */
        g_autofree char *rdir = g_build_filename(fuzz_dir(), "evidence", "recordings", NULL);
        g_mkdir_with_parents(rdir, 0700);
        put(rdir, "r1.rec", body, len);
        md_evidence_rec_reader *rd = NULL;
        if (md_evidence_rec_reader_open(ev, "r1", r1_key, sizeof(r1_key), &rd) == 0) {
            uint8_t buf[4096];
            uint64_t plain = md_evidence_rec_reader_size(rd);
            md_evidence_rec_reader_truncated(rd);
            for (uint64_t off = 0; off < plain + 10; off += sizeof(buf) - 7) {
                ssize_t n = md_evidence_rec_reader_read(rd, off, buf, sizeof(buf));
                if (n <= 0)
                    break;
                total += (size_t)n;
            }
            md_evidence_rec_reader_free(rd);
        }
        break;
    }
    }
    return 0;
}
