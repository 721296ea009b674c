/*
 * Replay cache for resent requests: nng REQ resends a request after a
 * timeout or a reconnect, and a request that is not idempotent (Start, Run,
 * SendInput...) must be answered again, not carried out twice. Keyed by the
 * envelope's request id and method; bounded in entries, bytes and age.
 */
#ifndef DEDUP_H
#define DEDUP_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct dedup dedup;

dedup *dedup_new(size_t max_entries, size_t max_bytes, int64_t ttl_ms);
void dedup_free(dedup *d);

/*
 * For a request seen for the first time returns NULL: the caller carries
 * it out and must then call dedup_finish. For a repeat returns a copy of
 * the first reply (waiting while the first is still being carried out),
 * which the caller sends and owns.
 */
nng_msg *dedup_begin(dedup *d, uint64_t request_id, const void *method);

/* Records the reply (copied) of a request begun with dedup_begin. */
void dedup_finish(dedup *d, uint64_t request_id, const void *method, nng_msg *reply);

#endif
