#include "sp_json.h"

#include <inttypes.h>
#include <pb_common.h>
#include <string.h>

int
sp_utf8_valid(const void *s, size_t len)
{
	const unsigned char *p = s, *end = p + len;

	while (p < end) {
		unsigned c = *p;
		size_t n;
		uint32_t cp;
		if (c < 0x80) {
			p++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1, cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, cp = c & 0x07;
		} else {
			return (0);
		}
		if ((size_t)(end - p) <= n) {
			return (0);
		}
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80) {
				return (0);
			}
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		/* Overlong forms, surrogates and values past U+10FFFF. */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
			return (0);
		}
		p += n + 1;
	}
	return (1);
}

void
sp_json_string(FILE *f, const void *s, size_t len)
{
	const unsigned char *p = s;

	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		switch (c) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (c < 0x20 || c == 0x7f) {
				fprintf(f, "\\u%04x", c);
			} else if (c >= 0x80) {
				/* Copy a whole valid sequence, or replace one bad byte. */
				size_t n = (c & 0xe0) == 0xc0 ? 2
				    : (c & 0xf0) == 0xe0      ? 3
				    : (c & 0xf8) == 0xf0      ? 4
				                              : 0;
				if (n != 0 && i + n <= len && sp_utf8_valid(p + i, n)) {
					fwrite(p + i, 1, n, f);
					i += n - 1;
				} else {
					fputs("\\ufffd", f);
				}
			} else {
				fputc(c, f);
			}
		}
	}
	fputc('"', f);
}

static void
sp_json_base64(FILE *f, const unsigned char *p, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	fputc('"', f);
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < len) {
			v |= (uint32_t)p[i + 1] << 8;
		}
		if (i + 2 < len) {
			v |= p[i + 2];
		}
		fputc(tab[(v >> 18) & 63], f);
		fputc(tab[(v >> 12) & 63], f);
		fputc(i + 1 < len ? tab[(v >> 6) & 63] : '=', f);
		fputc(i + 2 < len ? tab[v & 63] : '=', f);
	}
	fputc('"', f);
}

static void
sp_json_scalar(FILE *f, const pb_field_iter_t *it, const sp_field_info *fi, const void *p)
{
	pb_type_t lt = PB_LTYPE(it->type);
	int64_t sv = 0;
	uint64_t uv = 0;

	switch (lt) {
	case PB_LTYPE_BOOL:
		fputs(*(const bool *)p ? "true" : "false", f);
		return;
	case PB_LTYPE_VARINT:
	case PB_LTYPE_SVARINT:
	case PB_LTYPE_FIXED32:
	case PB_LTYPE_FIXED64:
		if (lt == PB_LTYPE_FIXED32 || lt == PB_LTYPE_FIXED64) {
			/* fixed32/64 and sfixed share the ltype; the proto says which. */
			uv = it->data_size == 8 ? *(const uint64_t *)p : *(const uint32_t *)p;
			fprintf(f, "%" PRIu64, uv);
			return;
		}
		if (it->data_size == 8) {
			sv = *(const int64_t *)p;
		} else if (it->data_size == 4) {
			sv = *(const int32_t *)p;
		} else if (it->data_size == 2) {
			sv = *(const int16_t *)p;
		} else {
			sv = *(const int8_t *)p;
		}
		if (fi != NULL && fi->enm != NULL) {
			const char *name = sp_enum_short_name(fi->enm, (int32_t)sv);
			if (name != NULL) {
				sp_json_string(f, name, strlen(name));
				return;
			}
		}
		fprintf(f, "%" PRId64, sv);
		return;
	case PB_LTYPE_UVARINT:
		if (it->data_size == 8) {
			uv = *(const uint64_t *)p;
		} else if (it->data_size == 4) {
			uv = *(const uint32_t *)p;
		} else if (it->data_size == 2) {
			uv = *(const uint16_t *)p;
		} else {
			uv = *(const uint8_t *)p;
		}
		/* Enums without negative values are unsigned (UENUM) in nanopb. */
		if (fi != NULL && fi->enm != NULL && uv <= INT32_MAX) {
			const char *name = sp_enum_short_name(fi->enm, (int32_t)uv);
			if (name != NULL) {
				sp_json_string(f, name, strlen(name));
				return;
			}
		}
		fprintf(f, "%" PRIu64, uv);
		return;
	case PB_LTYPE_STRING:
		sp_json_string(f, p, strnlen(p, it->data_size));
		return;
	case PB_LTYPE_SUBMESSAGE:
	case PB_LTYPE_SUBMSG_W_CB:
		if (fi != NULL && fi->msg != NULL) {
			sp_json_print(f, fi->msg, p);
		} else {
			fputs("{}", f);
		}
		return;
	default:
		fputs("null", f);
	}
}

static void
sp_json_field(FILE *f, const pb_field_iter_t *it, const sp_field_info *fi)
{
	pb_type_t lt = PB_LTYPE(it->type);
	bool repeated = PB_HTYPE(it->type) == PB_HTYPE_REPEATED;

	if (PB_ATYPE(it->type) == PB_ATYPE_CALLBACK) {
		if (lt == PB_LTYPE_STRING && repeated) {
			const sp_strv_t *sv = it->pData;
			fputc('[', f);
			for (size_t i = 0; i < sv->n; i++) {
				fputs(i ? "," : "", f);
				sp_json_string(f, sv->v[i], strlen(sv->v[i]));
			}
			fputc(']', f);
		} else if (lt == PB_LTYPE_STRING) {
			const char *s = *(const sp_cstr_t *)it->pData;
			sp_json_string(f, s ? s : "", s ? strlen(s) : 0);
		} else if (lt == PB_LTYPE_BYTES) {
			const sp_bytes_t *b = it->pData;
			if (sp_utf8_valid(b->data, b->len)) {
				sp_json_string(f, b->data, b->len);
			} else {
				sp_json_base64(f, b->data, b->len);
			}
		} else {
			fputs("null", f);
		}
		return;
	}
	if (repeated) {
		pb_size_t count = *(const pb_size_t *)it->pSize;
		fputc('[', f);
		for (pb_size_t i = 0; i < count; i++) {
			fputs(i ? "," : "", f);
			sp_json_scalar(f, it, fi, (const char *)it->pData + (size_t)i * it->data_size);
		}
		fputc(']', f);
		return;
	}
	if (PB_HTYPE(it->type) == PB_HTYPE_OPTIONAL && it->pSize != NULL && !*(const bool *)it->pSize) {
		fputs("null", f);
		return;
	}
	if (lt == PB_LTYPE_BYTES) {
		const PB_BYTES_ARRAY_T(1) *b = it->pData;
		sp_json_base64(f, b->bytes, b->size);
		return;
	}
	sp_json_scalar(f, it, fi, it->pData);
}

void
sp_json_print(FILE *f, const sp_msg_info *info, const void *msg)
{
	pb_field_iter_t it;
	bool first = true;

	fputc('{', f);
	if (pb_field_iter_begin_const(&it, info->fields, msg)) {
		do {
			const sp_field_info *fi = sp_msg_info_field(info, it.tag);
			const char *name = fi != NULL ? fi->name : "?";
			bool b64 = false;
			if (PB_ATYPE(it.type) == PB_ATYPE_CALLBACK && PB_LTYPE(it.type) == PB_LTYPE_BYTES) {
				const sp_bytes_t *b = it.pData;
				b64 = !sp_utf8_valid(b->data, b->len);
			}
			fputs(first ? "" : ",", f);
			first = false;
			/* Proto field names are identifiers: no escaping needed. */
			fprintf(f, "\"%s%s\"", name, b64 ? "_base64" : "");
			fputc(':', f);
			sp_json_field(f, &it, fi);
		} while (pb_field_iter_next(&it));
	}
	fputc('}', f);
}
