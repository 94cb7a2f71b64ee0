/* `madoguchi registry import|list|enable`: the municipality's registry. */
#include "cli.h"
#include "md_err.h"
#include "md_time.h"

#include <jansson.h>
#include <stdio.h>

int md_cmd_registry_import(md_cli *cli, int argc, char **argv)
{
    bool done;
    int status = md_cli_parse(&argc, &argv, "FILE",
                              "Imports municipalities, post offices and designations from a JSON "
                              "file (format: data/sample-registry.json). Valid entries are "
                              "upserted; invalid ones are refused and named. Exit status: 0 all "
                              "imported, 2 some refused, 1 error.",
                              NULL, &done);
    if (done)
        return status;
    if (argc != 2) {
        fprintf(stderr, "usage: madoguchi registry import FILE\n");
        return 2;
    }
    json_error_t jerr;
    json_t *doc = json_load_file(argv[1], JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        fprintf(stderr, "madoguchi: %s:%d: %s\n", argv[1], jerr.line, jerr.text);
        return 1;
    }
    if (md_cli_audit(cli) < 0 || md_cli_procedures(cli) < 0) {
        json_decref(doc);
        return 1;
    }
    int r = md_registry_import(cli->store, cli->audit, cli->procedures, doc, cli->actor,
                               md_now_ms(), stdout);
    json_decref(doc);
    if (r < 0)
        return md_cli_fail(argv[1], r);
    printf("%s: %d entr%s refused\n", argv[1], r, r == 1 ? "y" : "ies");
    return r == 0 ? 0 : 2;
}

int md_cmd_registry_list(md_cli *cli, int argc, char **argv)
{
    bool done;
    int status = md_cli_parse(&argc, &argv, "", "Prints the registry.", NULL, &done);
    if (done)
        return status;
    if (md_cli_store(cli) < 0 || md_cli_procedures(cli) < 0)
        return 1;
    int r = md_registry_print(cli->store, cli->procedures, stdout);
    return r < 0 ? md_cli_fail("registry list", r) : 0;
}

int md_cmd_registry_enable(md_cli *cli, int argc, char **argv)
{
    bool done;
    int status = md_cli_parse(&argc, &argv, "PROCEDURE",
                              "Enables a procedure marked after_terminal_upgrade once the "
                              "integrated terminal is upgraded (Q&A Q2).",
                              NULL, &done);
    if (done)
        return status;
    if (argc != 2) {
        fprintf(stderr, "usage: madoguchi registry enable PROCEDURE\n");
        return 2;
    }
    if (md_cli_audit(cli) < 0 || md_cli_procedures(cli) < 0)
        return 1;
    int r = md_registry_enable_procedure(cli->store, cli->audit, cli->procedures, argv[1],
                                         cli->actor, md_now_ms());
    if (r < 0)
        return md_cli_fail(argv[1], r);
    printf("%s enabled\n", argv[1]);
    return 0;
}
