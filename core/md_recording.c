/*
 * The recording table (md_recording.h).  A row is written before the first
 * byte of media, so a crash always leaves a row that names its file; the
 * wrapped data key lives only in the row, so destroying it (purge) makes the
 * ciphertext unreadable even if a copy of the file survives.  Control
 * thread, or a CLI command.
 */
#include "md_recording.h"
#include "md_crypto.h"
#include "md_err.h"

#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const state_names[] = {"recording", "complete", "cut", "purged"};

const char *md_recording_state_name(md_recording_state s)
{
    return (unsigned)s < G_N_ELEMENTS(state_names) ? state_names[s] : "unknown";
}

static md_recording_state state_from_name(const char *name)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(state_names); i++)
        if (name && strcmp(name, state_names[i]) == 0)
            return (md_recording_state)i;
    return MD_RECORDING_CUT;
}

void md_recording_clear(md_recording *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->session_id);
    free(r->file);
    free(r->codec);
    free(r->sha256);
    memset(r, 0, sizeof(*r));
}

static char *dup_text(const md_row *row, int col)
{
    const char *s = md_row_text(row, col);
    return s ? strdup(s) : NULL;
}

#define COLUMNS                                                                                    \
    "id, session_id, file, codec, state, started_at, ended_at, duration_ms, sha256, bytes, "       \
    "wrapped_key IS NOT NULL"

static void row_to_recording(const md_row *row, md_recording *r)
{
    r->id = dup_text(row, 0);
    r->session_id = dup_text(row, 1);
    r->file = dup_text(row, 2);
    r->codec = dup_text(row, 3);
    r->state = state_from_name(md_row_text(row, 4));
    r->started_at = md_row_int(row, 5);
    r->ended_at = md_row_int(row, 6);
    r->duration_ms = md_row_int(row, 7);
    r->sha256 = dup_text(row, 8);
    r->bytes = (uint64_t)md_row_int(row, 9);
    r->has_key = md_row_int(row, 10) != 0;
}

int md_recording_begin(md_store *st, md_evidence *ev, const char *session_id, int64_t now_ms,
                       char **ret_id, md_evidence_rec **ret_writer)
{
    uint8_t rnd[16], wrapped[MD_EVIDENCE_WRAPPED_KEY_LEN];
    md_evidence_rec *w = NULL;
    char *id = NULL, *b64 = NULL, *file = NULL;
    int r;

    if (!st || !ev || !session_id || !*session_id || strlen(session_id) > 128 || !ret_id ||
        !ret_writer)
        return -EINVAL;
    if ((r = md_random_bytes(rnd, sizeof(rnd))) < 0)
        return r;
    b64 = md_base64url_encode(rnd, sizeof(rnd));
    if (!b64)
        return -ENOMEM;
    id = g_strconcat("rec-", b64, NULL);
    file = g_strconcat("recordings/", id, ".rec", NULL);
    if ((r = md_evidence_rec_begin(ev, id, wrapped, &w)) < 0)
        goto out;
    r = md_store_exec(
        st,
        "INSERT INTO recording (id, session_id, file, wrapped_key, state, started_at) "
        "VALUES (?, ?, ?, ?, 'recording', ?)",
        MD_PARAMS(MD_P_TEXT(id), MD_P_TEXT(session_id), MD_P_TEXT(file),
                  MD_P_BLOB(wrapped, sizeof(wrapped)), MD_P_INT(now_ms)));
    if (r < 0) {
        md_evidence_rec_abandon(w);
        md_evidence_rec_remove(ev, id);
        goto out;
    }
    *ret_id = strdup(id);
    *ret_writer = w;
    r = 0;
out:
    md_wipe(wrapped, sizeof(wrapped));
    free(b64);
    g_free(id);
    g_free(file);
    return r;
}

int md_recording_set_codec(md_store *st, const char *id, const char *codec)
{
    int r = md_store_exec(st, "UPDATE recording SET codec = ? WHERE id = ?",
                          MD_PARAMS(MD_P_TEXT(codec), MD_P_TEXT(id)));
    return r < 0 ? r : r == 0 ? -MD_E_RECORDING_UNKNOWN : 0;
}

int md_recording_end(md_store *st, const char *id, md_recording_state state, int64_t ended_ms,
                     int64_t duration_ms, const char *sha256_hex, uint64_t bytes)
{
    if (state != MD_RECORDING_COMPLETE && state != MD_RECORDING_CUT)
        return -EINVAL;
    int r = md_store_exec(st,
                          "UPDATE recording SET state = ?, ended_at = ?, duration_ms = ?, "
                          "sha256 = ?, bytes = ? WHERE id = ? AND state = 'recording'",
                          MD_PARAMS(MD_P_TEXT(md_recording_state_name(state)), MD_P_INT(ended_ms),
                                    MD_P_INT(duration_ms),
                                    MD_P_TEXT(sha256_hex && *sha256_hex ? sha256_hex : NULL),
                                    MD_P_INT(bytes), MD_P_TEXT(id)));
    return r < 0 ? r : r == 0 ? -MD_E_RECORDING_UNKNOWN : 0;
}

static int collect_row(const md_row *row, void *ud)
{
    GArray *rows = ud;
    md_recording rec = {0};
    row_to_recording(row, &rec);
    g_array_append_val(rows, rec);
    return 0;
}

struct key_query {
    uint8_t *out;
    bool found, has;
};

static int key_row(const md_row *row, void *ud)
{
    struct key_query *q = ud;
    size_t len = 0;
    const void *b = md_row_blob(row, 0, &len);
    q->found = true;
    if (b && len == MD_EVIDENCE_WRAPPED_KEY_LEN) {
        memcpy(q->out, b, len);
        q->has = true;
    }
    return 1;
}

int md_recording_open(md_store *st, md_evidence *ev, const char *id, md_evidence_rec_reader **ret)
{
    uint8_t wrapped[MD_EVIDENCE_WRAPPED_KEY_LEN];
    struct key_query q = {.out = wrapped};
    int r;

    if (!st || !ev || !id || !ret)
        return -EINVAL;
    r = md_store_query(st, "SELECT wrapped_key FROM recording WHERE id = ?",
                       MD_PARAMS(MD_P_TEXT(id)), key_row, &q);
    if (r < 0)
        return r;
    if (!q.found)
        return -MD_E_RECORDING_UNKNOWN;
    if (!q.has)
        return -MD_E_RECORDING_PURGED;
    r = md_evidence_rec_reader_open(ev, id, wrapped, sizeof(wrapped), ret);
    md_wipe(wrapped, sizeof(wrapped));
    return r;
}

int md_recording_recover(md_store *st, md_evidence *ev, int64_t now_ms)
{
    GArray *rows = g_array_new(false, true, sizeof(md_recording));
    int r, changed = 0;

    r = md_store_query(st, "SELECT " COLUMNS " FROM recording WHERE state = 'recording'",
                       MD_NO_PARAMS, collect_row, rows);
    if (r < 0)
        goto out;
    for (guint i = 0; i < rows->len; i++) {
        md_recording *rec = &g_array_index(rows, md_recording, i);
        md_evidence_rec_reader *rd = NULL;
        char sha[MD_SHA256_HEX_LEN + 1] = "";
        uint64_t bytes = 0;
        int64_t ended = now_ms;
        struct stat sb;
        bool complete = false;

        /* The file's last write is when the recording stopped. */
        char *path = g_build_filename(md_evidence_dir(ev), rec->file, NULL);
        if (stat(path, &sb) == 0)
            ended = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
        g_free(path);
        md_evidence_rec_file_hash(ev, rec->id, sha, &bytes);
        if (md_recording_open(st, ev, rec->id, &rd) == 0)
            complete = !md_evidence_rec_reader_truncated(rd);
        md_evidence_rec_reader_free(rd);
        int64_t duration = ended > rec->started_at ? ended - rec->started_at : 0;
        r = md_recording_end(st, rec->id, complete ? MD_RECORDING_COMPLETE : MD_RECORDING_CUT,
                             ended, duration, sha, bytes);
        if (r < 0)
            goto out;
        changed++;
    }
    r = changed;
out:
    for (guint i = 0; i < rows->len; i++)
        md_recording_clear(&g_array_index(rows, md_recording, i));
    g_array_free(rows, true);
    return r;
}

int md_recording_get(md_store *st, const char *id, md_recording *ret)
{
    GArray *rows = g_array_new(false, true, sizeof(md_recording));
    int r = md_store_query(st, "SELECT " COLUMNS " FROM recording WHERE id = ?",
                           MD_PARAMS(MD_P_TEXT(id)), collect_row, rows);
    if (r >= 0 && rows->len == 1) {
        *ret = g_array_index(rows, md_recording, 0);
        r = 1;
    } else {
        for (guint i = 0; i < rows->len; i++)
            md_recording_clear(&g_array_index(rows, md_recording, i));
        r = r < 0 ? r : 0;
    }
    g_array_free(rows, true);
    return r;
}

struct list_query {
    md_recording_cb cb;
    void *ud;
};

static int list_row(const md_row *row, void *ud)
{
    struct list_query *q = ud;
    md_recording rec = {0};
    row_to_recording(row, &rec);
    int r = q->cb(&rec, q->ud);
    md_recording_clear(&rec);
    return r;
}

int md_recording_list(md_store *st, const char *session_id, md_recording_cb cb, void *userdata)
{
    struct list_query q = {.cb = cb, .ud = userdata};
    if (!st || !cb)
        return -EINVAL;
    if (session_id)
        return md_store_query(st,
                              "SELECT " COLUMNS " FROM recording WHERE session_id = ? "
                              "ORDER BY started_at, id",
                              MD_PARAMS(MD_P_TEXT(session_id)), list_row, &q);
    return md_store_query(st, "SELECT " COLUMNS " FROM recording ORDER BY started_at, id",
                          MD_NO_PARAMS, list_row, &q);
}

int md_recording_purge(md_store *st, md_evidence *ev, const char *id, int64_t now_ms)
{
    md_recording rec = {0};
    int r = md_recording_get(st, id, &rec);
    if (r <= 0)
        return r < 0 ? r : -MD_E_RECORDING_UNKNOWN;
    if (rec.state == MD_RECORDING_RECORDING) {
        r = -MD_E_SESSION_STATE;
        goto out;
    }
    bool key_destroyed = false;
    if (rec.has_key || rec.state != MD_RECORDING_PURGED) {
        /* The key first: once it is gone the file is noise, whatever
         * happens to the unlink below. */
        r = md_store_exec(st,
                          "UPDATE recording SET wrapped_key = NULL, state = 'purged', "
                          "purged_at = ? WHERE id = ?",
                          MD_PARAMS(MD_P_INT(now_ms), MD_P_TEXT(id)));
        if (r < 0)
            goto out;
        key_destroyed = true;
    }
    /* An interrupted earlier purge may have left the file. */
    int u = md_evidence_rec_remove(ev, id);
    if (u < 0 && u != -ENOENT) {
        r = u;
        goto out;
    }
    r = key_destroyed || u == 0 ? 1 : 0;
out:
    md_recording_clear(&rec);
    return r;
}
