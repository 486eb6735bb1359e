"""What the app needs from gunicorn beyond WSGI; gunicorn.conf.py wires these in (issue 11).

- `write_json_error` replaces gunicorn's HTML error page (400, 414, 431, 501, ... that gunicorn answers
  itself, before the app sees the request) with the app's JSON error and security headers.
- `pre_request` / `post_request` and `CloseUnreadBody`: when the app answers without reading all of a
  request body (415 for a text body, 404/405, 413 for a chunked upload over the cap), gunicorn tries
  to drain what is left (at most 64 KB within 5 s) and otherwise drops the connection, after a
  response that said `Connection: keep-alive`. The middleware tells gunicorn to close instead, so
  the response says `Connection: close` and a client opens a new connection for its next request.
- `MemoryGuard` (issue 16): after a request that grew the worker, `malloc_trim(0)` hands glibc's
  freed pages back to the system (a 40 MP decode otherwise left the worker hundreds of MB larger);
  and a worker still over `max_rss_mb` when a request arrives serves it with `Connection: close` and
  is then replaced by gunicorn, as `max_requests` does.
- `install_chunk_limits` (issue 24): gunicorn waited for ever on a chunk size of 2^64 - 1 (or of more
  than the whole body may be) and on chunks framed with bare LFs, holding a thread until the client
  left; such a body now fails at once, 400 (413 for a chunk over the cap), as nginx answers.
- `worker_exit`: a worker leaves with os._exit once gunicorn is done with it, so C++ destructors of
  ONNX Runtime do not run under a thread still inside it ("terminate called without an active
  exception", SIGABRT, when a worker is stopped while its models are still loading).

Nothing here imports gunicorn: without it (flask run, the test client) the middleware does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import sys
import threading

from .security import QUOTE_LIMIT, SECURITY_HEADERS

log = logging.getLogger(__name__)

_local = threading.local()  # the gunicorn request being served by this thread (gthread and sync workers)


# ---- gunicorn's own errors, as JSON -------------------------------------------------------------


def error_code(reason: str) -> str:
    """ "URI Too Long" -> "uri_too_long", the way app.errors names Werkzeug's exceptions."""
    return "_".join("".join(c if c.isalnum() else " " for c in reason.lower()).split()) or "error"


def _cut(message: str) -> str:
    """gunicorn's messages quote the request (its line, a header name): at most QUOTE_LIMIT characters
    of it after gunicorn's own ~40-character prefix."""
    limit = 40 + QUOTE_LIMIT
    return message if len(message) <= limit else message[:limit] + "..."


def json_error_bytes(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": error_code(reason), "message": _cut(message or reason)}}).encode()
    reason = "".join(c for c in reason if 32 <= ord(c) < 127)
    head = [
        f"HTTP/1.1 {status} {reason}",
        "Connection: close",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    head += [f"{name}: {value}" for name, value in SECURITY_HEADERS.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def write_json_error(sock, status_int, reason, mesg):
    """Drop-in for gunicorn.util.write_error(sock, status_int, reason, mesg)."""
    from gunicorn import util

    util.write_nonblock(sock, json_error_bytes(int(status_int), str(reason), str(mesg)))


def install_json_errors() -> None:
    """Make gunicorn answer its own errors as the app does. gunicorn's workers call
    `gunicorn.util.write_error` by attribute, so replacing it here (in the master, before the workers
    fork) is enough; tests/app/test_server.py checks it against the real server."""
    from gunicorn import util

    util.write_error = write_json_error


# ---- chunked bodies that gunicorn would wait on for ever (issue 24) ------------------------------

MAX_CHUNK_SIZE = 2**63 - 1  # nginx's limit (off_t): more is not a size, it is an attack


def body_cap() -> int:
    """The app's MAX_CONTENT_LENGTH as the workers will configure it (EMOTION_ overrides the default)."""
    from . import DEFAULTS

    default = DEFAULTS["MAX_CONTENT_LENGTH"]
    default = default if isinstance(default, int) else 16 << 20
    try:
        return int(os.environ.get("EMOTION_MAX_CONTENT_LENGTH", "")) or default
    except ValueError:
        return default


def install_chunk_limits(max_body: int | None = None) -> None:
    """Make gunicorn's chunked-body reader refuse, as soon as it parses a chunk's size line:

    - a size over 2^63 - 1 (400), or over the body cap `max_body` (413: the body cannot fit; no need
      to wait for 16 MB that will be refused anyway);
    - a size line ended by a bare LF (400). RFC 9112 frames chunks with CRLF; gunicorn kept reading
      for the CRLF until its 8 KB line limit, so a client that sent `3\nabc\n0\n\n` and waited got
      no answer and held the thread.

    gunicorn's request class looks ChunkedReader up in its module, so the subclass is installed there
    (in the master, before the workers fork). The reader's exceptions are gunicorn's own
    InvalidChunkSize, which `CloseUnreadBody` turns into the app's JSON error and a closed connection."""
    from gunicorn.http import body, message
    from gunicorn.http.errors import InvalidChunkSize

    cap = body_cap() if max_body is None else int(max_body)

    class BoundedChunkedReader(body.ChunkedReader):
        def parse_chunk_size(self, unreader, data=None):
            buf = bytes(data or b"")
            if b"\n" in buf and b"\r\n" not in buf:
                raise InvalidChunkSize(b"bare LF in the chunk framing")
            size, rest = super().parse_chunk_size(unreader, data)
            if size > MAX_CHUNK_SIZE:
                raise InvalidChunkSize(b"chunk size over 2^63 - 1")
            if size > cap:
                exc = InvalidChunkSize(b"chunk of %d bytes, over the %d-byte body cap" % (size, cap))
                exc.too_large = True
                raise exc
            return size, rest

        def read_into(self, unreader, buf):
            # Called while a size line (or the trailers) has no CRLF yet: a LF there is a bare one.
            super().read_into(unreader, buf)
            if b"\n" in buf and b"\r\n" not in buf:
                raise InvalidChunkSize(b"bare LF in the chunk framing")

    message.ChunkedReader = BoundedChunkedReader


# ---- close the connection when the body was not read ---------------------------------------------


def pre_request(worker, req) -> None:
    _local.req = req


def post_request(worker, req, environ, resp) -> None:
    _local.req = None


class _CountingInput:
    """wsgi.input, counting what the app reads and noticing its end. A body gunicorn cannot parse (a
    malformed chunked encoding) raises its parser's exception inside the app's read, which the app
    would answer with a 500: it becomes a 400 (Werkzeug's BadRequest, the app's JSON) and the
    connection closes, since where the next request would start is unknown (issue 16)."""

    def __init__(self, stream, req=None, errors: tuple = ()):
        self._stream, self.count, self.at_end = stream, 0, False
        self._req, self._errors = req, errors

    def _read(self, method, *args):
        try:
            return method(*args)
        except self._errors as exc:
            from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

            if self._req is not None:
                self._req.must_close = True
            if getattr(exc, "too_large", False):  # install_chunk_limits: a chunk over the body cap
                too_large = RequestEntityTooLarge()
                too_large.chunk_over_cap = True  # type: ignore[attr-defined]  # not "too many parts"
                raise too_large from None
            raise BadRequest(f"the request body is malformed ({type(exc).__name__})") from None

    def _seen(self, data: bytes, size) -> bytes:
        self.count += len(data)
        if size is None or size < 0 or len(data) < size:  # gunicorn's Body.read(n) is short only at EOF
            self.at_end = True
        return data

    def read(self, size=None):
        data = self._read(self._stream.read, size) if size is not None else self._read(self._stream.read)
        return self._seen(data, size)

    def readline(self, size=None):
        data = self._read(self._stream.readline, size) if size is not None else self._read(self._stream.readline)
        self.count += len(data)
        if not data:
            self.at_end = True
        return data

    def readlines(self, hint=None):
        return list(iter(self.readline, b""))

    def __iter__(self):
        return iter(self.readline, b"")

    def __getattr__(self, name):
        return getattr(self._stream, name)


class CloseUnreadBody:
    """WSGI middleware: if the app starts its response before reading all of the request body, the
    connection closes after the response (and says so) instead of gunicorn guessing."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        req = getattr(_local, "req", None)
        length = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if req is None or not (chunked or (length.isdigit() and int(length) > 0)):
            return self.app(environ, start_response)
        from gunicorn.http.errors import ParseException  # gunicorn is serving: req is its request

        stream = environ["wsgi.input"] = _CountingInput(environ["wsgi.input"], req, (ParseException,))

        def start(status, headers, exc_info=None):
            read_all = stream.at_end if chunked else stream.count >= int(length)
            if not read_all:
                req.must_close = True  # gunicorn then sends "Connection: close" and closes gracefully
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


# ---- worker memory after large requests (issue 16) -------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb() -> float:
    """This process's resident memory, from /proc (0 where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _load_malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim  # glibc only; musl has none
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


class MemoryGuard:
    """gunicorn hooks that keep a worker's resident memory near its working size.

    glibc keeps memory that a request freed (Pillow's blocks, numpy arrays under its dynamic mmap
    threshold) in its arenas for reuse, so a worker that decoded one 40 MP image stays hundreds of MB
    larger. After a request that left the worker more than `trim_growth_mb` above its size at the last
    trim, `malloc_trim(0)` returns the free pages (a few ms, after the response is sent). A worker
    whose RSS is over `max_rss_mb` when a request arrives and none is in flight is retired: gunicorn
    serves that request with `Connection: close` and starts a fresh worker (0: never)."""

    def __init__(self, trim_growth_mb: float = 64, max_rss_mb: float = 0):
        self.trim_growth_mb, self.max_rss_mb = float(trim_growth_mb), float(max_rss_mb)
        self._trim = _load_malloc_trim() if self.trim_growth_mb > 0 else None
        self._floor: float | None = None  # RSS after the last trim
        self._lock = threading.Lock()
        self._in_flight = 0
        self.trims, self.retired = 0, False

    def pre_request(self, worker, req) -> None:
        pre_request(worker, req)
        with self._lock:
            idle = self._in_flight == 0  # another request's working memory is not the worker's size
            self._in_flight += 1
        if self.max_rss_mb and idle and worker.alive:
            rss = rss_mb()
            if rss > self.max_rss_mb:
                worker.log.info(
                    "worker %s at %.0f MB RSS (limit %.0f MB): restarting after this request",
                    os.getpid(),
                    rss,
                    self.max_rss_mb,
                )
                worker.alive = False  # gunicorn closes this connection and replaces the worker
                self.retired = True

    def post_request(self, worker, req, environ, resp) -> None:
        post_request(worker, req, environ, resp)
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            if self._trim is None:
                return
            rss = rss_mb()
            if self._floor is None or rss < self._floor:
                self._floor = rss
            if rss - self._floor <= self.trim_growth_mb:
                return
            self._trim(0)
            self.trims += 1
            self._floor = rss_mb()


# ---- leaving a worker -----------------------------------------------------------------------------


def worker_exit(server, worker) -> None:
    """gunicorn calls this in the worker's `finally`, while its SystemExit is on its way out; leave
    with that exit code now, skipping the interpreter's teardown (there is nothing to flush but logs)."""
    exc = sys.exc_info()[1]
    code = exc.code if isinstance(exc, SystemExit) else 1
    if code is None:
        code = 0
    if not isinstance(code, int):
        return  # an unusual exit (a message): let Python handle it
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code & 0xFF)
