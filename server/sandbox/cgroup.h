/*
 * cgroups for sandboxes and their processes, v1 or v2, found at start.
 *
 * Layout (each v1 controller hierarchy, or the v2 tree):
 *   <root>/sandproc/<sandbox>/           limits (memory, pids, cpu)
 *   <root>/sandproc/<sandbox>/keeper     the sandbox's init
 *   <root>/sandproc/<sandbox>/runs       Run's children
 *   <root>/sandproc/<sandbox>/<leaf>     one managed process and all it forks
 * A leaf holds every descendant of its process, also those that left its
 * process group or session, so a Stop or Kill reaches them all: v2 writes
 * cgroup.kill for SIGKILL; otherwise (and on v1) the leaf is frozen when a
 * freezer is there, every pid in cgroup.procs signalled, and thawed, as
 * systemd does for KillMode=control-group.
 */
#ifndef SANDBOX_CGROUP_H
#define SANDBOX_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CG_MAX_DIRS 4
#define CG_PATH_MAX 512

typedef enum cg_ctl { CG_MEMORY, CG_PIDS, CG_CPU, CG_FREEZER, CG_NCTL } cg_ctl;

typedef struct cgroups {
	int version; /* 0: none writable, 1 or 2 */
	char dir[CG_NCTL]
	        [CG_PATH_MAX]; /* v1: each controller's <mount>/sandproc ("" when absent); v2: all the same */
	bool has[CG_NCTL];
} cgroups;

typedef struct cg_limits {
	uint64_t memory_bytes;
	uint32_t pids;
	double cpus;
} cg_limits;

/* Finds the cgroup version and controllers (as root, where they are writable). */
void cg_detect(cgroups *cg);

/* "v1 (memory, pids, cpu, freezer)" and the like, for logs. */
void cg_describe(const cgroups *cg, char *out, size_t len);

/*
 * Makes the sandbox's cgroup with limits applied; what could not be applied
 * is said in note (empty when all were). 0 or an errno (nothing made).
 */
int cg_sandbox_make(const cgroups *cg, const char *sbx, const cg_limits *lim, char *note, size_t notelen);

/*
 * Makes leaf under the sandbox, in the hierarchies of mask (CG_ALL, or bits
 * 1 << cg_ctl: on v2 any bit means the one tree); its cgroup.procs files
 * into procs[] (an empty string ends them). 0 or an errno.
 */
#define CG_ALL 0xfu
int cg_leaf_make(const cgroups *cg, const char *sbx, const char *leaf, unsigned mask,
    char procs[][CG_PATH_MAX], size_t max);

/* Signals every process in the leaf (see above). How many were signalled. */
int cg_leaf_signal(const cgroups *cg, const char *sbx, const char *leaf, int sig);

/* Processes in the leaf now. */
int cg_leaf_count(const cgroups *cg, const char *sbx, const char *leaf);

/* Up to max of the leaf's processes (host pids) into out; how many. */
size_t cg_leaf_pids(const cgroups *cg, const char *sbx, const char *leaf, pid_t *out, size_t max);
/* Processes of the leaf the kernel's OOM killer killed (memory.oom_control or memory.events). */
uint64_t cg_leaf_oom_kills(const cgroups *cg, const char *sbx, const char *leaf);

/* Removes the leaf if it is empty. */
void cg_leaf_remove(const cgroups *cg, const char *sbx, const char *leaf);

/*
 * Removes the sandbox's leaves that are empty (left by processes that
 * ended while no one removed them), and with also_group its own cgroup
 * when that is empty then.
 */
void cg_sandbox_prune(const cgroups *cg, const char *sbx, bool also_group);

/* SIGKILLs whatever is left in the sandbox's cgroups and removes them all. */
void cg_sandbox_remove(const cgroups *cg, const char *sbx);

#endif
