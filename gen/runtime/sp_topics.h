/*
 * Topics of the event feed (the PUB socket), shared by the server, which
 * publishes, and clients, which subscribe. Each feed message is the topic,
 * one NUL byte, then the encoded message the topic names:
 *
 *   log/<proc_id>    LogEntry      stdout/stderr output
 *   term/<proc_id>   TermFrame     TTY output
 *   proc/<proc_id>   ProcessEvent  lifecycle: started, exited, killed, failed
 *   run/<token>      LogEntry      a Run's output, when its request gave stream_token
 *   sbx/<sbx_id>     SandboxEvent  a sandbox's lifecycle
 *   port/<sbx_id>    PortEvent     a port opened, closed, exposed or unexposed
 *                                  ("default" for processes on the host)
 *
 * Subscribing to "log/" gets every process's output; subscribing to
 * "log/<id>" plus its NUL gets exactly one process's.
 */
#ifndef SP_TOPICS_H
#define SP_TOPICS_H

#include <stdio.h>

#define SP_TOPIC_LOG "log"
#define SP_TOPIC_TERM "term"
#define SP_TOPIC_PROC "proc"
#define SP_TOPIC_RUN "run"

/* Largest topic: the longest kind, a slash and an id. */
#define SP_TOPIC_MAX 80

/* Writes "<kind>/<id>" into buf; its length, or -1 when it does not fit. */
static inline int
sp_topic(char *buf, size_t size, const char *kind, const char *id)
{
	int n = snprintf(buf, size, "%s/%s", kind, id);
	return (n > 0 && (size_t)n < size ? n : -1);
}

#endif
