"""A stand-in systemctl for the tests of the roles' unit scripts (instances.sh, processes.sh): it keeps each
unit's enabled and running state as files in a directory of the test's own and logs every call, so that the
scripts run for real, with /bin/sh, and the tests read what they asked of systemd."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = """#!/bin/sh
echo "$*" >> "$STATE/calls"
case $1 in
  is-enabled) [ -e "$STATE/enabled-$3" ] ;;
  show) if [ -e "$STATE/active-$4" ]; then echo active; else echo inactive; fi ;;
  list-units) for f in "$STATE"/active-*; do [ -e "$f" ] || continue; u=${f##*/active-};
              case $u in $5) echo "$u loaded active running x";; esac; done ;;
  enable) shift 2; for u in "$@"; do touch "$STATE/enabled-$u" "$STATE/active-$u"; done ;;
  disable) shift 2; for u in "$@"; do rm -f "$STATE/enabled-$u" "$STATE/active-$u"; done ;;
  restart) shift; for u in "$@"; do touch "$STATE/active-$u"; done ;;
esac
"""


def install(state: Path) -> Path:
    """The stand-in as state/bin/systemctl, its state in state; returns state."""
    (state / "bin").mkdir()
    (state / "bin" / "systemctl").write_text(SCRIPT)
    (state / "bin" / "systemctl").chmod(0o755)
    return state


def run_script(script: Path, state: Path, *args: str) -> subprocess.CompletedProcess:
    """script run as the roles run it (sh -c with its text, its name as $0), with the stand-in first on PATH."""
    env = {**os.environ, "PATH": f"{state / 'bin'}:{os.environ['PATH']}", "STATE": str(state)}
    return subprocess.run(["/bin/sh", "-c", script.read_text(), script.name, *args], capture_output=True,
                          text=True, check=False, env=env)


def asked(state: Path) -> list[str]:
    """What was asked of systemd besides looking."""
    path = state / "calls"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line for line in lines if line.split()[0] not in ("is-enabled", "show", "list-units")]
