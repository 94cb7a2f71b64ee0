/*
 * The audit log: an append-only, hash-chained table with signed checkpoints.
 *
 * Entry n stores hash_n = SHA-256(prev_hash || "\n" || canonical(entry_n)),
 * where prev_hash is hash_{n-1} as 64 hex characters ("0" * 64 for the first
 * entry) and canonical() is the compact JSON object
 *   {"actor","detail","event","municipality","post_office","seq","session","ts"}
 * with sorted keys, absent values as null, and detail itself canonical
 * (jansson JSON_COMPACT | JSON_SORT_KEYS, UTF-8, no escaping of non-ASCII).
 * Every `checkpoint_every` entries, or when `checkpoint_seconds` have passed
 * since the last checkpoint and entries were added, the log signs
 *   "madoguchi-audit-checkpoint\n<seq>\n<hash>"
 * with Ed25519 and stores the signature in audit_checkpoint.
 *
 * md_audit_append() commits before it returns, so an action is acknowledged
 * only after its entry is durable.  Entries hold identifiers and hashes, never
 * personal data (no names, chat text, images, passwords or codes).
 *
 * An md_audit belongs to the thread that owns its store.
 */
#ifndef MD_AUDIT_H
#define MD_AUDIT_H

#include "md_crypto.h"
#include "md_store.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

typedef struct md_audit md_audit;

typedef struct md_audit_entry {
    const char *actor;        /* "staff:alice", "device:TAB-1", "operator", "system" */
    const char *event;        /* "login", "request", "refused", ... (docs/internals/audit.md) */
    const char *municipality; /* nullable */
    const char *post_office;  /* nullable */
    const char *session;      /* nullable */
    json_t *detail;           /* nullable (stored as {}), borrowed: an object of ids and hashes */
} md_audit_entry;

/*
 * Opens the audit log on a store.  The Ed25519 private key is loaded from
 * key_path.  If the file does not exist a key pair is generated there (and
 * "<key_path>.pub"), but only for a log without checkpoints and without a
 * pinned key: otherwise -MD_E_AUDIT_KEY_MISSING, because a fresh key would
 * hide whatever happened to the old one (docs/internals/security.md).
 * pinned_public_key (nullable, see md_audit_load_public_key) must be the
 * private key's public half, else -MD_E_AUDIT_KEY_MISMATCH.
 * checkpoint_every > 0, checkpoint_seconds > 0.
 */
int md_audit_open_pinned(md_store *st, const char *key_path, const char *pinned_public_key,
                         int checkpoint_every, int checkpoint_seconds, md_audit **ret);
/* md_audit_open_pinned() without a pinned key. */
int md_audit_open(md_store *st, const char *key_path, int checkpoint_every, int checkpoint_seconds,
                  md_audit **ret);
/* Writes a final checkpoint if entries are unsigned; close it before its store. */
md_audit *md_audit_close(md_audit *a);

/* Appends and commits one entry; writes a checkpoint when one is due.
 * Returns the new entry's seq (> 0) or a negative code. */
int64_t md_audit_append(md_audit *a, const md_audit_entry *e);

/* The one builder of an entry made on the spot: md_audit_append() of the
 * entry these fields make, taking the caller's reference to detail (a
 * json_pack() result, say) and releasing it whatever happens.  municipality,
 * post_office, session and detail are nullable; a NULL detail is stored as {},
 * so a caller for whom NULL means that json_pack() failed checks it first. */
int64_t md_audit_append_new(md_audit *a, const char *actor, const char *event,
                            const char *municipality, const char *post_office, const char *session,
                            json_t *detail);

/* The time-based trigger: writes a checkpoint when entries were added since
 * the last one and checkpoint_seconds have passed since it.  Call from a
 * periodic timer.  Returns 1 when it wrote one, 0 when none was due. */
int md_audit_tick(md_audit *a);

/* Signs the tail now when entries are unsigned (before an export, so that
 * its manifest carries a checkpoint covering every exported entry).
 * Returns 1 when it wrote a checkpoint, 0 when the tail was signed. */
int md_audit_sign_now(md_audit *a);

/*
 * Recomputes the whole chain and checks every checkpoint signature with the
 * public key at pubkey_path.  Returns 0 when intact.  Otherwise returns
 * -MD_E_AUDIT_BROKEN, sets *ret_bad_seq to the first entry that fails (a
 * changed row, a gap from a removed row, an order change, a checkpoint whose
 * hash or signature does not match) and writes one line saying why to report.
 * Progress and a summary go to report too (may be NULL).
 */
int md_audit_verify(md_store *st, const char *pubkey_path, FILE *report, int64_t *ret_bad_seq);

/* The verdict as data, for callers that answer in JSON (the auditor API). */
typedef struct md_audit_summary {
    int64_t entries;               /* entries that passed */
    int64_t checkpoints;           /* valid checkpoints among them */
    int64_t last_checkpoint;       /* seq of the last valid one; 0 for none */
    char last_checkpoint_hash[65]; /* hex and NUL; "" for none */
    int64_t bad_seq;               /* 0 when intact */
    char reason[200];              /* why bad_seq failed (the report's line); "" when intact */
} md_audit_summary;

/* md_audit_verify(), filling *ret when it returns 0 or -MD_E_AUDIT_BROKEN.
 * pubkey_path may also be a raw key as 64 hex characters
 * (md_audit_load_public_key). */
int md_audit_verify_summary(md_store *st, const char *pubkey_path, FILE *report,
                            md_audit_summary *ret);
/* The same with a key already loaded. */
int md_audit_verify_key(md_store *st, const md_sign_key *key, FILE *report, md_audit_summary *ret);

/*
 * Trust anchors (issue #11 item 11, docs/internals/security.md).
 *
 * A public key is given either as 64 hex characters (the raw Ed25519 key,
 * RFC 8032 5.1.5, as pinned in the config) or as the path of a PEM file.
 */
int md_audit_load_public_key(const char *spec, md_sign_key **ret);
/* The key verification trusts: the pinned one when pinned is non-empty,
 * else "<signing_key_path>.pub" (*ret_pinned false: whoever can write the
 * data directory can replace both the log and that file). */
int md_audit_trusted_key(const char *pinned, const char *signing_key_path, md_sign_key **ret,
                         bool *ret_pinned);

/* A signed checkpoint as an operator keeps it elsewhere (JSON object:
 * "format" "madoguchi-audit-checkpoint/1", "seq", "ts", "hash", "key_id",
 * "signature" (hex)). */
typedef struct md_audit_checkpoint {
    int64_t seq;
    int64_t ts;
    char hash[MD_SHA256_HEX_LEN + 1];
    char key_id[17];
    uint8_t signature[64];
} md_audit_checkpoint;

/* The newest checkpoint in the store: 0, or -ENOENT when there is none. */
int md_audit_checkpoint_latest(md_store *st, md_audit_checkpoint *ret);
/* As JSON (one line, sorted keys); caller frees. */
char *md_audit_checkpoint_to_json(const md_audit_checkpoint *cp);
/* Parses untrusted text (a file the operator hands back); len <= 4096.
 * -MD_E_AUDIT_CHECKPOINT when malformed.  Does not check the signature. */
int md_audit_checkpoint_parse(const char *text, size_t len, md_audit_checkpoint *ret);
/* 1 when key signed cp, 0 when not, negative on error. */
int md_audit_checkpoint_signed_by(const md_audit_checkpoint *cp, const md_sign_key *key);

/*
 * Proves that the log still extends an anchored checkpoint, in the manner of
 * an RFC 9162 2.1.4 consistency proof for a hash chain: the checkpoint is
 * signed by key, the whole chain verifies (md_audit_verify_key), the entry at
 * cp->seq still exists and its recomputed hash is cp->hash, and the chain runs
 * on from it.  A cut tail (entry cp->seq gone) and a rewritten history (even
 * one re-signed with a stolen key) fail at seq cp->seq.  Returns 0,
 * -MD_E_AUDIT_BROKEN (with *ret filled as by md_audit_verify_summary) or
 * -MD_E_AUDIT_CHECKPOINT when cp is not signed by key.
 */
int md_audit_verify_checkpoint(md_store *st, const md_sign_key *key, const md_audit_checkpoint *cp,
                               FILE *report, md_audit_summary *ret);

typedef struct md_audit_filter {
    int64_t from_ms;          /* inclusive; 0 = unbounded */
    int64_t until_ms;         /* exclusive; 0 = unbounded */
    const char *municipality; /* nullable */
    const char *post_office;  /* nullable */
    const char *session;      /* nullable */
} md_audit_filter;

/* Writes matching entries as JSON Lines (one canonical object per line, plus
 * "prev_hash" and "hash" so the chain can be checked from the export).
 * Returns the number of entries written. */
int md_audit_export(md_store *st, const md_audit_filter *filter, FILE *out);

/* Same rows, as a JSON array (for the auditor API); caller owns the result.
 * At most limit (> 0, the caller's cap) entries, oldest first.  Returns the
 * number of entries in the array. */
int md_audit_query(md_store *st, const md_audit_filter *filter, int limit, json_t **ret_array);

#endif
