"""roles/headrace/files/build_wheel.sh: headrace's wheel built on the controller in one module run.

Run as the role runs it (sh -c with the script's text, SOURCE_DATE_EPOCH set), on the real server/ source
with this Python's pip (which fetches the build backend, as on a controller): one wheel in the wheel
directory, the same bytes when built again, nothing written into the source tree and no temporary
directory left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "roles" / "headrace" / "files" / "build_wheel.sh"


def build(wheel_dir: Path, tmp: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, SOURCE_DATE_EPOCH="315532800", PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(tmp))
    return subprocess.run(["/bin/sh", "-c", SCRIPT.read_text(), "build_wheel.sh", str(ROOT / "server"),
                           sys.executable, str(wheel_dir)], capture_output=True, text=True, env=env, check=False)


def source_tree() -> list[str]:
    return sorted(str(path.relative_to(ROOT / "server")) for path in (ROOT / "server").rglob("*")
                  if "__pycache__" not in path.parts and ".pytest_cache" not in path.parts)


def test_one_reproducible_wheel_and_nothing_left_behind(tmp_path: Path) -> None:
    before = source_tree()
    (tmp_path / "tmp").mkdir()
    first = build(tmp_path / "one" / "wheels", tmp_path / "tmp")
    assert first.returncode == 0, first.stderr
    [wheel] = (tmp_path / "one" / "wheels").glob("headrace-*.whl")
    second = build(tmp_path / "two", tmp_path / "tmp")
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "two" / wheel.name).read_bytes() == wheel.read_bytes()
    assert source_tree() == before
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_failed_build_fails_and_removes_its_directory(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"))
    result = subprocess.run(["/bin/sh", "-c", SCRIPT.read_text(), "build_wheel.sh", str(tmp_path / "nothing"),
                             sys.executable, str(tmp_path / "wheels")], capture_output=True, text=True, env=env,
                            check=False)
    assert result.returncode != 0
    assert list((tmp_path / "tmp").iterdir()) == []
