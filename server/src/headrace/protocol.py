"""HTTP/1.1 on one connection: request assembly, the connection's lifecycle, response framing.

Bytes come in through the connection's :class:`~headrace.transport.Transport`
(:meth:`Connection.read`, when the event loop says the socket is readable); complete
requests come out, in order, one at a time, so pipelined requests are answered in order.
A request that cannot be valid comes out too, as a :class:`Refusal`, and is answered like
any other: with a :class:`Response` (status line, Content-Length or chunked,
``Connection``, ``Date``/``Server``) written to the transport.  This module knows nothing of
WSGI: the adapter in :mod:`headrace.wsgi` builds on it, never the other way round.

A :class:`Connection` owns its whole lifecycle, so the event loop only moves bytes and
requests: its state, which changes only in :meth:`Connection.event` through the table
:data:`TRANSITIONS` (as h11 does; anything else is a bug and raises); the clock of that
state and what happens when it runs out (:meth:`Connection.expire`, with the
:class:`Timeouts`); and what follows a response, one decision for every request however it
was answered (:meth:`Connection.answered`).
"""

from __future__ import annotations

import io
import logging
import tempfile
import time
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from headrace import SERVER_NAME
from headrace.http_parser import ChunkedDecoder, HTTPError, Limits, RequestHead, find_head_end, parse_head
from headrace.transport import ClientGone, Transport

log = logging.getLogger("headrace.protocol")

_SPOOL_LIMIT = 1 << 20  # request bodies past this go to a temporary file

# -- the connection state machine -------------------------------------------------------
HEAD, BODY, BUSY, CLOSING, CLOSED = range(5)
STATE_NAMES = ("HEAD", "BODY", "BUSY", "CLOSING", "CLOSED")
# events
BODY_FOLLOWS = "body follows"  # a head announcing a body that is not buffered yet
REQUEST = "request"  # a complete request goes to the application
KEEP_ALIVE = "keep-alive"  # the response is out and the connection stays open
LINGER = "linger"  # the response (or an error) is out: half-close, drain, then close
CLOSE = "close"  # the socket is closed

TRANSITIONS: dict[tuple[int, str], int] = {
    (HEAD, BODY_FOLLOWS): BODY,
    (HEAD, REQUEST): BUSY,
    (BODY, REQUEST): BUSY,
    (BUSY, KEEP_ALIVE): HEAD,
    (HEAD, LINGER): CLOSING,
    (BODY, LINGER): CLOSING,
    (BUSY, LINGER): CLOSING,
    (HEAD, CLOSE): CLOSED,
    (BODY, CLOSE): CLOSED,
    (BUSY, CLOSE): CLOSED,
    (CLOSING, CLOSE): CLOSED,
}
"""(state, event) -> next state; HEAD: reading a head, BODY: buffering a body, BUSY: the
application has the request, CLOSING: answered and half-closed, draining until closed."""
_NEXT: dict[str, dict[int, int]] = {}  # the same table keyed event -> state -> next (one lookup less)
for (_state, _name), _target in TRANSITIONS.items():
    _NEXT.setdefault(_name, {})[_state] = _target


# How the answer to a request ended, for the decision on what follows (Connection.answered).
KEEP = 0  # the response leaves the connection open for the next request
END = 1  # the response ends the connection: it said so, was cut short, or was a refusal
GONE = 2  # the client left, or stopped reading, before the response was out


class ProtocolStateError(RuntimeError):
    """An event that is not allowed in the connection's current state (a server bug)."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long a connection may stay in each state; one set per worker, shared by its connections."""

    keep_alive: float = 5.0  # HEAD, nothing buffered: idle between requests (--keep-alive)
    request: float = 30.0  # HEAD with bytes, BODY: a request not complete by then gets a 408
    busy: float = 0.0  # BUSY: past this the application is stuck and the worker hung (0: never)
    linger: float = 2.0  # CLOSING: how long to wait for the peer's FIN after the half-close
    stopping_idle: float = 0.3  # HEAD, nothing buffered, the server stopping: time for a request in flight


DEFAULT_TIMEOUTS = Timeouts()


class Census:
    """How many of one worker's connections are lingering (CLOSING), for its load figure.

    Lingering connections only wait for the peer's FIN and cost no work, so they are no
    load.  The connections keep the count themselves, in :meth:`Connection.linger` and
    :meth:`Connection.close`: by :data:`TRANSITIONS` the only ways into and out of CLOSING
    (a test checks that), so it cannot drift from their states.  Not in
    :meth:`Connection.event`: that runs twice per request, and the check cost more there
    than the count is worth.
    """

    __slots__ = ("lingering",)

    def __init__(self) -> None:
        self.lingering = 0


class Refusal:
    """A request that cannot be valid, answered like any other request (waitress' error task).

    It stands in for the :class:`~headrace.http_parser.RequestHead` of the request it
    replaces wherever a response or the decision after it reads one: not HEAD, HTTP/1.1
    framing, never keep-alive.  The connection closes after its response.
    """

    __slots__ = ("error",)
    method = ""
    http11 = True
    keep_alive = False

    def __init__(self, error: HTTPError) -> None:
        self.error = error


Request = tuple["RequestHead | Refusal", Any]
"""What a connection hands out to be answered: ``(head, body file)``, or ``(Refusal, None)``."""


class Clock:
    """Caches the ``Date``/``Server`` header lines; they only change once a second."""

    second = 0
    date_line = ""

    @classmethod
    def date_server(cls) -> str:
        now = time.time()
        second = int(now)
        if second != cls.second:
            cls.second = second
            cls.date_line = f"Date: {formatdate(now, usegmt=True)}\r\nServer: {SERVER_NAME}\r\n"
        return cls.date_line


class Connection:
    """The HTTP/1.1 side of one client connection: its buffer, state, clock and body in progress."""

    __slots__ = (
        "_parsed",
        "body_sink",
        "buf",
        "census",
        "closing",
        "decoder",
        "head",
        "limits",
        "remaining",
        "since",
        "state",
        "timeouts",
        "transport",
    )

    def __init__(self, transport: Transport, limits: Limits, now: float, timeouts: Timeouts = DEFAULT_TIMEOUTS,
                 census: Census | None = None) -> None:
        self.transport = transport
        self.limits = limits
        self.timeouts = timeouts
        self.census = census if census is not None else Census()
        self.buf = bytearray()
        self.state = HEAD
        # When the current state's clock started; which timeout it runs against depends on
        # the state (see expire): idle since, request begun at, application busy since,
        # lingering since.  One timestamp, because only one clock runs at a time.
        self.since = now
        self.closing = False  # the server is stopping: no keep-alive after this response
        self.head: RequestHead | None = None  # a head whose body is being buffered
        self.decoder: ChunkedDecoder | None = None
        self.body_sink: Any = None
        self.remaining = 0
        self._parsed: RequestHead | None = None  # the head at the start of buf, already parsed

    def event(self, event: str) -> None:
        """The one place the state changes (``KEEP_ALIVE`` comes from :meth:`answered`, the rest from here)."""
        try:
            self.state = _NEXT[event][self.state]
        except KeyError:
            raise ProtocolStateError(f"{event!r} in state {STATE_NAMES[self.state]}") from None

    @property
    def idle(self) -> bool:
        """Between requests with nothing buffered: a keep-alive connection that may be closed."""
        return self.state == HEAD and not self.buf

    def stop_keep_alive(self) -> None:
        """The server is stopping: the response in progress, or the next, is this connection's last."""
        self.closing = True

    # -- input ---------------------------------------------------------------------------
    def read(self, now: float) -> Request | None:
        """Read what the socket has (the loop calls this when it is readable); the next request, if complete.

        A request that cannot be valid comes back as a :class:`Refusal`, to be answered like
        any other.  When the peer has closed the connection is closed here (state CLOSED).
        """
        data = self.transport.recv()
        if not data:
            if data is not None:
                self.close()
            return None
        try:
            return self.receive(data, now)
        except HTTPError as err:
            return Refusal(err), None

    def receive(self, data: bytes, now: float) -> tuple[RequestHead, Any] | None:
        """Take bytes read from the socket; return the next complete request, as :meth:`next_request`.

        Raises HTTPError for a request that cannot be valid.
        """
        state = self.state
        if state == CLOSING:
            return None  # draining: whatever the client still sends is discarded
        buf = self.buf
        if state == HEAD and not buf:
            self.since = now  # a request begins: its time limit runs from its first byte
            # Fast path: the read is exactly one request head (most requests); parse it
            # straight from the received bytes, with no buffer copies.
            if data[-4:] == b"\r\n\r\n" and data.find(b"\r\n\r\n") == len(data) - 4 and data[0] != 13:
                head = parse_head(data, self.limits)
                if head.content_length == 0:
                    self.event(REQUEST)
                    return head, io.BytesIO()
                self._parsed = head
        buf += data
        request = self.next_request()
        if request is not None:
            self.since = now  # BUSY from now: the clock that tells a stuck application
        return request

    def next_request(self) -> tuple[RequestHead, Any] | None:
        """The next complete request as ``(head, body file)``, or None until more bytes come.

        Bodies are buffered before the application runs, except with ``Expect:
        100-continue``, where the body is a :class:`StreamingBody`.  Raises HTTPError.
        """
        parsed = self._parsed
        buf = self.buf
        limits = self.limits
        while True:
            if self.state == HEAD:
                if not buf:
                    return None
                if buf[0] == 13 and buf.startswith(b"\r\n"):  # RFC 9112 2.2: skip empty lines
                    del buf[:2]
                    continue
                end = find_head_end(buf, limits)
                if end < 0:
                    return None
                if parsed is None:
                    head = parse_head(bytes(buf[:end]), limits)
                else:
                    head, parsed = parsed, None
                    self._parsed = None
                del buf[:end]
                length = head.content_length
                if head.expect_continue:
                    body: Any = StreamingBody(self, head)
                elif length == 0:
                    body = io.BytesIO()
                elif 0 < length <= len(buf):
                    body = io.BytesIO(bytes(buf[:length]))
                    del buf[:length]
                else:
                    self.head = head
                    self.remaining = length
                    self.decoder = ChunkedDecoder(limits) if head.chunked else None
                    self.body_sink = tempfile.SpooledTemporaryFile(_SPOOL_LIMIT)  # noqa: SIM115
                    self.event(BODY_FOLLOWS)
                    continue
                self.event(REQUEST)
                return head, body
            if self.state != BODY or not buf:
                return None
            sink = self.body_sink
            if self.decoder is not None:
                sink.write(self.decoder.decode(buf))
                if not self.decoder.done:
                    return None
            else:
                take = min(self.remaining, len(buf))
                sink.write(buf[:take])
                del buf[:take]
                self.remaining -= take
                if self.remaining:
                    return None
            sink.seek(0)
            head = self.head
            assert head is not None
            self.head = self.decoder = self.body_sink = None
            self.event(REQUEST)
            return head, sink

    # -- after a response ----------------------------------------------------------------
    def answered(self, head: RequestHead | Refusal, body: Any, outcome: int, now: float) -> Request | None:
        """The response to ``head`` is out (or failed, see ``outcome``): what the connection does next.

        The one decision for every request however it was answered: by the event loop, by a
        pool thread (the loop calls this once the thread is done), or refused.

        - ``KEEP`` while the server is not stopping: back to HEAD, idle from now.  A request
          already buffered (pipelined) is returned, to be answered next.
        - Anything else ends the connection: closed at once when a close cannot destroy the
          response (:meth:`_may_close_now`), else it lingers.
        """
        if outcome == KEEP and not self.closing:
            self.event(KEEP_ALIVE)
            self.since = now
            return self._pipelined() if self.buf else None
        if self._may_close_now(head, body, outcome) or not self.linger(now):
            self.close()
        return None

    def _may_close_now(self, head: RequestHead | Refusal, body: Any, outcome: int) -> bool:
        """Whether a plain close (no half-close, no wait for the peer's FIN) is safe after this response.

        The client is gone: there is nothing left to protect.  The response kept the
        connection open but the server has begun stopping since it started (only a pool
        thread's response can: the loop's own see ``closing`` before they begin): like an
        idle keep-alive connection at shutdown, when nothing else is buffered.  Otherwise
        only when the client has sent all it will send (:meth:`peer_done`).
        """
        if outcome == GONE:
            return True
        if outcome == KEEP:
            return not self.buf
        return self.peer_done(head, body)

    def _pipelined(self) -> Request | None:
        """The next request already in the buffer (pipelining), or the refusal of a bad one."""
        try:
            return self.next_request()
        except HTTPError as err:
            return Refusal(err), None

    def linger(self, now: float) -> bool:
        """Half-close and drain, so the response is not destroyed by a TCP reset.

        False when the socket is already dead: the caller closes it.
        """
        if not self.transport.shutdown_write():
            return False
        self.event(LINGER)
        self.census.lingering += 1
        self.buf.clear()
        self.since = now
        return True

    def peer_done(self, head: RequestHead | Refusal, body: Any) -> bool:
        """Whether the client has sent all it will send, so the socket may be closed at once.

        True when the answered request said it was the client's last (``Connection: close``,
        or HTTP/1.0 without keep-alive: RFC 9112 section 9.6 forbids further requests after
        it), its body was read to the end and nothing else is buffered.  Then a plain close
        sends a FIN after the response and no reset can destroy it, so the half-close and
        the wait for the peer's FIN (:meth:`linger`: two more system calls and an epoll
        wake-up per connection) are not needed.  Otherwise the client may still be sending
        (a pipelined request, an unread body, the rest of a request that was refused: its
        state is not BUSY), and the connection lingers.
        """
        if head.keep_alive or self.buf or self.state != BUSY:
            return False
        return type(body) is not StreamingBody or body.complete

    def close(self) -> None:
        """Close the socket (a FIN, or a reset if unread bytes are left: see :meth:`peer_done`)."""
        if self.state == CLOSING:
            self.census.lingering -= 1
        self.event(CLOSE)
        self.transport.close()

    # -- the clock -----------------------------------------------------------------------
    def expire(self, now: float, stopping: bool) -> Request | None:
        """Act on this connection's clock if its time is up (the loop calls this on every tick).

        Lingering too long: closed.  Idle too long (``keep_alive``, or ``stopping_idle``
        while the server stops): closed, unless a request has just arrived, which is read
        and returned to be answered.  A request not complete in time: its 408 refusal is
        returned.  BUSY is left alone, the application has the request (see :meth:`hung`).
        """
        state = self.state
        timeouts = self.timeouts
        age = now - self.since
        if state == CLOSING:
            if age > timeouts.linger:
                self.close()
        elif state == HEAD and not self.buf:
            if age > timeouts.keep_alive or (stopping and age > timeouts.stopping_idle):
                if self.transport.peek_pending():
                    return self.read(now)
                self.close()
        elif state != BUSY and age > timeouts.request:
            return Refusal(HTTPError(408, "request not completed in time")), None
        return None

    def hung(self, now: float) -> bool:
        """Whether the application has had the request for longer than ``busy`` allows (0: no limit)."""
        busy = self.timeouts.busy
        return self.state == BUSY and busy > 0 and now - self.since > busy


class StreamingBody:
    """A request body read from the socket on demand (``Expect: 100-continue``).

    The interim ``100 Continue`` goes out only when the application first asks for data,
    and only if its response has not started.
    """

    response: Response | None = None  # set by the Response of this request

    def __init__(self, conn: Connection, head: RequestHead) -> None:
        self._conn = conn
        self._decoder = ChunkedDecoder(conn.limits) if head.chunked else None
        self._remaining = head.content_length
        self._pending = bytearray()
        self._continue_sent = False
        self.complete = head.content_length == 0

    def _fill(self) -> bool:
        """Move more body bytes into the pending buffer; False at end of body."""
        if self.complete:
            return False
        conn = self._conn
        if not self._continue_sent:
            self._continue_sent = True
            response = self.response
            if (response is None or not response.headers_sent) and not conn.buf:
                conn.transport.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        while True:
            buf = conn.buf
            if buf:
                if self._decoder is not None:
                    data = self._decoder.decode(buf)
                    if self._decoder.done:
                        self.complete = True
                else:
                    n = min(self._remaining, len(buf))
                    data = bytes(buf[:n])
                    del buf[:n]
                    self._remaining -= n
                    if self._remaining == 0:
                        self.complete = True
                if data or self.complete:
                    self._pending += data
                    return bool(data) or bool(self._pending)
            conn.buf += conn.transport.recv_wait()

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            data = bytes(self._pending)
            self._pending.clear()
            return data
        while len(self._pending) < size and self._fill():
            pass
        data = bytes(self._pending[:size])
        del self._pending[:size]
        return data

    def readline(self, size: int | None = -1) -> bytes:
        while True:
            idx = self._pending.find(b"\n")
            if idx >= 0:
                end = idx + 1
                break
            if size is not None and 0 <= size <= len(self._pending):
                end = size
                break
            if not self._fill():
                end = len(self._pending)
                break
        if size is not None and 0 <= size < end:
            end = size
        data = bytes(self._pending[:end])
        del self._pending[:end]
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                return lines

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line


class Response:
    """Framing of one response: the head, the body's framing, whether the connection stays.

    Whoever produces the response (the WSGI adapter) sets ``status``, ``code``,
    ``headers``, ``flags`` and ``app_length`` and then calls :meth:`send`,
    :meth:`send_single`, :meth:`send_file` and :meth:`finish`.  ``flags`` bits say which
    headers the producer gave itself: 1 Content-Length, 4 Date, 8 Server.  The server's own
    error responses are framed here too (:meth:`refuse`, :meth:`fail`), so every response,
    whatever produced it, gets the same status line, framing and ``Connection`` handling.
    """

    # Class-level defaults: a response only sets what differs (cheaper than __slots__ here).
    status: str | None = None  # the status line's text, e.g. "200 OK"
    code = 0
    headers: list = []
    headers_sent = False
    app_length = -1  # the producer's Content-Length, -1 if none
    body_sent = 0
    chunked = False
    no_body = False
    flags = 0
    streaming: StreamingBody | None = None

    def __init__(self, conn: Connection, head: RequestHead | Refusal, body: Any) -> None:
        self.conn = conn
        self.transport = conn.transport
        self.head_request = head.method == "HEAD"
        self.http11 = head.http11
        self.keep_alive = head.keep_alive and not conn.closing
        if type(body) is StreamingBody:
            self.streaming = body
            body.response = self

    def _head(self, body_length: int) -> bytes:
        """Build the response head; ``body_length`` is the full body size when known, else -1."""
        status = self.status
        if status is None:
            raise AssertionError("application returned without calling start_response")
        code = self.code
        fields = "".join([f"{name}: {value}\r\n" for name, value in self.headers])
        framing = ""
        if code < 200 or code == 204 or code == 304:
            self.no_body = True
        elif self.app_length < 0:
            if body_length >= 0:
                framing = f"Content-Length: {body_length}\r\n"
            elif self.head_request:
                pass
            elif self.http11:
                self.chunked = True
                framing = "Transfer-Encoding: chunked\r\n"
            else:
                self.keep_alive = False
        if self.head_request:
            self.no_body = True
        flags = self.flags
        if flags & 12:
            stamp = "" if flags & 4 else f"Date: {formatdate(time.time(), usegmt=True)}\r\n"
            if not flags & 8:
                stamp += f"Server: {SERVER_NAME}\r\n"
        else:
            stamp = Clock.date_line if int(time.time()) == Clock.second else Clock.date_server()
        if self.streaming is not None and not self.streaming.complete:
            self.keep_alive = False  # the unread body would be taken for the next request
        if not self.keep_alive or self.conn.closing:
            self.keep_alive = False
            connection = "Connection: close\r\n"
        elif not self.http11:
            connection = "Connection: keep-alive\r\n"
        else:
            connection = ""
        self.headers_sent = True
        return f"HTTP/1.1 {status}\r\n{fields}{framing}{stamp}{connection}\r\n".encode("latin-1")

    def send(self, data: bytes) -> None:
        """Send body bytes now, the head first if it has not gone out."""
        if not self.headers_sent:
            if not data:
                return
            head = self._head(-1)
            if self.no_body:
                self.transport.sendall(head)
                return
            self.transport.sendall(head + self._frame(data))
            return
        if self.no_body or not data:
            return
        self.transport.sendall(self._frame(data))

    def _frame(self, data: bytes) -> bytes:
        if self.chunked:
            self.body_sent += len(data)
            return b"%x\r\n%s\r\n" % (len(data), data)
        if self.app_length >= 0:
            room = self.app_length - self.body_sent
            if len(data) > room:
                log.error("application sent more than its Content-Length; truncating")
                self.keep_alive = False
                data = data[:room]
        self.body_sent += len(data)
        return data

    def send_single(self, data: bytes) -> None:
        """The whole body is one bytes object, so a Content-Length can be given: one send."""
        size = len(data)
        head = self._head(size)
        if self.no_body or not size:
            self.transport.sendall(head)
        elif self.app_length == size or self.app_length < 0:
            self.body_sent = size
            if size < 262144:
                self.transport.sendall(head + data)
            else:
                self.transport.sendall(head)
                self.transport.sendall(data)
            return
        else:
            self.transport.sendall(head + self._frame(data))
        self.finish()

    def send_file(self, fd: int, offset: int, available: int) -> None:
        """The body is ``available`` bytes of a regular file from ``offset``: ``os.sendfile``."""
        if self.app_length >= 0:
            count = min(self.app_length, available)
            head = self._head(-1)
        else:
            count = available
            head = self._head(count)
        self.transport.sendall(head)
        if not self.no_body and count:
            self.transport.sendfile(fd, offset, count)
            self.body_sent = count
        self.finish()

    def finish(self) -> None:
        if not self.headers_sent:
            self.transport.sendall(self._head(0))
        elif self.chunked:
            self.transport.sendall(b"0\r\n\r\n")
        if not self.no_body and 0 <= self.app_length != self.body_sent:
            if self.body_sent < self.app_length:
                log.error("application sent less than its Content-Length; closing connection")
            self.keep_alive = False

    def refuse(self, err: HTTPError) -> None:
        """Answer a refused request: its status and a one-line text body, then the connection closes."""
        self._error(err, [("Content-Type", "text/plain; charset=utf-8")])
        self.send_single(f"{err.status} {err.reason}: {err.detail}\n".encode())

    def fail(self, err: HTTPError) -> None:
        """The response cannot be completed: a bodiless error if nothing was sent, then close."""
        if not self.headers_sent:
            self._error(err, [])
            try:
                self.send_single(b"")
            except ClientGone:
                pass
        self.keep_alive = False

    def _error(self, err: HTTPError, headers: list) -> None:
        """Replace whatever the producer had set with ``err``'s status: the server answers now."""
        self.status = f"{err.status} {err.reason}"
        self.code = err.status
        self.headers = headers
        self.flags = 0
        self.app_length = -1
        self.keep_alive = False
