/*
 * Ports and conditions: listeners found in a sandbox (and on the host)
 * with the right pid and process, exposed (automatically for every-address
 * binds, by hand for loopback ones), bytes forwarded exactly (1 MiB, 20
 * connections at once, half-close), exposures ending with their port, feed
 * events, and WaitFor on a port, a log line (before and after the call)
 * and an exit. Sandboxed parts need root and bubblewrap (skipped without).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>

#include "harness.h"
#include "sandproc/v1/events.pb.h"

static th_server srv;
static bool can_sandbox;

static void
ensure(void)
{
	if (srv.pid <= 0) {
		th_server_start(&srv, false);
	}
}

/* A ready sandbox (expose "auto" or "manual") with the test child in its workspace as ./testchild. */
static void
sbx_make(const char *expose, sandproc_v1_Sandbox *out)
{
	sandproc_v1_CreateSandboxRequest req;
	sandproc_v1_ReadinessReply r;
	char dst[600];

	memset(&req, 0, sizeof(req));
	snprintf(req.expose, sizeof(req.expose), "%s", expose);
	CHECK_OK(srv.c, sp_sandboxes_create(srv.c, &req, out, 30000));
	CHECK_OK(srv.c, sp_sandbox_wait_ready(srv.c, out->id, 30, &r));
	CHECK(r.ready);
	snprintf(dst, sizeof(dst), "cp '%s' '%s/testchild' && chmod 755 '%s/testchild'", th_testchild,
	    out->workspace, out->workspace);
	CHECK_INT(system(dst), 0);
}

static void
sbx_rm(const char *id)
{
	sandproc_v1_DeleteSandboxRequest req;
	sandproc_v1_DeleteSandboxReply rep;

	memset(&req, 0, sizeof(req));
	snprintf(req.id, sizeof(req.id), "%s", id);
	req.grace_ms = 1000;
	CHECK_OK(srv.c, sp_sandboxes_delete(srv.c, &req, &rep, 20000));
}

/* Starts argv in sandbox sbx ("" = the host) with stdin open. */
static void
start_in(const char *sbx, const char *const *argv, sandproc_v1_Process *out)
{
	sandproc_v1_StartRequest req;

	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	snprintf(req.sandbox_id, sizeof(req.sandbox_id), "%s", sbx);
	CHECK_OK(srv.c, sp_processes_start(srv.c, &req, out, 0));
}

static void
send_line(const char *id, const char *text)
{
	sandproc_v1_SendInputRequest in;
	sandproc_v1_SendInputReply r;

	memset(&in, 0, sizeof(in));
	snprintf(in.id, sizeof(in.id), "%s", id);
	in.data = sp_bytes_of_str(text);
	CHECK_OK(srv.c, sp_processes_send_input(srv.c, &in, &r, 0));
}

static int
wait_for(sp_client *c, const char *id, uint32_t port, const char *log, bool from_start, uint32_t timeout_ms,
    sandproc_v1_WaitForReply *rep)
{
	sandproc_v1_WaitForRequest req;

	memset(&req, 0, sizeof(req));
	snprintf(req.id, sizeof(req.id), "%s", id);
	req.port = port;
	req.log = log;
	req.from_start = from_start;
	req.timeout_ms = timeout_ms;
	return (sp_processes_wait_for(c, &req, rep, (int)timeout_ms + 10000));
}

/* The port a "listening N" line names, waiting for the line (the child prints it after listen()). */
static int
listening_port(const char *id)
{
	sandproc_v1_WaitForReply rep;

	CHECK_OK(srv.c, wait_for(srv.c, id, 0, "^listening [0-9]+$", true, 10000, &rep));
	CHECK_STR(rep.condition, "log");
	return (rep.line != NULL ? atoi(rep.line + strlen("listening ")) : -1);
}

/* The open port record of sbx with port, from List (false when not listed). */
static bool
find_port(const char *sbx, uint32_t port, sandproc_v1_Port *out)
{
	sandproc_v1_ListPortsRequest req;
	sandproc_v1_ListPortsReply *rep = calloc(1, sizeof(*rep));
	bool found = false;

	memset(&req, 0, sizeof(req));
	snprintf(req.sandbox_id, sizeof(req.sandbox_id), "%s", sbx);
	CHECK_OK(srv.c, sp_ports_list(srv.c, &req, rep, 0));
	for (pb_size_t i = 0; i < rep->ports_count && !found; i++) {
		if (rep->ports[i].port == port) {
			*out = rep->ports[i];
			found = true;
		}
	}
	free(rep);
	return (found);
}

/* Polls List until port of sbx is there (want) or gone (!want), up to 10 s; whether it came to be. */
static bool
await_port(const char *sbx, uint32_t port, bool want, sandproc_v1_Port *out)
{
	sandproc_v1_Port p;
	for (int i = 0; i < 1000; i++) {
		if (find_port(sbx, port, &p) == want) {
			if (out != NULL) {
				*out = p;
			}
			return (true);
		}
		th_sleep_ms(10);
	}
	return (false);
}

/* The port of "http://127.0.0.1:N/". */
static int
url_port(const char *url)
{
	const char *c = strrchr(url, ':');
	return (strncmp(url, "http://127.0.0.1:", 17) == 0 && c != NULL ? atoi(c + 1) : -1);
}

static int
tcp_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return (-1);
	}
	return (fd);
}

static unsigned char
byte_at(size_t i, unsigned seed)
{
	return ((unsigned char)((i * 2654435761u + seed * 40503u) >> 13));
}

/*
 * Sends n bytes through port, half-closes, and reads the echo to EOF:
 * whether exactly those bytes came back.
 */
static bool
echo_roundtrip(int port, size_t n, unsigned seed)
{
	int fd = tcp_connect(port);
	unsigned char *buf = malloc(n), *got = malloc(n + 1);
	size_t sent = 0, recvd = 0;
	bool ok = fd >= 0 && buf != NULL && got != NULL;

	for (size_t i = 0; ok && i < n; i++) {
		buf[i] = byte_at(i, seed);
	}
	while (ok && sent < n) {
		ssize_t k = write(fd, buf + sent, n - sent);
		ok = k > 0;
		sent += ok ? (size_t)k : 0;
	}
	ok = ok && shutdown(fd, SHUT_WR) == 0;
	while (ok) {
		ssize_t k = read(fd, got + recvd, n + 1 - recvd);
		if (k == 0) {
			break;
		}
		ok = k > 0 && recvd + (size_t)k <= n;
		recvd += ok ? (size_t)k : 0;
	}
	ok = ok && recvd == n && memcmp(buf, got, n) == 0;
	if (fd >= 0) {
		close(fd);
	}
	free(buf);
	free(got);
	return (ok);
}

typedef struct echo_job {
	int port;
	unsigned seed;
	bool ok;
} echo_job;

static void *
echo_thread(void *arg)
{
	echo_job *j = arg;
	j->ok = echo_roundtrip(j->port, 256 * 1024 + j->seed * 1000, j->seed);
	return (NULL);
}

/* Whether a connection to port is refused (or closed before any byte of an echo comes back). */
static bool
refused(int port)
{
	int fd = tcp_connect(port);
	if (fd < 0) {
		return (true);
	}
	char c;
	shutdown(fd, SHUT_WR);
	struct pollfd p = { fd, POLLIN, 0 };
	bool r = poll(&p, 1, 2000) == 1 && read(fd, &c, 1) <= 0;
	close(fd);
	return (r);
}

/* A sandbox (expose "auto" or "manual") with `./testchild serve addr 0` running in it; the port it listens
 * on. */
static int
sbx_serve(const char *expose, const char *addr, sandproc_v1_Sandbox *a, sandproc_v1_Process *p)
{
	const char *argv[] = { "./testchild", "serve", addr, "0", NULL };

	ensure();
	sbx_make(expose, a);
	start_in(a->id, argv, p);
	return (listening_port(p->id));
}

/* Polls List until port of sbx has an exposed URL (automatic exposure comes with the scan), up to 5 s. */
static void
await_exposed(const char *sbx, uint32_t port, sandproc_v1_Port *out)
{
	for (int i = 0; i < 500 && out->exposed_url[0] == '\0'; i++) {
		th_sleep_ms(10);
		find_port(sbx, port, out);
	}
}

static void
test_sandbox_server_found_exposed_and_forwarded_exactly(void)
{
	sandproc_v1_Sandbox a;
	sandproc_v1_Process p;
	sandproc_v1_Port port;

	if (!can_sandbox) {
		return;
	}
	int n = sbx_serve("", "0.0.0.0", &a, &p);
	CHECK(n > 0);
	/* Found with its pid and process, bound to every address, so exposed by itself. */
	CHECK(await_port(a.id, (uint32_t)n, true, &port));
	CHECK_STR(port.address, "0.0.0.0");
	CHECK_INT(port.pid, p.pid);
	CHECK_STR(port.process_id, p.id);
	CHECK_STR(port.sandbox_id, a.id);
	CHECK_STR(port.state, "open");
	CHECK(port.discovered_at_ms >= p.started_at_ms);
	await_exposed(a.id, (uint32_t)n, &port);
	int host = url_port(port.exposed_url);
	CHECK(host > 0);
	/* The sandbox's network is its own: the port is not on the host's loopback. */
	CHECK(n == host || refused(n));
	/* 1 MiB there and back, byte for byte, after a half-close. */
	CHECK(echo_roundtrip(host, 1024 * 1024, 7));
	CHECK(echo_roundtrip(host, 0, 1)); /* nothing at all: EOF both ways */
	/* 20 connections at once. */
	echo_job jobs[20];
	pthread_t t[20];
	for (unsigned i = 0; i < 20; i++) {
		jobs[i] = (echo_job){ host, i + 1, false };
		pthread_create(&t[i], NULL, echo_thread, &jobs[i]);
	}
	for (int i = 0; i < 20; i++) {
		pthread_join(t[i], NULL);
		CHECK(jobs[i].ok);
	}
	/* Closing the port removes it and ends the exposure. */
	send_line(p.id, "close\n");
	CHECK(th_logs_wait(srv.c, p.id, 0, "closed"));
	CHECK(await_port(a.id, (uint32_t)n, false, NULL));
	CHECK(refused(host));
	th_kill(&srv, p.id, &p);
	sbx_rm(a.id);
}

static void
test_python_http_server_file_byte_exact(void)
{
	sandproc_v1_Sandbox a;
	sandproc_v1_Process p;
	sandproc_v1_Port port;
	sandproc_v1_WaitForReply w;
	const char *argv[] = { "python3", "-u", "-m", "http.server", "0", "--bind", "0.0.0.0", NULL };
	char path[600];

	if (!can_sandbox || access("/usr/bin/python3", X_OK) != 0) {
		printf("  (skipped: no /usr/bin/python3)\n");
		return;
	}
	ensure();
	sbx_make("", &a);
	/* 1 MiB of bytes of every value, readable by the sandbox's user. */
	size_t n = 1024 * 1024;
	unsigned char *blob = malloc(n);
	for (size_t i = 0; i < n; i++) {
		blob[i] = byte_at(i, 3);
	}
	snprintf(path, sizeof(path), "%s/blob", a.workspace);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL && fwrite(blob, 1, n, f) == n);
	fclose(f);
	chmod(path, 0644);
	start_in(a.id, argv, &p);
	CHECK_OK(srv.c, wait_for(srv.c, p.id, 0, "port [0-9]+", true, 20000, &w));
	CHECK_STR(w.condition, "log");
	const char *at = w.line != NULL ? strstr(w.line, "port ") : NULL;
	int inside = at != NULL ? atoi(at + 5) : -1;
	CHECK(inside > 0);
	/* Its pid and process, and its address, as found; then exposed (at once or soon). */
	CHECK(await_port(a.id, (uint32_t)inside, true, &port));
	CHECK_INT(port.pid, p.pid);
	CHECK_STR(port.process_id, p.id);
	await_exposed(a.id, (uint32_t)inside, &port);
	int fd = tcp_connect(url_port(port.exposed_url));
	CHECK(fd >= 0);
	const char *get = "GET /blob HTTP/1.0\r\n\r\n";
	CHECK(write(fd, get, strlen(get)) == (ssize_t)strlen(get));
	size_t cap = n + 65536, len = 0;
	char *resp = malloc(cap);
	for (ssize_t k; (k = read(fd, resp + len, cap - len)) > 0;) {
		len += (size_t)k;
	}
	close(fd);
	char *body = memmem(resp, len, "\r\n\r\n", 4);
	CHECK(strncmp(resp, "HTTP/1.0 200", 12) == 0);
	CHECK(body != NULL && (size_t)(resp + len - (body + 4)) == n && memcmp(body + 4, blob, n) == 0);
	free(resp);
	free(blob);
	th_kill(&srv, p.id, &p);
	sbx_rm(a.id);
}

/* A sandbox listening on 40 ports at once gets 32 exposures, not 40 of the server's fds, and says so on
 * Expose. */
static void
test_exposures_per_sandbox_are_capped(void)
{
	sandproc_v1_Sandbox a;
	sandproc_v1_Process p;
	sandproc_v1_ListPortsRequest lr;
	sandproc_v1_ListPortsReply *rep = calloc(1, sizeof(*rep));
	const char *argv[] = { "python3", "-c",
		"import socket,time\n"
		"s=[socket.socket() for i in range(40)]\n"
		"[x.bind(('0.0.0.0',0)) or x.listen() for x in s]\n"
		"print('up', flush=True); time.sleep(60)",
		NULL };

	if (!can_sandbox || access("/usr/bin/python3", X_OK) != 0) {
		free(rep);
		return;
	}
	ensure();
	sbx_make("", &a);
	start_in(a.id, argv, &p);
	CHECK(th_logs_wait(srv.c, p.id, 0, "up"));
	memset(&lr, 0, sizeof(lr));
	snprintf(lr.sandbox_id, sizeof(lr.sandbox_id), "%s", a.id);
	int listed = 0, exposed = 0;
	uint32_t bare = 0;
	for (int i = 0; i < 500 && (listed < 40 || exposed < 32); i++) {
		th_sleep_ms(10);
		memset(rep, 0, sizeof(*rep));
		CHECK_OK(srv.c, sp_ports_list(srv.c, &lr, rep, 0));
		listed = (int)rep->ports_count;
		exposed = 0;
		for (pb_size_t k = 0; k < rep->ports_count; k++) {
			exposed += rep->ports[k].exposed_url[0] != '\0';
			bare = rep->ports[k].exposed_url[0] == '\0' ? rep->ports[k].port : bare;
		}
	}
	CHECK_INT(listed, 40);
	CHECK_INT(exposed, 32);
	sandproc_v1_ExposeRequest ex;
	sandproc_v1_Port got;
	memset(&ex, 0, sizeof(ex));
	snprintf(ex.sandbox_id, sizeof(ex.sandbox_id), "%s", a.id);
	ex.port = bare;
	CHECK_INT(sp_ports_expose(srv.c, &ex, &got, 0), SP_RESOURCE_EXHAUSTED);
	CHECK(strstr(sp_client_error(srv.c), "unexpose one first") != NULL);
	free(rep);
	th_kill(&srv, p.id, &p);
	sbx_rm(a.id);
}

static void
test_loopback_port_listed_not_exposed_until_asked(void)
{
	sandproc_v1_Sandbox a;
	sandproc_v1_Process p;
	sandproc_v1_Port port, got;
	sandproc_v1_ExposeRequest ex;
	sandproc_v1_UnexposeRequest un;

	if (!can_sandbox) {
		return;
	}
	int n = sbx_serve("", "127.0.0.1", &a, &p);
	CHECK(await_port(a.id, (uint32_t)n, true, &port));
	CHECK_STR(port.address, "127.0.0.1");
	/* A few scans later it is still not exposed. */
	th_sleep_ms(600);
	CHECK(find_port(a.id, (uint32_t)n, &port));
	CHECK_STR(port.exposed_url, "");
	memset(&ex, 0, sizeof(ex));
	snprintf(ex.sandbox_id, sizeof(ex.sandbox_id), "%s", a.id);
	ex.port = (uint32_t)n;
	CHECK_OK(srv.c, sp_ports_expose(srv.c, &ex, &got, 0));
	int host = url_port(got.exposed_url);
	CHECK(host > 0);
	CHECK(echo_roundtrip(host, 100000, 9));
	/* Exposing again gives the same address. */
	CHECK_OK(srv.c, sp_ports_expose(srv.c, &ex, &port, 0));
	CHECK_STR(port.exposed_url, got.exposed_url);
	memset(&un, 0, sizeof(un));
	snprintf(un.sandbox_id, sizeof(un.sandbox_id), "%s", a.id);
	un.port = (uint32_t)n;
	CHECK_OK(srv.c, sp_ports_unexpose(srv.c, &un, &port, 0));
	CHECK_STR(port.exposed_url, "");
	CHECK(refused(host));
	/* Nothing listens there: NOT_FOUND, saying so. */
	ex.port = 1;
	CHECK_INT(sp_ports_expose(srv.c, &ex, &port, 0), SP_NOT_FOUND);
	CHECK(strstr(sp_client_error(srv.c), "listens on port 1") != NULL);
	ex.port = 70000;
	CHECK_INT(sp_ports_expose(srv.c, &ex, &port, 0), SP_INVALID_ARGUMENT);
	snprintf(ex.sandbox_id, sizeof(ex.sandbox_id), "sbx_000000000000000000000000");
	ex.port = 80;
	CHECK_INT(sp_ports_expose(srv.c, &ex, &port, 0), SP_NOT_FOUND);
	/* The process ending ends the port. */
	th_kill(&srv, p.id, &p);
	CHECK(await_port(a.id, (uint32_t)n, false, NULL));
	sbx_rm(a.id);
}

static void
test_manual_sandbox_and_events_on_the_feed(void)
{
	sandproc_v1_Sandbox a;
	sandproc_v1_Process p;
	sandproc_v1_Port port, got;
	sandproc_v1_ExposeRequest ex;
	nng_socket sub;
	char topic[64];
	const char *argv[] = { "./testchild", "serve", "::", "0", NULL };

	if (!can_sandbox) {
		return;
	}
	ensure();
	sbx_make("manual", &a);
	CHECK(nng_sub0_open(&sub) == 0);
	snprintf(topic, sizeof(topic), "port/%s", a.id);
	CHECK(nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, topic, strlen(topic) + 1) == 0);
	CHECK(nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "proc/", 5) == 0);
	CHECK(nng_dial(sub, srv.events, NULL, 0) == 0);
	th_feed_live(&srv, sub);
	CHECK(nng_socket_set(sub, NNG_OPT_SUB_UNSUBSCRIBE, "proc/", 5) == 0);
	CHECK(nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 10000) == 0);
	start_in(a.id, argv, &p);
	int n = listening_port(p.id);
	CHECK(await_port(a.id, (uint32_t)n, true, &port));
	CHECK_STR(port.address, "::");
	th_sleep_ms(600);
	CHECK(find_port(a.id, (uint32_t)n, &port));
	CHECK_STR(port.exposed_url, ""); /* manual: every-address binds wait for Expose too */
	memset(&ex, 0, sizeof(ex));
	snprintf(ex.sandbox_id, sizeof(ex.sandbox_id), "%s", a.id);
	ex.port = (uint32_t)n;
	CHECK_OK(srv.c, sp_ports_expose(srv.c, &ex, &got, 0));
	CHECK(echo_roundtrip(url_port(got.exposed_url), 5000, 2)); /* into [::1] inside */
	th_kill(&srv, p.id, &p);
	/* open, exposed, closed, in that order. */
	const char *want[] = { "open", "exposed", "closed" };
	sp_arena *srv_arena = sp_arena_new();
	for (int i = 0; i < 3; i++) {
		nng_msg *m = NULL;
		sandproc_v1_PortEvent ev;
		if (nng_recvmsg(sub, &m, 0) != 0) {
			CHECK(!"a port event");
			break;
		}
		size_t tl = strlen(topic) + 1;
		CHECK(nng_msg_len(m) >= tl && memcmp(nng_msg_body(m), topic, tl) == 0);
		memset(&ev, 0, sizeof(ev));
		CHECK(sp_pb_decode(sandproc_v1_PortEvent_fields, &ev, sizeof(ev),
		    (const uint8_t *)nng_msg_body(m) + tl, nng_msg_len(m) - tl, srv_arena, NULL));
		CHECK_STR(ev.kind, want[i]);
		CHECK_INT(ev.port.port, n);
		CHECK_STR(ev.port.process_id, p.id);
		nng_msg_free(m);
	}
	sp_arena_free(srv_arena);
	nng_close(sub);
	sbx_rm(a.id);
}

static void
test_host_process_port_and_expose(void)
{
	sandproc_v1_Process p;
	sandproc_v1_Port port, got;
	sandproc_v1_ExposeRequest ex;
	const char *argv[] = { th_testchild, "serve", "127.0.0.1", "0", NULL };

	ensure();
	start_in("", argv, &p);
	int n = listening_port(p.id);
	CHECK(await_port("default", (uint32_t)n, true, &port));
	CHECK_INT(port.pid, p.pid);
	CHECK_STR(port.process_id, p.id);
	CHECK_STR(port.exposed_url, ""); /* on the host: never by itself */
	memset(&ex, 0, sizeof(ex));
	snprintf(ex.sandbox_id, sizeof(ex.sandbox_id), "default");
	ex.port = (uint32_t)n;
	CHECK_OK(srv.c, sp_ports_expose(srv.c, &ex, &got, 0));
	CHECK(echo_roundtrip(url_port(got.exposed_url), 300000, 4));
	/* The server's own listeners on the host are not anyone's ports. */
	sandproc_v1_ListPortsRequest lr;
	sandproc_v1_ListPortsReply *all = calloc(1, sizeof(*all));
	memset(&lr, 0, sizeof(lr));
	CHECK_OK(srv.c, sp_ports_list(srv.c, &lr, all, 0));
	for (pb_size_t i = 0; i < all->ports_count; i++) {
		CHECK(all->ports[i].pid != srv.pid);
	}
	free(all);
	th_kill(&srv, p.id, &p);
	CHECK(await_port("default", (uint32_t)n, false, NULL));
	CHECK(refused(url_port(got.exposed_url)));
}

typedef struct wait_args {
	const char *id;
	uint32_t port;
	const char *log;
	sandproc_v1_WaitForReply rep;
	char line[256]; /* rep.line's copy: the reply's strings go with the thread's client */
} wait_args;

static int
wait_call(sp_client *c, void *arg)
{
	wait_args *w = arg;
	int code = wait_for(c, w->id, w->port, w->log, false, 20000, &w->rep);
	snprintf(w->line, sizeof(w->line), "%s", w->rep.line != NULL ? w->rep.line : "");
	w->rep.line = w->line;
	return (code);
}

/* A free port on the host's loopback (bound, read, closed). */
static int
free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	close(fd);
	return (ntohs(a.sin_port));
}

static void
test_wait_for_port_returns_when_it_opens_not_before(void)
{
	sandproc_v1_Process p;
	sandproc_v1_WaitForReply rep;
	char script[512], portstr[16];

	ensure();
	snprintf(portstr, sizeof(portstr), "%d", free_port());
	snprintf(script, sizeof(script), "read go; exec '%s' serve 127.0.0.1 %s", th_testchild, portstr);
	const char *argv[] = { "sh", "-c", script, NULL };
	start_in("", argv, &p);
	/* Not listening yet: the wait times out, saying no condition held. */
	CHECK_OK(srv.c, wait_for(srv.c, p.id, (uint32_t)atoi(portstr), NULL, false, 400, &rep));
	CHECK_STR(rep.condition, "");
	CHECK_INT(rep.process.state, sandproc_v1_State_STATE_RUNNING);
	wait_args w = { .id = p.id, .port = (uint32_t)atoi(portstr) };
	th_call *t = th_call_start(&srv, wait_call, &w);
	th_sleep_ms(100);
	send_line(p.id, "go\n");
	CHECK_OK(srv.c, th_call_join(t));
	CHECK_STR(w.rep.condition, "port");
	CHECK_INT(w.rep.port, atoi(portstr));
	/* By now it listens: a connection succeeds. */
	int fd = tcp_connect(atoi(portstr));
	CHECK(fd >= 0);
	close(fd);
	th_kill(&srv, p.id, &p);
}

static void
test_wait_for_log_matches_lines_before_and_after(void)
{
	sandproc_v1_Process p;
	sandproc_v1_WaitForReply rep;
	const char *argv[] = { "sh", "-c",
		"echo 'vite ready in 120 ms'; read go; echo 'GET /later 200'; sleep 30", NULL };

	ensure();
	start_in("", argv, &p);
	CHECK(th_logs_wait(srv.c, p.id, 0, "ready in"));
	/* Written before the call: found with from_start, not without. */
	CHECK_OK(srv.c, wait_for(srv.c, p.id, 0, "ready in [0-9]+ ms", true, 5000, &rep));
	CHECK_STR(rep.condition, "log");
	CHECK_STR(rep.line, "vite ready in 120 ms");
	CHECK_OK(srv.c, wait_for(srv.c, p.id, 0, "ready in", false, 300, &rep));
	CHECK_STR(rep.condition, "");
	/* Written after the call. */
	wait_args w = { .id = p.id, .log = "^GET /later" };
	th_call *t = th_call_start(&srv, wait_call, &w);
	th_sleep_ms(100);
	send_line(p.id, "go\n");
	CHECK_OK(srv.c, th_call_join(t));
	CHECK_STR(w.rep.condition, "log");
	CHECK_STR(w.rep.line, "GET /later 200");
	/* A bad expression is INVALID_ARGUMENT, saying why. */
	CHECK_INT(wait_for(srv.c, p.id, 0, "a(b", true, 100, &rep), SP_INVALID_ARGUMENT);
	CHECK(strstr(sp_client_error(srv.c), "regular expression") != NULL);
	/* Back-references (exponential to match) are refused. */
	CHECK_INT(wait_for(srv.c, p.id, 0, "(a+)+\\1", true, 100, &rep), SP_INVALID_ARGUMENT);
	CHECK(strstr(sp_client_error(srv.c), "back-references") != NULL);
	th_kill(&srv, p.id, &p);
}

static void
test_wait_for_returns_the_exit_when_it_comes_first(void)
{
	sandproc_v1_Process p;
	sandproc_v1_WaitForReply rep;
	const char *argv[] = { "sh", "-c", "echo starting; sleep 0.2; echo 'no port after all' >&2; exit 5",
		NULL };

	ensure();
	start_in("", argv, &p);
	CHECK_OK(srv.c, wait_for(srv.c, p.id, 3000, "never printed", false, 20000, &rep));
	CHECK_STR(rep.condition, "exit");
	CHECK_INT(rep.process.state, sandproc_v1_State_STATE_EXITED);
	CHECK_INT(rep.process.exit_code, 5);
	/* A last line without its newline still matches once the process has ended. */
	const char *argv2[] = { "sh", "-c", "printf 'partial ready'", NULL };
	start_in("", argv2, &p);
	th_wait(&srv, p.id, &p);
	CHECK_OK(srv.c, wait_for(srv.c, p.id, 0, "ready$", true, 5000, &rep));
	CHECK_STR(rep.condition, "log");
	/* Unknown ids: NOT_FOUND. */
	CHECK_INT(wait_for(srv.c, "proc_000000000000000000000000", 80, NULL, false, 100, &rep), SP_NOT_FOUND);
}

/* The CLI's waiting verbs: 0 when it holds, 124 at the timeout, the process's code when it ends first. */
static void
test_cli_wait_exit_codes(void)
{
	sandproc_v1_Process p;
	char cmd[1400];
	const char *argv[] = { "sh", "-c", "echo up and ready; sleep 30", NULL };

	ensure();
	start_in("", argv, &p);
	CHECK(th_logs_wait(srv.c, p.id, 0, "ready"));
	snprintf(cmd, sizeof(cmd),
	    "SANDPROC_TOKEN=%s '%s' --server '%s' wait %s --log 'up and' >/dev/null 2>&1", srv.token, th_cli,
	    srv.url, p.id);
	CHECK_INT(WEXITSTATUS(system(cmd)), 0);
	snprintf(cmd, sizeof(cmd),
	    "SANDPROC_TOKEN=%s '%s' --server '%s' wait %s --log nope --timeout 200 >/dev/null 2>&1",
	    srv.token, th_cli, srv.url, p.id);
	CHECK_INT(WEXITSTATUS(system(cmd)), 124);
	snprintf(cmd, sizeof(cmd),
	    "SANDPROC_TOKEN=%s '%s' --server '%s' wait %s --port 1 --timeout 200 >/dev/null 2>&1", srv.token,
	    th_cli, srv.url, p.id);
	CHECK_INT(WEXITSTATUS(system(cmd)), 124);
	th_kill(&srv, p.id, &p);
	/* Ends first with 0: 1; with 3: 3; by a signal: 128+9. */
	snprintf(cmd, sizeof(cmd),
	    "SANDPROC_TOKEN=%s '%s' --server '%s' start --wait-port 1 -- sh -c 'echo bye; exit 0' "
	    "2>/dev/null",
	    srv.token, th_cli, srv.url);
	CHECK_INT(WEXITSTATUS(system(cmd)), 1);
	snprintf(cmd, sizeof(cmd),
	    "SANDPROC_TOKEN=%s '%s' --server '%s' start --wait-log never -- sh -c 'exit 3' 2>/dev/null",
	    srv.token, th_cli, srv.url);
	CHECK_INT(WEXITSTATUS(system(cmd)), 3);
	snprintf(cmd, sizeof(cmd),
	    "SANDPROC_TOKEN=%s '%s' --server '%s' start --wait-port 1 -- sh -c 'kill -9 $$' 2>/dev/null",
	    srv.token, th_cli, srv.url);
	CHECK_INT(WEXITSTATUS(system(cmd)), 137);
	/* start --wait-port prints the record once it listens. */
	int port = free_port();
	snprintf(cmd, sizeof(cmd),
	    "SANDPROC_TOKEN=%s '%s' --server '%s' start --wait-port %d --wait-timeout 10000 -- '%s' serve "
	    "127.0.0.1 %d",
	    srv.token, th_cli, srv.url, port, th_testchild, port);
	FILE *f = popen(cmd, "r");
	char line[256], id[64] = "";
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		sscanf(line, "id %63s", id);
	}
	CHECK_INT(f != NULL ? WEXITSTATUS(pclose(f)) : -1, 0);
	CHECK(strncmp(id, "proc_", 5) == 0);
	int fd = tcp_connect(port);
	CHECK(fd >= 0);
	close(fd);
	if (id[0] != '\0') {
		th_kill(&srv, id, &p);
	}
}

int
main(int argc, char **argv)
{
	static const th_test tests[] = {
		{ "test_sandbox_server_found_exposed_and_forwarded_exactly",
		    test_sandbox_server_found_exposed_and_forwarded_exactly },
		{ "test_python_http_server_file_byte_exact", test_python_http_server_file_byte_exact },
		{ "test_exposures_per_sandbox_are_capped", test_exposures_per_sandbox_are_capped },
		{ "test_loopback_port_listed_not_exposed_until_asked",
		    test_loopback_port_listed_not_exposed_until_asked },
		{ "test_manual_sandbox_and_events_on_the_feed", test_manual_sandbox_and_events_on_the_feed },
		{ "test_host_process_port_and_expose", test_host_process_port_and_expose },
		{ "test_wait_for_port_returns_when_it_opens_not_before",
		    test_wait_for_port_returns_when_it_opens_not_before },
		{ "test_wait_for_log_matches_lines_before_and_after",
		    test_wait_for_log_matches_lines_before_and_after },
		{ "test_wait_for_returns_the_exit_when_it_comes_first",
		    test_wait_for_returns_the_exit_when_it_comes_first },
		{ "test_cli_wait_exit_codes", test_cli_wait_exit_codes },
	};

	can_sandbox = geteuid() == 0 && access("/usr/bin/bwrap", X_OK) == 0;
	if (!can_sandbox) {
		printf("note: sandboxed tests skipped: they need root and bubblewrap (/usr/bin/bwrap)\n");
	}
	int rv = th_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
	th_server_cleanup(&srv);
	return (rv);
}
