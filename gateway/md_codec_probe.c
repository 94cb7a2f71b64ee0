/*
 * Picture size probes for VP8 and H.264 keyframes (see md_codec_probe.h).
 * The H.264 path copies at most SPS_MAX bytes of an SPS into a stack buffer
 * while dropping emulation prevention bytes (H.264 7.4.1), then reads it with
 * a bounded Exp-Golomb reader (H.264 9.1) that fails, rather than reads past
 * the end, on truncated input.  Only the fields up to frame cropping are
 * read; the VUI that follows is ignored.
 */
#include "md_codec_probe.h"

#include <errno.h>
#include <stdbool.h>

#define SPS_MAX 256 /* an SPS up to its cropping fields is far smaller */

static bool sane(uint64_t w, uint64_t h)
{
    return w > 0 && h > 0 && w <= MD_PROBE_MAX_DIMENSION && h <= MD_PROBE_MAX_DIMENSION;
}

/* RFC 7741 4.2: the payload descriptor; returns its length, 0 if the packet
 * does not start partition 0 of a frame, -EBADMSG if truncated. */
static int vp8_descriptor_len(const uint8_t *p, size_t len)
{
    size_t off = 1;
    if (len < 1)
        return -EBADMSG;
    bool start = p[0] & 0x10;
    unsigned pid = p[0] & 0x07;
    if (p[0] & 0x80) { /* X: extension byte */
        if (len < 2)
            return -EBADMSG;
        uint8_t x = p[1];
        off = 2;
        if (x & 0x80) { /* I: picture ID, 7 or 15 bits (M) */
            if (off >= len)
                return -EBADMSG;
            off += (p[off] & 0x80) ? 2 : 1;
        }
        if (x & 0x40) /* L: TL0PICIDX */
            off++;
        if (x & 0x30) /* T or K: TID/Y/KEYIDX */
            off++;
    }
    if (off > len)
        return -EBADMSG;
    return start && pid == 0 ? (int)off : 0;
}

int md_probe_vp8(const uint8_t *payload, size_t len, unsigned *ret_width, unsigned *ret_height)
{
    int off = vp8_descriptor_len(payload, len);
    if (off <= 0)
        return off;
    const uint8_t *f = payload + off;
    size_t n = len - (size_t)off;
    if (n < 3 || (f[0] & 0x01)) /* RFC 6386 9.1: frame tag, P = 0 for a keyframe */
        return n < 3 ? -EBADMSG : 0;
    if (n < 10)
        return -EBADMSG;
    if (f[3] != 0x9d || f[4] != 0x01 || f[5] != 0x2a) /* start code */
        return -EBADMSG;
    unsigned w = (unsigned)(f[6] | f[7] << 8) & 0x3fff; /* top 2 bits: scaling */
    unsigned h = (unsigned)(f[8] | f[9] << 8) & 0x3fff;
    if (w == 0 || h == 0)
        return -EBADMSG;
    *ret_width = w;
    *ret_height = h;
    return 1;
}

/* ---- H.264 ---- */

typedef struct bit_reader {
    const uint8_t *buf;
    size_t bits, pos;
    bool error;
} bit_reader;

static unsigned read_bit(bit_reader *r)
{
    if (r->pos >= r->bits) {
        r->error = true;
        return 0;
    }
    unsigned b = (r->buf[r->pos / 8] >> (7 - r->pos % 8)) & 1;
    r->pos++;
    return b;
}

static uint32_t read_bits(bit_reader *r, unsigned n)
{
    uint32_t v = 0;
    while (n--)
        v = v << 1 | read_bit(r);
    return v;
}

/* H.264 9.1: ue(v).  More than 31 leading zeros cannot fit and is an error. */
static uint32_t read_ue(bit_reader *r)
{
    unsigned zeros = 0;
    while (!r->error && read_bit(r) == 0) {
        if (++zeros > 31) {
            r->error = true;
            return 0;
        }
    }
    if (r->error)
        return 0;
    return (uint32_t)(((uint64_t)1 << zeros) - 1 + read_bits(r, zeros));
}

static int32_t read_se(bit_reader *r)
{
    uint32_t k = read_ue(r);
    return (k & 1) ? (int32_t)((k + 1) / 2) : -(int32_t)(k / 2);
}

/* H.264 7.3.2.1.1.1 */
static void skip_scaling_list(bit_reader *r, unsigned size)
{
    int last = 8, next = 8;
    for (unsigned j = 0; j < size && !r->error; j++) {
        if (next != 0) {
            int32_t delta = read_se(r);
            if (delta < -128 || delta > 127) {
                r->error = true;
                return;
            }
            next = (last + delta + 256) % 256;
        }
        last = next == 0 ? last : next;
    }
}

static bool high_profile(unsigned profile_idc)
{
    static const uint8_t profiles[] = {100, 110, 122, 244, 44,  83, 86,
                                       118, 128, 138, 139, 134, 135};
    for (size_t i = 0; i < sizeof(profiles); i++)
        if (profile_idc == profiles[i])
            return true;
    return false;
}

/* H.264 7.3.2.1.1, up to frame_cropping; the size is 7.4.2.1.1 (7-18 .. 7-21). */
static int parse_sps_rbsp(const uint8_t *rbsp, size_t len, unsigned *ret_width,
                          unsigned *ret_height)
{
    bit_reader r = {rbsp, len * 8, 0, false};
    unsigned profile_idc = read_bits(&r, 8);
    read_bits(&r, 16);    /* constraint flags, level_idc */
    if (read_ue(&r) > 31) /* seq_parameter_set_id */
        return -EBADMSG;
    uint32_t chroma_format_idc = 1;
    bool separate_planes = false;
    if (high_profile(profile_idc)) {
        chroma_format_idc = read_ue(&r);
        if (chroma_format_idc > 3)
            return -EBADMSG;
        if (chroma_format_idc == 3)
            separate_planes = read_bit(&r);
        if (read_ue(&r) > 6 || read_ue(&r) > 6) /* bit depths - 8 */
            return -EBADMSG;
        read_bit(&r);       /* qpprime_y_zero_transform_bypass_flag */
        if (read_bit(&r)) { /* seq_scaling_matrix_present_flag */
            unsigned lists = chroma_format_idc != 3 ? 8 : 12;
            for (unsigned i = 0; i < lists && !r.error; i++)
                if (read_bit(&r))
                    skip_scaling_list(&r, i < 6 ? 16 : 64);
        }
    }
    if (read_ue(&r) > 12) /* log2_max_frame_num_minus4 */
        return -EBADMSG;
    uint32_t poc_type = read_ue(&r);
    if (poc_type == 0) {
        if (read_ue(&r) > 12) /* log2_max_pic_order_cnt_lsb_minus4 */
            return -EBADMSG;
    } else if (poc_type == 1) {
        read_bit(&r);
        read_se(&r);
        read_se(&r);
        uint32_t cycle = read_ue(&r);
        if (cycle > 255)
            return -EBADMSG;
        for (uint32_t i = 0; i < cycle && !r.error; i++)
            read_se(&r);
    } else if (poc_type != 2) {
        return -EBADMSG;
    }
    read_ue(&r);  /* max_num_ref_frames */
    read_bit(&r); /* gaps_in_frame_num_value_allowed_flag */
    uint64_t mbs_w = (uint64_t)read_ue(&r) + 1;
    uint64_t map_units_h = (uint64_t)read_ue(&r) + 1;
    unsigned frame_mbs_only = read_bit(&r);
    if (!frame_mbs_only)
        read_bit(&r); /* mb_adaptive_frame_field_flag */
    read_bit(&r);     /* direct_8x8_inference_flag */
    uint64_t crop_l = 0, crop_r = 0, crop_t = 0, crop_b = 0;
    if (read_bit(&r)) {
        crop_l = read_ue(&r);
        crop_r = read_ue(&r);
        crop_t = read_ue(&r);
        crop_b = read_ue(&r);
    }
    if (r.error)
        return -EBADMSG;
    /* 7.4.2.1.1: crop units depend on the chroma format (Table 6-1). */
    unsigned array_type = separate_planes ? 0 : chroma_format_idc;
    uint64_t sub_w = array_type == 1 || array_type == 2 ? 2 : 1;
    uint64_t sub_h = array_type == 1 ? 2 : 1;
    uint64_t unit_x = array_type == 0 ? 1 : sub_w;
    uint64_t unit_y = (array_type == 0 ? 1 : sub_h) * (2 - frame_mbs_only);
    uint64_t w = mbs_w * 16, h = (2 - frame_mbs_only) * map_units_h * 16;
    uint64_t cw = unit_x * (crop_l + crop_r), ch = unit_y * (crop_t + crop_b);
    if (w > MD_PROBE_MAX_DIMENSION || h > MD_PROBE_MAX_DIMENSION || cw >= w || ch >= h)
        return -EBADMSG;
    if (!sane(w - cw, h - ch))
        return -EBADMSG;
    *ret_width = (unsigned)(w - cw);
    *ret_height = (unsigned)(h - ch);
    return 1;
}

int md_probe_h264_sps(const uint8_t *nal, size_t len, unsigned *ret_width, unsigned *ret_height)
{
    uint8_t rbsp[SPS_MAX];
    size_t n = 0, zeros = 0;
    if (len < 2 || (nal[0] & 0x1f) != 7)
        return len < 1 ? -EBADMSG : 0;
    /* 7.4.1: 00 00 03 -> 00 00; the SPS fields we need come early. */
    for (size_t i = 1; i < len && n < sizeof(rbsp); i++) {
        if (zeros >= 2 && nal[i] == 0x03) {
            zeros = 0;
            continue;
        }
        zeros = nal[i] == 0 ? zeros + 1 : 0;
        rbsp[n++] = nal[i];
    }
    return parse_sps_rbsp(rbsp, n, ret_width, ret_height);
}

enum { NAL_SPS = 7, NAL_STAP_A = 24, NAL_FU_A = 28 };

int md_probe_h264(const uint8_t *p, size_t len, unsigned *ret_width, unsigned *ret_height)
{
    if (len < 1)
        return -EBADMSG;
    unsigned type = p[0] & 0x1f;
    if (type == NAL_SPS) /* RFC 6184 5.6: single NAL unit packet */
        return md_probe_h264_sps(p, len, ret_width, ret_height);
    if (type == NAL_STAP_A) { /* RFC 6184 5.7.1: 16-bit size, then the NAL unit */
        size_t off = 1;
        while (off + 2 <= len) {
            size_t size = (size_t)(p[off] << 8 | p[off + 1]);
            off += 2;
            if (size == 0 || size > len - off)
                return -EBADMSG;
            if ((p[off] & 0x1f) == NAL_SPS)
                return md_probe_h264_sps(p + off, size, ret_width, ret_height);
            off += size;
        }
        return off == len ? 0 : -EBADMSG;
    }
    if (type == NAL_FU_A) { /* RFC 6184 5.8: only a start fragment has the SPS head */
        if (len < 2)
            return -EBADMSG;
        if (!(p[1] & 0x80) || (p[1] & 0x1f) != NAL_SPS)
            return 0;
        uint8_t head[SPS_MAX];
        size_t n = len - 1 < sizeof(head) ? len - 1 : sizeof(head);
        head[0] = (uint8_t)((p[0] & 0xe0) | NAL_SPS); /* rebuild the NAL header */
        for (size_t i = 1; i < n; i++)
            head[i] = p[i + 1];
        return md_probe_h264_sps(head, n, ret_width, ret_height);
    }
    return 0; /* other NAL units; STAP-B, MTAP, FU-B need packetization-mode 2 */
}
