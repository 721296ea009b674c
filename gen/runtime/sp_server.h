/*
 * The serving side's view of the generated tables: a handler per method,
 * indexed by method id (the plugin's *.srv.c files). sp_call is the
 * server's own per-call state; handlers reach it through the server's API.
 */
#ifndef SP_SERVER_H
#define SP_SERVER_H

#include "sp_rpc.h"

typedef struct sp_call sp_call;

/* Returns an sp_status; the reply message is rep. */
typedef int (*sp_handler)(sp_call *call, const void *req, void *rep);

typedef struct sp_server_service {
	const sp_service *service;
	const sp_handler *handlers; /* [service->count], by method id */
} sp_server_service;

#endif
