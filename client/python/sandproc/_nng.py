"""The few nng calls sandproc's Python client makes, through ctypes on
Debian's libnng (no compiler at install time). Blocking calls release the
GIL, as every ctypes foreign call does."""

import ctypes
import ctypes.util

_lib = ctypes.CDLL(ctypes.util.find_library("nng") or "libnng.so.1", use_errno=True)

FLAG_ALLOC = 1
ETIMEDOUT = 5
ECLOSED = 7
EAGAIN = 8
ECONNRESET = 19
ECANCELED = 20
DURATION_INFINITE = -1
TLS_MODE_CLIENT = 0
TLS_AUTH_REQUIRED = 2


class _Id(ctypes.Structure):
    """nng_socket and nng_dialer: a struct holding one uint32_t, passed by value."""
    _fields_ = [("id", ctypes.c_uint32)]


_c = ctypes.c_char_p
_sz = ctypes.c_size_t
_vp = ctypes.c_void_p


def _fn(name, res, *args):
    f = getattr(_lib, name)
    f.restype, f.argtypes = res, list(args)
    return f


_req0_open = _fn("nng_req0_open", ctypes.c_int, ctypes.POINTER(_Id))
_sub0_open = _fn("nng_sub0_open", ctypes.c_int, ctypes.POINTER(_Id))
_close = _fn("nng_close", ctypes.c_int, _Id)
_dialer_create = _fn("nng_dialer_create", ctypes.c_int, ctypes.POINTER(_Id), _Id, _c)
_dialer_set_ptr = _fn("nng_dialer_set_ptr", ctypes.c_int, _Id, _c, _vp)
_dialer_start = _fn("nng_dialer_start", ctypes.c_int, _Id, ctypes.c_int)
_dialer_close = _fn("nng_dialer_close", ctypes.c_int, _Id)
_set = _fn("nng_socket_set", ctypes.c_int, _Id, _c, _vp, _sz)
_set_ms = _fn("nng_socket_set_ms", ctypes.c_int, _Id, _c, ctypes.c_int32)
_set_int = _fn("nng_socket_set_int", ctypes.c_int, _Id, _c, ctypes.c_int)
_set_size = _fn("nng_socket_set_size", ctypes.c_int, _Id, _c, _sz)
_send = _fn("nng_send", ctypes.c_int, _Id, _c, _sz, ctypes.c_int)
_recv = _fn("nng_recv", ctypes.c_int, _Id, ctypes.POINTER(_vp), ctypes.POINTER(_sz), ctypes.c_int)
_free = _fn("nng_free", None, _vp, _sz)
_strerror = _fn("nng_strerror", _c, ctypes.c_int)
_tls_alloc = _fn("nng_tls_config_alloc", ctypes.c_int, ctypes.POINTER(_vp), ctypes.c_int)
_tls_free = _fn("nng_tls_config_free", None, _vp)
_tls_own_cert = _fn("nng_tls_config_own_cert", ctypes.c_int, _vp, _c, _c, _c)
_tls_ca_file = _fn("nng_tls_config_ca_file", ctypes.c_int, _vp, _c)
_tls_auth_mode = _fn("nng_tls_config_auth_mode", ctypes.c_int, _vp, ctypes.c_int)


class NngError(Exception):
    def __init__(self, rv, what):
        super().__init__("%s: %s" % (what, _strerror(rv).decode()))
        self.rv = rv


def _check(rv, what):
    if rv != 0:
        raise NngError(rv, what)


class TlsConfig:
    """A client TLS configuration: the server is always verified (against
    ca, else nng's default, which has no roots: pass ca); cert and key are
    this client's certificate, for servers that ask for one."""

    def __init__(self, ca=None, cert=None, key=None):
        if (cert is None) != (key is None):
            raise ValueError("TLS: a certificate needs its key, and a key its certificate")
        self.ptr = _vp()
        _check(_tls_alloc(ctypes.byref(self.ptr), TLS_MODE_CLIENT), "TLS")
        try:
            if cert is not None:
                with open(cert, "rb") as c, open(key, "rb") as k:
                    _check(_tls_own_cert(self.ptr, c.read(), k.read(), None), "TLS: %s and %s" % (cert, key))
            if ca is not None:
                _check(_tls_ca_file(self.ptr, ca.encode()), "TLS: CA %s" % ca)
            _check(_tls_auth_mode(self.ptr, TLS_AUTH_REQUIRED), "TLS")
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.ptr:
            _tls_free(self.ptr)
            self.ptr = _vp()

    __del__ = close


def is_tls_url(url):
    return url.startswith("tls+") or url.startswith("wss")


class Socket:
    """One nng socket (REQ or SUB), blocking send and receive."""

    def __init__(self, kind):
        self._id = _Id()
        _check((_req0_open if kind == "req" else _sub0_open)(ctypes.byref(self._id)), "nng_%s0_open" % kind)
        self._recv_ms = self._send_ms = None

    def dial(self, url, tls=None):
        d = _Id()
        _check(_dialer_create(ctypes.byref(d), self._id, url.encode()), url)
        try:
            if tls is not None and is_tls_url(url):
                _check(_dialer_set_ptr(d, b"tls-config", tls.ptr), url)
            _check(_dialer_start(d, 0), url)
        except NngError:
            _dialer_close(d)
            raise

    def set_ms(self, name, ms):
        _check(_set_ms(self._id, name, ms), name.decode())

    def set_size(self, name, n):
        _check(_set_size(self._id, name, n), name.decode())

    def set_int(self, name, n):
        _check(_set_int(self._id, name, n), name.decode())

    def set_bytes(self, name, value):
        _check(_set(self._id, name, value, len(value)), name.decode())

    def set_recv_timeout(self, ms):
        if ms != self._recv_ms:
            self.set_ms(b"recv-timeout", ms)
            self._recv_ms = ms

    def set_send_timeout(self, ms):
        if ms != self._send_ms:
            self.set_ms(b"send-timeout", ms)
            self._send_ms = ms

    def send(self, data):
        _check(_send(self._id, data, len(data), 0), "send")

    def recv(self):
        """The next message's bytes; NngError on timeout (rv ETIMEDOUT) or close."""
        ptr, size = _vp(), _sz()
        _check(_recv(self._id, ctypes.byref(ptr), ctypes.byref(size), FLAG_ALLOC), "recv")
        try:
            return ctypes.string_at(ptr, size.value)
        finally:
            _free(ptr, size)

    def close(self):
        if self._id.id:
            _close(self._id)
            self._id = _Id()
