/*
 * Picture size from the first RTP payload of a video keyframe, without
 * decoding: VP8 (RFC 7741 4.2 payload descriptor, then the RFC 6386 9.1
 * keyframe header) and H.264 (RFC 6184 5.6/5.7.1/5.8 single NAL unit,
 * STAP-A and FU-A packets, then the sequence parameter set, ITU-T H.264
 * 7.3.2.1.1).  Pure, bounded by the length given, allocation free: safe on
 * the packet path of any thread and on hostile input
 * (tests/fuzz/media/fuzz_codec.c).
 */
#ifndef MD_CODEC_PROBE_H
#define MD_CODEC_PROBE_H

#include <stddef.h>
#include <stdint.h>

/* Largest dimension accepted; anything bigger is treated as malformed. */
#define MD_PROBE_MAX_DIMENSION 16384

/* All return 1 with the width and height set when the payload carries the
 * picture size, 0 when it does not (not a keyframe start, no SPS), and
 * -EBADMSG when it claims to but is malformed.  Outputs untouched unless 1. */
int md_probe_vp8(const uint8_t *payload, size_t len, unsigned *ret_width, unsigned *ret_height);
int md_probe_h264(const uint8_t *payload, size_t len, unsigned *ret_width, unsigned *ret_height);

/* An SPS NAL unit (header byte first, emulation prevention bytes still in). */
int md_probe_h264_sps(const uint8_t *nal, size_t len, unsigned *ret_width, unsigned *ret_height);

#endif
