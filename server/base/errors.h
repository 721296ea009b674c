/*
 * The one map from errno values (what the OS, SQLite and our own modules
 * return) to sp_status codes, so a cause is reported the same way wherever
 * it comes from.
 */
#ifndef BASE_ERRORS_H
#define BASE_ERRORS_H

#include "sp_status.h"

/*
 * The status a call reports for errno e. ENOENT maps to NOT_FOUND, EACCES and
 * EPERM to PERMISSION_DENIED, ENOSPC/ENOMEM/EMFILE/EAGAIN and friends to
 * RESOURCE_EXHAUSTED, EINVAL/ENAMETOOLONG/E2BIG to INVALID_ARGUMENT,
 * ETIMEDOUT to DEADLINE_EXCEEDED, EEXIST to ALREADY_EXISTS, anything else to
 * INTERNAL (0 is OK).
 */
int errors_status(int e);

/*
 * The status for errno e from starting a program: ENOENT and ENOTDIR are
 * NOT_FOUND (no such executable), EACCES/EPERM PERMISSION_DENIED, lack of
 * resources RESOURCE_EXHAUSTED, and anything else that stops an exec
 * (ENOEXEC, ETXTBSY, ...) FAILED_PRECONDITION.
 */
int errors_exec_status(int e);

/* A short description of e for messages ("disk full" for ENOSPC, else strerror). */
const char *errors_text(int e);

#endif
