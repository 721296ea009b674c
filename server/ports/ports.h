/*
 * Ports: the TCP listeners of managed processes, found by the server, and
 * their exposures on the host.
 *
 * A scanner thread looks at the sandboxes (and the host's "default") that
 * have running processes: the listening sockets of each one's network
 * namespace (scan.h) and which of its processes hold them (their socket
 * inodes). It scans every 250 ms while processes run, at once when one
 * ends, and soon after one writes output (a server usually says when it
 * listens; such scans are at least 50 ms apart); never when none runs.
 * What changed goes out as port/<sandbox_id> events and wakes waiters
 * (WaitFor). A port bound to every address inside a sandbox is exposed as
 * soon as it is found, unless the sandbox says "manual" or it was unexposed
 * by hand; an exposure ends with its port (and so with the process and the
 * sandbox).
 */
#ifndef PORTS_PORTS_H
#define PORTS_PORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/waiter.h"
#include "events/publisher.h"
#include "proc/supervisor.h"
#include "sandproc/v1/ports.pb.h"

struct sandboxes;
typedef struct ports ports;

typedef struct ports_config {
	supervisor *sup;
	struct sandboxes *sbx;
	publisher *pub;
	const char *expose_host; /* numeric address exposures listen on ("127.0.0.1") */
} ports_config;

/* Starts the scanner and the forwarder, and hooks the supervisor's activity. */
int ports_new(ports **out, const ports_config *c, char *err, size_t errlen);
/* Unhooks, stops the threads, closes every exposure (before the supervisor goes). */
void ports_free(ports *pm);

/* Which records a caller sees: (tenant, sandbox_id) -> visible. */
typedef bool (*ports_visible_fn)(void *arg, const char *tenant, const char *sandbox_id);

/* Open ports of sandbox_id ("" = every sandbox) that visible allows. */
void ports_list(
    ports *pm, const char *sandbox_id, ports_visible_fn visible, void *arg, sandproc_v1_ListPortsReply *out);

/*
 * Exposes port of sandbox_id (scanning first when it is not known yet);
 * out gets the record. SP_NOT_FOUND when nothing listens there.
 */
int ports_expose(
    ports *pm, const char *sandbox_id, uint32_t port, sandproc_v1_Port *out, char *err, size_t errlen);
int ports_unexpose(
    ports *pm, const char *sandbox_id, uint32_t port, sandproc_v1_Port *out, char *err, size_t errlen);

/* Whether managed process id (or one of its processes) listens on port now. */
bool ports_listening(ports *pm, const char *process_id, uint32_t port);

/* Links w until the next change of any port (open, closed); it is woken then. */
void ports_watch(ports *pm, waiter *w);

/* Asks for a scan soon (as output does). */
void ports_nudge(ports *pm);

/* Connections being forwarded now. */
size_t ports_connections(ports *pm);

#endif
