/* Signals by name ("TERM", "SIGTERM", "term") and number. */
#ifndef OS_SIGNALS_H
#define OS_SIGNALS_H

/* The number of a signal given by name or number; -1 if none. */
int signals_number(const char *s);

/* The name of a signal without "SIG" ("TERM"), or NULL. */
const char *signals_name(int sig);

#endif
