/*
 * GLib keeps quark strings in an array it grows in blocks of 2048 and, by
 * design, never frees a block it replaced (readers take no lock; gquark.c:
 * "This leaks the old quarks array").  The first block is allocated by a
 * GLib constructor; once GStreamer (recorder/, recording export) registers
 * more than 2048 quarks it is unreferenced, and LeakSanitizer reports 16 KiB
 * "leaked" at every exit.  A suppression cannot name it: Debian's GLib has
 * no frame pointers, so the fast unwinder stops at g_malloc and the report
 * looks like any leak of ours through g_malloc.
 *
 * So, in sanitizer builds only, before anything registers many quarks, the
 * current block is found and marked with __lsan_ignore_object(): it is the
 * heap chunk, pointed to from GLib's writable data, whose entries 1 and 2
 * are the strings of quarks 1 and 2.  Only chunks the allocator owns are
 * read (__sanitizer_get_ownership), so a wrong candidate is never
 * dereferenced.  Nothing else is hidden; if the block is not found, the
 * report stays.
 */
#include "md_sanitizer.h"

#if defined(__SANITIZE_ADDRESS__)
#include <glib.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* From the sanitizer runtime (allocator_interface.h, lsan_interface.h). */
int __sanitizer_get_ownership(const volatile void *p);
size_t __sanitizer_get_allocated_size(const volatile void *p);
void __lsan_ignore_object(const void *p);

static bool is_quark_block(uintptr_t v, const char *q1, const char *q2)
{
    if (v == 0 || v % sizeof(void *) != 0 || !__sanitizer_get_ownership((const void *)v) ||
        __sanitizer_get_allocated_size((const void *)v) < 3 * sizeof(char *))
        return false;
    char *const *block = (char *const *)v;
    return block[1] == q1 && block[2] == q2;
}

static bool scan(uintptr_t start, uintptr_t end, const char *q1, const char *q2)
{
    for (uintptr_t p = start; p + sizeof(uintptr_t) <= end; p += sizeof(uintptr_t)) {
        uintptr_t v;
        memcpy(&v, (const void *)p, sizeof(v));
        if (is_quark_block(v, q1, q2)) {
            __lsan_ignore_object((const void *)v);
            return true;
        }
    }
    return false;
}

void md_sanitizer_init(void)
{
    const char *q1 = g_quark_to_string(1), *q2 = g_quark_to_string(2);
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!q1 || !q2 || !maps) {
        if (maps)
            fclose(maps);
        return;
    }
    char line[512];
    bool in_glib = false; /* the mapping before was GLib's (its .bss follows, unnamed) */
    while (fgets(line, sizeof(line), maps)) {
        uintptr_t start, end;
        char perms[8] = "";
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &start, &end, perms) != 3)
            continue;
        bool glib = strstr(line, "/libglib-2.0.so") != NULL;
        bool anonymous = !strchr(line, '/') && !strchr(line, '[');
        /* GLib's .bss is small; never walk into a large mapping (shadow memory). */
        if (perms[0] == 'r' && perms[1] == 'w' && (glib || (in_glib && anonymous)) &&
            end - start <= (1u << 20) && scan(start, end, q1, q2))
            break;
        in_glib = glib;
    }
    fclose(maps);
}
#else
void md_sanitizer_init(void)
{
}
#endif
