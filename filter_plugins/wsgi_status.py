"""The fleet's status at a glance (playbooks/status.yml): what each web server's status command reads, and
the one table made of every host's answer.

A status must be fast, so each host is read in one module run (roles/releases/files/status.py) and the
table is made here, on the controller, where a test pins its columns; no host is asked twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.shared_rules import (
    process_instances,
)

COLUMNS = ("host", "app", "release", "live for", "web", "process", "state", "up for", "restarts")
# A job's row says its last run across the fleet in "state" and its next time in "up for"; times are UTC.


def wsgi_status_spec(apps: Any, health_url: str, env_dir: str = "") -> dict[str, Any]:
    """What the status command reads on a host with these apps (wsgi_model's): the health check (none on a
    host that runs apps' processes only: health_url empty), and per app its `current` link (none for a
    single-file app), the unit instances of its processes, its jobs and its environment file in env_dir (its
    database's settings: where its jobs' runs are recorded)."""
    entries = [{"name": app["name"], "current": (app.get("release") or {}).get("current", ""),
                "units": process_instances(app), "jobs": [job["name"] for job in app.get("schedule") or ()],
                "env_file": f"{env_dir}/{app['name']}.json" if env_dir else ""}
               for app in apps or ()]
    return {"health_url": str(health_url or ""), "apps": entries}


def _duration(seconds: Any) -> str:
    """A duration as a person reads it at a glance: 3d 04h, 2h 03m, 5m 02s, 40s."""
    if seconds is None or seconds < 0:
        return "-"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"


def _clock(moment: Any) -> str:
    """A unix time as the UTC time of day (with the date when it is not today's)."""
    if moment is None:
        return "-"
    return time.strftime("%H:%M:%S", time.gmtime(int(moment)))


def _job_row(job: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """A job's process, state, up-for and restarts cells: its last run across the fleet, its next time."""
    last = job.get("last")
    if not last:
        state = "not run yet"
    else:
        status = last.get("status")
        result = "running" if status is None else ("ok" if status == 0 else f"failed (exit {status})")
        took = "" if last.get("seconds") is None else f", {last['seconds']:.1f} s"
        state = f"{result}: {_clock(last.get('scheduled'))} on {last.get('host')}{took}"
    return f"job {job['job']}", state, f"next {_clock(job.get('next'))}", "-"


def _web(health: Mapping[str, Any], app: str) -> str:
    """An app's web health from the health check's answer: the problem its body names, else ok, or what
    kept the check from answering; "-" on a host without one (it runs apps' processes only)."""
    if not health:
        return "-"
    lines = str(health.get("body") or "").splitlines()[1:]
    said = [line.split(":", 1)[1].strip() for line in lines if line.startswith(f"{app}:")]
    problems = [text for text in said if text != "ok"]
    if problems:
        return problems[0]
    if health.get("status") == -1:
        return "no answer"
    return "ok"


def _archive_row(host: str, now: int, archive: Mapping[str, Any]) -> tuple[str, ...]:
    """The database host's continuous archive as a row: ok with its newest backup, copy and drill, or its
    problems (what its status command found late or failing)."""
    problems = list(archive.get("problems") or ())
    drill = archive.get("drill") or {}
    if problems:
        state = "FAILING: " + "; ".join(problems)
    else:
        state = (f"ok: backup {_duration(now - archive['latest_backup'])} ago, copied "
                 f"{_duration(now - archive['synced'])} ago, drill {drill.get('result', '-')}")
    return (host, "-", "-", "-", "-", "archive", state, "-", "-")


def _state_rows(host: str, state: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """A web server's state backups (the backups role's status), a row per app: ok with when its newest
    snapshot was taken and copied out, or what is late."""
    now = int(state.get("now") or 0)
    rows = []
    for app in state.get("apps") or ():
        problems = list(app.get("problems") or ())
        if problems:
            cell = "LATE: " + "; ".join(problems)
        else:
            cell = (f"ok: snapshot {_duration(now - app['snapshot'])} ago, copied "
                    f"{_duration(now - app['copied'])} ago")
        rows.append((host, str(app.get("app", "-")), "-", "-", "-", "state backup", cell, "-", "-"))
    return rows


def _parsed(result: Mapping[str, Any]) -> dict[str, Any] | None:
    """A registered command's JSON answer, or None when it did not give one."""
    try:
        answer = json.loads(result.get("stdout") or "")
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _reports(hosts: Iterable[str], hostvars: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each host's status command's answer (wsgi_status_read), parsed, or what kept it from answering; then
    its reports of their own: on the database host the archive's status (postgresql_archive_status), on a
    web server with state backups theirs (backups_state_status)."""
    reports: list[dict[str, Any]] = []
    for host in hosts or ():
        variables = hostvars.get(host) or {}
        archive = variables.get("postgresql_archive_status") or {}
        if "rc" in archive:
            answer = _parsed(archive)
            reports.append({"host": host, "archive": answer} if answer is not None else {"host": host, "error": (
                "archive: " + " ".join(str(archive.get("stderr") or archive.get("msg") or "no answer").split())[:110])})
        read = variables.get("wsgi_status_read") or {}
        if archive and not read:  # the database host alone: its archive is its row
            continue
        answer = _parsed(read) if read.get("rc") == 0 else None
        if answer is not None:
            reports.append({"host": host, "report": answer})
        else:
            error = read.get("msg") or read.get("stderr") or "not reached"
            reports.append({"host": host, "error": " ".join(str(error).split())[:120]})
        state = variables.get("backups_state_status") or {}
        if "rc" in state:
            reports.append({"host": host, "state": _parsed(state) or {"apps": [{"app": "-", "problems": [
                "state backups: " + " ".join(str(state.get("stderr") or "no answer").split())[:100]]}]}})
    return reports


def wsgi_status_table(hosts: Iterable[str], hostvars: Mapping[str, Any]) -> str:
    """The table of the fleet: a row per host and app (per process instance of it), columns COLUMNS, from
    each host's registered wsgi_status_read (status.py's JSON; a host that did not answer is a row that says
    why), in the hosts' order."""
    return status_table(_reports(hosts, hostvars))


def status_table(reports: Iterable[Mapping[str, Any]]) -> str:
    """The table of reports: each a `host` with its `report` (status.py's JSON, parsed) or an `error`."""
    rows: list[tuple[str, ...]] = []
    for entry in reports or ():
        host = str(entry.get("host", ""))
        if isinstance(entry.get("archive"), Mapping):
            rows.append(_archive_row(host, int(entry["archive"].get("now") or 0), entry["archive"]))
            continue
        if isinstance(entry.get("state"), Mapping):
            rows += _state_rows(host, entry["state"])
            continue
        report = entry.get("report")
        if not isinstance(report, Mapping):
            rows.append((host, "-", "-", "-", f"unreadable: {entry.get('error') or 'no answer'}", "-", "-", "-", "-"))
            continue
        now = report.get("now") or 0
        for app in report.get("apps") or ():
            since = app.get("live_since")
            base = (host, app["name"], app.get("release") or "-", _duration(now - since if since else None),
                    _web(report.get("health") or {}, app["name"]))
            units, jobs = app.get("units") or [], app.get("jobs") or []
            if not units and not jobs:
                rows.append((*base, "-", "-", "-", "-"))
            for job in jobs:
                rows.append((*base, *_job_row(job)))
            for unit in units:
                up = unit.get("since")
                running = str(unit.get("state", "")).startswith("active")
                rows.append((*base, unit["unit"], unit.get("state", "?"),
                             _duration(now - up if up and running else None), str(unit.get("restarts", 0))))
    if not rows:
        raise AnsibleFilterError("wsgi_status_table: no host reported; allowed: the reports of the web servers")
    widths = [max(len(column), *(len(row[i]) for row in rows)) for i, column in enumerate(COLUMNS)]
    lines = ["  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip()
             for row in [COLUMNS, *rows]]
    return "\n".join(lines) + "\n"


class FilterModule:
    """Ansible entry point: the filters of playbooks/status.yml."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"wsgi_status_spec": wsgi_status_spec, "wsgi_status_table": wsgi_status_table}
