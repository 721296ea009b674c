/*
 * Small helpers used across the server: clocks, files, logging, URLs.
 */
#ifndef UTIL_H
#define UTIL_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wall-clock milliseconds since the epoch (for records). */
int64_t util_now_ms(void);

/* Monotonic milliseconds (for deadlines and durations). */
int64_t util_mono_ms(void);

/* Initializes cv on the monotonic clock (every timed wait of the server uses it). */
void util_cond_init(pthread_cond_t *cv);

/* Waits on cv for at most ms; 0, or ETIMEDOUT when the time ran out. */
int util_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms);

/* mkdir -p with mode 0700 for new directories; 0 or an errno. */
int util_mkdirs(const char *path);

/* Sets O_NONBLOCK on fd; 0 or an errno. */
int util_set_nonblock(int fd);

/* snprintf that reports truncation: true when the whole text fit. */
bool util_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* One line to stderr, prefixed "sandprocd: ". */
void util_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* url, with the real port filled in when a tcp:// URL asked for port 0. */
void util_bound_url(nng_listener l, const char *url, char *bound, size_t len);

/*
 * Listens on url with s: tls+tcp:// and wss:// with tls (NNG_ENOTSUP when
 * NULL), ipc:// sockets with mode ipc_mode (0: nng's default). bound as
 * util_bound_url. An nng error code.
 */
int util_listen(
    nng_socket s, const char *url, nng_tls_config *tls, int ipc_mode, char *bound, size_t boundlen);

/*
 * The web origins whose pages may connect to ws:// and wss:// listeners
 * (--ws-origin; set once, before listening). A WebSocket connection that
 * carries an Origin header (browsers always send one) from any other is
 * closed as it is added: WebSockets have no same-origin rule, so without
 * this any page a browser on the machine opens could read the feed. Clients
 * outside browsers send no Origin and are not affected.
 */
void util_set_ws_origins(const char *const *origins, size_t n);

#endif
