#include "harness.h"

#include "base/util.h"
#include "os/procfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int th_failures;
const char *th_testchild = TESTCHILD_PATH;
const char *th_cli = SANDPROC_CLI_PATH;

static const char *th_current;

void
th_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FAIL %s (%s:%d): ", th_current ? th_current : "?", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	th_failures++;
}

int
th_main(int argc, char **argv, const th_test *tests, size_t n)
{
	int ran = 0, failed = 0;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < n; i++) {
		bool wanted = argc < 2;
		for (int k = 1; k < argc; k++) {
			wanted |= strcmp(argv[k], tests[i].name) == 0;
		}
		if (!wanted) {
			continue;
		}
		int before = th_failures;
		int64_t t0 = th_now_ms();
		th_current = tests[i].name;
		tests[i].fn();
		ran++;
		if (th_failures != before) {
			failed++;
		}
		printf("%s %s (%lld ms)\n", th_failures == before ? "ok  " : "FAIL", tests[i].name,
		    (long long)(th_now_ms() - t0));
	}
	printf("%d passed, %d failed\n", ran - failed, failed);
	return (failed == 0 && ran > 0 ? 0 : 1);
}

int64_t
th_now_ms(void)
{
	return (util_mono_ms());
}

void
th_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Reads the server's "sandprocd ready: listen=... events=..." line. */
static bool
th_read_ready(th_server *s, int fd)
{
	char line[2048];
	size_t n = 0;
	int64_t deadline = th_now_ms() + 20000;

	while (n < sizeof(line) - 1 && th_now_ms() < deadline) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 200) <= 0) {
			continue;
		}
		ssize_t r = read(fd, line + n, 1);
		if (r <= 0) {
			return (false);
		}
		if (line[n] == '\n') {
			line[n] = '\0';
			char *l = strstr(line, "listen="), *e = strstr(line, "events=");
			if (l == NULL || e == NULL) {
				return (false);
			}
			sscanf(l + 7, "%511s", s->url);
			sscanf(e + 7, "%511s", s->events);
			snprintf(s->listen_all, sizeof(s->listen_all), "%s", s->url);
			/* Several URLs are listed with commas: the first is used. */
			s->url[strcspn(s->url, ",")] = '\0';
			s->events[strcspn(s->events, ",")] = '\0';
			return (true);
		}
		n++;
	}
	return (false);
}

/* The admin key the server wrote on its first start, if it did. */
static void
th_read_token(th_server *s)
{
	char path[400];
	FILE *f;

	s->token[0] = '\0';
	snprintf(path, sizeof(path), "%s/data/admin.key", s->dir);
	if ((f = fopen(path, "re")) != NULL) {
		if (fgets(s->token, sizeof(s->token), f) == NULL) {
			s->token[0] = '\0';
		}
		s->token[strcspn(s->token, "\n")] = '\0';
		fclose(f);
	}
}

void
th_server_start(th_server *s, bool tcp)
{
	char listen[512], events[512], err[600];
	int out[2];

	if (s->dir[0] == '\0') {
		const char *tmp = getenv("TMPDIR");
		snprintf(s->dir, sizeof(s->dir), "%s/sandproc-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (mkdtemp(s->dir) == NULL) {
			th_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
			exit(1);
		}
	}
	s->tcp = tcp;
	if (tcp) {
		snprintf(listen, sizeof(listen), "tcp://127.0.0.1:0");
		snprintf(events, sizeof(events), "tcp://127.0.0.1:0");
	} else {
		snprintf(listen, sizeof(listen), "ipc://%s/req.sock", s->dir);
		snprintf(events, sizeof(events), "ipc://%s/events.sock", s->dir);
	}
	if (pipe2(out, O_CLOEXEC) != 0) {
		exit(1);
	}
	s->pid = fork();
	if (s->pid == 0) {
		char data[300];
		const char *av[40] = { "sandprocd", "--listen", listen, "--events", events, "--data", data,
			"--grace", "1000" };
		size_t n = 9;
		bool on_exit = false;
		const char *backend = getenv("SANDPROC_TEST_BACKEND");
		snprintf(data, sizeof(data), "%s/data", s->dir);
		for (size_t i = 0; i < sizeof(s->args) / sizeof(s->args[0]) && s->args[i] != NULL; i++) {
			on_exit = on_exit || strcmp(s->args[i], "--on-exit") == 0;
			backend = strcmp(s->args[i], "--backend") == 0 ? NULL : backend;
			av[n++] = s->args[i];
		}
		/* Tests stop what they start, unless one asks to keep processes across a restart. */
		if (!on_exit) {
			av[n++] = "--on-exit";
			av[n++] = "stop";
		}
		if (backend != NULL && backend[0] != '\0') {
			av[n++] = "--backend";
			av[n++] = backend;
		}
		av[n] = NULL;
		for (size_t i = 0; i < sizeof(s->env) / sizeof(s->env[0]) && s->env[i] != NULL; i++) {
			putenv((char *)s->env[i]);
		}
		/* A test that reads the server's log asks for it in a file. */
		const char *errlog = getenv("SANDPROC_TEST_STDERR");
		int efd = errlog != NULL ? open(errlog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
		if (efd >= 0) {
			dup2(efd, 2);
		}
		dup2(out[1], 1);
		if (s->uid != 0 && (setgroups(0, NULL) != 0 || setgid(s->uid) != 0 || setuid(s->uid) != 0)) {
			_exit(126);
		}
		/* A test that dies (a sanitizer's halt) takes its server with it. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execv(SANDPROCD_PATH, (char *const *)av);
		_exit(127);
	}
	close(out[1]);
	int64_t t0 = th_now_ms();
	if (!th_read_ready(s, out[0])) {
		char path[64], stat[512] = "";
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)s->pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t k = fd >= 0 ? read(fd, stat, sizeof(stat) - 1) : -1;
		stat[k > 0 ? k : 0] = '\0';
		if (fd >= 0) {
			close(fd);
		}
		th_fail(__FILE__, __LINE__, "sandprocd did not start (after %lld ms; stat: %s)",
		    (long long)(th_now_ms() - t0), stat);
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		exit(1);
	}
	close(out[0]);
	th_read_token(s);
	if (sp_connect(&s->c, s->url, s->token, err, sizeof(err)) != SP_OK) {
		th_fail(__FILE__, __LINE__, "connect %s: %s", s->url, err);
		exit(1);
	}
}

static void
th_server_reap(th_server *s, int sig)
{
	int64_t deadline = th_now_ms() + 30000;
	int st;

	if (s->c != NULL) {
		sp_client_free(s->c);
		s->c = NULL;
	}
	if (s->pid <= 0) {
		return;
	}
	kill(s->pid, sig);
	while (waitpid(s->pid, &st, WNOHANG) == 0) {
		if (th_now_ms() > deadline) {
			th_fail(__FILE__, __LINE__, "sandprocd did not stop within 30 s");
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &st, 0);
			break;
		}
		th_sleep_ms(10);
	}
	if (sig == SIGTERM && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
		th_fail(__FILE__, __LINE__, "sandprocd did not exit cleanly (status %d)", st);
	}
	s->pid = 0;
}

void
th_server_stop(th_server *s)
{
	th_server_reap(s, SIGTERM);
}

void
th_server_crash(th_server *s)
{
	th_server_reap(s, SIGKILL);
}

void
th_rmrf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			char p[1024];
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
				continue;
			}
			snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
			if (de->d_type == DT_DIR) {
				th_rmrf(p);
			} else {
				unlink(p);
			}
		}
		closedir(d);
	}
	rmdir(path);
}

/* Whether process pid has an fd open on a path under dir. */
static bool
th_pid_uses(const char *pid, const char *dir)
{
	char path[300], link[1024];
	size_t dlen = strlen(dir);
	DIR *d;
	struct dirent *de;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	if ((d = opendir(path)) == NULL) {
		return (false);
	}
	while (!found && (de = readdir(d)) != NULL) {
		char fd[600];
		snprintf(fd, sizeof(fd), "%s/%s", path, de->d_name);
		ssize_t n = readlink(fd, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			found = strncmp(link, dir, dlen) == 0 && (link[dlen] == '/' || link[dlen] == '\0');
		}
	}
	closedir(d);
	return (found);
}

/* The sandproc-holders with a file open under dir; with kill, SIGKILLed with their process's group. */
static int
th_holders(const char *dir, bool kill_them)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	while (d != NULL && (de = readdir(d)) != NULL) {
		char path[600], exe[1024], kids[4096];
		if (de->d_name[0] < '1' || de->d_name[0] > '9') {
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%s/exe", de->d_name);
		ssize_t len = readlink(path, exe, sizeof(exe) - 1);
		if (len <= 0) {
			continue;
		}
		exe[len] = '\0';
		const char *base = strrchr(exe, '/');
		if (base == NULL || strcmp(base, "/sandproc-holder") != 0 || !th_pid_uses(de->d_name, dir)) {
			continue;
		}
		n++;
		if (!kill_them) {
			continue;
		}
		/* Its process (a group leader) and that group first, then the holder. */
		snprintf(path, sizeof(path), "/proc/%s/task/%s/children", de->d_name, de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t k = fd >= 0 ? read(fd, kids, sizeof(kids) - 1) : -1;
		if (fd >= 0) {
			close(fd);
		}
		kids[k > 0 ? k : 0] = '\0';
		for (char *save = NULL, *tok = strtok_r(kids, " \n", &save); tok != NULL;
		     tok = strtok_r(NULL, " \n", &save)) {
			pid_t kid = (pid_t)atoi(tok);
			kill(-kid, SIGKILL);
			kill(kid, SIGKILL);
		}
		kill((pid_t)atoi(de->d_name), SIGKILL);
	}
	if (d != NULL) {
		closedir(d);
	}
	return (n);
}

int
th_kill_keepers(const char *dir)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	char want[400];
	int n = 0;

	snprintf(want, sizeof(want), "%s/data/sandboxes/", dir);
	while (d != NULL && (de = readdir(d)) != NULL) {
		char path[600], cmd[8192];
		if (de->d_name[0] < '1' || de->d_name[0] > '9') {
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t len = fd >= 0 ? read(fd, cmd, sizeof(cmd) - 1) : -1;
		if (fd >= 0) {
			close(fd);
		}
		if (len <= 0) {
			continue;
		}
		for (ssize_t i = 0; i < len; i++) {
			cmd[i] = cmd[i] == '\0' ? ' ' : cmd[i];
		}
		cmd[len] = '\0';
		if (strstr(cmd, "bwrap") != NULL && strstr(cmd, want) != NULL) {
			kill((pid_t)atoi(de->d_name), SIGKILL);
			n++;
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	return (n);
}

int
th_kill_holders(const char *dir)
{
	return (th_holders(dir, true));
}

int
th_holders_left(const char *dir, int ms)
{
	int n;

	for (int64_t end = util_now_ms() + ms; (n = th_holders(dir, false)) > 0 && util_now_ms() < end;) {
		th_sleep_ms(20);
	}
	return (n);
}

void
th_server_cleanup(th_server *s)
{
	if (s->pid > 0) {
		th_server_stop(s);
	}
	if (s->dir[0] != '\0') {
		/* Holders a test left running (a crash, or keep at shutdown), with their processes. */
		th_kill_holders(s->dir);
		th_kill_keepers(s->dir);
		th_rmrf(s->dir);
		s->dir[0] = '\0';
	}
}

sp_client *
th_client(th_server *s)
{
	sp_client *c;
	char err[600];

	if (sp_connect(&c, s->url, s->token, err, sizeof(err)) != SP_OK) {
		th_fail(__FILE__, __LINE__, "connect: %s", err);
		return (NULL);
	}
	return (c);
}

void
th_start(th_server *s, const char *const *argv, sandproc_v1_Process *out)
{
	sandproc_v1_StartRequest req;

	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	CHECK_OK(s->c, sp_processes_start(s->c, &req, out, 0));
}

void
th_wait(th_server *s, const char *id, sandproc_v1_Process *out)
{
	sandproc_v1_WaitRequest req;

	memset(&req, 0, sizeof(req));
	snprintf(req.id, sizeof(req.id), "%s", id);
	req.timeout_ms = 60000;
	CHECK_OK(s->c, sp_processes_wait(s->c, &req, out, 70000));
}

int
th_get(th_server *s, const char *id, sandproc_v1_Process *out)
{
	sandproc_v1_GetRequest req;

	memset(&req, 0, sizeof(req));
	snprintf(req.id, sizeof(req.id), "%s", id);
	return (sp_processes_get(s->c, &req, out, 0));
}

void
th_stop(th_server *s, const char *id, uint32_t grace_ms, sandproc_v1_Process *out)
{
	sandproc_v1_StopRequest req;

	memset(&req, 0, sizeof(req));
	snprintf(req.id, sizeof(req.id), "%s", id);
	req.grace_ms = grace_ms;
	req.wait_ms = 10000;
	CHECK_OK(s->c, sp_processes_stop(s->c, &req, out, 20000));
}

void
th_kill(th_server *s, const char *id, sandproc_v1_Process *out)
{
	sandproc_v1_KillRequest req;

	memset(&req, 0, sizeof(req));
	snprintf(req.id, sizeof(req.id), "%s", id);
	req.wait_ms = 10000;
	CHECK_OK(s->c, sp_processes_kill(s->c, &req, out, 20000));
}

uint8_t *
th_finish(th_server *s, const char *id, int code, size_t *len)
{
	sandproc_v1_Process got;

	th_wait(s, id, &got);
	CHECK_INT(got.state, sandproc_v1_State_STATE_EXITED);
	if (code >= 0) {
		CHECK_INT(got.exit_code, code);
	}
	return (th_logs(s->c, id, 0, len));
}

uint8_t *
th_start_finish(th_server *s, const char *const *argv, int code, size_t *len)
{
	sandproc_v1_Process p;

	th_start(s, argv, &p);
	return (th_finish(s, p.id, code, len));
}

void
th_expect_exit(th_server *s, const char *id, int code, const char *output)
{
	size_t len;
	uint8_t *b = th_finish(s, id, code, &len);

	CHECK_STR((char *)b, output);
	free(b);
}

struct th_call {
	pthread_t th;
	th_server *s;
	int (*fn)(sp_client *c, void *arg);
	void *arg;
	int rv;
};

static void *
th_call_main(void *arg)
{
	th_call *t = arg;
	sp_client *c = th_client(t->s);

	t->rv = c != NULL ? t->fn(c, t->arg) : -1;
	sp_client_free(c);
	return (NULL);
}

th_call *
th_call_start(th_server *s, int (*fn)(sp_client *c, void *arg), void *arg)
{
	th_call *t = calloc(1, sizeof(*t));
	pthread_attr_t attr;

	t->s = s;
	t->fn = fn;
	t->arg = arg;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (pthread_create(&t->th, &attr, th_call_main, t) != 0) {
		th_fail(__FILE__, __LINE__, "pthread_create failed");
		t->rv = -1;
		t->fn = NULL;
	}
	pthread_attr_destroy(&attr);
	return (t);
}

int
th_call_join(th_call *t)
{
	int rv;

	if (t->fn != NULL) {
		pthread_join(t->th, NULL);
	}
	rv = t->rv;
	free(t);
	return (rv);
}

bool
th_logs_wait(sp_client *c, const char *id, sandproc_v1_Stream stream, const char *needle)
{
	for (int64_t deadline = th_now_ms() + 10000; th_now_ms() < deadline; th_sleep_ms(20)) {
		size_t len;
		uint8_t *b = th_logs(c, id, stream, &len);
		bool found = b != NULL && strstr((char *)b, needle) != NULL;
		free(b);
		if (found) {
			return (true);
		}
	}
	return (false);
}

uint8_t *
th_logs(sp_client *c, const char *id, sandproc_v1_Stream stream, size_t *len)
{
	sandproc_v1_LogsRequest req;
	sandproc_v1_LogsReply *rep = malloc(sizeof(*rep));
	uint8_t *buf = NULL;
	size_t n = 0;
	uint64_t last = 0;

	memset(&req, 0, sizeof(req));
	snprintf(req.id, sizeof(req.id), "%s", id);
	req.stream = stream;
	do {
		int code = sp_processes_logs(c, &req, rep, 0);
		if (code != SP_OK) {
			th_fail(__FILE__, __LINE__, "Logs: %s: %s", sp_status_name(code), sp_client_error(c));
			break;
		}
		for (pb_size_t i = 0; i < rep->entries_count; i++) {
			const sandproc_v1_LogEntry *e = &rep->entries[i];
			if (e->sequence <= last) {
				th_fail(__FILE__, __LINE__, "Logs: sequence %llu after %llu",
				    (unsigned long long)e->sequence, (unsigned long long)last);
			}
			last = e->sequence;
			buf = realloc(buf, n + e->data.len + 1);
			memcpy(buf + n, e->data.data, e->data.len);
			n += e->data.len;
		}
		req.after_sequence = rep->next_sequence;
	} while (rep->has_more);
	free(rep);
	if (buf == NULL) {
		buf = calloc(1, 1);
	}
	buf[n] = '\0';
	*len = n;
	return (buf);
}

static int
th_count_procs(bool (*match)(void *, pid_t, char, pid_t, pid_t, pid_t), void *arg)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	while (d != NULL && (de = readdir(d)) != NULL) {
		char *end, st;
		long pid = strtol(de->d_name, &end, 10);
		pid_t ppid, pgrp, sid;
		if (*end == '\0' && pid > 0 && procfs_read_stat((pid_t)pid, &st, &ppid, &pgrp, &sid) &&
		    match(arg, (pid_t)pid, st, ppid, pgrp, sid)) {
			n++;
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	return (n);
}

typedef struct {
	pid_t id;
	bool session;
} th_group_q;

static bool
th_match_group(void *arg, pid_t pid, char st, pid_t ppid, pid_t pgrp, pid_t sid)
{
	th_group_q *q = arg;
	(void)pid;
	(void)ppid;
	return (st != 'Z' && (q->session ? sid == q->id : pgrp == q->id));
}

int
th_group_members(pid_t pgid, bool session)
{
	th_group_q q = { pgid, session };
	return (th_count_procs(th_match_group, &q));
}

int
th_group_settled(pid_t pgid, bool session)
{
	int64_t deadline = th_now_ms() + 5000;
	int n;

	while ((n = th_group_members(pgid, session)) != 0 && th_now_ms() < deadline) {
		th_sleep_ms(10);
	}
	return (n);
}

static bool
th_match_zombie(void *arg, pid_t pid, char st, pid_t ppid, pid_t pgrp, pid_t sid)
{
	(void)pid;
	(void)pgrp;
	(void)sid;
	return (st == 'Z' && ppid == *(pid_t *)arg);
}

int
th_zombies_of(pid_t pid)
{
	return (th_count_procs(th_match_zombie, &pid));
}

/* Runs `sandproc attach id` on a new PTY; returns its pid and the master fd. */
pid_t
th_attach_spawn(th_server *s, const char *id, int *master)
{
	struct winsize ws = { .ws_row = 20, .ws_col = 70 };
	pid_t pid = forkpty(master, NULL, NULL, &ws);

	if (pid == 0) {
		execl(SANDPROC_CLI_PATH, "sandproc", "--server", s->url, "--events", s->events, "--token",
		    s->token, "attach", id, (char *)NULL);
		_exit(127);
	}
	return (pid);
}

/* Reads the attach's terminal until needle shows (or 10 s); keeps what was read. */
bool
th_pty_expect(int master, char *seen, size_t cap, size_t *len, const char *needle)
{
	int64_t deadline = th_now_ms() + 10000;

	while (th_now_ms() < deadline) {
		seen[*len] = '\0';
		if (strstr(seen, needle) != NULL) {
			return (true);
		}
		struct pollfd pfd = { .fd = master, .events = POLLIN };
		if (poll(&pfd, 1, 100) <= 0) {
			continue;
		}
		ssize_t n = read(master, seen + *len, cap - 1 - *len);
		if (n <= 0) {
			break;
		}
		*len += (size_t)n;
		if (*len > cap / 2) {
			/* Keep the tail only. */
			memmove(seen, seen + *len - cap / 4, cap / 4);
			*len = cap / 4;
		}
	}
	seen[*len] = '\0';
	return (strstr(seen, needle) != NULL);
}

int
th_attach_wait(pid_t pid, int master)
{
	char buf[4096];
	int st = 0;
	int64_t deadline = th_now_ms() + 10000;

	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (th_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return (-1);
		}
		/* Keep the PTY drained so the attach never blocks writing. */
		struct pollfd pfd = { .fd = master, .events = POLLIN };
		if (poll(&pfd, 1, 50) > 0 && read(master, buf, sizeof(buf)) < 0 && errno != EAGAIN) {
			th_sleep_ms(10);
		}
	}
	return (WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

void
th_feed_live(th_server *s, nng_socket sub)
{
	const char *argv[] = { "true", NULL };
	sandproc_v1_Process p;
	bool live = false;
	nng_msg *m;

	nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 200);
	for (int i = 0; i < 100 && !live; i++) {
		char topic[64];
		th_start(s, argv, &p);
		snprintf(topic, sizeof(topic), "proc/%s", p.id);
		while (!live && nng_recvmsg(sub, &m, 0) == 0) {
			live = strcmp(nng_msg_body(m), topic) == 0;
			nng_msg_free(m);
		}
	}
	CHECK(live);
	/* The rest of the probes' events, so the test starts from quiet. */
	while (nng_recvmsg(sub, &m, 0) == 0) {
		nng_msg_free(m);
	}
}
