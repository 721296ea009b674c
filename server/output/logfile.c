#include "output/logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/*
 * On disk each entry is a 28-byte little-endian header then the data:
 *   u32 magic "SPLG", u32 length, u64 sequence, i64 timestamp_ms,
 *   u8 stream, 3 bytes zero.
 * A reader stops at a header that is torn or whose data is not all there
 * yet: only whole entries are ever returned.
 */
#define LOG_MAGIC 0x474c5053u /* "SPLG" */
#define LOG_HDR 28
#define LOG_MAX_ENTRY (16u * 1024 * 1024)

struct logfile {
	char *path;  /* <dir>/<id>.log */
	char *path1; /* <dir>/<id>.log.1 */
	int fd;
	uint64_t size;
};

typedef struct log_hdr {
	uint32_t len;
	uint64_t seq;
	int64_t ts;
	uint8_t stream;
} log_hdr;

static void
log_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

static void
log_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

static uint32_t
log_get32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--) {
		v = (v << 8) | p[i];
	}
	return (v);
}

static uint64_t
log_get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--) {
		v = (v << 8) | p[i];
	}
	return (v);
}

static bool
log_parse_hdr(const uint8_t *p, log_hdr *h)
{
	if (log_get32(p) != LOG_MAGIC) {
		return (false);
	}
	h->len = log_get32(p + 4);
	h->seq = log_get64(p + 8);
	h->ts = (int64_t)log_get64(p + 16);
	h->stream = p[24];
	return (h->len <= LOG_MAX_ENTRY && h->seq != 0);
}

static void
logfile_free(logfile *lf)
{
	free(lf->path);
	free(lf->path1);
	free(lf);
}

static bool
log_paths(const char *dir, const char *id, char *path, char *path1, size_t size)
{
	int n = snprintf(path, size, "%s/%s.log", dir, id);
	int m = snprintf(path1, size, "%s/%s.log.1", dir, id);
	return (n > 0 && (size_t)n < size && m > 0 && (size_t)m < size);
}

/*
 * Walks the whole entries of an open log file, calling fn for each header
 * (with its data offset). A buffered reader: small entries cost no syscall
 * each, large ones are skipped with a seek. Returns the offset just past the
 * last whole entry.
 */
typedef void (*log_visit_fn)(void *arg, const log_hdr *h, int file, uint64_t data_off);

static uint64_t
log_scan(int fd, int file, log_visit_fn fn, void *arg)
{
	uint8_t buf[64 * 1024];
	uint64_t base = 0, end;
	size_t have = 0, pos = 0, want = sizeof(buf);
	struct stat st;

	if (fstat(fd, &st) != 0) {
		return (0);
	}
	end = (uint64_t)st.st_size;
	for (;;) {
		log_hdr h;
		if (have - pos < LOG_HDR) {
			/* Refill from the current offset (base + pos). */
			base += pos;
			have = 0;
			pos = 0;
			ssize_t n = pread(fd, buf, want, (off_t)base);
			if (n < LOG_HDR) {
				return (base);
			}
			have = (size_t)n;
		}
		if (!log_parse_hdr(buf + pos, &h)) {
			return (base + pos);
		}
		uint64_t data_off = base + pos + LOG_HDR;
		if (data_off + h.len > end) {
			return (base + pos); /* torn or still being written */
		}
		fn(arg, &h, file, data_off);
		if (pos + LOG_HDR + h.len <= have) {
			pos += LOG_HDR + h.len;
		} else {
			/*
			 * Skip the data unread. After a big entry the next is likely
			 * big too: read a little, so scanning costs headers, not data.
			 */
			base = data_off + h.len;
			have = pos = 0;
			want = h.len >= 4096 ? 4096 : sizeof(buf);
		}
	}
}

static void
log_note_last(void *arg, const log_hdr *h, int file, uint64_t data_off)
{
	uint64_t *last = arg;
	(void)file;
	(void)data_off;
	if (h->seq > *last) {
		*last = h->seq;
	}
}

int
logfile_open(logfile **out, const char *dir, const char *id, uint64_t *last_seq)
{
	logfile *lf = calloc(1, sizeof(*lf));
	uint64_t last = 0;
	int fd1;

	char path[4096], path1[4096];

	if (lf == NULL) {
		return (ENOMEM);
	}
	if (!log_paths(dir, id, path, path1, sizeof(path))) {
		free(lf);
		return (ENAMETOOLONG);
	}
	/* Exact-size copies: a running process costs what it uses. */
	lf->path = strdup(path);
	lf->path1 = strdup(path1);
	if (lf->path == NULL || lf->path1 == NULL) {
		logfile_free(lf);
		return (ENOMEM);
	}
	lf->fd = open(lf->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (lf->fd < 0) {
		int err = errno;
		logfile_free(lf);
		return (err);
	}
	/* Continue the sequence of an existing log (a process re-attached). */
	if ((fd1 = open(lf->path1, O_RDONLY | O_CLOEXEC)) >= 0) {
		log_scan(fd1, 1, log_note_last, &last);
		close(fd1);
	}
	int rfd = open(lf->path, O_RDONLY | O_CLOEXEC);
	if (rfd >= 0) {
		uint64_t good = log_scan(rfd, 0, log_note_last, &last);
		struct stat st;
		/* Drop a torn tail left by a crash so new entries stay readable. */
		if (fstat(rfd, &st) == 0 && (uint64_t)st.st_size > good) {
			if (ftruncate(lf->fd, (off_t)good) != 0) {
				good = (uint64_t)st.st_size;
			}
		}
		lf->size = good;
		close(rfd);
	}
	*last_seq = last;
	*out = lf;
	return (0);
}

static int
logfile_roll(logfile *lf)
{
	int fd;

	if (rename(lf->path, lf->path1) != 0) {
		return (errno);
	}
	fd = open(lf->path, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		return (errno);
	}
	close(lf->fd);
	lf->fd = fd;
	lf->size = 0;
	return (0);
}

int
logfile_append(logfile *lf, uint64_t seq, sandproc_v1_Stream stream, int64_t ts_ms, const void *data,
    size_t len, uint64_t max_bytes)
{
	uint8_t hdr[LOG_HDR] = { 0 };
	size_t total = LOG_HDR + len, done = 0;
	int rv;

	if (len > LOG_MAX_ENTRY) {
		return (EINVAL);
	}
	if (lf->size > 0 && lf->size + total > max_bytes && (rv = logfile_roll(lf)) != 0) {
		return (rv);
	}
	log_put32(hdr, LOG_MAGIC);
	log_put32(hdr + 4, (uint32_t)len);
	log_put64(hdr + 8, seq);
	log_put64(hdr + 16, (uint64_t)ts_ms);
	hdr[24] = (uint8_t)stream;
	while (done < total) {
		struct iovec v[2];
		int nv = 0;
		if (done < LOG_HDR) {
			v[nv++] = (struct iovec){ hdr + done, LOG_HDR - done };
		}
		size_t doff = done > LOG_HDR ? done - LOG_HDR : 0;
		if (doff < len) {
			v[nv++] = (struct iovec){ (uint8_t *)data + doff, len - doff };
		}
		ssize_t n = writev(lf->fd, v, nv);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			int err = n < 0 ? errno : EIO;
			/* Take back a partial entry so the file stays whole. */
			if (done > 0 && ftruncate(lf->fd, (off_t)lf->size) != 0) {
				lf->size += done;
			}
			return (err);
		}
		done += (size_t)n;
	}
	lf->size += total;
	return (0);
}

void
logfile_close(logfile *lf)
{
	if (lf != NULL) {
		close(lf->fd);
		logfile_free(lf);
	}
}

int
logfile_remove(const char *dir, const char *id)
{
	char path[4096], path1[4096];
	int rv = 0;

	if (!log_paths(dir, id, path, path1, sizeof(path))) {
		return (ENAMETOOLONG);
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		rv = errno;
	}
	if (unlink(path1) != 0 && errno != ENOENT) {
		rv = errno;
	}
	return (rv);
}

/* --- reading ---------------------------------------------------------------- */

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

	if (!log_paths(dir, id, path, path1, sizeof(path))) {
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
		log_scan(fds[1], 1, log_collect_one, &c);
	}
	if (fds[0] >= 0) {
		log_scan(fds[0], 0, log_collect_one, &c);
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
