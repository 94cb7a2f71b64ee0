/*
 * Pixel size of a still photo, read from its image header (DESIGN 4: the
 * evidence records a still's resolution, so the gateway reads it from the
 * bytes it stored rather than trusting the sender's claim).  Only the
 * formats a still may have: PNG and baseline/progressive JPEG.  Pure
 * functions of untrusted input; fuzzed by tests/fuzz/datachannel/fuzz_image.c.
 */
#ifndef MD_IMAGE_H
#define MD_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* How much of the file's start md_image_size() may need: a JPEG's frame
 * header follows its APPn segments (JFIF, Exif), which fit in this. */
#define MD_IMAGE_HEAD_MAX 65536

/* Width and height of the PNG or JPEG that starts with buf[0..len).
 * -MD_E_FILE_TYPE if it is neither, -MD_E_STILL_RESOLUTION if the header
 * is malformed, is not within buf, or gives a zero side. */
int md_image_size(const uint8_t *buf, size_t len, uint32_t *ret_width, uint32_t *ret_height);

#endif
