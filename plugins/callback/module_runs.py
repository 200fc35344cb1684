"""Count, per host, the task results of a playbook run that ran a module: the round trips a deploy costs.

Every module run is a connection to the host, a Python started there and a result sent back, whatever the
module does; on containers reached through `docker exec` (the lab, Molecule) that is most of a converge's
time. scripts/molecule-steps.sh enables this callback for the converge step of each scenario and prints
the counts, so that a change to the roles shows what it costs in module runs.

An aggregate callback that prints nothing: enabled through callbacks_enabled (ANSIBLE_CALLBACKS_ENABLED),
beside whatever stdout callback the run uses, it leaves the run's output as it was. At the end of the run
it writes its counts as JSON to output_file (WSGI_MODULE_RUNS_FILE); without output_file it writes nothing.

Counting rules:
  - each item of a loop is a result of its own; the loop's summary result is not counted again;
  - a result counts for the host the module ran on: a task delegated to another host counts for that host;
  - ok, changed and failed results ran a module (failed includes ignored errors), and so did each retry of
    an `until` loop and each async poll; ran is their sum;
  - skipped results and unreachable hosts ran none, and are counted apart;
  - actions that only ever run on the controller (debug, set_fact, assert, fail, meta, include_vars,
    add_host, group_by, set_stats, pause, validate_argument_spec, the includes and imports) run no module
    on the host: counted apart as controller.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ansible.plugins.callback import CallbackBase
from ansible.utils.fqcn import add_internal_fqcns

if TYPE_CHECKING:
    from ansible.executor.task_result import CallbackTaskResult

DOCUMENTATION = r"""
name: module_runs
type: aggregate
short_description: Count the task results that ran a module, per host
description:
  - Counts, per host, the task results of the run that ran a module (ok, changed, failed, retries and
    async polls), and apart from them the skipped results, the unreachable hosts and the results of
    actions that run on the controller only.
  - Each item of a loop is a result of its own; a delegated task counts for the host it was delegated to.
  - Prints nothing. Writes the counts as JSON to O(output_file) when the run ends.
requirements:
  - Enabled through callbacks_enabled (for example ANSIBLE_CALLBACKS_ENABLED=wsgi_hosting.debian.module_runs).
options:
  output_file:
    description:
      - The JSON file to write when the run ends, replaced if it exists.
      - "Its content: C({\"hosts\": {HOST: {\"ran\": N, \"ok\": N, \"changed\": N, \"failed\": N, \"retries\": N,
        \"skipped\": N, \"unreachable\": N, \"controller\": N}}, \"total\": {...}})."
      - Without it, the callback writes nothing.
    type: path
    env:
      - name: WSGI_MODULE_RUNS_FILE
    ini:
      - section: callback_module_runs
        key: output_file
"""

# Actions that run no module on the host: their plugin does its work on the controller.
CONTROLLER_ACTIONS: frozenset[str] = frozenset(
    add_internal_fqcns((
        "add_host", "assert", "debug", "fail", "group_by", "import_playbook", "import_role", "import_tasks",
        "include_role", "include_tasks", "include_vars", "meta", "pause", "set_fact", "set_stats",
        "validate_argument_spec",
    ))
)


@dataclass
class HostCounts:
    """The counts of one host. ok excludes changed; ran is every result that ran a module."""

    ok: int = 0
    changed: int = 0
    failed: int = 0
    retries: int = 0
    skipped: int = 0
    unreachable: int = 0
    controller: int = 0

    @property
    def ran(self) -> int:
        return self.ok + self.changed + self.failed + self.retries

    def as_dict(self) -> dict[str, int]:
        return {"ran": self.ran, **asdict(self)}

    def add(self, other: HostCounts) -> None:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)


class ModuleRuns:
    """The counts of a run, fed one result at a time (kept apart from the callback so tests feed it directly)."""

    def __init__(self) -> None:
        self.hosts: dict[str, HostCounts] = {}

    def count(self, host: str, action: str, outcome: str, changed: bool = False, delegate: str | None = None) -> None:
        """Count one result of action for host. outcome is ok, failed, retry, skipped or unreachable; ok
        counts as changed when changed is true. A delegated result counts for its delegate."""
        if outcome in ("ok", "failed", "retry") and action in CONTROLLER_ACTIONS:
            outcome = "controller"
        elif delegate:
            host = delegate
        if outcome == "ok" and changed:
            outcome = "changed"
        counts = self.hosts.setdefault(host, HostCounts())
        field = {"retry": "retries"}.get(outcome, outcome)
        setattr(counts, field, getattr(counts, field) + 1)

    def report(self) -> dict[str, Any]:
        """The document written to output_file: each host's counts (sorted by name) and their total."""
        total = HostCounts()
        for counts in self.hosts.values():
            total.add(counts)
        return {
            "hosts": {host: self.hosts[host].as_dict() for host in sorted(self.hosts)},
            "total": total.as_dict(),
        }


def write_report(path: str, report: Mapping[str, Any]) -> None:
    """Write report to path as JSON, atomically (a reader never sees half a file)."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".module-runs-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(report, stream, indent=1)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _summarises_items(result: CallbackTaskResult) -> bool:
    """Whether result is a loop's summary, whose items were each counted already."""
    task = result.task
    items = result.result.get("results")
    return bool(task.loop or task.loop_with) and isinstance(items, list) and len(items) > 0


class CallbackModule(CallbackBase):
    """Counts module runs per host; writes them to output_file at the end of the run."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "wsgi_hosting.debian.module_runs"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.runs = ModuleRuns()

    def _count(self, result: CallbackTaskResult, outcome: str) -> None:
        # The task of a result is the one the worker ran, its delegate_to templated.
        self.runs.count(result.host.get_name(), result.task.action, outcome,
                        changed=bool(result.result.get("changed")), delegate=result.task.delegate_to)

    def v2_runner_on_ok(self, result: CallbackTaskResult) -> None:
        if not _summarises_items(result):
            self._count(result, "ok")

    def v2_runner_on_failed(self, result: CallbackTaskResult, ignore_errors: bool = False) -> None:
        if not _summarises_items(result):
            self._count(result, "failed")

    def v2_runner_on_skipped(self, result: CallbackTaskResult) -> None:
        if not _summarises_items(result):
            self._count(result, "skipped")

    def v2_runner_on_unreachable(self, result: CallbackTaskResult) -> None:
        self._count(result, "unreachable")

    def v2_runner_item_on_ok(self, result: CallbackTaskResult) -> None:
        self._count(result, "ok")

    def v2_runner_item_on_failed(self, result: CallbackTaskResult) -> None:
        self._count(result, "failed")

    def v2_runner_item_on_skipped(self, result: CallbackTaskResult) -> None:
        self._count(result, "skipped")

    def v2_runner_retry(self, result: CallbackTaskResult) -> None:
        self._count(result, "retry")

    def v2_runner_on_async_poll(self, result: CallbackTaskResult) -> None:
        self._count(result, "retry")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        path = self.get_option("output_file")
        if path:
            write_report(path, self.runs.report())
