"""Filters of the postgresql role's continuous archive (pgBackRest): its timers, the server settings that
turn it on, and the check of a restore's inputs.

The restore's inputs are checked on the controller before any host changes: a time in the future or before
what the retention keeps cannot be restored to, and would otherwise fail halfway through on the host.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible_collections.wsgi_hosting.debian.plugins.module_utils.restore_times import (
    restore_time_problems,
)
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.shared_rules import (
    DATABASE_NAME_ALLOWED,
    is_database_name,
)

SCRIPT = "wsgi-postgresql-archive"


def _timer(step: Mapping[str, Any]) -> str:
    """A timer's text: every `every` seconds after the last run ended, or on its `calendar`."""
    name = step["name"]
    if step.get("every"):
        when = (f"# Again {int(step['every'])} s after the last one ended, from the start on.\n"
                f"OnActiveSec=5s\nOnUnitInactiveSec={int(step['every'])}s\nAccuracySec=1s\n")
    else:
        when = (f"OnCalendar={step['calendar']}\nRandomizedDelaySec=10min\n"
                "# A step missed while the host was off runs at the next boot.\nPersistent=true\n")
    return (f"# Managed by the wsgi_hosting postgresql role.\n[Unit]\nDescription=PostgreSQL archive: {name}, "
            f"on its schedule\n\n[Timer]\nUnit={SCRIPT}@{name}.service\n{when}\n[Install]\nWantedBy=timers.target\n")


def postgresql_archive_timers(steps: Iterable[Mapping[str, Any]], unit_dir: str) -> list[dict[str, Any]]:
    """The wsgi_files entries of the archive's timers, one per step ({name, every} or {name, calendar}):
    wsgi-postgresql-archive-<name>.timer, starting wsgi-postgresql-archive@<name>.service."""
    return [{"path": f"{unit_dir}/{SCRIPT}-{step['name']}.timer", "content": _timer(step), "owner": "root",
             "group": "root", "mode": "0644"} for step in steps or ()]


def postgresql_archive_settings(enabled: Any, stanza: str, timeout: Any) -> dict[str, Any]:
    """The server settings of the continuous archive: every finished log segment pushed by pgBackRest, and
    a segment finished at least every `timeout` seconds when there were writes (the bound of what a lost
    host loses); {} when the archive is off."""
    if not enabled:
        return {}
    return {"archive_mode": "on", "archive_command": f"pgbackrest --stanza={stanza} archive-push %p",
            "archive_timeout": f"{int(timeout)}s"}


def postgresql_restore_problems(database: Any, time: Any, file: Any, databases: Iterable[str],
                                retention_days: Any, now: Any) -> str:
    """What is wrong with a restore's inputs (playbooks/restore.yml), "" when nothing: database is an app's
    database of the fleet (databases) or `all` (the whole cluster, newest); time empty (the newest) or
    within the retention (retention_days before now, a Unix time) and not after now; file (a dump on the
    database host) only for one database and not with a time."""
    known = sorted(databases or ())
    problems = []
    if database == "all":
        if time or file:
            problems.append("postgresql_restore_database=all restores the newest point of every database; allowed: "
                            "no postgresql_restore_time and no postgresql_restore_file with it")
    elif not is_database_name(database):
        problems.append(f"postgresql_restore_database is {database!r}; allowed: {DATABASE_NAME_ALLOWED} of an app "
                        f"({', '.join(known) or 'none'}), or all (-e postgresql_restore_database=shop)")
    elif database not in known:
        problems.append(f"postgresql_restore_database is {database!r}, which is no app's database on the database "
                        f"host; allowed: {', '.join(known) or 'none'}, or all")
    problems += restore_time_problems("postgresql_restore_time", time, retention_days, now)
    if time and file:
        problems.append("postgresql_restore_file and postgresql_restore_time together; allowed: one of them")
    if file and not (isinstance(file, str) and file.startswith("/")):
        problems.append(f"postgresql_restore_file is {file!r}; allowed: empty or the absolute path of a dump on the "
                        "database host")
    return "\n".join(problems)


class FilterModule:
    """Ansible entry point: the filters of the postgresql role's archive."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Map filter names to functions."""
        return {"postgresql_archive_timers": postgresql_archive_timers,
                "postgresql_archive_settings": postgresql_archive_settings,
                "postgresql_restore_problems": postgresql_restore_problems}
