/*
 * Operator actions shared by the command line and the admin console (see
 * md_admin.h).  Devices: the certificate is issued only after the registry
 * checks pass, and removed again when registration fails.  Staff: direct
 * updates of the staff table next to md_staff.c's accounts, each audited
 * before it returns; an account nobody audited is not changed (the update
 * and its entry are one step: on an audit failure the update is undone).
 */
#include "md_admin.h"

#include "md_certs.h"
#include "md_crypto.h"
#include "md_err.h"

#include <errno.h>
#include <glib.h>
#include <string.h>
#include <unistd.h>

#define DEVICE_CERT_DAYS 825

/* ---- devices ---- */

int md_admin_device_issue(md_store *st, md_audit *audit, const md_config *cfg,
                          const char *device_id, const char *post_office, const char *out_dir,
                          const char *p12_password, const char *actor, int64_t now_ms)
{
    md_device existing;
    char *serial = NULL;
    int r;

    if (!st || !audit || !cfg || !device_id || !post_office || !out_dir)
        return -EINVAL;
    if (g_mkdir_with_parents(out_dir, 0700) < 0)
        return -errno;
    /* What the registry would refuse, before a certificate exists. */
    r = md_device_lookup(st, device_id, &existing);
    if (r == 0) {
        md_device_clear(&existing);
        return -EEXIST;
    }
    int64_t offices = 0;
    r = md_store_query_int(st, "SELECT COUNT(*) FROM post_office WHERE id = ?",
                           MD_PARAMS(MD_P_TEXT(post_office)), &offices);
    if (r < 0)
        return r;
    if (offices == 0)
        return -MD_E_POST_OFFICE_UNKNOWN;
    char fingerprint[MD_CERTS_SHA256_HEX_LEN + 1];
    r = md_certs_device_issue(cfg->tls.ca, cfg->tls.ca_key, device_id, post_office,
                              DEVICE_CERT_DAYS, out_dir, p12_password ? p12_password : "", &serial,
                              fingerprint);
    if (r < 0)
        return r;
    r = md_device_register(st, audit, device_id, post_office, serial, fingerprint, actor, now_ms);
    free(serial);
    if (r < 0) {
        static const char *const suffixes[] = {".p12", ".crt", ".key"};
        for (size_t i = 0; i < G_N_ELEMENTS(suffixes); i++) {
            g_autofree char *name = g_strconcat(device_id, suffixes[i], NULL);
            g_autofree char *path = g_build_filename(out_dir, name, NULL);
            unlink(path);
        }
    }
    return r;
}

int md_admin_crl_rewrite(md_store *st, const md_config *cfg)
{
    char **serials = NULL;
    int r = md_device_revoked_serials(st, &serials);
    if (r < 0)
        return r;
    r = md_certs_crl_write(cfg->tls.ca, cfg->tls.ca_key, (const char *const *)serials,
                           cfg->tls.crl);
    g_strfreev(serials);
    return r;
}

int md_admin_device_set_status(md_store *st, md_audit *audit, const md_config *cfg,
                               const char *device_id, enum md_device_status status,
                               const char *actor, int64_t now_ms)
{
    int r = md_device_set_status(st, audit, device_id, status, actor, now_ms);
    if (r < 0 || status != MD_DEVICE_REVOKED)
        return r;
    return md_admin_crl_rewrite(st, cfg);
}

static int on_device_row(const md_row *row, void *userdata)
{
    json_t *o = json_pack(
        "{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:I, s:I}", "id", md_row_text(row, 0), "post_office",
        md_row_text(row, 1), "post_office_name", md_row_text(row, 2), "municipality",
        md_row_text(row, 3), "status", md_row_text(row, 4), "cert_serial", md_row_text(row, 5),
        "created_at", (json_int_t)md_row_int(row, 6), "updated_at", (json_int_t)md_row_int(row, 7));
    return o && json_array_append_new(userdata, o) == 0 ? 0 : -ENOMEM;
}

int md_admin_device_list(md_store *st, const char *municipality, json_t **ret)
{
    json_t *a = json_array();
    md_param mun = municipality ? MD_P_TEXT(municipality) : MD_P_NULL;
    int r = md_store_query(st,
                           "SELECT d.id, d.post_office, p.name, p.municipality, d.status,"
                           " d.cert_serial, d.created_at, d.updated_at FROM device d"
                           " JOIN post_office p ON p.id = d.post_office"
                           " WHERE ? IS NULL OR p.municipality = ? ORDER BY d.id",
                           MD_PARAMS(mun, mun), on_device_row, a);
    if (r < 0) {
        json_decref(a);
        return r;
    }
    *ret = a;
    return 0;
}

/* ---- staff ---- */

static int on_staff_row(const md_row *row, void *userdata)
{
    int64_t now = g_get_real_time() / 1000;
    json_t *o =
        json_pack("{s:s?, s:s?, s:s?, s:b, s:b, s:I, s:I}", "username", md_row_text(row, 0), "role",
                  md_row_text(row, 1), "municipality", md_row_text(row, 2), "disabled",
                  md_row_int(row, 3) != 0, "locked", md_row_int(row, 4) > now, "failed_logins",
                  (json_int_t)md_row_int(row, 5), "created_at", (json_int_t)md_row_int(row, 6));
    return o && json_array_append_new(userdata, o) == 0 ? 0 : -ENOMEM;
}

int md_admin_staff_list(md_store *st, json_t **ret)
{
    json_t *a = json_array();
    int r = md_store_query(st,
                           "SELECT username, role, municipality, disabled, locked_until,"
                           " failed_logins, created_at FROM staff ORDER BY role, username",
                           MD_NO_PARAMS, on_staff_row, a);
    if (r < 0) {
        json_decref(a);
        return r;
    }
    *ret = a;
    return 0;
}

struct account {
    char *municipality;
    bool found;
};

static int on_account(const md_row *row, void *userdata)
{
    struct account *a = userdata;
    a->found = true;
    a->municipality = g_strdup(md_row_text(row, 0));
    return 0;
}

/* The account's municipality (for the audit entry), or -ENOENT. */
static int find_account(md_store *st, const char *username, struct account *ret)
{
    *ret = (struct account){0};
    if (!username)
        return -EINVAL;
    int r = md_store_query(st, "SELECT municipality FROM staff WHERE username = ?",
                           MD_PARAMS(MD_P_TEXT(username)), on_account, ret);
    if (r < 0)
        return r;
    return ret->found ? 0 : -ENOENT;
}

static int64_t audit_account(md_audit *audit, const char *actor, const char *event,
                             const char *municipality, const char *username)
{
    return md_audit_append_new(audit, actor ? actor : "operator", event, municipality, NULL, NULL,
                               json_pack("{s:s}", "username", username));
}

int md_admin_staff_reset_totp(md_store *st, md_audit *audit, const char *username,
                              const char *actor, int64_t now_ms, char **ret_otpauth_uri)
{
    struct account a;
    char *sealed = NULL, *uri = NULL, *old = NULL;
    int r = find_account(st, username, &a);
    if (r < 0)
        return r;
    r = md_store_query_text(st, "SELECT totp_secret FROM staff WHERE username = ?",
                            MD_PARAMS(MD_P_TEXT(username)), &old);
    if (r < 0)
        goto out;
    /* Generated and sealed by md_staff.c, the only code that touches the column's plaintext. */
    r = md_staff_new_totp_secret(st, username, &sealed, &uri);
    if (r < 0)
        goto out;
    r = md_store_exec(st, "UPDATE staff SET totp_secret = ?, totp_last_step = 0 WHERE username = ?",
                      MD_PARAMS(MD_P_TEXT(sealed), MD_P_TEXT(username)));
    if (r < 0)
        goto out;
    int64_t seq = audit_account(audit, actor, "staff_totp_reset", a.municipality, username);
    if (seq < 0) {
        md_store_exec(st, "UPDATE staff SET totp_secret = ? WHERE username = ?",
                      MD_PARAMS(MD_P_TEXT(old), MD_P_TEXT(username)));
        r = (int)seq;
        goto out;
    }
    /* Whoever held the old second factor is logged out. */
    md_store_exec(st, "DELETE FROM web_session WHERE username = ?", MD_PARAMS(MD_P_TEXT(username)));
    *ret_otpauth_uri = uri;
    uri = NULL;
    r = 0;
out:
    (void)now_ms;
    if (uri)
        md_wipe(uri, strlen(uri));
    free(uri);
    free(sealed);
    free(old);
    g_free(a.municipality);
    return r;
}

int md_admin_staff_unlock(md_store *st, md_audit *audit, const char *username, const char *actor,
                          int64_t now_ms)
{
    struct account a;
    int r = find_account(st, username, &a);
    if (r < 0)
        return r;
    int64_t seq = audit_account(audit, actor, "staff_unlocked", a.municipality, username);
    if (seq < 0)
        r = (int)seq;
    else
        r = md_store_exec(st,
                          "UPDATE staff SET failed_logins = 0, locked_until = 0 WHERE username = ?",
                          MD_PARAMS(MD_P_TEXT(username)));
    (void)now_ms;
    g_free(a.municipality);
    return r < 0 ? r : 0;
}

int md_admin_staff_set_disabled(md_store *st, md_audit *audit, const char *username, bool disabled,
                                const char *actor, int64_t now_ms)
{
    struct account a;
    int r = find_account(st, username, &a);
    if (r < 0)
        return r;
    r = md_store_exec(st, "UPDATE staff SET disabled = ? WHERE username = ?",
                      MD_PARAMS(MD_P_INT(disabled ? now_ms : 0), MD_P_TEXT(username)));
    if (r < 0)
        goto out;
    int64_t seq = audit_account(audit, actor, disabled ? "staff_disabled" : "staff_enabled",
                                a.municipality, username);
    if (seq < 0) {
        md_store_exec(st, "UPDATE staff SET disabled = ? WHERE username = ?",
                      MD_PARAMS(MD_P_INT(disabled ? 0 : now_ms), MD_P_TEXT(username)));
        r = (int)seq;
        goto out;
    }
    if (disabled)
        md_store_exec(st, "DELETE FROM web_session WHERE username = ?",
                      MD_PARAMS(MD_P_TEXT(username)));
    r = 0;
out:
    g_free(a.municipality);
    return r;
}
