/*
 * sandprocd: the sandproc server.
 *
 *   sandprocd [--listen URL] [--events URL] [--data DIR] [--grace MS]
 *
 * Serves sandproc.v1.System and sandproc.v1.Processes over nng REQ/REP on
 * --listen, publishes output and lifecycle events on --events, and keeps
 * its SQLite database and logs in --data. SIGINT or SIGTERM stops it:
 * running processes get SIGTERM, then SIGKILL after --grace ms, and their
 * records are written before it exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "base/util.h"
#include "rpc/rpc.h"
#include "sandproc/v1/processes.rpc.h"
#include "sandproc/v1/system.rpc.h"

#define DEFAULT_LISTEN "tcp://127.0.0.1:7300"
#define DEFAULT_EVENTS "tcp://127.0.0.1:7301"
#define DEFAULT_DATA "./.sandproc"
#define DEFAULT_GRACE_MS 2000

static const sp_service *const main_services[] = {
	&sp_system_service,
	&sp_processes_service,
	NULL,
};

/*
 * Answered on nng's callback thread, with no hand-off: calls that never
 * block (no waiting on children, no file reads, no replay-cache wait).
 */
static const sp_method *const main_inline_methods[] = {
	&sp_system_methods[SP_SYSTEM_HEALTH],
	&sp_processes_methods[SP_PROCESSES_GET],
	&sp_processes_methods[SP_PROCESSES_LIST],
	&sp_processes_methods[SP_PROCESSES_GET_CONFIG],
	&sp_processes_methods[SP_PROCESSES_SCREEN],
	&sp_processes_methods[SP_PROCESSES_RESIZE],
	NULL,
};

static void
main_usage(FILE *f)
{
	fprintf(f,
	    "usage: sandprocd [--listen URL] [--events URL] [--data DIR] [--grace MS]\n"
	    "  --listen URL   requests (nng REQ/REP), default " DEFAULT_LISTEN "\n"
	    "  --events URL   event feed (nng PUB), default " DEFAULT_EVENTS "\n"
	    "  --data DIR     database and logs, default " DEFAULT_DATA "\n"
	    "  --grace MS     at shutdown, SIGTERM to SIGKILL, default %d\n"
	    "  --version      print the version\n",
	    DEFAULT_GRACE_MS);
}

/*
 * fds 0-2 must exist, or a pipe could land there and be handed to a child;
 * and whatever else the launcher left open must not reach our children.
 */
static void
main_std_fds(void)
{
	close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) < 0) {
			int n = open("/dev/null", O_RDWR);
			if (n >= 0 && n != fd) {
				dup2(n, fd);
				close(n);
			}
		}
	}
}

static int
main_lock(const char *dir)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/sandprocd.lock", dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		util_log("%s: %s", path, strerror(errno));
		return (-1);
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		util_log("%s is in use by another sandprocd", dir);
		close(fd);
		return (-1);
	}
	return (fd);
}

int
main(int argc, char **argv)
{
	const char *listen = DEFAULT_LISTEN, *events = DEFAULT_EVENTS, *data = DEFAULT_DATA;
	int grace_ms = DEFAULT_GRACE_MS;
	server srv;
	char err[512], bound_listen[512], bound_events[512], db[4200];
	sigset_t sigs;
	rpc_server *rs;
	int sig, rv;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			main_usage(stdout);
			return (0);
		} else if (strcmp(a, "--version") == 0) {
			printf("sandprocd %s\n", SANDPROC_VERSION);
			return (0);
		} else if (v != NULL && strcmp(a, "--listen") == 0) {
			listen = v, i++;
		} else if (v != NULL && strcmp(a, "--events") == 0) {
			events = v, i++;
		} else if (v != NULL && strcmp(a, "--data") == 0) {
			data = v, i++;
		} else if (v != NULL && strcmp(a, "--grace") == 0) {
			grace_ms = atoi(v), i++;
		} else {
			fprintf(stderr, "sandprocd: unknown or incomplete option \"%s\"\n", a);
			main_usage(stderr);
			return (2);
		}
	}

	main_std_fds();
	/*
	 * Big transient buffers (Logs pages, Run output) come from mmap and go
	 * back to the system when freed, instead of glibc raising its mmap
	 * threshold and keeping them in per-thread heaps.
	 */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	/* Blocked here, before any thread exists, so every thread inherits it; main sigwaits. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&srv, 0, sizeof(srv));
	pthread_mutex_init(&srv.cfg.mu, NULL);
	pthread_mutex_init(&srv.set_config_mu, NULL);
	srv.started_at_ms = util_now_ms();
	srv.started_mono_ms = util_mono_ms();
	if (!util_fmt(srv.data_dir, sizeof(srv.data_dir), "%s", data) ||
	    !util_fmt(srv.log_dir, sizeof(srv.log_dir), "%s/logs", data)) {
		util_log("--data path too long");
		return (1);
	}
	if ((rv = util_mkdirs(srv.log_dir)) != 0) {
		util_log("%s: %s", srv.log_dir, strerror(rv));
		return (1);
	}
	if (main_lock(srv.data_dir) < 0) {
		return (1);
	}
	snprintf(db, sizeof(db), "%s/sandproc.db", srv.data_dir);
	if (store_open(&srv.store, db, err, sizeof(err)) != 0) {
		util_log("store: %s", err);
		return (1);
	}
	config_defaults(&srv.cfg.c);
	if (store_load_config(srv.store, &srv.cfg.c) != 0 || !config_validate(&srv.cfg.c, err, sizeof(err))) {
		util_log(
		    "stored config ignored (%s); using defaults", store_errmsg()[0] ? store_errmsg() : err);
		config_defaults(&srv.cfg.c);
	}
	if (publisher_open(&srv.pub, events, bound_events, sizeof(bound_events), err, sizeof(err)) != 0) {
		util_log("%s", err);
		return (1);
	}
	if (supervisor_new(&srv.sup, srv.store, srv.pub, &srv.cfg, srv.log_dir, err, sizeof(err)) != 0) {
		util_log("supervisor: %s", err);
		return (1);
	}
	supervisor_reconcile(srv.sup);
	if (rpc_server_start(&rs, &srv, listen, main_services, main_inline_methods, bound_listen,
	        sizeof(bound_listen), err, sizeof(err)) != 0) {
		util_log("%s", err);
		supervisor_stop(srv.sup, 0);
		return (1);
	}
	/* One line on stdout for scripts and tests that asked for port 0. */
	printf("sandprocd ready: listen=%s events=%s data=%s\n", bound_listen, bound_events, srv.data_dir);
	fflush(stdout);
	util_log("%s listening on %s, events on %s, data in %s", SANDPROC_VERSION, bound_listen, bound_events,
	    srv.data_dir);

	while (sigwait(&sigs, &sig) != 0) {}
	util_log("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	rpc_server_close(rs);
	supervisor_stop(srv.sup, grace_ms);
	rpc_server_free(rs);
	supervisor_free(srv.sup);
	publisher_close(srv.pub);
	store_close(srv.store);
	util_log("stopped");
	return (0);
}
