/*
 * Sealed columns: small secrets and personal text kept in the database only
 * encrypted (issue #11 item 10, docs/internals/security.md "Sealed fields").
 *
 * A sealed value is the text "sealed1:" followed by lower-case hex of
 *   nonce(12) || AES-256-GCM ciphertext || tag(16)
 * under the field key, with the value's context as AAD: "<table>.<column>:"
 * and the row's key, e.g. "staff.totp_secret:alice",
 * "verification_session.outcome_note:<session id>",
 * "evidence.name:<session id>/<file id>".  The AAD binds a value to its row,
 * so values cannot be swapped between rows or columns unnoticed.  The field
 * key is HMAC-SHA256(evidence master key, "madoguchi field key v1")
 * (md_evidence_field_key): it lives only in memory, and the database alone
 * reveals nothing.  The AEAD is md_crypto's (md_aead_seal/open).
 *
 * The key is attached to a store (md_store_set_field_key) by whoever opens
 * it with the master key at hand: `serve`, and CLI commands when the master
 * key file exists.  Stateless apart from that; any thread that owns the store.
 */
#ifndef MD_SEALED_H
#define MD_SEALED_H

#include "md_crypto.h"
#include "md_store.h"

#include <stdbool.h>
#include <stdint.h>

#define MD_SEALED_PREFIX "sealed1:"
#define MD_SEALED_KEY_LEN MD_AEAD_KEY_LEN
#define MD_SEALED_MAX_PLAIN 4096 /* a TOTP secret, a note, a file name */

/* True when s has the sealed form's prefix (says nothing of its validity). */
bool md_sealed_is_sealed(const char *s);

/* Seals plain (NUL-terminated, at most MD_SEALED_MAX_PLAIN bytes) for
 * context; *ret is malloc'd.  -EINVAL, -E2BIG, -MD_E_CRYPTO. */
int md_sealed_seal(const uint8_t key[MD_SEALED_KEY_LEN], const char *context, const char *plain,
                   char **ret);
/* Opens a sealed value for context; *ret is malloc'd and NUL-terminated.
 * -MD_E_EVIDENCE_CORRUPT when the value is not sealed, is malformed, or does
 * not authenticate (another key, another row, tampered). */
int md_sealed_open(const uint8_t key[MD_SEALED_KEY_LEN], const char *context, const char *stored,
                   char **ret);

/* The same with the key attached to st: -MD_E_EVIDENCE_KEY when none is. */
int md_store_seal(md_store *st, const char *context, const char *plain, char **ret);
int md_store_unseal(md_store *st, const char *context, const char *stored, char **ret);

/* Seals every plaintext value left in a sealed column (a database from
 * before sealing) in one transaction.  Returns how many it sealed. */
int md_sealed_migrate(md_store *st);

#endif
