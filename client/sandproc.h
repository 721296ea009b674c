/*
 * libsandproc: the client library for sandprocd.
 *
 * Every RPC has a generated stub (the generated sandproc/v1 .rpc.h headers, included here):
 *   int sp_processes_start(sp_client *c, const sandproc_v1_StartRequest *req,
 *                          sandproc_v1_Process *rep, int timeout_ms);
 * Each returns an sp_status (SP_OK = 0); on failure sp_client_error(c)
 * holds the server's message. Strings and bytes in a reply live until the
 * next call on the same client. One thread at a time per client.
 *
 * This header adds: connecting by flag, environment or default; following a
 * process's output with gap filling; and exec conveniences.
 */
#ifndef SANDPROC_H
#define SANDPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sandproc/v1/events.rpc.h"
#include "sandproc/v1/keys.rpc.h"
#include "sandproc/v1/ports.rpc.h"
#include "sandproc/v1/processes.rpc.h"
#include "sandproc/v1/sandboxes.rpc.h"
#include "sandproc/v1/system.rpc.h"
#include "sp_client.h"
#include "sp_json.h"
#include "sp_limits.h"
#include "sp_rpc.h"
#include "sp_tls.h"

#define SP_DEFAULT_URL "tcp://127.0.0.1:7300"
#define SP_DEFAULT_EVENTS_URL "tcp://127.0.0.1:7301"
/* The server's default data dir, where it writes admin.key on first start. */
#define SP_DEFAULT_DATA "./.sandproc"

/* url if set, else $SANDPROC_URL, else SP_DEFAULT_URL. */
const char *sp_resolve_url(const char *url);
/* url if set, else $SANDPROC_EVENTS_URL, else SP_DEFAULT_EVENTS_URL. */
const char *sp_resolve_events_url(const char *url);

/*
 * The key to call with when none is given: $SANDPROC_TOKEN, else the first
 * line of admin.key in $SANDPROC_DATA (default SP_DEFAULT_DATA) when this
 * user can read it. False when there is none.
 */
bool sp_default_token(char *out, size_t len);

/* Dials the feed at url with SUB socket s (TLS from sp_tls_from_env for tls+tcp:// and wss://); an nng error.
 */
int sp_feed_dial(nng_socket s, const char *url);

/* A client TLS configuration from $SANDPROC_TLS_CA, $SANDPROC_TLS_CERT and $SANDPROC_TLS_KEY. */
int sp_tls_from_env(nng_tls_config **out, char *err, size_t errlen);

/*
 * Connects a new client to sp_resolve_url(url), with token (NULL or "":
 * sp_default_token), and for tls+tcp:// or wss:// the TLS of
 * sp_tls_from_env. On failure returns the status, writes the reason to err
 * and sets *out to NULL.
 */
int sp_connect(sp_client **out, const char *url, const char *token, char *err, size_t errlen);

/*
 * Calls Health until it answers or timeout_ms passes: for scripts that
 * start a server and must wait until it serves.
 */
int sp_wait_healthy(sp_client *c, int timeout_ms);

/*
 * Waits until sandbox id is ready, failed or gone, up to timeout_s (0 =
 * 30): the server-side WaitReady, or, from a server without it
 * (UNIMPLEMENTED), Readiness polled every 10 ms. SP_OK with rep->ready
 * saying whether it is; or the call's error.
 */
int sp_sandbox_wait_ready(sp_client *c, const char *id, uint32_t timeout_s, sandproc_v1_ReadinessReply *rep);

/* Called for each output entry, in sequence order; non-zero stops the follow. */
typedef int (*sp_follow_fn)(void *arg, const sandproc_v1_LogEntry *entry);

typedef struct sp_follow_opts {
	const char *events_url;    /* NULL: sp_resolve_events_url(NULL); "none": no feed, Logs long polls */
	sandproc_v1_Stream stream; /* 0 = every stream */
	uint32_t tail;             /* start with only the last N lines; 0 = all */
	uint32_t tail_entries;     /* or with only the last N entries (when tail is 0) */
	uint64_t after_sequence;   /* start after this sequence (instead of tail) */
	int poll_ms;               /* how often to check when the feed is quiet; 0 = 500 */
	bool live_only;            /* skip history: only what comes after the follow starts */
	int recv_buffer;           /* feed messages queued locally; 0 = 1024 */
	uint64_t *gaps_filled;     /* if set, counts gaps in the feed filled from the log */
	const int
	    *stop; /* if set, the follow ends (SP_CANCELLED) once *stop is non-zero: seen within poll_ms */
	/*
	 * How long to keep trying while the server cannot be reached (it is
	 * restarting: its processes go on, and so does the follow, from where
	 * it was); 0 = give up at the first call that fails that way.
	 */
	int reconnect_ms;
} sp_follow_opts;

/*
 * Follows process id's output: subscribes to the event feed first, reads
 * the history with Logs, then live entries, filling any gap (PUB drops for
 * slow subscribers) with Logs(after_sequence). Every entry is delivered
 * exactly once, in order. Returns when the process has ended and all of
 * its output was delivered (final gets its record, if not NULL), when fn
 * returns non-zero (SP_CANCELLED), or on an error.
 */
int sp_follow(sp_client *c, const char *id, const sp_follow_opts *opts, sp_follow_fn fn, void *arg,
    sandproc_v1_Process *final);

/* Run "bash -c command" (timeout_ms 0 = server default). */
int sp_exec_bash(sp_client *c, const char *command, uint32_t timeout_ms, sandproc_v1_RunReply *rep);
/* Run "python3 -c code". */
int sp_exec_python(sp_client *c, const char *code, uint32_t timeout_ms, sandproc_v1_RunReply *rep);

/* The client-side timeout for a call whose server side may take server_ms. */
int sp_call_timeout(uint32_t server_ms);

#endif
