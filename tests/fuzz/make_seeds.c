/*
 * Writes the fuzzers' seed corpora into OUT/{request,logread,terminal}:
 * an envelope for every method (empty body, and a real body where one is
 * easy to make), a log file written by the real writer, and terminal
 * output with the escape sequences programs use.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "output/logfile.h"
#include "sandproc.h"

static void
seed(const char *dir, const char *name, const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL || fwrite(data, 1, len, f) != len) {
		perror(path);
		exit(1);
	}
	fclose(f);
}

static void
seed_request(const char *dir, const char *name, const sp_method *m, const void *body)
{
	nng_msg *msg;
	const char *err;

	if (sp_request_encode(&msg, m->name, 7, "tok", body ? m->request->fields : NULL, body, &err) !=
	    SP_OK) {
		fprintf(stderr, "%s: %s\n", name, err);
		exit(1);
	}
	seed(dir, name, nng_msg_body(msg), nng_msg_len(msg));
	nng_msg_free(msg);
}

int
main(int argc, char **argv)
{
	char d[4096], tmp[] = "/tmp/sandproc-seeds-XXXXXX";
	const sp_service *services[] = { &sp_system_service, &sp_processes_service };

	if (argc != 2) {
		fprintf(stderr, "usage: make_seeds OUT\n");
		return (2);
	}
	snprintf(d, sizeof(d), "%s/request", argv[1]);
	mkdir(argv[1], 0755);
	mkdir(d, 0755);
	for (size_t s = 0; s < 2; s++) {
		for (size_t i = 0; i < services[s]->count; i++) {
			char name[128];
			snprintf(
			    name, sizeof(name), "empty-%s", strchr(services[s]->methods[i].name, '/') + 1);
			seed_request(d, name, &services[s]->methods[i], NULL);
		}
	}
	sandproc_v1_GetRequest get = { .id = "proc_0123456789abcdef01234567" };
	seed_request(d, "get", &sp_processes_methods[SP_PROCESSES_GET], &get);
	sandproc_v1_LogsRequest logs = {
		.id = "proc_0123456789abcdef01234567", .tail = 3, .after_sequence = 1
	};
	seed_request(d, "logs", &sp_processes_methods[SP_PROCESSES_LOGS], &logs);
	sandproc_v1_ListRequest list = {
		.state = sandproc_v1_State_STATE_RUNNING, .limit = 5, .page_token = "12"
	};
	seed_request(d, "list", &sp_processes_methods[SP_PROCESSES_LIST], &list);
	sandproc_v1_SetConfigRequest set = { .has_max_output_bytes = true, .max_output_bytes = 4096 };
	seed_request(d, "set-config", &sp_processes_methods[SP_PROCESSES_SET_CONFIG], &set);
	sandproc_v1_SignalRequest sig = { .id = "proc_0123456789abcdef01234567", .signal = "TERM" };
	seed_request(d, "signal", &sp_processes_methods[SP_PROCESSES_SIGNAL], &sig);

	snprintf(d, sizeof(d), "%s/logread", argv[1]);
	mkdir(d, 0755);
	if (mkdtemp(tmp) == NULL) {
		return (1);
	}
	logfile *lf;
	uint64_t last;
	if (logfile_open(&lf, tmp, "proc_000000000000000000000001", &last) != 0) {
		return (1);
	}
	for (uint64_t i = 1; i <= 6; i++) {
		logfile_append(lf, i, (uint8_t)(1 + i % 3), (int64_t)i * 1000, "hello\n", 6, 1 << 20);
	}
	logfile_close(lf);
	char path[4200];
	snprintf(path, sizeof(path), "%s/proc_000000000000000000000001.log", tmp);
	static uint8_t buf[1 << 16];
	int fd = open(path, O_RDONLY);
	ssize_t n = read(fd, buf + 6, sizeof(buf) - 6);
	close(fd);
	memcpy(buf, "\x00\x02\x01\x00\x10\x40", 6);
	seed(d, "six-entries", buf, (size_t)n + 6);
	buf[0] = 128;
	seed(d, "six-entries-split", buf, (size_t)n + 6);
	unlink(path);
	rmdir(tmp);

	snprintf(d, sizeof(d), "%s/terminal", argv[1]);
	mkdir(d, 0755);
	const char *tty[] = {
		"\x50\x18\x40\x10hello\r\nworld",
		"\x50\x18\x28\x0c\x1b[2J\x1b[3;5Hhere\x1b[6n\x1b[?25l",
		"\x50\x18\x50\x18\x1b[31;1mred\x1b[0m \x1b]0;title\x07\x1b[?1049h alt \x1b[?1049l",
		"\x50\x18\x20\x08\xe2\x82\xac\xe4\xb8\xad\xf0\x9f\x98\x80 wide\x1b[10@x\x1b[5P\x1b[2K",
	};
	for (size_t i = 0; i < sizeof(tty) / sizeof(tty[0]); i++) {
		char name[32];
		snprintf(name, sizeof(name), "tty-%zu", i);
		seed(d, name, tty[i], strlen(tty[i]));
	}
	return (0);
}
