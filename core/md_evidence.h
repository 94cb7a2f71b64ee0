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

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
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
/* The directory given to md_evidence_open(). */
const char *md_evidence_dir(const md_evidence *ev);
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
/* True if the session has a wrapped key or files (also half-destroyed ones:
 * retention finishes those). */
bool md_evidence_session_exists(md_evidence *ev, const char *session_id);

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

/* After an unclean stop (kill -9, power loss): removes every temporary file
 * (a transfer that was never committed, a half-written key file) under
 * sessions/ and keys/.  Run at start-up, before any transfer begins;
 * committed files, transcripts and recordings are not touched.
 * *ret_removed receives how many were removed. */
int md_evidence_sweep_partial(md_evidence *ev, unsigned *ret_removed);

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

/*
 * Recordings (DESIGN 6, docs/internals/recorder.md).  Unlike a file, a
 * recording is written in place, append-only, while the call runs, so that
 * a crash leaves everything sealed so far readable.  Each recording has its
 * own random 256-bit data key; it is returned wrapped by the master key
 * (MD_EVIDENCE_WRAPPED_KEY_LEN bytes, AAD binding the recording id) for the
 * caller to keep (the recording table's wrapped_key column): nothing on disk
 * next to the ciphertext can open it, and destroying the wrapped copy makes
 * the recording unrecoverable.  The file, recordings/<id>.rec under the
 * evidence dir, is
 *
 *   "MDEVREC1" | prefix(8) | chunk*
 *   chunk = u32 plaintext length | AES-256-GCM(ct | tag(16))
 *   nonce = prefix | u32 index, AAD = "MDEVREC1" | prefix | id | 0 | u64 index | final(1)
 *
 * Chunks have any length up to MD_EVIDENCE_CHUNK; each is written and
 * fsynced on its own.  The last chunk of a finished recording has final = 1
 * (possibly empty).  A file whose last complete chunk is not final, or that
 * ends inside a chunk, was cut (crash, power loss): readers report this as
 * truncation, distinct from tampering (a chunk that fails authentication,
 * which is -MD_E_EVIDENCE_CORRUPT).  Recording ids follow the file-id rule.
 */
#define MD_EVIDENCE_WRAPPED_KEY_LEN 68 /* "MDEVRKY1" | nonce | wrapped key | tag */

typedef struct md_evidence_rec md_evidence_rec;

/* Creates recordings/<recording_id>.rec (-EEXIST if present) and a new data
 * key, returned wrapped in ret_wrapped_key.  The writer belongs to one thread
 * at a time; it may be handed to another (md_media_record_start does). */
int md_evidence_rec_begin(md_evidence *ev, const char *recording_id,
                          uint8_t ret_wrapped_key[MD_EVIDENCE_WRAPPED_KEY_LEN],
                          md_evidence_rec **ret);
/* Buffers len bytes; a full chunk (MD_EVIDENCE_CHUNK) is sealed, written and
 * fsynced at once.  After a write error every later call fails with it. */
int md_evidence_rec_write(md_evidence_rec *w, const void *buf, size_t len);
/* Seals what is buffered (if anything) as a non-final chunk and fsyncs: the
 * recorder calls this about once a second so a crash loses at most that. */
int md_evidence_rec_flush(md_evidence_rec *w);
/* Plaintext and ciphertext bytes written so far (sealed chunks only). */
uint64_t md_evidence_rec_size(const md_evidence_rec *w);
/* Seals the buffer as the final chunk, fsyncs and closes; always frees w.
 * ret_sha256_hex (nullable, 65 bytes) receives the lower-case hex SHA-256
 * of the whole ciphertext file, ret_bytes (nullable) its size. */
int md_evidence_rec_finish(md_evidence_rec *w, char *ret_sha256_hex, uint64_t *ret_bytes);
/* Seals what is buffered as a non-final chunk and closes without a final
 * chunk: the recording reads as cut (a pipeline that failed).  Always frees
 * w; ret_sha256_hex / ret_bytes (nullable) as for finish, of what was
 * written. */
int md_evidence_rec_cut(md_evidence_rec *w, char *ret_sha256_hex, uint64_t *ret_bytes);
/* Closes without a final chunk, as a crash would (the recording reads as
 * cut up to what was flushed).  Takes NULL, returns NULL. */
md_evidence_rec *md_evidence_rec_abandon(md_evidence_rec *w);
/* Deletes the ciphertext file (retention; the caller destroys the wrapped
 * key first).  0, or -ENOENT if there was none. */
int md_evidence_rec_remove(md_evidence *ev, const char *recording_id);
/* Lower-case hex SHA-256 (65 bytes) and size of the ciphertext file as it is
 * on disk (for a cut recording, found after a restart).  -ENOENT. */
int md_evidence_rec_file_hash(md_evidence *ev, const char *recording_id, char *ret_sha256_hex,
                              uint64_t *ret_bytes);

/* Random access to a recording's plaintext.  Opening unwraps the key and
 * walks the chunk headers (no decryption) to learn the plaintext size and
 * whether the file ends with a final chunk.  A reader belongs to one thread.
 * open: -ENOENT (no file), -MD_E_EVIDENCE_KEY (wrapped key does not open:
 * wrong master key, or a key for another recording), -MD_E_EVIDENCE_CORRUPT
 * (bad header or a chunk length over the maximum). */
typedef struct md_evidence_rec_reader md_evidence_rec_reader;
int md_evidence_rec_reader_open(md_evidence *ev, const char *recording_id,
                                const uint8_t *wrapped_key, size_t wrapped_len,
                                md_evidence_rec_reader **ret);
/* Plaintext bytes readable: the complete chunks. */
uint64_t md_evidence_rec_reader_size(const md_evidence_rec_reader *rd);
/* True when the file has no final chunk (a cut recording); the bytes up to
 * md_evidence_rec_reader_size() still read normally. */
bool md_evidence_rec_reader_truncated(const md_evidence_rec_reader *rd);
/* Reads up to len bytes at plaintext offset; returns the count (0 at or past
 * the end).  Every chunk is authenticated before any of it is returned:
 * -MD_E_EVIDENCE_CORRUPT when one does not (tampering, never truncation). */
ssize_t md_evidence_rec_reader_read(md_evidence_rec_reader *rd, uint64_t offset, void *buf,
                                    size_t len);
/* Wipes the key.  Takes NULL, returns NULL. */
md_evidence_rec_reader *md_evidence_rec_reader_free(md_evidence_rec_reader *rd);

#endif
