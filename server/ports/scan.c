/* Listening sockets from /proc (scan.h). */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ports/scan.h"

#define SCAN_LISTEN 0x0A /* TCP_LISTEN in the st column */

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
	return (true);
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

size_t
scan_listeners(pid_t pid, scan_listener *out, size_t max)
{
	char path[64];
	size_t n;

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
