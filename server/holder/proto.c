#include "holder/proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

static void
hb_grow(hbuf *b, size_t n)
{
	if (b->oom || b->len + n <= b->cap) {
		return;
	}
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + n) {
		cap *= 2;
	}
	uint8_t *p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = true;
		return;
	}
	b->p = p;
	b->cap = cap;
}

static void
hb_put(hbuf *b, const void *p, size_t n)
{
	hb_grow(b, n);
	if (!b->oom && n > 0) {
		memcpy(b->p + b->len, p, n);
		b->len += n;
	}
}

void
hb_u32(hbuf *b, uint32_t v)
{
	uint8_t x[4];
	for (int i = 0; i < 4; i++) {
		x[i] = (uint8_t)(v >> (8 * i));
	}
	hb_put(b, x, 4);
}

void
hb_u64(hbuf *b, uint64_t v)
{
	hb_u32(b, (uint32_t)v);
	hb_u32(b, (uint32_t)(v >> 32));
}

void
hb_init(hbuf *b, uint32_t type)
{
	memset(b, 0, sizeof(*b));
	hb_u32(b, type);
	hb_u32(b, HOLDER_VERSION);
}

void
hb_bytes(hbuf *b, const void *p, size_t n)
{
	hb_u32(b, (uint32_t)n);
	hb_put(b, p, n);
}

void
hb_str(hbuf *b, const char *s)
{
	hb_bytes(b, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

void
hb_strv(hbuf *b, const char *const *v)
{
	uint32_t n = 0;
	while (v != NULL && v[n] != NULL) {
		n++;
	}
	hb_u32(b, n);
	for (uint32_t i = 0; i < n; i++) {
		hb_str(b, v[i]);
	}
}

void
hb_exit(hbuf *b, const holder_exit *e)
{
	hb_u32(b, (uint32_t)e->wstatus);
	hb_u64(b, (uint64_t)e->at_ms);
	hb_u64(b, e->last_seq);
	hb_u64(b, e->lost);
	hb_u32(b, (uint32_t)e->lost_errno);
	hb_u32(b, (uint32_t)e->orphans);
}

void
hb_free(hbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static const uint8_t *
hr_take(hread *r, size_t n)
{
	if (r->bad || r->len - r->off < n) {
		r->bad = true;
		return (NULL);
	}
	const uint8_t *p = r->p + r->off;
	r->off += n;
	return (p);
}

uint32_t
hr_u32(hread *r)
{
	const uint8_t *p = hr_take(r, 4);
	uint32_t v = 0;
	for (int i = 3; p != NULL && i >= 0; i--) {
		v = (v << 8) | p[i];
	}
	return (v);
}

uint64_t
hr_u64(hread *r)
{
	uint64_t lo = hr_u32(r);
	return (lo | ((uint64_t)hr_u32(r) << 32));
}

uint32_t
hr_begin(hread *r, const void *p, size_t len, uint32_t *version)
{
	memset(r, 0, sizeof(*r));
	r->p = p;
	r->len = len;
	uint32_t type = hr_u32(r);
	*version = hr_u32(r);
	return (r->bad || *version != HOLDER_VERSION ? 0 : type);
}

const uint8_t *
hr_bytes(hread *r, size_t *n)
{
	*n = hr_u32(r);
	const uint8_t *p = hr_take(r, *n);
	if (p == NULL) {
		*n = 0;
	}
	return (p);
}

char *
hr_str(hread *r)
{
	size_t n;
	const uint8_t *p = hr_bytes(r, &n);
	char *s;

	if (r->bad || (s = malloc(n + 1)) == NULL) {
		r->bad = true;
		return (NULL);
	}
	memcpy(s, p, n);
	s[n] = '\0';
	if (memchr(s, '\0', n) != NULL) {
		r->bad = true; /* no NUL inside a string */
	}
	return (s);
}

char **
hr_strv(hread *r)
{
	uint32_t n = hr_u32(r);
	char **v;

	if (r->bad || n > (r->len - r->off) / 4 || (v = calloc((size_t)n + 1, sizeof(*v))) == NULL) {
		r->bad = true;
		return (NULL);
	}
	for (uint32_t i = 0; i < n; i++) {
		v[i] = hr_str(r);
	}
	return (v);
}

void
hr_exit(hread *r, holder_exit *e)
{
	e->wstatus = (int32_t)hr_u32(r);
	e->at_ms = (int64_t)hr_u64(r);
	e->last_seq = hr_u64(r);
	e->lost = hr_u64(r);
	e->lost_errno = (int32_t)hr_u32(r);
	e->orphans = (int32_t)hr_u32(r);
}

void
holder_spec_write(hbuf *b, const holder_spec *s)
{
	hb_str(b, s->id);
	hb_str(b, s->log_dir);
	hb_str(b, s->run_dir);
	hb_u64(b, s->max_log_bytes);
	hb_str(b, s->exe);
	hb_strv(b, (const char *const *)s->argv);
	hb_strv(b, (const char *const *)s->env);
	hb_str(b, s->cwd);
	hb_u32(b, (s->tty ? 1u : 0u) | (s->stdin_pipe ? 2u : 0u));
	hb_u32(b, s->cols);
	hb_u32(b, s->rows);
	hb_u32(b, (uint32_t)s->ns_pid);
	hb_u64(b, s->ns_pid_start);
	hb_u32(b, (uint32_t)s->uid);
	hb_u32(b, (uint32_t)s->gid);
	hb_strv(b, (const char *const *)s->cgroup_procs);
}

bool
holder_spec_read(const void *p, size_t len, holder_spec *s)
{
	hread r = { .p = p, .len = len };

	memset(s, 0, sizeof(*s));
	s->id = hr_str(&r);
	s->log_dir = hr_str(&r);
	s->run_dir = hr_str(&r);
	s->max_log_bytes = hr_u64(&r);
	s->exe = hr_str(&r);
	s->argv = hr_strv(&r);
	s->env = hr_strv(&r);
	s->cwd = hr_str(&r);
	uint32_t flags = hr_u32(&r);
	s->tty = (flags & 1) != 0;
	s->stdin_pipe = (flags & 2) != 0;
	s->cols = hr_u32(&r);
	s->rows = hr_u32(&r);
	s->ns_pid = (int32_t)hr_u32(&r);
	s->ns_pid_start = hr_u64(&r);
	s->uid = (int32_t)hr_u32(&r);
	s->gid = (int32_t)hr_u32(&r);
	s->cgroup_procs = hr_strv(&r);
	return (!r.bad && s->argv != NULL && s->argv[0] != NULL && s->env != NULL);
}

int
holder_send(int sock, const hbuf *b, int fd, int flags)
{
	struct iovec iov = { b->p, b->len };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (b->oom) {
		return (ENOMEM);
	}
	if (fd >= 0) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (sendmsg(sock, &mh, flags | MSG_NOSIGNAL) < 0) {
		if (errno != EINTR) {
			return (errno);
		}
	}
	return (0);
}

int
holder_send_output(
    int sock, uint64_t seq, uint8_t stream, int64_t ts_ms, const void *data, size_t len, int flags)
{
	uint8_t hdr[8 + 8 + 4 + 8 + 4];
	hbuf b = { .p = hdr, .cap = sizeof(hdr) };
	struct iovec iov[2];

	/* Fields into a fixed header, then the data itself, without a copy. */
	hb_u32(&b, HM_OUTPUT);
	hb_u32(&b, HOLDER_VERSION);
	hb_u64(&b, seq);
	hb_u32(&b, stream);
	hb_u64(&b, (uint64_t)ts_ms);
	hb_u32(&b, (uint32_t)len);
	iov[0] = (struct iovec){ hdr, b.len };
	iov[1] = (struct iovec){ (void *)data, len };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	while (sendmsg(sock, &mh, flags | MSG_NOSIGNAL) < 0) {
		if (errno != EINTR) {
			return (errno);
		}
	}
	return (0);
}

ssize_t
holder_recv(int sock, void *buf, size_t cap, int *fd, int flags)
{
	struct iovec iov = { buf, cap };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)
	};
	ssize_t n;

	*fd = -1;
	while ((n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {}
	if (n < 0) {
		return (-1);
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len >= CMSG_LEN(sizeof(int))) {
			memcpy(fd, CMSG_DATA(c), sizeof(int));
		}
	}
	if (mh.msg_flags & MSG_TRUNC) {
		errno = EMSGSIZE;
		return (-1);
	}
	return (n);
}
