/*
 * The event feed's socket: nng PUB, listening on one or more URLs. Sends
 * never block; PUB drops for subscribers that fall behind, and the client's
 * follow fills such gaps from the logs. Topics and message formats belong to
 * the sinks that publish (feed.c; see sp_topics.h).
 */
#ifndef EVENTS_PUBLISHER_H
#define EVENTS_PUBLISHER_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <pb.h>
#include <stddef.h>

typedef struct publisher publisher;

/* Opens the PUB socket (not listening yet). */
int publisher_new(publisher **out, char *err, size_t errlen);
/* Listens on url; *bound gets the URL with the real port when a tcp URL asked for port 0. */
/* Listens on url; tls for tls+tcp:// and wss:// (NULL: those fail). An ipc:// socket is 0600. */
int publisher_listen(publisher *p, const char *url, nng_tls_config *tls, char *bound, size_t boundlen,
    char *err, size_t errlen);
void publisher_close(publisher *p);

/* Publishes msg under topic (a C string; its NUL is sent after it). Best effort. */
void publisher_send(publisher *p, const char *topic, const pb_msgdesc_t *fields, const void *msg);

/* Messages that could not be sent (encoding, memory); PUB's own drops are not seen here. */
unsigned long publisher_failures(publisher *p);

#endif
