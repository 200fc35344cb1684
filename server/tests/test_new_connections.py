"""The new-connection path over real sockets: bursts of new connections, spreading, trailers.

These are correctness tests, not timed performance tests: the bounds below are an order of
magnitude above what the server needs even on a loaded machine, and they fail only when a
connection is left waiting for something it should not wait for (a worker that is busy in
the application, a worker that is paused, a keep-alive timeout).  The throughput of the
new-connection path (what the 5 ms pauses of the old balancer cost) is measured by
``bench/run.py --close``, and the decision that caused them (two workers deferring to each
other) is checked without timing in ``test_balance.py``.
"""

from __future__ import annotations

import selectors
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import TESTS_DIR, connect, headrace_cmd, headrace_env, parse_response, read_until_close

# A burst of BURST concurrent new connections must be served with no connection taking
# longer than BURST_BOUND seconds from the start of the burst.  Serving one takes ~0.1 ms of
# server time and the client below (one Python thread, non-blocking sockets) a little more,
# so an idle 2-CPU machine finishes the burst in well under 0.2 s; 3 s is 15x that, room for
# a machine loaded by other jobs.  A connection that stalls (waits in the accept queue for a
# worker that is not accepting, or for the 5 s keep-alive timeout) goes over it.
BURST = 200
BURST_BOUND = 3.0

# While one worker is stuck in a 4 s request, a burst of BUSY_BURST new connections must
# all be served by the other worker within BUSY_BOUND seconds: the free worker may defer to
# the stuck one (its heartbeat is fresh for up to 1.5 s) for at most one 1 ms balance pause
# per connection, so the burst takes ~0.1 s; a connection that waited for the stuck worker
# would take ~1.5 s (its heartbeat going stale) or 4 s (its request ending).
BUSY_BURST = 60
BUSY_BOUND = 1.2
SLEEP = 4.0


def burst(open_socket, count: int, path: str = "/pid") -> list[tuple[int, float, bytes]]:
    """Open ``count`` connections at once, one ``Connection: close`` request each.

    Returns (status, seconds from the start of the burst to the end of the response, body)
    per connection.  One thread and non-blocking sockets, so the connections really are
    concurrent and the client itself adds no per-connection thread start-up.
    """
    request = f"GET {path} HTTP/1.1\r\nHost: burst\r\nConnection: close\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    start = time.monotonic()
    buffers: dict[socket.socket, bytearray] = {}
    results: list[tuple[int, float, bytes]] = []
    for _ in range(count):
        sock = open_socket()
        sock.setblocking(False)
        buffers[sock] = bytearray()
        sel.register(sock, selectors.EVENT_WRITE)
    deadline = start + 30
    while buffers and time.monotonic() < deadline:
        for key, events in sel.select(timeout=1):
            sock = key.fileobj
            if events & selectors.EVENT_WRITE:
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    raise ConnectionError("connect failed")
                sock.sendall(request)
                sel.modify(sock, selectors.EVENT_READ)
                continue
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            if data:
                buffers[sock] += data
                continue
            elapsed = time.monotonic() - start
            status, _, body, _ = parse_response(bytes(buffers.pop(sock)))
            results.append((status, elapsed, body))
            sel.unregister(sock)
            sock.close()
    for sock in buffers:
        sock.close()
    assert not buffers, f"{len(buffers)} of {count} connections got no complete response in 30 s"
    return results


def tcp_opener(port: int):
    def open_socket() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        return sock
    return open_socket


def unix_opener(path: Path):
    def open_socket() -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(path))  # unix connects complete (or queue) at once
        return sock
    return open_socket


def check_burst(results: list[tuple[int, float, bytes]], count: int, bound: float) -> Counter:
    assert len(results) == count
    assert all(status == 200 for status, _, _ in results), Counter(status for status, _, _ in results)
    slowest = max(elapsed for _, elapsed, _ in results)
    assert slowest < bound, f"a connection of the burst took {slowest:.2f} s"
    return Counter(body for _, _, body in results)


def test_a_burst_of_new_tcp_connections_is_served_without_stalls(server_factory):
    server = server_factory("apps:router", "--workers", "2")
    server.wait_booted(2)
    pids = check_burst(burst(tcp_opener(server.port), BURST), BURST, BURST_BOUND)
    assert {int(p) for p in pids} <= server.worker_pids()


def test_a_burst_of_new_unix_socket_connections_is_served_without_stalls(tmp_path):
    path = tmp_path / "burst.sock"
    proc = subprocess.Popen(headrace_cmd("--workers", "2", "--bind", f"unix:{path}", "--log-level", "warning",
                                         "apps:router"), env=headrace_env(), cwd=str(TESTS_DIR),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:  # ready once both workers answer
            try:
                results = burst(unix_opener(path), 20)
                if len({body for _, _, body in results}) == 2:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "headrace on the unix socket did not come up"
            time.sleep(0.1)
        check_burst(burst(unix_opener(path), BURST), BURST, BURST_BOUND)
    finally:
        proc.terminate()
        proc.wait(15)
    assert proc.returncode == 0


def test_a_burst_is_not_held_up_by_a_worker_busy_in_the_application(server_factory):
    """Deferring to a less loaded sibling must not mean waiting for one that is stuck in the app."""
    server = server_factory("apps:router", "--workers", "2")
    server.wait_booted(2)
    with connect(server.port, timeout=10) as slow:
        slow.sendall(f"GET /sleep?{SLEEP} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        time.sleep(0.3)  # the request is in the application now
        started = time.monotonic()
        pids = check_burst(burst(tcp_opener(server.port), BUSY_BURST), BUSY_BURST, BUSY_BOUND)
        assert time.monotonic() - started < SLEEP - 0.3
        assert len(pids) == 1, "only the free worker can have served the burst"
        assert parse_response(read_until_close(slow, timeout=10))[0] == 200


def test_keep_alive_connections_opened_at_once_are_spread_over_the_workers(server_factory):
    """The guarantee the balancer exists for: a burst of persistent connections (a load
    balancer or a benchmark opening its pool) must not all land on the worker that woke first."""
    server = server_factory("apps:router", "--workers", "2")
    server.wait_booted(2)
    count = 64
    socks = []
    try:
        opener = tcp_opener(server.port)
        for _ in range(count):
            socks.append(opener())
        owners: Counter = Counter()
        for sock in socks:
            sock.setblocking(True)
            sock.settimeout(10)
            sock.sendall(b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n")
        for sock in socks:
            data = b""
            while b"\r\n\r\n" not in data or parse_response(data)[2] == b"":
                data += sock.recv(4096)
            owners[parse_response(data)[2]] += 1
    finally:
        for sock in socks:
            sock.close()
    assert len(owners) == 2, owners
    assert min(owners.values()) >= count // 4, f"connections per worker: {dict(owners)}"


def test_a_silent_tcp_client_is_handed_over_after_defer_accept_and_then_closed(server_factory):
    """--defer-accept keeps a connection that sends nothing in the kernel, not forever: after its
    seconds the kernel hands it over (on the next SYN-ACK retransmission, about a second later)
    and the keep-alive timeout closes it, while other clients are served meanwhile."""
    server = server_factory("apps:router", "--workers", "2", "--defer-accept", "1", "--keep-alive", "1")
    server.wait_booted(2)
    with connect(server.port, timeout=15) as silent:
        started = time.monotonic()
        check_burst(burst(tcp_opener(server.port), 20), 20, BURST_BOUND)
        assert read_until_close(silent, timeout=15) == b""
        # defer 1 s, handed over at the retransmission after it (1-3 s), keep-alive 1 s, 0.5 s ticks
        assert time.monotonic() - started < 10


@pytest.mark.parametrize("trailer", [b"Content-Length: 0", b"Host: elsewhere", b"Authorization: Basic eDp5",
                                     b"transfer-encoding: chunked", b"If-Match: *"])
def test_a_forbidden_trailer_is_refused_and_a_request_behind_it_is_not_served(shared_server, trailer):
    smuggled = b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n"
    raw = (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n0\r\nX-Fine: 1\r\n" + trailer + b"\r\n\r\n" + smuggled)
    with connect(shared_server.port) as sock:
        sock.sendall(raw)
        data = read_until_close(sock)
    status, headers, body, rest = parse_response(data)
    assert status == 400 and headers["connection"] == "close"
    assert b"trailer" in body
    assert rest == b"" and data.count(b"HTTP/1.1 ") == 1


def test_a_forbidden_trailer_is_refused_when_the_app_streams_the_body(shared_server):
    """With Expect: 100-continue the body (and its trailer) is decoded while the app reads it."""
    with connect(shared_server.port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        interim = sock.recv(100)
        assert interim.startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"3\r\nabc\r\n0\r\nCookie: a=b\r\n\r\n")
        data = read_until_close(sock)
    status, headers, _, _ = parse_response(data)
    assert status == 400 and headers["connection"] == "close"


def test_an_allowed_trailer_still_passes(shared_server):
    with connect(shared_server.port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                     b"3\r\nabc\r\n0\r\nX-Checksum: 900150983cd24fb0\r\nServer-Timing: app;dur=1\r\n\r\n")
        status, _, body, _ = parse_response(read_until_close(sock))
    assert status == 200 and b'"abc"' in body
