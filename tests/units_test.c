/*
 * Units of the server with no RPC of their own: the errno->status map, the
 * log writer's roll when a new file cannot be made, the timer thread and
 * the worker pool.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/timers.h"
#include "base/workq.h"
#include "harness.h"
#include "output/logfile.h"
#include "output/logread.h"
#include "ports/scan.h"

static void
test_one_map_from_errno_to_status(void)
{
	CHECK_INT(errors_status(0), SP_OK);
	CHECK_INT(errors_status(ENOENT), SP_NOT_FOUND);
	CHECK_INT(errors_status(ENOSPC), SP_RESOURCE_EXHAUSTED);
	/* Out of memory is a resource, not an internal error (the store used to say INTERNAL). */
	CHECK_INT(errors_status(ENOMEM), SP_RESOURCE_EXHAUSTED);
	CHECK_INT(errors_status(EROFS), SP_PERMISSION_DENIED);
	CHECK_INT(errors_status(E2BIG), SP_INVALID_ARGUMENT);
	CHECK_INT(errors_status(EIO), SP_INTERNAL);
	CHECK_INT(errors_exec_status(ENOENT), SP_NOT_FOUND);
	CHECK_INT(errors_exec_status(ENOEXEC), SP_FAILED_PRECONDITION);
	CHECK_INT(errors_exec_status(EACCES), SP_PERMISSION_DENIED);
	CHECK_STR(errors_text(ENOSPC), "disk full");
}

static void
test_log_roll_that_fails_keeps_appending(void)
{
	char dir[] = "/tmp/sandproc-units-XXXXXX";
	struct rlimit old, tight;
	sandproc_v1_LogsReply *rep = malloc(sizeof(*rep));
	logfile_query q = { .max_bytes = 1 << 20, .max_entries = 1024 };
	sp_arena *a = sp_arena_new();
	uint64_t last;
	logfile *lf;
	char data[100];

	CHECK(mkdtemp(dir) != NULL);
	memset(data, 'x', sizeof(data));
	CHECK_INT(logfile_open(&lf, dir, "proc_000000000000000000000001", &last), 0);
	CHECK_INT(logfile_append(lf, 1, 1, 0, data, sizeof(data), 200), 0);
	/* No fd left for the new file: the roll fails, the entry still goes in. */
	getrlimit(RLIMIT_NOFILE, &old);
	tight = old;
	tight.rlim_cur = (rlim_t)dup(0);
	close((int)tight.rlim_cur);
	setrlimit(RLIMIT_NOFILE, &tight);
	CHECK_INT(logfile_append(lf, 2, 1, 0, data, sizeof(data), 200), 0);
	setrlimit(RLIMIT_NOFILE, &old);
	/* And once files can be made again, rolling works again. */
	CHECK_INT(logfile_append(lf, 3, 1, 0, data, sizeof(data), 200), 0);
	CHECK_INT(logfile_append(lf, 4, 1, 0, data, sizeof(data), 200), 0);
	logfile_close(lf);
	CHECK_INT(logfile_read(dir, "proc_000000000000000000000001", &q, rep, a), 0);
	/* Entry 1 or 2 may have gone with the one old file kept; the newest two are there, in order. */
	CHECK(rep->entries_count >= 2);
	CHECK_INT(rep->last_sequence, 4);
	CHECK_INT(rep->entries[rep->entries_count - 1].sequence, 4);
	logfile_remove(dir, "proc_000000000000000000000001");
	rmdir(dir);
	sp_arena_free(a);
	free(rep);
}

/* Found by fuzz_logread (tests/fuzz/regressions/logread/seq-wraps-to-zero). */
static void
test_log_after_the_last_sequence_refuses_to_wrap(void)
{
	char dir[] = "/tmp/sandproc-units-XXXXXX";
	uint64_t last;
	logfile *lf;

	CHECK(mkdtemp(dir) != NULL);
	CHECK_INT(logfile_open(&lf, dir, "proc_000000000000000000000002", &last), 0);
	CHECK_INT(logfile_append(lf, UINT64_MAX, 1, 0, "x", 1, 1 << 20), 0);
	logfile_close(lf);
	CHECK_INT(logfile_open(&lf, dir, "proc_000000000000000000000002", &last), 0);
	CHECK(last == UINT64_MAX);
	/* The next would be sequence 0, which no reader takes: refused, not written unreadable. */
	CHECK_INT(logfile_append(lf, last + 1, 1, 0, "y", 1, 1 << 20), EINVAL);
	logfile_close(lf);
	logfile_remove(dir, "proc_000000000000000000000002");
	rmdir(dir);
}

static atomic_int fired_order[4];
static atomic_int fired_n;

static void
timer_fn(timer *t)
{
	fired_order[atomic_fetch_add(&fired_n, 1)] = (int)(t->at % 1000);
}

static void
test_timers_fire_in_deadline_order_and_cancel(void)
{
	timers *ts;
	timer t[4];
	int64_t base = th_now_ms() + 100;
	base -= base % 1000;
	base += 1000; /* a whole second, so at % 1000 tells the timers apart */

	CHECK_INT(timers_new(&ts), 0);
	memset(t, 0, sizeof(t));
	for (int i = 0; i < 4; i++) {
		t[i].fn = timer_fn;
	}
	timers_arm(ts, &t[0], base + 30);
	timers_arm(ts, &t[1], base + 10);
	timers_arm(ts, &t[2], base + 20);
	timers_arm(ts, &t[3], base + 5);
	CHECK(timers_cancel(ts, &t[2]));
	CHECK(!timers_cancel(ts, &t[2]));
	while (atomic_load(&fired_n) < 3 && th_now_ms() < base + 5000) {
		th_sleep_ms(5);
	}
	th_sleep_ms(50);
	CHECK_INT(atomic_load(&fired_n), 3);
	CHECK_INT(fired_order[0], 5);
	CHECK_INT(fired_order[1], 10);
	CHECK_INT(fired_order[2], 30);
	timers_free(ts);
}

static atomic_int jobs_done;

static void
slow_job(workq_job *j)
{
	th_sleep_ms(50);
	atomic_fetch_add(&jobs_done, 1);
	free(j);
}

static void
test_workq_grows_for_a_burst_and_shrinks_after(void)
{
	workq *wq;

	CHECK_INT(workq_new(&wq, 2, 64, 200), 0);
	for (int i = 0; i < 32; i++) {
		workq_job *j = calloc(1, sizeof(*j));
		j->fn = slow_job;
		workq_post(wq, j);
	}
	th_sleep_ms(20);
	CHECK(workq_threads(wq) > 8); /* every job got a thread: none waits behind a slow one */
	while (atomic_load(&jobs_done) < 32) {
		th_sleep_ms(10);
	}
	for (int i = 0; i < 200 && workq_threads(wq) > 2; i++) {
		th_sleep_ms(10);
	}
	CHECK_INT(workq_threads(wq), 2);
	workq_free(wq);
}

/* The /proc/net/tcp{,6} reader (the fallback when sock_diag is missing): listeners only, addresses as bound.
 */
static void
test_proc_net_tcp_lines_parse(void)
{
	scan_listener l;

	CHECK(scan_parse_line(
	    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
	    "12345 1 0000000000000000 100 0 0 10 0",
	    false, &l));
	CHECK_INT(l.port, 8080);
	CHECK_STR(l.addr, "127.0.0.1");
	CHECK_INT(l.ino, 12345);
	CHECK(l.loopback && !l.wildcard);
	CHECK(scan_parse_line(
	    "   1: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 "
	    "777 1 0000000000000000 100 0 0 10 0",
	    false, &l));
	CHECK_STR(l.addr, "0.0.0.0");
	CHECK(l.wildcard);
	/* Not listening (01 = ESTABLISHED), and the header line. */
	CHECK(!scan_parse_line(
	    "   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 "
	    "999 1 0000000000000000 20 4 30 10 -1",
	    false, &l));
	CHECK(!scan_parse_line(
	    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
	    "inode",
	    false, &l));
	CHECK(scan_parse_line(
	    "   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A "
	    "00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0",
	    true, &l));
	CHECK_STR(l.addr, "::");
	CHECK(l.wildcard && l.family == AF_INET6);
	CHECK(scan_parse_line(
	    "   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A "
	    "00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 100 0 0 10 0",
	    true, &l));
	CHECK_STR(l.addr, "::1");
	CHECK(l.loopback);
	/* A v4 line read as v6 (wrong width) is refused, not misread. */
	CHECK(!scan_parse_line(
	    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
	    "12345 1 0000000000000000 100 0 0 10 0",
	    true, &l));
}

int
main(int argc, char **argv)
{
	static const th_test tests[] = {
		{ "test_proc_net_tcp_lines_parse", test_proc_net_tcp_lines_parse },
		{ "test_one_map_from_errno_to_status", test_one_map_from_errno_to_status },
		{ "test_log_roll_that_fails_keeps_appending", test_log_roll_that_fails_keeps_appending },
		{ "test_log_after_the_last_sequence_refuses_to_wrap",
		    test_log_after_the_last_sequence_refuses_to_wrap },
		{ "test_timers_fire_in_deadline_order_and_cancel",
		    test_timers_fire_in_deadline_order_and_cancel },
		{ "test_workq_grows_for_a_burst_and_shrinks_after",
		    test_workq_grows_for_a_burst_and_shrinks_after },
	};
	return (th_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0])));
}
