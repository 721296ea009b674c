/*
 * The per-process log file format, shared by its writers (logfile.c, in the
 * server and in holders) and its reader (logread.c).
 *
 * On disk each entry is a 28-byte little-endian header then the data:
 *   u32 magic "SPLG", u32 length, u64 sequence, i64 timestamp_ms,
 *   u8 stream, 3 bytes zero.
 * A reader stops at a header that is torn or whose data is not all there
 * yet: only whole entries are ever returned. Process <id>'s entries live in
 * <dir>/<id>.log and, once it rolled, <dir>/<id>.log.1.
 */
#ifndef OUTPUT_LOGFORMAT_H
#define OUTPUT_LOGFORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_MAGIC 0x474c5053u /* "SPLG" */
#define LOG_HDR 28
#define LOG_MAX_ENTRY (16u * 1024 * 1024)

typedef struct log_hdr {
	uint32_t len;
	uint64_t seq;
	int64_t ts;
	uint8_t stream;
} log_hdr;

void logformat_put_hdr(uint8_t *p, uint32_t len, uint64_t seq, int64_t ts, uint8_t stream);
/* False when p is not a whole, sane header. */
bool logformat_parse_hdr(const uint8_t *p, log_hdr *h);

/* Called for each entry; false stops the walk there. */
typedef bool (*log_visit_fn)(void *arg, const log_hdr *h, int file, uint64_t data_off);

/*
 * Walks the whole entries of an open log file from offset from (0, or just
 * past an entry), calling fn for each header (with its data offset). A
 * buffered reader: small entries cost no syscall each, large ones are
 * skipped with a seek. Returns the offset just past the last whole entry
 * (or, when fn stopped it, the offset of the entry it stopped at).
 */
uint64_t logformat_scan(int fd, int file, uint64_t from, log_visit_fn fn, void *arg);

#endif
