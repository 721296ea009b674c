"""sandproc: the Python client of sandprocd.

    import sandproc
    from sandproc.v1 import processes_pb2
    from sandproc.v1.processes_sprpc import ProcessesStub

    ch = sandproc.Channel("tcp://127.0.0.1:7300")    # token: SANDPROC_TOKEN or admin.key
    procs = ProcessesStub(ch)
    p = procs.Start(argv=["sh", "-c", "echo hi"])    # or Start(processes_pb2.StartRequest(...))
    for entry in sandproc.follow(ch, p.id):
        print(entry.data.decode(), end="")

Stubs (`sandproc.v1.<file>_sprpc`) are generated from the .proto files by
protoc-gen-sprpc, messages (`sandproc.v1.<file>_pb2`) by protoc. Calls go
over nng (Debian's libnng, through ctypes): a REQ socket per Channel for
calls, SUB sockets for follow.
"""

import os
import random
import threading
import time

from . import _nng
from .v1 import envelope_pb2, events_pb2, processes_pb2

__all__ = ["Channel", "RpcError", "follow", "CODES", "DEFAULT_URL", "DEFAULT_EVENTS_URL"]

DEFAULT_URL = "tcp://127.0.0.1:7300"
DEFAULT_EVENTS_URL = "tcp://127.0.0.1:7301"
DEFAULT_DATA = "./.sandproc"

# gRPC's status names by number, as the server sends them.
CODES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
         "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
         "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
         "UNAUTHENTICATED")

# Replies carry Run output and Logs pages (as the C client).
_RECV_MAX = 64 * 1024 * 1024
_FEED_RECV_MAX = 4 * 1024 * 1024
_PAGE_BYTES = 4 * 1024 * 1024
_LONG_POLL_MS = 5000
# How long a call waits for the server to come back after its connection dropped.
_RECONNECT_MS = 30000


class RpcError(Exception):
    """A call that did not return OK: .code is the gRPC status name
    ("NOT_FOUND"), .status its number, .message the server's words."""

    def __init__(self, code, message):
        self.status = code if isinstance(code, int) else CODES.index(code)
        self.code = CODES[self.status] if 0 <= self.status < len(CODES) else "UNKNOWN"
        self.message = message
        super().__init__("%s: %s" % (self.code, message))


def _env(name, default):
    v = os.environ.get(name)
    return v if v else default


def default_token():
    """$SANDPROC_TOKEN, else the first line of admin.key in $SANDPROC_DATA
    (default ./.sandproc) when this user can read it, else None."""
    tok = os.environ.get("SANDPROC_TOKEN")
    if tok:
        return tok
    try:
        with open(os.path.join(_env("SANDPROC_DATA", DEFAULT_DATA), "admin.key")) as f:
            return f.readline().strip() or None
    except OSError:
        return None


def _tls_from(url, ca, cert, key):
    if not _nng.is_tls_url(url):
        return None
    return _nng.TlsConfig(ca or _env("SANDPROC_TLS_CA", None), cert or _env("SANDPROC_TLS_CERT", None),
                          key or _env("SANDPROC_TLS_KEY", None))


def _transport_error(method, e, timeout_ms):
    if e.rv == _nng.ETIMEDOUT:
        return RpcError("DEADLINE_EXCEEDED", "%s: no reply within %d ms" % (method, timeout_ms))
    if e.rv in (_nng.ECLOSED, _nng.ECANCELED):
        return RpcError("CANCELLED", "%s: %s" % (method, e))
    return RpcError("UNAVAILABLE", "%s: %s" % (method, e))


class Channel:
    """A connection to sandprocd for generated stubs: one nng REQ socket,
    one call at a time (calls from several threads take turns).

    url: SANDPROC_URL or tcp://127.0.0.1:7300 when None. token: the key to
    call with; None takes SANDPROC_TOKEN, then SANDPROC_DATA's admin.key.
    tls_ca/tls_cert/tls_key (or SANDPROC_TLS_*) for tls+tcp:// and wss://.
    events_url: where follow() subscribes (SANDPROC_EVENTS_URL or
    tcp://127.0.0.1:7301 when None; "none": Logs long polls instead).
    timeout: default seconds a call may take (None: as long as the server
    takes; REQ resends a call by itself when the connection comes back).
    """

    def __init__(self, url=None, token=None, tls_ca=None, tls_cert=None, tls_key=None,
                 events_url=None, timeout=None):
        self.url = url or _env("SANDPROC_URL", DEFAULT_URL)
        self.events_url = events_url
        self.timeout = timeout
        self._token = token if token else default_token()
        self._tls_args = (tls_ca, tls_cert, tls_key)
        self._lock = threading.Lock()
        # A random start, so ids of different clients do not meet; the
        # server answers a resent id from its replay cache.
        self._next_id = random.getrandbits(63)
        self._tls = _tls_from(self.url, *self._tls_args)
        self._sock = _nng.Socket("req")
        try:
            self._sock.set_size(b"recv-size-max", _RECV_MAX)
            # No timed resends (a long Wait must not run twice); REQ still
            # resends at once when the connection drops and comes back.
            self._sock.set_ms(b"req:resend-time", _nng.DURATION_INFINITE)
            for attempt in range(100):
                try:
                    self._sock.dial(self.url, self._tls)
                    break
                except _nng.NngError as e:
                    # A listener whose backlog is full answers EAGAIN: try again for a while.
                    if e.rv != _nng.EAGAIN or attempt == 99:
                        raise
                    threading.Event().wait((10 + attempt) / 1000)
        except _nng.NngError as e:
            self._sock.close()
            raise RpcError("UNAVAILABLE", "cannot reach %s: %s" % (self.url, e)) from None

    def close(self):
        with self._lock:
            self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _exchange(self, method, frame, ms):
        """Sends frame and returns the reply's bytes. nng 1.5.2's REQ, with
        timed resends off, fails a call whose connection drops (ECONNRESET)
        rather than resend it; the call is sent again here, with the same
        request id, once the dialer has a connection again (the server
        answers a repeated call from its replay cache), for up to
        _RECONNECT_MS of no connection, and within the call's timeout."""
        deadline = None if ms < 0 else time.monotonic() + ms / 1000
        while True:
            left = -1 if deadline is None else max(1, int((deadline - time.monotonic()) * 1000))
            # Without a connection the send waits for one: within the call's time, and _RECONNECT_MS at most.
            self._sock.set_send_timeout(_RECONNECT_MS if left < 0 else min(left, _RECONNECT_MS))
            self._sock.set_recv_timeout(left)
            try:
                self._sock.send(frame)
            except _nng.NngError as e:
                if e.rv == _nng.ETIMEDOUT and (deadline is None or time.monotonic() < deadline):
                    raise RpcError("UNAVAILABLE", "%s: %s unreachable for %d ms"
                                   % (method, self.url, _RECONNECT_MS)) from None
                raise _transport_error(method, e, ms) from None
            try:
                return self._sock.recv()
            except _nng.NngError as e:
                if e.rv == _nng.ECONNRESET and (deadline is None or time.monotonic() < deadline):
                    continue
                raise _transport_error(method, e, ms) from None

    def call(self, method, request_type, reply_type, request=None, fields=None, timeout=None):
        """One unary call: what the generated stubs call. request is a
        request_type message, or None to build one from fields."""
        if request is None:
            request = request_type(**(fields or {}))
        elif fields:
            raise TypeError("%s: pass the request message or its fields, not both" % method)
        elif not isinstance(request, request_type):
            raise TypeError("%s takes %s, not %s" % (method, request_type.DESCRIPTOR.full_name,
                                                      type(request).__name__))
        timeout = self.timeout if timeout is None else timeout
        ms = _nng.DURATION_INFINITE if timeout is None else max(1, int(timeout * 1000))
        with self._lock:
            self._next_id = (self._next_id + 1) & ((1 << 64) - 1)
            env = envelope_pb2.Request(method=method, request_id=self._next_id,
                                       token=self._token or "", body=request.SerializeToString())
            data = self._exchange(method, env.SerializeToString(), ms)
        reply = envelope_pb2.Reply()
        try:
            reply.ParseFromString(data)
        except Exception as e:  # protobuf's DecodeError
            raise RpcError("INTERNAL", "%s: malformed reply: %s" % (method, e)) from None
        if reply.code != 0:
            raise RpcError(reply.code, reply.message or "%s: no message" % method)
        out = reply_type()
        try:
            out.ParseFromString(reply.body)
        except Exception as e:
            raise RpcError("INTERNAL", "%s: malformed reply body: %s" % (method, e)) from None
        return out


# --- follow ---------------------------------------------------------------

# SUB sockets are pooled per URL and never closed: nng 1.5.2's nng_close on
# a SUB socket still receiving can deadlock (nanomsg/nng#1543), as the C
# library says. A follow takes one, subscribes, and gives it back unsubscribed.
_pool_lock = threading.Lock()
_pool = {}


def _topics(id, tty):
    # The NUL after the id is part of the topic, so no other id matches.
    return [("term/" if tty else "log/").encode() + id.encode() + b"\0", b"proc/" + id.encode() + b"\0"]


def _take_sub(url, channel, id, tty):
    with _pool_lock:
        free = _pool.get(url)
        sock = free.pop() if free else None
    if sock is None:
        sock = _nng.Socket("sub")
        try:
            sock.set_size(b"recv-size-max", _FEED_RECV_MAX)
            sock.set_int(b"recv-buffer", 256)
            sock.dial(url, _tls_from(url, *channel._tls_args))
        except _nng.NngError:
            sock.close()  # nothing received yet: closing is safe
            return None
    for t in _topics(id, tty):
        sock.set_bytes(b"sub:subscribe", t)
    return sock


def _give_sub(url, sock, id, tty):
    for t in _topics(id, tty):
        sock.set_bytes(b"sub:unsubscribe", t)
    with _pool_lock:
        _pool.setdefault(url, []).append(sock)


class _Follow:
    def __init__(self, procs, id, stream):
        self.procs, self.id, self.stream = procs, id, stream
        self.last = 0  # the highest sequence seen, of any stream
        self.wait_ms = 0

    def wanted(self, e):
        return self.stream in (0, processes_pb2.STREAM_COMBINED) or e.stream == self.stream

    def drain(self):
        """Reads the log after self.last until it is exhausted: (entries, state
        read before them; once not running, the log was complete)."""
        out = []
        while True:
            wait = self.wait_ms
            page = self.procs.Logs(id=self.id, after_sequence=self.last, max_bytes=_PAGE_BYTES,
                                   stream=self.stream, wait_ms=wait,
                                   timeout=None if wait == 0 else wait / 1000 + 10)
            self.wait_ms = 0  # only the first read waits: the rest catch up at once
            for e in page.entries:
                if e.sequence > self.last:
                    self.last = e.sequence
                    if self.wanted(e):
                        out.append(e)
            # Entries of other streams were looked at too: skip past them.
            self.last = max(self.last, page.next_sequence)
            if not page.has_more:
                return out, page.state


def follow(channel, id, events_url=None, *, stream=0, after_sequence=0, poll_ms=500):
    """Yields process id's output as LogEntry messages, every entry once, in
    order, until the process has ended and all of it was yielded.

    The same algorithm as the C library's sp_follow: subscribe to the feed
    first, read the history with Logs, then merge the feed by sequence and
    fill any gap (PUB drops for slow subscribers) from the log; a quiet feed
    is covered by a Logs read every poll_ms, so a missed end cannot hang.
    events_url "none" (or an unreachable feed) follows with Logs long polls.
    A TTY's frames come as entries of stream STREAM_PTY."""
    from .v1.processes_sprpc import ProcessesStub

    procs = ProcessesStub(channel)
    rec = procs.Get(id=id)
    url = events_url or channel.events_url or _env("SANDPROC_EVENTS_URL", DEFAULT_EVENTS_URL)
    sub = None if url == "none" else _take_sub(url, channel, id, rec.tty)
    f = _Follow(procs, id, stream)
    f.last = after_sequence
    try:
        if sub is not None:
            sub.set_recv_timeout(poll_ms)
        entries, state = f.drain()
        yield from entries
        while state == processes_pb2.STATE_RUNNING:
            if sub is None:
                before = f.last
                f.wait_ms = _LONG_POLL_MS
                entries, state = f.drain()
                yield from entries
                if state == processes_pb2.STATE_RUNNING and f.last == before:
                    threading.Event().wait(poll_ms / 1000)  # a server without long polls
                continue
            try:
                msg = sub.recv()
            except _nng.NngError as e:
                if e.rv != _nng.ETIMEDOUT:
                    raise RpcError("UNAVAILABLE", "event feed %s: %s" % (url, e)) from None
                entries, state = f.drain()
                yield from entries
                continue
            topic, nul, body = msg.partition(b"\0")
            if not nul or topic.partition(b"/")[2] != id.encode():
                continue  # a pooled socket may still hold an older follow's topics
            if topic.startswith(b"proc/"):
                ev = events_pb2.ProcessEvent.FromString(body)
                if ev.process.state != processes_pb2.STATE_RUNNING:
                    entries, state = f.drain()
                    yield from entries
                continue
            if topic.startswith(b"term/"):
                t = events_pb2.TermFrame.FromString(body)
                e = processes_pb2.LogEntry(sequence=t.sequence, stream=processes_pb2.STREAM_PTY,
                                           timestamp_ms=t.timestamp_ms, data=t.data)
            else:
                e = processes_pb2.LogEntry.FromString(body)
            if e.sequence > f.last + 1:
                # Something was dropped (or came before we subscribed): the log has it.
                entries, state = f.drain()
                yield from entries
                if state != processes_pb2.STATE_RUNNING:
                    break
            if e.sequence > f.last:
                f.last = e.sequence
                if f.wanted(e):
                    yield e
    finally:
        if sub is not None:
            _give_sub(url, sub, id, rec.tty)
