#include "sp_pb.h"

#include <pb_decode.h>
#include <pb_encode.h>
#include <stdlib.h>
#include <string.h>

/*
 * The arena is a list of chunks. Decoding callback fields copies them here so
 * the message struct stays small and fixed-size, and one reset frees a whole
 * call's worth of strings.
 */
#define SP_ARENA_FIRST 1024
#define SP_ARENA_CHUNK (16 * 1024)
#define SP_ARENA_ALIGN 16

struct sp_arena_chunk {
	struct sp_arena_chunk *next;
	size_t size;
	size_t used;
	_Alignas(SP_ARENA_ALIGN) unsigned char data[];
};

struct sp_arena {
	struct sp_arena_chunk *head;
	size_t total;
};

/* The arena callbacks decode into; set only for the length of sp_pb_decode. */
static _Thread_local sp_arena *sp_pb_current_arena;

sp_arena *
sp_arena_new(void)
{
	return (calloc(1, sizeof(sp_arena)));
}

void
sp_arena_reset(sp_arena *a)
{
	struct sp_arena_chunk *c, *next;

	if (a == NULL || a->head == NULL) {
		return;
	}
	/* Keep the last chunk in the list (the oldest) if it is a standard one. */
	for (c = a->head; c->next != NULL; c = next) {
		next = c->next;
		free(c);
	}
	if (c->size > SP_ARENA_CHUNK) {
		free(c);
		a->head = NULL;
		a->total = 0;
		return;
	}
	c->used = 0;
	a->head = c;
	a->total = c->size;
}

void
sp_arena_free(sp_arena *a)
{
	struct sp_arena_chunk *c, *next;

	if (a == NULL) {
		return;
	}
	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

void *
sp_arena_alloc(sp_arena *a, size_t size)
{
	struct sp_arena_chunk *c = a->head;
	size_t need = (size + SP_ARENA_ALIGN - 1) & ~(size_t)(SP_ARENA_ALIGN - 1);

	if (need < size) {
		return (NULL);
	}
	if (c == NULL || c->size - c->used < need) {
		/* Chunks start small and double: an arena holding a few strings stays small. */
		size_t step = a->total < SP_ARENA_CHUNK
		    ? (a->total < SP_ARENA_FIRST ? SP_ARENA_FIRST : a->total)
		    : SP_ARENA_CHUNK;
		size_t csize = need > step ? need : step;
		c = malloc(sizeof(*c) + csize);
		if (c == NULL) {
			return (NULL);
		}
		c->size = csize;
		c->used = 0;
		/* A big block goes behind the current chunk so its space stays usable. */
		if (need > step && a->head != NULL) {
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
		a->total += csize;
	}
	void *p = c->data + c->used;
	c->used += need;
	return (p);
}

char *
sp_arena_strdup(sp_arena *a, const char *s)
{
	if (s == NULL) {
		return (NULL);
	}
	size_t n = strlen(s) + 1;
	char *p = sp_arena_alloc(a, n);
	if (p != NULL) {
		memcpy(p, s, n);
	}
	return (p);
}

size_t
sp_arena_used(const sp_arena *a)
{
	return (a->total);
}

bool
sp_strv_push(sp_strv_t *sv, const char *s, sp_arena *arena)
{
	if (sv->n + 1 >= sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 8;
		const char **v = sp_arena_alloc(arena, cap * sizeof(*v));
		if (v == NULL) {
			return (false);
		}
		if (sv->n > 0) {
			memcpy(v, sv->v, sv->n * sizeof(*v));
		}
		sv->v = v;
		sv->cap = cap;
	}
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
	return (true);
}

sp_strv_t
sp_strv_of(const char *const *v)
{
	sp_strv_t sv = { 0, (const char **)v, 0 };
	while (v != NULL && v[sv.n] != NULL) {
		sv.n++;
	}
	return (sv);
}

sp_bytes_t
sp_bytes_of_str(const char *s)
{
	sp_bytes_t b = { (const uint8_t *)s, s != NULL ? strlen(s) : 0 };
	return (b);
}

bool
sp_pb_decode(const pb_msgdesc_t *fields, void *dst, size_t dst_size, const void *buf, size_t len,
    sp_arena *arena, const char **err)
{
	pb_istream_t is = pb_istream_from_buffer(buf, len);
	sp_arena *saved = sp_pb_current_arena;
	bool ok;

	memset(dst, 0, dst_size);
	sp_pb_current_arena = arena;
	ok = pb_decode(&is, fields, dst);
	sp_pb_current_arena = saved;
	if (!ok && err != NULL) {
		*err = PB_GET_ERROR(&is);
	}
	return (ok);
}

bool
sp_pb_encoded_size(const pb_msgdesc_t *fields, const void *src, size_t *size)
{
	return (pb_get_encoded_size(size, fields, src));
}

bool
sp_pb_encode(
    const pb_msgdesc_t *fields, const void *src, void *buf, size_t cap, size_t *len, const char **err)
{
	pb_ostream_t os = pb_ostream_from_buffer(buf, cap);

	if (!pb_encode(&os, fields, src)) {
		if (err != NULL) {
			*err = PB_GET_ERROR(&os);
		}
		return (false);
	}
	*len = os.bytes_written;
	return (true);
}

static bool
sp_pb_write_string(pb_ostream_t *os, const pb_field_iter_t *field, const void *data, size_t len)
{
	return (pb_encode_tag_for_field(os, field) && pb_encode_string(os, (const pb_byte_t *)data, len));
}

/* Reads the rest of the field's substream into the arena, NUL-terminated. */
static char *
sp_pb_read_copy(pb_istream_t *is, size_t *len)
{
	sp_arena *arena = sp_pb_current_arena;
	size_t n = is->bytes_left;
	char *p;

	if (arena == NULL) {
		PB_SET_ERROR(is, "no arena for callback field");
		return (NULL);
	}
	if ((p = sp_arena_alloc(arena, n + 1)) == NULL) {
		PB_SET_ERROR(is, "out of memory");
		return (NULL);
	}
	if (!pb_read(is, (pb_byte_t *)p, n)) {
		return (NULL);
	}
	p[n] = '\0';
	*len = n;
	return (p);
}

static bool
sp_pb_decode_field(pb_istream_t *is, const pb_field_iter_t *field)
{
	pb_type_t ltype = PB_LTYPE(field->type);
	bool repeated = PB_HTYPE(field->type) == PB_HTYPE_REPEATED;
	size_t len;
	char *p = sp_pb_read_copy(is, &len);

	if (p == NULL) {
		return (false);
	}
	if (ltype == PB_LTYPE_STRING && memchr(p, '\0', len) != NULL) {
		PB_RETURN_ERROR(is, "string contains a NUL byte");
	}
	if (ltype == PB_LTYPE_STRING && !repeated) {
		*(sp_cstr_t *)field->pData = p;
		return (true);
	}
	if (ltype == PB_LTYPE_STRING) {
		if (!sp_strv_push(field->pData, p, sp_pb_current_arena)) {
			PB_RETURN_ERROR(is, "out of memory");
		}
		return (true);
	}
	if (ltype == PB_LTYPE_BYTES && !repeated) {
		sp_bytes_t *b = field->pData;
		b->data = (const uint8_t *)p;
		b->len = len;
		return (true);
	}
	PB_RETURN_ERROR(is, "unsupported callback field");
}

static bool
sp_pb_encode_field(pb_ostream_t *os, const pb_field_iter_t *field)
{
	pb_type_t ltype = PB_LTYPE(field->type);
	bool repeated = PB_HTYPE(field->type) == PB_HTYPE_REPEATED;

	if (ltype == PB_LTYPE_STRING && !repeated) {
		const char *s = *(const sp_cstr_t *)field->pData;
		return (s == NULL || *s == '\0' || sp_pb_write_string(os, field, s, strlen(s)));
	}
	if (ltype == PB_LTYPE_STRING) {
		const sp_strv_t *sv = field->pData;
		for (size_t i = 0; i < sv->n; i++) {
			const char *s = sv->v[i] != NULL ? sv->v[i] : "";
			if (!sp_pb_write_string(os, field, s, strlen(s))) {
				return (false);
			}
		}
		return (true);
	}
	if (ltype == PB_LTYPE_BYTES && !repeated) {
		const sp_bytes_t *b = field->pData;
		return (b->len == 0 || sp_pb_write_string(os, field, b->data, b->len));
	}
	PB_RETURN_ERROR(os, "unsupported callback field");
}

bool
sp_pb_callback(pb_istream_t *is, pb_ostream_t *os, const pb_field_iter_t *field)
{
	if (os != NULL) {
		return (sp_pb_encode_field(os, field));
	}
	return (sp_pb_decode_field(is, field));
}

bool
sp_pb_body_callback(pb_istream_t *is, pb_ostream_t *os, const pb_field_iter_t *field)
{
	sp_body_t *body = field->pData;

	/* An envelope's strings (method, token) are ordinary callback strings. */
	if (PB_LTYPE(field->type) == PB_LTYPE_STRING) {
		return (sp_pb_callback(is, os, field));
	}

	if (os != NULL) {
		return (body->len == 0 || sp_pb_write_string(os, field, body->data, body->len));
	}
	/*
	 * Envelopes are only decoded from memory (sp_pb_decode), whose stream
	 * state is the read position: keep a slice instead of copying.
	 */
	body->data = is->state;
	body->len = is->bytes_left;
	return (pb_read(is, NULL, is->bytes_left));
}
