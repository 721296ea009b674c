/*
 * Readers of /proc: process start times (to tell a pid from a reused one),
 * the boot id, and process groups and sessions (to see whether a group still
 * has members, and to reach a terminal session's job groups).
 */
#include "os/procfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint64_t
procfs_pid_start_time(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long start = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return (0);
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return (0);
	}
	buf[n] = '\0';
	/* Field 22; the command name (field 2) may hold spaces, so count from its ')'. */
	char *p = strrchr(buf, ')');
	if (p == NULL) {
		return (0);
	}
	int field = 2;
	for (p++; *p != '\0' && field < 22; p++) {
		if (*p == ' ') {
			field++;
		}
	}
	if (field == 22) {
		start = strtoull(p, NULL, 10);
	}
	return (start);
}

void
procfs_boot_id(char *out, size_t len)
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, out, len - 1) : -1;

	if (fd >= 0) {
		close(fd);
	}
	if (n < 0) {
		n = 0;
	}
	out[n] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

bool
procfs_read_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgrp, pid_t *sid)
{
	char path[64], buf[512];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return (false);
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return (false);
	}
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	int pp, pg, se;
	if (p == NULL || sscanf(p + 1, " %c %d %d %d", state, &pp, &pg, &se) != 4) {
		return (false);
	}
	if (ppid != NULL) {
		*ppid = pp;
	}
	*pgrp = pg;
	*sid = se;
	return (true);
}

typedef void (*procfs_fn)(void *arg, pid_t pid, char state, pid_t pgrp, pid_t sid);

static void
procfs_for_each(procfs_fn fn, void *arg)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (d == NULL) {
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		char state;
		pid_t pgrp, sid;
		if (*end != '\0' || pid <= 0 || !procfs_read_stat((pid_t)pid, &state, NULL, &pgrp, &sid)) {
			continue;
		}
		fn(arg, (pid_t)pid, state, pgrp, sid);
	}
	closedir(d);
}

typedef struct procfs_group_q {
	pid_t pgid, leader;
	bool session, alive;
} procfs_group_q;

static void
procfs_group_visit(void *arg, pid_t pid, char state, pid_t pgrp, pid_t sid)
{
	procfs_group_q *q = arg;
	if (pid != q->leader && state != 'Z' && state != 'X' &&
	    (q->session ? sid == q->pgid : pgrp == q->pgid)) {
		q->alive = true;
	}
}

bool
procfs_group_alive(pid_t pgid, pid_t leader, bool session)
{
	procfs_group_q q = { pgid, leader, session, false };
	procfs_for_each(procfs_group_visit, &q);
	return (q.alive);
}

typedef struct procfs_session_q {
	pid_t sid;
	int sig;
} procfs_session_q;

static void
procfs_session_visit(void *arg, pid_t pid, char state, pid_t pgrp, pid_t sid)
{
	procfs_session_q *q = arg;
	(void)pid;
	/* The process is alive in the group right now, so pgrp names a live group. */
	if (sid == q->sid && pgrp != q->sid && state != 'Z') {
		kill(-pgrp, q->sig);
	}
}

void
procfs_signal_session_groups(pid_t sid, int sig)
{
	procfs_session_q q = { sid, sig };
	procfs_for_each(procfs_session_visit, &q);
}

typedef struct procfs_snap_q {
	procfs_entry *out;
	size_t max, n;
} procfs_snap_q;

static void
procfs_snap_visit(void *arg, pid_t pid, char state, pid_t pgrp, pid_t sid)
{
	procfs_snap_q *q = arg;
	if (state != 'Z' && state != 'X' && q->n < q->max) {
		q->out[q->n++] = (procfs_entry){ pid, pgrp, sid };
	}
}

size_t
procfs_snapshot(procfs_entry *out, size_t max)
{
	procfs_snap_q q = { out, max, 0 };
	procfs_for_each(procfs_snap_visit, &q);
	return (q.n);
}

bool
procfs_pid_running(pid_t pid)
{
	char state;
	pid_t pgrp, sid;

	return (procfs_read_stat(pid, &state, NULL, &pgrp, &sid) && state != 'Z' && state != 'X');
}
