/*
 * LD_PRELOADed into sandprocd by a test: posix_spawn_file_actions_addopen
 * fails with ENOMEM, as it may when memory is short, to pin that a child
 * whose stdio cannot be arranged is never started (on the server's fds).
 */
#include <errno.h>
#include <spawn.h>

int
posix_spawn_file_actions_addopen(
    posix_spawn_file_actions_t *fa, int fd, const char *path, int oflag, mode_t mode)
{
	(void)fa;
	(void)fd;
	(void)path;
	(void)oflag;
	(void)mode;
	return (ENOMEM);
}
