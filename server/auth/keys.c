#include "auth/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <mbedtls/sha256.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/ids.h"
#include "base/util.h"
#include "sp_pb.h"

#define KEYS_PREFIX "key_"
#define KEYS_SECRET_PREFIX "spk_"
#define KEYS_SECRET_BYTES 32
#define KEYS_SECRET_LEN (4 + 2 * KEYS_SECRET_BYTES)
#define KEYS_NAME_MAX 128
#define KEYS_MAX 256
/* last_used_at_ms reaches the store at most this often per key. */
#define KEYS_USED_PERSIST_MS 60000

typedef struct key_entry {
	uint64_t seq; /* the replay cache's caller: never 0, never reused while the server runs */
	uint8_t hash[32];
	char id[IDS_MAX];
	char name[KEYS_NAME_MAX + 1];
	int role;
	char tenant[64];
	char sandbox_id[32];
	int64_t created_at_ms, last_used_at_ms, expires_at_ms;
	int64_t persisted_used_ms;
} key_entry;

struct keys {
	store *st;
	pthread_mutex_t mu;
	key_entry *v; /* [KEYS_MAX] */
	size_t n;
	uint64_t next_seq;
};

const char *
keys_role_name(int role)
{
	switch (role) {
	case SP_ROLE_VIEWER:
		return ("viewer");
	case SP_ROLE_DEVELOPER:
		return ("developer");
	case SP_ROLE_ADMIN:
		return ("admin");
	default:
		return ("none");
	}
}

static void
keys_hash(const char *secret, uint8_t out[32])
{
	mbedtls_sha256_ret((const unsigned char *)secret, strlen(secret), out, 0);
}

/* Equal, in time that does not depend on where they differ. */
static bool
keys_same(const uint8_t *a, const uint8_t *b)
{
	uint8_t d = 0;

	for (size_t i = 0; i < 32; i++) {
		d |= (uint8_t)(a[i] ^ b[i]);
	}
	return (d == 0);
}

static void
keys_to_record(const key_entry *e, sandproc_v1_Key *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", e->id);
	r->name = e->name;
	r->role = (sandproc_v1_Role)e->role;
	snprintf(r->tenant, sizeof(r->tenant), "%s", e->tenant);
	snprintf(r->sandbox_id, sizeof(r->sandbox_id), "%s", e->sandbox_id);
	r->created_at_ms = e->created_at_ms;
	r->last_used_at_ms = e->last_used_at_ms;
	r->expires_at_ms = e->expires_at_ms;
}

/* Writes e's record (never its secret): a new row when insert, else the existing one only. */
static int
keys_persist(keys *k, const key_entry *e, bool insert)
{
	sandproc_v1_Key r;
	uint8_t buf[1024];
	size_t len = 0;

	keys_to_record(e, &r);
	if (!sp_pb_encode(sandproc_v1_Key_fields, &r, buf, sizeof(buf), &len, NULL)) {
		return (EOVERFLOW);
	}
	return (insert ? store_put_key(k->st, e->id, e->hash, buf, len)
	               : store_update_key(k->st, e->id, buf, len));
}

static void
keys_load_one(void *arg, const uint8_t *hash, size_t hashlen, const void *record, size_t len)
{
	keys *k = arg;
	sandproc_v1_Key r;
	sp_arena *a = sp_arena_new();

	memset(&r, 0, sizeof(r));
	if (a == NULL || hashlen != 32 || k->n == KEYS_MAX ||
	    !sp_pb_decode(sandproc_v1_Key_fields, &r, sizeof(r), record, len, a, NULL) ||
	    !ids_valid(r.id, KEYS_PREFIX)) {
		util_log("a stored key could not be read: skipped");
		sp_arena_free(a);
		return;
	}
	key_entry *e = &k->v[k->n++];
	memset(e, 0, sizeof(*e));
	e->seq = k->next_seq++;
	memcpy(e->hash, hash, 32);
	snprintf(e->id, sizeof(e->id), "%s", r.id);
	snprintf(e->name, sizeof(e->name), "%s", r.name != NULL ? r.name : "");
	e->role = r.role;
	snprintf(e->tenant, sizeof(e->tenant), "%s", r.tenant);
	snprintf(e->sandbox_id, sizeof(e->sandbox_id), "%s", r.sandbox_id);
	e->created_at_ms = r.created_at_ms;
	e->last_used_at_ms = e->persisted_used_ms = r.last_used_at_ms;
	e->expires_at_ms = r.expires_at_ms;
	sp_arena_free(a);
}

int
keys_open(keys **out, store *st, char *err, size_t errlen)
{
	keys *k = calloc(1, sizeof(*k));
	int rv;

	if (k == NULL || (k->v = calloc(KEYS_MAX, sizeof(*k->v))) == NULL) {
		free(k);
		snprintf(err, errlen, "out of memory");
		return (ENOMEM);
	}
	k->st = st;
	k->next_seq = 1;
	pthread_mutex_init(&k->mu, NULL);
	if ((rv = store_for_each_key(st, keys_load_one, k)) != 0) {
		snprintf(err, errlen, "reading keys: %s", store_errmsg());
		keys_close(k);
		return (rv);
	}
	*out = k;
	return (0);
}

void
keys_close(keys *k)
{
	if (k == NULL) {
		return;
	}
	/* Each key's last use, if newer than what the store has. */
	for (size_t i = 0; i < k->n; i++) {
		if (k->v[i].last_used_at_ms != k->v[i].persisted_used_ms) {
			keys_persist(k, &k->v[i], false);
		}
	}
	pthread_mutex_destroy(&k->mu);
	free(k->v);
	free(k);
}

/* A new secret: "spk_" + 64 hex of getrandom bytes. */
static void
keys_new_secret(char out[KEYS_SECRET_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t r[KEYS_SECRET_BYTES];
	size_t got = 0;

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
		if (n > 0) {
			got += (size_t)n;
		}
	}
	memcpy(out, KEYS_SECRET_PREFIX, 4);
	for (size_t i = 0; i < sizeof(r); i++) {
		out[4 + 2 * i] = hex[r[i] >> 4];
		out[4 + 2 * i + 1] = hex[r[i] & 15];
	}
	out[KEYS_SECRET_LEN] = '\0';
	explicit_bzero(r, sizeof(r));
}

/* Tenants and names as ids: letters, digits, '-', '_', '.'. */
static bool
keys_plain(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max) {
		return (false);
	}
	for (; *s != '\0'; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		        *s == '-' || *s == '_' || *s == '.')) {
			return (false);
		}
	}
	return (true);
}

/* Adds a key; the secret goes to secret (KEYS_SECRET_LEN + 1 bytes). Caller holds nothing. */
static int
keys_add(keys *k, const char *name, int role, const char *tenant, const char *sandbox_id,
    int64_t expires_at_ms, key_entry *copy, char *secret, char *err, size_t errlen)
{
	key_entry e;
	int rv;

	memset(&e, 0, sizeof(e));
	keys_new_secret(secret);
	keys_hash(secret, e.hash);
	ids_new(e.id, KEYS_PREFIX);
	snprintf(e.name, sizeof(e.name), "%s", name);
	e.role = role;
	snprintf(e.tenant, sizeof(e.tenant), "%s", tenant);
	snprintf(e.sandbox_id, sizeof(e.sandbox_id), "%s", sandbox_id);
	e.created_at_ms = util_now_ms();
	e.expires_at_ms = expires_at_ms;
	pthread_mutex_lock(&k->mu);
	if (k->n == KEYS_MAX) {
		pthread_mutex_unlock(&k->mu);
		snprintf(err, errlen, "there are %d keys already: revoke some first", KEYS_MAX);
		explicit_bzero(secret, KEYS_SECRET_LEN);
		return (SP_RESOURCE_EXHAUSTED);
	}
	/* Stored before it is usable: a key the store lost must not work now and vanish on restart. */
	if ((rv = keys_persist(k, &e, true)) != 0) {
		pthread_mutex_unlock(&k->mu);
		snprintf(err, errlen, "storing the key: %s", store_errmsg());
		explicit_bzero(secret, KEYS_SECRET_LEN);
		return (rv == ENOSPC ? SP_RESOURCE_EXHAUSTED : SP_UNAVAILABLE);
	}
	e.seq = k->next_seq++;
	k->v[k->n++] = e;
	*copy = e;
	pthread_mutex_unlock(&k->mu);
	return (SP_OK);
}

/* Writes secret to path, 0600, through a temporary file renamed over it. An errno. */
static int
keys_write_secret(const char *path, const char *secret)
{
	char tmp[4200];
	int fd, rv = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		return (errno);
	}
	size_t n = strlen(secret);
	if (write(fd, secret, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
		rv = errno != 0 ? errno : EIO;
	}
	if (close(fd) != 0 && rv == 0) {
		rv = errno;
	}
	if (rv == 0 && rename(tmp, path) != 0) {
		rv = errno;
	}
	if (rv != 0) {
		unlink(tmp);
	}
	return (rv);
}

int
keys_bootstrap(keys *k, const char *path, bool *made, char *err, size_t errlen)
{
	char secret[KEYS_SECRET_LEN + 1];
	key_entry e;
	int rv;

	*made = false;
	pthread_mutex_lock(&k->mu);
	for (size_t i = 0; i < k->n; i++) {
		if (k->v[i].role == SP_ROLE_ADMIN && k->v[i].expires_at_ms == 0) {
			pthread_mutex_unlock(&k->mu);
			return (0);
		}
	}
	pthread_mutex_unlock(&k->mu);
	if (keys_add(k, "admin", SP_ROLE_ADMIN, "default", "", 0, &e, secret, err, errlen) != SP_OK) {
		return (EIO);
	}
	rv = keys_write_secret(path, secret);
	explicit_bzero(secret, sizeof(secret));
	if (rv != 0) {
		snprintf(err, errlen, "writing %s: %s", path, strerror(rv));
		return (rv);
	}
	*made = true;
	return (0);
}

int
keys_authorize(void *arg, sp_call *call)
{
	keys *k = arg;
	const char *token = call->token != NULL ? call->token : "";
	const sp_method *m = call->method;
	uint8_t h[32];
	key_entry e;
	bool found = false;
	int64_t now = util_now_ms(), persist_used = 0;

	if (token[0] == '\0') {
		return (sp_call_error(call, SP_UNAUTHENTICATED,
		    "%s needs a key: pass one with --token or SANDPROC_TOKEN (an admin's is in the server's "
		    "data dir, admin.key)",
		    m->name));
	}
	if (strlen(token) != KEYS_SECRET_LEN || strncmp(token, KEYS_SECRET_PREFIX, 4) != 0) {
		return (sp_call_error(call, SP_UNAUTHENTICATED,
		    "%s: that is not a key (keys are spk_ + 64 hex digits)", m->name));
	}
	keys_hash(token, h);
	pthread_mutex_lock(&k->mu);
	/* Every key is compared, found or not: the time taken says nothing about which matched. */
	for (size_t i = 0; i < k->n; i++) {
		if (keys_same(k->v[i].hash, h)) {
			e = k->v[i];
			found = true;
			if (e.expires_at_ms == 0 || now < e.expires_at_ms) {
				k->v[i].last_used_at_ms = now;
				if (now - k->v[i].persisted_used_ms >= KEYS_USED_PERSIST_MS) {
					k->v[i].persisted_used_ms = persist_used = now;
					e.last_used_at_ms = now;
				}
			}
		}
	}
	pthread_mutex_unlock(&k->mu);
	if (!found) {
		return (sp_call_error(call, SP_UNAUTHENTICATED, "%s: unknown or revoked key", m->name));
	}
	if (e.expires_at_ms != 0 && now >= e.expires_at_ms) {
		return (sp_call_error(call, SP_UNAUTHENTICATED, "%s: key %s expired %lld s ago", m->name,
		    e.id, (long long)((now - e.expires_at_ms) / 1000)));
	}
	if (persist_used != 0) {
		/* An UPDATE: a key revoked meanwhile stays gone. */
		keys_persist(k, &e, false);
	}
	if (e.role < m->role) {
		return (sp_call_error(call, SP_PERMISSION_DENIED, "%s needs a %s key; key %s is a %s",
		    m->name, keys_role_name(m->role), e.id, keys_role_name(e.role)));
	}
	call->caller = e.seq;
	call->role = e.role;
	snprintf(call->tenant, sizeof(call->tenant), "%s", e.tenant);
	snprintf(call->key_sandbox, sizeof(call->key_sandbox), "%s", e.sandbox_id);
	snprintf(call->key_id, sizeof(call->key_id), "%s", e.id);
	return (SP_OK);
}

int
keys_create(keys *k, const sandproc_v1_CreateKeyRequest *req, sandproc_v1_Key *out, char *err, size_t errlen)
{
	const char *name = req->name != NULL ? req->name : "";
	const char *tenant = req->tenant[0] != '\0' ? req->tenant : "default";
	key_entry e;
	int code;

	if (req->role < SP_ROLE_VIEWER || req->role > SP_ROLE_ADMIN) {
		snprintf(err, errlen, "role must be viewer, developer or admin");
		return (SP_INVALID_ARGUMENT);
	}
	if (name[0] != '\0' && !keys_plain(name, KEYS_NAME_MAX)) {
		snprintf(err, errlen, "name may have only letters, digits, '-', '_' and '.' (at most %d)",
		    KEYS_NAME_MAX);
		return (SP_INVALID_ARGUMENT);
	}
	if (!keys_plain(tenant, 63)) {
		snprintf(err, errlen, "tenant may have only letters, digits, '-', '_' and '.' (at most 63)");
		return (SP_INVALID_ARGUMENT);
	}
	if (req->sandbox_id[0] != '\0' && !ids_valid(req->sandbox_id, "sbx_")) {
		snprintf(
		    err, errlen, "sandbox_id \"%s\" is not a sandbox id (sbx_ + 24 hex)", req->sandbox_id);
		return (SP_INVALID_ARGUMENT);
	}
	if (req->sandbox_id[0] != '\0' && req->role == SP_ROLE_ADMIN) {
		snprintf(err, errlen, "an admin key cannot be limited to a sandbox");
		return (SP_INVALID_ARGUMENT);
	}
	if (req->expires_s > 100ull * 365 * 24 * 3600) {
		snprintf(err, errlen, "expires_s is over 100 years");
		return (SP_INVALID_ARGUMENT);
	}
	int64_t expires = req->expires_s == 0 ? 0 : util_now_ms() + (int64_t)req->expires_s * 1000;
	char secret[KEYS_SECRET_LEN + 1];
	if ((code = keys_add(
	         k, name, req->role, tenant, req->sandbox_id, expires, &e, secret, err, errlen)) != SP_OK) {
		return (code);
	}
	keys_to_record(&e, out);
	out->name = name;
	_Static_assert(sizeof(out->secret) >= sizeof(secret), "the secret fits the record");
	memcpy(out->secret, secret, sizeof(secret));
	explicit_bzero(secret, sizeof(secret));
	return (SP_OK);
}

int
keys_list(keys *k, sandproc_v1_ListKeysReply *out, sp_arena *arena)
{
	int code = SP_OK;

	pthread_mutex_lock(&k->mu);
	for (size_t i = 0; i < k->n && out->keys_count < sizeof(out->keys) / sizeof(out->keys[0]); i++) {
		sandproc_v1_Key *r = &out->keys[out->keys_count++];
		keys_to_record(&k->v[i], r);
		if ((r->name = sp_arena_strdup(arena, k->v[i].name)) == NULL) {
			code = SP_RESOURCE_EXHAUSTED;
			break;
		}
	}
	pthread_mutex_unlock(&k->mu);
	return (code);
}

int
keys_revoke(keys *k, const char *id, char *err, size_t errlen)
{
	int rv;

	pthread_mutex_lock(&k->mu);
	size_t i = 0;
	while (i < k->n && strcmp(k->v[i].id, id) != 0) {
		i++;
	}
	if (i == k->n) {
		pthread_mutex_unlock(&k->mu);
		snprintf(err, errlen, "no key \"%s\"", id);
		return (SP_NOT_FOUND);
	}
	/* Gone from the store first: a revocation the disk lost would come back on restart. */
	if ((rv = store_delete_key(k->st, id)) != 0) {
		pthread_mutex_unlock(&k->mu);
		snprintf(err, errlen, "revoking %s: %s", id, store_errmsg());
		return (rv == ENOSPC ? SP_RESOURCE_EXHAUSTED : SP_UNAVAILABLE);
	}
	k->v[i] = k->v[--k->n];
	pthread_mutex_unlock(&k->mu);
	return (SP_OK);
}
