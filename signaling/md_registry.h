/*
 * The registry: municipalities, post offices, designations, the procedure
 * list, and the legal rules that decide whether a post office may run a
 * verification session (DESIGN.md section 2, data/procedures.json).
 *
 * Rules enforced here (each refusal is a distinct MD_E_* code):
 *   - municipality codes are 6 digits whose last is the check digit
 *     (weights 6,5,4,3,2; check = (11 - sum mod 11) mod 10);
 *   - simplified (kan'i) post offices can never be designated for a
 *     direct_only procedure (Q&A Q11); a contract procedure
 *     (application_support) is allowed (Q&A Q4);
 *   - a "council" procedure needs the council resolution (date and number)
 *     and the Japan Post consultation date (Act art. 3(2),(3); Q&A Q3);
 *   - a designation covers [valid_from, valid_until], both inclusive, as
 *     calendar days in Japan;
 *   - an "after_terminal_upgrade" procedure may be designated, but sessions
 *     are refused until the operator enables it (Q&A Q2);
 *   - a device serves every procedure its post office is designated for
 *     (Q&A Q8).
 *
 * Functions take the store of the calling thread (control thread or CLI).
 * Changes are audited by the caller-supplied md_audit.
 */
#ifndef MD_REGISTRY_H
#define MD_REGISTRY_H

#include "md_audit.h"
#include "md_quality_policy.h"
#include "md_store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* ---- procedures (data/procedures.json) ---- */

enum md_designation_kind { MD_DESIGNATION_COUNCIL, MD_DESIGNATION_CONTRACT };
enum md_availability { MD_AVAILABLE_NOW, MD_AVAILABLE_AFTER_UPGRADE };

typedef struct md_procedure {
    char *id; /* "mynumber.new" */
    char *ja;
    char *en;
    char *law;
    enum md_designation_kind designation;
    bool direct_only;
    enum md_availability available;
} md_procedure;

typedef struct md_procedures md_procedures;

int md_procedures_load(const char *path, md_procedures **ret);
md_procedures *md_procedures_free(md_procedures *p);
const md_procedure *md_procedures_find(const md_procedures *p, const char *id);
size_t md_procedures_count(const md_procedures *p);
const md_procedure *md_procedures_at(const md_procedures *p, size_t i);

/* ---- pure rules (unit-tested without a store) ---- */

/* 0 when code is 6 digits with a correct check digit, else -MD_E_MUNICIPALITY_CODE. */
int md_municipality_code_check(const char *code);

/* ---- security policy of a municipality ---- */

enum md_recording_policy { MD_RECORDING_OFF, MD_RECORDING_OPTIONAL, MD_RECORDING_REQUIRED };
enum md_assignment_mode { MD_ASSIGN_PICK, MD_ASSIGN_RANDOM };

typedef struct md_policy {
    enum md_recording_policy recording;
    int retention_days;
    int max_file_mb;
    int chat_max_bytes;       /* longest chat text, bytes of UTF-8; default 2000 */
    char **file_types;        /* NULL-terminated MIME types */
    bool require_device_cert; /* default true */
    bool require_srtp_gcm;    /* DTLS-SRTP only with AEAD_AES_128_GCM; default false */
    char *min_tls;            /* "1.2" or "1.3"; default "1.3" */
    char **allowed_networks;  /* NULL-terminated CIDRs; NULL = any */
    enum md_assignment_mode assignment;
    md_quality_thresholds quality; /* warnings to the verifier; all 0 = none */
} md_policy;

/* Parses and validates a security_policy object; unknown keys are refused.
 * On failure *ret_error names the offending key (malloc'd). */
int md_policy_parse(json_t *obj, md_policy *ret, char **ret_error);
void md_policy_clear(md_policy *p);

/* ---- import and listing ---- */

/*
 * Imports a registry document (data/sample-registry.json format).  Entries are
 * validated one by one; each valid entry is upserted and audited
 * ("registry_change"), each invalid one is refused and reported to `report`
 * as "refused <kind> <id>: <code>: <text>" (and audited as
 * "registry_refused").  Returns the number of refused entries (0 = all
 * imported) or a negative code when the document itself is unusable.
 */
int md_registry_import(md_store *st, md_audit *audit, const md_procedures *procs, json_t *doc,
                       const char *actor, int64_t now_ms, FILE *report);

/* Human-readable listing of the registry (for `registry list`). */
int md_registry_print(md_store *st, const md_procedures *procs, FILE *out);

/*
 * The public list of designations (Act art. 3(4)): per municipality, each
 * designated post office with its procedures (id and Japanese name) and
 * period, and whether it is in force on `today` (JST days).  No staff,
 * device or session data.  municipality may be NULL for all.
 */
int md_registry_designations_json(md_store *st, const md_procedures *procs,
                                  const char *municipality, int32_t today, json_t **ret);

/* The same as a self-contained HTML page (Japanese, escaped). */
int md_registry_designations_html(md_store *st, const md_procedures *procs, int32_t today,
                                  char **ret_html);

/* Operator switch for after_terminal_upgrade procedures (Q&A Q2). */
int md_registry_enable_procedure(md_store *st, md_audit *audit, const md_procedures *procs,
                                 const char *procedure, const char *actor, int64_t now_ms);

/* ---- the session admission check ---- */

typedef struct md_request_scope {
    char *device_id;
    char *post_office;
    char *municipality;
    md_policy policy;
} md_request_scope;

void md_request_scope_clear(md_request_scope *s);

/*
 * Decides whether device may open a verification session for procedure now.
 * Checks, in order: procedure known; device registered and active; post
 * office and municipality known; simplified office vs direct_only; a
 * designation covering the procedure (NOT_DESIGNATED), in its period
 * (DESIGNATION_NOT_YET / DESIGNATION_EXPIRED); availability (AWAITING_UPGRADE).
 * On success fills *ret (untouched on failure).
 */
int md_registry_check_request(md_store *st, const md_procedures *procs, const char *device_id,
                              const char *procedure, int64_t now_ms, md_request_scope *ret);

/* Loads a municipality's policy (for staff-side checks). */
int md_registry_policy(md_store *st, const char *municipality, md_policy *ret);

/* ---- devices ---- */

enum md_device_status { MD_DEVICE_ACTIVE, MD_DEVICE_DISABLED, MD_DEVICE_REVOKED };

typedef struct md_device {
    char *id;
    char *post_office;
    char *municipality;
    enum md_device_status status;
    char *cert_serial; /* upper-case hex, nullable */
    char *cert_sha256; /* lower-case hex of the DER's SHA-256, nullable (before migration 3) */
} md_device;

void md_device_clear(md_device *d);

/* Registers a device for a post office (which must exist and be direct or
 * simplified: any office may hold a tablet).  -EEXIST if the id or the serial
 * is taken.  cert_serial and cert_sha256 (both nullable) bind the device to
 * the certificate issued for it. */
int md_device_register(md_store *st, md_audit *audit, const char *device_id,
                       const char *post_office, const char *cert_serial, const char *cert_sha256,
                       const char *actor, int64_t now_ms);
int md_device_lookup(md_store *st, const char *device_id, md_device *ret);
int md_device_set_status(md_store *st, md_audit *audit, const char *device_id,
                         enum md_device_status status, const char *actor, int64_t now_ms);
/* Whether a presented certificate (serial as upper-case hex, SHA-256 as
 * lower-case hex, from md_certs_binding) is the one registered for d: 0, or
 * -MD_E_DEVICE_CERT_UNREGISTERED when the serial differs, the fingerprint
 * differs (when one is registered), or d has no certificate registered. */
int md_device_check_certificate(const md_device *d, const char *serial, const char *sha256);
/* Serials of revoked devices, for the CRL.  NULL-terminated, g_strfreev(). */
int md_device_revoked_serials(md_store *st, char ***ret);

#endif
