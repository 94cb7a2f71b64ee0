/*
 * Sanitizer builds only (scripts/test's ASan + UBSan run, leaks fatal):
 * tells LeakSanitizer about a third-party allocation that is leaked by design
 * and that a suppression file cannot match (see md_sanitizer.c).  A no-op in
 * normal builds.  Call once, early in main(), on the main thread.
 */
#ifndef MD_SANITIZER_H
#define MD_SANITIZER_H

void md_sanitizer_init(void);

#endif
