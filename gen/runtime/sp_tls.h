/* TLS configurations for nng's tls+tcp:// and wss://, from PEM files. */
#ifndef SP_TLS_H
#define SP_TLS_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * A server or client configuration. ca: verify the peer against these
 * certificates (a server then requires client certificates; NULL: a server
 * asks for none, a client trusts nobody and so cannot connect). cert and
 * key: our own certificate and its private key (both or neither; a server
 * needs them). Returns 0, or an nng error with the cause in err.
 */
int sp_tls_config_new(nng_tls_config **out, bool server, const char *ca, const char *cert, const char *key,
    char *err, size_t errlen);

/* Whether url needs TLS: tls+tcp:// or wss://. */
bool sp_tls_url(const char *url);

/*
 * Dials url with s (blocking, like nng_dial), with tls on a TLS URL (held
 * by the dialer; NULL: nng's default, which trusts nobody). An nng error.
 */
int sp_dial(nng_socket s, const char *url, nng_tls_config *tls);

#endif
