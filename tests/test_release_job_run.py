"""roles/releases/files/job-run, run here for real beside app-exec: the scheduled time worked out with this
machine's systemd-analyze, the claim and the record asked of a stand-in psql (which answers as the app's
database would), and the job run in the release through app-exec with the app's environment."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from live_release import make_live_release

FILES = Path(__file__).resolve().parents[1] / "roles" / "releases" / "files"
FAKE_PSQL = """#!/bin/sh
sql=$(cat)
echo "$* :: $sql" >> "$STATE/psql"
case $sql in
  *"INSERT INTO wsgi_job_runs"*) [ "$CLAIM" = yes ] && echo claimed; echo "taken web9 2026-12-05 10:00:00+00" ;;
esac
"""

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")


@pytest.fixture()
def host(tmp_path: Path) -> Path:
    (tmp_path / "lib").mkdir()
    for name in ("job-run", "app-exec"):
        shutil.copy(FILES / name, tmp_path / "lib" / name)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "psql").write_text(FAKE_PSQL)
    (tmp_path / "bin" / "psql").chmod(0o755)
    make_live_release(tmp_path, "show-job", 'echo "ran $PWD|$WSGI_JOB_NAME|$WSGI_JOB_SCHEDULED_FOR|$SECRET"\nexit 3\n',
                      {"SECRET": "s3", "PGDATABASE": "shop"})
    return tmp_path


def this_minute() -> str:
    """The scheduled time of '*:*:00' now, once the minute is not about to turn (the run takes a second)."""
    while datetime.datetime.now(datetime.UTC).second >= 57:
        time.sleep(1)
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:00Z")


def job_run(host: Path, claim: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{host / 'bin'}:{os.environ['PATH']}", "STATE": str(host),
           "CLAIM": "yes" if claim else "no"}
    return subprocess.run([sys.executable, str(host / "lib" / "job-run"), "shop", "clean", "*:*:00", "60",
                           str(host / "shop.json"), str(host / "current"), "/var/lib/wsgi-apps/shop", "show-job"],
                          capture_output=True, text=True, check=False, env=env)


def test_the_host_that_claims_the_time_runs_the_job_in_the_release_and_records_its_status(host: Path) -> None:
    minute = this_minute()
    done = job_run(host, claim=True)
    assert done.returncode == 3, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"job clean of shop for {minute}: started on ") and lines[0].endswith(" in release r1")
    assert lines[1] == f"ran {host / 'releases' / 'r1'}|clean|{minute}|s3"
    assert lines[2].startswith(f"job clean of shop for {minute}: ended with exit status 3 after ")
    # The claim, then the record of the end: each call's variables, then its SQL.
    asked = (host / "psql").read_text()
    assert f"scheduled={minute}" in asked and "app=shop" in asked and "timeout=60" in asked
    assert asked.index("INSERT INTO wsgi_job_runs") < asked.index("-v status=3") < asked.index("UPDATE wsgi_job_runs")


def test_a_time_another_host_claimed_is_not_run_here(host: Path) -> None:
    minute = this_minute()
    done = job_run(host, claim=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"job clean of shop for {minute}: not run here (taken web9 2026-12-05 10:00:00+00)"]
    assert "UPDATE" not in (host / "psql").read_text()
