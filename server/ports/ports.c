/*
 * Ports (ports.h). Locks: scan_mu makes scans one at a time (the thread's
 * and an Expose's); mu guards the records and waiters; wake_mu the
 * scanner's schedule. Order: the supervisor's lock -> wake_mu (activity);
 * scan_mu -> mu -> the forwarder's. Reading /proc happens under scan_mu
 * alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/list.h"
#include "base/util.h"
#include "os/procfs.h"
#include "ports/forward.h"
#include "ports/ports.h"
#include "ports/scan.h"
#include "sandbox/sandbox.h"
#include "sp_status.h"

#define PORTS_PERIOD_MS 250
#define PORTS_SOONEST_MS 50
#define PORTS_MAX_LISTENERS 1024
#define PORTS_HOST "default"
/* A sandbox opening listeners by the thousand must not spend the server's fds: exposures are capped. */
#define PORTS_MAX_EXPOSED_PER_SANDBOX 32
#define PORTS_MAX_EXPOSED 1024

typedef struct port_rec {
	dnode node;
	char sandbox_id[32];
	char tenant[64];
	char process_id[32];
	pid_t pid;
	scan_listener l;
	int64_t discovered_at_ms;
	uint64_t fwd; /* the forwarder's handle while exposed, else 0 */
	char url[80];
	bool by_hand; /* unexposed by a call: not exposed automatically again */
	bool seen;    /* in the scan being applied */
} port_rec;

/* One listener found in a scan, and who holds it. */
typedef struct port_seen {
	char sandbox_id[32];
	char tenant[64];
	char process_id[32];
	pid_t pid;
	scan_listener l;
	bool auto_expose;
} port_seen;

struct ports {
	ports_config c;
	char expose_host[64];
	fwd *fwd;
	pthread_mutex_t scan_mu;
	pthread_mutex_t mu;
	dlist recs;
	waitlist waiters;
	pthread_mutex_t wake_mu;
	pthread_cond_t wake_cv;
	bool nudged, ended, stop; /* output asked for a scan; a process ended */
	bool started;             /* a process started since the scanner last looked at the count */
	pthread_t thr;
};

/* --- one scan ------------------------------------------------------------------------ */

/* A running process, copied out of the supervisor's walk. */
typedef struct scan_proc {
	char id[32];
	char sandbox_id[32];
	pid_t *pids;
	size_t npids;
} scan_proc;

typedef struct scan_state {
	scan_proc *procs;
	size_t n, cap;
	bool failed;
} scan_state;

static void
ports_collect(void *arg, const sup_running *r)
{
	scan_state *st = arg;

	if (st->n == st->cap) {
		size_t nc = st->cap ? st->cap * 2 : 16;
		scan_proc *np = realloc(st->procs, nc * sizeof(*np));
		if (np == NULL) {
			st->failed = true;
			return;
		}
		st->procs = np;
		st->cap = nc;
	}
	scan_proc *p = &st->procs[st->n];
	memset(p, 0, sizeof(*p));
	snprintf(p->id, sizeof(p->id), "%s", r->id);
	snprintf(p->sandbox_id, sizeof(p->sandbox_id), "%s", r->sandbox_id);
	if (r->nmembers > 0 && (p->pids = malloc(r->nmembers * sizeof(pid_t))) == NULL) {
		st->failed = true;
		return;
	}
	if (r->nmembers > 0) {
		memcpy(p->pids, r->members, r->nmembers * sizeof(pid_t));
	}
	p->npids = r->nmembers;
	st->n++;
}

static int
ports_cmp_ino(const void *a, const void *b)
{
	uint64_t x = ((const scan_listener *)a)->ino, y = ((const scan_listener *)b)->ino;
	return (x < y ? -1 : x > y);
}

/* Matching one process's socket inodes against the namespace's listeners. */
typedef struct scan_match {
	scan_listener *ls;
	size_t nls;
	pid_t *owner; /* per listener: the lowest pid holding it (0: none yet) */
	size_t *owner_proc;
	size_t proc;
	pid_t pid;
} scan_match;

static void
ports_match_inode(void *arg, uint64_t ino)
{
	scan_match *m = arg;
	scan_listener key = { .ino = ino };
	scan_listener *l = bsearch(&key, m->ls, m->nls, sizeof(key), ports_cmp_ino);

	if (l != NULL) {
		size_t i = (size_t)(l - m->ls);
		if (m->owner[i] == 0 || m->pid < m->owner[i]) {
			m->owner[i] = m->pid;
			m->owner_proc[i] = m->proc;
		}
	}
}

/* Appends what sandbox sb's processes (procs[]) listen on to *seen. */
static void
ports_scan_sandbox(ports *pm, const char *sb, scan_proc *procs, size_t nprocs, port_seen **seen,
    size_t *nseen, size_t *capseen)
{
	sandboxes_net_info net = { 0 };
	pid_t where = 0;

	if (strcmp(sb, PORTS_HOST) != 0) {
		if (sandboxes_net(pm->c.sbx, sb, &net) != SP_OK) {
			return; /* gone or going: its ports close */
		}
		where = net.pid;
	} else {
		snprintf(net.tenant, sizeof(net.tenant), "%s", PORTS_HOST);
	}
	scan_listener *ls = malloc(PORTS_MAX_LISTENERS * sizeof(*ls));
	size_t nls = ls != NULL ? scan_listeners(where, ls, PORTS_MAX_LISTENERS) : 0;
	pid_t *owner = nls > 0 ? calloc(nls, sizeof(*owner)) : NULL;
	size_t *owner_proc = nls > 0 ? calloc(nls, sizeof(*owner_proc)) : NULL;
	if (nls == 0 || owner == NULL || owner_proc == NULL) {
		free(ls);
		free(owner);
		free(owner_proc);
		return;
	}
	qsort(ls, nls, sizeof(*ls), ports_cmp_ino);
	scan_match m = { ls, nls, owner, owner_proc, 0, 0 };
	for (size_t i = 0; i < nprocs; i++) {
		if (strcmp(procs[i].sandbox_id, sb) != 0) {
			continue;
		}
		m.proc = i;
		for (size_t k = 0; k < procs[i].npids; k++) {
			m.pid = procs[i].pids[k];
			scan_socket_inodes(m.pid, ports_match_inode, &m);
		}
	}
	for (size_t i = 0; i < nls; i++) {
		if (owner[i] == 0) {
			continue;
		}
		if (*nseen == *capseen) {
			size_t nc = *capseen ? *capseen * 2 : 16;
			port_seen *ns = realloc(*seen, nc * sizeof(*ns));
			if (ns == NULL) {
				break;
			}
			*seen = ns;
			*capseen = nc;
		}
		port_seen *s = &(*seen)[(*nseen)++];
		memset(s, 0, sizeof(*s));
		snprintf(s->sandbox_id, sizeof(s->sandbox_id), "%s", sb);
		snprintf(s->tenant, sizeof(s->tenant), "%s", net.tenant);
		snprintf(s->process_id, sizeof(s->process_id), "%s", procs[owner_proc[i]].id);
		s->pid = owner[i];
		s->l = ls[i];
		s->auto_expose = where != 0 && net.auto_expose;
	}
	free(ls);
	free(owner);
	free(owner_proc);
}

static void
ports_fill(const port_rec *r, const char *state, sandproc_v1_Port *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->sandbox_id, sizeof(out->sandbox_id), "%s", r->sandbox_id);
	out->port = r->l.port;
	snprintf(out->address, sizeof(out->address), "%s", r->l.addr);
	out->pid = r->pid;
	snprintf(out->process_id, sizeof(out->process_id), "%s", r->process_id);
	snprintf(out->state, sizeof(out->state), "%s", state);
	out->discovered_at_ms = r->discovered_at_ms;
	snprintf(out->exposed_url, sizeof(out->exposed_url), "%s", r->url);
}

/* Publishes port/<sandbox> (mu held). */
static void
ports_publish(ports *pm, const port_rec *r, const char *kind, const char *state)
{
	sandproc_v1_PortEvent ev = { .has_port = true };
	char topic[64];

	snprintf(ev.kind, sizeof(ev.kind), "%s", kind);
	ports_fill(r, state, &ev.port);
	snprintf(topic, sizeof(topic), "port/%s", r->sandbox_id);
	publisher_send(pm->c.pub, topic, sandproc_v1_PortEvent_fields, &ev);
}

/*
 * The network namespace to forward into for sandbox sb: an fd (the
 * sandbox's init's, checked to be that init still), -1 for the host's
 * (also a sandbox on the host's network). SP_OK or a status.
 */
static int
ports_netns(ports *pm, const char *sb, int *fd, char *err, size_t errlen)
{
	sandboxes_net_info net;
	char path[64];

	*fd = -1;
	if (strcmp(sb, PORTS_HOST) == 0) {
		return (SP_OK);
	}
	if (sandboxes_net(pm->c.sbx, sb, &net) != SP_OK) {
		snprintf(err, errlen, "sandbox %s is not ready", sb);
		return (SP_FAILED_PRECONDITION);
	}
	if (!net.own_netns) {
		return (SP_OK);
	}
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)net.pid);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	/* Opened first, then checked: a pid reused meanwhile by another sandbox's process is refused. */
	if (*fd < 0 || procfs_pid_start_time(net.pid) != net.pid_start) {
		if (*fd >= 0) {
			close(*fd);
			*fd = -1;
		}
		snprintf(err, errlen, "sandbox %s: its init is gone", sb);
		return (SP_FAILED_PRECONDITION);
	}
	return (SP_OK);
}

/* Exposes r (mu held). */
static int
ports_open_exposure(ports *pm, port_rec *r, char *err, size_t errlen)
{
	struct sockaddr_storage to;
	socklen_t tolen = scan_target(&r->l, &to);
	uint16_t port;
	int ns, code;
	size_t mine = 0, all = 0;

	for (dnode *n = pm->recs.head; n != NULL; n = n->next) {
		const port_rec *o = containerof(n, port_rec, node);
		all += o->fwd != 0;
		mine += o->fwd != 0 && strcmp(o->sandbox_id, r->sandbox_id) == 0;
	}
	if (mine >= PORTS_MAX_EXPOSED_PER_SANDBOX || all >= PORTS_MAX_EXPOSED) {
		snprintf(err, errlen,
		    "%s has %zu exposed ports (%zu in all), the most it may: unexpose one first",
		    r->sandbox_id, mine, all);
		return (SP_RESOURCE_EXHAUSTED);
	}
	if ((code = ports_netns(pm, r->sandbox_id, &ns, err, errlen)) != SP_OK) {
		return (code);
	}
	code = fwd_open(
	    pm->fwd, pm->expose_host, ns, (struct sockaddr *)&to, tolen, &r->fwd, &port, err, errlen);
	if (ns >= 0) {
		close(ns);
	}
	if (code != SP_OK) {
		r->fwd = 0;
		return (code);
	}
	bool v6 = strchr(pm->expose_host, ':') != NULL;
	snprintf(r->url, sizeof(r->url), "http://%s%s%s:%u/", v6 ? "[" : "", pm->expose_host, v6 ? "]" : "",
	    (unsigned)port);
	ports_publish(pm, r, "exposed", "open");
	return (SP_OK);
}

static void
ports_close_exposure(ports *pm, port_rec *r)
{
	if (r->fwd != 0) {
		fwd_close(pm->fwd, r->fwd);
		r->fwd = 0;
		r->url[0] = '\0';
	}
}

static port_rec *
ports_find(ports *pm, const char *sb, const scan_listener *l)
{
	for (dnode *n = pm->recs.head; n != NULL; n = n->next) {
		port_rec *r = containerof(n, port_rec, node);
		if (r->l.port == l->port && r->l.family == l->family && memcmp(r->l.raw, l->raw, 16) == 0 &&
		    strcmp(r->sandbox_id, sb) == 0) {
			return (r);
		}
	}
	return (NULL);
}

/* Makes the records what the scan saw (mu held): opens, closes, exposures, events. */
static void
ports_apply(ports *pm, const port_seen *seen, size_t nseen)
{
	bool changed = false;
	char err[256];

	for (dnode *n = pm->recs.head; n != NULL; n = n->next) {
		containerof(n, port_rec, node)->seen = false;
	}
	for (size_t i = 0; i < nseen; i++) {
		const port_seen *s = &seen[i];
		port_rec *r = ports_find(pm, s->sandbox_id, &s->l);
		if (r != NULL) {
			/* The same port, perhaps another holder now (a server that re-exec'd). */
			r->seen = true;
			r->pid = s->pid;
			snprintf(r->process_id, sizeof(r->process_id), "%s", s->process_id);
			r->l.ino = s->l.ino;
			continue;
		}
		if ((r = calloc(1, sizeof(*r))) == NULL) {
			continue;
		}
		snprintf(r->sandbox_id, sizeof(r->sandbox_id), "%s", s->sandbox_id);
		snprintf(r->tenant, sizeof(r->tenant), "%s", s->tenant);
		snprintf(r->process_id, sizeof(r->process_id), "%s", s->process_id);
		r->pid = s->pid;
		r->l = s->l;
		r->discovered_at_ms = util_now_ms();
		r->seen = true;
		dlist_push(&pm->recs, &r->node);
		ports_publish(pm, r, "open", "open");
		changed = true;
		if (s->auto_expose && s->l.wildcard &&
		    ports_open_exposure(pm, r, err, sizeof(err)) != SP_OK) {
			util_log(
			    "ports: %s port %u: not exposed: %s", r->sandbox_id, (unsigned)r->l.port, err);
		}
	}
	for (dnode *n = pm->recs.head, *next; n != NULL; n = next) {
		next = n->next;
		port_rec *r = containerof(n, port_rec, node);
		if (r->seen) {
			continue;
		}
		ports_close_exposure(pm, r);
		ports_publish(pm, r, "closed", "closed");
		dlist_remove(&pm->recs, n);
		free(r);
		changed = true;
	}
	if (changed) {
		waitlist_wake_all(&pm->waiters);
	}
}

/* One scan of every sandbox with running processes, applied. */
static void
ports_scan(ports *pm)
{
	scan_state st = { 0 };
	port_seen *seen = NULL;
	size_t nseen = 0, capseen = 0;

	pthread_mutex_lock(&pm->scan_mu);
	supervisor_each_running(pm->c.sup, ports_collect, &st);
	if (!st.failed) {
		for (size_t i = 0; i < st.n; i++) {
			/* Each sandbox once: at the first of its processes. */
			bool first = true;
			for (size_t k = 0; k < i && first; k++) {
				first = strcmp(st.procs[k].sandbox_id, st.procs[i].sandbox_id) != 0;
			}
			if (first) {
				ports_scan_sandbox(
				    pm, st.procs[i].sandbox_id, st.procs, st.n, &seen, &nseen, &capseen);
			}
		}
		pthread_mutex_lock(&pm->mu);
		ports_apply(pm, seen, nseen);
		pthread_mutex_unlock(&pm->mu);
	}
	pthread_mutex_unlock(&pm->scan_mu);
	for (size_t i = 0; i < st.n; i++) {
		free(st.procs[i].pids);
	}
	free(st.procs);
	free(seen);
}

/* --- the scanner ---------------------------------------------------------------------- */

static void *
ports_main(void *arg)
{
	ports *pm = arg;
	int64_t last = 0, last_output = 0;

	for (;;) {
		/* Asked before taking wake_mu: the supervisor calls in (ports_activity) the other way round.
		 */
		bool running = supervisor_running(pm->c.sup) > 0;
		pthread_mutex_lock(&pm->wake_mu);
		if (pm->stop) {
			pthread_mutex_unlock(&pm->wake_mu);
			return (NULL);
		}
		if (pm->started) {
			/* Counted before it started, perhaps: count again. */
			pm->started = false;
			pthread_mutex_unlock(&pm->wake_mu);
			continue;
		}
		/*
		 * Due: at once after an end (its ports close); 50 ms after the last
		 * scan output asked for, at the soonest, when output asks again (a
		 * chatty process costs at most 20 scans a second); every 250 ms
		 * while anything runs; else never.
		 */
		int64_t now = util_mono_ms(), due = INT64_MAX;
		if (pm->ended) {
			due = now;
		}
		if (pm->nudged && last_output + PORTS_SOONEST_MS < due) {
			due = last_output + PORTS_SOONEST_MS;
		}
		if (running && last + PORTS_PERIOD_MS < due) {
			due = last + PORTS_PERIOD_MS;
		}
		due = due == INT64_MAX ? -1 : due;
		if (due < 0 || now < due) {
			if (due < 0) {
				pthread_cond_wait(&pm->wake_cv, &pm->wake_mu);
			} else {
				util_cond_wait_ms(&pm->wake_cv, &pm->wake_mu, due - now);
			}
			pthread_mutex_unlock(&pm->wake_mu);
			continue;
		}
		bool for_output = pm->nudged && now >= last_output + PORTS_SOONEST_MS;
		pm->nudged = pm->nudged && !for_output;
		pm->ended = false;
		pthread_mutex_unlock(&pm->wake_mu);
		ports_scan(pm);
		last = util_mono_ms();
		last_output = for_output ? last : last_output;
	}
}

void
ports_nudge(ports *pm)
{
	pthread_mutex_lock(&pm->wake_mu);
	if (!pm->nudged) {
		pm->nudged = true;
		pthread_cond_signal(&pm->wake_cv);
	}
	pthread_mutex_unlock(&pm->wake_mu);
}

static void
ports_activity(void *arg, sup_event what)
{
	ports *pm = arg;

	if (what == SUP_OUTPUT) {
		ports_nudge(pm);
		return;
	}
	if (what == SUP_ENDED) {
		pthread_mutex_lock(&pm->wake_mu);
		pm->ended = true;
		pthread_cond_signal(&pm->wake_cv);
		pthread_mutex_unlock(&pm->wake_mu);
		return;
	}
	/* A start only wakes the scanner into its 250 ms rhythm: the process cannot be listening yet. */
	pthread_mutex_lock(&pm->wake_mu);
	pm->started = true;
	pthread_cond_signal(&pm->wake_cv);
	pthread_mutex_unlock(&pm->wake_mu);
}

int
ports_new(ports **out, const ports_config *c, char *err, size_t errlen)
{
	ports *pm = calloc(1, sizeof(*pm));
	int e;

	if (pm == NULL) {
		snprintf(err, errlen, "out of memory");
		return (ENOMEM);
	}
	pm->c = *c;
	snprintf(pm->expose_host, sizeof(pm->expose_host), "%s", c->expose_host);
	pm->c.expose_host = pm->expose_host;
	pthread_mutex_init(&pm->scan_mu, NULL);
	pthread_mutex_init(&pm->mu, NULL);
	pthread_mutex_init(&pm->wake_mu, NULL);
	util_cond_init(&pm->wake_cv);
	if ((e = fwd_new(&pm->fwd, err, errlen)) != 0) {
		free(pm);
		return (e);
	}
	pm->ended = true; /* a first look: processes taken back after a restart may listen already */
	if ((e = pthread_create(&pm->thr, NULL, ports_main, pm)) != 0) {
		snprintf(err, errlen, "ports: %s", strerror(e));
		fwd_free(pm->fwd);
		free(pm);
		return (e);
	}
	supervisor_on_activity(c->sup, ports_activity, pm);
	*out = pm;
	return (0);
}

void
ports_free(ports *pm)
{
	if (pm == NULL) {
		return;
	}
	supervisor_on_activity(pm->c.sup, NULL, NULL);
	pthread_mutex_lock(&pm->wake_mu);
	pm->stop = true;
	pthread_cond_signal(&pm->wake_cv);
	pthread_mutex_unlock(&pm->wake_mu);
	pthread_join(pm->thr, NULL);
	fwd_free(pm->fwd);
	pthread_mutex_lock(&pm->mu);
	while (pm->recs.head != NULL) {
		port_rec *r = containerof(pm->recs.head, port_rec, node);
		dlist_remove(&pm->recs, &r->node);
		free(r);
	}
	waitlist_wake_all(&pm->waiters);
	pthread_mutex_unlock(&pm->mu);
	pthread_mutex_destroy(&pm->scan_mu);
	pthread_mutex_destroy(&pm->mu);
	pthread_mutex_destroy(&pm->wake_mu);
	pthread_cond_destroy(&pm->wake_cv);
	free(pm);
}

/* --- calls ------------------------------------------------------------------------------ */

void
ports_list(
    ports *pm, const char *sandbox_id, ports_visible_fn visible, void *arg, sandproc_v1_ListPortsReply *out)
{
	size_t max = sizeof(out->ports) / sizeof(out->ports[0]);

	pthread_mutex_lock(&pm->mu);
	for (dnode *n = pm->recs.head; n != NULL && out->ports_count < max; n = n->next) {
		port_rec *r = containerof(n, port_rec, node);
		if ((sandbox_id[0] == '\0' || strcmp(sandbox_id, r->sandbox_id) == 0) &&
		    visible(arg, r->tenant, r->sandbox_id)) {
			ports_fill(r, "open", &out->ports[out->ports_count++]);
		}
	}
	pthread_mutex_unlock(&pm->mu);
}

/* How well r suits an exposure of its port: every address first, IPv4 before IPv6. */
static int
ports_rank(const port_rec *r)
{
	return ((r->l.wildcard ? 0 : r->l.loopback ? 2 : 4) + (r->l.family == AF_INET ? 0 : 1));
}

/* The record of sandbox sb's port to expose (mu held), or NULL. */
static port_rec *
ports_best(ports *pm, const char *sb, uint32_t port)
{
	port_rec *best = NULL;

	for (dnode *n = pm->recs.head; n != NULL; n = n->next) {
		port_rec *r = containerof(n, port_rec, node);
		if (r->l.port != port || strcmp(r->sandbox_id, sb) != 0) {
			continue;
		}
		if (r->fwd != 0) {
			return (r);
		}
		if (best == NULL || ports_rank(r) < ports_rank(best)) {
			best = r;
		}
	}
	return (best);
}

int
ports_expose(
    ports *pm, const char *sandbox_id, uint32_t port, sandproc_v1_Port *out, char *err, size_t errlen)
{
	const char *sb = sandbox_id[0] != '\0' ? sandbox_id : PORTS_HOST;
	int code = SP_OK;

	if (port == 0 || port > 65535) {
		snprintf(err, errlen, "port %u is not a TCP port", (unsigned)port);
		return (SP_INVALID_ARGUMENT);
	}
	for (int pass = 0; pass < 2; pass++) {
		pthread_mutex_lock(&pm->mu);
		port_rec *r = ports_best(pm, sb, port);
		if (r != NULL) {
			r->by_hand = false;
			if (r->fwd == 0) {
				code = ports_open_exposure(pm, r, err, errlen);
			}
			ports_fill(r, "open", out);
			pthread_mutex_unlock(&pm->mu);
			return (code);
		}
		pthread_mutex_unlock(&pm->mu);
		if (pass == 0) {
			/* Not seen yet (it may have just started listening): look now. */
			ports_scan(pm);
		}
	}
	snprintf(err, errlen, "nothing in %s listens on port %u", sb, (unsigned)port);
	return (SP_NOT_FOUND);
}

int
ports_unexpose(
    ports *pm, const char *sandbox_id, uint32_t port, sandproc_v1_Port *out, char *err, size_t errlen)
{
	const char *sb = sandbox_id[0] != '\0' ? sandbox_id : PORTS_HOST;
	port_rec *found = NULL;

	pthread_mutex_lock(&pm->mu);
	for (dnode *n = pm->recs.head; n != NULL; n = n->next) {
		port_rec *r = containerof(n, port_rec, node);
		if (r->l.port != port || strcmp(r->sandbox_id, sb) != 0) {
			continue;
		}
		r->by_hand = true;
		if (r->fwd != 0) {
			ports_close_exposure(pm, r);
			ports_publish(pm, r, "unexposed", "open");
			found = r;
		} else if (found == NULL) {
			found = r;
		}
	}
	if (found != NULL) {
		ports_fill(found, "open", out);
	}
	pthread_mutex_unlock(&pm->mu);
	if (found == NULL) {
		snprintf(err, errlen, "nothing in %s listens on port %u", sb, (unsigned)port);
		return (SP_NOT_FOUND);
	}
	return (SP_OK);
}

bool
ports_listening(ports *pm, const char *process_id, uint32_t port)
{
	bool yes = false;

	pthread_mutex_lock(&pm->mu);
	for (dnode *n = pm->recs.head; n != NULL && !yes; n = n->next) {
		port_rec *r = containerof(n, port_rec, node);
		yes = r->l.port == port && strcmp(r->process_id, process_id) == 0;
	}
	pthread_mutex_unlock(&pm->mu);
	return (yes);
}

static void
ports_detach(waiter *w)
{
	ports *pm = w->owner;

	pthread_mutex_lock(&pm->mu);
	if (waiter_linked(w)) {
		waitlist_remove(&pm->waiters, w);
	}
	pthread_mutex_unlock(&pm->mu);
}

void
ports_watch(ports *pm, waiter *w)
{
	pthread_mutex_lock(&pm->mu);
	w->owner = pm;
	w->detach = ports_detach;
	waitlist_add(&pm->waiters, w);
	pthread_mutex_unlock(&pm->mu);
}

size_t
ports_connections(ports *pm)
{
	return (fwd_connections(pm->fwd));
}
