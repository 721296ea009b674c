/*
 * libFuzzer: any bytes as a TTY's output into a libtsm screen (its size
 * and resizes chosen by the input), with snapshots between: the terminal
 * input path Screen, attach and screen rebuilds depend on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "output/screen.h"

static size_t fz_replies;

static void
fz_reply(void *arg, const char *data, size_t len)
{
	(void)arg;
	(void)data;
	fz_replies += len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sandproc_v1_ScreenReply rep;
	sp_arena *a;
	screen *s;

	if (size < 4) {
		return (0);
	}
	uint16_t cols = (uint16_t)(1 + data[0] % 200), rows = (uint16_t)(1 + data[1] % 60);
	if (screen_new(&s, cols, rows, fz_reply, NULL) != 0) {
		return (0);
	}
	a = sp_arena_new();
	size_t half = (size - 4) / 2;
	screen_feed(s, data + 4, half, 1);
	if (screen_snapshot(s, &rep, a) != 0 || rep.lines.n != rows) {
		abort();
	}
	screen_resize(s, (uint16_t)(1 + data[2] % 200), (uint16_t)(1 + data[3] % 60));
	screen_feed(s, data + 4 + half, size - 4 - half, 2);
	sp_arena_reset(a);
	if (screen_snapshot(s, &rep, a) != 0 || rep.sequence != 2) {
		abort();
	}
	screen_free(s);
	sp_arena_free(a);
	return (0);
}
