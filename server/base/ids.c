#include "base/ids.h"

#include <string.h>
#include <sys/random.h>

void
ids_new(char *out, const char *prefix)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[12];
	size_t got = 0, plen = strlen(prefix);

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
		if (n > 0) {
			got += (size_t)n;
		}
	}
	memcpy(out, prefix, plen);
	for (size_t i = 0; i < sizeof(r); i++) {
		out[plen + 2 * i] = hex[r[i] >> 4];
		out[plen + 2 * i + 1] = hex[r[i] & 15];
	}
	out[plen + 24] = '\0';
}

bool
ids_valid(const char *s, const char *prefix)
{
	size_t plen = strlen(prefix);

	if (strncmp(s, prefix, plen) != 0 || strlen(s) != plen + 24) {
		return (false);
	}
	for (const char *p = s + plen; *p != '\0'; p++) {
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
			return (false);
		}
	}
	return (true);
}
