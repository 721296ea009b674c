#include "sandbox/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CG_FS "/sys/fs/cgroup"
#define CG_BASE "sandproc"

static const char *const cg_v1_names[CG_NCTL] = { "memory", "pids", "cpu", "freezer" };

static int
cg_write(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		return (errno);
	}
	ssize_t n = write(fd, text, strlen(text));
	int e = n == (ssize_t)strlen(text) ? 0 : n < 0 ? errno : EIO;
	close(fd);
	return (e);
}

/* Reads up to len-1 bytes of path into buf; its length, or -1. */
static ssize_t
cg_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return (-1);
	}
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return (n);
}

static bool
cg_exists(const char *path)
{
	return (access(path, F_OK) == 0);
}

static void
cg_sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)ms * 1000000L };
	nanosleep(&ts, NULL);
}

void
cg_detect(cgroups *cg)
{
	char path[CG_PATH_MAX], buf[256];

	memset(cg, 0, sizeof(*cg));
	if (cg_read(CG_FS "/cgroup.controllers", buf, sizeof(buf)) >= 0) {
		/* v2: one tree; the controllers must be handed down to our base and its children. */
		snprintf(path, sizeof(path), "%s/%s", CG_FS, CG_BASE);
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			return;
		}
		cg_write(CG_FS "/cgroup.subtree_control", "+memory +pids +cpu");
		snprintf(path, sizeof(path), "%s/%s/cgroup.subtree_control", CG_FS, CG_BASE);
		cg_write(path, "+memory +pids +cpu");
		snprintf(path, sizeof(path), "%s/%s/cgroup.controllers", CG_FS, CG_BASE);
		cg_read(path, buf, sizeof(buf));
		cg->version = 2;
		for (int c = 0; c < CG_NCTL; c++) {
			snprintf(cg->dir[c], sizeof(cg->dir[c]), "%s/%s", CG_FS, CG_BASE);
		}
		cg->has[CG_MEMORY] = strstr(buf, "memory") != NULL;
		cg->has[CG_PIDS] = strstr(buf, "pids") != NULL;
		cg->has[CG_CPU] = strstr(buf, "cpu") != NULL;
		cg->has[CG_FREEZER] = true; /* cgroup.freeze is core in v2 */
		return;
	}
	for (int c = 0; c < CG_NCTL; c++) {
		snprintf(path, sizeof(path), "%s/%s/cgroup.procs", CG_FS, cg_v1_names[c]);
		if (!cg_exists(path)) {
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s/%s", CG_FS, cg_v1_names[c], CG_BASE);
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			continue;
		}
		snprintf(cg->dir[c], sizeof(cg->dir[c]), "%s", path);
		cg->has[c] = true;
		cg->version = 1;
	}
}

void
cg_describe(const cgroups *cg, char *out, size_t len)
{
	size_t k = 0;

	if (cg->version == 0) {
		snprintf(out, len, "none writable (no limits, no cgroup kill)");
		return;
	}
	k += (size_t)snprintf(out, len, "v%d (", cg->version);
	for (int c = 0; c < CG_NCTL && k < len; c++) {
		if (cg->has[c]) {
			k += (size_t)snprintf(out + k, len - k, "%s%s", k > 4 ? ", " : "", cg_v1_names[c]);
		}
	}
	if (k < len) {
		snprintf(out + k, len - k, ")");
	}
}

/* <dir of ctl>/<sbx>[/<leaf>][/<file>] */
static void
cg_path(const cgroups *cg, int c, const char *sbx, const char *leaf, const char *file, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s%s%s%s%s", cg->dir[c], sbx, leaf ? "/" : "", leaf ? leaf : "",
	    file ? "/" : "", file ? file : "");
	if (n < 0 || (size_t)n >= len) {
		out[0] = '\0'; /* too long: names nothing */
	}
}

/* The controllers to make directories in: each v1 one we have, or the v2 tree once. */
static bool
cg_uses(const cgroups *cg, int c)
{
	return (cg->version == 2 ? c == 0 : cg->has[c]);
}

static void
cg_note(char *note, size_t len, const char *what)
{
	size_t k = strlen(note);
	if (k < len) {
		snprintf(note + k, len - k, "%s%s", k > 0 ? "; " : "", what);
	}
}

int
cg_sandbox_make(const cgroups *cg, const char *sbx, const cg_limits *lim, char *note, size_t notelen)
{
	char path[CG_PATH_MAX], val[64];

	note[0] = '\0';
	for (int c = 0; c < CG_NCTL; c++) {
		if (!cg_uses(cg, c)) {
			continue;
		}
		cg_path(cg, c, sbx, NULL, NULL, path, sizeof(path));
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			int e = errno;
			cg_sandbox_remove(cg, sbx);
			return (e);
		}
		if (cg->version == 2) {
			cg_path(cg, c, sbx, NULL, "cgroup.subtree_control", path, sizeof(path));
			cg_write(path, "+memory +pids +cpu");
		}
	}
	if (lim->memory_bytes > 0) {
		snprintf(val, sizeof(val), "%" PRIu64, lim->memory_bytes);
		cg_path(cg, CG_MEMORY, sbx, NULL, cg->version == 2 ? "memory.max" : "memory.limit_in_bytes",
		    path, sizeof(path));
		if (!cg->has[CG_MEMORY] || cg_write(path, val) != 0) {
			cg_note(note, notelen, "memory limit not applied (no writable memory controller)");
		} else {
			/* Over the limit means the OOM killer, not swap. */
			cg_path(cg, CG_MEMORY, sbx, NULL,
			    cg->version == 2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes", path,
			    sizeof(path));
			if (cg_exists(path)) {
				cg_write(path, cg->version == 2 ? "0" : val);
			}
		}
	}
	if (lim->pids > 0) {
		snprintf(val, sizeof(val), "%" PRIu32, lim->pids);
		cg_path(cg, CG_PIDS, sbx, NULL, "pids.max", path, sizeof(path));
		if (!cg->has[CG_PIDS] || cg_write(path, val) != 0) {
			cg_note(note, notelen, "pids limit not applied (no writable pids controller)");
		}
	}
	if (lim->cpus > 0) {
		const long period = 100000;
		long quota = (long)(lim->cpus * (double)period);
		int e = EINVAL;
		if (cg->has[CG_CPU] && cg->version == 2) {
			snprintf(val, sizeof(val), "%ld %ld", quota, period);
			cg_path(cg, CG_CPU, sbx, NULL, "cpu.max", path, sizeof(path));
			e = cg_write(path, val);
		} else if (cg->has[CG_CPU]) {
			snprintf(val, sizeof(val), "%ld", period);
			cg_path(cg, CG_CPU, sbx, NULL, "cpu.cfs_period_us", path, sizeof(path));
			if ((e = cg_write(path, val)) == 0) {
				snprintf(val, sizeof(val), "%ld", quota);
				cg_path(cg, CG_CPU, sbx, NULL, "cpu.cfs_quota_us", path, sizeof(path));
				e = cg_write(path, val);
			}
		}
		if (e != 0) {
			cg_note(note, notelen, "cpu limit not applied (no writable cpu controller)");
		}
	}
	return (0);
}

int
cg_leaf_make(const cgroups *cg, const char *sbx, const char *leaf, unsigned mask, char procs[][CG_PATH_MAX],
    size_t max)
{
	size_t n = 0;

	for (int c = 0; c < CG_NCTL && n + 1 < max; c++) {
		if (!cg_uses(cg, c) || (cg->version == 1 && !(mask & (1u << c))) ||
		    (cg->version == 2 && mask == 0)) {
			continue;
		}
		cg_path(cg, c, sbx, leaf, NULL, procs[n], CG_PATH_MAX);
		if (mkdir(procs[n], 0755) != 0 && errno != EEXIST) {
			int e = errno;
			cg_leaf_remove(cg, sbx, leaf);
			return (e);
		}
		cg_path(cg, c, sbx, leaf, "cgroup.procs", procs[n], CG_PATH_MAX);
		n++;
	}
	procs[n][0] = '\0';
	return (0);
}

/* The hierarchy whose cgroup.procs lists the leaf's processes. */
static int
cg_procs_ctl(const cgroups *cg)
{
	static const int order[] = { CG_PIDS, CG_FREEZER, CG_MEMORY, CG_CPU };
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (cg_uses(cg, order[i])) {
			return (order[i]);
		}
	}
	return (-1);
}

/* Signals (sig != 0) each process of the leaf, and lists up to max of them in out (may be NULL); how many. */
static int
cg_each_pid(const cgroups *cg, const char *sbx, const char *leaf, int sig, pid_t *out, size_t max)
{
	char path[CG_PATH_MAX], line[32];
	int c = cg_procs_ctl(cg), n = 0;

	if (c < 0) {
		return (0);
	}
	cg_path(cg, c, sbx, leaf, "cgroup.procs", path, sizeof(path));
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		return (0);
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		long pid = strtol(line, NULL, 10);
		if (pid > 1) {
			if (sig != 0) {
				kill((pid_t)pid, sig);
			}
			if (out != NULL && (size_t)n < max) {
				out[n] = (pid_t)pid;
			}
			n++;
		}
	}
	fclose(f);
	return (n);
}

int
cg_leaf_count(const cgroups *cg, const char *sbx, const char *leaf)
{
	return (cg_each_pid(cg, sbx, leaf, 0, NULL, 0));
}

size_t
cg_leaf_pids(const cgroups *cg, const char *sbx, const char *leaf, pid_t *out, size_t max)
{
	int n = cg_each_pid(cg, sbx, leaf, 0, out, max);
	return ((size_t)n < max ? (size_t)n : max);
}

/* Freezes (frozen) or thaws the leaf; true when it is in that state. */
static bool
cg_freeze(const cgroups *cg, const char *sbx, const char *leaf, bool frozen)
{
	char path[CG_PATH_MAX], buf[512];

	if (!cg->has[CG_FREEZER]) {
		return (false);
	}
	if (cg->version == 2) {
		cg_path(cg, CG_FREEZER, sbx, leaf, "cgroup.freeze", path, sizeof(path));
		if (cg_write(path, frozen ? "1" : "0") != 0) {
			return (false);
		}
		cg_path(cg, CG_FREEZER, sbx, leaf, "cgroup.events", path, sizeof(path));
		for (int i = 0; i < 100; i++) {
			if (cg_read(path, buf, sizeof(buf)) > 0 &&
			    strstr(buf, frozen ? "frozen 1" : "frozen 0") != NULL) {
				return (true);
			}
			cg_sleep_ms(1);
		}
		return (false);
	}
	cg_path(cg, CG_FREEZER, sbx, leaf, "freezer.state", path, sizeof(path));
	if (cg_write(path, frozen ? "FROZEN" : "THAWED") != 0) {
		return (false);
	}
	for (int i = 0; i < 100; i++) {
		if (cg_read(path, buf, sizeof(buf)) > 0 &&
		    strncmp(buf, frozen ? "FROZEN" : "THAWED", 6) == 0) {
			return (true);
		}
		cg_sleep_ms(1);
	}
	return (false);
}

int
cg_leaf_signal(const cgroups *cg, const char *sbx, const char *leaf, int sig)
{
	char path[CG_PATH_MAX];

	if (cg->version == 0) {
		return (0);
	}
	if (sig == SIGKILL && cg->version == 2) {
		cg_path(cg, 0, sbx, leaf, "cgroup.kill", path, sizeof(path));
		int n = cg_leaf_count(cg, sbx, leaf);
		if (n == 0 || cg_write(path, "1") == 0) {
			return (n);
		}
	}
	/* Frozen, nothing in the leaf can fork or exit while we read and signal it. */
	bool frozen = cg_freeze(cg, sbx, leaf, true);
	int n = cg_each_pid(cg, sbx, leaf, sig, NULL, 0);
	if (frozen) {
		cg_freeze(cg, sbx, leaf, false);
	}
	return (n);
}

uint64_t
cg_leaf_oom_kills(const cgroups *cg, const char *sbx, const char *leaf)
{
	char path[CG_PATH_MAX], buf[1024];

	if (!cg->has[CG_MEMORY]) {
		return (0);
	}
	cg_path(cg, CG_MEMORY, sbx, leaf, cg->version == 2 ? "memory.events" : "memory.oom_control", path,
	    sizeof(path));
	if (cg_read(path, buf, sizeof(buf)) <= 0) {
		return (0);
	}
	const char *k = strstr(buf, "oom_kill ");
	return (k != NULL ? strtoull(k + 9, NULL, 10) : 0);
}

void
cg_leaf_remove(const cgroups *cg, const char *sbx, const char *leaf)
{
	char path[CG_PATH_MAX];

	for (int c = 0; c < CG_NCTL; c++) {
		if (cg_uses(cg, c)) {
			cg_path(cg, c, sbx, leaf, NULL, path, sizeof(path));
			rmdir(path);
		}
	}
}

/* Removes the sandbox's leaves (SIGKILLing what is in them first, with kill_first) and, with also_group, it.
 */
static void
cg_sweep(const cgroups *cg, const char *sbx, bool kill_first, bool also_group)
{
	char path[CG_PATH_MAX];

	for (int c = 0; c < CG_NCTL; c++) {
		if (!cg_uses(cg, c)) {
			continue;
		}
		cg_path(cg, c, sbx, NULL, NULL, path, sizeof(path));
		DIR *d = opendir(path);
		struct dirent *de;
		while (d != NULL && (de = readdir(d)) != NULL) {
			if (de->d_type != DT_DIR || de->d_name[0] == '.') {
				continue;
			}
			/* Killed processes leave their cgroup as they exit: give them a moment. */
			for (int i = 0;
			     kill_first && i < 200 && cg_leaf_signal(cg, sbx, de->d_name, SIGKILL) > 0; i++) {
				cg_sleep_ms(5);
			}
			cg_path(cg, c, sbx, de->d_name, NULL, path, sizeof(path));
			rmdir(path); /* fails, as it should, while a process is in it */
		}
		if (d != NULL) {
			closedir(d);
		}
		if (also_group) {
			cg_path(cg, c, sbx, NULL, NULL, path, sizeof(path));
			rmdir(path);
		}
	}
}

void
cg_sandbox_prune(const cgroups *cg, const char *sbx, bool also_group)
{
	cg_sweep(cg, sbx, false, also_group);
}

void
cg_sandbox_remove(const cgroups *cg, const char *sbx)
{
	cg_sweep(cg, sbx, true, true);
}
