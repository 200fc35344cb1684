"""Malformed and smuggling-prone requests: an error status, the connection closed, no 2xx.

Each case is followed by a check that the server still serves normally, so a crash or a
lost worker would fail the test too.
"""

from __future__ import annotations

import pytest
from conftest import connect, get, parse_response, read_until_close

H = b"Host: t\r\n"
CASES = [
    ("two different Content-Lengths",
     b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", {400}),
    ("non-numeric Content-Length", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5x\r\n\r\nhello", {400}),
    ("negative Content-Length", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: -5\r\n\r\nhello", {400}),
    ("signed Content-Length", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello", {400}),
    ("Content-Length list", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\nhello", {400}),
    ("overflowing Content-Length",
     b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999999\r\n\r\nx", {400, 413}),
    ("Content-Length with Transfer-Encoding",
     b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     {400}),
    ("Transfer-Encoding not ending in chunked",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", {400}),
    ("unknown Transfer-Encoding", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\nx", {400, 501}),
    ("chunked twice",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", {400}),
    ("Transfer-Encoding in HTTP/1.0",
     b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", {400}),
    ("whitespace before colon", b"GET / HTTP/1.1\r\n" + H + b"X-Foo : bar\r\n\r\n", {400}),
    ("whitespace before colon on Transfer-Encoding",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", {400}),
    ("invalid chunk size", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n",
     {400}),
    ("negative chunk size",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n-1\r\nhi\r\n0\r\n\r\n", {400}),
    ("overflowing chunk size",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffffff\r\nhi\r\n0\r\n\r\n",
     {400, 413}),
    ("chunk data longer than declared",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n", {400}),
    ("chunk size with space inside",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1 0\r\nhello\r\n0\r\n\r\n", {400}),
    ("bare LF in chunk line",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n2\nhi\r\n0\r\n\r\n", {400}),
    ("NUL in field value", b"GET / HTTP/1.1\r\n" + H + b"X-Foo: a\x00b\r\n\r\n", {400}),
    ("CR in field value", b"GET / HTTP/1.1\r\n" + H + b"X-Foo: a\rb\r\n\r\n", {400}),
    ("DEL in field value", b"GET / HTTP/1.1\r\n" + H + b"X-Foo: a\x7fb\r\n\r\n", {400}),
    ("escape in field value", b"GET / HTTP/1.1\r\n" + H + b"X-Foo: a\x1bb\r\n\r\n", {400}),
    ("bare LF inside header block", b"GET / HTTP/1.1\r\n" + H + b"X-Foo: a\nX-Bar: b\r\n\r\n", {400}),
    ("bare LF request", b"GET / HTTP/1.1\nHost: t\n\n", {400}),
    ("invalid field-name character", b"GET / HTTP/1.1\r\n" + H + b"X(Foo): bar\r\n\r\n", {400}),
    ("non-ASCII field name", b"GET / HTTP/1.1\r\n" + H + b"X-F\xe9o: bar\r\n\r\n", {400}),
    ("empty field name", b"GET / HTTP/1.1\r\n" + H + b": bar\r\n\r\n", {400}),
    ("line without colon", b"GET / HTTP/1.1\r\n" + H + b"NoColonHere\r\n\r\n", {400}),
    ("obsolete line folding", b"GET / HTTP/1.1\r\n" + H + b"X-Foo: a\r\n  folded\r\n\r\n", {400}),
    ("missing Host in HTTP/1.1", b"GET / HTTP/1.1\r\nX-Foo: bar\r\n\r\n", {400}),
    ("repeated Host", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", {400}),
    ("lowercase method is fine but bad target", b"GET nothing HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("missing target", b"GET HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("double space in request line", b"GET  / HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("tab separator", b"GET\t/\tHTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("lowercase protocol name", b"GET / http/1.1\r\n" + H + b"\r\n", {400}),
    ("two-digit minor version", b"GET / HTTP/1.10\r\n" + H + b"\r\n", {400}),
    ("missing version", b"GET /\r\n" + H + b"\r\n", {400}),
    ("garbage request line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", {400}),
    ("HTTP/2.0 in HTTP/1 framing", b"GET / HTTP/2.0\r\n" + H + b"\r\n", {505}),
    ("HTTP/0.9 version", b"GET / HTTP/0.9\r\n" + H + b"\r\n", {505}),
    ("control character in target", b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("fragment in absolute target", b"GET http://t/a#frag HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("asterisk target with GET", b"GET * HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("over-long request line", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", {414}),
    ("over-long header field", b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 9000 + b"\r\n\r\n", {431}),
    ("too many header fields",
     b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-F%d: v\r\n" % i for i in range(150)) + b"\r\n", {431}),
    ("body larger than the limit", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 200000\r\n\r\n", {413}),
    ("chunked body larger than the limit",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n30d41\r\n", {413}),
    ("unsupported expectation", b"POST /echo HTTP/1.1\r\n" + H + b"Expect: teapot\r\nContent-Length: 1\r\n\r\nx",
     {417}),
    ("malformed trailer",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nBad Trailer\r\n\r\n",
     {400}),
]


@pytest.mark.parametrize(("name", "raw", "statuses"), CASES, ids=[c[0] for c in CASES])
def test_bad_request_is_rejected_and_closed(shared_server, name, raw, statuses):
    with connect(shared_server.port) as sock:
        sock.sendall(raw)
        data = read_until_close(sock)  # returns only once the server closed the connection
    status, headers, _, rest = parse_response(data)
    assert status in statuses, f"{name}: got {data[:200]!r}"
    assert headers.get("connection") == "close"
    assert rest == b"", "nothing may follow the error response"
    # The server (and every worker) is still fine.
    assert get(shared_server.port)[0] == 200


def test_smuggled_request_after_bad_framing_is_not_served(shared_server):
    """A second request hidden in the body of a rejected one must never be executed."""
    smuggled = b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n"
    raw = (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"0\r\n\r\n" + smuggled)
    with connect(shared_server.port) as sock:
        sock.sendall(raw)
        data = read_until_close(sock)
    assert data.startswith(b"HTTP/1.1 400 ")
    assert data.count(b"HTTP/1.1") == 1


def test_slowly_growing_bad_head_is_rejected_before_completion(shared_server):
    with connect(shared_server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")
        sock.sendall(b"X: " + b"y" * 20000)
        data = read_until_close(sock)
    assert parse_response(data)[0] == 431


def test_error_burst_loses_no_worker(shared_server):
    pids_before = shared_server.worker_pids()
    for _ in range(50):
        with connect(shared_server.port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n")
            assert read_until_close(sock).startswith(b"HTTP/1.1 400 ")
    assert shared_server.worker_pids() == pids_before
    assert get(shared_server.port)[0] == 200
