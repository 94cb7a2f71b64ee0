/*
 * Deployment PKI over OpenSSL: the CA that signs the gateway's server
 * certificate and every tablet's client certificate, and its revocation list.
 *
 * All keys are ECDSA P-256.  Device certificates carry the device id in the
 * subject CN and the post office id in the subject OU (and a
 * "madoguchi-device" O), are client-auth only (extendedKeyUsage clientAuth)
 * and have a random 128-bit serial.  The tablet receives a PKCS#12 bundle
 * (key + certificate + CA).  Private key files are written with mode 0600.
 * Issuing is for CLI commands (main thread); the identity readers at the end
 * also serve the TLS listeners (md_certs_tls.h, control thread).
 */
#ifndef MD_CERTS_H
#define MD_CERTS_H

#include <stdint.h>

#define MD_CERTS_SHA256_HEX_LEN 64

/* Creates ca.key/ca.crt (10 years) if absent.  Returns 1 if created, 0 if present,
 * -EEXIST if only one of the two exists (never overwrites half a CA). */
int md_certs_ca_init(const char *ca_cert_path, const char *ca_key_path, const char *name);

/* Server certificate for the given DNS names and IP addresses (SAN), signed by
 * the CA, valid 825 days.  names: NULL-terminated, e.g. {"localhost", "127.0.0.1", NULL}. */
int md_certs_server_issue(const char *ca_cert_path, const char *ca_key_path,
                          const char *const *names, const char *cert_path, const char *key_path);

/* Device certificate + PKCS#12 bundle "<out_dir>/<device_id>.p12" (and .crt/.key
 * PEM files beside it for non-browser clients).  p12_password may be "" for none.
 * Returns the serial as lower-case hex in *ret_serial (malloc'd) and, when
 * ret_sha256 is not NULL, the certificate's SHA-256 fingerprint (lower-case
 * hex of the DER) there: both are stored with the device's registration. */
int md_certs_device_issue(const char *ca_cert_path, const char *ca_key_path, const char *device_id,
                          const char *post_office_id, int valid_days, const char *out_dir,
                          const char *p12_password, char **ret_serial,
                          char ret_sha256[MD_CERTS_SHA256_HEX_LEN + 1]);

/* Writes a CRL (valid 30 days) listing the given serials (hex; NULL-terminated). */
int md_certs_crl_write(const char *ca_cert_path, const char *ca_key_path,
                       const char *const *revoked_serials, const char *crl_path);

/* Reads the device id (CN) and post office id (OU) of a PEM/DER certificate
 * given as an X509 pointer (void * to keep OpenSSL out of callers' headers).
 * Both outputs are malloc'd (free()).  -MD_E_DEVICE_CERT_INVALID unless O is
 * "madoguchi-device" and CN and OU each appear once and are valid ids. */
int md_certs_device_identity(const void *x509, char **ret_device_id, char **ret_post_office);

/* What binds a certificate to its registration (issue #11 item 6): the serial
 * as upper-case hex, as the registry keeps it (*ret_serial malloc'd), and the
 * SHA-256 fingerprint of the DER as lower-case hex. */
int md_certs_binding(const void *x509, char **ret_serial,
                     char ret_sha256[MD_CERTS_SHA256_HEX_LEN + 1]);

#endif
