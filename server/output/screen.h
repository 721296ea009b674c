/*
 * A terminal screen for a TTY process: a libtsm screen + vte fed with every
 * byte of its PTY output, so Screen can answer with what a terminal would
 * show. Terminal replies from the vte (cursor position reports and the
 * like) go to the reply callback, which writes them back to the PTY.
 * Thread-safe.
 */
#ifndef SCREEN_H
#define SCREEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "output/sink.h"
#include "sandproc/v1/processes.pb.h"
#include "sp_pb.h"

/*
 * Largest terminal kept: each side at most SCREEN_MAX_SIDE, and at most
 * SCREEN_MAX_CELLS cells in all (libtsm keeps a main and an alternate
 * screen of ~32 bytes a cell: ~6.4 MB at the limit). No scrollback is kept;
 * the log has every byte.
 */
#define SCREEN_MAX_SIDE 1000
#define SCREEN_MAX_CELLS 100000

typedef struct screen screen;

typedef void (*screen_reply_fn)(void *arg, const char *data, size_t len);

int screen_new(screen **out, uint16_t cols, uint16_t rows, screen_reply_fn reply, void *arg);
/* Frees s and hands the memory back to the system. */
void screen_free(screen *s);

/* A sink feeding output and resizes to scr (owned by the caller, who frees it after the sink). */
int screen_sink_new(sink **out, screen *scr);

/* Turns terminal replies on or off (off while replaying history into a screen). */
void screen_set_replies(screen *s, bool on);

/* Feeds output through the vte; seq is the log entry it came from. */
void screen_feed(screen *s, const void *data, size_t len, uint64_t seq);

int screen_resize(screen *s, uint16_t cols, uint16_t rows);

/* The rows as text (trailing blanks trimmed), cursor and size; strings in arena. */
int screen_snapshot(screen *s, sandproc_v1_ScreenReply *out, sp_arena *arena);

#endif
