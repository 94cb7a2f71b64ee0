/*
 * `madoguchi audit verify|export|checkpoint`: the security officer's tools.
 * Verification trusts a public key given with --pubkey or pinned in the
 * config (audit.public_key), and a checkpoint kept off the host anchors the
 * log against a cut tail or a re-signed history (docs/internals/security.md).
 */
#include "cli.h"
#include "md_audit_export.h"
#include "md_err.h"
#include "md_time.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* --pubkey, else audit.public_key, else the .pub file beside the signing key. */
static int trusted_key(md_cli *cli, const char *pubkey, md_sign_key **ret)
{
    bool pinned = false;
    int r = pubkey ? md_audit_load_public_key(pubkey, ret)
                   : md_audit_trusted_key(cli->cfg.audit.public_key, cli->cfg.audit.signing_key,
                                          ret, &pinned);
    if (r < 0) {
        md_cli_fail(pubkey ? pubkey : "audit public key", r);
        return r;
    }
    if (!pubkey && !pinned)
        fprintf(stderr,
                "madoguchi: audit: no pinned key (audit.public_key or --pubkey); trusting "
                "%s.pub beside the signing key\n",
                cli->cfg.audit.signing_key);
    return 0;
}

static int read_checkpoint(const char *path, md_audit_checkpoint *ret)
{
    g_autofree char *text = NULL;
    gsize len = 0;
    g_autoptr(GError) error = NULL;
    if (!g_file_get_contents(path, &text, &len, &error)) {
        fprintf(stderr, "madoguchi: %s: %s\n", path, error->message);
        return -ENOENT;
    }
    int r = md_audit_checkpoint_parse(text, len, ret);
    if (r < 0)
        md_cli_fail(path, r);
    return r;
}

/* `audit verify --export FILE`: an export checked offline, without the store,
 * against the trusted key.  Returns the exit status. */
static int verify_export(const char *path, const md_sign_key *key)
{
    FILE *in = fopen(path, "r");
    if (!in) {
        perror(path);
        return 1;
    }
    int64_t bad = 0;
    int r = md_audit_export_verify(in, key, stdout, &bad);
    fclose(in);
    if (r == -MD_E_AUDIT_BROKEN)
        return 1;
    if (r < 0)
        return md_cli_fail("audit verify --export", r);
    return 0;
}

int md_cmd_audit_verify(md_cli *cli, int argc, char **argv)
{
    char *pubkey = NULL, *checkpoint = NULL, *export_path = NULL;
    const GOptionEntry entries[] = {
        {"pubkey", 0, 0, G_OPTION_ARG_STRING, &pubkey,
         "trust this Ed25519 public key (PEM file, or 64 hex characters) instead of "
         "audit.public_key",
         "KEY"},
        {"checkpoint", 0, 0, G_OPTION_ARG_FILENAME, &checkpoint,
         "also prove the log still extends this checkpoint (from `audit checkpoint`)", "FILE"},
        {"export", 0, 0, G_OPTION_ARG_FILENAME, &export_path,
         "verify an export (from the auditor console) offline instead of the store", "FILE"},
        {NULL},
    };
    bool done;
    int status = md_cli_parse(&argc, &argv, "",
                              "Recomputes the audit hash chain and checks every signed checkpoint "
                              "with the trusted public key. With --checkpoint, also checks that "
                              "the entry the checkpoint names still hashes to it (a cut tail or a "
                              "rewritten, re-signed history fails). Exits 0 when intact; "
                              "otherwise names the first bad entry (seq N) and exits 1.",
                              entries, &done);
    md_sign_key *key = NULL;
    md_audit_checkpoint cp;
    md_audit_summary sum;
    int r;
    if (done)
        goto out;
    status = 1;
    if (export_path) {
        if (trusted_key(cli, pubkey, &key) < 0)
            goto out;
        status = verify_export(export_path, key);
        goto out;
    }
    if (md_cli_store(cli) < 0 || trusted_key(cli, pubkey, &key) < 0)
        goto out;
    if (checkpoint && read_checkpoint(checkpoint, &cp) < 0)
        goto out;
    r = checkpoint ? md_audit_verify_checkpoint(cli->store, key, &cp, stdout, &sum)
                   : md_audit_verify_key(cli->store, key, stdout, &sum);
    if (r == -MD_E_AUDIT_BROKEN) {
        printf("audit log BROKEN at seq %" PRId64 "\n", sum.bad_seq);
        goto out;
    }
    if (r < 0) {
        md_cli_fail("audit verify", r);
        goto out;
    }
    if (checkpoint)
        printf("audit log intact and extends the checkpoint at seq %" PRId64 "\n", cp.seq);
    else
        printf("audit log intact\n");
    status = 0;
out:
    md_sign_key_free(key);
    g_free(pubkey);
    g_free(checkpoint);
    g_free(export_path);
    return status;
}

int md_cmd_audit_checkpoint(md_cli *cli, int argc, char **argv)
{
    char *pubkey = NULL;
    const GOptionEntry entries[] = {
        {"pubkey", 0, 0, G_OPTION_ARG_STRING, &pubkey,
         "trust this Ed25519 public key instead of audit.public_key", "KEY"},
        {NULL},
    };
    bool done;
    int status = md_cli_parse(&argc, &argv, "",
                              "Verifies the log, then prints its latest signed checkpoint as one "
                              "JSON line on stdout. Keep it outside this host (write-once "
                              "storage, a second system): `audit verify --checkpoint FILE` later "
                              "proves the log still extends it.",
                              entries, &done);
    md_sign_key *key = NULL;
    md_audit_checkpoint cp;
    md_audit_summary sum;
    char *json = NULL;
    if (done)
        goto out;
    status = 1;
    if (md_cli_store(cli) < 0 || trusted_key(cli, pubkey, &key) < 0)
        goto out;
    /* Anchor only what verifies: stderr gets the report, stdout the checkpoint. */
    int r = md_audit_verify_key(cli->store, key, stderr, &sum);
    if (r < 0) {
        md_cli_fail("audit verify", r);
        goto out;
    }
    r = md_audit_checkpoint_latest(cli->store, &cp);
    if (r == 0 && md_audit_checkpoint_signed_by(&cp, key) != 1)
        r = -MD_E_AUDIT_CHECKPOINT;
    if (r < 0) {
        md_cli_fail(r == -ENOENT ? "no signed checkpoint yet" : "audit checkpoint", r);
        goto out;
    }
    json = md_audit_checkpoint_to_json(&cp);
    if (!json) {
        md_cli_fail("audit checkpoint", -ENOMEM);
        goto out;
    }
    printf("%s\n", json);
    status = fflush(stdout) == 0 ? 0 : 1;
out:
    free(json);
    md_sign_key_free(key);
    g_free(pubkey);
    return status;
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
    int64_t seq = md_audit_append_new(cli->audit, cli->actor, "audit_exported", municipality,
                                      post_office, session, detail);
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
