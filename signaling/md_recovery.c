/*
 * Start-up recovery after an unclean stop (kill -9, a crash, power loss).
 * A clean stop ends every session with reason `shutdown`; an unclean one
 * leaves rows of verification_session that are not `ended`, and may leave
 * the temporary file of a transfer that was never committed.  Before the
 * listeners take any connection, every such session is ended with reason
 * `gateway_restart` (row and `session_ended` audit entry, as end_session
 * would) and the temporaries are removed, so that nothing half-done
 * survives and the tablet may request again at once.  The parties of an
 * interrupted session are told `ended` {reason: gateway_restart} when they
 * next connect (md_recovery_party_joined), so a client that reconnects
 * learns why its session is gone.  Recordings are not this file's concern
 * (the recorder recovers its own).  Control thread only.
 */
#include "md_err.h"
#include "md_log.h"
#include "md_recovery.h"
#include "md_server_private.h"
#include "md_time.h"

#include <string.h>

struct interrupted {
    char *id, *municipality, *post_office, *state, *device, *verifier;
};

static void interrupted_free(gpointer data)
{
    struct interrupted *s = data;
    g_free(s->id);
    g_free(s->municipality);
    g_free(s->post_office);
    g_free(s->state);
    g_free(s->device);
    g_free(s->verifier);
    g_free(s);
}

static int collect(const md_row *row, void *userdata)
{
    GPtrArray *found = userdata;
    struct interrupted *s = g_new0(struct interrupted, 1);
    s->id = g_strdup(md_row_text(row, 0));
    s->municipality = g_strdup(md_row_text(row, 1));
    s->post_office = g_strdup(md_row_text(row, 2));
    s->state = g_strdup(md_row_text(row, 3));
    s->device = g_strdup(md_row_text(row, 4));
    s->verifier = g_strdup(md_row_text(row, 5));
    g_ptr_array_add(found, s);
    return 0;
}

/* The key a party is found under: its device, or its staff username. */
static char *party_key(const char *device, const char *username)
{
    if (device)
        return g_strconcat("device:", device, NULL);
    return username ? g_strconcat("staff:", username, NULL) : NULL;
}

static void remember(md_server *srv, const char *key, const char *session_id)
{
    if (!key)
        return;
    GPtrArray *ids = g_hash_table_lookup(srv->interrupted, key);
    if (!ids) {
        ids = g_ptr_array_new_with_free_func(g_free);
        g_hash_table_insert(srv->interrupted, g_strdup(key), ids);
    }
    g_ptr_array_add(ids, g_strdup(session_id));
}

int md_recovery_run(md_server *srv)
{
    GPtrArray *found = g_ptr_array_new_with_free_func(interrupted_free);
    unsigned partial = 0;
    int r;

    srv->interrupted =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
    r = md_store_query(srv->store,
                       "SELECT id, municipality, post_office, state, device, verifier"
                       " FROM verification_session WHERE state != 'ended' ORDER BY requested_at",
                       NULL, 0, collect, found);
    if (r < 0) {
        md_error("recovery", "store_failed", "{s:s}", "error", md_strerror(r));
        goto out;
    }
    int64_t now = md_now_ms();
    for (guint i = 0; i < found->len; i++) {
        struct interrupted *s = found->pdata[i];
        r = md_store_exec(srv->store,
                          "UPDATE verification_session SET state = 'ended', reason = ?,"
                          " ended_at = ? WHERE id = ? AND state != 'ended'",
                          MD_PARAMS(MD_P_TEXT("gateway_restart"), MD_P_INT(now), MD_P_TEXT(s->id)));
        if (r < 0) {
            md_error("recovery", "store_failed", "{s:s, s:s}", "session", s->id, "error",
                     md_strerror(r));
            goto out;
        }
        md_server_audit(srv, "system", "session_ended", s->municipality, s->post_office, s->id,
                        json_pack("{s:s, s:s}", "reason", "gateway_restart", "state_before",
                                  s->state ? s->state : ""));
        g_autofree char *tablet = party_key(s->device, NULL);
        g_autofree char *verifier = party_key(NULL, s->verifier);
        remember(srv, tablet, s->id);
        remember(srv, verifier, s->id);
    }
    r = md_evidence_sweep_partial(srv->evidence, &partial);
    if (r < 0) {
        /* Not fatal: a temporary is never read, only in the way of nothing. */
        md_warn("recovery", "evidence_sweep_failed", "{s:s}", "error", md_strerror(r));
        r = 0;
    }
    if (found->len || partial) {
        md_warn("recovery", "unclean_stop_recovered", "{s:i, s:i}", "sessions_ended",
                (int)found->len, "partial_files_removed", (int)partial);
        md_server_audit(srv, "system", "gateway_recovered", NULL, NULL, NULL,
                        json_pack("{s:i, s:i}", "sessions_ended", (int)found->len,
                                  "partial_files_removed", (int)partial));
    }
    r = 0;
out:
    g_ptr_array_unref(found);
    return r;
}

void md_recovery_party_joined(md_server *srv, md_party *p)
{
    if (!srv->interrupted || p->session)
        return;
    g_autofree char *key = party_key(p->role == MD_SENDER_TABLET ? p->device_id : NULL,
                                     p->role == MD_SENDER_VERIFIER ? p->username : NULL);
    if (!key)
        return;
    GPtrArray *ids = g_hash_table_lookup(srv->interrupted, key);
    if (!ids)
        return;
    for (guint i = 0; i < ids->len; i++)
        md_party_send(p, json_pack("{s:s, s:s, s:n, s:s}", "type", "ended", "session",
                                   (const char *)ids->pdata[i], "outcome", "reason",
                                   "gateway_restart"));
    g_hash_table_remove(srv->interrupted, key); /* told once */
}

void md_recovery_clear(md_server *srv)
{
    if (srv->interrupted)
        g_hash_table_destroy(srv->interrupted);
    srv->interrupted = NULL;
}
