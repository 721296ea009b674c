/*
 * A small test harness: checks that report and count failures, and a real
 * sandprocd started per test in its own temp dir on ipc:// sockets (or tcp
 * port 0), stopped and cleaned up afterwards.
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <nng/nng.h>

#include "sandproc.h"

extern int th_failures;

#define CHECK(cond)                                               \
	do {                                                      \
		if (!(cond)) {                                    \
			th_fail(__FILE__, __LINE__, "%s", #cond); \
		}                                                 \
	} while (0)

#define CHECK_INT(a, b)                                                                         \
	do {                                                                                    \
		long long _a = (long long)(a), _b = (long long)(b);                             \
		if (_a != _b) {                                                                 \
			th_fail(__FILE__, __LINE__, "%s == %s (%lld != %lld)", #a, #b, _a, _b); \
		}                                                                               \
	} while (0)

#define CHECK_STR(a, b)                                                                    \
	do {                                                                               \
		const char *_a = (a), *_b = (b);                                           \
		if (_a == NULL || _b == NULL || strcmp(_a, _b) != 0) {                     \
			th_fail(__FILE__, __LINE__, "%s == %s (\"%s\" != \"%s\")", #a, #b, \
			    _a ? _a : "(null)", _b ? _b : "(null)");                       \
		}                                                                          \
	} while (0)

/* A call that must succeed: on failure prints the client's error. */
#define CHECK_OK(c, call)                                                                       \
	do {                                                                                    \
		int _code = (call);                                                             \
		if (_code != SP_OK) {                                                           \
			th_fail(__FILE__, __LINE__, "%s: %s: %s", #call, sp_status_name(_code), \
			    sp_client_error(c));                                                \
		}                                                                               \
	} while (0)

void th_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

typedef struct th_test {
	const char *name;
	void (*fn)(void);
} th_test;

/* Runs tests (or only those named on the command line); returns the exit code. */
int th_main(int argc, char **argv, const th_test *tests, size_t n);

typedef struct th_server {
	pid_t pid;
	char dir[256];
	char url[512];
	char events[512];
	sp_client *c;
	bool tcp;
	const char *args[16]; /* extra sandprocd flags, NULL-terminated */
	const char *env[8];   /* extra KEY=value for sandprocd, NULL-terminated */
	uid_t uid;            /* run sandprocd as this user (and group) when not 0 */
	char token[128];      /* the admin key it wrote (data/admin.key); "" with --auth none */
	char listen_all[512]; /* every URL it listens on, comma-separated (url is the first) */
} th_server;

/*
 * Starts sandprocd in a new temp dir (or in s->dir when it is already set,
 * to restart on the same data). Extra flags may be NULL. Connects s->c.
 */
void th_server_start(th_server *s, bool tcp);
/* SIGTERM and wait (the server stops its children first). Keeps the dir. */
void th_server_stop(th_server *s);
/* SIGKILL: a crash. Its children are left running. Keeps the dir. */
void th_server_crash(th_server *s);
/* Stops (if running), kills holders left running on its data and removes the temp dir. */
void th_server_cleanup(th_server *s);
/* Removes path and everything under it. */
void th_rmrf(const char *path);
/* SIGKILLs every sandproc-holder with a file open under dir, and its process's group; how many. */
int th_kill_holders(const char *dir);
/* SIGKILLs the sandbox keepers (bubblewrap) of the data under dir; how many. */
int th_kill_keepers(const char *dir);
/* Waits up to ms for the holders on dir to go by themselves; how many are left. */
int th_holders_left(const char *dir, int ms);

/* A second client on the same server (for other threads). */
sp_client *th_client(th_server *s);

/* Convenience calls that fail the test on error. */
void th_start(th_server *s, const char *const *argv, sandproc_v1_Process *out);
void th_wait(th_server *s, const char *id, sandproc_v1_Process *out);
int th_get(th_server *s, const char *id, sandproc_v1_Process *out);
/* Stop (grace_ms 0 = the default) and Kill that wait up to 10 s for the end; the record in out. */
void th_stop(th_server *s, const char *id, uint32_t grace_ms, sandproc_v1_Process *out);
void th_kill(th_server *s, const char *id, sandproc_v1_Process *out);
/*
 * Waits for id's end, checks it exited by itself (with code, unless code is
 * -1) and returns all its output (caller frees; *len gets the size).
 */
uint8_t *th_finish(th_server *s, const char *id, int code, size_t *len);
/* Starts argv, then th_finish: its whole output (caller frees). */
uint8_t *th_start_finish(th_server *s, const char *const *argv, int code, size_t *len);
/* th_finish, and checks the output is exactly output. */
void th_expect_exit(th_server *s, const char *id, int code, const char *output);

/*
 * Runs fn(c, arg) on a thread of its own with a client of its own (for
 * calls that wait while the test goes on). Join with th_call_join; fn's
 * return value comes back from it.
 */
typedef struct th_call th_call;
th_call *th_call_start(th_server *s, int (*fn)(sp_client *c, void *arg), void *arg);
int th_call_join(th_call *t);

/* All output of id (one stream or all), concatenated; caller frees. */
uint8_t *th_logs(sp_client *c, const char *id, sandproc_v1_Stream stream, size_t *len);
/* Polls th_logs until needle shows in it, up to 10 s; whether it did. */
bool th_logs_wait(sp_client *c, const char *id, sandproc_v1_Stream stream, const char *needle);

/*
 * Returns once sub (subscribed to "proc/" at least, dialed to s's feed)
 * receives events: a dial returns before the pipe carries anything, and on a
 * loaded machine a fixed sleep is not enough. Starts `true` until one of its
 * events arrives, then drains what else came. Leaves sub's receive timeout
 * at 200 ms.
 */
void th_feed_live(th_server *s, nng_socket sub);

/* Processes in group pgid (or session) that are alive (not zombies). */
int th_group_members(pid_t pgid, bool session);
/*
 * Waits (up to 5 s) for group pgid (or session) to have no live member and
 * returns how many are left: a SIGKILLed process takes a moment to die.
 */
int th_group_settled(pid_t pgid, bool session);
/* Zombie children of pid. */
int th_zombies_of(pid_t pid);

/* Milliseconds of a monotonic clock. */
int64_t th_now_ms(void);
void th_sleep_ms(int ms);

/* Runs `sandproc attach id` against s on a new PTY (70x20); returns its pid, *master its terminal. */
pid_t th_attach_spawn(th_server *s, const char *id, int *master);
/* Reads a terminal until needle shows (or 10 s), keeping what was read in seen (*len bytes). */
bool th_pty_expect(int master, char *seen, size_t cap, size_t *len, const char *needle);
/* Waits (10 s at most, keeping the terminal drained) for the attach to exit; its exit code or -1. */
int th_attach_wait(pid_t pid, int master);

/* Path of the test child helper (see testchild.c) and of the CLI. */
extern const char *th_testchild;
extern const char *th_cli;

#endif
