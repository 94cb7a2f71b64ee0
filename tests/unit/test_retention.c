/*
 * Retention (signaling/md_retention.h) on a real store, audit log and
 * evidence directory: only what is past its own municipality's
 * retention_days is purged (recordings: key then file; a session's evidence:
 * key then files and transcript; the file names blanked), each purge audited once; a recording
 * still being written and a municipality whose policy cannot be read are left alone; a second run
 * changes nothing.
 */
#include "md_audit.h"
#include "md_err.h"
#include "md_evidence.h"
#include "md_recording.h"
#include "md_retention.h"
#include "md_sealed.h"
#include "md_test.h"

#include <glib.h>
#include <glib/gstdio.h>

#define DAY_MS (24LL * 3600 * 1000)
#define NOW_MS 1800000000000LL

struct fixture {
    char *dir;
    md_store *st;
    md_audit *audit;
    md_evidence *ev;
};

static void fixture_open(struct fixture *f)
{
    f->dir = g_dir_make_tmp("md-retention-XXXXXX", NULL);
    ASSERT(f->dir != NULL);
    g_autofree char *db = g_build_filename(f->dir, "db.sqlite", NULL);
    g_autofree char *key = g_build_filename(f->dir, "audit.key", NULL);
    g_autofree char *evdir = g_build_filename(f->dir, "evidence", NULL);
    g_autofree char *master = g_build_filename(f->dir, "evidence.key", NULL);
    ASSERT_OK(md_store_open(db, &f->st));
    ASSERT_OK(md_audit_open(f->st, key, 1000, 3600, &f->audit));
    ASSERT_OK(md_evidence_open(evdir, master, &f->ev));
    uint8_t field_key[MD_SEALED_KEY_LEN];
    ASSERT_OK(md_evidence_field_key(f->ev, field_key));
    md_store_set_field_key(f->st, field_key);
}

static void add_municipality(struct fixture *f, const char *code, const char *policy)
{
    ASSERT_OK(md_store_exec(f->st,
                            "INSERT INTO municipality (code, name, policy, updated_at)"
                            " VALUES (?, ?, ?, 0)",
                            MD_PARAMS(MD_P_TEXT(code), MD_P_TEXT(code), MD_P_TEXT(policy))));
}

/* An ended session with a chat transcript (its evidence key and file). */
static void add_session(struct fixture *f, const char *id, const char *municipality,
                        int64_t ended_ms)
{
    ASSERT_OK(md_store_exec(f->st,
                            "INSERT INTO verification_session (id, municipality, post_office,"
                            " device, procedure, state, requested_at, ended_at)"
                            " VALUES (?, ?, 'PO', 'TAB', 'mynumber.new', 'ended', ?, ?)",
                            MD_PARAMS(MD_P_TEXT(id), MD_P_TEXT(municipality),
                                      MD_P_INT(ended_ms - 60000), MD_P_INT(ended_ms))));
    ASSERT_OK(md_evidence_chat_append(f->ev, id, "{\"text\":\"x\"}", 12));
    /* A file row, its name sealed as md_session_chat.c stores it. */
    g_autofree char *context = g_strconcat("evidence.name:", id, "/f1", NULL);
    g_autofree char *sealed = NULL;
    ASSERT_OK(md_store_seal(f->st, context, "山田太郎の住民票.pdf", &sealed));
    ASSERT_OK(md_store_exec(f->st,
                            "INSERT INTO evidence (session_id, file_id, leg, kind, name, mime,"
                            " size, sha256, created_at) VALUES (?, 'f1', 'tablet', 'file', ?,"
                            " 'application/pdf', 1, 'x', 0)",
                            MD_PARAMS(MD_P_TEXT(id), MD_P_TEXT(sealed))));
}

/* The file name of a session's evidence row, unsealed (g_free). */
static char *file_name(struct fixture *f, const char *session)
{
    g_autofree char *stored = NULL;
    char *plain = NULL;
    ASSERT_EQ(md_store_query_text(f->st, "SELECT name FROM evidence WHERE session_id = ?",
                                  MD_PARAMS(MD_P_TEXT(session)), &stored),
              1);
    g_autofree char *context = g_strconcat("evidence.name:", session, "/f1", NULL);
    ASSERT_OK(md_store_unseal(f->st, context, stored, &plain));
    return plain;
}

/* A finished recording of a session; returns its id (g_free). */
static char *add_recording(struct fixture *f, const char *session, int64_t ended_ms, bool finish)
{
    char *id = NULL;
    md_evidence_rec *w = NULL;
    ASSERT_OK(md_recording_begin(f->st, f->ev, session, ended_ms - 5000, &id, &w));
    ASSERT_OK(md_evidence_rec_write(w, "matroska-ish", 12));
    if (!finish) {
        md_evidence_rec_abandon(w); /* still "recording" in the table */
        return id;
    }
    char sha[65];
    uint64_t bytes = 0;
    ASSERT_OK(md_evidence_rec_finish(w, sha, &bytes));
    ASSERT_OK(md_recording_end(f->st, id, MD_RECORDING_COMPLETE, ended_ms, 5000, sha, bytes));
    return id;
}

static int64_t count(struct fixture *f, const char *sql)
{
    int64_t n = -1;
    ASSERT_OK(md_store_query_int(f->st, sql, MD_NO_PARAMS, &n));
    return n;
}

static void test_purges_only_what_is_due(void)
{
    struct fixture f = {0};
    fixture_open(&f);
    add_municipality(&f, "111111", "{\"retention_days\": 1}");
    add_municipality(&f, "222222", "{\"retention_days\": 30}");
    add_municipality(&f, "333333", "{\"retention_dayz\": 1}"); /* unreadable: keep everything */

    add_session(&f, "old-1", "111111", NOW_MS - 2 * DAY_MS);
    add_session(&f, "new-1", "111111", NOW_MS - 3600 * 1000);
    add_session(&f, "old-2", "222222", NOW_MS - 2 * DAY_MS);
    add_session(&f, "old-3", "333333", NOW_MS - 400 * DAY_MS);
    g_autofree char *due = add_recording(&f, "old-1", NOW_MS - 2 * DAY_MS, true);
    g_autofree char *writing = add_recording(&f, "old-1", NOW_MS - 2 * DAY_MS, false);
    g_autofree char *young = add_recording(&f, "new-1", NOW_MS - 3600 * 1000, true);
    g_autofree char *other = add_recording(&f, "old-2", NOW_MS - 2 * DAY_MS, true);

    md_retention_result res = {0};
    ASSERT_OK(md_retention_run(f.st, f.audit, f.ev, "operator", NOW_MS, NULL, &res));
    ASSERT_EQ(res.recordings, 1);
    ASSERT_EQ(res.sessions, 1);
    ASSERT_EQ(res.leftovers, 0);
    ASSERT_EQ(res.failures, 0);

    ASSERT(!md_evidence_session_exists(f.ev, "old-1"));
    ASSERT(md_evidence_session_exists(f.ev, "new-1"));
    ASSERT(md_evidence_session_exists(f.ev, "old-2"));
    ASSERT(md_evidence_session_exists(f.ev, "old-3"));
    g_autofree char *gone = file_name(&f, "old-1"), *kept_name = file_name(&f, "new-1");
    ASSERT_STR_EQ(gone, ""); /* the row stays for the audit's ids; the name goes */
    ASSERT_STR_EQ(kept_name, "山田太郎の住民票.pdf");

    md_recording rec = {0};
    ASSERT_EQ(md_recording_get(f.st, due, &rec), 1);
    ASSERT_EQ(rec.state, MD_RECORDING_PURGED);
    ASSERT(!rec.has_key);
    md_recording_clear(&rec);
    md_evidence_rec_reader *rd = NULL;
    ASSERT_EQ(md_recording_open(f.st, f.ev, due, &rd), -MD_E_RECORDING_PURGED);
    char sha[65];
    uint64_t bytes;
    ASSERT_EQ(md_evidence_rec_file_hash(f.ev, due, sha, &bytes), -ENOENT);
    const char *kept[] = {young, other};
    for (size_t i = 0; i < G_N_ELEMENTS(kept); i++) {
        ASSERT_EQ(md_recording_get(f.st, kept[i], &rec), 1);
        ASSERT_EQ(rec.state, MD_RECORDING_COMPLETE);
        ASSERT(rec.has_key);
        md_recording_clear(&rec);
    }
    ASSERT_EQ(md_recording_get(f.st, writing, &rec), 1);
    ASSERT_EQ(rec.state, MD_RECORDING_RECORDING); /* serve closes it first */
    md_recording_clear(&rec);

    ASSERT_EQ(count(&f, "SELECT COUNT(*) FROM audit WHERE event = 'retention_purge'"), 2);
    ASSERT_EQ(count(&f, "SELECT COUNT(*) FROM verification_session"
                        " WHERE evidence_purged_at IS NOT NULL"),
              1);

    /* Again: nothing to do, nothing written. */
    int64_t entries = count(&f, "SELECT COUNT(*) FROM audit");
    ASSERT_OK(md_retention_run(f.st, f.audit, f.ev, "operator", NOW_MS, NULL, &res));
    ASSERT_EQ(res.recordings + res.sessions + res.leftovers + res.failures, 0);
    ASSERT_EQ(count(&f, "SELECT COUNT(*) FROM audit"), entries);

    /* A month later the 30-day municipality's turn comes; still not the
     * unreadable one's. */
    ASSERT_OK(md_retention_run(f.st, f.audit, f.ev, "operator", NOW_MS + 31 * DAY_MS, NULL, &res));
    ASSERT_EQ(res.recordings, 2); /* young (1-day policy) and other */
    ASSERT_EQ(res.sessions, 2);   /* new-1 and old-2 */
    ASSERT(md_evidence_session_exists(f.ev, "old-3"));

    md_evidence_free(f.ev);
    md_audit_close(f.audit);
    md_store_close(f.st);
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f.dir);
    ASSERT_EQ(system(cmd), 0);
    g_free(f.dir);
}

int main(void)
{
    RUN(test_purges_only_what_is_due);
    return 0;
}
