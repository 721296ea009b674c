#include "base/theap.h"

#include <errno.h>
#include <stdlib.h>

static void
theap_swap(theap *h, size_t a, size_t b)
{
	timer *t = h->v[a];
	h->v[a] = h->v[b];
	h->v[b] = t;
	h->v[a]->slot = a + 1;
	h->v[b]->slot = b + 1;
}

static void
theap_up(theap *h, size_t i)
{
	while (i > 0 && h->v[(i - 1) / 2]->at > h->v[i]->at) {
		theap_swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
theap_down(theap *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < h->n && h->v[l]->at < h->v[m]->at) {
			m = l;
		}
		if (r < h->n && h->v[r]->at < h->v[m]->at) {
			m = r;
		}
		if (m == i) {
			return;
		}
		theap_swap(h, i, m);
		i = m;
	}
}

bool
theap_cancel(theap *h, timer *t)
{
	if (t->slot == 0) {
		return (false);
	}
	size_t i = t->slot - 1;
	t->slot = 0;
	h->n--;
	if (i != h->n) {
		h->v[i] = h->v[h->n];
		h->v[i]->slot = i + 1;
		theap_up(h, i);
		theap_down(h, h->v[i]->slot - 1);
	}
	return (true);
}

int
theap_arm(theap *h, timer *t, int64_t at_ms)
{
	theap_cancel(h, t);
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		timer **v = realloc(h->v, cap * sizeof(*v));
		if (v == NULL) {
			return (ENOMEM);
		}
		h->v = v;
		h->cap = cap;
	}
	t->at = at_ms;
	h->v[h->n] = t;
	t->slot = ++h->n;
	theap_up(h, h->n - 1);
	return (0);
}

void
theap_free(theap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}
