"""Health check of a web host: proves that Apache and the backend of every app on it answer.

A load balancer asks this often, so it stays cheap: one request per app, all at once, through this host's
own Apache on the loopback address with the site's Host header, the way a client's request would travel
(Apache, then mod_wsgi's daemon processes, embedded interpreters or the app's headrace instance); over
HTTPS for a site with TLS, the way its clients come (its plain port may only redirect). A status
below 500 means the app's code loaded and answered; a 5xx, a timeout or a refused connection means it did
not. The project apps' long-running processes (workers) count too: each running instance keeps a mark in
a run directory (its unit's ExecStartPost, removed by ExecStopPost when it stops or crashes), read here
without asking systemd, which this unprivileged process could not. The answer is 200 when every app
answered and every process runs, and 503 naming the apps and processes that did not.

The apps to ask are in checks.json next to this file, the processes expected in processes.json, written
by the wsgi role with the sites.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor

CHECKS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "checks.json")
PROCESSES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "processes.json")


class LoopbackHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to this host's own Apache, naming the site in SNI, which picks its VirtualHost and certificate.

    The certificate is not verified: this is the host asking itself, and a self-signed one would not pass.
    """

    def __init__(self, server_name: str, port: int, timeout: float) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        super().__init__(server_name, port, timeout=timeout, context=context)

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def probe(check: dict) -> str | None:
    """Ask one app; None when it answered, else what went wrong.

    An ACME site is asked on its plain port until its certificate is live (live_file exists): mod_md
    answers 503 over HTTPS before, and the plain port serves the site meanwhile."""
    live = not check.get("live_file") or os.path.exists(check["live_file"])
    if check.get("tls") and live:
        conn = LoopbackHTTPSConnection(check["server_name"], check["port"], check["timeout"])
    else:
        port = check["port"] if not check.get("tls") else check["plain_port"]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=check["timeout"])
    try:
        conn.request("GET", check["path"], headers={"Host": check["server_name"], "User-Agent": "wsgi-health"})
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
    return None if status < 500 else f"status {status}"


def processes_down() -> list[str]:
    """The expected process instances that have no mark of a running one, as lines naming app and unit."""
    try:
        with open(PROCESSES_FILE, encoding="utf-8") as handle:
            expected = json.load(handle)
    except FileNotFoundError:
        return []
    return [f"{entry['app']}: process {entry['unit']} is down" for entry in expected["units"]
            if not os.path.exists(os.path.join(expected["run_dir"], entry["unit"]))]


def application(environ, start_response):
    with open(CHECKS_FILE, encoding="utf-8") as handle:
        checks = json.load(handle)
    with ThreadPoolExecutor(max_workers=max(1, min(len(checks), 8))) as pool:
        problems = list(pool.map(probe, checks))
    failed = [f"{check['app']}: {problem}" for check, problem in zip(checks, problems) if problem]
    failed += processes_down()
    lines = failed or [f"{check['app']}: ok" for check in checks]
    body = ("\n".join(["fail" if failed else "ok", *lines]) + "\n").encode()
    start_response(
        "503 Service Unavailable" if failed else "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
         ("Cache-Control", "no-store")],
    )
    return [body]
