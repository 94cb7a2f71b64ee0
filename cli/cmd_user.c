/* `madoguchi user add`: staff accounts (password + TOTP). */
#include "cli.h"
#include "md_err.h"
#include "md_staff.h"
#include "md_time.h"

#include <stdio.h>
#include <string.h>

int md_cli_user_add(md_cli *cli, const char *username, const char *role, const char *municipality,
                    const char *password, char **ret_uri)
{
    enum md_role r_role;
    if (md_role_parse(role, &r_role) < 0) {
        fprintf(stderr, "madoguchi: --role must be verifier, auditor or admin\n");
        return -EINVAL;
    }
    int r = md_cli_audit(cli);
    if (r < 0)
        return r;
    r = md_cli_sealing(cli); /* the TOTP secret is stored sealed */
    if (r < 0)
        return r;
    r = md_staff_add(cli->store, cli->audit, username, r_role, municipality, password, cli->actor,
                     md_now_ms(), ret_uri);
    if (r < 0)
        md_cli_fail(username, r);
    return r;
}

static char *read_password_stdin(void)
{
    char buf[1024];
    if (!fgets(buf, sizeof(buf), stdin))
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    char *pw = g_strdup(buf);
    explicit_bzero(buf, sizeof(buf));
    return pw;
}

int md_cmd_user_add(md_cli *cli, int argc, char **argv)
{
    char *role = NULL, *municipality = NULL;
    gboolean password_stdin = FALSE;
    const GOptionEntry entries[] = {
        {"role", 0, 0, G_OPTION_ARG_STRING, &role, "verifier, auditor or admin", "ROLE"},
        {"municipality", 0, 0, G_OPTION_ARG_STRING, &municipality,
         "municipality code (required for verifiers)", "CODE"},
        {"password-stdin", 0, 0, G_OPTION_ARG_NONE, &password_stdin,
         "read the password from standard input (at least 12 characters)", NULL},
        {NULL},
    };
    bool done;
    int status = md_cli_parse(&argc, &argv, "USERNAME",
                              "Adds a staff account and prints its TOTP secret once, as an "
                              "otpauth:// URI for an authenticator app.",
                              entries, &done);
    char *password = NULL, *uri = NULL;
    if (done)
        goto out;
    status = 2;
    if (argc != 2 || !role || !password_stdin) {
        fprintf(stderr, "usage: madoguchi user add USERNAME --role ROLE [--municipality CODE] "
                        "--password-stdin\n");
        goto out;
    }
    status = 1;
    password = read_password_stdin();
    if (!password) {
        fprintf(stderr, "madoguchi: no password on standard input\n");
        goto out;
    }
    if (md_cli_user_add(cli, argv[1], role, municipality, password, &uri) < 0)
        goto out;
    printf("%s\n", uri);
    status = 0;
out:
    if (password) {
        explicit_bzero(password, strlen(password));
        g_free(password);
    }
    free(uri);
    g_free(role);
    g_free(municipality);
    return status;
}
