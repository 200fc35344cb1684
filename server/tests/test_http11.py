"""HTTP/1.1 behaviour seen by a client: persistence, pipelining, chunking, 100-continue."""

from __future__ import annotations

import email.utils
import json
import socket
import time

from conftest import connect, get, parse_response, read_until_close, request


def read_response(sock: socket.socket, buffer: bytearray, timeout: float = 5.0):
    """Read exactly one response from a persistent connection."""
    sock.settimeout(timeout)
    while True:
        head_done = b"\r\n\r\n" in buffer
        chunked = head_done and b"Transfer-Encoding: chunked" in buffer.split(b"\r\n\r\n", 1)[0]
        if chunked and not buffer.endswith(b"0\r\n\r\n"):
            complete = False
        else:
            status, headers, body, rest = parse_response(bytes(buffer))
            complete = status and (chunked or len(body) == int(headers.get("content-length", -1)))
        if complete:
            del buffer[: len(buffer) - len(rest)]
            return status, headers, body
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed mid-response: {bytes(buffer)!r}")
        buffer += data


def test_keep_alive_serves_many_requests_on_one_connection(shared_server):
    with connect(shared_server.port) as sock:
        buf = bytearray()
        for i in range(20):
            sock.sendall(f"GET /environ?i={i} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            status, headers, body = read_response(sock, buf)
            assert status == 200
            assert "connection" not in headers
            assert json.loads(body)["QUERY_STRING"] == f"i={i}"


def test_pipelined_requests_are_answered_in_order(shared_server):
    raw = b"".join(
        f"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {len(str(i))}\r\n\r\n{i}".encode() for i in range(10)
    ) + b"GET /environ?last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    with connect(shared_server.port) as sock:
        sock.sendall(raw)
        data = read_until_close(sock)
    bodies = []
    for _ in range(11):
        status, _headers, body, data = parse_response(data)
        assert status == 200
        bodies.append(json.loads(body))
    assert [b["body"] for b in bodies[:10]] == [str(i) for i in range(10)]
    assert bodies[10]["QUERY_STRING"] == "last"
    assert data == b""


def test_chunked_request_body_with_extensions_and_trailers(shared_server):
    raw = (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           b"5;name=value\r\nhello\r\n6\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n")
    status, _, body = request(shared_server.port, raw)
    assert status == 200
    result = json.loads(body)
    assert result["body"] == "hello world0123456789"
    assert result["content_length"] == ""


def test_chunked_body_arriving_in_pieces(shared_server):
    parts = [b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n", b"Connection: close\r\n\r\n4",
             b"\r\nab", b"cd\r", b"\n3\r\nefg\r\n0\r", b"\n\r\n"]
    with connect(shared_server.port) as sock:
        for part in parts:
            sock.sendall(part)
            time.sleep(0.02)
        status, _, body, _ = parse_response(read_until_close(sock))
    assert status == 200
    assert json.loads(body)["body"] == "abcdefg"


def test_wsgi_input_terminated_and_large_body(shared_server):
    payload = b"x" * 90000
    raw = (b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(payload)
           + payload)
    status, _, body = request(shared_server.port, raw)
    assert status == 200
    assert json.loads(body)["length"] == 90000
    status, _, body = get(shared_server.port, "/environ")
    assert json.loads(body)["wsgi.input_terminated"] is True


def test_expect_continue_sends_interim_response_when_body_is_read(shared_server):
    with connect(shared_server.port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        sock.settimeout(5)
        interim = sock.recv(100)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        buf = bytearray()
        status, _, body = read_response(sock, buf)
        assert status == 200
        assert json.loads(body)["body"] == "hello"


def test_expect_continue_without_reading_gets_no_interim_response(shared_server):
    with connect(shared_server.port) as sock:
        sock.sendall(b"POST /ignore-body HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        data = read_until_close(sock)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"100 Continue" not in data
    # the unread body makes the connection unusable, so the server closes it
    assert parse_response(data)[1]["connection"] == "close"


def test_expect_continue_with_chunked_body(shared_server):
    with connect(shared_server.port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"3\r\nabc\r\n0\r\n\r\n")
        status, _, body = read_response(sock, bytearray())
    assert status == 200
    assert json.loads(body)["body"] == "abc"


def test_chunked_response_when_no_content_length(shared_server):
    with connect(shared_server.port) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        buf = bytearray()
        _status, headers, body = read_response(sock, buf)
        assert headers["transfer-encoding"] == "chunked"
        assert body == b"chunk0;chunk1;chunk2;"
        # still usable afterwards
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(sock, buf)[2] == b"Hello World!"


def test_write_callable_output_precedes_iterable(shared_server):
    status, _headers, body = get(shared_server.port, "/write")
    assert status == 200
    assert body == b"written-returned"


def test_http10_response_without_length_is_close_delimited(shared_server):
    status, headers, body = request(shared_server.port, b"GET /stream HTTP/1.0\r\n\r\n")
    assert status == 200
    assert "transfer-encoding" not in headers
    assert headers["connection"] == "close"
    assert body == b"chunk0;chunk1;chunk2;"


def test_http10_closes_by_default_and_keeps_alive_on_request(shared_server):
    status, headers, body = request(shared_server.port, b"GET / HTTP/1.0\r\n\r\n")
    assert status == 200 and headers["connection"] == "close" and body == b"Hello World!"
    with connect(shared_server.port) as sock:
        buf = bytearray()
        for _ in range(3):
            sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, body = read_response(sock, buf)
            assert headers["connection"].lower() == "keep-alive"
            assert body == b"Hello World!"


def test_http10_environ_protocol(shared_server):
    _status, _, body = request(shared_server.port, b"GET /environ HTTP/1.0\r\n\r\n")
    assert json.loads(body)["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_head_has_headers_but_no_body(shared_server):
    with connect(shared_server.port) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\nHEAD /stream HTTP/1.1\r\nHost: t\r\n\r\n"
                     b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = read_until_close(sock)
    first, second, third = data.split(b"HTTP/1.1 ")[1:]
    assert b"Content-Length: 12\r\n" in first and first.endswith(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in second and second.endswith(b"\r\n\r\n")
    assert third.endswith(b"Hello World!")


def test_connection_close_is_honoured(shared_server):
    with connect(shared_server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
        data = read_until_close(sock)
    assert data.count(b"HTTP/1.1 200") == 1
    assert b"Connection: close\r\n" in data


def test_app_connection_close_header_closes_connection(shared_server):
    with connect(shared_server.port) as sock:
        sock.sendall(b"GET /connection-close HTTP/1.1\r\nHost: t\r\n\r\n")
        data = read_until_close(sock)
    assert data.count(b"Connection: close") == 1
    assert data.endswith(b"ok")


def test_date_and_server_headers(shared_server):
    _status, headers, _ = get(shared_server.port)
    assert headers["server"] == "headrace"
    date = email.utils.parsedate_to_datetime(headers["date"])
    assert abs(date.timestamp() - time.time()) < 5


def test_no_content_response_has_no_body_or_length(shared_server):
    with connect(shared_server.port) as sock:
        sock.sendall(b"GET /no-content HTTP/1.1\r\nHost: t\r\n\r\n"
                     b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = read_until_close(sock)
    first, _, rest = data.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 204 ")
    assert b"Content-Length" not in first and b"Transfer-Encoding" not in first
    assert rest.startswith(b"HTTP/1.1 200 ")


def test_short_body_closes_connection(shared_server):
    with connect(shared_server.port) as sock:
        sock.sendall(b"GET /short HTTP/1.1\r\nHost: t\r\n\r\n")
        data = read_until_close(sock)
    assert data.endswith(b"only-this")


def test_idle_keep_alive_connection_is_closed_after_timeout(shared_server):
    with connect(shared_server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        start = time.monotonic()
        data = read_until_close(sock, timeout=10)
        elapsed = time.monotonic() - start
    assert data.endswith(b"Hello World!")
    assert 2.5 <= elapsed < 5.5  # --keep-alive 3


def test_forwarded_headers_from_trusted_proxy(shared_server):
    _status, _, body = get(shared_server.port, "/environ",
                          "X-Forwarded-For: 203.0.113.9, 198.51.100.7\r\nX-Forwarded-Proto: https\r\n")
    env = json.loads(body)
    assert env["REMOTE_ADDR"] == "198.51.100.7"
    assert env["wsgi.url_scheme"] == "https"


def test_forwarded_headers_ignored_from_untrusted_peer(server_factory):
    server = server_factory("apps:router", "--workers", "1", "--forwarded-allow-ips", "10.0.0.1")
    _status, _, body = get(server.port, "/environ", "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n")
    env = json.loads(body)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["wsgi.url_scheme"] == "http"


def test_underscore_headers_are_dropped(shared_server):
    _status, _, body = get(shared_server.port, "/environ", "X_Forwarded_For: 1.2.3.4\r\nX-Real: yes\r\n")
    env = json.loads(body)
    assert env["HTTP_X_REAL"] == "yes"
    assert "HTTP_X_FORWARDED_FOR" not in env


def test_leading_empty_line_is_tolerated(shared_server):
    status, _, _body = request(shared_server.port, b"\r\nGET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert status == 200


def test_absolute_form_and_asterisk_targets(shared_server):
    status, _, body = request(shared_server.port,
                              b"GET http://example.com/environ/x?q=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    env = json.loads(body)
    assert status == 200 and env["PATH_INFO"] == "/environ/x" and env["QUERY_STRING"] == "q=1"
    status, _, body = request(shared_server.port, b"OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert status == 200 and body == b"Hello World!"


def test_repeated_fields_are_joined_and_identical_lengths_accepted(shared_server):
    raw = (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 3\r\nX-A: 1\r\nX-A: 2\r\n"
           b"Connection: close\r\n\r\nabc")
    status, _, body = request(shared_server.port, raw)
    assert status == 200 and json.loads(body)["body"] == "abc"
    status, _, body = get(shared_server.port, "/environ", "X-A: 1\r\nX-A:  2 \r\n")
    assert json.loads(body)["HTTP_X_A"] == "1,2"
