/*
 * The supervisor's loop thread: one epoll set over every child's fds
 * (pidfds, output pipes, PTY masters, holder sockets), deadlines, and jobs
 * posted from other threads, all run on this one thread in the order they
 * come. Callbacks must not block: what reads files or scans goes to the
 * worker pool.
 */
#ifndef PROC_LOOP_H
#define PROC_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "base/list.h"
#include "base/theap.h"

typedef struct loop loop;

/* Embedded by whoever watches an fd; fn runs on the loop thread. */
typedef struct loop_src {
	void (*fn)(struct loop_src *src, uint32_t events);
} loop_src;

typedef struct loop_job {
	fnode node;
	void (*fn)(struct loop_job *job);
} loop_job;

int loop_new(loop **out, char *err, size_t errlen);
/* Stops the thread after what it is running (posted jobs that did not run are dropped) and frees lp. */
void loop_free(loop *lp);

/* Watches fd for input (and hang-ups); 0 or an errno. */
int loop_add(loop *lp, int fd, loop_src *src);
void loop_del(loop *lp, int fd);

/*
 * Runs t->fn on the loop thread at at_ms. Arm and cancel work from any
 * thread, but a timer being fired as it is cancelled may still run once:
 * its fn re-checks what it acts on.
 */
void loop_arm(loop *lp, timer *t, int64_t at_ms);
void loop_cancel(loop *lp, timer *t);

/* Runs job->fn on the loop thread, after what is already queued. */
void loop_post(loop *lp, loop_job *job);

/* True on the loop thread. */
bool loop_on_thread(loop *lp);

#endif
