/*
 * The parts of one running sandprocd, as the handlers reach them.
 */
#ifndef SERVER_H
#define SERVER_H

#include <pthread.h>
#include <stdint.h>

#include "base/config.h"
#include "base/timers.h"
#include "base/workq.h"
#include "events/publisher.h"
#include "proc/supervisor.h"
#include "store/store.h"
#include "store/store_queue.h"

typedef struct rpc_server rpc_server;

typedef struct server {
	char data_dir[4096];
	char log_dir[4096];
	store *store;
	store_queue *sq;
	publisher *pub;
	supervisor *sup;
	struct sandboxes *sbx;
	struct ports *ports;
	struct keys *keys;          /* NULL with --auth none */
	struct nng_tls_config *tls; /* for tls+tcp:// and wss:// listeners; NULL without --tls-cert */
	workq *wq;
	timers *timers;
	rpc_server *rpc;
	config_holder cfg;
	pthread_mutex_t set_config_mu; /* one SetConfig at a time */
	int64_t started_at_ms;
	int64_t started_mono_ms;
} server;

#endif
