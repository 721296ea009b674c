/*
 * The direct backend: children of the server itself. Each child's pidfd and
 * output fds sit in the supervisor's loop. A pidfd turns readable when its
 * child exits; waitid(WNOWAIT) reads the status and leaves the zombie, so
 * its pid and group id stay reserved until the reap, and every signal is
 * sent under the child's lock while it is unreaped: no signal can reach a
 * reused pid. Scans of /proc (a TTY session's job groups) run on a worker
 * without the lock, and hold the reap off until they are done.
 *
 * A child ends when it has exited and its output is drained: its pipes
 * reach EOF, or no other process is left in its group (or session, for a
 * TTY): a daemon that left the group may still hold them. After a SIGKILL a
 * group whose leader is gone gets a second to let go.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/list.h"
#include "base/util.h"
#include "os/fdio.h"
#include "os/procfs.h"
#include "proc/proc.h"
#include "sp_status.h"

#define DIRECT_READ_MAX (64 * 1024)
#define DIRECT_FORCE_END_MS 1000
#define DIRECT_DRAIN_MIN_MS 20
#define DIRECT_DRAIN_MAX_MS 1000

void supervisor_output(
    supervisor *s, proc *p, sandproc_v1_Stream stream, const uint8_t *data, size_t len, uint64_t stored_seq);
void supervisor_ended(supervisor *s, proc *p, const child_exit *e);

typedef struct direct_backend {
	backend b;
	uint8_t buf[DIRECT_READ_MAX]; /* the loop thread's read buffer */
} direct_backend;

typedef struct direct_child {
	proc *p;
	backend *b;
	pthread_mutex_t mu; /* reaped, busy, reap_wanted, ended, killed */
	bool reaped;
	int busy;         /* scans in progress that rely on the pid staying ours */
	bool reap_wanted; /* released while busy: the last scan reaps */
	bool ended;       /* set on the loop; after it no timer is armed */
	bool killed;
	/* loop thread only */
	bool reattached, exited, draining;
	int wstatus;
	int pidfd, out_fd, err_fd;
	loop_src s_pid, s_out, s_err;
	timer drain_timer, force_timer;
	int64_t drain_interval;
} direct_child;

typedef struct direct_scan {
	workq_job job;
	direct_child *dc;
	int sig;
} direct_scan;

static direct_child *
direct_of(proc *p)
{
	return (p->child);
}

static void
direct_close(backend *b, int *fd)
{
	if (*fd >= 0) {
		loop_del(b->lp, *fd);
		close(*fd);
		*fd = -1;
	}
}

/* Reaps dc's child unless it was already (caller holds dc->mu). Shutdown may leave one that will not die. */
static void
direct_reap_locked(direct_child *dc)
{
	int st;
	pid_t r;

	if (dc->reaped || dc->reattached) {
		dc->reaped = true;
		return;
	}
	while ((r = waitpid(dc->p->pid, &st, dc->exited ? 0 : WNOHANG)) < 0 && errno == EINTR) {}
	if (r == dc->p->pid && !dc->exited) {
		dc->exited = true;
		dc->wstatus = st;
	}
	/* A pid that would not die at shutdown stays unreaped: it is never signalled again either. */
	dc->reaped = true;
}

static void
direct_free_child(direct_child *dc)
{
	pthread_mutex_destroy(&dc->mu);
	free(dc);
}

/* --- signals ----------------------------------------------------------------------- */

/* A worker: signals a TTY session's other job groups, then lets the reap go ahead. */
static void
direct_scan_job(workq_job *job)
{
	direct_scan *sc = (direct_scan *)job;
	direct_child *dc = sc->dc;

	proc *p = dc->p;

	procfs_signal_session_groups(p->pid, sc->sig);
	pthread_mutex_lock(&dc->mu);
	if (--dc->busy == 0 && dc->reap_wanted) {
		/* The child was released meanwhile: its reap waited for this scan. */
		direct_reap_locked(dc);
	}
	pthread_mutex_unlock(&dc->mu);
	free(sc);
	supervisor *s = p->s;
	pthread_mutex_lock(&s->mu);
	proc_unref(p); /* the scan's reference */
	pthread_mutex_unlock(&s->mu);
}

static void
direct_signal(backend *b, proc *p, int sig, bool whole)
{
	direct_child *dc = direct_of(p);
	direct_scan *sc = NULL;

	pthread_mutex_lock(&dc->mu);
	if (dc->reaped) {
		pthread_mutex_unlock(&dc->mu);
		return;
	}
	if (dc->reattached) {
		/* Not our child: its pid is only ours to use while the pidfd says it lives. */
		struct pollfd pfd = { .fd = dc->pidfd, .events = POLLIN };
		if (dc->pidfd >= 0 && poll(&pfd, 1, 0) == 0) {
			kill(-p->pid, sig);
		}
		pthread_mutex_unlock(&dc->mu);
		return;
	}
	kill(-p->pid, sig);
	if (whole && p->tty && (sc = calloc(1, sizeof(*sc))) != NULL) {
		dc->busy++;
		sc->dc = dc;
		sc->sig = sig;
		sc->job.fn = direct_scan_job;
	}
	pthread_mutex_unlock(&dc->mu);
	if (sc != NULL) {
		supervisor *s = p->s;
		pthread_mutex_lock(&s->mu);
		p->refs++; /* released by the scan */
		pthread_mutex_unlock(&s->mu);
		workq_post(b->wq, &sc->job);
	}
}

/* --- the end ----------------------------------------------------------------------- */

static ssize_t direct_read_once(backend *b, direct_child *dc, int *fdp, sandproc_v1_Stream stream);

/* Takes what output is left and reports the end. Loop thread. */
static void
direct_finish(backend *b, direct_child *dc)
{
	proc *p = dc->p;
	child_exit e = { 0 };

	if (dc->ended) {
		return;
	}
	pthread_mutex_lock(&dc->mu);
	dc->ended = true;
	pthread_mutex_unlock(&dc->mu);
	loop_cancel(b->lp, &dc->drain_timer);
	loop_cancel(b->lp, &dc->force_timer);
	/* Whatever is still readable now, bounded in case something keeps writing. */
	for (int i = 0; i < 256 && dc->out_fd >= 0 &&
	     direct_read_once(b, dc, &dc->out_fd,
	         p->tty ? sandproc_v1_Stream_STREAM_PTY : sandproc_v1_Stream_STREAM_STDOUT) > 0;
	     i++) {}
	for (int i = 0; i < 256 && dc->err_fd >= 0 &&
	     direct_read_once(b, dc, &dc->err_fd, sandproc_v1_Stream_STREAM_STDERR) > 0;
	     i++) {}
	direct_close(b, &dc->out_fd);
	direct_close(b, &dc->err_fd);
	direct_close(b, &dc->pidfd);
	if (!dc->exited && !dc->reattached) {
		/* Shutdown forces an end: a last look for the status. */
		pthread_mutex_lock(&dc->mu);
		direct_reap_locked(dc);
		pthread_mutex_unlock(&dc->mu);
	}
	e.known = dc->exited && !dc->reattached;
	e.wstatus = dc->wstatus;
	supervisor_ended(b->s, p, &e);
}

static void
direct_drain_due(timer *t)
{
	direct_child *dc = containerof(t, direct_child, drain_timer);
	backend *b = dc->b;

	if (dc->ended || !dc->draining) {
		return;
	}
	if (!procfs_group_alive(dc->p->pid, dc->p->pid, dc->p->tty)) {
		direct_finish(b, dc);
		return;
	}
	dc->drain_interval =
	    dc->drain_interval * 2 > DIRECT_DRAIN_MAX_MS ? DIRECT_DRAIN_MAX_MS : dc->drain_interval * 2;
	loop_arm(b->lp, &dc->drain_timer, util_mono_ms() + dc->drain_interval);
}

static void
direct_force_due(timer *t)
{
	direct_child *dc = containerof(t, direct_child, force_timer);

	if (!dc->ended && dc->draining) {
		direct_finish(dc->b, dc);
	}
}

static void
direct_on_exit(loop_src *src, uint32_t events)
{
	direct_child *dc = containerof(src, direct_child, s_pid);
	backend *b = dc->b;
	siginfo_t si;

	(void)events;
	if (dc->ended || dc->exited || dc->draining) {
		return;
	}
	if (dc->reattached) {
		direct_finish(b, dc);
		return;
	}
	/* Read the status but leave the zombie: it keeps the group id ours. */
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)dc->p->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) {
		return;
	}
	dc->exited = true;
	dc->wstatus = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8 : (si.si_status & 0x7f);
	direct_close(b, &dc->pidfd);
	if (dc->out_fd < 0 && dc->err_fd < 0) {
		direct_finish(b, dc);
		return;
	}
	dc->draining = true;
	dc->drain_interval = DIRECT_DRAIN_MIN_MS;
	dc->drain_timer.fn = direct_drain_due;
	loop_arm(b->lp, &dc->drain_timer, util_mono_ms() + dc->drain_interval);
	pthread_mutex_lock(&dc->mu);
	if (dc->killed) {
		dc->force_timer.fn = direct_force_due;
		loop_arm(b->lp, &dc->force_timer, util_mono_ms() + DIRECT_FORCE_END_MS);
	}
	pthread_mutex_unlock(&dc->mu);
}

/* --- output ------------------------------------------------------------------------ */

/* Reads once from an output fd; at EOF closes it. Returns bytes read, 0 at EOF or when there is none. */
static ssize_t
direct_read_once(backend *b, direct_child *dc, int *fdp, sandproc_v1_Stream stream)
{
	direct_backend *db = (direct_backend *)b;
	ssize_t n;

	if (*fdp < 0) {
		return (0);
	}
	if ((n = fdio_read(*fdp, db->buf, sizeof(db->buf))) > 0) {
		supervisor_output(b->s, dc->p, stream, db->buf, (size_t)n, 0);
		return (n);
	}
	if (n < 0) {
		direct_close(b, fdp);
	}
	return (0);
}

static void
direct_on_output(direct_child *dc, int *fdp, sandproc_v1_Stream stream)
{
	if (dc->ended) {
		return;
	}
	direct_read_once(dc->b, dc, fdp, stream);
	if (dc->draining && dc->out_fd < 0 && dc->err_fd < 0) {
		direct_finish(dc->b, dc);
	}
}

static void
direct_on_out(loop_src *src, uint32_t events)
{
	direct_child *dc = containerof(src, direct_child, s_out);
	(void)events;
	direct_on_output(
	    dc, &dc->out_fd, dc->p->tty ? sandproc_v1_Stream_STREAM_PTY : sandproc_v1_Stream_STREAM_STDOUT);
}

static void
direct_on_err(loop_src *src, uint32_t events)
{
	direct_child *dc = containerof(src, direct_child, s_err);
	(void)events;
	direct_on_output(dc, &dc->err_fd, sandproc_v1_Stream_STREAM_STDERR);
}

/* --- ops ----------------------------------------------------------------------------- */

static direct_child *
direct_child_new(backend *b, proc *p)
{
	direct_child *dc = calloc(1, sizeof(*dc));

	if (dc == NULL) {
		return (NULL);
	}
	dc->p = p;
	dc->b = b;
	pthread_mutex_init(&dc->mu, NULL);
	dc->pidfd = dc->out_fd = dc->err_fd = -1;
	dc->s_pid.fn = direct_on_exit;
	dc->s_out.fn = direct_on_out;
	dc->s_err.fn = direct_on_err;
	return (dc);
}

static int
direct_start(backend *b, proc *p, const spawn_spec *spec, char *err, size_t errlen)
{
	direct_child *dc;
	spawn_child c;
	int code, errnum;

	/* A place on the host (a cgroup of its own) is left out: posix_spawn cannot join one. */
	if (spec->place != NULL && spec->place->ns_pid > 0) {
		snprintf(err, errlen,
		    "processes in a sandbox need the holder backend (sandprocd --backend holder)");
		return (SP_FAILED_PRECONDITION);
	}
	dc = direct_child_new(b, p);

	if (dc == NULL) {
		snprintf(err, errlen, "out of memory");
		return (SP_RESOURCE_EXHAUSTED);
	}
	if ((code = spawn_start(spec, &c, &errnum, err, errlen)) != SP_OK) {
		direct_free_child(dc);
		return (code);
	}
	p->pid = c.pid;
	dc->pidfd = c.pidfd;
	dc->out_fd = c.out_fd;
	dc->err_fd = c.err_fd;
	/* A TTY's input goes to the master through a dup of its own, closed separately. */
	p->in_fd = spec->tty ? fcntl(c.out_fd, F_DUPFD_CLOEXEC, 0) : c.in_fd;
	p->origin.pid_start = procfs_pid_start_time(p->pid);
	memcpy(p->origin.boot_id, b->s->boot_id, sizeof(p->origin.boot_id)); /* read once, at start-up */
	p->child = dc;
	return (SP_OK);
}

static void
direct_watch(backend *b, proc *p)
{
	direct_child *dc = direct_of(p);
	int rv = 0;

	if ((dc->pidfd >= 0 && (rv = loop_add(b->lp, dc->pidfd, &dc->s_pid)) != 0) ||
	    (dc->out_fd >= 0 && (rv = loop_add(b->lp, dc->out_fd, &dc->s_out)) != 0) ||
	    (dc->err_fd >= 0 && (rv = loop_add(b->lp, dc->err_fd, &dc->s_err)) != 0)) {
		util_log("%s: cannot watch its child: %s", p->id, strerror(rv));
	}
}

static void
direct_abandon(backend *b, proc *p)
{
	direct_child *dc = direct_of(p);

	(void)b;
	kill(-p->pid, SIGKILL);
	while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR) {}
	for (int *fd = &dc->pidfd; fd <= &dc->err_fd; fd++) {
		if (*fd >= 0) {
			close(*fd);
		}
	}
	if (p->in_fd >= 0) {
		close(p->in_fd);
		p->in_fd = -1;
	}
	p->child = NULL;
	direct_free_child(dc);
}

static void
direct_killed(backend *b, proc *p)
{
	direct_child *dc = direct_of(p);

	/* Armed now for a child draining already, or again at its exit. */
	pthread_mutex_lock(&dc->mu);
	if (!dc->ended) {
		dc->killed = true;
		dc->force_timer.fn = direct_force_due;
		loop_arm(b->lp, &dc->force_timer, util_mono_ms() + DIRECT_FORCE_END_MS);
	}
	pthread_mutex_unlock(&dc->mu);
}

static void
direct_close_stdin(backend *b, proc *p)
{
	/* The server held the only write end; closing it was the EOF. */
	(void)b;
	(void)p;
}

static bool
direct_reattach(backend *b, proc *p, const store_origin *o, child_exit *gone)
{
	direct_child *dc;
	int pidfd;

	memset(gone, 0, sizeof(*gone));
	bool same = p->rec.pid > 0 && o->pid_start != 0 && strcmp(o->boot_id, b->s->boot_id) == 0 &&
	    procfs_pid_start_time(p->rec.pid) == o->pid_start && procfs_pid_running(p->rec.pid);
	if (!same || (pidfd = pidfd_open(p->rec.pid, 0)) < 0) {
		return (false);
	}
	/* Checked again through the pidfd: the pid may have gone in between. */
	if (procfs_pid_start_time(p->rec.pid) != o->pid_start || (dc = direct_child_new(b, p)) == NULL) {
		close(pidfd);
		return (false);
	}
	dc->reattached = true;
	dc->pidfd = pidfd;
	p->pid = p->rec.pid;
	p->origin = *o;
	p->reattached = true;
	p->child = dc;
	return (true);
}

static void
direct_force_end(backend *b, proc *p)
{
	direct_finish(b, direct_of(p));
}

static void
direct_release(backend *b, proc *p)
{
	direct_child *dc = direct_of(p);

	(void)b;
	pthread_mutex_lock(&dc->mu);
	if (dc->busy > 0) {
		dc->reap_wanted = true; /* the last scan reaps */
	} else {
		direct_reap_locked(dc);
	}
	pthread_mutex_unlock(&dc->mu);
}

static void
direct_free_state(backend *b, proc *p)
{
	(void)b;
	direct_free_child(direct_of(p));
	p->child = NULL;
}

static void
direct_free(backend *b)
{
	free(b);
}

static const backend_ops direct_ops = {
	.name = "direct",
	.start = direct_start,
	.watch = direct_watch,
	.abandon = direct_abandon,
	.signal = direct_signal,
	.killed = direct_killed,
	.close_stdin = direct_close_stdin,
	.reattach = direct_reattach,
	.force_end = direct_force_end,
	.release = direct_release,
	.free_child = direct_free_state,
	.free = direct_free,
};

int
direct_backend_new(backend **out, supervisor *s, loop *lp, workq *wq)
{
	direct_backend *db = calloc(1, sizeof(*db));

	if (db == NULL) {
		return (ENOMEM);
	}
	db->b = (backend){ .ops = &direct_ops, .s = s, .lp = lp, .wq = wq };
	*out = &db->b;
	return (0);
}
