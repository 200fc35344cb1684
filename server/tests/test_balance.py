"""In-process tests of how workers share new connections (no server processes).

Two :class:`~headrace.worker.Worker` objects in this process share one listening socket and
one :class:`~headrace.scoreboard.Scoreboard`, as two forked workers do; the tests call their
accept step directly, so the decisions are checked without any timing.

The invariant that matters: whatever the counts, some worker always takes a waiting
connection.  Before, a worker that deferred to a less loaded sibling kept publishing its
count, so the sibling (whose count had grown meanwhile) deferred back and both sat out the
accept race for the whole pause; under a stream of new connections that happened hundreds
of times a second (1 000 req/s where 12 000 were possible).
"""

from __future__ import annotations

import io
import select
import socket

import pytest

from headrace.http_parser import Limits
from headrace.scoreboard import IDLE_COUNT, Scoreboard
from headrace.worker import Listener, Worker


class NullAdapter:
    """Answers every request with a fixed response; the tests here never send one."""

    def serve(self, conn, head, body) -> bool:
        conn.transport.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
        return True


@pytest.fixture
def pair():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.setblocking(False)
    board = Scoreboard()
    workers = []
    for slot in (0, 1):
        board.reset(slot)
        worker = Worker(adapter=NullAdapter(), listeners=[Listener(listener, "127.0.0.1", "80")], limits=Limits(),
                        keep_alive=5, timeout=30, threads=1, max_requests=0, trust=lambda _addr: False,
                        access_log=None, scoreboard=board, slot=slot, worker_connections=1000)
        for fd in worker.listeners:  # what run() does first
            worker.ep.register(fd, select.EPOLLIN)
        workers.append(worker)
    clients: list[socket.socket] = []

    def connect(count: int) -> None:
        for _ in range(count):
            clients.append(socket.create_connection(listener.getsockname()))

    yield workers[0], workers[1], board, connect
    for client in clients:
        client.close()
    for worker in workers:
        for conn in list(worker.conns.values()):
            if hasattr(conn, "transport"):
                conn.transport.close()
        worker.ep.close()
    listener.close()


def hold(worker: Worker, count: int) -> None:
    """Pretend ``worker`` holds ``count`` open connections (placeholders, never read)."""
    for index in range(count):
        worker.conns[10_000 + index] = io.BytesIO()  # type: ignore[assignment]
    worker._publish()


def accept(worker: Worker) -> int:
    before = sum(1 for c in worker.conns.values() if hasattr(c, "transport"))
    worker._accept(next(iter(worker.listeners.values())))
    return sum(1 for c in worker.conns.values() if hasattr(c, "transport")) - before


def test_the_busier_worker_defers_and_the_other_takes_the_connections(pair):
    a, b, board, connect = pair
    hold(a, 5)
    connect(3)
    assert accept(a) == 0, "a worker with more connections than a sibling + 1 defers"
    assert not a.accepting and a.resume_accept
    assert board.least_loaded_sibling(1, a.now) == IDLE_COUNT, "a paused worker is no deferral target"
    assert accept(b) == 3


def test_a_worker_never_defers_to_a_sibling_that_is_itself_paused(pair):
    """The bug: both workers deferring to each other, nobody accepting."""
    a, b, _board, connect = pair
    hold(a, 5)
    hold(b, 2)
    connect(1)
    assert accept(a) == 0  # a defers to b (5 > 2 + 1) and pauses
    hold(b, 20)  # b's load grows past a's meanwhile (in the old code a still published 5)
    connect(2)
    assert accept(b) == 3, "b must take every waiting connection while a is paused"


def test_after_a_pause_the_worker_takes_one_waiting_connection_whatever_the_counts(pair):
    """A sibling that stays less loaded because it is stuck in the application must not keep a
    connection waiting: each pause ends with one accept."""
    a, _b, board, connect = pair
    hold(a, 5)  # b holds none but never accepts (it is busy in the app: we never call it)
    connect(3)
    assert accept(a) == 0
    a._end_pause()
    assert a.accepting and board.least_loaded_sibling(1, a.now) == 5
    assert accept(a) == 1, "one forced accept, then a defers again"
    assert not a.accepting


def test_lingering_connections_do_not_count_as_load(pair):
    a, b, board, connect = pair
    hold(a, 6)
    a.lingering = 5  # answered, waiting for the peer's FIN: no more work
    a._publish()
    assert board.least_loaded_sibling(1, a.now) == 1
    hold(b, 2)
    connect(2)
    assert accept(a) == 2, "a holds 1 live connection against b's 2: it accepts"


def test_a_burst_is_accepted_in_one_wake_up(pair):
    a, _b, _board, connect = pair
    connect(10)
    a.scoreboard.publish(1, IDLE_COUNT)  # no sibling accepts
    assert accept(a) == 10
