/*
 * Two intrusive containers the server uses in many places: a doubly linked
 * list (waiters, the replay cache's age order, parked calls) and a FIFO of
 * jobs (the worker pool, the store queue, the loop's posted jobs). The
 * owner does the locking. Nodes are embedded; containerof gets the holder.
 */
#ifndef BASE_LIST_H
#define BASE_LIST_H

#include <stdbool.h>
#include <stddef.h>

#define containerof(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct dnode {
	struct dnode *next, *prev;
	bool linked;
} dnode;

typedef struct dlist {
	dnode *head, *tail;
} dlist;

/* Adds n at the tail. */
static inline void
dlist_push(dlist *l, dnode *n)
{
	n->next = NULL;
	n->prev = l->tail;
	if (l->tail != NULL) {
		l->tail->next = n;
	} else {
		l->head = n;
	}
	l->tail = n;
	n->linked = true;
}

/* Removes n if it is linked. */
static inline void
dlist_remove(dlist *l, dnode *n)
{
	if (!n->linked) {
		return;
	}
	if (n->prev != NULL) {
		n->prev->next = n->next;
	} else {
		l->head = n->next;
	}
	if (n->next != NULL) {
		n->next->prev = n->prev;
	} else {
		l->tail = n->prev;
	}
	n->next = n->prev = NULL;
	n->linked = false;
}

typedef struct fnode {
	struct fnode *next;
} fnode;

typedef struct fifo {
	fnode *head, *tail;
	size_t n;
} fifo;

static inline void
fifo_push(fifo *q, fnode *n)
{
	n->next = NULL;
	if (q->tail != NULL) {
		q->tail->next = n;
	} else {
		q->head = n;
	}
	q->tail = n;
	q->n++;
}

/* The oldest node, removed; NULL when empty. */
static inline fnode *
fifo_pop(fifo *q)
{
	fnode *n = q->head;

	if (n != NULL) {
		q->head = n->next;
		if (q->head == NULL) {
			q->tail = NULL;
		}
		q->n--;
	}
	return (n);
}

#endif
