/*
 * Time-based one-time passwords, RFC 6238 (over HOTP, RFC 4226 5.3): 6 digits,
 * 30-second steps, HMAC-SHA1 by default as authenticator apps expect.
 * Pure functions over md_crypto: safe from any thread.
 */
#ifndef MD_TOTP_H
#define MD_TOTP_H

#include <stddef.h>
#include <stdint.h>

#define MD_TOTP_STEP_S 30
#define MD_TOTP_SECRET_LEN 20

/* RFC 4226 5.3 dynamic truncation; digits 6..8. digest "SHA1"/"SHA256"/"SHA512". */
int md_hotp(const char *digest, const uint8_t *key, size_t key_len, uint64_t counter, int digits,
            uint32_t *ret_code);

/* RFC 6238 4: T = floor(unix_seconds / step). */
int md_totp_at(const char *digest, const uint8_t *key, size_t key_len, int64_t unix_seconds,
               int digits, uint32_t *ret_code);

/*
 * Checks a 6-digit code typed by a person against SHA1 TOTP with a window of
 * +-1 step (RFC 6238 5.2).  last_step is the step of the last accepted code
 * for this account: a code at or before it is refused (no replay, 5.2).
 * Returns the matched step (> last_step) or -MD_E_TOTP.
 */
int64_t md_totp_check(const char *secret_base32, const char *code, int64_t unix_seconds,
                      int64_t last_step);

/* New random secret (20 bytes) as base32; malloc'd. */
int md_totp_new_secret(char **ret_base32);

/* otpauth://totp/madoguchi:<user>?secret=...&issuer=madoguchi&digits=6&period=30 */
char *md_totp_uri(const char *issuer, const char *account, const char *secret_base32);

#endif
