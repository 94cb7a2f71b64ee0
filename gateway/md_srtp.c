/*
 * libsrtp2 adapter (see md_srtp.h).  The only file that includes
 * <srtp2/srtp.h>.  Global init/shutdown is reference counted under a mutex
 * because several md_media instances (tests) may come and go; per-object
 * calls happen on the owning worker thread only.  Keys handed to libsrtp are
 * wiped from our stack copies once the session holds them.
 */
#include "md_srtp.h"
#include "md_crypto.h"
#include "md_err.h"

#include <errno.h>
#include <glib.h>
#include <limits.h>
#include <srtp2/srtp.h>
#include <string.h>

_Static_assert(SRTP_MAX_TRAILER_LEN + 4 <= MD_SRTP_MAX_OVERHEAD, "SRTP overhead");
_Static_assert(SRTP_AES_ICM_128_KEY_LEN_WSALT == MD_SRTP_MAX_KEY_LEN + MD_SRTP_MAX_SALT_LEN,
               "SRTP key sizes");

struct md_srtp {
    srtp_t ctx;
};

static GMutex init_lock;
static unsigned init_count;
/* Debian's libsrtp2 does its AES through NSS, and its first session starts
 * NSS (dlopen of the soft token, self-tests) while its last one shuts it
 * down: 2 ms each way on an idle machine, 8 ms measured under load, on the
 * worker that keys the first leg after an idle spell.  One session kept from
 * the first md_srtp_init() to the last md_srtp_deinit() keeps NSS up (a
 * session then costs 14 us to make). */
static srtp_t keep_warm;

/* The one place where libsrtp statuses become our codes. */
static int map_status(srtp_err_status_t st)
{
    switch (st) {
    case srtp_err_status_ok:
        return 0;
    case srtp_err_status_auth_fail:
    case srtp_err_status_parse_err:
    case srtp_err_status_bad_mki:
        return -EBADMSG;
    case srtp_err_status_replay_fail:
    case srtp_err_status_replay_old:
    case srtp_err_status_pkt_idx_old:
        return -EALREADY;
    case srtp_err_status_alloc_fail:
        return -ENOMEM;
    case srtp_err_status_bad_param:
    case srtp_err_status_no_ctx:
        return -EINVAL;
    case srtp_err_status_key_expired:
    case srtp_err_status_pkt_idx_adv:
        return -EKEYEXPIRED;
    default:
        return -MD_E_MEDIA;
    }
}

/* An inbound session under a zero key that never sees a packet. */
static int new_keep_warm(void)
{
    uint8_t master[SRTP_AES_ICM_128_KEY_LEN_WSALT] = {0};
    srtp_policy_t policy;
    memset(&policy, 0, sizeof(policy));
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
    policy.key = master;
    policy.ssrc.type = ssrc_any_inbound;
    return map_status(srtp_create(&keep_warm, &policy));
}

int md_srtp_init(void)
{
    int r = 0;
    g_mutex_lock(&init_lock);
    if (init_count == 0) {
        r = map_status(srtp_init());
        if (r == 0 && (r = new_keep_warm()) < 0)
            srtp_shutdown();
    }
    if (r == 0)
        init_count++;
    g_mutex_unlock(&init_lock);
    return r;
}

void md_srtp_deinit(void)
{
    g_mutex_lock(&init_lock);
    if (init_count > 0 && --init_count == 0) {
        srtp_dealloc(keep_warm);
        keep_warm = NULL;
        srtp_shutdown();
    }
    g_mutex_unlock(&init_lock);
}

int md_srtp_profile_lengths(md_srtp_profile profile, size_t *ret_key_len, size_t *ret_salt_len)
{
    size_t salt;
    switch (profile) {
    case MD_SRTP_AES128_CM_SHA1_80:
        salt = 14;
        break;
    case MD_SRTP_AEAD_AES_128_GCM:
        salt = 12; /* RFC 7714 12 */
        break;
    default:
        return -EINVAL;
    }
    *ret_key_len = 16;
    *ret_salt_len = salt;
    return 0;
}

const char *md_srtp_profile_name(md_srtp_profile profile)
{
    switch (profile) {
    case MD_SRTP_AES128_CM_SHA1_80:
        return "SRTP_AES128_CM_SHA1_80";
    case MD_SRTP_AEAD_AES_128_GCM:
        return "SRTP_AEAD_AES_128_GCM";
    }
    return "unknown";
}

int md_srtp_new(md_srtp_profile profile, bool outbound, const uint8_t *key, const uint8_t *salt,
                md_srtp **ret)
{
    uint8_t master[MD_SRTP_MAX_KEY_LEN + MD_SRTP_MAX_SALT_LEN];
    size_t key_len, salt_len;
    srtp_policy_t policy;
    md_srtp *s = NULL;
    int r = md_srtp_profile_lengths(profile, &key_len, &salt_len);
    if (r < 0)
        return r;

    memset(&policy, 0, sizeof(policy));
    if (profile == MD_SRTP_AEAD_AES_128_GCM) {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
    } else {
        srtp_crypto_policy_set_rtp_default(&policy.rtp);
        srtp_crypto_policy_set_rtcp_default(&policy.rtcp);
    }
    memcpy(master, key, key_len);
    memcpy(master + key_len, salt, salt_len);
    policy.key = master;
    policy.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
    policy.window_size = 1024; /* video bursts reorder; RFC 3711 3.3.2 allows > 64 */
    policy.allow_repeat_tx = 0;

    s = g_new0(md_srtp, 1);
    r = map_status(srtp_create(&s->ctx, &policy));
    if (r < 0) {
        g_free(s);
        goto out;
    }
    *ret = s;
out:
    md_wipe(master, sizeof(master));
    return r;
}

md_srtp *md_srtp_free(md_srtp *s)
{
    if (!s)
        return NULL;
    srtp_dealloc(s->ctx);
    g_free(s);
    return NULL;
}

typedef srtp_err_status_t (*transform_fn)(srtp_t, void *, int *);

static int transform(md_srtp *s, transform_fn fn, uint8_t *buf, size_t *len, size_t room)
{
    if (*len > INT_MAX - MD_SRTP_MAX_OVERHEAD || *len + room < *len)
        return -EINVAL;
    int n = (int)*len;
    int r = map_status(fn(s->ctx, buf, &n));
    if (r == 0)
        *len = (size_t)n;
    return r;
}

int md_srtp_protect_rtp(md_srtp *s, uint8_t *buf, size_t *len, size_t cap)
{
    if (cap < *len + MD_SRTP_MAX_OVERHEAD)
        return -ENOBUFS;
    return transform(s, srtp_protect, buf, len, MD_SRTP_MAX_OVERHEAD);
}

int md_srtp_protect_rtcp(md_srtp *s, uint8_t *buf, size_t *len, size_t cap)
{
    if (cap < *len + MD_SRTP_MAX_OVERHEAD)
        return -ENOBUFS;
    return transform(s, srtp_protect_rtcp, buf, len, MD_SRTP_MAX_OVERHEAD);
}

int md_srtp_unprotect_rtp(md_srtp *s, uint8_t *buf, size_t *len)
{
    return transform(s, srtp_unprotect, buf, len, 0);
}

int md_srtp_unprotect_rtcp(md_srtp *s, uint8_t *buf, size_t *len)
{
    return transform(s, srtp_unprotect_rtcp, buf, len, 0);
}
