"""roles/releases/files/switch.sh: every project app switched to its release in one run, on real links in a
temporary directory: `current` names the new release, `previous` the one it left, the names printed are
those switched (what the role restarts), a dry run and an app already at its release change nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "roles" / "releases" / "files" / "switch.sh"


def switch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-c", SCRIPT.read_text(), "switch.sh", *args], capture_output=True, text=True,
                          check=False)


def links(app_dir: Path) -> dict[str, str]:
    return {name: os.readlink(app_dir / name) for name in ("current", "previous") if (app_dir / name).is_symlink()}


def test_each_app_switches_keeping_the_release_it_left(tmp_path: Path) -> None:
    shop, blog = tmp_path / "shop", tmp_path / "blog"
    for app in (shop, blog):
        app.mkdir()
    first = switch("apply", "shop", str(shop), "r1", "blog", str(blog), "b1")
    assert (first.returncode, first.stdout) == (0, "shop\nblog\n"), first.stderr
    assert links(shop) == {"current": "releases/r1"}
    second = switch("apply", "shop", str(shop), "r2", "blog", str(blog), "b1")
    assert second.stdout == "shop\n"
    assert links(shop) == {"current": "releases/r2", "previous": "releases/r1"}
    assert links(blog) == {"current": "releases/b1"}
    assert sorted(os.listdir(shop)) == ["current", "previous"]  # no temporary link left


def test_a_dry_run_names_the_apps_and_switches_nothing(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    switch("apply", "shop", str(tmp_path / "shop"), "r1")
    dry = switch("dry-run", "shop", str(tmp_path / "shop"), "r2")
    assert (dry.returncode, dry.stdout) == (0, "shop\n")
    assert links(tmp_path / "shop") == {"current": "releases/r1"}


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    assert switch("maybe").stderr.startswith("switch.sh: apply|dry-run NAME APP_DIR RELEASE..., not: maybe")
    result = switch("apply", "shop", str(tmp_path))
    assert (result.returncode, result.stderr) == (2, "switch.sh: arguments come in threes (NAME APP_DIR RELEASE), got 2\n")
