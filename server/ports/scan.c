/* Listening sockets from /proc (scan.h). */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ports/scan.h"

#define SCAN_LISTEN 0x0A /* TCP_LISTEN in the st column */

static void scan_classify(scan_listener *out);

/* n bytes of hex into out as 32-bit words in the kernel's (host) order, as /proc prints them. */
static bool
scan_hex_words(const char *hex, size_t n, uint8_t *out)
{
	for (size_t w = 0; w < n / 8; w++) {
		char part[9];
		char *end;
		memcpy(part, hex + w * 8, 8);
		part[8] = '\0';
		uint32_t v = (uint32_t)strtoul(part, &end, 16);
		if (*end != '\0') {
			return (false);
		}
		memcpy(out + w * 4, &v, 4);
	}
	return (true);
}

bool
scan_parse_line(const char *line, bool v6, scan_listener *out)
{
	char local[64];
	unsigned port, st;
	unsigned long long ino;
	size_t hexlen = v6 ? 32 : 8;

	/* sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode */
	if (sscanf(line, " %*u: %63[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %*u %*d %llu", local, &port, &st,
	        &ino) != 4 ||
	    strlen(local) != hexlen || st != SCAN_LISTEN || port == 0 || port > 65535) {
		return (false);
	}
	memset(out, 0, sizeof(*out));
	if (!scan_hex_words(local, hexlen, out->raw)) {
		return (false);
	}
	out->ino = ino;
	out->port = (uint16_t)port;
	out->family = v6 ? AF_INET6 : AF_INET;
	scan_classify(out);
	return (true);
}

/* Fills addr, wildcard and loopback from family and raw. */
static void
scan_classify(scan_listener *out)
{
	bool v6 = out->family == AF_INET6;

	inet_ntop(out->family, out->raw, out->addr, sizeof(out->addr));
	if (v6) {
		static const uint8_t any[16], lo[16] = { [15] = 1 };
		static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
		out->wildcard = memcmp(out->raw, any, 16) == 0;
		out->loopback = memcmp(out->raw, lo, 16) == 0 ||
		    (memcmp(out->raw, mapped, 12) == 0 && out->raw[12] == 127);
	} else {
		out->wildcard = memcmp(out->raw, "\0\0\0\0", 4) == 0;
		out->loopback = out->raw[0] == 127;
	}
}

static size_t
scan_file(const char *path, bool v6, scan_listener *out, size_t max)
{
	FILE *f = fopen(path, "re");
	char line[512];
	size_t n = 0;

	if (f == NULL) {
		return (0);
	}
	while (n < max && fgets(line, sizeof(line), f) != NULL) {
		if (scan_parse_line(line, v6, &out[n])) {
			n++;
		}
	}
	fclose(f);
	return (n);
}

/*
 * The listeners of family in the namespace of netlink socket nl, asked of
 * the kernel with a LISTEN-only filter (it then walks its listening hash
 * alone, however many other sockets there are). How many, or -1.
 */
static ssize_t
scan_diag(int nl, int family, scan_listener *out, size_t max)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req),
		    .nlmsg_type = SOCK_DIAG_BY_FAMILY,
		    .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		    .nlmsg_seq = 1 },
		.r = { .sdiag_family = (uint8_t)family,
		    .sdiag_protocol = IPPROTO_TCP,
		    .idiag_states = 1u << SCAN_LISTEN },
	};
	static __thread char buf[32768];
	size_t n = 0;

	if (send(nl, &req, sizeof(req), 0) != (ssize_t)sizeof(req)) {
		return (-1);
	}
	for (;;) {
		ssize_t len = recv(nl, buf, sizeof(buf), 0);
		if (len <= 0) {
			return (-1);
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len);
		     h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_DONE) {
				return ((ssize_t)n);
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				return (-1);
			}
			const struct inet_diag_msg *m = NLMSG_DATA(h);
			if (n >= max || m->idiag_state != SCAN_LISTEN) {
				continue;
			}
			scan_listener *l = &out[n++];
			memset(l, 0, sizeof(*l));
			l->family = m->idiag_family;
			l->port = ntohs(m->id.idiag_sport);
			l->ino = m->idiag_inode;
			memcpy(l->raw, m->id.idiag_src, l->family == AF_INET6 ? 16 : 4);
			scan_classify(l);
		}
	}
}

/* A sock_diag netlink socket in the network namespace of pid (0: this thread's); -1 when it cannot be had. */
static int
scan_netlink_in(pid_t pid)
{
	static __thread int here = -2; /* this thread's own namespace, opened once */
	char path[64];

	if (pid <= 0) {
		return (socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
	}
	if (here == -2) {
		here = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	}
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	int ns = here >= 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
		if (ns >= 0) {
			close(ns);
		}
		return (-1);
	}
	close(ns);
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (setns(here, CLONE_NEWNET) != 0) {
		/* Stuck in another namespace: this thread answers from /proc (the process's view) from now
		 * on. */
		close(here);
		here = -1;
		if (s >= 0) {
			close(s);
		}
		return (-1);
	}
	return (s);
}

size_t
scan_listeners(pid_t pid, scan_listener *out, size_t max)
{
	char path[64];
	size_t n;
	int nl = scan_netlink_in(pid);

	if (nl >= 0) {
		ssize_t a = scan_diag(nl, AF_INET, out, max);
		ssize_t b = a >= 0 ? scan_diag(nl, AF_INET6, out + a, max - (size_t)a) : -1;
		close(nl);
		if (b >= 0) {
			return ((size_t)(a + b));
		}
	}
	/* No sock_diag (a kernel without inet_diag): the same tables as text. */
	if (pid > 0) {
		snprintf(path, sizeof(path), "/proc/%d/net/tcp", (int)pid);
	} else {
		snprintf(path, sizeof(path), "/proc/self/net/tcp");
	}
	n = scan_file(path, false, out, max);
	strcat(path, "6");
	return (n + scan_file(path, true, out + n, max - n));
}

void
scan_socket_inodes(pid_t pid, void (*fn)(void *arg, uint64_t ino), void *arg)
{
	char path[64], link[64];
	struct dirent *de;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (d == NULL) {
		if (dfd >= 0) {
			close(dfd);
		}
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.') {
			continue;
		}
		ssize_t k = readlinkat(dfd, de->d_name, link, sizeof(link) - 1);
		if (k <= 8 || strncmp(link, "socket:[", 8) != 0) {
			continue;
		}
		link[k] = '\0';
		fn(arg, strtoull(link + 8, NULL, 10));
	}
	closedir(d);
}

socklen_t
scan_target(const scan_listener *l, struct sockaddr_storage *to)
{
	memset(to, 0, sizeof(*to));
	if (l->family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)to;
		a->sin_family = AF_INET;
		a->sin_port = htons(l->port);
		if (l->wildcard) {
			a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		} else {
			memcpy(&a->sin_addr, l->raw, 4);
		}
		return (sizeof(*a));
	}
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)to;
	a->sin6_family = AF_INET6;
	a->sin6_port = htons(l->port);
	if (l->wildcard) {
		a->sin6_addr = in6addr_loopback;
	} else {
		memcpy(&a->sin6_addr, l->raw, 16);
	}
	return (sizeof(*a));
}
