"""The test shop's Celery task: records each run in the app's database (the task, the host and the version
of the release it ran in, when it started and ended), so that a test can check that every task enqueued
ran exactly once, where, and on which release."""

import socket
import time

from celery import shared_task
from django.db import connection
from shop.version import VERSION

TABLE = ("CREATE TABLE IF NOT EXISTS task_runs (task text, host text, version text, started double precision, "
         "finished double precision)")


@shared_task
def record(task: str, seconds: float = 0) -> None:
    """Sleep seconds (a long task), then record the run."""
    started = time.time()
    time.sleep(seconds)
    with connection.cursor() as cursor:
        cursor.execute(TABLE)
        cursor.execute("INSERT INTO task_runs VALUES (%s, %s, %s, %s, %s)",
                       [task, socket.gethostname(), VERSION, started, time.time()])


def runs(token: str) -> list[dict]:
    """The recorded runs of the tasks of a token (token-1, token-2, ...)."""
    with connection.cursor() as cursor:
        cursor.execute(TABLE)
        cursor.execute("SELECT task, host, version, started, finished FROM task_runs WHERE task LIKE %s "
                       "ORDER BY started", [token + "-%"])
        return [dict(zip(("task", "host", "version", "started", "finished"), row)) for row in cursor.fetchall()]
