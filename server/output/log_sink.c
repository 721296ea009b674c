/* The log sink: output entries into the process's log file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/util.h"
#include "output/logfile.h"
#include "output/sink.h"

typedef struct log_sink {
	sink k;
	logfile *lf;
	config_holder *cfg;
	sink_losses *losses;
	char id[32];
} log_sink;

static void
log_sink_emit(sink *k, const event *ev)
{
	log_sink *ls = (log_sink *)k;
	sandproc_v1_Config cfg;
	int rv;

	if (ev->kind == EV_EXITED) {
		logfile_close(ls->lf);
		ls->lf = NULL;
		return;
	}
	if (ev->kind != EV_OUTPUT || ev->stored || ls->lf == NULL) {
		return;
	}
	config_holder_get(ls->cfg, &cfg);
	rv = logfile_append(ls->lf, ev->seq, (uint8_t)ev->stream, ev->ts_ms, ev->data, ev->len,
	    cfg.max_log_bytes_per_process);
	if (rv != 0) {
		if (ls->losses->bytes == 0) {
			util_log("%s: output entry %llu not stored: %s", ls->id, (unsigned long long)ev->seq,
			    strerror(rv));
			ls->losses->err = rv;
		}
		ls->losses->bytes += ev->len;
	}
}

static void
log_sink_free(sink *k)
{
	log_sink *ls = (log_sink *)k;

	logfile_close(ls->lf);
	free(ls);
}

int
log_sink_new(
    sink **out, const char *dir, const char *id, config_holder *cfg, sink_losses *losses, uint64_t *last_seq)
{
	log_sink *ls = calloc(1, sizeof(*ls));
	int rv;

	if (ls == NULL) {
		return (ENOMEM);
	}
	if ((rv = logfile_open(&ls->lf, dir, id, last_seq)) != 0) {
		free(ls);
		return (rv);
	}
	ls->k.emit = log_sink_emit;
	ls->k.free = log_sink_free;
	ls->cfg = cfg;
	ls->losses = losses;
	snprintf(ls->id, sizeof(ls->id), "%s", id);
	*out = &ls->k;
	return (0);
}
