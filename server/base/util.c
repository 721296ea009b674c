#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <nng/transport/ws/websocket.h>
#include <strings.h>

#include "sp_tls.h"

int64_t
util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

int64_t
util_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

void
util_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
}

int
util_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(ms / 1000);
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	return (pthread_cond_timedwait(cv, mu, &until));
}

int
util_mkdirs(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf)) {
		return (ENAMETOOLONG);
	}
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
				return (errno);
			}
			*p = '/';
		}
	}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
		return (errno);
	}
	return (0);
}

int
util_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		return (errno);
	}
	return (0);
}

bool
util_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return (n >= 0 && (size_t)n < size);
}

void
util_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line so threads do not interleave mid-line. */
	dprintf(2, "sandprocd: %s\n", line);
}

void
util_bound_url(nng_listener l, const char *url, char *bound, size_t len)
{
	bool ws = strncmp(url, "ws://", 5) == 0 || strncmp(url, "wss://", 6) == 0;
	const char *host = strstr(url, "://");
	const char *end, *colon;
	int port = 0;

	snprintf(bound, len, "%s", url);
	if (host == NULL || (!ws && strncmp(url, "tcp", 3) != 0 && strncmp(url, "tls+tcp", 7) != 0)) {
		return;
	}
	/* The port ends the authority: tcp://h:0, ws://h:0/path. */
	host += 3;
	end = ws && strchr(host, '/') != NULL ? strchr(host, '/') : host + strlen(host);
	colon = memrchr(host, ':', (size_t)(end - host));
	if (colon != NULL && end - colon == 2 && colon[1] == '0' &&
	    nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
		snprintf(bound, len, "%.*s:%d%s", (int)(colon - url), url, port, end);
	}
}

static const char *const *util_ws_origins;
static size_t util_ws_norigins;

void
util_set_ws_origins(const char *const *origins, size_t n)
{
	util_ws_origins = origins;
	util_ws_norigins = n;
}

/* NNG_PIPE_EV_ADD_PRE on sockets with a WebSocket listener: see util_set_ws_origins. */
static void
util_ws_origin_check(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	char *origin = NULL;
	bool ok = false;

	(void)ev;
	(void)arg;
	if (nng_pipe_get_string(p, NNG_OPT_WS_REQUEST_HEADER "Origin", &origin) != 0) {
		return; /* not a WebSocket, or no Origin: not a browser page */
	}
	for (size_t i = 0; i < util_ws_norigins && !ok; i++) {
		ok = strcasecmp(origin, util_ws_origins[i]) == 0;
	}
	if (!ok) {
		util_log("refused a WebSocket connection from a page of %.200s (allow it with --ws-origin)",
		    origin);
		nng_pipe_close(p);
	}
	nng_strfree(origin);
}

int
util_listen(nng_socket s, const char *url, nng_tls_config *tls, int ipc_mode, char *bound, size_t boundlen)
{
	nng_listener l;
	int rv;

	if ((rv = nng_listener_create(&l, s, url)) != 0) {
		return (rv);
	}
	if (sp_tls_url(url)) {
		rv = tls != NULL ? nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, tls) : NNG_ENOTSUP;
	} else if (strncmp(url, "ipc://", 6) == 0 && ipc_mode != 0) {
		rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, ipc_mode);
	}
	if (rv == 0 && (strncmp(url, "ws://", 5) == 0 || strncmp(url, "wss://", 6) == 0)) {
		rv = nng_pipe_notify(s, NNG_PIPE_EV_ADD_PRE, util_ws_origin_check, NULL);
	}
	if (rv != 0 || (rv = nng_listener_start(l, 0)) != 0) {
		nng_listener_close(l);
		return (rv);
	}
	util_bound_url(l, url, bound, boundlen);
	return (0);
}
