"""In-process tests of the connection state machine and response framing (no server processes).

A real :class:`~headrace.transport.Transport` over a ``socketpair`` carries the bytes; the
WSGI adapter serves tiny applications through the protocol's framing, and the client end
reads what a client would see.
"""

from __future__ import annotations

import socket
import time

import pytest
from conftest import parse_response

from headrace.http_parser import HTTPError, Limits
from headrace.protocol import (
    BODY,
    BUSY,
    CLOSED,
    CLOSING,
    HEAD,
    KEEP_ALIVE,
    TRANSITIONS,
    Connection,
    ProtocolStateError,
    StreamingBody,
)
from headrace.transport import Transport
from headrace.wsgi import Adapter, EnvironFactory


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    server.setblocking(False)
    client.settimeout(2)
    yield Connection(Transport(server, ("10.0.0.1", "4321"), ("localhost", "80"), False, 2.0), Limits(),
                     time.monotonic()), client
    server.close()
    client.close()


def serve(conn: Connection, client: socket.socket, app, raw: bytes) -> tuple[bool, bytes]:
    """Feed ``raw``, serve the one request it holds with ``app``; (keep-alive, bytes the client got)."""
    request = conn.receive(raw, time.monotonic())
    assert request is not None and conn.state == BUSY
    keep = Adapter(app, EnvironFactory(root_path="", multithread=False, multiprocess=False), None).serve(
        conn, *request)
    client.setblocking(False)
    chunks = []
    try:
        while data := client.recv(65536):
            chunks.append(data)
    except BlockingIOError:
        pass
    return keep, b"".join(chunks)


def app_returning(body, status="200 OK", headers=()):
    def app(environ, start_response):
        start_response(status, [("Content-Type", "text/plain"), *headers])
        return body

    return app


GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


# -- the state machine ------------------------------------------------------------------
def test_keep_alive_cycle_and_pipelined_requests_in_order(pair):
    conn, _ = pair
    assert conn.state == HEAD
    first = conn.receive(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n", 0.0)
    assert first is not None and first[0].target == "/1" and conn.state == BUSY
    conn.event(KEEP_ALIVE)
    second = conn.next_request()
    assert second is not None and second[0].target == "/2"
    conn.event(KEEP_ALIVE)
    assert conn.next_request() is None and conn.idle


def test_a_body_in_pieces_goes_through_BODY(pair):
    conn, _ = pair
    assert conn.receive(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello", 0.0) is None
    assert conn.state == BODY
    request = conn.receive(b"world", 0.0)
    assert request is not None and request[1].read() == b"helloworld" and conn.state == BUSY


def test_expect_100_continue_streams_the_body(pair):
    conn, client = pair
    request = conn.receive(b"PUT / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", 0.0)
    assert request is not None and type(request[1]) is StreamingBody
    client.sendall(b"abc")
    assert request[1].read() == b"abc"
    assert client.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_errors_linger_then_close(pair):
    conn, _ = pair
    with pytest.raises(HTTPError):
        conn.receive(b"GET / HTTP/1.1\r\n\r\n", 0.0)  # no Host
    assert conn.linger(0.0) and conn.state == CLOSING
    assert conn.receive(b"more", 0.0) is None  # drained, never parsed
    conn.close()
    assert conn.state == CLOSED


def test_illegal_transitions_raise(pair):
    conn, _ = pair
    with pytest.raises(ProtocolStateError, match="in state HEAD"):
        conn.event(KEEP_ALIVE)
    conn.close()
    with pytest.raises(ProtocolStateError):
        conn.close()
    assert all(state != CLOSED for state, _ in TRANSITIONS), "nothing leaves CLOSED"


# -- response framing -------------------------------------------------------------------
def test_single_item_body_gets_a_computed_content_length(pair):
    keep, data = serve(*pair, app_returning([b"hello"]), GET)
    status, headers, body, rest = parse_response(data)
    assert (status, body, rest, keep) == (200, b"hello", b"", True)
    assert headers["content-length"] == "5" and headers["server"] == "headrace" and "date" in headers
    assert "connection" not in headers


def test_several_items_are_chunked_on_http11(pair):
    keep, data = serve(*pair, app_returning([b"a", b"", b"bc"]), GET)
    status, headers, body, rest = parse_response(data)
    assert status == 200
    assert headers["transfer-encoding"] == "chunked" and body == b"abc" and rest == b"" and keep
    assert data.endswith(b"0\r\n\r\n")


def test_several_items_on_http10_are_close_delimited(pair):
    keep, data = serve(*pair, app_returning([b"a", b"b"]), b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    status, headers, body, _ = parse_response(data)
    assert status == 200
    assert "content-length" not in headers and "transfer-encoding" not in headers
    assert headers["connection"] == "close" and body == b"ab" and not keep


def test_http10_keep_alive_is_confirmed(pair):
    keep, data = serve(*pair, app_returning([b"x"]), b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert parse_response(data)[1]["connection"] == "keep-alive" and keep


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
def test_no_body_statuses(pair, status):
    _, data = serve(*pair, app_returning([b"ignored"], status), GET)
    assert data.endswith(b"\r\n\r\n") and b"ignored" not in data


def test_head_has_the_length_but_no_body(pair):
    _, data = serve(*pair, app_returning([b"hello"]), b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert b"Content-Length: 5\r\n" in data and data.endswith(b"\r\n\r\n")


def test_longer_body_than_content_length_is_truncated_and_closes(pair):
    keep, data = serve(*pair, app_returning([b"abc", b"def"], headers=[("Content-Length", "4")]), GET)
    assert parse_response(data)[2] == b"abcd" and data.endswith(b"abcd") and not keep


def test_shorter_body_than_content_length_closes(pair):
    keep, data = serve(*pair, app_returning([b"ab", b""], headers=[("Content-Length", "4")]), GET)
    assert data.endswith(b"\r\n\r\nab") and not keep


def test_app_connection_close_is_honoured_and_its_header_replaced(pair):
    keep, data = serve(*pair, app_returning([b"x"], headers=[("Connection", "close")]), GET)
    assert data.count(b"Connection") == 1 and b"Connection: close\r\n" in data and not keep


def test_server_closing_says_connection_close(pair):
    conn, client = pair
    conn.closing = True
    keep, data = serve(conn, client, app_returning([b"x"]), GET)
    assert b"Connection: close\r\n" in data and not keep


@pytest.mark.parametrize("header", [("Transfer-Encoding", "chunked"), ("X-Bad", "a\nb"), ("Bad Name", "x")])
def test_bad_app_headers_are_a_500(pair, header):
    keep, data = serve(*pair, app_returning([b"x"], headers=[header]), GET)
    assert data.startswith(b"HTTP/1.1 500 ") and b"Connection: close" in data and not keep


def test_file_wrapper_goes_out_with_sendfile(pair, tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"0123456789")

    def app(environ, start_response):
        start_response("200 OK", [])
        handle = open(path, "rb")  # noqa: SIM115 - closed by the server through the wrapper
        handle.seek(3)
        return environ["wsgi.file_wrapper"](handle)

    keep, data = serve(*pair, app, GET)
    assert parse_response(data)[1]["content-length"] == "7" and data.endswith(b"3456789") and keep
