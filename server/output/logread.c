/* Reading a process's log across both files, for Logs and screen rebuilds. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "output/logformat.h"
#include "output/logread.h"

typedef struct log_ref {
	uint64_t seq;
	int64_t ts;
	uint64_t off;
	uint32_t len;
	uint8_t stream;
	uint8_t file;
} log_ref;

typedef struct log_collect {
	const logfile_query *q;
	log_ref *refs;
	size_t n, cap;
	uint64_t last_seq;
	bool oom;
} log_collect;

static void
log_collect_one(void *arg, const log_hdr *h, int file, uint64_t data_off)
{
	log_collect *c = arg;

	if (c->q->capped && h->seq > c->q->upto_seq) {
		return;
	}
	if (h->seq > c->last_seq) {
		c->last_seq = h->seq;
	}
	if (h->seq <= c->q->after_seq) {
		return;
	}
	if (c->q->stream != sandproc_v1_Stream_STREAM_UNSPECIFIED &&
	    c->q->stream != sandproc_v1_Stream_STREAM_COMBINED && h->stream != c->q->stream) {
		return;
	}
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 256;
		log_ref *nr = realloc(c->refs, ncap * sizeof(*nr));
		if (nr == NULL) {
			c->oom = true;
			return;
		}
		c->refs = nr;
		c->cap = ncap;
	}
	c->refs[c->n++] = (log_ref){ h->seq, h->ts, data_off, h->len, h->stream, (uint8_t)file };
}

static int
log_ref_cmp(const void *a, const void *b)
{
	const log_ref *x = a, *y = b;
	return (x->seq < y->seq ? -1 : x->seq > y->seq);
}

int
logfile_read(
    const char *dir, const char *id, const logfile_query *q, sandproc_v1_LogsReply *out, sp_arena *arena)
{
	char path[4096], path1[4096];
	log_collect c = { .q = q };
	int fds[2] = { -1, -1 };
	size_t first, count, bytes = 0;
	int rv = 0;

	if (!logfile_paths(dir, id, path, path1, sizeof(path))) {
		return (ENAMETOOLONG);
	}
	/*
	 * Open the current file first: if it rolls before .1 is opened, .1 is
	 * then that same file and entries are only seen twice, never missed;
	 * sorting by sequence and dropping repeats puts things right.
	 */
	fds[0] = open(path, O_RDONLY | O_CLOEXEC);
	fds[1] = open(path1, O_RDONLY | O_CLOEXEC);
	if (fds[1] >= 0) {
		logformat_scan(fds[1], 1, log_collect_one, &c);
	}
	if (fds[0] >= 0) {
		logformat_scan(fds[0], 0, log_collect_one, &c);
	}
	if (c.oom) {
		rv = ENOMEM;
		goto done;
	}
	if (c.n > 1) {
		qsort(c.refs, c.n, sizeof(*c.refs), log_ref_cmp);
	}
	size_t w = 0;
	for (size_t i = 0; i < c.n; i++) {
		if (w == 0 || c.refs[w - 1].seq != c.refs[i].seq) {
			c.refs[w++] = c.refs[i];
		}
	}
	c.n = w;

	size_t max_entries = q->max_entries;
	size_t max_bytes = q->max_bytes;
	out->last_sequence = c.last_seq;
	out->has_more = false;
	if (q->tail > 0) {
		/* The newest entries that fit, counted back from the end. */
		size_t want = q->tail < c.n ? q->tail : c.n;
		count = 0;
		while (count < want && count < max_entries &&
		    (count == 0 || bytes + c.refs[c.n - count - 1].len <= max_bytes)) {
			bytes += c.refs[c.n - count - 1].len;
			count++;
		}
		first = c.n - count;
	} else {
		first = 0;
		count = 0;
		while (count < c.n && count < max_entries &&
		    (count == 0 || bytes + c.refs[count].len <= max_bytes)) {
			bytes += c.refs[count].len;
			count++;
		}
		out->has_more = count < c.n;
	}
	out->entries_count = 0;
	for (size_t i = first; i < first + count; i++) {
		log_ref *r = &c.refs[i];
		sandproc_v1_LogEntry *e = &out->entries[out->entries_count];
		uint8_t *data = sp_arena_alloc(arena, r->len + 1);
		int fd = fds[r->file];
		if (data == NULL) {
			rv = ENOMEM;
			goto done;
		}
		if (r->len > 0 && pread(fd, data, r->len, (off_t)r->off) != (ssize_t)r->len) {
			rv = EIO;
			goto done;
		}
		e->sequence = r->seq;
		e->stream = (sandproc_v1_Stream)r->stream;
		e->timestamp_ms = r->ts;
		e->data.data = data;
		e->data.len = r->len;
		out->entries_count++;
	}
	if (out->has_more) {
		out->next_sequence = c.refs[first + count - 1].seq;
	} else {
		/* Everything up to the newest entry has been looked at. */
		out->next_sequence = c.last_seq > q->after_seq ? c.last_seq : q->after_seq;
	}
done:
	for (int i = 0; i < 2; i++) {
		if (fds[i] >= 0) {
			close(fds[i]);
		}
	}
	free(c.refs);
	return (rv);
}
