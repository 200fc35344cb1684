"""A worker process: one epoll loop that accepts, reads and parses without blocking.

The application is called inline (``--threads 1``, the fast default) only once a complete
request head and body are buffered, so idle keep-alive connections and slowly-sending
clients cost nothing but a file descriptor.  With ``--threads N`` the application runs in
a thread pool instead, for applications that block.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import select
import signal
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from headrace.access_log import AccessLog
from headrace.http_parser import ChunkedDecoder, HTTPError, Limits, RequestHead, find_head_end, parse_head
from headrace.scoreboard import IDLE_COUNT, Scoreboard
from headrace.wsgi import ClientGone, EnvironFactory, Response, StreamingInput, _Clock, run_app

log = logging.getLogger("headrace.worker")

HEAD, BODY, BUSY, CLOSING = range(4)
_EPOLLIN = select.EPOLLIN
# Not EPOLLEXCLUSIVE: a worker that declines a connection to balance load relies on its
# siblings having been woken for it too.
_LISTEN_EVENTS = select.EPOLLIN
_BALANCE_SLACK = 1  # accept while holding at most this many more connections than a sibling
_BALANCE_PAUSE = 0.005
_SPOOL_LIMIT = 1 << 20
_LINGER_SECONDS = 2.0
_TICK = 0.5
_SHUTDOWN_IDLE = 0.3  # while stopping, idle connections get this long for a request in flight


class Listener:
    """A listening socket with what the environ needs to know about it."""

    def __init__(self, sock: socket.socket, factory: EnvironFactory) -> None:
        self.sock = sock
        self.factory = factory
        self.is_unix = sock.family == socket.AF_UNIX


class Connection:
    """One client connection and its parsing state."""

    __slots__ = (
        "body_sink",
        "buf",
        "closing",
        "decoder",
        "factory",
        "fd",
        "head",
        "io_timeout",
        "last_active",
        "remaining",
        "remote_addr",
        "remote_port",
        "sock",
        "started",
        "state",
        "trusted",
    )

    def __init__(self, sock: socket.socket, factory: EnvironFactory, remote: tuple[str, str],
                 trusted: bool, io_timeout: float, now: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.buf = bytearray()
        self.factory = factory
        self.remote_addr, self.remote_port = remote
        self.trusted = trusted
        self.io_timeout = io_timeout
        self.state = HEAD
        self.last_active = now
        self.started = 0.0
        self.closing = False
        self.head: RequestHead | None = None
        self.decoder: ChunkedDecoder | None = None
        self.body_sink: Any = None
        self.remaining = 0

    def _wait(self, event: int, deadline: float) -> None:
        poller = select.poll()
        poller.register(self.fd, event)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ClientGone("socket timed out")
            if poller.poll(left * 1000):
                return

    def sendall(self, data: bytes) -> None:
        """Send everything, waiting (bounded by the I/O timeout) when the peer is slow."""
        sock = self.sock
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise ClientGone(str(exc)) from exc
        if sent == len(data):
            return
        view = memoryview(data)[sent:]
        deadline = time.monotonic() + self.io_timeout
        while view:
            self._wait(select.POLLOUT, deadline)
            try:
                sent = sock.send(view)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise ClientGone(str(exc)) from exc
            view = view[sent:]

    def sendfile(self, fd: int, offset: int, count: int) -> None:
        deadline = time.monotonic() + self.io_timeout
        while count > 0:
            try:
                sent = os.sendfile(self.fd, fd, offset, count)
            except BlockingIOError:
                self._wait(select.POLLOUT, deadline)
                continue
            except OSError as exc:
                raise ClientGone(str(exc)) from exc
            if sent == 0:
                raise ClientGone("file shrank during sendfile")
            offset += sent
            count -= sent
            deadline = time.monotonic() + self.io_timeout

    def recv_more(self) -> None:
        """Block (bounded) until more bytes arrive; used by streaming request bodies."""
        deadline = time.monotonic() + self.io_timeout
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                self._wait(select.POLLIN, deadline)
                continue
            except OSError as exc:
                raise ClientGone(str(exc)) from exc
            if not data:
                raise ClientGone("client closed the connection mid-body")
            self.buf += data
            return


def _remote(addr: Any, is_unix: bool) -> tuple[str, str]:
    if is_unix or not addr:
        return "", ""
    return addr[0], str(addr[1])


class Worker:
    """The event loop of one worker process."""

    def __init__(self, *, app: Callable, listeners: list[Listener], limits: Limits, keep_alive: float,
                 timeout: float, threads: int, max_requests: int, trust: Callable[[str], bool],
                 access_log: AccessLog | None, scoreboard: Scoreboard, slot: int,
                 worker_connections: int) -> None:
        self.app = app
        self.listeners = {ls.sock.fileno(): ls for ls in listeners}
        self.limits = limits
        self.keep_alive = keep_alive
        self.timeout = timeout
        self.io_timeout = timeout if timeout > 0 else 30.0
        self.request_timeout = timeout if timeout > 0 else 30.0
        self.max_requests = max_requests
        self.trust = trust
        self.access_log = access_log
        self.scoreboard = scoreboard
        self.slot = slot
        self.balance = True
        self.resume_accept = 0.0
        self.worker_connections = worker_connections
        self.conns: dict[int, Connection] = {}
        self.alive = True
        self.accepting = True
        self.requests = 0
        self.reopen_logs = False
        self.ep = select.epoll()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="headrace") if threads > 1 else None
        self.done: list[tuple[Connection, bool]] = []
        self.done_lock = threading.Lock()
        self.inflight = 0
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
            events = poll(_TICK if not self.resume_accept else _BALANCE_PAUSE)
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
                self.resume_accept = 0.0
                if self.alive:
                    self._set_accepting(True)
            if now >= next_tick:
                next_tick = now + _TICK
                self._tick(now)
            if self.access_log is not None:
                self.access_log.flush()
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        return 0

    def _tick(self, now: float) -> None:
        """Heartbeat for the master and expiry of idle, slow and lingering connections."""
        hung = False
        for conn in list(self.conns.values()):
            state = conn.state
            if state == BUSY:
                if self.timeout > 0 and now - conn.started > self.timeout:
                    hung = True
            elif state == CLOSING:
                if now - conn.last_active > _LINGER_SECONDS:
                    self._close(conn)
            elif state == HEAD and not conn.buf:
                idle = now - conn.last_active
                if idle > self.keep_alive or (not self.alive and idle > _SHUTDOWN_IDLE):
                    self._close_idle(conn)
            elif now - conn.started > self.request_timeout:
                self._send_error(conn, HTTPError(408, "request not completed in time"))
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
            conn.closing = True

    def _close_idle(self, conn: Connection) -> None:
        """Close an idle connection unless a request has just arrived on it."""
        try:
            pending = conn.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            self._close(conn)
            return
        except OSError:
            pending = b""
        if pending:
            self._on_readable(conn)
        else:
            self._close(conn)

    def _set_accepting(self, on: bool) -> None:
        if on == self.accepting:
            return
        self.accepting = on
        for fd in self.listeners:
            if on:
                self.ep.register(fd, _LISTEN_EVENTS)
            else:
                self.ep.unregister(fd)

    def _accept(self, listener: Listener) -> None:
        if self.balance:
            now = time.monotonic()
            if len(self.conns) > self.scoreboard.least_loaded_sibling(self.slot, now) + _BALANCE_SLACK:
                # A less busy sibling was woken for this connection too: let it take it.
                self._set_accepting(False)
                self.resume_accept = now + _BALANCE_PAUSE
                return
        try:
            sock, addr = listener.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                log.warning("cannot accept: %s", exc)
                self._set_accepting(False)
                return
            raise
        sock.setblocking(False)
        if not listener.is_unix:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        remote = _remote(addr, listener.is_unix)
        trusted = self.trust("unix" if listener.is_unix else remote[0])
        conn = Connection(sock, listener.factory, remote, trusted, self.io_timeout, time.monotonic())
        self.conns[conn.fd] = conn
        self.scoreboard.publish(self.slot, len(self.conns))
        self.ep.register(conn.fd, _EPOLLIN)
        if len(self.conns) >= self.worker_connections:
            self._set_accepting(False)

    def _close(self, conn: Connection) -> None:
        if self.conns.pop(conn.fd, None) is None:
            return
        if self.alive:
            self.scoreboard.publish(self.slot, len(self.conns))
        try:
            self.ep.unregister(conn.fd)
        except (OSError, ValueError):
            pass
        conn.sock.close()

    def _linger_close(self, conn: Connection) -> None:
        """Half-close and drain, so a response is not destroyed by a TCP reset."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.state = CLOSING
        conn.buf.clear()
        conn.last_active = time.monotonic()

    def _send_error(self, conn: Connection, err: HTTPError) -> None:
        log.info("%s %s from %s: %s", err.status, err.reason, conn.remote_addr or "unix socket", err.detail)
        body = f"{err.status} {err.reason}: {err.detail}\n".encode()
        head = (
            f"HTTP/1.1 {err.status} {err.reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n{_Clock.date_server()}\r\n"
        ).encode("latin-1")
        if self.access_log is not None:
            self.access_log.log_rejected(conn.remote_addr, err.status, len(body))
        try:
            conn.sendall(head + body)
        except ClientGone:
            self._close(conn)
            return
        self._linger_close(conn)

    def _on_readable(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        state = conn.state
        if state == CLOSING:
            return
        conn.last_active = now = self.now
        buf = conn.buf
        if state == HEAD and not buf:
            conn.started = now
            # Fast path: the read is exactly one request head with no body (most requests);
            # parse it straight from the received bytes, no buffer copies.
            if data[-4:] == b"\r\n\r\n" and data.find(b"\r\n\r\n") == len(data) - 4 and data[0] != 13:
                try:
                    head = parse_head(data, self.limits)
                except HTTPError as err:
                    self._send_error(conn, err)
                    return
                if head.content_length == 0:
                    if self.pool is not None:
                        self._dispatch(conn, head, io.BytesIO())
                    elif not self._handle(conn, head, io.BytesIO()) and conn.fd in self.conns:
                        self._linger_close(conn)
                    return
                buf += data
                self._process(conn, head)
                return
        buf += data
        self._process(conn)

    def _process(self, conn: Connection, parsed: RequestHead | None = None) -> None:
        """Parse and serve every complete request in the buffer (pipelining, in order).

        ``parsed`` is the already parsed head at the start of the buffer, if any.
        """
        buf = conn.buf
        limits = self.limits
        try:
            while True:
                if conn.state == HEAD:
                    if not buf:
                        return
                    if buf[0] == 13 and buf.startswith(b"\r\n"):  # RFC 9112 2.2: skip empty lines
                        del buf[:2]
                        continue
                    end = find_head_end(buf, limits)
                    if end < 0:
                        return
                    if parsed is None:
                        head = parse_head(bytes(buf[:end]), limits)
                    else:
                        head, parsed = parsed, None
                    del buf[:end]
                    length = head.content_length
                    if head.expect_continue:
                        body: Any = None
                    elif length == 0:
                        body = io.BytesIO()
                    elif 0 < length <= len(buf):
                        body = io.BytesIO(bytes(buf[:length]))
                        del buf[:length]
                    else:
                        conn.head = head
                        conn.state = BODY
                        conn.remaining = length
                        conn.decoder = ChunkedDecoder(limits) if head.chunked else None
                        conn.body_sink = tempfile.SpooledTemporaryFile(_SPOOL_LIMIT)  # noqa: SIM115
                        continue
                    if not self._dispatch(conn, head, body):
                        return
                    if buf:
                        conn.started = time.monotonic()
                else:  # BODY
                    if not buf:
                        return
                    sink = conn.body_sink
                    if conn.decoder is not None:
                        sink.write(conn.decoder.decode(buf))
                        if not conn.decoder.done:
                            return
                    else:
                        take = min(conn.remaining, len(buf))
                        sink.write(buf[:take])
                        del buf[:take]
                        conn.remaining -= take
                        if conn.remaining:
                            return
                    sink.seek(0)
                    head = conn.head
                    conn.head = conn.decoder = conn.body_sink = None
                    conn.state = HEAD
                    if not self._dispatch(conn, head, sink):
                        return
                    if buf:
                        conn.started = time.monotonic()
        except HTTPError as err:
            self._send_error(conn, err)

    def _dispatch(self, conn: Connection, head: RequestHead, body: Any) -> bool:
        """Serve one request; True when the connection may go on to the next request."""
        if self.pool is not None:
            conn.state = BUSY
            conn.started = time.monotonic()
            self.ep.unregister(conn.fd)
            self.inflight += 1
            self.pool.submit(self._run_in_thread, conn, head, body)
            return False
        if self._handle(conn, head, body):
            return True
        if conn.fd in self.conns:
            self._linger_close(conn)
        return False

    def _run_in_thread(self, conn: Connection, head: RequestHead, body: Any) -> None:
        keep = False
        try:
            keep = self._handle(conn, head, body)
        except BaseException:
            log.exception("unexpected error serving a request")
        with self.done_lock:
            self.done.append((conn, keep))
        try:
            os.write(self.wake_w, b"\0")
        except BlockingIOError:
            pass

    def _on_wake(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        if not self.done:
            return
        with self.done_lock:
            done, self.done = self.done, []
        for conn, keep in done:
            self.inflight -= 1
            conn.state = HEAD
            conn.last_active = time.monotonic()
            self.ep.register(conn.fd, _EPOLLIN)
            if keep and not conn.closing:
                if conn.buf:
                    conn.started = conn.last_active
                    self._process(conn)
            elif keep and conn.closing and not conn.buf:
                self._close(conn)
            else:
                self._linger_close(conn)

    def _handle(self, conn: Connection, head: RequestHead, body: Any) -> bool:
        response = Response(conn, head, head.keep_alive and not conn.closing)
        streaming = None
        if body is None:
            decoder = ChunkedDecoder(self.limits) if head.chunked else None
            body = streaming = response.streaming = StreamingInput(conn, head, response, decoder)
        environ = conn.factory.build(head, conn, body)
        try:
            run_app(self.app, environ, response)
        except ClientGone:
            return False
        except Exception as exc:
            if isinstance(exc, HTTPError):
                err = exc
            else:
                log.exception("error in application handling %s %s", head.method, head.target)
                err = HTTPError(500, "the application raised an exception")
            if not response.headers_sent:
                response.status = f"{err.status} {err.reason}"
                try:
                    conn.sendall(
                        f"HTTP/1.1 {err.status} {err.reason}\r\nContent-Length: 0\r\n"
                        f"Connection: close\r\n{_Clock.date_server()}\r\n".encode("latin-1")
                    )
                except ClientGone:
                    pass
            response.keep_alive = False
        if streaming is not None and not streaming.complete:
            response.keep_alive = False
        if self.access_log is not None:
            self.access_log.log(environ, response.status or "500", response.body_sent)
        self.requests += 1
        if self.max_requests and self.requests >= self.max_requests and self.alive:
            log.info("served %d requests; restarting", self.requests)
            self.alive = False
            response.keep_alive = False
        return response.keep_alive


def make_trust(spec: str) -> Callable[[str], bool]:
    """Build the ``--forwarded-allow-ips`` check: addresses, networks, ``unix`` or ``*``."""
    import ipaddress

    items = [item.strip() for item in spec.split(",") if item.strip()]
    if "*" in items:
        return lambda addr: True
    allow_unix = "unix" in items
    networks = [ipaddress.ip_network(item, strict=False) for item in items if item != "unix"]
    cache: dict[str, bool] = {}

    def trusted(addr: str) -> bool:
        result = cache.get(addr)
        if result is None:
            if addr == "unix":
                result = allow_unix
            else:
                try:
                    ip = ipaddress.ip_address(addr.split("%", 1)[0])
                except ValueError:
                    result = False
                else:
                    if ip.version == 6 and ip.ipv4_mapped is not None:
                        ip = ip.ipv4_mapped
                    result = any(ip in net for net in networks)
            if len(cache) < 4096:
                cache[addr] = result
        return result

    return trusted


def worker_main(config: Any, sockets: list[socket.socket], slot: int, scoreboard: Scoreboard,
                ready_fd: int) -> int:
    """Entry point of a forked worker: load the app, report ready, run the loop."""
    import random
    import sys

    from headrace.app_loader import load_app
    from headrace.sockets import describe

    scoreboard.beat(slot)
    try:
        app = load_app(config.app, config.callable)
    except BaseException:
        log.exception("worker %d failed to load the application %s", os.getpid(), config.app)
        return 3
    listeners = []
    for sock in sockets:
        sock.setblocking(False)
        _, server_name, server_port = describe(sock)
        factory = EnvironFactory(root_path=config.root_path, multithread=config.threads > 1,
                                 multiprocess=config.workers > 1, server_name=server_name,
                                 server_port=server_port)
        listeners.append(Listener(sock, factory))
    max_requests = config.max_requests
    if max_requests and config.max_requests_jitter:
        max_requests += random.randint(0, config.max_requests_jitter)
    worker = Worker(
        app=app,
        listeners=listeners,
        limits=Limits(config.limit_request_line, config.limit_request_fields,
                      config.limit_request_field_size, config.limit_request_body),
        keep_alive=config.keep_alive,
        timeout=config.timeout,
        threads=config.threads,
        max_requests=max_requests,
        trust=make_trust(config.forwarded_allow_ips),
        access_log=AccessLog(config.access_log) if config.access_log else None,
        scoreboard=scoreboard,
        slot=slot,
        worker_connections=config.worker_connections,
    )
    worker.install_signals()
    os.write(ready_fd, struct.pack("=I", os.getpid()))
    os.close(ready_fd)
    code = worker.run()
    sys.stdout.flush()
    return code
