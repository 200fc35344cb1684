"""Malformed and smuggling-prone requests: an error status, the connection closed, no 2xx.

Each case is followed by a check that the server still serves normally, so a crash or a
lost worker would fail the test too.
"""

from __future__ import annotations

import pytest
from bad_requests import CASES
from conftest import connect, get, parse_response, read_until_close


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
