/*
 * Audit exports with a manifest, and their offline verification (see
 * md_audit_export.h for the format and what it proves).  The entry hash is
 * recomputed here from the exported JSON exactly as core/md_audit.h defines
 * it, so this file depends on the format, not on md_audit.c's internals.
 */
#include "md_audit_export.h"

#include "md_crypto.h"
#include "md_err.h"
#include "md_time.h"

#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT_FORMAT "madoguchi-audit-export/1"
#define MAX_LINE (1024 * 1024) /* an entry is small; a longer line is refused */

static const char *const canonical_keys[] = {"actor",       "detail", "event",   "municipality",
                                             "post_office", "seq",    "session", "ts"};

/* ---- writing ---- */

struct cp_row {
    json_t *cp;
};

static int on_checkpoint(const md_row *row, void *userdata)
{
    struct cp_row *c = userdata;
    c->cp = json_pack("{s:I, s:I, s:s?, s:s?, s:s?}", "seq", (json_int_t)md_row_int(row, 0), "ts",
                      (json_int_t)md_row_int(row, 1), "hash", md_row_text(row, 2), "key_id",
                      md_row_text(row, 3), "signature", md_row_text(row, 4));
    return c->cp ? 0 : -ENOMEM;
}

static int on_head(const md_row *row, void *userdata)
{
    json_t **head = userdata;
    *head = json_pack("{s:I, s:s?}", "seq", (json_int_t)md_row_int(row, 0), "hash",
                      md_row_text(row, 1));
    return *head ? 0 : -ENOMEM;
}

static json_t *filter_json(const md_audit_filter *f)
{
    json_t *j = json_object();
    char buf[32];
    if (f && f->from_ms) {
        md_time_format_iso(f->from_ms, buf, sizeof(buf));
        json_object_set_new(j, "from", json_string(buf));
    }
    if (f && f->until_ms) {
        md_time_format_iso(f->until_ms, buf, sizeof(buf));
        json_object_set_new(j, "until", json_string(buf));
    }
    if (f && f->municipality)
        json_object_set_new(j, "municipality", json_string(f->municipality));
    if (f && f->post_office)
        json_object_set_new(j, "post_office", json_string(f->post_office));
    if (f && f->session)
        json_object_set_new(j, "session", json_string(f->session));
    return j;
}

int md_audit_export_bundle(md_store *st, md_audit *audit, const md_audit_filter *filter,
                           const md_sign_key *public_key, const char *exported_by, FILE *out)
{
    json_t *manifest = NULL, *head = NULL;
    struct cp_row cp = {0};
    char *line = NULL, *body = NULL;
    uint8_t raw[MD_ED25519_PUBLIC_LEN];
    char raw_hex[2 * MD_ED25519_PUBLIC_LEN + 1];
    size_t body_len = 0;
    FILE *mem = NULL;
    char now[32];
    int r;

    if (!st || !audit || !public_key || !out)
        return -EINVAL;
    r = md_audit_sign_now(audit);
    if (r < 0)
        goto out;
    r = md_store_query(st, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", MD_NO_PARAMS,
                       on_head, &head);
    if (r < 0)
        goto out;
    r = md_store_query(st,
                       "SELECT seq, ts, hash, key_id, signature FROM audit_checkpoint"
                       " ORDER BY seq DESC LIMIT 1",
                       MD_NO_PARAMS, on_checkpoint, &cp);
    if (r < 0)
        goto out;
    r = md_sign_key_raw_public(public_key, raw);
    if (r < 0)
        goto out;
    md_hex_encode(raw, sizeof(raw), raw_hex);
    if (cp.cp)
        json_object_set_new(cp.cp, "public_key", json_string(raw_hex));
    /* Entries first into memory: the manifest states their count. */
    mem = open_memstream(&body, &body_len);
    if (!mem) {
        r = -ENOMEM;
        goto out;
    }
    int n = md_audit_export(st, filter, mem);
    if (fclose(mem) != 0 && n >= 0)
        n = -EIO;
    mem = NULL;
    if (n < 0) {
        r = n;
        goto out;
    }
    md_time_format_iso(md_now_ms(), now, sizeof(now));
    manifest = json_pack("{s:{s:s, s:s, s:s?, s:o, s:i, s:o, s:o}}", "manifest", "format",
                         EXPORT_FORMAT, "exported_at", now, "exported_by", exported_by, "filter",
                         filter_json(filter), "entries", n, "head", head ? head : json_null(),
                         "checkpoint", cp.cp ? cp.cp : json_null());
    head = NULL;
    cp.cp = NULL;
    line = manifest ? json_dumps(manifest, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (!line) {
        r = -ENOMEM;
        goto out;
    }
    if (fputs(line, out) < 0 || fputc('\n', out) < 0 ||
        (body_len && fwrite(body, 1, body_len, out) != body_len) || fflush(out) != 0) {
        r = -EIO;
        goto out;
    }
    r = n;
out:
    free(line);
    free(body);
    json_decref(manifest);
    json_decref(head);
    json_decref(cp.cp);
    return r;
}

/* ---- verifying ---- */

struct verifier {
    FILE *report;
    int64_t bad_seq;
    bool broken;
};

__attribute__((format(printf, 3, 4))) static int fail(struct verifier *v, int64_t seq,
                                                      const char *fmt, ...)
{
    va_list ap;
    v->broken = true;
    v->bad_seq = seq;
    if (v->report) {
        if (seq > 0)
            fprintf(v->report, "export BROKEN at seq %" PRId64 ": ", seq);
        else
            fprintf(v->report, "export BROKEN: ");
        va_start(ap, fmt);
        vfprintf(v->report, fmt, ap);
        va_end(ap);
        fputc('\n', v->report);
    }
    return -MD_E_AUDIT_BROKEN;
}

/* hash_n = SHA-256(prev_hash "\n" canonical(entry_n)) (core/md_audit.h). */
static int entry_hash(json_t *entry, const char *prev_hash, char out[MD_SHA256_HEX_LEN + 1])
{
    json_t *canon = json_object();
    char *text = NULL;
    GString *buf = NULL;
    int r = -EINVAL;

    if (!canon)
        return -ENOMEM;
    for (size_t i = 0; i < G_N_ELEMENTS(canonical_keys); i++) {
        json_t *v = json_object_get(entry, canonical_keys[i]);
        if (json_object_set(canon, canonical_keys[i], v ? v : json_null()) < 0)
            goto out;
    }
    text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        goto out;
    buf = g_string_new(prev_hash);
    g_string_append_c(buf, '\n');
    g_string_append(buf, text);
    r = md_sha256_hex(buf->str, buf->len, out);
out:
    if (buf)
        g_string_free(buf, TRUE);
    free(text);
    json_decref(canon);
    return r;
}

static int check_signature(struct verifier *v, json_t *cp, const md_sign_key *key)
{
    char key_id[17], msg[160];
    uint8_t sig[64];
    int r;

    const char *hash = json_string_value(json_object_get(cp, "hash"));
    const char *sig_hex = json_string_value(json_object_get(cp, "signature"));
    const char *cp_key = json_string_value(json_object_get(cp, "key_id"));
    json_int_t seq = json_integer_value(json_object_get(cp, "seq"));
    if (!hash || strlen(hash) != MD_SHA256_HEX_LEN || !sig_hex || strlen(sig_hex) != 128 ||
        md_hex_decode(sig_hex, sig, sizeof(sig)) < 0 || seq <= 0)
        return fail(v, 0, "the manifest's checkpoint is malformed");
    r = md_sign_key_id(key, key_id);
    if (r < 0)
        return r;
    if (!cp_key || strcmp(cp_key, key_id) != 0)
        return fail(v, 0, "the checkpoint was not signed by public key %s", key_id);
    int n = snprintf(msg, sizeof(msg), "madoguchi-audit-checkpoint\n%" PRId64 "\n%s", (int64_t)seq,
                     hash);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return -EINVAL;
    r = md_verify(key, msg, (size_t)n, sig);
    if (r == 0)
        return fail(v, (int64_t)seq, "the checkpoint's signature is invalid");
    return r < 0 ? r : 0;
}

static int check_entry(struct verifier *v, json_t *e, size_t line_no, int64_t *prev_seq,
                       char prev_hash[MD_SHA256_HEX_LEN + 1], json_t *cp)
{
    char computed[MD_SHA256_HEX_LEN + 1];
    json_t *jseq = json_object_get(e, "seq");
    const char *ph = json_string_value(json_object_get(e, "prev_hash"));
    const char *h = json_string_value(json_object_get(e, "hash"));
    if (!json_is_integer(jseq) || json_integer_value(jseq) <= 0)
        return fail(v, 0, "line %zu has no valid seq", line_no);
    int64_t seq = (int64_t)json_integer_value(jseq);
    if (!ph || !h || strlen(ph) != MD_SHA256_HEX_LEN || strlen(h) != MD_SHA256_HEX_LEN)
        return fail(v, seq, "prev_hash or hash is missing");
    if (seq <= *prev_seq)
        return fail(v, seq, "entries are out of order (after seq %" PRId64 ")", *prev_seq);
    if (seq == 1 && strspn(ph, "0") != MD_SHA256_HEX_LEN)
        return fail(v, seq, "the first entry's prev_hash is not zeros");
    if (*prev_seq > 0 && seq == *prev_seq + 1 && strcmp(ph, prev_hash) != 0)
        return fail(v, seq, "prev_hash is not the hash of entry %" PRId64, *prev_seq);
    int r = entry_hash(e, ph, computed);
    if (r < 0)
        return r == -EINVAL ? fail(v, seq, "the entry cannot be encoded") : r;
    if (strcmp(computed, h) != 0)
        return fail(v, seq, "hash does not match the entry's content");
    if (cp && json_integer_value(json_object_get(cp, "seq")) == seq &&
        g_strcmp0(json_string_value(json_object_get(cp, "hash")), h) != 0)
        return fail(v, seq, "the entry's hash differs from the signed checkpoint's");
    *prev_seq = seq;
    memcpy(prev_hash, h, MD_SHA256_HEX_LEN + 1);
    return 0;
}

int md_audit_export_verify(FILE *in, const md_sign_key *key, FILE *report, int64_t *ret_bad_seq)
{
    struct verifier v = {.report = report};
    json_t *manifest_doc = NULL, *e = NULL;
    char *line = NULL;
    size_t cap = 0, line_no = 0;
    int64_t prev_seq = 0, first_seq = 0, count = 0;
    char prev_hash[MD_SHA256_HEX_LEN + 1] = "";
    ssize_t len;
    int r;

    if (!in || !key)
        return -EINVAL;
    len = getline(&line, &cap, in);
    line_no = 1;
    json_error_t jerr;
    manifest_doc = len > 0 ? json_loadb(line, (size_t)len, 0, &jerr) : NULL;
    json_t *m = json_object_get(manifest_doc, "manifest");
    if (!json_is_object(m) ||
        g_strcmp0(json_string_value(json_object_get(m, "format")), EXPORT_FORMAT) != 0) {
        r = fail(&v, 0, "line 1 is not a " EXPORT_FORMAT " manifest");
        goto out;
    }
    json_t *cp = json_object_get(m, "checkpoint");
    if (!json_is_object(cp)) {
        r = fail(&v, 0, "the manifest has no signed checkpoint");
        goto out;
    }
    r = check_signature(&v, cp, key);
    if (r < 0)
        goto out;
    int64_t cp_seq = (int64_t)json_integer_value(json_object_get(cp, "seq"));
    while ((len = getline(&line, &cap, in)) >= 0) {
        line_no++;
        if (len > MAX_LINE) {
            r = fail(&v, 0, "line %zu is too long", line_no);
            goto out;
        }
        if (len <= 1 && (len == 0 || line[0] == '\n'))
            continue;
        e = json_loadb(line, (size_t)len, 0, &jerr);
        if (!json_is_object(e)) {
            r = fail(&v, 0, "line %zu is not a JSON object", line_no);
            goto out;
        }
        r = check_entry(&v, e, line_no, &prev_seq, prev_hash, cp);
        if (r < 0)
            goto out;
        if (prev_seq > cp_seq) {
            r = fail(&v, prev_seq, "the entry is after the signed checkpoint (seq %" PRId64 ")",
                     cp_seq);
            goto out;
        }
        if (!first_seq)
            first_seq = prev_seq;
        count++;
        json_decref(e);
        e = NULL;
    }
    if (ferror(in)) {
        r = -EIO;
        goto out;
    }
    if (json_integer_value(json_object_get(m, "entries")) != count) {
        r = fail(&v, 0,
                 "the manifest states %" JSON_INTEGER_FORMAT " entries, the file has %" PRId64,
                 json_integer_value(json_object_get(m, "entries")), count);
        goto out;
    }
    if (report) {
        bool whole = first_seq == 1 && prev_seq == cp_seq && count == cp_seq;
        fprintf(report,
                "export intact: %" PRId64 " entries, checkpoint seq %" PRId64
                " signed by the trusted key%s\n",
                count, cp_seq,
                whole ? "; the whole chain up to it"
                      : "; a subset of the chain (each entry as hashed)");
    }
    r = 0;
out:
    if (v.broken && ret_bad_seq)
        *ret_bad_seq = v.bad_seq;
    free(line);
    json_decref(e);
    json_decref(manifest_doc);
    return r;
}
