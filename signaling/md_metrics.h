/*
 * Prometheus metrics (text exposition format 0.0.4) on their own plain-HTTP
 * listener, `metrics.address`:`metrics.port` (docs/configuration.md), never
 * on the staff or device listener.  Port 0 (the default) turns it off; the
 * default address is loopback, for a local scraper or an SSH tunnel.
 *
 * Counters are fed from the control thread: media events (relayed packets
 * and bytes, drops, ICE/DTLS failures), logins, audit appends.  Gauges
 * (sessions by state, queue per municipality, evidence size) are computed at
 * scrape time.  Everything here lives on the control thread; the listener's
 * connections are GIO async operations on the default main context.
 */
#ifndef MD_METRICS_H
#define MD_METRICS_H

#include "md_config.h"
#include "md_media.h"

#include <stdint.h>

typedef struct md_metrics md_metrics;
struct md_server;

/* Starts the listener when cfg->metrics.port > 0.  Returns 0 or a negative
 * code (the address cannot be bound). */
int md_metrics_new(const md_config *cfg, struct md_server *srv, md_metrics **ret);
md_metrics *md_metrics_free(md_metrics *m);
/* The bound port (for port 0 tests): 0 when off. */
int md_metrics_port(const md_metrics *m);

/* Hooks; each takes NULL. */
void md_metrics_media_event(md_metrics *m, const md_media_event *ev);
void md_metrics_login(md_metrics *m,
                      int result /* a login's result, -MD_E_RATE_LIMITED if throttled */);
void md_metrics_audit_append(md_metrics *m, int64_t duration_us, bool ok);

#endif
