/*
 * Schema migrations (see md_schema.h).  Tables:
 *   municipality, post_office, designation(+_procedure), procedure_enabled:
 *       the registry (signaling/md_registry.c);
 *   device, staff, web_session, login_failure: identities (signaling/);
 *   verification_session: one row per verification request and its outcome;
 *   audit, audit_checkpoint: the hash-chained audit log (core/md_audit.c);
 *   evidence: files and stills stored encrypted (signaling/md_session_chat.c).
 * staff.totp_secret, verification_session.outcome_note and evidence.name hold
 * sealed values ("sealed1:...", core/md_sealed.h), never plaintext.
 * Times are ms since the epoch (BIGINT); registry dates are "YYYY-MM-DD" in JST.
 */
#include "md_schema.h"

const char *const md_schema_migrations[] = {
    /* 1: initial schema */
    "CREATE TABLE municipality ("
    "  code TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  prefecture TEXT,"
    "  policy TEXT NOT NULL," /* JSON security policy */
    "  updated_at BIGINT NOT NULL);"
    "CREATE TABLE post_office ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('direct', 'simplified')),"
    "  municipality TEXT NOT NULL REFERENCES municipality(code),"
    "  updated_at BIGINT NOT NULL);"
    "CREATE TABLE designation ("
    "  id TEXT PRIMARY KEY," /* "<post_office>/<valid_from>" */
    "  municipality TEXT NOT NULL REFERENCES municipality(code),"
    "  post_office TEXT NOT NULL REFERENCES post_office(id),"
    "  valid_from TEXT NOT NULL,"
    "  valid_until TEXT NOT NULL,"
    "  resolution_date TEXT,"
    "  resolution_number TEXT,"
    "  consultation_date TEXT,"
    "  updated_at BIGINT NOT NULL);"
    "CREATE INDEX designation_by_office ON designation(post_office);"
    "CREATE TABLE designation_procedure ("
    "  designation TEXT NOT NULL REFERENCES designation(id) ON DELETE CASCADE,"
    "  procedure TEXT NOT NULL,"
    "  PRIMARY KEY (designation, procedure));"
    "CREATE TABLE procedure_enabled (" /* after_terminal_upgrade procedures turned on */
    "  procedure TEXT PRIMARY KEY,"
    "  enabled_at BIGINT NOT NULL,"
    "  enabled_by TEXT NOT NULL);"
    "CREATE TABLE device ("
    "  id TEXT PRIMARY KEY,"
    "  post_office TEXT NOT NULL REFERENCES post_office(id),"
    "  status TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'revoked')),"
    "  cert_serial TEXT,"
    "  created_at BIGINT NOT NULL,"
    "  updated_at BIGINT NOT NULL);"
    "CREATE TABLE staff ("
    "  username TEXT PRIMARY KEY,"
    "  role TEXT NOT NULL CHECK (role IN ('verifier', 'auditor', 'admin')),"
    "  municipality TEXT REFERENCES municipality(code),"
    "  password_hash TEXT NOT NULL,"
    "  totp_secret TEXT NOT NULL,"
    "  totp_last_step BIGINT NOT NULL DEFAULT 0,"
    "  failed_logins BIGINT NOT NULL DEFAULT 0,"
    "  locked_until BIGINT NOT NULL DEFAULT 0,"
    "  disabled BIGINT NOT NULL DEFAULT 0,"
    "  created_at BIGINT NOT NULL);"
    "CREATE TABLE web_session ("
    "  token_hash TEXT PRIMARY KEY," /* SHA-256 hex of the cookie value */
    "  username TEXT NOT NULL REFERENCES staff(username),"
    "  created_at BIGINT NOT NULL,"
    "  expires_at BIGINT NOT NULL);"
    "CREATE TABLE verification_session ("
    "  id TEXT PRIMARY KEY,"
    "  municipality TEXT NOT NULL,"
    "  post_office TEXT NOT NULL,"
    "  device TEXT NOT NULL,"
    "  procedure TEXT NOT NULL,"
    "  verifier TEXT,"
    "  state TEXT NOT NULL,"
    "  outcome TEXT,"
    "  reason TEXT,"       /* why it ended: outcome, hangup, network, ... */
    "  outcome_note TEXT," /* the verifier's free text for an abort; never audited */
    "  requested_at BIGINT NOT NULL,"
    "  assigned_at BIGINT,"
    "  live_at BIGINT,"
    "  ended_at BIGINT);"
    "CREATE INDEX session_by_municipality ON verification_session(municipality, requested_at);"
    "CREATE TABLE audit ("
    "  seq BIGINT PRIMARY KEY,"
    "  ts BIGINT NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  event TEXT NOT NULL,"
    "  municipality TEXT,"
    "  post_office TEXT,"
    "  session TEXT,"
    "  detail TEXT NOT NULL," /* canonical JSON object */
    "  prev_hash TEXT NOT NULL,"
    "  hash TEXT NOT NULL);"
    "CREATE INDEX audit_by_ts ON audit(ts);"
    "CREATE TABLE audit_checkpoint ("
    "  seq BIGINT PRIMARY KEY REFERENCES audit(seq),"
    "  ts BIGINT NOT NULL,"
    "  hash TEXT NOT NULL,"
    "  key_id TEXT NOT NULL,"
    "  signature TEXT NOT NULL);",
    /* 2: files and stills kept as encrypted evidence (core/md_evidence.h):
     * one row per committed file, written with its "file" audit entry.  The
     * file name may be personal data: kept here, never in the audit. */
    "CREATE TABLE evidence ("
    "  session_id TEXT NOT NULL REFERENCES verification_session(id),"
    "  file_id TEXT NOT NULL,"
    "  leg TEXT NOT NULL,"  /* tablet or verifier: who sent it */
    "  kind TEXT NOT NULL," /* file or still */
    "  name TEXT NOT NULL,"
    "  mime TEXT NOT NULL," /* checked by content */
    "  size BIGINT NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  width BIGINT," /* still: pixels, from its image header */
    "  height BIGINT,"
    "  created_at BIGINT NOT NULL,"
    "  PRIMARY KEY (session_id, file_id));",
    /* 3: a device is bound to the certificate `device issue` made for it
     * (docs/internals/security.md): cert_serial was kept since 1, now also
     * the SHA-256 fingerprint of the DER.  Rows from before keep NULL here
     * and are checked by serial alone until the tablet is reissued. */
    "ALTER TABLE device ADD COLUMN cert_sha256 TEXT;",
    /* 4: recordings (core/md_recording.h).  wrapped_key is the recording's
     * data key wrapped by the master key; NULL once retention destroyed it.
     * No foreign key on session_id: a recording row must be writable
     * before anything else about a failing session is. */
    "CREATE TABLE recording ("
    "  id TEXT PRIMARY KEY,"
    "  session_id TEXT NOT NULL,"
    "  file TEXT NOT NULL," /* relative to the evidence dir */
    "  wrapped_key BLOB,"
    "  codec TEXT,"
    "  state TEXT NOT NULL," /* recording, complete, cut, purged */
    "  started_at BIGINT NOT NULL,"
    "  ended_at BIGINT,"
    "  duration_ms BIGINT,"
    "  sha256 TEXT," /* of the ciphertext file */
    "  bytes BIGINT,"
    "  purged_at BIGINT);"
    "CREATE INDEX recording_by_session ON recording(session_id, started_at);",
    /* 5: retention (signaling/md_retention.c): when a session's evidence
     * (files, stills, chat transcript) was purged; NULL until then. */
    "ALTER TABLE verification_session ADD COLUMN evidence_purged_at BIGINT;",
};

const size_t md_schema_n_migrations =
    sizeof(md_schema_migrations) / sizeof(md_schema_migrations[0]);
