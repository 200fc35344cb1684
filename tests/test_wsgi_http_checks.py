"""The wsgi_http_checks module: a host's own endpoints asked in one module run, in process.

The tests call the module's run_checks() against real HTTP and HTTPS servers on 127.0.0.1 (threads of this
process) and check what the rollout relies on: the status each check got, the Host header sent, redirects
taken as answers, a self-signed certificate accepted, `wait` asking again until a check passes or the time
is up, and the message naming each check that failed.
"""

from __future__ import annotations

import datetime
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from plugin_loading import load

PROJECT_DIR = Path(__file__).resolve().parent.parent
MODULE = load(PROJECT_DIR / "plugins" / "modules" / "wsgi_http_checks.py", "wsgi_http_checks_module")


class Handler(http.server.BaseHTTPRequestHandler):
    """/ok 200 with the Host header as body, /moved 302, /broken 500, /late 503 until the server's
    `late_until` requests have been made to it, then 200."""

    def do_GET(self) -> None:
        server = self.server
        if self.path == "/late":
            server.late_calls += 1  # type: ignore[attr-defined]
            status = 200 if server.late_calls > server.late_until else 503  # type: ignore[attr-defined]
        else:
            status = {"/ok": 200, "/moved": 302, "/broken": 500}.get(self.path, 404)
        body = f"host={self.headers['Host']} " + ("x" * 1000 if self.path == "/broken" else "")
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "http://elsewhere.invalid/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


def serve(context: ssl.SSLContext | None = None) -> Iterator[tuple[str, http.server.HTTPServer]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.late_calls, server.late_until = 0, 0  # type: ignore[attr-defined]
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    scheme = "https" if context else "http"
    yield f"{scheme}://127.0.0.1:{server.server_address[1]}", server
    server.shutdown()
    server.server_close()


@pytest.fixture()
def http_server() -> Iterator[tuple[str, http.server.HTTPServer]]:
    yield from serve()


@pytest.fixture()
def https_server(tmp_path: Path) -> Iterator[tuple[str, http.server.HTTPServer]]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    yield from serve(context)


def check(url: str, **fields: object) -> dict[str, object]:
    return {"name": url.rsplit("/", 1)[-1], "url": url, **fields}


def test_each_check_gets_its_status_and_passes_when_accepted(http_server) -> None:
    base, _ = http_server
    results = MODULE.run_checks([check(f"{base}/ok"), check(f"{base}/broken"),
                                 check(f"{base}/missing", status=list(range(100, 500)))], wait_seconds=0)
    assert [(r["name"], r["status"], r["passed"]) for r in results] == [
        ("ok", 200, True), ("broken", 500, False), ("missing", 404, True)]
    assert [r["attempts"] for r in results] == [1, 1, 1]


def test_the_host_header_names_the_site(http_server) -> None:
    base, _ = http_server
    [result] = MODULE.run_checks([check(f"{base}/ok", host="shop.example.com")])
    assert result["body"].startswith("host=shop.example.com ")


def test_a_redirect_is_an_answer_not_followed(http_server) -> None:
    base, _ = http_server
    [result] = MODULE.run_checks([check(f"{base}/moved", status=list(range(100, 500)))])
    assert (result["status"], result["passed"]) == (302, True)


def test_the_hosts_own_self_signed_certificate_is_accepted(https_server) -> None:
    base, _ = https_server
    [result] = MODULE.run_checks([check(f"{base}/ok", host="www.example.com")])
    assert (result["status"], result["passed"]) == (200, True)


def test_nothing_listening_is_status_minus_one_with_the_reason() -> None:
    [result] = MODULE.run_checks([check("http://127.0.0.1:9/ok")], timeout=2)
    assert result["status"] == -1 and not result["passed"]
    assert "refused" in result["body"].lower()
    assert MODULE.failure_message([result]).startswith("ok answered nothing ")


def test_a_waiting_check_is_asked_again_until_it_passes(http_server) -> None:
    base, server = http_server
    server.late_until = 3
    sleeps: list[float] = []
    [late, once] = MODULE.run_checks([check(f"{base}/late", wait=True), check(f"{base}/late")],
                                     wait_seconds=60, sleep=sleeps.append)
    assert (late["status"], late["passed"], late["attempts"]) == (200, True, 4)
    assert sleeps == [1, 1, 1]
    assert once["attempts"] == 1


def test_a_waiting_check_gives_up_when_the_time_is_up(http_server) -> None:
    base, server = http_server
    server.late_until = 100
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    [late] = MODULE.run_checks([check(f"{base}/late", wait=True)], wait_seconds=5,
                               clock=lambda: now[0], sleep=sleep)
    assert (late["status"], late["passed"], late["attempts"]) == (503, False, 6)


def test_a_check_without_wait_is_asked_once_even_with_time_left(http_server) -> None:
    base, server = http_server
    server.late_until = 1
    [late] = MODULE.run_checks([check(f"{base}/late")], wait_seconds=60, sleep=pytest.fail)
    assert (late["status"], late["attempts"]) == (503, 1)


def test_the_message_names_each_failed_check_with_a_short_body(http_server) -> None:
    base, _ = http_server
    results = MODULE.run_checks([check(f"{base}/ok"), check(f"{base}/broken")])
    message = MODULE.failure_message(results)
    assert message.startswith("broken answered 500 host=127.0.0.1:")
    assert "ok answered" not in message
    assert len(message) < 260
