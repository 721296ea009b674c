/*
 * The held backend: every managed child is held by its own
 * sandproc-holder (holder/holder.c), so it outlives this server. The
 * server starts a holder with the spec in a memfd and one end of a
 * socketpair; the holder writes the log and streams entries here, which go
 * into the process's event stream (the log sink is left out: the entries
 * are stored already). A gap (the holder could not send while this side
 * was slow) is filled from the log. An end is acknowledged to the holder
 * only once the store has it, so a crash in between loses nothing: the
 * holder still has the status, in memory and in <run>/<id>.exit.
 *
 * After a restart, reattach connects to <run>/<id>.sock: the holder
 * answers with the process as it is (running, or ended while the server
 * was down) and the fds for stdin and the terminal.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/list.h"
#include "base/util.h"
#include "holder/proto.h"
#include "os/procfs.h"
#include "output/logread.h"
#include "proc/proc.h"
#include "sp_status.h"

#define HELD_ANSWER_MS 10000

void supervisor_output(
    supervisor *s, proc *p, sandproc_v1_Stream stream, const uint8_t *data, size_t len, uint64_t stored_seq);
void supervisor_ended(supervisor *s, proc *p, const child_exit *e);
void supervisor_skip_to(supervisor *s, proc *p, uint64_t seq);

typedef struct held_backend {
	backend b;
	char holder_path[4096];
	char run_dir[4096];
	char log_dir[4096];
	int run_dfd;
	char why[256];                  /* reattach's message (start-up: one at a time) */
	sandproc_v1_LogsReply *page;    /* gap fills, loop thread */
	uint8_t buf[HOLDER_PACKET_MAX]; /* packets, loop thread */
} held_backend;

typedef struct held_child {
	proc *p;
	held_backend *hb;
	pthread_mutex_t mu; /* ctl: sends from any thread, closed on the loop */
	int ctl;
	loop_src src;
	bool ended;            /* loop thread */
	bool watched;          /* ctl is in the loop's set (under mu) */
	bool ended_early;      /* reattach found it ended: reported once watched */
	logfile_cursor cursor; /* where held_fill's last read of the log ended (loop thread) */
	holder_exit early;
	loop_job early_job;
} held_child;

static held_child *
held_of(proc *p)
{
	return (p->child);
}

/* "/proc/self/fd/<run dir>/<id>.<ext>": short enough for a socket's address whatever the data dir. */
static void
held_path(held_backend *hb, const char *id, const char *ext, char *out, size_t len)
{
	snprintf(out, len, "/proc/self/fd/%d/%s.%s", hb->run_dfd, id, ext);
}

static void
held_send(held_child *hc, uint32_t type, int a, int b)
{
	hbuf msg;

	hb_init(&msg, type);
	if (type == HM_SIGNAL) {
		hb_u32(&msg, (uint32_t)a);
		hb_u32(&msg, (uint32_t)b);
	}
	pthread_mutex_lock(&hc->mu);
	if (hc->ctl >= 0) {
		/* Control packets are tiny and rare; a full queue means the holder is gone or stuck. */
		holder_send(hc->ctl, &msg, -1, MSG_DONTWAIT);
	}
	pthread_mutex_unlock(&hc->mu);
	hb_free(&msg);
}

/* Waits up to ms for one packet on fd (blocking the caller: start and reattach, never the loop). */
static ssize_t
held_await(int fd, void *buf, size_t cap, int *rfd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int64_t until = util_mono_ms() + ms;

	for (;;) {
		int left = (int)(until - util_mono_ms());
		if (left <= 0) {
			errno = ETIMEDOUT;
			return (-1);
		}
		int n = poll(&pfd, 1, left);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			errno = n == 0 ? ETIMEDOUT : errno;
			return (-1);
		}
		return (holder_recv(fd, buf, cap, rfd, MSG_DONTWAIT));
	}
}

static held_child *
held_child_new(held_backend *hb, proc *p, int ctl)
{
	held_child *hc = calloc(1, sizeof(*hc));

	if (hc == NULL) {
		return (NULL);
	}
	hc->p = p;
	hc->hb = hb;
	hc->ctl = ctl;
	pthread_mutex_init(&hc->mu, NULL);
	return (hc);
}

/* --- starting -------------------------------------------------------------------------- */

static int
held_spawn_holder(held_backend *hb, int sock, int specfd)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	char *const argv[] = { hb->holder_path, "hold", NULL };
	char *const envp[] = { NULL };
	sigset_t none, all;
	pid_t pid;
	int e, st;

	if ((e = posix_spawn_file_actions_init(&fa)) != 0) {
		return (e);
	}
	if ((e = posix_spawnattr_init(&attr)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return (e);
	}
	sigemptyset(&none);
	sigfillset(&all);
	if ((e = posix_spawn_file_actions_adddup2(&fa, sock, 3)) == 0 &&
	    (e = posix_spawn_file_actions_adddup2(&fa, specfd, 4)) == 0 &&
	    (e = posix_spawnattr_setsigmask(&attr, &none)) == 0 &&
	    (e = posix_spawnattr_setsigdefault(&attr, &all)) == 0 &&
	    (e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) == 0) {
		e = posix_spawn(&pid, hb->holder_path, &fa, &attr, argv, envp);
	}
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (e == 0) {
		/* It forks its holder and exits at once: reaped here, the holder is nobody's child of ours.
		 */
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
	}
	return (e);
}

static int
held_start(backend *b, proc *p, const spawn_spec *spec, char *err, size_t errlen)
{
	held_backend *hb = (held_backend *)b;
	sandproc_v1_Config cfg;
	char exe[4096], msg[512];
	int code, errnum, sv[2] = { -1, -1 }, specfd = -1, fd = -1;
	const char *cwd = spec->cwd != NULL && spec->cwd[0] != '\0' ? spec->cwd : NULL;
	uint8_t buf[1024];
	hbuf sb;

	/*
	 * Resolved here, before anything exists: "not found" and friends are
	 * told apart now. In a sandbox the holder's child looks it up inside
	 * (its errors come back the same way).
	 */
	bool inside = spec->place != NULL && spec->place->ns_pid > 0;
	if (inside) {
		snprintf(exe, sizeof(exe), "%s", spec->argv[0]);
	} else if ((cwd != NULL && (code = spawn_check_cwd(cwd, &errnum, err, errlen)) != SP_OK) ||
	    (code = spawn_resolve(spec->argv[0], spawn_env_path(spec->env), cwd, exe, sizeof(exe), &errnum,
	         err, errlen)) != SP_OK) {
		return (code);
	}
	config_holder_get(b->s->cfg.cfg, &cfg);
	holder_spec hs = {
		.id = p->id,
		.log_dir = hb->log_dir,
		.run_dir = hb->run_dir,
		.max_log_bytes = cfg.max_log_bytes_per_process,
		.exe = exe,
		.argv = (char **)spec->argv,
		.env = (char **)spec->env,
		.cwd = (char *)cwd,
		.tty = spec->tty,
		.stdin_pipe = spec->in == SPAWN_STDIN_PIPE,
		.cols = spec->cols,
		.rows = spec->rows,
		.uid = -1,
		.gid = -1,
	};
	if (spec->place != NULL) {
		hs.ns_pid = spec->place->ns_pid;
		hs.ns_pid_start = spec->place->ns_pid_start;
		hs.uid = spec->place->uid;
		hs.gid = spec->place->gid;
		hs.cgroup_procs = (char **)spec->place->cgroup_procs;
	}
	memset(&sb, 0, sizeof(sb)); /* the spec is fields only, no packet header */
	holder_spec_write(&sb, &hs);
	if (sb.oom || (specfd = memfd_create("sandproc-spec", MFD_CLOEXEC)) < 0 ||
	    write(specfd, sb.p, sb.len) != (ssize_t)sb.len || lseek(specfd, 0, SEEK_SET) != 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 ||
	    (errnum = held_spawn_holder(hb, sv[1], specfd)) != 0) {
		int e = errnum ? errnum : errno;
		snprintf(err, errlen, "holder: %s", errors_text(e));
		code = errors_status(e);
		goto out;
	}
	close(sv[1]);
	sv[1] = -1;
	ssize_t n = held_await(sv[0], buf, sizeof(buf), &fd, HELD_ANSWER_MS);
	uint32_t version;
	hread r;
	switch (n > 0 ? hr_begin(&r, buf, (size_t)n, &version) : 0) {
	case HM_STARTED:
		p->pid = (pid_t)hr_u32(&r);
		p->origin.pid_start = hr_u64(&r);
		p->seq = hr_u64(&r);
		memcpy(
		    p->origin.boot_id, b->s->boot_id, sizeof(p->origin.boot_id)); /* read once, at start-up */
		p->in_fd = fd;
		fd = -1;
		if ((p->child = held_child_new(hb, p, sv[0])) == NULL) {
			held_send(&(held_child){ .ctl = sv[0] }, HM_SIGNAL, SIGKILL, 1);
			snprintf(err, errlen, "out of memory");
			code = SP_RESOURCE_EXHAUSTED;
			goto out;
		}
		util_set_nonblock(sv[0]);
		sv[0] = -1;
		code = SP_OK;
		break;
	case HM_FAILED:
		errnum = (int)hr_u32(&r);
		(void)hr_u32(&r);
		char *text = hr_str(&r);
		snprintf(msg, sizeof(msg), "%s", text != NULL ? text : "failed");
		free(text);
		if (inside) {
			snprintf(
			    err, errlen, "%s (in the sandbox, with cwd %s)", msg, cwd != NULL ? cwd : "/");
		} else {
			snprintf(err, errlen, "%s", msg);
		}
		code = errors_exec_status(errnum);
		break;
	default:
		snprintf(err, errlen, "holder %s: %s", hb->holder_path,
		    n < 0        ? errors_text(errno)
		        : n == 0 ? "exited without an answer"
		                 : "answered nonsense");
		code = SP_INTERNAL;
		break;
	}
out:
	if (fd >= 0) {
		close(fd);
	}
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0) {
			close(sv[i]);
		}
	}
	if (specfd >= 0) {
		close(specfd);
	}
	hb_free(&sb);
	return (code);
}

/* --- the stream ------------------------------------------------------------------------- */

/*
 * Emits the entries after p->seq up to seq from the log (the holder stored
 * them; they were not sent). Entries no longer there (a full disk, or rolled
 * out of the log by max_log_bytes_per_process while the server caught up)
 * are skipped, as Logs skips them.
 */
static void
held_fill(held_child *hc, uint64_t seq)
{
	proc *p = hc->p;
	held_backend *hb = hc->hb;
	sp_arena *a = NULL;

	while (p->seq < seq) {
		logfile_query q = {
			.after_seq = p->seq,
			.max_bytes = 1u << 20,
			.max_entries = 1024,
			.capped = true, /* nothing past seq: the next read goes on from the cursor */
			.upto_seq = seq,
			.cursor = &hc->cursor,
		};
		sp_arena_free(a);
		if ((a = sp_arena_new()) == NULL || logfile_read(hb->log_dir, p->id, &q, hb->page, a) != 0 ||
		    hb->page->entries_count == 0 || hb->page->entries[0].sequence > seq) {
			break;
		}
		for (pb_size_t i = 0; i < hb->page->entries_count && hb->page->entries[i].sequence <= seq;
		     i++) {
			const sandproc_v1_LogEntry *e = &hb->page->entries[i];
			supervisor_output(hb->b.s, p, e->stream, e->data.data, e->data.len, e->sequence);
		}
	}
	sp_arena_free(a);
	supervisor_skip_to(hb->b.s, p, seq);
}

/* Takes ctl out of the loop's set (it stays open for the ACK). */
static void
held_unwatch(held_child *hc)
{
	pthread_mutex_lock(&hc->mu);
	if (hc->watched) {
		loop_del(hc->hb->b.lp, hc->ctl);
		hc->watched = false;
	}
	pthread_mutex_unlock(&hc->mu);
}

/*
 * Ends p with what the holder knew (loop thread). Once this returns, p and
 * hc may be freed at any moment (when the store has the record): callers
 * touch neither again.
 */
static void
held_end(held_child *hc, const holder_exit *ex, const char *why)
{
	child_exit e = { .known = ex != NULL, .why = why };

	if (hc->ended) {
		return;
	}
	hc->ended = true;
	held_unwatch(hc); /* no packet of its can reach held_on_packet after the end */
	if (ex != NULL) {
		held_fill(hc, ex->last_seq);
		e.wstatus = ex->wstatus;
		e.at_ms = ex->at_ms;
		e.lost = ex->lost;
		e.lost_errno = ex->lost_errno;
	}
	supervisor_ended(hc->hb->b.s, hc->p, &e);
}

/* Reads the .exit file a holder leaves (it died after the end, before it was stored). */
static bool
held_read_exit_file(held_backend *hb, const char *id, holder_exit *ex)
{
	char path[300];
	uint8_t buf[256];
	uint32_t version;
	hread r;
	ssize_t n;
	int fd;

	held_path(hb, id, "exit", path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return (false);
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0 || hr_begin(&r, buf, (size_t)n, &version) != HM_EXITED) {
		return (false);
	}
	hr_exit(&r, ex);
	return (!r.bad);
}

/* The holder went away with its process not ended (loop thread). */
static void
held_lost(held_child *hc)
{
	proc *p = hc->p;
	holder_exit ex;

	if (held_read_exit_file(hc->hb, p->id, &ex)) {
		held_end(hc, &ex, NULL);
		return;
	}
	/* Without its holder the process cannot be watched: it goes, if it is still the one we started. */
	if (p->pid > 0 && procfs_pid_start_time(p->pid) == p->origin.pid_start) {
		kill(-p->pid, SIGKILL);
		kill(p->pid, SIGKILL);
	}
	held_end(hc, NULL, "its holder died: exit status unknown, the process was killed");
}

static void
held_close(held_child *hc)
{
	held_unwatch(hc);
	pthread_mutex_lock(&hc->mu);
	if (hc->ctl >= 0) {
		close(hc->ctl);
		hc->ctl = -1;
	}
	pthread_mutex_unlock(&hc->mu);
}

static void
held_on_packet(loop_src *src, uint32_t events)
{
	held_child *hc = containerof(src, held_child, src);
	held_backend *hb = hc->hb;
	proc *p = hc->p;

	(void)events;
	for (int i = 0; i < 64 && hc->ctl >= 0; i++) {
		int fd;
		ssize_t n = holder_recv(hc->ctl, hb->buf, sizeof(hb->buf), &fd, MSG_DONTWAIT);
		uint32_t version;
		hread r;
		if (fd >= 0) {
			close(fd);
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return;
		}
		if (n <= 0) {
			bool ended = hc->ended;
			held_close(hc);
			if (!ended) {
				held_lost(hc); /* hc may be gone after this */
			}
			return;
		}
		switch (hr_begin(&r, hb->buf, (size_t)n, &version)) {
		case HM_OUTPUT: {
			uint64_t seq = hr_u64(&r);
			uint32_t stream = hr_u32(&r);
			(void)hr_u64(&r); /* the holder's timestamp: the stream stamps its own */
			size_t len;
			const uint8_t *data = hr_bytes(&r, &len);
			if (r.bad || hc->ended || seq <= p->seq) {
				break;
			}
			held_fill(hc, seq - 1);
			supervisor_output(hb->b.s, p, (sandproc_v1_Stream)stream, data, len, seq);
			break;
		}
		case HM_SYNC:
			held_fill(hc, hr_u64(&r));
			break;
		case HM_EXITED: {
			holder_exit ex;
			hr_exit(&r, &ex);
			if (!r.bad) {
				held_end(hc, &ex, NULL);
				return; /* hc may be gone */
			}
			break;
		}
		default:
			util_log("%s: its holder sent an unknown packet (version %u)", p->id, version);
			break;
		}
	}
}

/* --- ops ------------------------------------------------------------------------------------------ */

static void
held_early_end(loop_job *job)
{
	held_child *hc = containerof(job, held_child, early_job);
	held_end(hc, &hc->early, NULL);
}

static void
held_watch(backend *b, proc *p)
{
	held_child *hc = held_of(p);
	int rv;

	/* Ended while we were away: its holder only waits for the ACK, so there is nothing to watch. */
	if (hc->ended_early) {
		hc->early_job.fn = held_early_end;
		loop_post(b->lp, &hc->early_job);
		return;
	}
	/* Once ctl is in the set its end may come, and p and hc may go with it before we return. */
	hc->src.fn = held_on_packet;
	pthread_mutex_lock(&hc->mu);
	if ((rv = loop_add(b->lp, hc->ctl, &hc->src)) != 0) {
		util_log("%s: cannot watch its holder: %s", p->id, strerror(rv));
	}
	hc->watched = rv == 0;
	pthread_mutex_unlock(&hc->mu);
}

static void
held_abandon(backend *b, proc *p)
{
	held_child *hc = held_of(p);

	(void)b;
	/* Its record was never stored: the holder kills it and goes, keeping nothing. */
	held_send(hc, HM_ABANDON, 0, 0);
	pthread_mutex_lock(&hc->mu);
	close(hc->ctl);
	hc->ctl = -1;
	pthread_mutex_unlock(&hc->mu);
	if (p->in_fd >= 0) {
		close(p->in_fd);
		p->in_fd = -1;
	}
}

static void
held_signal(backend *b, proc *p, int sig, bool whole)
{
	(void)b;
	held_send(held_of(p), HM_SIGNAL, sig, whole);
}

static void
held_killed(backend *b, proc *p)
{
	(void)b;
	held_send(held_of(p), HM_KILLED, 0, 0);
}

static void
held_close_stdin(backend *b, proc *p)
{
	(void)b;
	held_send(held_of(p), HM_CLOSE_STDIN, 0, 0);
}

static void
held_stored(backend *b, proc *p)
{
	(void)b;
	if (p->child != NULL) {
		held_send(held_of(p), HM_ACK_EXIT, 0, 0);
	}
}

static bool
held_reattach(backend *b, proc *p, const store_origin *o, child_exit *gone)
{
	held_backend *hb = (held_backend *)b;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint8_t buf[1024];
	int sock, fd = -1;
	uint32_t version = 0;
	hread r;
	hbuf hello;
	holder_exit ex;

	memset(gone, 0, sizeof(*gone));
	held_path(hb, p->id, "sock", sa.sun_path, sizeof(sa.sun_path));
	if ((sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(sock, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (sock >= 0) {
			close(sock);
		}
		/* No holder: it may have left the status behind before it went. */
		if ((gone->known = held_read_exit_file(hb, p->id, &ex))) {
			gone->wstatus = ex.wstatus;
			gone->at_ms = ex.at_ms;
			gone->lost = ex.lost;
			gone->lost_errno = ex.lost_errno;
		} else {
			gone->why = "exit status unknown: its holder is gone";
			if (p->rec.pid > 0 && o->pid_start != 0 &&
			    procfs_pid_start_time(p->rec.pid) == o->pid_start) {
				kill(-p->rec.pid, SIGKILL); /* unwatched and alone: it goes */
				kill(p->rec.pid, SIGKILL);
				gone->why = "its holder is gone: exit status unknown, the process was killed";
			}
		}
		return (false);
	}
	hb_init(&hello, HM_HELLO);
	int rv = holder_send(sock, &hello, -1, 0);
	hb_free(&hello);
	ssize_t n = rv == 0 ? held_await(sock, buf, sizeof(buf), &fd, HELD_ANSWER_MS) : -1;
	uint32_t type = n > 0 ? hr_begin(&r, buf, (size_t)n, &version) : 0;
	if (type != HM_HELLO_BACK) {
		close(sock);
		if (fd >= 0) {
			close(fd);
		}
		/* A holder of another version holds it: said so, not guessed at; it is left alone. */
		if (version != 0 && version != HOLDER_VERSION) {
			snprintf(hb->why, sizeof(hb->why),
			    "held by a sandproc-holder of protocol version %u (this server speaks %u): left "
			    "running, "
			    "not managed; a server of its version can take it back",
			    version, HOLDER_VERSION);
			gone->why = hb->why;
			gone->left_running = true;
		} else {
			gone->why = "its holder did not answer: exit status unknown";
		}
		return (false);
	}
	bool running = hr_u32(&r) != 0;
	held_child *hc;
	p->pid = (pid_t)hr_u32(&r);
	p->origin.pid_start = hr_u64(&r);
	snprintf(p->origin.boot_id, sizeof(p->origin.boot_id), "%s", o->boot_id);
	p->seq = hr_u64(&r);
	if ((hc = held_child_new(hb, p, sock)) == NULL) {
		close(sock);
		if (fd >= 0) {
			close(fd);
		}
		gone->why = "out of memory";
		return (false);
	}
	if (!running) {
		hr_exit(&r, &hc->early);
		hc->ended_early = true;
		/* Its entries are all in the log: the stream starts after them. */
		p->seq = hc->early.last_seq;
	}
	util_set_nonblock(sock);
	p->in_fd = fd;
	p->child = hc;
	return (true);
}

static void
held_force_end(backend *b, proc *p)
{
	held_child *hc = held_of(p);

	(void)b;
	/* Recorded as ended now, so it must not outlive us: the holder kills it and goes. */
	held_send(hc, HM_ABANDON, 0, 0);
	held_close(hc);
	held_end(hc, NULL, "stopped: the server shut down and it would not end in time");
}

static void
held_release(backend *b, proc *p)
{
	(void)b;
	(void)p;
	/* The holder goes by itself once the end is stored (held_stored). */
}

static void
held_detach(backend *b, proc *p)
{
	(void)b;
	held_close(held_of(p));
}

static void
held_forget(backend *b, const char *id)
{
	held_backend *hb = (held_backend *)b;
	char path[300];

	held_path(hb, id, "exit", path, sizeof(path));
	unlink(path);
}

static void
held_log_limit(backend *b, proc *p, uint64_t max_bytes)
{
	held_child *hc = held_of(p);
	hbuf msg;

	(void)b;
	hb_init(&msg, HM_LOG_LIMIT);
	hb_u64(&msg, max_bytes);
	pthread_mutex_lock(&hc->mu);
	if (hc->ctl >= 0) {
		holder_send(hc->ctl, &msg, -1, MSG_DONTWAIT);
	}
	pthread_mutex_unlock(&hc->mu);
	hb_free(&msg);
}

static void
held_free_child(backend *b, proc *p)
{
	held_child *hc = held_of(p);

	(void)b;
	held_close(hc);
	pthread_mutex_destroy(&hc->mu);
	free(hc);
	p->child = NULL;
}

static void
held_free(backend *b)
{
	held_backend *hb = (held_backend *)b;

	close(hb->run_dfd);
	free(hb->page);
	free(hb);
}

static const backend_ops held_ops = {
	.name = "holder",
	.stores_output = true,
	.joins_cgroups = true,
	.start = held_start,
	.watch = held_watch,
	.abandon = held_abandon,
	.signal = held_signal,
	.killed = held_killed,
	.close_stdin = held_close_stdin,
	.reattach = held_reattach,
	.stored = held_stored,
	.detach = held_detach,
	.forget = held_forget,
	.log_limit = held_log_limit,
	.force_end = held_force_end,
	.release = held_release,
	.free_child = held_free_child,
	.free = held_free,
};

int
held_backend_new(backend **out, supervisor *s, loop *lp, workq *wq, const char *holder_path,
    const char *run_dir, const char *log_dir, char *err, size_t errlen)
{
	held_backend *hb = calloc(1, sizeof(*hb));
	int rv;

	if (hb == NULL || (hb->page = malloc(sizeof(*hb->page))) == NULL) {
		free(hb);
		snprintf(err, errlen, "out of memory");
		return (ENOMEM);
	}
	if (access(holder_path, X_OK) != 0) {
		rv = errno;
		snprintf(err, errlen, "holder %s: %s", holder_path, strerror(rv));
		free(hb->page);
		free(hb);
		return (rv);
	}
	if ((rv = util_mkdirs(run_dir)) != 0 ||
	    (hb->run_dfd = open(run_dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rv = rv ? rv : errno;
		snprintf(err, errlen, "%s: %s", run_dir, strerror(rv));
		free(hb->page);
		free(hb);
		return (rv);
	}
	snprintf(hb->holder_path, sizeof(hb->holder_path), "%s", holder_path);
	snprintf(hb->run_dir, sizeof(hb->run_dir), "%s", run_dir);
	snprintf(hb->log_dir, sizeof(hb->log_dir), "%s", log_dir);
	hb->b = (backend){ .ops = &held_ops, .s = s, .lp = lp, .wq = wq };
	*out = &hb->b;
	return (0);
}
