/*
 * Image headers (see md_image.h).
 *
 * PNG (ISO/IEC 15948, 5.2 and 11.2.2): the 8-byte signature, then the first
 * chunk must be IHDR, length 13: width u32, height u32 (big-endian, 1..2^31-1).
 *
 * JPEG (ITU-T T.81, B.1.1 and B.2.2): SOI (FF D8), then marker segments.  A
 * marker is FF followed by a code; any number of extra FF fill bytes may
 * precede the code (B.1.1.2).  RSTn (D0..D7) and TEM (01) stand alone; every
 * other segment carries a 2-byte length that counts itself.  The frame
 * header SOFn (C0..CF except C4 DHT, C8 JPG and CC DAC) holds P (1 byte),
 * Y = lines (2), X = samples per line (2).  Y = 0 defers the height to a DNL
 * marker after the first scan, which a still does not need: refused.
 */
#include "md_image.h"
#include "md_bytes.h"
#include "md_err.h"

#include <stdbool.h>
#include <string.h>

static int png_size(const uint8_t *buf, size_t len, uint32_t *w, uint32_t *h)
{
    if (len < 8 + 8 + 13 || md_get_u32(buf + 8) != 13 || memcmp(buf + 12, "IHDR", 4) != 0)
        return -MD_E_STILL_RESOLUTION;
    *w = md_get_u32(buf + 16);
    *h = md_get_u32(buf + 20);
    if (*w == 0 || *h == 0 || *w > INT32_MAX || *h > INT32_MAX)
        return -MD_E_STILL_RESOLUTION;
    return 0;
}

static bool is_sof(uint8_t code)
{
    return code >= 0xc0 && code <= 0xcf && code != 0xc4 && code != 0xc8 && code != 0xcc;
}

static int jpeg_size(const uint8_t *buf, size_t len, uint32_t *w, uint32_t *h)
{
    size_t i = 2; /* after SOI */
    for (;;) {
        if (i >= len || buf[i] != 0xff)
            return -MD_E_STILL_RESOLUTION;
        while (i < len && buf[i] == 0xff) /* fill bytes */
            i++;
        if (i >= len)
            return -MD_E_STILL_RESOLUTION;
        uint8_t code = buf[i++];
        if ((code >= 0xd0 && code <= 0xd7) || code == 0x01)
            continue; /* no length */
        if (code == 0xd8 || code == 0xd9 || code == 0xda || code == 0x00)
            return -MD_E_STILL_RESOLUTION; /* SOI again, EOI or a scan before any frame header */
        if (len - i < 2)
            return -MD_E_STILL_RESOLUTION;
        uint32_t seg = md_get_u16(buf + i);
        if (seg < 2 || len - i < seg)
            return -MD_E_STILL_RESOLUTION;
        if (is_sof(code)) {
            if (seg < 2 + 5)
                return -MD_E_STILL_RESOLUTION;
            *h = md_get_u16(buf + i + 3);
            *w = md_get_u16(buf + i + 5);
            return *w && *h ? 0 : -MD_E_STILL_RESOLUTION;
        }
        i += seg;
    }
}

int md_image_size(const uint8_t *buf, size_t len, uint32_t *ret_width, uint32_t *ret_height)
{
    static const uint8_t png[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    uint32_t w = 0, h = 0;
    int r;
    if (!buf)
        return -MD_E_FILE_TYPE;
    if (len >= sizeof(png) && memcmp(buf, png, sizeof(png)) == 0)
        r = png_size(buf, len, &w, &h);
    else if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
        r = jpeg_size(buf, len, &w, &h);
    else
        return -MD_E_FILE_TYPE;
    if (r == 0) {
        *ret_width = w;
        *ret_height = h;
    }
    return r;
}
