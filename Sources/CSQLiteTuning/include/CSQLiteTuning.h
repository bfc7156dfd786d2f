#ifndef CSQLITE_TUNING_H
#define CSQLITE_TUNING_H

/// Turns off SQLite's memory statistics, whose global mutex is taken on every allocation (FTS5
/// allocates per token). Must run before SQLite initializes; returns SQLite's result code.
int chat_sqlite_disable_memory_statistics(void);

/// Lets file names given as `file:` URIs carry parameters (a read-only open of a database in a
/// folder that cannot be written uses `?immutable=1`). Must run before SQLite initializes.
int chat_sqlite_enable_uri_filenames(void);

#endif
