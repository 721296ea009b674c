/*
 * The holder protocol: what sandprocd and a sandproc-holder say to each
 * other over a SOCK_SEQPACKET unix socket (one message per packet), and the
 * spec a holder is started with. Plain C and libc: the holder links this
 * and nothing else of the server's but the log writer.
 *
 * Every packet is a header {u32 type, u32 version} and a body of fields:
 * little-endian integers and strings as u32 length + bytes. A side that
 * gets a version it does not speak says so and closes (HOLDER_VERSION).
 * fds (stdin pipe, PTY master) travel as SCM_RIGHTS with HELLO and STARTED.
 */
#ifndef HOLDER_PROTO_H
#define HOLDER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HOLDER_VERSION 1
/* Largest output entry a holder sends in one packet (the rest goes in the next). */
#define HOLDER_CHUNK (256 * 1024)
#define HOLDER_PACKET_MAX (HOLDER_CHUNK + 256)
#define HOLDER_SNDBUF (2 * 1024 * 1024) /* output in flight to the server, at most */

typedef enum holder_msg {
	/* holder -> server */
	HM_STARTED = 1, /* pid, pid_start; fd: stdin or PTY master (when open) */
	HM_FAILED,      /* errno, message: the child could not be started */
	HM_OUTPUT,      /* seq, stream, ts_ms, bytes (already in the log) */
	HM_SYNC,        /* last_seq: entries up to it are in the log (some were not sent) */
	HM_EXITED,      /* exit record (below): the child ended and its output is all in the log */
	HM_HELLO_BACK,  /* to HM_HELLO: running (pid, pid_start, last_seq; fd) or ended (exit record) */
	/* server -> holder */
	HM_HELLO = 32,  /* a server (re)connects */
	HM_SIGNAL,      /* sig, whole: to the group (and with whole, every other process of it) */
	HM_KILLED,      /* a kill was asked for: stop waiting for output that may never end */
	HM_CLOSE_STDIN, /* the holder's copy of stdin goes */
	HM_ACK_EXIT,    /* the end is stored: the holder may go */
	HM_LOG_LIMIT,   /* max_log_bytes */
	HM_ABANDON,     /* the process was never recorded: kill it, keep nothing, go */
} holder_msg;

/* What a holder knows of its child's end (HM_EXITED, HM_HELLO_BACK, and the .exit file). */
typedef struct holder_exit {
	int32_t wstatus;    /* waitpid status */
	int64_t at_ms;      /* wall clock of the end */
	uint64_t last_seq;  /* newest entry in the log */
	uint64_t lost;      /* output bytes not stored */
	int32_t lost_errno; /* why */
	int32_t orphans;    /* descendants the holder reaped as their subreaper */
} holder_exit;

/* A growing buffer of fields. */
typedef struct hbuf {
	uint8_t *p;
	size_t len, cap;
	bool oom;
} hbuf;

void hb_init(hbuf *b, uint32_t type);
void hb_u32(hbuf *b, uint32_t v);
void hb_u64(hbuf *b, uint64_t v);
void hb_bytes(hbuf *b, const void *p, size_t n);
void hb_str(hbuf *b, const char *s);
/* A NULL-terminated list of strings: u32 count, then each. */
void hb_strv(hbuf *b, const char *const *v);
void hb_exit(hbuf *b, const holder_exit *e);
void hb_free(hbuf *b);

/* Reading fields back; any overrun sets bad and reads as zero/empty. */
typedef struct hread {
	const uint8_t *p;
	size_t len, off;
	bool bad;
} hread;

/* Starts reading a packet; its type, or 0 when it is not one (or of another version: *version says which). */
uint32_t hr_begin(hread *r, const void *p, size_t len, uint32_t *version);
uint32_t hr_u32(hread *r);
uint64_t hr_u64(hread *r);
/* A string copied into a new allocation (NUL-terminated); NULL when bad. */
char *hr_str(hread *r);
/* A string's bytes in place: *n gets its length. */
const uint8_t *hr_bytes(hread *r, size_t *n);
/* A list of strings, each allocated, the array NULL-terminated. */
char **hr_strv(hread *r);
void hr_exit(hread *r, holder_exit *e);

/* The spec a holder starts its child from (the server writes it; the holder reads it). */
typedef struct holder_spec {
	char *id;
	char *log_dir, *run_dir;
	uint64_t max_log_bytes;
	char *exe; /* resolved path */
	char **argv, **env;
	char *cwd; /* NULL or "": the holder's */
	bool tty, stdin_pipe;
	uint32_t cols, rows;
	/* A sandbox to enter (0: none): see os/enter.h. */
	int32_t ns_pid;
	uint64_t ns_pid_start;
	int32_t uid, gid;    /* -1: keep */
	char **cgroup_procs; /* cgroup.procs files the child joins */
} holder_spec;

void holder_spec_write(hbuf *b, const holder_spec *s);
/* Reads a spec (its strings allocated); false when malformed. */
bool holder_spec_read(const void *p, size_t len, holder_spec *s);

/* Sends a packet with an optional fd (-1: none); 0 or an errno. Non-blocking when flags has MSG_DONTWAIT. */
int holder_send(int sock, const hbuf *b, int fd, int flags);
/* Sends header fields and data without copying data (HM_OUTPUT). */
int holder_send_output(
    int sock, uint64_t seq, uint8_t stream, int64_t ts_ms, const void *data, size_t len, int flags);
/* Receives a packet into buf (cap bytes); *fd gets a passed fd or -1. Returns its length, 0 at EOF, -1 with
 * errno. */
ssize_t holder_recv(int sock, void *buf, size_t cap, int *fd, int flags);

#endif
