/*
 * The seam between the supervisor (a table of processes and their state
 * machine) and how a child is held, like nng's transport ops tables: the
 * direct backend (direct.c) holds children itself, with pidfds and pipes or
 * PTYs in the supervisor's loop; other backends (a per-process holder that
 * outlives the server) plug in here. The supervisor never touches a child's
 * pid or fds except through these calls, and a backend reports what happens
 * to its children with supervisor_output and supervisor_ended (supervisor.c),
 * on the loop thread.
 */
#ifndef PROC_BACKEND_H
#define PROC_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "os/spawn.h"
#include "store/store.h"

typedef struct proc proc;
typedef struct backend backend;
typedef struct supervisor supervisor;
typedef struct loop loop;
typedef struct workq workq;

/* How a child ended, as far as the backend knows. */
typedef struct child_exit {
	bool known;        /* false: the status could not be read (not our child, or gone) */
	int wstatus;       /* waitpid status when known */
	int64_t at_ms;     /* wall clock of the end; 0 = now */
	uint64_t lost;     /* output bytes the backend could not store (one that stores output itself) */
	int lost_errno;    /* why */
	const char *why;   /* when not known: what happened, for the record's error (NULL: the default) */
	bool left_running; /* reattach: it runs but cannot be managed (why says why); the record stays running
	                    */
} child_exit;

typedef struct backend_ops {
	const char *name;
	/* The backend writes the log itself (a holder): the server's log sink is left out. */
	bool stores_output;
	/* A child joins the cgroups of its spawn_place (the direct backend's posix_spawn cannot). */
	bool joins_cgroups;
	/*
	 * Starts p's child from spec (on a worker thread). On success sets
	 * p->pid, p->origin and p->in_fd (stdin pipe, PTY master, or -1), and
	 * p->seq when it stores output itself; the child runs but is not
	 * watched yet. On failure returns an sp_status with the cause in err.
	 */
	int (*start)(backend *b, proc *p, const spawn_spec *spec, char *err, size_t errlen);
	/* Starts reading p's output and watching its end (after its start event went out). */
	void (*watch)(backend *b, proc *p);
	/* Undoes a start that cannot be kept (its record could not be stored): kills and reaps. */
	void (*abandon)(backend *b, proc *p);
	/*
	 * Sends sig to p's group; with whole, also to every other process of p
	 * (a TTY session's job groups). Never blocks and never signals a child
	 * that was reaped. Any thread.
	 */
	void (*signal)(backend *b, proc *p, int sig, bool whole);
	/* A kill was asked for: stop waiting for output that may never end. */
	void (*killed)(backend *b, proc *p);
	/* Closes p's stdin for good (the child reads EOF). */
	void (*close_stdin)(backend *b, proc *p);
	/*
	 * Takes p (a record found running at start) back; true when its child
	 * is reachable (watch follows; an end that came while the server was
	 * down is reported then), false when it is gone (*gone says what is
	 * known of its end). Sets p->pid, p->in_fd, p->seq as start does.
	 */
	bool (*reattach)(backend *b, proc *p, const store_origin *o, child_exit *gone);
	/* p's final record is stored (store thread): a backend that keeps the status may let go of it. */
	void (*stored)(backend *b, proc *p);
	/* Lets go of a running p without ending it (a clean shutdown that keeps processes). */
	void (*detach)(backend *b, proc *p);
	/* Forgets what the backend keeps for an ended process id (Delete). */
	void (*forget)(backend *b, const char *id);
	/* The log size limit changed. */
	void (*log_limit)(backend *b, proc *p, uint64_t max_bytes);
	/* Ends p now, reporting it ended (shutdown: it would not die in time). Loop thread. */
	void (*force_end)(backend *b, proc *p);
	/* p has ended: lets go of its child (reaps it). Its state stays until free_child. */
	void (*release)(backend *b, proc *p);
	/* Frees p's backend state, with p's last reference (no call on p can come any more). */
	void (*free_child)(backend *b, proc *p);
	void (*free)(backend *b);
} backend_ops;

struct backend {
	const backend_ops *ops;
	supervisor *s;
	loop *lp;
	workq *wq;
};

/* The direct backend: children of the server itself. */
int direct_backend_new(backend **out, supervisor *s, loop *lp, workq *wq);

/*
 * The held backend: each child held by a sandproc-holder (holder_path)
 * that outlives the server; holders' sockets and exit files live in
 * run_dir.
 */
int held_backend_new(backend **out, supervisor *s, loop *lp, workq *wq, const char *holder_path,
    const char *run_dir, const char *log_dir, char *err, size_t errlen);

#endif
