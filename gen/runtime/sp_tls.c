#include "sp_tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* path's contents, NUL-terminated (PEM is text), or NULL with errno set. */
static char *
sp_tls_read(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (f == NULL) {
		return (NULL);
	}
	for (;;) {
		if (cap - len < 4096) {
			char *b = cap > (1u << 20) ? NULL : realloc(buf, cap + 8192);
			if (b == NULL) {
				free(buf);
				fclose(f);
				errno = EFBIG;
				return (NULL);
			}
			buf = b, cap += 8192;
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0) {
			break;
		}
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		errno = EIO;
		return (NULL);
	}
	buf[len] = '\0';
	return (buf);
}

int
sp_tls_config_new(nng_tls_config **out, bool server, const char *ca, const char *cert, const char *key,
    char *err, size_t errlen)
{
	nng_tls_config *cfg;
	int rv;

	*out = NULL;
	if ((cert == NULL) != (key == NULL)) {
		snprintf(err, errlen, "TLS: a certificate needs its key, and a key its certificate");
		return (NNG_EINVAL);
	}
	if (server && cert == NULL) {
		snprintf(err, errlen, "TLS: a server needs a certificate and its key");
		return (NNG_EINVAL);
	}
	if ((rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT)) != 0) {
		snprintf(err, errlen, "TLS: %s", nng_strerror(rv));
		return (rv);
	}
	if (cert != NULL) {
		char *c = sp_tls_read(cert), *k = c != NULL ? sp_tls_read(key) : NULL;
		if (c == NULL || k == NULL) {
			snprintf(err, errlen, "TLS: %s: %s", c == NULL ? cert : key, strerror(errno));
			free(c);
			nng_tls_config_free(cfg);
			return (NNG_ENOENT);
		}
		rv = nng_tls_config_own_cert(cfg, c, k, NULL);
		explicit_bzero(k, strlen(k));
		free(c);
		free(k);
		if (rv != 0) {
			snprintf(err, errlen, "TLS: %s and %s: %s", cert, key, nng_strerror(rv));
			nng_tls_config_free(cfg);
			return (rv);
		}
	}
	if (ca != NULL && (rv = nng_tls_config_ca_file(cfg, ca)) != 0) {
		snprintf(err, errlen, "TLS: CA %s: %s", ca, nng_strerror(rv));
		nng_tls_config_free(cfg);
		return (rv);
	}
	/* A server with a CA requires client certificates; a client always verifies the server. */
	nng_tls_auth_mode mode = ca != NULL ? NNG_TLS_AUTH_MODE_REQUIRED
	                                    : (server ? NNG_TLS_AUTH_MODE_NONE : NNG_TLS_AUTH_MODE_REQUIRED);
	if ((rv = nng_tls_config_auth_mode(cfg, mode)) != 0) {
		snprintf(err, errlen, "TLS: %s", nng_strerror(rv));
		nng_tls_config_free(cfg);
		return (rv);
	}
	*out = cfg;
	return (0);
}

bool
sp_tls_url(const char *url)
{
	return (strncmp(url, "tls+", 4) == 0 || strncmp(url, "wss", 3) == 0);
}

int
sp_dial(nng_socket s, const char *url, nng_tls_config *tls)
{
	nng_dialer d;
	int rv;

	if ((rv = nng_dialer_create(&d, s, url)) != 0) {
		return (rv);
	}
	if (sp_tls_url(url) && tls != NULL && (rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls)) != 0) {
		nng_dialer_close(d);
		return (rv);
	}
	if ((rv = nng_dialer_start(d, 0)) != 0) {
		nng_dialer_close(d);
	}
	return (rv);
}
