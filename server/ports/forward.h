/*
 * Forwarding TCP from the host into a network namespace (a sandbox's), for
 * exposed ports: one thread and one epoll set for every exposure. Each
 * exposure is a listening socket on the host; each connection accepted
 * there gets a socket made inside the target namespace (the thread enters
 * it with setns(2) for the socket() call alone, and comes back) connected
 * to the target address, and bytes go both ways with splice(2) through a
 * pipe per direction, never through user space. One side's EOF becomes a
 * shutdown(SHUT_WR) of the other once its pipe is drained (half-close);
 * an error on either side closes both.
 */
#ifndef PORTS_FORWARD_H
#define PORTS_FORWARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct fwd fwd;

/* Starts the thread. 0, or an errno with the cause in err. */
int fwd_new(fwd **out, char *err, size_t errlen);
/* Closes every exposure and connection and ends the thread. */
void fwd_free(fwd *f);

/*
 * Listens on host (a numeric address) at a port the kernel picks and
 * forwards each connection to `to` inside the namespace of netns_fd (-1:
 * the host's; it is dup'ed). *handle names it for fwd_close, *port is the
 * port. SP_OK, or a status with the cause in err.
 */
int fwd_open(fwd *f, const char *host, int netns_fd, const struct sockaddr *to, socklen_t tolen,
    uint64_t *handle, uint16_t *port, char *err, size_t errlen);

/* Stops listening at once; its connections carry on until either side ends them. */
void fwd_close(fwd *f, uint64_t handle);

/* Connections open now (all exposures). */
size_t fwd_connections(fwd *f);

#endif
