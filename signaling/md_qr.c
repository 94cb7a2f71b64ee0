/*
 * The libqrencode adapter (see md_qr.h): one QR symbol, drawn as one SVG
 * path of unit squares so that it scales without blur.
 */
#include "md_qr.h"

#include <errno.h>
#include <glib.h>
#include <qrencode.h>
#include <string.h>

#define QR_TEXT_MAX 1024
#define QUIET 4

int md_qr_svg(const char *text, char **ret_svg)
{
    if (!text || !*text || strlen(text) > QR_TEXT_MAX || !ret_svg)
        return -EINVAL;
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (!qr)
        return errno ? -errno : -ENOMEM;
    int size = qr->width + 2 * QUIET;
    GString *svg = g_string_new(NULL);
    g_string_append_printf(svg,
                           "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                           "shape-rendering=\"crispEdges\"><rect width=\"%d\" height=\"%d\" "
                           "fill=\"#fff\"/><path fill=\"#000\" d=\"",
                           size, size, size, size);
    for (int y = 0; y < qr->width; y++)
        for (int x = 0; x < qr->width; x++)
            if (qr->data[y * qr->width + x] & 1) /* bit 0: dark module */
                g_string_append_printf(svg, "M%d %dh1v1h-1z", x + QUIET, y + QUIET);
    g_string_append(svg, "\"/></svg>");
    QRcode_free(qr);
    *ret_svg = g_string_free(svg, FALSE);
    return 0;
}
