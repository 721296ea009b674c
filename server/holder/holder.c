/*
 * sandproc-holder: holds one managed process for sandprocd, so that the
 * process, its output and its exit status outlive the server.
 *
 *   sandproc-holder hold   fd 3: a socket to the server, fd 4: the spec
 *   sandproc-holder exec   fd 3: the spec; enters it and execs (no holding)
 *
 * A holder leaves the server's process tree (it forks and its parent
 * exits), becomes the subreaper of its process's descendants, owns the
 * pipes or the PTY, writes the log and its sequence numbers, keeps the exit
 * status (in memory and in <run>/<id>.exit), and serves the server that is
 * connected over its socket, <run>/<id>.sock, where a restarted server
 * finds it. It talks holder/proto.h and links nothing but libc, the log
 * writer and os/enter.c, so it can be built small and static.
 *
 * The leader's zombie is kept until the end is recorded, so its pid and
 * process group stay reserved: no signal ever reaches a reused pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "holder/proto.h"
#include "os/enter.h"
#include "os/procfs.h"
#include "output/logfile.h"

#define H_DRAIN_MIN_MS 20
#define H_DRAIN_MAX_MS 1000
#define H_FORCE_END_MS 1000
#define H_IDLE_RELEASE_MS 2000
/* How often a holder with no server checks that one could still find it. */
#define H_ORPHAN_CHECK_MS 30000

typedef struct holder {
	holder_spec spec;
	int ctl;   /* the connected server, or -1 */
	int lsock; /* where servers connect */
	int sfd;   /* SIGCHLD */
	int out_fd, err_fd, in_fd;
	char sock_path[256], exit_path[256];
	pid_t pid;
	uint64_t pid_start;
	logfile *log;
	uint64_t seq;
	holder_exit ex; /* once ended */
	uint64_t lost;
	int lost_errno;
	int orphans;
	bool exited, ended, exit_sent, leader_reaped, behind, killed, abandoned;
	bool greeted; /* the connected server said HELLO (or started us): it may be sent to */
	int wstatus;
	int64_t drain_at, force_at, last_output, orphan_check_at;
	ino_t sock_ino; /* the socket file we bound, to tell it from a newer one */
	int drain_interval;
	uint8_t *buf;
	bool buf_hot;
} holder;

static int64_t
h_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static int64_t
h_wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static void
h_close(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Reads a whole fd (the spec) into a new buffer. */
static uint8_t *
h_slurp(int fd, size_t *len)
{
	size_t cap = 4096, n = 0;
	uint8_t *p = malloc(cap);
	ssize_t r;

	while (p != NULL && (r = read(fd, p + n, cap - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR) {
				continue;
			}
			free(p);
			return (NULL);
		}
		n += (size_t)r;
		if (n == cap) {
			uint8_t *q = realloc(p, cap *= 2);
			if (q == NULL) {
				free(p);
				return (NULL);
			}
			p = q;
		}
	}
	*len = n;
	return (p);
}

/* --- talking to the server --------------------------------------------------------- */

static void
h_drop_server(holder *h)
{
	h_close(&h->ctl);
	h->behind = false; /* a server that connects later starts from the log */
}

/*
 * Sends a packet without ever blocking (a stuck server must not stop the
 * holder). Returns 0, EAGAIN when the server's queue is full (the caller
 * tries again when it has room), or an error after which the server is
 * dropped.
 */
static int
h_send(holder *h, hbuf *b, int fd)
{
	int rv = h->ctl >= 0 ? holder_send(h->ctl, b, fd, MSG_DONTWAIT) : ENOTCONN;

	if (rv != 0 && rv != EAGAIN && rv != EWOULDBLOCK && rv != ENOTCONN) {
		h_drop_server(h);
	}
	hb_free(b);
	return (rv == EWOULDBLOCK ? EAGAIN : rv);
}

static void
h_send_failed(holder *h, int stage, int err)
{
	hbuf b;
	char msg[512];

	snprintf(msg, sizeof(msg), "%s: %s", enter_stage_name(stage), strerror(err));
	hb_init(&b, HM_FAILED);
	hb_u32(&b, (uint32_t)err);
	hb_u32(&b, (uint32_t)stage);
	hb_str(&b, msg);
	h_send(h, &b, -1);
}

/* The entry in the log; then, unless the server is behind or gone, to the server. */
static void
h_output(holder *h, uint8_t stream, const uint8_t *data, size_t len)
{
	int64_t ts = h_wall();
	uint64_t seq = h->seq + 1;
	int rv;

	if (seq == 0 ||
	    (rv = logfile_append(h->log, seq, stream, ts, data, len, h->spec.max_log_bytes)) != 0) {
		if (h->lost == 0) {
			h->lost_errno = seq == 0 ? EOVERFLOW : rv;
		}
		h->lost += len;
		/* Still delivered: the server publishes it, and Logs will not have it. */
	}
	h->seq = seq;
	if (h->ctl < 0 || h->behind || !h->greeted) {
		return;
	}
	rv = holder_send_output(h->ctl, seq, stream, ts, data, len, MSG_DONTWAIT);
	if (rv == EAGAIN || rv == EWOULDBLOCK || rv == ENOBUFS) {
		h->behind = true; /* it catches up from the log after a SYNC */
	} else if (rv != 0) {
		h_drop_server(h);
	}
}

static void
h_sync(holder *h)
{
	hbuf b;

	hb_init(&b, HM_SYNC);
	hb_u64(&b, h->seq);
	if (holder_send(h->ctl, &b, -1, MSG_DONTWAIT) == 0) {
		h->behind = false;
	}
	hb_free(&b);
}

/* --- the end ----------------------------------------------------------------------- */

static void
h_write_exit_file(holder *h)
{
	char tmp[300];
	hbuf b;
	int fd;

	hb_init(&b, HM_EXITED);
	hb_exit(&b, &h->ex);
	snprintf(tmp, sizeof(tmp), "%s.tmp", h->exit_path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0) {
		if (write(fd, b.p, b.len) == (ssize_t)b.len && fsync(fd) == 0) {
			close(fd);
			rename(tmp, h->exit_path);
		} else {
			close(fd);
			unlink(tmp);
		}
	}
	hb_free(&b);
}

/* Reaps what can be reaped: descendants (we are their subreaper), and the leader once the end is recorded. */
static void
h_reap(holder *h)
{
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) {
			return;
		}
		if (si.si_pid == h->pid && !h->leader_reaped) {
			if (!h->exited) {
				h->exited = true;
				h->wstatus = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8
				                                      : (si.si_status & 0x7f);
				h->ex.at_ms = h_wall();
				h->drain_interval = H_DRAIN_MIN_MS;
				h->drain_at = h_mono() + h->drain_interval;
				if (h->killed) {
					h->force_at = h_mono() + H_FORCE_END_MS;
				}
			}
			if (!h->ended) {
				return; /* its zombie keeps the pid and group ours until the end */
			}
			waitpid(h->pid, NULL, 0);
			h->leader_reaped = true;
			continue;
		}
		waitpid(si.si_pid, NULL, WNOHANG);
		h->orphans++;
	}
}

static bool h_read(holder *h, int *fd, uint8_t stream);
static void h_sock_room(int fd);
static void h_signal(holder *h, int sig, bool whole);

/* The leader has exited and its output is drained: record the end. */
static void
h_end(holder *h)
{
	/* Whatever is still readable now, bounded in case something keeps writing. */
	for (int i = 0; i < 256 && h->out_fd >= 0 && h_read(h, &h->out_fd, h->spec.tty ? 3 : 1); i++) {}
	for (int i = 0; i < 256 && h->err_fd >= 0 && h_read(h, &h->err_fd, 2); i++) {}
	h_close(&h->out_fd);
	h_close(&h->err_fd);
	h_close(&h->in_fd);
	h->ended = true;
	h->ex.wstatus = h->wstatus;
	h->ex.last_seq = h->seq;
	h->ex.lost = h->lost;
	h->ex.lost_errno = h->lost_errno;
	h->ex.orphans = h->orphans;
	if (!h->abandoned) {
		h_write_exit_file(h);
	}
	h_reap(h);
}

/* Anyone but the leader left in its group (or a TTY's session)? */
static bool
h_group_alive(holder *h)
{
	return (procfs_group_alive(h->pid, h->pid, h->spec.tty));
}

static void
h_timers(holder *h)
{
	int64_t now = h_mono();

	if (!h->ended && h->exited && h->force_at != 0 && now >= h->force_at) {
		h_end(h);
	}
	if (!h->ended && h->exited && h->drain_at != 0 && now >= h->drain_at) {
		if (!h_group_alive(h)) {
			h_end(h);
		} else {
			h->drain_interval =
			    h->drain_interval * 2 > H_DRAIN_MAX_MS ? H_DRAIN_MAX_MS : h->drain_interval * 2;
			h->drain_at = now + h->drain_interval;
		}
	}
	/*
	 * No server, and our socket file is gone (the data dir was removed) or
	 * is another holder's: no server can ever manage this process again,
	 * so it goes, and so do we.
	 */
	if (h->ctl < 0 && !h->abandoned && now >= h->orphan_check_at) {
		struct stat st;
		h->orphan_check_at = now + H_ORPHAN_CHECK_MS;
		if (stat(h->sock_path, &st) != 0 || st.st_ino != h->sock_ino) {
			h->abandoned = h->killed = true;
			h_signal(h, SIGKILL, true);
			if (h->exited && !h->ended) {
				h->force_at = now + H_FORCE_END_MS;
			}
		}
	}
	/* After a quiet spell the read buffer's pages go back: a holder costs what it holds. */
	if (h->buf_hot && now - h->last_output >= H_IDLE_RELEASE_MS) {
		madvise(h->buf, HOLDER_CHUNK, MADV_DONTNEED);
		h->buf_hot = false;
	}
}

/* --- output and the server's requests -------------------------------------------------------- */

/* Reads once from an output fd; true when bytes came. At EOF (or EIO from a PTY master) closes it. */
static bool
h_read(holder *h, int *fd, uint8_t stream)
{
	ssize_t n;

	while ((n = read(*fd, h->buf, HOLDER_CHUNK)) < 0 && errno == EINTR) {}
	if (n > 0) {
		h->buf_hot = true;
		h->last_output = h_mono();
		h_output(h, stream, h->buf, (size_t)n);
		return (true);
	}
	if (n < 0 && errno == EAGAIN) {
		return (false);
	}
	h_close(fd);
	return (false);
}

static void
h_signal(holder *h, int sig, bool whole)
{
	if (h->leader_reaped) {
		return; /* never a pid that may have been reused */
	}
	kill(-h->pid, sig);
	if (whole && h->spec.tty) {
		procfs_signal_session_groups(h->pid, sig);
	}
}

/* Answers a server that (re)connected: the process as it is now. */
static void
h_hello_back(holder *h)
{
	hbuf b;

	hb_init(&b, HM_HELLO_BACK);
	hb_u32(&b, h->ended ? 0 : 1);
	hb_u32(&b, (uint32_t)h->pid);
	hb_u64(&b, h->pid_start);
	hb_u64(&b, h->seq);
	hb_exit(&b, &h->ex);
	h_send(h, &b, h->ended ? -1 : h->in_fd);
}

/* One packet from the server; false when the holder is done (its end stored). */
static bool
h_request(holder *h)
{
	uint8_t buf[512];
	uint32_t version;
	hread r;
	int fd;
	ssize_t n = holder_recv(h->ctl, buf, sizeof(buf), &fd, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		return (true);
	}
	if (fd >= 0) {
		close(fd);
	}
	if (n <= 0) {
		h_drop_server(h);
		return (true);
	}
	if (h->abandoned) {
		return (true);
	}
	switch (hr_begin(&r, buf, (size_t)n, &version)) {
	case HM_HELLO:
		h_hello_back(h);
		h->greeted = true;
		h->exit_sent = h->ended; /* an ended one was told in the answer */
		break;
	case HM_SIGNAL: {
		int sig = (int)hr_u32(&r);
		bool whole = hr_u32(&r) != 0;
		if (!r.bad && sig > 0 && sig < 65) {
			h_signal(h, sig, whole);
		}
		break;
	}
	case HM_KILLED:
		h->killed = true;
		if (h->exited && !h->ended) {
			h->force_at = h_mono() + H_FORCE_END_MS;
		}
		break;
	case HM_CLOSE_STDIN:
		if (!h->spec.tty) {
			h_close(&h->in_fd);
		}
		break;
	case HM_LOG_LIMIT:
		h->spec.max_log_bytes = hr_u64(&r);
		break;
	case HM_ACK_EXIT:
		if (h->ended) {
			return (false);
		}
		break;
	case HM_ABANDON:
		h->abandoned = h->killed = true;
		h_signal(h, SIGKILL, true);
		if (h->exited && !h->ended) {
			h->force_at = h_mono() + H_FORCE_END_MS;
		}
		break;
	default:
		/* Another version, or nonsense: this server cannot be served. */
		h_drop_server(h);
		break;
	}
	return (true);
}

static void
h_accept(holder *h)
{
	int c = accept4(h->lsock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (c < 0) {
		return;
	}
	/* Only the user the server runs as (the socket's folder already keeps others out). */
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != geteuid()) {
		close(c);
		return;
	}
	/* One server at a time: a new one means the old one is gone. */
	h_drop_server(h);
	h_sock_room(c);
	h->ctl = c;
	h->exit_sent = false;
	h->greeted = false; /* nothing goes to it before its HELLO is answered */
}

/* --- starting ---------------------------------------------------------------------- */

/*
 * Room for output in flight to the server: the default (about three 64 KiB
 * packets) has a fast writer fall behind, and catching up from the log
 * costs the server a second read. A limit, not an allocation; the kernel
 * caps it at net.core.wmem_max.
 */
static void
h_sock_room(int fd)
{
	int bytes = HOLDER_SNDBUF;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

/* The listening socket, bound through a path short enough for sun_path. */
static int
h_listen(holder *h)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int dfd = open(h->spec.run_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || dfd < 0) {
		return (-1);
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s.sock", dfd, h->spec.id);
	unlinkat(dfd, strrchr(sa.sun_path, '/') + 1, 0);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4) != 0) {
		close(fd);
		close(dfd);
		return (-1);
	}
	close(dfd);
	return (fd);
}

static int
h_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return (fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK));
}

/* PATH's value in env, or NULL. */
static const char *
h_env_path(char *const *env)
{
	for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
		if (strncmp(env[i], "PATH=", 5) == 0) {
			return (env[i] + 5);
		}
	}
	return (NULL);
}

/* Starts the child; 0, or an errno with the stage in *stage. */
static int
h_spawn(holder *h, int *stage)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 }, ep[2] = { -1, -1 };
	int master = -1, slave = -1, e = 0;
	enter_plan plan;

	*stage = ENTER_STDIO;
	enter_plan_init(&plan);
	plan.exe = h->spec.exe;
	plan.argv = h->spec.argv;
	plan.env = h->spec.env;
	plan.cwd = h->spec.cwd;
	plan.search_path = h_env_path(h->spec.env); /* a sandbox's exe is looked up inside */
	plan.new_session = h->spec.tty;
	plan.uid = h->spec.uid;
	plan.gid = h->spec.gid;
	if (pipe2(ep, O_CLOEXEC) != 0) {
		return (errno);
	}
	if (h->spec.tty) {
		struct winsize ws = { .ws_row = (unsigned short)h->spec.rows,
			.ws_col = (unsigned short)h->spec.cols };
		char name[128];
		if ((master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0 || grantpt(master) != 0 ||
		    unlockpt(master) != 0 || ptsname_r(master, name, sizeof(name)) != 0 ||
		    ioctl(master, TIOCSWINSZ, &ws) != 0 ||
		    (slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
			e = errno;
			goto fail;
		}
		plan.tty_fd = slave;
	} else {
		if ((h->spec.stdin_pipe && pipe2(pin, O_CLOEXEC) != 0) || pipe2(pout, O_CLOEXEC) != 0 ||
		    pipe2(perr, O_CLOEXEC) != 0) {
			e = errno;
			goto fail;
		}
		fcntl(pout[0], F_SETPIPE_SZ, 1024 * 1024);
		fcntl(perr[0], F_SETPIPE_SZ, 1024 * 1024);
		plan.stdio[0] = pin[0];
		plan.stdio[1] = pout[1];
		plan.stdio[2] = perr[1];
	}
	plan.err_pipe = ep[1];
	if (h->spec.ns_pid > 0) {
		*stage = ENTER_NAMESPACE;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", h->spec.ns_pid);
		int pfd = open(path, O_RDONLY | O_CLOEXEC);
		/* The sandbox's keeper must be the one recorded, not a reused pid. */
		if (pfd < 0 || procfs_pid_start_time(h->spec.ns_pid) != h->spec.ns_pid_start ||
		    setns(pfd, CLONE_NEWPID) != 0 ||
		    (e = enter_open_namespaces(&plan, h->spec.ns_pid)) != 0) {
			e = e ? e : errno ? errno : ESRCH;
			if (pfd >= 0) {
				close(pfd);
			}
			goto fail;
		}
		close(pfd);
	}
	for (int i = 0;
	     h->spec.cgroup_procs != NULL && h->spec.cgroup_procs[i] != NULL && i < ENTER_MAX_CGROUPS; i++) {
		*stage = ENTER_CGROUP;
		if ((plan.cgroup_fds[plan.ncgroups++] = open(h->spec.cgroup_procs[i], O_WRONLY | O_CLOEXEC)) <
		    0) {
			e = errno;
			goto fail;
		}
	}
	*stage = ENTER_EXEC;
	if ((h->pid = fork()) < 0) {
		e = errno;
		goto fail;
	}
	if (h->pid == 0) {
		enter_exec(&plan);
	}
	close(ep[1]);
	ep[1] = -1;
	int32_t msg[2];
	ssize_t n;
	while ((n = read(ep[0], msg, sizeof(msg))) < 0 && errno == EINTR) {}
	if (n == (ssize_t)sizeof(msg)) {
		/* The child failed before exec: it is reaped, its end needs no record. */
		waitpid(h->pid, NULL, 0);
		h->pid = 0;
		*stage = msg[0];
		e = msg[1];
		goto fail;
	}
	h->pid_start = procfs_pid_start_time(h->pid);
	if (h->spec.tty) {
		h->out_fd = master;
		h->in_fd = fcntl(master, F_DUPFD_CLOEXEC, 0);
		master = -1;
	} else {
		h->out_fd = pout[0];
		h->err_fd = perr[0];
		h->in_fd = pin[1];
		pout[0] = perr[0] = pin[1] = -1;
	}
	h_nonblock(h->out_fd);
	if (h->err_fd >= 0) {
		h_nonblock(h->err_fd);
	}
	if (h->in_fd >= 0) {
		h_nonblock(h->in_fd);
	}
fail:
	for (int i = 0; i < 2; i++) {
		h_close(&pin[i]);
		h_close(&pout[i]);
		h_close(&perr[i]);
		h_close(&ep[i]);
	}
	h_close(&master);
	h_close(&slave);
	for (int i = 0; i < plan.ncgroups; i++) {
		h_close(&plan.cgroup_fds[i]);
	}
	for (int i = 0; i < ENTER_NS; i++) {
		h_close(&plan.ns_fds[i]);
	}
	return (e);
}

/* Out of the server's tree and its session; stdio to /dev/null; signals that could end us ignored. */
static void
h_detach(void)
{
	pid_t pid = fork();
	if (pid < 0) {
		_exit(1);
	}
	if (pid > 0) {
		_exit(0); /* the server reaps this one at once; the holder goes on as an orphan */
	}
	setsid();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	umask(077);
	if (chdir("/") != 0) {
		_exit(1);
	}
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3 && null >= 0; fd++) {
		dup2(null, fd);
	}
	if (null > 2) {
		close(null);
	}
	int ignored[] = { SIGPIPE, SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGUSR1,
		SIGUSR2 };
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
		signal(ignored[i], SIG_IGN);
	}
}

static int
h_serve(holder *h)
{
	for (;;) {
		struct pollfd pfd[5];
		if (h->abandoned && h->ended) {
			return (0);
		}
		int n = 0, ictl = -1, ilsock, isfd, iout = -1, ierr = -1;
		int64_t now = h_mono(), next = INT64_MAX;

		/* The end goes after every entry (or the SYNC that covers them), when there is room. */
		if (h->ended && h->ctl >= 0 && h->greeted && !h->exit_sent && !h->behind) {
			hbuf b;
			hb_init(&b, HM_EXITED);
			hb_exit(&b, &h->ex);
			h->exit_sent = h_send(h, &b, -1) == 0;
		}
		if (h->ctl >= 0) {
			bool want_room = h->greeted && (h->behind || (h->ended && !h->exit_sent));
			ictl = n;
			pfd[n++] = (struct pollfd){ h->ctl, POLLIN | (want_room ? POLLOUT : 0), 0 };
		}
		ilsock = n;
		pfd[n++] = (struct pollfd){ h->lsock, POLLIN, 0 };
		isfd = n;
		pfd[n++] = (struct pollfd){ h->sfd, POLLIN, 0 };
		if (h->out_fd >= 0) {
			iout = n;
			pfd[n++] = (struct pollfd){ h->out_fd, POLLIN, 0 };
		}
		if (h->err_fd >= 0) {
			ierr = n;
			pfd[n++] = (struct pollfd){ h->err_fd, POLLIN, 0 };
		}
		if (!h->ended && h->drain_at != 0) {
			next = h->drain_at < next ? h->drain_at : next;
		}
		if (!h->ended && h->force_at != 0) {
			next = h->force_at < next ? h->force_at : next;
		}
		if (h->ctl < 0 && !h->abandoned) {
			next = h->orphan_check_at < next ? h->orphan_check_at : next;
		}
		if (h->buf_hot) {
			next = h->last_output + H_IDLE_RELEASE_MS < next ? h->last_output + H_IDLE_RELEASE_MS
			                                                 : next;
		}
		int timeout = next == INT64_MAX ? -1
		    : next <= now               ? 0
		    : next - now > 60000        ? 60000
		                                : (int)(next - now);
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR) {
			return (1);
		}
		if (pfd[isfd].revents) {
			struct signalfd_siginfo si;
			while (read(h->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {}
			h_reap(h);
		}
		if (iout >= 0 && pfd[iout].revents) {
			h_read(h, &h->out_fd, h->spec.tty ? 3 : 1);
		}
		if (ierr >= 0 && pfd[ierr].revents) {
			h_read(h, &h->err_fd, 2);
		}
		if (h->exited && !h->ended && h->out_fd < 0 && h->err_fd < 0) {
			h_end(h);
		}
		if (ictl >= 0 && h->ctl >= 0 && (pfd[ictl].revents & POLLOUT) && h->behind) {
			h_sync(h);
		}
		if (ictl >= 0 && h->ctl >= 0 && (pfd[ictl].revents & (POLLIN | POLLHUP | POLLERR))) {
			if (!h_request(h)) {
				return (0);
			}
		}
		if (pfd[ilsock].revents & POLLIN) {
			h_accept(h);
		}
		h_timers(h);
	}
}

static int
h_hold(void)
{
	holder h;
	uint8_t *spec;
	size_t len;
	sigset_t chld;
	int stage, e;

	memset(&h, 0, sizeof(h));
	h.ctl = 3;
	h.greeted = true; /* the server that started us */
	h_nonblock(h.ctl);
	h_sock_room(h.ctl);
	fcntl(h.ctl, F_SETFD, FD_CLOEXEC); /* the child must not get the server's socket */
	h.out_fd = h.err_fd = h.in_fd = -1;
	if ((spec = h_slurp(4, &len)) == NULL || !holder_spec_read(spec, len, &h.spec)) {
		h_send_failed(&h, ENTER_EXEC, EINVAL);
		return (1);
	}
	free(spec);
	close(4);
	h_detach();
	snprintf(h.sock_path, sizeof(h.sock_path), "%s/%s.sock", h.spec.run_dir, h.spec.id);
	snprintf(h.exit_path, sizeof(h.exit_path), "%s/%s.exit", h.spec.run_dir, h.spec.id);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	h.buf = mmap(NULL, HOLDER_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h.buf == MAP_FAILED || (h.sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    (h.lsock = h_listen(&h)) < 0) {
		h_send_failed(&h, ENTER_EXEC, errno);
		return (1);
	}
	struct stat st;
	h.sock_ino = stat(h.sock_path, &st) == 0 ? st.st_ino : 0;
	h.orphan_check_at = h_mono() + H_ORPHAN_CHECK_MS;
	if ((e = logfile_open(&h.log, h.spec.log_dir, h.spec.id, &h.seq)) != 0) {
		unlink(h.sock_path);
		h_send_failed(&h, ENTER_STDIO, e);
		return (1);
	}
	if ((e = h_spawn(&h, &stage)) != 0) {
		unlink(h.sock_path);
		h_send_failed(&h, stage, e);
		return (1);
	}
	hbuf b;
	hb_init(&b, HM_STARTED);
	hb_u32(&b, (uint32_t)h.pid);
	hb_u64(&b, h.pid_start);
	hb_u64(&b, h.seq);
	h_send(&h, &b, h.in_fd);
	int rv = h_serve(&h);
	/* The end is stored: nothing is left to keep. */
	unlink(h.sock_path);
	unlink(h.exit_path);
	return (rv);
}

/*
 * The exec mode's parent when the child went into a pid namespace: waits
 * for it and ends the same way, so whoever started us (a Run) sees its
 * status. Signals to our group reach the child too (same group).
 */
static int
h_mirror(pid_t child, int err_pipe)
{
	int32_t msg[2];
	ssize_t n;
	int st;

	while ((n = read(err_pipe, msg, sizeof(msg))) < 0 && errno == EINTR) {}
	if (n == (ssize_t)sizeof(msg)) {
		fprintf(stderr, "sandproc-holder: %s: %s\n", enter_stage_name(msg[0]), strerror(msg[1]));
	}
	while (waitpid(child, &st, 0) < 0) {
		if (errno != EINTR) {
			return (127);
		}
	}
	if (WIFSIGNALED(st)) {
		signal(WTERMSIG(st), SIG_DFL);
		raise(WTERMSIG(st));
		return (128 + WTERMSIG(st));
	}
	return (n == (ssize_t)sizeof(msg) ? 127 : WEXITSTATUS(st));
}

/* The exec mode: enter the spec on fd 3 and exec, in this process (a Run's child, a sandbox's keeper). */
static int
h_exec(void)
{
	holder_spec s;
	enter_plan plan;
	uint8_t *spec;
	size_t len;
	int pidns = -1;

	if ((spec = h_slurp(3, &len)) == NULL || !holder_spec_read(spec, len, &s)) {
		fprintf(stderr, "sandproc-holder: bad spec\n");
		return (127);
	}
	close(3);
	enter_plan_init(&plan);
	plan.exe = s.exe;
	plan.argv = s.argv;
	plan.env = s.env;
	plan.cwd = s.cwd;
	plan.search_path = h_env_path(s.env);
	plan.uid = s.uid;
	plan.gid = s.gid;
	/* stdio and the group are the caller's (posix_spawn arranged them). */
	plan.keep_group = true;
	for (int fd = 0; fd < 3; fd++) {
		plan.stdio[fd] = fd;
	}
	if (s.ns_pid > 0) {
		char path[64];
		int e;
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", s.ns_pid);
		if ((pidns = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
		    procfs_pid_start_time(s.ns_pid) != s.ns_pid_start || setns(pidns, CLONE_NEWPID) != 0 ||
		    (e = enter_open_namespaces(&plan, s.ns_pid)) != 0) {
			fprintf(stderr, "sandproc-holder: sandbox %d: %s\n", s.ns_pid,
			    strerror(errno ? errno : ESRCH));
			return (127);
		}
	}
	for (int i = 0; s.cgroup_procs != NULL && s.cgroup_procs[i] != NULL && i < ENTER_MAX_CGROUPS; i++) {
		plan.cgroup_fds[plan.ncgroups++] = open(s.cgroup_procs[i], O_WRONLY | O_CLOEXEC);
	}
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) != 0) {
		return (127);
	}
	plan.err_pipe = ep[1];
	if (pidns >= 0) {
		/*
		 * The pid namespace is our children's: the program runs in one.
		 * vfork: the child only makes system calls until it execs (or
		 * writes its failure and _exits), so nothing is copied for it.
		 */
		pid_t child = vfork();
		if (child < 0) {
			perror("sandproc-holder: fork");
			return (127);
		}
		if (child > 0) {
			close(ep[1]);
			/*
			 * No exit handlers: our children's pid namespace is the
			 * sandbox's, and a leak checker's helper (ASan) would be
			 * born there, unable to see us.
			 */
			_exit(h_mirror(child, ep[0]));
		}
	}
	enter_exec(&plan);
}

/*
 * The keep mode: a sandbox's keeper, run by bubblewrap inside the sandbox
 * (this binary bound in read-only). As the sandbox's user (uid "-": stay
 * root), runs the setup (a shell command, "" for none), writes its status
 * to fd 5 and closes it, then sleeps for the sandbox's life (its SIGKILL
 * or the end of its init ends it).
 */
static int
h_keep(const char *uid, const char *setup)
{
	int status = 0;

	if (strcmp(uid, "-") != 0) {
		uid_t u = (uid_t)strtoul(uid, NULL, 10);
		if (setgroups(0, NULL) != 0 || setresgid(u, u, u) != 0 || setresuid(u, u, u) != 0 ||
		    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
			perror("sandproc-holder keep: user");
			return (126);
		}
	}
	if (setup[0] != '\0') {
		pid_t pid = fork();
		if (pid == 0) {
			int fd = open("/dev/null", O_RDONLY);
			if (fd >= 0) {
				dup2(fd, 0);
			}
			close(5);
			execl("/bin/sh", "sh", "-c", setup, (char *)NULL);
			_exit(127);
		}
		int st = 0;
		while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
		status = pid < 0 ? 127 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
	char msg[16];
	int n = snprintf(msg, sizeof(msg), "%d\n", status);
	if (write(5, msg, (size_t)n) != n) {
		return (1);
	}
	close(5);
	if (status != 0) {
		return (status);
	}
	for (;;) {
		pause();
	}
}

int
main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "hold") == 0) {
		/*
		 * Nothing is left to flush, and hundreds of holders may end at once
		 * (a server stopping its processes): none runs exit handlers (under
		 * ASan, each ran a leak scan of seconds and starved the server).
		 */
		_exit(h_hold());
	}
	if (argc == 2 && strcmp(argv[1], "exec") == 0) {
		return (h_exec());
	}
	if (argc == 4 && strcmp(argv[1], "keep") == 0) {
		return (h_keep(argv[2], argv[3]));
	}
	fprintf(stderr, "usage: sandproc-holder hold|exec (started by sandprocd)\n");
	return (2);
}
