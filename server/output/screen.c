#include "output/screen.h"

#include <errno.h>
#include <libtsm.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct screen {
	pthread_mutex_t mu;
	struct tsm_screen *scr;
	struct tsm_vte *vte;
	screen_reply_fn reply;
	void *arg;
	bool replies;
	uint64_t seq;
};

static void
screen_vte_write(struct tsm_vte *vte, const char *u8, size_t len, void *data)
{
	screen *s = data;
	(void)vte;
	if (s->reply != NULL && s->replies) {
		s->reply(s->arg, u8, len);
	}
}

int
screen_new(screen **out, uint16_t cols, uint16_t rows, screen_reply_fn reply, void *arg)
{
	screen *s = calloc(1, sizeof(*s));
	int rv;

	if (s == NULL) {
		return (ENOMEM);
	}
	pthread_mutex_init(&s->mu, NULL);
	s->reply = reply;
	s->arg = arg;
	s->replies = true;
	if ((rv = tsm_screen_new(&s->scr, NULL, NULL)) < 0) {
		free(s);
		return (-rv);
	}
	if ((rv = tsm_vte_new(&s->vte, s->scr, screen_vte_write, s, NULL, NULL)) < 0) {
		tsm_screen_unref(s->scr);
		free(s);
		return (-rv);
	}
	if ((rv = tsm_screen_resize(s->scr, cols ? cols : 80, rows ? rows : 24)) < 0) {
		screen_free(s);
		return (-rv);
	}
	*out = s;
	return (0);
}

void
screen_free(screen *s)
{
	if (s == NULL) {
		return;
	}
	tsm_vte_unref(s->vte);
	/* libtsm 4.0.2 leaks the scrollback on unref unless it is cleared first. */
	tsm_screen_clear_sb(s->scr);
	tsm_screen_unref(s->scr);
	pthread_mutex_destroy(&s->mu);
	free(s);
	/* libtsm allocates a screen line by line from the heap: give the pages back. */
	malloc_trim(0);
}

void
screen_set_replies(screen *s, bool on)
{
	pthread_mutex_lock(&s->mu);
	s->replies = on;
	pthread_mutex_unlock(&s->mu);
}

typedef struct screen_sink {
	sink k;
	screen *scr;
} screen_sink;

static void
screen_sink_emit(sink *k, const event *ev)
{
	screen_sink *ss = (screen_sink *)k;

	if (ev->kind == EV_OUTPUT && ev->stream == sandproc_v1_Stream_STREAM_PTY) {
		screen_feed(ss->scr, ev->data, ev->len, ev->seq);
	} else if (ev->kind == EV_RESIZED) {
		screen_resize(ss->scr, (uint16_t)ev->rec->cols, (uint16_t)ev->rec->rows);
	}
}

static void
screen_sink_free(sink *k)
{
	free(k);
}

int
screen_sink_new(sink **out, screen *scr)
{
	screen_sink *ss = calloc(1, sizeof(*ss));

	if (ss == NULL) {
		return (ENOMEM);
	}
	ss->k.emit = screen_sink_emit;
	ss->k.free = screen_sink_free;
	ss->scr = scr;
	*out = &ss->k;
	return (0);
}

void
screen_feed(screen *s, const void *data, size_t len, uint64_t seq)
{
	pthread_mutex_lock(&s->mu);
	tsm_vte_input(s->vte, data, len);
	s->seq = seq;
	pthread_mutex_unlock(&s->mu);
}

int
screen_resize(screen *s, uint16_t cols, uint16_t rows)
{
	int rv;

	pthread_mutex_lock(&s->mu);
	unsigned old_rows = tsm_screen_get_height(s->scr);
	if (rows < old_rows) {
		/*
		 * libtsm scrolls the whole difference off the top, even when the
		 * cursor is near the top and the rows below it are blank. A
		 * terminal drops rows below the cursor first: shift the content
		 * down by the rows that can go, so only the rest leaves the top.
		 */
		unsigned cx = tsm_screen_get_cursor_x(s->scr), cy = tsm_screen_get_cursor_y(s->scr);
		unsigned must = cy + 1u > rows ? cy + 1u - rows : 0;
		unsigned spare = old_rows - rows - must;
		if (spare > 0) {
			tsm_screen_scroll_down(s->scr, spare);
			tsm_screen_move_to(s->scr, cx, cy + spare);
		}
	}
	rv = tsm_screen_resize(s->scr, cols, rows);
	pthread_mutex_unlock(&s->mu);
	return (rv < 0 ? -rv : 0);
}

/* Cells are collected as code points, then each row is turned into UTF-8. */
#define SCREEN_WIDE_TAIL 0xffffffffu

typedef struct screen_grid {
	unsigned cols, rows;
	uint32_t *cells;
} screen_grid;

static int
screen_draw_cell(struct tsm_screen *con, uint64_t id, const uint32_t *ch, size_t len, unsigned int width,
    unsigned int posx, unsigned int posy, const struct tsm_screen_attr *attr, tsm_age_t age, void *data)
{
	screen_grid *g = data;
	(void)con;
	(void)id;
	(void)attr;
	(void)age;

	if (posx >= g->cols || posy >= g->rows) {
		return (0);
	}
	g->cells[posy * g->cols + posx] = len > 0 && ch[0] != 0 ? ch[0] : ' ';
	for (unsigned i = 1; i < width && posx + i < g->cols; i++) {
		g->cells[posy * g->cols + posx + i] = SCREEN_WIDE_TAIL;
	}
	return (0);
}

int
screen_snapshot(screen *s, sandproc_v1_ScreenReply *out, sp_arena *arena)
{
	screen_grid g;
	const char **lines;

	pthread_mutex_lock(&s->mu);
	g.cols = tsm_screen_get_width(s->scr);
	g.rows = tsm_screen_get_height(s->scr);
	g.cells = malloc((size_t)g.cols * g.rows * sizeof(*g.cells));
	lines = sp_arena_alloc(arena, (g.rows + 1) * sizeof(*lines));
	if (g.cells == NULL || lines == NULL) {
		pthread_mutex_unlock(&s->mu);
		free(g.cells);
		return (ENOMEM);
	}
	for (size_t i = 0; i < (size_t)g.cols * g.rows; i++) {
		g.cells[i] = ' ';
	}
	tsm_screen_draw(s->scr, screen_draw_cell, &g);
	out->cols = g.cols;
	out->rows = g.rows;
	out->cursor_x = tsm_screen_get_cursor_x(s->scr);
	out->cursor_y = tsm_screen_get_cursor_y(s->scr);
	out->cursor_visible = (tsm_screen_get_flags(s->scr) & TSM_SCREEN_HIDE_CURSOR) == 0;
	out->sequence = s->seq;
	pthread_mutex_unlock(&s->mu);

	for (unsigned y = 0; y < g.rows; y++) {
		const uint32_t *row = g.cells + (size_t)y * g.cols;
		unsigned end = g.cols;
		char *line, *p;
		while (end > 0 && (row[end - 1] == ' ' || row[end - 1] == SCREEN_WIDE_TAIL)) {
			end--;
		}
		/* At most 4 bytes of UTF-8 per code point. */
		if ((line = sp_arena_alloc(arena, (size_t)end * 4 + 1)) == NULL) {
			free(g.cells);
			return (ENOMEM);
		}
		p = line;
		for (unsigned x = 0; x < end; x++) {
			if (row[x] != SCREEN_WIDE_TAIL) {
				p += tsm_ucs4_to_utf8(row[x], p);
			}
		}
		*p = '\0';
		lines[y] = line;
	}
	lines[g.rows] = NULL;
	out->lines.v = lines;
	out->lines.n = g.rows;
	free(g.cells);
	return (0);
}
