#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"

/*
 * Each migration moves the schema one version up, inside one transaction.
 * Never edit a migration that has shipped; add the next one.
 */
static const char *const store_migrations[] = {
	/* 1: process records and config */
	"CREATE TABLE processes ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" id TEXT NOT NULL UNIQUE,"
	" sandbox_id TEXT NOT NULL,"
	" argv BLOB NOT NULL,"
	" cwd TEXT NOT NULL,"
	" env BLOB NOT NULL,"
	" labels BLOB NOT NULL,"
	" name TEXT NOT NULL,"
	" tty INTEGER NOT NULL,"
	" cols INTEGER NOT NULL,"
	" rows INTEGER NOT NULL,"
	" timeout_s INTEGER NOT NULL,"
	" pid INTEGER NOT NULL,"
	" pid_start INTEGER NOT NULL,"
	" boot_id TEXT NOT NULL,"
	" state INTEGER NOT NULL,"
	" exit_code INTEGER NOT NULL,"
	" signal INTEGER NOT NULL,"
	" started_at_ms INTEGER NOT NULL,"
	" exited_at_ms INTEGER NOT NULL,"
	" error TEXT NOT NULL,"
	" stdin_open INTEGER NOT NULL);"
	"CREATE INDEX processes_state ON processes(state, seq);"
	"CREATE INDEX processes_sandbox ON processes(sandbox_id, seq);"
	"CREATE TABLE config (key TEXT PRIMARY KEY, value INTEGER NOT NULL);",
	/* 2: sandboxes, each an encoded sandproc.v1.Sandbox (the server keeps them all in memory) */
	"CREATE TABLE sandboxes ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" id TEXT NOT NULL UNIQUE,"
	" record BLOB NOT NULL);",
	/* 3: tenants, and keys (an encoded sandproc.v1.Key without its secret, and the secret's SHA-256) */
	"ALTER TABLE processes ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';"
	"CREATE INDEX processes_tenant ON processes(tenant, seq);"
	"CREATE TABLE keys ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" id TEXT NOT NULL UNIQUE,"
	" hash BLOB NOT NULL UNIQUE,"
	" record BLOB NOT NULL);",
};

#define STORE_SCHEMA_VERSION (int)(sizeof(store_migrations) / sizeof(store_migrations[0]))

enum {
	ST_INSERT,
	ST_UPDATE,
	ST_GET,
	ST_DELETE,
	ST_RUNNING,
	ST_CONFIG_GET,
	ST_CONFIG_PUT,
	ST_COUNT_ALL,
	ST_SBX_PUT,
	ST_SBX_DELETE,
	ST_SBX_ALL,
	ST_KEY_PUT,
	ST_KEY_UPDATE,
	ST_KEY_DELETE,
	ST_KEY_ALL,
	ST_NSTMT
};

static const char *const store_sql[ST_NSTMT] = {
	[ST_INSERT] =
	    "INSERT INTO processes (id, sandbox_id, argv, cwd, env, labels, name, tty,"
	    " cols, rows, timeout_s, pid, pid_start, boot_id, state, exit_code, signal,"
	    " started_at_ms, exited_at_ms, error, stdin_open, tenant)"
	    " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22)",
	[ST_UPDATE] = "UPDATE processes SET pid=?2, pid_start=?3, boot_id=?4, state=?5, exit_code=?6,"
	              " signal=?7, started_at_ms=?8, exited_at_ms=?9, error=?10, stdin_open=?11,"
	              " cols=?12, rows=?13 WHERE id=?1",
	[ST_GET] = "SELECT seq, id, sandbox_id, argv, cwd, env, labels, name, tty, cols, rows,"
	           " timeout_s, pid, state, exit_code, signal, started_at_ms, exited_at_ms, error,"
	           " stdin_open, pid_start, boot_id, tenant FROM processes WHERE id=?1",
	[ST_DELETE] = "DELETE FROM processes WHERE id=?1",
	[ST_RUNNING] = "SELECT seq, id, sandbox_id, argv, cwd, env, labels, name, tty, cols, rows,"
	               " timeout_s, pid, state, exit_code, signal, started_at_ms, exited_at_ms, error,"
	               " stdin_open, pid_start, boot_id, tenant FROM processes WHERE state=1 ORDER BY seq",
	[ST_CONFIG_GET] = "SELECT key, value FROM config",
	[ST_CONFIG_PUT] = ("INSERT INTO config (key, value) VALUES (?1, ?2)"
	                   " ON CONFLICT(key) DO UPDATE SET value=excluded.value"),
	[ST_COUNT_ALL] = "SELECT count(*) FROM processes",
	[ST_SBX_PUT] = ("INSERT INTO sandboxes (id, record) VALUES (?1, ?2)"
	                " ON CONFLICT(id) DO UPDATE SET record=excluded.record"),
	[ST_SBX_DELETE] = "DELETE FROM sandboxes WHERE id=?1",
	[ST_SBX_ALL] = "SELECT record FROM sandboxes ORDER BY seq",
	[ST_KEY_PUT] = "INSERT INTO keys (id, hash, record) VALUES (?1, ?2, ?3)",
	[ST_KEY_UPDATE] = "UPDATE keys SET record=?2 WHERE id=?1",
	[ST_KEY_DELETE] = "DELETE FROM keys WHERE id=?1",
	[ST_KEY_ALL] = "SELECT hash, record FROM keys ORDER BY seq",
};

#define STORE_COLUMNS                                                                                    \
	"seq, id, sandbox_id, argv, cwd, env, labels, name, tty, cols, rows, timeout_s, pid,"            \
	" state, exit_code, signal, started_at_ms, exited_at_ms, error, stdin_open, pid_start, boot_id," \
	" tenant"

/* List statements by filter: bit 0 state, bit 1 sandbox, bit 2 cursor, bit 3 name, bit 4 tenant. */
#define STORE_LIST_MAX_BYTES (4u * 1024 * 1024)
#define STORE_LIST_VARIANTS 32

/*
 * Two connections: writes go through w; reads through r, so a read (often
 * on nng's callback thread) never waits behind a slow write: WAL lets one
 * writer and readers work at once.
 */
typedef struct store_conn {
	sqlite3 *db;
	pthread_mutex_t mu;
	sqlite3_stmt *stmt[ST_NSTMT];
	sqlite3_stmt *list[STORE_LIST_VARIANTS];
} store_conn;

struct store {
	store_conn w, r;
};

static _Thread_local char store_last_error[256];

const char *
store_errmsg(void)
{
	return (store_last_error);
}

static int
store_fail(store_conn *c, int rc)
{
	snprintf(store_last_error, sizeof(store_last_error), "%s", sqlite3_errmsg(c->db));
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return (ENOSPC);
	case SQLITE_NOMEM:
		return (ENOMEM);
	case SQLITE_READONLY:
	case SQLITE_PERM:
		return (EROFS);
	default:
		return (EIO);
	}
}

static int
store_exec(store_conn *c, const char *sql)
{
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
	return (rc == SQLITE_OK ? 0 : store_fail(c, rc));
}

static int
store_migrate(store_conn *s, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int version = 0, rv;

	if ((rv = store_exec(s, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")) !=
	    0) {
		snprintf(err, errlen, "schema_version: %s", store_last_error);
		return (rv);
	}
	if (sqlite3_prepare_v2(s->db, "SELECT max(version) FROM schema_version", -1, &st, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "schema_version: %s", sqlite3_errmsg(s->db));
		return (EIO);
	}
	if ((rv = sqlite3_step(st)) == SQLITE_ROW) {
		version = sqlite3_column_int(st, 0);
	} else {
		snprintf(err, errlen, "schema_version: %s", sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
		return (EIO);
	}
	sqlite3_finalize(st);
	if (version > STORE_SCHEMA_VERSION) {
		snprintf(err, errlen, "database schema version %d is newer than this server's (%d)", version,
		    STORE_SCHEMA_VERSION);
		return (EIO);
	}
	for (int v = version; v < STORE_SCHEMA_VERSION; v++) {
		char bump[96];
		snprintf(bump, sizeof(bump), "INSERT INTO schema_version (version) VALUES (%d)", v + 1);
		if ((rv = store_exec(s, "BEGIN IMMEDIATE")) != 0 ||
		    (rv = store_exec(s, store_migrations[v])) != 0 || (rv = store_exec(s, bump)) != 0 ||
		    (rv = store_exec(s, "COMMIT")) != 0) {
			snprintf(err, errlen, "migration to version %d: %s", v + 1, store_last_error);
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return (rv);
		}
	}
	return (0);
}

static int
store_conn_open(store_conn *c, const char *path, char *err, size_t errlen)
{
	int rc, rv;

	pthread_mutex_init(&c->mu, NULL);
	rc = sqlite3_open_v2(
	    path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		return (EIO);
	}
	sqlite3_busy_timeout(c->db, 5000);
	/* Reads through mmap and a 16 MiB page cache: List and Get stay off pread. */
	if ((rv = store_exec(c, "PRAGMA journal_mode=WAL")) != 0 ||
	    (rv = store_exec(c, "PRAGMA cache_size=-16384")) != 0 ||
	    (rv = store_exec(c, "PRAGMA mmap_size=268435456")) != 0 ||
	    (rv = store_exec(c, "PRAGMA synchronous=NORMAL")) != 0 ||
	    (rv = store_exec(c, "PRAGMA foreign_keys=ON")) != 0) {
		snprintf(err, errlen, "%s: %s", path, store_last_error);
		return (rv);
	}
	return (0);
}

static int
store_conn_prepare(store_conn *c, char *err, size_t errlen)
{
	for (int i = 0; i < ST_NSTMT; i++) {
		if (sqlite3_prepare_v3(
		        c->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->stmt[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "prepare: %s", sqlite3_errmsg(c->db));
			return (EIO);
		}
	}
	return (0);
}

/*
 * A database that opens may still not work: corrupt pages behind a sound
 * header (checked before anything reads it), or a file its user cannot
 * write (checked with a test write once the schema is there). Both are
 * found here, at start, instead of by every later call.
 */
static int
store_check_sound(store_conn *c, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rv = 0;

	if (sqlite3_prepare_v2(c->db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: integrity check: %s", path, sqlite3_errmsg(c->db));
		return (EIO);
	}
	if (sqlite3_step(st) != SQLITE_ROW) {
		snprintf(err, errlen, "%s: integrity check: %s", path, sqlite3_errmsg(c->db));
		rv = EIO;
	} else if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		snprintf(err, errlen, "%s: the database is corrupt: %s", path,
		    (const char *)sqlite3_column_text(st, 0));
		rv = EIO;
	}
	sqlite3_finalize(st);
	return (rv);
}

static int
store_check_writable(store_conn *c, const char *path, char *err, size_t errlen)
{
	int rv;

	if (sqlite3_db_readonly(c->db, "main") == 1) {
		snprintf(err, errlen,
		    "%s: the database is read-only (check its and its folder's permissions)", path);
		return (EROFS);
	}
	/* A test write, taken back: permissions and space for the journal. */
	if ((rv = store_exec(c, "BEGIN IMMEDIATE")) != 0 ||
	    (rv = store_exec(c, "UPDATE schema_version SET version = version")) != 0) {
		snprintf(err, errlen, "%s: cannot write: %s", path, store_last_error);
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return (rv);
	}
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return (0);
}

int
store_open(store **out, const char *path, char *err, size_t errlen)
{
	store *s = calloc(1, sizeof(*s));
	int rv;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return (ENOMEM);
	}
	if ((rv = store_conn_open(&s->w, path, err, errlen)) != 0 ||
	    (rv = store_check_sound(&s->w, path, err, errlen)) != 0 ||
	    (rv = store_migrate(&s->w, err, errlen)) != 0 ||
	    (rv = store_check_writable(&s->w, path, err, errlen)) != 0 ||
	    (rv = store_conn_prepare(&s->w, err, errlen)) != 0 ||
	    (rv = store_conn_open(&s->r, path, err, errlen)) != 0 ||
	    (rv = store_conn_prepare(&s->r, err, errlen)) != 0) {
		store_close(s);
		return (rv);
	}
	*out = s;
	return (0);
}

static void
store_conn_close(store_conn *c)
{
	for (int i = 0; i < ST_NSTMT; i++) {
		sqlite3_finalize(c->stmt[i]);
	}
	for (int i = 0; i < STORE_LIST_VARIANTS; i++) {
		sqlite3_finalize(c->list[i]);
	}
	if (c->db != NULL) {
		sqlite3_close(c->db);
		pthread_mutex_destroy(&c->mu);
	}
}

void
store_close(store *s)
{
	if (s == NULL) {
		return;
	}
	store_conn_close(&s->r);
	store_conn_close(&s->w);
	free(s);
}

/* argv/env/labels are stored as their strings joined by NUL bytes. */
static int
store_bind_strv(store_conn *s, sqlite3_stmt *st, int col, const sp_strv_t *sv)
{
	size_t len = 0, off = 0;
	char *buf;
	int rc;

	for (size_t i = 0; i < sv->n; i++) {
		len += strlen(sv->v[i]) + 1;
	}
	if (len == 0) {
		return (sqlite3_bind_zeroblob(st, col, 0) == SQLITE_OK ? 0 : store_fail(s, SQLITE_ERROR));
	}
	if ((buf = malloc(len)) == NULL) {
		return (ENOMEM);
	}
	for (size_t i = 0; i < sv->n; i++) {
		size_t n = strlen(sv->v[i]) + 1;
		memcpy(buf + off, sv->v[i], n);
		off += n;
	}
	rc = sqlite3_bind_blob(st, col, buf, (int)len, free);
	return (rc == SQLITE_OK ? 0 : store_fail(s, rc));
}

static int
store_column_strv(sqlite3_stmt *st, int col, sp_strv_t *sv, sp_arena *a)
{
	const char *blob = sqlite3_column_blob(st, col);
	size_t len = (size_t)sqlite3_column_bytes(st, col), n = 0;
	char *copy;

	memset(sv, 0, sizeof(*sv));
	if (len == 0) {
		return (0);
	}
	for (size_t i = 0; i < len; i++) {
		n += blob[i] == '\0';
	}
	if ((copy = sp_arena_alloc(a, len + 1)) == NULL ||
	    (sv->v = sp_arena_alloc(a, (n + 1) * sizeof(char *))) == NULL) {
		return (ENOMEM);
	}
	memcpy(copy, blob, len);
	copy[len] = '\0';
	for (size_t off = 0; off < len && sv->n < n; off += strlen(copy + off) + 1) {
		sv->v[sv->n++] = copy + off;
	}
	sv->v[sv->n] = NULL;
	return (0);
}

static const char *
store_column_text(sqlite3_stmt *st, int col, sp_arena *a)
{
	const char *t = (const char *)sqlite3_column_text(st, col);
	return (sp_arena_strdup(a, t != NULL ? t : ""));
}

static void
store_copy_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
	const char *t = (const char *)sqlite3_column_text(st, col);
	snprintf(dst, size, "%s", t != NULL ? t : "");
}

/* Roughly what p takes encoded: its strings plus the fixed fields. */
static size_t
store_record_bytes(const sandproc_v1_Process *p)
{
	size_t n = 512 + strlen(p->cwd) + strlen(p->name);
	const sp_strv_t *lists[] = { &p->argv, &p->env, &p->labels };

	for (size_t k = 0; k < 3; k++) {
		for (size_t i = 0; i < lists[k]->n; i++) {
			n += strlen(lists[k]->v[i]) + 4;
		}
	}
	return (n);
}

/* Reads one row of STORE_COLUMNS into p. */
static int
store_row(sqlite3_stmt *st, sandproc_v1_Process *p, int64_t *seq, store_origin *o, sp_arena *a)
{
	memset(p, 0, sizeof(*p));
	if (seq != NULL) {
		*seq = sqlite3_column_int64(st, 0);
	}
	store_copy_text(p->id, sizeof(p->id), st, 1);
	store_copy_text(p->sandbox_id, sizeof(p->sandbox_id), st, 2);
	if (store_column_strv(st, 3, &p->argv, a) != 0 || (p->cwd = store_column_text(st, 4, a)) == NULL ||
	    store_column_strv(st, 5, &p->env, a) != 0 || store_column_strv(st, 6, &p->labels, a) != 0) {
		return (ENOMEM);
	}
	if ((p->name = store_column_text(st, 7, a)) == NULL) {
		return (ENOMEM);
	}
	p->tty = sqlite3_column_int(st, 8) != 0;
	p->cols = (uint32_t)sqlite3_column_int64(st, 9);
	p->rows = (uint32_t)sqlite3_column_int64(st, 10);
	p->timeout_s = (uint32_t)sqlite3_column_int64(st, 11);
	p->pid = sqlite3_column_int(st, 12);
	p->state = (sandproc_v1_State)sqlite3_column_int(st, 13);
	p->exit_code = sqlite3_column_int(st, 14);
	p->signal = sqlite3_column_int(st, 15);
	p->started_at_ms = sqlite3_column_int64(st, 16);
	p->exited_at_ms = sqlite3_column_int64(st, 17);
	store_copy_text(p->error, sizeof(p->error), st, 18);
	p->stdin_open = sqlite3_column_int(st, 19) != 0;
	if (o != NULL) {
		o->pid_start = (uint64_t)sqlite3_column_int64(st, 20);
		store_copy_text(o->boot_id, sizeof(o->boot_id), st, 21);
	}
	store_copy_text(p->tenant, sizeof(p->tenant), st, 22);
	return (0);
}

/* Runs a write statement to completion and resets it. Caller holds the connection's mu. */
static int
store_step_write(store_conn *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int rv = rc == SQLITE_DONE ? 0 : store_fail(s, rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return (rv);
}

int
store_insert_process(store *s, const sandproc_v1_Process *p, const store_origin *o)
{
	store_conn *c = &s->w;
	sqlite3_stmt *st = c->stmt[ST_INSERT];
	int rv;

	pthread_mutex_lock(&c->mu);
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, p->sandbox_id, -1, SQLITE_TRANSIENT);
	if ((rv = store_bind_strv(c, st, 3, &p->argv)) != 0 ||
	    (rv = store_bind_strv(c, st, 5, &p->env)) != 0 ||
	    (rv = store_bind_strv(c, st, 6, &p->labels)) != 0) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		pthread_mutex_unlock(&c->mu);
		return (rv);
	}
	sqlite3_bind_text(st, 4, p->cwd != NULL ? p->cwd : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 7, p->name != NULL ? p->name : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 8, p->tty);
	sqlite3_bind_int64(st, 9, p->cols);
	sqlite3_bind_int64(st, 10, p->rows);
	sqlite3_bind_int64(st, 11, p->timeout_s);
	sqlite3_bind_int(st, 12, p->pid);
	sqlite3_bind_int64(st, 13, o != NULL ? (int64_t)o->pid_start : 0);
	sqlite3_bind_text(st, 14, o != NULL ? o->boot_id : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 15, p->state);
	sqlite3_bind_int(st, 16, p->exit_code);
	sqlite3_bind_int(st, 17, p->signal);
	sqlite3_bind_int64(st, 18, p->started_at_ms);
	sqlite3_bind_int64(st, 19, p->exited_at_ms);
	sqlite3_bind_text(st, 20, p->error, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 21, p->stdin_open);
	sqlite3_bind_text(st, 22, p->tenant[0] != '\0' ? p->tenant : "default", -1, SQLITE_TRANSIENT);
	rv = store_step_write(c, st);
	pthread_mutex_unlock(&c->mu);
	return (rv);
}

int
store_update_process(store *s, const sandproc_v1_Process *p, const store_origin *o)
{
	store_conn *c = &s->w;
	sqlite3_stmt *st = c->stmt[ST_UPDATE];
	int rv;

	pthread_mutex_lock(&c->mu);
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, p->pid);
	sqlite3_bind_int64(st, 3, o != NULL ? (int64_t)o->pid_start : 0);
	sqlite3_bind_text(st, 4, o != NULL ? o->boot_id : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 5, p->state);
	sqlite3_bind_int(st, 6, p->exit_code);
	sqlite3_bind_int(st, 7, p->signal);
	sqlite3_bind_int64(st, 8, p->started_at_ms);
	sqlite3_bind_int64(st, 9, p->exited_at_ms);
	sqlite3_bind_text(st, 10, p->error, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 11, p->stdin_open);
	sqlite3_bind_int64(st, 12, p->cols);
	sqlite3_bind_int64(st, 13, p->rows);
	rv = store_step_write(c, st);
	if (rv == 0 && sqlite3_changes(c->db) == 0) {
		rv = ENOENT;
	}
	pthread_mutex_unlock(&c->mu);
	return (rv);
}

int
store_get_process(store *s, const char *id, sandproc_v1_Process *out, sp_arena *arena)
{
	store_conn *c = &s->r;
	sqlite3_stmt *st = c->stmt[ST_GET];
	int rc, rv;

	pthread_mutex_lock(&c->mu);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rv = store_row(st, out, NULL, NULL, arena);
	} else if (rc == SQLITE_DONE) {
		rv = ENOENT;
	} else {
		rv = store_fail(c, rc);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	pthread_mutex_unlock(&c->mu);
	return (rv);
}

int
store_list_processes(
    store *s, const store_query *q, sandproc_v1_ListReply *out, int64_t *next_seq, sp_arena *arena)
{
	store_conn *c = &s->r;
	const size_t cap = sizeof(out->processes) / sizeof(out->processes[0]);
	uint32_t limit = q->limit == 0 ? 50 : q->limit > cap ? (uint32_t)cap : q->limit;
	char sql[512];
	sqlite3_stmt *st;
	int rc, rv = 0, arg = 1;
	int64_t last_seq = 0;

	bool by_state = q->state != 0, by_sandbox = q->sandbox_id != NULL && q->sandbox_id[0] != '\0';
	bool by_name = q->name != NULL && q->name[0] != '\0';
	bool by_tenant = q->tenant != NULL && q->tenant[0] != '\0';
	int variant = (by_state ? 1 : 0) | (by_sandbox ? 2 : 0) | (q->before_seq > 0 ? 4 : 0) |
	    (by_name ? 8 : 0) | (by_tenant ? 16 : 0);

	pthread_mutex_lock(&c->mu);
	/* Each filter combination is prepared once, on first use. */
	if ((st = c->list[variant]) == NULL) {
		snprintf(sql, sizeof(sql),
		    "SELECT " STORE_COLUMNS " FROM processes WHERE 1=1%s%s%s%s%s ORDER BY seq DESC LIMIT ?",
		    by_state ? " AND state=?" : "", by_sandbox ? " AND sandbox_id=?" : "",
		    q->before_seq > 0 ? " AND seq<?" : "", by_name ? " AND name=?" : "",
		    by_tenant ? " AND tenant=?" : "");
		if ((rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL)) !=
		    SQLITE_OK) {
			rv = store_fail(c, rc);
			pthread_mutex_unlock(&c->mu);
			return (rv);
		}
		c->list[variant] = st;
	}
	if (by_state) {
		sqlite3_bind_int(st, arg++, q->state);
	}
	if (by_sandbox) {
		sqlite3_bind_text(st, arg++, q->sandbox_id, -1, SQLITE_TRANSIENT);
	}
	if (q->before_seq > 0) {
		sqlite3_bind_int64(st, arg++, q->before_seq);
	}
	if (by_name) {
		sqlite3_bind_text(st, arg++, q->name, -1, SQLITE_TRANSIENT);
	}
	if (by_tenant) {
		sqlite3_bind_text(st, arg++, q->tenant, -1, SQLITE_TRANSIENT);
	}
	/* One row more than the page tells whether another page follows. */
	sqlite3_bind_int(st, arg, (int)limit + 1);
	out->processes_count = 0;
	*next_seq = 0;
	size_t bytes = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* A page ends early rather than grow past its byte bound (records may be big). */
		if (out->processes_count == limit ||
		    (out->processes_count > 0 && bytes > STORE_LIST_MAX_BYTES)) {
			*next_seq = last_seq;
			break;
		}
		if ((rv = store_row(st, &out->processes[out->processes_count], &last_seq, NULL, arena)) !=
		    0) {
			break;
		}
		bytes += store_record_bytes(&out->processes[out->processes_count]);
		out->processes_count++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rv = store_fail(c, rc);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	pthread_mutex_unlock(&c->mu);
	return (rv);
}

int
store_delete_process(store *s, const char *id)
{
	store_conn *c = &s->w;
	sqlite3_stmt *st = c->stmt[ST_DELETE];
	int rv;

	pthread_mutex_lock(&c->mu);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	rv = store_step_write(c, st);
	if (rv == 0 && sqlite3_changes(c->db) == 0) {
		rv = ENOENT;
	}
	pthread_mutex_unlock(&c->mu);
	return (rv);
}

int
store_for_each_running(
    store *s, void (*fn)(void *arg, const sandproc_v1_Process *p, const store_origin *o), void *arg)
{
	store_conn *c = &s->r;
	sqlite3_stmt *st = c->stmt[ST_RUNNING];
	sp_arena *a = sp_arena_new();
	int rc, rv = 0;

	if (a == NULL) {
		return (ENOMEM);
	}
	/*
	 * Rows are collected first and handed out after the lock is dropped,
	 * since fn usually writes to the store.
	 */
	size_t n = 0, cap = 0;
	struct row {
		sandproc_v1_Process p;
		store_origin o;
	} *rows = NULL;

	pthread_mutex_lock(&c->mu);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct row *nr = realloc(rows, ncap * sizeof(*rows));
			if (nr == NULL) {
				rv = ENOMEM;
				break;
			}
			rows = nr;
			cap = ncap;
		}
		if ((rv = store_row(st, &rows[n].p, NULL, &rows[n].o, a)) != 0) {
			break;
		}
		n++;
	}
	if (rv == 0 && rc != SQLITE_DONE) {
		rv = store_fail(c, rc);
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&c->mu);
	for (size_t i = 0; rv == 0 && i < n; i++) {
		fn(arg, &rows[i].p, &rows[i].o);
	}
	free(rows);
	sp_arena_free(a);
	return (rv);
}

int
store_count_processes(store *s, int64_t *count)
{
	store_conn *c = &s->r;
	sqlite3_stmt *st = c->stmt[ST_COUNT_ALL];
	int rc, rv = 0;

	pthread_mutex_lock(&c->mu);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*count = sqlite3_column_int64(st, 0);
	} else {
		rv = store_fail(c, rc);
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&c->mu);
	return (rv);
}

/* The config table holds one row per field (CONFIG_FIELDS), by the proto's field name. */
int
store_load_config(store *s, sandproc_v1_Config *cfg)
{
	store_conn *c = &s->r;
	sqlite3_stmt *st = c->stmt[ST_CONFIG_GET];
	int rc, rv = 0;

	pthread_mutex_lock(&c->mu);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);
		int64_t v = sqlite3_column_int64(st, 1);
		if (key == NULL || v < 0) {
			continue;
		}
#define STORE_CONFIG_LOAD(f)                    \
	if (strcmp(key, #f) == 0) {             \
		cfg->f = (__typeof__(cfg->f))v; \
	}
		CONFIG_FIELDS(STORE_CONFIG_LOAD)
#undef STORE_CONFIG_LOAD
	}
	if (rc != SQLITE_DONE) {
		rv = store_fail(c, rc);
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&c->mu);
	return (rv);
}

int
store_save_config(store *s, const sandproc_v1_Config *cfg)
{
	store_conn *c = &s->w;
	sqlite3_stmt *st = c->stmt[ST_CONFIG_PUT];
	int rv;

	pthread_mutex_lock(&c->mu);
	if ((rv = store_exec(c, "BEGIN IMMEDIATE")) != 0) {
		pthread_mutex_unlock(&c->mu);
		return (rv);
	}
#define STORE_CONFIG_SAVE(f)                                     \
	if (rv == 0) {                                           \
		sqlite3_bind_text(st, 1, #f, -1, SQLITE_STATIC); \
		sqlite3_bind_int64(st, 2, (int64_t)cfg->f);      \
		rv = store_step_write(c, st);                    \
	}
	CONFIG_FIELDS(STORE_CONFIG_SAVE)
#undef STORE_CONFIG_SAVE
	if (rv == 0) {
		rv = store_exec(c, "COMMIT");
	}
	if (rv != 0) {
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	}
	pthread_mutex_unlock(&c->mu);
	return (rv);
}

/*
 * Runs write statement stmt with id as ?1 and, when record is not NULL,
 * the hash (32 bytes, when not NULL) and record as the next parameters.
 */
static int
store_write_row(store *s, int stmt, const char *id, const uint8_t *hash, const void *record, size_t len)
{
	store_conn *c = &s->w;
	sqlite3_stmt *st = c->stmt[stmt];
	int rv, arg = 2;

	pthread_mutex_lock(&c->mu);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	if (hash != NULL) {
		sqlite3_bind_blob(st, arg++, hash, 32, SQLITE_TRANSIENT);
	}
	if (record != NULL) {
		sqlite3_bind_blob(st, arg, record, (int)len, SQLITE_TRANSIENT);
	}
	rv = store_step_write(c, st);
	pthread_mutex_unlock(&c->mu);
	return (rv);
}

int
store_put_sandbox(store *s, const char *id, const void *record, size_t len)
{
	return (store_write_row(s, ST_SBX_PUT, id, NULL, record, len));
}

int
store_delete_sandbox(store *s, const char *id)
{
	return (store_write_row(s, ST_SBX_DELETE, id, NULL, NULL, 0));
}

int
store_for_each_sandbox(store *s, void (*fn)(void *arg, const void *record, size_t len), void *arg)
{
	store_conn *c = &s->r;
	sqlite3_stmt *st = c->stmt[ST_SBX_ALL];
	int rc, rv = 0;

	/* Called once at start, before anything else uses the store. */
	pthread_mutex_lock(&c->mu);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		fn(arg, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
	}
	if (rc != SQLITE_DONE) {
		rv = store_fail(c, rc);
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&c->mu);
	return (rv);
}

int
store_put_key(store *s, const char *id, const uint8_t hash[32], const void *record, size_t len)
{
	return (store_write_row(s, ST_KEY_PUT, id, hash, record, len));
}

int
store_update_key(store *s, const char *id, const void *record, size_t len)
{
	return (store_write_row(s, ST_KEY_UPDATE, id, NULL, record, len));
}

int
store_delete_key(store *s, const char *id)
{
	return (store_write_row(s, ST_KEY_DELETE, id, NULL, NULL, 0));
}

int
store_for_each_key(store *s,
    void (*fn)(void *arg, const uint8_t *hash, size_t hashlen, const void *record, size_t len), void *arg)
{
	store_conn *c = &s->r;
	sqlite3_stmt *st = c->stmt[ST_KEY_ALL];
	int rc, rv = 0;

	/* Called once at start, before anything else uses the store. */
	pthread_mutex_lock(&c->mu);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		fn(arg, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
		    sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1));
	}
	if (rc != SQLITE_DONE) {
		rv = store_fail(c, rc);
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&c->mu);
	return (rv);
}
