/*
 * Encrypted evidence store for what arrives over the data channels: files
 * (documents, stills) and chat transcripts, kept encrypted at rest
 * (DESIGN 4 and 6).  Each session has a random 256-bit data key, stored only
 * wrapped (AES-256-GCM) by the master key; deleting the wrapped key
 * (md_evidence_session_destroy, run by retention) makes everything of that
 * session unrecoverable.  Files are chunked AEAD in the manner of the STREAM
 * construction: 64 KiB chunks, each sealed with nonce = file prefix || chunk
 * counter and AAD binding session, file id, chunk index and a final flag, so
 * reordering, truncation and swapping files are all detected.  A file is
 * written under a temporary name and renamed only by a successful commit, so
 * a refused or interrupted transfer leaves nothing.  Chat records are
 * appended one AEAD record each, with a sequence number in the AAD.  The
 * format is documented in docs/internals/datachannels.md.
 *
 * Threads: an md_evidence may be shared by threads (its key cache is
 * locked); an md_evidence_file writer belongs to one thread.  Session and
 * file ids are 1..64 of [A-Za-z0-9_-] (-EINVAL otherwise).
 */
#ifndef MD_EVIDENCE_H
#define MD_EVIDENCE_H

#include "md_crypto.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MD_EVIDENCE_CHUNK 65536
#define MD_EVIDENCE_MAX_RECORD 65536 /* one chat record */

typedef struct md_evidence md_evidence;
typedef struct md_evidence_file md_evidence_file;

/* dir is created (0700) if absent, with keys/ and sessions/ below it.  The
 * master key file holds 32 random bytes; it is created 0600 if absent and
 * refused (-MD_E_EVIDENCE_KEY) if it has another size or is readable by
 * group or others. */
int md_evidence_open(const char *dir, const char *master_key_path, md_evidence **ret);
/* Wipes cached keys.  Takes NULL, returns NULL. */
md_evidence *md_evidence_free(md_evidence *ev);

/* The key of sealed database columns (core/md_sealed.h), derived from the
 * master key: HMAC-SHA256(master, "madoguchi field key v1").  Deriving,
 * rather than storing a second key, keeps one secret to move off the host.
 * The _from_file form reads the master key file without opening the store
 * and never creates it (-ENOENT when absent). */
int md_evidence_field_key(const md_evidence *ev, uint8_t ret[MD_AEAD_KEY_LEN]);
int md_evidence_field_key_from_file(const char *master_key_path, uint8_t ret[MD_AEAD_KEY_LEN]);

/* Loads the session's data key, creating and wrapping a new one if none
 * exists: 1 created, 0 loaded, -MD_E_EVIDENCE_KEY if the wrapped key does
 * not open with this master key. */
int md_evidence_session_key(md_evidence *ev, const char *session_id);
/* Deletes the wrapped key (then the session's files): unrecoverable.
 * -ENOENT if there was no key. */
int md_evidence_session_destroy(md_evidence *ev, const char *session_id);

/* Starts a file (creating the session key if needed).  -EEXIST if the file
 * was already committed. */
int md_evidence_file_begin(md_evidence *ev, const char *session_id, const char *file_id,
                           md_evidence_file **ret);
int md_evidence_file_write(md_evidence_file *w, const void *buf, size_t len);
/* Seals the final chunk, fsyncs and renames into place; always frees w.
 * ret_sha256 (nullable) receives the SHA-256 of the plaintext. */
int md_evidence_file_commit(md_evidence_file *w, uint8_t ret_sha256[MD_SHA256_LEN]);
/* Removes the temporary file and frees w.  Takes NULL, returns NULL. */
md_evidence_file *md_evidence_file_abort(md_evidence_file *w);

/* Decrypts a committed file chunk by chunk into sink (return < 0 from sink
 * stops with that code).  Each chunk is authenticated before it is handed
 * out, but truncation is only known at the end: discard the output unless
 * this returns 0.  -ENOENT, -MD_E_EVIDENCE_KEY, -MD_E_EVIDENCE_CORRUPT. */
typedef int (*md_evidence_sink)(const uint8_t *buf, size_t len, void *ud);
int md_evidence_file_read(md_evidence *ev, const char *session_id, const char *file_id,
                          md_evidence_sink sink, void *ud);
/* The same, one chunk at a time, for a consumer that paces itself (a file
 * streamed to a slow receiver).  md_evidence_reader_next() returns 1 with
 * the next authenticated chunk (*ret_buf valid until the next call; 0..64
 * KiB), 0 once the final chunk was returned, or an error as above.  As with
 * md_evidence_file_read(), truncation is only known at the final chunk.  A
 * reader holds an open file and a copy of the session key (wiped on free);
 * it belongs to one thread. */
typedef struct md_evidence_reader md_evidence_reader;
int md_evidence_reader_open(md_evidence *ev, const char *session_id, const char *file_id,
                            md_evidence_reader **ret);
int md_evidence_reader_next(md_evidence_reader *rd, const uint8_t **ret_buf, size_t *ret_len);
/* Takes NULL, returns NULL. */
md_evidence_reader *md_evidence_reader_free(md_evidence_reader *rd);
int md_evidence_file_export(md_evidence *ev, const char *session_id, const char *file_id,
                            FILE *out);

/* Appends one chat record (e.g. the JSON chat message with sender and
 * time), fsynced.  Returns its sequence number (0, 1, ...). */
int64_t md_evidence_chat_append(md_evidence *ev, const char *session_id, const void *record,
                                size_t len);
typedef int (*md_evidence_record_sink)(uint64_t seq, const uint8_t *buf, size_t len, void *ud);
/* Every record in order; -MD_E_EVIDENCE_CORRUPT on any tampering, reordering
 * or torn record; -ENOENT when the session has no transcript. */
int md_evidence_chat_read(md_evidence *ev, const char *session_id, md_evidence_record_sink sink,
                          void *ud);

#endif
