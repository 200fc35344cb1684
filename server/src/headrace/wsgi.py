"""The WSGI adapter (PEP 3333): environ, ``start_response``/``write``, file wrappers, the app call.

It sits on top of :mod:`headrace.protocol`: it turns a parsed request into an environ,
calls the application, checks what the application gives back (status, headers, body
types) and hands it to the protocol's :class:`~headrace.protocol.Response` for framing.
The protocol never calls up into this module.

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
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from headrace import SERVER_NAME, __version__
from headrace.access_log import AccessLog
from headrace.forwarded import apply_forwarded
from headrace.http_parser import HTTPError, RequestHead
from headrace.protocol import Connection, Response
from headrace.transport import ClientGone, Transport

log = logging.getLogger("headrace.wsgi")


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


class WSGIResponse(Response):
    """A :class:`Response` with the PEP 3333 interface: ``start_response`` and ``write``."""

    def start_response(self, status: str, headers: list, exc_info: Any = None):
        if exc_info:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        code = _STATUS_CACHE.get(status)
        if code is None:
            if type(status) is not str or _STATUS_RE.fullmatch(status) is None:
                raise ValueError(f"invalid status line: {status!r}")
            status.encode("latin-1")
            code = _STATUS_CACHE[status] = int(status[:3])
        if type(headers) is not list:
            raise TypeError("response headers must be a list")
        flags = 0
        app_length = -1
        for header in headers:
            hflags = _HEADER_CACHE.get(header)  # the cache hit without a call: apps repeat their headers
            if hflags is None:
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
        self.code = code
        self.headers = headers
        self.flags = flags
        self.app_length = app_length
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333 ``write``; the items of the returned iterable end up here too."""
        if type(data) is not bytes and not isinstance(data, bytes):
            raise TypeError(f"WSGI body data must be bytes, not {type(data).__name__}")
        self.send(data)


class EnvironFactory:
    """Builds environ dicts from a template plus the parsed head and the transport's addresses."""

    def __init__(
        self,
        *,
        root_path: str,
        multithread: bool,
        multiprocess: bool,
        url_scheme: str = "http",
    ) -> None:
        self.root_path = root_path.rstrip("/")
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

    def _host(self, host: str) -> tuple[str, str]:
        """``Host`` split into name and port; the port is "" when the field has none."""
        cached = self._host_cache.get(host)
        if cached is None:
            name, port = host, ""
            if host.startswith("["):
                end = host.find("]")
                name = host[: end + 1]
                if host[end + 1 : end + 2] == ":":
                    port = host[end + 2 :]
            elif ":" in host:
                name, _, port = host.rpartition(":")
            cached = (name, port)
            if len(self._host_cache) > 256:
                self._host_cache.clear()
            self._host_cache[host] = cached
        return cached

    def build(self, head: RequestHead, transport: Transport, body: Any) -> dict[str, Any]:
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
        host = head.headers.get("HTTP_HOST")
        if host:
            cached = self._host_cache.get(host)  # the cache hit without a call: clients repeat their Host
            name, port = cached if cached is not None else self._host(host)
            environ["SERVER_NAME"] = name
            environ["SERVER_PORT"] = port or transport.server_port
        else:
            environ["SERVER_NAME"] = transport.server_name
            environ["SERVER_PORT"] = transport.server_port
        environ["REMOTE_ADDR"] = transport.remote_addr
        environ["REMOTE_PORT"] = transport.remote_port
        environ["wsgi.input"] = body
        if transport.trusted:
            apply_forwarded(environ, head.headers)
        return environ


def _send_file(response: WSGIResponse, wrapper: FileWrapper) -> bool:
    """Serve a FileWrapper over a regular file with ``os.sendfile``; False when not possible."""
    filelike = wrapper.filelike
    try:
        fd = filelike.fileno()
        st = os.fstat(fd)
        offset = filelike.tell() if hasattr(filelike, "tell") else 0
    except (AttributeError, OSError, io.UnsupportedOperation):
        return False
    if not stat.S_ISREG(st.st_mode) or response.headers_sent:
        return False
    response.send_file(fd, offset, max(0, st.st_size - offset))
    return True


def run_app(app: Callable, environ: dict, response: WSGIResponse) -> None:
    """Call the application and send its response; ``close()`` is always called on the result."""
    result = app(environ, response.start_response)
    try:
        if type(result) is list and len(result) == 1 and not response.headers_sent:
            data = result[0]
            if type(data) is not bytes and not isinstance(data, bytes):
                raise TypeError(f"WSGI body data must be bytes, not {type(data).__name__}")
            response.send_single(data)
            return
        if type(result) is FileWrapper and _send_file(response, result):
            return
        write = response.write
        for data in result:
            write(data)
        response.finish()
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


class Adapter:
    """Serves one request: environ, application, response, access log line."""

    def __init__(self, app: Callable, factory: EnvironFactory, access_log: AccessLog | None) -> None:
        self.app = app
        self.factory = factory
        self.access_log = access_log

    def serve(self, conn: Connection, head: RequestHead, body: Any) -> bool:
        """True when the connection may carry another request; ClientGone when the peer left."""
        response = WSGIResponse(conn, head, body)
        environ = self.factory.build(head, conn.transport, body)
        try:
            run_app(self.app, environ, response)
        except ClientGone:
            raise
        except Exception as exc:
            if isinstance(exc, HTTPError):
                err = exc
            else:
                log.exception("error in application handling %s %s", head.method, head.target)
                err = HTTPError(500, "the application raised an exception")
            response.fail(err)
        keep = response.keep_alive
        streaming = response.streaming
        if streaming is not None and not streaming.complete:
            keep = response.keep_alive = False  # the unread body would be taken for the next request
        if self.access_log is not None:
            self.access_log.log(environ, response.status or "500", response.body_sent)
        return keep
