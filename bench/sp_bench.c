/*
 * sp_bench: the measuring half of bench/run. Each subcommand measures one
 * side of one comparison (ours, the raw limit, or the peer over HTTP) and
 * prints one JSON object on stdout. bench/run alternates the sides and
 * turns the figures into ratios.
 *
 *   sp_bench echo-server URL
 *   sp_bench echo URL CLIENTS SECONDS SIZE
 *   sp_bench health URL CLIENTS SECONDS
 *   sp_bench http-get HOST:PORT PATH CLIENTS SECONDS
 *   sp_bench http-post HOST:PORT PATH BODY CLIENTS SECONDS
 *   sp_bench run-true URL CLIENTS SECONDS
 *   sp_bench run-true-sandbox URL SANDBOX CLIENTS SECONDS
 *   sp_bench sandbox-create URL N SERVER_PID
 *   sp_bench bwrap-true N
 *   sp_bench spawn-true THREADS SECONDS
 *   sp_bench capture-ours URL BYTES
 *   sp_bench capture-limit BYTES FILE
 *   sp_bench capture-peer HOST:PORT BYTES
 *   sp_bench fanout-ours URL EVENTS FOLLOWERS BYTES DIR
 *   sp_bench fanout-peer HOST:PORT FOLLOWERS BYTES DIR
 *   sp_bench scale-ours URL RECORDS CALLS
 *   sp_bench scale-peer HOST:PORT RECORDS CALLS
 *   sp_bench memory-ours URL SERVER_PID N
 *   sp_bench memory-peer HOST:PORT SERVER_PID N
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandproc.h"

extern char **environ;

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("sp_bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static sp_client *
connect_ours(const char *url)
{
	sp_client *c;
	char err[600];

	if (sp_connect(&c, url, NULL, err, sizeof(err)) != SP_OK) {
		die("connect %s: %s", url, err);
	}
	return (c);
}

/* --- a fixed-duration load with N client threads --------------------------- */

typedef struct load {
	double seconds;
	void *(*setup)(struct load *l, int i);
	bool (*op)(void *ctx);
	void (*teardown)(void *ctx);
	const void *arg;
	atomic_long ops, errors;
	atomic_int ready;
	atomic_bool go, stop;
} load;

typedef struct load_thread {
	load *l;
	int i;
	pthread_t th;
} load_thread;

static void *
load_main(void *arg)
{
	load_thread *t = arg;
	load *l = t->l;
	void *ctx = l->setup(l, t->i);
	long ops = 0, errors = 0;

	/* Connected; the clock starts once every client is. */
	atomic_fetch_add(&l->ready, 1);
	while (!atomic_load(&l->go)) {
		usleep(100);
	}
	while (!atomic_load_explicit(&l->stop, memory_order_relaxed)) {
		if (l->op(ctx)) {
			ops++;
		} else {
			errors++;
		}
	}
	atomic_fetch_add(&l->ops, ops);
	atomic_fetch_add(&l->errors, errors);
	l->teardown(ctx);
	return (NULL);
}

/* Runs the load; returns operations per second. Setup happens before the clock starts. */
static double
load_run(load *l, int clients)
{
	load_thread *t = calloc((size_t)clients, sizeof(*t));
	double start;

	atomic_store(&l->ops, 0);
	atomic_store(&l->errors, 0);
	for (int i = 0; i < clients; i++) {
		t[i].l = l;
		t[i].i = i;
		pthread_create(&t[i].th, NULL, load_main, &t[i]);
	}
	while (atomic_load(&l->ready) < clients) {
		usleep(1000);
	}
	start = now_s();
	atomic_store(&l->go, true);
	struct timespec ts = { (time_t)l->seconds, (long)((l->seconds - (double)(time_t)l->seconds) * 1e9) };
	nanosleep(&ts, NULL);
	atomic_store(&l->stop, true);
	double end = now_s();
	for (int i = 0; i < clients; i++) {
		pthread_join(t[i].th, NULL);
	}
	free(t);
	return ((double)atomic_load(&l->ops) / (end - start));
}

/* --- bare nng echo (the RPC limit) ------------------------------------------ */

static int
cmd_echo_server(const char *url)
{
	nng_socket s;
	nng_msg *m;

	if (nng_rep0_open(&s) != 0 || nng_listen(s, url, NULL, 0) != 0) {
		die("echo-server: cannot listen on %s", url);
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		if (nng_recvmsg(s, &m, 0) != 0) {
			continue;
		}
		if (nng_sendmsg(s, m, 0) != 0) {
			nng_msg_free(m);
		}
	}
}

typedef struct echo_ctx {
	nng_socket s;
	size_t size;
} echo_ctx;

static void *
echo_setup(load *l, int i)
{
	echo_ctx *c = calloc(1, sizeof(*c));
	(void)i;
	c->size = (size_t)atoi(((const char **)l->arg)[1]);
	if (nng_req0_open(&c->s) != 0 || nng_dial(c->s, ((const char **)l->arg)[0], NULL, 0) != 0) {
		die("echo: cannot dial");
	}
	return (c);
}

static bool
echo_op(void *arg)
{
	echo_ctx *c = arg;
	nng_msg *m;

	nng_msg_alloc(&m, c->size);
	memset(nng_msg_body(m), 'x', c->size);
	if (nng_sendmsg(c->s, m, 0) != 0) {
		nng_msg_free(m);
		return (false);
	}
	if (nng_recvmsg(c->s, &m, 0) != 0) {
		return (false);
	}
	nng_msg_free(m);
	return (true);
}

static void
echo_teardown(void *arg)
{
	echo_ctx *c = arg;
	nng_close(c->s);
	free(c);
}

/* --- our RPCs ---------------------------------------------------------------- */

static void *
ours_setup(load *l, int i)
{
	(void)i;
	return (connect_ours(((const char **)l->arg)[0]));
}

static bool
health_op(void *arg)
{
	sandproc_v1_HealthRequest req;
	sandproc_v1_HealthReply rep;

	memset(&req, 0, sizeof(req));
	return (sp_system_health(arg, &req, &rep, 0) == SP_OK);
}

static bool
run_true_op(void *arg)
{
	static const char *argv[] = { "true", NULL };
	sandproc_v1_RunRequest req;
	sandproc_v1_RunReply rep;

	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	return (sp_processes_run(arg, &req, &rep, 0) == SP_OK && rep.exit_code == 0);
}

static const char *bench_sandbox; /* run-true-sandbox */

static bool
run_true_sandbox_op(void *arg)
{
	static const char *argv[] = { "true", NULL };
	sandproc_v1_RunRequest req;
	sandproc_v1_RunReply rep;

	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	snprintf(req.sandbox_id, sizeof(req.sandbox_id), "%s", bench_sandbox);
	return (sp_processes_run(arg, &req, &rep, 0) == SP_OK && rep.exit_code == 0);
}

static void
ours_teardown(void *arg)
{
	sp_client_free(arg);
}

/* --- bare posix_spawn + waitpid (the Run limit) -------------------------------- */

static void *
spawn_setup(load *l, int i)
{
	(void)l;
	(void)i;
	return (NULL);
}

static bool
spawn_op(void *arg)
{
	static char *argv[] = { "true", NULL };
	pid_t pid;
	int st;

	(void)arg;
	if (posix_spawnp(&pid, "true", NULL, NULL, argv, environ) != 0) {
		return (false);
	}
	return (waitpid(pid, &st, 0) == pid && st == 0);
}

static void
spawn_teardown(void *arg)
{
	(void)arg;
}

/* --- a minimal HTTP/1.1 keep-alive client for the peer ----------------------------- */

typedef struct http {
	int fd;
	char buf[1 << 16];
	size_t have, pos;
} http;

static void
http_connect(http *h, const char *hostport)
{
	char host[64];
	int port;
	struct sockaddr_in sa;
	int one = 1;

	if (sscanf(hostport, "%63[^:]:%d", host, &port) != 2) {
		die("bad host:port %s", hostport);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &sa.sin_addr);
	h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(h->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		die("connect %s: %s", hostport, strerror(errno));
	}
	setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	h->have = h->pos = 0;
}

/* Next byte of the connection, or -1 at EOF/error/timeout. */
static int
http_byte(http *h)
{
	if (h->pos == h->have) {
		ssize_t n = read(h->fd, h->buf, sizeof(h->buf));
		if (n <= 0) {
			return (-1);
		}
		h->have = (size_t)n;
		h->pos = 0;
	}
	return ((unsigned char)h->buf[h->pos++]);
}

static bool
http_line(http *h, char *line, size_t cap)
{
	size_t n = 0;
	int c;

	while ((c = http_byte(h)) >= 0) {
		if (c == '\n') {
			if (n > 0 && line[n - 1] == '\r') {
				n--;
			}
			line[n] = '\0';
			return (true);
		}
		if (n < cap - 1) {
			line[n++] = (char)c;
		}
	}
	return (false);
}

typedef struct http_resp {
	int status;
	long length;
	bool chunked;
} http_resp;

static bool
http_send(http *h, const char *method, const char *path, const char *body)
{
	char req[4096];
	int n;

	if (body != NULL) {
		n = snprintf(req, sizeof(req),
		    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n"
		    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		    method, path, strlen(body), body);
	} else {
		n = snprintf(req, sizeof(req),
		    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n", method, path);
	}
	return (n > 0 && (size_t)n < sizeof(req) && write(h->fd, req, (size_t)n) == n);
}

static bool
http_head(http *h, http_resp *r)
{
	char line[2048];

	r->status = 0;
	r->length = -1;
	r->chunked = false;
	if (!http_line(h, line, sizeof(line)) || sscanf(line, "HTTP/1.1 %d", &r->status) != 1) {
		return (false);
	}
	while (http_line(h, line, sizeof(line)) && line[0] != '\0') {
		if (strncasecmp(line, "content-length:", 15) == 0) {
			r->length = atol(line + 15);
		} else if (strncasecmp(line, "transfer-encoding:", 18) == 0 && strstr(line, "chunked")) {
			r->chunked = true;
		}
	}
	return (true);
}

/* Reads the whole body into a growing buffer (NUL-terminated); caller frees. */
static char *
http_body(http *h, const http_resp *r, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	char line[256];

	for (;;) {
		long want;
		if (r->chunked) {
			if (!http_line(h, line, sizeof(line))) {
				break;
			}
			want = strtol(line, NULL, 16);
			if (want == 0) {
				http_line(h, line, sizeof(line));
				break;
			}
		} else {
			want = r->length;
			if (want <= 0) {
				break;
			}
		}
		for (long i = 0; i < want; i++) {
			int c = http_byte(h);
			if (c < 0) {
				goto out;
			}
			if (n + 2 > cap) {
				cap *= 2;
				b = realloc(b, cap);
			}
			b[n++] = (char)c;
		}
		if (r->chunked) {
			http_line(h, line, sizeof(line));
		} else {
			break;
		}
	}
out:
	b[n] = '\0';
	*len = n;
	return (b);
}

/* One request on a keep-alive connection; returns the status, body in *body (may be NULL). */
static int
http_call(http *h, const char *method, const char *path, const char *json, char **body)
{
	http_resp r;
	size_t len;

	if (!http_send(h, method, path, json) || !http_head(h, &r)) {
		return (-1);
	}
	char *b = http_body(h, &r, &len);
	if (body != NULL) {
		*body = b;
	} else {
		free(b);
	}
	return (r.status);
}

static const char *
json_str(const char *json, const char *key, char *out, size_t cap)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	const char *p = strstr(json, pat);
	if (p == NULL) {
		return (NULL);
	}
	p += strlen(pat);
	size_t n = 0;
	while (*p && *p != '"' && n < cap - 1) {
		out[n++] = *p++;
	}
	out[n] = '\0';
	return (out);
}

typedef struct http_ctx {
	http h;
	const char **arg;
} http_ctx;

static void *
http_setup(load *l, int i)
{
	http_ctx *c = calloc(1, sizeof(*c));
	(void)i;
	c->arg = (const char **)l->arg;
	http_connect(&c->h, c->arg[0]);
	return (c);
}

static bool
http_get_op(void *arg)
{
	http_ctx *c = arg;
	return (http_call(&c->h, "GET", c->arg[1], NULL, NULL) == 200);
}

static bool
http_post_op(void *arg)
{
	http_ctx *c = arg;
	return (http_call(&c->h, "POST", c->arg[1], c->arg[2], NULL) == 200);
}

static void
http_teardown(void *arg)
{
	http_ctx *c = arg;
	close(c->h.fd);
	free(c);
}

/* --- log capture --------------------------------------------------------------- */

static void
capture_cmd(char *cmd, size_t cap, unsigned long long bytes, const char *out)
{
	snprintf(
	    cmd, cap, "head -c %llu /dev/zero | tr '\\0' a%s%s", bytes, out ? " > " : "", out ? out : "");
}

static int
cmd_capture_ours(const char *url, unsigned long long bytes)
{
	sp_client *c = connect_ours(url);
	sandproc_v1_StartRequest req;
	sandproc_v1_Process p;
	sandproc_v1_WaitRequest w;
	sandproc_v1_LogsRequest lreq;
	sandproc_v1_LogsReply *lrep = malloc(sizeof(*lrep));
	char cmd[256];
	const char *argv[] = { "sh", "-c", cmd, NULL };

	capture_cmd(cmd, sizeof(cmd), bytes, NULL);
	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	req.no_stdin = true;
	double t0 = now_s();
	if (sp_processes_start(c, &req, &p, 0) != SP_OK) {
		die("Start: %s", sp_client_error(c));
	}
	memset(&w, 0, sizeof(w));
	strcpy(w.id, p.id);
	if (sp_processes_wait(c, &w, &p, -1) != SP_OK) {
		die("Wait: %s", sp_client_error(c));
	}
	double secs = now_s() - t0;
	/* Outside the clock: every byte must be stored. */
	unsigned long long stored = 0;
	memset(&lreq, 0, sizeof(lreq));
	strcpy(lreq.id, p.id);
	lreq.max_bytes = 16 << 20;
	do {
		if (sp_processes_logs(c, &lreq, lrep, 0) != SP_OK) {
			die("Logs: %s", sp_client_error(c));
		}
		for (pb_size_t i = 0; i < lrep->entries_count; i++) {
			stored += lrep->entries[i].data.len;
		}
		lreq.after_sequence = lrep->next_sequence;
	} while (lrep->has_more);
	printf("{\"secs\":%.4f,\"stored\":%llu,\"entries\":%llu}\n", secs, stored,
	    (unsigned long long)lrep->last_sequence);
	sandproc_v1_DeleteRequest d = { 0 };
	sandproc_v1_DeleteReply dr;
	strcpy(d.id, p.id);
	sp_processes_delete(c, &d, &dr, 0);
	free(lrep);
	sp_client_free(c);
	return (0);
}

static int
cmd_capture_limit(unsigned long long bytes, const char *file)
{
	char cmd[512];
	char *argv[] = { "sh", "-c", cmd, NULL };
	pid_t pid;
	int st;
	struct stat sb;

	capture_cmd(cmd, sizeof(cmd), bytes, file);
	double t0 = now_s();
	if (posix_spawnp(&pid, "sh", NULL, NULL, argv, environ) != 0 || waitpid(pid, &st, 0) != pid) {
		die("capture-limit: spawn failed");
	}
	double secs = now_s() - t0;
	stat(file, &sb);
	printf("{\"secs\":%.4f,\"stored\":%lld}\n", secs, (long long)sb.st_size);
	unlink(file);
	return (0);
}

static bool
peer_wait_exited(http *h, const char *id, double timeout)
{
	char path[128];
	double end = now_s() + timeout;

	snprintf(path, sizeof(path), "/v1/processes/%s", id);
	while (now_s() < end) {
		char *body = NULL;
		if (http_call(h, "GET", path, NULL, &body) == 200 && strstr(body, "\"status\":\"exited\"")) {
			free(body);
			return (true);
		}
		free(body);
		usleep(2000);
	}
	return (false);
}

/* The peer's create; returns its id in id. */
static bool
peer_create(http *h, const char *cmd, char *id, size_t cap)
{
	char json[1024], *body = NULL;
	char esc[600];
	size_t n = 0;

	for (const char *p = cmd; *p && n < sizeof(esc) - 2; p++) {
		if (*p == '"' || *p == '\\') {
			esc[n++] = '\\';
		}
		esc[n++] = *p;
	}
	esc[n] = '\0';
	snprintf(json, sizeof(json), "{\"command\":\"sh\",\"args\":[\"-c\",\"%s\"]}", esc);
	int st = http_call(h, "POST", "/v1/processes", json, &body);
	bool ok = st >= 200 && st < 300 && json_str(body, "id", id, cap) != NULL;
	free(body);
	return (ok);
}

static int
cmd_capture_peer(const char *hostport, unsigned long long bytes)
{
	http h;
	char cmd[256], id[64], path[128];

	http_connect(&h, hostport);
	capture_cmd(cmd, sizeof(cmd), bytes, NULL);
	double t0 = now_s();
	if (!peer_create(&h, cmd, id, sizeof(id))) {
		die("peer create failed");
	}
	if (!peer_wait_exited(&h, id, 600)) {
		die("peer process did not exit");
	}
	double secs = now_s() - t0;
	snprintf(path, sizeof(path), "/v1/processes/%s", id);
	http_call(&h, "DELETE", path, NULL, NULL);
	printf("{\"secs\":%.4f}\n", secs);
	close(h.fd);
	return (0);
}

/* --- fan-out to followers ----------------------------------------------------------- */

typedef struct fan {
	const char *url, *events, *id;
	unsigned long long want;
	atomic_ullong delivered;
	atomic_int ready;
	double last_byte;
	pthread_mutex_t mu;
} fan;

typedef struct fan_follower {
	fan *f;
	pthread_t th;
	unsigned long long got;
	uint64_t gaps;
} fan_follower;

static int
fan_entry(void *arg, const sandproc_v1_LogEntry *e)
{
	fan_follower *ff = arg;
	ff->got += e->data.len;
	return (0);
}

static void *
fan_ours_main(void *arg)
{
	fan_follower *ff = arg;
	sp_client *c = connect_ours(ff->f->url);
	sp_follow_opts o = { .events_url = ff->f->events, .gaps_filled = &ff->gaps };

	atomic_fetch_add(&ff->f->ready, 1);
	if (sp_follow(c, ff->f->id, &o, fan_entry, ff, NULL) != SP_OK) {
		fprintf(stderr, "sp_bench: follow: %s\n", sp_client_error(c));
	}
	pthread_mutex_lock(&ff->f->mu);
	ff->f->last_byte = now_s();
	pthread_mutex_unlock(&ff->f->mu);
	sp_client_free(c);
	return (NULL);
}

/* A process that waits for a go file, then writes bytes. */
static void
fan_cmd(char *cmd, size_t cap, const char *go, unsigned long long bytes)
{
	snprintf(cmd, cap, "while [ ! -e %s ]; do sleep 0.01; done; head -c %llu /dev/zero | tr '\\0' a", go,
	    bytes);
}

static void
fan_report(fan_follower *ff, int n, unsigned long long want, double secs)
{
	unsigned long long total = 0, lost_max = 0, gaps = 0;

	for (int i = 0; i < n; i++) {
		total += ff[i].got;
		unsigned long long lost = ff[i].got < want ? want - ff[i].got : 0;
		if (lost > lost_max) {
			lost_max = lost;
		}
		gaps += ff[i].gaps;
	}
	printf("{\"secs\":%.4f,\"delivered\":%llu,\"lost_max\":%llu,\"gaps_filled\":%llu}\n", secs, total,
	    lost_max, gaps);
}

static int
cmd_fanout_ours(const char *url, const char *events, int n, unsigned long long bytes, const char *dir)
{
	sp_client *c = connect_ours(url);
	sandproc_v1_StartRequest req;
	sandproc_v1_Process p;
	char cmd[512], go[300];
	const char *argv[] = { "sh", "-c", cmd, NULL };
	fan f = { .url = url, .events = events, .want = bytes };
	fan_follower *ff = calloc((size_t)n, sizeof(*ff));

	pthread_mutex_init(&f.mu, NULL);
	snprintf(go, sizeof(go), "%s/go-ours", dir);
	unlink(go);
	fan_cmd(cmd, sizeof(cmd), go, bytes);
	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	req.no_stdin = true;
	if (sp_processes_start(c, &req, &p, 0) != SP_OK) {
		die("Start: %s", sp_client_error(c));
	}
	f.id = p.id;
	for (int i = 0; i < n; i++) {
		ff[i].f = &f;
		pthread_create(&ff[i].th, NULL, fan_ours_main, &ff[i]);
	}
	while (atomic_load(&f.ready) < n) {
		usleep(1000);
	}
	usleep(300000); /* every follower subscribed and read its (empty) history */
	double t0 = now_s();
	close(creat(go, 0600));
	for (int i = 0; i < n; i++) {
		pthread_join(ff[i].th, NULL);
	}
	fan_report(ff, n, bytes, f.last_byte - t0);
	unlink(go);
	sandproc_v1_DeleteRequest d = { 0 };
	sandproc_v1_DeleteReply dr;
	strcpy(d.id, p.id);
	sp_processes_delete(c, &d, &dr, 0);
	sp_client_free(c);
	free(ff);
	return (0);
}

static const signed char b64val[256] = {
	['A'] = 0,
	['B'] = 1,
	['C'] = 2,
	['D'] = 3,
	['E'] = 4,
	['F'] = 5,
	['G'] = 6,
	['H'] = 7,
	['I'] = 8,
	['J'] = 9,
	['K'] = 10,
	['L'] = 11,
	['M'] = 12,
	['N'] = 13,
	['O'] = 14,
	['P'] = 15,
	['Q'] = 16,
	['R'] = 17,
	['S'] = 18,
	['T'] = 19,
	['U'] = 20,
	['V'] = 21,
	['W'] = 22,
	['X'] = 23,
	['Y'] = 24,
	['Z'] = 25,
	['a'] = 26,
	['b'] = 27,
	['c'] = 28,
	['d'] = 29,
	['e'] = 30,
	['f'] = 31,
	['g'] = 32,
	['h'] = 33,
	['i'] = 34,
	['j'] = 35,
	['k'] = 36,
	['l'] = 37,
	['m'] = 38,
	['n'] = 39,
	['o'] = 40,
	['p'] = 41,
	['q'] = 42,
	['r'] = 43,
	['s'] = 44,
	['t'] = 45,
	['u'] = 46,
	['v'] = 47,
	['w'] = 48,
	['x'] = 49,
	['y'] = 50,
	['z'] = 51,
	['0'] = 52,
	['1'] = 53,
	['2'] = 54,
	['3'] = 55,
	['4'] = 56,
	['5'] = 57,
	['6'] = 58,
	['7'] = 59,
	['8'] = 60,
	['9'] = 61,
	['+'] = 62,
	['/'] = 63,
};

/* Decodes (and so checks) the base64 "data" of one SSE event; returns its byte count. */
static size_t
sse_data_bytes(const char *json)
{
	const char *p = strstr(json, "\"data\":\"");
	size_t n = 0, bits = 0;
	unsigned acc = 0;

	if (p == NULL) {
		return (0);
	}
	for (p += 8; *p && *p != '"'; p++) {
		if (*p == '=') {
			break;
		}
		acc = (acc << 6) | (unsigned)b64val[(unsigned char)*p];
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			n++;
		}
	}
	(void)acc;
	return (n);
}

typedef struct peer_follower {
	fan *f;
	const char *hostport;
	pthread_t th;
	unsigned long long got;
	unsigned long long gaps;
} peer_follower;

static void *
fan_peer_main(void *arg)
{
	peer_follower *pf = arg;
	http h;
	http_resp r;
	char path[256];
	char *lb = malloc(1 << 20);
	long last_seq = 0;
	struct timeval tv = { 3, 0 };

	http_connect(&h, pf->hostport);
	/* The peer keeps the stream open after the process exits: stop at the bytes, or when it falls silent.
	 */
	setsockopt(h.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	snprintf(path, sizeof(path), "/v1/processes/%s/logs?follow=true&since=0", pf->f->id);
	if (!http_send(&h, "GET", path, NULL) || !http_head(&h, &r)) {
		fprintf(stderr, "sp_bench: peer follow failed\n");
		atomic_fetch_add(&pf->f->ready, 1);
		free(lb);
		return (NULL);
	}
	atomic_fetch_add(&pf->f->ready, 1);
	/* Chunked transfer: read lines of the SSE stream, skipping chunk-size lines. */
	while (pf->got < pf->f->want && http_line(&h, lb, 1 << 20)) {
		if (strncmp(lb, "data:", 5) == 0) {
			const char *seq = strstr(lb, "\"sequence\":");
			long s = seq ? atol(seq + 11) : 0;
			if (last_seq != 0 && s != last_seq + 1) {
				pf->gaps++;
			}
			last_seq = s;
			pf->got += sse_data_bytes(lb);
			pthread_mutex_lock(&pf->f->mu);
			pf->f->last_byte = now_s();
			pthread_mutex_unlock(&pf->f->mu);
		}
	}
	close(h.fd);
	free(lb);
	return (NULL);
}

static int
cmd_fanout_peer(const char *hostport, int n, unsigned long long bytes, const char *dir)
{
	http h;
	char cmd[512], go[300], id[64], path[128];
	fan f = { .want = bytes };
	peer_follower *pf = calloc((size_t)n, sizeof(*pf));

	pthread_mutex_init(&f.mu, NULL);
	http_connect(&h, hostport);
	snprintf(go, sizeof(go), "%s/go-peer", dir);
	unlink(go);
	fan_cmd(cmd, sizeof(cmd), go, bytes);
	if (!peer_create(&h, cmd, id, sizeof(id))) {
		die("peer create failed");
	}
	f.id = id;
	for (int i = 0; i < n; i++) {
		pf[i].f = &f;
		pf[i].hostport = hostport;
		pthread_create(&pf[i].th, NULL, fan_peer_main, &pf[i]);
	}
	while (atomic_load(&f.ready) < n) {
		usleep(1000);
	}
	usleep(300000);
	double t0 = now_s();
	close(creat(go, 0600));
	for (int i = 0; i < n; i++) {
		pthread_join(pf[i].th, NULL);
	}
	unsigned long long total = 0, lost_max = 0, gaps = 0;
	for (int i = 0; i < n; i++) {
		total += pf[i].got;
		unsigned long long lost = pf[i].got < bytes ? bytes - pf[i].got : 0;
		lost_max = lost > lost_max ? lost : lost_max;
		gaps += pf[i].gaps;
	}
	printf("{\"secs\":%.4f,\"delivered\":%llu,\"lost_max\":%llu,\"gaps_seen\":%llu}\n", f.last_byte - t0,
	    total, lost_max, gaps);
	unlink(go);
	peer_wait_exited(&h, id, 60);
	snprintf(path, sizeof(path), "/v1/processes/%s", id);
	http_call(&h, "DELETE", path, NULL, NULL);
	close(h.fd);
	free(pf);
	return (0);
}

/* --- scale ------------------------------------------------------------------------- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x < y ? -1 : x > y);
}

static void
percentiles(double *v, int n, double *p50, double *p99)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	*p50 = v[n / 2] * 1e6;
	*p99 = v[(n * 99) / 100] * 1e6;
}

typedef struct creator {
	const char *url;
	int count;
	char (*ids)[32];
	pthread_t th;
} creator;

static void *
create_ours_main(void *arg)
{
	creator *cr = arg;
	sp_client *c = connect_ours(cr->url);
	static const char *argv[] = { "true", NULL };
	sandproc_v1_StartRequest req;
	sandproc_v1_Process p;

	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	req.no_stdin = true;
	for (int i = 0; i < cr->count; i++) {
		int code;
		while ((code = sp_processes_start(c, &req, &p, 0)) == SP_RESOURCE_EXHAUSTED) {
			usleep(1000);
		}
		if (code != SP_OK) {
			die("Start: %s", sp_client_error(c));
		}
		strcpy(cr->ids[i], p.id);
	}
	sp_client_free(c);
	return (NULL);
}

static int
cmd_scale_ours(const char *url, int records, int calls)
{
	char(*ids)[32] = calloc((size_t)records, 32);
	creator cr[4];
	double *lat = malloc(sizeof(double) * (size_t)calls);
	double lp50, lp99, gp50, gp99;
	sp_client *c = connect_ours(url);
	sandproc_v1_ListRequest lreq;
	sandproc_v1_ListReply *lrep = malloc(sizeof(*lrep));
	sandproc_v1_GetRequest greq;
	sandproc_v1_Process p;

	double t0 = now_s();
	for (int i = 0; i < 4; i++) {
		cr[i].url = url;
		cr[i].count = records / 4;
		cr[i].ids = ids + i * (records / 4);
		pthread_create(&cr[i].th, NULL, create_ours_main, &cr[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(cr[i].th, NULL);
	}
	double create_secs = now_s() - t0;
	memset(&lreq, 0, sizeof(lreq));
	for (int i = 0; i < calls; i++) {
		double s = now_s();
		if (sp_processes_list(c, &lreq, lrep, 0) != SP_OK || lrep->processes_count == 0) {
			die("List: %s", sp_client_error(c));
		}
		lat[i] = now_s() - s;
	}
	percentiles(lat, calls, &lp50, &lp99);
	memset(&greq, 0, sizeof(greq));
	for (int i = 0; i < calls; i++) {
		strcpy(greq.id, ids[(i * 7919) % (records / 4 * 4)]);
		double s = now_s();
		if (sp_processes_get(c, &greq, &p, 0) != SP_OK) {
			die("Get: %s", sp_client_error(c));
		}
		lat[i] = now_s() - s;
	}
	percentiles(lat, calls, &gp50, &gp99);
	printf("{\"list_p50_us\":%.1f,\"list_p99_us\":%.1f,\"get_p50_us\":%.1f,\"get_p99_us\":%.1f,"
	       "\"create_per_s\":%.1f,\"list_items\":%u}\n",
	    lp50, lp99, gp50, gp99, records / create_secs, (unsigned)lrep->processes_count);
	sp_client_free(c);
	free(lrep);
	free(lat);
	free(ids);
	return (0);
}

typedef struct peer_creator {
	const char *hostport;
	int count;
	char (*ids)[64];
	pthread_t th;
} peer_creator;

static void *
create_peer_main(void *arg)
{
	peer_creator *cr = arg;
	http h;

	http_connect(&h, cr->hostport);
	for (int i = 0; i < cr->count; i++) {
		while (!peer_create(&h, "true", cr->ids[i], 64)) {
			usleep(1000);
		}
	}
	close(h.fd);
	return (NULL);
}

static int
cmd_scale_peer(const char *hostport, int records, int calls)
{
	char(*ids)[64] = calloc((size_t)records, 64);
	peer_creator cr[4];
	double *lat = malloc(sizeof(double) * (size_t)calls);
	double lp50, lp99, gp50, gp99;
	http h;
	char path[128];

	double t0 = now_s();
	for (int i = 0; i < 4; i++) {
		cr[i].hostport = hostport;
		cr[i].count = records / 4;
		cr[i].ids = ids + i * (records / 4);
		pthread_create(&cr[i].th, NULL, create_peer_main, &cr[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(cr[i].th, NULL);
	}
	double create_secs = now_s() - t0;
	http_connect(&h, hostport);
	/* Its list has no pages: the first page is every record. */
	for (int i = 0; i < calls; i++) {
		double s = now_s();
		if (http_call(&h, "GET", "/v1/processes", NULL, NULL) != 200) {
			die("peer list failed");
		}
		lat[i] = now_s() - s;
	}
	percentiles(lat, calls, &lp50, &lp99);
	for (int i = 0; i < calls; i++) {
		snprintf(path, sizeof(path), "/v1/processes/%s", ids[(i * 7919) % (records / 4 * 4)]);
		double s = now_s();
		if (http_call(&h, "GET", path, NULL, NULL) != 200) {
			die("peer get failed");
		}
		lat[i] = now_s() - s;
	}
	percentiles(lat, calls, &gp50, &gp99);
	printf("{\"list_p50_us\":%.1f,\"list_p99_us\":%.1f,\"get_p50_us\":%.1f,\"get_p99_us\":%.1f,"
	       "\"create_per_s\":%.1f}\n",
	    lp50, lp99, gp50, gp99, records / create_secs);
	close(h.fd);
	free(lat);
	free(ids);
	return (0);
}

/* --- memory per running process ------------------------------------------------------ */

/* A "Key:   N kB" line of /proc/PID/<file>, in KiB, or -1. */
static long
proc_kb(pid_t pid, const char *file, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	if ((f = fopen(path, "r")) == NULL) {
		return (-1);
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, klen) == 0) {
			kb = atol(line + klen);
		}
	}
	fclose(f);
	return (kb);
}

static long
rss_kb(pid_t pid)
{
	return (proc_kb(pid, "status", "VmRSS:"));
}

/* Proportional set size of pid (shared pages divided among their users). */
static long
pss_kb(pid_t pid)
{
	return (proc_kb(pid, "smaps_rollup", "Pss:"));
}

/* The parent of pid: for a held process, its sandproc-holder (0 when that is the server itself). */
static pid_t
holder_of(pid_t pid, pid_t server)
{
	char path[64], buf[512];
	int ppid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL) {
		return (0);
	}
	if (fgets(buf, sizeof(buf), f) != NULL) {
		char *rp = strrchr(buf, ')');
		if (rp != NULL) {
			sscanf(rp + 2, "%*c %d", &ppid);
		}
	}
	fclose(f);
	return (ppid == (int)server ? 0 : (pid_t)ppid);
}

static int
cmd_memory_ours(const char *url, pid_t server, int n)
{
	sp_client *c = connect_ours(url);
	static const char *argv[] = { "sleep", "600", NULL };
	sandproc_v1_StartRequest req;
	sandproc_v1_Process p;
	char(*ids)[32] = calloc((size_t)n, 32);

	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	usleep(300000);
	long before = rss_kb(server);
	for (int i = 0; i < n; i++) {
		if (sp_processes_start(c, &req, &p, 0) != SP_OK) {
			die("Start: %s", sp_client_error(c));
		}
		strcpy(ids[i], p.id);
	}
	usleep(500000);
	long after = rss_kb(server);
	/* Held processes cost their holders too: those count, whole (PSS: shared pages divided). */
	long holders_kb = 0;
	int held = 0;
	for (int i = 0; i < n; i++) {
		sandproc_v1_GetRequest g = { 0 };
		strcpy(g.id, ids[i]);
		pid_t h;
		if (sp_processes_get(c, &g, &p, 0) == SP_OK && (h = holder_of((pid_t)p.pid, server)) > 0) {
			long k = pss_kb(h);
			holders_kb += k > 0 ? k : 0;
			held++;
		}
	}
	for (int i = 0; i < n; i++) {
		sandproc_v1_KillRequest k = { 0 };
		strcpy(k.id, ids[i]);
		k.wait_ms = 5000;
		sp_processes_kill(c, &k, &p, 10000);
	}
	printf("{\"rss_before_kb\":%ld,\"rss_after_kb\":%ld,\"held\":%d,\"holder_pss_kb\":%.2f,"
	       "\"kb_per_process\":%.2f}\n",
	    before, after, held, held ? (double)holders_kb / held : 0.0,
	    (double)(after - before + holders_kb) / n);
	sp_client_free(c);
	free(ids);
	return (0);
}

static int
cmd_memory_peer(const char *hostport, pid_t server, int n)
{
	http h;
	char(*ids)[64] = calloc((size_t)n, 64);
	char path[128];

	http_connect(&h, hostport);
	usleep(300000);
	long before = rss_kb(server);
	for (int i = 0; i < n; i++) {
		if (!peer_create(&h, "exec sleep 600", ids[i], 64)) {
			die("peer create failed");
		}
	}
	usleep(500000);
	long after = rss_kb(server);
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/v1/processes/%s/kill?waitMs=5000", ids[i]);
		http_call(&h, "POST", path, "{}", NULL);
		snprintf(path, sizeof(path), "/v1/processes/%s", ids[i]);
		http_call(&h, "DELETE", path, NULL, NULL);
	}
	printf("{\"rss_before_kb\":%ld,\"rss_after_kb\":%ld,\"kb_per_process\":%.2f}\n", before, after,
	    (double)(after - before) / n);
	close(h.fd);
	free(ids);
	return (0);
}

/* --- sandboxes: create to ready, delete, memory; and a bare bubblewrap loop ------ */

/* The parent of pid from /proc/pid/stat. */
static pid_t
ppid_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (f == NULL || fgets(buf, sizeof(buf), f) == NULL) {
		if (f != NULL) {
			fclose(f);
		}
		return (0);
	}
	fclose(f);
	const char *p = strrchr(buf, ')');
	int pp = 0;
	char st;
	return (p != NULL && sscanf(p + 2, "%c %d", &st, &pp) == 2 ? (pid_t)pp : 0);
}

/* PSS of a keeper: bubblewrap's outer process, its init and the init's children. */
static long
keeper_pss_kb(pid_t init)
{
	char path[96], kids[512];
	long kb = pss_kb(init) + pss_kb(ppid_of(init));
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)init, (int)init);
	FILE *f = fopen(path, "re");
	if (f != NULL) {
		if (fgets(kids, sizeof(kids), f) != NULL) {
			for (char *s = kids, *e; *s != '\0'; s = e) {
				long k = strtol(s, &e, 10);
				if (e == s) {
					break;
				}
				kb += pss_kb((pid_t)k);
			}
		}
		fclose(f);
	}
	return (kb);
}

static int
cmd_sandbox_create(const char *url, int n, pid_t server)
{
	sp_client *c = connect_ours(url);
	double *create = calloc((size_t)n, sizeof(double)), *del = calloc((size_t)n, sizeof(double));
	char(*ids)[32] = calloc((size_t)n, 32);
	pid_t *pids = calloc((size_t)n, sizeof(pid_t));
	long rss0 = rss_kb(server), keepers = 0;

	for (int i = 0; i < n; i++) {
		sandproc_v1_CreateSandboxRequest req;
		sandproc_v1_Sandbox rep;
		sandproc_v1_ReadinessReply r;
		memset(&req, 0, sizeof(req));
		double t0 = now_s();
		int code = sp_sandboxes_create(c, &req, &rep, 30000);
		if (code != SP_OK || sp_sandbox_wait_ready(c, rep.id, 30, &r) != SP_OK || !r.ready) {
			die("create: %s", sp_client_error(c));
		}
		create[i] = now_s() - t0;
		snprintf(ids[i], 32, "%s", rep.id);
		pids[i] = rep.pid;
	}
	long rss1 = rss_kb(server);
	for (int i = 0; i < n; i++) {
		keepers += keeper_pss_kb(pids[i]);
	}
	for (int i = 0; i < n; i++) {
		sandproc_v1_DeleteSandboxRequest req;
		sandproc_v1_DeleteSandboxReply rep;
		memset(&req, 0, sizeof(req));
		snprintf(req.id, sizeof(req.id), "%s", ids[i]);
		double t0 = now_s();
		if (sp_sandboxes_delete(c, &req, &rep, 30000) != SP_OK) {
			die("delete: %s", sp_client_error(c));
		}
		del[i] = now_s() - t0;
	}
	double c50, c99, d50, d99;
	percentiles(create, n, &c50, &c99);
	percentiles(del, n, &d50, &d99);
	printf("{\"create_p50_ms\":%.2f,\"create_p99_ms\":%.2f,\"delete_p50_ms\":%.2f,\"delete_p99_ms\":%.2f,"
	       "\"server_kb_per_sandbox\":%.1f,\"keeper_pss_kb\":%.1f}\n",
	    c50 / 1000, c99 / 1000, d50 / 1000, d99 / 1000, (double)(rss1 - rss0) / n, (double)keepers / n);
	sp_client_free(c);
	free(create);
	free(del);
	free(ids);
	free(pids);
	return (0);
}

/* The bare cost: bubblewrap making the same namespaces and mounts around `true`. */
static int
cmd_bwrap_true(int n)
{
	char *argv[] = { "bwrap", "--unshare-all", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin",
		"/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--proc", "/proc",
		"--dev", "/dev", "--tmpfs", "/tmp", "--", "/usr/bin/true", NULL };
	double *t = calloc((size_t)n, sizeof(double));
	extern char **environ;

	for (int i = 0; i < n; i++) {
		pid_t pid;
		int st;
		double t0 = now_s();
		if (posix_spawnp(&pid, "bwrap", NULL, NULL, argv, environ) != 0 ||
		    waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			die("bwrap failed");
		}
		t[i] = now_s() - t0;
	}
	double p50, p99;
	percentiles(t, n, &p50, &p99);
	printf("{\"p50_ms\":%.2f,\"p99_ms\":%.2f}\n", p50 / 1000, p99 / 1000); /* percentiles gives us */
	free(t);
	return (0);
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		die("usage: see the top of bench/sp_bench.c");
	}
	const char *cmd = argv[1];
	load l;
	memset(&l, 0, sizeof(l));
	l.arg = (const void *)(argv + 2);

	if (strcmp(cmd, "echo-server") == 0 && argc == 3) {
		return (cmd_echo_server(argv[2]));
	}
	if (strcmp(cmd, "echo") == 0 && argc == 6) {
		const char *a[] = { argv[2], argv[5] };
		l.arg = a;
		l.seconds = atof(argv[4]);
		l.setup = echo_setup, l.op = echo_op, l.teardown = echo_teardown;
		printf("{\"rate\":%.1f}\n", load_run(&l, atoi(argv[3])));
		return (0);
	}
	if ((strcmp(cmd, "health") == 0 || strcmp(cmd, "run-true") == 0) && argc == 5) {
		l.seconds = atof(argv[4]);
		l.setup = ours_setup, l.teardown = ours_teardown;
		l.op = strcmp(cmd, "health") == 0 ? health_op : run_true_op;
		double rate = load_run(&l, atoi(argv[3]));
		printf("{\"rate\":%.1f,\"errors\":%ld}\n", rate, atomic_load(&l.errors));
		return (0);
	}
	if (strcmp(cmd, "run-true-sandbox") == 0 && argc == 6) {
		bench_sandbox = argv[3];
		l.seconds = atof(argv[5]);
		l.setup = ours_setup, l.teardown = ours_teardown, l.op = run_true_sandbox_op;
		double rate = load_run(&l, atoi(argv[4]));
		printf("{\"rate\":%.1f,\"errors\":%ld}\n", rate, atomic_load(&l.errors));
		return (0);
	}
	if (strcmp(cmd, "sandbox-create") == 0 && argc == 5) {
		return (cmd_sandbox_create(argv[2], atoi(argv[3]), (pid_t)atoi(argv[4])));
	}
	if (strcmp(cmd, "bwrap-true") == 0 && argc == 3) {
		return (cmd_bwrap_true(atoi(argv[2])));
	}
	if (strcmp(cmd, "spawn-true") == 0 && argc == 4) {
		l.seconds = atof(argv[3]);
		l.setup = spawn_setup, l.op = spawn_op, l.teardown = spawn_teardown;
		printf("{\"rate\":%.1f}\n", load_run(&l, atoi(argv[2])));
		return (0);
	}
	if (strcmp(cmd, "http-get") == 0 && argc == 6) {
		const char *a[] = { argv[2], argv[3] };
		l.arg = a;
		l.seconds = atof(argv[5]);
		l.setup = http_setup, l.op = http_get_op, l.teardown = http_teardown;
		double rate = load_run(&l, atoi(argv[4]));
		printf("{\"rate\":%.1f,\"errors\":%ld}\n", rate, atomic_load(&l.errors));
		return (0);
	}
	if (strcmp(cmd, "http-post") == 0 && argc == 7) {
		const char *a[] = { argv[2], argv[3], argv[4] };
		l.arg = a;
		l.seconds = atof(argv[6]);
		l.setup = http_setup, l.op = http_post_op, l.teardown = http_teardown;
		double rate = load_run(&l, atoi(argv[5]));
		printf("{\"rate\":%.1f,\"errors\":%ld}\n", rate, atomic_load(&l.errors));
		return (0);
	}
	if (strcmp(cmd, "capture-ours") == 0 && argc == 4) {
		return (cmd_capture_ours(argv[2], strtoull(argv[3], NULL, 10)));
	}
	if (strcmp(cmd, "capture-limit") == 0 && argc == 4) {
		return (cmd_capture_limit(strtoull(argv[2], NULL, 10), argv[3]));
	}
	if (strcmp(cmd, "capture-peer") == 0 && argc == 4) {
		return (cmd_capture_peer(argv[2], strtoull(argv[3], NULL, 10)));
	}
	if (strcmp(cmd, "fanout-ours") == 0 && argc == 7) {
		return (
		    cmd_fanout_ours(argv[2], argv[3], atoi(argv[4]), strtoull(argv[5], NULL, 10), argv[6]));
	}
	if (strcmp(cmd, "fanout-peer") == 0 && argc == 6) {
		return (cmd_fanout_peer(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10), argv[5]));
	}
	if (strcmp(cmd, "scale-ours") == 0 && argc == 5) {
		return (cmd_scale_ours(argv[2], atoi(argv[3]), atoi(argv[4])));
	}
	if (strcmp(cmd, "scale-peer") == 0 && argc == 5) {
		return (cmd_scale_peer(argv[2], atoi(argv[3]), atoi(argv[4])));
	}
	if (strcmp(cmd, "memory-ours") == 0 && argc == 5) {
		return (cmd_memory_ours(argv[2], (pid_t)atoi(argv[3]), atoi(argv[4])));
	}
	if (strcmp(cmd, "memory-peer") == 0 && argc == 5) {
		return (cmd_memory_peer(argv[2], (pid_t)atoi(argv[3]), atoi(argv[4])));
	}
	die("unknown or incomplete command \"%s\" (see the top of bench/sp_bench.c)", cmd);
}
