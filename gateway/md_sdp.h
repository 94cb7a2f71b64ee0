/*
 * A small, strict SDP reader for the offers WebRTC clients send, and the
 * writer of the gateway's answers (RFC 8866 syntax, RFC 8829 JSEP, RFC 8843
 * BUNDLE, RFC 8839 ICE attributes, RFC 5763/8122 DTLS setup and
 * fingerprints).  Only what the gateway uses is kept; unknown attributes are
 * skipped (RFC 8866 5.13).  Every size is capped: the text, the number and
 * length of lines, m-lines, formats, SSRCs, candidates; exceeding a cap or
 * breaking the grammar is -MD_E_SDP_INVALID with a one-line reason that never
 * contains SDP text.  The m-lines, formats, extmaps and candidates of an md_sdp
 * are arrays allocated to what the offer carries (a browser offer takes a
 * few KB, not the size of every cap), all freed by md_sdp_free().  md_sdp
 * objects are plain data: created on the control thread, then owned by
 * whichever thread holds the pointer.
 */
#ifndef MD_SDP_H
#define MD_SDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MD_SDP_MAX_BYTES (256 * 1024) /* hard ceiling; the config cap is lower */
#define MD_SDP_MAX_LINES 2048
#define MD_SDP_MAX_LINE 1024
#define MD_SDP_MAX_MEDIA 8
#define MD_SDP_MAX_FORMATS 64
#define MD_SDP_MAX_FMTP 160
#define MD_SDP_MAX_SSRCS 16
#define MD_SDP_MAX_FID 8
#define MD_SDP_MAX_EXTMAPS 24
#define MD_SDP_MAX_CANDIDATES 32 /* per m-line */
#define MD_SDP_MAX_CANDIDATE 256
#define MD_SDP_MAX_FINGERPRINTS 4
#define MD_SDP_MAX_MID 32
#define MD_SDP_MAX_ICE 256 /* RFC 8839 5.4: ufrag 4..256, pwd 22..256 ice-chars */
#define MD_SDP_MAX_DIGEST 64

typedef enum md_sdp_kind {
    MD_SDP_AUDIO,
    MD_SDP_VIDEO,
    MD_SDP_APPLICATION,
    MD_SDP_OTHER
} md_sdp_kind;

typedef enum md_sdp_direction {
    MD_SDP_SENDRECV = 0,
    MD_SDP_SENDONLY,
    MD_SDP_RECVONLY,
    MD_SDP_INACTIVE,
} md_sdp_direction;

typedef enum md_sdp_setup {
    MD_SDP_SETUP_UNSET = 0,
    MD_SDP_SETUP_ACTPASS,
    MD_SDP_SETUP_ACTIVE,
    MD_SDP_SETUP_PASSIVE,
} md_sdp_setup;

/* a=rtcp-fb values we understand (RFC 4585 4.2, RFC 5104 7.1). */
enum {
    MD_SDP_FB_NACK = 1 << 0,
    MD_SDP_FB_PLI = 1 << 1,
    MD_SDP_FB_FIR = 1 << 2,
    MD_SDP_FB_REMB = 1 << 3,
    MD_SDP_FB_TWCC = 1 << 4,
};

typedef struct md_sdp_format {
    uint8_t pt;
    bool has_rtpmap;
    char encoding[32]; /* as written, e.g. "VP8", "opus" */
    uint32_t clock_rate;
    uint8_t channels;
    char fmtp[MD_SDP_MAX_FMTP];
    unsigned feedback; /* MD_SDP_FB_* */
} md_sdp_format;

typedef struct md_sdp_fingerprint {
    char hash[16]; /* lower case: "sha-256" */
    uint8_t digest[MD_SDP_MAX_DIGEST];
    size_t len;
} md_sdp_fingerprint;

typedef struct md_sdp_transport {
    char ice_ufrag[MD_SDP_MAX_ICE + 1];
    char ice_pwd[MD_SDP_MAX_ICE + 1];
    bool ice_trickle;
    md_sdp_fingerprint fingerprints[MD_SDP_MAX_FINGERPRINTS];
    size_t n_fingerprints;
    md_sdp_setup setup;
} md_sdp_transport;

typedef struct md_sdp_extmap {
    uint16_t id;
    char uri[128];
} md_sdp_extmap;

typedef struct md_sdp_media {
    md_sdp_kind kind;
    char kind_name[16]; /* as written, for rejecting it in the answer */
    char first_format[32];
    uint16_t port; /* 0: rejected by the offerer unless bundle_only */
    char proto[32];
    char mid[MD_SDP_MAX_MID + 1];
    md_sdp_direction direction;
    bool has_direction;
    bool rtcp_mux, rtcp_rsize, bundle_only, end_of_candidates;
    md_sdp_transport transport; /* media level; see md_sdp_bundle_transport() */
    md_sdp_format *formats;     /* n_formats, at most MD_SDP_MAX_FORMATS */
    size_t n_formats;
    uint32_t ssrcs[MD_SDP_MAX_SSRCS];
    size_t n_ssrcs;
    struct {
        uint32_t primary, rtx;
    } fid[MD_SDP_MAX_FID]; /* a=ssrc-group:FID (RFC 5576 4.2, RFC 4588 8.1) */
    size_t n_fid;
    md_sdp_extmap *extmaps; /* n_extmaps, at most MD_SDP_MAX_EXTMAPS */
    size_t n_extmaps;
    char **candidates; /* n_candidates "candidate:..." strings, at most MD_SDP_MAX_CANDIDATES */
    size_t n_candidates;
    uint16_t sctp_port;        /* a=sctp-port (RFC 8841 5.2), or the legacy a=sctpmap
                                * port for webrtc-datachannel; 0 = absent */
    bool sctpmap_datachannel;  /* a=sctpmap:<fmt> webrtc-datachannel (sctp-sdp-05 form) */
    uint64_t max_message_size; /* a=max-message-size (RFC 8841 6); 0 = absent */
} md_sdp_media;

typedef struct md_sdp {
    uint64_t origin_version;                           /* o= sess-version */
    md_sdp_transport session;                          /* session-level transport attributes */
    char bundle[MD_SDP_MAX_MEDIA][MD_SDP_MAX_MID + 1]; /* a=group:BUNDLE, tag first */
    size_t n_bundle;
    md_sdp_media *media; /* n_media, at most MD_SDP_MAX_MEDIA */
    size_t n_media;
} md_sdp;

/* Parses an offer of len bytes (no NUL needed), refusing more than max_bytes.
 * On failure returns -MD_E_SDP_INVALID and, when err is given, a reason. */
int md_sdp_parse(const char *text, size_t len, size_t max_bytes, md_sdp **ret, char *err,
                 size_t err_len);
md_sdp *md_sdp_free(md_sdp *sdp);

/* "<hash-func> <XX:XX:...>" (RFC 8122 5): 1 parsed, 0 for a hash function
 * the gateway does not know, -MD_E_SDP_INVALID when malformed. */
int md_sdp_parse_fingerprint(const char *text, md_sdp_fingerprint *ret);

/* The transport of the BUNDLE group: the tagged m-line's attributes, each
 * falling back to its session-level value (RFC 8843 7.1, RFC 8839 5.4). */
void md_sdp_bundle_transport(const md_sdp *sdp, md_sdp_transport *ret);

/* WebRTC policy on a parsed offer: BUNDLE with every used m-line and rtcp-mux
 * (-MD_E_BUNDLE_REQUIRED), ICE credentials, a fingerprint, a usable setup
 * role, one audio and one video m-line over UDP/TLS/RTP/SAVPF
 * (-MD_E_SDP_INVALID / -MD_E_SDP_UNSUPPORTED). */
int md_sdp_check_offer(const md_sdp *sdp, char *err, size_t err_len);

/* Index of the first m-line of a kind that the offerer did not reject, or -1. */
int md_sdp_find_media(const md_sdp *sdp, md_sdp_kind kind);

/* Index in m->formats of the first format usable as codec ("VP8", "H264"
 * constrained baseline packetization-mode 1, "VP9" profile 0, "AV1" profile
 * 0, "opus" 48000/2), or -1. */
int md_sdp_find_codec(const md_sdp_media *m, const char *codec);
bool md_sdp_codec_known(const char *codec);

/* First codec of pref (NULL-terminated) that both offers carry.
 * -MD_E_CODEC_MISMATCH with a reason naming what each side offers. */
int md_sdp_choose_video_codec(const char *const *pref, const md_sdp *a, const char *a_name,
                              const md_sdp *b, const char *b_name, const char **ret_codec,
                              char *err, size_t err_len);

/* What the gateway takes from one offer once the video codec is known. */
#define MD_SDP_EXT_ABS_SEND_TIME "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"

typedef struct md_sdp_choice {
    int audio_index, video_index; /* offer m-lines, -1 if none */
    uint8_t audio_pt, video_pt;
    unsigned audio_feedback, video_feedback;       /* offered and supported by the relay */
    uint32_t remote_audio_ssrc, remote_video_ssrc; /* first a=ssrc, 0 when unsignalled */
    char audio_mid[MD_SDP_MAX_MID + 1], video_mid[MD_SDP_MAX_MID + 1];
    md_sdp_direction audio_direction, video_direction; /* as offered */
    bool rtcp_rsize; /* RFC 5506: reduced-size RTCP offered on the video m-line */
    /* RFC 8285 5: the offer's id (1..14) for abs-send-time on the video m-line,
     * answered with the same id; 0 when not offered (then nothing is answered). */
    uint8_t video_abs_send_time_id;
    /* The data-channel m-line (RFC 8841 4.1: UDP/DTLS/SCTP webrtc-datachannel), -1 if none. */
    int data_index;
    bool data_legacy; /* "DTLS/SCTP <port>" + a=sctpmap (draft-ietf-mmusic-sctp-sdp-05),
                       * as aiortc 1.4 still offers: answered in the same form (RFC 3264 6) */
    char data_mid[MD_SDP_MAX_MID + 1];
    uint16_t remote_sctp_port;        /* the offer's a=sctp-port, 5000 when absent */
    uint64_t remote_max_message_size; /* the offer's a=max-message-size, 0 when absent */
} md_sdp_choice;

/* -MD_E_CODEC_MISMATCH when the offer lacks video_codec or Opus.  A data
 * channel m-line is taken when the offer has one; other application m-lines
 * are left out (rejected in the answer). */
int md_sdp_choose(const md_sdp *offer, const char *video_codec, md_sdp_choice *ret, char *err,
                  size_t err_len);

typedef struct md_sdp_answer_params {
    uint64_t session_id, session_version; /* o= line; version grows per answer */
    const char *ice_ufrag, *ice_pwd;
    const char *fingerprint;       /* "sha-256 AB:CD:..." */
    md_sdp_setup setup;            /* ACTIVE or PASSIVE */
    const char *const *candidates; /* "candidate:..." */
    size_t n_candidates;
    bool end_of_candidates;
    uint32_t audio_ssrc, video_ssrc; /* what the gateway sends on this leg */
    const char *cname, *stream_id;
    uint64_t max_message_size; /* our a=max-message-size on the data m-line; 0 = 65536 */
} md_sdp_answer_params;

/* The answer text (malloc'd, g_free) for offer with the m-lines and formats of
 * choice (audio, video, and the data channel m-line with a=sctp-port and
 * a=max-message-size, RFC 8841 5 and 6); m-lines not chosen are rejected with
 * port 0 (RFC 8829 5.3.1). */
int md_sdp_answer(const md_sdp *offer, const md_sdp_choice *choice,
                  const md_sdp_answer_params *params, char **ret_text);

/* The DTLS role the gateway takes for an offer's setup (RFC 5763 5). */
md_sdp_setup md_sdp_answer_setup(md_sdp_setup offered);

#endif
