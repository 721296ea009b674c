/*
 * The event feed: an nng PUB socket. Each message is "<topic>\0" followed by
 * the encoded message the topic names (see proto/sandproc/v1/events.proto):
 *   log/<id>  LogEntry,  term/<id>  TermFrame,  proc/<id>  ProcessEvent.
 * Sends never block; PUB drops for subscribers that fall behind, and the
 * client's follow fills such gaps from the logs.
 */
#ifndef PUBLISHER_H
#define PUBLISHER_H

#include <pb.h>

#include "sandproc/v1/events.pb.h"

typedef struct publisher publisher;

/* Opens the PUB socket and listens on url; *bound gets the URL with the real port. */
int publisher_open(publisher **out, const char *url, char *bound, size_t boundlen, char *err, size_t errlen);
void publisher_close(publisher *p);

/* Publishes msg under topic "<kind>/<id>". Failures are counted, not returned. */
void publisher_send(
    publisher *p, const char *kind, const char *id, const pb_msgdesc_t *fields, const void *msg);

/* Publishes a lifecycle event ("started", "exited", ...) with the record. */
void publisher_process(publisher *p, const char *kind, const sandproc_v1_Process *rec);

#endif
