/*
 * Retention run (md_retention.h).  For each municipality, its policy gives
 * retention_days and so a cutoff; then:
 *
 *   recordings  complete or cut, ended before the cutoff: audited
 *               "retention_purge" {kind: recording, recording}, then
 *               md_recording_purge() (the row's wrapped key is destroyed in
 *               its own transaction first, then the file deleted).  Rows
 *               already purged whose file is still there (a purge killed
 *               between the two steps) get the file deleted.
 *   evidence    sessions that ended (or were last seen) before the cutoff and
 *               are not marked evidence_purged_at: if they have anything on
 *               disk, audited "retention_purge" {kind: session_evidence,
 *               files}, then md_evidence_session_destroy() (the wrapped
 *               session key first, then files and transcript), the evidence
 *               rows' file names blanked (they may be personal data; sealed
 *               but readable with the master key), and the session marked.
 *
 * The audit entry comes first so that nothing is destroyed unrecorded; a
 * run killed after it repeats that purge (and its entry) next time, and a
 * completed run leaves nothing for the next one.  Recordings still being
 * written are never touched (serve closes those at start-up).
 */
#include "md_retention.h"
#include "md_err.h"
#include "md_log.h"
#include "md_recording.h"
#include "md_registry.h"
#include "md_sealed.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

#define DAY_MS (24LL * 3600 * 1000)

struct municipality_cutoff {
    char *code;
    int64_t cutoff_ms;
};

struct run {
    md_store *st;
    md_audit *audit;
    md_evidence *ev;
    const char *actor;
    int64_t now_ms;
    FILE *report;
    md_retention_result result;
};

static void cutoff_free(gpointer p)
{
    struct municipality_cutoff *c = p;
    g_free(c->code);
    g_free(c);
}

static int collect_cutoff(const md_row *row, void *userdata)
{
    GPtrArray *list = userdata;
    const char *code = md_row_text(row, 0), *policy_text = md_row_text(row, 1);
    int64_t now_ms = md_row_int(row, 2);
    json_t *doc = policy_text ? json_loads(policy_text, 0, NULL) : NULL;
    md_policy policy;
    char *error = NULL;
    int r = md_policy_parse(doc, &policy, &error);
    json_decref(doc);
    if (r < 0) {
        /* An unreadable policy keeps everything: never purge on a guess. */
        md_warn("retention", "policy_unreadable", "{s:s, s:s}", "municipality", code ? code : "",
                "error", error ? error : md_strerror(r));
        g_free(error);
        return 0;
    }
    struct municipality_cutoff *c = g_new0(struct municipality_cutoff, 1);
    c->code = g_strdup(code);
    c->cutoff_ms = now_ms - (int64_t)policy.retention_days * DAY_MS;
    md_policy_clear(&policy);
    g_ptr_array_add(list, c);
    return 0;
}

static int64_t audit_purge(struct run *run, const char *event, const char *municipality,
                           const char *session, json_t *detail /* stolen */)
{
    return md_audit_append_new(run->audit, run->actor, event, municipality, NULL, session, detail);
}

static void purge_failed(struct run *run, const char *kind, const char *id,
                         const char *municipality, const char *session, int err)
{
    run->result.failures++;
    md_error("retention", "purge_failed", "{s:s, s:s, s:s}", "kind", kind, "id", id, "error",
             md_strerror(err));
    audit_purge(run, "retention_purge_failed", municipality, session,
                json_pack("{s:s, s:s, s:s}", "kind", kind, "id", id, "code", md_err_code(err)));
    if (run->report)
        fprintf(run->report, "failed %s %s: %s\n", kind, id, md_strerror(err));
}

/* ---- recordings ---- */

struct recording_ref {
    char *id, *session;
};

static void recording_ref_free(gpointer p)
{
    struct recording_ref *r = p;
    g_free(r->id);
    g_free(r->session);
    g_free(r);
}

static int collect_recording(const md_row *row, void *userdata)
{
    struct recording_ref *r = g_new0(struct recording_ref, 1);
    r->id = g_strdup(md_row_text(row, 0));
    r->session = g_strdup(md_row_text(row, 1));
    g_ptr_array_add(userdata, r);
    return 0;
}

static int purge_recordings(struct run *run, const struct municipality_cutoff *m)
{
    g_autoptr(GPtrArray) due = g_ptr_array_new_with_free_func(recording_ref_free);
    int r = md_store_query(
        run->st,
        "SELECT r.id, r.session_id FROM recording r JOIN verification_session s"
        " ON s.id = r.session_id WHERE s.municipality = ? AND r.state IN ('complete', 'cut')"
        " AND COALESCE(r.ended_at, r.started_at) < ? ORDER BY r.started_at",
        MD_PARAMS(MD_P_TEXT(m->code), MD_P_INT(m->cutoff_ms)), collect_recording, due);
    if (r < 0)
        return r;
    for (guint i = 0; i < due->len; i++) {
        struct recording_ref *rec = due->pdata[i];
        if (audit_purge(run, "retention_purge", m->code, rec->session,
                        json_pack("{s:s, s:s}", "kind", "recording", "recording", rec->id)) < 0) {
            run->result.failures++;
            continue; /* not destroyed unrecorded; the next run tries again */
        }
        r = md_recording_purge(run->st, run->ev, rec->id, run->now_ms);
        if (r < 0) {
            purge_failed(run, "recording", rec->id, m->code, rec->session, r);
            continue;
        }
        run->result.recordings++;
        md_info("retention", "recording_purged", "{s:s, s:s}", "recording", rec->id, "session",
                rec->session);
        if (run->report)
            fprintf(run->report, "purged recording %s (session %s)\n", rec->id, rec->session);
    }
    return 0;
}

/* Purged rows whose ciphertext survived (the purge was killed after the key
 * went): the file is noise now; delete it. */
static int finish_purged_recordings(struct run *run)
{
    g_autoptr(GPtrArray) purged = g_ptr_array_new_with_free_func(recording_ref_free);
    int r = md_store_query(run->st, "SELECT id, session_id FROM recording WHERE state = 'purged'",
                           MD_NO_PARAMS, collect_recording, purged);
    if (r < 0)
        return r;
    for (guint i = 0; i < purged->len; i++) {
        struct recording_ref *rec = purged->pdata[i];
        r = md_evidence_rec_remove(run->ev, rec->id);
        if (r == 0) {
            run->result.leftovers++;
            md_info("retention", "leftover_deleted", "{s:s}", "recording", rec->id);
            if (run->report)
                fprintf(run->report, "deleted the ciphertext left by an interrupted purge of %s\n",
                        rec->id);
        }
    }
    return 0;
}

/* ---- session evidence (files, stills, transcript) ---- */

static int collect_session(const md_row *row, void *userdata)
{
    g_ptr_array_add(userdata, g_strdup(md_row_text(row, 0)));
    return 0;
}

/* The evidence rows stay (the audit names their ids) but their file names,
 * which may be personal data, go: an empty name, sealed like every name
 * (core/md_sealed.h) when the store has the field key; else plain, and the
 * next `serve` seals it. */
static int collect_file_id(const md_row *row, void *userdata)
{
    g_ptr_array_add(userdata, g_strdup(md_row_text(row, 0)));
    return 0;
}

static void blank_file_names(struct run *run, const char *session)
{
    g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
    md_store_query(run->st, "SELECT file_id FROM evidence WHERE session_id = ?",
                   MD_PARAMS(MD_P_TEXT(session)), collect_file_id, files);
    for (guint i = 0; i < files->len; i++) {
        const char *file_id = files->pdata[i];
        g_autofree char *context = g_strconcat("evidence.name:", session, "/", file_id, NULL);
        g_autofree char *sealed = NULL;
        if (md_store_seal(run->st, context, "", &sealed) < 0)
            sealed = g_strdup("");
        md_store_exec(run->st, "UPDATE evidence SET name = ? WHERE session_id = ? AND file_id = ?",
                      MD_PARAMS(MD_P_TEXT(sealed), MD_P_TEXT(session), MD_P_TEXT(file_id)));
    }
}

static int purge_sessions(struct run *run, const struct municipality_cutoff *m)
{
    g_autoptr(GPtrArray) due = g_ptr_array_new_with_free_func(g_free);
    int r = md_store_query(
        run->st,
        "SELECT id FROM verification_session WHERE municipality = ? AND evidence_purged_at IS NULL"
        " AND COALESCE(ended_at, live_at, assigned_at, requested_at) < ? ORDER BY requested_at",
        MD_PARAMS(MD_P_TEXT(m->code), MD_P_INT(m->cutoff_ms)), collect_session, due);
    if (r < 0)
        return r;
    for (guint i = 0; i < due->len; i++) {
        const char *session = due->pdata[i];
        if (md_evidence_session_exists(run->ev, session)) {
            int64_t files = 0;
            md_store_query_int(run->st, "SELECT COUNT(*) FROM evidence WHERE session_id = ?",
                               MD_PARAMS(MD_P_TEXT(session)), &files);
            if (audit_purge(run, "retention_purge", m->code, session,
                            json_pack("{s:s, s:I}", "kind", "session_evidence", "files",
                                      (json_int_t)files)) < 0) {
                run->result.failures++;
                continue;
            }
            r = md_evidence_session_destroy(run->ev, session);
            if (r < 0 && r != -ENOENT) { /* -ENOENT: the key went in an earlier run */
                purge_failed(run, "session_evidence", session, m->code, session, r);
                continue;
            }
            run->result.sessions++;
            md_info("retention", "evidence_purged", "{s:s}", "session", session);
            if (run->report)
                fprintf(run->report, "purged the evidence of session %s (%lld files)\n", session,
                        (long long)files);
        }
        blank_file_names(run, session);
        md_store_exec(run->st,
                      "UPDATE verification_session SET evidence_purged_at = ? WHERE id = ?",
                      MD_PARAMS(MD_P_INT(run->now_ms), MD_P_TEXT(session)));
    }
    return 0;
}

int md_retention_run(md_store *st, md_audit *audit, md_evidence *ev, const char *actor,
                     int64_t now_ms, FILE *report, md_retention_result *ret)
{
    struct run run = {st, audit, ev, actor, now_ms, report, {0}};
    g_autoptr(GPtrArray) cutoffs = g_ptr_array_new_with_free_func(cutoff_free);
    int r = md_store_query(st, "SELECT code, policy, ? FROM municipality ORDER BY code",
                           MD_PARAMS(MD_P_INT(now_ms)), collect_cutoff, cutoffs);
    if (r < 0)
        return r;
    for (guint i = 0; i < cutoffs->len; i++) {
        const struct municipality_cutoff *m = cutoffs->pdata[i];
        if ((r = purge_recordings(&run, m)) < 0 || (r = purge_sessions(&run, m)) < 0)
            return r;
    }
    r = finish_purged_recordings(&run);
    if (r < 0)
        return r;
    if (ret)
        *ret = run.result;
    return 0;
}
