/*
 * Replay cache for resent requests: nng REQ resends a request after a
 * timeout or a reconnect, and a request that is not idempotent (Start, Run,
 * SendInput...) must be answered again, not carried out twice.
 *
 * An entry is keyed by the caller (the verified key, or the connection when
 * calls are not authenticated) and the request id, and remembers the method
 * and a hash of the body: a repeat must match both, so another caller's or
 * another request's reply is never handed out. Bounded in entries, bytes
 * and age; a reply too big to keep is remembered as such.
 */
#ifndef RPC_DEDUP_H
#define RPC_DEDUP_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dedup dedup;

typedef struct dedup_key {
	uint64_t caller;
	uint64_t request_id;
	const void *method;
	uint64_t body_hash;
} dedup_key;

/* max_reply: the largest reply kept; bigger ones are remembered without their bytes. */
dedup *dedup_new(size_t max_entries, size_t max_bytes, size_t max_reply, int64_t ttl_ms);
void dedup_free(dedup *d);

typedef enum dedup_verdict {
	DEDUP_NEW,      /* first time: carry it out, then dedup_finish */
	DEDUP_REPLAY,   /* a repeat: *reply is a copy of the first reply (caller owns it) */
	DEDUP_MISMATCH, /* the id was used for a different request: refuse it (why says how) */
	DEDUP_TOO_BIG,  /* a repeat whose reply was too big to keep: it is not carried out again */
} dedup_verdict;

/* A repeat that arrives while the first is carried out waits for its reply. */
dedup_verdict dedup_begin(dedup *d, const dedup_key *k, nng_msg **reply, char *why, size_t whylen);

/* Records the reply (copied) of a request begun with dedup_begin; NULL forgets it. */
void dedup_finish(dedup *d, const dedup_key *k, nng_msg *reply);

/* A hash of a request body for dedup_key. */
uint64_t dedup_hash(const void *data, size_t len);

#endif
