/* Record ids: a prefix and 24 random lowercase hex digits ("proc_1f0c..."). */
#ifndef BASE_IDS_H
#define BASE_IDS_H

#include <stdbool.h>

#define IDS_PROC "proc_"

/* The longest id with its NUL. */
#define IDS_MAX 32

/* Writes prefix + 24 random lowercase hex digits into out (IDS_MAX bytes). */
void ids_new(char *out, const char *prefix);

/* True when s is prefix followed by exactly 24 lowercase hex digits. */
bool ids_valid(const char *s, const char *prefix);

#endif
