/*
 * QR codes for the admin console: the otpauth:// URI of a new TOTP secret,
 * shown once as an SVG image for an authenticator app to scan.  The only
 * file that includes libqrencode.  Plain functions, any thread.
 */
#ifndef MD_QR_H
#define MD_QR_H

/* An SVG document (g_malloc'd) of text as a QR code, error correction level
 * M, four modules of quiet zone (ISO/IEC 18004 7.3.7).  -EINVAL for empty or
 * over-long text (the URI is short; the cap is 1024 bytes). */
int md_qr_svg(const char *text, char **ret_svg);

#endif
