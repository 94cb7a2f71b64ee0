/* `madoguchi audit verify|export`: the security officer's tools. */
#include "cli.h"
#include "md_err.h"
#include "md_time.h"

#include <inttypes.h>
#include <stdio.h>

int md_cmd_audit_verify(md_cli *cli, int argc, char **argv)
{
    bool done;
    int status = md_cli_parse(&argc, &argv, "",
                              "Recomputes the audit hash chain and checks every signed checkpoint "
                              "with the public key. Exits 0 when intact; otherwise names the "
                              "first bad entry (seq N) and exits 1.",
                              NULL, &done);
    if (done)
        return status;
    if (md_cli_store(cli) < 0)
        return 1;
    g_autofree char *pub = g_strdup_printf("%s.pub", cli->cfg.audit.signing_key);
    int64_t bad = 0;
    int r = md_audit_verify(cli->store, pub, stdout, &bad);
    if (r == -MD_E_AUDIT_BROKEN) {
        printf("audit log BROKEN at seq %" PRId64 "\n", bad);
        return 1;
    }
    if (r < 0)
        return md_cli_fail("audit verify", r);
    printf("audit log intact\n");
    return 0;
}

int md_cmd_audit_export(md_cli *cli, int argc, char **argv)
{
    char *from = NULL, *until = NULL, *municipality = NULL, *post_office = NULL, *session = NULL,
         *out_path = NULL;
    const GOptionEntry entries[] = {
        {"from", 0, 0, G_OPTION_ARG_STRING, &from, "entries at or after (ISO 8601 or date)", "T"},
        {"until", 0, 0, G_OPTION_ARG_STRING, &until, "entries before (ISO 8601 or date)", "T"},
        {"municipality", 0, 0, G_OPTION_ARG_STRING, &municipality, "one municipality", "CODE"},
        {"post-office", 0, 0, G_OPTION_ARG_STRING, &post_office, "one post office", "ID"},
        {"session", 0, 0, G_OPTION_ARG_STRING, &session, "one session", "ID"},
        {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out_path, "file to write (default stdout)", "FILE"},
        {NULL},
    };
    bool done;
    int status = md_cli_parse(&argc, &argv, "",
                              "Writes audit entries as JSON Lines, with their hashes so the chain "
                              "can be checked from the export (Act art. 4 reports).",
                              entries, &done);
    int r = 0;
    FILE *out = stdout;
    md_audit_filter filter = {
        .municipality = municipality, .post_office = post_office, .session = session};
    if (done)
        goto out;
    status = 2;
    if ((from && md_time_parse_iso(from, &filter.from_ms) < 0) ||
        (until && md_time_parse_iso(until, &filter.until_ms) < 0)) {
        fprintf(stderr, "madoguchi audit export: --from/--until take ISO 8601 times or dates\n");
        goto out;
    }
    status = 1;
    if (md_cli_audit(cli) < 0)
        goto out;
    if (out_path && !(out = fopen(out_path, "w"))) {
        perror(out_path);
        goto out;
    }
    r = md_audit_export(cli->store, &filter, out);
    if (r < 0) {
        md_cli_fail("audit export", r);
        goto out;
    }
    /* Exports are evidence leaving the system: audited. */
    json_t *detail = json_pack("{s:i}", "entries", r);
    md_audit_entry e = {.actor = cli->actor,
                        .event = "audit_exported",
                        .municipality = municipality,
                        .post_office = post_office,
                        .session = session,
                        .detail = detail};
    int64_t seq = md_audit_append(cli->audit, &e);
    json_decref(detail);
    status = seq < 0 ? md_cli_fail("audit", (int)seq) : 0;
out:
    if (out && out != stdout)
        fclose(out);
    g_free(from);
    g_free(until);
    g_free(municipality);
    g_free(post_office);
    g_free(session);
    g_free(out_path);
    return status;
}
