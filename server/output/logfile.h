/*
 * Writing a process's output log (format: logformat.h): append-only, rolled
 * to "<id>.log.1" (one old file kept) when it would pass the configured
 * size. Used by the server's log sink and by holders; plain C and libc, no
 * other library. Readers open the files themselves (logread.h).
 */
#ifndef OUTPUT_LOGFILE_H
#define OUTPUT_LOGFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct logfile logfile;

/* The longest log path, with its NUL (a buffer that size always fits). */
#define LOGFILE_PATH_MAX 4096

/* "<dir>/<id>.log" and "<dir>/<id>.log.1" into path and path1 (size bytes each); false if too long. */
bool logfile_paths(const char *dir, const char *id, char *path, char *path1, size_t size);

/*
 * Opens (creating) the log of process id under dir for appending, dropping a
 * torn tail a crash may have left. *last_seq gets the newest sequence
 * already stored (0 for a new log). 0 or an errno.
 */
int logfile_open(logfile **out, const char *dir, const char *id, uint64_t *last_seq);

/*
 * Appends one entry, rolling first when the file would pass max_bytes (if
 * the roll fails the entry still goes to the current file). Returns 0 or an
 * errno (ENOSPC: the entry was not stored and the file is left whole;
 * EINVAL: sequence 0, or data over 16 MiB).
 */
int logfile_append(logfile *lf, uint64_t seq, uint8_t stream, int64_t ts_ms, const void *data, size_t len,
    uint64_t max_bytes);

void logfile_close(logfile *lf);

/* Removes both files of process id; 0 or an errno other than ENOENT. */
int logfile_remove(const char *dir, const char *id);

#endif
