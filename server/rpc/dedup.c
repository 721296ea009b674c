#include "rpc/dedup.h"

#include <pthread.h>
#include <stdlib.h>

#include "base/util.h"

#define DEDUP_BUCKETS 1024

typedef struct dd_entry {
	struct dd_entry *hnext;
	struct dd_entry *older, *newer; /* age order */
	uint64_t id;
	const void *method;
	nng_msg *reply; /* NULL while the first request is in progress */
	size_t bytes;
	int64_t at_ms;
} dd_entry;

struct dedup {
	pthread_mutex_t mu;
	pthread_cond_t done;
	dd_entry *table[DEDUP_BUCKETS];
	dd_entry *oldest, *newest;
	size_t count, bytes;
	size_t max_entries, max_bytes;
	int64_t ttl_ms;
};

dedup *
dedup_new(size_t max_entries, size_t max_bytes, int64_t ttl_ms)
{
	dedup *d = calloc(1, sizeof(*d));

	if (d == NULL) {
		return (NULL);
	}
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->done, NULL);
	d->max_entries = max_entries;
	d->max_bytes = max_bytes;
	d->ttl_ms = ttl_ms;
	return (d);
}

void
dedup_free(dedup *d)
{
	dd_entry *e, *next;

	if (d == NULL) {
		return;
	}
	for (e = d->oldest; e != NULL; e = next) {
		next = e->newer;
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
dd_bucket(uint64_t id)
{
	return ((unsigned)((id * 0x9e3779b97f4a7c15ull) >> 54) % DEDUP_BUCKETS);
}

static dd_entry *
dd_find(dedup *d, uint64_t id, const void *method)
{
	for (dd_entry *e = d->table[dd_bucket(id)]; e != NULL; e = e->hnext) {
		if (e->id == id && e->method == method) {
			return (e);
		}
	}
	return (NULL);
}

static void
dd_remove(dedup *d, dd_entry *e)
{
	dd_entry **pp = &d->table[dd_bucket(e->id)];
	while (*pp != e) {
		pp = &(*pp)->hnext;
	}
	*pp = e->hnext;
	if (e->older != NULL) {
		e->older->newer = e->newer;
	} else {
		d->oldest = e->newer;
	}
	if (e->newer != NULL) {
		e->newer->older = e->older;
	} else {
		d->newest = e->older;
	}
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
	dd_entry *e = d->oldest;

	while (e != NULL) {
		dd_entry *next = e->newer;
		bool over =
		    d->count > d->max_entries || d->bytes > d->max_bytes || now - e->at_ms > d->ttl_ms;
		if (!over) {
			break;
		}
		if (e->reply != NULL) {
			dd_remove(d, e);
		}
		e = next;
	}
}

nng_msg *
dedup_begin(dedup *d, uint64_t request_id, const void *method)
{
	dd_entry *e;
	nng_msg *copy = NULL;

	pthread_mutex_lock(&d->mu);
	dd_evict(d);
	if ((e = dd_find(d, request_id, method)) == NULL) {
		if ((e = calloc(1, sizeof(*e))) != NULL) {
			unsigned b = dd_bucket(request_id);
			e->id = request_id;
			e->method = method;
			e->at_ms = util_mono_ms();
			e->hnext = d->table[b];
			d->table[b] = e;
			e->older = d->newest;
			if (d->newest != NULL) {
				d->newest->newer = e;
			} else {
				d->oldest = e;
			}
			d->newest = e;
			d->count++;
		}
		pthread_mutex_unlock(&d->mu);
		return (NULL);
	}
	/* A repeat: wait for the first to finish, then answer with its reply. */
	while ((e = dd_find(d, request_id, method)) != NULL && e->reply == NULL) {
		pthread_cond_wait(&d->done, &d->mu);
	}
	if (e != NULL && nng_msg_dup(&copy, e->reply) != 0) {
		copy = NULL;
	}
	pthread_mutex_unlock(&d->mu);
	return (copy);
}

void
dedup_finish(dedup *d, uint64_t request_id, const void *method, nng_msg *reply)
{
	dd_entry *e;

	pthread_mutex_lock(&d->mu);
	if ((e = dd_find(d, request_id, method)) != NULL && e->reply == NULL) {
		if (reply == NULL || nng_msg_dup(&e->reply, reply) != 0) {
			/* Nothing to replay: forget it, a repeat will run again. */
			dd_remove(d, e);
		} else {
			e->bytes = nng_msg_len(e->reply);
			d->bytes += e->bytes;
			e->at_ms = util_mono_ms();
		}
	}
	pthread_cond_broadcast(&d->done);
	dd_evict(d);
	pthread_mutex_unlock(&d->mu);
}
