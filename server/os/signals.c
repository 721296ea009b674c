/* Signal names and numbers. */
#include "os/signals.h"

#include <signal.h>
#include <stdlib.h>
#include <strings.h>

static const struct {
	int num;
	const char *name;
} signals_table[] = {
	{ SIGHUP, "HUP" },
	{ SIGINT, "INT" },
	{ SIGQUIT, "QUIT" },
	{ SIGILL, "ILL" },
	{ SIGTRAP, "TRAP" },
	{ SIGABRT, "ABRT" },
	{ SIGBUS, "BUS" },
	{ SIGFPE, "FPE" },
	{ SIGKILL, "KILL" },
	{ SIGUSR1, "USR1" },
	{ SIGSEGV, "SEGV" },
	{ SIGUSR2, "USR2" },
	{ SIGPIPE, "PIPE" },
	{ SIGALRM, "ALRM" },
	{ SIGTERM, "TERM" },
	{ SIGCHLD, "CHLD" },
	{ SIGCONT, "CONT" },
	{ SIGSTOP, "STOP" },
	{ SIGTSTP, "TSTP" },
	{ SIGTTIN, "TTIN" },
	{ SIGTTOU, "TTOU" },
	{ SIGURG, "URG" },
	{ SIGXCPU, "XCPU" },
	{ SIGXFSZ, "XFSZ" },
	{ SIGVTALRM, "VTALRM" },
	{ SIGPROF, "PROF" },
	{ SIGWINCH, "WINCH" },
	{ SIGIO, "IO" },
	{ SIGPWR, "PWR" },
	{ SIGSYS, "SYS" },
};

int
signals_number(const char *s)
{
	char *end;
	long n;

	if (s == NULL || *s == '\0') {
		return (-1);
	}
	if (*s >= '0' && *s <= '9') {
		n = strtol(s, &end, 10);
		return (*end == '\0' && n > 0 && n < NSIG ? (int)n : -1);
	}
	if (strncasecmp(s, "SIG", 3) == 0) {
		s += 3;
	}
	for (size_t i = 0; i < sizeof(signals_table) / sizeof(signals_table[0]); i++) {
		if (strcasecmp(s, signals_table[i].name) == 0) {
			return (signals_table[i].num);
		}
	}
	return (-1);
}

const char *
signals_name(int sig)
{
	for (size_t i = 0; i < sizeof(signals_table) / sizeof(signals_table[0]); i++) {
		if (signals_table[i].num == sig) {
			return (signals_table[i].name);
		}
	}
	return (NULL);
}
