"""The event loop of a worker process: one epoll loop that accepts, reads and dispatches.

Requests flow one way: when epoll says a client socket is readable the loop asks the
connection (:mod:`headrace.protocol`) to read it through its transport
(:mod:`headrace.transport`); each complete request goes to the WSGI adapter
(:mod:`headrace.wsgi`), which calls the application and writes the response back through the
protocol's framing to the transport.  A request the parser refused is answered here, through
the same framing, without the application.

The connection owns its lifecycle: its state, its timeouts, and what follows each response
(:meth:`~headrace.protocol.Connection.answered`).  The loop owns what spans connections:
accepting and balancing, the epoll set, the thread pool, the request count and the
heartbeat; it follows each connection's state to know when to forget it.

The application is called inline (``--threads 1``, the fast default) only once a complete
request head and body are buffered, so idle keep-alive connections and slowly-sending
clients cost nothing but a file descriptor.  With ``--threads N`` the application runs in
a thread pool instead, for applications that block; the answer then takes the same path
after the response as an inline one (:meth:`Worker._after`), on the loop's thread.
"""

from __future__ import annotations

import _socket
import errno
import logging
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from headrace.access_log import AccessLog
from headrace.http_parser import Limits, RequestHead
from headrace.protocol import (
    CLOSED,
    CLOSING,
    END,
    GONE,
    KEEP,
    Census,
    Connection,
    Refusal,
    Request,
    Response,
    Timeouts,
)
from headrace.scoreboard import IDLE_COUNT, Scoreboard
from headrace.transport import ClientGone, Transport
from headrace.wsgi import Adapter

log = logging.getLogger("headrace.worker")

_EPOLLIN = select.EPOLLIN
# Not EPOLLEXCLUSIVE: a worker that declines a connection to balance load relies on its
# siblings having been woken for it too (with EPOLLEXCLUSIVE a burst that is already queued
# wakes nobody else, and the decliner ends up taking it all).  The cost, waking every idle
# worker for each connection, is small: under load the workers are rarely all idle, and 5%
# of accepts found nothing in a close-per-request run (strace).
_LISTEN_EVENTS = select.EPOLLIN
_BALANCE_SLACK = 1  # accept while holding at most this many more connections than a sibling
# How long a worker that deferred to a less busy sibling stays out of the accept race: the
# shortest epoll timeout.  The pause ends with one forced accept, so a connection never
# waits more than one pause for a sibling that is busy (in the application, say).
_BALANCE_PAUSE = 0.001
# Connections accepted per wake-up of a listening socket: a burst of new connections is taken
# in one go instead of one epoll round trip each; small enough that the connections already
# open are not starved while a burst lasts.
_ACCEPT_BATCH = 16
_TICK = 0.5  # how often connection clocks are checked and the heartbeat written
_ENDED = frozenset((CLOSING, CLOSED))  # states after which the worker must book the connection


class Listener:
    """A listening socket with the addresses its connections report (SERVER_NAME/PORT)."""

    def __init__(self, sock: socket.socket, server_name: str, server_port: str) -> None:
        self.sock = sock
        self.local = (server_name, server_port)
        self.family = int(sock.family)
        self.is_unix = sock.family == socket.AF_UNIX
        if not self.is_unix:
            # Accepted sockets inherit TCP_NODELAY from the listener on Linux: one
            # setsockopt per worker instead of one per connection.  Nagle would hold a
            # response written in two sends until the client's delayed ACK (40 ms).
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass


def _remote(addr: Any, is_unix: bool) -> tuple[str, str]:
    if is_unix or not addr:
        return "", ""
    return addr[0], str(addr[1])


class Worker:
    """The event loop of one worker process."""

    def __init__(self, *, adapter: Adapter, listeners: list[Listener], limits: Limits, keep_alive: float,
                 timeout: float, threads: int, max_requests: int, trust: Callable[[str], bool],
                 access_log: AccessLog | None, scoreboard: Scoreboard, slot: int,
                 worker_connections: int) -> None:
        self.serve = adapter.serve
        self.listeners = {ls.sock.fileno(): ls for ls in listeners}
        self.limits = limits
        self.io_timeout = timeout if timeout > 0 else 30.0
        self.timeouts = Timeouts(keep_alive=keep_alive, request=self.io_timeout, busy=timeout)
        self.census = Census()  # kept by the connections: how many linger, which is no load
        self.max_requests = max_requests
        self.trust = trust
        self.access_log = access_log
        self.scoreboard = scoreboard
        self.slot = slot
        self.resume_accept = 0.0  # when a balance pause ends (0: not paused)
        self.force_accept = False  # a pause has just ended: take the next waiting connection regardless
        self.load_changed = False  # the connection count changed since it was last published
        self.worker_connections = worker_connections
        self.conns: dict[int, Connection] = {}
        self.alive = True
        self.accepting = True
        self.requests = 0
        self.reopen_logs = False
        self.ep = select.epoll()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="headrace") if threads > 1 else None
        self.done: list[tuple[Connection, Request, int]] = []  # answered by pool threads
        self.done_lock = threading.Lock()
        self.now = time.monotonic()  # refreshed once per loop iteration

    # -- signals -----------------------------------------------------------------------
    def install_signals(self) -> None:
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGQUIT, self._on_quit)
        signal.signal(signal.SIGINT, self._on_quit)
        signal.signal(signal.SIGUSR1, self._on_usr1)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTTIN, signal.SIG_IGN)
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)

    def _on_term(self, signum: int, frame: Any) -> None:
        self.alive = False

    def _on_quit(self, signum: int, frame: Any) -> None:
        if self.access_log is not None:
            self.access_log.flush()
        os._exit(0)

    def _on_usr1(self, signum: int, frame: Any) -> None:
        self.reopen_logs = True

    # -- main loop ---------------------------------------------------------------------
    def run(self) -> int:
        ep = self.ep
        for fd in self.listeners:
            ep.register(fd, _LISTEN_EVENTS)
        ep.register(self.wake_r, _EPOLLIN)
        conns = self.conns
        listeners = self.listeners
        wake_r = self.wake_r
        shutting_down = False
        next_tick = 0.0
        poll = ep.poll
        while True:
            if not self.alive and not shutting_down:
                shutting_down = True
                self._begin_shutdown()
            if shutting_down and not conns:
                break
            events = poll(_BALANCE_PAUSE if self.resume_accept else _TICK)
            self.now = time.monotonic()
            for fd, _ in events:
                conn = conns.get(fd)
                if conn is not None:
                    self._on_readable(conn)
                elif fd in listeners:
                    self._accept(listeners[fd])
                elif fd == wake_r:
                    self._on_wake()
            now = time.monotonic()
            if self.resume_accept and now >= self.resume_accept:
                self._end_pause()
            if self.load_changed and self.alive:
                self._publish()
            if now >= next_tick:
                next_tick = now + _TICK
                self._tick(now)
            if self.access_log is not None:
                self.access_log.flush()
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        return 0

    def _tick(self, now: float) -> None:
        """Heartbeat for the master, and each connection's clock (idle, slow, lingering: see ``expire``).

        No heartbeat while the application has had a request too long: the master then
        replaces this worker (hang detection).
        """
        hung = False
        stopping = not self.alive
        for conn in list(self.conns.values()):
            if conn.hung(now):
                hung = True
                continue
            request = conn.expire(now, stopping)
            if request is not None:
                self._serve(conn, request)
            else:
                self._settle(conn)
        if not hung:
            self.scoreboard.beat(self.slot)
        if self.reopen_logs:
            self.reopen_logs = False
            if self.access_log is not None:
                self.access_log.reopen()
        if not self.accepting and self.alive and len(self.conns) < self.worker_connections:
            self._set_accepting(True)

    def _begin_shutdown(self) -> None:
        """Stop accepting; in-flight requests finish, idle connections are closed."""
        self._set_accepting(False)
        self.scoreboard.publish(self.slot, IDLE_COUNT)
        for listener in self.listeners.values():
            listener.sock.close()
        self.listeners.clear()  # in place: run() holds a reference
        for conn in self.conns.values():
            conn.stop_keep_alive()

    def _set_accepting(self, on: bool) -> None:
        if on == self.accepting:
            return
        self.accepting = on
        for fd in self.listeners:
            if on:
                self.ep.register(fd, _LISTEN_EVENTS)
            else:
                self.ep.unregister(fd)
        if self.alive:
            self._publish()

    def _end_pause(self) -> None:
        """A balance pause is over: back in the accept race, taking the next connection for sure."""
        self.resume_accept = 0.0
        if self.alive and len(self.conns) < self.worker_connections:
            self.force_accept = True
            self._set_accepting(True)

    def _publish(self) -> None:
        """Tell the siblings how busy this worker is, or that it does not accept right now.

        Lingering connections do not count: they only wait for the peer's FIN and cost no
        work, and counting them made a worker that had just closed a burst of them look busy.
        """
        # A paused worker publishes its real count: a sibling that balances against it while it
        # is paused is what spreads a burst of new connections evenly.  Should both end up
        # paused, the pause is 1 ms and ends with a forced accept.
        accepts = self.accepting or self.resume_accept
        load = len(self.conns) - self.census.lingering if accepts else IDLE_COUNT
        self.scoreboard.publish(self.slot, load)
        self.load_changed = False

    def _accept(self, listener: Listener) -> None:
        """Accept a batch of waiting connections, deferring to a less busy sibling when there is one."""
        lsock = listener.sock
        sibling = -1.0  # the least loaded sibling's count, read once per batch when needed
        for _ in range(_ACCEPT_BATCH):
            if self.force_accept:
                self.force_accept = False
            else:
                load = len(self.conns) - self.census.lingering
                if load > _BALANCE_SLACK:
                    if sibling < 0:
                        sibling = self.scoreboard.least_loaded_sibling(self.slot, self.now)
                    if load > sibling + _BALANCE_SLACK:
                        # A less busy sibling accepts, and was woken for this connection too:
                        # leave it to the sibling for one pause.
                        self.resume_accept = self.now + _BALANCE_PAUSE
                        self._set_accepting(False)
                        return
            try:
                # The raw accept and the C socket type: socket.socket's Python wrappers
                # (accept, __init__, the enum-valued family, close) were a tenth of the
                # worker's time on a new connection per request.
                fd, addr = lsock._accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("cannot accept: %s", exc)
                    self._set_accepting(False)
                    return
                raise
            conn = self._open(_socket.socket(listener.family, socket.SOCK_STREAM, 0, fd), addr, listener)
            # On TCP the kernel hands over a connection only once its request has arrived
            # (--defer-accept), and a unix-socket client usually writes right after
            # connecting: reading now saves an epoll round trip per connection (a read that
            # finds nothing costs one EAGAIN; epoll reports the request later).  Inline,
            # the socket joins the epoll set only if it is still open after that, so a
            # connection that is served and closed at once never costs an epoll_ctl.
            self._on_readable(conn)
            if self.pool is None and conn.state != CLOSED:
                self.ep.register(conn.transport.fd, _EPOLLIN)
            if not self.accepting:  # the connection limit was reached
                return

    def _open(self, sock: _socket.socket, addr: Any, listener: Listener) -> Connection:
        sock.setblocking(False)
        remote = _remote(addr, listener.is_unix)
        trusted = self.trust("unix" if listener.is_unix else remote[0])
        transport = Transport(sock, remote, listener.local, trusted, self.io_timeout)
        conn = Connection(transport, self.limits, self.now, self.timeouts, self.census)
        self.conns[transport.fd] = conn
        if self.pool is not None:  # the pool path unregisters while the app runs: register first
            self.ep.register(transport.fd, _EPOLLIN)
        if len(self.conns) >= self.worker_connections:
            self._set_accepting(False)
        else:
            self.load_changed = True  # published once per loop iteration, not per connection
        return conn

    def _close(self, conn: Connection) -> None:
        """Close a connection now, whatever its state, and forget it."""
        if conn.state != CLOSED:
            conn.close()
        self._settle(conn)

    def _settle(self, conn: Connection) -> None:
        """Follow a connection that may have closed or begun lingering: forget it once closed.

        Either changes this worker's load (lingering connections are no load); the figure is
        published once per loop iteration.
        """
        state = conn.state
        if state == CLOSED:
            fd = conn.transport.fd
            if self.conns.get(fd) is conn:
                del self.conns[fd]
                self.load_changed = True
            # No epoll unregister: closing the only descriptor of the socket removed it from
            # the epoll set, one system call less per connection.
        elif state == CLOSING:
            self.load_changed = True

    def _on_readable(self, conn: Connection) -> None:
        """epoll says ``conn`` has bytes (or its peer closed): the connection reads, the loop answers."""
        request = conn.read(self.now)
        if request is not None:
            self._serve(conn, request)
        elif conn.state == CLOSED:
            self._settle(conn)

    # -- answering requests: one path, inline or in the pool --------------------------------
    def _serve(self, conn: Connection, request: Request) -> None:
        """Answer ``request``, then every further complete one in the buffer (pipelining, in order).

        A refusal needs no application and is answered at once by the loop.  With a thread
        pool the application runs in a pool thread, and :meth:`_on_wake` continues here.
        Either way the answer ends in :meth:`_after`.
        """
        while request is not None:
            head, body = request
            if type(head) is Refusal:
                outcome = self._refuse(conn, head)
            elif self.pool is not None:
                self._dispatch(conn, request)
                return
            else:
                outcome = self._respond(conn, head, body)
            request = self._after(conn, head, body, outcome)

    def _respond(self, conn: Connection, head: RequestHead, body: Any) -> int:
        """The application answers one request, on the calling thread (the loop's or a pool thread's).

        Returns how the answer ended.  A response counts towards ``--max-requests``; one the
        client did not stay for does not (nor does a refusal, see :meth:`_refuse`).
        """
        try:
            keep = self.serve(conn, head, body)
        except ClientGone:
            return GONE
        self.requests += 1
        if self.max_requests:
            keep = self._count_towards_max(keep)
        return KEEP if keep else END

    def _refuse(self, conn: Connection, refusal: Refusal) -> int:
        """Answer a request the parser refused: its error, framed by a ``Response`` like any other."""
        err = refusal.error
        remote_addr = conn.transport.remote_addr
        log.info("%s %s from %s: %s", err.status, err.reason, remote_addr or "unix socket", err.detail)
        response = Response(conn, refusal, None)
        try:
            response.refuse(err)
        except ClientGone:
            return GONE
        finally:
            if self.access_log is not None:
                self.access_log.log_rejected(remote_addr, err.status, response.body_sent)
        return END

    def _after(self, conn: Connection, head: RequestHead | Refusal, body: Any, outcome: int) -> Request | None:
        """The one path after every response, inline or pooled: the connection decides, the loop follows.

        Returns the next request already buffered on the connection (pipelining), if any.
        """
        request = conn.answered(head, body, outcome, time.monotonic())
        if conn.state in _ENDED:
            self._settle(conn)
        return request

    def _dispatch(self, conn: Connection, request: Request) -> None:
        """Hand ``request`` to a pool thread; the socket leaves the epoll set until the answer is out."""
        self.ep.unregister(conn.transport.fd)
        self.pool.submit(self._run_in_thread, conn, request)

    def _run_in_thread(self, conn: Connection, request: Request) -> None:
        """A pool thread: answer, then hand the outcome to the loop (:meth:`_on_wake`) for what follows."""
        outcome = END
        try:
            outcome = self._respond(conn, *request)
        except BaseException:
            log.exception("unexpected error serving a request")
        with self.done_lock:
            self.done.append((conn, request, outcome))
        try:
            os.write(self.wake_w, b"\0")
        except BlockingIOError:
            pass

    def _on_wake(self) -> None:
        """A signal, or pool threads have answered: each answered connection takes the path after a response."""
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        if not self.done:
            return
        with self.done_lock:
            done, self.done = self.done, []
        for conn, (head, body), outcome in done:
            request = self._after(conn, head, body, outcome)
            if conn.state != CLOSED:  # back in the epoll set, before a pipelined request leaves it again
                self.ep.register(conn.transport.fd, _EPOLLIN)
            if request is not None:
                self._serve(conn, request)

    def _count_towards_max(self, keep: bool) -> bool:
        """After ``--max-requests`` the worker retires: this connection closes after its response."""
        if self.requests >= self.max_requests and self.alive:
            log.info("served %d requests; restarting", self.requests)
            self.alive = False
            return False
        return keep
