/*
 * Files that appear whole or not at all and outlive a crash: the content goes
 * to a temporary file beside the final path ("<path>.XXXXXX.tmp"), is
 * fsync'd, renamed (or linked) into place, and then the directory is fsync'd
 * so that the new name is durable too.  A reader never sees half a file, and
 * a failed call leaves the earlier file as it was.  A crash can leave a
 * temporary behind; its name ends in ".tmp" (md_evidence_sweep_partial
 * removes those under the evidence directory).
 *
 * The one atomic write of the project: certs/ (keys, certificates, CRL),
 * md_crypto (the audit signing key) and md_evidence (session keys) use it.
 * No state; any thread.
 */
#ifndef MD_DURABLE_H
#define MD_DURABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* A file written under a temporary name beside its final path. */
typedef struct md_durable {
    char *path;
    char *tmp;
} md_durable;

/* Writes obj to f: 0, or a negative code (md_durable_stage returns it). */
typedef int (*md_durable_writer)(FILE *f, const void *obj);

/* Creates the temporary file with mode (0600 at first and then mode exactly,
 * so a key is never readable by others, even for a moment), writes obj
 * through writer and fsyncs it.  The directory must exist.  On success *d
 * owns the temporary file; on failure nothing is left behind. */
int md_durable_stage(md_durable *d, const char *path, mode_t mode, md_durable_writer writer,
                     const void *obj);
/* Moves a staged file into place and fsyncs the directory.  Without replace
 * an existing file wins (-EEXIST): link(2) fails where rename(2) would
 * overwrite.  On failure the temporary stays for md_durable_clear. */
int md_durable_commit(md_durable *d, bool replace);
/* Removes the temporary file if not committed; frees; safe on a zeroed struct. */
void md_durable_clear(md_durable *d);

/* Stages len bytes of buf and commits them over path. */
int md_durable_write(const char *path, mode_t mode, const void *buf, size_t len);

/* fsync(2) of a directory: makes a rename, link or unlink in it durable. */
int md_durable_sync_dir(const char *dir);

#endif
