#include "proc/runs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/util.h"
#include "os/procfs.h"

#define RUNS_MAGIC 0x534e5552u /* "RUNS" */

typedef struct runs_slot {
	int32_t pid; /* 0: free */
	uint32_t pad;
	uint64_t start; /* /proc start time of pid */
} runs_slot;

typedef struct runs_hdr {
	uint32_t magic;
	uint32_t slots;
	char boot_id[40];
} runs_hdr;

struct runs {
	pthread_mutex_t mu;
	runs_hdr *hdr;
	runs_slot *slot;
	size_t n, len;
	int *free_list; /* free slot indexes */
	size_t nfree;
	bool stopping;
};

/* Kills what the table lists from an earlier server of this boot, if it still runs. */
static int
runs_kill_leftovers(runs *r, const char *boot)
{
	int killed = 0;

	for (size_t i = 0; r->hdr->magic == RUNS_MAGIC && strcmp(r->hdr->boot_id, boot) == 0 && i < r->n;
	     i++) {
		runs_slot *s = &r->slot[i];
		if (s->pid > 0 && s->start != 0 && procfs_pid_start_time(s->pid) == s->start) {
			/* Its own group (the Run made it a leader), then itself. */
			kill(-s->pid, SIGKILL);
			kill(s->pid, SIGKILL);
			killed++;
		}
	}
	return (killed);
}

int
runs_open(runs **out, const char *dir, size_t slots, int *killed)
{
	runs *r = calloc(1, sizeof(*r));
	char path[4200], boot[40];
	int fd, rv;

	*killed = 0;
	if (r == NULL || (r->free_list = calloc(slots, sizeof(int))) == NULL) {
		free(r);
		return (ENOMEM);
	}
	snprintf(path, sizeof(path), "%s/runs.tbl", dir);
	r->n = slots;
	r->len = sizeof(runs_hdr) + slots * sizeof(runs_slot);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 || ftruncate(fd, (off_t)r->len) != 0) {
		rv = errno;
		if (fd >= 0) {
			close(fd);
		}
		free(r->free_list);
		free(r);
		return (rv);
	}
	r->hdr = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (r->hdr == MAP_FAILED) {
		rv = errno;
		free(r->free_list);
		free(r);
		return (rv);
	}
	r->slot = (runs_slot *)(r->hdr + 1);
	procfs_boot_id(boot, sizeof(boot));
	if (r->hdr->slots == slots) {
		*killed = runs_kill_leftovers(r, boot);
	}
	memset(r->hdr, 0, r->len);
	r->hdr->magic = RUNS_MAGIC;
	r->hdr->slots = (uint32_t)slots;
	snprintf(r->hdr->boot_id, sizeof(r->hdr->boot_id), "%s", boot);
	for (size_t i = 0; i < slots; i++) {
		r->free_list[r->nfree++] = (int)(slots - 1 - i);
	}
	pthread_mutex_init(&r->mu, NULL);
	*out = r;
	return (0);
}

void
runs_close(runs *r)
{
	if (r == NULL) {
		return;
	}
	munmap(r->hdr, r->len);
	pthread_mutex_destroy(&r->mu);
	free(r->free_list);
	free(r);
}

int
runs_add(runs *r, pid_t pid)
{
	uint64_t start = procfs_pid_start_time(pid);
	int i = -1;

	pthread_mutex_lock(&r->mu);
	if (!r->stopping && r->nfree > 0) {
		i = r->free_list[--r->nfree];
		r->slot[i].start = start;
		__atomic_store_n(&r->slot[i].pid, pid, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&r->mu);
	return (i);
}

void
runs_remove(runs *r, int slot)
{
	if (slot < 0) {
		return;
	}
	pthread_mutex_lock(&r->mu);
	__atomic_store_n(&r->slot[slot].pid, 0, __ATOMIC_RELEASE);
	r->slot[slot].start = 0;
	r->free_list[r->nfree++] = slot;
	pthread_mutex_unlock(&r->mu);
}

void
runs_stop(runs *r, int sig)
{
	pthread_mutex_lock(&r->mu);
	r->stopping = true;
	/* A Run's child is unreaped while its slot is taken, so its group id is still its own. */
	for (size_t i = 0; i < r->n; i++) {
		if (r->slot[i].pid > 0) {
			kill(-r->slot[i].pid, sig);
		}
	}
	pthread_mutex_unlock(&r->mu);
}
