/*
 * md_image_size(): the pixel size of a still from its PNG IHDR or JPEG frame
 * header (gateway/md_image.c), which the gateway compares with the size the
 * tablet claims.
 */
#include "md_err.h"
#include "md_image.h"
#include "md_test.h"

#include <string.h>

static const uint8_t png_640x480[] = {
    0x89, 'P', 'N',  'G',  0x0d, 0x0a, 0x1a, 0x0a, /* signature */
    0,    0,   0,    13,   'I',  'H',  'D',  'R',  /* first chunk */
    0,    0,   0x02, 0x80, 0,    0,    0x01, 0xe0, /* 640 x 480 */
    8,    2,   0,    0,    0,    0,    0,    0,    0};

/* SOI, APP0 (JFIF, 16 bytes), a DQT of 67 bytes, fill bytes, SOF2 with
 * Y = 1080, X = 1920. */
static size_t jpeg(uint8_t *out, uint8_t sof, unsigned w, unsigned h)
{
    size_t n = 0;
    const uint8_t head[] = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F',
                            0,    1,    1,    0,    0, 1,  0,   1,   0,   0};
    memcpy(out, head, sizeof(head));
    n = sizeof(head);
    out[n++] = 0xff, out[n++] = 0xdb, out[n++] = 0, out[n++] = 67;
    memset(out + n, 1, 65);
    n += 65;
    out[n++] = 0xff; /* a fill byte before the marker (T.81 B.1.1.2) */
    const uint8_t frame[] = {
        0xff, sof, 0, 17, 8, (uint8_t)(h >> 8), (uint8_t)h, (uint8_t)(w >> 8), (uint8_t)w, 3};
    memcpy(out + n, frame, sizeof(frame));
    n += sizeof(frame);
    memset(out + n, 0x11, 9);
    return n + 9;
}

static void test_png(void)
{
    uint32_t w = 0, h = 0;
    ASSERT_EQ(md_image_size(png_640x480, sizeof(png_640x480), &w, &h), 0);
    ASSERT_EQ(w, 640);
    ASSERT_EQ(h, 480);
    ASSERT_EQ(md_image_size(png_640x480, 20, &w, &h), -MD_E_STILL_RESOLUTION); /* cut */
    uint8_t bad[sizeof(png_640x480)];
    memcpy(bad, png_640x480, sizeof(bad));
    bad[12] = 'i'; /* the first chunk is not IHDR */
    ASSERT_EQ(md_image_size(bad, sizeof(bad), &w, &h), -MD_E_STILL_RESOLUTION);
    memcpy(bad, png_640x480, sizeof(bad));
    memset(bad + 16, 0, 4); /* width 0 */
    ASSERT_EQ(md_image_size(bad, sizeof(bad), &w, &h), -MD_E_STILL_RESOLUTION);
}

static void test_jpeg(void)
{
    uint8_t buf[256];
    uint32_t w = 0, h = 0;
    size_t n = jpeg(buf, 0xc2, 1920, 1080);
    ASSERT_EQ(md_image_size(buf, n, &w, &h), 0);
    ASSERT_EQ(w, 1920);
    ASSERT_EQ(h, 1080);
    n = jpeg(buf, 0xc0, 4032, 3024);
    ASSERT_EQ(md_image_size(buf, n, &w, &h), 0);
    ASSERT_EQ(w, 4032);
    ASSERT_EQ(h, 3024);
    /* The frame header beyond what was received: not found. */
    ASSERT_EQ(md_image_size(buf, 60, &w, &h), -MD_E_STILL_RESOLUTION);
    /* Y = 0 (height given later by DNL) is not a still's. */
    n = jpeg(buf, 0xc0, 640, 0);
    ASSERT_EQ(md_image_size(buf, n, &w, &h), -MD_E_STILL_RESOLUTION);
    /* DHT (C4) is not a frame header: skipped, and then nothing follows. */
    n = jpeg(buf, 0xc4, 640, 480);
    ASSERT_EQ(md_image_size(buf, n, &w, &h), -MD_E_STILL_RESOLUTION);
}

static void test_other_types(void)
{
    uint32_t w, h;
    ASSERT_EQ(md_image_size((const uint8_t *)"%PDF-1.4\n", 9, &w, &h), -MD_E_FILE_TYPE);
    ASSERT_EQ(md_image_size(NULL, 0, &w, &h), -MD_E_FILE_TYPE);
}

int main(void)
{
    RUN(test_png);
    RUN(test_jpeg);
    RUN(test_other_types);
    return 0;
}
