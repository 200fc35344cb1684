"""WSGI applications the tests serve.  ``validated`` wraps the router in wsgiref.validate."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from wsgiref.validate import validator

CLOSE_LOG = os.environ.get("HEADRACE_TEST_CLOSE_LOG", os.path.join(tempfile.gettempdir(), "hr-close.log"))


def hello(environ, start_response):
    body = b"Hello World!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _json(start_response, data, status="200 OK"):
    body = json.dumps(data, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class ClosingBody:
    """An iterable that records ``close()`` so the tests can see the server called it."""

    def __init__(self, chunks, tag):
        self.chunks = chunks
        self.tag = tag

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        with open(CLOSE_LOG, "a") as handle:
            handle.write(self.tag + "\n")


class FailingBody:
    def __init__(self, tag):
        self.tag = tag

    def __iter__(self):
        yield b"partial"
        raise RuntimeError("boom mid-body")

    def close(self):
        with open(CLOSE_LOG, "a") as handle:
            handle.write(self.tag + "\n")


def router(environ, start_response):
    path = environ["PATH_INFO"]
    query = environ.get("QUERY_STRING", "")
    if path.startswith("/environ"):
        keys = {k: v for k, v in environ.items() if isinstance(v, str | int | bool | tuple)}
        keys["wsgi.input.type"] = type(environ["wsgi.input"]).__name__
        return _json(start_response, keys)
    if path == "/echo":
        stream = environ["wsgi.input"]
        body = b""
        while True:
            part = stream.read(65536)
            if not part:
                break
            body += part
        return _json(start_response, {"length": len(body), "body": body.decode("latin-1"),
                                      "content_length": environ.get("CONTENT_LENGTH", "")})
    if path == "/echo-lines":
        lines = [line.decode("latin-1") for line in environ["wsgi.input"]]
        return _json(start_response, {"lines": lines})
    if path == "/echo-chunks":
        stream = environ["wsgi.input"]
        parts = []
        while True:
            part = stream.read(3)
            if not part:
                break
            parts.append(part.decode("latin-1"))
        return _json(start_response, {"parts": parts})
    if path == "/ignore-body":
        return _json(start_response, {"ignored": True})
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written-")
        write(b"")
        return [b"returned"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"chunk%d;" % i for i in range(3))
    if path == "/empty-stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"", b""])
    if path == "/close":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ClosingBody([b"a", b"b"], query or "close")
    if path == "/fail-mid-body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return FailingBody(query or "fail")
    if path == "/exc-info":
        try:
            raise ValueError("handled")
        except ValueError:
            start_response("200 OK", [("Content-Type", "text/plain")])
            start_response("500 Oops", [("Content-Type", "text/plain"), ("Content-Length", "6")],
                           sys.exc_info())
        return [b"oopsie"]
    if path == "/exc-info-late":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"begun")
        try:
            raise KeyError("late")
        except KeyError:
            start_response("500 Late", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"never"]
    if path == "/raise":
        raise RuntimeError("application failure")
    if path == "/bad-header":
        start_response("200 OK", [("X-Bad", "caf\u00e9\u20ac")])
        return [b"x"]
    if path == "/header-injection":
        start_response("200 OK", [("X-Bad", "a\r\nSet-Cookie: evil=1")])
        return [b"x"]
    if path == "/file":
        fh = open(os.environ["HEADRACE_TEST_FILE"], "rb")  # noqa: SIM115
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](fh, 8192)
    if path == "/no-content":
        start_response("204 No Content", [])
        return []
    if path == "/short":
        start_response("200 OK", [("Content-Length", "100")])
        return [b"only-this"]
    if path == "/sleep":
        time.sleep(float(query or "1"))
        return hello(environ, start_response)
    if path == "/hang":
        while True:
            time.sleep(1)
    if path == "/pid":
        body = str(os.getpid()).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/connection-close":
        start_response("200 OK", [("Content-Length", "2"), ("Connection", "close")])
        return [b"ok"]
    return hello(environ, start_response)


validated = validator(router)
