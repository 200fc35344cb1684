"""In-process tests of the request parser and the chunked decoder (no server processes).

The bad-request table is the one ``test_bad_requests.py`` sends over sockets: here each
case goes through ``parse_head`` (and, for bodies, the ``ChunkedDecoder``) directly.
"""

from __future__ import annotations

import pytest
from bad_requests import CASES, LIMIT_REQUEST_BODY

from headrace.http_parser import (
    FORBIDDEN_TRAILERS,
    ChunkedDecoder,
    HTTPError,
    Limits,
    find_head_end,
    parse_head,
)

LIMITS = Limits(max_body=LIMIT_REQUEST_BODY)  # the shared_server fixture's limits


def rejection(raw: bytes, limits: Limits = LIMITS) -> int | None:
    """The status the parser refuses ``raw`` with, or None if it accepts head and body."""
    try:
        end = find_head_end(raw, limits)
        if end < 0:
            return None
        head = parse_head(raw[:end], limits)
        if head.chunked:
            decoder = ChunkedDecoder(limits)
            decoder.decode(bytearray(raw[end:]))
    except HTTPError as err:
        return err.status
    return None


@pytest.mark.parametrize(("name", "raw", "statuses"), CASES, ids=[c[0] for c in CASES])
def test_bad_request_table_is_rejected_by_the_parser(name, raw, statuses):
    assert rejection(raw) in statuses, name


@pytest.mark.parametrize(("name", "raw", "statuses"), CASES, ids=[c[0] for c in CASES])
def test_bad_request_heads_fail_in_parse_head_or_their_body_does(name, raw, statuses):
    """A complete head goes to parse_head itself: it refuses it, or the head is chunked and
    the fault is in the body (the decoder's test above covers those)."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:  # bare-LF framing: find_head_end's job
        with pytest.raises(HTTPError) as info:
            find_head_end(raw, LIMITS)
        assert info.value.status in statuses
        return
    try:
        head = parse_head(raw[: end + 4], LIMITS)
    except HTTPError as err:
        assert err.status in statuses
    else:
        assert head.chunked, f"{name}: parse_head accepted a head that is not at fault"
        with pytest.raises(HTTPError) as info:
            ChunkedDecoder(LIMITS).decode(bytearray(raw[end + 4 :]))
        assert info.value.status in statuses


def test_a_valid_head_becomes_cgi_style_headers():
    head = parse_head(b"POST /a%20b?x=1 HTTP/1.1\r\nHost: example.org:8080\r\nContent-Type: text/plain\r\n"
                      b"Content-Length: 5\r\nX-Multi: a\r\nX-Multi: b\r\nX_Under: dropped\r\n\r\n", LIMITS)
    assert (head.method, head.target, head.version, head.http11) == ("POST", "/a%20b?x=1", "HTTP/1.1", True)
    assert head.content_length == 5 and not head.chunked and head.keep_alive
    assert head.headers == {"HTTP_HOST": "example.org:8080", "CONTENT_TYPE": "text/plain",
                            "CONTENT_LENGTH": "5", "HTTP_X_MULTI": "a,b"}


def test_keep_alive_and_expectations():
    http10 = parse_head(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", LIMITS)
    assert not http10.http11 and http10.keep_alive
    close = parse_head(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", LIMITS)
    assert not close.keep_alive
    expect = parse_head(b"PUT / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", LIMITS)
    assert expect.expect_continue
    empty = parse_head(b"PUT / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n", LIMITS)
    assert not empty.expect_continue


def test_incomplete_head_waits_and_a_long_one_is_refused_early():
    assert find_head_end(b"GET / HTTP/1.1\r\nHost: t\r\n", LIMITS) == -1
    with pytest.raises(HTTPError) as info:
        find_head_end(b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"y" * 20000, LIMITS)
    assert info.value.status == 431


CHUNKED = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-Field: ok\r\n\r\n"


def test_chunked_decoder_whole_body_leaves_the_next_request_in_the_buffer():
    buf = bytearray(CHUNKED + b"GET / HTTP/1.1\r\n")
    decoder = ChunkedDecoder(LIMITS)
    assert decoder.decode(buf) == b"hello world"
    assert decoder.done and decoder.trailers == 1
    assert buf == b"GET / HTTP/1.1\r\n"


@pytest.mark.parametrize("split", range(1, len(CHUNKED)))
def test_chunked_decoder_any_split_gives_the_same_body(split):
    decoder = ChunkedDecoder(LIMITS)
    buf = bytearray(CHUNKED[:split])
    out = decoder.decode(buf)
    assert not decoder.done
    buf += CHUNKED[split:]
    out += decoder.decode(buf)
    assert out == b"hello world" and decoder.done and buf == b""


def test_chunked_decoder_limits():
    with pytest.raises(HTTPError) as info:
        ChunkedDecoder(Limits(max_body=10)).decode(bytearray(b"b\r\nhello world\r\n0\r\n\r\n"))
    assert info.value.status == 413
    with pytest.raises(HTTPError) as info:
        ChunkedDecoder(Limits(fields=1)).decode(bytearray(b"0\r\nA: 1\r\nB: 2\r\n\r\n"))
    assert info.value.status == 431


def _trailer_body(*lines: bytes) -> bytearray:
    return bytearray(b"3\r\nabc\r\n0\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n")


@pytest.mark.parametrize("name", sorted(FORBIDDEN_TRAILERS))
def test_every_forbidden_trailer_field_is_refused_in_any_case(name):
    """RFC 9110 section 6.5.1: framing, routing, request modifiers, authentication, response
    control data and content-processing fields must not come in a trailer section."""
    for spelled in (name, name.upper(), name.title()):
        with pytest.raises(HTTPError) as info:
            ChunkedDecoder(LIMITS).decode(_trailer_body(b"X-Ok: 1", spelled + b": v"))
        assert info.value.status == 400
        assert name.decode() in info.value.detail


@pytest.mark.parametrize("name", [b"If-Schedule-Tag-Match", b"Accept-Patch", b"accept-datetime"])
def test_other_conditionals_and_negotiation_fields_are_refused_too(name):
    with pytest.raises(HTTPError) as info:
        ChunkedDecoder(LIMITS).decode(_trailer_body(name + b": x"))
    assert info.value.status == 400


@pytest.mark.parametrize("line", [b"X-Checksum: abc", b"Server-Timing: db;dur=5", b"Digest: sha-256=x",
                                  b"Content-MD5: Q2h", b"Iffy: no", b"Acceptable: yes", b"Hosting: fine"])
def test_ordinary_trailer_fields_are_accepted_and_discarded(line):
    buf = _trailer_body(line)
    decoder = ChunkedDecoder(LIMITS)
    assert decoder.decode(buf) == b"abc"
    assert decoder.done and buf == b""


def test_a_forbidden_trailer_split_across_reads_is_refused_once_complete():
    decoder = ChunkedDecoder(LIMITS)
    whole = bytes(_trailer_body(b"Content-Length: 99"))
    buf = bytearray(whole[:-8])
    assert decoder.decode(buf) == b"abc" and not decoder.done
    buf += whole[-8:]
    with pytest.raises(HTTPError):
        decoder.decode(buf)


def test_identical_heads_are_parsed_once_and_refused_heads_every_time():
    limits = Limits()
    raw = b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    first = parse_head(raw, limits)
    assert parse_head(bytes(raw), limits) is first, "the same bytes give the remembered head"
    assert parse_head(raw, Limits(fields=2)) is not first, "another set of limits parses afresh"
    bad = b"GET /a HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n"
    for _ in range(2):
        with pytest.raises(HTTPError):
            parse_head(bad, limits)
    for index in range(1000):  # the cache is bounded
        parse_head(b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n" % index, limits)
    assert len(limits.head_cache) <= 256
