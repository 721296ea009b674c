/*
 * Exposures' forwarding (forward.h). Listeners are shared with the callers
 * (fwd_open, fwd_close) under f->mu; connections belong to the thread
 * alone. A closed listener's fd is closed at once (so the port stops
 * accepting) and its record freed by the thread at the top of its next
 * turn, after every event of the turn that may name it has been handled.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/list.h"
#include "base/util.h"
#include "ports/forward.h"
#include "sp_status.h"

/* Bytes a direction's pipe may hold (kernel memory, taken as used): a few socket buffers' worth. */
#define FWD_PIPE_BYTES (256 * 1024)
#define FWD_MAX_CONNS_PER 512
#define FWD_MAX_CONNS 4096
#define FWD_EVENTS 64

enum { FWD_WAKE, FWD_LISTENER, FWD_SIDE };

typedef struct fwd_listener {
	int kind; /* FWD_LISTENER: first, as epoll's data names it */
	dnode node;
	uint64_t handle;
	int fd;
	int netns; /* -1: the host's */
	struct sockaddr_storage to;
	socklen_t tolen;
	size_t conns;
	bool closed;
} fwd_listener;

typedef struct fwd_conn fwd_conn;

typedef struct fwd_side {
	int kind; /* FWD_SIDE */
	fwd_conn *c;
} fwd_side;

/* One direction: bytes read from a socket wait in a pipe for the other. */
typedef struct fwd_dir {
	int r, w;
	size_t queued;
	bool eof;  /* its source said EOF */
	bool shut; /* and its destination was shut for writing after the last byte */
} fwd_dir;

struct fwd_conn {
	dnode node;
	fwd_listener *l; /* NULL once the listener is gone */
	int sock[2];     /* 0: the client's (host), 1: the target's (inside) */
	fwd_side side[2];
	fwd_dir dir[2]; /* dir[i] carries sock[i] to sock[1 - i] */
	bool connecting;
	bool closed; /* its fds are closed; freed at the thread's next turn */
};

struct fwd {
	pthread_mutex_t mu;
	pthread_t thr;
	int ep, wake, host_netns;
	int wake_kind; /* FWD_WAKE, epoll's data for the eventfd */
	bool stop;
	bool broken; /* could not come back to the host's namespace: no more connections */
	dlist listeners, dead;
	dlist conns, dead_conns; /* under mu; only the thread changes them */
	size_t nconns;
	uint64_t next_handle;
};

/* Closes c's sockets and pipes (f->mu held); the record waits for the next turn, as events of this one may
 * name it. */
static void fwd_conn_close(fwd *f, fwd_conn *c);

/* Moves one direction's bytes as far as they go now; false on an error (the connection is done). */
static bool
fwd_pump(fwd_conn *c, int i)
{
	fwd_dir *d = &c->dir[i];
	int src = c->sock[i], dst = c->sock[1 - i];

	for (;;) {
		bool moved = false;
		if (!d->eof && d->queued < FWD_PIPE_BYTES) {
			ssize_t n = splice(src, NULL, d->w, NULL, FWD_PIPE_BYTES - d->queued,
			    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				d->queued += (size_t)n;
				moved = true;
			} else if (n == 0) {
				d->eof = moved = true;
			} else if (errno != EAGAIN && errno != EINTR) {
				return (false);
			}
		}
		if (d->queued > 0) {
			ssize_t n =
			    splice(d->r, NULL, dst, NULL, d->queued, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				d->queued -= (size_t)n;
				moved = true;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				return (false);
			}
		}
		if (d->eof && d->queued == 0 && !d->shut) {
			/* Half-close: the other side reads EOF and may still answer. */
			shutdown(dst, SHUT_WR);
			d->shut = true;
		}
		if (!moved) {
			return (true);
		}
	}
}

/* A socket of c is ready for something: finish connecting, then move what can move. */
static void
fwd_conn_event(fwd *f, fwd_conn *c, int i, uint32_t events)
{
	if (c->connecting) {
		int e = 0;
		socklen_t len = sizeof(e);
		if (i != 1 || !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
			return; /* the client spoke first: its bytes wait in its socket */
		}
		if (getsockopt(c->sock[1], SOL_SOCKET, SO_ERROR, &e, &len) != 0 || e != 0) {
			pthread_mutex_lock(&f->mu);
			fwd_conn_close(f, c);
			pthread_mutex_unlock(&f->mu);
			return;
		}
		c->connecting = false;
	}
	if (!fwd_pump(c, 0) || !fwd_pump(c, 1) || (c->dir[0].shut && c->dir[1].shut)) {
		pthread_mutex_lock(&f->mu);
		fwd_conn_close(f, c);
		pthread_mutex_unlock(&f->mu);
	}
}

static void
fwd_close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void
fwd_conn_close(fwd *f, fwd_conn *c)
{
	for (int i = 0; i < 2; i++) {
		fwd_close_fd(&c->sock[i]);
		fwd_close_fd(&c->dir[i].r);
		fwd_close_fd(&c->dir[i].w);
	}
	dlist_remove(&f->conns, &c->node);
	dlist_push(&f->dead_conns, &c->node);
	c->closed = true;
	f->nconns--;
	if (c->l != NULL) {
		c->l->conns--;
	}
}

/* A socket in the namespace netns (-1: here), made by this thread visiting it; -1 with errno. */
static int
fwd_socket_in(fwd *f, int netns, int family)
{
	if (netns < 0) {
		return (socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
	}
	if (setns(netns, CLONE_NEWNET) != 0) {
		return (-1);
	}
	int s = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int e = errno;
	if (setns(f->host_netns, CLONE_NEWNET) != 0) {
		/* This thread would make every later socket in the sandbox: stop forwarding instead. */
		util_log("forwarding: cannot return to the host's network namespace: %s; exposures stop",
		    strerror(errno));
		f->broken = true;
		if (s >= 0) {
			close(s);
		}
		errno = EPERM;
		return (-1);
	}
	errno = e;
	return (s);
}

static int
fwd_pipe(fwd_dir *d)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
		return (-1);
	}
	d->r = p[0];
	d->w = p[1];
	(void)fcntl(d->w, F_SETPIPE_SZ, FWD_PIPE_BYTES);
	return (0);
}

/* A client connected to listener l (f->mu held): its connection into the namespace. */
static void
fwd_accept(fwd *f, fwd_listener *l)
{
	for (;;) {
		int cfd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			return; /* EAGAIN, or out of fds: the next connection tries again */
		}
		if (f->broken || l->conns >= FWD_MAX_CONNS_PER || f->nconns >= FWD_MAX_CONNS) {
			close(cfd);
			continue;
		}
		fwd_conn *c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(cfd);
			continue;
		}
		c->sock[0] = cfd;
		c->sock[1] = c->dir[0].r = c->dir[0].w = c->dir[1].r = c->dir[1].w = -1;
		c->l = l;
		dlist_push(&f->conns, &c->node);
		f->nconns++;
		l->conns++;
		int one = 1;
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->sock[1] = fwd_socket_in(f, l->netns, l->to.ss_family);
		if (c->sock[1] < 0 || fwd_pipe(&c->dir[0]) != 0 || fwd_pipe(&c->dir[1]) != 0) {
			fwd_conn_close(f, c);
			continue;
		}
		setsockopt(c->sock[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->connecting = true;
		if (connect(c->sock[1], (struct sockaddr *)&l->to, l->tolen) == 0) {
			c->connecting = false;
		} else if (errno != EINPROGRESS) {
			fwd_conn_close(f, c);
			continue;
		}
		bool ok = true;
		for (int i = 0; i < 2 && ok; i++) {
			c->side[i] = (fwd_side){ FWD_SIDE, c };
			struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
				.data.ptr = &c->side[i] };
			ok = epoll_ctl(f->ep, EPOLL_CTL_ADD, c->sock[i], &ev) == 0;
		}
		if (!ok) {
			fwd_conn_close(f, c);
		}
	}
}

static void *
fwd_main(void *arg)
{
	fwd *f = arg;
	struct epoll_event evs[FWD_EVENTS];

	for (;;) {
		pthread_mutex_lock(&f->mu);
		/* Listeners closed since the last turn: no event of this turn can name them. */
		for (dnode *n; (n = f->dead.head) != NULL;) {
			fwd_listener *l = containerof(n, fwd_listener, node);
			dlist_remove(&f->dead, n);
			for (dnode *k = f->conns.head; k != NULL; k = k->next) {
				fwd_conn *c = containerof(k, fwd_conn, node);
				if (c->l == l) {
					c->l = NULL;
				}
			}
			fwd_close_fd(&l->netns);
			free(l);
		}
		for (dnode *n; (n = f->dead_conns.head) != NULL;) {
			dlist_remove(&f->dead_conns, n);
			free(containerof(n, fwd_conn, node));
		}
		bool stop = f->stop;
		pthread_mutex_unlock(&f->mu);
		if (stop) {
			break;
		}
		int n = epoll_wait(f->ep, evs, FWD_EVENTS, -1);
		for (int i = 0; i < n; i++) {
			int kind = *(int *)evs[i].data.ptr;
			if (kind == FWD_WAKE) {
				uint64_t v;
				(void)read(f->wake, &v, sizeof(v));
			} else if (kind == FWD_LISTENER) {
				fwd_listener *l = evs[i].data.ptr;
				pthread_mutex_lock(&f->mu);
				if (!l->closed) {
					fwd_accept(f, l);
				}
				pthread_mutex_unlock(&f->mu);
			} else {
				fwd_side *s = evs[i].data.ptr;
				fwd_conn *c = s->c;
				/* An earlier event of this turn may have closed it. */
				if (!c->closed) {
					fwd_conn_event(f, c, s == &c->side[0] ? 0 : 1, evs[i].events);
				}
			}
		}
		(void)n;
	}
	pthread_mutex_lock(&f->mu);
	while (f->conns.head != NULL) {
		fwd_conn_close(f, containerof(f->conns.head, fwd_conn, node));
	}
	for (dnode *n; (n = f->dead_conns.head) != NULL;) {
		dlist_remove(&f->dead_conns, n);
		free(containerof(n, fwd_conn, node));
	}
	pthread_mutex_unlock(&f->mu);
	return (NULL);
}

int
fwd_new(fwd **out, char *err, size_t errlen)
{
	fwd *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		snprintf(err, errlen, "out of memory");
		return (ENOMEM);
	}
	pthread_mutex_init(&f->mu, NULL);
	f->wake_kind = FWD_WAKE;
	f->ep = epoll_create1(EPOLL_CLOEXEC);
	f->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->host_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &f->wake_kind };
	int e = f->ep < 0 || f->wake < 0 || f->host_netns < 0    ? errno
	    : epoll_ctl(f->ep, EPOLL_CTL_ADD, f->wake, &ev) != 0 ? errno
	                                                         : pthread_create(&f->thr, NULL, fwd_main, f);
	if (e != 0) {
		snprintf(err, errlen, "port forwarding: %s", strerror(e));
		fwd_close_fd(&f->ep);
		fwd_close_fd(&f->wake);
		fwd_close_fd(&f->host_netns);
		pthread_mutex_destroy(&f->mu);
		free(f);
		return (e);
	}
	*out = f;
	return (0);
}

static void
fwd_wake(fwd *f)
{
	uint64_t one = 1;
	(void)write(f->wake, &one, sizeof(one));
}

void
fwd_free(fwd *f)
{
	if (f == NULL) {
		return;
	}
	pthread_mutex_lock(&f->mu);
	while (f->listeners.head != NULL) {
		fwd_listener *l = containerof(f->listeners.head, fwd_listener, node);
		dlist_remove(&f->listeners, &l->node);
		l->closed = true;
		fwd_close_fd(&l->fd);
		dlist_push(&f->dead, &l->node);
	}
	f->stop = true;
	pthread_mutex_unlock(&f->mu);
	fwd_wake(f);
	pthread_join(f->thr, NULL);
	/* The thread freed the dead at its last turn. */
	close(f->ep);
	close(f->wake);
	close(f->host_netns);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

int
fwd_open(fwd *f, const char *host, int netns_fd, const struct sockaddr *to, socklen_t tolen, uint64_t *handle,
    uint16_t *port, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	fwd_listener *l;
	int rc, one = 1;

	if (tolen > sizeof(l->to)) {
		snprintf(err, errlen, "bad target address");
		return (SP_INVALID_ARGUMENT);
	}
	if ((rc = getaddrinfo(host, "0", &hints, &ai)) != 0) {
		snprintf(err, errlen, "exposure address \"%s\": %s", host, gai_strerror(rc));
		return (SP_INVALID_ARGUMENT);
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		freeaddrinfo(ai);
		snprintf(err, errlen, "out of memory");
		return (SP_RESOURCE_EXHAUSTED);
	}
	l->kind = FWD_LISTENER;
	l->netns = -1;
	memcpy(&l->to, to, tolen);
	l->tolen = tolen;
	l->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int e = l->fd < 0 ? errno : 0;
	if (e == 0) {
		setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		e = bind(l->fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(l->fd, 128) != 0 ? errno : 0;
	}
	freeaddrinfo(ai);
	if (e == 0 && netns_fd >= 0 && (l->netns = fcntl(netns_fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		e = errno;
	}
	struct sockaddr_storage me;
	socklen_t melen = sizeof(me);
	if (e == 0 && getsockname(l->fd, (struct sockaddr *)&me, &melen) != 0) {
		e = errno;
	}
	if (e != 0) {
		snprintf(err, errlen, "listening on %s: %s", host, strerror(e));
		fwd_close_fd(&l->fd);
		fwd_close_fd(&l->netns);
		free(l);
		return (e == EMFILE || e == ENFILE || e == ENOMEM ? SP_RESOURCE_EXHAUSTED : SP_UNAVAILABLE);
	}
	*port = ntohs(me.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&me)->sin6_port
	                                       : ((struct sockaddr_in *)&me)->sin_port);
	pthread_mutex_lock(&f->mu);
	l->handle = *handle = ++f->next_handle;
	dlist_push(&f->listeners, &l->node);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = l };
	if (epoll_ctl(f->ep, EPOLL_CTL_ADD, l->fd, &ev) != 0) {
		e = errno;
		dlist_remove(&f->listeners, &l->node);
		pthread_mutex_unlock(&f->mu);
		snprintf(err, errlen, "forwarding: %s", strerror(e));
		fwd_close_fd(&l->fd);
		fwd_close_fd(&l->netns);
		free(l);
		return (SP_RESOURCE_EXHAUSTED);
	}
	pthread_mutex_unlock(&f->mu);
	return (SP_OK);
}

void
fwd_close(fwd *f, uint64_t handle)
{
	pthread_mutex_lock(&f->mu);
	for (dnode *n = f->listeners.head; n != NULL; n = n->next) {
		fwd_listener *l = containerof(n, fwd_listener, node);
		if (l->handle == handle) {
			dlist_remove(&f->listeners, n);
			l->closed = true;
			/* Closing the fd takes it out of epoll and stops the kernel accepting at once. */
			fwd_close_fd(&l->fd);
			dlist_push(&f->dead, &l->node);
			break;
		}
	}
	pthread_mutex_unlock(&f->mu);
	fwd_wake(f);
}

size_t
fwd_connections(fwd *f)
{
	pthread_mutex_lock(&f->mu);
	size_t n = f->nconns;
	pthread_mutex_unlock(&f->mu);
	return (n);
}
