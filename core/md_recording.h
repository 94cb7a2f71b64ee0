/*
 * The recording table (schema migration 3) and the steps of a recording's
 * life that touch both the store and the evidence files (DESIGN 6,
 * docs/internals/recorder.md):
 *
 *   md_recording_begin()   control thread, before md_media_record_start():
 *                          new id, new data key (kept only wrapped, in the
 *                          row), the file created, row in state "recording"
 *   md_recording_end()     on the MD_MEDIA_RECORDING event that ends it:
 *                          state "complete" or "cut", duration, SHA-256 of
 *                          the ciphertext file
 *   md_recording_recover() on start of `serve`: rows still "recording" were
 *                          interrupted (crash); each becomes "cut" (or
 *                          "complete" if its file did get its final chunk)
 *   md_recording_purge()   retention: wrapped key destroyed, ciphertext
 *                          deleted, state "purged"; idempotent
 *
 * States: recording -> complete | cut -> purged.  A cut recording still
 * reads and exports up to the cut.  The audit entries (record_start,
 * recording_stored, ...) are the caller's: these functions write rows only.
 * Store and evidence belong to the calling thread (md_store.h).
 */
#ifndef MD_RECORDING_H
#define MD_RECORDING_H

#include "md_evidence.h"
#include "md_store.h"

#include <stdbool.h>
#include <stdint.h>

#define MD_RECORDING_ID_MAX 64

typedef enum md_recording_state {
    MD_RECORDING_RECORDING = 0,
    MD_RECORDING_COMPLETE,
    MD_RECORDING_CUT,
    MD_RECORDING_PURGED,
} md_recording_state;

const char *md_recording_state_name(md_recording_state s); /* "recording", "complete", ... */

/* One row; strings owned by the struct (md_recording_clear). */
typedef struct md_recording {
    char *id;         /* "rec-" + 22 base64url characters */
    char *session_id; /* the verification session */
    char *file;       /* relative to the evidence dir: "recordings/<id>.rec" */
    char *codec;      /* "VP8", "H264"; NULL until the recorder reported it */
    md_recording_state state;
    int64_t started_at;  /* ms since the epoch */
    int64_t ended_at;    /* 0 while recording */
    int64_t duration_ms; /* media time written; 0 while recording */
    char *sha256;        /* hex of the ciphertext file; NULL while recording and once purged */
    uint64_t bytes;      /* ciphertext size */
    bool has_key;        /* false once purged */
} md_recording;

void md_recording_clear(md_recording *r);

/* Creates the id, the encrypted file and the row ("recording").  The writer
 * goes to md_media_record_start() (or md_evidence_rec_abandon() if that
 * fails, then md_recording_end(.., CUT ..)).  ret_id is malloc'd.
 * -EINVAL (session id), store or evidence errors. */
int md_recording_begin(md_store *st, md_evidence *ev, const char *session_id, int64_t now_ms,
                       char **ret_id, md_evidence_rec **ret_writer);

/* Records the codec as soon as it is known (MD_MEDIA_RECORDING "recording"). */
int md_recording_set_codec(md_store *st, const char *id, const char *codec);

/* Final state (COMPLETE or CUT) with what the recorder reported.
 * -MD_E_RECORDING_UNKNOWN. */
int md_recording_end(md_store *st, const char *id, md_recording_state state, int64_t ended_ms,
                     int64_t duration_ms, const char *sha256_hex, uint64_t bytes);

/* Rows left "recording" by a crash: CUT (COMPLETE if the file has its
 * final chunk), with duration from the file's last write, SHA-256 and size
 * of the file as found.  Returns how many rows changed.  Called by `serve`
 * before it accepts sessions (nothing is recording then). */
int md_recording_recover(md_store *st, md_evidence *ev, int64_t now_ms);

/* 1 and *ret filled, 0 if there is no such row. */
int md_recording_get(md_store *st, const char *id, md_recording *ret);

/* Every recording (session_id NULL) or a session's, oldest first.  cb as for
 * md_store_query (0 go on, 1 stop, < 0 error); r valid during the call. */
typedef int (*md_recording_cb)(const md_recording *r, void *userdata);
int md_recording_list(md_store *st, const char *session_id, md_recording_cb cb, void *userdata);

/* Opens the plaintext for reading (export, HTTP playback with ranges).
 * -MD_E_RECORDING_UNKNOWN, -MD_E_RECORDING_PURGED, evidence errors.
 * md_evidence_rec_reader_truncated() tells a cut file. */
int md_recording_open(md_store *st, md_evidence *ev, const char *id, md_evidence_rec_reader **ret);

/* Destroys the wrapped key (row updated first, in its own transaction),
 * then deletes the ciphertext: state PURGED.  1 purged now, 0 already
 * purged (nothing changed), -MD_E_RECORDING_UNKNOWN.  A "recording" row is
 * refused (-MD_E_SESSION_STATE). */
int md_recording_purge(md_store *st, md_evidence *ev, const char *id, int64_t now_ms);

#endif
