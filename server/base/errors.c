#include "base/errors.h"

#include <errno.h>
#include <string.h>

int
errors_status(int e)
{
	switch (e) {
	case 0:
		return (SP_OK);
	case ENOENT:
	case ESRCH:
		return (SP_NOT_FOUND);
	case EACCES:
	case EPERM:
	case EROFS:
		return (SP_PERMISSION_DENIED);
	case ENOSPC:
	case EDQUOT:
	case ENOMEM:
	case EMFILE:
	case ENFILE:
	case EAGAIN:
	case EFBIG:
		return (SP_RESOURCE_EXHAUSTED);
	case EINVAL:
	case ENAMETOOLONG:
	case E2BIG:
	case ENOTDIR:
	case EISDIR:
	case ELOOP:
		return (SP_INVALID_ARGUMENT);
	case ETIMEDOUT:
		return (SP_DEADLINE_EXCEEDED);
	case EEXIST:
		return (SP_ALREADY_EXISTS);
	case EBUSY:
	case EPIPE:
		return (SP_FAILED_PRECONDITION);
	default:
		return (SP_INTERNAL);
	}
}

int
errors_exec_status(int e)
{
	int code;

	if (e == ENOENT || e == ENOTDIR) {
		return (SP_NOT_FOUND);
	}
	code = errors_status(e);
	return (code == SP_INTERNAL || code == SP_INVALID_ARGUMENT || code == SP_FAILED_PRECONDITION ||
	            code == SP_ALREADY_EXISTS
	        ? SP_FAILED_PRECONDITION
	        : code);
}

const char *
errors_text(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
		return ("disk full");
	case ENOMEM:
		return ("out of memory");
	default:
		return (strerror(e));
	}
}
