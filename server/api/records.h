/* What several handlers share: reading a process record the way every call sees it. */
#ifndef API_RECORDS_H
#define API_RECORDS_H

#include "rpc/call.h"
#include "sandproc/v1/processes.pb.h"

/*
 * Reads record id (strings in the call's arena): the supervisor's while it
 * holds the process, else the store's. NOT_FOUND for unknown or malformed
 * ids, with the call's message set.
 */
int api_get_record(sp_call *call, const char *id, sandproc_v1_Process *out);

/* The call's status for errno rv from the store (message set; id names the record, if any). */
int api_store_error(sp_call *call, int rv, const char *id);

#endif
