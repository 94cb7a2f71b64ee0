/*
 * The control plane's audit append (md_server_private.h): one entry in the
 * server's audit log, its latency and outcome counted in the metrics, and a
 * failure logged.  Every control-plane file audits through it.  Control
 * thread only.
 */
#include "md_err.h"
#include "md_log.h"
#include "md_server_private.h"

int64_t md_server_audit(md_server *srv, const char *actor, const char *event,
                        const char *municipality, const char *post_office, const char *session,
                        json_t *detail)
{
    int64_t t0 = g_get_monotonic_time();
    int64_t seq =
        md_audit_append_new(srv->audit, actor, event, municipality, post_office, session, detail);
    md_metrics_audit_append(srv->metrics, g_get_monotonic_time() - t0, seq >= 0);
    if (seq < 0)
        md_error("audit", "append_failed", "{s:s, s:s}", "event", event, "error",
                 md_strerror((int)seq));
    return seq;
}
