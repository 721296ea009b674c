/*
 * The SQLite store: process records and config, in one database file in the
 * data directory (WAL, synchronous=NORMAL: a commit survives a crash of the
 * server, not necessarily a power loss). Thread-safe: writes go through one
 * connection and reads through another, each behind its own mutex, so a
 * read never waits for a write. Writes the supervisor makes while processes
 * run go through store_queue.h, off its loop thread.
 *
 * Calls return 0 or an errno: ENOENT (no such record), ENOSPC (disk or
 * database full), ENOMEM, EROFS (read-only) or EIO (anything else); the
 * text is in store_errmsg. base/errors.h maps them to statuses.
 */
#ifndef STORE_H
#define STORE_H

#include <stdint.h>

#include "sandproc/v1/processes.pb.h"
#include "sp_pb.h"

typedef struct store store;

/* Where a running record's pid came from, to tell it apart from a reused pid. */
typedef struct store_origin {
	uint64_t pid_start; /* /proc/PID/stat starttime, clock ticks since boot */
	char boot_id[40];   /* /proc/sys/kernel/random/boot_id */
} store_origin;

typedef struct store_query {
	sandproc_v1_State state; /* 0 = any */
	const char *sandbox_id;  /* NULL or "" = any */
	const char *name;        /* NULL or "" = any */
	const char *tenant;      /* NULL or "" = any */
	uint32_t limit;
	int64_t before_seq; /* 0 = from the newest */
} store_query;

/*
 * Opens (creating and migrating) the database at path, and checks that it
 * can work: a read-only or corrupt database is refused here, with the cause
 * in err.
 */
int store_open(store **out, const char *path, char *err, size_t errlen);
void store_close(store *s);

/* The last error's text, for logs (per thread). */
const char *store_errmsg(void);

int store_insert_process(store *s, const sandproc_v1_Process *p, const store_origin *o);
/* Writes the changing fields: pid, state, exit_code, signal, times, error, stdin_open. */
int store_update_process(store *s, const sandproc_v1_Process *p, const store_origin *o);
/* Reads one record; strings go into arena. */
int store_get_process(store *s, const char *id, sandproc_v1_Process *out, sp_arena *arena);
/*
 * Newest first. Fills out->processes (up to q->limit, at most 100, and
 * ending early past 4 MiB of records); *next_seq gets the cursor for the
 * next page, or 0 when this is the last.
 */
int store_list_processes(
    store *s, const store_query *q, sandproc_v1_ListReply *out, int64_t *next_seq, sp_arena *arena);
int store_delete_process(store *s, const char *id);
/* Calls fn for every record in state running (startup reconciliation). */
int store_for_each_running(
    store *s, void (*fn)(void *arg, const sandproc_v1_Process *p, const store_origin *o), void *arg);
/* Counts records (tests and benchmarks). */
int store_count_processes(store *s, int64_t *count);

/* Sandbox records, stored as encoded sandproc.v1.Sandbox messages. */
int store_put_sandbox(store *s, const char *id, const void *record, size_t len);
int store_delete_sandbox(store *s, const char *id);
/* Calls fn for every stored sandbox, oldest first (start-up). */
int store_for_each_sandbox(store *s, void (*fn)(void *arg, const void *record, size_t len), void *arg);

/* Reads stored settings over c (fields never stored keep their value). */
/* Keys: the record is an encoded sandproc.v1.Key without its secret; hash is the secret's SHA-256. */
int store_put_key(store *s, const char *id, const uint8_t hash[32], const void *record, size_t len);
/* Rewrites an existing key's record; a key no longer stored stays gone. */
int store_update_key(store *s, const char *id, const void *record, size_t len);
int store_delete_key(store *s, const char *id);
/* At start only. */
int store_for_each_key(store *s,
    void (*fn)(void *arg, const uint8_t *hash, size_t hashlen, const void *record, size_t len), void *arg);

int store_load_config(store *s, sandproc_v1_Config *cfg);
int store_save_config(store *s, const sandproc_v1_Config *cfg);

#endif
