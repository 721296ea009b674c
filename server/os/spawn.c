#include "os/spawn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "base/util.h"
#include "sp_status.h"

extern char **environ;

#define SPAWN_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
#define SPAWN_PIPE_SIZE (1024 * 1024)

static int spawn_fail(char *err, size_t errlen, int *errnum, int code, int e, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int
spawn_fail(char *err, size_t errlen, int *errnum, int code, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	*errnum = e;
	return (code);
}

static int
spawn_errno_code(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return (SP_NOT_FOUND);
	case EACCES:
	case EPERM:
		return (SP_PERMISSION_DENIED);
	case EAGAIN:
	case ENOMEM:
	case EMFILE:
	case ENFILE:
		return (SP_RESOURCE_EXHAUSTED);
	default:
		return (SP_FAILED_PRECONDITION);
	}
}

static size_t
spawn_key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return (eq != NULL ? (size_t)(eq - kv) : strlen(kv));
}

/*
 * The child's environment: the server's, with the caller's entries replacing
 * or adding keys, and TERM set for a TTY unless the caller chose one.
 * The array and its strings are borrowed; only the array is allocated.
 */
static const char **
spawn_build_env(const spawn_opts *o, const char **path_out)
{
	size_t n = 0, k = 0;
	const char **env;
	bool term_given = false;

	while (environ[n] != NULL) {
		n++;
	}
	if ((env = calloc(n + o->envc + 2, sizeof(*env))) == NULL) {
		return (NULL);
	}
	for (size_t i = 0; i < n; i++) {
		size_t kl = spawn_key_len(environ[i]);
		bool replaced = false;
		for (size_t j = 0; j < o->envc && !replaced; j++) {
			replaced = spawn_key_len(o->env[j]) == kl && strncmp(o->env[j], environ[i], kl) == 0;
		}
		if (!replaced) {
			env[k++] = environ[i];
		}
	}
	for (size_t j = 0; j < o->envc; j++) {
		env[k++] = o->env[j];
	}
	for (size_t i = 0; i < k; i++) {
		if (strncmp(env[i], "TERM=", 5) == 0) {
			term_given = true;
		}
		if (strncmp(env[i], "PATH=", 5) == 0) {
			*path_out = env[i] + 5;
		}
	}
	/* The server's own TERM is not the PTY's: a TTY child gets an xterm. */
	if (o->tty) {
		bool caller_term = false;
		for (size_t j = 0; j < o->envc; j++) {
			caller_term |= strncmp(o->env[j], "TERM=", 5) == 0;
		}
		if (!caller_term) {
			size_t w = 0;
			for (size_t i = 0; i < k; i++) {
				if (strncmp(env[i], "TERM=", 5) != 0) {
					env[w++] = env[i];
				}
			}
			k = w;
			term_given = false;
		}
	}
	if (o->tty && !term_given) {
		env[k++] = "TERM=xterm-256color";
	}
	env[k] = NULL;
	return (env);
}

/*
 * Resolves argv[0] like execvp would, but before the child exists, so that
 * "not found" and "permission denied" are told apart and reported here.
 * A name with a slash is used as given (relative to the child's cwd).
 */
static int
spawn_resolve(const char *name, const char *path, const char *cwd, char *out, size_t outlen, int *errnum,
    char *err, size_t errlen)
{
	bool saw_eacces = false;

	if (strchr(name, '/') != NULL) {
		if (!util_fmt(out, outlen, "%s", name)) {
			return (spawn_fail(err, errlen, errnum, SP_INVALID_ARGUMENT, ENAMETOOLONG,
			    "exec \"%s\": %s", name, strerror(ENAMETOOLONG)));
		}
		return (SP_OK);
	}
	if (name[0] == '\0') {
		return (spawn_fail(err, errlen, errnum, SP_INVALID_ARGUMENT, EINVAL, "argv[0] is empty"));
	}
	if (path == NULL) {
		path = SPAWN_DEFAULT_PATH;
	}
	size_t nlen = strlen(name), clen = cwd != NULL ? strlen(cwd) : 1;
	for (const char *p = path;; p++) {
		const char *end = strchr(p, ':');
		size_t dlen = end != NULL ? (size_t)(end - p) : strlen(p);
		struct stat st;
		/* dir/name, with an empty entry meaning the cwd and a relative one under it. */
		bool rel = dlen == 0 || p[0] != '/';
		size_t need = (rel ? clen + 1 : 0) + dlen + 1 + nlen + 1;
		if (need <= outlen) {
			char *o = out;
			if (rel) {
				memcpy(o, cwd != NULL ? cwd : ".", clen);
				o += clen;
				*o++ = '/';
			}
			memcpy(o, p, dlen);
			o += dlen;
			*o++ = '/';
			memcpy(o, name, nlen + 1);
			if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
				if (access(out, X_OK) == 0) {
					return (SP_OK);
				}
				saw_eacces = true;
			}
		}
		if (end == NULL) {
			break;
		}
		p = end;
	}
	if (saw_eacces) {
		return (spawn_fail(err, errlen, errnum, SP_PERMISSION_DENIED, EACCES, "exec \"%s\": %s", name,
		    strerror(EACCES)));
	}
	return (spawn_fail(err, errlen, errnum, SP_NOT_FOUND, ENOENT, "exec \"%s\": command not found (%s)",
	    name, strerror(ENOENT)));
}

static int
spawn_check_cwd(const char *cwd, int *errnum, char *err, size_t errlen)
{
	struct stat st;

	if (stat(cwd, &st) != 0) {
		int e = errno;
		return (
		    spawn_fail(err, errlen, errnum, e == EACCES ? SP_PERMISSION_DENIED : SP_INVALID_ARGUMENT,
		        e, "cwd \"%s\": %s", cwd, strerror(e)));
	}
	if (!S_ISDIR(st.st_mode)) {
		return (spawn_fail(err, errlen, errnum, SP_INVALID_ARGUMENT, ENOTDIR, "cwd \"%s\": %s", cwd,
		    strerror(ENOTDIR)));
	}
	if (access(cwd, X_OK) != 0) {
		int e = errno;
		return (spawn_fail(
		    err, errlen, errnum, SP_PERMISSION_DENIED, e, "cwd \"%s\": %s", cwd, strerror(e)));
	}
	return (SP_OK);
}

void
spawn_close_fds(spawn_child *c)
{
	int *fds[] = { &c->pidfd, &c->in_fd, &c->out_fd, &c->err_fd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
	}
}

static void
spawn_close_pair(int p[2])
{
	for (int i = 0; i < 2; i++) {
		if (p[i] >= 0) {
			close(p[i]);
			p[i] = -1;
		}
	}
}

int
spawn_start(const spawn_opts *o, spawn_child *c, int *errnum, char *err, size_t errlen)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	int master = -1, code = SP_OK, e;
	const char *cwd = o->cwd != NULL && o->cwd[0] != '\0' ? o->cwd : NULL;
	const char *path_env = NULL;
	const char **env = NULL;
	char exe[4096], slave[128];
	posix_spawnattr_t attr;
	posix_spawn_file_actions_t fa;
	sigset_t none, all;
	pid_t pid;

	*errnum = 0;
	c->pid = -1;
	c->pidfd = c->in_fd = c->out_fd = c->err_fd = -1;
	if (o->argc == 0 || o->argv[0] == NULL) {
		return (spawn_fail(err, errlen, errnum, SP_INVALID_ARGUMENT, EINVAL, "argv is empty"));
	}
	for (size_t i = 0; i < o->envc; i++) {
		const char *eq = strchr(o->env[i], '=');
		if (eq == NULL || eq == o->env[i]) {
			return (spawn_fail(err, errlen, errnum, SP_INVALID_ARGUMENT, EINVAL,
			    "env entry \"%s\" is not KEY=value", o->env[i]));
		}
	}
	if (cwd != NULL && (code = spawn_check_cwd(cwd, errnum, err, errlen)) != SP_OK) {
		return (code);
	}
	if ((env = spawn_build_env(o, &path_env)) == NULL) {
		return (spawn_fail(err, errlen, errnum, SP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory"));
	}
	if ((code = spawn_resolve(o->argv[0], path_env, cwd, exe, sizeof(exe), errnum, err, errlen)) !=
	    SP_OK) {
		free(env);
		return (code);
	}

	if (o->tty) {
		struct winsize ws = { .ws_row = o->rows ? o->rows : 24, .ws_col = o->cols ? o->cols : 80 };
		if ((master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0 || grantpt(master) != 0 ||
		    unlockpt(master) != 0 || ptsname_r(master, slave, sizeof(slave)) != 0 ||
		    ioctl(master, TIOCSWINSZ, &ws) != 0) {
			e = errno;
			code =
			    spawn_fail(err, errlen, errnum, spawn_errno_code(e), e, "pty: %s", strerror(e));
			goto fail;
		}
	} else {
		if ((o->in == SPAWN_STDIN_PIPE && pipe2(pin, O_CLOEXEC) != 0) ||
		    pipe2(pout, O_CLOEXEC) != 0 || pipe2(perr, O_CLOEXEC) != 0) {
			e = errno;
			code =
			    spawn_fail(err, errlen, errnum, spawn_errno_code(e), e, "pipe: %s", strerror(e));
			goto fail;
		}
		if (o->big_pipes) {
			/* Best effort: the system may cap pipe sizes. */
			fcntl(pout[0], F_SETPIPE_SZ, SPAWN_PIPE_SIZE);
			fcntl(perr[0], F_SETPIPE_SZ, SPAWN_PIPE_SIZE);
		}
	}

	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_init(&fa);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	if (o->tty) {
		/* A new session; opening the slave then makes it the controlling tty. */
		posix_spawnattr_setflags(
		    &attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
	} else {
		posix_spawnattr_setpgroup(&attr, 0);
		posix_spawnattr_setflags(
		    &attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	}
	if (cwd != NULL) {
		posix_spawn_file_actions_addchdir_np(&fa, cwd);
	}
	if (o->tty) {
		posix_spawn_file_actions_addopen(&fa, 0, slave, O_RDWR, 0);
		posix_spawn_file_actions_adddup2(&fa, 0, 1);
		posix_spawn_file_actions_adddup2(&fa, 0, 2);
	} else {
		if (o->in == SPAWN_STDIN_PIPE) {
			posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
		} else {
			posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
		}
		posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
		posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
	}
	e = posix_spawn(&pid, exe, &fa, &attr, (char *const *)o->argv, (char *const *)env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (e != 0) {
		if (e == ENOENT && cwd != NULL && access(cwd, F_OK) != 0) {
			code = spawn_fail(
			    err, errlen, errnum, SP_INVALID_ARGUMENT, e, "cwd \"%s\": %s", cwd, strerror(e));
		} else {
			code = spawn_fail(err, errlen, errnum, spawn_errno_code(e), e, "exec \"%s\": %s",
			    o->argv[0], strerror(e));
		}
		goto fail;
	}
	c->pid = pid;
	/* The child is ours and unreaped, so its pid cannot have been reused. */
	c->pidfd = pidfd_open(pid, 0);
	if (c->pidfd < 0) {
		/* Cannot happen short of fd exhaustion; kill rather than lose track. */
		e = errno;
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
		c->pid = -1;
		code = spawn_fail(err, errlen, errnum, spawn_errno_code(e), e, "pidfd_open: %s", strerror(e));
		goto fail;
	}
	if (o->tty) {
		c->out_fd = master;
		master = -1;
		util_set_nonblock(c->out_fd);
	} else {
		if (o->in == SPAWN_STDIN_PIPE) {
			c->in_fd = pin[1];
			pin[1] = -1;
			util_set_nonblock(c->in_fd);
		}
		c->out_fd = pout[0];
		c->err_fd = perr[0];
		pout[0] = perr[0] = -1;
		util_set_nonblock(c->out_fd);
		util_set_nonblock(c->err_fd);
	}
fail:
	spawn_close_pair(pin);
	spawn_close_pair(pout);
	spawn_close_pair(perr);
	if (master >= 0) {
		close(master);
	}
	free(env);
	return (code);
}

static const struct {
	int num;
	const char *name;
} spawn_signals[] = {
	{ SIGHUP, "HUP" },
	{ SIGINT, "INT" },
	{ SIGQUIT, "QUIT" },
	{ SIGILL, "ILL" },
	{ SIGTRAP, "TRAP" },
	{ SIGABRT, "ABRT" },
	{ SIGBUS, "BUS" },
	{ SIGFPE, "FPE" },
	{ SIGKILL, "KILL" },
	{ SIGUSR1, "USR1" },
	{ SIGSEGV, "SEGV" },
	{ SIGUSR2, "USR2" },
	{ SIGPIPE, "PIPE" },
	{ SIGALRM, "ALRM" },
	{ SIGTERM, "TERM" },
	{ SIGCHLD, "CHLD" },
	{ SIGCONT, "CONT" },
	{ SIGSTOP, "STOP" },
	{ SIGTSTP, "TSTP" },
	{ SIGTTIN, "TTIN" },
	{ SIGTTOU, "TTOU" },
	{ SIGURG, "URG" },
	{ SIGXCPU, "XCPU" },
	{ SIGXFSZ, "XFSZ" },
	{ SIGVTALRM, "VTALRM" },
	{ SIGPROF, "PROF" },
	{ SIGWINCH, "WINCH" },
	{ SIGIO, "IO" },
	{ SIGPWR, "PWR" },
	{ SIGSYS, "SYS" },
};

int
spawn_signal_number(const char *s)
{
	char *end;
	long n;

	if (s == NULL || *s == '\0') {
		return (-1);
	}
	if (*s >= '0' && *s <= '9') {
		n = strtol(s, &end, 10);
		return (*end == '\0' && n > 0 && n < NSIG ? (int)n : -1);
	}
	if (strncasecmp(s, "SIG", 3) == 0) {
		s += 3;
	}
	for (size_t i = 0; i < sizeof(spawn_signals) / sizeof(spawn_signals[0]); i++) {
		if (strcasecmp(s, spawn_signals[i].name) == 0) {
			return (spawn_signals[i].num);
		}
	}
	return (-1);
}

const char *
spawn_signal_name(int sig)
{
	for (size_t i = 0; i < sizeof(spawn_signals) / sizeof(spawn_signals[0]); i++) {
		if (spawn_signals[i].num == sig) {
			return (spawn_signals[i].name);
		}
	}
	return (NULL);
}

uint64_t
spawn_pid_start_time(pid_t pid)
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
spawn_boot_id(char *out, size_t len)
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

/* Fields 3 (state), 5 (pgrp) and 6 (session) of /proc/PID/stat. */
static bool
spawn_read_stat(pid_t pid, char *state, pid_t *pgrp, pid_t *sid)
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
	int ppid, pg, se;
	if (p == NULL || sscanf(p + 1, " %c %d %d %d", state, &ppid, &pg, &se) != 4) {
		return (false);
	}
	*pgrp = pg;
	*sid = se;
	return (true);
}

typedef void (*spawn_proc_fn)(void *arg, pid_t pid, char state, pid_t pgrp, pid_t sid);

static void
spawn_for_each_proc(spawn_proc_fn fn, void *arg)
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
		if (*end != '\0' || pid <= 0 || !spawn_read_stat((pid_t)pid, &state, &pgrp, &sid)) {
			continue;
		}
		fn(arg, (pid_t)pid, state, pgrp, sid);
	}
	closedir(d);
}

typedef struct spawn_group_q {
	pid_t pgid, leader;
	bool session, alive;
} spawn_group_q;

static void
spawn_group_visit(void *arg, pid_t pid, char state, pid_t pgrp, pid_t sid)
{
	spawn_group_q *q = arg;
	if (pid != q->leader && state != 'Z' && state != 'X' &&
	    (q->session ? sid == q->pgid : pgrp == q->pgid)) {
		q->alive = true;
	}
}

bool
spawn_group_alive(pid_t pgid, pid_t leader, bool session)
{
	spawn_group_q q = { pgid, leader, session, false };
	spawn_for_each_proc(spawn_group_visit, &q);
	return (q.alive);
}

typedef struct spawn_session_q {
	pid_t sid;
	int sig;
} spawn_session_q;

static void
spawn_session_visit(void *arg, pid_t pid, char state, pid_t pgrp, pid_t sid)
{
	spawn_session_q *q = arg;
	(void)pid;
	/* The process is alive in the group right now, so pgrp names a live group. */
	if (sid == q->sid && pgrp != q->sid && state != 'Z') {
		kill(-pgrp, q->sig);
	}
}

void
spawn_signal_session_groups(pid_t sid, int sig)
{
	spawn_session_q q = { sid, sig };
	spawn_for_each_proc(spawn_session_visit, &q);
}

bool
spawn_pid_running(pid_t pid)
{
	char state;
	pid_t pgrp, sid;

	return (spawn_read_stat(pid, &state, &pgrp, &sid) && state != 'Z' && state != 'X');
}
