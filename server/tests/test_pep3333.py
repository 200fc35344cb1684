"""PEP 3333 conformance, with the test application wrapped in ``wsgiref.validate``.

The validator raises AssertionError inside the worker when the server breaks the spec
(the request then fails with a 500) and prints warnings/ignored exceptions to stderr, so
every test also checks the server log for them.
"""

from __future__ import annotations

import json
import os

import pytest
from conftest import connect, get, parse_response, read_until_close, request


@pytest.fixture(scope="module")
def close_log(tmp_path_factory):
    return tmp_path_factory.mktemp("close") / "close.log"


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "blob.bin"
    path.write_bytes(os.urandom(300_000))
    return path


@pytest.fixture(scope="module")
def validated_server(tmp_path_factory, close_log, data_file):
    from conftest import Server

    server = Server(tmp_path_factory.mktemp("v"), "apps:validated", "--workers", "1", "--root-path", "/mount",
                    env={"HEADRACE_TEST_CLOSE_LOG": str(close_log), "HEADRACE_TEST_FILE": str(data_file)})
    yield server
    server.stop()
    log = server.log()
    assert "AssertionError" not in log
    assert "WSGIWarning" not in log
    assert "Exception ignored" not in log


def assert_clean(server):
    log = server.log()
    assert "AssertionError" not in log, log
    assert "WSGIWarning" not in log, log


def test_required_environ_keys(validated_server):
    status, _, body = get(validated_server.port, "/mount/environ?a=1&b=%20", "Content-Type: text/x-test\r\n")
    assert status == 200
    env = json.loads(body)
    for key in ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME", "SERVER_PORT",
                "SERVER_PROTOCOL", "wsgi.url_scheme", "wsgi.multithread", "wsgi.multiprocess",
                "wsgi.run_once", "REMOTE_ADDR"):
        assert key in env, key
    assert env["wsgi.version"] == [1, 0]
    assert env["SCRIPT_NAME"] == "/mount"
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "a=1&b=%20"
    assert env["CONTENT_TYPE"] == "text/x-test"
    assert env["SERVER_NAME"] == "test"
    assert env["SERVER_PORT"] == str(validated_server.port)
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.multithread"] is False
    assert "HTTP_CONTENT_TYPE" not in env
    assert_clean(validated_server)


def test_path_info_is_percent_decoded_latin1(validated_server):
    _status, _, body = get(validated_server.port, "/mount/environ/caf%C3%A9/a%2Fb")
    env = json.loads(body)
    assert env["PATH_INFO"] == "/environ/caf\u00c3\u00a9/a/b"  # bytes as latin-1, per PEP 3333
    assert env["RAW_URI"] == "/mount/environ/caf%C3%A9/a%2Fb"


def test_body_read_and_readline_under_validator(validated_server):
    payload = b"line one\nline two\nlast"
    raw = (b"POST /mount/echo-lines HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
           % len(payload) + payload)
    status, _, body = request(validated_server.port, raw)
    assert status == 200
    assert json.loads(body)["lines"] == ["line one\n", "line two\n", "last"]
    raw = (b"POST /mount/echo-chunks HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked"
           b"\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n")
    status, _, body = request(validated_server.port, raw)
    assert json.loads(body)["parts"] == ["abc", "def", "g"]
    assert_clean(validated_server)


def test_write_and_streaming_under_validator(validated_server):
    assert get(validated_server.port, "/mount/write")[2] == b"written-returned"
    assert get(validated_server.port, "/mount/stream")[2] == b"chunk0;chunk1;chunk2;"
    status, _headers, body = get(validated_server.port, "/mount/empty-stream")
    assert status == 200 and body == b""
    assert_clean(validated_server)


def test_close_is_called_on_the_result(validated_server, close_log):
    get(validated_server.port, "/mount/close?tag-ok")
    with connect(validated_server.port) as sock:
        sock.sendall(b"GET /mount/fail-mid-body?tag-fail HTTP/1.1\r\nHost: t\r\n\r\n")
        data = read_until_close(sock)
    assert b"partial" in data and not data.endswith(b"0\r\n\r\n")
    # close() even when the client disconnects before reading
    with connect(validated_server.port) as sock:
        sock.sendall(b"HEAD /mount/close?tag-head HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        read_until_close(sock)
    tags = close_log.read_text().split()
    assert {"tag-ok", "tag-fail", "tag-head"} <= set(tags)


def test_exc_info_replaces_headers_before_they_are_sent(validated_server):
    status, _headers, body = get(validated_server.port, "/mount/exc-info")
    assert status == 500
    assert body == b"oopsie"


def test_exc_info_after_headers_sent_aborts_the_connection(validated_server):
    with connect(validated_server.port) as sock:
        sock.sendall(b"GET /mount/exc-info-late HTTP/1.1\r\nHost: t\r\n\r\n")
        data = read_until_close(sock)
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"begun" in data
    assert not data.endswith(b"0\r\n\r\n"), "a failed chunked response must not look complete"
    assert get(validated_server.port, "/mount/")[0] == 200


def test_application_exception_gives_500_and_worker_survives(validated_server):
    pids = validated_server.worker_pids()
    status, headers, _ = get(validated_server.port, "/mount/raise")
    assert status == 500
    assert headers["connection"] == "close"
    assert validated_server.worker_pids() == pids
    assert "RuntimeError: application failure" in validated_server.log()


def test_file_wrapper_sends_whole_file(validated_server, data_file):
    # the validator hides the wrapper type, so this is the plain iteration path
    status, _headers, body = get(validated_server.port, "/mount/file")
    assert status == 200
    assert body == data_file.read_bytes()


def test_unvalidated_file_wrapper_uses_sendfile_path(server_factory, data_file, tmp_path):
    server = server_factory("apps:router", "--workers", "1", env={"HEADRACE_TEST_FILE": str(data_file)})
    with connect(server.port) as sock:
        sock.sendall(b"GET /file HTTP/1.1\r\nHost: t\r\n\r\n"
                     b"HEAD /file HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = read_until_close(sock)
    status, headers, body, rest = parse_response(data)
    assert status == 200 and body == data_file.read_bytes()
    assert headers["content-length"] == str(data_file.stat().st_size)
    assert rest.startswith(b"HTTP/1.1 200 OK") and rest.endswith(b"\r\n\r\n")


def test_non_latin1_header_is_rejected_with_500(server_factory):
    server = server_factory("apps:router", "--workers", "1")
    assert get(server.port, "/bad-header")[0] == 500
    status, headers, _ = get(server.port, "/header-injection")
    assert status == 500
    assert "set-cookie" not in headers
    assert get(server.port, "/")[0] == 200
