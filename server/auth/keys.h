/*
 * Keys: who may call, as what, over whose records.
 *
 * A key's secret ("spk_" + 64 hex, 32 random bytes) is shown once, in
 * CreateKey's reply; the server keeps its SHA-256 (store table keys) and
 * the record. All keys are in memory: a call hashes its token once and
 * compares it in constant time with each key's hash (a handful of keys;
 * the scan costs less than the hash). The dispatcher calls keys_authorize
 * for every request before its body is read (rpc_config.authorize).
 */
#ifndef AUTH_KEYS_H
#define AUTH_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "rpc/call.h"
#include "sandproc/v1/keys.pb.h"
#include "store/store.h"

typedef struct keys keys;

/* Loads every key from st. */
int keys_open(keys **out, store *st, char *err, size_t errlen);
void keys_close(keys *k);

/*
 * When no admin key exists: makes one and writes its secret to path (mode
 * 0600, replacing a stale file). *made tells whether it did. An errno.
 */
int keys_bootstrap(keys *k, const char *path, bool *made, char *err, size_t errlen);

/* rpc_config.authorize: checks call->token and the method's role; fills the call's caller fields. */
int keys_authorize(void *k, sp_call *call);

/* The calls of sandproc.v1.Keys; statuses, with err set on failure. */
int keys_create(
    keys *k, const sandproc_v1_CreateKeyRequest *req, sandproc_v1_Key *out, char *err, size_t errlen);
int keys_list(keys *k, sandproc_v1_ListKeysReply *out, sp_arena *arena);
int keys_revoke(keys *k, const char *id, char *err, size_t errlen);

/* "viewer", "developer", "admin" (or "none"). */
const char *keys_role_name(int role);

#endif
