"""Process management seen from outside: reload, drain, crash recovery, hang detection, floods."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

from conftest import connect, get, parse_response, read_until_close

V1 = """
def application(environ, start_response):
    body = b"version-%s"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


class Load:
    """Client threads hammering the server; each records every outcome."""

    def __init__(self, port: int, threads: int = 4, keep_alive: bool = False, path: str = "/") -> None:
        self.port = port
        self.keep_alive = keep_alive
        self.path = path
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.bodies: list[bytes] = []
        self.failures: list[str] = []
        self.retries = 0
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)

    def _record(self, body: bytes | None, failure: str | None = None) -> None:
        with self.lock:
            if failure:
                self.failures.append(failure)
            else:
                self.bodies.append(body or b"")

    def _run(self) -> None:
        sock = None
        buf = b""
        while not self.stop.is_set():
            try:
                if sock is None:
                    sock = connect(self.port)
                    buf = b""
                    fresh = True
                else:
                    fresh = False
                close = b"" if self.keep_alive else b"Connection: close\r\n"
                sock.sendall(b"GET " + self.path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + close + b"\r\n")
                while True:
                    status, headers, body, rest = parse_response(buf)
                    if status and len(body) == int(headers.get("content-length", -1)):
                        break
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionResetError("closed")
                    buf += data
                buf = rest
                if status != 200:
                    self._record(None, f"status {status}")
                else:
                    self._record(body)
                if headers.get("connection") == "close" or not self.keep_alive:
                    sock.close()
                    sock = None
            except OSError as exc:
                if sock is not None:
                    sock.close()
                sock = None
                if self.keep_alive and not fresh and not buf:
                    # An idle persistent connection closed by the server before any response
                    # byte: HTTP clients retry idempotent requests in that case (RFC 9112 9.3.1).
                    with self.lock:
                        self.retries += 1
                    continue
                self._record(None, f"{type(exc).__name__}: {exc}")


def _wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def test_hup_reload_under_load_loses_no_request_and_loads_new_code(server_factory, tmp_path):
    script = tmp_path / "app.wsgi"
    script.write_text(V1 % "one")
    server = server_factory(str(script), "--workers", "2", "--keep-alive", "2")
    server.wait_booted(2)
    old_pids = server.worker_pids()
    with Load(server.port, threads=3) as fresh, Load(server.port, threads=2, keep_alive=True) as persistent:
        time.sleep(0.5)
        script.write_text(V1 % "two")
        server.signal(signal.SIGHUP)
        assert _wait_for(lambda: get(server.port)[2] == b"version-two")
        assert _wait_for(lambda: not (server.worker_pids() & old_pids))
        time.sleep(0.3)
    for load in (fresh, persistent):
        assert load.failures == [], load.failures[:5]
        assert b"version-one" in load.bodies and b"version-two" in load.bodies
    assert len(fresh.bodies) > 50
    assert len(server.worker_pids()) == 2
    assert server.proc.poll() is None


def test_hup_with_broken_new_code_keeps_old_workers(server_factory, tmp_path):
    script = tmp_path / "app.wsgi"
    script.write_text(V1 % "good")
    server = server_factory(str(script), "--workers", "2")
    server.wait_booted(2)
    old_pids = server.worker_pids()
    script.write_text("raise ImportError('broken deploy')\n")
    server.signal(signal.SIGHUP)
    assert _wait_for(lambda: "reload failed" in server.log())
    assert get(server.port)[2] == b"version-good"
    assert server.worker_pids() == old_pids


def test_term_drains_in_flight_requests_and_exits_zero(server_factory):
    server = server_factory("apps:router", "--workers", "2", "--graceful-timeout", "10")
    results: list[tuple] = []
    thread = threading.Thread(target=lambda: results.append(get(server.port, "/sleep?1.5")))
    thread.start()
    time.sleep(0.4)
    server.signal(signal.SIGTERM)
    thread.join(10)
    assert results and results[0][0] == 200 and results[0][2] == b"Hello World!"
    assert results[0][1]["connection"] == "close"
    assert server.proc.wait(10) == 0
    try:
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
        refused = False
    except OSError:
        refused = True
    assert refused, "the master must release its listening socket on exit"


def test_int_is_a_fast_stop(server_factory):
    server = server_factory("apps:router", "--workers", "1", "--graceful-timeout", "30")
    thread = threading.Thread(target=lambda: get(server.port, "/sleep?20", timeout=30), daemon=True)
    thread.start()
    time.sleep(0.3)
    start = time.monotonic()
    server.signal(signal.SIGINT)
    assert server.proc.wait(10) == 0
    assert time.monotonic() - start < 4


def test_killed_worker_is_replaced_under_load(server_factory):
    server = server_factory("apps:router", "--workers", "2")
    pids = server.worker_pids()
    victim = sorted(pids)[0]
    with Load(server.port, threads=4) as load:
        time.sleep(0.3)
        os.kill(victim, signal.SIGKILL)
        assert _wait_for(lambda: len(server.worker_pids() - {victim}) == 2)
        time.sleep(0.3)
        with load.lock:
            served_before = len(load.bodies)
            load.failures.clear()  # requests that were on the killed worker may fail
        time.sleep(0.7)
    assert load.failures == []
    assert len(load.bodies) > served_before + 20
    assert victim not in server.worker_pids()
    assert "was killed by signal 9" in server.log()


def test_hung_worker_is_killed_and_replaced(server_factory):
    server = server_factory("apps:router", "--workers", "1", "--timeout", "2")
    pids = server.worker_pids()
    with connect(server.port, timeout=15) as sock:
        sock.sendall(b"GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
        start = time.monotonic()
        assert read_until_close(sock, timeout=15) == b""
        assert time.monotonic() - start < 8
    assert _wait_for(lambda: len(server.worker_pids()) == 1 and server.worker_pids() != pids)
    assert get(server.port)[0] == 200
    assert "timed out" in server.log()


def test_max_requests_recycles_workers_without_failures(server_factory):
    server = server_factory("apps:router", "--workers", "1", "--max-requests", "20", "--max-requests-jitter", "5")
    seen = set()
    for _ in range(80):
        status, _, body = get(server.port, "/pid")
        assert status == 200
        seen.add(body)
    assert len(seen) >= 3


def test_ttin_ttou_change_worker_count(server_factory):
    server = server_factory("apps:router", "--workers", "1")
    server.signal(signal.SIGTTIN)
    assert _wait_for(lambda: len(server.worker_pids()) == 2)
    server.signal(signal.SIGTTOU)
    assert _wait_for(lambda: len(server.worker_pids()) == 1)


def test_slow_and_idle_clients_do_not_starve_a_normal_client(server_factory):
    server = server_factory("apps:router", "--workers", "1", "--threads", "1")
    socks = []
    try:
        for i in range(300):
            sock = connect(server.port)
            if i % 3 == 0:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")  # then idles, keep-alive
            elif i % 3 == 1:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")  # slowloris head
            else:
                sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nabc")  # slow body
            socks.append(sock)
        for sock in socks[1::3]:
            sock.sendall(b"a")
        for _ in range(5):
            start = time.monotonic()
            status, _, body = get(server.port)
            assert status == 200 and body == b"Hello World!"
            assert time.monotonic() - start < 0.5
    finally:
        for sock in socks:
            sock.close()


def test_threads_mode_serves_blocking_apps_concurrently(server_factory):
    server = server_factory("apps:router", "--workers", "1", "--threads", "4")
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(get(server.port, "/sleep?1")[0])) for _ in range(4)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [200] * 4
    assert time.monotonic() - start < 2.5
    with connect(server.port) as sock:  # pipelining through the pool keeps order
        sock.sendall(b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\nGET /write HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = read_until_close(sock)
    status, _, _, rest = parse_response(data)
    assert status == 200 and rest.endswith(b"0\r\n\r\n") and b"written-" in rest


def test_boot_failure_exits_non_zero(tmp_path):
    import subprocess

    from conftest import headrace_cmd, headrace_env

    script = tmp_path / "bad.wsgi"
    script.write_text("raise RuntimeError('cannot start')\n")
    proc = subprocess.run(headrace_cmd("--bind", "127.0.0.1:0", str(script)), env=headrace_env(),
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode == 3
    assert "cannot start" in proc.stderr


def test_term_with_idle_keep_alive_connections_exits_promptly(server_factory):
    server = server_factory("apps:router", "--workers", "2", "--keep-alive", "60", "--graceful-timeout", "30")
    idle = []
    for _ in range(10):
        sock = connect(server.port)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert sock.recv(1000).startswith(b"HTTP/1.1 200")
        idle.append(sock)
    start = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.proc.wait(10) == 0
    assert time.monotonic() - start < 3, "idle connections must not hold a graceful stop"
    for sock in idle:
        assert read_until_close(sock, timeout=2) == b""
        sock.close()


def test_hup_rereads_the_config_file(server_factory, tmp_path):
    import json

    def script_name(path: str) -> str | None:
        body = get(server.port, path)[2]
        return json.loads(body)["SCRIPT_NAME"] if body.startswith(b"{") else None

    config = tmp_path / "headrace.toml"
    config.write_text('root-path = "/one"\nworkers = 1\n')
    server = server_factory("apps:router", "--config", str(config))
    assert script_name("/one/environ") == "/one"
    config.write_text('root-path = "/two"\nworkers = 2\n')
    server.signal(signal.SIGHUP)
    assert _wait_for(lambda: script_name("/two/environ") == "/two")
    assert _wait_for(lambda: len(server.worker_pids()) == 2)
    config.write_text('root-path = "/three"\nbogus = 1\n')
    server.signal(signal.SIGHUP)
    assert _wait_for(lambda: "config not reloaded" in server.log())
    time.sleep(0.5)
    assert script_name("/two/environ") == "/two"
