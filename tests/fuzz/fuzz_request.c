/*
 * libFuzzer: any bytes as a request to a real server in this process: the
 * envelope decoder, the method lookup, the replay cache, every request
 * decoder and every handler that starts no process (Run and Start answer
 * UNIMPLEMENTED here; with no process running nothing can park). The
 * server is the real one (store in a temp dir, supervisor, feed socket);
 * only the transport is replaced: replies come back to this thread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/records.h"
#include "base/util.h"
#include "ports/ports.h"
#include "rpc/internal.h"
#include "sandproc/v1/processes.srv.h"
#include "sandproc/v1/system.srv.h"
#include "server.h"

static server fz_srv;
static rpc_server fz_rs;
static rpc_ctx fz_ctx;
static size_t fz_replies;

/* The transport dispatch.c talks to, with no sockets. */
void
transport_reply(rpc_ctx *x, nng_msg *reply)
{
	(void)x;
	if (reply != NULL) {
		fz_replies++;
		nng_msg_free(reply);
	}
}

void
transport_hold(rpc_server *rs)
{
	(void)rs;
}

uint32_t
transport_pipe(const nng_msg *m)
{
	(void)m;
	return (1);
}

static int
fz_no_spawning(sp_call *call, const void *req, void *rep)
{
	(void)req;
	(void)rep;
	return (sp_call_error(call, SP_UNIMPLEMENTED, "not in the fuzzer"));
}

static sp_handler fz_handlers[SP_PROCESSES_METHOD_COUNT];
static sp_server_service fz_processes;
static const sp_server_service *fz_services[] = { &sp_system_server, &fz_processes, NULL };
static const sp_method *fz_inline[SP_PROCESSES_METHOD_COUNT + SP_SYSTEM_METHOD_COUNT + 1];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/sandproc-fuzz-XXXXXX", err[512], db[4200];
	size_t n = 0;

	(void)argc;
	(void)argv;
	if (mkdtemp(dir) == NULL) {
		abort();
	}
	snprintf(fz_srv.data_dir, sizeof(fz_srv.data_dir), "%s", dir);
	snprintf(fz_srv.log_dir, sizeof(fz_srv.log_dir), "%s/logs", dir);
	util_mkdirs(fz_srv.log_dir);
	snprintf(db, sizeof(db), "%s/sandproc.db", dir);
	pthread_mutex_init(&fz_srv.cfg.mu, NULL);
	pthread_mutex_init(&fz_srv.set_config_mu, NULL);
	config_defaults(&fz_srv.cfg.c);
	if (store_open(&fz_srv.store, db, err, sizeof(err)) != 0 ||
	    store_queue_new(&fz_srv.sq, fz_srv.store) != 0 || workq_new(&fz_srv.wq, 1, 4, 1000) != 0 ||
	    timers_new(&fz_srv.timers) != 0 || publisher_new(&fz_srv.pub, err, sizeof(err)) != 0) {
		abort();
	}
	supervisor_config sc = { .st = fz_srv.store,
		.sq = fz_srv.sq,
		.pub = fz_srv.pub,
		.cfg = &fz_srv.cfg,
		.wq = fz_srv.wq,
		.data_dir = fz_srv.data_dir,
		.log_dir = fz_srv.log_dir };
	if (supervisor_new(&fz_srv.sup, &sc, err, sizeof(err)) != 0) {
		abort();
	}
	/* WaitFor asks the ports (no sandboxes here: only the host's processes, and none run). */
	ports_config pc = { .sup = fz_srv.sup, .pub = fz_srv.pub, .expose_host = "127.0.0.1" };
	if (ports_new(&fz_srv.ports, &pc, err, sizeof(err)) != 0) {
		abort();
	}
	/* Every method is carried out here, at once; the two that start processes are left out. */
	memcpy(fz_handlers, sp_processes_server.handlers, sizeof(fz_handlers));
	fz_handlers[SP_PROCESSES_RUN] = fz_no_spawning;
	fz_handlers[SP_PROCESSES_START] = fz_no_spawning;
	fz_processes = (sp_server_service){ sp_processes_server.service, fz_handlers };
	for (size_t i = 0; i < SP_PROCESSES_METHOD_COUNT; i++) {
		fz_inline[n++] = &sp_processes_methods[i];
	}
	for (size_t i = 0; i < SP_SYSTEM_METHOD_COUNT; i++) {
		fz_inline[n++] = &sp_system_methods[i];
	}
	fz_rs.cfg = (rpc_config){ .srv = &fz_srv,
		.services = fz_services,
		.inline_methods = fz_inline,
		.wq = fz_srv.wq,
		.timers = fz_srv.timers,
		.max_request_bytes = 8u << 20 };
	fz_rs.dedup = dedup_new(4096, 32u << 20, 4u << 20, 600000);
	pthread_mutex_init(&fz_rs.mu, NULL);
	pthread_cond_init(&fz_rs.idle, NULL);
	fz_ctx.rs = &fz_rs;
	fz_ctx.arena = sp_arena_new();
	return (0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nng_msg *m;

	if (nng_msg_alloc(&m, size) != 0) {
		return (0);
	}
	memcpy(nng_msg_body(m), data, size);
	size_t before = fz_replies;
	dispatch_request(&fz_rs, &fz_ctx, m);
	/* Every request gets exactly one reply, at once (nothing parks with no process running). */
	if (fz_replies != before + 1 || atomic_load(&fz_rs.inflight) != 0) {
		abort();
	}
	return (0);
}
