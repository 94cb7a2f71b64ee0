/*
 * The signaling server: owns the store, the audit log, the registry data,
 * the listeners and the media plane, and runs the control thread's GLib main
 * loop until SIGTERM or SIGINT.
 */
#ifndef MD_SERVER_H
#define MD_SERVER_H

#include "md_config.h"

typedef struct md_server md_server;

int md_server_new(const md_config *cfg, md_server **ret);
/* Runs until a termination signal; then ends open sessions ("shutdown"),
 * writes a final audit checkpoint and returns 0. */
int md_server_run(md_server *srv);
md_server *md_server_free(md_server *srv);

#endif
