/* Reading a process's log across both files, for Logs and screen rebuilds. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static bool
log_collect_one(void *arg, const log_hdr *h, int file, uint64_t data_off)
{
	log_collect *c = arg;

	if (c->q->capped && h->seq > c->q->upto_seq) {
		return (false); /* a file's entries are in order: none after this one is wanted */
	}
	if (h->seq > c->last_seq) {
		c->last_seq = h->seq;
	}
	if (h->seq <= c->q->after_seq) {
		return (true);
	}
	if (c->q->stream != sandproc_v1_Stream_STREAM_UNSPECIFIED &&
	    c->q->stream != sandproc_v1_Stream_STREAM_COMBINED && h->stream != c->q->stream) {
		return (true);
	}
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 256;
		log_ref *nr = realloc(c->refs, ncap * sizeof(*nr));
		if (nr == NULL) {
			c->oom = true;
			return (false);
		}
		c->refs = nr;
		c->cap = ncap;
	}
	c->refs[c->n++] = (log_ref){ h->seq, h->ts, data_off, h->len, h->stream, (uint8_t)file };
	return (true);
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
	uint64_t ino[2] = { 0, 0 }, from[2] = { 0, 0 };
	bool skip1 = false;
	for (int i = 0; i < 2; i++) {
		struct stat st;
		ino[i] = fds[i] >= 0 && fstat(fds[i], &st) == 0 ? (uint64_t)st.st_ino : 0;
	}
	logfile_cursor *cur = q->tail == 0 ? q->cursor : NULL;
	if (cur != NULL && cur->valid && cur->seq <= q->after_seq && cur->ino != 0) {
		/*
		 * Files hold entries in order and .1 is older: every entry before the
		 * cursor is at most its seq, so none is wanted; the scan starts there.
		 */
		if (cur->ino == ino[0]) {
			skip1 = true;
			from[0] = cur->off;
		} else if (cur->ino == ino[1]) {
			from[1] = cur->off;
		}
	}
	if (fds[1] >= 0 && !skip1) {
		logformat_scan(fds[1], 1, from[1], log_collect_one, &c);
	}
	if (fds[0] >= 0) {
		logformat_scan(fds[0], 0, from[0], log_collect_one, &c);
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
	for (size_t i = first, j; i < first + count; i = j) {
		/* Entries that follow each other in one file come in one read, headers and all. */
		uint64_t span = c.refs[i].len;
		for (j = i + 1; j < first + count && c.refs[j].file == c.refs[i].file &&
		     c.refs[j].off == c.refs[j - 1].off + c.refs[j - 1].len + LOG_HDR;
		     j++) {
			span += LOG_HDR + c.refs[j].len;
		}
		uint8_t *buf = sp_arena_alloc(arena, (size_t)span + 1);
		if (buf == NULL) {
			rv = ENOMEM;
			goto done;
		}
		if (span > 0 &&
		    pread(fds[c.refs[i].file], buf, (size_t)span, (off_t)c.refs[i].off) != (ssize_t)span) {
			rv = EIO;
			goto done;
		}
		for (size_t k = i; k < j; k++) {
			log_ref *r = &c.refs[k];
			sandproc_v1_LogEntry *e = &out->entries[out->entries_count++];
			e->sequence = r->seq;
			e->stream = (sandproc_v1_Stream)r->stream;
			e->timestamp_ms = r->ts;
			e->data.data = buf + (r->off - c.refs[i].off);
			e->data.len = r->len;
		}
	}
	if (cur != NULL && count > 0) {
		log_ref *r = &c.refs[first + count - 1];
		*cur = (logfile_cursor){ ino[r->file], r->off + r->len, r->seq, ino[r->file] != 0 };
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
