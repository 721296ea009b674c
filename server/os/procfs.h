/* Readers of /proc (see procfs.c). */
#ifndef OS_PROCFS_H
#define OS_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The start time of pid (clock ticks since boot), or 0 when it is gone. */
uint64_t procfs_pid_start_time(pid_t pid);

/* Fields 3 (state), 4 (ppid, if not NULL), 5 (pgrp) and 6 (session) of /proc/PID/stat; false when gone. */
bool procfs_read_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgrp, pid_t *sid);

/* True while pid exists and is not a zombie (one nobody reaped is as good as gone). */
bool procfs_pid_running(pid_t pid);

/* This boot's id (/proc/sys/kernel/random/boot_id) into out (>= 40 bytes). */
void procfs_boot_id(char *out, size_t len);

/*
 * True while any process other than leader (and other than zombies) is in
 * process group pgid, or with session true, in session pgid. Scans /proc:
 * not for a thread that must not block.
 */
bool procfs_group_alive(pid_t pgid, pid_t leader, bool session);

/* A live process: its pid, process group and session. */
typedef struct procfs_entry {
	pid_t pid, pgrp, sid;
} procfs_entry;

/* Up to max live (not zombie) processes into out, in one pass over /proc; how many. */
size_t procfs_snapshot(procfs_entry *out, size_t max);

/*
 * Sends sig to every process group of session sid other than sid's own
 * group (jobs a shell on a PTY put in groups of their own). Best effort;
 * scans /proc. The caller keeps sid's leader unreaped meanwhile.
 */
void procfs_signal_session_groups(pid_t sid, int sig);

#endif
