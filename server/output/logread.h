/*
 * Reading a process's output log (format: logformat.h) across its current
 * and rolled files. Readers need no lock: they see only whole entries, and
 * a roll while reading shows entries twice (dropped here), never misses one.
 */
#ifndef OUTPUT_LOGREAD_H
#define OUTPUT_LOGREAD_H

#include <stddef.h>
#include <stdint.h>

#include "output/logfile.h"
#include "sandproc/v1/processes.pb.h"
#include "sp_pb.h"

/*
 * Where a read ended: just past the entry with sequence seq, in the file
 * with inode ino. A reader going forward page by page keeps one, and each
 * page then costs what it reads, not a scan of the whole log.
 */
typedef struct logfile_cursor {
	uint64_t ino, off, seq;
	bool valid;
} logfile_cursor;

typedef struct logfile_query {
	uint64_t after_seq;
	uint32_t tail;
	sandproc_v1_Stream stream; /* 0 or COMBINED = all */
	size_t max_bytes;
	size_t max_entries;
	bool capped; /* only entries up to upto_seq exist (the rest are not published yet) */
	uint64_t upto_seq;
	logfile_cursor
	    *cursor; /* optional, forward reads (no tail): used when after_seq >= its seq, then moved */
} logfile_query;

/*
 * Reads the matching entries of process id into out (entries, next_sequence,
 * has_more, last_sequence); data goes into arena. A process that has no log
 * yet reads as empty. 0 or an errno.
 */
int logfile_read(
    const char *dir, const char *id, const logfile_query *q, sandproc_v1_LogsReply *out, sp_arena *arena);

#endif
