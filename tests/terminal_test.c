/*
 * Terminals: PTY children, Resize, the libtsm Screen, terminal replies, and
 * `sandproc attach` driven through a real PTY.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static th_server srv;

static void
ensure(void)
{
	if (srv.pid <= 0) {
		th_server_start(&srv, false);
	}
}

static void
start_tty(const char *const *argv, uint32_t cols, uint32_t rows, sandproc_v1_Process *p)
{
	sandproc_v1_StartRequest req;

	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	req.tty = true;
	req.cols = cols;
	req.rows = rows;
	CHECK_OK(srv.c, sp_processes_start(srv.c, &req, p, 0));
}

/* Polls the PTY log until it contains needle (or 10 s pass). */
static void
kill_and_wait(const char *id)
{
	sandproc_v1_KillRequest req;
	sandproc_v1_Process got;

	memset(&req, 0, sizeof(req));
	strcpy(req.id, id);
	req.wait_ms = 10000;
	CHECK_OK(srv.c, sp_processes_kill(srv.c, &req, &got, 20000));
	CHECK(got.state != sandproc_v1_State_STATE_RUNNING);
}

static int
send_input(const char *id, const char *s, bool eof)
{
	sandproc_v1_SendInputRequest req;
	sandproc_v1_SendInputReply rep;

	memset(&req, 0, sizeof(req));
	strcpy(req.id, id);
	req.data = sp_bytes_of_str(s);
	req.eof = eof;
	return (sp_processes_send_input(srv.c, &req, &rep, 0));
}

static void
test_child_sees_a_real_terminal(void)
{
	const char *argv[] = { "sh", "-c",
		"tty; stty size; echo \"term=$TERM\"; [ -t 0 ] && echo stdin-is-tty", NULL };
	sandproc_v1_Process p, got;
	size_t len;
	uint8_t *b;

	ensure();
	start_tty(argv, 100, 30, &p);
	CHECK(p.tty);
	CHECK_INT(p.cols, 100);
	th_wait(&srv, p.id, &got);
	CHECK_INT(got.exit_code, 0);
	b = th_logs(srv.c, p.id, sandproc_v1_Stream_STREAM_PTY, &len);
	CHECK(strstr((char *)b, "/dev/pts/") != NULL);
	CHECK(strstr((char *)b, "30 100") != NULL);
	CHECK(strstr((char *)b, "term=xterm-256color") != NULL);
	CHECK(strstr((char *)b, "stdin-is-tty") != NULL);
	free(b);
	/* Nothing of a TTY process goes to stdout/stderr streams. */
	b = th_logs(srv.c, p.id, sandproc_v1_Stream_STREAM_STDOUT, &len);
	CHECK_INT(len, 0);
	free(b);
}

static void
test_caller_term_is_kept(void)
{
	const char *argv[] = { "sh", "-c", "echo \"term=$TERM\"", NULL };
	const char *env[] = { "TERM=vt100", NULL };
	sandproc_v1_StartRequest req;
	sandproc_v1_Process p, got;
	size_t len;

	ensure();
	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	req.env = sp_strv_of(env);
	req.tty = true;
	CHECK_OK(srv.c, sp_processes_start(srv.c, &req, &p, 0));
	th_wait(&srv, p.id, &got);
	uint8_t *b = th_logs(srv.c, p.id, 0, &len);
	CHECK(strstr((char *)b, "term=vt100") != NULL);
	free(b);
}

static void
test_resize_reaches_the_child(void)
{
	const char *argv[] = { "bash", "--norc", "-c",
		"trap 'stty size' WINCH; echo ready; while :; do sleep 0.05; done", NULL };
	sandproc_v1_Process p;
	sandproc_v1_ResizeRequest req;
	sandproc_v1_ResizeReply rep;

	ensure();
	start_tty(argv, 80, 24, &p);
	CHECK(th_logs_wait(srv.c, p.id, sandproc_v1_Stream_STREAM_PTY, "ready"));
	memset(&req, 0, sizeof(req));
	strcpy(req.id, p.id);
	req.cols = 132;
	req.rows = 43;
	CHECK_OK(srv.c, sp_processes_resize(srv.c, &req, &rep, 0));
	CHECK(th_logs_wait(srv.c, p.id, sandproc_v1_Stream_STREAM_PTY, "43 132"));
	sandproc_v1_Process got;
	CHECK_OK(srv.c, th_get(&srv, p.id, &got));
	CHECK_INT(got.cols, 132);
	CHECK_INT(got.rows, 43);
	req.cols = 0;
	CHECK_INT(sp_processes_resize(srv.c, &req, &rep, 0), SP_INVALID_ARGUMENT);
	kill_and_wait(p.id);
	req.cols = 100;
	CHECK_INT(sp_processes_resize(srv.c, &req, &rep, 0), SP_FAILED_PRECONDITION);
}

static void
test_resize_of_non_tty_is_refused(void)
{
	const char *argv[] = { "sleep", "30", NULL };
	sandproc_v1_Process p;
	sandproc_v1_ResizeRequest req;
	sandproc_v1_ResizeReply rep;
	sandproc_v1_ScreenRequest sreq;
	sandproc_v1_ScreenReply srep;

	ensure();
	th_start(&srv, argv, &p);
	memset(&req, 0, sizeof(req));
	strcpy(req.id, p.id);
	req.cols = 100;
	req.rows = 30;
	CHECK_INT(sp_processes_resize(srv.c, &req, &rep, 0), SP_FAILED_PRECONDITION);
	memset(&sreq, 0, sizeof(sreq));
	strcpy(sreq.id, p.id);
	CHECK_INT(sp_processes_screen(srv.c, &sreq, &srep, 0), SP_FAILED_PRECONDITION);
	kill_and_wait(p.id);
}

static void
test_screen_places_text_by_cursor_movement(void)
{
	const char *argv[] = { "sh", "-c",
		"printf '\\033[2J\\033[5;10HX\\033[1;1Htop\\033[3;4Hmid'; echo; sleep 30", NULL };
	sandproc_v1_Process p, got;
	sandproc_v1_ScreenRequest req;
	sandproc_v1_ScreenReply rep;

	ensure();
	start_tty(argv, 40, 12, &p);
	/* printf and echo write apart: wait for the newline too (the PTY makes it \r\n). */
	CHECK(th_logs_wait(srv.c, p.id, sandproc_v1_Stream_STREAM_PTY, "mid\r\n"));
	memset(&req, 0, sizeof(req));
	strcpy(req.id, p.id);
	CHECK_OK(srv.c, sp_processes_screen(srv.c, &req, &rep, 0));
	CHECK_INT(rep.cols, 40);
	CHECK_INT(rep.rows, 12);
	CHECK_INT(rep.lines.n, 12);
	CHECK_STR(rep.lines.v[0], "top");
	CHECK_STR(rep.lines.v[2], "   mid");
	CHECK_STR(rep.lines.v[4], "         X");
	CHECK_STR(rep.lines.v[1], "");
	/* After "mid" at row 3 col 4 the cursor went to the next line. */
	CHECK_INT(rep.cursor_y, 3);
	CHECK_INT(rep.cursor_x, 0);
	CHECK(rep.sequence >= 1);
	kill_and_wait(p.id);
	/* An ended TTY process's screen is rebuilt from its log. */
	CHECK_OK(srv.c, sp_processes_screen(srv.c, &req, &rep, 0));
	CHECK_STR(rep.lines.v[4], "         X");
	CHECK_OK(srv.c, th_get(&srv, p.id, &got));
}

static void
test_terminal_replies_go_back_to_the_pty(void)
{
	/* Ask the terminal where the cursor is; the answer must come back as input. */
	const char *argv[] = { "bash", "--norc", "-c",
		"stty -echo -icanon; printf '\\033[3;7H\\033[6n'; IFS= read -r -d R -t 5 reply; "
		"printf '\\n<%s>\\n' \"${reply#*[}\"",
		NULL };
	sandproc_v1_Process p, got;

	ensure();
	start_tty(argv, 80, 24, &p);
	th_wait(&srv, p.id, &got);
	CHECK_INT(got.exit_code, 0);
	size_t len;
	uint8_t *b = th_logs(srv.c, p.id, 0, &len);
	CHECK(strstr((char *)b, "<3;7>") != NULL);
	free(b);
}

static void
test_tty_input_and_eof(void)
{
	const char *argv[] = { "cat", NULL };
	sandproc_v1_Process p, got;

	ensure();
	start_tty(argv, 80, 24, &p);
	CHECK_OK(srv.c, send_input(p.id, "abc\n", false));
	CHECK(th_logs_wait(
	    srv.c, p.id, sandproc_v1_Stream_STREAM_PTY, "abc\r\nabc\r\n")); /* echo, then cat's copy */
	CHECK_OK(srv.c, send_input(p.id, "", true));                        /* ^D at line start */
	th_wait(&srv, p.id, &got);
	CHECK_INT(got.state, sandproc_v1_State_STATE_EXITED);
	CHECK_INT(got.exit_code, 0);
}

static void
test_stop_ends_every_job_of_a_tty_shell(void)
{
	const char *argv[] = { "bash", "--norc", "-i", NULL };
	sandproc_v1_Process p, got;

	ensure();
	start_tty(argv, 80, 24, &p);
	/* Job control puts each job in a process group of its own. */
	CHECK_OK(srv.c, send_input(p.id, "sleep 60 & sleep 61 & echo jobs-$((40+2))\n", false));
	CHECK(th_logs_wait(srv.c, p.id, sandproc_v1_Stream_STREAM_PTY, "jobs-42"));
	CHECK(th_group_members(p.pid, true) >= 3);
	th_stop(&srv, p.id, 500, &got);
	CHECK(got.state != sandproc_v1_State_STATE_RUNNING);
	th_sleep_ms(100);
	CHECK_INT(th_group_settled(p.pid, true), 0);
}

/*
 * Starts an interactive bash on a TTY, has it print what cmd prints (shown
 * must appear), then attaches to it: output from before the attach must
 * show on the first screen. Returns the attach's pid; *master is its side.
 */
static pid_t
attach_to_shell(sandproc_v1_Process *p, const char *cmd, const char *shown, int *master, char *seen,
    size_t cap, size_t *len)
{
	const char *argv[] = { "bash", "--norc", "-i", NULL };

	ensure();
	start_tty(argv, 80, 24, p);
	CHECK_OK(srv.c, send_input(p->id, cmd, false));
	CHECK(th_logs_wait(srv.c, p->id, sandproc_v1_Stream_STREAM_PTY, shown));
	pid_t pid = th_attach_spawn(&srv, p->id, master);
	CHECK(th_pty_expect(*master, seen, cap, len, shown));
	return (pid);
}

static void
test_attach_types_reads_and_exits_with_the_code(void)
{
	sandproc_v1_Process p, got;
	char seen[65536];
	size_t len = 0;
	int master;
	pid_t pid =
	    attach_to_shell(&p, "echo before-$((2+3))\n", "before-5", &master, seen, sizeof(seen), &len);

	/* The attach took the local window size. */
	CHECK(write(master, "stty size\r", 10) == 10);
	CHECK(th_pty_expect(master, seen, sizeof(seen), &len, "20 70"));
	CHECK(write(master, "echo typed-$((6*7))\r", 20) == 20);
	CHECK(th_pty_expect(master, seen, sizeof(seen), &len, "typed-42"));
	/* The local window changes: attach gets SIGWINCH and resizes the process's terminal. */
	struct winsize ws = { .ws_row = 33, .ws_col = 91 };
	CHECK(ioctl(master, TIOCSWINSZ, &ws) == 0);
	int64_t until = th_now_ms() + 10000;
	sandproc_v1_Process now;
	do {
		th_sleep_ms(20);
		CHECK_OK(srv.c, th_get(&srv, p.id, &now));
	} while (now.cols != 91 && th_now_ms() < until);
	CHECK_INT(now.cols, 91);
	CHECK_INT(now.rows, 33);
	CHECK(write(master, "stty size\r", 10) == 10);
	CHECK(th_pty_expect(master, seen, sizeof(seen), &len, "33 91"));
	CHECK(write(master, "exit 3\r", 7) == 7);
	CHECK_INT(th_attach_wait(pid, master), 3);
	close(master);
	th_wait(&srv, p.id, &got);
	CHECK_INT(got.exit_code, 3);
}

static void
test_attach_detach_key_leaves_it_running(void)
{
	sandproc_v1_Process p, got;
	char seen[65536];
	size_t len = 0;
	int master;
	pid_t pid =
	    attach_to_shell(&p, "echo ready-$((1+1))\n", "ready-2", &master, seen, sizeof(seen), &len);
	CHECK(write(master, "\x1d", 1) == 1);
	CHECK_INT(th_attach_wait(pid, master), 0);
	close(master);
	CHECK_OK(srv.c, th_get(&srv, p.id, &got));
	CHECK_INT(got.state, sandproc_v1_State_STATE_RUNNING);
	kill_and_wait(p.id);
}

typedef struct screen_arg {
	char id[32];
	int64_t done_ms;
} screen_arg;

static int
screen_one(sp_client *c, void *arg)
{
	screen_arg *a = arg;
	sandproc_v1_ScreenRequest req;
	sandproc_v1_ScreenReply rep;
	int code;

	memset(&req, 0, sizeof(req));
	snprintf(req.id, sizeof(req.id), "%s", a->id);
	code = sp_processes_screen(c, &req, &rep, 60000);
	a->done_ms = th_now_ms();
	return (code);
}

static void
test_screen_rebuilds_do_not_hold_up_other_calls(void)
{
	enum { N = 6 };
	/* ~6 MB of text for the terminal to take in, then the process ends. */
	const char *argv[] = { "sh", "-c",
		"yes 'the quick brown fox jumps over the lazy dog' | head -c 6000000", NULL };
	sandproc_v1_Process p, got;
	sandproc_v1_HealthRequest hreq;
	sandproc_v1_HealthReply hrep;
	screen_arg args[N];
	th_call *th[N];
	int64_t last_health = 0, first_screen = INT64_MAX;

	ensure();
	start_tty(argv, 200, 50, &p);
	th_wait(&srv, p.id, &got);
	/* Once ended and stored, its screen is rebuilt from the log on each call. */
	th_sleep_ms(200);
	for (int i = 0; i < N; i++) {
		args[i] = (screen_arg){ .done_ms = 0 };
		snprintf(args[i].id, sizeof(args[i].id), "%s", p.id);
		th[i] = th_call_start(&srv, screen_one, &args[i]);
	}
	memset(&hreq, 0, sizeof(hreq));
	for (int i = 0; i < 10; i++) {
		CHECK_OK(srv.c, sp_system_health(srv.c, &hreq, &hrep, 0));
	}
	last_health = th_now_ms();
	for (int i = 0; i < N; i++) {
		CHECK_INT(th_call_join(th[i]), SP_OK);
		first_screen = args[i].done_ms < first_screen ? args[i].done_ms : first_screen;
	}
	/* Rebuilds run on workers: Health (answered on nng's threads) never waits for one. */
	CHECK(last_health <= first_screen);
}

/* Resident set size of pid in KiB. */
static long
rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL) {
		return (-1);
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) {
			break;
		}
	}
	fclose(f);
	return (kib);
}

static void
test_terminals_are_capped_and_give_their_memory_back(void)
{
	enum { N = 8 };
	const char *argv[] = { "sh", "-c",
		"yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 2000000; sleep 60", NULL };
	sandproc_v1_StartRequest req;
	sandproc_v1_ResizeRequest rreq;
	sandproc_v1_ResizeReply rrep;
	sandproc_v1_Process p[N], got;

	th_server s = { 0 };
	th_server_start(&s, false);
	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	req.tty = true;
	req.cols = 1000;
	req.rows = 1000;
	CHECK_INT(sp_processes_start(s.c, &req, &got, 0), SP_INVALID_ARGUMENT);
	CHECK(strstr(sp_client_error(s.c), "a terminal of 1000x1000 is 1000000 cells; the limit is 100000") !=
	    NULL);
	/* The largest allowed, filled with text, then killed: the server gives most of it back. */
	long before = rss_kib(s.pid);
	req.cols = 400;
	req.rows = 250;
	for (int i = 0; i < N; i++) {
		CHECK_OK(s.c, sp_processes_start(s.c, &req, &p[i], 0));
	}
	memset(&rreq, 0, sizeof(rreq));
	snprintf(rreq.id, sizeof(rreq.id), "%s", p[0].id);
	rreq.cols = 1000;
	rreq.rows = 200;
	CHECK_INT(sp_processes_resize(s.c, &rreq, &rrep, 0), SP_INVALID_ARGUMENT);
	th_sleep_ms(1500);
	long peak = rss_kib(s.pid);
	for (int i = 0; i < N; i++) {
		th_kill(&s, p[i].id, &got);
	}
	th_sleep_ms(500); /* the ended records leave memory once stored */
	long after = rss_kib(s.pid);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	/* A sanitizer's allocator keeps freed memory (quarantine, shadow): RSS says nothing here. */
	(void)before;
	(void)peak;
	(void)after;
#else
	CHECK(peak - before > 8 * 1024); /* the screens took real memory */
	if (!(after - before < (peak - before) / 2)) {
		th_fail(__FILE__, __LINE__, "RSS %ld KiB before, %ld at the peak, %ld after", before, peak,
		    after);
	}
#endif
	th_server_cleanup(&s);
}

int
main(int argc, char **argv)
{
	static const th_test tests[] = {
		{ "test_terminals_are_capped_and_give_their_memory_back",
		    test_terminals_are_capped_and_give_their_memory_back },
		{ "test_screen_rebuilds_do_not_hold_up_other_calls",
		    test_screen_rebuilds_do_not_hold_up_other_calls },
		{ "test_child_sees_a_real_terminal", test_child_sees_a_real_terminal },
		{ "test_caller_term_is_kept", test_caller_term_is_kept },
		{ "test_resize_reaches_the_child", test_resize_reaches_the_child },
		{ "test_resize_of_non_tty_is_refused", test_resize_of_non_tty_is_refused },
		{ "test_screen_places_text_by_cursor_movement", test_screen_places_text_by_cursor_movement },
		{ "test_terminal_replies_go_back_to_the_pty", test_terminal_replies_go_back_to_the_pty },
		{ "test_tty_input_and_eof", test_tty_input_and_eof },
		{ "test_stop_ends_every_job_of_a_tty_shell", test_stop_ends_every_job_of_a_tty_shell },
		{ "test_attach_types_reads_and_exits_with_the_code",
		    test_attach_types_reads_and_exits_with_the_code },
		{ "test_attach_detach_key_leaves_it_running", test_attach_detach_key_leaves_it_running },
	};
	int rv = th_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
	th_server_cleanup(&srv);
	return (rv);
}
