/*
 * The children of Runs in flight, in a small table mapped from the data dir
 * (runs.tbl), so that a server that crashes leaves a list behind: the next
 * one kills whatever a Run of the old one had started and is still running
 * (same pid, same start time, same boot), group and all. Writing a slot is
 * a store into shared memory; the kernel keeps it when the process dies.
 */
#ifndef PROC_RUNS_H
#define PROC_RUNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct runs runs;

/*
 * Opens (creating) dir/runs.tbl with room for slots Runs, first killing
 * what a crashed server's Runs left running (*killed counts them). 0 or an
 * errno.
 */
int runs_open(runs **out, const char *dir, size_t slots, int *killed);
void runs_close(runs *r);

/* Notes pid as a Run's child; the slot to clear, or -1 when refused (stopping, or full). */
int runs_add(runs *r, pid_t pid);
/* Forgets the slot, before its child is reaped. */
void runs_remove(runs *r, int slot);

/* From now on no Run starts (runs_add refuses); the children running now get sig. */
void runs_stop(runs *r, int sig);

#endif
