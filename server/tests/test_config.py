"""Command line, config file, binding and socket activation."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest
from conftest import TESTS_DIR, headrace_cmd, headrace_env, parse_response, read_until_close

from headrace import __version__


def run(*args: str, cwd: str | None = None, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(headrace_cmd(*args), env=headrace_env(), capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or str(TESTS_DIR))


def unix_get(path: str, target: str = "/", timeout: float = 10.0) -> tuple[int, dict, bytes]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(5)
                sock.connect(path)
                sock.sendall(f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
                status, headers, body, _ = parse_response(read_until_close(sock))
                return status, headers, body
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(headrace_cmd(*args), env=env or headrace_env(), cwd=str(TESTS_DIR),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    return err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0", "apps:hello"], "--workers: must be at least 1"),
        (["--workers", "two", "apps:hello"], "--workers: expected a number"),
        (["--timeout", "-1", "apps:hello"], "--timeout: must be at least 0"),
        (["--no-such-option", "apps:hello"], "unrecognized arguments: --no-such-option"),
        ([], "no application given"),
        (["--bind", "localhost:http", "apps:hello"], "invalid port"),
        (["--bind", "::1:8000", "apps:hello"], "brackets"),
        (["--bind", "fd://x", "apps:hello"], "fd://N"),
        (["--forwarded-allow-ips", "10.0.0.300", "apps:hello"], "invalid address"),
        (["--root-path", "app", "apps:hello"], "--root-path: must start with '/'"),
        (["--chdir", "/nonexistent-dir", "apps:hello"], "no such directory"),
        (["/nonexistent/app.wsgi"], "WSGI script not found"),
        (["--config", "/nonexistent.toml", "apps:hello"], "cannot read config file"),
        (["--log-level", "loud", "apps:hello"], "--log-level"),
    ],
)
def test_option_errors_are_one_line_and_non_zero(tmp_path, args, message):
    sock_path = tmp_path / "never.sock"
    proc = run("--bind", f"unix:{sock_path}", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("headrace: error: ")
    assert message in lines[0]
    assert not sock_path.exists(), "nothing may be bound when the configuration is invalid"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('workers = 2\nwrokers = 3\n', "unknown config key 'wrokers'"),
        ('workers = "2"\n', "workers: expected an integer"),
        ("keep-alive = true\n", "keep_alive: expected a number"),
        ("bind = 5\n", "bind: expected a list"),
        ("workers = [\n", "invalid TOML"),
    ],
)
def test_config_file_errors(tmp_path, content, message):
    config = tmp_path / "headrace.toml"
    config.write_text(content)
    proc = run("--config", str(config), "apps:hello")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_address_in_use_is_a_one_line_error():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        proc = run("--bind", f"127.0.0.1:{taken.getsockname()[1]}", "apps:hello")
    finally:
        taken.close()
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot bind" in lines[0] and "in use" in lines[0], proc.stderr


def test_version():
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"headrace {__version__}"


def test_check_config(tmp_path):
    ok = run("--check-config", "apps:hello")
    assert ok.returncode == 0 and "configuration OK" in ok.stdout
    missing = run("--check-config", "apps:no_such_app")
    assert missing.returncode == 1 and "no_such_app" in missing.stderr
    broken = tmp_path / "broken.wsgi"
    broken.write_text("import no_such_module_here\n")
    bad = run("--check-config", str(broken))
    assert bad.returncode == 1 and "no_such_module_here" in bad.stderr


def test_config_file_with_unix_socket_and_cli_override(tmp_path):
    sock_path = tmp_path / "app.sock"
    config = tmp_path / "headrace.toml"
    config.write_text(f'bind = ["unix:{sock_path}"]\nworkers = 1\nroot-path = "/from-config"\n'
                      f'access_log = "{tmp_path / "access.log"}"\napp = "apps:router"\n')
    proc = start("--config", str(config), "--root-path", "/from-cli")
    try:
        status, _, body = unix_get(str(sock_path), "/from-cli/environ")
        env = json.loads(body)
        assert status == 200
        assert env["SCRIPT_NAME"] == "/from-cli"
        assert env["PATH_INFO"] == "/environ"
    finally:
        stop(proc)
    assert not sock_path.exists(), "the unix socket is removed on exit"
    line = (tmp_path / "access.log").read_text().splitlines()[-1]
    assert '"GET /from-cli/environ HTTP/1.1" 200 ' in line
    assert line.endswith('"-" "-"')


def test_script_file_with_callable_and_chdir(tmp_path):
    (tmp_path / "site").mkdir()
    script = tmp_path / "site" / "myapp.wsgi"
    script.write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'from script']\n"
    )
    sock_path = tmp_path / "s.sock"
    proc = start("--chdir", str(tmp_path / "site"), "--callable", "app", "--bind", f"unix:{sock_path}",
                 "--workers", "1", "myapp.wsgi")
    try:
        assert unix_get(str(sock_path))[2] == b"from script"
    finally:
        stop(proc)


def test_access_log_to_stdout_in_combined_format(tmp_path):
    sock_path = tmp_path / "s.sock"
    proc = start("--bind", f"unix:{sock_path}", "--workers", "1", "--access-log", "-", "apps:router")
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            deadline = time.monotonic() + 10
            while True:
                try:
                    sock.connect(str(sock_path))
                    break
                except OSError:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            sock.sendall(b'GET /x?q="y" HTTP/1.1\r\nHost: h\r\nReferer: http://r/\r\nUser-Agent: UA "1"\r\n'
                         b"Connection: close\r\n\r\n")
            read_until_close(sock)
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(sock_path))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n")
            read_until_close(sock)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    line, rejected = out.strip().splitlines()[-2:]
    assert re.fullmatch(r'- - - \[[^\]]+\] "-" 400 \d+ "-" "-"', rejected), rejected
    assert line.startswith("- - - [")
    assert '] "GET /x?q=\\"y\\" HTTP/1.1" 200 12 "http://r/" "UA \\"1\\""' in line


def test_systemd_socket_activation(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    env = headrace_env({"LISTEN_FDS": "1"})
    fd = listener.fileno()

    def as_fd3() -> None:
        os.dup2(fd, 3)

    # LISTEN_PID must be the server's own pid, so set it in a shell that then execs.
    cmd = ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh", *headrace_cmd("--workers", "1", "apps:hello")]
    proc = subprocess.Popen(cmd, env=env, cwd=str(TESTS_DIR), pass_fds=(3,), preexec_fn=as_fd3,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    listener.close()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert parse_response(read_until_close(sock))[2] == b"Hello World!"
    finally:
        err = stop(proc)
    assert f"listening on 127.0.0.1:{port}" in err


def test_ipv6_bind_and_sd_notify(tmp_path):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(10)
    probe = socket.socket(socket.AF_INET6)
    try:
        probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1")
    port = probe.getsockname()[1]
    probe.close()
    env = headrace_env({"NOTIFY_SOCKET": str(tmp_path / "notify")})
    proc = start("--bind", f"[::1]:{port}", "--workers", "1", "apps:router", env=env)
    try:
        assert notify.recv(1024).startswith(b"READY=1")
        with socket.create_connection(("::1", port), timeout=5) as sock:
            sock.sendall(b"GET /environ HTTP/1.1\r\nHost: [::1]:1234\r\nConnection: close\r\n\r\n")
            env_seen = json.loads(parse_response(read_until_close(sock))[2])
        assert env_seen["SERVER_NAME"] == "[::1]" and env_seen["SERVER_PORT"] == "1234"
        assert env_seen["REMOTE_ADDR"] == "::1"
        proc.send_signal(1)  # SIGHUP
        assert notify.recv(1024).startswith(b"RELOADING=1")
        assert notify.recv(1024) == b"READY=1"
    finally:
        stop(proc)
        notify.close()


def test_installed_console_script_runs():
    """``python -m headrace`` and the ``headrace`` console script share the entry point."""
    proc = subprocess.run([sys.executable, "-c", "import headrace.cli as c; raise SystemExit(c.main(['--version']))"],
                          env=headrace_env(), capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0 and __version__ in proc.stdout


def test_app_spec_forms(tmp_path, monkeypatch):
    from headrace.app_loader import is_script_path

    monkeypatch.chdir(tmp_path)
    assert is_script_path("/usr/local/www/wsgi-scripts/myapp.wsgi")
    assert not is_script_path("myproject.wsgi")  # Django-style module, no such file here
    assert not is_script_path("myproject.wsgi:application")
    (tmp_path / "site.wsgi").write_text("")
    assert is_script_path("site.wsgi")
