/*
 * libFuzzer: any bytes as a process's log files (the current one and the
 * rolled .1, split where the first byte says), read with queries the next
 * bytes choose; then opened for appending (which drops a torn tail), one
 * entry appended, and read again: that entry must come back whole. Paged
 * forward with a cursor, the log reads as it does without one.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "output/logfile.h"
#include "output/logformat.h"
#include "output/logread.h"

static char fz_dir[] = "/tmp/sandproc-fuzzlog-XXXXXX";
static const char *fz_id = "proc_000000000000000000000042";
static sandproc_v1_LogsReply fz_rep, fz_rep2;

static bool
fz_note_order(void *arg, const log_hdr *h, int file, uint64_t data_off)
{
	uint64_t *prev = arg;
	(void)file;
	(void)data_off;
	if (h->seq <= prev[0]) {
		prev[1] = 1;
	}
	prev[0] = h->seq;
	return (true);
}

/* Whether .1 then the current file hold increasing sequences, as the writer writes them. */
static bool
fz_in_order(const char *path, const char *path1)
{
	uint64_t st[2] = { 0, 0 };
	const char *paths[2] = { path1, path };

	for (int i = 0; i < 2; i++) {
		int fd = open(paths[i], O_RDONLY);
		if (fd >= 0) {
			logformat_scan(fd, i, 0, fz_note_order, st);
			close(fd);
		}
	}
	return (st[1] == 0);
}

/*
 * Forward pages read with a cursor are exactly the pages read without one,
 * for logs in order (a cursor relies on it; a damaged log must only not crash).
 */
static void
fz_pages_agree(size_t per_page, size_t max_bytes, bool check, sp_arena *a)
{
	logfile_cursor cur = { 0 };
	uint64_t after = 0;

	for (int page = 0; page < 64; page++) {
		logfile_query q = { .after_seq = after, .max_bytes = max_bytes, .max_entries = per_page };
		logfile_query qc = q;
		qc.cursor = &cur;
		int r1 = logfile_read(fz_dir, fz_id, &q, &fz_rep, a);
		int r2 = logfile_read(fz_dir, fz_id, &qc, &fz_rep2, a);
		if (!check) {
			if (r1 != 0 || r2 != 0 || fz_rep.entries_count == 0) {
				break;
			}
			after = fz_rep.entries[fz_rep.entries_count - 1].sequence;
			sp_arena_reset(a);
			continue;
		}
		if (r1 != r2) {
			abort();
		}
		if (r1 != 0 || fz_rep.entries_count == 0) {
			break;
		}
		if (fz_rep.entries_count != fz_rep2.entries_count) {
			abort();
		}
		for (pb_size_t i = 0; i < fz_rep.entries_count; i++) {
			const sandproc_v1_LogEntry *x = &fz_rep.entries[i], *y = &fz_rep2.entries[i];
			if (x->sequence != y->sequence || x->data.len != y->data.len ||
			    (x->data.len > 0 && memcmp(x->data.data, y->data.data, x->data.len) != 0)) {
				abort();
			}
		}
		after = fz_rep.entries[fz_rep.entries_count - 1].sequence;
		sp_arena_reset(a);
		if (!fz_rep.has_more) {
			break;
		}
	}
	sp_arena_reset(a);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (mkdtemp(fz_dir) == NULL) {
		abort();
	}
	return (0);
}

static void
fz_write(const char *path, const uint8_t *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		if (n > 0 && write(fd, p, n) != (ssize_t)n) {
			abort();
		}
		close(fd);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[256], path1[256];
	sp_arena *a = sp_arena_new();
	uint64_t last = 0;
	logfile *lf;

	if (size < 6) {
		sp_arena_free(a);
		return (0);
	}
	logfile_paths(fz_dir, fz_id, path, path1, sizeof(path));
	size_t split = (size_t)data[0] * (size - 6) / 255;
	const uint8_t *body = data + 6;
	fz_write(path1, body, split);
	fz_write(path, body + split, size - 6 - split);
	logfile_query q = {
		.after_seq = data[1] % 8,
		.tail = data[2] % 5,
		.stream = (sandproc_v1_Stream)(data[3] % 5),
		.max_bytes = (size_t)1 << (data[4] % 24),
		.max_entries = 1 + data[5] % 1024,
	};
	if (logfile_read(fz_dir, fz_id, &q, &fz_rep, a) == 0) {
		for (pb_size_t i = 1; i < fz_rep.entries_count; i++) {
			if (fz_rep.entries[i].sequence <= fz_rep.entries[i - 1].sequence) {
				abort(); /* entries come in order, each once */
			}
		}
	}
	sp_arena_reset(a);
	fz_pages_agree(1 + data[5] % 8, q.max_bytes, fz_in_order(path, path1), a);
	if (logfile_open(&lf, fz_dir, fz_id, &last) == 0) {
		if (logfile_append(lf, last + 1, 1, 0, "tail", 4, 1 << 20) == 0) {
			logfile_query all = { .after_seq = last, .max_bytes = 1 << 20, .max_entries = 1024 };
			if (logfile_read(fz_dir, fz_id, &all, &fz_rep, a) != 0 || fz_rep.entries_count < 1 ||
			    fz_rep.entries[fz_rep.entries_count - 1].sequence != last + 1 ||
			    fz_rep.entries[fz_rep.entries_count - 1].data.len != 4) {
				abort(); /* what was appended after a torn tail reads back */
			}
		}
		logfile_close(lf);
	}
	logfile_remove(fz_dir, fz_id);
	sp_arena_free(a);
	return (0);
}
