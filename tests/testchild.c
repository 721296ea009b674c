/*
 * A child with exactly known behaviour, for the tests:
 *   testchild pattern N [err]   N bytes of a binary pattern to stdout (or stderr)
 *   testchild both N            N pattern bytes to stdout, then N to stderr
 *   testchild chunks K SIZE MS  K chunks of SIZE bytes, MS ms apart ('a'+k per chunk)
 *   testchild echo              stdin to stdout until EOF, then exits 0
 *   testchild trap              ignores SIGTERM, prints "ready", sleeps
 *   testchild usr1              prints "usr1" on SIGUSR1, exits 0 on SIGTERM
 *   testchild fork-sleep S      forks a child that sleeps S seconds, then sleeps S itself
 *   testchild fds               prints its open fds, "0 1 2 " for a clean start
 *   testchild serve ADDR PORT   listens on ADDR:PORT (0: any), prints "listening PORT", then echoes:
 *                               each connection's bytes come back once it half-closes. A line
 *                               "close" on stdin closes the listener ("closed"); EOF on stdin exits.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static unsigned char
pattern(size_t i)
{
	return ((unsigned char)((i * 7 + 3) ^ (i >> 8)));
}

static void
write_all(int fd, const void *p, size_t n)
{
	const char *b = p;
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w <= 0) {
			exit(3);
		}
		b += w;
		n -= (size_t)w;
	}
}

static void
emit(int fd, size_t n)
{
	unsigned char buf[8192];
	for (size_t off = 0; off < n;) {
		size_t k = n - off < sizeof(buf) ? n - off : sizeof(buf);
		for (size_t i = 0; i < k; i++) {
			buf[i] = pattern(off + i);
		}
		write_all(fd, buf, k);
		off += k;
	}
}

/* One connection: everything until EOF, then all of it back (a child's job: it exits). */
static void
echo_conn(int c)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (n == cap && (buf = realloc(buf, cap *= 2)) == NULL) {
			exit(4);
		}
		ssize_t k = read(c, buf + n, cap - n);
		if (k <= 0) {
			break;
		}
		n += (size_t)k;
	}
	write_all(c, buf, n);
	exit(0);
}

static int
serve(const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, fd;

	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':') != NULL) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, addr, &a->sin6_addr);
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, addr, &a->sin_addr);
		len = sizeof(*a);
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 64) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
		perror("serve");
		return (1);
	}
	signal(SIGCHLD, SIG_IGN);
	printf("listening %d\n",
	    ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                   : ((struct sockaddr_in *)&ss)->sin_port));
	fflush(stdout);
	for (;;) {
		struct pollfd p[2] = { { 0, POLLIN, 0 }, { fd, POLLIN, 0 } };
		if (poll(p, fd >= 0 ? 2 : 1, -1) < 0) {
			continue;
		}
		if (p[0].revents) {
			char line[64];
			ssize_t k = read(0, line, sizeof(line) - 1);
			if (k <= 0) {
				return (0);
			}
			if (k >= 5 && memcmp(line, "close", 5) == 0 && fd >= 0) {
				close(fd);
				fd = -1;
				printf("closed\n");
				fflush(stdout);
			}
		}
		if (fd >= 0 && p[1].revents) {
			int c = accept(fd, NULL, NULL);
			if (c >= 0) {
				if (fork() == 0) {
					close(fd);
					echo_conn(c);
				}
				close(c);
			}
		}
	}
}

static volatile sig_atomic_t got_usr1, got_term;

static void
on_usr1(int s)
{
	(void)s;
	got_usr1 = 1;
}

static void
on_term(int s)
{
	(void)s;
	got_term = 1;
}

int
main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "pattern") == 0) {
		emit(argc > 3 ? 2 : 1, strtoul(argv[2], NULL, 10));
		return (0);
	}
	if (argc == 3 && strcmp(argv[1], "both") == 0) {
		emit(1, strtoul(argv[2], NULL, 10));
		emit(2, strtoul(argv[2], NULL, 10));
		return (0);
	}
	if (argc == 5 && strcmp(argv[1], "chunks") == 0) {
		int k = atoi(argv[2]), size = atoi(argv[3]), ms = atoi(argv[4]);
		char *buf = malloc((size_t)size);
		for (int c = 0; c < k; c++) {
			memset(buf, 'a' + c % 26, (size_t)size);
			write_all(1, buf, (size_t)size);
			struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
			nanosleep(&ts, NULL);
		}
		free(buf);
		return (0);
	}
	if (argc == 3 && strcmp(argv[1], "count") == 0) {
		/* Numbered lines, one every ms milliseconds, forever; every tenth also on stderr. */
		int ms = atoi(argv[2]);
		char line[32];
		for (unsigned long i = 1;; i++) {
			int n = snprintf(line, sizeof(line), "%lu\n", i);
			write_all(1, line, (size_t)n);
			if (i % 10 == 0) {
				write_all(2, line, (size_t)n);
			}
			struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	if (argc == 2 && strcmp(argv[1], "echo") == 0) {
		char buf[4096];
		ssize_t n;
		while ((n = read(0, buf, sizeof(buf))) > 0) {
			write_all(1, buf, (size_t)n);
		}
		return (0);
	}
	if (argc == 2 && strcmp(argv[1], "trap") == 0) {
		signal(SIGTERM, SIG_IGN);
		write_all(1, "ready\n", 6);
		for (;;) {
			pause();
		}
	}
	if (argc == 2 && strcmp(argv[1], "usr1") == 0) {
		sigset_t both, old;
		/* Blocked but between checks: a signal that comes while we write is not slept through. */
		sigemptyset(&both);
		sigaddset(&both, SIGUSR1);
		sigaddset(&both, SIGTERM);
		sigprocmask(SIG_BLOCK, &both, &old);
		signal(SIGUSR1, on_usr1);
		signal(SIGTERM, on_term);
		write_all(1, "ready\n", 6);
		while (!got_term) {
			if (got_usr1) {
				got_usr1 = 0;
				write_all(1, "usr1\n", 5);
				continue;
			}
			sigsuspend(&old);
		}
		return (0);
	}
	if (argc == 3 && strcmp(argv[1], "fork-sleep") == 0) {
		unsigned s = (unsigned)atoi(argv[2]);
		if (fork() == 0) {
			sleep(s);
			_exit(0);
		}
		write_all(1, "forked\n", 7);
		sleep(s);
		return (0);
	}
	if (argc == 4 && strcmp(argv[1], "serve") == 0) {
		return (serve(argv[2], atoi(argv[3])));
	}
	if (argc == 2 && strcmp(argv[1], "fds") == 0) {
		DIR *d = opendir("/proc/self/fd");
		struct dirent *de;
		int fds[256], n = 0;
		while (d != NULL && (de = readdir(d)) != NULL && n < 256) {
			if (de->d_name[0] != '.' && atoi(de->d_name) != dirfd(d)) {
				fds[n++] = atoi(de->d_name);
			}
		}
		if (d != NULL) {
			closedir(d);
		}
		for (int i = 0; i < n; i++) {
			for (int j = i + 1; j < n; j++) {
				if (fds[j] < fds[i]) {
					int t = fds[i];
					fds[i] = fds[j];
					fds[j] = t;
				}
			}
			printf("%d ", fds[i]);
		}
		return (0);
	}
	fprintf(stderr, "testchild: bad arguments\n");
	return (2);
}
