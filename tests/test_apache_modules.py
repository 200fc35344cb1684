"""The apache_modules module: Apache's modules read, planned and switched in one module run.

plan() is tested in process; main() runs as Ansible runs it on a host (the module file with its arguments),
against stand-ins for a2query, a2enmod and a2dismod that keep the enabled modules as files in a directory,
so that what a user sees is checked: which modules end up enabled, what is reported, a dry run that
switches nothing, a second run that changes nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from plugin_loading import load

PROJECT_DIR = Path(__file__).resolve().parent.parent
MODULE_PATH = PROJECT_DIR / "plugins" / "modules" / "apache_modules.py"
MODULE = load(MODULE_PATH, "apache_modules_module")
MPMS = ["event", "worker", "prefork"]


def test_a_new_mpm_replaces_the_other_and_takes_a_restart() -> None:
    switches = MODULE.plan(["mpm_prefork", "alias", "status"], ["headers", "alias"], ["status", "autoindex"],
                           "event", MPMS, ["md"])
    assert switches == MODULE.Plan(disable=["mpm_prefork", "status"], enable=["mpm_event", "headers"], restart=True)


def test_modules_alone_take_a_reload_unless_one_needs_a_restart() -> None:
    assert MODULE.plan(["mpm_event"], ["headers"], [], "event", MPMS, ["md"]).restart is False
    assert MODULE.plan(["mpm_event"], ["headers", "md"], [], "event", MPMS, ["md"]).restart is True
    # Already enabled: nothing to switch, nothing to restart.
    assert MODULE.plan(["mpm_event", "md"], ["md"], [], None, MPMS, ["md"]) == MODULE.Plan([], [], False)


def test_without_an_mpm_the_running_one_is_left_alone() -> None:
    assert MODULE.plan(["mpm_worker", "ssl"], ["ssl"], ["cgi"], None, MPMS, []) == MODULE.Plan([], [], False)


FAKE_QUERY = """#!/bin/sh
for f in "$STATE"/*; do [ -e "$f" ] && echo "$(basename "$f") (enabled by site administrator)"; done
exit 0
"""
FAKE_ENABLE = """#!/bin/sh
shift  # -q
for m in "$@"; do
  case "$m" in mpm_*) ls "$STATE" | grep -q '^mpm_' && { echo "$m conflicts" >&2; exit 1; };; esac
  touch "$STATE/$m"; echo "$m" >> "$STATE/../calls"
done
"""
FAKE_DISABLE = """#!/bin/sh
shift 2  # -q -f
for m in "$@"; do rm -f "$STATE/$m"; echo "-$m" >> "$STATE/../calls"; done
"""


@pytest.fixture()
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-in commands and a host with prefork, alias and status enabled."""
    state = tmp_path / "enabled"
    state.mkdir()
    for name in ("mpm_prefork", "alias", "status"):
        (state / name).touch()
    for name, text in (("a2query", FAKE_QUERY), ("a2enmod", FAKE_ENABLE), ("a2dismod", FAKE_DISABLE)):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("STATE", str(state))
    return tmp_path


def run(host: Path, check: bool = False) -> dict[str, Any]:
    arguments = {"mpm": "event", "enable": ["headers", "md", "alias"], "disable": ["status", "autoindex"],
                 "restarting": ["md"], "query_command": [str(host / "a2query"), "-m"],
                 "enable_command": [str(host / "a2enmod"), "-q"],
                 "disable_command": [str(host / "a2dismod"), "-q", "-f"],
                 "_ansible_check_mode": check, "_ansible_diff": True}
    args_file = host / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": arguments}))
    done = subprocess.run([sys.executable, str(MODULE_PATH), str(args_file)], capture_output=True, text=True,
                          check=False)
    return json.loads(done.stdout)


def enabled(host: Path) -> list[str]:
    return sorted(path.name for path in (host / "enabled").iterdir())


def test_one_run_switches_everything_and_a_second_changes_nothing(host: Path) -> None:
    first = run(host)
    assert (first["changed"], first["restart"]) == (True, True)
    assert (first["disabled"], first["enabled"]) == (["mpm_prefork", "status"], ["mpm_event", "headers", "md"])
    assert enabled(host) == ["alias", "headers", "md", "mpm_event"]
    # The other MPM went before the new one came (a2enmod refuses a second MPM).
    assert (host / "calls").read_text().split() == ["-mpm_prefork", "-status", "mpm_event", "headers", "md"]
    assert (first["diff"]["before"], first["diff"]["after"]) == ("alias\nmpm_prefork\nstatus\n",
                                                                 "alias\nheaders\nmd\nmpm_event\n")
    second = run(host)
    assert (second["changed"], second["restart"], second["enabled"], second["disabled"]) == (False, False, [], [])


def test_a_dry_run_says_what_would_switch_and_switches_nothing(host: Path) -> None:
    dry = run(host, check=True)
    assert (dry["changed"], dry["enabled"], dry["disabled"]) == (True, ["mpm_event", "headers", "md"],
                                                                 ["mpm_prefork", "status"])
    assert enabled(host) == ["alias", "mpm_prefork", "status"] and not (host / "calls").exists()


def test_a_module_both_to_enable_and_to_disable_is_refused(host: Path) -> None:
    args_file = host / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "enable": ["ssl"], "disable": ["ssl"], "query_command": ["true"], "enable_command": ["true"],
        "disable_command": ["true"]}}))
    done = subprocess.run([sys.executable, str(MODULE_PATH), str(args_file)], capture_output=True, text=True,
                          check=False)
    assert "ssl both to enable and to disable" in json.loads(done.stdout)["msg"]
