/*
 * Shared pieces of the operator commands: the loaded configuration and,
 * opened on demand, the store, the audit log and the procedure list.  One
 * command runs per process, on the main thread.
 */
#ifndef MD_CLI_H
#define MD_CLI_H

#include "md_audit.h"
#include "md_config.h"
#include "md_registry.h"
#include "md_store.h"

#include <glib.h>

typedef struct md_cli {
    md_config cfg;
    md_store *store;
    md_audit *audit;
    md_procedures *procedures;
    const char *actor; /* "operator" */
} md_cli;

/* Each opens what it needs once; on failure prints why and returns < 0. */
int md_cli_store(md_cli *cli);
int md_cli_audit(md_cli *cli); /* implies the store */
/* The store with the key of sealed columns attached (core/md_sealed.h),
 * creating the evidence master key if absent; md_cli_store attaches it only
 * when the master key file exists. */
int md_cli_sealing(md_cli *cli);
int md_cli_procedures(md_cli *cli);
int md_cli_ensure_data_dir(md_cli *cli);

/* Parses argv with the given options; prints usage for --help and errors.
 * Returns 0 to go on, or the exit status to return (0 after --help). */
int md_cli_parse(int *argc, char ***argv, const char *params, const char *summary,
                 const GOptionEntry *entries, bool *ret_done);

/* Prints "madoguchi: <what>: <error text>" to stderr and returns 1. */
int md_cli_fail(const char *what, int err);

typedef int (*md_cli_command)(md_cli *cli, int argc, char **argv);
int md_cmd_serve(md_cli *cli, int argc, char **argv);
int md_cmd_setup_dev(md_cli *cli, int argc, char **argv);
int md_cmd_certs_init(md_cli *cli, int argc, char **argv);
int md_cmd_certs_crl(md_cli *cli, int argc, char **argv);
int md_cmd_registry_import(md_cli *cli, int argc, char **argv);
int md_cmd_registry_list(md_cli *cli, int argc, char **argv);
int md_cmd_registry_enable(md_cli *cli, int argc, char **argv);
int md_cmd_user_add(md_cli *cli, int argc, char **argv);
int md_cmd_user_reset_totp(md_cli *cli, int argc, char **argv);
int md_cmd_user_unlock(md_cli *cli, int argc, char **argv);
int md_cmd_user_disable(md_cli *cli, int argc, char **argv);
int md_cmd_user_enable(md_cli *cli, int argc, char **argv);
int md_cmd_device_issue(md_cli *cli, int argc, char **argv);
int md_cmd_device_disable(md_cli *cli, int argc, char **argv);
int md_cmd_device_enable(md_cli *cli, int argc, char **argv);
int md_cmd_device_revoke(md_cli *cli, int argc, char **argv);
int md_cmd_audit_verify(md_cli *cli, int argc, char **argv);
int md_cmd_audit_export(md_cli *cli, int argc, char **argv);
int md_cmd_audit_checkpoint(md_cli *cli, int argc, char **argv);
int md_cmd_recording_list(md_cli *cli, int argc, char **argv);
int md_cmd_recording_export(md_cli *cli, int argc, char **argv);
int md_cmd_retention_run(md_cli *cli, int argc, char **argv);

/* Shared by certs init and setup-dev: CA, server certificate, empty CRL. */
int md_cli_certs_init(md_cli *cli, char **names, bool force_server);
/* Shared by user add and setup-dev. */
int md_cli_user_add(md_cli *cli, const char *username, const char *role, const char *municipality,
                    const char *password, char **ret_uri);
/* Shared by device issue and setup-dev. */
int md_cli_device_issue(md_cli *cli, const char *device_id, const char *post_office,
                        const char *out_dir, const char *p12_password);

#endif
