"""The module_runs callback (plugins/callback/module_runs.py): what it counts, and that it changes no output.

The counting rules are checked in-process, with results fed to the callback the way Ansible's task queue
feeds them; one small playbook on localhost then checks the same rules through a real ansible-playbook,
and that the run prints the same with the callback enabled as without it, under the default stdout
callback and under ansible.posix.json (which the Molecule tests read).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ansible.plugins.loader import callback_loader

PROJECT_DIR = Path(__file__).resolve().parent.parent
CALLBACK_DIR = PROJECT_DIR / "plugins" / "callback"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

callback_loader.add_directory(str(CALLBACK_DIR))


def new_callback(output_file: str | None = None) -> Any:
    """A module_runs callback loaded the way Ansible loads it (its options known), with its options set."""
    callback = callback_loader.get("module_runs")
    assert callback is not None
    callback.set_options(direct={"output_file": output_file})
    return callback


@dataclass
class FakeHost:
    name: str

    def get_name(self) -> str:
        return self.name


@dataclass
class FakeTask:
    action: str
    loop: Any = None
    loop_with: str | None = None
    delegate_to: str | None = None


@dataclass
class FakeResult:
    """What a callback reads of a task result: host, task and the result dictionary."""

    host: FakeHost
    task: FakeTask
    result: dict[str, Any] = field(default_factory=dict)


def result(action: str = "ansible.builtin.command", host: str = "web1", looped: bool = False,
           delegate_to: str | None = None, **data: Any) -> FakeResult:
    task = FakeTask(action, loop="{{ items }}" if looped else None, delegate_to=delegate_to)
    return FakeResult(FakeHost(host), task, data)


def test_counts_per_outcome() -> None:
    callback = new_callback()
    callback.v2_runner_on_ok(result(changed=False))
    callback.v2_runner_on_ok(result(changed=True))
    callback.v2_runner_on_failed(result(failed=True), ignore_errors=True)
    callback.v2_runner_retry(result(failed=True, attempts=1))
    callback.v2_runner_on_skipped(result(skipped=True))
    callback.v2_runner_on_unreachable(result(host="web2", unreachable=True))
    callback.v2_runner_on_ok(result(action="ansible.builtin.set_fact"))
    callback.v2_runner_on_ok(result(action="debug"))
    report = callback.runs.report()
    assert report["hosts"]["web1"] == {
        "ran": 4, "ok": 1, "changed": 1, "failed": 1, "retries": 1, "skipped": 1, "unreachable": 0,
        "controller": 2,
    }
    assert report["hosts"]["web2"]["unreachable"] == 1 and report["hosts"]["web2"]["ran"] == 0
    assert report["total"]["ran"] == 4 and report["total"]["unreachable"] == 1


def test_loop_items_count_once_each() -> None:
    callback = new_callback()
    for changed in (True, False, True):
        callback.v2_runner_item_on_ok(result(looped=True, changed=changed))
    callback.v2_runner_item_on_skipped(result(looped=True, skipped=True))
    callback.v2_runner_item_on_failed(result(looped=True, failed=True))
    # The loop's summary, after its items: not counted again.
    callback.v2_runner_on_failed(result(looped=True, changed=True, results=[{}] * 5))
    # A loop over no items: one skipped result.
    callback.v2_runner_on_skipped(result(looped=True, skipped=True, results=[]))
    counts = callback.runs.report()["hosts"]["web1"]
    assert (counts["ran"], counts["changed"], counts["ok"], counts["failed"], counts["skipped"]) == (4, 2, 1, 1, 2)


def test_a_delegated_result_counts_for_its_delegate() -> None:
    callback = new_callback()
    callback.v2_runner_on_ok(result(delegate_to="lb1"))
    callback.v2_runner_item_on_ok(result(looped=True, changed=True, delegate_to="lb1"))
    # A controller-only action stays with its host even when delegated.
    callback.v2_runner_on_ok(result(action="ansible.builtin.set_fact", delegate_to="lb1"))
    hosts = callback.runs.report()["hosts"]
    assert hosts["lb1"]["ran"] == 2 and hosts["lb1"]["changed"] == 1
    assert hosts["web1"]["ran"] == 0 and hosts["web1"]["controller"] == 1


def test_writes_nothing_without_output_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    callback = new_callback()
    monkeypatch.chdir(tmp_path)
    callback.v2_runner_on_ok(result())
    callback.v2_playbook_on_stats(None)
    assert list(tmp_path.iterdir()) == []


def test_writes_its_report(tmp_path: Path) -> None:
    callback = new_callback(str(tmp_path / "runs.json"))
    callback.v2_runner_on_ok(result(changed=True))
    callback.v2_playbook_on_stats(None)
    assert json.loads((tmp_path / "runs.json").read_text()) == callback.runs.report()
    assert [path.name for path in tmp_path.iterdir()] == ["runs.json"]


PLAYBOOK = """
- name: What module_runs counts
  hosts: web1
  gather_facts: false
  tasks:
    - name: A module that changes nothing
      ansible.builtin.command: "true"
      changed_when: false
    - name: A module that changes something
      ansible.builtin.command: "true"
    - name: A loop of three items, one of them skipped
      ansible.builtin.command: "echo {{ item }}"
      loop: [1, 2, 3]
      when: item != 2
    - name: A loop over nothing
      ansible.builtin.command: "echo {{ item }}"
      loop: []
    - name: A skipped task
      ansible.builtin.command: "false"
      when: false
    - name: An ignored failure
      ansible.builtin.file:
        path: /nonexistent/module-runs
        state: file
      ignore_errors: true
    - name: A retry, then success
      ansible.builtin.shell: "test -e {{ marker }} || {{ '{' }} touch {{ marker }}; false; {{ '}' }}"
      register: retried
      until: retried is succeeded
      retries: 2
      delay: 0
      changed_when: false
    - name: Delegated to the balancer
      ansible.builtin.command: "true"
      delegate_to: lb1
      changed_when: false
    - name: Controller only
      ansible.builtin.set_fact:
        seen: true
    - name: Controller only too
      ansible.builtin.debug:
        msg: done
"""


@dataclass(frozen=True)
class PlaybookRun:
    stdout: str
    counts: dict[str, Any] | None


@pytest.fixture(scope="module")
def run_playbook(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Run PLAYBOOK on localhost (local connection) with a stdout callback, with or without module_runs;
    each combination once."""
    runs: dict[tuple[str, bool], PlaybookRun] = {}

    def run(stdout_callback: str, with_counts: bool) -> PlaybookRun:
        if (stdout_callback, with_counts) in runs:
            return runs[stdout_callback, with_counts]
        work = tmp_path_factory.mktemp("module-runs")
        (work / "play.yml").write_text(PLAYBOOK)
        (work / "hosts.yml").write_text(json.dumps({"all": {"hosts": {
            name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
            for name in ("web1", "lb1")
        }}}))
        env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
        env.update(ANSIBLE_CONFIG=str(work / "none.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK=stdout_callback,
                   ANSIBLE_CALLBACK_PLUGINS=str(CALLBACK_DIR), ANSIBLE_LOCAL_TEMP=str(work / "tmp"))
        counts_file = work / "runs.json"
        if with_counts:
            env.update(ANSIBLE_CALLBACKS_ENABLED="module_runs", WSGI_MODULE_RUNS_FILE=str(counts_file))
        done = subprocess.run(
            [str(ANSIBLE_PLAYBOOK), "-i", "hosts.yml", "play.yml", "-e", f"marker={work / 'marker'}"],
            cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        # Messages name the playbook's path, which differs from run to run.
        runs[stdout_callback, with_counts] = PlaybookRun(
            done.stdout.replace(str(work), "WORK"),
            json.loads(counts_file.read_text()) if counts_file.exists() else None,
        )
        return runs[stdout_callback, with_counts]

    return run


def test_counts_of_a_real_run(run_playbook: Any) -> None:
    counts = run_playbook("default", with_counts=True).counts
    assert counts["hosts"]["web1"] == {
        # 2 commands, 2 loop items, the ignored failure, the retried task (its retry and its success)
        "ran": 7, "ok": 2, "changed": 3, "failed": 1, "retries": 1,
        # the skipped item, the empty loop, the skipped task
        "skipped": 3, "unreachable": 0, "controller": 2,
    }
    assert counts["hosts"]["lb1"] == {**dict.fromkeys(counts["hosts"]["lb1"], 0), "ran": 1, "ok": 1}


def test_the_output_is_unchanged(run_playbook: Any) -> None:
    assert run_playbook("default", with_counts=True).stdout == run_playbook("default", with_counts=False).stdout


def test_the_json_callback_still_reports(run_playbook: Any) -> None:
    with_counts = run_playbook("ansible.posix.json", with_counts=True)
    without = run_playbook("ansible.posix.json", with_counts=False)
    assert with_counts.counts is not None and with_counts.counts["total"]["ran"] == 8
    assert json.loads(with_counts.stdout)["stats"] == json.loads(without.stdout)["stats"]
