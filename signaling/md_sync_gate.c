/*
 * Acknowledged only when durable, without waiting for the disk on the
 * control loop (docs/internals/signaling.md).  The writes of a session's
 * set-up (its row and audit entry at `request`, at each transition, at
 * `leg_connected`) are told to the parties by WebSocket messages alone.
 * Between md_sync_gate_begin() and md_sync_gate_end() the store defers its
 * fsync (md_store_defer_sync), and every reply queued from
 * md_sync_gate_begin() on is held by md_ws until the syncer thread
 * (core/md_store_syncer.h) has made the commits durable.  One fsync then covers every commit made
 * while the previous one ran, and the loop goes on serving other connections meanwhile.  If the
 * disk refuses a sync, nothing held may be sent and what the store holds is uncertain: the gateway
 * stops at once (abort), and the next start ends the unfinished sessions (md_recovery.c).  Control
 * thread only.
 */
#include "md_err.h"
#include "md_log.h"
#include "md_server_private.h"
#include "md_store_syncer.h"

#include <stdlib.h>

static void on_synced(uint64_t upto, int error, void *ud)
{
    md_server *srv = ud;
    if (error < 0) {
        md_error("server", "store_sync_failed", "{s:s, s:s}", "code", md_err_code(error), "error",
                 md_strerror(error));
        abort();
    }
    if (srv->ws)
        md_ws_release(srv->ws, upto);
}

int md_sync_gate_open(md_server *srv)
{
    int r = md_store_syncer_new(srv->cfg->database, on_synced, srv, &srv->syncer);
    if (r < 0)
        md_error("server", "store_syncer_failed", "{s:s}", "error", md_strerror(r));
    return r;
}

void md_sync_gate_begin(md_server *srv)
{
    if (!srv->syncer || !srv->ws)
        return; /* every commit waits for the disk itself */
    md_ws_hold(srv->ws, ++srv->sync_gate_seq);
    if (md_store_defer_sync(srv->store, true) < 0)
        md_debug("server", "defer_sync_refused", NULL); /* inside a transaction: synchronous */
}

void md_sync_gate_end(md_server *srv)
{
    if (!srv->syncer || !srv->ws)
        return;
    md_store_defer_sync(srv->store, false);
    md_store_syncer_request(srv->syncer, srv->sync_gate_seq);
}

void md_sync_gate_close(md_server *srv)
{
    srv->syncer = md_store_syncer_free(srv->syncer);
    if (srv->sync_gate_seq && srv->ws) {
        int r = md_store_sync(srv->store);
        if (r < 0) {
            md_error("server", "store_sync_failed", "{s:s, s:s}", "code", md_err_code(r), "error",
                     md_strerror(r));
            abort();
        }
        md_ws_release(srv->ws, srv->sync_gate_seq);
    }
}
