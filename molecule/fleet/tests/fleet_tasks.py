"""The Django project's Celery tasks, driven over HTTP the way a user's app would: a request through the
balancer enqueues them (POST /tasks/enqueue), a worker on a web server runs each, and every run is recorded
in the app's PostgreSQL (task, host, version, start, end), read back through any host (GET /tasks/done).
Shared by the rollout test (tasks during a rolling update) and test_fleet_tasks.py."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from typing import Self

from conftest import Lab

BOARD = "board.example.com"


def enqueue(lab: Lab, token: str, count: int = 1, seconds: float = 0, queue: str = "") -> dict:
    """count tasks token-1 .. token-count, each sleeping seconds, enqueued by a request to lab's port 80 (on
    queue, or Celery's default queue)."""
    body = urllib.parse.urlencode({"token": token, "count": count, "seconds": seconds, "queue": queue})
    conn = http.client.HTTPConnection("127.0.0.1", lab.published(80), timeout=30)
    try:
        conn.request("POST", "/tasks/enqueue", body=body, headers={
            "Host": BOARD, "Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        answer = response.read()
        assert response.status == 202, (response.status, answer[:300])
        return {**json.loads(answer), "member": response.getheader("X-Balancer-Member")}
    finally:
        conn.close()


def runs(lab: Lab, token: str) -> list[dict]:
    """The recorded runs of a token's tasks, read through lab's port 80."""
    response = lab.request(f"/tasks/done?token={urllib.parse.quote(token)}", BOARD)
    assert response.status == 200, response.text[:300]
    return response.json()["runs"]


def wait_for_runs(lab: Lab, token: str, count: int, seconds: float) -> list[dict]:
    """The runs once there are at least count of them (or whatever there is after seconds)."""
    deadline = time.monotonic() + seconds
    while True:
        done = runs(lab, token)
        if len(done) >= count or time.monotonic() > deadline:
            return done
        time.sleep(1)


class TaskFeed:
    """A client enqueuing one task (sleeping task_seconds) per request through the balancer, every pause
    seconds, while a rollout runs: the tasks are <token>-<n>-1 for n in 1..enqueued. A request that fails is
    counted, not retried (the balancer's failures are the rollout test's business): only answered requests
    enqueued a task."""

    def __init__(self, lab: Lab, token: str, pause: float = 1.0, task_seconds: float = 0,
                 seconds: float = 1200) -> None:
        self.lab, self.token, self.pause, self.task_seconds = lab, token, pause, task_seconds
        self.deadline = time.monotonic() + seconds
        self.enqueued = 0
        self.failed = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopped.is_set() and time.monotonic() < self.deadline:
            try:
                enqueue(self.lab, f"{self.token}-{self.enqueued + 1}", 1, self.task_seconds)
                self.enqueued += 1
            except (OSError, AssertionError, http.client.HTTPException):
                self.failed += 1
            self.stopped.wait(self.pause)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(60)

    @property
    def tasks(self) -> list[str]:
        """The names of the tasks it enqueued."""
        return [f"{self.token}-{number}-1" for number in range(1, self.enqueued + 1)]


def worker_stops(node, unit: str) -> list[float]:
    """When systemd began to stop a unit on a host (its journal's "Stopping ..." lines), as Unix times."""
    lines = node.check_output(f"journalctl -u {unit} -o json --no-pager MESSAGE_ID=de5b426a63be47a7b6ac3eaac82e2f6f")
    return [int(entry["__REALTIME_TIMESTAMP"]) / 1e6 for entry in map(json.loads, lines.splitlines())
            if str(entry.get("MESSAGE", "")).startswith("Stopping")]


def worker_release(node, unit: str) -> str:
    """The release directory a process unit's main process runs from: its program is the release's venv's
    (app-exec runs the command with the release's .venv/bin first on PATH). Its command line, since root in
    these containers may not read another user's /proc/<pid>/cwd (no CAP_SYS_PTRACE)."""
    pid = node.check_output(f"systemctl show --property=MainPID --value {unit}")
    program = node.check_output(f"ps -o args= -p {pid}").split()[1]
    return program.split("/.venv/")[0]
