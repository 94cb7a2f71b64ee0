/* `madoguchi retention run`: purges what is past each municipality's
 * retention_days (signaling/md_retention.h); `serve` runs the same daily. */
#include "cli.h"
#include "md_err.h"
#include "md_evidence.h"
#include "md_retention.h"
#include "md_time.h"

#include <stdio.h>

int md_cmd_retention_run(md_cli *cli, int argc, char **argv)
{
    bool done;
    int status = md_cli_parse(
        &argc, &argv, "",
        "Destroys the keys, then deletes the ciphertext, of recordings and of sessions' files and "
        "chat transcripts older than their municipality's retention_days; each purge is audited "
        "(retention_purge). Safe to interrupt and to repeat: a run finishes purges an earlier one "
        "left half done, and a run after a complete one changes nothing. Exit status: 0 done, 1 "
        "error or a purge failed.",
        NULL, &done);
    if (done)
        return status;
    if (argc != 1) {
        fprintf(stderr, "usage: madoguchi retention run\n");
        return 2;
    }
    if (md_cli_audit(cli) < 0)
        return 1;
    md_evidence *ev = NULL;
    int r = md_evidence_open(cli->cfg.evidence.dir, cli->cfg.evidence.master_key, &ev);
    if (r < 0)
        return md_cli_fail(cli->cfg.evidence.dir, r);
    md_retention_result res = {0};
    r = md_retention_run(cli->store, cli->audit, ev, cli->actor, md_now_ms(), stdout, &res);
    md_evidence_free(ev);
    if (r < 0)
        return md_cli_fail("retention run", r);
    printf("retention: %d recording%s and the evidence of %d session%s purged, %d leftover%s "
           "deleted, %d failure%s\n",
           res.recordings, res.recordings == 1 ? "" : "s", res.sessions,
           res.sessions == 1 ? "" : "s", res.leftovers, res.leftovers == 1 ? "" : "s", res.failures,
           res.failures == 1 ? "" : "s");
    return res.failures ? 1 : 0;
}
