"""roles/headrace/files/instances.sh: the instances' units started or stopped in one run, with a stand-in
systemctl that keeps each unit's state in files and logs its calls, so that what the role reads from the
output (the units it changed, the configurations on the host) and what systemd is asked are checked."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fake_systemctl import asked, install, run_script

SCRIPT = Path(__file__).resolve().parents[1] / "roles" / "headrace" / "files" / "instances.sh"


@pytest.fixture()
def host(tmp_path: Path) -> Path:
    install(tmp_path)
    (tmp_path / "conf").mkdir()
    for name in ("shop.toml", "gone.toml", "notes.txt"):
        (tmp_path / "conf" / name).write_text("")
    return tmp_path


def run(host: Path, *args: str) -> subprocess.CompletedProcess:
    return run_script(SCRIPT, host, *args)


def test_start_names_the_units_it_starts_then_the_configurations(host: Path) -> None:
    conf = host / "conf"
    started = run(host, "start", "apply", "reload", str(conf), "shop")
    assert started.returncode == 0, started.stderr
    assert started.stdout.splitlines() == ["headrace@shop.socket", "headrace@shop.service",
                                           f"config {conf}/gone.toml", f"config {conf}/shop.toml"]
    assert asked(host) == ["daemon-reload", "enable --now headrace@shop.socket headrace@shop.service"]
    again = run(host, "start", "apply", "no-reload", str(conf), "shop")
    assert again.stdout.splitlines() == [f"config {conf}/gone.toml", f"config {conf}/shop.toml"]
    assert len(asked(host)) == 2  # nothing more was asked of systemd


def test_a_dry_run_only_looks_and_stop_lists_no_configurations(host: Path) -> None:
    dry = run(host, "start", "dry-run", "reload", str(host / "conf"), "shop")
    assert dry.stdout.splitlines()[:2] == ["headrace@shop.socket", "headrace@shop.service"]
    assert asked(host) == []
    run(host, "start", "apply", "no-reload", str(host / "conf"), "gone")
    stopped = run(host, "stop", "apply", "no-reload", str(host / "conf"), "gone")
    assert stopped.stdout.splitlines() == ["headrace@gone.socket", "headrace@gone.service"]
    assert asked(host)[-1] == "disable --now headrace@gone.socket headrace@gone.service"


def test_bad_arguments_are_refused(host: Path) -> None:
    result = run(host, "start", "apply", "maybe", str(host / "conf"), "shop")
    assert (result.returncode, result.stderr) == (2, "instances.sh: reload|no-reload, not: maybe\n")
