/*
 * Processes outlive the server (the holder backend, holder/holder.c): a
 * crash (SIGKILL) or a clean stop that keeps them, then a new server on
 * the same data. Nothing is lost: every byte written while the server was
 * down, exit codes and signals with the time they came, stdin, resize,
 * screens, followers. And what fails is reported honestly: a holder that
 * dies, one that speaks another protocol version, one that cannot start.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "harness.h"

/* A server whose processes stay across its stops. */
static void
start_keeping(th_server *s)
{
	s->args[0] = "--on-exit";
	s->args[1] = "keep";
	th_server_start(s, false);
}

static sandproc_v1_Process
start_argv(th_server *s, const char *const *argv, bool tty)
{
	sandproc_v1_StartRequest req;
	sandproc_v1_Process p;

	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	req.tty = tty;
	if (tty) {
		req.cols = 80;
		req.rows = 24;
	}
	CHECK_OK(s->c, sp_processes_start(s->c, &req, &p, 0));
	return (p);
}

static int
send_input(th_server *s, const char *id, const char *text, bool eof)
{
	sandproc_v1_SendInputRequest req;
	sandproc_v1_SendInputReply rep;

	memset(&req, 0, sizeof(req));
	snprintf(req.id, sizeof(req.id), "%s", id);
	req.data = sp_bytes_of_str(text);
	req.eof = eof;
	return (sp_processes_send_input(s->c, &req, &rep, 0));
}

/*
 * Every entry of id's log, checked to be numbered 1, 2, 3 ... with no gap
 * or repeat; its bytes (stream, or all when 0) in *out, NUL-terminated.
 */
static bool
read_contiguous(th_server *s, const char *id, sandproc_v1_Stream stream, char **out, size_t *len)
{
	sandproc_v1_LogsRequest req;
	sandproc_v1_LogsReply *rep = malloc(sizeof(*rep));
	uint64_t expect = 1;
	bool ok = true;

	*out = NULL;
	*len = 0;
	memset(&req, 0, sizeof(req));
	snprintf(req.id, sizeof(req.id), "%s", id);
	do {
		req.after_sequence = expect - 1;
		if (sp_processes_logs(s->c, &req, rep, 0) != SP_OK) {
			ok = false;
			break;
		}
		for (pb_size_t i = 0; i < rep->entries_count; i++) {
			const sandproc_v1_LogEntry *e = &rep->entries[i];
			if (e->sequence != expect) {
				th_fail(__FILE__, __LINE__, "%s: entry %llu where %llu was due", id,
				    (unsigned long long)e->sequence, (unsigned long long)expect);
				ok = false;
			}
			expect = e->sequence + 1;
			if (stream == 0 || e->stream == stream) {
				*out = realloc(*out, *len + e->data.len + 1);
				memcpy(*out + *len, e->data.data, e->data.len);
				*len += e->data.len;
			}
		}
	} while (rep->has_more && rep->entries_count > 0);
	if (*out == NULL) {
		*out = calloc(1, 1);
	}
	(*out)[*len] = '\0';
	free(rep);
	return (ok);
}

/* Whether text is the lines "1\n2\n...n\n" for some n >= min (and, when every is set, exactly). */
static bool
numbered_lines(const char *text, unsigned long min, unsigned long *n, unsigned long every)
{
	unsigned long want = every ? every : 1;

	*n = 0;
	while (*text != '\0') {
		char *end;
		unsigned long v = strtoul(text, &end, 10);
		if (end == text || *end != '\n' || v != want) {
			th_fail(__FILE__, __LINE__, "line %lu where %lu was due", v, want);
			return (false);
		}
		*n = v;
		want += every ? every : 1;
		text = end + 1;
	}
	return (*n >= min);
}

/* The parent of pid (from /proc/PID/stat), or -1. */
static pid_t
parent_of(pid_t pid)
{
	char path[64], buf[512];
	int ppid = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0) {
		close(fd);
	}
	if (n > 0) {
		buf[n] = '\0';
		const char *rp = strrchr(buf, ')');
		if (rp == NULL || sscanf(rp, ") %*c %d", &ppid) != 1) {
			ppid = -1;
		}
	}
	return ((pid_t)ppid);
}

static bool
wait_for_screen(th_server *s, const char *id, const char *needle)
{
	sandproc_v1_ScreenRequest req;
	sandproc_v1_ScreenReply rep;
	int64_t deadline = th_now_ms() + 10000;

	memset(&req, 0, sizeof(req));
	snprintf(req.id, sizeof(req.id), "%s", id);
	while (th_now_ms() < deadline) {
		if (sp_processes_screen(s->c, &req, &rep, 0) == SP_OK) {
			for (pb_size_t i = 0; i < rep.lines.n; i++) {
				if (strstr(rep.lines.v[i], needle) != NULL) {
					return (true);
				}
			}
		}
		th_sleep_ms(20);
	}
	return (false);
}

/* A follower on its own client, from before the first crash to the process's end. */
typedef struct follower {
	th_server *s;
	const char *id;
	char *buf;
	size_t len;
	bool in_order;
	uint64_t last;
	sandproc_v1_Process final;
} follower;

static int
follower_entry(void *arg, const sandproc_v1_LogEntry *e)
{
	follower *f = arg;

	f->in_order = f->in_order && e->sequence > f->last;
	f->last = e->sequence;
	if (e->stream == sandproc_v1_Stream_STREAM_STDOUT) {
		f->buf = realloc(f->buf, f->len + e->data.len + 1);
		memcpy(f->buf + f->len, e->data.data, e->data.len);
		f->len += e->data.len;
		f->buf[f->len] = '\0';
	}
	return (0);
}

static int
follow_through(sp_client *c, void *arg)
{
	follower *f = arg;
	sp_follow_opts o = { .events_url = f->s->events, .poll_ms = 100, .reconnect_ms = 30000 };

	f->in_order = true;
	return (sp_follow(c, f->id, &o, follower_entry, f, &f->final));
}

static void
test_numbered_lines_survive_a_crash_and_a_restart(void)
{
	th_server s = { 0 };
	const char *argv[] = { th_testchild, "count", "10", NULL };
	sandproc_v1_Process p, got;
	follower f = { .s = &s };
	char *out;
	size_t len;
	unsigned long n, nerr;

	start_keeping(&s);
	p = start_argv(&s, argv, false);
	f.id = p.id;
	th_call *fc = th_call_start(&s, follow_through, &f);
	CHECK(th_logs_wait(s.c, p.id, 0, "\n20\n"));
	th_server_crash(&s);
	th_sleep_ms(300); /* ~30 lines written with no server */
	start_keeping(&s);
	CHECK_OK(s.c, th_get(&s, p.id, &got));
	CHECK_INT(got.state, sandproc_v1_State_STATE_RUNNING);
	CHECK_INT(got.pid, p.pid);
	CHECK(got.stdin_open);
	th_sleep_ms(200);
	th_server_stop(&s); /* keeps it */
	CHECK_INT(th_group_members(p.pid, false), 1);
	th_sleep_ms(300);
	start_keeping(&s);
	th_sleep_ms(200);
	th_kill(&s, p.id, &got);
	CHECK_INT(got.state, sandproc_v1_State_STATE_KILLED);
	CHECK_INT(got.signal, SIGKILL);

	/* Every line, each once, in entries numbered without a gap; stderr has every tenth. */
	CHECK(read_contiguous(&s, p.id, sandproc_v1_Stream_STREAM_STDOUT, &out, &len));
	CHECK(numbered_lines(out, 80, &n, 0));
	free(out);
	CHECK(read_contiguous(&s, p.id, sandproc_v1_Stream_STREAM_STDERR, &out, &len));
	CHECK(numbered_lines(out, 8, &nerr, 10));
	CHECK(nerr <= n && nerr + 10 > n);
	free(out);
	/* The follower saw it all too, across both gaps in service. */
	CHECK_INT(th_call_join(fc), SP_OK);
	CHECK(f.in_order);
	CHECK(f.buf != NULL && numbered_lines(f.buf, n, &nerr, 0));
	CHECK_INT(nerr, n);
	CHECK_INT(f.final.state, sandproc_v1_State_STATE_KILLED);
	free(f.buf);
	th_server_cleanup(&s);
}

static void
test_ends_while_down_are_reported_with_code_signal_and_time(void)
{
	th_server s = { 0 };
	char go[600], script[700];
	const char *sleeper[] = { "sleep", "60", NULL };
	sandproc_v1_Process a, b, got;

	/* a exits 7 only once the test creates the file: after the crash,
	 * however slow the machine is at starting b and crashing. */
	start_keeping(&s);
	snprintf(go, sizeof go, "%s/go", s.dir);
	snprintf(script, sizeof script, "while [ ! -e '%s' ]; do sleep 0.02; done; exit 7", go);
	const char *seven[] = { "sh", "-c", script, NULL };
	a = start_argv(&s, seven, false);
	b = start_argv(&s, sleeper, false);
	th_server_crash(&s);
	int64_t down = util_now_ms(); /* wall clock, as records are */
	int fd = open(go, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK_INT(kill(b.pid, SIGKILL), 0);
	/* Both are gone (their holders reaped them) before the server is back. */
	for (int i = 0; i < 1000 && (kill(a.pid, 0) == 0 || kill(b.pid, 0) == 0); i++)
		th_sleep_ms(10);
	CHECK(kill(a.pid, 0) != 0 && kill(b.pid, 0) != 0);
	int64_t up = util_now_ms();
	start_keeping(&s);
	th_wait(&s, a.id, &got);
	CHECK_INT(got.state, sandproc_v1_State_STATE_EXITED);
	CHECK_INT(got.exit_code, 7);
	CHECK_STR(got.error, "");
	CHECK(got.exited_at_ms >= down && got.exited_at_ms <= up);
	th_wait(&s, b.id, &got);
	CHECK_INT(got.state, sandproc_v1_State_STATE_KILLED);
	CHECK_INT(got.signal, SIGKILL);
	CHECK(got.exited_at_ms >= down && got.exited_at_ms <= up);
	/* Once stored, the holders go, and so do their files. */
	CHECK_INT(th_holders_left(s.dir, 10000), 0);
	th_server_cleanup(&s);
}

static void
test_tty_shell_screen_input_resize_and_attach_after_a_crash(void)
{
	th_server s = { 0 };
	const char *argv[] = { "bash", "--norc", "-i", NULL };
	sandproc_v1_Process p, got;
	sandproc_v1_ResizeRequest rreq;
	sandproc_v1_ResizeReply rrep;
	char seen[65536];
	size_t len = 0;
	int master;

	start_keeping(&s);
	p = start_argv(&s, argv, true);
	CHECK_OK(s.c, send_input(&s, p.id, "echo before-$((2+3))\n", false));
	CHECK(wait_for_screen(&s, p.id, "before-5"));
	th_server_crash(&s);
	start_keeping(&s);
	/* The screen is rebuilt from the log the holder kept. */
	CHECK(wait_for_screen(&s, p.id, "before-5"));
	CHECK_OK(s.c, send_input(&s, p.id, "echo after-$((3+4))\n", false));
	CHECK(wait_for_screen(&s, p.id, "after-7"));
	memset(&rreq, 0, sizeof(rreq));
	snprintf(rreq.id, sizeof(rreq.id), "%s", p.id);
	rreq.cols = 91;
	rreq.rows = 33;
	CHECK_OK(s.c, sp_processes_resize(s.c, &rreq, &rrep, 0));
	CHECK_OK(s.c, send_input(&s, p.id, "stty size\n", false));
	CHECK(wait_for_screen(&s, p.id, "33 91"));
	/* A clean stop that keeps it, then attach: it types, reads and exits with the code. */
	th_server_stop(&s);
	start_keeping(&s);
	pid_t pid = th_attach_spawn(&s, p.id, &master);
	CHECK(th_pty_expect(master, seen, sizeof(seen), &len, "33 91"));
	CHECK(write(master, "echo typed-$((40+2))\r", 21) == 21);
	CHECK(th_pty_expect(master, seen, sizeof(seen), &len, "typed-42"));
	CHECK(write(master, "exit 3\r", 7) == 7);
	CHECK_INT(th_attach_wait(pid, master), 3);
	close(master);
	th_wait(&s, p.id, &got);
	CHECK_INT(got.exit_code, 3);
	th_server_cleanup(&s);
}

/*
 * Output the server fell behind on and the log no longer has (rolled away by
 * max_log_bytes_per_process) is skipped, as Logs skips it, not waited for.
 */
static void
test_output_rolled_out_of_the_log_before_the_server_saw_it(void)
{
	th_server s = { 0 };
	const char *argv[] = { "sh", "-c", "head -c 200000000 /dev/zero | tr '\\0' a; echo tail", NULL };
	sandproc_v1_Process a;
	size_t len;

	/* A writer faster than the server: its holder stops sending and catches it up from the log. */
	start_keeping(&s);
	a = start_argv(&s, argv, false); /* max_log_bytes_per_process: the default, 10 MiB */
	uint8_t *out = th_finish(&s, a.id, 0, &len);
	CHECK(len > 0 && len <= 20 << 20);
	CHECK(len >= 5 && memcmp(out + len - 5, "tail\n", 5) == 0);
	free(out);
	th_server_cleanup(&s);
}

static void
test_stderr_after_a_crash_does_not_kill_with_sigpipe(void)
{
	th_server s = { 0 };
	const char *argv[] = { "bash", "-c", "read x; echo \"err $x\" >&2; echo \"out $x\"; exit 5", NULL };
	sandproc_v1_Process p;
	size_t len;

	start_keeping(&s);
	p = start_argv(&s, argv, false);
	th_server_crash(&s);
	start_keeping(&s);
	/* stdin still reaches it; its writes after the crash land in the log. */
	CHECK_OK(s.c, send_input(&s, p.id, "hi\n", false));
	uint8_t *b = th_finish(&s, p.id, 5, &len);
	CHECK(strstr((char *)b, "err hi") != NULL);
	CHECK(strstr((char *)b, "out hi") != NULL);
	free(b);
	th_server_cleanup(&s);
}

static void
test_a_killed_holder_is_reported_and_nothing_hangs(void)
{
	th_server s = { 0 };
	const char *argv[] = { "sleep", "60", NULL };
	sandproc_v1_Process p, got;

	th_server_start(&s, false);
	p = start_argv(&s, argv, false);
	/* Its holder alone: the server sees it go and ends what it can no longer watch. */
	pid_t holder = parent_of(p.pid);
	CHECK(holder > 1);
	CHECK_INT(kill(holder, SIGKILL), 0);
	th_wait(&s, p.id, &got);
	CHECK_INT(got.state, sandproc_v1_State_STATE_KILLED);
	CHECK(strstr(got.error, "holder") != NULL);
	CHECK_INT(th_group_settled(p.pid, false), 0);
	/* And the next start works as ever. */
	const char *ok[] = { "sh", "-c", "echo fine", NULL };
	size_t len;
	uint8_t *b = th_start_finish(&s, ok, 0, &len);
	CHECK_STR((char *)b, "fine\n");
	free(b);
	th_server_cleanup(&s);
}

static void
test_two_hundred_processes_are_taken_back(void)
{
	enum { N = 200 };
	th_server s = { 0 };
	const char *argv[] = { "sleep", "60", NULL };
	static sandproc_v1_Process p[N];
	sandproc_v1_Process got;
	sandproc_v1_HealthRequest hreq;
	sandproc_v1_HealthReply hrep;

	sandproc_v1_SetConfigRequest set;
	sandproc_v1_Config cfg;

	start_keeping(&s);
	memset(&set, 0, sizeof(set));
	set.has_max_concurrent_processes = true;
	set.max_concurrent_processes = N + 10;
	CHECK_OK(s.c, sp_processes_set_config(s.c, &set, &cfg, 0));
	for (int i = 0; i < N; i++) {
		p[i] = start_argv(&s, argv, false);
		if (p[i].pid <= 0) {
			th_server_cleanup(&s);
			return;
		}
	}
	th_server_crash(&s);
	start_keeping(&s);
	memset(&hreq, 0, sizeof(hreq));
	CHECK_OK(s.c, sp_system_health(s.c, &hreq, &hrep, 0));
	CHECK_INT(hrep.running, N);
	for (int i = 0; i < N; i += 17) {
		CHECK_OK(s.c, th_get(&s, p[i].id, &got));
		CHECK_INT(got.state, sandproc_v1_State_STATE_RUNNING);
	}
	th_server_stop(&s); /* keeps all 200 again */
	s.args[0] = NULL;
	th_server_start(&s, false); /* the harness default: --on-exit stop */
	CHECK_OK(s.c, sp_system_health(s.c, &hreq, &hrep, 0));
	CHECK_INT(hrep.running, N);
	th_server_stop(&s);
	for (int i = 0; i < N; i++) {
		CHECK_INT(th_group_settled(p[i].pid, false), 0);
	}
	th_server_start(&s, false);
	CHECK_OK(s.c, th_get(&s, p[N - 1].id, &got));
	CHECK_INT(got.state, sandproc_v1_State_STATE_KILLED);
	CHECK_INT(got.signal, SIGTERM);
	CHECK_INT(th_holders_left(s.dir, 10000), 0);
	th_server_cleanup(&s);
}

static void
test_a_failed_listen_leaves_taken_back_processes_running(void)
{
	th_server s = { 0 }, bad = { 0 };
	const char *argv[] = { "sleep", "60", NULL };
	sandproc_v1_Process p, got;
	char data[300], listen[400];
	int st;

	start_keeping(&s);
	p = start_argv(&s, argv, false);
	th_server_crash(&s);
	/* A server that re-attaches, then cannot listen and exits. */
	snprintf(data, sizeof(data), "%s/data", s.dir);
	snprintf(listen, sizeof(listen), "ipc://%s/no/such/dir/req.sock", s.dir);
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execl(SANDPROCD_PATH, "sandprocd", "--listen", listen, "--data", data, (char *)NULL);
		_exit(127);
	}
	CHECK_INT(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	CHECK_INT(th_group_members(p.pid, false), 1);
	start_keeping(&s);
	CHECK_OK(s.c, th_get(&s, p.id, &got));
	CHECK_INT(got.state, sandproc_v1_State_STATE_RUNNING);
	th_kill(&s, p.id, &got);
	(void)bad;
	th_server_cleanup(&s);
}

/* Stands in for a holder of another protocol version at path, answering one HELLO; a thread. */
static void *
old_holder(void *arg)
{
	const char *path = arg;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), c;
	uint32_t hello[2], answer[2] = { 6 /* HM_HELLO_BACK */, 99 /* a version from the future */ };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l, 1) != 0) {
		close(l);
		return (NULL);
	}
	if ((c = accept(l, NULL, NULL)) >= 0) {
		if (read(c, hello, sizeof(hello)) > 0) {
			ssize_t n = write(c, answer, sizeof(answer));
			(void)n;
		}
		close(c);
	}
	close(l);
	return (NULL);
}

static void
test_a_holder_of_another_version_is_reported_not_guessed(void)
{
	th_server s = { 0 };
	const char *argv[] = { "sleep", "60", NULL };
	sandproc_v1_Process p, got;
	char sock[600];
	pthread_t th;

	start_keeping(&s);
	p = start_argv(&s, argv, false);
	th_server_crash(&s);
	/* Its real holder goes (taking the process); an "older" one answers on its socket. */
	CHECK_INT(th_kill_holders(s.dir), 1);
	snprintf(sock, sizeof(sock), "%s/data/run/%s.sock", s.dir, p.id);
	CHECK_INT(pthread_create(&th, NULL, old_holder, sock), 0);
	th_sleep_ms(100);
	start_keeping(&s);
	pthread_join(th, NULL);
	CHECK_OK(s.c, th_get(&s, p.id, &got));
	CHECK(strstr(got.error, "version") != NULL);
	CHECK(got.state == sandproc_v1_State_STATE_RUNNING);
	th_server_cleanup(&s);
}

static void
test_a_holder_that_cannot_start_fails_the_start(void)
{
	th_server s = { 0 };
	const char *argv[] = { "sleep", "60", NULL };
	sandproc_v1_StartRequest req;
	sandproc_v1_Process p, got;

	s.args[0] = "--holder";
	s.args[1] = "/bin/false";
	th_server_start(&s, false);
	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	CHECK_INT(sp_processes_start(s.c, &req, &p, 0), SP_INTERNAL);
	CHECK(strstr(sp_client_error(s.c), "holder") != NULL);
	char id[32];
	snprintf(id, sizeof(id), "%.29s", sp_client_error(s.c));
	CHECK_OK(s.c, th_get(&s, id, &got));
	CHECK_INT(got.state, sandproc_v1_State_STATE_FAILED);
	th_server_cleanup(&s);
}

static void
test_on_exit_stop_ends_processes_at_shutdown(void)
{
	th_server s = { 0 };
	const char *argv[] = { "sleep", "60", NULL };
	sandproc_v1_Process p, got;

	s.args[0] = "--on-exit";
	s.args[1] = "stop";
	th_server_start(&s, false);
	p = start_argv(&s, argv, false);
	th_server_stop(&s);
	CHECK_INT(th_group_settled(p.pid, false), 0);
	s.args[0] = NULL;
	th_server_start(&s, false);
	CHECK_OK(s.c, th_get(&s, p.id, &got));
	CHECK_INT(got.state, sandproc_v1_State_STATE_KILLED);
	CHECK_INT(got.signal, SIGTERM);
	CHECK(strstr(got.error, "shut down") != NULL);
	CHECK_INT(th_holders_left(s.dir, 10000), 0);
	th_server_cleanup(&s);
}

int
main(int argc, char **argv)
{
	static const th_test tests[] = {
		{ "test_numbered_lines_survive_a_crash_and_a_restart",
		    test_numbered_lines_survive_a_crash_and_a_restart },
		{ "test_ends_while_down_are_reported_with_code_signal_and_time",
		    test_ends_while_down_are_reported_with_code_signal_and_time },
		{ "test_tty_shell_screen_input_resize_and_attach_after_a_crash",
		    test_tty_shell_screen_input_resize_and_attach_after_a_crash },
		{ "test_output_rolled_out_of_the_log_before_the_server_saw_it",
		    test_output_rolled_out_of_the_log_before_the_server_saw_it },
		{ "test_stderr_after_a_crash_does_not_kill_with_sigpipe",
		    test_stderr_after_a_crash_does_not_kill_with_sigpipe },
		{ "test_a_killed_holder_is_reported_and_nothing_hangs",
		    test_a_killed_holder_is_reported_and_nothing_hangs },
		{ "test_two_hundred_processes_are_taken_back", test_two_hundred_processes_are_taken_back },
		{ "test_a_failed_listen_leaves_taken_back_processes_running",
		    test_a_failed_listen_leaves_taken_back_processes_running },
		{ "test_a_holder_of_another_version_is_reported_not_guessed",
		    test_a_holder_of_another_version_is_reported_not_guessed },
		{ "test_a_holder_that_cannot_start_fails_the_start",
		    test_a_holder_that_cannot_start_fails_the_start },
		{ "test_on_exit_stop_ends_processes_at_shutdown",
		    test_on_exit_stop_ends_processes_at_shutdown },
	};
	return (th_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0])));
}
