#include "events/publisher.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "sp_pb.h"

/*
 * Per-subscriber queue depth, in messages. Entries are at most 64 KiB, so
 * a stalled subscriber costs at most 16 MiB before PUB starts dropping.
 */
#define PUBLISHER_SENDBUF 256

struct publisher {
	nng_socket sock;
	atomic_ulong failures;
};

int
publisher_new(publisher **out, char *err, size_t errlen)
{
	publisher *p = calloc(1, sizeof(*p));
	int rv;

	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		return (NNG_ENOMEM);
	}
	if ((rv = nng_pub0_open(&p->sock)) != 0) {
		snprintf(err, errlen, "nng_pub0_open: %s", nng_strerror(rv));
		free(p);
		return (rv);
	}
	/* Subscribers send nothing; a small limit keeps junk out. */
	nng_socket_set_size(p->sock, NNG_OPT_RECVMAXSZ, 4096);
	nng_socket_set_int(p->sock, NNG_OPT_SENDBUF, PUBLISHER_SENDBUF);
	*out = p;
	return (0);
}

int
publisher_listen(publisher *p, const char *url, nng_tls_config *tls, char *bound, size_t boundlen, char *err,
    size_t errlen)
{
	int rv;

	/* The feed has no per-message auth: its ipc socket is for the server's user alone. */
	if ((rv = util_listen(p->sock, url, tls, 0600, bound, boundlen)) != 0) {
		snprintf(err, errlen, "events %s: %s", url, nng_strerror(rv));
		return (rv);
	}
	return (0);
}

void
publisher_close(publisher *p)
{
	if (p != NULL) {
		nng_close(p->sock);
		free(p);
	}
}

void
publisher_send(publisher *p, const char *topic, const pb_msgdesc_t *fields, const void *msg)
{
	size_t tlen, size, len;
	nng_msg *m;

	if (p == NULL) {
		return;
	}
	tlen = strlen(topic) + 1;
	if (!sp_pb_encoded_size(fields, msg, &size) || nng_msg_alloc(&m, tlen + size) != 0) {
		atomic_fetch_add(&p->failures, 1);
		return;
	}
	memcpy(nng_msg_body(m), topic, tlen);
	if (!sp_pb_encode(fields, msg, (char *)nng_msg_body(m) + tlen, size, &len, NULL)) {
		atomic_fetch_add(&p->failures, 1);
		nng_msg_free(m);
		return;
	}
	if (nng_sendmsg(p->sock, m, NNG_FLAG_NONBLOCK) != 0) {
		nng_msg_free(m);
	}
}

unsigned long
publisher_failures(publisher *p)
{
	return (p != NULL ? atomic_load(&p->failures) : 0);
}
