/*
 * Finding listening TCP sockets: the kernel's tables of the network
 * namespace pid is in, asked with sock_diag (netlink, a LISTEN-only filter:
 * the kernel walks its listening hash alone) or, where that is missing,
 * read from /proc/<pid>/net/tcp and tcp6 (every socket of the namespace,
 * TIME_WAITs included: 11,000 lines on a host after a benchmark); and which
 * process holds each socket, from the socket inodes behind /proc/<pid>/fd.
 */
#ifndef PORTS_SCAN_H
#define PORTS_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

typedef struct scan_listener {
	uint64_t ino;
	uint16_t port;
	int family;      /* AF_INET or AF_INET6 */
	bool wildcard;   /* 0.0.0.0 or :: */
	bool loopback;   /* 127.0.0.0/8, ::1 or ::ffff:127.x */
	char addr[48];   /* as bound, printed */
	uint8_t raw[16]; /* the address (4 bytes for AF_INET) */
} scan_listener;

/*
 * Parses one line of /proc/net/tcp (v6 false) or tcp6 (v6 true): true when
 * it is a socket in LISTEN state, filled into out.
 */
bool scan_parse_line(const char *line, bool v6, scan_listener *out);

/*
 * Up to max listeners of the network namespace pid is in (0: the calling
 * thread's) into out; how many (0 when pid is gone). The thread visits
 * pid's namespace (setns) to make its netlink socket there.
 */
size_t scan_listeners(pid_t pid, scan_listener *out, size_t max);

/* Calls fn(arg, inode) for each socket among pid's open fds. */
void scan_socket_inodes(pid_t pid, void (*fn)(void *arg, uint64_t ino), void *arg);

/* The address to connect to, inside its namespace, to reach listener l: loopback for a wildcard. */
socklen_t scan_target(const scan_listener *l, struct sockaddr_storage *to);

#endif
