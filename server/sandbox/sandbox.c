#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/ids.h"
#include "base/list.h"
#include "base/util.h"
#include "holder/proto.h"
#include "os/procfs.h"
#include "proc/request.h"
#include "sandbox/cgroup.h"
#include "sp_limits.h"
#include "sp_status.h"

#define SBX_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define SBX_WORKSPACE "/workspace"
#define SBX_KEEPER "/run/sandproc/keeper"
/* Host uids for sandboxes' users: one per sandbox, from this range. */
#define SBX_UID_BASE 200000u
#define SBX_UID_SPAN 800000u
#define SBX_KEEPER_INFO_MS 10000
#define SBX_MAX_SETUP (64 * 1024)
#define SBX_LIST_MAX 100

typedef struct sbx {
	dnode node;
	sandboxes *m;
	sp_arena *arena; /* the record's strings */
	sandproc_v1_Sandbox rec;
	pid_t outer;  /* bubblewrap's outer process while it is our child, else 0 */
	int ready_fd; /* while creating: the keeper writes its setup's status here */
	waitlist ready_waiters;
	workq_job job;
	int refs;
} sbx;

struct sandboxes {
	sandboxes_config c;
	pthread_mutex_t mu;
	dlist all; /* oldest first */
	cgroups cg;
	char bwrap[4096]; /* "" when bubblewrap is not installed */
	char dir[4096];   /* <data>/sandboxes */
	unsigned leaf_seq;
	volatile bool stopping; /* the server is going: setups are no longer waited for */
	bool host_cgroups;      /* host processes get a cgroup each (sandproc/host-<data dir hash>/...) */
	char host_group[24];
};

static const char *const sbx_state_names[] = { "unspecified", "creating", "ready", "failed", "deleting" };

static const char *
sbx_state_name(sandproc_v1_SandboxState st)
{
	return (st >= 0 && st <= sandproc_v1_SandboxState_SANDBOX_STATE_DELETING ? sbx_state_names[st] : "?");
}

bool
sandboxes_is_host(const char *id)
{
	return (id == NULL || id[0] == '\0' || strcmp(id, SBX_DEFAULT) == 0);
}

/* --- records ------------------------------------------------------------------------ */

static sbx *
sbx_find(sandboxes *m, const char *id)
{
	for (dnode *n = m->all.head; n != NULL; n = n->next) {
		sbx *s = containerof(n, sbx, node);
		if (strcmp(s->rec.id, id) == 0) {
			return (s);
		}
	}
	return (NULL);
}

static void
sbx_unref(sbx *s)
{
	if (--s->refs == 0) {
		sp_arena_free(s->arena);
		free(s);
	}
}

static int
sbx_copy_strv(sp_strv_t *dst, const sp_strv_t *src, sp_arena *a)
{
	memset(dst, 0, sizeof(*dst));
	for (size_t i = 0; i < src->n; i++) {
		char *v = sp_arena_strdup(a, src->v[i]);
		if (v == NULL || !sp_strv_push(dst, v, a)) {
			return (ENOMEM);
		}
	}
	return (0);
}

/* A copy of src whose strings live in a (the caller's arena, or the record's own). */
static int
sbx_copy(sandproc_v1_Sandbox *dst, const sandproc_v1_Sandbox *src, sp_arena *a)
{
	*dst = *src;
	const char **strs[] = { &dst->name, &dst->template, &dst->error, &dst->workspace, &dst->setup,
		&dst->limits_note };
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (*strs[i] != NULL && (*strs[i] = sp_arena_strdup(a, *strs[i])) == NULL) {
			return (ENOMEM);
		}
	}
	if (sbx_copy_strv(&dst->labels, &src->labels, a) != 0 ||
	    sbx_copy_strv(&dst->env, &src->env, a) != 0) {
		return (ENOMEM);
	}
	return (0);
}

/* Sets the record's error (a copy in its arena). */
static void
sbx_set_error(sbx *s, const char *why)
{
	s->rec.error = sp_arena_strdup(s->arena, why != NULL ? why : "");
}

/* Writes the record to the store (caller holds m->mu); failures are logged, the record stays in memory. */
static void
sbx_store(sandboxes *m, sbx *s)
{
	size_t len = 0;
	uint8_t *buf = NULL;
	int rv = ENOMEM;

	if (sp_pb_encoded_size(sandproc_v1_Sandbox_fields, &s->rec, &len) &&
	    (buf = malloc(len + 1)) != NULL &&
	    sp_pb_encode(sandproc_v1_Sandbox_fields, &s->rec, buf, len + 1, &len, NULL)) {
		rv = store_put_sandbox(m->c.st, s->rec.id, buf, len);
	}
	if (rv != 0) {
		util_log("sandbox %s: cannot store its record: %s", s->rec.id, errors_text(rv));
	}
	free(buf);
}

/* Publishes sbx/<id> (env values left out, as the process feed does). Caller holds m->mu. */
static void
sbx_publish(sandboxes *m, sbx *s, const char *kind)
{
	sandproc_v1_SandboxEvent ev;
	char topic[64];

	memset(&ev, 0, sizeof(ev));
	snprintf(ev.kind, sizeof(ev.kind), "%s", kind);
	ev.has_sandbox = true;
	ev.sandbox = s->rec;
	memset(&ev.sandbox.env, 0, sizeof(ev.sandbox.env));
	snprintf(topic, sizeof(topic), "sbx/%s", s->rec.id);
	publisher_send(m->c.pub, topic, sandproc_v1_SandboxEvent_fields, &ev);
}

/* Moves s to state (caller holds m->mu): stored, published, and waiters woken once it is settled. */
static void
sbx_set_state(sandboxes *m, sbx *s, sandproc_v1_SandboxState st, const char *why)
{
	s->rec.state = st;
	if (why != NULL) {
		sbx_set_error(s, why);
	}
	if (st == sandproc_v1_SandboxState_SANDBOX_STATE_READY) {
		s->rec.ready_at_ms = util_now_ms();
	}
	sbx_store(m, s);
	sbx_publish(m, s, sbx_state_name(st));
	if (st != sandproc_v1_SandboxState_SANDBOX_STATE_CREATING) {
		waitlist_wake_all(&s->ready_waiters);
	}
}

/* True while the keeper recorded for s runs (not a reused pid). */
static bool
sbx_keeper_alive(const sbx *s)
{
	return (s->rec.pid > 0 && procfs_pid_start_time(s->rec.pid) == s->rec.pid_start);
}

/* Reaps bubblewrap's outer process when it is ours and has ended (or waits, with block). */
static void
sbx_reap(sbx *s, bool block)
{
	if (s->outer > 0) {
		pid_t r;
		while ((r = waitpid(s->outer, NULL, block ? 0 : WNOHANG)) < 0 && errno == EINTR) {}
		if (r != 0) {
			s->outer = 0;
		}
	}
}

/* A ready sandbox whose keeper is gone is failed, saying so (caller holds m->mu). */
static void
sbx_check(sandboxes *m, sbx *s)
{
	if (s->rec.state == sandproc_v1_SandboxState_SANDBOX_STATE_READY && !sbx_keeper_alive(s)) {
		char why[160];
		snprintf(why, sizeof(why), "its init (pid %d) has ended: the sandbox's processes are gone",
		    (int)s->rec.pid);
		sbx_reap(s, false);
		sbx_set_state(m, s, sandproc_v1_SandboxState_SANDBOX_STATE_FAILED, why);
	}
}

/* --- the keeper ---------------------------------------------------------------------- */

static void
sbx_argv_push(sp_strv_t *v, sp_arena *a, const char *s)
{
	sp_strv_push(v, sp_arena_strdup(a, s), a);
}

/* /bin and friends: a symlink on a merged-/usr host, else a directory bound read-only. */
static void
sbx_argv_top(sp_strv_t *v, sp_arena *a, const char *path)
{
	char target[256];
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n > 0) {
		target[n] = '\0';
		sbx_argv_push(v, a, "--symlink");
		sbx_argv_push(v, a, target);
		sbx_argv_push(v, a, path);
	} else {
		sbx_argv_push(v, a, "--ro-bind-try");
		sbx_argv_push(v, a, path);
		sbx_argv_push(v, a, path);
	}
}

/* bubblewrap's argv for s (strings in a). */
static void
sbx_keeper_argv(sandboxes *m, sbx *s, const char *ws, sp_strv_t *v, sp_arena *a)
{
	static const char *const etc[] = { "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/nsswitch.conf",
		"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/ssl",
		"/etc/ca-certificates", "/etc/alternatives", "/etc/mime.types", "/etc/protocols",
		"/etc/services" };
	static const char *const tops[] = { "/bin", "/sbin", "/lib", "/lib64", "/lib32" };
	const sandproc_v1_Sandbox *r = &s->rec;
	char uid[16];

	memset(v, 0, sizeof(*v));
	sbx_argv_push(v, a, m->bwrap);
	const char *fixed[] = { "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
		"--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs",
		"/tmp",
		/* Made explicitly: parents bubblewrap makes for a bind are 0700, unreadable to the user. */
		"--dir", "/etc", "--dir", "/var", "--perms", "1777", "--dir", "/var/tmp", "--dir", "/run",
		"--dir", "/run/sandproc", "--bind", ws, SBX_WORKSPACE, "--chdir", SBX_WORKSPACE, "--info-fd",
		"4", "--clearenv", "--setenv", "PATH", &SBX_PATH[5], "--setenv", "HOME", SBX_WORKSPACE,
		"--setenv", "LANG", "C.UTF-8" };
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		sbx_argv_push(v, a, fixed[i]);
	}
	if (strcmp(r->network, "host") != 0) {
		sbx_argv_push(v, a, "--unshare-net");
	} else {
		sbx_argv_push(v, a, "--ro-bind-try");
		sbx_argv_push(v, a, "/etc/resolv.conf");
		sbx_argv_push(v, a, "/etc/resolv.conf");
	}
	for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++) {
		if (access(tops[i], F_OK) == 0) {
			sbx_argv_top(v, a, tops[i]);
		}
	}
	for (size_t i = 0; i < sizeof(etc) / sizeof(etc[0]); i++) {
		sbx_argv_push(v, a, "--ro-bind-try");
		sbx_argv_push(v, a, etc[i]);
		sbx_argv_push(v, a, etc[i]);
	}
	sbx_argv_push(v, a, "--hostname");
	sbx_argv_push(v, a, r->name != NULL && r->name[0] != '\0' ? r->name : r->id);
	for (size_t i = 0; i < r->env.n; i++) {
		const char *eq = strchr(r->env.v[i], '=');
		char key[256];
		snprintf(key, sizeof(key), "%.*s", (int)(eq - r->env.v[i]), r->env.v[i]);
		sbx_argv_push(v, a, "--setenv");
		sbx_argv_push(v, a, key);
		sbx_argv_push(v, a, eq + 1);
	}
	/*
	 * The keeper is sandproc-holder's keep mode, bound in read-only: as the
	 * sandbox's user it runs the setup, says its status on fd 5 (the server
	 * waits on it), and sleeps for the sandbox's whole life.
	 */
	sbx_argv_push(v, a, "--ro-bind");
	sbx_argv_push(v, a, m->c.holder_path);
	sbx_argv_push(v, a, SBX_KEEPER);
	sbx_argv_push(v, a, "--");
	sbx_argv_push(v, a, SBX_KEEPER);
	sbx_argv_push(v, a, "keep");
	snprintf(uid, sizeof(uid), "%d", (int)r->uid);
	sbx_argv_push(v, a, r->run_as_root ? "-" : uid);
	sbx_argv_push(v, a, r->setup != NULL ? r->setup : "");
}

/* A memfd holding spec, positioned at its start; -1 with errno. */
static int
sbx_spec_fd(const holder_spec *hs)
{
	hbuf b;
	int fd = -1;

	memset(&b, 0, sizeof(b));
	holder_spec_write(&b, hs);
	if (!b.oom && (fd = memfd_create("sandproc-spec", MFD_CLOEXEC)) >= 0 &&
	    (write(fd, b.p, b.len) != (ssize_t)b.len || lseek(fd, 0, SEEK_SET) != 0)) {
		close(fd);
		fd = -1;
		errno = EIO;
	}
	hb_free(&b);
	return (fd);
}

/* Reads bubblewrap's --info-fd JSON up to its child-pid; the pid or 0. */
static pid_t
sbx_read_info(int fd)
{
	char buf[1024];
	size_t len = 0;
	int64_t deadline = util_mono_ms() + SBX_KEEPER_INFO_MS;

	while (len < sizeof(buf) - 1) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - util_mono_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
			break;
		}
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0) {
			break;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if (strchr(buf, '}') != NULL) {
			break;
		}
	}
	buf[len] = '\0';
	const char *k = strstr(buf, "\"child-pid\":");
	return (k != NULL ? (pid_t)strtol(k + 12, NULL, 10) : 0);
}

/*
 * Starts s's keeper: the holder's exec mode joins the keeper's cgroup and
 * execs bubblewrap in a session of its own (it outlives the server). On
 * success s->rec.pid is the sandbox's init and s->ready_fd waits for the
 * setup. SP_OK or a status with the cause in err.
 */
static int
sbx_keeper_start(sandboxes *m, sbx *s, const char *dir, char *err, size_t errlen)
{
	char ws[4200], log[4200], procs[CG_MAX_DIRS + 1][CG_PATH_MAX];
	char *procv[CG_MAX_DIRS + 1];
	int info[2] = { -1, -1 }, ready[2] = { -1, -1 }, specfd = -1, e;
	sp_arena *a = sp_arena_new();
	sp_strv_t argv;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	pid_t pid = 0;

	if (a == NULL) {
		snprintf(err, errlen, "out of memory");
		return (SP_RESOURCE_EXHAUSTED);
	}
	if (!util_fmt(ws, sizeof(ws), "%s/workspace", dir) ||
	    !util_fmt(log, sizeof(log), "%s/setup.log", dir)) {
		sp_arena_free(a);
		snprintf(err, errlen, "data dir path too long");
		return (SP_INVALID_ARGUMENT);
	}
	if ((e = cg_leaf_make(&m->cg, s->rec.id, "keeper", CG_ALL, procs, CG_MAX_DIRS + 1)) != 0 &&
	    m->cg.version != 0) {
		snprintf(err, errlen, "cgroup: %s", errors_text(e));
		sp_arena_free(a);
		return (errors_status(e));
	}
	size_t np = 0;
	for (; m->cg.version != 0 && np < CG_MAX_DIRS && procs[np][0] != '\0'; np++) {
		procv[np] = procs[np];
	}
	procv[np] = NULL;
	sbx_keeper_argv(m, s, ws, &argv, a);
	char *env[] = { SBX_PATH, NULL };
	holder_spec hs = {
		.id = s->rec.id,
		.exe = m->bwrap,
		.argv = (char **)argv.v,
		.env = env,
		.uid = -1,
		.gid = -1,
		.cgroup_procs = procv,
	};
	char *const hargv[] = { (char *)m->c.holder_path, "exec", NULL };
	char *const henv[] = { NULL };
	if ((specfd = sbx_spec_fd(&hs)) < 0 || pipe2(info, O_CLOEXEC) != 0 || pipe2(ready, O_CLOEXEC) != 0) {
		e = errno;
		snprintf(err, errlen, "keeper: %s", errors_text(e));
		goto fail;
	}
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	if ((e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) == 0 &&
	    (e = posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600)) == 0 &&
	    (e = posix_spawn_file_actions_adddup2(&fa, 1, 2)) == 0 &&
	    (e = posix_spawn_file_actions_adddup2(&fa, specfd, 3)) == 0 &&
	    (e = posix_spawn_file_actions_adddup2(&fa, info[1], 4)) == 0 &&
	    (e = posix_spawn_file_actions_adddup2(&fa, ready[1], 5)) == 0 &&
	    (e = posix_spawnattr_setsigmask(&attr, &none)) == 0 &&
	    (e = posix_spawnattr_setsigdefault(&attr, &all)) == 0 &&
	    (e = posix_spawnattr_setflags(
	         &attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) == 0) {
		e = posix_spawn(&pid, m->c.holder_path, &fa, &attr, hargv, henv);
	}
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(info[1]);
	close(ready[1]);
	info[1] = ready[1] = -1;
	if (e != 0) {
		snprintf(err, errlen, "keeper: %s", errors_text(e));
		goto fail;
	}
	s->outer = pid;
	if ((s->rec.pid = sbx_read_info(info[0])) <= 0) {
		kill(pid, SIGKILL);
		sbx_reap(s, true);
		snprintf(err, errlen, "bubblewrap did not start the sandbox (see %s)", log);
		e = EIO;
		goto fail;
	}
	s->rec.pid_start = procfs_pid_start_time(s->rec.pid);
	snprintf(s->rec.boot_id, sizeof(s->rec.boot_id), "%s", m->c.boot_id);
	s->ready_fd = ready[0];
	ready[0] = -1;
	close(info[0]);
	close(specfd);
	sp_arena_free(a);
	return (SP_OK);
fail:
	for (int i = 0; i < 2; i++) {
		if (info[i] >= 0) {
			close(info[i]);
		}
		if (ready[i] >= 0) {
			close(ready[i]);
		}
	}
	if (specfd >= 0) {
		close(specfd);
	}
	sp_arena_free(a);
	return (e == EIO ? SP_INTERNAL : errors_status(e));
}

/* The last line of path (the setup's output), for an error. */
static void
sbx_last_line(const char *path, char *out, size_t len)
{
	char buf[512];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	out[0] = '\0';
	if (fd < 0) {
		return;
	}
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, from);
	close(fd);
	if (n <= 0) {
		return;
	}
	while (n > 0 && buf[n - 1] == '\n') {
		n--;
	}
	buf[n] = '\0';
	char *nl = strrchr(buf, '\n');
	if (!util_fmt(out, len, "%s", nl != NULL ? nl + 1 : buf)) {
		/* cut: the end of a long line is enough */
	}
}

/* The keeper's init and its children are the last the OOM killer may pick. */
static void
sbx_protect_keeper(pid_t init)
{
	char path[96], kids[256];

	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int)init);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = write(fd, "-1000", 5);
		(void)n;
		close(fd);
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)init, (int)init);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return;
	}
	ssize_t n = read(fd, kids, sizeof(kids) - 1);
	close(fd);
	kids[n > 0 ? n : 0] = '\0';
	for (char *p = kids, *end; *p != '\0'; p = end) {
		long pid = strtol(p, &end, 10);
		if (end == p) {
			break;
		}
		snprintf(path, sizeof(path), "/proc/%ld/oom_score_adj", pid);
		if ((fd = open(path, O_WRONLY | O_CLOEXEC)) >= 0) {
			ssize_t w = write(fd, "-1000", 5);
			(void)w;
			close(fd);
		}
	}
}

/* Waits for the setup's status (a worker): the sandbox is then ready or failed. */
static void
sbx_ready_job(workq_job *job)
{
	sbx *s = containerof(job, sbx, job);
	sandboxes *m = s->m;
	char buf[32], why[600], last[300], log[4200];
	size_t len = 0;
	ssize_t n;

	while (len < sizeof(buf) - 1 && !m->stopping) {
		struct pollfd pfd = { .fd = s->ready_fd, .events = POLLIN };
		if (poll(&pfd, 1, 200) == 0) {
			continue;
		}
		if ((n = read(s->ready_fd, buf + len, sizeof(buf) - 1 - len)) == 0 ||
		    (n < 0 && errno != EINTR)) {
			break;
		}
		len += n > 0 ? (size_t)n : 0;
	}
	if (m->stopping) {
		/* Left creating: the next server says it was cut short. */
		close(s->ready_fd);
		s->ready_fd = -1;
		pthread_mutex_lock(&m->mu);
		sbx_unref(s);
		pthread_mutex_unlock(&m->mu);
		return;
	}
	buf[len] = '\0';
	close(s->ready_fd);
	s->ready_fd = -1;
	pthread_mutex_lock(&m->mu);
	if (s->rec.state == sandproc_v1_SandboxState_SANDBOX_STATE_CREATING) {
		if (len > 0 && strtol(buf, NULL, 10) == 0 && sbx_keeper_alive(s)) {
			sbx_protect_keeper(s->rec.pid);
			sbx_set_state(m, s, sandproc_v1_SandboxState_SANDBOX_STATE_READY, NULL);
		} else {
			snprintf(log, sizeof(log), "%s/%s/setup.log", m->dir, s->rec.id);
			sbx_last_line(log, last, sizeof(last));
			if (len > 0) {
				snprintf(why, sizeof(why), "setup exited with code %ld%s%s",
				    strtol(buf, NULL, 10), last[0] ? ": " : "", last);
			} else {
				snprintf(why, sizeof(why), "the sandbox's init ended before it was ready%s%s",
				    last[0] ? ": " : "", last);
			}
			if (sbx_keeper_alive(s)) {
				kill(s->rec.pid, SIGKILL);
			}
			sbx_reap(s, true);
			sbx_set_state(m, s, sandproc_v1_SandboxState_SANDBOX_STATE_FAILED, why);
		}
	}
	sbx_unref(s);
	pthread_mutex_unlock(&m->mu);
}

/* --- create, get, list ---------------------------------------------------------------- */

static int
sbx_fail(char *err, size_t errlen, int code, const char *fmt, const char *what)
{
	snprintf(err, errlen, fmt, what);
	return (code);
}

/* KEY=value entries with a non-empty key of [A-Za-z0-9_.-]. */
static int
sbx_check_pairs(const sp_strv_t *v, const char *field, char *err, size_t errlen)
{
	if (v->n > SP_MAX_LABELS) {
		snprintf(err, errlen, "%s has %zu entries; the limit is %d", field, v->n, SP_MAX_LABELS);
		return (SP_INVALID_ARGUMENT);
	}
	for (size_t i = 0; i < v->n; i++) {
		const char *eq = strchr(v->v[i], '=');
		if (eq == NULL || eq == v->v[i] || strlen(v->v[i]) > SP_MAX_LABEL_BYTES) {
			snprintf(err, errlen, "%s entry \"%.64s\" must be KEY=value (at most %d bytes)",
			    field, v->v[i], SP_MAX_LABEL_BYTES);
			return (SP_INVALID_ARGUMENT);
		}
	}
	return (SP_OK);
}

/* A uid no other sandbox has. Caller holds m->mu. */
static int
sbx_pick_uid(sandboxes *m)
{
	for (;;) {
		char id[IDS_MAX];
		ids_new(id, "");
		uint32_t uid = SBX_UID_BASE + (uint32_t)(strtoul(id + 18, NULL, 16) % SBX_UID_SPAN);
		bool used = false;
		for (dnode *n = m->all.head; n != NULL && !used; n = n->next) {
			used = containerof(n, sbx, node)->rec.uid == (int32_t)uid;
		}
		if (!used) {
			return ((int)uid);
		}
	}
}

int
sandboxes_create(sandboxes *m, const sandproc_v1_CreateSandboxRequest *req, const char *tenant,
    sandproc_v1_Sandbox *out, sp_arena *arena, char *err, size_t errlen)
{
	char dir[4200], ws[4300];
	int code;

	if (m->bwrap[0] == '\0') {
		return (sbx_fail(err, errlen, SP_FAILED_PRECONDITION,
		    "sandboxes need bubblewrap (bwrap), which is not installed%s", ""));
	}
	const char *name = req->name != NULL ? req->name : "";
	if (strlen(name) > 63) {
		return (
		    sbx_fail(err, errlen, SP_INVALID_ARGUMENT, "name \"%.63s...\" is over 63 bytes", name));
	}
	for (const char *c = name; *c != '\0'; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		        *c == '-')) {
			return (sbx_fail(err, errlen, SP_INVALID_ARGUMENT,
			    "name \"%s\" may have only letters, digits and '-' (it is the sandbox's "
			    "hostname)",
			    name));
		}
	}
	if (req->network[0] != '\0' && strcmp(req->network, "none") != 0 &&
	    strcmp(req->network, "host") != 0) {
		return (sbx_fail(
		    err, errlen, SP_INVALID_ARGUMENT, "network \"%s\" must be none or host", req->network));
	}
	if (req->expose[0] != '\0' && strcmp(req->expose, "auto") != 0 &&
	    strcmp(req->expose, "manual") != 0) {
		return (sbx_fail(
		    err, errlen, SP_INVALID_ARGUMENT, "expose \"%s\" must be auto or manual", req->expose));
	}
	if (req->setup != NULL && strlen(req->setup) > SBX_MAX_SETUP) {
		return (sbx_fail(err, errlen, SP_INVALID_ARGUMENT, "setup is over %s bytes", "65536"));
	}
	if (req->has_limits &&
	    (req->limits.cpus < 0 || (req->limits.cpus > 0 && req->limits.cpus < 0.01) ||
	        (req->limits.memory_bytes > 0 && req->limits.memory_bytes < 4u << 20))) {
		return (sbx_fail(err, errlen, SP_INVALID_ARGUMENT,
		    "limits: cpus must be 0 or at least 0.01, memory_bytes 0 or at least 4 MiB%s", ""));
	}
	if ((code = sbx_check_pairs(&req->labels, "labels", err, errlen)) != SP_OK ||
	    (code = sbx_check_pairs(&req->env, "env", err, errlen)) != SP_OK) {
		return (code);
	}
	sbx *s = calloc(1, sizeof(*s));
	if (s == NULL || (s->arena = sp_arena_new()) == NULL) {
		free(s);
		return (sbx_fail(err, errlen, SP_RESOURCE_EXHAUSTED, "out of memory%s", ""));
	}
	s->m = m;
	s->refs = 1;
	s->ready_fd = -1;
	sandproc_v1_Sandbox *r = &s->rec;
	ids_new(r->id, SBX_PREFIX);
	r->name = sp_arena_strdup(s->arena, name);
	r->template =
	    sp_arena_strdup(s->arena, req->template != NULL && req->template[0] ? req->template : "default");
	r->setup = sp_arena_strdup(s->arena, req->setup != NULL ? req->setup : "");
	snprintf(r->network, sizeof(r->network), "%s", req->network[0] ? req->network : "none");
	snprintf(r->expose, sizeof(r->expose), "%s", req->expose[0] ? req->expose : "auto");
	r->run_as_root = req->run_as_root;
	r->has_limits = true;
	r->limits = req->limits;
	r->created_at_ms = util_now_ms();
	snprintf(r->tenant, sizeof(r->tenant), "%s", tenant);
	r->state = sandproc_v1_SandboxState_SANDBOX_STATE_CREATING;
	snprintf(dir, sizeof(dir), "%s/%s", m->dir, r->id);
	snprintf(ws, sizeof(ws), "%s/workspace", dir);
	r->workspace = sp_arena_strdup(s->arena, ws);
	if (sbx_copy_strv(&r->labels, &req->labels, s->arena) != 0 ||
	    sbx_copy_strv(&r->env, &req->env, s->arena) != 0) {
		sbx_unref(s);
		return (sbx_fail(err, errlen, SP_RESOURCE_EXHAUSTED, "out of memory%s", ""));
	}
	/* The workspace belongs to the sandbox's user; the directory above it only to root. */
	pthread_mutex_lock(&m->mu);
	r->uid = r->run_as_root ? 0 : sbx_pick_uid(m);
	pthread_mutex_unlock(&m->mu);
	int e;
	if ((e = util_mkdirs(ws)) != 0 || chmod(dir, 0711) != 0 ||
	    chown(ws, (uid_t)r->uid, (gid_t)r->uid) != 0 || chmod(ws, 0755) != 0) {
		e = e ? e : errno;
		snprintf(err, errlen, "workspace %s: %s", ws, errors_text(e));
		sbx_unref(s);
		return (errors_status(e));
	}
	cg_limits lim = {
		.memory_bytes = r->limits.memory_bytes, .pids = r->limits.pids, .cpus = r->limits.cpus
	};
	char note[256] = "";
	if (m->cg.version == 0) {
		if (lim.memory_bytes || lim.pids || lim.cpus > 0) {
			snprintf(note, sizeof(note), "limits not applied: no writable cgroups on this host");
		}
	} else if ((e = cg_sandbox_make(&m->cg, r->id, &lim, note, sizeof(note))) != 0) {
		snprintf(note, sizeof(note), "limits not applied: cgroup: %s", errors_text(e));
	}
	r->limits_note = sp_arena_strdup(s->arena, note);
	if ((code = sbx_keeper_start(m, s, dir, err, errlen)) != SP_OK) {
		cg_sandbox_remove(&m->cg, r->id);
		pthread_mutex_lock(&m->mu);
		dlist_push(&m->all, &s->node);
		sbx_set_state(m, s, sandproc_v1_SandboxState_SANDBOX_STATE_FAILED, err);
		code = sbx_copy(out, r, arena) == 0 ? SP_OK : SP_RESOURCE_EXHAUSTED;
		pthread_mutex_unlock(&m->mu);
		return (code);
	}
	pthread_mutex_lock(&m->mu);
	dlist_push(&m->all, &s->node);
	sbx_store(m, s);
	sbx_publish(m, s, "creating");
	code = sbx_copy(out, r, arena) == 0 ? SP_OK : SP_RESOURCE_EXHAUSTED;
	s->refs++; /* the job's */
	s->job.fn = sbx_ready_job;
	workq_post(m->c.wq, &s->job);
	pthread_mutex_unlock(&m->mu);
	return (code);
}

static int
sbx_not_found(const char *id, char *err, size_t errlen)
{
	snprintf(err, errlen, "no sandbox \"%s\"%s", id,
	    strncmp(id, SBX_PREFIX, 4) != 0 ? " (ids look like sbx_ + 24 hex digits)" : "");
	return (SP_NOT_FOUND);
}

/* Sandbox id, checked, with m->mu held; or NULL (unlocked) with NOT_FOUND's text in err. */
static sbx *
sbx_lookup(sandboxes *m, const char *id, char *err, size_t errlen)
{
	pthread_mutex_lock(&m->mu);
	sbx *s = sbx_find(m, id);
	if (s == NULL) {
		pthread_mutex_unlock(&m->mu);
		sbx_not_found(id, err, errlen);
		return (NULL);
	}
	sbx_check(m, s);
	return (s);
}

int
sandboxes_net(sandboxes *m, const char *id, sandboxes_net_info *out)
{
	char err[200];
	sbx *s = sbx_lookup(m, id, err, sizeof(err));

	if (s == NULL) {
		return (SP_NOT_FOUND);
	}
	int code = s->rec.state == sandproc_v1_SandboxState_SANDBOX_STATE_READY && s->rec.pid > 0
	    ? SP_OK
	    : SP_FAILED_PRECONDITION;
	out->pid = s->rec.pid;
	out->pid_start = s->rec.pid_start;
	out->own_netns = strcmp(s->rec.network, "host") != 0;
	/* Records from before the field: auto, the default. */
	out->auto_expose = strcmp(s->rec.expose, "manual") != 0;
	snprintf(out->tenant, sizeof(out->tenant), "%s", s->rec.tenant);
	pthread_mutex_unlock(&m->mu);
	return (code);
}

int
sandboxes_get(
    sandboxes *m, const char *id, sandproc_v1_Sandbox *out, sp_arena *arena, char *err, size_t errlen)
{
	int code;
	sbx *s = sbx_lookup(m, id, err, errlen);

	if (s == NULL) {
		return (SP_NOT_FOUND);
	}
	code = sbx_copy(out, &s->rec, arena) == 0 ? SP_OK : SP_RESOURCE_EXHAUSTED;
	pthread_mutex_unlock(&m->mu);
	return (code);
}

static bool
sbx_has_labels(const sbx *s, const sp_strv_t *want)
{
	for (size_t i = 0; i < want->n; i++) {
		bool found = false;
		for (size_t k = 0; k < s->rec.labels.n && !found; k++) {
			found = strcmp(s->rec.labels.v[k], want->v[i]) == 0;
		}
		if (!found) {
			return (false);
		}
	}
	return (true);
}

int
sandboxes_list(sandboxes *m, const sandproc_v1_ListSandboxesRequest *req, const char *only_id,
    sandproc_v1_ListSandboxesReply *rep, sp_arena *arena, char *err, size_t errlen)
{
	uint32_t limit = req->limit == 0 || req->limit > SBX_LIST_MAX ? SBX_LIST_MAX : req->limit;
	bool started = req->page_token[0] == '\0';

	if (req->state < 0 || req->state > sandproc_v1_SandboxState_SANDBOX_STATE_DELETING) {
		snprintf(err, errlen, "unknown state %d", (int)req->state);
		return (SP_INVALID_ARGUMENT);
	}
	pthread_mutex_lock(&m->mu);
	if (!started && sbx_find(m, req->page_token) == NULL) {
		pthread_mutex_unlock(&m->mu);
		snprintf(
		    err, errlen, "bad page_token \"%s\" (that sandbox is gone: list again)", req->page_token);
		return (SP_INVALID_ARGUMENT);
	}
	/* Newest first; the token is the last id of the previous page. */
	for (dnode *n = m->all.tail; n != NULL; n = n->prev) {
		sbx *s = containerof(n, sbx, node);
		if (!started) {
			started = strcmp(s->rec.id, req->page_token) == 0;
			continue;
		}
		sbx_check(m, s);
		if ((req->state != 0 && s->rec.state != req->state) || !sbx_has_labels(s, &req->labels) ||
		    (req->tenant[0] != '\0' && strcmp(s->rec.tenant, req->tenant) != 0) ||
		    (only_id != NULL && only_id[0] != '\0' && strcmp(s->rec.id, only_id) != 0)) {
			continue;
		}
		if (rep->sandboxes_count == limit) {
			snprintf(rep->next_page_token, sizeof(rep->next_page_token), "%s",
			    rep->sandboxes[rep->sandboxes_count - 1].id);
			break;
		}
		if (sbx_copy(&rep->sandboxes[rep->sandboxes_count], &s->rec, arena) != 0) {
			pthread_mutex_unlock(&m->mu);
			snprintf(err, errlen, "out of memory");
			return (SP_RESOURCE_EXHAUSTED);
		}
		rep->sandboxes_count++;
	}
	pthread_mutex_unlock(&m->mu);
	return (SP_OK);
}

/* --- readiness ------------------------------------------------------------------------ */

int
sandboxes_readiness(sandboxes *m, const char *id, sandproc_v1_ReadinessReply *rep, char *err, size_t errlen)
{
	sbx *s = sbx_lookup(m, id, err, errlen);

	if (s == NULL) {
		return (SP_NOT_FOUND);
	}
	rep->state = s->rec.state;
	rep->ready = s->rec.state == sandproc_v1_SandboxState_SANDBOX_STATE_READY;
	snprintf(rep->message, sizeof(rep->message), "%s%s%s", sbx_state_name(s->rec.state),
	    s->rec.error != NULL && s->rec.error[0] ? ": " : "", s->rec.error != NULL ? s->rec.error : "");
	pthread_mutex_unlock(&m->mu);
	return (SP_OK);
}

static void
sbx_detach(waiter *w)
{
	sandboxes *m = w->owner;

	pthread_mutex_lock(&m->mu);
	if (waiter_linked(w)) {
		sbx *s = w->owner_data;
		waitlist_remove(&s->ready_waiters, w);
	}
	pthread_mutex_unlock(&m->mu);
}

bool
sandboxes_watch_ready(sandboxes *m, const char *id, waiter *w)
{
	bool linked = false;

	pthread_mutex_lock(&m->mu);
	sbx *s = sbx_find(m, id);
	if (s != NULL && s->rec.state == sandproc_v1_SandboxState_SANDBOX_STATE_CREATING) {
		w->owner = m;
		w->owner_data = s;
		w->detach = sbx_detach;
		waitlist_add(&s->ready_waiters, w);
		linked = true;
	}
	pthread_mutex_unlock(&m->mu);
	return (linked);
}

/* --- delete --------------------------------------------------------------------------- */

static int
sbx_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return (0);
}

int
sandboxes_delete(
    sandboxes *m, const char *id, bool keep_workspace, uint32_t grace_ms, char *err, size_t errlen)
{
	char dir[4200];

	pthread_mutex_lock(&m->mu);
	sbx *s = sbx_find(m, id);
	if (s == NULL) {
		pthread_mutex_unlock(&m->mu);
		return (sbx_not_found(id, err, errlen));
	}
	if (s->rec.state == sandproc_v1_SandboxState_SANDBOX_STATE_DELETING) {
		pthread_mutex_unlock(&m->mu);
		snprintf(err, errlen, "sandbox %s is being deleted already", id);
		return (SP_FAILED_PRECONDITION);
	}
	s->refs++;
	sbx_set_state(m, s, sandproc_v1_SandboxState_SANDBOX_STATE_DELETING, NULL);
	pthread_mutex_unlock(&m->mu);

	/* Its processes first, as Stop does (their records say killed); then whatever is left. */
	supervisor_stop_where(m->c.sup, id, grace_ms ? grace_ms : 5000);
	if (sbx_keeper_alive(s)) {
		kill(s->rec.pid, SIGKILL); /* the PID namespace ends with its init */
	}
	sbx_reap(s, true); /* deleting: no one else waits for it now */
	cg_sandbox_remove(&m->cg, id);
	snprintf(dir, sizeof(dir), "%s/%s", m->dir, id);
	if (keep_workspace) {
		char log[4300];
		snprintf(log, sizeof(log), "%s/setup.log", dir);
		unlink(log);
	} else {
		/* Physical walk: a link the sandbox made is removed, never followed. */
		nftw(dir, sbx_rm, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	}
	int rv = store_delete_sandbox(m->c.st, id);
	pthread_mutex_lock(&m->mu);
	sbx_publish(m, s, "deleted");
	waitlist_wake_all(&s->ready_waiters);
	dlist_remove(&m->all, &s->node);
	s->refs--; /* the list's; ours goes below */
	sbx_unref(s);
	pthread_mutex_unlock(&m->mu);
	if (rv != 0) {
		snprintf(err, errlen, "sandbox %s is torn down, but its record could not be deleted: %s", id,
		    errors_text(rv));
		return (errors_status(rv));
	}
	return (SP_OK);
}

/* --- placing processes ---------------------------------------------------------------- */

typedef struct sbx_place_ctx {
	sandboxes *m;
	char sbx[IDS_MAX];
	char leaf[32];
	uint64_t memory_bytes;
} sbx_place_ctx;

static void
sbx_place_signal(void *ctx, int sig)
{
	sbx_place_ctx *c = ctx;
	cg_leaf_signal(&c->m->cg, c->sbx, c->leaf, sig);
}

static void
sbx_place_ended(void *ctx, int wstatus, char *why, size_t len)
{
	sbx_place_ctx *c = ctx;

	why[0] = '\0';
	if (WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL &&
	    cg_leaf_oom_kills(&c->m->cg, c->sbx, c->leaf) > 0) {
		snprintf(why, len,
		    "killed by the kernel's OOM killer: the sandbox's memory limit is %" PRIu64 " bytes",
		    c->memory_bytes);
	}
}

static size_t
sbx_place_members(void *ctx, pid_t *out, size_t max)
{
	sbx_place_ctx *c = ctx;
	return (cg_leaf_pids(&c->m->cg, c->sbx, c->leaf, out, max));
}

static void
sbx_place_release(void *ctx)
{
	sbx_place_ctx *c = ctx;
	cg_leaf_remove(&c->m->cg, c->sbx, c->leaf);
	free(c);
}

static const spawn_place_ops sbx_place_ops = {
	.signal = sbx_place_signal,
	.ended = sbx_place_ended,
	.members = sbx_place_members,
	.release = sbx_place_release,
};

/* "/workspace" joined with cwd, "." and ".." resolved by name; false when it leaves /workspace. */
static bool
sbx_inside(const char *cwd, char *out, size_t len)
{
	size_t k = strlen(SBX_WORKSPACE), base = k;

	if (len < k + 2) {
		return (false);
	}
	memcpy(out, SBX_WORKSPACE, k + 1);
	if (cwd == NULL) {
		return (true);
	}
	if (cwd[0] == '/') {
		/* An absolute cwd must name a place under /workspace. */
		if (strncmp(cwd, SBX_WORKSPACE, base) != 0 || (cwd[base] != '\0' && cwd[base] != '/')) {
			return (false);
		}
		cwd += base;
	}
	for (const char *p = cwd; *p != '\0';) {
		while (*p == '/') {
			p++;
		}
		const char *e = p;
		while (*e != '\0' && *e != '/') {
			e++;
		}
		size_t n = (size_t)(e - p);
		if (n == 0 || (n == 1 && p[0] == '.')) {
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (k == base) {
				return (false);
			}
			while (k > base && out[k - 1] != '/') {
				k--;
			}
			k--;
			out[k] = '\0';
		} else {
			if (k + 1 + n + 1 > len) {
				return (false);
			}
			out[k++] = '/';
			memcpy(out + k, p, n);
			k += n;
			out[k] = '\0';
		}
		p = e;
	}
	return (true);
}

int
sandboxes_place(sandboxes *m, const char *id, bool for_run, const char *request_cwd, const sp_strv_t *req_env,
    spawn_spec *spec, sp_arena *arena, char *err, size_t errlen)
{
	char cwd[4200];
	int32_t ns_pid, uid;
	uint64_t ns_start, memory;
	bool root;
	sp_strv_t base;

	if (!sbx_inside(request_cwd != NULL && request_cwd[0] ? request_cwd : NULL, cwd, sizeof(cwd))) {
		snprintf(err, errlen,
		    "cwd \"%s\" leaves the sandbox's workspace (it is relative to /workspace)", request_cwd);
		return (SP_INVALID_ARGUMENT);
	}
	memset(&base, 0, sizeof(base));
	sbx *s = sbx_lookup(m, id, err, errlen);
	if (s == NULL) {
		return (SP_NOT_FOUND);
	}
	if (s->rec.state != sandproc_v1_SandboxState_SANDBOX_STATE_READY) {
		snprintf(err, errlen, "sandbox %s is %s%s%s", id, sbx_state_name(s->rec.state),
		    s->rec.error != NULL && s->rec.error[0] ? ": " : ", not ready",
		    s->rec.error != NULL ? s->rec.error : "");
		pthread_mutex_unlock(&m->mu);
		return (SP_FAILED_PRECONDITION);
	}
	ns_pid = s->rec.pid;
	ns_start = s->rec.pid_start;
	uid = s->rec.uid;
	root = s->rec.run_as_root;
	memory = s->rec.limits.memory_bytes;
	bool pids_limit = s->rec.limits.pids > 0, cpus_limit = s->rec.limits.cpus > 0;
	/* A clean environment: none of the server's. */
	bool ok = sp_strv_push(&base, SBX_PATH, arena) && sp_strv_push(&base, "HOME=" SBX_WORKSPACE, arena) &&
	    sp_strv_push(&base, "LANG=C.UTF-8", arena);
	for (size_t i = 0; ok && i < s->rec.env.n; i++) {
		ok = sp_strv_push(&base, sp_arena_strdup(arena, s->rec.env.v[i]), arena);
	}
	unsigned seq = ++m->leaf_seq;
	pthread_mutex_unlock(&m->mu);
	const sp_strv_t none = { 0 };
	/* The sandbox's own entries replace the defaults, the request's replace both. */
	const char **env1 = ok ? request_env((const char *const *)base.v, &none, false, arena) : NULL;
	const char **env =
	    env1 != NULL ? request_env(env1, req_env != NULL ? req_env : &none, spec->tty, arena) : NULL;
	spawn_place *pl = sp_arena_alloc(arena, sizeof(*pl));
	char(*procs)[CG_PATH_MAX] = sp_arena_alloc(arena, (CG_MAX_DIRS + 1) * CG_PATH_MAX);
	char *leaf = sp_arena_alloc(arena, 32);
	char *cwd_copy = sp_arena_strdup(arena, cwd);
	if (env == NULL || pl == NULL || procs == NULL || leaf == NULL || cwd_copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return (SP_RESOURCE_EXHAUSTED);
	}
	memset(pl, 0, sizeof(*pl));
	pl->ns_pid = ns_pid;
	pl->ns_pid_start = ns_start;
	pl->uid = pl->gid = root ? -1 : uid;
	snprintf(leaf, 32, for_run ? "runs" : "p%u-%d", seq, (int)getpid());
	/*
	 * A managed process gets a leaf in every hierarchy (Stop and Kill reach
	 * all it starts; an OOM is told apart). A Run's child is only put where
	 * a limit needs it: each cgroup move costs (v1: a synchronize_rcu).
	 */
	unsigned mask = CG_ALL;
	if (for_run) {
		mask = (memory ? 1u << CG_MEMORY : 0) | (pids_limit ? 1u << CG_PIDS : 0) |
		    (cpus_limit ? 1u << CG_CPU : 0);
	}
	procs[0][0] = '\0';
	int e = m->cg.version != 0 && mask != 0 ? cg_leaf_make(&m->cg, id, leaf, mask, procs, CG_MAX_DIRS + 1)
	                                        : 0;
	if (e != 0) {
		snprintf(err, errlen, "sandbox %s: cgroup: %s", id, errors_text(e));
		return (errors_status(e));
	}
	for (size_t i = 0; m->cg.version != 0 && mask != 0 && i < CG_MAX_DIRS && procs[i][0] != '\0'; i++) {
		pl->cgroup_procs[i] = procs[i];
	}
	spec->env = env;
	spec->cwd = cwd_copy;
	if (!for_run) {
		sbx_place_ctx *c = calloc(1, sizeof(*c));
		if (c == NULL) {
			cg_leaf_remove(&m->cg, id, leaf);
			snprintf(err, errlen, "out of memory");
			return (SP_RESOURCE_EXHAUSTED);
		}
		c->m = m;
		snprintf(c->sbx, sizeof(c->sbx), "%s", id);
		snprintf(c->leaf, sizeof(c->leaf), "%s", leaf);
		c->memory_bytes = memory;
		pl->ops = &sbx_place_ops;
		pl->ctx = c;
		spec->place = pl;
		return (SP_OK);
	}
	/* A Run: the holder's exec mode enters the sandbox and execs the program (looked up inside). */
	holder_spec hs = {
		.id = "run",
		.exe = (char *)spec->argv[0],
		.argv = (char **)spec->argv,
		.env = (char **)env,
		.cwd = cwd_copy,
		.ns_pid = pl->ns_pid,
		.ns_pid_start = pl->ns_pid_start,
		.uid = pl->uid,
		.gid = pl->gid,
		.cgroup_procs = (char **)pl->cgroup_procs,
	};
	int fd = sbx_spec_fd(&hs);
	const char **hargv = sp_arena_alloc(arena, 3 * sizeof(*hargv));
	if (fd < 0 || hargv == NULL) {
		if (fd >= 0) {
			close(fd);
		}
		snprintf(err, errlen, "out of memory");
		return (SP_RESOURCE_EXHAUSTED);
	}
	hargv[0] = m->c.holder_path;
	hargv[1] = "exec";
	hargv[2] = NULL;
	spec->argv = hargv;
	spec->argc = 2;
	spec->cwd = NULL;
	spec->fd3 = fd;
	spec->place = NULL;
	return (SP_OK);
}

/* Host processes' cgroups: pids (listing) and freezer are enough to reach every descendant. */
#define SBX_HOST_MASK ((1u << CG_PIDS) | (1u << CG_FREEZER))

int
sandboxes_place_host(sandboxes *m, spawn_spec *spec, sp_arena *arena)
{
	char(*procs)[CG_PATH_MAX];
	spawn_place *pl;
	sbx_place_ctx *c;

	if (m->cg.version == 0 || !m->host_cgroups) {
		return (SP_OK); /* no cgroups: Stop reaches the process group, as before */
	}
	if ((procs = sp_arena_alloc(arena, (CG_MAX_DIRS + 1) * CG_PATH_MAX)) == NULL ||
	    (pl = sp_arena_alloc(arena, sizeof(*pl))) == NULL || (c = calloc(1, sizeof(*c))) == NULL) {
		return (SP_OK);
	}
	pthread_mutex_lock(&m->mu);
	unsigned seq = ++m->leaf_seq;
	pthread_mutex_unlock(&m->mu);
	c->m = m;
	snprintf(c->sbx, sizeof(c->sbx), "%s", m->host_group);
	snprintf(c->leaf, sizeof(c->leaf), "p%u-%d", seq, (int)getpid());
	if (cg_leaf_make(&m->cg, m->host_group, c->leaf, SBX_HOST_MASK, procs, CG_MAX_DIRS + 1) != 0) {
		free(c);
		return (SP_OK); /* best effort: without it, Stop still reaches the group */
	}
	memset(pl, 0, sizeof(*pl));
	pl->uid = pl->gid = -1;
	for (size_t i = 0; i < CG_MAX_DIRS && procs[i][0] != '\0'; i++) {
		pl->cgroup_procs[i] = procs[i];
	}
	pl->ops = &sbx_place_ops;
	pl->ctx = c;
	spec->place = pl;
	return (SP_OK);
}

/* --- start-up ------------------------------------------------------------------------- */

static void
sbx_load(void *arg, const void *record, size_t len)
{
	sandboxes *m = arg;
	sbx *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->arena = sp_arena_new()) == NULL) {
		free(s);
		return;
	}
	s->m = m;
	s->refs = 1;
	s->ready_fd = -1;
	if (!sp_pb_decode(sandproc_v1_Sandbox_fields, &s->rec, sizeof(s->rec), record, len, s->arena, NULL)) {
		util_log("a stored sandbox record could not be read: skipped");
		sbx_unref(s);
		return;
	}
	if (s->rec.tenant[0] == '\0') {
		snprintf(s->rec.tenant, sizeof(s->rec.tenant), "default"); /* made before tenants */
	}
	dlist_push(&m->all, &s->node);
	bool alive = strcmp(s->rec.boot_id, m->c.boot_id) == 0 && sbx_keeper_alive(s);
	switch (s->rec.state) {
	case sandproc_v1_SandboxState_SANDBOX_STATE_READY:
		if (!alive) {
			sbx_set_state(m, s, sandproc_v1_SandboxState_SANDBOX_STATE_FAILED,
			    "its init ended while the server was down: the sandbox's processes are gone");
		}
		break;
	case sandproc_v1_SandboxState_SANDBOX_STATE_CREATING:
	case sandproc_v1_SandboxState_SANDBOX_STATE_DELETING:
		/* Its setup's status or its teardown was the last server's to see: not guessed. */
		if (alive) {
			kill(s->rec.pid, SIGKILL);
		}
		sbx_set_state(m, s, sandproc_v1_SandboxState_SANDBOX_STATE_FAILED,
		    s->rec.state == sandproc_v1_SandboxState_SANDBOX_STATE_CREATING
		        ? "the server stopped while the sandbox was being created"
		        : "the server stopped while the sandbox was being deleted: delete it again");
		break;
	default:
		break;
	}
}

int
sandboxes_new(sandboxes **out, const sandboxes_config *c, char *err, size_t errlen)
{
	sandboxes *m = calloc(1, sizeof(*m));
	int e, errnum;

	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		return (ENOMEM);
	}
	m->c = *c;
	pthread_mutex_init(&m->mu, NULL);
	snprintf(m->dir, sizeof(m->dir), "%s/sandboxes", c->data_dir);
	if ((e = util_mkdirs(m->dir)) != 0 || chmod(m->dir, 0711) != 0) {
		e = e ? e : errno;
		snprintf(err, errlen, "%s: %s", m->dir, errors_text(e));
		sandboxes_free(m);
		return (e);
	}
	char why[256];
	if (spawn_resolve("bwrap", "/usr/local/bin:/usr/bin:/bin", NULL, m->bwrap, sizeof(m->bwrap), &errnum,
	        why, sizeof(why)) != SP_OK) {
		m->bwrap[0] = '\0';
	}
	cg_detect(&m->cg);
	/* This data dir's own group of host leaves: what an earlier server left empty goes now. */
	unsigned h = 2166136261u;
	for (const char *p = c->data_dir; *p != '\0'; p++) {
		h = (h ^ (unsigned char)*p) * 16777619u;
	}
	snprintf(m->host_group, sizeof(m->host_group), "host-%08x", h);
	cg_limits none = { 0 };
	char note[256];
	m->host_cgroups =
	    m->cg.version != 0 && cg_sandbox_make(&m->cg, m->host_group, &none, note, sizeof(note)) == 0;
	if (m->host_cgroups) {
		cg_sandbox_prune(&m->cg, m->host_group, false);
	}
	char cgs[128];
	cg_describe(&m->cg, cgs, sizeof(cgs));
	util_log("sandboxes: %s; cgroups %s",
	    m->bwrap[0] ? m->bwrap : "bubblewrap not installed (no sandboxes)", cgs);
	pthread_mutex_lock(&m->mu);
	e = store_for_each_sandbox(c->st, sbx_load, m);
	pthread_mutex_unlock(&m->mu);
	if (e != 0) {
		snprintf(err, errlen, "sandboxes: %s", store_errmsg());
		sandboxes_free(m);
		return (e);
	}
	*out = m;
	return (0);
}

void
sandboxes_stop(sandboxes *m)
{
	m->stopping = true;
}

void
sandboxes_free(sandboxes *m)
{
	if (m == NULL) {
		return;
	}
	/* Keepers are left running: sandboxes outlive the server as their processes do. */
	if (m->host_cgroups) {
		cg_sandbox_prune(&m->cg, m->host_group, true);
	}
	while (m->all.head != NULL) {
		sbx *s = containerof(m->all.head, sbx, node);
		dlist_remove(&m->all, &s->node);
		sbx_unref(s);
	}
	pthread_mutex_destroy(&m->mu);
	free(m);
}
