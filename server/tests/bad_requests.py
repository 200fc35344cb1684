"""The malformed and smuggling-prone requests, with the statuses allowed for each.

One table for two tests: ``test_bad_requests.py`` sends each case to a real server over a
socket, ``test_parser.py`` runs it through the parser and decoder in-process.  The limits
are those of the ``shared_server`` fixture (``--limit-request-body 100000``).
"""

from __future__ import annotations

LIMIT_REQUEST_BODY = 100000

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

# RFC 9110 section 6.5.1: fields that must not be in a trailer section, one of each kind
# (framing, routing, request modifiers, authentication, response control data, content
# processing), in mixed case; test_parser.py checks the whole list in-process.
FORBIDDEN_TRAILER_SAMPLES = [
    b"Content-Length: 1", b"Transfer-Encoding: chunked", b"Trailer: X-Sum", b"Host: evil.example",
    b"Cache-Control: no-cache", b"Expect: 100-continue", b"Range: bytes=0-1", b"TE: trailers",
    b"If-None-Match: *", b"if-modified-since: Sat, 01 Jan 2000 00:00:00 GMT", b"Accept-Language: fr",
    b"Authorization: Basic YTpi", b"COOKIE: session=1", b"Date: Sat, 01 Jan 2000 00:00:00 GMT",
    b"Location: /x", b"Content-Type: text/html", b"Content-Encoding: gzip",
]
CASES += [
    (f"forbidden trailer {line.split(b':')[0].decode()}",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n" + line + b"\r\n\r\n",
     {400})
    for line in FORBIDDEN_TRAILER_SAMPLES
]
