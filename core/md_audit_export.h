/*
 * Audit exports that verify offline (docs/protocol.md, "Audit export").
 *
 * An export is one JSON Lines file.  Line 1 is {"manifest": {...}}: the
 * filter, the number of entries, the chain head at export time and the last
 * signed checkpoint (seq, hash, key id, Ed25519 signature over
 * "madoguchi-audit-checkpoint\n<seq>\n<hash>") with the public key's PEM.
 * Every further line is one entry exactly as md_audit_export() writes it
 * (the canonical fields plus prev_hash and hash).
 *
 * What verification proves: each entry's hash is recomputed from its content
 * and its prev_hash (core/md_audit.h), so a changed line fails and is named;
 * entries with consecutive seq must link; the checkpoint's signature must
 * hold under the pinned public key, and an exported entry at the
 * checkpoint's seq must carry the signed hash.  A filtered export is a
 * subset of the chain: it cannot prove that nothing between its entries was
 * removed, only that each exported entry is as hashed.  An unfiltered export
 * is the whole chain up to the checkpoint and proves it completely.
 *
 * Plain functions on the caller's thread.
 */
#ifndef MD_AUDIT_EXPORT_H
#define MD_AUDIT_EXPORT_H

#include "md_audit.h"
#include "md_crypto.h"

#include <stdio.h>

/* Writes the manifest and the matching entries to out.  audit is signed
 * first (md_audit_sign_now), so the checkpoint covers every exported entry;
 * public_key (the signing key's public half) goes into the manifest as 64
 * hex characters, the form audit.public_key pins.  Returns the number of
 * entries written. */
int md_audit_export_bundle(md_store *st, md_audit *audit, const md_audit_filter *filter,
                           const md_sign_key *public_key, const char *exported_by, FILE *out);

/* Verifies an export read from in against the trusted key (never the
 * manifest's copy).  Returns 0 when intact, -MD_E_AUDIT_BROKEN with
 * *ret_bad_seq set (0 for a manifest problem) and a line naming the entry in
 * report, or another negative code when the file cannot be read. */
int md_audit_export_verify(FILE *in, const md_sign_key *key, FILE *report, int64_t *ret_bad_seq);

#endif
