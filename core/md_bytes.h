/*
 * Big-endian (network order) reads and writes of 16-, 32- and 64-bit
 * integers at unaligned addresses, for every wire and file format of the
 * project: RTP/RTCP (RFC 3550 2), DCEP (RFC 8832 5), the file-channel chunk
 * header, image headers (PNG, JPEG) and the evidence container.  The caller
 * checks the length first; these only move bytes.
 */
#ifndef MD_BYTES_H
#define MD_BYTES_H

#include <stdint.h>

static inline uint16_t md_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t md_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t md_get_u64(const uint8_t *p)
{
    return (uint64_t)md_get_u32(p) << 32 | md_get_u32(p + 4);
}

static inline void md_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void md_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void md_put_u64(uint8_t *p, uint64_t v)
{
    md_put_u32(p, (uint32_t)(v >> 32));
    md_put_u32(p + 4, (uint32_t)v);
}

#endif
