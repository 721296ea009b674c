/*
 * JSON for any generated message, driven by the plugin's sp_msg_info tables:
 * field names as in the proto, enums as their short lower-case names
 * ("running"), bytes as a string when they are valid UTF-8 and otherwise as
 * "<name>_base64". Every field is written, set or not, so scripts see a
 * fixed shape.
 */
#ifndef SP_JSON_H
#define SP_JSON_H

#include <stdio.h>

#include "sp_rpc.h"

/* Writes msg as one JSON object (no newline). */
void sp_json_print(FILE *f, const sp_msg_info *info, const void *msg);

/* Writes s (len bytes) as a JSON string literal; invalid UTF-8 becomes U+FFFD. */
void sp_json_string(FILE *f, const void *s, size_t len);

/* True when len bytes of s are valid UTF-8. */
int sp_utf8_valid(const void *s, size_t len);

#endif
