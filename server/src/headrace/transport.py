"""Transport: one accepted, non-blocking client socket and bounded blocking I/O on it.

It is the only thing that touches the socket: the connection reads from it when the event
loop's epoll says so (:meth:`Transport.recv`, which never waits), and the protocol and the
WSGI adapter send through it.  It knows nothing about HTTP.  Writes (and the reads of a body the
application streams) wait for a slow peer with ``poll``, bounded by the I/O timeout, so a
client that stops reading costs a timeout, never a stuck worker.
"""

from __future__ import annotations

import _socket
import os
import select
import socket
import time


class ClientGone(Exception):
    """The peer went away or stopped reading; the response cannot be completed."""


class Transport:
    """A connected socket, who is on the other end, and where the connection arrived."""

    __slots__ = ("fd", "io_timeout", "remote_addr", "remote_port", "server_name", "server_port", "sock",
                 "trusted")

    def __init__(self, sock: _socket.socket, remote: tuple[str, str], local: tuple[str, str], trusted: bool,
                 io_timeout: float) -> None:
        # The C socket type (socket.socket is a subclass, so tests may pass either): the worker
        # builds it straight from the accepted descriptor, skipping socket.socket's Python layer.
        self.sock = sock
        self.fd = sock.fileno()
        self.remote_addr, self.remote_port = remote
        self.server_name, self.server_port = local  # the listening socket's, for SERVER_NAME without Host
        self.trusted = trusted  # a proxy on --forwarded-allow-ips
        self.io_timeout = io_timeout

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

    def recv(self) -> bytes | None:
        """What has arrived, without waiting (the event loop calls it when epoll says so).

        None when nothing has yet; ``b""`` when nothing more will: the peer closed, or the
        socket failed (a reset), which the caller treats alike, by closing.
        """
        try:
            return self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""

    def recv_wait(self) -> bytes:
        """Block (bounded) until more bytes arrive; used by bodies the application streams."""
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
            return data

    def peek_pending(self) -> bool:
        """Whether bytes are waiting to be read (an idle connection about to be closed)."""
        try:
            return bool(self.sock.recv(1, socket.MSG_PEEK))
        except BlockingIOError:
            return False
        except OSError:
            return False

    def shutdown_write(self) -> bool:
        """Half-close; False when the socket is already dead."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()
