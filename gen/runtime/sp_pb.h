/*
 * nanopb glue shared by every generated message: the C types of callback
 * fields, the arena that decoded callback fields live in, and encode/decode
 * helpers.
 *
 * Callback fields (see the .options files beside the protos) are:
 *   singular string  -> sp_cstr_t   (NUL-terminated; NULL or "" when unset)
 *   repeated string  -> sp_strv_t   (n strings; v is NULL-terminated)
 *   singular bytes   -> sp_bytes_t  (data, len)
 * A decoded message's callback fields point into the arena passed to
 * sp_pb_decode and stay valid until that arena is reset or freed.
 */
#ifndef SP_PB_H
#define SP_PB_H

#include <pb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef const char *sp_cstr_t;

typedef struct sp_strv {
	size_t n;
	const char **v;
	size_t cap; /* used while decoding */
} sp_strv_t;

typedef struct sp_bytes {
	const uint8_t *data;
	size_t len;
} sp_bytes_t;

/*
 * The envelope's body: raw bytes when encoding (sp_rpc.c appends a message
 * body itself); when decoding, a slice of the envelope's own buffer (no copy).
 */
typedef struct sp_body {
	const uint8_t *data;
	size_t len;
} sp_body_t;

typedef struct sp_arena sp_arena;

/* A new empty arena, or NULL when out of memory. Free with sp_arena_free. */
sp_arena *sp_arena_new(void);
void sp_arena_free(sp_arena *a);
/* Forgets every allocation; keeps one chunk for reuse. */
void sp_arena_reset(sp_arena *a);
/* size bytes aligned for any type, or NULL when out of memory. */
void *sp_arena_alloc(sp_arena *a, size_t size);
/* A copy of s (NULL for NULL) owned by the arena. */
char *sp_arena_strdup(sp_arena *a, const char *s);
/* Bytes currently held by the arena. */
size_t sp_arena_used(const sp_arena *a);

/* Appends s to sv, growing its array in arena (NULL-terminated); false when out of memory. */
bool sp_strv_push(sp_strv_t *sv, const char *s, sp_arena *arena);

/* An sp_strv_t over a NULL-terminated array (NULL gives an empty list). */
sp_strv_t sp_strv_of(const char *const *v);
/* An sp_bytes_t over a C string (NULL gives an empty slice). */
sp_bytes_t sp_bytes_of_str(const char *s);

/*
 * Zeroes dst (dst_size bytes) and decodes len bytes of buf into it. Callback
 * fields are copied into arena. On failure returns false and, when err is
 * not NULL, points it at nanopb's static error text.
 */
bool sp_pb_decode(const pb_msgdesc_t *fields, void *dst, size_t dst_size, const void *buf, size_t len,
    sp_arena *arena, const char **err);

/* The encoded size of src, or false when it cannot be encoded. */
bool sp_pb_encoded_size(const pb_msgdesc_t *fields, const void *src, size_t *size);

/* Encodes src into buf (cap bytes); *len gets the bytes written. */
bool sp_pb_encode(
    const pb_msgdesc_t *fields, const void *src, void *buf, size_t cap, size_t *len, const char **err);

/* The nanopb field callbacks named in the .options files. */
bool sp_pb_callback(pb_istream_t *is, pb_ostream_t *os, const pb_field_iter_t *field);
bool sp_pb_body_callback(pb_istream_t *is, pb_ostream_t *os, const pb_field_iter_t *field);

#endif
