/*
 * Arguments to requests: a verb's positional arguments and --flags set the
 * request's fields by their proto names, through the generated field
 * tables and nanopb's field iterator, so a verb is a table row (verbs.c)
 * and every field type is parsed one way.
 */
#include <errno.h>
#include <pb_common.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

bool
cli_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9') {
		return (false);
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || v > max || errno != 0) {
		return (false);
	}
	*out = v;
	return (true);
}

bool
cli_kv(const char *v)
{
	const char *eq = strchr(v, '=');
	return (eq != NULL && eq != v);
}

/* The value of enum info named s (its short name, "running", or its full name). */
static bool
cli_enum_value(const sp_enum_info *info, const char *s, int32_t *out)
{
	for (size_t k = 0; k < info->count; k++) {
		if (strcmp(s, info->values[k].short_name) == 0 || strcmp(s, info->values[k].name) == 0) {
			*out = info->values[k].value;
			return (true);
		}
	}
	return (false);
}

/* The limit a CLI_SET_TOO_LONG value went over. */
static size_t cli_last_limit;

int
cli_set_field(const sp_msg_info *info, void *msg, const char *name, const char *value, sp_arena *arena)
{
	const sp_field_info *f = NULL;
	pb_field_iter_t it;
	unsigned long long u;
	int32_t e;

	for (size_t i = 0; i < info->count && f == NULL; i++) {
		if (strcmp(info->field[i].name, name) == 0) {
			f = &info->field[i];
		}
	}
	if (f == NULL || !pb_field_iter_begin(&it, info->fields, msg) || !pb_field_iter_find(&it, f->tag)) {
		return (CLI_SET_UNKNOWN);
	}
	if (PB_ATYPE(it.type) == PB_ATYPE_CALLBACK) {
		if (PB_LTYPE(it.type) == PB_LTYPE_STRING && PB_HTYPE(it.type) == PB_HTYPE_REPEATED) {
			return (sp_strv_push(it.pData, value, arena) ? CLI_SET_OK : CLI_SET_BAD);
		}
		if (PB_LTYPE(it.type) == PB_LTYPE_STRING) {
			*(sp_cstr_t *)it.pData = value;
			return (CLI_SET_OK);
		}
		if (PB_LTYPE(it.type) == PB_LTYPE_BYTES) {
			*(sp_bytes_t *)it.pData = sp_bytes_of_str(value);
			return (CLI_SET_OK);
		}
		return (CLI_SET_BAD);
	}
	if (f->enm != NULL) {
		/* nanopb stores an enum as a varint of either sign. */
		if (!cli_enum_value(f->enm, value, &e)) {
			return (CLI_SET_BAD);
		}
		*(int32_t *)it.pData = e;
		goto set;
	}
	switch (PB_LTYPE(it.type)) {
	case PB_LTYPE_BOOL:
		*(bool *)it.pData = strcmp(value, "false") != 0 && strcmp(value, "0") != 0;
		break;
	case PB_LTYPE_UVARINT:
		if (!cli_uint(value, it.data_size == sizeof(uint32_t) ? UINT32_MAX : UINT64_MAX, &u)) {
			return (CLI_SET_BAD);
		}
		if (it.data_size == sizeof(uint32_t)) {
			*(uint32_t *)it.pData = (uint32_t)u;
		} else {
			*(uint64_t *)it.pData = u;
		}
		break;
	case PB_LTYPE_VARINT:
		if (cli_uint(value, INT32_MAX, &u)) {
			*(int32_t *)it.pData = (int32_t)u;
		} else {
			return (CLI_SET_BAD);
		}
		break;
	case PB_LTYPE_STRING:
		if (strlen(value) >= it.data_size) {
			cli_last_limit = it.data_size - 1;
			return (CLI_SET_TOO_LONG);
		}
		strcpy(it.pData, value);
		break;
	default:
		return (CLI_SET_BAD);
	}
set:
	/* proto3 "optional": a has_ flag beside the value (plain singular fields have none). */
	if (PB_HTYPE(it.type) == PB_HTYPE_OPTIONAL && it.pSize != NULL && it.pSize != it.pData) {
		*(bool *)it.pSize = true;
	}
	return (CLI_SET_OK);
}

/* The flag spec for argument a, or NULL. */
static const cli_flag *
cli_find_flag(const cli_flag *flags, const char *a)
{
	for (const cli_flag *f = flags; f != NULL && f->name != NULL; f++) {
		if (strcmp(a, f->name) == 0 || (f->alias != NULL && strcmp(a, f->alias) == 0)) {
			return (f);
		}
	}
	return (NULL);
}

int
cli_parse(const cli_verb *v, int argc, char **argv, const sp_msg_info *info, void *msg, sp_arena *arena,
    cli_parsed *out)
{
	size_t npos = 0;
	int i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0' || (a[1] >= '0' && a[1] <= '9')) {
			/* A positional argument, or the command when the verb takes one. */
			if (v->positional == NULL || v->positional[npos] == NULL) {
				if (v->takes_command) {
					break;
				}
				return (cli_usage("%s: unexpected argument \"%s\" (usage: sandproc %s)",
				    v->name, a, v->usage));
			}
			const char *field = v->positional[npos++];
			if (field[0] == '@') {
				out->pos[npos - 1] = a; /* kept for the verb itself */
				continue;
			}
			int rv = cli_set_field(info, msg, field, a, arena);
			if (rv != CLI_SET_OK) {
				return (cli_field_error(v, field, a, rv));
			}
			continue;
		}
		const cli_flag *f = cli_find_flag(v->flags, a);
		if (f == NULL) {
			return (cli_usage(
			    "%s: unknown option \"%s\" (usage: sandproc %s)", v->name, a, v->usage));
		}
		const char *val = "true";
		if (f->kind != CLI_FLAG_BOOL) {
			if (i + 1 >= argc) {
				return (cli_usage(
				    "%s: %s needs a value (usage: sandproc %s)", v->name, a, v->usage));
			}
			val = argv[++i];
		}
		if (f->kind == CLI_FLAG_KV && !cli_kv(val)) {
			return (cli_usage("%s: %s takes KEY=value, not \"%s\"", v->name, a, val));
		}
		if (f->field == NULL) {
			out->flags[f - v->flags] = val; /* the verb handles it */
			continue;
		}
		int rv = cli_set_field(info, msg, f->field, val, arena);
		if (rv != CLI_SET_OK) {
			return (cli_field_error(v, a, val, rv));
		}
		if (f->waits) {
			unsigned long long ms = 0;
			cli_uint(val, UINT32_MAX, &ms);
			out->wait_ms = (uint32_t)ms;
		}
	}
	if (v->positional != NULL && v->positional[npos] != NULL && !v->optional_positional) {
		return (cli_usage("%s: missing %s (usage: sandproc %s)", v->name,
		    v->positional[npos] + (v->positional[npos][0] == '@'), v->usage));
	}
	out->rest = argv + i;
	out->nrest = argc - i;
	if (v->takes_command && out->nrest == 0 && cli_flag_value(v, out, "--shell") == NULL) {
		return (cli_usage("%s: no command given (usage: sandproc %s)", v->name, v->usage));
	}
	return (0);
}

int
cli_field_error(const cli_verb *v, const char *what, const char *value, int rv)
{
	if (rv == CLI_SET_TOO_LONG) {
		return (cli_usage(
		    "%s: %s is %zu bytes; the limit is %zu", v->name, what, strlen(value), cli_last_limit));
	}
	return (
	    cli_usage("%s: bad value \"%s\" for %s (usage: sandproc %s)", v->name, value, what, v->usage));
}

const char *
cli_flag_value(const cli_verb *v, const cli_parsed *a, const char *name)
{
	for (size_t i = 0; v->flags != NULL && v->flags[i].name != NULL; i++) {
		if (strcmp(v->flags[i].name, name) == 0) {
			return (a->flags[i]);
		}
	}
	return (NULL);
}
