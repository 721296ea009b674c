/*
 * Per-process output logs: an append-only file of entries
 * {sequence, stream, timestamp_ms, data} in the data directory's logs/
 * folder, rolled to "<id>.log.1" (one old file kept) when it would pass the
 * configured size. Writers are the supervisor only; readers open the files
 * themselves and need no lock (see logfile_read).
 */
#ifndef LOGFILE_H
#define LOGFILE_H

#include <stddef.h>
#include <stdint.h>

#include "sandproc/v1/processes.pb.h"
#include "sp_pb.h"

typedef struct logfile logfile;

/*
 * Opens (creating) the log of process id under dir for appending. *last_seq
 * gets the newest sequence already stored (0 for a new log).
 */
int logfile_open(logfile **out, const char *dir, const char *id, uint64_t *last_seq);

/*
 * Appends one entry, rolling first when the file would pass max_bytes.
 * Returns 0 or an errno (ENOSPC: the entry was not stored, the file is left
 * as it was).
 */
int logfile_append(logfile *lf, uint64_t seq, sandproc_v1_Stream stream, int64_t ts_ms, const void *data,
    size_t len, uint64_t max_bytes);

void logfile_close(logfile *lf);

/* Removes both files of process id; 0 or an errno other than ENOENT. */
int logfile_remove(const char *dir, const char *id);

typedef struct logfile_query {
	uint64_t after_seq;
	uint32_t tail;
	sandproc_v1_Stream stream; /* 0 or COMBINED = all */
	size_t max_bytes;
	size_t max_entries;
} logfile_query;

/*
 * Reads the matching entries of process id into out (entries, next_sequence,
 * has_more, last_sequence); data goes into arena. A process that has no log
 * yet reads as empty.
 */
int logfile_read(
    const char *dir, const char *id, const logfile_query *q, sandproc_v1_LogsReply *out, sp_arena *arena);

#endif
