/* What several handlers share: reading a process record the way every call sees it. */
#ifndef API_RECORDS_H
#define API_RECORDS_H

#include <stdbool.h>

#include "rpc/call.h"
#include "sandproc/v1/processes.pb.h"

/*
 * Reads record id (strings in the call's arena): the supervisor's while it
 * holds the process, else the store's. NOT_FOUND for unknown or malformed
 * ids, with the call's message set.
 */
int api_get_record(sp_call *call, const char *id, sandproc_v1_Process *out);

/*
 * Whether the call's key may see a record of tenant in sandbox sandbox_id:
 * an admin's sees everything; another key only its tenant's sandboxes (not
 * the host's processes, which run as the server), and only its sandbox
 * when it is limited to one. What it may not see is NOT_FOUND to it.
 */
bool api_visible(const sp_call *call, const char *tenant, const char *sandbox_id);

/*
 * Where a Start or Run of the call may go: OK for the host (admin keys) or
 * one of its tenant's sandboxes, with tenant (64 bytes) set to whose the
 * process is; else the status, message set.
 */
int api_place_check(sp_call *call, const char *sandbox_id, char *tenant);

/* SP_OK when sandbox id exists and the call's key may see it; else NOT_FOUND (message set), as for an unknown
 * id. */
int api_sandbox_check(sp_call *call, const char *id);

/* The call's status for errno rv from the store (message set; id names the record, if any). */
int api_store_error(sp_call *call, int rv, const char *id);

#endif
