/*
 * Sandboxes: isolated places to run processes on one host. Each one is a
 * keeper — bubblewrap's init (pid 1 of the sandbox's PID namespace) and a
 * `sleep` that keeps it alive — made with its own PID, mount, IPC, UTS,
 * cgroup and (network "none") network namespaces, the host's /usr and a few
 * /etc files read-only, a private /tmp, a fresh /proc and /dev, and the
 * workspace (<data>/sandboxes/<id>/workspace) at /workspace. The keeper is
 * started through the holder's exec mode (so it joins its cgroup before
 * exec) in a session of its own, and outlives the server like holders do.
 *
 * Processes join a sandbox through a spawn_place (os/spawn.h) this module
 * fills: the keeper's namespaces, a cgroup of their own under the
 * sandbox's (its limits), the sandbox's user, a clean environment and a cwd
 * inside /workspace. The process code never includes this header.
 *
 * Records live in memory (all of them) and in the store; states go
 * creating -> ready | failed, then deleting -> gone. Events: sbx/<id>.
 */
#ifndef SANDBOX_SANDBOX_H
#define SANDBOX_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "base/waiter.h"
#include "base/workq.h"
#include "events/publisher.h"
#include "os/spawn.h"
#include "proc/supervisor.h"
#include "sandproc/v1/sandboxes.pb.h"
#include "sp_pb.h"
#include "store/store.h"

#define SBX_PREFIX "sbx_"
#define SBX_DEFAULT "default"

typedef struct sandboxes sandboxes;

typedef struct sandboxes_config {
	store *st;
	publisher *pub;
	supervisor *sup;
	workq *wq;
	const char *data_dir;
	const char *holder_path; /* sandproc-holder: its exec mode starts keepers and sandboxed Runs */
	const char *boot_id;
} sandboxes_config;

/* Loads the stored sandboxes, checking each keeper is still there (a failed one is said so). */
int sandboxes_new(sandboxes **out, const sandboxes_config *c, char *err, size_t errlen);
/* The server is stopping: setups still running are no longer waited for (before the workers go). */
void sandboxes_stop(sandboxes *m);
void sandboxes_free(sandboxes *m);

/* "" and "default": the host, not a sandbox. */
bool sandboxes_is_host(const char *id);

/* A new sandbox of tenant. */
int sandboxes_create(sandboxes *m, const sandproc_v1_CreateSandboxRequest *req, const char *tenant,
    sandproc_v1_Sandbox *out, sp_arena *arena, char *err, size_t errlen);
int sandboxes_get(
    sandboxes *m, const char *id, sandproc_v1_Sandbox *out, sp_arena *arena, char *err, size_t errlen);
/* Filtered as req says (req->tenant "" = any), and to only_id when it is not NULL or "". */
int sandboxes_list(sandboxes *m, const sandproc_v1_ListSandboxesRequest *req, const char *only_id,
    sandproc_v1_ListSandboxesReply *rep, sp_arena *arena, char *err, size_t errlen);
/* Stops its processes (TERM, KILL after grace_ms), ends the keeper, removes cgroups and workspace. */
int sandboxes_delete(
    sandboxes *m, const char *id, bool keep_workspace, uint32_t grace_ms, char *err, size_t errlen);
/* What ports need of a sandbox: its init (so its network namespace) and its exposure policy. */
typedef struct sandboxes_net_info {
	pid_t pid;
	uint64_t pid_start;
	bool own_netns;   /* network "none": a namespace of its own; "host": the host's */
	bool auto_expose; /* ports bound to every address are exposed when found */
	char tenant[64];
} sandboxes_net_info;

/* SP_OK for a ready sandbox; SP_FAILED_PRECONDITION (out filled as far as known) or SP_NOT_FOUND. */
int sandboxes_net(sandboxes *m, const char *id, sandboxes_net_info *out);
int sandboxes_readiness(
    sandboxes *m, const char *id, sandproc_v1_ReadinessReply *rep, char *err, size_t errlen);
/* Links w to the sandbox's readiness while it is being created; false when that is settled (answer now). */
bool sandboxes_watch_ready(sandboxes *m, const char *id, waiter *w);

/*
 * Places a process (Start: for_run false) or a Run's child into sandbox id:
 * spec->place, env (clean: PATH, HOME, LANG, the sandbox's, the request's),
 * cwd (request_cwd inside /workspace; leaving it is INVALID_ARGUMENT). A
 * Run's spec becomes the holder's exec mode with the real spec on fd 3
 * (spec->fd3, closed by the caller after spawning). Strings in arena.
 */
int sandboxes_place(sandboxes *m, const char *id, bool for_run, const char *request_cwd,
    const sp_strv_t *req_env, spawn_spec *spec, sp_arena *arena, char *err, size_t errlen);

/*
 * A host process's place: only a cgroup of its own (where cgroups are
 * writable), so Stop, Kill and timeouts reach every process it starts, also
 * one that called setsid. Leaves spec as it is when there are none.
 */
int sandboxes_place_host(sandboxes *m, spawn_spec *spec, sp_arena *arena);

#endif
