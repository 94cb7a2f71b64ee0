/*
 * Crypto helpers over OpenSSL's EVP interfaces: hashes, random bytes,
 * encodings, constant-time comparison, password hashing (scrypt) and Ed25519
 * signatures.  OpenSSL is used by core/, certs/ (which also holds the TLS
 * listeners' side of it, certs/md_certs_tls.c) and the DTLS adapter
 * (gateway/md_dtls.c) only.  Every failure drains the OpenSSL error queue
 * into a debug log line and returns -MD_E_CRYPTO.  Key material is wiped
 * when freed.  Stateless: safe from any thread.
 */
#ifndef MD_CRYPTO_H
#define MD_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MD_SHA256_LEN 32
#define MD_SHA256_HEX_LEN 64 /* without the NUL */

int md_sha256(const void *data, size_t len, uint8_t ret_digest[MD_SHA256_LEN]);
/* Lower-case hex of SHA-256; out needs 65 bytes. */
int md_sha256_hex(const void *data, size_t len, char out[MD_SHA256_HEX_LEN + 1]);
/* ret_mac needs MD_HMAC_MAX_LEN bytes; *ret_mac_len is set to the MAC's length. */
#define MD_HMAC_MAX_LEN 64
int md_hmac(const char *digest /* "SHA1", "SHA256", "SHA512" */, const void *key, size_t key_len,
            const void *data, size_t len, uint8_t *ret_mac, size_t *ret_mac_len);

int md_random_bytes(void *buf, size_t len);

void md_hex_encode(const void *data, size_t len, char *out /* 2*len+1 */);
int md_hex_decode(const char *hex, uint8_t *out, size_t out_len); /* exact length required */
/* base64url without padding (RFC 4648 5); returns a malloc'd string or NULL. */
char *md_base64url_encode(const void *data, size_t len);

/* RFC 4648 6 base32, upper case, no padding.  encode: malloc'd or NULL.
 * decode: ignores spaces and case (and trailing '=' padding); returns the
 * decoded length, -EINVAL when malformed, -ENOBUFS when out_cap is too small. */
char *md_base32_encode(const void *data, size_t len);
int md_base32_decode(const char *s, uint8_t *out, size_t out_cap);

bool md_memeq_const(const void *a, const void *b, size_t len); /* CRYPTO_memcmp */
void md_wipe(void *p, size_t len);                             /* OPENSSL_cleanse */
/* Call on a thread of our own that used these functions, just before it
 * ends (md_login_pool workers). */
void md_crypto_thread_done(void);

/* Password hashing with scrypt (N=2^15, r=8, p=1, 16-byte salt, 32-byte key).
 * Encoded as "$scrypt$ln=15,r=8,p=1$<salt b64url>$<hash b64url>".  verify
 * returns 1 on match, 0 on mismatch, negative on a malformed hash. */
int md_password_hash(const char *password, char **ret_encoded);
int md_password_verify(const char *password, const char *encoded);

/* Ed25519 keys in PEM files.  The private key file is created with mode 0600. */
typedef struct md_sign_key md_sign_key;
int md_sign_key_generate(const char *private_pem_path, const char *public_pem_path);
int md_sign_key_load_private(const char *path, md_sign_key **ret);
int md_sign_key_load_public(const char *path, md_sign_key **ret);
md_sign_key *md_sign_key_free(md_sign_key *key);
/* The raw 32-byte public key (RFC 8032 5.1.5), to pin a key in a config or
 * print it; and a verifying key made from one. */
#define MD_ED25519_PUBLIC_LEN 32
int md_sign_key_raw_public(const md_sign_key *key, uint8_t ret[MD_ED25519_PUBLIC_LEN]);
int md_sign_key_from_raw_public(const uint8_t raw[MD_ED25519_PUBLIC_LEN], md_sign_key **ret);
/* Key id: first 16 hex chars of SHA-256 of the raw 32-byte public key. */
int md_sign_key_id(const md_sign_key *key, char out[17]);
int md_sign(const md_sign_key *key, const void *msg, size_t len, uint8_t ret_sig[64]);
/* Returns 1 valid, 0 invalid, negative on error. */
int md_verify(const md_sign_key *key, const void *msg, size_t len, const uint8_t sig[64]);

/* Streaming SHA-256 (for files that arrive in chunks).  new: -ENOMEM or
 * -MD_E_CRYPTO; final may be called once; free takes NULL and returns NULL. */
typedef struct md_sha256_ctx md_sha256_ctx;
int md_sha256_ctx_new(md_sha256_ctx **ret);
int md_sha256_ctx_update(md_sha256_ctx *c, const void *data, size_t len);
int md_sha256_ctx_final(md_sha256_ctx *c, uint8_t ret_digest[MD_SHA256_LEN]);
md_sha256_ctx *md_sha256_ctx_free(md_sha256_ctx *c);

/* AES-256-GCM with a 96-bit nonce and a 128-bit tag appended to the
 * ciphertext: out needs len + MD_AEAD_TAG_LEN bytes (seal) or in_len -
 * MD_AEAD_TAG_LEN bytes (open).  open returns -MD_E_CRYPTO when the tag does
 * not verify (wrong key, tampered data or AAD) and writes nothing useful. */
#define MD_AEAD_KEY_LEN 32
#define MD_AEAD_NONCE_LEN 12
#define MD_AEAD_TAG_LEN 16
int md_aead_seal(const uint8_t key[MD_AEAD_KEY_LEN], const uint8_t nonce[MD_AEAD_NONCE_LEN],
                 const void *aad, size_t aad_len, const void *in, size_t len, uint8_t *out);
int md_aead_open(const uint8_t key[MD_AEAD_KEY_LEN], const uint8_t nonce[MD_AEAD_NONCE_LEN],
                 const void *aad, size_t aad_len, const void *in, size_t in_len, uint8_t *out);

/*
 * Empties the calling thread's OpenSSL error queue into buf as one line
 * ("error:...; error:..."), cut at cap but always drained whole, so that a
 * later failure does not report this one's errors.  Returns the length ("" and
 * 0 when the queue was empty).  Every OpenSSL user of the project (core,
 * certs/, the DTLS adapter) reports failures through it.
 */
size_t md_crypto_drain_errors(char *buf, size_t cap);

#endif
