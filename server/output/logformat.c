/* The log file format: entry headers and a scanner (see logformat.h). */
#include "output/logformat.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_SCAN_BUF (64 * 1024)

void
logformat_put_hdr(uint8_t *p, uint32_t len, uint64_t seq, int64_t ts, uint8_t stream)
{
	for (int i = 0; i < LOG_HDR; i++) {
		p[i] = 0;
	}
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t)(LOG_MAGIC >> (8 * i));
		p[4 + i] = (uint8_t)(len >> (8 * i));
	}
	for (int i = 0; i < 8; i++) {
		p[8 + i] = (uint8_t)(seq >> (8 * i));
		p[16 + i] = (uint8_t)((uint64_t)ts >> (8 * i));
	}
	p[24] = stream;
}

/* A little-endian number of n bytes. */
static uint64_t
log_get(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--) {
		v = (v << 8) | p[i];
	}
	return (v);
}

bool
logformat_parse_hdr(const uint8_t *p, log_hdr *h)
{
	if (log_get(p, 4) != LOG_MAGIC) {
		return (false);
	}
	h->len = (uint32_t)log_get(p + 4, 4);
	h->seq = log_get(p + 8, 8);
	h->ts = (int64_t)log_get(p + 16, 8);
	h->stream = p[24];
	return (h->len <= LOG_MAX_ENTRY && h->seq != 0);
}

uint64_t
logformat_scan(int fd, int file, uint64_t from, log_visit_fn fn, void *arg)
{
	uint64_t base = from, end;
	size_t have = 0, pos = 0;
	struct stat st;

	if (fstat(fd, &st) != 0) {
		return (0);
	}
	end = (uint64_t)st.st_size;
	if (end < from + LOG_HDR) {
		return (from);
	}
	/*
	 * The buffer is the heap's, not the stack's: a holder scans once, and a
	 * 64 KiB frame would leave its stack pages resident for its whole life.
	 * Short of memory, a page-sized one on the stack does the same job.
	 */
	uint8_t small[4096], *big = malloc(LOG_SCAN_BUF);
	uint8_t *buf = big != NULL ? big : small;
	size_t cap = big != NULL ? LOG_SCAN_BUF : sizeof(small), want = cap;
	uint64_t done;
	for (;;) {
		log_hdr h;
		if (have - pos < LOG_HDR) {
			/* Refill from the current offset (base + pos). */
			base += pos;
			have = 0;
			pos = 0;
			ssize_t n = pread(fd, buf, want, (off_t)base);
			if (n < LOG_HDR) {
				done = base;
				break;
			}
			have = (size_t)n;
		}
		if (!logformat_parse_hdr(buf + pos, &h)) {
			done = base + pos;
			break;
		}
		uint64_t data_off = base + pos + LOG_HDR;
		if (data_off + h.len > end) {
			done = base + pos; /* torn or still being written */
			break;
		}
		if (!fn(arg, &h, file, data_off)) {
			done = base + pos;
			break;
		}
		if (pos + LOG_HDR + h.len <= have) {
			pos += LOG_HDR + h.len;
		} else {
			/*
			 * Skip the data unread. After a big entry the next is likely
			 * big too: read a little, so scanning costs headers, not data.
			 */
			base = data_off + h.len;
			have = pos = 0;
			want = h.len >= 4096 ? 4096 : cap;
		}
	}
	free(big);
	return (done);
}
