/*
 * sandproc attach ID: the local terminal becomes the process's terminal.
 *
 * The screen as it is now is drawn first (Screen), then terminal frames
 * follow from that sequence on (sp_follow, on a thread of its own with its
 * own client), keystrokes go out with SendInput, and the local window size
 * follows with Resize on SIGWINCH. Ctrl-] detaches and leaves the process
 * running; when the process ends, attach exits with its exit code.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

#define ATTACH_DETACH_KEY 0x1d /* Ctrl-] */

typedef struct attach {
	cli *cl;
	char id[32];
	uint64_t after;
	int done_pipe[2];
	int follow_code;
	int stop; /* set on detach: the follower ends and is joined */
	sandproc_v1_Process final;
	char error[600];
} attach;

static struct termios attach_saved;
static bool attach_raw;
static volatile sig_atomic_t attach_winch;

static void
attach_restore(void)
{
	if (attach_raw) {
		tcsetattr(0, TCSAFLUSH, &attach_saved);
		attach_raw = false;
	}
}

static void
attach_on_winch(int sig)
{
	(void)sig;
	attach_winch = 1;
}

static int
attach_frame(void *arg, const sandproc_v1_LogEntry *e)
{
	(void)arg;
	return (cli_write_fd(1, e->data.data, e->data.len) ? 0 : 1);
}

static void *
attach_follow(void *arg)
{
	attach *a = arg;
	sp_client *c;
	sp_follow_opts o = {
		.events_url = a->cl->events,
		.after_sequence = a->after,
		.poll_ms = 200,
		.stop = &a->stop,
		.reconnect_ms = CLI_RECONNECT_MS,
	};

	a->follow_code = sp_connect(&c, a->cl->server, a->cl->token, a->error, sizeof(a->error));
	if (a->follow_code == SP_OK) {
		a->follow_code = sp_follow(c, a->id, &o, attach_frame, a, &a->final);
		if (a->follow_code != SP_OK) {
			snprintf(a->error, sizeof(a->error), "%s", sp_client_error(c));
		}
		sp_client_free(c);
	}
	ssize_t n = write(a->done_pipe[1], "x", 1);
	(void)n;
	return (NULL);
}

/* Draws the screen as the server keeps it: rows, then the cursor. */
static void
attach_draw(const sandproc_v1_ScreenReply *s)
{
	char buf[64];

	cli_write_fd(1, "\x1b[H\x1b[2J", 7);
	for (size_t i = 0; i < s->lines.n; i++) {
		int n = snprintf(buf, sizeof(buf), "\x1b[%zu;1H", i + 1);
		cli_write_fd(1, buf, (size_t)n);
		cli_write_fd(1, s->lines.v[i], strlen(s->lines.v[i]));
	}
	int n = snprintf(buf, sizeof(buf), "\x1b[%u;%uH", s->cursor_y + 1, s->cursor_x + 1);
	cli_write_fd(1, buf, (size_t)n);
}

static void
attach_resize(cli *cl, const char *id)
{
	struct winsize ws;
	sandproc_v1_ResizeRequest req;
	sandproc_v1_ResizeReply rep;

	if (ioctl(0, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0 || ws.ws_row == 0) {
		return;
	}
	memset(&req, 0, sizeof(req));
	strcpy(req.id, id);
	req.cols = ws.ws_col > 1000 ? 1000 : ws.ws_col;
	req.rows = ws.ws_row > 1000 ? 1000 : ws.ws_row;
	sp_processes_resize(cl->c, &req, &rep, 0);
}

static int
attach_send(cli *cl, const char *id, const uint8_t *data, size_t len)
{
	sandproc_v1_SendInputRequest req;
	sandproc_v1_SendInputReply rep;

	memset(&req, 0, sizeof(req));
	strcpy(req.id, id);
	req.data.data = data;
	req.data.len = len;
	return (sp_processes_send_input(cl->c, &req, &rep, 0));
}

int
cli_attach(cli *cl, const cli_verb *v, int argc, char **argv)
{
	sandproc_v1_GetRequest get;
	sandproc_v1_ScreenRequest sreq;
	sandproc_v1_ScreenReply scr;
	sandproc_v1_Process rec;
	pthread_t th;
	attach a;
	int code, rv = 0;
	bool detached = false;

	cli_parsed args;
	memset(&a, 0, sizeof(a));
	memset(&get, 0, sizeof(get));
	if ((rv = cli_parse(v, argc, argv, &sandproc_v1_GetRequest_info, &get, cl->arena, &args)) != 0 ||
	    (rv = cli_resolve_id(cl, get.id, sizeof(get.id))) != 0) {
		return (rv);
	}
	snprintf(a.id, sizeof(a.id), "%s", get.id);
	a.cl = cl;
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	if ((code = sp_processes_get(cl->c, &get, &rec, 0)) != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	if (!rec.tty) {
		fprintf(stderr,
		    "sandproc: FAILED_PRECONDITION: %s is not a TTY process (start it with --tty)\n", a.id);
		return (CLI_EXIT_ERROR);
	}
	if (rec.state != sandproc_v1_State_STATE_RUNNING) {
		/* An error like any other: the caller asked for a terminal that is not there. */
		fprintf(stderr, "sandproc: FAILED_PRECONDITION: %s has ended (see sandproc logs %s)\n", a.id,
		    a.id);
		return (CLI_EXIT_ERROR);
	}
	if (isatty(0)) {
		struct termios raw;
		struct sigaction sa;
		tcgetattr(0, &attach_saved);
		raw = attach_saved;
		cfmakeraw(&raw);
		tcsetattr(0, TCSAFLUSH, &raw);
		attach_raw = true;
		atexit(attach_restore);
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = attach_on_winch;
		sigaction(SIGWINCH, &sa, NULL);
		attach_resize(cl, a.id);
	}
	/* A late attach first shows the screen as it is, then what follows it. */
	memset(&sreq, 0, sizeof(sreq));
	strcpy(sreq.id, a.id);
	if ((code = sp_processes_screen(cl->c, &sreq, &scr, 0)) == SP_OK) {
		attach_draw(&scr);
		a.after = scr.sequence;
	}
	if (pipe(a.done_pipe) != 0 || pthread_create(&th, NULL, attach_follow, &a) != 0) {
		attach_restore();
		fprintf(stderr, "sandproc: cannot start the follower\n");
		return (CLI_EXIT_ERROR);
	}
	bool stdin_open = true;
	for (;;) {
		struct pollfd pfd[2] = { { .fd = a.done_pipe[0], .events = POLLIN },
			{ .fd = 0, .events = POLLIN } };
		int n = poll(pfd, stdin_open ? 2 : 1, 250);
		if (attach_winch) {
			attach_winch = 0;
			attach_resize(cl, a.id);
		}
		if (n <= 0) {
			continue;
		}
		if (pfd[0].revents != 0) {
			break;
		}
		if (pfd[1].revents != 0) {
			uint8_t buf[4096];
			ssize_t r = read(0, buf, sizeof(buf));
			if (r <= 0) {
				stdin_open = false; /* input ended: keep showing output */
				continue;
			}
			uint8_t *key = memchr(buf, ATTACH_DETACH_KEY, (size_t)r);
			size_t len = key != NULL ? (size_t)(key - buf) : (size_t)r;
			if (len > 0 && (code = attach_send(cl, a.id, buf, len)) != SP_OK &&
			    code != SP_FAILED_PRECONDITION) {
				attach_restore();
				return (cli_call_failed(cl, code));
			}
			if (key != NULL) {
				detached = true;
				break;
			}
		}
	}
	attach_restore();
	if (detached) {
		fprintf(stderr, "\r\nsandproc: detached from %s (still running)\n", a.id);
		__atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
		pthread_join(th, NULL);
		return (0);
	}
	pthread_join(th, NULL);
	if (a.follow_code != SP_OK) {
		fprintf(stderr, "sandproc: %s: %s\n", sp_status_name(a.follow_code), a.error);
		return (CLI_EXIT_ERROR);
	}
	rv = cli_exit_code(&a.final);
	return (rv);
}
