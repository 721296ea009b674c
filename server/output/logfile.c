#include "output/logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "output/logformat.h"

struct logfile {
	char *path;  /* <dir>/<id>.log */
	char *path1; /* <dir>/<id>.log.1 */
	int fd;
	uint64_t size;
};

static void
logfile_free(logfile *lf)
{
	free(lf->path);
	free(lf->path1);
	free(lf);
}

bool
logfile_paths(const char *dir, const char *id, char *path, char *path1, size_t size)
{
	int n = snprintf(path, size, "%s/%s.log", dir, id);
	int m = snprintf(path1, size, "%s/%s.log.1", dir, id);
	return (n > 0 && (size_t)n < size && m > 0 && (size_t)m < size);
}

static bool
log_note_last(void *arg, const log_hdr *h, int file, uint64_t data_off)
{
	uint64_t *last = arg;
	(void)file;
	(void)data_off;
	if (h->seq > *last) {
		*last = h->seq;
	}
	return (true);
}

int
logfile_open(logfile **out, const char *dir, const char *id, uint64_t *last_seq)
{
	logfile *lf = calloc(1, sizeof(*lf));
	uint64_t last = 0;
	int fd1, err;

	if (lf == NULL) {
		return (ENOMEM);
	}
	/* Exact sizes, and no path buffers on the stack: a holder's stack stays as small as it began. */
	int n = snprintf(NULL, 0, "%s/%s.log", dir, id);
	if (n < 0 || n + 3 > LOGFILE_PATH_MAX) { /* as logfile_paths would refuse it */
		free(lf);
		return (ENAMETOOLONG);
	}
	lf->path = malloc((size_t)n + 1);
	lf->path1 = malloc((size_t)n + 3);
	if (lf->path == NULL || lf->path1 == NULL) {
		logfile_free(lf);
		return (ENOMEM);
	}
	snprintf(lf->path, (size_t)n + 1, "%s/%s.log", dir, id);
	snprintf(lf->path1, (size_t)n + 3, "%s/%s.log.1", dir, id);
	lf->fd = open(lf->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (lf->fd < 0) {
		err = errno;
		logfile_free(lf);
		return (err);
	}
	/* Continue the sequence of an existing log (a process re-attached). */
	if ((fd1 = open(lf->path1, O_RDONLY | O_CLOEXEC)) >= 0) {
		logformat_scan(fd1, 1, 0, log_note_last, &last);
		close(fd1);
	}
	int rfd = open(lf->path, O_RDONLY | O_CLOEXEC);
	if (rfd >= 0) {
		uint64_t good = logformat_scan(rfd, 0, 0, log_note_last, &last);
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

/*
 * Moves the current file to .1 and starts a new one. If the new one cannot
 * be made, the old one is put back, so appends go on where they were.
 */
static int
logfile_roll(logfile *lf)
{
	int fd, err;

	if (rename(lf->path, lf->path1) != 0) {
		return (errno);
	}
	fd = open(lf->path, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = errno;
		/* If even this fails, entries go on to the file now named .1. */
		(void)rename(lf->path1, lf->path);
		return (err);
	}
	close(lf->fd);
	lf->fd = fd;
	lf->size = 0;
	return (0);
}

int
logfile_append(logfile *lf, uint64_t seq, uint8_t stream, int64_t ts_ms, const void *data, size_t len,
    uint64_t max_bytes)
{
	uint8_t hdr[LOG_HDR];
	size_t total = LOG_HDR + len, done = 0;

	/* Sequence 0 is no sequence (readers skip it): one after 2^64-1 in a damaged log, say. */
	if (len > LOG_MAX_ENTRY || seq == 0) {
		return (EINVAL);
	}
	if (lf->size > 0 && lf->size + total > max_bytes) {
		logfile_roll(lf);
	}
	logformat_put_hdr(hdr, (uint32_t)len, seq, ts_ms, stream);
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

	if (!logfile_paths(dir, id, path, path1, sizeof(path))) {
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
