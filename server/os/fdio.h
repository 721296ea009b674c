/* Reading children's output pipes and PTYs: the one read used by every reader of them. */
#ifndef OS_FDIO_H
#define OS_FDIO_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Reads what the non-blocking fd has now into buf: the byte count (> 0), 0
 * when there is nothing now, or -1 at EOF or on an error (EIO from a PTY
 * master whose slave side is all closed). The caller closes fd at -1.
 */
ssize_t fdio_read(int fd, void *buf, size_t cap);

#endif
