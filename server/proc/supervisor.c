#include "proc/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "base/util.h"
#include "os/spawn.h"
#include "output/logfile.h"
#include "output/screen.h"
#include "sp_status.h"

#define SUP_READ_MAX (64 * 1024)
#define SUP_BUCKETS 256
/* After SIGKILL, a group whose leader is gone gets this long to let go of the pipes. */
#define SUP_FORCE_END_MS 1000
/* First and longest wait between checks for a draining group's members. */
#define SUP_DRAIN_CHECK_MIN_MS 20
#define SUP_DRAIN_CHECK_MAX_MS 1000
#define SUP_TIMEOUT_GRACE_MS 5000
#define SUP_INPUT_TIMEOUT_MS 10000
/* Beyond the shutdown grace, processes that will not die are recorded anyway. */
#define SUP_SHUTDOWN_EXTRA_MS 3000

enum proc_phase { PHASE_RUNNING, PHASE_DRAINING, PHASE_ENDED };
enum src_kind { SRC_WAKE, SRC_PIDFD, SRC_OUT, SRC_ERR };

struct proc;

typedef struct sup_src {
	struct proc *p;
	int kind;
} sup_src;

typedef struct proc {
	struct proc *hnext;
	struct proc *dnext;
	int refs; /* under s->mu: the table's, and each borrower's */
	char id[32];
	sandproc_v1_Process rec; /* strings in arena; state fields under s->mu */
	sp_arena *arena;
	store_origin origin;
	pid_t pid; /* also the group (and for a TTY the session) id */
	bool tty, reattached;
	int phase;   /* written by the loop under s->mu */
	bool reaped; /* under s->mu */
	bool exited; /* the leader exited; status in wstatus (loop only) */
	int wstatus;
	bool stdin_open; /* under s->mu */
	/* loop thread only */
	int pidfd, out_fd, err_fd;
	logfile *log;
	uint64_t seq;
	int log_errno;
	/* in_fd: stdin pipe or a dup of the PTY master; closed under io_mu */
	pthread_mutex_t io_mu;
	pthread_mutex_t input_mu; /* one SendInput at a time */
	int in_fd;
	screen *scr;
	/* deadlines in monotonic ms, 0 = none; under s->mu */
	int64_t kill_at, timeout_at, drain_check_at, force_end_at;
	int64_t drain_interval;
	bool stop_requested;
	int stop_signal;
	char stop_reason[64];
	sup_src s_pid, s_out, s_err;
} proc;

struct supervisor {
	pthread_mutex_t mu;
	pthread_cond_t ended; /* broadcast whenever a process ends */
	proc *table[SUP_BUCKETS];
	uint32_t active; /* live processes + Runs in flight */
	uint32_t live;
	int64_t next_timer;
	bool stopping;
	int64_t shutdown_deadline;
	int ep, wakefd;
	sup_src s_wake;
	pthread_t thread;
	store *st;
	publisher *pub;
	config_holder *cfg;
	char *log_dir;
	char boot_id[40];
	proc *dead;  /* loop only: ended, to be released after the batch */
	pid_t *runs; /* children of Runs in flight; under mu */
	size_t nruns, caprun;
	uint8_t buf[SUP_READ_MAX];
};

static void sup_finish(supervisor *s, proc *p);

/* --- table ------------------------------------------------------------------- */

static unsigned
sup_bucket(const char *id)
{
	unsigned h = 2166136261u;
	for (; *id != '\0'; id++) {
		h = (h ^ (unsigned char)*id) * 16777619u;
	}
	return (h % SUP_BUCKETS);
}

/* Caller holds s->mu. */
static proc *
sup_find(supervisor *s, const char *id)
{
	for (proc *p = s->table[sup_bucket(id)]; p != NULL; p = p->hnext) {
		if (strcmp(p->id, id) == 0) {
			return (p);
		}
	}
	return (NULL);
}

static void
sup_table_remove(supervisor *s, proc *p)
{
	proc **pp = &s->table[sup_bucket(p->id)];
	while (*pp != NULL && *pp != p) {
		pp = &(*pp)->hnext;
	}
	if (*pp == p) {
		*pp = p->hnext;
	}
}

static void
proc_free(proc *p)
{
	screen_free(p->scr);
	pthread_mutex_destroy(&p->io_mu);
	pthread_mutex_destroy(&p->input_mu);
	sp_arena_free(p->arena);
	free(p);
}

/* Caller holds s->mu. */
static void
proc_unref(proc *p)
{
	if (--p->refs == 0) {
		proc_free(p);
	}
}

static proc *
proc_new(void)
{
	proc *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		return (NULL);
	}
	if ((p->arena = sp_arena_new()) == NULL) {
		free(p);
		return (NULL);
	}
	pthread_mutex_init(&p->io_mu, NULL);
	pthread_mutex_init(&p->input_mu, NULL);
	p->pidfd = p->out_fd = p->err_fd = p->in_fd = -1;
	p->s_pid = (sup_src){ p, SRC_PIDFD };
	p->s_out = (sup_src){ p, SRC_OUT };
	p->s_err = (sup_src){ p, SRC_ERR };
	return (p);
}

/* --- records ------------------------------------------------------------------- */

static int
sup_copy_strv(sp_strv_t *dst, const sp_strv_t *src, sp_arena *a)
{
	dst->n = src->n;
	dst->cap = 0;
	if (src->n == 0) {
		dst->v = NULL;
		return (0);
	}
	if ((dst->v = sp_arena_alloc(a, (src->n + 1) * sizeof(char *))) == NULL) {
		return (ENOMEM);
	}
	for (size_t i = 0; i < src->n; i++) {
		if ((dst->v[i] = sp_arena_strdup(a, src->v[i] != NULL ? src->v[i] : "")) == NULL) {
			return (ENOMEM);
		}
	}
	dst->v[src->n] = NULL;
	return (0);
}

/* A deep copy of src whose strings live in a. */
static int
sup_copy_record(sandproc_v1_Process *dst, const sandproc_v1_Process *src, sp_arena *a)
{
	*dst = *src;
	if (sup_copy_strv(&dst->argv, &src->argv, a) != 0 || sup_copy_strv(&dst->env, &src->env, a) != 0 ||
	    sup_copy_strv(&dst->labels, &src->labels, a) != 0) {
		return (ENOMEM);
	}
	dst->cwd = sp_arena_strdup(a, src->cwd != NULL ? src->cwd : "");
	return (dst->cwd != NULL ? 0 : ENOMEM);
}

static void
sup_store_update(supervisor *s, const proc *p)
{
	int rv = store_update_process(s->st, &p->rec, &p->origin);
	if (rv != 0) {
		util_log("%s: cannot store its record: %s", p->id, store_errmsg());
	}
}

/* --- loop plumbing ---------------------------------------------------------------- */

static void
sup_wake(supervisor *s)
{
	uint64_t one = 1;
	ssize_t n = write(s->wakefd, &one, sizeof(one));
	(void)n; /* a full counter already means "wake up" */
}

/* Caller holds s->mu. */
static void
sup_arm(supervisor *s, int64_t at)
{
	if (at != 0 && (s->next_timer == 0 || at < s->next_timer)) {
		s->next_timer = at;
		sup_wake(s);
	}
}

static void
sup_epoll_add(supervisor *s, int fd, sup_src *src)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = src };
	if (fd >= 0 && epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		util_log("epoll_ctl add: %s", strerror(errno));
	}
}

static void
sup_close_watched(supervisor *s, int *fd)
{
	if (*fd >= 0) {
		epoll_ctl(s->ep, EPOLL_CTL_DEL, *fd, NULL);
		close(*fd);
		*fd = -1;
	}
}

/* --- signals --------------------------------------------------------------------- */

/* True once a re-attached (not our child) leader has exited. */
static bool
sup_pidfd_exited(int pidfd)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	return (pidfd < 0 || poll(&pfd, 1, 0) != 0);
}

/*
 * Signals the process's group (and for a TTY on stop/kill, the other job
 * groups of its session). Caller holds s->mu, which keeps the loop from
 * reaping the leader meanwhile: an unreaped leader reserves the group id.
 */
static void
sup_signal_group(proc *p, int sig, bool whole_session)
{
	if (p->reaped) {
		return;
	}
	if (p->reattached) {
		/* Not our child: its pid is only safe while the pidfd says it lives. */
		if (sup_pidfd_exited(p->pidfd)) {
			return;
		}
		pidfd_send_signal(p->pidfd, sig, NULL, 0);
	}
	kill(-p->pid, sig);
	if (p->tty && whole_session) {
		spawn_signal_session_groups(p->pid, sig);
	}
}

/* --- output ---------------------------------------------------------------------- */

static void
sup_entry(supervisor *s, proc *p, sandproc_v1_Stream stream, const uint8_t *data, size_t len)
{
	sandproc_v1_Config cfg;
	int64_t ts = util_now_ms();
	int rv;

	p->seq++;
	config_holder_get(s->cfg, &cfg);
	if (p->log != NULL) {
		rv = logfile_append(p->log, p->seq, stream, ts, data, len, cfg.max_log_bytes_per_process);
		if (rv != 0 && p->log_errno == 0) {
			util_log("%s: output entry %llu not stored: %s", p->id, (unsigned long long)p->seq,
			    strerror(rv));
		}
		if (rv != 0) {
			p->log_errno = rv;
		}
	}
	if (stream == sandproc_v1_Stream_STREAM_PTY) {
		sandproc_v1_TermFrame f;
		memset(&f, 0, sizeof(f));
		memcpy(f.process_id, p->id,
		    sizeof(p->id) < sizeof(f.process_id) ? sizeof(p->id) : sizeof(f.process_id));
		f.process_id[sizeof(f.process_id) - 1] = '\0';
		f.sequence = p->seq;
		f.timestamp_ms = ts;
		f.data.data = data;
		f.data.len = len;
		publisher_send(s->pub, "term", p->id, sandproc_v1_TermFrame_fields, &f);
		if (p->scr != NULL) {
			screen_feed(p->scr, data, len, p->seq);
		}
	} else {
		sandproc_v1_LogEntry e;
		memset(&e, 0, sizeof(e));
		e.sequence = p->seq;
		e.stream = stream;
		e.timestamp_ms = ts;
		e.data.data = data;
		e.data.len = len;
		publisher_send(s->pub, "log", p->id, sandproc_v1_LogEntry_fields, &e);
	}
}

/* Reads once from an output fd; at EOF closes it. Returns bytes read, 0 at EOF/none. */
static ssize_t
sup_read_once(supervisor *s, proc *p, int kind)
{
	int *fdp = kind == SRC_OUT ? &p->out_fd : &p->err_fd;
	sandproc_v1_Stream stream = p->tty ? sandproc_v1_Stream_STREAM_PTY
	    : kind == SRC_OUT              ? sandproc_v1_Stream_STREAM_STDOUT
	                                   : sandproc_v1_Stream_STREAM_STDERR;
	ssize_t n;

	if (*fdp < 0) {
		return (0);
	}
	n = read(*fdp, s->buf, sizeof(s->buf));
	if (n > 0) {
		sup_entry(s, p, stream, s->buf, (size_t)n);
		return (n);
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		return (0);
	}
	/* EOF, or EIO from a PTY master whose slave side is all closed. */
	sup_close_watched(s, fdp);
	return (0);
}

static void
sup_on_output(supervisor *s, proc *p, int kind)
{
	if (p->phase == PHASE_ENDED) {
		return;
	}
	sup_read_once(s, p, kind);
	if (p->phase == PHASE_DRAINING && p->out_fd < 0 && p->err_fd < 0) {
		sup_finish(s, p);
	}
}

/* The terminal's replies (cursor reports ...) go back to the PTY. */
static void
sup_screen_reply(void *arg, const char *data, size_t len)
{
	proc *p = arg;

	pthread_mutex_lock(&p->io_mu);
	if (p->in_fd >= 0) {
		ssize_t n = write(p->in_fd, data, len);
		(void)n; /* a reply the PTY cannot take now is dropped */
	}
	pthread_mutex_unlock(&p->io_mu);
}

/* --- exit ------------------------------------------------------------------------- */

static void
sup_on_exit(supervisor *s, proc *p)
{
	siginfo_t si;

	if (p->phase != PHASE_RUNNING) {
		return;
	}
	if (p->reattached) {
		sup_finish(s, p);
		return;
	}
	/* Read the status but leave the zombie: it keeps the group id ours. */
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) {
		return;
	}
	p->exited = true;
	p->wstatus = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8 : (si.si_status & 0x7f);
	sup_close_watched(s, &p->pidfd);
	if (p->out_fd < 0 && p->err_fd < 0) {
		sup_finish(s, p);
		return;
	}
	pthread_mutex_lock(&s->mu);
	p->phase = PHASE_DRAINING;
	p->drain_interval = SUP_DRAIN_CHECK_MIN_MS;
	p->drain_check_at = util_mono_ms() + p->drain_interval;
	if (p->stop_requested && p->kill_at == 0 && p->force_end_at == 0) {
		p->force_end_at = util_mono_ms() + SUP_FORCE_END_MS;
	}
	sup_arm(s, p->drain_check_at);
	pthread_mutex_unlock(&s->mu);
}

/* The final record of p, from how its leader ended and why. */
static void
sup_final_record(proc *p)
{
	sandproc_v1_Process *r = &p->rec;
	int st = p->wstatus;

	r->exited_at_ms = util_now_ms();
	r->stdin_open = false;
	if (p->reattached || !p->exited) {
		/* Not our child (or never seen to exit): its status cannot be read. */
		r->state = sandproc_v1_State_STATE_KILLED;
		r->exit_code = -1;
		r->signal = p->stop_requested ? p->stop_signal : 0;
		snprintf(r->error, sizeof(r->error), "%s",
		    p->stop_requested ? p->stop_reason
		                      : "exit status unknown: re-attached after a server restart");
	} else if (WIFSIGNALED(st)) {
		r->state = sandproc_v1_State_STATE_KILLED;
		r->exit_code = -1;
		r->signal = WTERMSIG(st);
		if (p->stop_requested) {
			snprintf(r->error, sizeof(r->error), "%s", p->stop_reason);
		}
	} else if (p->stop_requested) {
		/* It handled the signal and exited: still ended by Stop/Kill/timeout. */
		r->state = sandproc_v1_State_STATE_KILLED;
		r->exit_code = -1;
		r->signal = p->stop_signal;
		snprintf(
		    r->error, sizeof(r->error), "%s (exited with code %d)", p->stop_reason, WEXITSTATUS(st));
	} else {
		r->state = sandproc_v1_State_STATE_EXITED;
		r->exit_code = WEXITSTATUS(st);
		r->signal = 0;
	}
	if (p->log_errno != 0 && r->error[0] == '\0') {
		snprintf(
		    r->error, sizeof(r->error), "some output was not stored: %s", strerror(p->log_errno));
	}
}

/*
 * Ends p: takes what output is left, reaps the leader, then stores,
 * publishes and wakes waiters, in that order. Loop thread only.
 */
static void
sup_finish(supervisor *s, proc *p)
{
	/* Whatever is still readable now, bounded in case something keeps writing. */
	for (int kind = SRC_OUT; kind <= SRC_ERR; kind++) {
		int *fdp = kind == SRC_OUT ? &p->out_fd : &p->err_fd;
		for (int i = 0; i < 256 && *fdp >= 0 && sup_read_once(s, p, kind) > 0; i++) {}
		sup_close_watched(s, fdp);
	}
	pthread_mutex_lock(&s->mu);
	if (!p->reattached && !p->reaped) {
		int st;
		pid_t r;
		while ((r = waitpid(p->pid, &st, p->exited ? 0 : WNOHANG)) < 0 && errno == EINTR) {}
		if (r == p->pid && !p->exited) {
			p->exited = true;
			p->wstatus = st;
		}
		/* A pid that would not die at shutdown stays unreaped: never signal it again. */
		p->reaped = true;
	}
	pthread_mutex_unlock(&s->mu);
	sup_close_watched(s, &p->pidfd);
	pthread_mutex_lock(&p->io_mu);
	if (p->in_fd >= 0) {
		close(p->in_fd);
		p->in_fd = -1;
	}
	pthread_mutex_unlock(&p->io_mu);
	logfile_close(p->log);
	p->log = NULL;

	pthread_mutex_lock(&s->mu);
	sup_final_record(p);
	pthread_mutex_unlock(&s->mu);
	sup_store_update(s, p);
	publisher_process(
	    s->pub, p->rec.state == sandproc_v1_State_STATE_EXITED ? "exited" : "killed", &p->rec);

	pthread_mutex_lock(&s->mu);
	p->phase = PHASE_ENDED;
	p->stdin_open = false;
	sup_table_remove(s, p);
	s->live--;
	s->active--;
	pthread_cond_broadcast(&s->ended);
	pthread_mutex_unlock(&s->mu);
	/* The table's reference goes once this batch of events is done with p. */
	p->dnext = s->dead;
	s->dead = p;
}

/* --- timers ---------------------------------------------------------------------- */

typedef struct sup_due {
	proc *p;
	bool force;
} sup_due;

/*
 * Acts on every deadline that has passed. Decisions that read /proc or end
 * a process happen after the lock is dropped.
 */
static void
sup_timers(supervisor *s)
{
	sup_due due[64];
	size_t ndue = 0;
	int64_t now = util_mono_ms(), next = 0;

	pthread_mutex_lock(&s->mu);
	if (s->next_timer == 0 || now < s->next_timer) {
		pthread_mutex_unlock(&s->mu);
		return;
	}
	bool force_all = s->stopping && s->shutdown_deadline != 0 && now >= s->shutdown_deadline;
	for (int b = 0; b < SUP_BUCKETS; b++) {
		for (proc *p = s->table[b]; p != NULL; p = p->hnext) {
			if (p->timeout_at != 0 && now >= p->timeout_at) {
				p->timeout_at = 0;
				if (!p->stop_requested) {
					p->stop_requested = true;
					p->stop_signal = SIGTERM;
					snprintf(p->stop_reason, sizeof(p->stop_reason),
					    "timed out after %u s", p->rec.timeout_s);
					sup_signal_group(p, SIGTERM, true);
					p->kill_at = now + SUP_TIMEOUT_GRACE_MS;
				}
			}
			if (p->kill_at != 0 && now >= p->kill_at) {
				p->kill_at = 0;
				p->stop_signal = p->stop_requested ? SIGKILL : p->stop_signal;
				sup_signal_group(p, SIGKILL, true);
				p->force_end_at = now + SUP_FORCE_END_MS;
			}
			bool check =
			    p->phase == PHASE_DRAINING && p->drain_check_at != 0 && now >= p->drain_check_at;
			bool force =
			    (p->phase == PHASE_DRAINING && p->force_end_at != 0 && now >= p->force_end_at) ||
			    force_all;
			if ((check || force) && ndue < sizeof(due) / sizeof(due[0])) {
				p->refs++;
				due[ndue++] = (sup_due){ p, force };
				p->drain_check_at = 0;
			}
			int64_t ds[] = { p->timeout_at, p->kill_at,
				p->phase == PHASE_DRAINING ? p->drain_check_at : 0,
				p->phase == PHASE_DRAINING ? p->force_end_at : 0 };
			for (size_t i = 0; i < 4; i++) {
				if (ds[i] != 0 && (next == 0 || ds[i] < next)) {
					next = ds[i];
				}
			}
		}
	}
	if (s->stopping && s->shutdown_deadline != 0 && !force_all &&
	    (next == 0 || s->shutdown_deadline < next)) {
		next = s->shutdown_deadline;
	}
	/* More were due than fit: look again at once. */
	s->next_timer = ndue == sizeof(due) / sizeof(due[0]) ? now : next;
	pthread_mutex_unlock(&s->mu);

	for (size_t i = 0; i < ndue; i++) {
		proc *p = due[i].p;
		bool end = due[i].force;
		if (!end && p->phase == PHASE_DRAINING) {
			end = !spawn_group_alive(p->pid, p->pid, p->tty);
		}
		if (p->phase == PHASE_DRAINING && end) {
			sup_finish(s, p);
		} else if (p->phase == PHASE_DRAINING) {
			pthread_mutex_lock(&s->mu);
			p->drain_interval = p->drain_interval * 2 > SUP_DRAIN_CHECK_MAX_MS
			    ? SUP_DRAIN_CHECK_MAX_MS
			    : p->drain_interval * 2;
			p->drain_check_at = util_mono_ms() + p->drain_interval;
			sup_arm(s, p->drain_check_at);
			pthread_mutex_unlock(&s->mu);
		} else if (due[i].force && p->phase == PHASE_RUNNING) {
			/* Shutdown: the leader would not die in time. */
			sup_finish(s, p);
		}
		pthread_mutex_lock(&s->mu);
		proc_unref(p);
		pthread_mutex_unlock(&s->mu);
	}
}

static void *
sup_loop(void *arg)
{
	supervisor *s = arg;
	struct epoll_event evs[64];

	for (;;) {
		int64_t now = util_mono_ms();
		int timeout;

		pthread_mutex_lock(&s->mu);
		if (s->stopping && s->live == 0) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		if (s->next_timer == 0) {
			timeout = -1;
		} else if (s->next_timer <= now) {
			timeout = 0;
		} else {
			timeout = s->next_timer - now > 60000 ? 60000 : (int)(s->next_timer - now);
		}
		pthread_mutex_unlock(&s->mu);

		int n = epoll_wait(s->ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), timeout);
		for (int i = 0; i < n; i++) {
			sup_src *src = evs[i].data.ptr;
			switch (src->kind) {
			case SRC_WAKE: {
				uint64_t v;
				ssize_t r = read(s->wakefd, &v, sizeof(v));
				(void)r;
				break;
			}
			case SRC_PIDFD:
				sup_on_exit(s, src->p);
				break;
			case SRC_OUT:
			case SRC_ERR:
				sup_on_output(s, src->p, src->kind);
				break;
			}
		}
		sup_timers(s);
		while (s->dead != NULL) {
			proc *p = s->dead;
			s->dead = p->dnext;
			pthread_mutex_lock(&s->mu);
			proc_unref(p);
			pthread_mutex_unlock(&s->mu);
		}
	}
	return (NULL);
}

/* --- life of the supervisor ---------------------------------------------------------- */

int
supervisor_new(supervisor **out, store *st, publisher *pub, config_holder *cfg, const char *log_dir,
    char *err, size_t errlen)
{
	supervisor *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;
	int rv;

	if (s == NULL || (s->log_dir = strdup(log_dir)) == NULL) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return (ENOMEM);
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->ended, &ca);
	pthread_condattr_destroy(&ca);
	s->st = st;
	s->pub = pub;
	s->cfg = cfg;
	spawn_boot_id(s->boot_id, sizeof(s->boot_id));
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	s->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->ep < 0 || s->wakefd < 0) {
		snprintf(err, errlen, "epoll/eventfd: %s", strerror(errno));
		return (errno);
	}
	s->s_wake = (sup_src){ NULL, SRC_WAKE };
	sup_epoll_add(s, s->wakefd, &s->s_wake);
	if ((rv = pthread_create(&s->thread, NULL, sup_loop, s)) != 0) {
		snprintf(err, errlen, "pthread_create: %s", strerror(rv));
		return (rv);
	}
	*out = s;
	return (0);
}

void
supervisor_stop(supervisor *s, int grace_ms)
{
	int64_t now = util_mono_ms();

	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	s->shutdown_deadline = now + grace_ms + SUP_SHUTDOWN_EXTRA_MS;
	for (int b = 0; b < SUP_BUCKETS; b++) {
		for (proc *p = s->table[b]; p != NULL; p = p->hnext) {
			if (!p->stop_requested) {
				p->stop_requested = true;
				p->stop_signal = SIGTERM;
				snprintf(
				    p->stop_reason, sizeof(p->stop_reason), "stopped: the server shut down");
			}
			sup_signal_group(p, SIGTERM, true);
			p->kill_at = now + grace_ms;
			sup_arm(s, p->kill_at);
		}
	}
	/* A Run's child is unreaped while attached, so its group id is still its own. */
	for (size_t i = 0; i < s->nruns; i++) {
		kill(-s->runs[i], SIGKILL);
	}
	sup_arm(s, s->shutdown_deadline);
	sup_wake(s);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
}

void
supervisor_free(supervisor *s)
{
	free(s->runs);
	close(s->ep);
	close(s->wakefd);
	pthread_cond_destroy(&s->ended);
	pthread_mutex_destroy(&s->mu);
	free(s->log_dir);
	free(s);
}

const char *
supervisor_log_dir(const supervisor *s)
{
	return (s->log_dir);
}

uint32_t
supervisor_running(supervisor *s)
{
	uint32_t n;

	pthread_mutex_lock(&s->mu);
	n = s->live;
	pthread_mutex_unlock(&s->mu);
	return (n);
}

bool
supervisor_reserve(supervisor *s, uint32_t *active, uint32_t *max)
{
	sandproc_v1_Config cfg;
	bool ok;

	config_holder_get(s->cfg, &cfg);
	pthread_mutex_lock(&s->mu);
	ok = !s->stopping && s->active < cfg.max_concurrent_processes;
	if (ok) {
		s->active++;
	}
	*active = s->active;
	*max = cfg.max_concurrent_processes;
	pthread_mutex_unlock(&s->mu);
	return (ok);
}

void
supervisor_release(supervisor *s)
{
	pthread_mutex_lock(&s->mu);
	s->active--;
	pthread_mutex_unlock(&s->mu);
}

/* --- starting ---------------------------------------------------------------------- */

/* Stores p as failed with msg and publishes it; returns code with "<id>: msg" in err. */
static int
sup_fail_start(supervisor *s, proc *p, int code, const char *msg, char *err, size_t errlen)
{
	sandproc_v1_Process *r = &p->rec;

	r->state = sandproc_v1_State_STATE_FAILED;
	/* As a shell would answer: 127 not found, 126 found but not runnable. */
	r->exit_code = code == SP_NOT_FOUND                                  ? 127
	    : code == SP_PERMISSION_DENIED || code == SP_FAILED_PRECONDITION ? 126
	                                                                     : -1;
	r->exited_at_ms = r->started_at_ms;
	r->pid = 0;
	r->stdin_open = false;
	snprintf(r->error, sizeof(r->error), "%.*s", (int)sizeof(r->error) - 1, msg);
	if (store_insert_process(s->st, r, NULL) != 0) {
		util_log("%s: cannot store its failed record: %s", p->id, store_errmsg());
	}
	publisher_process(s->pub, "failed", r);
	snprintf(err, errlen, "%s: %s", p->id, msg);
	return (code);
}

int
supervisor_start_process(supervisor *s, const sandproc_v1_StartRequest *req, sandproc_v1_Process *out,
    sp_arena *arena, char *err, size_t errlen)
{
	sandproc_v1_Process *r;
	spawn_child c;
	spawn_opts o;
	char msg[512];
	uint32_t active, max;
	uint64_t last_seq = 0;
	int code, errnum, rv;
	proc *p;

	if (req->argv.n == 0) {
		snprintf(err, errlen, "argv is empty");
		return (SP_INVALID_ARGUMENT);
	}
	if (req->tty && (req->cols > 1000 || req->rows > 1000)) {
		snprintf(err, errlen, "cols and rows must be at most 1000");
		return (SP_INVALID_ARGUMENT);
	}
	if ((p = proc_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (SP_RESOURCE_EXHAUSTED);
	}
	r = &p->rec;
	util_new_proc_id(p->id);
	memcpy(r->id, p->id, sizeof(r->id));
	snprintf(
	    r->sandbox_id, sizeof(r->sandbox_id), "%s", req->sandbox_id[0] ? req->sandbox_id : "default");
	snprintf(r->name, sizeof(r->name), "%s", req->name);
	if (sup_copy_strv(&r->argv, &req->argv, p->arena) != 0 ||
	    sup_copy_strv(&r->env, &req->env, p->arena) != 0 ||
	    sup_copy_strv(&r->labels, &req->labels, p->arena) != 0 ||
	    (r->cwd = sp_arena_strdup(p->arena, req->cwd != NULL ? req->cwd : "")) == NULL) {
		proc_free(p);
		snprintf(err, errlen, "out of memory");
		return (SP_RESOURCE_EXHAUSTED);
	}
	r->tty = p->tty = req->tty;
	r->cols = req->tty ? (req->cols ? req->cols : 80) : 0;
	r->rows = req->tty ? (req->rows ? req->rows : 24) : 0;
	r->timeout_s = req->timeout_s;
	r->started_at_ms = util_now_ms();

	if (!supervisor_reserve(s, &active, &max)) {
		snprintf(msg, sizeof(msg),
		    "limit reached: %u processes running (max_concurrent_processes is %u)", active, max);
		code = sup_fail_start(s, p, SP_RESOURCE_EXHAUSTED, msg, err, errlen);
		proc_free(p);
		return (code);
	}
	if ((rv = logfile_open(&p->log, s->log_dir, p->id, &last_seq)) != 0) {
		snprintf(msg, sizeof(msg), "log file: %s", strerror(rv));
		supervisor_release(s);
		code = sup_fail_start(
		    s, p, rv == ENOSPC ? SP_RESOURCE_EXHAUSTED : SP_INTERNAL, msg, err, errlen);
		proc_free(p);
		return (code);
	}
	o = (spawn_opts){
		.argv = (const char *const *)r->argv.v,
		.argc = r->argv.n,
		.cwd = r->cwd,
		.env = (const char *const *)r->env.v,
		.envc = r->env.n,
		.tty = r->tty,
		.cols = (uint16_t)r->cols,
		.rows = (uint16_t)r->rows,
		.in = req->no_stdin ? SPAWN_STDIN_NULL : SPAWN_STDIN_PIPE,
		.big_pipes = true,
	};
	if ((code = spawn_start(&o, &c, &errnum, msg, sizeof(msg))) != SP_OK) {
		supervisor_release(s);
		logfile_close(p->log);
		p->log = NULL;
		logfile_remove(s->log_dir, p->id);
		code = sup_fail_start(s, p, code, msg, err, errlen);
		proc_free(p);
		return (code);
	}
	p->pid = c.pid;
	p->pidfd = c.pidfd;
	p->out_fd = c.out_fd;
	p->err_fd = c.err_fd;
	p->in_fd = c.in_fd;
	if (p->tty) {
		/* Input goes to the master through its own fd, closed separately. */
		p->in_fd = fcntl(c.out_fd, F_DUPFD_CLOEXEC, 0);
		if (screen_new(&p->scr, (uint16_t)r->cols, (uint16_t)r->rows, sup_screen_reply, p) != 0) {
			p->scr = NULL;
			util_log("%s: no screen (libtsm failed); Screen will be unavailable", p->id);
		}
	}
	p->stdin_open = p->in_fd >= 0;
	p->origin.pid_start = spawn_pid_start_time(p->pid);
	snprintf(p->origin.boot_id, sizeof(p->origin.boot_id), "%s", s->boot_id);
	r->pid = p->pid;
	r->state = sandproc_v1_State_STATE_RUNNING;
	r->stdin_open = p->stdin_open;
	if ((rv = store_insert_process(s->st, r, &p->origin)) != 0) {
		snprintf(err, errlen, "%s: cannot store the record, so the process was killed: %s", p->id,
		    store_errmsg());
		kill(-p->pid, SIGKILL);
		while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR) {}
		spawn_close_fds(&c);
		if (p->tty && p->in_fd >= 0) {
			close(p->in_fd);
		}
		logfile_close(p->log);
		logfile_remove(s->log_dir, p->id);
		supervisor_release(s);
		proc_free(p);
		return (rv == ENOSPC ? SP_RESOURCE_EXHAUSTED : SP_INTERNAL);
	}
	if (sup_copy_record(out, r, arena) != 0) {
		memset(out, 0, sizeof(*out));
	}

	pthread_mutex_lock(&s->mu);
	p->refs = 1;
	p->hnext = s->table[sup_bucket(p->id)];
	s->table[sup_bucket(p->id)] = p;
	s->live++;
	if (r->timeout_s > 0) {
		p->timeout_at = util_mono_ms() + (int64_t)r->timeout_s * 1000;
		sup_arm(s, p->timeout_at);
	}
	/* Registered under the lock so the loop cannot see p half-made. */
	sup_epoll_add(s, p->pidfd, &p->s_pid);
	sup_epoll_add(s, p->out_fd, &p->s_out);
	sup_epoll_add(s, p->err_fd, &p->s_err);
	pthread_mutex_unlock(&s->mu);
	publisher_process(s->pub, "started", out);
	return (SP_OK);
}

/* --- acting on live processes ------------------------------------------------------- */

int
supervisor_signal(supervisor *s, const char *id, sup_action action, int sig, uint32_t grace_ms)
{
	int64_t now = util_mono_ms();
	proc *p;

	pthread_mutex_lock(&s->mu);
	if ((p = sup_find(s, id)) == NULL) {
		pthread_mutex_unlock(&s->mu);
		return (SP_NOT_FOUND);
	}
	switch (action) {
	case SUP_SIGNAL:
		sup_signal_group(p, sig, false);
		break;
	case SUP_STOP:
		if (!p->stop_requested) {
			p->stop_requested = true;
			p->stop_signal = SIGTERM;
			snprintf(p->stop_reason, sizeof(p->stop_reason), "stopped");
		}
		sup_signal_group(p, SIGTERM, true);
		if (p->kill_at == 0 || now + grace_ms < p->kill_at) {
			p->kill_at = now + grace_ms;
		}
		sup_arm(s, p->kill_at);
		break;
	case SUP_KILL:
		if (!p->stop_requested) {
			p->stop_requested = true;
			snprintf(p->stop_reason, sizeof(p->stop_reason), "killed");
		}
		p->stop_signal = SIGKILL;
		p->kill_at = 0;
		sup_signal_group(p, SIGKILL, true);
		p->force_end_at = now + SUP_FORCE_END_MS;
		sup_arm(s, p->force_end_at);
		break;
	}
	pthread_mutex_unlock(&s->mu);
	return (SP_OK);
}

bool
supervisor_wait(supervisor *s, const char *id, uint32_t timeout_ms)
{
	struct timespec deadline;
	proc *p;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->mu);
	if ((p = sup_find(s, id)) == NULL) {
		pthread_mutex_unlock(&s->mu);
		return (false);
	}
	p->refs++;
	while (p->phase != PHASE_ENDED) {
		if (timeout_ms == 0) {
			pthread_cond_wait(&s->ended, &s->mu);
		} else if (pthread_cond_timedwait(&s->ended, &s->mu, &deadline) == ETIMEDOUT) {
			break;
		}
	}
	proc_unref(p);
	pthread_mutex_unlock(&s->mu);
	return (true);
}

/* Takes a reference on live process id, or NULL. */
static proc *
sup_borrow(supervisor *s, const char *id)
{
	proc *p;

	pthread_mutex_lock(&s->mu);
	if ((p = sup_find(s, id)) != NULL) {
		p->refs++;
	}
	pthread_mutex_unlock(&s->mu);
	return (p);
}

static void
sup_return(supervisor *s, proc *p)
{
	pthread_mutex_lock(&s->mu);
	proc_unref(p);
	pthread_mutex_unlock(&s->mu);
}

/* Writes all of data to fd (non-blocking), waiting for room up to deadline. */
static int
sup_write_all(int fd, const uint8_t *data, size_t len, int64_t deadline, uint64_t *written)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && errno == EAGAIN) {
			int64_t left = deadline - util_mono_ms();
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			if (left <= 0) {
				*written = done;
				return (ETIMEDOUT);
			}
			poll(&pfd, 1, (int)left);
			continue;
		}
		*written = done;
		return (n < 0 ? errno : EIO);
	}
	*written = done;
	return (0);
}

int
supervisor_send_input(supervisor *s, const char *id, const uint8_t *data, size_t len, bool eof,
    uint64_t *written, char *err, size_t errlen)
{
	proc *p = sup_borrow(s, id);
	int fd = -1, rv = 0, code = SP_OK;

	*written = 0;
	if (p == NULL) {
		return (SP_NOT_FOUND);
	}
	pthread_mutex_lock(&p->input_mu);
	/* A dup keeps the fd number ours while writing without io_mu held. */
	pthread_mutex_lock(&p->io_mu);
	if (p->in_fd >= 0) {
		fd = fcntl(p->in_fd, F_DUPFD_CLOEXEC, 0);
	}
	pthread_mutex_unlock(&p->io_mu);
	if (fd < 0) {
		snprintf(err, errlen, "%s: stdin is closed", id);
		code = SP_FAILED_PRECONDITION;
		goto out;
	}
	int64_t deadline = util_mono_ms() + SUP_INPUT_TIMEOUT_MS;
	rv = sup_write_all(fd, data, len, deadline, written);
	if (rv == 0 && eof && p->tty) {
		/* A PTY cannot be half-closed: EOF is the terminal's EOF character. */
		struct termios t;
		uint8_t veof = tcgetattr(fd, &t) == 0 && t.c_cc[VEOF] != 0 ? t.c_cc[VEOF] : 4;
		uint64_t w;
		rv = sup_write_all(fd, &veof, 1, deadline, &w);
	}
	close(fd);
	if (rv == ETIMEDOUT) {
		snprintf(err, errlen, "%s: stdin is full: the process read %llu of %zu bytes within %d ms",
		    id, (unsigned long long)*written, len, SUP_INPUT_TIMEOUT_MS);
		code = SP_DEADLINE_EXCEEDED;
		goto out;
	}
	if (rv != 0) {
		snprintf(err, errlen, "%s: stdin: %s%s", id, strerror(rv),
		    rv == EPIPE || rv == EIO ? " (the process closed it or has ended)" : "");
		code = SP_FAILED_PRECONDITION;
		goto out;
	}
	if (eof && !p->tty) {
		pthread_mutex_lock(&p->io_mu);
		if (p->in_fd >= 0) {
			close(p->in_fd);
			p->in_fd = -1;
		}
		pthread_mutex_unlock(&p->io_mu);
		pthread_mutex_lock(&s->mu);
		p->stdin_open = false;
		pthread_mutex_unlock(&s->mu);
	}
out:
	pthread_mutex_unlock(&p->input_mu);
	sup_return(s, p);
	return (code);
}

int
supervisor_resize(supervisor *s, const char *id, uint16_t cols, uint16_t rows, char *err, size_t errlen)
{
	struct winsize ws = { .ws_row = rows, .ws_col = cols };
	proc *p = sup_borrow(s, id);
	int code = SP_OK;

	if (p == NULL) {
		return (SP_NOT_FOUND);
	}
	if (!p->tty) {
		snprintf(err, errlen, "%s is not a TTY process", id);
		sup_return(s, p);
		return (SP_FAILED_PRECONDITION);
	}
	pthread_mutex_lock(&p->io_mu);
	if (p->in_fd < 0) {
		snprintf(err, errlen, "%s has ended", id);
		code = SP_FAILED_PRECONDITION;
	} else if (ioctl(p->in_fd, TIOCSWINSZ, &ws) != 0) {
		snprintf(err, errlen, "%s: TIOCSWINSZ: %s", id, strerror(errno));
		code = SP_INTERNAL;
	}
	pthread_mutex_unlock(&p->io_mu);
	if (code == SP_OK) {
		if (p->scr != NULL) {
			screen_resize(p->scr, cols, rows);
		}
		pthread_mutex_lock(&s->mu);
		p->rec.cols = cols;
		p->rec.rows = rows;
		pthread_mutex_unlock(&s->mu);
		/* The kernel sent SIGWINCH to the terminal's foreground group. */
	}
	sup_return(s, p);
	return (code);
}

int
supervisor_screen(
    supervisor *s, const char *id, sandproc_v1_ScreenReply *out, sp_arena *arena, char *err, size_t errlen)
{
	proc *p = sup_borrow(s, id);
	int code = SP_OK;

	if (p == NULL) {
		return (SP_NOT_FOUND);
	}
	if (!p->tty || p->scr == NULL) {
		snprintf(err, errlen, p->tty ? "%s has no screen" : "%s is not a TTY process", id);
		code = SP_FAILED_PRECONDITION;
	} else if (screen_snapshot(p->scr, out, arena) != 0) {
		snprintf(err, errlen, "out of memory");
		code = SP_RESOURCE_EXHAUSTED;
	}
	sup_return(s, p);
	return (code);
}

/* --- restart reconciliation ------------------------------------------------------------ */

static void
sup_reconcile_one(void *arg, const sandproc_v1_Process *rec, const store_origin *o)
{
	supervisor *s = arg;
	bool same = rec->pid > 0 && o->pid_start != 0 && strcmp(o->boot_id, s->boot_id) == 0 &&
	    spawn_pid_start_time(rec->pid) == o->pid_start && spawn_pid_running(rec->pid);
	int pidfd = same ? pidfd_open(rec->pid, 0) : -1;
	uint64_t last_seq = 0;
	proc *p;

	/* Checked again through the pidfd: the pid may have gone in between. */
	if (pidfd >= 0 && spawn_pid_start_time(rec->pid) == o->pid_start && (p = proc_new()) != NULL &&
	    sup_copy_record(&p->rec, rec, p->arena) == 0) {
		memcpy(p->id, rec->id, sizeof(p->id));
		p->pid = rec->pid;
		p->pidfd = pidfd;
		p->tty = rec->tty;
		p->reattached = true;
		p->origin = *o;
		p->rec.stdin_open = false;
		snprintf(p->rec.error, sizeof(p->rec.error),
		    "re-attached after a server restart: output and input since then are not connected");
		if (logfile_open(&p->log, s->log_dir, p->id, &last_seq) == 0) {
			p->seq = last_seq;
		}
		sup_store_update(s, p);
		pthread_mutex_lock(&s->mu);
		p->refs = 1;
		p->hnext = s->table[sup_bucket(p->id)];
		s->table[sup_bucket(p->id)] = p;
		s->live++;
		s->active++;
		sup_epoll_add(s, p->pidfd, &p->s_pid);
		pthread_mutex_unlock(&s->mu);
		util_log("%s: re-attached (pid %d still running)", p->id, (int)p->pid);
		return;
	}
	if (pidfd >= 0) {
		close(pidfd);
	}
	sandproc_v1_Process e = *rec;
	e.state = sandproc_v1_State_STATE_KILLED;
	e.exit_code = -1;
	e.signal = 0;
	e.exited_at_ms = util_now_ms();
	e.stdin_open = false;
	snprintf(e.error, sizeof(e.error), "exit status unknown: it ended while the server was down");
	if (store_update_process(s->st, &e, o) != 0) {
		util_log("%s: cannot store its record: %s", e.id, store_errmsg());
	}
	util_log("%s: was running when the server stopped and is gone; marked ended", e.id);
}

void
supervisor_reconcile(supervisor *s)
{
	if (store_for_each_running(s->st, sup_reconcile_one, s) != 0) {
		util_log("reconcile: %s", store_errmsg());
	}
}

bool
supervisor_run_attach(supervisor *s, pid_t pid)
{
	bool ok = false;

	pthread_mutex_lock(&s->mu);
	if (!s->stopping) {
		if (s->nruns == s->caprun) {
			size_t cap = s->caprun ? s->caprun * 2 : 16;
			pid_t *r = realloc(s->runs, cap * sizeof(*r));
			if (r != NULL) {
				s->runs = r;
				s->caprun = cap;
			}
		}
		if (s->nruns < s->caprun) {
			s->runs[s->nruns++] = pid;
			ok = true;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return (ok);
}

void
supervisor_run_detach(supervisor *s, pid_t pid)
{
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->nruns; i++) {
		if (s->runs[i] == pid) {
			s->runs[i] = s->runs[--s->nruns];
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
}

void
supervisor_overlay(supervisor *s, sandproc_v1_Process *rec)
{
	proc *p;

	pthread_mutex_lock(&s->mu);
	if ((p = sup_find(s, rec->id)) != NULL && p->phase != PHASE_ENDED) {
		rec->stdin_open = p->stdin_open;
		rec->cols = p->rec.cols;
		rec->rows = p->rec.rows;
	}
	pthread_mutex_unlock(&s->mu);
}
