/*
 * sp_client: the calling side of a channel (nng REQ). Generated stubs call
 * sp_client_call with their method's table entry.
 */
#ifndef SP_CLIENT_H
#define SP_CLIENT_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "sp_rpc.h"

typedef struct sp_client sp_client;

/* A client that is not connected yet; NULL when out of memory. */
sp_client *sp_client_new(void);
/* Closes the socket and frees the client and everything its replies hold. */
void sp_client_free(sp_client *c);

/*
 * Dials url (any nng URL). Returns SP_OK, or SP_UNAVAILABLE when nothing
 * answers there (message in sp_client_error). Once connected, nng redials by
 * itself if the server goes away and comes back.
 */
int sp_client_connect(sp_client *c, const char *url);

/* TLS for tls+tcp:// and wss:// URLs (sp_tls.h); held until freed or replaced. Before connecting. */
void sp_client_set_tls(sp_client *c, nng_tls_config *tls);

/* Token sent with every call (copied; NULL for none). */
void sp_client_set_token(sp_client *c, const char *token);

/* Default per-call timeout in ms for calls passing timeout_ms 0 (30000). */
void sp_client_set_timeout(sp_client *c, int timeout_ms);

/*
 * Calls m with req and decodes the reply into rep (zeroed first).
 * timeout_ms: 0 = the client's default, < 0 = none. Returns the status code;
 * on failure the message is in sp_client_error. Callback fields of rep (and
 * strings) live in the client's arena until its next call.
 * One thread at a time per client.
 */
int sp_client_call(sp_client *c, const sp_method *m, const void *req, void *rep, int timeout_ms);

/* The message of the last failed call ("" after a success). */
const char *sp_client_error(const sp_client *c);

/* The arena of the last reply; callers may allocate request data there too. */
sp_arena *sp_client_arena(sp_client *c);

#endif
