/*
 * The audit log (md_audit.h, docs/internals/audit.md): a hash chain over the
 * canonical JSON of each entry, with Ed25519-signed checkpoints.  Invariants:
 * seq runs 1, 2, 3... without gaps; entry n's prev_hash is entry n-1's hash;
 * an entry, and the checkpoint it triggers, commit in one transaction before
 * md_audit_append() returns.  The tail (last seq and hash, last checkpoint) is
 * cached after the first read; every failed write drops the cache, and a stale
 * cache (another handle appended) can only make an insert collide on the
 * primary key, never fork the chain.  Verification needs only the public key
 * and streams the table.  An md_audit lives on the thread that owns its store.
 */
#include "md_audit.h"
#include "md_crypto.h"
#include "md_err.h"
#include "md_log.h"
#include "md_time.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define SIG_LEN 64
#define SIG_HEX_LEN (2 * SIG_LEN)
/* Entries carry ids and hashes; anything this large is a bug, not an event. */
#define MAX_DETAIL_BYTES (64 * 1024)
#define PROGRESS_EVERY 100000
#define CANONICAL_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

#define ENTRY_COLUMNS                                                                              \
    "seq, ts, actor, event, municipality, post_office, session, detail, prev_hash, hash"
enum {
    COL_SEQ,
    COL_TS,
    COL_ACTOR,
    COL_EVENT,
    COL_MUNICIPALITY,
    COL_POST_OFFICE,
    COL_SESSION,
    COL_DETAIL,
    COL_PREV_HASH,
    COL_HASH,
    /* verify only: the checkpoint joined on seq */
    COL_CP_HASH,
    COL_CP_KEY_ID,
    COL_CP_SIGNATURE,
};

struct md_audit {
    md_store *st;
    md_sign_key *key;
    char key_id[17];
    int checkpoint_every;
    int64_t checkpoint_ms;
    int64_t opened_ms;

    /* The tail as this handle last read or wrote it; meaningful only while tail_known. */
    bool tail_known;
    int64_t last_seq; /* 0: empty log */
    char last_hash[MD_SHA256_HEX_LEN + 1];
    int64_t signed_seq;   /* last checkpoint's seq, 0 for none */
    int64_t signed_at_ms; /* its time, or opened_ms when there is none */
};

/* One entry as it is hashed.  Nullable strings may be NULL; detail is a borrowed object. */
struct entry_fields {
    int64_t seq, ts;
    const char *actor, *event, *municipality, *post_office, *session;
    json_t *detail;
};

/* The canonical object of md_audit.h; NULL when a string is not UTF-8 or a required one is NULL. */
static json_t *canonical_object(const struct entry_fields *f)
{
    return json_pack("{s:s, s:O, s:s, s:s?, s:s?, s:I, s:s?, s:I}", "actor", f->actor, "detail",
                     f->detail, "event", f->event, "municipality", f->municipality, "post_office",
                     f->post_office, "seq", (json_int_t)f->seq, "session", f->session, "ts",
                     (json_int_t)f->ts);
}

/* hash = SHA-256(prev_hash || "\n" || canonical(entry)) as lower-case hex. */
static int entry_hash(const struct entry_fields *f, const char *prev_hash,
                      char ret_hash[MD_SHA256_HEX_LEN + 1])
{
    json_t *obj = NULL;
    char *canonical = NULL, *buf = NULL;
    int r;

    obj = canonical_object(f);
    if (!obj)
        return -EINVAL;
    canonical = json_dumps(obj, CANONICAL_FLAGS);
    if (!canonical) {
        r = -ENOMEM;
        goto out;
    }
    size_t plen = strlen(prev_hash), clen = strlen(canonical);
    buf = malloc(plen + 1 + clen);
    if (!buf) {
        r = -ENOMEM;
        goto out;
    }
    memcpy(buf, prev_hash, plen);
    buf[plen] = '\n';
    memcpy(buf + plen + 1, canonical, clen);
    r = md_sha256_hex(buf, plen + 1 + clen, ret_hash);
out:
    free(buf);
    free(canonical);
    json_decref(obj);
    return r;
}

/* The signed statement "madoguchi-audit-checkpoint\n<seq>\n<hash>"; returns its length. */
static int checkpoint_message(int64_t seq, const char *hash, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "madoguchi-audit-checkpoint\n%" PRId64 "\n%s", seq, hash);
    return n < 0 || (size_t)n >= cap ? -EINVAL : n;
}

/*
 * Reads an entry row into fields.  *ret_detail gets a new reference to the
 * parsed detail, or NULL when the stored text is not a JSON value.
 */
static void row_fields(const md_row *row, struct entry_fields *f, json_t **ret_detail)
{
    const char *detail = md_row_text(row, COL_DETAIL);
    *f = (struct entry_fields){
        .seq = md_row_int(row, COL_SEQ),
        .ts = md_row_int(row, COL_TS),
        .actor = md_row_text(row, COL_ACTOR),
        .event = md_row_text(row, COL_EVENT),
        .municipality = md_row_text(row, COL_MUNICIPALITY),
        .post_office = md_row_text(row, COL_POST_OFFICE),
        .session = md_row_text(row, COL_SESSION),
    };
    *ret_detail =
        detail ? json_loads(detail, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL) : NULL;
    f->detail = *ret_detail;
}

static bool is_hash(const char *s)
{
    return s && strlen(s) == MD_SHA256_HEX_LEN;
}

/* ---- writing ---- */

struct tail {
    int64_t seq, signed_seq, signed_at_ms;
    char hash[MD_SHA256_HEX_LEN + 1];
    bool bad_hash;
};

static int on_last_entry(const md_row *row, void *userdata)
{
    struct tail *t = userdata;
    const char *hash = md_row_text(row, 1);
    t->seq = md_row_int(row, 0);
    if (is_hash(hash))
        memcpy(t->hash, hash, sizeof(t->hash));
    else
        t->bad_hash = true;
    return 1;
}

static int on_last_checkpoint(const md_row *row, void *userdata)
{
    struct tail *t = userdata;
    t->signed_seq = md_row_int(row, 0);
    t->signed_at_ms = md_row_int(row, 1);
    return 1;
}

static int load_tail(md_audit *a)
{
    struct tail t = {.signed_at_ms = a->opened_ms, .hash = ZERO_HASH};
    int r = md_store_query(a->st, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                           MD_NO_PARAMS, on_last_entry, &t);
    if (r < 0)
        return r;
    /* Chaining onto a damaged hash would bury the damage under valid-looking entries. */
    if (t.bad_hash)
        return -MD_E_AUDIT_BROKEN;
    r = md_store_query(a->st, "SELECT seq, ts FROM audit_checkpoint ORDER BY seq DESC LIMIT 1",
                       MD_NO_PARAMS, on_last_checkpoint, &t);
    if (r < 0)
        return r;
    a->last_seq = t.seq;
    memcpy(a->last_hash, t.hash, sizeof(a->last_hash));
    a->signed_seq = t.signed_seq;
    a->signed_at_ms = t.signed_at_ms;
    a->tail_known = true;
    return 0;
}

static bool checkpoint_due(const md_audit *a, int64_t seq, int64_t now)
{
    return seq > a->signed_seq && (seq - a->signed_seq >= a->checkpoint_every ||
                                   now - a->signed_at_ms >= a->checkpoint_ms);
}

static int write_checkpoint(md_audit *a, int64_t seq, const char *hash, int64_t now)
{
    char msg[160], sig_hex[SIG_HEX_LEN + 1];
    uint8_t sig[SIG_LEN];

    int n = checkpoint_message(seq, hash, msg, sizeof(msg));
    if (n < 0)
        return n;
    int r = md_sign(a->key, msg, (size_t)n, sig);
    if (r < 0)
        return r;
    md_hex_encode(sig, sizeof(sig), sig_hex);
    r = md_store_exec(a->st,
                      "INSERT INTO audit_checkpoint (seq, ts, hash, key_id, signature)"
                      " VALUES (?, ?, ?, ?, ?)",
                      MD_PARAMS(MD_P_INT(seq), MD_P_INT(now), MD_P_TEXT(hash), MD_P_TEXT(a->key_id),
                                MD_P_TEXT(sig_hex)));
    return r < 0 ? r : 0;
}

/* Signs the current tail in its own transaction. */
static int sign_tail(md_audit *a, int64_t now)
{
    int r = md_store_begin(a->st);
    if (r < 0)
        return r;
    r = write_checkpoint(a, a->last_seq, a->last_hash, now);
    if (r < 0)
        goto out;
    r = md_store_commit(a->st);
    if (r < 0)
        goto out;
    a->signed_seq = a->last_seq;
    a->signed_at_ms = now;
    return 0;
out:
    md_store_rollback(a->st);
    a->tail_known = false;
    return r;
}

static int append_once(md_audit *a, const md_audit_entry *e, json_t *detail,
                       const char *detail_text, int64_t now, int64_t *ret_seq)
{
    char hash[MD_SHA256_HEX_LEN + 1];
    int r = md_store_begin(a->st);
    if (r < 0)
        return r;
    if (!a->tail_known) {
        r = load_tail(a);
        if (r < 0)
            goto out;
    }

    int64_t seq = a->last_seq + 1;
    const struct entry_fields f = {
        .seq = seq,
        .ts = now,
        .actor = e->actor,
        .event = e->event,
        .municipality = e->municipality,
        .post_office = e->post_office,
        .session = e->session,
        .detail = detail,
    };
    r = entry_hash(&f, a->last_hash, hash);
    if (r < 0)
        goto out;
    r = md_store_exec(
        a->st, "INSERT INTO audit (" ENTRY_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        MD_PARAMS(MD_P_INT(seq), MD_P_INT(now), MD_P_TEXT(e->actor), MD_P_TEXT(e->event),
                  MD_P_TEXT(e->municipality), MD_P_TEXT(e->post_office), MD_P_TEXT(e->session),
                  MD_P_TEXT(detail_text), MD_P_TEXT(a->last_hash), MD_P_TEXT(hash)));
    if (r < 0)
        goto out;
    bool sign = checkpoint_due(a, seq, now);
    if (sign) {
        r = write_checkpoint(a, seq, hash, now);
        if (r < 0)
            goto out;
    }
    r = md_store_commit(a->st);
    if (r < 0)
        goto out;

    a->last_seq = seq;
    memcpy(a->last_hash, hash, sizeof(a->last_hash));
    if (sign) {
        a->signed_seq = seq;
        a->signed_at_ms = now;
    }
    *ret_seq = seq;
    return 0;
out:
    md_store_rollback(a->st);
    a->tail_known = false;
    return r;
}

static char *public_key_path(const char *key_path)
{
    size_t n = strlen(key_path) + sizeof(".pub");
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s.pub", key_path);
    return p;
}

/* Whether any checkpoint was ever signed: then the key must exist somewhere. */
static int has_checkpoints(md_store *st)
{
    int64_t one = 0;
    int r = md_store_query_int(st, "SELECT 1 FROM audit_checkpoint LIMIT 1", MD_NO_PARAMS, &one);
    return r < 0 ? r : r > 0;
}

/* -MD_E_AUDIT_KEY_MISMATCH unless key's public half is the pinned key. */
static int check_pinned(const md_sign_key *key, const char *pinned)
{
    uint8_t have[MD_ED25519_PUBLIC_LEN], want[MD_ED25519_PUBLIC_LEN];
    md_sign_key *pin = NULL;
    int r = md_audit_load_public_key(pinned, &pin);
    if (r < 0)
        return r;
    r = md_sign_key_raw_public(key, have);
    if (r >= 0)
        r = md_sign_key_raw_public(pin, want);
    if (r >= 0)
        r = md_memeq_const(have, want, sizeof(have)) ? 0 : -MD_E_AUDIT_KEY_MISMATCH;
    md_sign_key_free(pin);
    return r;
}

int md_audit_open_pinned(md_store *st, const char *key_path, const char *pinned_public_key,
                         int checkpoint_every, int checkpoint_seconds, md_audit **ret)
{
    md_audit *a = NULL;
    char *pub_path = NULL;
    struct stat sb;
    int r;

    if (!st || !key_path || !ret || checkpoint_every <= 0 || checkpoint_seconds <= 0)
        return -EINVAL;
    if (pinned_public_key && !*pinned_public_key)
        pinned_public_key = NULL;

    if (stat(key_path, &sb) < 0) {
        if (errno != ENOENT)
            return -errno;
        /* Never silently replace a key that signed something, or one the
         * operator pinned: a fresh key would launder a rewritten log. */
        r = pinned_public_key ? 1 : has_checkpoints(st);
        if (r < 0)
            return r;
        if (r > 0)
            return -MD_E_AUDIT_KEY_MISSING;
        pub_path = public_key_path(key_path);
        if (!pub_path)
            return -ENOMEM;
        r = md_sign_key_generate(key_path, pub_path);
        if (r < 0)
            goto out;
        md_debug("audit", "key_generated", "{s:s, s:s}", "key", key_path, "public_key", pub_path);
    }

    a = calloc(1, sizeof(*a));
    if (!a) {
        r = -ENOMEM;
        goto out;
    }
    a->st = st;
    a->checkpoint_every = checkpoint_every;
    a->checkpoint_ms = (int64_t)checkpoint_seconds * 1000;
    a->opened_ms = md_now_ms();
    r = md_sign_key_load_private(key_path, &a->key);
    if (r < 0)
        goto out;
    r = md_sign_key_id(a->key, a->key_id);
    if (r < 0)
        goto out;
    if (pinned_public_key) {
        r = check_pinned(a->key, pinned_public_key);
        if (r < 0)
            goto out;
    }

    *ret = a;
    a = NULL;
    r = 0;
out:
    if (a) {
        md_sign_key_free(a->key);
        free(a);
    }
    free(pub_path);
    return r;
}

int md_audit_open(md_store *st, const char *key_path, int checkpoint_every, int checkpoint_seconds,
                  md_audit **ret)
{
    return md_audit_open_pinned(st, key_path, NULL, checkpoint_every, checkpoint_seconds, ret);
}

md_audit *md_audit_close(md_audit *a)
{
    if (!a)
        return NULL;
    int r = a->tail_known ? 0 : load_tail(a);
    if (r >= 0 && a->last_seq > a->signed_seq)
        r = sign_tail(a, md_now_ms());
    /* Nobody to return this to; the entries stay valid and the next tick or close signs them. */
    if (r < 0)
        md_debug("audit", "final_checkpoint_failed", "{s:s}", "error", md_strerror(r));
    md_sign_key_free(a->key);
    free(a);
    return NULL;
}

int64_t md_audit_append(md_audit *a, const md_audit_entry *e)
{
    json_t *detail = NULL;
    char *detail_text = NULL;
    int64_t seq = 0, now;
    bool cached;
    int r;

    if (!a || !e || !e->actor || !*e->actor || !e->event || !*e->event)
        return -EINVAL;
    if (e->detail && !json_is_object(e->detail))
        return -EINVAL;

    detail = e->detail ? json_incref(e->detail) : json_object();
    if (!detail)
        return -ENOMEM;
    detail_text = json_dumps(detail, CANONICAL_FLAGS);
    if (!detail_text) {
        r = -ENOMEM;
        goto out;
    }
    if (strlen(detail_text) > MAX_DETAIL_BYTES) {
        r = -E2BIG;
        goto out;
    }

    now = md_now_ms();
    cached = a->tail_known;
    r = append_once(a, e, detail, detail_text, now, &seq);
    /* A cached tail is stale when another handle or process appended since: the
     * insert then collides on seq.  Once more from the stored tail. */
    if (r == -MD_E_STORE && cached)
        r = append_once(a, e, detail, detail_text, now, &seq);
out:
    free(detail_text);
    json_decref(detail);
    return r < 0 ? r : seq;
}

int64_t md_audit_append_new(md_audit *a, const char *actor, const char *event,
                            const char *municipality, const char *post_office, const char *session,
                            json_t *detail)
{
    md_audit_entry e = {
        .actor = actor,
        .event = event,
        .municipality = municipality,
        .post_office = post_office,
        .session = session,
        .detail = detail,
    };
    int64_t seq = md_audit_append(a, &e);
    json_decref(detail);
    return seq;
}

int md_audit_tick(md_audit *a)
{
    if (!a)
        return -EINVAL;
    if (!a->tail_known) {
        int r = load_tail(a);
        if (r < 0)
            return r;
    }
    int64_t now = md_now_ms();
    if (a->last_seq <= a->signed_seq || now - a->signed_at_ms < a->checkpoint_ms)
        return 0;
    int r = sign_tail(a, now);
    return r < 0 ? r : 1;
}

/* ---- verification ---- */

struct verify_state {
    const md_sign_key *key;
    char key_id[17];
    FILE *report;
    int64_t expected; /* the seq the next row must have */
    char prev_hash[MD_SHA256_HEX_LEN + 1];
    int64_t entries, checkpoints, last_cp_seq;
    char last_cp_hash[MD_SHA256_HEX_LEN + 1];
    int64_t anchor_seq; /* md_audit_verify_checkpoint: the entry whose hash to keep */
    char anchor_hash[MD_SHA256_HEX_LEN + 1];
    bool broken;
    int64_t bad_seq;
    char why[200];
};

__attribute__((format(printf, 3, 4))) static int broken(struct verify_state *vs, int64_t seq,
                                                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vs->why, sizeof(vs->why), fmt, ap);
    va_end(ap);
    vs->broken = true;
    vs->bad_seq = seq;
    return 1; /* stops the row stream */
}

static int check_checkpoint(struct verify_state *vs, const md_row *row, int64_t seq,
                            const char *hash)
{
    const char *cp_hash = md_row_text(row, COL_CP_HASH);
    const char *key_id = md_row_text(row, COL_CP_KEY_ID);
    const char *sig_hex = md_row_text(row, COL_CP_SIGNATURE);
    uint8_t sig[SIG_LEN];
    char msg[160];

    if (!cp_hash || strcmp(cp_hash, hash) != 0)
        return broken(vs, seq, "the checkpoint's hash differs from the entry's hash");
    /* The row's key id is not echoed: it is untrusted text bound for a terminal. */
    if (!key_id || strcmp(key_id, vs->key_id) != 0)
        return broken(vs, seq, "the checkpoint's key id is not that of public key %s", vs->key_id);
    if (!sig_hex || strlen(sig_hex) != SIG_HEX_LEN || md_hex_decode(sig_hex, sig, SIG_LEN) < 0)
        return broken(vs, seq, "the checkpoint's signature is malformed");
    int n = checkpoint_message(seq, hash, msg, sizeof(msg));
    if (n < 0)
        return n;
    int r = md_verify(vs->key, msg, (size_t)n, sig);
    if (r < 0)
        return r;
    if (r == 0)
        return broken(vs, seq, "the checkpoint's signature is invalid");
    vs->checkpoints++;
    vs->last_cp_seq = seq;
    memcpy(vs->last_cp_hash, hash, sizeof(vs->last_cp_hash));
    return 0;
}

static int on_verify_row(const md_row *row, void *userdata)
{
    struct verify_state *vs = userdata;
    int64_t seq = md_row_int(row, COL_SEQ);
    const char *prev_hash = md_row_text(row, COL_PREV_HASH);
    const char *hash = md_row_text(row, COL_HASH);
    char computed[MD_SHA256_HEX_LEN + 1];
    struct entry_fields f;
    json_t *detail;

    /* Rows come in seq order and seq is unique, so a jump is a removed row. */
    if (seq > vs->expected)
        return broken(vs, vs->expected,
                      "entry %" PRId64 " is missing (the next one is %" PRId64 ")", vs->expected,
                      seq);
    if (seq < vs->expected)
        return broken(vs, seq, "seq %" PRId64 " is out of range", seq);
    if (!prev_hash || strcmp(prev_hash, vs->prev_hash) != 0)
        return broken(vs, seq, "prev_hash is not the hash of entry %" PRId64 "%s", seq - 1,
                      seq == 1 ? " (zeros for the first entry)" : "");

    row_fields(row, &f, &detail);
    if (!detail)
        return broken(vs, seq, "detail is not valid JSON");
    int r = entry_hash(&f, vs->prev_hash, computed);
    json_decref(detail);
    if (r == -EINVAL)
        return broken(vs, seq, "the entry cannot be encoded (a field is missing or not UTF-8)");
    if (r < 0)
        return r;
    if (!hash || strcmp(hash, computed) != 0)
        return broken(vs, seq, "hash does not match the entry's content");

    if (!md_row_is_null(row, COL_CP_HASH)) {
        r = check_checkpoint(vs, row, seq, computed);
        if (r != 0)
            return r;
    }

    if (seq == vs->anchor_seq)
        memcpy(vs->anchor_hash, computed, sizeof(vs->anchor_hash));
    memcpy(vs->prev_hash, computed, sizeof(vs->prev_hash));
    vs->expected = seq + 1;
    vs->entries++;
    if (vs->report && vs->entries % PROGRESS_EVERY == 0)
        fprintf(vs->report, "audit: %" PRId64 " entries checked\n", vs->entries);
    return 0;
}

/* Streams the whole chain into vs (vs->report and vs->anchor_seq preset);
 * negative only when it could not run, vs->broken says the verdict. */
static int verify_chain(md_store *st, const md_sign_key *key, struct verify_state *vs)
{
    FILE *report = vs->report;
    int64_t orphan;
    int r;

    vs->expected = 1;
    memcpy(vs->prev_hash, ZERO_HASH, sizeof(vs->prev_hash));
    vs->key = key;
    r = md_sign_key_id(key, vs->key_id);
    if (r < 0)
        return r;
    if (report)
        fprintf(report, "audit: verifying with public key %s\n", vs->key_id);

    /* One statement, one snapshot: the gateway may keep appending meanwhile. */
    r = md_store_query(st,
                       "SELECT a.seq, a.ts, a.actor, a.event, a.municipality, a.post_office,"
                       " a.session, a.detail, a.prev_hash, a.hash, c.hash, c.key_id, c.signature"
                       " FROM audit a LEFT JOIN audit_checkpoint c ON c.seq = a.seq"
                       " ORDER BY a.seq",
                       MD_NO_PARAMS, on_verify_row, vs);
    if (r < 0)
        return r;
    /* A checkpoint whose entry is gone means the end of the log was cut off. */
    if (!vs->broken) {
        r = md_store_query_int(st,
                               "SELECT MIN(c.seq) FROM audit_checkpoint c WHERE NOT EXISTS"
                               " (SELECT 1 FROM audit a WHERE a.seq = c.seq)",
                               MD_NO_PARAMS, &orphan);
        if (r < 0)
            return r;
        if (r > 0)
            broken(vs, orphan, "checkpoint %" PRId64 " has no entry: entries were removed", orphan);
    }
    return 0;
}

/* Fills *ret from vs; prints the verdict; 0 or -MD_E_AUDIT_BROKEN. */
static int summarize(const struct verify_state *vs, md_audit_summary *ret)
{
    FILE *report = vs->report;
    *ret = (md_audit_summary){
        .entries = vs->entries,
        .checkpoints = vs->checkpoints,
        .last_checkpoint = vs->last_cp_seq,
        .bad_seq = vs->broken ? vs->bad_seq : 0,
    };
    memcpy(ret->last_checkpoint_hash, vs->last_cp_hash, sizeof(ret->last_checkpoint_hash));
    if (vs->broken) {
        snprintf(ret->reason, sizeof(ret->reason), "%s", vs->why);
        if (report)
            fprintf(report, "audit: BROKEN at seq %" PRId64 ": %s\n", vs->bad_seq, vs->why);
        return -MD_E_AUDIT_BROKEN;
    }
    if (report) {
        fprintf(report, "audit: OK: %" PRId64 " entries, %" PRId64 " checkpoints\n", vs->entries,
                vs->checkpoints);
        if (vs->checkpoints > 0)
            fprintf(report, "audit: last checkpoint: seq %" PRId64 " hash %s\n", vs->last_cp_seq,
                    vs->last_cp_hash);
        if (vs->entries > vs->last_cp_seq)
            fprintf(report,
                    "audit: %" PRId64 " entries after the last checkpoint are not signed yet\n",
                    vs->entries - vs->last_cp_seq);
    }
    return 0;
}

int md_audit_verify_key(md_store *st, const md_sign_key *key, FILE *report, md_audit_summary *ret)
{
    struct verify_state vs = {.report = report};
    if (!st || !key || !ret)
        return -EINVAL;
    int r = verify_chain(st, key, &vs);
    return r < 0 ? r : summarize(&vs, ret);
}

int md_audit_verify_summary(md_store *st, const char *pubkey_path, FILE *report,
                            md_audit_summary *ret)
{
    md_sign_key *key = NULL;
    if (!st || !pubkey_path || !ret)
        return -EINVAL;
    int r = md_audit_load_public_key(pubkey_path, &key);
    if (r < 0)
        return r;
    r = md_audit_verify_key(st, key, report, ret);
    md_sign_key_free(key);
    return r;
}

int md_audit_verify(md_store *st, const char *pubkey_path, FILE *report, int64_t *ret_bad_seq)
{
    md_audit_summary summary;
    int r = md_audit_verify_summary(st, pubkey_path, report, &summary);
    if (r == -MD_E_AUDIT_BROKEN && ret_bad_seq)
        *ret_bad_seq = summary.bad_seq;
    return r;
}

/* ---- trust anchors ---- */

int md_audit_load_public_key(const char *spec, md_sign_key **ret)
{
    uint8_t raw[MD_ED25519_PUBLIC_LEN];
    if (!spec || !*spec || !ret)
        return -EINVAL;
    if (strlen(spec) == 2 * MD_ED25519_PUBLIC_LEN && md_hex_decode(spec, raw, sizeof(raw)) == 0)
        return md_sign_key_from_raw_public(raw, ret);
    return md_sign_key_load_public(spec, ret);
}

int md_audit_trusted_key(const char *pinned, const char *signing_key_path, md_sign_key **ret,
                         bool *ret_pinned)
{
    if (!ret || (!pinned && !signing_key_path))
        return -EINVAL;
    bool is_pinned = pinned && *pinned;
    int r;
    if (is_pinned) {
        r = md_audit_load_public_key(pinned, ret);
    } else {
        char *pub = signing_key_path ? public_key_path(signing_key_path) : NULL;
        if (!pub)
            return signing_key_path ? -ENOMEM : -EINVAL;
        r = md_sign_key_load_public(pub, ret);
        free(pub);
    }
    if (r >= 0 && ret_pinned)
        *ret_pinned = is_pinned;
    return r;
}

#define CHECKPOINT_FORMAT "madoguchi-audit-checkpoint/1"
#define CHECKPOINT_MAX_TEXT 4096

static int on_checkpoint_row(const md_row *row, void *userdata)
{
    md_audit_checkpoint *cp = userdata;
    const char *hash = md_row_text(row, 2), *key_id = md_row_text(row, 3);
    const char *sig = md_row_text(row, 4);
    cp->seq = md_row_int(row, 0);
    cp->ts = md_row_int(row, 1);
    if (!is_hash(hash) || !key_id || strlen(key_id) != 16 || !sig || strlen(sig) != SIG_HEX_LEN ||
        md_hex_decode(sig, cp->signature, SIG_LEN) < 0)
        return -MD_E_AUDIT_BROKEN;
    memcpy(cp->hash, hash, sizeof(cp->hash));
    memcpy(cp->key_id, key_id, sizeof(cp->key_id));
    return 1;
}

int md_audit_checkpoint_latest(md_store *st, md_audit_checkpoint *ret)
{
    md_audit_checkpoint cp = {0};
    if (!st || !ret)
        return -EINVAL;
    int r = md_store_query(st,
                           "SELECT seq, ts, hash, key_id, signature FROM audit_checkpoint"
                           " ORDER BY seq DESC LIMIT 1",
                           MD_NO_PARAMS, on_checkpoint_row, &cp);
    if (r < 0)
        return r;
    if (cp.seq <= 0)
        return -ENOENT;
    *ret = cp;
    return 0;
}

char *md_audit_checkpoint_to_json(const md_audit_checkpoint *cp)
{
    char sig_hex[SIG_HEX_LEN + 1];
    if (!cp)
        return NULL;
    md_hex_encode(cp->signature, SIG_LEN, sig_hex);
    json_t *obj = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s}", "format", CHECKPOINT_FORMAT, "seq",
                            (json_int_t)cp->seq, "ts", (json_int_t)cp->ts, "hash", cp->hash,
                            "key_id", cp->key_id, "signature", sig_hex);
    char *text = obj ? json_dumps(obj, CANONICAL_FLAGS) : NULL;
    json_decref(obj);
    return text;
}

static bool is_lower_hex(const char *s, size_t len)
{
    if (!s || strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

int md_audit_checkpoint_parse(const char *text, size_t len, md_audit_checkpoint *ret)
{
    md_audit_checkpoint cp = {0};
    const char *format = NULL, *hash = NULL, *key_id = NULL, *sig = NULL;
    json_int_t seq = 0, ts = 0;
    int r = -MD_E_AUDIT_CHECKPOINT;

    if (!text || !ret)
        return -EINVAL;
    if (len > CHECKPOINT_MAX_TEXT)
        return -MD_E_AUDIT_CHECKPOINT;
    json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    if (!obj || json_unpack(obj, "{s:s, s:I, s:I, s:s, s:s, s:s !}", "format", &format, "seq", &seq,
                            "ts", &ts, "hash", &hash, "key_id", &key_id, "signature", &sig) < 0)
        goto out;
    if (strcmp(format, CHECKPOINT_FORMAT) != 0 || seq <= 0 || ts < 0 ||
        !is_lower_hex(hash, MD_SHA256_HEX_LEN) || !is_lower_hex(key_id, 16) ||
        !is_lower_hex(sig, SIG_HEX_LEN) || md_hex_decode(sig, cp.signature, SIG_LEN) < 0)
        goto out;
    cp.seq = seq;
    cp.ts = ts;
    memcpy(cp.hash, hash, sizeof(cp.hash));
    memcpy(cp.key_id, key_id, sizeof(cp.key_id));
    *ret = cp;
    r = 0;
out:
    json_decref(obj);
    return r;
}

int md_audit_checkpoint_signed_by(const md_audit_checkpoint *cp, const md_sign_key *key)
{
    char msg[160], key_id[17];
    if (!cp || !key)
        return -EINVAL;
    int r = md_sign_key_id(key, key_id);
    if (r < 0)
        return r;
    if (strcmp(key_id, cp->key_id) != 0)
        return 0;
    int n = checkpoint_message(cp->seq, cp->hash, msg, sizeof(msg));
    if (n < 0)
        return n;
    return md_verify(key, msg, (size_t)n, cp->signature);
}

int md_audit_verify_checkpoint(md_store *st, const md_sign_key *key, const md_audit_checkpoint *cp,
                               FILE *report, md_audit_summary *ret)
{
    struct verify_state vs = {.report = report};
    if (!st || !key || !cp || !ret)
        return -EINVAL;
    int r = md_audit_checkpoint_signed_by(cp, key);
    if (r < 0)
        return r;
    if (r == 0) {
        if (report)
            fprintf(report,
                    "audit: the checkpoint (seq %" PRId64 ") is not signed by the trusted"
                    " key\n",
                    cp->seq);
        return -MD_E_AUDIT_CHECKPOINT;
    }
    if (report)
        fprintf(report, "audit: anchored checkpoint: seq %" PRId64 " hash %s\n", cp->seq, cp->hash);
    vs.anchor_seq = cp->seq;
    r = verify_chain(st, key, &vs);
    if (r < 0)
        return r;
    /* The chain alone verified: now it must still pass through the anchor.
     * Every entry after it chains from it, so that is the whole proof. */
    if (!vs.broken && vs.expected <= cp->seq)
        broken(&vs, cp->seq,
               "entry %" PRId64 " of the anchored checkpoint is gone: the log ends at %" PRId64
               " (its tail was cut)",
               cp->seq, vs.expected - 1);
    else if (!vs.broken && strcmp(vs.anchor_hash, cp->hash) != 0)
        broken(&vs, cp->seq,
               "entry %" PRId64 " no longer hashes to the anchored checkpoint: the history up to"
               " it was rewritten",
               cp->seq);
    return summarize(&vs, ret);
}

/* ---- export and query ---- */

/* Runs the filtered, seq-ordered entry query; limit <= 0 means no LIMIT clause. */
static int query_filtered(md_store *st, const md_audit_filter *filter, int limit, md_row_cb cb,
                          void *userdata)
{
    static const md_audit_filter everything;
    const md_audit_filter *f = filter ? filter : &everything;
    md_param params[6];
    size_t n = 0;
    char sql[512];

    /* Placeholders follow the order of the clauses below. */
    if (f->from_ms)
        params[n++] = MD_P_INT(f->from_ms);
    if (f->until_ms)
        params[n++] = MD_P_INT(f->until_ms);
    if (f->municipality)
        params[n++] = MD_P_TEXT(f->municipality);
    if (f->post_office)
        params[n++] = MD_P_TEXT(f->post_office);
    if (f->session)
        params[n++] = MD_P_TEXT(f->session);
    if (limit > 0)
        params[n++] = MD_P_INT(limit);
    int len = snprintf(sql, sizeof(sql),
                       "SELECT " ENTRY_COLUMNS " FROM audit WHERE 1 = 1%s%s%s%s%s"
                       " ORDER BY seq%s",
                       f->from_ms ? " AND ts >= ?" : "", f->until_ms ? " AND ts < ?" : "",
                       f->municipality ? " AND municipality = ?" : "",
                       f->post_office ? " AND post_office = ?" : "",
                       f->session ? " AND session = ?" : "", limit > 0 ? " LIMIT ?" : "");
    if (len < 0 || (size_t)len >= sizeof(sql))
        return -EINVAL;
    return md_store_query(st, sql, params, n, cb, userdata);
}

/* The canonical object plus prev_hash and hash, as stored. */
static int row_to_json(const md_row *row, json_t **ret)
{
    struct entry_fields f;
    json_t *detail, *obj = NULL;
    int r = -MD_E_AUDIT_BROKEN;

    row_fields(row, &f, &detail);
    if (!detail)
        goto out;
    obj = canonical_object(&f);
    if (!obj)
        goto out;
    if (json_object_set_new(obj, "prev_hash", json_string(md_row_text(row, COL_PREV_HASH))) < 0 ||
        json_object_set_new(obj, "hash", json_string(md_row_text(row, COL_HASH))) < 0)
        goto out;
    *ret = obj;
    obj = NULL;
    r = 0;
out:
    if (r < 0)
        md_debug("audit", "entry_unreadable", "{s:I}", "seq", (json_int_t)f.seq);
    json_decref(obj);
    json_decref(detail);
    return r;
}

struct export_state {
    FILE *out;
    int written;
};

static int on_export_row(const md_row *row, void *userdata)
{
    struct export_state *es = userdata;
    json_t *obj;
    int r = row_to_json(row, &obj);
    if (r < 0)
        return r;
    char *line = json_dumps(obj, CANONICAL_FLAGS);
    json_decref(obj);
    if (!line)
        return -ENOMEM;
    r = fputs(line, es->out) < 0 || fputc('\n', es->out) == EOF ? -EIO : 0;
    free(line);
    if (r < 0)
        return r;
    es->written++;
    return 0;
}

int md_audit_export(md_store *st, const md_audit_filter *filter, FILE *out)
{
    struct export_state es = {.out = out};
    if (!st || !out)
        return -EINVAL;
    int r = query_filtered(st, filter, 0, on_export_row, &es);
    if (r < 0)
        return r;
    if (fflush(out) != 0 || ferror(out))
        return -EIO;
    return es.written;
}

static int on_query_row(const md_row *row, void *userdata)
{
    json_t *array = userdata, *obj;
    int r = row_to_json(row, &obj);
    if (r < 0)
        return r;
    return json_array_append_new(array, obj) < 0 ? -ENOMEM : 0;
}

int md_audit_query(md_store *st, const md_audit_filter *filter, int limit, json_t **ret_array)
{
    if (!st || !ret_array || limit <= 0)
        return -EINVAL;
    json_t *array = json_array();
    if (!array)
        return -ENOMEM;
    int r = query_filtered(st, filter, limit, on_query_row, array);
    if (r < 0) {
        json_decref(array);
        return r;
    }
    *ret_array = array;
    return (int)json_array_size(array);
}

int md_audit_sign_now(md_audit *a)
{
    if (!a)
        return -EINVAL;
    if (!a->tail_known) {
        int r = load_tail(a);
        if (r < 0)
            return r;
    }
    if (a->last_seq <= a->signed_seq)
        return 0;
    int r = sign_tail(a, md_now_ms());
    return r < 0 ? r : 1;
}
