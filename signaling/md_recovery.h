/*
 * Start-up recovery after an unclean stop (see md_recovery.c).  Control
 * thread only.
 */
#ifndef MD_RECOVERY_H
#define MD_RECOVERY_H

typedef struct md_server md_server;
typedef struct md_party md_party;

/* Ends every session the store still has unfinished with reason
 * gateway_restart (audited) and removes partial evidence files.  Run once,
 * before the listeners accept connections.  0 or a negative store error. */
int md_recovery_run(md_server *srv);
/* Tells a party that just connected which of its sessions the restart ended
 * (`ended` {reason: gateway_restart}), once. */
void md_recovery_party_joined(md_server *srv, md_party *p);
/* Frees what md_recovery_run kept.  Takes a server whose run never ran. */
void md_recovery_clear(md_server *srv);

#endif
