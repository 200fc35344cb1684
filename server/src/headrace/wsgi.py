"""PEP 3333 glue: the environ, ``start_response``/``write``, response framing and file wrappers.

The hot path (an app returning a one-element list) sends the status line, headers and
body in a single ``send`` call with a computed Content-Length.  Header checks are cached
per ``(name, value)`` tuple because real applications repeat the same headers.
"""

from __future__ import annotations

import io
import logging
import os
import re
import stat
import sys
import time
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from headrace import SERVER_NAME, __version__
from headrace.http_parser import RequestHead

if TYPE_CHECKING:
    from headrace.worker import Connection

log = logging.getLogger("headrace.wsgi")


class ClientGone(Exception):
    """The peer went away or stopped reading; the response cannot be completed."""


class FileWrapper:
    """``wsgi.file_wrapper``: iterable over a file; the server may ``os.sendfile`` it instead."""

    def __init__(self, filelike: Any, blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        read = self.filelike.read
        blksize = self.blksize
        while True:
            data = read(blksize)
            if not data:
                return
            yield data


_STATUS_RE = re.compile(r"[1-9][0-9]{2} [^\x00-\x1f\x7f]*")
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HOP_BY_HOP = frozenset(
    {"keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
     "transfer-encoding", "upgrade"}
)

# Header tuple -> flags.  Bits: 1 Content-Length, 2 Connection, 4 Date, 8 Server.
_HEADER_CACHE: dict[tuple[str, str], int] = {}
_STATUS_CACHE: dict[str, int] = {}  # validated status line -> code


def _check_header(header: Any) -> int:
    flags = _HEADER_CACHE.get(header)
    if flags is not None:
        return flags
    if type(header) is not tuple or len(header) != 2:
        raise TypeError(f"response header must be a (name, value) tuple: {header!r}")
    name, value = header
    if type(name) is not str or type(value) is not str:
        raise TypeError(f"response header name and value must be str: {header!r}")
    if _TOKEN_RE.fullmatch(name) is None:
        raise ValueError(f"invalid response header name: {name!r}")
    if _BAD_VALUE_RE.search(value) is not None:
        raise ValueError(f"control character in response header value: {header!r}")
    value.encode("latin-1")  # raises UnicodeEncodeError: PEP 3333 wants latin-1 only
    lower = name.lower()
    if lower in _HOP_BY_HOP:
        raise ValueError(f"hop-by-hop response header not allowed in WSGI: {name}")
    flags = 0
    if lower == "content-length":
        if not value.isdigit() or not value.isascii():
            raise ValueError(f"invalid Content-Length: {value!r}")
        flags = 1
    elif lower == "connection":
        flags = 2
    elif lower == "date":
        flags = 4
    elif lower == "server":
        flags = 8
    if len(_HEADER_CACHE) > 4096:
        _HEADER_CACHE.clear()
    _HEADER_CACHE[header] = flags
    return flags


class _Clock:
    """Caches the Date header value; it only changes once a second."""

    second = 0
    date_line = ""

    @classmethod
    def date_server(cls) -> str:
        now = time.time()
        second = int(now)
        if second != cls.second:
            cls.second = second
            cls.date_line = f"Date: {formatdate(now, usegmt=True)}\r\nServer: {SERVER_NAME}\r\n"
        return cls.date_line


class Response:
    """State of one response; ``start_response`` and ``write`` are handed to the app."""

    # Class-level defaults: a response only sets what differs (cheaper than __slots__ here).
    status: str | None = None
    headers: list = []
    headers_sent = False
    app_length = -1
    body_sent = 0
    chunked = False
    no_body = False
    flags = 0
    streaming: StreamingInput | None = None

    def __init__(self, conn: Connection, head: RequestHead, keep_alive: bool) -> None:
        self.conn = conn
        self.head_request = head.method == "HEAD"
        self.http11 = head.http11
        self.keep_alive = keep_alive

    def start_response(self, status: str, headers: list, exc_info: Any = None):
        if exc_info:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        if status not in _STATUS_CACHE:
            if type(status) is not str or _STATUS_RE.fullmatch(status) is None:
                raise ValueError(f"invalid status line: {status!r}")
            status.encode("latin-1")
            _STATUS_CACHE[status] = int(status[:3])
        if type(headers) is not list:
            raise TypeError("response headers must be a list")
        flags = 0
        app_length = -1
        for header in headers:
            hflags = _check_header(header)
            if hflags:
                flags |= hflags
                if hflags == 1:
                    app_length = int(header[1])
                elif hflags == 2 and "close" in header[1].lower():
                    self.keep_alive = False
        if flags & 2:  # the server owns connection management
            headers = [h for h in headers if h[0].lower() != "connection"]
            flags &= ~2
        self.status = status
        self.headers = headers
        self.flags = flags
        self.app_length = app_length
        return self.write

    def _head(self, body_length: int) -> bytes:
        """Build the response head; ``body_length`` is the full body size when known, else -1."""
        status = self.status
        if status is None:
            raise AssertionError("application returned without calling start_response")
        code = _STATUS_CACHE[status]
        fields = "".join([f"{name}: {value}\r\n" for name, value in self.headers])
        framing = ""
        if code < 200 or code == 204 or code == 304:
            self.no_body = True
        elif self.app_length < 0:
            if body_length >= 0:
                framing = f"Content-Length: {body_length}\r\n"
            elif self.head_request:
                pass
            elif self.http11:
                self.chunked = True
                framing = "Transfer-Encoding: chunked\r\n"
            else:
                self.keep_alive = False
        if self.head_request:
            self.no_body = True
        flags = self.flags
        if flags & 12:
            stamp = "" if flags & 4 else f"Date: {formatdate(time.time(), usegmt=True)}\r\n"
            if not flags & 8:
                stamp += f"Server: {SERVER_NAME}\r\n"
        else:
            stamp = _Clock.date_line if int(time.time()) == _Clock.second else _Clock.date_server()
        if self.streaming is not None and not self.streaming.complete:
            self.keep_alive = False  # the unread body would be taken for the next request
        if not self.keep_alive or self.conn.closing:
            self.keep_alive = False
            connection = "Connection: close\r\n"
        elif not self.http11:
            connection = "Connection: keep-alive\r\n"
        else:
            connection = ""
        self.headers_sent = True
        return f"HTTP/1.1 {status}\r\n{fields}{framing}{stamp}{connection}\r\n".encode("latin-1")

    def write(self, data: bytes) -> None:
        """Send body bytes now (PEP 3333 ``write`` and iterable items both end up here)."""
        if type(data) is not bytes and not isinstance(data, bytes):
            raise TypeError(f"WSGI body data must be bytes, not {type(data).__name__}")
        if not self.headers_sent:
            if not data:
                return
            head = self._head(-1)
            if self.no_body:
                self.conn.sendall(head)
                return
            self.conn.sendall(head + self._frame(data))
            return
        if self.no_body or not data:
            return
        self.conn.sendall(self._frame(data))

    def _frame(self, data: bytes) -> bytes:
        if self.chunked:
            self.body_sent += len(data)
            return b"%x\r\n%s\r\n" % (len(data), data)
        if self.app_length >= 0:
            room = self.app_length - self.body_sent
            if len(data) > room:
                log.error("application sent more than its Content-Length; truncating")
                self.keep_alive = False
                data = data[:room]
        self.body_sent += len(data)
        return data

    def send_single(self, data: bytes) -> None:
        """Fast path: the whole body is one bytes object, so a Content-Length can be given."""
        if type(data) is not bytes and not isinstance(data, bytes):
            raise TypeError(f"WSGI body data must be bytes, not {type(data).__name__}")
        size = len(data)
        head = self._head(size)
        if self.no_body or not size:
            self.conn.sendall(head)
        elif self.app_length == size or self.app_length < 0:
            self.body_sent = size
            if size < 262144:
                self.conn.sendall(head + data)
            else:
                self.conn.sendall(head)
                self.conn.sendall(data)
            return
        else:
            self.conn.sendall(head + self._frame(data))
        self.finish()

    def send_file(self, wrapper: FileWrapper) -> bool:
        """Serve a FileWrapper with ``os.sendfile``; returns False when that is not possible."""
        filelike = wrapper.filelike
        try:
            fd = filelike.fileno()
            st = os.fstat(fd)
            offset = filelike.tell() if hasattr(filelike, "tell") else 0
        except (AttributeError, OSError, io.UnsupportedOperation):
            return False
        if not stat.S_ISREG(st.st_mode):
            return False
        available = max(0, st.st_size - offset)
        if self.headers_sent:
            return False
        if self.app_length >= 0:
            count = min(self.app_length, available)
            head = self._head(-1)
        else:
            count = available
            head = self._head(count)
        self.conn.sendall(head)
        if not self.no_body and count:
            self.conn.sendfile(fd, offset, count)
            self.body_sent = count
        self.finish()
        return True

    def finish(self) -> None:
        if not self.headers_sent:
            self.conn.sendall(self._head(0))
        elif self.chunked:
            self.conn.sendall(b"0\r\n\r\n")
        if not self.no_body and 0 <= self.app_length != self.body_sent:
            if self.body_sent < self.app_length:
                log.error("application sent less than its Content-Length; closing connection")
            self.keep_alive = False


class StreamingInput:
    """``wsgi.input`` that reads the body from the socket on demand (Expect: 100-continue).

    The interim ``100 Continue`` goes out only when the application first asks for data.
    """

    def __init__(self, conn: Connection, head: RequestHead, response: Response, decoder: Any) -> None:
        self._conn = conn
        self._response = response
        self._decoder = decoder
        self._remaining = head.content_length
        self._pending = bytearray()
        self._continue_sent = False
        self.complete = head.content_length == 0

    def _fill(self) -> bool:
        """Move more body bytes into the pending buffer; False at end of body."""
        if self.complete:
            return False
        conn = self._conn
        if not self._continue_sent:
            self._continue_sent = True
            if not self._response.headers_sent and not conn.buf:
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        while True:
            buf = conn.buf
            if buf:
                if self._decoder is not None:
                    data = self._decoder.decode(buf)
                    if self._decoder.done:
                        self.complete = True
                else:
                    n = min(self._remaining, len(buf))
                    data = bytes(buf[:n])
                    del buf[:n]
                    self._remaining -= n
                    if self._remaining == 0:
                        self.complete = True
                if data or self.complete:
                    self._pending += data
                    return bool(data) or bool(self._pending)
            conn.recv_more()

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            data = bytes(self._pending)
            self._pending.clear()
            return data
        while len(self._pending) < size and self._fill():
            pass
        data = bytes(self._pending[:size])
        del self._pending[:size]
        return data

    def readline(self, size: int | None = -1) -> bytes:
        while True:
            idx = self._pending.find(b"\n")
            if idx >= 0:
                end = idx + 1
                break
            if size is not None and 0 <= size <= len(self._pending):
                end = size
                break
            if not self._fill():
                end = len(self._pending)
                break
        if size is not None and 0 <= size < end:
            end = size
        data = bytes(self._pending[:end])
        del self._pending[:end]
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                return lines

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line


class EnvironFactory:
    """Builds environ dicts from a per-listener template plus the parsed head."""

    def __init__(
        self,
        *,
        root_path: str,
        multithread: bool,
        multiprocess: bool,
        server_name: str,
        server_port: str,
        url_scheme: str = "http",
    ) -> None:
        self.root_path = root_path.rstrip("/")
        self.server_name = server_name
        self.server_port = server_port
        self.template: dict[str, Any] = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": url_scheme,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": multithread,
            "wsgi.multiprocess": multiprocess,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
            "SERVER_SOFTWARE": f"{SERVER_NAME}/{__version__}",
            "SCRIPT_NAME": self.root_path,
            "QUERY_STRING": "",
        }
        self._host_cache: dict[str, tuple[str, str]] = {}

    def _host(self, host: str | None) -> tuple[str, str]:
        if not host:
            return self.server_name, self.server_port
        cached = self._host_cache.get(host)
        if cached is None:
            name, port = host, self.server_port
            if host.startswith("["):
                end = host.find("]")
                name = host[: end + 1]
                if host[end + 1 : end + 2] == ":":
                    port = host[end + 2 :]
            elif ":" in host:
                name, _, port = host.rpartition(":")
            if not port:
                port = self.server_port
            cached = (name, port)
            if len(self._host_cache) > 256:
                self._host_cache.clear()
            self._host_cache[host] = cached
        return cached

    def build(self, head: RequestHead, conn: Connection, body: Any) -> dict[str, Any]:
        environ = self.template.copy()
        environ.update(head.headers)
        target = head.target
        path, sep, query = target.partition("?")
        if sep:
            environ["QUERY_STRING"] = query
        if path[0] != "/":
            if path == "*" or head.method == "CONNECT":
                path = ""
            else:  # absolute-form: drop scheme and authority
                rest = path.split("//", 1)[1]
                slash = rest.find("/")
                path = rest[slash:] if slash >= 0 else "/"
        if "%" in path:
            path = unquote_to_bytes(path).decode("latin-1")
        root = self.root_path
        if root and (path == root or path.startswith(root + "/")):
            path = path[len(root) :]
        environ["PATH_INFO"] = path
        environ["REQUEST_METHOD"] = head.method
        environ["SERVER_PROTOCOL"] = head.version
        environ["RAW_URI"] = target
        environ["REQUEST_URI"] = target
        environ["SERVER_NAME"], environ["SERVER_PORT"] = self._host(head.headers.get("HTTP_HOST"))
        environ["REMOTE_ADDR"] = conn.remote_addr
        environ["REMOTE_PORT"] = conn.remote_port
        environ["wsgi.input"] = body
        if conn.trusted:
            forwarded_for = head.headers.get("HTTP_X_FORWARDED_FOR")
            if forwarded_for:
                environ["REMOTE_ADDR"] = forwarded_for.rsplit(",", 1)[-1].strip()
            proto = head.headers.get("HTTP_X_FORWARDED_PROTO")
            if proto:
                proto = proto.rsplit(",", 1)[-1].strip().lower()
                if proto in ("http", "https"):
                    environ["wsgi.url_scheme"] = proto
        return environ


def run_app(app: Any, environ: dict, response: Response) -> None:
    """Call the application and send its response; ``close()`` is always called on the result."""
    result = app(environ, response.start_response)
    try:
        if type(result) is list and len(result) == 1 and not response.headers_sent:
            response.send_single(result[0])
            return
        if type(result) is FileWrapper and response.send_file(result):
            return
        write = response.write
        for data in result:
            write(data)
        response.finish()
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
