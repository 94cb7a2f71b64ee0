/*
 * What an operator does to devices and staff accounts, once, for both front
 * ends: the command line (cli/cmd_device.c, cli/cmd_user.c) and the admin
 * console's API (md_http_admin.c).  Each function checks the same rules,
 * writes the same audit entry (actor: "operator" from the CLI,
 * "staff:<admin>" from the console) and returns the same error codes, so a
 * refusal reads the same in both.  Registry changes go through
 * md_registry_import() and md_registry_enable_procedure() for the same
 * reason.  Plain functions on the thread that owns the store.
 */
#ifndef MD_ADMIN_H
#define MD_ADMIN_H

#include "md_audit.h"
#include "md_config.h"
#include "md_registry.h"
#include "md_staff.h"
#include "md_store.h"

#include <jansson.h>

/* ---- devices ---- */

/* Registers device_id for post_office and writes its bundle to out_dir
 * (<id>.p12 for the tablet, .crt and .key), the certificate signed by the
 * device CA of cfg.  Refused before anything is written when the id exists
 * (-EEXIST) or the post office does not (-MD_E_POST_OFFICE_UNKNOWN). */
int md_admin_device_issue(md_store *st, md_audit *audit, const md_config *cfg,
                          const char *device_id, const char *post_office, const char *out_dir,
                          const char *p12_password, const char *actor, int64_t now_ms);

/* Rewrites cfg's CRL (tls.crl, signed with tls.ca_key) from the registry's
 * revoked devices. */
int md_admin_crl_rewrite(md_store *st, const md_config *cfg);

/* Sets a device's status; on revocation also rewrites cfg's CRL (the
 * gateway reloads it: at once when it made the change, on SIGHUP when the
 * CLI did). */
int md_admin_device_set_status(md_store *st, md_audit *audit, const md_config *cfg,
                               const char *device_id, enum md_device_status status,
                               const char *actor, int64_t now_ms);

/* Every device as [{id, post_office, post_office_name, municipality, status,
 * cert_serial, created_at, updated_at}], optionally one municipality's. */
int md_admin_device_list(md_store *st, const char *municipality, json_t **ret);

/* ---- staff ---- */

/* [{username, role, municipality, disabled, locked (bool), created_at}]. */
int md_admin_staff_list(md_store *st, json_t **ret);

/* A new TOTP secret for username; the old one stops working and the
 * account's web sessions end.  *ret_otpauth_uri as md_staff_add(). */
int md_admin_staff_reset_totp(md_store *st, md_audit *audit, const char *username,
                              const char *actor, int64_t now_ms, char **ret_otpauth_uri);

/* Clears the failed-login count and any lock. */
int md_admin_staff_unlock(md_store *st, md_audit *audit, const char *username, const char *actor,
                          int64_t now_ms);

/* Disables (its web sessions end) or enables an account. */
int md_admin_staff_set_disabled(md_store *st, md_audit *audit, const char *username, bool disabled,
                                const char *actor, int64_t now_ms);

#endif
