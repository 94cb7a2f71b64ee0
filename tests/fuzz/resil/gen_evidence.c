/*
 * Writes the seed corpus of fuzz_evidence (tests/fuzz/resil/corpus/evidence)
 * with the real writer: a session key wrapped by the harness's fixed master
 * key, a committed file (one chunk), a two-record chat transcript and a
 * recording of two chunks (with its wrapped key), each
 * prefixed with the harness's selector byte.  Run by hand when the container
 * format changes:  gen_evidence OUT_DIR.  The wrapped key is printed as the
 * C array fuzz_evidence.c embeds.
 */
#include "md_evidence.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void save(const char *out, const char *name, uint8_t selector, const char *src)
{
    gchar *data;
    gsize len;
    if (!g_file_get_contents(src, &data, &len, NULL))
        abort();
    GString *s = g_string_new_len((const char *)&selector, 1);
    g_string_append_len(s, data, (gssize)len);
    g_autofree char *path = g_build_filename(out, name, NULL);
    g_file_set_contents(path, s->str, (gssize)s->len, NULL);
    g_string_free(s, TRUE);
    g_free(data);
}

int main(int argc, char **argv)
{
    static const uint8_t master[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                       12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                       23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
    if (argc != 2)
        return 2;
    g_autofree char *tmp = g_dir_make_tmp("md-gen-XXXXXX", NULL);
    g_autofree char *dir = g_build_filename(tmp, "ev", NULL);
    g_autofree char *mk = g_build_filename(tmp, "master.key", NULL);
    g_file_set_contents(mk, (const char *)master, sizeof(master), NULL);
    g_chmod(mk, 0600);
    md_evidence *ev;
    if (md_evidence_open(dir, mk, &ev) < 0 || md_evidence_session_key(ev, "s1") < 0)
        return 1;
    md_evidence_file *w;
    if (md_evidence_file_begin(ev, "s1", "f", &w) < 0)
        return 1;
    static uint8_t buf[3000];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 7);
    md_evidence_file_write(w, buf, sizeof(buf));
    if (md_evidence_file_commit(w, NULL) < 0)
        return 1;
    md_evidence_chat_append(ev, "s1", "{\"type\":\"chat\",\"text\":\"a\"}", 26);
    md_evidence_chat_append(ev, "s1", "{\"type\":\"chat\",\"text\":\"b\"}", 26);
    uint8_t wrapped[MD_EVIDENCE_WRAPPED_KEY_LEN];
    md_evidence_rec *rec;
    if (md_evidence_rec_begin(ev, "r1", wrapped, &rec) < 0)
        return 1;
    md_evidence_rec_write(rec, buf, 1000);
    md_evidence_rec_flush(rec);
    md_evidence_rec_write(rec, buf, 2000);
    if (md_evidence_rec_finish(rec, NULL, NULL) < 0)
        return 1;
    g_autofree char *rp = g_build_filename(dir, "recordings", "r1.rec", NULL);
    save(argv[1], "recording", 3, rp);
    printf("static const uint8_t r1_key[%d] = {", MD_EVIDENCE_WRAPPED_KEY_LEN);
    for (int i = 0; i < MD_EVIDENCE_WRAPPED_KEY_LEN; i++)
        printf("%s%u", i ? ", " : "", wrapped[i]);
    printf("};\n");
    g_autofree char *f = g_build_filename(dir, "sessions", "s1", "f.ev", NULL);
    g_autofree char *t = g_build_filename(dir, "sessions", "s1", "transcript", NULL);
    g_autofree char *k = g_build_filename(dir, "keys", "s1.key", NULL);
    save(argv[1], "file", 0, f);
    save(argv[1], "transcript", 1, t);
    save(argv[1], "key", 2, k);
    gchar *key;
    gsize len;
    g_file_get_contents(k, &key, &len, NULL);
    printf("static const uint8_t s1_key[%zu] = {", len);
    for (gsize i = 0; i < len; i++)
        printf("%s%u", i ? ", " : "", (uint8_t)key[i]);
    printf("};\n");
    g_free(key);
    md_evidence_free(ev);
    return 0;
}
