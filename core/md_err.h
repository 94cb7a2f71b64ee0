/*
 * Error codes shared by every layer of madoguchi.
 *
 * Functions return int: >= 0 on success, a negative code on failure.  A code is
 * either a negated errno value (-ENOMEM, -EIO, ...) or a negated MD_E_* value
 * from the table below.  Each MD_E_* has a stable snake_case name that is sent
 * to clients in `error` messages and written to the audit log, and an English
 * text for humans.  Names are part of the protocol (docs/protocol.md): never
 * rename one, only add.
 */
#ifndef MD_ERR_H
#define MD_ERR_H

/* X(ENUM, "stable_code", "human message") */
#define MD_ERROR_TABLE(X)                                                                          \
    /* protocol and transport */                                                                   \
    X(BAD_JSON, "bad_json", "message is not valid JSON")                                           \
    X(UNKNOWN_TYPE, "unknown_type", "unknown message type")                                        \
    X(SCHEMA, "schema_invalid", "message does not match its schema")                               \
    X(TOO_LARGE, "message_too_large", "message exceeds the size limit")                            \
    X(RATE_LIMITED, "rate_limited", "too many messages; slow down")                                \
    X(NOT_AUTHENTICATED, "not_authenticated", "log in first")                                      \
    X(FORBIDDEN, "forbidden", "your role may not do this")                                         \
    X(WRONG_LISTENER, "wrong_listener", "this message is not accepted on this listener")           \
    X(ORIGIN, "origin_refused", "cross-origin request refused")                                    \
    X(CONTENT_TYPE, "content_type_invalid", "a POST body must be sent as application/json")        \
    X(STAFF_SOCKETS, "too_many_staff_sockets", "too many open connections for this account")       \
    /* devices */                                                                                  \
    X(DEVICE_CERT_REQUIRED, "device_certificate_required",                                         \
      "a device client certificate is required")                                                   \
    X(DEVICE_CERT_INVALID, "device_certificate_invalid", "the device certificate was refused")     \
    X(DEVICE_UNKNOWN, "device_unknown", "device is not registered")                                \
    X(DEVICE_DISABLED, "device_disabled", "device is disabled")                                    \
    X(DEVICE_REVOKED, "device_revoked", "device certificate is revoked")                           \
    X(DEVICE_MISMATCH, "device_post_office_mismatch",                                              \
      "certificate post office does not match the registry")                                       \
    X(TOO_MANY_CONNECTIONS, "too_many_connections", "too many connections for this device")        \
    X(DEVICE_CERT_UNREGISTERED, "device_certificate_unregistered",                                 \
      "the certificate is not the one registered for this device")                                 \
    X(CRL_UNAVAILABLE, "crl_unavailable",                                                          \
      "the certificate revocation list is missing; devices are refused until it is in place")      \
    X(TLS_VERSION, "tls_version_too_low",                                                          \
      "the municipality's policy requires a newer TLS version")                                    \
    X(NETWORK_NOT_ALLOWED, "network_not_allowed",                                                  \
      "the device's network is not allowed by the municipality's policy")                          \
    /* staff login */                                                                              \
    X(CREDENTIALS, "credentials_invalid", "user name or password is wrong")                        \
    X(TOTP, "totp_invalid", "one-time code is wrong or was already used")                          \
    X(LOCKED, "account_locked", "too many failed logins; account locked for a while")              \
    X(SESSION_EXPIRED, "login_expired", "login session expired; log in again")                     \
    /* registry rules */                                                                           \
    X(MUNICIPALITY_CODE, "municipality_code_invalid", "municipality code or check digit is wrong") \
    X(MUNICIPALITY_UNKNOWN, "municipality_unknown", "municipality is not registered")              \
    X(POST_OFFICE_UNKNOWN, "post_office_unknown", "post office is not registered")                 \
    X(UNKNOWN_PROCEDURE, "procedure_unknown", "procedure is not known")                            \
    X(SIMPLIFIED_OFFICE, "post_office_simplified",                                                 \
      "simplified post offices cannot handle designated procedures (Q&A Q11)")                     \
    X(NOT_DESIGNATED, "procedure_not_designated",                                                  \
      "this post office is not designated for the procedure")                                      \
    X(DESIGNATION_EXPIRED, "designation_expired", "the post office's designation has ended")       \
    X(DESIGNATION_NOT_YET, "designation_not_yet_valid",                                            \
      "the post office's designation has not begun")                                               \
    X(AWAITING_UPGRADE, "procedure_awaiting_upgrade",                                              \
      "procedure is available only after the terminal upgrade (Q&A Q2)")                           \
    X(RESOLUTION_REQUIRED, "council_resolution_required",                                          \
      "designation for this procedure needs a council resolution (Act art. 3)")                    \
    X(PERIOD_INVALID, "designation_period_invalid", "designation period is invalid")               \
    X(WRONG_MUNICIPALITY, "wrong_municipality", "this belongs to another municipality")            \
    /* queue and sessions */                                                                       \
    X(REQUEST_PENDING, "request_pending", "this device already has an open request")               \
    X(SESSION_UNKNOWN, "session_unknown", "no such session")                                       \
    X(SESSION_STATE, "session_state", "the session is not in a state that allows this")            \
    X(ALREADY_ASSIGNED, "already_assigned", "another verifier already accepted this request")      \
    X(VERIFIER_BUSY, "verifier_busy", "you are already in a session")                              \
    X(SESSION_MOVED, "session_moved",                                                              \
      "the session goes on in a newer connection of this tablet or account")                       \
    X(NO_MEDIA_EVIDENCE, "media_not_seen",                                                         \
      "verified needs a live session whose video from the tablet reached the verifier")            \
    X(QUEUE_TIMEOUT, "queue_timeout", "no verifier accepted the request in time")                  \
    X(MEDIA_CAPACITY, "media_capacity",                                                            \
      "the gateway carries all the sessions it can; the request stays in the queue, try again")    \
    X(MEDIA, "media_failed", "media could not be set up")                                          \
    X(SDP_INVALID, "sdp_invalid", "the session description is malformed or too large")             \
    X(SDP_UNSUPPORTED, "sdp_unsupported",                                                          \
      "the session description asks for something not supported")                                  \
    X(BUNDLE_REQUIRED, "bundle_required", "the offer must use BUNDLE and rtcp-mux")                \
    X(CODEC_MISMATCH, "codec_mismatch", "the participants have no allowed video codec in common")  \
    X(FINGERPRINT_MISMATCH, "dtls_fingerprint_mismatch",                                           \
      "the DTLS certificate does not match the fingerprint in the offer")                          \
    X(DTLS_FAILED, "dtls_failed", "the DTLS handshake failed")                                     \
    X(ICE_FAILED, "ice_failed", "no network path to the participant (ICE failed)")                 \
    /* data channels */                                                                            \
    X(SCTP_FAILED, "sctp_failed", "the data channel transport (SCTP) failed")                      \
    X(DC_PROTOCOL, "datachannel_protocol", "data channel message is malformed or out of order")    \
    X(DC_REFUSED, "datachannel_refused", "data channel refused (label, protocol or stream id)")    \
    X(CHAT_INVALID, "chat_invalid", "chat text is empty, too long or contains control characters") \
    X(FILE_NAME, "file_name_invalid",                                                              \
      "file name is empty, too long or contains path or control characters")                       \
    X(FILE_TOO_LARGE, "file_too_large", "file exceeds the size allowed by the policy")             \
    X(FILE_TYPE, "file_type_not_allowed", "file type is not allowed (checked by its content)")     \
    X(FILE_TYPE_MISMATCH, "file_type_mismatch", "file content does not match its declared type")   \
    X(FILE_HASH, "file_hash_mismatch", "file content does not match its size or SHA-256")          \
    X(STILL_NOT_REQUESTED, "still_not_requested",                                                  \
      "a still may only be sent when the verifier asked for it")                                   \
    X(STILL_RESOLUTION, "still_resolution_mismatch",                                               \
      "the still's width and height differ from its image's")                                      \
    X(EVIDENCE_KEY, "evidence_key_unavailable", "evidence key is missing, destroyed or wrong")     \
    X(EVIDENCE_CORRUPT, "evidence_corrupt",                                                        \
      "evidence failed authentication (tampered or truncated)")                                    \
    /* recordings (core/md_recording.h, recorder/) */                                              \
    X(RECORDING_UNKNOWN, "recording_unknown", "no such recording")                                 \
    X(RECORDING_PURGED, "recording_purged", "the recording was destroyed by retention")            \
    X(RECORDER, "recorder_failed", "the recording pipeline failed")                                \
    X(RECORDING_EXPORT, "recording_export_failed", "the recording could not be exported")          \
    /* consent and policy (docs/protocol.md "Recording") */                                        \
    X(RECORDING_OFF, "recording_off", "this municipality's policy does not allow recording")       \
    X(RECORDING_REQUIRED, "recording_required",                                                    \
      "this municipality requires a recording made with consent before \"verified\"")              \
    X(CONSENT_REFUSED, "consent_refused", "the applicant did not consent to recording")            \
    /* operator side */                                                                            \
    X(CONFIG, "config_invalid", "configuration is invalid")                                        \
    X(AUDIT_BROKEN, "audit_chain_broken", "audit log failed verification")                         \
    X(AUDIT_KEY_MISSING, "audit_signing_key_missing",                                              \
      "the audit signing key is missing but signed checkpoints exist; restore it")                 \
    X(AUDIT_KEY_MISMATCH, "audit_key_mismatch",                                                    \
      "the audit signing key does not belong to the pinned public key")                            \
    X(AUDIT_CHECKPOINT, "audit_checkpoint_invalid",                                                \
      "the checkpoint is malformed or not signed by the trusted key")                              \
    X(CRYPTO, "crypto_failed", "cryptographic operation failed")                                   \
    X(STORE, "store_failed", "database operation failed")                                          \
    X(INTERNAL, "internal", "internal error")                                                      \
    /* auditor */                                                                                  \
    X(REASON_REQUIRED, "reason_required", "give a reason (1 to 500 characters) to open evidence")

enum md_error {
    MD_E__BASE = 1000, /* above every errno value */
#define MD_X_ENUM(name, code, text) MD_E_##name,
    MD_ERROR_TABLE(MD_X_ENUM)
#undef MD_X_ENUM
        MD_E__END
};

/* Human text for any negative return value (errno or MD_E_*); never NULL. */
const char *md_strerror(int err);

/* Stable protocol name ("designation_expired"); errno values map to "internal"
 * except a few with their own names ("invalid_argument", "not_found", ...). */
const char *md_err_code(int err);

/* Inverse of md_err_code() for MD_E_* names; 0 when unknown. */
int md_err_from_code(const char *code);

#endif
