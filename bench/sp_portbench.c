/*
 * The measuring tool behind bench/run's port benches (expose_throughput,
 * port_discovery). One line of JSON on stdout per measurement.
 *
 *   sp_portbench serve ADDR PORT [TIMEFILE]
 *       listens; prints "listening PORT NS" (NS: CLOCK_REALTIME ns right
 *       after listen()) or, with TIMEFILE, writes NS there and prints
 *       nothing; then serves each connection: an 8-byte big-endian count N
 *       is answered with N bytes, until EOF.
 *   sp_portbench download PORT BYTES      one connection, BYTES asked for: MB/s
 *   sp_portbench rtt PORT N               N 64-byte requests on one connection: p50/p99 us
 *   sp_portbench connect-rtt PORT N       N times connect + one 64-byte request: p50/p99 us
 *   sp_portbench discovery URL EVENTS SANDBOX WORKSPACE N prints|silent
 *       N times: Start `./sp_portbench serve 0.0.0.0 0` in the sandbox (its
 *       copy in the workspace), time from its listen() to the port/ event
 *       that names it; Kill; wait for the "closed" event; 100 ms apart.
 *       p50/p99/max ms.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>

#include "sandproc.h"
#include "sandproc/v1/events.pb.h"

#define CHUNK (256 * 1024)

static void
die(const char *what)
{
	fprintf(stderr, "sp_portbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double
mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

static long long
real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
}

static bool
write_all(int fd, const void *p, size_t n)
{
	const char *b = p;
	while (n > 0) {
		ssize_t k = write(fd, b, n);
		if (k <= 0) {
			return (false);
		}
		b += k;
		n -= (size_t)k;
	}
	return (true);
}

static bool
read_all(int fd, void *p, size_t n)
{
	char *b = p;
	while (n > 0) {
		ssize_t k = read(fd, b, n);
		if (k <= 0) {
			return (false);
		}
		b += k;
		n -= (size_t)k;
	}
	return (true);
}

static void *
serve_conn(void *arg)
{
	int c = (int)(intptr_t)arg;
	static char zeros[CHUNK];
	uint64_t want;
	int one = 1;

	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	while (read_all(c, &want, sizeof(want))) {
		for (uint64_t left = be64toh(want); left > 0;) {
			size_t k = left < CHUNK ? (size_t)left : CHUNK;
			if (!write_all(c, zeros, k)) {
				goto out;
			}
			left -= k;
		}
	}
out:
	close(c);
	return (NULL);
}

static int cmd_serve(const char *addr, int port, const char *timefile) __attribute__((noreturn));

static int
cmd_serve(const char *addr, int port, const char *timefile)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	socklen_t len = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, addr, &a.sin_addr);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 128) != 0) {
		die("listen");
	}
	long long t = real_ns();
	getsockname(fd, (struct sockaddr *)&a, &len);
	if (timefile != NULL) {
		FILE *f = fopen(timefile, "w");
		if (f == NULL) {
			die(timefile);
		}
		fprintf(f, "%d %lld\n", ntohs(a.sin_port), t);
		fclose(f);
	} else {
		printf("listening %d %lld\n", ntohs(a.sin_port), t);
		fflush(stdout);
	}
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		pthread_t th;
		if (c >= 0 && pthread_create(&th, NULL, serve_conn, (void *)(intptr_t)c) == 0) {
			pthread_detach(th);
		} else if (c >= 0) {
			close(c);
		}
	}
}

static int
dial(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		die("connect");
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return (fd);
}

static bool
request(int fd, uint64_t n, char *buf)
{
	uint64_t be = htobe64(n);
	if (!write_all(fd, &be, sizeof(be))) {
		return (false);
	}
	for (uint64_t left = n; left > 0;) {
		ssize_t k = read(fd, buf, left < CHUNK ? (size_t)left : CHUNK);
		if (k <= 0) {
			return (false);
		}
		left -= (uint64_t)k;
	}
	return (true);
}

static int
cmd_download(int port, unsigned long long bytes)
{
	static char buf[CHUNK];
	int fd = dial(port);
	double t0 = mono_s();

	if (!request(fd, bytes, buf)) {
		die("download");
	}
	double secs = mono_s() - t0;
	close(fd);
	printf("{\"mbps\": %.1f, \"secs\": %.4f}\n", (double)bytes / 1e6 / secs, secs);
	return (0);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x < y ? -1 : x > y);
}

static void
report(double *v, int n, double scale, const char *unit)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	printf("{\"p50_%s\": %.1f, \"p99_%s\": %.1f, \"max_%s\": %.1f, \"n\": %d}\n", unit, v[n / 2] * scale,
	    unit, v[(n * 99) / 100] * scale, unit, v[n - 1] * scale, n);
}

static int
cmd_rtt(int port, int n, bool fresh)
{
	static char buf[CHUNK];
	double *v = calloc((size_t)n, sizeof(*v));
	int fd = fresh ? -1 : dial(port);

	for (int i = 0; i < n; i++) {
		double t0 = mono_s();
		if (fresh) {
			fd = dial(port);
		}
		if (!request(fd, 64, buf)) {
			die("request");
		}
		if (fresh) {
			close(fd);
		}
		v[i] = mono_s() - t0;
	}
	if (!fresh) {
		close(fd);
	}
	report(v, n, 1e6, "us");
	free(v);
	return (0);
}

/* --- discovery -------------------------------------------------------------------- */

/* The next port/ event of process id of kind, with when it arrived (realtime ns); false after 10 s. */
static bool
next_event(nng_socket sub, const char *id, const char *kind, long long *at)
{
	double until = mono_s() + 10;

	while (mono_s() < until) {
		nng_msg *m;
		if (nng_recvmsg(sub, &m, 0) != 0) {
			continue;
		}
		long long t = real_ns();
		const char *topic = nng_msg_body(m);
		size_t tl = strlen(topic) + 1;
		sandproc_v1_PortEvent ev;
		bool match = strncmp(topic, "port/", 5) == 0 &&
		    sp_pb_decode(sandproc_v1_PortEvent_fields, &ev, sizeof(ev), (const uint8_t *)topic + tl,
		        nng_msg_len(m) - tl, NULL, NULL) &&
		    strcmp(ev.kind, kind) == 0 && strcmp(ev.port.process_id, id) == 0;
		nng_msg_free(m);
		if (match) {
			*at = t;
			return (true);
		}
	}
	return (false);
}

static int
cmd_discovery(const char *url, const char *events, const char *sbx, const char *workspace, int n, bool silent)
{
	sp_client *c;
	nng_socket sub;
	char err[600], topic[64];
	double *v = calloc((size_t)n, sizeof(*v));
	int got = 0;

	if (sp_connect(&c, url, NULL, err, sizeof(err)) != SP_OK) {
		fprintf(stderr, "sp_portbench: %s\n", err);
		return (1);
	}
	snprintf(topic, sizeof(topic), "port/%s", sbx);
	if (nng_sub0_open(&sub) != 0 ||
	    nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, topic, strlen(topic) + 1) != 0 ||
	    nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 200) != 0 || nng_dial(sub, events, NULL, 0) != 0) {
		fprintf(stderr, "sp_portbench: cannot subscribe to %s\n", events);
		return (1);
	}
	usleep(300 * 1000); /* the subscription takes hold; a missed first event only costs a round */
	for (int i = 0; i < n; i++) {
		char tf[64], path[600];
		snprintf(tf, sizeof(tf), "/workspace/t.%d", i);
		const char *argv[] = { "./sp_portbench", "serve", "0.0.0.0", "0", silent ? tf : NULL, NULL };
		sandproc_v1_StartRequest req;
		sandproc_v1_Process p;
		memset(&req, 0, sizeof(req));
		req.argv = sp_strv_of(argv);
		snprintf(req.sandbox_id, sizeof(req.sandbox_id), "%s", sbx);
		if (sp_processes_start(c, &req, &p, 0) != SP_OK) {
			fprintf(stderr, "sp_portbench: start: %s\n", sp_client_error(c));
			return (1);
		}
		long long at = 0, t = 0;
		bool seen = next_event(sub, p.id, "open", &at);
		if (silent) {
			snprintf(path, sizeof(path), "%s/t.%d", workspace, i);
			FILE *f = fopen(path, "r");
			int port;
			if (f != NULL && fscanf(f, "%d %lld", &port, &t) != 2) {
				t = 0;
			}
			if (f != NULL) {
				fclose(f);
			}
			unlink(path);
		} else {
			sandproc_v1_LogsRequest lr;
			sandproc_v1_LogsReply *lp = calloc(1, sizeof(*lp));
			int port;
			memset(&lr, 0, sizeof(lr));
			snprintf(lr.id, sizeof(lr.id), "%s", p.id);
			if (sp_processes_logs(c, &lr, lp, 0) == SP_OK && lp->entries_count > 0) {
				char line[128];
				snprintf(line, sizeof(line), "%.*s", (int)lp->entries[0].data.len,
				    (const char *)lp->entries[0].data.data);
				if (sscanf(line, "listening %d %lld", &port, &t) != 2) {
					t = 0;
				}
				if (getenv("PB_DEBUG")) {
					fprintf(stderr, "output %lld ms, event %lld ms\n",
					    (long long)lp->entries[0].timestamp_ms - t / 1000000,
					    (at - t) / 1000000);
				}
			}
			free(lp);
		}
		if (seen && t > 0) {
			v[got++] = (double)(at - t) / 1e9;
		}
		sandproc_v1_KillRequest kr;
		memset(&kr, 0, sizeof(kr));
		snprintf(kr.id, sizeof(kr.id), "%s", p.id);
		kr.wait_ms = 10000;
		sp_processes_kill(c, &kr, &p, 20000);
		next_event(sub, p.id, "closed", &at);
		/* Listeners come apart, not back to back: output-asked scans are at least 50 ms apart. */
		usleep(100 * 1000);
	}
	nng_close(sub);
	sp_client_free(c);
	if (got == 0) {
		fprintf(stderr, "sp_portbench: no port event seen\n");
		return (1);
	}
	report(v, got, 1e3, "ms");
	free(v);
	return (0);
}

int
main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (strcmp(cmd, "serve") == 0 && (argc == 4 || argc == 5)) {
		return (cmd_serve(argv[2], atoi(argv[3]), argc == 5 ? argv[4] : NULL));
	}
	if (strcmp(cmd, "download") == 0 && argc == 4) {
		return (cmd_download(atoi(argv[2]), strtoull(argv[3], NULL, 10)));
	}
	if ((strcmp(cmd, "rtt") == 0 || strcmp(cmd, "connect-rtt") == 0) && argc == 4) {
		return (cmd_rtt(atoi(argv[2]), atoi(argv[3]), strcmp(cmd, "connect-rtt") == 0));
	}
	if (strcmp(cmd, "discovery") == 0 && argc == 8) {
		return (cmd_discovery(
		    argv[2], argv[3], argv[4], argv[5], atoi(argv[6]), strcmp(argv[7], "silent") == 0));
	}
	fprintf(stderr, "usage: see the comment at the top of bench/sp_portbench.c\n");
	return (2);
}
