#include "sp_status.h"

#include <string.h>

static const struct {
	int code;
	const char *name;
	const char *message;
} sp_status_entries[] = {
#define SP_STATUS_ENTRY(name, num, msg) { num, #name, msg },
	SP_STATUS_TABLE(SP_STATUS_ENTRY)
#undef SP_STATUS_ENTRY
};

#define SP_STATUS_COUNT (sizeof(sp_status_entries) / sizeof(sp_status_entries[0]))

/* The table's entry for code; UNKNOWN's for a number outside it. */
static size_t
sp_status_index(int code)
{
	for (size_t i = 0; i < SP_STATUS_COUNT; i++) {
		if (sp_status_entries[i].code == code) {
			return (i);
		}
	}
	return (SP_UNKNOWN);
}

const char *
sp_status_name(int code)
{
	return (sp_status_entries[sp_status_index(code)].name);
}

const char *
sp_status_message(int code)
{
	return (sp_status_entries[sp_status_index(code)].message);
}

int
sp_status_from_name(const char *name)
{
	for (size_t i = 0; i < SP_STATUS_COUNT; i++) {
		if (strcmp(sp_status_entries[i].name, name) == 0) {
			return (sp_status_entries[i].code);
		}
	}
	return (-1);
}
