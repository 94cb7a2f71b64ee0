/*
 * The database schema as an ordered list of migrations.  Migration i (1-based)
 * moves the schema from version i-1 to i; a store applies the missing ones in
 * one transaction each at open.  Never edit a released migration: add one.
 * Portable SQL only (see md_store.h).
 */
#ifndef MD_SCHEMA_H
#define MD_SCHEMA_H

#include <stddef.h>

extern const char *const md_schema_migrations[];
extern const size_t md_schema_n_migrations;

#endif
