/*
 * SDP offer reader (see md_sdp.h).  One pass over the lines, each copied to
 * a bounded buffer and dispatched on its type letter; attributes go through
 * a {name, handler} table.  Session-level attributes are kept apart and
 * applied as defaults by md_sdp_bundle_transport().  Nothing here trusts the
 * input: every count and length is checked before it is stored.  Pure code,
 * no globals: callable from any thread.
 */
#include "md_sdp.h"
#include "md_err.h"

#include <ctype.h>
#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    md_sdp *sdp;
    md_sdp_media *media; /* NULL while at session level */
    unsigned line_no;
    char *err;
    size_t err_len;
};

static int fail(struct parser *p, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static int fail(struct parser *p, const char *fmt, ...)
{
    if (p->err && p->err_len) {
        int n = snprintf(p->err, p->err_len, "line %u: ", p->line_no);
        if (n >= 0 && (size_t)n < p->err_len) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err + n, p->err_len - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -MD_E_SDP_INVALID;
}

/* Copies the next space-separated token of *s into out; false if none or too long. */
static bool next_token(const char **s, char *out, size_t cap)
{
    const char *p = *s;
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, " ");
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    *s = p + n;
    return true;
}

static bool parse_uint(const char *s, uint64_t max, uint64_t *ret)
{
    if (!isdigit((unsigned char)s[0]) || strlen(s) > 20)
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *ret = v;
    return true;
}

/* RFC 8839 5.4: ice-char = ALPHA / DIGIT / "+" / "/" */
static bool valid_ice_chars(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '+' && s[i] != '/')
            return false;
    return true;
}

static md_sdp_transport *transport_of(struct parser *p)
{
    return p->media ? &p->media->transport : &p->sdp->session;
}

static md_sdp_format *format_of(struct parser *p, const char *pt_text)
{
    uint64_t pt;
    if (!p->media || !parse_uint(pt_text, 127, &pt))
        return NULL;
    for (size_t i = 0; i < p->media->n_formats; i++)
        if (p->media->formats[i].pt == pt)
            return &p->media->formats[i];
    return NULL; /* not in the m-line: ignored (RFC 8866 6.6) */
}

/* RFC 8843 7.1: a=group:BUNDLE <mid> ... ; other semantics are ignored. */
static int attr_group(struct parser *p, const char *v)
{
    char tok[MD_SDP_MAX_MID + 1];
    if (p->media)
        return fail(p, "a=group at media level");
    if (!next_token(&v, tok, sizeof(tok)) || strcmp(tok, "BUNDLE") != 0)
        return 0;
    if (p->sdp->n_bundle)
        return fail(p, "second BUNDLE group");
    while (*v) {
        if (!next_token(&v, tok, sizeof(tok)))
            break;
        if (p->sdp->n_bundle >= MD_SDP_MAX_MEDIA)
            return fail(p, "too many mids in BUNDLE group");
        memcpy(p->sdp->bundle[p->sdp->n_bundle++], tok, sizeof(tok));
    }
    return 0;
}

static int attr_ice_ufrag(struct parser *p, const char *v)
{
    if (!valid_ice_chars(v, 4, MD_SDP_MAX_ICE))
        return fail(p, "bad a=ice-ufrag");
    g_strlcpy(transport_of(p)->ice_ufrag, v, MD_SDP_MAX_ICE + 1);
    return 0;
}

static int attr_ice_pwd(struct parser *p, const char *v)
{
    if (!valid_ice_chars(v, 22, MD_SDP_MAX_ICE))
        return fail(p, "bad a=ice-pwd");
    g_strlcpy(transport_of(p)->ice_pwd, v, MD_SDP_MAX_ICE + 1);
    return 0;
}

static int attr_ice_options(struct parser *p, const char *v)
{
    char tok[64];
    while (next_token(&v, tok, sizeof(tok)))
        if (strcmp(tok, "trickle") == 0)
            transport_of(p)->ice_trickle = true;
    return 0;
}

static size_t digest_len(const char *hash)
{
    static const struct {
        const char *name;
        size_t len;
    } known[] = {{"sha-1", 20}, {"sha-224", 28}, {"sha-256", 32}, {"sha-384", 48}, {"sha-512", 64}};
    for (size_t i = 0; i < G_N_ELEMENTS(known); i++)
        if (strcmp(hash, known[i].name) == 0)
            return known[i].len;
    return 0;
}

/* RFC 8122 5: <hash-func> <XX:XX:...>.  1 parsed, 0 unknown hash, < 0 bad. */
int md_sdp_parse_fingerprint(const char *v, md_sdp_fingerprint *ret)
{
    md_sdp_fingerprint fp = {0};
    char hex[3 * MD_SDP_MAX_DIGEST + 1];
    if (!next_token(&v, fp.hash, sizeof(fp.hash)) || !next_token(&v, hex, sizeof(hex)))
        return -MD_E_SDP_INVALID;
    for (char *c = fp.hash; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    size_t want = digest_len(fp.hash);
    if (want == 0)
        return 0;
    if (strlen(hex) != 3 * want - 1)
        return -MD_E_SDP_INVALID;
    for (size_t i = 0; i < want; i++) {
        const char *h = hex + 3 * i;
        if (!isxdigit((unsigned char)h[0]) || !isxdigit((unsigned char)h[1]) ||
            (i + 1 < want && h[2] != ':'))
            return -MD_E_SDP_INVALID;
        fp.digest[i] = (uint8_t)(g_ascii_xdigit_value(h[0]) << 4 | g_ascii_xdigit_value(h[1]));
    }
    fp.len = want;
    *ret = fp;
    return 1;
}

static int attr_fingerprint(struct parser *p, const char *v)
{
    md_sdp_transport *t = transport_of(p);
    md_sdp_fingerprint fp;
    int r = md_sdp_parse_fingerprint(v, &fp);
    if (r < 0)
        return fail(p, "bad a=fingerprint");
    if (r == 0)
        return 0; /* unknown hash function: skipped (RFC 8122 5) */
    if (t->n_fingerprints >= MD_SDP_MAX_FINGERPRINTS)
        return fail(p, "too many a=fingerprint lines");
    t->fingerprints[t->n_fingerprints++] = fp;
    return 0;
}

/* RFC 4145 4, RFC 5763 5 */
static int attr_setup(struct parser *p, const char *v)
{
    md_sdp_setup s;
    if (strcmp(v, "actpass") == 0)
        s = MD_SDP_SETUP_ACTPASS;
    else if (strcmp(v, "active") == 0)
        s = MD_SDP_SETUP_ACTIVE;
    else if (strcmp(v, "passive") == 0)
        s = MD_SDP_SETUP_PASSIVE;
    else
        return fail(p, "unsupported a=setup");
    transport_of(p)->setup = s;
    return 0;
}

static int attr_mid(struct parser *p, const char *v)
{
    if (!p->media)
        return fail(p, "a=mid at session level");
    if (!*v || strlen(v) > MD_SDP_MAX_MID || strchr(v, ' '))
        return fail(p, "bad a=mid");
    for (md_sdp_media *m = p->sdp->media; m < p->media; m++)
        if (strcmp(m->mid, v) == 0)
            return fail(p, "duplicate a=mid");
    if (p->media->mid[0])
        return fail(p, "second a=mid in one m-line");
    g_strlcpy(p->media->mid, v, sizeof(p->media->mid));
    return 0;
}

/* Flags that only mean something in a media section. */
static int attr_rtcp_mux(struct parser *p, const char *v)
{
    if (p->media)
        p->media->rtcp_mux = true;
    return 0;
}

static int attr_rtcp_rsize(struct parser *p, const char *v)
{
    if (p->media)
        p->media->rtcp_rsize = true;
    return 0;
}

static int attr_bundle_only(struct parser *p, const char *v)
{
    if (p->media)
        p->media->bundle_only = true;
    return 0;
}

static int attr_end_of_candidates(struct parser *p, const char *v)
{
    if (p->media)
        p->media->end_of_candidates = true;
    return 0;
}

static int set_direction(struct parser *p, md_sdp_direction d)
{
    if (p->media) {
        p->media->direction = d;
        p->media->has_direction = true;
    }
    return 0;
}

static int attr_sendrecv(struct parser *p, const char *v)
{
    return set_direction(p, MD_SDP_SENDRECV);
}
static int attr_sendonly(struct parser *p, const char *v)
{
    return set_direction(p, MD_SDP_SENDONLY);
}
static int attr_recvonly(struct parser *p, const char *v)
{
    return set_direction(p, MD_SDP_RECVONLY);
}
static int attr_inactive(struct parser *p, const char *v)
{
    return set_direction(p, MD_SDP_INACTIVE);
}

/* RFC 8866 6.6: a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>] */
static int attr_rtpmap(struct parser *p, const char *v)
{
    char pt[8], spec[64];
    if (!next_token(&v, pt, sizeof(pt)) || !next_token(&v, spec, sizeof(spec)))
        return fail(p, "bad a=rtpmap");
    md_sdp_format *f = format_of(p, pt);
    if (!f)
        return 0;
    char *rate = strchr(spec, '/');
    if (!rate || rate == spec || (size_t)(rate - spec) >= sizeof(f->encoding))
        return fail(p, "bad a=rtpmap encoding");
    *rate++ = '\0';
    char *channels = strchr(rate, '/');
    if (channels)
        *channels++ = '\0';
    uint64_t clock, ch = 1;
    if (!parse_uint(rate, 1000000, &clock) || clock == 0 ||
        (channels && (!parse_uint(channels, 8, &ch) || ch == 0)))
        return fail(p, "bad a=rtpmap clock rate or channels");
    g_strlcpy(f->encoding, spec, sizeof(f->encoding));
    f->clock_rate = (uint32_t)clock;
    f->channels = (uint8_t)ch;
    f->has_rtpmap = true;
    return 0;
}

static int attr_fmtp(struct parser *p, const char *v)
{
    char pt[8];
    if (!next_token(&v, pt, sizeof(pt)))
        return fail(p, "bad a=fmtp");
    md_sdp_format *f = format_of(p, pt);
    if (!f)
        return 0;
    while (*v == ' ')
        v++;
    if (strlen(v) >= sizeof(f->fmtp))
        return fail(p, "a=fmtp too long");
    g_strlcpy(f->fmtp, v, sizeof(f->fmtp));
    return 0;
}

/* RFC 4585 4.2, RFC 5104 7.1; "*" applies to every format. */
static int attr_rtcp_fb(struct parser *p, const char *v)
{
    char pt[8], type[32], sub[32] = "";
    if (!p->media || !next_token(&v, pt, sizeof(pt)) || !next_token(&v, type, sizeof(type)))
        return fail(p, "bad a=rtcp-fb");
    next_token(&v, sub, sizeof(sub));
    unsigned bit = 0;
    if (strcmp(type, "nack") == 0)
        bit = !sub[0] ? MD_SDP_FB_NACK : strcmp(sub, "pli") == 0 ? MD_SDP_FB_PLI : 0;
    else if (strcmp(type, "ccm") == 0 && strcmp(sub, "fir") == 0)
        bit = MD_SDP_FB_FIR;
    else if (strcmp(type, "goog-remb") == 0)
        bit = MD_SDP_FB_REMB;
    else if (strcmp(type, "transport-cc") == 0)
        bit = MD_SDP_FB_TWCC;
    if (strcmp(pt, "*") == 0) {
        for (size_t i = 0; i < p->media->n_formats; i++)
            p->media->formats[i].feedback |= bit;
        return 0;
    }
    md_sdp_format *f = format_of(p, pt);
    if (f)
        f->feedback |= bit;
    return 0;
}

/* RFC 5576 4.1: a=ssrc:<ssrc> <attribute>[:<value>] */
static int attr_ssrc(struct parser *p, const char *v)
{
    char id[16];
    uint64_t ssrc;
    if (!p->media || !next_token(&v, id, sizeof(id)) || !parse_uint(id, UINT32_MAX, &ssrc))
        return fail(p, "bad a=ssrc");
    md_sdp_media *m = p->media;
    for (size_t i = 0; i < m->n_ssrcs; i++)
        if (m->ssrcs[i] == ssrc)
            return 0;
    if (m->n_ssrcs >= MD_SDP_MAX_SSRCS)
        return fail(p, "too many SSRCs");
    m->ssrcs[m->n_ssrcs++] = (uint32_t)ssrc;
    return 0;
}

/* RFC 5576 4.2; FID pairs a primary with its RTX stream (RFC 4588 8.1). */
static int attr_ssrc_group(struct parser *p, const char *v)
{
    char sem[16], a[16], b[16];
    uint64_t primary, rtx;
    if (!p->media || !next_token(&v, sem, sizeof(sem)))
        return fail(p, "bad a=ssrc-group");
    if (strcmp(sem, "FID") != 0)
        return 0;
    if (!next_token(&v, a, sizeof(a)) || !next_token(&v, b, sizeof(b)) ||
        !parse_uint(a, UINT32_MAX, &primary) || !parse_uint(b, UINT32_MAX, &rtx))
        return fail(p, "bad a=ssrc-group:FID");
    if (p->media->n_fid >= MD_SDP_MAX_FID)
        return fail(p, "too many a=ssrc-group lines");
    p->media->fid[p->media->n_fid].primary = (uint32_t)primary;
    p->media->fid[p->media->n_fid].rtx = (uint32_t)rtx;
    p->media->n_fid++;
    return 0;
}

/* RFC 8285 8: a=extmap:<id>[/<direction>] <uri> [<attributes>] */
static int attr_extmap(struct parser *p, const char *v)
{
    char id_text[24], uri[128];
    uint64_t id;
    if (!p->media)
        return 0; /* session-level extmap: not used by browsers, ignored */
    if (!next_token(&v, id_text, sizeof(id_text)) || !next_token(&v, uri, sizeof(uri)))
        return fail(p, "bad a=extmap");
    char *slash = strchr(id_text, '/');
    if (slash)
        *slash = '\0';
    if (!parse_uint(id_text, 255, &id) || id == 0 || id == 15)
        return fail(p, "bad a=extmap id");
    md_sdp_media *m = p->media;
    if (m->n_extmaps >= MD_SDP_MAX_EXTMAPS)
        return fail(p, "too many a=extmap lines");
    m->extmaps = g_renew(md_sdp_extmap, m->extmaps, m->n_extmaps + 1);
    m->extmaps[m->n_extmaps].id = (uint16_t)id;
    g_strlcpy(m->extmaps[m->n_extmaps].uri, uri, sizeof(m->extmaps[0].uri));
    m->n_extmaps++;
    return 0;
}

/* RFC 8839 5.1; kept as text for the ICE agent, which parses it fully. */
static int attr_candidate(struct parser *p, const char *v)
{
    if (!p->media)
        return fail(p, "a=candidate at session level");
    md_sdp_media *m = p->media;
    if (m->n_candidates >= MD_SDP_MAX_CANDIDATES)
        return fail(p, "too many a=candidate lines");
    if (strlen("candidate:") + strlen(v) >= MD_SDP_MAX_CANDIDATE)
        return fail(p, "a=candidate too long");
    m->candidates = g_renew(char *, m->candidates, m->n_candidates + 1);
    m->candidates[m->n_candidates++] = g_strconcat("candidate:", v, NULL);
    return 0;
}

/* RFC 8841 5.1: a=sctp-port:<port>, media level. */
static int attr_sctp_port(struct parser *p, const char *v)
{
    uint64_t port;
    if (!p->media)
        return fail(p, "a=sctp-port at session level");
    if (!parse_uint(v, 65535, &port) || port == 0)
        return fail(p, "bad a=sctp-port");
    p->media->sctp_port = (uint16_t)port;
    return 0;
}

/* draft-ietf-mmusic-sctp-sdp-05 8.1 (before RFC 8841): a=sctpmap:<port>
 * <protocol> [<streams>]; only webrtc-datachannel means anything here. */
static int attr_sctpmap(struct parser *p, const char *v)
{
    char port_text[16], protocol[32];
    uint64_t port;
    if (!p->media)
        return fail(p, "a=sctpmap at session level");
    if (!next_token(&v, port_text, sizeof(port_text)) ||
        !next_token(&v, protocol, sizeof(protocol)) || !parse_uint(port_text, 65535, &port) ||
        port == 0)
        return fail(p, "bad a=sctpmap");
    if (strcmp(protocol, "webrtc-datachannel") == 0 &&
        strcmp(port_text, p->media->first_format) == 0) {
        p->media->sctpmap_datachannel = true;
        if (!p->media->sctp_port)
            p->media->sctp_port = (uint16_t)port;
    }
    return 0;
}

/* RFC 8841 6.1: a=max-message-size:<size>, 0 meaning "any size". */
static int attr_max_message_size(struct parser *p, const char *v)
{
    uint64_t size;
    if (!p->media)
        return fail(p, "a=max-message-size at session level");
    if (!parse_uint(v, UINT64_MAX, &size))
        return fail(p, "bad a=max-message-size");
    p->media->max_message_size = size ? size : UINT64_MAX; /* 0: no limit */
    return 0;
}

static const struct {
    const char *name;
    int (*handler)(struct parser *p, const char *value);
} attributes[] = {
    {"group", attr_group},
    {"ice-ufrag", attr_ice_ufrag},
    {"ice-pwd", attr_ice_pwd},
    {"ice-options", attr_ice_options},
    {"fingerprint", attr_fingerprint},
    {"setup", attr_setup},
    {"mid", attr_mid},
    {"rtcp-mux", attr_rtcp_mux},
    {"rtcp-rsize", attr_rtcp_rsize},
    {"bundle-only", attr_bundle_only},
    {"end-of-candidates", attr_end_of_candidates},
    {"sendrecv", attr_sendrecv},
    {"sendonly", attr_sendonly},
    {"recvonly", attr_recvonly},
    {"inactive", attr_inactive},
    {"rtpmap", attr_rtpmap},
    {"fmtp", attr_fmtp},
    {"rtcp-fb", attr_rtcp_fb},
    {"ssrc", attr_ssrc},
    {"ssrc-group", attr_ssrc_group},
    {"extmap", attr_extmap},
    {"candidate", attr_candidate},
    {"sctp-port", attr_sctp_port},
    {"sctpmap", attr_sctpmap},
    {"max-message-size", attr_max_message_size},
};

static int parse_attribute(struct parser *p, char *text)
{
    char *value = strchr(text, ':');
    if (value)
        *value++ = '\0';
    else
        value = text + strlen(text);
    for (size_t i = 0; i < G_N_ELEMENTS(attributes); i++)
        if (strcmp(attributes[i].name, text) == 0)
            return attributes[i].handler(p, value);
    return 0; /* RFC 8866 5.13: unknown attributes are ignored */
}

static void media_clear(md_sdp_media *m)
{
    g_free(m->formats);
    g_free(m->extmaps);
    for (size_t i = 0; i < m->n_candidates; i++)
        g_free(m->candidates[i]);
    g_free(m->candidates);
}

/* RFC 8866 5.14: m=<media> <port>[/<n>] <proto> <fmt> ... */
static int parse_media(struct parser *p, const char *v)
{
    char kind[16], port_text[16], fmt[32];
    uint64_t port;
    uint8_t pts[MD_SDP_MAX_FORMATS];
    size_t n_pts = 0;
    if (p->sdp->n_media >= MD_SDP_MAX_MEDIA)
        return fail(p, "too many m-lines");
    /* counted once it parsed; it allocates nothing before that */
    p->sdp->media = g_renew(md_sdp_media, p->sdp->media, p->sdp->n_media + 1);
    p->media = NULL; /* the array may have moved */
    md_sdp_media *m = &p->sdp->media[p->sdp->n_media];
    memset(m, 0, sizeof(*m));
    if (!next_token(&v, kind, sizeof(kind)) || !next_token(&v, port_text, sizeof(port_text)) ||
        !next_token(&v, m->proto, sizeof(m->proto)))
        return fail(p, "bad m-line");
    char *slash = strchr(port_text, '/');
    if (slash)
        *slash = '\0';
    if (!parse_uint(port_text, 65535, &port))
        return fail(p, "bad port in m-line");
    m->port = (uint16_t)port;
    m->kind = strcmp(kind, "audio") == 0         ? MD_SDP_AUDIO
              : strcmp(kind, "video") == 0       ? MD_SDP_VIDEO
              : strcmp(kind, "application") == 0 ? MD_SDP_APPLICATION
                                                 : MD_SDP_OTHER;
    g_strlcpy(m->kind_name, kind, sizeof(m->kind_name));
    bool rtp = strstr(m->proto, "RTP/") != NULL;
    while (next_token(&v, fmt, sizeof(fmt))) {
        uint64_t pt;
        if (!m->first_format[0])
            g_strlcpy(m->first_format, fmt, sizeof(m->first_format));
        if (!rtp)
            continue;
        if (!parse_uint(fmt, 127, &pt))
            return fail(p, "bad payload type in m-line");
        if (n_pts >= MD_SDP_MAX_FORMATS)
            return fail(p, "too many payload types in m-line");
        if (memchr(pts, (int)pt, n_pts))
            return fail(p, "duplicate payload type in m-line");
        pts[n_pts++] = (uint8_t)pt;
    }
    while (*v == ' ')
        v++;
    if (*v)
        return fail(p, "bad format in m-line");
    if (!m->first_format[0])
        return fail(p, "m-line without formats");
    if (n_pts) {
        m->formats = g_new0(md_sdp_format, n_pts);
        for (size_t i = 0; i < n_pts; i++)
            m->formats[i].pt = pts[i];
        m->n_formats = n_pts;
    }
    p->sdp->n_media++;
    p->media = m;
    return 0;
}

/* RFC 8866 5.2: o=<username> <sess-id> <sess-version> <nettype> <addrtype> <addr> */
static int parse_origin(struct parser *p, const char *v)
{
    char tok[64];
    uint64_t version;
    if (!next_token(&v, tok, sizeof(tok)) || !next_token(&v, tok, sizeof(tok)) ||
        !next_token(&v, tok, sizeof(tok)) || !parse_uint(tok, UINT64_MAX, &version))
        return fail(p, "bad o= line");
    p->sdp->origin_version = version;
    return 0;
}

static int parse_line(struct parser *p, char *line, bool *seen_version)
{
    if (line[0] < 'a' || line[0] > 'z' || line[1] != '=')
        return fail(p, "not a <type>=<value> line");
    for (const char *c = line; *c; c++)
        if ((unsigned char)*c < 0x20 && *c != '\t')
            return fail(p, "control character");
    if (!*seen_version) {
        if (strcmp(line, "v=0") != 0)
            return fail(p, "the first line must be v=0");
        *seen_version = true;
        return 0;
    }
    switch (line[0]) {
    case 'v':
        return fail(p, "second v= line");
    case 'o':
        return p->media ? fail(p, "o= inside a media section") : parse_origin(p, line + 2);
    case 'm':
        return parse_media(p, line + 2);
    case 'a':
        return parse_attribute(p, line + 2);
    default:
        return 0; /* s, i, u, e, p, c, b, t, r, z, k: nothing the gateway needs */
    }
}

int md_sdp_parse(const char *text, size_t len, size_t max_bytes, md_sdp **ret, char *err,
                 size_t err_len)
{
    struct parser p = {.err = err, .err_len = err_len};
    char line[MD_SDP_MAX_LINE + 1];
    bool seen_version = false;
    int r = 0;

    if (max_bytes > MD_SDP_MAX_BYTES)
        max_bytes = MD_SDP_MAX_BYTES;
    if (!text || len == 0 || len > max_bytes)
        return fail(&p, "empty or larger than %zu bytes", max_bytes);
    if (memchr(text, '\0', len))
        return fail(&p, "NUL byte in SDP");

    p.sdp = g_new0(md_sdp, 1);
    for (size_t off = 0; off < len;) {
        const char *start = text + off;
        const char *nl = memchr(start, '\n', len - off);
        size_t n = nl ? (size_t)(nl - start) : len - off;
        off += n + (nl ? 1 : 0);
        if (n > 0 && start[n - 1] == '\r')
            n--; /* RFC 8866 5: CRLF, but a bare LF is accepted */
        if (++p.line_no > MD_SDP_MAX_LINES) {
            r = fail(&p, "more than %d lines", MD_SDP_MAX_LINES);
            goto out;
        }
        if (n > MD_SDP_MAX_LINE) {
            r = fail(&p, "line longer than %d bytes", MD_SDP_MAX_LINE);
            goto out;
        }
        if (n == 0)
            continue;
        memcpy(line, start, n);
        line[n] = '\0';
        r = parse_line(&p, line, &seen_version);
        if (r < 0)
            goto out;
    }
    if (!seen_version)
        r = fail(&p, "no v=0 line");
out:
    if (r < 0) {
        md_sdp_free(p.sdp);
        return r;
    }
    *ret = p.sdp;
    return 0;
}

md_sdp *md_sdp_free(md_sdp *sdp)
{
    if (!sdp)
        return NULL;
    for (size_t i = 0; i < sdp->n_media; i++)
        media_clear(&sdp->media[i]);
    g_free(sdp->media);
    g_free(sdp);
    return NULL;
}
