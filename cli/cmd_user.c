/* `madoguchi user add|reset-totp|unlock|disable|enable`: staff accounts
 * (password + TOTP), through the same functions as the admin console. */
#include "cli.h"
#include "md_admin.h"
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

/* The one-argument account commands: USERNAME, then the shared function. */
enum account_action { ACCOUNT_RESET_TOTP, ACCOUNT_UNLOCK, ACCOUNT_DISABLE, ACCOUNT_ENABLE };

static int account_command(md_cli *cli, int argc, char **argv, enum account_action action,
                           const char *verb, const char *summary)
{
    bool done;
    int status = md_cli_parse(&argc, &argv, "USERNAME", summary, NULL, &done);
    if (done)
        return status;
    if (argc != 2) {
        fprintf(stderr, "usage: madoguchi user %s USERNAME\n", verb);
        return 2;
    }
    if (md_cli_audit(cli) < 0)
        return 1;
    char *uri = NULL;
    int64_t now = md_now_ms();
    int r;
    switch (action) {
    case ACCOUNT_RESET_TOTP:
        r = md_admin_staff_reset_totp(cli->store, cli->audit, argv[1], cli->actor, now, &uri);
        break;
    case ACCOUNT_UNLOCK:
        r = md_admin_staff_unlock(cli->store, cli->audit, argv[1], cli->actor, now);
        break;
    default:
        r = md_admin_staff_set_disabled(cli->store, cli->audit, argv[1], action == ACCOUNT_DISABLE,
                                        cli->actor, now);
        break;
    }
    if (r < 0)
        return md_cli_fail(argv[1], r);
    if (uri) {
        printf("%s\n", uri);
        explicit_bzero(uri, strlen(uri));
        free(uri);
    } else {
        printf("%s: %s done\n", argv[1], verb);
    }
    return 0;
}

int md_cmd_user_reset_totp(md_cli *cli, int argc, char **argv)
{
    return account_command(cli, argc, argv, ACCOUNT_RESET_TOTP, "reset-totp",
                           "Replaces the account's TOTP secret, prints the new otpauth:// URI "
                           "once and ends the account's web sessions.");
}

int md_cmd_user_unlock(md_cli *cli, int argc, char **argv)
{
    return account_command(cli, argc, argv, ACCOUNT_UNLOCK, "unlock",
                           "Clears the account's failed logins and any lock.");
}

int md_cmd_user_disable(md_cli *cli, int argc, char **argv)
{
    return account_command(cli, argc, argv, ACCOUNT_DISABLE, "disable",
                           "Refuses the account's logins and ends its web sessions.");
}

int md_cmd_user_enable(md_cli *cli, int argc, char **argv)
{
    return account_command(cli, argc, argv, ACCOUNT_ENABLE, "enable",
                           "Allows a disabled account to log in again.");
}
