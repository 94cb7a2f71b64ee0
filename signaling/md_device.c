/*
 * Counter tablets.  A device belongs to one post office (and through it to
 * one municipality) and serves every procedure that office is designated
 * for (Q&A Q8), so nothing per procedure is stored here.
 *
 * Status moves active <-> disabled freely; revoked is final, because the
 * device's certificate is on the CRL and cannot come back: a replacement
 * tablet is registered under a new id with a new certificate.  Certificate
 * serials are kept as upper-case hex, the form OpenSSL prints, and are
 * unique across devices so a serial names one tablet on the CRL.  The
 * serial and the certificate's SHA-256 fingerprint bind a device to the one
 * certificate issued for it: a connection with another certificate, even one
 * signed by the CA with the right names, is refused.  Every change is
 * audited.  Functions run on the thread that owns the store.
 */
#include "md_err.h"
#include "md_registry.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

#define DEVICE_ID_MAX 64
#define SERIAL_HEX_MAX 64 /* RFC 5280 4.1.2.2: at most 20 octets; leave room */

static const char *const status_names[] = {
    [MD_DEVICE_ACTIVE] = "active",
    [MD_DEVICE_DISABLED] = "disabled",
    [MD_DEVICE_REVOKED] = "revoked",
};

static int status_parse(const char *s, enum md_device_status *ret)
{
    for (size_t i = 0; s && i < G_N_ELEMENTS(status_names); i++)
        if (strcmp(s, status_names[i]) == 0) {
            *ret = (enum md_device_status)i;
            return 0;
        }
    return -MD_E_STORE;
}

/* Device ids appear in certificates, logs and URLs: keep them plain. */
static bool valid_device_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > DEVICE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(s[i]) && !strchr("._-", s[i]))
            return false;
    return true;
}

static char *normalize_serial(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SERIAL_HEX_MAX)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isxdigit(s[i]))
            return NULL;
    return g_ascii_strup(s, -1);
}

static bool valid_sha256(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (size_t i = 0; i < 64; i++)
        if (!g_ascii_isxdigit(s[i]) || g_ascii_isupper(s[i]))
            return false;
    return true;
}

static int64_t audit_device(md_audit *audit, const char *actor, const char *event,
                            const char *municipality, const char *post_office, json_t *detail)
{
    if (!detail)
        return -ENOMEM;
    return md_audit_append_new(audit, actor ? actor : "operator", event, municipality, post_office,
                               NULL, detail);
}

int md_device_register(md_store *st, md_audit *audit, const char *device_id,
                       const char *post_office, const char *cert_serial, const char *cert_sha256,
                       const char *actor, int64_t now_ms)
{
    char *municipality = NULL;
    char *serial = NULL;
    int64_t one;
    int r;

    if (!st || !audit || !valid_device_id(device_id) || !post_office)
        return -EINVAL;
    if (cert_serial && !(serial = normalize_serial(cert_serial)))
        return -EINVAL;
    if (cert_sha256 && !valid_sha256(cert_sha256)) {
        g_free(serial);
        return -EINVAL;
    }

    r = md_store_query_text(st, "SELECT municipality FROM post_office WHERE id = ?",
                            MD_PARAMS(MD_P_TEXT(post_office)), &municipality);
    if (r <= 0) {
        r = r < 0 ? r : -MD_E_POST_OFFICE_UNKNOWN;
        goto out;
    }
    r = md_store_query_int(st, "SELECT 1 FROM device WHERE id = ? OR cert_serial = ?",
                           MD_PARAMS(MD_P_TEXT(device_id), MD_P_TEXT(serial)), &one);
    if (r != 0) {
        r = r < 0 ? r : -EEXIST;
        goto out;
    }
    r = md_store_exec(st,
                      "INSERT INTO device (id, post_office, status, cert_serial, cert_sha256,"
                      " created_at, updated_at) VALUES (?, ?, 'active', ?, ?, ?, ?)",
                      MD_PARAMS(MD_P_TEXT(device_id), MD_P_TEXT(post_office), MD_P_TEXT(serial),
                                MD_P_TEXT(cert_sha256), MD_P_INT(now_ms), MD_P_INT(now_ms)));
    if (r < 0)
        goto out;

    json_t *detail = json_pack("{s:s}", "device", device_id);
    if (detail && serial)
        json_object_set_new(detail, "cert_serial", json_string(serial));
    if (detail && cert_sha256)
        json_object_set_new(detail, "cert_sha256", json_string(cert_sha256));
    int64_t seq =
        audit_device(audit, actor, "device_registered", municipality, post_office, detail);
    r = seq < 0 ? (int)seq : 0;
out:
    free(municipality);
    g_free(serial);
    return r;
}

static int on_device(const md_row *row, void *userdata)
{
    md_device *d = userdata;
    enum md_device_status status;
    if (status_parse(md_row_text(row, 3), &status) < 0)
        return -MD_E_STORE;
    *d = (md_device){
        .id = g_strdup(md_row_text(row, 0)),
        .post_office = g_strdup(md_row_text(row, 1)),
        .municipality = g_strdup(md_row_text(row, 2)), /* NULL if the office vanished */
        .status = status,
        .cert_serial = g_strdup(md_row_text(row, 4)),
        .cert_sha256 = g_strdup(md_row_text(row, 5)),
    };
    return 1;
}

int md_device_lookup(md_store *st, const char *device_id, md_device *ret)
{
    md_device d = {0};
    if (!st || !device_id || !ret)
        return -EINVAL;
    int r = md_store_query(st,
                           "SELECT d.id, d.post_office, p.municipality, d.status, d.cert_serial,"
                           " d.cert_sha256"
                           " FROM device d LEFT JOIN post_office p ON p.id = d.post_office"
                           " WHERE d.id = ?",
                           MD_PARAMS(MD_P_TEXT(device_id)), on_device, &d);
    if (r < 0)
        return r;
    if (!d.id)
        return -MD_E_DEVICE_UNKNOWN;
    *ret = d;
    return 0;
}

int md_device_set_status(md_store *st, md_audit *audit, const char *device_id,
                         enum md_device_status status, const char *actor, int64_t now_ms)
{
    md_device d = {0};
    int r;

    if (!st || !audit || !device_id || (unsigned)status >= G_N_ELEMENTS(status_names))
        return -EINVAL;
    r = md_device_lookup(st, device_id, &d);
    if (r < 0)
        return r;
    if (d.status == status) {
        r = 0;
        goto out;
    }
    /* The certificate is on the CRL; a revoked tablet never comes back. */
    if (d.status == MD_DEVICE_REVOKED) {
        r = -MD_E_DEVICE_REVOKED;
        goto out;
    }
    r = md_store_exec(
        st, "UPDATE device SET status = ?, updated_at = ? WHERE id = ?",
        MD_PARAMS(MD_P_TEXT(status_names[status]), MD_P_INT(now_ms), MD_P_TEXT(device_id)));
    if (r < 0)
        goto out;
    json_t *detail = json_pack("{s:s, s:s, s:s}", "device", d.id, "from", status_names[d.status],
                               "to", status_names[status]);
    int64_t seq =
        audit_device(audit, actor, "device_status", d.municipality, d.post_office, detail);
    r = seq < 0 ? (int)seq : 0;
out:
    md_device_clear(&d);
    return r;
}

int md_device_check_certificate(const md_device *d, const char *serial, const char *sha256)
{
    /* A row without a serial was never issued a certificate by `device
     * issue`: nothing to compare with, so nothing is accepted. */
    if (!d || !d->cert_serial || !serial || strcmp(d->cert_serial, serial) != 0)
        return -MD_E_DEVICE_CERT_UNREGISTERED;
    if (d->cert_sha256 && (!sha256 || strcmp(d->cert_sha256, sha256) != 0))
        return -MD_E_DEVICE_CERT_UNREGISTERED;
    return 0;
}

static int on_serial(const md_row *row, void *userdata)
{
    g_ptr_array_add(userdata, g_strdup(md_row_text(row, 0)));
    return 0;
}

int md_device_revoked_serials(md_store *st, char ***ret)
{
    if (!st || !ret)
        return -EINVAL;
    GPtrArray *serials = g_ptr_array_new_with_free_func(g_free);
    int r = md_store_query(st,
                           "SELECT cert_serial FROM device WHERE status = 'revoked'"
                           " AND cert_serial IS NOT NULL ORDER BY cert_serial",
                           MD_NO_PARAMS, on_serial, serials);
    if (r < 0) {
        g_ptr_array_unref(serials);
        return r;
    }
    g_ptr_array_add(serials, NULL);
    *ret = (char **)g_ptr_array_free(serials, FALSE);
    return 0;
}

void md_device_clear(md_device *d)
{
    if (!d)
        return;
    g_free(d->id);
    g_free(d->post_office);
    g_free(d->municipality);
    g_free(d->cert_serial);
    g_free(d->cert_sha256);
    *d = (md_device){0};
}
