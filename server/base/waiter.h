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

#include "base/list.h"

typedef struct waiter waiter;

struct waiter {
	dnode node; /* on the owner's list, under the owner's lock */
	/* Set by the waiting side; called by the owner, unlinked, lock held. */
	void (*wake)(waiter *w);
	/* Set by the owner: unlinks w if still linked (takes the owner's lock). */
	void (*detach)(waiter *w);
	void *owner;      /* the owner's, for detach: must outlive every waiter (a table, not an entry) */
	void *owner_data; /* the owner's, valid only while linked */
	int owner_tag;    /* the owner's (which of its lists, say) */
	void *arg;        /* the waiting side's, for wake */
};

/* A list of waiters; the owner holds its own lock around every call. */
typedef dlist waitlist;

static inline bool
waiter_linked(const waiter *w)
{
	return (w->node.linked);
}

static inline void
waitlist_add(waitlist *l, waiter *w)
{
	dlist_push(l, &w->node);
}

static inline void
waitlist_remove(waitlist *l, waiter *w)
{
	dlist_remove(l, &w->node);
}

/* The first waiter of l, or NULL. */
static inline waiter *
waitlist_first(const waitlist *l)
{
	return (l->head != NULL ? containerof(l->head, waiter, node) : NULL);
}

/* Unlinks every waiter and wakes it (owner's lock held). */
static inline void
waitlist_wake_all(waitlist *l)
{
	waiter *w;

	while ((w = waitlist_first(l)) != NULL) {
		waitlist_remove(l, w);
		w->wake(w);
	}
}

#endif
