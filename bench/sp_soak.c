/*
 * sp_soak: mixed load against one sandprocd, with its resources sampled.
 *
 *   sp_soak URL EVENTS_URL SECONDS SERVER_PID DATA_DIR
 *
 * Worker threads, each with a client of its own, keep doing what users do:
 * Runs with known exit codes, short Starts waited for and deleted, long
 * Starts stopped or killed, TTYs typed into and resized, followers of
 * chatty processes joining and leaving, Gets and Lists. Every exit code is
 * checked against what the child returned. A sampler prints one JSON line
 * per interval to stderr (RSS, fds, threads, zombie children, SQLite and
 * log sizes); at the end, once the load has stopped and the server has had
 * time to go idle, one verdict line goes to stdout. Exit status 0 when
 * resources stayed flat and no exit code was wrong.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sandproc.h"

static const char *soak_url, *soak_events;
static atomic_bool soak_stop;
static atomic_long soak_ops, soak_wrong, soak_errors;

static int64_t
soak_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static sp_client *
soak_client(void)
{
	sp_client *c;
	char err[512];

	if (sp_connect(&c, soak_url, NULL, err, sizeof(err)) != SP_OK) {
		fprintf(stderr, "sp_soak: connect: %s\n", err);
		exit(1);
	}
	return (c);
}

static void
soak_error(sp_client *c, const char *what, int code)
{
	atomic_fetch_add(&soak_errors, 1);
	fprintf(stderr, "sp_soak: %s: %s: %s\n", what, sp_status_name(code), sp_client_error(c));
}

/* Waits for id's end and checks it against the expected state and code; then deletes it. */
static void
soak_finish(sp_client *c, const char *id, sandproc_v1_State state, int code)
{
	sandproc_v1_WaitRequest w = { 0 };
	sandproc_v1_DeleteRequest d = { 0 };
	sandproc_v1_DeleteReply dr;
	sandproc_v1_Process p;
	int rv;

	snprintf(w.id, sizeof(w.id), "%s", id);
	w.timeout_ms = 60000;
	if ((rv = sp_processes_wait(c, &w, &p, 70000)) != SP_OK) {
		soak_error(c, "wait", rv);
		return;
	}
	if (p.state != state || (state == sandproc_v1_State_STATE_EXITED && p.exit_code != code)) {
		atomic_fetch_add(&soak_wrong, 1);
		fprintf(
		    stderr, "sp_soak: %s ended %d/%d, wanted %d/%d\n", id, p.state, p.exit_code, state, code);
	}
	snprintf(d.id, sizeof(d.id), "%s", id);
	if ((rv = sp_processes_delete(c, &d, &dr, 0)) != SP_OK) {
		soak_error(c, "delete", rv);
	}
}

static int
soak_start(sp_client *c, const char *const *argv, bool tty, sandproc_v1_Process *p)
{
	sandproc_v1_StartRequest req = { 0 };
	int rv;

	req.argv = sp_strv_of(argv);
	req.tty = tty;
	if ((rv = sp_processes_start(c, &req, p, 0)) != SP_OK) {
		soak_error(c, "start", rv);
	}
	return (rv);
}

static void *
soak_runs(void *arg)
{
	sp_client *c = soak_client();
	unsigned seed = (unsigned)(uintptr_t)arg;

	while (!atomic_load(&soak_stop)) {
		int k = (int)(rand_r(&seed) % 7);
		char cmd[64];
		snprintf(cmd, sizeof(cmd), "echo run-%d; exit %d", k, k);
		const char *argv[] = { "sh", "-c", cmd, NULL };
		sandproc_v1_RunRequest req = { 0 };
		sandproc_v1_RunReply rep;
		req.argv = sp_strv_of(argv);
		int rv = sp_processes_run(c, &req, &rep, 30000);
		if (rv != SP_OK) {
			soak_error(c, "run", rv);
		} else if (rep.exit_code != k || rep.stdout.len < 5) {
			atomic_fetch_add(&soak_wrong, 1);
		}
		atomic_fetch_add(&soak_ops, 1);
	}
	sp_client_free(c);
	return (NULL);
}

static void *
soak_short(void *arg)
{
	sp_client *c = soak_client();
	unsigned seed = (unsigned)(uintptr_t)arg;

	while (!atomic_load(&soak_stop)) {
		int k = (int)(rand_r(&seed) % 7);
		char cmd[64];
		snprintf(cmd, sizeof(cmd), "echo out; echo err >&2; exit %d", k);
		const char *argv[] = { "sh", "-c", cmd, NULL };
		sandproc_v1_Process p;
		if (soak_start(c, argv, false, &p) == SP_OK) {
			soak_finish(c, p.id, sandproc_v1_State_STATE_EXITED, k);
		}
		atomic_fetch_add(&soak_ops, 1);
	}
	sp_client_free(c);
	return (NULL);
}

static void *
soak_long(void *arg)
{
	sp_client *c = soak_client();
	unsigned seed = (unsigned)(uintptr_t)arg;
	const char *argv[] = { "sleep", "300", NULL };

	while (!atomic_load(&soak_stop)) {
		sandproc_v1_Process p, got;
		if (soak_start(c, argv, false, &p) != SP_OK) {
			continue;
		}
		usleep((useconds_t)(100000 + rand_r(&seed) % 900000));
		if (rand_r(&seed) % 2) {
			sandproc_v1_StopRequest s = { .grace_ms = 1000 };
			snprintf(s.id, sizeof(s.id), "%s", p.id);
			sp_processes_stop(c, &s, &got, 0);
		} else {
			sandproc_v1_KillRequest k = { 0 };
			snprintf(k.id, sizeof(k.id), "%s", p.id);
			sp_processes_kill(c, &k, &got, 0);
		}
		soak_finish(c, p.id, sandproc_v1_State_STATE_KILLED, 0);
		atomic_fetch_add(&soak_ops, 1);
	}
	sp_client_free(c);
	return (NULL);
}

static void *
soak_tty(void *arg)
{
	sp_client *c = soak_client();
	const char *argv[] = { "cat", NULL };

	(void)arg;
	while (!atomic_load(&soak_stop)) {
		sandproc_v1_Process p, got;
		if (soak_start(c, argv, true, &p) != SP_OK) {
			continue;
		}
		for (int i = 0; i < 5; i++) {
			sandproc_v1_SendInputRequest in = { .data = sp_bytes_of_str("typed a line\r") };
			sandproc_v1_SendInputReply ir;
			sandproc_v1_ResizeRequest rz = { .cols = (uint32_t)(60 + i * 10),
				.rows = (uint32_t)(20 + i) };
			sandproc_v1_ResizeReply rr;
			sandproc_v1_ScreenRequest sr = { 0 };
			sandproc_v1_ScreenReply scr;
			snprintf(in.id, sizeof(in.id), "%s", p.id);
			snprintf(rz.id, sizeof(rz.id), "%s", p.id);
			snprintf(sr.id, sizeof(sr.id), "%s", p.id);
			sp_processes_send_input(c, &in, &ir, 0);
			sp_processes_resize(c, &rz, &rr, 0);
			sp_processes_screen(c, &sr, &scr, 0);
			usleep(20000);
		}
		sandproc_v1_KillRequest k = { 0 };
		snprintf(k.id, sizeof(k.id), "%s", p.id);
		sp_processes_kill(c, &k, &got, 0);
		soak_finish(c, p.id, sandproc_v1_State_STATE_KILLED, 0);
		atomic_fetch_add(&soak_ops, 1);
	}
	sp_client_free(c);
	return (NULL);
}

typedef struct soak_follow {
	uint64_t lines;
	int stop;
} soak_follow;

static int
soak_entry(void *arg, const sandproc_v1_LogEntry *e)
{
	soak_follow *f = arg;
	for (size_t i = 0; i < e->data.len; i++) {
		f->lines += e->data.data[i] == '\n';
	}
	return (0);
}

static void *
soak_follower(void *arg)
{
	sp_client *c = soak_client();
	unsigned seed = (unsigned)(uintptr_t)arg;
	const char *argv[] = { "sh", "-c", "i=0; while [ $i -lt 400 ]; do echo line $i; i=$((i+1)); done",
		NULL };

	while (!atomic_load(&soak_stop)) {
		sandproc_v1_Process p, final;
		soak_follow f = { 0 };
		if (soak_start(c, argv, false, &p) != SP_OK) {
			continue;
		}
		sp_follow_opts o = { .events_url = soak_events, .poll_ms = 100, .stop = &f.stop };
		/* Some follow to the end; some join late or leave early. */
		if (rand_r(&seed) % 3 == 0) {
			usleep(50000);
		}
		int rv = sp_follow(c, p.id, &o, soak_entry, &f, &final);
		if (rv != SP_OK) {
			soak_error(c, "follow", rv);
		} else if (f.lines != 400) {
			atomic_fetch_add(&soak_wrong, 1);
			fprintf(stderr, "sp_soak: follow of %s saw %llu lines, wanted 400\n", p.id,
			    (unsigned long long)f.lines);
		}
		soak_finish(c, p.id, sandproc_v1_State_STATE_EXITED, 0);
		atomic_fetch_add(&soak_ops, 1);
	}
	sp_client_free(c);
	return (NULL);
}

static void *
soak_reader(void *arg)
{
	sp_client *c = soak_client();
	sandproc_v1_ListReply *rep = malloc(sizeof(*rep));

	(void)arg;
	while (!atomic_load(&soak_stop)) {
		sandproc_v1_ListRequest req = { .limit = 100 };
		int rv = sp_processes_list(c, &req, rep, 0);
		if (rv != SP_OK) {
			soak_error(c, "list", rv);
		}
		for (pb_size_t i = 0; rv == SP_OK && i < rep->processes_count && i < 10; i++) {
			sandproc_v1_GetRequest g = { 0 };
			sandproc_v1_Process p;
			snprintf(g.id, sizeof(g.id), "%s", rep->processes[i].id);
			sp_processes_get(c, &g, &p, 0); /* it may be deleted meanwhile */
		}
		atomic_fetch_add(&soak_ops, 1);
		usleep(10000);
	}
	free(rep);
	sp_client_free(c);
	return (NULL);
}

typedef struct soak_sample {
	double t;
	long rss_kib, fds, threads, zombies;
	long long db_bytes, log_bytes;
} soak_sample;

static long
soak_count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	long n = 0;

	while (d != NULL && (de = readdir(d)) != NULL) {
		n += de->d_name[0] != '.';
	}
	if (d != NULL) {
		closedir(d);
	}
	return (n);
}

static long long
soak_dir_bytes(const char *path, const char *prefix)
{
	DIR *d = opendir(path);
	struct dirent *de;
	long long n = 0;
	char p[4096];
	struct stat st;

	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' ||
		    (prefix != NULL && strncmp(de->d_name, prefix, strlen(prefix)) != 0)) {
			continue;
		}
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			n += st.st_size;
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	return (n);
}

/*
 * Zombie children of pid that stay: a child is a zombie for a moment by
 * design (its pid and group stay reserved until its output is drained and
 * it is reaped), so only one seen again at the next sample counts.
 */
#define SOAK_MAX_ZOMBIES 256
static int soak_prev_zombies[SOAK_MAX_ZOMBIES];
static int soak_nprev;

static long
soak_zombies(int pid)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int now[SOAK_MAX_ZOMBIES];
	int nnow = 0;
	long n = 0;

	while (d != NULL && (de = readdir(d)) != NULL) {
		char path[300], buf[512], state;
		int ppid;
		if (de->d_name[0] < '1' || de->d_name[0] > '9') {
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL) {
			continue;
		}
		size_t r = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[r] = '\0';
		char *p = strrchr(buf, ')');
		if (p != NULL && sscanf(p + 1, " %c %d", &state, &ppid) == 2 && ppid == pid && state == 'Z' &&
		    nnow < SOAK_MAX_ZOMBIES) {
			now[nnow++] = atoi(de->d_name);
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	for (int i = 0; i < nnow; i++) {
		for (int j = 0; j < soak_nprev; j++) {
			n += now[i] == soak_prev_zombies[j];
		}
	}
	memcpy(soak_prev_zombies, now, (size_t)nnow * sizeof(int));
	soak_nprev = nnow;
	return (n);
}

static soak_sample
soak_take(int pid, const char *data, double t)
{
	soak_sample s = { .t = t };
	char path[4200], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			sscanf(line, "VmRSS: %ld", &s.rss_kib);
			sscanf(line, "Threads: %ld", &s.threads);
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	s.fds = soak_count_dir(path);
	s.zombies = soak_zombies(pid);
	s.db_bytes = soak_dir_bytes(data, "sandproc.db");
	snprintf(path, sizeof(path), "%s/logs", data);
	s.log_bytes = soak_dir_bytes(path, NULL);
	fprintf(stderr,
	    "{\"t\":%.0f,\"rss_kib\":%ld,\"fds\":%ld,\"threads\":%ld,\"zombies\":%ld,\"db_bytes\":%lld,"
	    "\"log_bytes\":%lld,\"ops\":%ld}\n",
	    t, s.rss_kib, s.fds, s.threads, s.zombies, s.db_bytes, s.log_bytes, atomic_load(&soak_ops));
	return (s);
}

int
main(int argc, char **argv)
{
	static void *(*workers[])(void *) = { soak_runs, soak_runs, soak_short, soak_short, soak_long,
		soak_long, soak_tty, soak_follower, soak_follower, soak_reader };
	enum { NW = sizeof(workers) / sizeof(workers[0]) };
	pthread_t th[NW];
	soak_sample first, warm, peak, last;
	long zombies = 0;

	if (argc != 6) {
		fprintf(stderr, "usage: sp_soak URL EVENTS_URL SECONDS SERVER_PID DATA_DIR\n");
		return (2);
	}
	soak_url = argv[1];
	soak_events = argv[2];
	double seconds = atof(argv[3]);
	int pid = atoi(argv[4]);
	const char *data = argv[5];
	int64_t t0 = soak_now_ms();
	first = soak_take(pid, data, 0);
	for (int i = 0; i < NW; i++) {
		pthread_create(&th[i], NULL, workers[i], (void *)(uintptr_t)(i + 1));
	}
	/* Warm-up is the first quarter; after it, RSS and disk must stay near where they were. */
	double step = seconds >= 600 ? 10 : seconds >= 120 ? 5 : 2;
	warm = peak = first;
	for (double t = step; t <= seconds; t += step) {
		usleep((useconds_t)(step * 1e6));
		last = soak_take(pid, data, (double)(soak_now_ms() - t0) / 1000);
		zombies += last.zombies;
		if (t <= seconds / 4) {
			warm = last;
		} else {
			peak.rss_kib = last.rss_kib > peak.rss_kib ? last.rss_kib : peak.rss_kib;
			peak.db_bytes = last.db_bytes > peak.db_bytes ? last.db_bytes : peak.db_bytes;
			peak.log_bytes = last.log_bytes > peak.log_bytes ? last.log_bytes : peak.log_bytes;
		}
	}
	atomic_store(&soak_stop, true);
	for (int i = 0; i < NW; i++) {
		pthread_join(th[i], NULL);
	}
	/* Idle long enough for extra worker threads to go back (10 s) and pages to be stored. */
	usleep(12 * 1000 * 1000);
	last = soak_take(pid, data, (double)(soak_now_ms() - t0) / 1000);
	zombies += last.zombies;
	bool rss_ok =
	    peak.rss_kib <= warm.rss_kib * 11 / 10 + 2048 && last.rss_kib <= warm.rss_kib * 11 / 10 + 2048;
	bool fds_ok = last.fds <= first.fds + 2;
	bool threads_ok = last.threads <= first.threads + 2;
	bool disk_ok = peak.log_bytes <= warm.log_bytes * 3 + (4 << 20) &&
	    peak.db_bytes <= warm.db_bytes * 3 + (4 << 20);
	long wrong = atomic_load(&soak_wrong), errors = atomic_load(&soak_errors);
	bool ok = rss_ok && fds_ok && threads_ok && disk_ok && zombies == 0 && wrong == 0 && errors == 0;
	printf("{\"bench\": \"soak\", \"seconds\": %.0f, \"ops\": %ld, \"wrong_exit_codes\": %ld, "
	       "\"errors\": %ld, "
	       "\"rss_kib\": [%ld, %ld, %ld, %ld], \"fds\": [%ld, %ld], \"threads\": [%ld, %ld], "
	       "\"zombies\": %ld, "
	       "\"db_bytes\": [%lld, %lld], \"log_bytes\": [%lld, %lld], \"flat\": %s}\n",
	    seconds, atomic_load(&soak_ops), wrong, errors, first.rss_kib, warm.rss_kib, peak.rss_kib,
	    last.rss_kib, first.fds, last.fds, first.threads, last.threads, zombies, warm.db_bytes,
	    peak.db_bytes, warm.log_bytes, peak.log_bytes, ok ? "true" : "false");
	return (ok ? 0 : 1);
}
