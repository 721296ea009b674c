/*
 * Limits on what a request may hold, shared by the server (which refuses
 * anything beyond them with INVALID_ARGUMENT, naming the field and the
 * limit) and clients (which check before sending). Records hold no more
 * than these, so no record can make a List page or a reply grow without
 * bound.
 */
#ifndef SP_LIMITS_H
#define SP_LIMITS_H

#define SP_MAX_ARGS 4096               /* argv entries */
#define SP_MAX_ARGV_BYTES (256 * 1024) /* argv, all entries together */
#define SP_MAX_ENV 1024                /* env entries */
#define SP_MAX_ENV_BYTES (256 * 1024)  /* env, all entries together */
#define SP_MAX_LABELS 64               /* labels */
#define SP_MAX_LABEL_BYTES 512         /* one label, KEY=value */
#define SP_MAX_NAME 128                /* a process's name */
#define SP_MAX_CWD 4096                /* cwd */
#define SP_MAX_TTY_SIDE 1000           /* cols, rows */
#define SP_MAX_TTY_CELLS 100000        /* cols x rows */

#endif
