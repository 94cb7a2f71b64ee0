/*
 * Sealed columns (md_sealed.h).  The nonce is random per value: a value is
 * sealed once per write, far below the 2^32 random-nonce limit for one
 * GCM key (NIST SP 800-38D 8.3).  Plaintext and intermediate buffers are
 * wiped.  md_sealed_migrate() reads the plaintext rows first and rewrites
 * them in one transaction, so a failure leaves the table as it was.
 */
#include "md_sealed.h"
#include "md_err.h"

#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX_LEN (sizeof(MD_SEALED_PREFIX) - 1)

bool md_sealed_is_sealed(const char *s)
{
    return s && strncmp(s, MD_SEALED_PREFIX, PREFIX_LEN) == 0;
}

int md_sealed_seal(const uint8_t key[MD_SEALED_KEY_LEN], const char *context, const char *plain,
                   char **ret)
{
    if (!key || !context || !plain || !ret)
        return -EINVAL;
    size_t len = strlen(plain);
    if (len > MD_SEALED_MAX_PLAIN)
        return -E2BIG;
    size_t raw_len = MD_AEAD_NONCE_LEN + len + MD_AEAD_TAG_LEN;
    uint8_t *raw = malloc(raw_len);
    char *text = malloc(PREFIX_LEN + 2 * raw_len + 1);
    int r = raw && text ? 0 : -ENOMEM;
    if (r == 0)
        r = md_random_bytes(raw, MD_AEAD_NONCE_LEN);
    if (r == 0)
        r = md_aead_seal(key, raw, context, strlen(context), plain, len, raw + MD_AEAD_NONCE_LEN);
    if (r == 0) {
        memcpy(text, MD_SEALED_PREFIX, PREFIX_LEN);
        md_hex_encode(raw, raw_len, text + PREFIX_LEN);
        *ret = text;
        text = NULL;
    }
    free(raw);
    free(text);
    return r;
}

int md_sealed_open(const uint8_t key[MD_SEALED_KEY_LEN], const char *context, const char *stored,
                   char **ret)
{
    if (!key || !context || !stored || !ret)
        return -EINVAL;
    if (!md_sealed_is_sealed(stored))
        return -MD_E_EVIDENCE_CORRUPT;
    const char *hex = stored + PREFIX_LEN;
    size_t hex_len =
        strnlen(hex, 2 * (MD_AEAD_NONCE_LEN + MD_SEALED_MAX_PLAIN + MD_AEAD_TAG_LEN) + 1);
    if (hex_len % 2 || hex_len / 2 < MD_AEAD_NONCE_LEN + MD_AEAD_TAG_LEN ||
        hex_len / 2 > MD_AEAD_NONCE_LEN + MD_SEALED_MAX_PLAIN + MD_AEAD_TAG_LEN)
        return -MD_E_EVIDENCE_CORRUPT;
    size_t raw_len = hex_len / 2, plain_len = raw_len - MD_AEAD_NONCE_LEN - MD_AEAD_TAG_LEN;
    uint8_t *raw = malloc(raw_len);
    char *plain = malloc(plain_len + 1);
    int r = raw && plain ? 0 : -ENOMEM;
    if (r == 0 && md_hex_decode(hex, raw, raw_len) < 0)
        r = -MD_E_EVIDENCE_CORRUPT;
    if (r == 0 && md_aead_open(key, raw, context, strlen(context), raw + MD_AEAD_NONCE_LEN,
                               raw_len - MD_AEAD_NONCE_LEN, (uint8_t *)plain) < 0)
        r = -MD_E_EVIDENCE_CORRUPT;
    /* A NUL inside would make the text mean less than what was sealed. */
    if (r == 0 && memchr(plain, '\0', plain_len))
        r = -MD_E_EVIDENCE_CORRUPT;
    if (r == 0) {
        plain[plain_len] = '\0';
        *ret = plain;
        plain = NULL;
    }
    free(raw);
    if (plain) {
        md_wipe(plain, plain_len + 1);
        free(plain);
    }
    return r;
}

int md_store_seal(md_store *st, const char *context, const char *plain, char **ret)
{
    const uint8_t *key = md_store_field_key(st);
    return key ? md_sealed_seal(key, context, plain, ret) : -MD_E_EVIDENCE_KEY;
}

int md_store_unseal(md_store *st, const char *context, const char *stored, char **ret)
{
    const uint8_t *key = md_store_field_key(st);
    return key ? md_sealed_open(key, context, stored, ret) : -MD_E_EVIDENCE_KEY;
}

/* ---- migration of plaintext rows ---- */

/* One sealed column: how to find its plaintext rows and name their context. */
static const struct sealed_column {
    const char *table, *column;
    const char *context_sql; /* SQL expression of the AAD */
} columns[] = {
    {"staff", "totp_secret", "'staff.totp_secret:' || username"},
    {"verification_session", "outcome_note", "'verification_session.outcome_note:' || id"},
    {"evidence", "name", "'evidence.name:' || session_id || '/' || file_id"},
};

struct plain_row {
    int64_t rowid;
    char *context;
    char *value;
};

static void plain_row_free(gpointer p)
{
    struct plain_row *row = p;
    md_wipe(row->value, strlen(row->value));
    g_free(row->value);
    g_free(row->context);
    g_free(row);
}

static int on_plain_row(const md_row *row, void *userdata)
{
    const char *context = md_row_text(row, 1), *value = md_row_text(row, 2);
    if (!context || !value)
        return -MD_E_STORE;
    struct plain_row *p = g_new0(struct plain_row, 1);
    p->rowid = md_row_int(row, 0);
    p->context = g_strdup(context);
    p->value = g_strdup(value);
    g_ptr_array_add(userdata, p);
    return 0;
}

int md_sealed_migrate(md_store *st)
{
    GPtrArray *rows[G_N_ELEMENTS(columns)] = {0};
    int r = 0, sealed = 0;

    if (!st)
        return -EINVAL;
    if (!md_store_field_key(st))
        return -MD_E_EVIDENCE_KEY;
    for (size_t i = 0; i < G_N_ELEMENTS(columns) && r >= 0; i++) {
        const struct sealed_column *c = &columns[i];
        g_autofree char *sql = g_strdup_printf(
            "SELECT rowid, %s, %s FROM %s WHERE %s IS NOT NULL AND substr(%s, 1, %zu) <> '%s'",
            c->context_sql, c->column, c->table, c->column, c->column, PREFIX_LEN,
            MD_SEALED_PREFIX);
        rows[i] = g_ptr_array_new_with_free_func(plain_row_free);
        r = md_store_query(st, sql, MD_NO_PARAMS, on_plain_row, rows[i]);
        sealed += (int)rows[i]->len;
    }
    if (r < 0 || sealed == 0)
        goto out;

    r = md_store_begin(st);
    if (r < 0)
        goto out;
    for (size_t i = 0; i < G_N_ELEMENTS(columns) && r >= 0; i++) {
        g_autofree char *sql = g_strdup_printf("UPDATE %s SET %s = ? WHERE rowid = ?",
                                               columns[i].table, columns[i].column);
        for (guint j = 0; j < rows[i]->len && r >= 0; j++) {
            struct plain_row *p = g_ptr_array_index(rows[i], j);
            char *value = NULL;
            r = md_store_seal(st, p->context, p->value, &value);
            if (r >= 0)
                r = md_store_exec(st, sql, MD_PARAMS(MD_P_TEXT(value), MD_P_INT(p->rowid)));
            free(value);
        }
    }
    if (r >= 0)
        r = md_store_commit(st);
    if (r < 0)
        md_store_rollback(st);
out:
    for (size_t i = 0; i < G_N_ELEMENTS(columns); i++)
        if (rows[i])
            g_ptr_array_unref(rows[i]);
    return r < 0 ? r : sealed;
}
