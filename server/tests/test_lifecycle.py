"""In-process tests of a connection's lifecycle after each response (no server processes).

A :class:`~headrace.worker.Worker` accepts real loopback connections and answers them with
the application called inline (``--threads 1``) or in its thread pool (``--threads 4``); the
tests drive its accept step, its wake-up (what the loop does when pool threads have
answered) and its tick, so each decision is checked without timing races.

The invariant: what follows a response is one decision, the connection's
(``Connection.answered``), whoever produced the response: the two modes close, keep or
linger a connection alike.  Before, the pool's path was a second copy that skipped
``peer_done``, so a pooled ``Connection: close`` request lingered (a half-close and up to 2 s
holding the socket) where the inline one was closed at once.  And every response, the
server's own errors included, is framed by ``Response``.
"""

from __future__ import annotations

import socket
import time

import pytest
from conftest import parse_response, read_until_close

from headrace.access_log import AccessLog
from headrace.http_parser import Limits
from headrace.protocol import (
    BUSY,
    CLOSE,
    CLOSED,
    CLOSING,
    HEAD,
    KEEP,
    LINGER,
    TRANSITIONS,
    Census,
    Connection,
    Response,
)
from headrace.scoreboard import Scoreboard
from headrace.transport import Transport
from headrace.worker import Listener, Worker
from headrace.wsgi import Adapter, EnvironFactory

MODES = {"inline": 1, "pooled": 4}


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello " + environ["PATH_INFO"].encode()]


class Harness:
    """One worker on a loopback listener, and the steps of its loop the tests call."""

    def __init__(self, threads: int, app=hello, *, keep_alive: float = 5.0, max_requests: int = 0,
                 access_log: AccessLog | None = None) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.setblocking(False)
        board = Scoreboard()
        board.reset(0)
        factory = EnvironFactory(root_path="", multithread=threads > 1, multiprocess=False)
        self.worker = Worker(adapter=Adapter(app, factory, access_log),
                             listeners=[Listener(self.listener, "127.0.0.1", "80")], limits=Limits(),
                             keep_alive=keep_alive, timeout=30, threads=threads, max_requests=max_requests,
                             trust=lambda _addr: False, access_log=access_log, scoreboard=board, slot=0,
                             worker_connections=1000)
        self.clients: list[socket.socket] = []

    def request(self, raw: bytes, *, shut_write: bool = False) -> socket.socket:
        """A new client sends ``raw``; the worker accepts it, reads it and answers (pool included)."""
        client = socket.create_connection(self.listener.getsockname())
        client.settimeout(5)
        self.clients.append(client)
        client.sendall(raw)
        if shut_write:
            client.shutdown(socket.SHUT_WR)
        self.worker.now = time.monotonic()
        self.worker._accept(next(iter(self.worker.listeners.values())))
        self.finish_pool()
        return client

    def finish_pool(self) -> None:
        """Wait for pool threads to answer and let the loop take over (``run`` does it on the wake-up pipe)."""
        worker = self.worker
        deadline = time.monotonic() + 5
        while any(conn.state == BUSY for conn in worker.conns.values()):
            assert time.monotonic() < deadline, "a pool thread never answered"
            if worker.done:
                worker._on_wake()
            else:
                time.sleep(0.002)

    def conn(self) -> Connection:
        (conn,) = self.worker.conns.values()
        return conn

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for conn in list(self.worker.conns.values()):
            conn.transport.close()
        if self.worker.pool is not None:
            self.worker.pool.shutdown(wait=True)
        self.worker.ep.close()
        self.listener.close()


@pytest.fixture(params=list(MODES), ids=list(MODES))
def harness(request):
    made: list[Harness] = []

    def make(app=hello, **kwargs) -> Harness:
        made.append(Harness(MODES[request.param], app, **kwargs))
        return made[-1]

    yield make
    for each in made:
        each.close()


@pytest.fixture
def heads(monkeypatch):
    """The status line of every response head ``Response`` builds (the WSGI adapter's and the server's own)."""
    seen: list[bytes] = []
    build = Response._head

    def spy(self, body_length: int) -> bytes:
        head = build(self, body_length)
        seen.append(head.split(b"\r\n", 1)[0])
        return head

    monkeypatch.setattr(Response, "_head", spy)
    return seen


def get(path: str = "/", extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


# -- one decision after a response, in both modes ----------------------------------------
@pytest.mark.parametrize("shut_write", [False, True], ids=["open", "peer-half-closed"])
def test_a_clients_last_request_is_closed_at_once(harness, shut_write):
    """``Connection: close``, read to the end: no half-close, no wait for the peer's FIN, pooled or
    not (the pool's old copy of this decision skipped peer_done and lingered), also when the peer
    has already shut down its side."""
    h = harness()
    client = h.request(get("/last", "Connection: close\r\n"), shut_write=shut_write)
    assert not h.worker.conns and h.worker.census.lingering == 0, "closed at once, not lingering"
    status, headers, body, rest = parse_response(read_until_close(client))
    assert (status, body, rest, headers["connection"]) == (200, b"hello /last", b"", "close")


def test_keep_alive_and_pipelined_requests_are_answered_in_order(harness):
    h = harness()
    client = h.request(get("/1") + get("/2") + get("/3"))
    conn = h.conn()
    assert conn.idle and conn.state == HEAD, "all three answered, the connection waits for the next"
    data = b""
    while data.count(b"HTTP/1.1 200") < 3:
        data += client.recv(65536)
    bodies = []
    while data:
        _, _, body, data = parse_response(data)
        bodies.append(body)
    assert bodies == [b"hello /1", b"hello /2", b"hello /3"]


def test_bytes_after_a_last_request_make_the_connection_linger(harness):
    """The client may still be sending (a pipelined request after its last): half-close and wait,
    so the response is not destroyed by a reset; the FIN then closes it."""
    h = harness()
    client = h.request(get("/last", "Connection: close\r\n") + b"GET /more")
    conn = h.conn()
    assert conn.state == CLOSING and h.worker.census.lingering == 1
    assert parse_response(read_until_close(client))[2] == b"hello /last"
    client.close()
    h.worker._on_readable(conn)  # epoll reports the FIN
    assert not h.worker.conns and h.worker.census.lingering == 0 and conn.state == CLOSED


def test_an_app_that_closes_leaves_the_connection_lingering(harness):
    """A response that ends the connection on the server's side (the app said ``Connection: close``)
    while the client asked for keep-alive: the client may send again at any time, so it lingers."""

    def closing_app(environ, start_response):
        start_response("200 OK", [("Connection", "close")])
        return [b"bye"]

    h = harness(closing_app)
    client = h.request(get())
    assert h.conn().state == CLOSING and h.worker.census.lingering == 1
    assert parse_response(read_until_close(client))[1]["connection"] == "close"


def test_max_requests_ends_the_connection_that_reaches_it(harness):
    """The request is counted once its response is out (as keep-alive): the connection then ends,
    lingering, since the client may already be sending its next request."""
    h = harness(max_requests=1)
    client = h.request(get())
    assert not h.worker.alive, "the worker retires"
    assert h.conn().state == CLOSING and h.worker.requests == 1
    status, headers, body, rest = parse_response(read_until_close(client))
    assert (status, body, rest) == (200, b"hello /", b"") and "connection" not in headers


def test_the_idle_clock_starts_when_the_response_is_out(harness):
    """--keep-alive counts from the end of the response.  Inline, it used to count from the request's
    arrival, so an application slower than the keep-alive timeout had its connection closed on the
    next tick, while the client was about to reuse it."""

    def slow(environ, start_response):
        time.sleep(0.3)
        return hello(environ, start_response)

    h = harness(slow, keep_alive=0.2)
    client = h.request(get())
    h.worker._tick(time.monotonic())
    assert h.conn().idle, "0.3 s in the application is not 0.3 s of idling"
    h.worker._tick(time.monotonic() + 0.25)
    assert not h.worker.conns, "idle for longer than --keep-alive: closed"
    assert parse_response(read_until_close(client))[2] == b"hello /"


# -- every response goes through Response -----------------------------------------------
def test_a_refused_request_is_answered_through_response(harness, heads, tmp_path):
    log_path = tmp_path / "access.log"
    h = harness(access_log=AccessLog(str(log_path)))
    client = h.request(b"GET / HTTP/1.1\r\n\r\n")  # no Host
    assert heads == [b"HTTP/1.1 400 Bad Request"]
    assert h.conn().state == CLOSING, "the rest of a refused request may still be coming: linger"
    status, headers, body, _ = parse_response(read_until_close(client))
    assert status == 400 and body == b"400 Bad Request: missing Host field\n"
    assert headers["connection"] == "close" and headers["server"] == "headrace" and "date" in headers
    assert headers["content-length"] == str(len(body))
    h.worker.access_log.flush()
    assert log_path.read_text().endswith(f' "-" 400 {len(body)} "-" "-"\n')


def test_a_bad_pipelined_request_is_refused_after_the_good_one(harness, heads):
    h = harness()
    client = h.request(get("/ok") + b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n")
    assert heads == [b"HTTP/1.1 200 OK", b"HTTP/1.1 400 Bad Request"]
    assert h.conn().state == CLOSING
    first, _, body, rest = parse_response(read_until_close(client))
    assert (first, body, parse_response(rest)[0]) == (200, b"hello /ok", 400)


def test_a_late_request_gets_its_408_through_response(harness, heads):
    h = harness()
    client = h.request(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhalf")
    assert not heads and h.conn().state != HEAD
    h.worker._tick(time.monotonic() + 31)  # --timeout 30
    assert heads == [b"HTTP/1.1 408 Request Timeout"] and h.conn().state == CLOSING
    assert parse_response(read_until_close(client))[0] == 408


def test_an_application_error_is_a_500_through_response(harness, heads):
    def broken(environ, start_response):
        raise RuntimeError("boom")

    h = harness(broken)
    client = h.request(get())
    assert heads == [b"HTTP/1.1 500 Internal Server Error"]
    status, headers, _, _ = parse_response(read_until_close(client))
    assert status == 500 and headers["content-length"] == "0" and headers["connection"] == "close"


# -- the decision itself (protocol level) ------------------------------------------------
@pytest.fixture
def pair():
    server, client = socket.socketpair()
    server.setblocking(False)
    census = Census()
    yield Connection(Transport(server, ("", ""), ("localhost", "80"), False, 2.0), Limits(), 0.0,
                     census=census), client
    server.close()
    client.close()


def test_a_keep_alive_response_when_the_server_began_stopping_meanwhile(pair):
    """Only a pool thread's response can have gone out as keep-alive while the server began stopping:
    nothing more buffered, it is closed like an idle connection at shutdown; a pipelined request
    buffered behind it is not served, and the connection lingers so it cannot reset the response."""
    conn, _ = pair
    head, body = conn.receive(get(), 1.0)
    conn.stop_keep_alive()
    assert conn.answered(head, body, KEEP, 2.0) is None and conn.state == CLOSED

    server, client = socket.socketpair()
    with server, client:
        other = Connection(Transport(server, ("", ""), ("localhost", "80"), False, 2.0), Limits(), 0.0)
        head, body = other.receive(get() + get("/next"), 1.0)
        other.stop_keep_alive()
        assert other.answered(head, body, KEEP, 2.0) is None and other.state == CLOSING


def test_the_lingering_count_follows_the_state(pair):
    conn, _ = pair
    assert conn.census.lingering == 0
    assert conn.linger(1.0) and conn.state == CLOSING and conn.census.lingering == 1
    conn.close()
    assert conn.state == CLOSED and conn.census.lingering == 0
    server, client = socket.socketpair()
    with client:
        other = Connection(Transport(server, ("", ""), ("localhost", "80"), False, 2.0), Limits(), 0.0,
                           census=conn.census)
        other.close()  # from HEAD: it never lingered
    assert conn.census.lingering == 0


def test_only_linger_enters_closing_and_only_close_leaves_it():
    """The lingering count is kept by Connection.linger and Connection.close; it is exact only as
    long as the state table has no other way into or out of CLOSING."""
    into = {event for (_state, event), target in TRANSITIONS.items() if target == CLOSING}
    out_of = {event for (state, event) in TRANSITIONS if state == CLOSING}
    assert into == {LINGER} and out_of == {CLOSE}


def test_each_state_runs_against_its_own_timeout(pair):
    conn, client = pair
    conn.since = 0.0
    assert conn.expire(4.9, stopping=False) is None and conn.idle, "keep-alive 5 s"
    assert conn.expire(0.25, stopping=True) is None and conn.idle, "0.3 s while stopping"
    client.sendall(get())
    request = conn.expire(0.5, stopping=True)  # idle past the stopping grace, but a request arrived
    assert request is not None and conn.state == BUSY and not conn.hung(100.0), "--timeout 0: no hang limit"
    conn.answered(*request, KEEP, 1.0)
    conn.receive(b"GET / HT", 2.0)
    assert conn.expire(31.9, stopping=False) is None
    refusal, _ = conn.expire(32.1, stopping=False)
    assert refusal.error.status == 408
