"""roles/releases/files/processes_up.sh, run here for real with a stand-in systemctl that reports each
unit's state as systemd's `show` does: the check of a host whose apps' processes no health check watches."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "roles" / "releases" / "files" / "processes_up.sh"


def systemctl(tmp_path: Path, states: dict[str, tuple[str, str, float]]) -> dict[str, str]:
    """The environment of a run whose systemctl reports states: unit to (ActiveState, SubState, seconds
    since it entered the active state)."""
    up = float(Path("/proc/uptime").read_text().split()[0])
    cases = "".join(
        f"  *{unit}) printf 'ActiveState={active}\\nSubState={sub}\\nActiveEnterTimestampMonotonic={int((up - ago) * 1e6)}\\n' ;;\n"
        for unit, (active, sub, ago) in states.items())
    (tmp_path / "systemctl").write_text(f'#!/bin/sh\ncase "$*" in\n{cases}esac\n')
    (tmp_path / "systemctl").chmod(0o755)
    return {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-c", SCRIPT.read_text(), "processes_up.sh", *args], capture_output=True,
                          text=True, env=env, check=False, timeout=30)


def test_units_running_steadily_pass_at_once(tmp_path: Path) -> None:
    env = systemctl(tmp_path, {"a@1.service": ("active", "running", 100), "a@2.service": ("active", "running", 50)})
    started = time.monotonic()
    done = run(env, "5", "30", "a@1.service", "a@2.service")
    assert (done.returncode, done.stderr) == (0, "")
    assert time.monotonic() - started < 5


def test_a_unit_restarting_or_just_started_fails_naming_it_after_the_timeout(tmp_path: Path) -> None:
    env = systemctl(tmp_path, {"ok@1.service": ("active", "running", 100),
                               "crash@1.service": ("activating", "auto-restart", 0),
                               "new@1.service": ("active", "running", 0)})
    done = run(env, "30", "2", "ok@1.service", "crash@1.service", "new@1.service")
    assert done.returncode == 1
    assert done.stderr.startswith("not running steadily for 30 s after 2 s:"), done.stderr
    assert "crash@1.service (activating auto-restart" in done.stderr and "new@1.service (active running" in done.stderr
    assert "ok@1.service" not in done.stderr
