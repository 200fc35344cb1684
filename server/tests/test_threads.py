"""``--threads N``: the application runs in a pool; keep-alive, pipelining and bodies behave the same."""

from __future__ import annotations

import json

from conftest import connect, parse_response, read_until_close
from test_http11 import read_response


def test_thread_pool_keep_alive_pipelining_and_bodies(server_factory):
    server = server_factory("apps:router", "--workers", "1", "--threads", "4")
    with connect(server.port) as sock:
        buf = bytearray()
        for i in range(5):
            sock.sendall(f"GET /environ?i={i} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            status, headers, body = read_response(sock, buf)
            assert status == 200 and "connection" not in headers
            env = json.loads(body)
            assert env["QUERY_STRING"] == f"i={i}" and env["wsgi.multithread"] is True
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        status, _, body = read_response(sock, buf)
        assert status == 200 and json.loads(body)["body"] == "hello"
    raw = b"".join(
        f"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {len(str(i))}\r\n\r\n{i}".encode() for i in range(6)
    ) + (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
         b"3\r\nend\r\n0\r\n\r\n")
    with connect(server.port) as sock:
        sock.sendall(raw)
        data = read_until_close(sock)
    bodies = []
    for _ in range(7):
        status, _, body, data = parse_response(data)
        assert status == 200
        bodies.append(json.loads(body)["body"])
    assert bodies == [str(i) for i in range(6)] + ["end"] and data == b""
