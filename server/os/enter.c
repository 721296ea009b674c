#include "os/enter.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
	const char *name;
	int flag;
} enter_ns[ENTER_NS] = {
	{ "net", CLONE_NEWNET },
	{ "uts", CLONE_NEWUTS },
	{ "ipc", CLONE_NEWIPC },
	{ "cgroup", CLONE_NEWCGROUP },
	/* The mount namespace goes after the others (its /proc is not ours), user last. */
	{ "mnt", CLONE_NEWNS },
	{ "user", CLONE_NEWUSER },
};

void
enter_plan_init(enter_plan *p)
{
	memset(p, 0, sizeof(*p));
	p->tty_fd = -1;
	p->uid = p->gid = -1;
	p->err_pipe = -1;
	for (int i = 0; i < 3; i++) {
		p->stdio[i] = -1;
	}
	for (int i = 0; i < ENTER_NS; i++) {
		p->ns_fds[i] = -1;
	}
}

int
enter_open_namespaces(enter_plan *p, pid_t pid)
{
	char path[64];

	for (int i = 0; i < ENTER_NS; i++) {
		struct stat theirs, ours;
		char self[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, enter_ns[i].name);
		snprintf(self, sizeof(self), "/proc/self/ns/%s", enter_ns[i].name);
		if (stat(path, &theirs) == 0 && stat(self, &ours) == 0 && theirs.st_ino == ours.st_ino &&
		    theirs.st_dev == ours.st_dev) {
			continue;
		}
		if ((p->ns_fds[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			int e = errno;
			for (int k = 0; k < i; k++) {
				if (p->ns_fds[k] >= 0) {
					close(p->ns_fds[k]);
				}
				p->ns_fds[k] = -1;
			}
			return (e);
		}
	}
	return (0);
}

const char *
enter_stage_name(int stage)
{
	static const char *names[] = { "?", "cgroup", "session", "terminal", "stdio", "namespace", "cwd",
		"ids", "exec" };
	return (stage > 0 && stage <= ENTER_EXEC ? names[stage] : names[0]);
}

/* Reports the stage and errno on the pipe and exits: async-signal-safe. */
static void __attribute__((noreturn)) enter_fail(const enter_plan *p, int stage)
{
	int32_t msg[2] = { stage, errno };
	ssize_t n = write(p->err_pipe, msg, sizeof(msg));
	(void)n;
	_exit(127);
}

/* Our pid in decimal, without stdio (async-signal-safe). */
static size_t
enter_pid_text(char *buf)
{
	char tmp[16];
	size_t n = 0, k = 0;
	pid_t pid = getpid();

	do {
		tmp[n++] = (char)('0' + pid % 10);
		pid /= 10;
	} while (pid > 0);
	while (n > 0) {
		buf[k++] = tmp[--n];
	}
	return (k);
}

/*
 * execvp's lookup, async-signal-safe: each PATH entry in turn; a missing
 * file goes on to the next, the first other error is kept (as execvp does
 * with EACCES), ENOENT if none was found.
 */
static void __attribute__((noreturn)) enter_exec_search(const enter_plan *p)
{
	const char *path = p->search_path != NULL ? p->search_path : "/usr/local/bin:/usr/bin:/bin";
	size_t nlen = strlen(p->exe);
	int kept = ENOENT;
	char buf[4096];

	for (const char *s = path;; s++) {
		const char *e = s;
		while (*e != '\0' && *e != ':') {
			e++;
		}
		size_t dlen = (size_t)(e - s);
		if (dlen + 1 + nlen + 1 <= sizeof(buf)) {
			size_t k = 0;
			if (dlen == 0) {
				buf[k++] = '.';
			} else {
				memcpy(buf, s, dlen);
				k = dlen;
			}
			buf[k++] = '/';
			memcpy(buf + k, p->exe, nlen + 1);
			execve(buf, p->argv, p->env);
			if (errno != ENOENT && errno != ENOTDIR && kept == ENOENT) {
				kept = errno;
			}
		}
		if (*e == '\0') {
			break;
		}
		s = e;
	}
	errno = kept;
	enter_fail(p, ENTER_EXEC);
}

void
enter_exec(const enter_plan *p)
{
	char pid[16];
	size_t pidlen = enter_pid_text(pid);
	sigset_t none;

	for (int i = 0; i < p->ncgroups; i++) {
		if (write(p->cgroup_fds[i], pid, pidlen) != (ssize_t)pidlen) {
			enter_fail(p, ENTER_CGROUP);
		}
	}
	if (!p->keep_group && (p->new_session ? setsid() < 0 : setpgid(0, 0) != 0)) {
		enter_fail(p, ENTER_SESSION);
	}
	if (p->tty_fd >= 0) {
		if (ioctl(p->tty_fd, TIOCSCTTY, 0) != 0) {
			enter_fail(p, ENTER_TTY);
		}
		for (int fd = 0; fd < 3; fd++) {
			if (dup2(p->tty_fd, fd) < 0) {
				enter_fail(p, ENTER_STDIO);
			}
		}
	} else {
		for (int fd = 0; fd < 3; fd++) {
			int src = p->stdio[fd] >= 0 ? p->stdio[fd]
			                            : open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
			if (src < 0 || dup2(src, fd) < 0) {
				enter_fail(p, ENTER_STDIO);
			}
		}
	}
	/* Supplementary groups go while we still may (a user namespace may forbid it after). */
	if ((p->ns_fds[ENTER_NS - 1] >= 0 || p->gid >= 0) && setgroups(0, NULL) != 0) {
		enter_fail(p, ENTER_IDS);
	}
	for (int i = 0; i < ENTER_NS; i++) {
		if (p->ns_fds[i] >= 0 && setns(p->ns_fds[i], enter_ns[i].flag) != 0) {
			enter_fail(p, ENTER_NAMESPACE);
		}
	}
	if (p->cwd != NULL && p->cwd[0] != '\0' && chdir(p->cwd) != 0) {
		enter_fail(p, ENTER_CWD);
	}
	if ((p->gid >= 0 && setresgid((gid_t)p->gid, (gid_t)p->gid, (gid_t)p->gid) != 0) ||
	    (p->uid >= 0 && setresuid((uid_t)p->uid, (uid_t)p->uid, (uid_t)p->uid) != 0)) {
		enter_fail(p, ENTER_IDS);
	}
	/* A user of its own gains nothing from set-user-id programs (su, mount ...). */
	if (p->uid >= 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		enter_fail(p, ENTER_IDS);
	}
	/* The parent's signal mask and ignored signals are not the program's. */
	for (int sig = 1; sig < 65; sig++) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(sig, &sa, NULL);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (strchr(p->exe, '/') != NULL) {
		execve(p->exe, p->argv, p->env);
		enter_fail(p, ENTER_EXEC);
	}
	enter_exec_search(p);
}
