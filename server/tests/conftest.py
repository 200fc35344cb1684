"""Fixtures that run real headrace processes on real sockets (loopback and unix only)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
SRC_DIR = TESTS_DIR.parent / "src"
if str(SRC_DIR) not in sys.path:  # run the tests against this checkout, installed or not
    sys.path.insert(0, str(SRC_DIR))


def headrace_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC_DIR), str(TESTS_DIR)])
    env.pop("LISTEN_FDS", None)
    env.pop("LISTEN_PID", None)
    env.pop("NOTIFY_SOCKET", None)
    if extra:
        env.update(extra)
    return env


def headrace_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "headrace", *args]


class Server:
    """A headrace master started with a pre-bound loopback socket passed as ``fd://N``."""

    def __init__(self, tmp_path: Path, app: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1024)
        self.port = self.listener.getsockname()[1]
        self.log_path = tmp_path / f"headrace-{self.port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        fd = self.listener.fileno()
        self.proc = subprocess.Popen(
            headrace_cmd("--bind", f"fd://{fd}", *args, app),
            pass_fds=(fd,),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=headrace_env(env),
            cwd=str(TESTS_DIR),
        )
        self.listener.close()
        self.wait_ready()

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"headrace exited early:\n{self.log()}")
            try:
                status, _, _ = request(self.port, b"GET /ready HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                if status:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"headrace not ready:\n{self.log()}")

    def wait_booted(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` workers have reported that their application loaded."""
        deadline = time.monotonic() + timeout
        while self.log().count(" ready\n") < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not ready:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> set[int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True,
                             text=True, check=False).stdout
        return {int(x) for x in out.split()}

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_close(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def parse_response(data: bytes) -> tuple[int, dict[str, str], bytes, bytes]:
    """Parse the first response in ``data``: (status, headers, body, rest)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return 0, {}, b"", data
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers[key] = headers[key] + ", " + value.strip() if key in headers else value.strip()
    if "content-length" in headers:
        n = int(headers["content-length"])
        return status, headers, rest[:n], rest[n:]
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                _, _, rest = rest.partition(b"\r\n")
                return status, headers, body, rest
            body += rest[:size]
            rest = rest[size + 2 :]
    return status, headers, rest, b""


def request(port: int, raw: bytes, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes on a fresh connection, read until the server closes it."""
    with connect(port, timeout) as sock:
        sock.sendall(raw)
        data = read_until_close(sock, timeout)
    status, headers, body, _ = parse_response(data)
    return status, headers, body


def get(port: int, path: str = "/", headers: str = "", timeout: float = 5.0):
    raw = f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}\r\n".encode()
    return request(port, raw, timeout)


@pytest.fixture
def server_factory(tmp_path):
    servers: list[Server] = []

    def start(app: str = "apps:router", *args: str, env: dict[str, str] | None = None) -> Server:
        server = Server(tmp_path, app, *args, env=env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server per test module for stateless request/response tests."""
    server = Server(tmp_path_factory.mktemp("srv"), "apps:router", "--workers", "2", "--keep-alive", "3",
                    "--limit-request-body", "100000", "--forwarded-allow-ips", "127.0.0.1")
    yield server
    server.stop()
