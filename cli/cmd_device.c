/*
 * `madoguchi device issue|disable|enable|revoke`: counter tablets.  Issuing
 * registers the device and writes its certificate bundle; revoking marks it
 * in the registry (refused at once) and rewrites the CRL (refused at the TLS
 * handshake once the gateway reloads it).
 */
#include "cli.h"
#include "md_admin.h"
#include "md_certs.h"
#include "md_err.h"
#include "md_time.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

int md_cli_device_issue(md_cli *cli, const char *device_id, const char *post_office,
                        const char *out_dir, const char *p12_password)
{
    int r = md_cli_audit(cli);
    if (r < 0)
        return r;
    g_autofree char *dir = out_dir ? g_strdup(out_dir) : md_config_path(&cli->cfg, "devices");
    r = md_admin_device_issue(cli->store, cli->audit, &cli->cfg, device_id, post_office, dir,
                              p12_password, cli->actor, md_now_ms());
    if (r < 0) {
        md_cli_fail(r == -EEXIST || r == -MD_E_POST_OFFICE_UNKNOWN
                        ? (r == -EEXIST ? device_id : post_office)
                        : "device certificate",
                    r);
        return r;
    }
    printf("device %s registered for %s; bundle %s/%s.p12\n", device_id, post_office, dir,
           device_id);
    return 0;
}

int md_cmd_device_issue(md_cli *cli, int argc, char **argv)
{
    char *post_office = NULL, *out_dir = NULL, *p12_password = NULL;
    const GOptionEntry entries[] = {
        {"post-office", 0, 0, G_OPTION_ARG_STRING, &post_office, "the tablet's post office", "ID"},
        {"out", 0, 0, G_OPTION_ARG_FILENAME, &out_dir, "where to write the bundle", "DIR"},
        {"p12-password", 0, 0, G_OPTION_ARG_STRING, &p12_password, "PKCS#12 password", "PW"},
        {NULL},
    };
    bool done;
    int status = md_cli_parse(&argc, &argv, "DEVICE_ID",
                              "Registers a tablet for a post office and writes its client "
                              "certificate: DIR/DEVICE_ID.p12 (for the tablet) and .crt/.key.",
                              entries, &done);
    if (!done) {
        if (argc != 2 || !post_office) {
            fprintf(stderr, "usage: madoguchi device issue DEVICE_ID --post-office ID "
                            "[--out DIR] [--p12-password PW]\n");
            status = 2;
        } else {
            status = md_cli_device_issue(cli, argv[1], post_office, out_dir, p12_password) < 0;
        }
    }
    g_free(post_office);
    g_free(out_dir);
    g_free(p12_password);
    return status;
}

int md_cmd_certs_crl(md_cli *cli, int argc, char **argv)
{
    bool done;
    int status = md_cli_parse(&argc, &argv, "",
                              "Rewrites the CRL (valid 30 days) from the registry's revoked "
                              "devices. The gateway does this itself while tls.ca_key is on the "
                              "host; with the CA key kept elsewhere, run this there at least every "
                              "few weeks, copy tls.crl to the gateway and send it SIGHUP.",
                              NULL, &done);
    if (done)
        return status;
    if (md_cli_store(cli) < 0)
        return 1;
    int r = md_admin_crl_rewrite(cli->store, &cli->cfg);
    if (r < 0)
        return md_cli_fail("revocation list", r);
    printf("CRL written to %s\n", cli->cfg.tls.crl);
    return 0;
}

static int set_status(md_cli *cli, int argc, char **argv, enum md_device_status status_to,
                      const char *verb, const char *summary)
{
    bool done;
    g_autofree char *params = g_strdup("DEVICE_ID");
    int status = md_cli_parse(&argc, &argv, params, summary, NULL, &done);
    if (done)
        return status;
    if (argc != 2) {
        fprintf(stderr, "usage: madoguchi device %s DEVICE_ID\n", verb);
        return 2;
    }
    if (md_cli_audit(cli) < 0)
        return 1;
    int r = md_admin_device_set_status(cli->store, cli->audit, &cli->cfg, argv[1], status_to,
                                       cli->actor, md_now_ms());
    if (r < 0)
        return md_cli_fail(argv[1], r);
    printf("device %s %sd\n", argv[1], verb);
    return 0;
}

int md_cmd_device_disable(md_cli *cli, int argc, char **argv)
{
    return set_status(cli, argc, argv, MD_DEVICE_DISABLED, "disable",
                      "Refuses the tablet (at its next message) until it is enabled again.");
}

int md_cmd_device_enable(md_cli *cli, int argc, char **argv)
{
    return set_status(cli, argc, argv, MD_DEVICE_ACTIVE, "enable",
                      "Allows a disabled tablet again (not a revoked one).");
}

int md_cmd_device_revoke(md_cli *cli, int argc, char **argv)
{
    return set_status(cli, argc, argv, MD_DEVICE_REVOKED, "revoke",
                      "Revokes the tablet's certificate for good and rewrites the CRL.");
}
