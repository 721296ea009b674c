#include "rpc/dedup.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/list.h"
#include "base/util.h"

#define DEDUP_BUCKETS 1024

typedef struct dd_entry {
	struct dd_entry *hnext;
	dnode age; /* on d->by_age, oldest first */
	dedup_key key;
	nng_msg *reply; /* NULL while in progress, or when too big */
	bool done, too_big;
	size_t bytes;
	int64_t at_ms;
} dd_entry;

struct dedup {
	pthread_mutex_t mu;
	pthread_cond_t done;
	dd_entry *table[DEDUP_BUCKETS];
	dlist by_age;
	size_t count, bytes;
	size_t max_entries, max_bytes, max_reply;
	int64_t ttl_ms;
};

uint64_t
dedup_hash(const void *data, size_t len)
{
	/* FNV-1a over 8-byte words, then the tail: fast and good enough to tell bodies apart. */
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ull ^ len;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; i < len; i++) {
		h = (h ^ p[i]) * 0x100000001b3ull;
	}
	return (h ^ (h >> 32));
}

dedup *
dedup_new(size_t max_entries, size_t max_bytes, size_t max_reply, int64_t ttl_ms)
{
	dedup *d = calloc(1, sizeof(*d));

	if (d == NULL) {
		return (NULL);
	}
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->done, NULL);
	d->max_entries = max_entries;
	d->max_bytes = max_bytes;
	d->max_reply = max_reply;
	d->ttl_ms = ttl_ms;
	return (d);
}

void
dedup_free(dedup *d)
{
	dd_entry *e;

	if (d == NULL) {
		return;
	}
	for (dnode *n = d->by_age.head, *nn; n != NULL; n = nn) {
		nn = n->next;
		e = containerof(n, dd_entry, age);
		if (e->reply != NULL) {
			nng_msg_free(e->reply);
		}
		free(e);
	}
	pthread_cond_destroy(&d->done);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

static unsigned
dd_bucket(const dedup_key *k)
{
	uint64_t h = (k->request_id ^ (k->caller * 0x9e3779b97f4a7c15ull)) * 0x9e3779b97f4a7c15ull;
	return ((unsigned)(h >> 54) % DEDUP_BUCKETS);
}

/* The entry for the caller's request id, whatever method and body it had. */
static dd_entry *
dd_find(dedup *d, const dedup_key *k)
{
	for (dd_entry *e = d->table[dd_bucket(k)]; e != NULL; e = e->hnext) {
		if (e->key.request_id == k->request_id && e->key.caller == k->caller) {
			return (e);
		}
	}
	return (NULL);
}

static void
dd_remove(dedup *d, dd_entry *e)
{
	dd_entry **pp = &d->table[dd_bucket(&e->key)];
	while (*pp != e) {
		pp = &(*pp)->hnext;
	}
	*pp = e->hnext;
	dlist_remove(&d->by_age, &e->age);
	d->count--;
	d->bytes -= e->bytes;
	if (e->reply != NULL) {
		nng_msg_free(e->reply);
	}
	free(e);
}

/* Drops the oldest finished entries while over a bound. In-progress ones stay. */
static void
dd_evict(dedup *d)
{
	int64_t now = util_mono_ms();
	dnode *n = d->by_age.head;

	while (n != NULL) {
		dd_entry *e = containerof(n, dd_entry, age);
		n = n->next;
		bool over =
		    d->count > d->max_entries || d->bytes > d->max_bytes || now - e->at_ms > d->ttl_ms;
		if (!over) {
			break;
		}
		if (e->done) {
			dd_remove(d, e);
		}
	}
}

dedup_verdict
dedup_begin(dedup *d, const dedup_key *k, nng_msg **reply, char *why, size_t whylen)
{
	dd_entry *e;
	dedup_verdict v;

	*reply = NULL;
	pthread_mutex_lock(&d->mu);
	dd_evict(d);
	if ((e = dd_find(d, k)) == NULL) {
		if ((e = calloc(1, sizeof(*e))) != NULL) {
			unsigned b = dd_bucket(k);
			e->key = *k;
			e->at_ms = util_mono_ms();
			e->hnext = d->table[b];
			d->table[b] = e;
			dlist_push(&d->by_age, &e->age);
			d->count++;
		}
		pthread_mutex_unlock(&d->mu);
		return (DEDUP_NEW);
	}
	if (e->key.method != k->method || e->key.body_hash != k->body_hash) {
		snprintf(why, whylen,
		    "request id %llu was already used for a different request in the last %lld s; use a new "
		    "id",
		    (unsigned long long)k->request_id, (long long)(d->ttl_ms / 1000));
		pthread_mutex_unlock(&d->mu);
		return (DEDUP_MISMATCH);
	}
	/* A repeat: wait for the first to finish, then answer with its reply. */
	while ((e = dd_find(d, k)) != NULL && !e->done) {
		pthread_cond_wait(&d->done, &d->mu);
	}
	if (e == NULL) {
		/* Forgotten meanwhile (it had no reply to keep): carry it out. */
		v = DEDUP_NEW;
	} else if (e->too_big) {
		snprintf(why, whylen,
		    "request id %llu was carried out once and its reply was too big to keep; it is not "
		    "carried out again",
		    (unsigned long long)k->request_id);
		v = DEDUP_TOO_BIG;
	} else if (nng_msg_dup(reply, e->reply) != 0) {
		snprintf(why, whylen, "out of memory");
		v = DEDUP_TOO_BIG;
	} else {
		v = DEDUP_REPLAY;
	}
	pthread_mutex_unlock(&d->mu);
	return (v);
}

void
dedup_finish(dedup *d, const dedup_key *k, nng_msg *reply)
{
	dd_entry *e;

	pthread_mutex_lock(&d->mu);
	if ((e = dd_find(d, k)) != NULL && !e->done) {
		if (reply == NULL) {
			/* Nothing to replay: forget it, a repeat will run again. */
			dd_remove(d, e);
		} else if (nng_msg_len(reply) > d->max_reply) {
			e->done = e->too_big = true;
		} else if (nng_msg_dup(&e->reply, reply) != 0) {
			dd_remove(d, e);
		} else {
			e->done = true;
			e->bytes = nng_msg_len(e->reply);
			d->bytes += e->bytes;
			e->at_ms = util_mono_ms();
		}
	}
	pthread_cond_broadcast(&d->done);
	dd_evict(d);
	pthread_mutex_unlock(&d->mu);
}
