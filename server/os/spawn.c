#include "os/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/util.h"
#include "sp_status.h"

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

/*
 * Resolves argv[0] like execvp would, but before the child exists, so that
 * "not found" and "permission denied" are told apart and reported here.
 * A name with a slash is used as given (relative to the child's cwd).
 */
int
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

const char *
spawn_env_path(const char *const *env)
{
	for (; env != NULL && *env != NULL; env++) {
		if (strncmp(*env, "PATH=", 5) == 0) {
			return (*env + 5);
		}
	}
	return (NULL);
}

int
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

static void
spawn_setup_done(posix_spawnattr_t *attr, posix_spawn_file_actions_t *fa)
{
	posix_spawn_file_actions_destroy(fa);
	posix_spawnattr_destroy(attr);
}

/*
 * The child's attributes and file actions. Every call is checked: a child
 * whose stdio could not be arranged must not start on the server's own fds.
 * On failure nothing is left to destroy.
 */
static int
spawn_setup(const spawn_spec *o, const char *cwd, const char *slave, const int pin[2], const int pout[2],
    const int perr[2], posix_spawnattr_t *attr, posix_spawn_file_actions_t *fa)
{
	sigset_t none, all;
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
	int e;

	if ((e = posix_spawnattr_init(attr)) != 0) {
		return (e);
	}
	if ((e = posix_spawn_file_actions_init(fa)) != 0) {
		posix_spawnattr_destroy(attr);
		return (e);
	}
	sigemptyset(&none);
	sigfillset(&all);
	/* A TTY child gets a new session; opening the slave then makes it the controlling tty. */
	flags |= o->tty ? POSIX_SPAWN_SETSID : POSIX_SPAWN_SETPGROUP;
	if ((e = posix_spawnattr_setsigmask(attr, &none)) != 0 ||
	    (e = posix_spawnattr_setsigdefault(attr, &all)) != 0 ||
	    (!o->tty && (e = posix_spawnattr_setpgroup(attr, 0)) != 0) ||
	    (e = posix_spawnattr_setflags(attr, flags)) != 0 ||
	    (cwd != NULL && (e = posix_spawn_file_actions_addchdir_np(fa, cwd)) != 0)) {
		goto fail;
	}
	if (o->tty) {
		if ((e = posix_spawn_file_actions_addopen(fa, 0, slave, O_RDWR, 0)) != 0 ||
		    (e = posix_spawn_file_actions_adddup2(fa, 0, 1)) != 0 ||
		    (e = posix_spawn_file_actions_adddup2(fa, 0, 2)) != 0) {
			goto fail;
		}
		return (0);
	}
	if ((o->in == SPAWN_STDIN_PIPE
	            ? (e = posix_spawn_file_actions_adddup2(fa, pin[0], 0))
	            : (e = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0))) != 0 ||
	    (e = posix_spawn_file_actions_adddup2(fa, pout[1], 1)) != 0 ||
	    (e = posix_spawn_file_actions_adddup2(fa, o->merge_stderr ? pout[1] : perr[1], 2)) != 0 ||
	    (o->fd3 > 0 && (e = posix_spawn_file_actions_adddup2(fa, o->fd3, 3)) != 0)) {
		goto fail;
	}
	return (0);
fail:
	spawn_setup_done(attr, fa);
	return (e);
}

int
spawn_start(const spawn_spec *o, spawn_child *c, int *errnum, char *err, size_t errlen)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	int master = -1, code = SP_OK, e;
	const char *cwd = o->cwd != NULL && o->cwd[0] != '\0' ? o->cwd : NULL;
	const char *path_env = NULL;
	char exe[4096], slave[128];
	posix_spawnattr_t attr;
	posix_spawn_file_actions_t fa;
	pid_t pid;

	*errnum = 0;
	c->pid = -1;
	c->pidfd = c->in_fd = c->out_fd = c->err_fd = -1;
	if (o->argc == 0 || o->argv[0] == NULL) {
		return (spawn_fail(err, errlen, errnum, SP_INVALID_ARGUMENT, EINVAL, "argv is empty"));
	}
	if (cwd != NULL && (code = spawn_check_cwd(cwd, errnum, err, errlen)) != SP_OK) {
		return (code);
	}
	path_env = spawn_env_path(o->env);
	if ((code = spawn_resolve(o->argv[0], path_env, cwd, exe, sizeof(exe), errnum, err, errlen)) !=
	    SP_OK) {
		return (code);
	}

	if (o->tty) {
		struct winsize ws = { .ws_row = o->rows ? o->rows : 24, .ws_col = o->cols ? o->cols : 80 };
		if ((master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0 || grantpt(master) != 0 ||
		    unlockpt(master) != 0 || ptsname_r(master, slave, sizeof(slave)) != 0 ||
		    ioctl(master, TIOCSWINSZ, &ws) != 0) {
			e = errno;
			code =
			    spawn_fail(err, errlen, errnum, errors_exec_status(e), e, "pty: %s", strerror(e));
			goto fail;
		}
	} else {
		if ((o->in == SPAWN_STDIN_PIPE && pipe2(pin, O_CLOEXEC) != 0) ||
		    pipe2(pout, O_CLOEXEC) != 0 || pipe2(perr, O_CLOEXEC) != 0) {
			e = errno;
			code = spawn_fail(
			    err, errlen, errnum, errors_exec_status(e), e, "pipe: %s", strerror(e));
			goto fail;
		}
		if (o->big_pipes) {
			/* Best effort: the system may cap pipe sizes. */
			fcntl(pout[0], F_SETPIPE_SZ, SPAWN_PIPE_SIZE);
			fcntl(perr[0], F_SETPIPE_SZ, SPAWN_PIPE_SIZE);
		}
	}

	if ((e = spawn_setup(o, cwd, slave, pin, pout, perr, &attr, &fa)) != 0) {
		code =
		    spawn_fail(err, errlen, errnum, errors_exec_status(e), e, "spawn setup: %s", strerror(e));
		goto fail;
	}
	e = posix_spawn(&pid, exe, &fa, &attr, (char *const *)o->argv, (char *const *)o->env);
	spawn_setup_done(&attr, &fa);
	if (e != 0) {
		if (e == ENOENT && cwd != NULL && access(cwd, F_OK) != 0) {
			code = spawn_fail(
			    err, errlen, errnum, SP_INVALID_ARGUMENT, e, "cwd \"%s\": %s", cwd, strerror(e));
		} else {
			code = spawn_fail(err, errlen, errnum, errors_exec_status(e), e, "exec \"%s\": %s",
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
		code =
		    spawn_fail(err, errlen, errnum, errors_exec_status(e), e, "pidfd_open: %s", strerror(e));
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
	return (code);
}
