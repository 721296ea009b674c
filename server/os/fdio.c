#include "os/fdio.h"

#include <errno.h>
#include <unistd.h>

ssize_t
fdio_read(int fd, void *buf, size_t cap)
{
	ssize_t n;

	while ((n = read(fd, buf, cap)) < 0 && errno == EINTR) {}
	if (n > 0) {
		return (n);
	}
	if (n < 0 && errno == EAGAIN) {
		return (0);
	}
	return (-1);
}
