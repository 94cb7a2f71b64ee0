/*
 * madoguchi: one binary, one subcommand per operator task.  The table below
 * is the whole command set; `madoguchi --help` prints it and every command
 * has its own --help.
 */
#include "cli.h"
#include "md_err.h"
#include "md_evidence.h"
#include "md_log.h"
#include "md_sanitizer.h"
#include "md_sealed.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const struct command {
    const char *group; /* first word */
    const char *name;  /* second word, or NULL */
    md_cli_command run;
    const char *summary;
} commands[] = {
    {"serve", NULL, md_cmd_serve, "run the gateway"},
    {"setup-dev", NULL, md_cmd_setup_dev,
     "create dev certificates, the demo registry, demo staff and a demo tablet (if absent)"},
    {"certs", "init", md_cmd_certs_init, "create the deployment CA, server certificate and CRL"},
    {"certs", "crl", md_cmd_certs_crl, "rewrite the CRL from the registry (where the CA key is)"},
    {"registry", "import", md_cmd_registry_import, "import municipalities, offices, designations"},
    {"registry", "list", md_cmd_registry_list, "print the registry"},
    {"registry", "enable", md_cmd_registry_enable,
     "enable a procedure that waited for the terminal upgrade"},
    {"user", "add", md_cmd_user_add, "add a verifier, auditor or admin"},
    {"user", "reset-totp", md_cmd_user_reset_totp, "new one-time-code secret (printed once)"},
    {"user", "unlock", md_cmd_user_unlock, "clear failed logins and a lock"},
    {"user", "disable", md_cmd_user_disable, "refuse an account's logins and end its sessions"},
    {"user", "enable", md_cmd_user_enable, "allow a disabled account again"},
    {"device", "issue", md_cmd_device_issue, "register a tablet and write its certificate"},
    {"device", "disable", md_cmd_device_disable, "refuse a tablet until enabled again"},
    {"device", "enable", md_cmd_device_enable, "allow a disabled tablet again"},
    {"device", "revoke", md_cmd_device_revoke, "revoke a tablet's certificate for good"},
    {"audit", "verify", md_cmd_audit_verify, "check the audit hash chain and signatures"},
    {"audit", "export", md_cmd_audit_export, "write audit entries as JSON Lines"},
    {"audit", "checkpoint", md_cmd_audit_checkpoint,
     "print the latest signed checkpoint (JSON) to keep elsewhere"},
    {"recording", "list", md_cmd_recording_list, "list recordings and their state"},
    {"recording", "export", md_cmd_recording_export,
     "decrypt a recording to WebM/MP4 (needs --reason; audited)"},
    {"retention", "run", md_cmd_retention_run,
     "purge recordings, files and transcripts past their retention (also daily in serve)"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: madoguchi [-c CONFIG] COMMAND [ARGS]\n\n"
                 "madoguchi " MD_VERSION
                 ": video identity verification gateway for post-office counters\n\n"
                 "commands:\n");
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        g_autofree char *name = commands[i].name
                                    ? g_strdup_printf("%s %s", commands[i].group, commands[i].name)
                                    : g_strdup(commands[i].group);
        fprintf(out, "  %-18s %s\n", name, commands[i].summary);
    }
    fprintf(out, "\noptions:\n"
                 "  -c, --config FILE  configuration (JSON; see docs/configuration.md)\n"
                 "  -h, --help         this text; COMMAND --help for a command\n"
                 "  --version          print the version\n");
}

int md_cli_fail(const char *what, int err)
{
    fprintf(stderr, "madoguchi: %s: %s (%s)\n", what, md_strerror(err), md_err_code(err));
    return 1;
}

int md_cli_parse(int *argc, char ***argv, const char *params, const char *summary,
                 const GOptionEntry *entries, bool *ret_done)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new(params);
    g_option_context_set_summary(ctx, summary);
    if (entries)
        g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) error = NULL;
    *ret_done = false;
    if (!g_option_context_parse(ctx, argc, argv, &error)) {
        fprintf(stderr, "madoguchi: %s\n", error->message);
        *ret_done = true;
        return 2;
    }
    return 0;
}

int md_cli_ensure_data_dir(md_cli *cli)
{
    if (g_mkdir_with_parents(cli->cfg.data_dir, 0700) < 0) {
        int err = -errno;
        md_cli_fail(cli->cfg.data_dir, err);
        return err;
    }
    return 0;
}

/* Derives the field key from the evidence master key, attaches it to the
 * store and seals what an older version left in plaintext.  create: make
 * the master key (and evidence directory) if absent, as `serve` does. */
static int attach_field_key(md_cli *cli, bool create)
{
    uint8_t key[MD_AEAD_KEY_LEN];
    int r;
    if (create) {
        md_evidence *ev = NULL;
        r = md_evidence_open(cli->cfg.evidence.dir, cli->cfg.evidence.master_key, &ev);
        if (r == 0)
            r = md_evidence_field_key(ev, key);
        md_evidence_free(ev);
    } else {
        r = md_evidence_field_key_from_file(cli->cfg.evidence.master_key, key);
    }
    if (r < 0) {
        if (create)
            md_cli_fail(cli->cfg.evidence.master_key, r);
        return r;
    }
    md_store_set_field_key(cli->store, key);
    md_wipe(key, sizeof(key));
    r = md_sealed_migrate(cli->store);
    if (r < 0 && create)
        md_cli_fail("sealing plaintext values", r);
    else if (r > 0)
        fprintf(stderr, "madoguchi: sealed %d plaintext values in the database\n", r);
    return r < 0 ? r : 0;
}

int md_cli_store(md_cli *cli)
{
    if (cli->store)
        return 0;
    int r = md_cli_ensure_data_dir(cli);
    if (r < 0)
        return r;
    r = md_store_open(cli->cfg.database, &cli->store);
    if (r < 0) {
        md_cli_fail(cli->cfg.database, r);
        return r;
    }
    /* Sealed columns open where the master key is at hand; elsewhere (an
     * auditor's copy of the database, an account that may not read the key)
     * the rest still works, and commands that need it ask md_cli_sealing. */
    r = attach_field_key(cli, false);
    if (r < 0 && r != -ENOENT)
        fprintf(stderr, "madoguchi: sealed columns stay closed (%s)\n", md_err_code(r));
    return 0;
}

int md_cli_sealing(md_cli *cli)
{
    int r = md_cli_store(cli);
    if (r < 0 || md_store_field_key(cli->store))
        return r;
    return attach_field_key(cli, true);
}

int md_cli_audit(md_cli *cli)
{
    if (cli->audit)
        return 0;
    int r = md_cli_store(cli);
    if (r < 0)
        return r;
    r = md_audit_open_pinned(cli->store, cli->cfg.audit.signing_key, cli->cfg.audit.public_key,
                             cli->cfg.audit.checkpoint_every, cli->cfg.audit.checkpoint_seconds,
                             &cli->audit);
    if (r < 0)
        md_cli_fail("audit log", r);
    return r;
}

int md_cli_procedures(md_cli *cli)
{
    if (cli->procedures)
        return 0;
    int r = md_procedures_load(cli->cfg.procedures_file, &cli->procedures);
    if (r < 0)
        md_cli_fail(cli->cfg.procedures_file, r);
    return r;
}

static const struct command *find_command(int argc, char **argv, int *ret_words)
{
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        if (strcmp(argv[0], commands[i].group) != 0)
            continue;
        if (!commands[i].name) {
            *ret_words = 1;
            return &commands[i];
        }
        if (argc > 1 && strcmp(argv[1], commands[i].name) == 0) {
            *ret_words = 2;
            return &commands[i];
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    md_sanitizer_init(); /* before GStreamer's quarks: see core/md_sanitizer.c */
    const char *config_path = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("madoguchi " MD_VERSION "\n");
            return 0;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "madoguchi: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    int words = 0;
    const struct command *cmd = find_command(argc - i, argv + i, &words);
    if (!cmd) {
        fprintf(stderr, "madoguchi: unknown command \"%s\"\n", argv[i]);
        usage(stderr);
        return 2;
    }

    md_cli cli = {.actor = "operator"};
    char *error = NULL;
    int r = md_config_load(config_path, &cli.cfg, &error);
    if (r < 0) {
        fprintf(stderr, "madoguchi: %s\n", error ? error : md_strerror(r));
        g_free(error);
        return 2;
    }
    int level = md_log_level_from_string(cli.cfg.log_level);
    md_log_set_level(level < 0 ? MD_LOG_INFO : (enum md_log_level)level);
    umask(077);

    /* The command sees argv[0] = "madoguchi group name" for its --help. */
    g_autofree char *prog =
        g_strjoinv(" ", (char *[]){"madoguchi", argv[i], words == 2 ? argv[i + 1] : NULL, NULL});
    int cargc = argc - i - words + 1;
    char **cargv = g_new0(char *, cargc + 1);
    cargv[0] = prog;
    for (int k = 1; k < cargc; k++)
        cargv[k] = argv[i + words + k - 1];
    int status = cmd->run(&cli, cargc, cargv);
    g_free(cargv);

    cli.audit = md_audit_close(cli.audit);
    cli.store = md_store_close(cli.store);
    cli.procedures = md_procedures_free(cli.procedures);
    md_config_clear(&cli.cfg);
    return status;
}
