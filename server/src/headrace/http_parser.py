"""Strict parsing of HTTP/1.1 request heads and chunked bodies (RFC 9110, RFC 9112).

Validation is the expensive part of parsing in Python, so it is done with a few
precompiled regular expressions over the whole header block at once instead of
per-character loops.  Anything that does not match the grammar exactly is rejected
with an :class:`HTTPError`; the worker answers it and closes the connection, which is
what defeats request smuggling through ambiguous framing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_VCHAR = rb"\x21-\x7e\x80-\xff"

# request-line = method SP request-target SP HTTP-version
_REQUEST_LINE = re.compile(rb"([" + _TCHAR + rb"]+) ([\x21-\x7e\x80-\xff]+) HTTP/([0-9])\.([0-9])")
_LOOSE_VERSION = re.compile(rb"[^ ]+ [^ ]+ HTTP/([0-9])\.[0-9]")

# field-line = field-name ":" OWS field-value OWS CRLF; the block must be a run of these.
_FIELD = (
    rb"([" + _TCHAR + rb"]+):[ \t]*((?:[" + _VCHAR + rb"]+(?:[ \t]+[" + _VCHAR + rb"]+)*)?)[ \t]*\r\n"
)
_FIELD_BLOCK = re.compile(rb"(?:" + _FIELD + rb")*")
_FIELD_LINE = re.compile(_FIELD)
# The whole head in one pass, for the common case; anything else takes the slow path.
_HEAD = re.compile(
    rb"([" + _TCHAR + rb"]+) ([\x21-\x7e\x80-\xff]+) HTTP/([0-9])\.([0-9])\r\n"
    rb"((?:[" + _TCHAR + rb"]+:[ \t]*(?:[" + _VCHAR + rb"]+(?:[ \t]+[" + _VCHAR + rb"]+)*)?[ \t]*\r\n)*)\r\n"
)

_CHUNK_EXT = (
    rb"(?:[ \t]*;[ \t]*[" + _TCHAR + rb"]+(?:[ \t]*=[ \t]*(?:[" + _TCHAR + rb"]+|"
    rb'"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"))?)*'
)
_CHUNK_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})" + _CHUNK_EXT)

_STATUS_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


class HTTPError(Exception):
    """A request the server refuses; ``status`` is the response code to send before closing."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status} {detail}")
        self.status = status
        self.detail = detail

    @property
    def reason(self) -> str:
        return _STATUS_REASONS.get(self.status, "Error")


@dataclass(slots=True)
class Limits:
    """Request size limits; 0 for ``max_body`` means unbounded."""

    request_line: int = 8190
    fields: int = 100
    field_size: int = 8190
    max_body: int = 0
    fast_max: int = field(init=False, default=0)
    # Parsed heads by their exact bytes (see parse_head); per Limits, because the limits
    # decide what parses.
    head_cache: dict[bytes, RequestHead] = field(init=False, default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A head no longer than this cannot break the line or field size limits.
        self.fast_max = min(self.request_line, self.field_size)

    @property
    def max_head(self) -> int:
        """Largest head (request line plus fields) that can possibly be valid."""
        return self.request_line + 2 + self.fields * (self.field_size + 2) + 2


@dataclass(slots=True)
class RequestHead:
    """What the worker needs from a parsed head; ``headers`` are already CGI-style keys."""

    method: str
    target: str
    version: str  # "HTTP/1.1" or "HTTP/1.0"
    http11: bool
    headers: dict[str, str]
    content_length: int  # -1 when the body is chunked
    chunked: bool
    keep_alive: bool
    expect_continue: bool


# Cache of field-name bytes -> CGI environ key ("" means: drop the field).
_KEY_CACHE: dict[bytes, str] = {}
_SPECIAL = {"CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING", "HTTP_CONNECTION", "HTTP_EXPECT"}


def _environ_key(name: bytes) -> str:
    key = _KEY_CACHE.get(name)
    if key is None:
        text = name.decode("ascii")
        if "_" in text:
            # X_Forwarded_For and X-Forwarded-For would collide in the environ: drop the
            # underscore form so a client cannot spoof a header a proxy sets.
            key = ""
        else:
            key = text.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
        if len(_KEY_CACHE) < 2048:
            _KEY_CACHE[name] = key
    return key


def find_head_end(buf: bytes, limits: Limits) -> int:
    """Return the index just past the blank line ending the head, or -1 if incomplete.

    Raises for heads that can no longer become valid (too long, bare-LF framing).
    """
    end = buf.find(b"\r\n\r\n")
    if end >= 0:
        return end + 4
    if len(buf) > limits.max_head:
        first = buf.find(b"\r\n")
        if first < 0 or first > limits.request_line:
            raise HTTPError(414, "request line too long")
        raise HTTPError(431, "request head too large")
    eol = buf.find(b"\r\n")
    if (eol < 0 and len(buf) > limits.request_line) or eol > limits.request_line:
        raise HTTPError(414, "request line too long")
    if eol >= 0 and len(buf) - buf.rfind(b"\r\n") - 2 > limits.field_size:
        raise HTTPError(431, "header field too large")
    if b"\n\n" in buf or b"\n\r\n" in buf:
        raise HTTPError(400, "bare LF line terminator")
    return -1


_CACHE_HEAD_MAX = 1024  # heads up to this size are remembered ...
_CACHE_ENTRIES = 256  # ... this many of them (then the cache starts again): at most 256 KiB


def parse_head(head: bytes, limits: Limits) -> RequestHead:
    """Parse one request head (including its terminating blank line).

    A client on a persistent connection (a proxy, a health checker, a polling client) mostly
    sends the same head bytes again and again, so valid heads are remembered by their exact
    bytes and parsed once: parsing is the largest part of the server's own time per request.
    The result is the same object each time, which is safe because nothing changes a
    RequestHead after parsing (the environ copies its headers).  Only valid heads are kept,
    so a refused head is refused every time.
    """
    cached = limits.head_cache.get(head)
    if cached is not None:
        return cached
    result = _parse_head(head, limits)
    if len(head) <= _CACHE_HEAD_MAX:
        cache = limits.head_cache
        if len(cache) >= _CACHE_ENTRIES:
            cache.clear()
        cache[head] = result
    return result


def _parse_head(head: bytes, limits: Limits) -> RequestHead:
    match = _HEAD.fullmatch(head)
    if match is None or len(head) > limits.fast_max:
        method_b, target_b, http11, fields = _parse_head_slowly(head, limits)
    else:
        method_b, target_b, major, minor, block = match.group(1, 2, 3, 4, 5)
        if major != b"1":
            raise HTTPError(505, "unsupported HTTP version")
        http11 = minor != b"0"
        # The pattern has validated every line, so plain splitting is enough here.
        fields = [line.partition(b":")[::2] for line in block[:-2].split(b"\r\n")] if block else []
        if len(fields) > limits.fields:
            raise HTTPError(431, "too many header fields")

    headers: dict[str, str] = {}
    special = False
    key_cache = _KEY_CACHE
    for name, value in fields:
        key = key_cache.get(name) or _environ_key(name)
        if not key:
            continue
        text = value.decode("latin-1").strip(" \t")
        if key in headers:
            if key == "HTTP_HOST":
                raise HTTPError(400, "repeated Host field")
            if key == "CONTENT_LENGTH":
                if headers[key] != text:
                    raise HTTPError(400, "conflicting Content-Length fields")
                continue
            headers[key] = headers[key] + "," + text
        else:
            headers[key] = text
        if key in _SPECIAL:
            special = True

    method = method_b.decode("ascii")
    target = target_b.decode("latin-1")
    if target_b[0] != 47:  # not origin-form ("/...")
        _check_target(method, target)

    content_length = 0
    chunked = False
    keep_alive = http11
    expect_continue = False
    if special:
        connection = headers.get("HTTP_CONNECTION")
        if connection is not None:
            tokens = {t.strip().lower() for t in connection.split(",")}
            if "close" in tokens:
                keep_alive = False
            elif "keep-alive" in tokens and not http11:
                keep_alive = True
        te = headers.get("HTTP_TRANSFER_ENCODING")
        cl = headers.get("CONTENT_LENGTH")
        if te is not None:
            if not http11:
                raise HTTPError(400, "Transfer-Encoding in an HTTP/1.0 request")
            if cl is not None:
                raise HTTPError(400, "both Transfer-Encoding and Content-Length")
            codings = [c.strip().lower() for c in te.split(",")]
            if codings[-1] != "chunked":
                raise HTTPError(400, "final transfer coding is not chunked")
            if codings.count("chunked") > 1:
                raise HTTPError(400, "chunked applied more than once")
            if len(codings) > 1:
                raise HTTPError(501, "unsupported transfer coding")
            chunked = True
            content_length = -1
        elif cl is not None:
            if not cl.isdigit() or not cl.isascii() or len(cl) > 18:
                raise HTTPError(400, "invalid Content-Length")
            content_length = int(cl)
            if limits.max_body and content_length > limits.max_body:
                raise HTTPError(413, "request body too large")
        if http11 and headers.get("HTTP_EXPECT") is not None:
            if headers["HTTP_EXPECT"].lower() != "100-continue":
                raise HTTPError(417, "unsupported expectation")
            expect_continue = content_length != 0
    if http11 and "HTTP_HOST" not in headers:
        raise HTTPError(400, "missing Host field")
    return RequestHead(
        method,
        target,
        "HTTP/1.1" if http11 else "HTTP/1.0",
        http11,
        headers,
        content_length,
        chunked,
        keep_alive,
        expect_continue,
    )


def _parse_head_slowly(head: bytes, limits: Limits) -> tuple[bytes, bytes, bool, list]:
    """Full checks with precise errors: long heads and heads the one-shot pattern rejected."""
    line_end = head.find(b"\r\n")
    line = head[:line_end]
    if len(line) > limits.request_line:
        raise HTTPError(414, "request line too long")
    match = _REQUEST_LINE.fullmatch(line)
    if match is None:
        loose = _LOOSE_VERSION.fullmatch(line)
        if loose is not None and loose.group(1) != b"1" and b"\t" not in line:
            raise HTTPError(505, "unsupported HTTP version")
        raise HTTPError(400, "malformed request line")
    method_b, target_b, major, minor = match.groups()
    if major != b"1":
        raise HTTPError(505, "unsupported HTTP version")
    block = head[line_end + 2 : -2]
    fields = []
    if block:
        if _FIELD_BLOCK.fullmatch(block) is None:
            raise HTTPError(*_diagnose_fields(block, limits))
        fields = _FIELD_LINE.findall(block)
        if len(fields) > limits.fields:
            raise HTTPError(431, "too many header fields")
        if len(block) > limits.field_size:
            for name, value in fields:
                if len(name) + len(value) + 2 > limits.field_size:
                    raise HTTPError(431, "header field too large")
    return method_b, target_b, minor != b"0", fields


def _check_target(method: str, target: str) -> None:
    """Accept only the four request-target forms of RFC 9112 section 3.2."""
    first = target[0]
    if first == "/":
        return
    if method == "CONNECT":
        if "/" not in target and ":" in target:
            return
        raise HTTPError(400, "invalid CONNECT target")
    if target == "*":
        if method == "OPTIONS":
            return
        raise HTTPError(400, "asterisk target outside OPTIONS")
    lower = target[:8].lower()
    if (lower.startswith("http://") or lower.startswith("https://")) and "#" not in target:
        return
    raise HTTPError(400, "invalid request target")


def _diagnose_fields(block: bytes, limits: Limits) -> tuple[int, str]:
    """Explain why a header block failed the fast grammar check (slow path, errors only)."""
    lines = block.split(b"\r\n")
    for line in lines[:-1]:
        if len(line) > limits.field_size:
            return 431, "header field too large"
        if line[:1] in (b" ", b"\t"):
            return 400, "obsolete line folding"
        name, sep, _ = line.partition(b":")
        if not sep:
            return 400, "header line without colon"
        if name[-1:] in (b" ", b"\t"):
            return 400, "whitespace between field name and colon"
        if not name:
            return 400, "empty field name"
    return 400, "invalid characters in header field"


# Fields a sender must not put in a trailer section (RFC 9110 section 6.5.1): they are needed
# before the content is processed, so a recipient that merged them from a trailer could be
# made to frame, route, authorise or interpret a request differently from a proxy in front of
# it that ignored the trailer.  Refused with 400, not silently dropped, because a request that
# carries one is either broken or probing for exactly that disagreement.
FORBIDDEN_TRAILERS = frozenset({
    # message framing
    b"content-length", b"transfer-encoding", b"trailer",
    # routing
    b"host",
    # request modifiers: controls
    b"cache-control", b"expect", b"max-forwards", b"pragma", b"range", b"te",
    # request modifiers: conditionals (also any other If-*, below)
    b"if-match", b"if-none-match", b"if-modified-since", b"if-unmodified-since", b"if-range",
    # request modifiers: content negotiation (also any other Accept-*, below)
    b"accept", b"accept-charset", b"accept-encoding", b"accept-language",
    # authentication (RFC 9110 section 11 and cookies)
    b"authorization", b"proxy-authorization", b"www-authenticate", b"proxy-authenticate",
    b"authentication-info", b"proxy-authentication-info", b"cookie", b"set-cookie",
    # response control data
    b"age", b"expires", b"date", b"location", b"retry-after", b"vary", b"warning",
    # how to process the content
    b"content-encoding", b"content-type", b"content-range",
})


def parse_trailer_line(line: bytes) -> None:
    """Validate one trailer field line; its content is discarded, never merged into the headers.

    Raises HTTPError 400 for a malformed line and for a field RFC 9110 section 6.5.1 forbids
    in trailers (:data:`FORBIDDEN_TRAILERS`, plus every ``If-*`` and ``Accept-*`` field).
    """
    if _FIELD_LINE.fullmatch(line + b"\r\n") is None:
        raise HTTPError(400, "malformed trailer field")
    name = line[: line.index(b":")].lower()
    if name in FORBIDDEN_TRAILERS or name.startswith((b"if-", b"accept-")):
        raise HTTPError(400, f"{name.decode('ascii')} is not allowed in a trailer section")


class ChunkedDecoder:
    """Incremental decoder for the chunked transfer coding.

    ``decode`` consumes what it can from a ``bytearray`` buffer and returns the decoded
    payload; bytes after the final CRLF stay in the buffer (a pipelined request).
    """

    __slots__ = ("_remaining", "_state", "done", "limits", "total", "trailers")

    _SIZE, _DATA, _DATA_END, _TRAILER = range(4)

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._state = self._SIZE
        self._remaining = 0
        self.done = False
        self.total = 0
        self.trailers = 0

    def decode(self, buf: bytearray) -> bytes:
        out: list[bytes] = []
        while not self.done:
            state = self._state
            if state == self._DATA:
                if not buf:
                    break
                n = min(self._remaining, len(buf))
                out.append(bytes(buf[:n]))
                del buf[:n]
                self._remaining -= n
                if self._remaining == 0:
                    self._state = self._DATA_END
            elif state == self._DATA_END:
                if len(buf) < 2:
                    if buf and buf[0] != 13:
                        raise HTTPError(400, "chunk data longer than declared")
                    break
                if buf[0] != 13 or buf[1] != 10:
                    raise HTTPError(400, "chunk data longer than declared")
                del buf[:2]
                self._state = self._SIZE
            else:
                eol = buf.find(b"\r\n")
                if eol < 0:
                    if len(buf) > self.limits.field_size or b"\n" in buf:
                        raise HTTPError(400, "malformed chunk line")
                    break
                line = bytes(buf[:eol])
                del buf[: eol + 2]
                if state == self._SIZE:
                    match = _CHUNK_SIZE_LINE.fullmatch(line)
                    if match is None:
                        raise HTTPError(400, "invalid chunk size line")
                    size = int(match.group(1), 16)
                    self.total += size
                    if self.limits.max_body and self.total > self.limits.max_body:
                        raise HTTPError(413, "request body too large")
                    if size == 0:
                        self._state = self._TRAILER
                    else:
                        self._remaining = size
                        self._state = self._DATA
                elif not line:
                    self.done = True
                else:
                    self.trailers += 1
                    if self.trailers > self.limits.fields:
                        raise HTTPError(431, "too many trailer fields")
                    parse_trailer_line(line)
        return b"".join(out)
