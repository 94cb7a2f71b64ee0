/*
 * RTP/RTCP wire helpers (see md_rtp.h).  Nothing here allocates or keeps
 * state; every read is bounds-checked against the length given, so the
 * functions are safe on hostile input (tests/fuzz/media/fuzz_rtp.c).
 */
#include "md_rtp.h"

#include <errno.h>
#include <string.h>

/* RFC 7983 7 (updating RFC 5764 5.1.2), then RFC 5761 4 for RTP vs RTCP. */
md_packet_kind md_packet_classify(const uint8_t *buf, size_t len)
{
    if (len < 1)
        return MD_PACKET_UNKNOWN;
    uint8_t b = buf[0];
    if (b <= 3)
        return MD_PACKET_STUN;
    if (b >= 20 && b <= 63)
        return MD_PACKET_DTLS;
    if (b >= 128 && b <= 191) {
        if (len < 2)
            return MD_PACKET_UNKNOWN;
        /* RFC 5761 4: RTCP packet types 192..223 sit where RTP has M+PT. */
        if (buf[1] >= 192 && buf[1] <= 223)
            return len >= 8 ? MD_PACKET_RTCP : MD_PACKET_UNKNOWN;
        return len >= MD_RTP_HEADER_LEN ? MD_PACKET_RTP : MD_PACKET_UNKNOWN;
    }
    return MD_PACKET_UNKNOWN;
}

/* RFC 3550 5.1 fixed header, CSRC list, RFC 3550 5.3.1 / RFC 8285 extension. */
int md_rtp_parse(const uint8_t *buf, size_t len, md_rtp_header *ret)
{
    if (len < MD_RTP_HEADER_LEN || (buf[0] >> 6) != 2)
        return -EBADMSG;
    md_rtp_header h = {0};
    size_t csrc = buf[0] & 0x0f;
    h.padding = buf[0] & 0x20;
    h.marker = buf[1] & 0x80;
    h.payload_type = buf[1] & 0x7f;
    h.seq = md_get_u16(buf + 2);
    h.timestamp = md_get_u32(buf + 4);
    h.ssrc = md_get_u32(buf + 8);
    h.header_len = MD_RTP_HEADER_LEN + 4 * csrc;
    if (h.header_len > len)
        return -EBADMSG;
    if (buf[0] & 0x10) {
        if (h.header_len + 4 > len)
            return -EBADMSG;
        h.ext_offset = h.header_len;
        h.ext_profile = md_get_u16(buf + h.ext_offset);
        h.ext_len = 4 * (size_t)md_get_u16(buf + h.ext_offset + 2);
        h.header_len += 4 + h.ext_len;
        if (h.header_len > len)
            return -EBADMSG;
    }
    size_t pad = 0;
    if (h.padding) {
        pad = buf[len - 1];
        if (pad == 0 || pad > len - h.header_len)
            return -EBADMSG;
    }
    h.payload_len = len - h.header_len - pad;
    *ret = h;
    return 0;
}

void md_rtp_set_payload_type(uint8_t *buf, uint8_t pt)
{
    buf[1] = (uint8_t)((buf[1] & 0x80) | (pt & 0x7f));
}

void md_rtp_set_seq(uint8_t *buf, uint16_t seq)
{
    md_put_u16(buf + 2, seq);
}

void md_rtp_set_timestamp(uint8_t *buf, uint32_t ts)
{
    md_put_u32(buf + 4, ts);
}

void md_rtp_set_ssrc(uint8_t *buf, uint32_t ssrc)
{
    md_put_u32(buf + 8, ssrc);
}

size_t md_rtp_strip_extensions(uint8_t *buf, size_t len, const md_rtp_header *h)
{
    if (!h->ext_offset)
        return len;
    size_t block = 4 + h->ext_len;
    size_t tail = h->ext_offset + block;
    memmove(buf + h->ext_offset, buf + tail, len - tail);
    buf[0] &= (uint8_t)~0x10;
    return len - block;
}

/* Finds element id in the block's data; the one-byte form stops at id 15
 * (RFC 8285 4.2), both skip padding bytes (0). */
static bool find_element(const uint8_t *d, size_t n, bool two_byte, uint8_t id, const uint8_t **ret,
                         size_t *ret_len)
{
    size_t off = 0;
    while (off < n) {
        if (d[off] == 0) {
            off++;
            continue;
        }
        uint8_t eid;
        size_t elen, hdr;
        if (two_byte) {
            if (n - off < 2)
                return false;
            eid = d[off];
            elen = d[off + 1];
            hdr = 2;
        } else {
            eid = d[off] >> 4;
            elen = (size_t)(d[off] & 0x0f) + 1;
            hdr = 1;
            if (eid == 15)
                return false;
        }
        if (elen > n - off - hdr)
            return false;
        if (eid == id) {
            *ret = d + off + hdr;
            *ret_len = elen;
            return true;
        }
        off += hdr + elen;
    }
    return false;
}

size_t md_rtp_rewrite_extensions(uint8_t *buf, size_t len, const md_rtp_header *h, uint8_t src_id,
                                 uint8_t dst_id)
{
    if (!h->ext_offset)
        return len;
    bool one_byte = h->ext_profile == 0xBEDE;
    bool two_byte = (h->ext_profile & 0xFFF0) == 0x1000;
    const uint8_t *data;
    size_t n;
    if (!src_id || !dst_id || dst_id > 14 || (!one_byte && !two_byte) ||
        (one_byte && src_id > 14) ||
        !find_element(buf + h->ext_offset + 4, h->ext_len, two_byte, src_id, &data, &n) || n < 1 ||
        n > 16)
        return md_rtp_strip_extensions(buf, len, h);
    /* 1 + n <= the element's old size, so the new block never grows; copy
     * the data first, it may overlap what is written. */
    uint8_t value[16];
    memcpy(value, data, n);
    size_t words = (1 + n + 3) / 4;
    uint8_t *b = buf + h->ext_offset;
    md_put_u16(b, 0xBEDE);
    md_put_u16(b + 2, (uint16_t)words);
    b[4] = (uint8_t)(dst_id << 4 | (n - 1));
    memcpy(b + 5, value, n);
    memset(b + 5 + n, 0, 4 * words - 1 - n);
    size_t old_tail = h->ext_offset + 4 + h->ext_len;
    size_t new_tail = h->ext_offset + 4 + 4 * words;
    memmove(buf + new_tail, buf + old_tail, len - old_tail);
    buf[0] |= 0x10;
    return len - (old_tail - new_tail);
}

/* RFC 7741 4.2 payload descriptor, then 4.3 payload header: P bit 0 = key. */
bool md_rtp_vp8_is_keyframe(const uint8_t *p, size_t len)
{
    size_t off = 1;
    if (len < 1)
        return false;
    bool start = p[0] & 0x10;
    uint8_t pid = p[0] & 0x07;
    if (p[0] & 0x80) {
        if (len < 2)
            return false;
        uint8_t x = p[1];
        off = 2;
        if (x & 0x80) {
            if (off >= len)
                return false;
            off += (p[off] & 0x80) ? 2 : 1;
        }
        if (x & 0x40)
            off++;
        if (x & 0x30)
            off++;
    }
    if (!start || pid != 0 || off >= len)
        return false;
    return (p[off] & 0x01) == 0;
}

/* RFC 3550 A.2 validity checks, applied to each packet in turn. */
int md_rtcp_next(const uint8_t *buf, size_t len, size_t *offset, md_rtcp_packet *ret)
{
    size_t off = *offset;
    if (off >= len)
        return 0;
    if (len - off < MD_RTCP_HEADER_LEN || (buf[off] >> 6) != 2)
        return -EBADMSG;
    size_t plen = 4 * ((size_t)md_get_u16(buf + off + 2) + 1);
    if (plen > len - off)
        return -EBADMSG;
    if ((buf[off] & 0x20) && off + plen != len)
        return -EBADMSG;
    ret->type = buf[off + 1];
    ret->count = buf[off] & 0x1f;
    ret->data = buf + off;
    ret->len = plen;
    *offset = off + plen;
    return 1;
}

uint32_t md_rtcp_sender_ssrc(const md_rtcp_packet *p)
{
    return p->len >= 8 ? md_get_u32(p->data + 4) : 0;
}

uint32_t md_rtcp_media_ssrc(const md_rtcp_packet *p)
{
    return p->len >= 12 ? md_get_u32(p->data + 8) : 0;
}

bool md_rtcp_is_remb(const md_rtcp_packet *p, uint64_t *ret_bitrate, unsigned *ret_n_ssrcs)
{
    if (p->type != MD_RTCP_PSFB || p->count != MD_PSFB_AFB || p->len < 20)
        return false;
    if (memcmp(p->data + 12, "REMB", 4) != 0)
        return false;
    unsigned n = p->data[16];
    if (20 + 4 * (size_t)n > p->len)
        return false;
    unsigned exp = p->data[17] >> 2;
    uint64_t mantissa = (uint64_t)(p->data[17] & 0x03) << 16 | md_get_u16(p->data + 18);
    uint64_t bitrate = exp > 45 ? UINT64_MAX : mantissa << exp;
    if (exp <= 45 && (bitrate >> exp) != mantissa)
        bitrate = UINT64_MAX;
    if (ret_bitrate)
        *ret_bitrate = bitrate;
    if (ret_n_ssrcs)
        *ret_n_ssrcs = n;
    return true;
}

/* RFC 4585 6.2.1: each FCI is PID + a bitmask of the 16 following. */
int md_rtcp_nack_foreach(const md_rtcp_packet *p, bool (*fn)(uint16_t seq, void *ud), void *ud)
{
    if (p->type != MD_RTCP_RTPFB || p->count != MD_RTPFB_NACK || p->len < 16)
        return -EBADMSG;
    int visited = 0;
    for (size_t off = 12; off + 4 <= p->len; off += 4) {
        uint16_t pid = md_get_u16(p->data + off);
        uint16_t blp = md_get_u16(p->data + off + 2);
        visited++;
        if (!fn(pid, ud))
            return visited;
        for (unsigned bit = 0; bit < 16; bit++) {
            if (!(blp & (1u << bit)))
                continue;
            visited++;
            if (!fn((uint16_t)(pid + bit + 1), ud))
                return visited;
        }
    }
    return visited;
}

/* RFC 4585 6.3.1: PLI has no FCI. */
int md_rtcp_build_pli(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc)
{
    if (cap < 12)
        return -ENOBUFS;
    out[0] = 0x80 | MD_PSFB_PLI;
    out[1] = MD_RTCP_PSFB;
    md_put_u16(out + 2, 2);
    md_put_u32(out + 4, sender_ssrc);
    md_put_u32(out + 8, media_ssrc);
    return 12;
}

/* RFC 5104 4.3.1.1: the header's media SSRC is 0, the target is in the FCI. */
int md_rtcp_build_fir(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                      uint8_t fir_seq)
{
    if (cap < 20)
        return -ENOBUFS;
    out[0] = 0x80 | MD_PSFB_FIR;
    out[1] = MD_RTCP_PSFB;
    md_put_u16(out + 2, 4);
    md_put_u32(out + 4, sender_ssrc);
    md_put_u32(out + 8, 0);
    md_put_u32(out + 12, media_ssrc);
    out[16] = fir_seq;
    out[17] = out[18] = out[19] = 0;
    return 20;
}

/* RFC 3550 6.4.1: header, SSRC, NTP, RTP timestamp, packet and octet counts. */
int md_rtcp_build_sr(uint8_t *out, size_t cap, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts,
                     uint32_t packets, uint32_t octets)
{
    if (cap < 28)
        return -ENOBUFS;
    out[0] = 0x80;
    out[1] = MD_RTCP_SR;
    md_put_u16(out + 2, 6);
    md_put_u32(out + 4, ssrc);
    md_put_u32(out + 8, (uint32_t)(ntp >> 32));
    md_put_u32(out + 12, (uint32_t)ntp);
    md_put_u32(out + 16, rtp_ts);
    md_put_u32(out + 20, packets);
    md_put_u32(out + 24, octets);
    return 28;
}

/* RFC 4585 6.2.1: PID is the first lost packet, bit i of BLP is PID + i + 1. */
int md_rtcp_build_nack(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                       uint16_t first, unsigned count)
{
    if (count == 0 || count > MD_RTCP_NACK_MAX_SEQS)
        return -EINVAL;
    unsigned fcis = (count + 16) / 17;
    size_t len = 12 + 4 * (size_t)fcis;
    if (cap < len)
        return -ENOBUFS;
    out[0] = 0x80 | MD_RTPFB_NACK;
    out[1] = MD_RTCP_RTPFB;
    md_put_u16(out + 2, (uint16_t)(len / 4 - 1));
    md_put_u32(out + 4, sender_ssrc);
    md_put_u32(out + 8, media_ssrc);
    for (unsigned i = 0; i < fcis; i++) {
        unsigned done = i * 17, rest = count - done;
        uint16_t blp = 0;
        for (unsigned bit = 0; bit < 16 && bit + 1 < rest; bit++)
            blp |= (uint16_t)(1u << bit);
        md_put_u16(out + 12 + 4 * i, (uint16_t)(first + done));
        md_put_u16(out + 14 + 4 * i, blp);
    }
    return (int)len;
}
