/*
 * SRTP/SRTCP over libsrtp2: one md_srtp per direction of a leg (inbound
 * unprotects what the peer sends, outbound protects what the gateway sends),
 * keyed from DTLS-SRTP (RFC 5764 4.2).  libsrtp's global init is counted
 * under a lock (md_srtp_init / md_srtp_deinit).  An md_srtp belongs to the
 * worker thread of its leg; the functions are not thread-safe on one object.
 * Packets are transformed in place; protect needs MD_SRTP_MAX_OVERHEAD spare
 * bytes after the packet.  Every libsrtp status maps to one code here:
 * -EBADMSG authentication failed or malformed, -EALREADY replayed or too old,
 * -ENOMEM, -EINVAL bad parameters, -MD_E_MEDIA anything else.
 */
#ifndef MD_SRTP_H
#define MD_SRTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Values are the DTLS-SRTP protection profile ids (RFC 5764 4.1.2, RFC 7714 14.2). */
typedef enum md_srtp_profile {
    MD_SRTP_AES128_CM_SHA1_80 = 0x0001,
    MD_SRTP_AEAD_AES_128_GCM = 0x0007,
} md_srtp_profile;

#define MD_SRTP_MAX_KEY_LEN 16
#define MD_SRTP_MAX_SALT_LEN 14
#define MD_SRTP_MAX_OVERHEAD 148 /* SRTP_MAX_TRAILER_LEN + SRTCP index */

typedef struct md_srtp md_srtp;

int md_srtp_init(void);
void md_srtp_deinit(void);

/* Key and salt lengths of a profile; -EINVAL for an unknown profile. */
int md_srtp_profile_lengths(md_srtp_profile profile, size_t *ret_key_len, size_t *ret_salt_len);
const char *md_srtp_profile_name(md_srtp_profile profile);

/* key/salt have the profile's lengths.  Requires md_srtp_init(). */
int md_srtp_new(md_srtp_profile profile, bool outbound, const uint8_t *key, const uint8_t *salt,
                md_srtp **ret);
md_srtp *md_srtp_free(md_srtp *s);

/* In place; *len is updated on success.  protect: cap is the buffer size. */
int md_srtp_protect_rtp(md_srtp *s, uint8_t *buf, size_t *len, size_t cap);
int md_srtp_protect_rtcp(md_srtp *s, uint8_t *buf, size_t *len, size_t cap);
int md_srtp_unprotect_rtp(md_srtp *s, uint8_t *buf, size_t *len);
int md_srtp_unprotect_rtcp(md_srtp *s, uint8_t *buf, size_t *len);

#endif
