/*
 * sandprocd: the sandproc server.
 *
 *   sandprocd [--listen URL]... [--events URL]... [--data DIR] [--grace MS]
 *             [--backend holder|direct] [--on-exit keep|stop] [--holder PATH]
 *             [--auth keys|none] [--tls-cert PEM --tls-key PEM [--tls-ca PEM]]
 *
 * Every call needs a key (auth/keys.h); on first start the server makes an
 * admin key and writes it to DATA/admin.key (0600, the data dir 0700).
 *
 * Serves sandproc.v1.System and sandproc.v1.Processes over nng REQ/REP on
 * every --listen URL, publishes output and lifecycle events on every
 * --events URL, and keeps its SQLite database and logs in --data.
 *
 * Every managed process is held by its own sandproc-holder (the "holder"
 * backend), so it outlives the server: SIGINT or SIGTERM stops the server
 * and leaves them running, and the next server takes them back. With
 * --on-exit stop (or --backend direct, where the server holds children
 * itself) they get SIGTERM, then SIGKILL after --grace ms, and their
 * records are written before it exits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/keys.h"
#include "base/util.h"
#include "os/procfs.h"
#include "ports/ports.h"
#include "proc/request.h"
#include "rpc/rpc.h"
#include "sandbox/sandbox.h"
#include "sandproc/v1/keys.srv.h"
#include "sandproc/v1/ports.srv.h"
#include "sandproc/v1/processes.srv.h"
#include "sandproc/v1/sandboxes.srv.h"
#include "sandproc/v1/system.srv.h"
#include "server.h"
#include "sp_tls.h"

#define DEFAULT_LISTEN "tcp://127.0.0.1:7300"
#define DEFAULT_EVENTS "tcp://127.0.0.1:7301"
#define DEFAULT_EXPOSE_HOST "127.0.0.1"
#define DEFAULT_DATA "./.sandproc"
#define DEFAULT_GRACE_MS 2000
#define DEFAULT_BACKEND "holder"
#define MAIN_MAX_URLS 8
/* Largest request body: the REP socket's NNG_OPT_RECVMAXSZ. */
#define MAIN_MAX_REQUEST_BYTES (8u * 1024 * 1024)
/* Worker threads kept, at most, and how long an idle extra one stays. */
#define MAIN_WORKERS_MIN 4
#define MAIN_WORKERS_MAX 1024
#define MAIN_WORKERS_IDLE_MS 10000

static const sp_server_service *const main_services[] = {
	&sp_system_server,
	&sp_processes_server,
	&sp_sandboxes_server,
	&sp_keys_server,
	&sp_ports_server,
	NULL,
};

/*
 * Answered on nng's callback thread, with no hand-off: calls bounded in
 * work that never wait on children or other calls. Get and List read the
 * store, through its own read connection and mmap, which a write never
 * holds up.
 */
static const sp_method *const main_inline_methods[] = {
	&sp_system_methods[SP_SYSTEM_HEALTH],
	&sp_processes_methods[SP_PROCESSES_GET],
	&sp_processes_methods[SP_PROCESSES_LIST],
	&sp_processes_methods[SP_PROCESSES_GET_CONFIG],
	&sp_processes_methods[SP_PROCESSES_RESIZE],
	NULL,
};

static void
main_usage(FILE *f)
{
	fprintf(f,
	    "usage: sandprocd [--listen URL]... [--events URL]... [--data DIR] [--grace MS]\n"
	    "                 [--backend holder|direct] [--on-exit keep|stop] [--holder PATH] [--workdir "
	    "DIR]\n"
	    "  --listen URL   requests (nng REQ/REP), default " DEFAULT_LISTEN "; may be repeated\n"
	    "  --events URL   event feed (nng PUB), default " DEFAULT_EVENTS "; may be repeated\n"
	    "  --data DIR     database and logs, default " DEFAULT_DATA "\n"
	    "  --grace MS     at shutdown, SIGTERM to SIGKILL, default %d\n"
	    "  --backend B    holder: each process held by a sandproc-holder, outliving the server\n"
	    "                 (default); direct: children of the server, ended with it\n"
	    "  --on-exit A    keep: leave processes running at shutdown for the next server\n"
	    "                 (default with holders); stop: stop them (SIGTERM, then SIGKILL)\n"
	    "  --holder PATH  the sandproc-holder program, default: beside sandprocd\n"
	    "  --workdir DIR  host processes' cwd when they give none, and the base of a relative\n"
	    "                 one (records keep the absolute path), default DATA/work\n"
	    "  --auth A       keys: every call needs a key (default; an admin key is written to\n"
	    "                 DATA/admin.key on first start); none: no checks, for tests and\n"
	    "                 benchmarks, only when every URL is ipc:// or loopback\n"
	    "  --tls-cert PEM --tls-key PEM\n"
	    "                 the server's certificate and key, for tls+tcp:// and wss:// URLs\n"
	    "  --tls-ca PEM   require client certificates signed by these CAs\n"
	    "  --expose-host ADDR\n"
	    "                 the address exposed ports listen on, default " DEFAULT_EXPOSE_HOST "\n"
	    "  --ws-origin ORIGIN\n"
	    "                 a web origin (http://host:port) whose pages may use the ws:// and\n"
	    "                 wss:// listeners; may be repeated; default none (clients outside\n"
	    "                 browsers send no Origin and are always let in)\n"
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

/* Every client connection, child pipe and log takes an fd: use all the system allows. */
static void
main_raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
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

typedef struct main_opts {
	const char *listen[MAIN_MAX_URLS], *events[MAIN_MAX_URLS];
	size_t nlisten, nevents;
	const char *data;
	int grace_ms;
	const char *backend, *on_exit, *holder, *workdir;
	const char *auth, *tls_cert, *tls_key, *tls_ca;
	const char *expose_host;
	const char *origins[MAIN_MAX_URLS]; /* --ws-origin */
	size_t norigins;
} main_opts;

/* An IPv4 or IPv6 address in numbers. */
static bool
main_numeric_host(const char *s)
{
	struct in6_addr a;
	return (inet_pton(AF_INET, s, &a) == 1 || inet_pton(AF_INET6, s, &a) == 1);
}

/* ipc://, inproc://, or a TCP/WebSocket URL whose host is a loopback address: reachable only from here. */
static bool
main_local_url(const char *url)
{
	const char *host = strstr(url, "://");
	char h[256];

	if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0) {
		return (true);
	}
	if (host == NULL) {
		return (false);
	}
	host += 3;
	size_t n = strcspn(host, "/");
	if (n >= sizeof(h)) {
		return (false);
	}
	memcpy(h, host, n);
	h[n] = '\0';
	/* Drop the port: after the last ':' outside brackets. */
	char *close = strrchr(h, ']'), *colon = strrchr(h, ':');
	if (colon != NULL && (close == NULL || colon > close)) {
		*colon = '\0';
	}
	return (strncmp(h, "127.", 4) == 0 || strcmp(h, "localhost") == 0 || strcmp(h, "[::1]") == 0);
}

/* Parses the command line; returns -1 to go on, else the exit code. */
static int
main_parse(int argc, char **argv, main_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->data = DEFAULT_DATA;
	o->grace_ms = DEFAULT_GRACE_MS;
	o->backend = DEFAULT_BACKEND;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			main_usage(stdout);
			return (0);
		} else if (strcmp(a, "--version") == 0) {
			printf("sandprocd %s\n", SANDPROC_VERSION);
			return (0);
		} else if (v != NULL && strcmp(a, "--listen") == 0 && o->nlisten < MAIN_MAX_URLS) {
			o->listen[o->nlisten++] = v, i++;
		} else if (v != NULL && strcmp(a, "--events") == 0 && o->nevents < MAIN_MAX_URLS) {
			o->events[o->nevents++] = v, i++;
		} else if (v != NULL && strcmp(a, "--data") == 0) {
			o->data = v, i++;
		} else if (v != NULL && strcmp(a, "--grace") == 0) {
			o->grace_ms = atoi(v), i++;
		} else if (v != NULL && strcmp(a, "--backend") == 0 &&
		    (strcmp(v, "holder") == 0 || strcmp(v, "direct") == 0)) {
			o->backend = v, i++;
		} else if (v != NULL && strcmp(a, "--on-exit") == 0 &&
		    (strcmp(v, "keep") == 0 || strcmp(v, "stop") == 0)) {
			o->on_exit = v, i++;
		} else if (v != NULL && strcmp(a, "--holder") == 0) {
			o->holder = v, i++;
		} else if (v != NULL && strcmp(a, "--workdir") == 0) {
			o->workdir = v, i++;
		} else if (v != NULL && strcmp(a, "--expose-host") == 0 && main_numeric_host(v)) {
			o->expose_host = v, i++;
		} else if (v != NULL && strcmp(a, "--ws-origin") == 0 && o->norigins < MAIN_MAX_URLS) {
			o->origins[o->norigins++] = v, i++;
		} else if (v != NULL && strcmp(a, "--auth") == 0 &&
		    (strcmp(v, "keys") == 0 || strcmp(v, "none") == 0)) {
			o->auth = v, i++;
		} else if (v != NULL && strcmp(a, "--tls-cert") == 0) {
			o->tls_cert = v, i++;
		} else if (v != NULL && strcmp(a, "--tls-key") == 0) {
			o->tls_key = v, i++;
		} else if (v != NULL && strcmp(a, "--tls-ca") == 0) {
			o->tls_ca = v, i++;
		} else {
			fprintf(stderr,
			    "sandprocd: unknown, repeated too often or incomplete option \"%s\"\n", a);
			main_usage(stderr);
			return (2);
		}
	}
	if (o->on_exit == NULL) {
		o->on_exit = strcmp(o->backend, "holder") == 0 ? "keep" : "stop";
	} else if (strcmp(o->on_exit, "keep") == 0 && strcmp(o->backend, "holder") != 0) {
		fprintf(stderr,
		    "sandprocd: --on-exit keep needs --backend holder (direct children end with the "
		    "server)\n");
		return (2);
	}
	if (o->nlisten == 0) {
		o->listen[o->nlisten++] = DEFAULT_LISTEN;
	}
	if (o->nevents == 0) {
		o->events[o->nevents++] = DEFAULT_EVENTS;
	}
	if (o->auth == NULL) {
		o->auth = "keys";
	}
	if (o->expose_host == NULL) {
		o->expose_host = DEFAULT_EXPOSE_HOST;
	}
	if ((o->tls_cert == NULL) != (o->tls_key == NULL) || (o->tls_ca != NULL && o->tls_cert == NULL)) {
		fprintf(stderr, "sandprocd: --tls-cert and --tls-key go together, and --tls-ca needs them\n");
		return (2);
	}
	for (size_t i = 0; i < o->nlisten + o->nevents; i++) {
		bool feed = i >= o->nlisten;
		const char *u = feed ? o->events[i - o->nlisten] : o->listen[i];
		/* nng would listen on tls+tcp:// with no certificate, and no client could ever connect. */
		if (sp_tls_url(u) && o->tls_cert == NULL) {
			fprintf(stderr, "sandprocd: %s: TLS needs --tls-cert and --tls-key\n", u);
			return (2);
		}
		if (strcmp(o->auth, "none") == 0 && !main_local_url(u)) {
			fprintf(stderr,
			    "sandprocd: --auth none lets anyone who reaches %s run anything as this server: "
			    "it is allowed only when every URL is ipc:// or loopback (127.0.0.1, [::1], "
			    "localhost)\n",
			    u);
			return (2);
		}
		/* The feed carries no per-message auth: only this machine, or TLS with client certificates.
		 */
		if (feed && !main_local_url(u) && !(sp_tls_url(u) && o->tls_ca != NULL)) {
			fprintf(stderr,
			    "sandprocd: --events %s: the event feed has no per-message auth, so it listens "
			    "only on ipc://, loopback, or tls+tcp:// with client certificates (--tls-ca); "
			    "remote clients without it can follow output through Logs long polls "
			    "(--events none on the client)\n",
			    u);
			return (2);
		}
	}
	return (-1);
}

/* name in the folder of this program (the holder is installed beside sandprocd). */
static bool
main_beside_self(const char *name, char *out, size_t len)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0) {
		return (false);
	}
	self[n] = '\0';
	if ((slash = strrchr(self, '/')) == NULL) {
		return (false);
	}
	*slash = '\0';
	return (util_fmt(out, len, "%s/%s", self, name));
}

/* Opens the store, the feed and the supervisor; 0 or 1 (logged). */
static int
main_open(server *srv, const main_opts *o, char *bound_events, size_t blen)
{
	char err[512], db[4200];

	snprintf(db, sizeof(db), "%s/sandproc.db", srv->data_dir);
	if (store_open(&srv->store, db, err, sizeof(err)) != 0) {
		util_log("store: %s", err);
		return (1);
	}
	if (strcmp(o->auth, "keys") == 0) {
		char keyfile[4200];
		bool made;
		snprintf(keyfile, sizeof(keyfile), "%s/admin.key", srv->data_dir);
		if (keys_open(&srv->keys, srv->store, err, sizeof(err)) != 0 ||
		    keys_bootstrap(srv->keys, keyfile, &made, err, sizeof(err)) != 0) {
			util_log("keys: %s", err);
			return (1);
		}
		if (made) {
			util_log(
			    "made an admin key: its secret is in %s (readable by this user only)", keyfile);
		}
	} else {
		util_log("--auth none: calls are not authenticated");
	}
	if (o->tls_cert != NULL &&
	    sp_tls_config_new(&srv->tls, true, o->tls_ca, o->tls_cert, o->tls_key, err, sizeof(err)) != 0) {
		util_log("%s", err);
		return (1);
	}
	config_defaults(&srv->cfg.c);
	if (store_load_config(srv->store, &srv->cfg.c) != 0 ||
	    !config_validate(&srv->cfg.c, err, sizeof(err))) {
		util_log(
		    "stored config ignored (%s); using defaults", store_errmsg()[0] ? store_errmsg() : err);
		config_defaults(&srv->cfg.c);
	}
	if (store_queue_new(&srv->sq, srv->store) != 0 ||
	    workq_new(&srv->wq, MAIN_WORKERS_MIN, MAIN_WORKERS_MAX, MAIN_WORKERS_IDLE_MS) != 0 ||
	    timers_new(&srv->timers) != 0) {
		util_log("cannot start threads");
		return (1);
	}
	if (publisher_new(&srv->pub, err, sizeof(err)) != 0) {
		util_log("%s", err);
		return (1);
	}
	for (size_t i = 0; i < o->nevents; i++) {
		char bound[512];
		if (publisher_listen(
		        srv->pub, o->events[i], srv->tls, bound, sizeof(bound), err, sizeof(err)) != 0) {
			util_log("%s", err);
			return (1);
		}
		snprintf(bound_events + strlen(bound_events), blen - strlen(bound_events), "%s%s",
		    i ? "," : "", bound);
	}
	char holder[4200], run_dir[4200];
	if (o->holder != NULL) {
		snprintf(holder, sizeof(holder), "%s", o->holder);
	} else if (!main_beside_self("sandproc-holder", holder, sizeof(holder))) {
		util_log("cannot find sandproc-holder beside /proc/self/exe: give --holder PATH");
		return (1);
	}
	snprintf(run_dir, sizeof(run_dir), "%s/run", srv->data_dir);
	supervisor_config sc = { .st = srv->store,
		.sq = srv->sq,
		.pub = srv->pub,
		.cfg = &srv->cfg,
		.wq = srv->wq,
		.data_dir = srv->data_dir,
		.log_dir = srv->log_dir,
		.backend = o->backend,
		.holder_path = holder,
		.run_dir = run_dir };
	if (supervisor_new(&srv->sup, &sc, err, sizeof(err)) != 0) {
		util_log("supervisor: %s", err);
		return (1);
	}
	char boot_id[40];
	procfs_boot_id(boot_id, sizeof(boot_id));
	sandboxes_config xc = { .st = srv->store,
		.pub = srv->pub,
		.sup = srv->sup,
		.wq = srv->wq,
		.data_dir = srv->data_dir,
		.holder_path = holder,
		.boot_id = boot_id };
	if (sandboxes_new(&srv->sbx, &xc, err, sizeof(err)) != 0) {
		util_log("%s", err);
		return (1);
	}
	ports_config pc = {
		.sup = srv->sup, .sbx = srv->sbx, .pub = srv->pub, .expose_host = o->expose_host
	};
	if (ports_new(&srv->ports, &pc, err, sizeof(err)) != 0) {
		util_log("%s", err);
		return (1);
	}
	return (0);
}

int
main(int argc, char **argv)
{
	main_opts o;
	server srv;
	char err[512], bound_listen[2048] = "", bound_events[2048] = "";
	sigset_t sigs;
	int sig, rv;

	if ((rv = main_parse(argc, argv, &o)) >= 0) {
		return (rv);
	}
	util_set_ws_origins(o.origins, o.norigins);
	main_std_fds();
	main_raise_fd_limit();
	/*
	 * Big transient buffers (Logs pages, Run output) come from mmap and go
	 * back to the system when freed, instead of glibc raising its mmap
	 * threshold and keeping them in per-thread heaps.
	 */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	/* Fixing the threshold fixes trimming at 128 KiB: every big free would madvise. 4 MiB may stay. */
	mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);
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
	if (!util_fmt(srv.data_dir, sizeof(srv.data_dir), "%s", o.data) ||
	    !util_fmt(srv.log_dir, sizeof(srv.log_dir), "%s/logs", o.data)) {
		util_log("--data path too long");
		return (1);
	}
	if ((rv = util_mkdirs(srv.log_dir)) != 0) {
		util_log("%s: %s", srv.log_dir, strerror(rv));
		return (1);
	}
	/* Keys, records and output are the server user's alone. */
	if (chmod(o.data, 0700) != 0) {
		util_log("%s: %s", o.data, strerror(errno));
		return (1);
	}
	/* Absolute from here: holders run from "/", and a later server finds them by these paths. */
	char real[PATH_MAX];
	if (realpath(o.data, real) == NULL || !util_fmt(srv.data_dir, sizeof(srv.data_dir), "%s", real) ||
	    !util_fmt(srv.log_dir, sizeof(srv.log_dir), "%s/logs", real)) {
		util_log(
		    "%s: %s", o.data, realpath(o.data, real) == NULL ? strerror(errno) : "path too long");
		return (1);
	}
	/* Host processes' working directory: absolute, made if missing. */
	static char workdir[PATH_MAX];
	const char *wd = o.workdir;
	int we = 0;
	if (wd == NULL && !util_fmt(workdir, sizeof(workdir), "%s/work", srv.data_dir)) {
		we = ENAMETOOLONG;
	} else if ((we = util_mkdirs(wd != NULL ? wd : workdir)) == 0 && wd != NULL &&
	    realpath(wd, workdir) == NULL) {
		we = errno;
	}
	if (we != 0) {
		util_log("--workdir %s: %s", wd != NULL ? wd : workdir, strerror(we));
		return (1);
	}
	request_set_workdir(workdir);
	if (main_lock(srv.data_dir) < 0 || main_open(&srv, &o, bound_events, sizeof(bound_events)) != 0) {
		return (1);
	}
	supervisor_reconcile(srv.sup);
	rpc_config rc = {
		.srv = &srv,
		.services = main_services,
		.inline_methods = main_inline_methods,
		.wq = srv.wq,
		.timers = srv.timers,
		.max_request_bytes = MAIN_MAX_REQUEST_BYTES,
		.authorize = srv.keys != NULL ? keys_authorize : NULL,
		.authorize_arg = srv.keys,
		.tls = srv.tls,
	};
	if (rpc_server_new(&srv.rpc, &rc, err, sizeof(err)) != 0) {
		util_log("%s", err);
		return (1);
	}
	for (size_t i = 0; i < o.nlisten; i++) {
		char bound[512];
		if (rpc_server_listen(srv.rpc, o.listen[i], bound, sizeof(bound), err, sizeof(err)) != 0) {
			/* Processes found running are left as they are: a later server takes them back. */
			util_log("%s", err);
			return (1);
		}
		snprintf(bound_listen + strlen(bound_listen), sizeof(bound_listen) - strlen(bound_listen),
		    "%s%s", i ? "," : "", bound);
	}
	/* One line on stdout for scripts and tests that asked for port 0. */
	printf("sandprocd ready: listen=%s events=%s data=%s\n", bound_listen, bound_events, srv.data_dir);
	fflush(stdout);
	util_log("%s listening on %s, events on %s, data in %s", SANDPROC_VERSION, bound_listen, bound_events,
	    srv.data_dir);

	while (sigwait(&sigs, &sig) != 0) {}
	util_log("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	/*
	 * In this order: no new calls; every child stopped and its end recorded;
	 * calls and background jobs finished; the store's last writes done (they
	 * call back into the supervisor); then the supervisor itself.
	 */
	rpc_server_close(srv.rpc);
	supervisor_stop(srv.sup, o.grace_ms, strcmp(o.on_exit, "keep") == 0);
	sandboxes_stop(srv.sbx);
	rpc_server_free(srv.rpc);
	srv.rpc = NULL;
	workq_free(srv.wq);
	timers_free(srv.timers);
	ports_free(srv.ports);
	size_t lost = store_queue_free(srv.sq, util_mono_ms() + 5000);
	if (lost > 0) {
		util_log("%zu record updates could not be written before exit: the store kept failing", lost);
	}
	supervisor_free(srv.sup);
	sandboxes_free(srv.sbx);
	publisher_close(srv.pub);
	keys_close(srv.keys);
	store_close(srv.store);
	if (srv.tls != NULL) {
		nng_tls_config_free(srv.tls);
	}
	util_log("stopped");
	return (0);
}
