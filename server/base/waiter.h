/*
 * A waiter: one party's interest in an event another subsystem owns (a
 * process ending, new output, a sandbox becoming ready). The owner keeps
 * waiters on lists under its own lock; when the event happens it unlinks
 * each and calls wake, which must not block (it only queues work). The
 * waiting side may give up first: detach, set by the owner when it links
 * the waiter, unlinks it if it is still linked.
 */
#ifndef BASE_WAITER_H
#define BASE_WAITER_H

#include <stdbool.h>

typedef struct waiter waiter;

struct waiter {
	waiter *next, *prev; /* on the owner's list, under the owner's lock */
	bool linked;
	/* Set by the waiting side; called by the owner, unlinked, lock held. */
	void (*wake)(waiter *w);
	/* Set by the owner: unlinks w if still linked (takes the owner's lock). */
	void (*detach)(waiter *w);
	void *owner;      /* the owner's, for detach: must outlive every waiter (a table, not an entry) */
	void *owner_data; /* the owner's, valid only while linked */
	void *arg;        /* the waiting side's, for wake */
};

/* A list of waiters; the owner holds its own lock around every call. */
typedef struct waitlist {
	waiter *head;
} waitlist;

static inline void
waitlist_add(waitlist *l, waiter *w)
{
	w->prev = NULL;
	w->next = l->head;
	if (l->head != NULL) {
		l->head->prev = w;
	}
	l->head = w;
	w->linked = true;
}

static inline void
waitlist_remove(waitlist *l, waiter *w)
{
	if (!w->linked) {
		return;
	}
	if (w->prev != NULL) {
		w->prev->next = w->next;
	} else {
		l->head = w->next;
	}
	if (w->next != NULL) {
		w->next->prev = w->prev;
	}
	w->next = w->prev = NULL;
	w->linked = false;
}

/* Unlinks every waiter and wakes it (owner's lock held). */
static inline void
waitlist_wake_all(waitlist *l)
{
	while (l->head != NULL) {
		waiter *w = l->head;
		waitlist_remove(l, w);
		w->wake(w);
	}
}

#endif
