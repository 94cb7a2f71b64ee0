/*
 * `madoguchi certs init` (the deployment PKI) and `madoguchi setup-dev` (a
 * demo installation: dev certificates, the sample registry, demo staff and a
 * demo tablet).  Both only create what is missing, so they are safe to rerun.
 */
#include "cli.h"
#include "md_certs.h"
#include "md_crypto.h"
#include "md_err.h"
#include "md_staff.h"
#include "md_time.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const default_names[] = {"localhost", "127.0.0.1", "::1", NULL};

int md_cli_certs_init(md_cli *cli, char **names, bool force_server)
{
    int r = md_cli_ensure_data_dir(cli);
    if (r < 0)
        return r;
    g_autofree char *dir = g_path_get_dirname(cli->cfg.tls.ca);
    g_mkdir_with_parents(dir, 0700);
    r = md_certs_ca_init(cli->cfg.tls.ca, cli->cfg.tls.ca_key, "madoguchi deployment CA");
    if (r < 0) {
        md_cli_fail("CA", r);
        return r;
    }
    if (r == 1)
        printf("created CA %s\n", cli->cfg.tls.ca);
    if (force_server || !g_file_test(cli->cfg.tls.cert, G_FILE_TEST_EXISTS)) {
        const char *const *n = names && names[0] ? (const char *const *)names : default_names;
        r = md_certs_server_issue(cli->cfg.tls.ca, cli->cfg.tls.ca_key, n, cli->cfg.tls.cert,
                                  cli->cfg.tls.key);
        if (r < 0) {
            md_cli_fail("server certificate", r);
            return r;
        }
        printf("created server certificate %s\n", cli->cfg.tls.cert);
    }
    if (!g_file_test(cli->cfg.tls.crl, G_FILE_TEST_EXISTS)) {
        const char *const none[] = {NULL};
        r = md_certs_crl_write(cli->cfg.tls.ca, cli->cfg.tls.ca_key, none, cli->cfg.tls.crl);
        if (r < 0) {
            md_cli_fail("revocation list", r);
            return r;
        }
    }
    return 0;
}

int md_cmd_certs_init(md_cli *cli, int argc, char **argv)
{
    char **names = NULL;
    gboolean force = FALSE;
    const GOptionEntry entries[] = {
        {"name", 0, 0, G_OPTION_ARG_STRING_ARRAY, &names,
         "DNS name or IP address of the gateway (repeatable; default localhost, 127.0.0.1, ::1)",
         "NAME"},
        {"force", 0, 0, G_OPTION_ARG_NONE, &force, "reissue the server certificate (rotation)",
         NULL},
        {NULL},
    };
    bool done;
    int status = md_cli_parse(&argc, &argv, "",
                              "Creates the deployment CA (if absent), the gateway's server "
                              "certificate (ECDSA P-256) and an empty revocation list.",
                              entries, &done);
    if (!done)
        status = md_cli_certs_init(cli, names, force) < 0;
    g_strfreev(names);
    return status;
}

/* ---- setup-dev ---- */

struct demo_user {
    const char *username;
    const char *role;
    const char *municipality;
};

static const struct demo_user demo_users[] = {
    {"demo-verifier", "verifier", "204111"},
    {"demo-verifier-nikko", "verifier", "092061"},
    {"demo-auditor", "auditor", NULL},
    {"demo-admin", "admin", NULL},
};

static int count_rows(md_cli *cli, const char *sql, int64_t *ret)
{
    *ret = 0;
    return md_store_query_int(cli->store, sql, MD_NO_PARAMS, ret);
}

static int import_sample(md_cli *cli)
{
    int64_t n;
    if (count_rows(cli, "SELECT COUNT(*) FROM municipality", &n) < 0)
        return -MD_E_STORE;
    if (n > 0)
        return 0;
    g_autofree char *path = g_build_filename(MD_DATADIR, "sample-registry.json", NULL);
    json_error_t jerr;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        fprintf(stderr, "madoguchi: %s: %s\n", path, jerr.text);
        return -EINVAL;
    }
    int r = md_registry_import(cli->store, cli->audit, cli->procedures, doc, cli->actor,
                               md_now_ms(), stdout);
    json_decref(doc);
    if (r == 0)
        printf("imported the sample registry %s\n", path);
    return r < 0 ? r : 0;
}

static char *random_password(void)
{
    uint8_t raw[12];
    if (md_random_bytes(raw, sizeof(raw)) < 0)
        return NULL;
    return md_base64url_encode(raw, sizeof(raw));
}

static int create_demo_users(md_cli *cli, FILE *credentials)
{
    for (size_t i = 0; i < G_N_ELEMENTS(demo_users); i++) {
        const struct demo_user *u = &demo_users[i];
        int64_t n = 0;
        md_store_query_int(cli->store, "SELECT COUNT(*) FROM staff WHERE username = ?",
                           MD_PARAMS(MD_P_TEXT(u->username)), &n);
        if (n > 0)
            continue;
        char *password = random_password();
        char *uri = NULL;
        if (!password)
            return -MD_E_CRYPTO;
        int r = md_cli_user_add(cli, u->username, u->role, u->municipality, password, &uri);
        if (r == 0)
            fprintf(credentials, "%s (%s%s%s)\n  password: %s\n  totp: %s\n\n", u->username,
                    u->role, u->municipality ? ", " : "", u->municipality ? u->municipality : "",
                    password, uri);
        free(password);
        free(uri);
        if (r < 0)
            return r;
    }
    return 0;
}

int md_cmd_setup_dev(md_cli *cli, int argc, char **argv)
{
    bool done;
    int status = md_cli_parse(&argc, &argv, "",
                              "Creates what a demo installation needs and is missing: dev "
                              "certificates, the sample registry, demo staff (credentials in "
                              "DATA_DIR/demo-credentials.txt) and a demo tablet at PO-NUKUTA.",
                              NULL, &done);
    if (done)
        return status;
    if (md_cli_certs_init(cli, NULL, false) < 0 || md_cli_audit(cli) < 0 ||
        md_cli_procedures(cli) < 0)
        return 1;
    int r = import_sample(cli);
    if (r < 0)
        return md_cli_fail("sample registry", r);

    g_autofree char *cred_path = md_config_path(&cli->cfg, "demo-credentials.txt");
    FILE *cred = fopen(cred_path, "a");
    if (!cred)
        return md_cli_fail(cred_path, -errno);
    r = create_demo_users(cli, cred);
    fclose(cred);
    if (r < 0)
        return 1;

    md_device dev;
    if (md_device_lookup(cli->store, "TAB-NUKUTA-1", &dev) == 0)
        md_device_clear(&dev);
    else if (md_cli_device_issue(cli, "TAB-NUKUTA-1", "PO-NUKUTA", NULL, "madoguchi") < 0)
        return 1;
    printf("demo credentials: %s\n", cred_path);
    return 0;
}
