"""Filters of the postgresql role: memory settings from the host's RAM, and the access rules.

Both are decisions worth pinning in unit tests rather than writing in Jinja: how much of a host's memory
PostgreSQL takes, and that pg_hba.conf lets each app's role into its own database from its web servers
and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.shared_rules import (
    DATABASE_NAME_ALLOWED,
    client_problems,
    is_database_name,
    is_password,
)

ALLOWED = (f"a list of {{name: {DATABASE_NAME_ALLOWED}, password: a string or null (generated), clients: a list "
           "of addresses with masks such as 10.0.0.11/32}")


def postgresql_database_name(name: Any) -> bool:
    """Whether name may be an app's database (and its owner role's) name: the rule the web servers' side
    (wsgi_sites) checks too, in module_utils/shared_rules.py."""
    return is_database_name(name)


def postgresql_database_problems(databases: Any) -> str:
    """What is wrong with postgresql_databases, one line per entry, never showing a password; "" if nothing.

    A check in a filter rather than a looped assert: a loop's items (passwords included) would be in the
    output of a -v run.
    """
    if not isinstance(databases, (list, tuple)):
        return f"postgresql_databases is a {type(databases).__name__}; allowed: {ALLOWED}"
    problems, seen = [], set()
    for index, entry in enumerate(databases):
        where = f"postgresql_databases[{index}]"
        if not isinstance(entry, Mapping) or "name" not in entry or set(entry) - {"name", "password", "clients"}:
            keys = sorted(map(str, entry)) if isinstance(entry, Mapping) else type(entry).__name__
            problems.append(f"{where} has {keys}; allowed: {ALLOWED}")
            continue
        name = entry["name"]
        if not postgresql_database_name(name):
            problems.append(f"{where}: name {name!r}; allowed: {ALLOWED}")
        elif name in seen:
            problems.append(f"{where}: name {name!r} twice; allowed: each database once")
        seen.add(name)
        if entry.get("password") is not None and not is_password(entry["password"]):
            problems.append(f"{where}: password (hidden) is not a non-empty string; allowed: {ALLOWED}")
        problems.extend(client_problems(where, entry.get("clients") or []))
    return "\n".join(problems)


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def postgresql_memory_settings(memory_mb: Any, max_connections: Any = 100) -> dict[str, str]:
    """PostgreSQL's memory settings for a host with memory_mb of RAM that runs little besides it.

    The usual starting points (PostgreSQL's documentation, pgtune): shared_buffers a quarter of RAM
    (at most 8 GB: beyond that the OS cache does better), effective_cache_size three quarters (a planner
    hint, nothing is allocated), maintenance_work_mem a sixteenth (at most 2 GB), and work_mem such that
    every connection sorting at once in a few nodes still fits beside shared_buffers.
    """
    try:
        memory = int(memory_mb)
        connections = int(max_connections)
    except (TypeError, ValueError) as error:
        raise AnsibleFilterError(f"postgresql_memory_settings: {memory_mb!r} MB, {max_connections!r} connections: "
                                 "allowed: integers") from error
    if memory < 256 or connections < 1:
        raise AnsibleFilterError(f"postgresql_memory_mb is {memory}; allowed: at least 256 (MB of RAM)")
    shared_buffers = _clamp(memory // 4, 32, 8192)
    work_mem = _clamp((memory - shared_buffers) // (connections * 3), 1, 256)
    return {
        "shared_buffers": f"{shared_buffers}MB",
        "effective_cache_size": f"{memory * 3 // 4}MB",
        "maintenance_work_mem": f"{_clamp(memory // 16, 16, 2048)}MB",
        "work_mem": f"{work_mem}MB",
    }


def postgresql_conf_value(value: Any) -> str:
    """A value for postgresql.conf: numbers and booleans as they are, anything else single-quoted."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def postgresql_hba_rules(databases: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The pg_hba.conf lines for the apps: each role into its own database, over TLS, from its clients.

    One line per database and client address, scram-sha-256 only. Anything not listed is refused, as
    pg_hba.conf refuses what matches no line.
    """
    rules = []
    for database in databases or []:
        for address in database.get("clients") or []:
            rules.append({"type": "hostssl", "database": database["name"], "user": database["name"],
                          "address": str(address), "method": "scram-sha-256"})
    return rules


class FilterModule:
    """Ansible entry point: the postgresql role's filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Map filter names to functions."""
        return {
            "postgresql_database_name": postgresql_database_name,
            "postgresql_database_problems": postgresql_database_problems,
            "postgresql_memory_settings": postgresql_memory_settings,
            "postgresql_conf_value": postgresql_conf_value,
            "postgresql_hba_rules": postgresql_hba_rules,
        }
