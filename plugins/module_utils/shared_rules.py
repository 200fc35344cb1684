"""Rules and defaults that more than one filter of the collection applies, written once.

The filter plugins import this as ansible_collections.wsgi_hosting.debian.plugins.module_utils.shared_rules:
Ansible's collection loader resolves that name for an installed collection and, in a checkout, through
collections/ (a link back to the top that site.yml and playbooks/ see as their playbook-adjacent
collections); the unit tests put collections/ on sys.path (tests/filter_plugins/conftest.py).
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from typing import Any

# An app's database on the `databases` host (and its owner role): an unquoted PostgreSQL identifier
# (PostgreSQL folds those to lower case anyway), none of the cluster's own, not in the pg_ prefix it keeps
# for itself. The backup and restore scripts check it once more in bash; tests/filter_plugins/
# test_postgresql.py pins that copy to this one.
DATABASE_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
RESERVED_DATABASES = frozenset({"postgres", "template0", "template1"})
DATABASE_NAME_ALLOWED = "a lower-case identifier (not postgres, template0, template1 or pg_...)"


def is_database_name(name: Any) -> bool:
    """Whether name may be an app's database (and its owner role's) name."""
    return (isinstance(name, str) and bool(DATABASE_NAME_RE.match(name)) and name not in RESERVED_DATABASES
            and not name.startswith("pg_"))


# An app's Redis (the wsgi role's `redis` field, the redis role's redis_instances): Redis' eviction policies
# and a memory size as its maxmemory takes it, without Redis' 0 (no limit) for a shared host.
REDIS_POLICIES = ("noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu",
                  "volatile-random", "volatile-ttl")
REDIS_MEMORY_RE = re.compile(r"^[1-9][0-9]{0,12}(b|kb|mb|gb)?$", re.IGNORECASE)


def is_password(value: Any) -> bool:
    """Whether value may be a service's password as given (ansible-vault): a non-empty string without NUL."""
    return isinstance(value, str) and bool(value) and "\0" not in value


def client_problems(where: str, clients: Any) -> list[str]:
    """What is wrong with a service's client addresses (addresses with masks such as 10.0.0.11/32), one
    line each, named by where."""
    if not isinstance(clients, (list, tuple)):
        return [f"{where}: clients {clients!r}; allowed: a list of addresses with masks such as 10.0.0.11/32"]
    problems = []
    for client in clients:
        try:
            ipaddress.ip_network(str(client), strict=True)
        except ValueError:
            problems.append(f"{where}: client {client!r}; allowed: an address with a mask, 10.0.0.11/32")
    return problems


# Strict-Transport-Security's max-age of a site with tls that sets no hsts: two years, the minimum of
# Mozilla's server-side TLS guidelines in every profile (tests/filter_plugins/test_wsgi_tls.py checks it
# against them).
HSTS_DEFAULT = 63072000


# A project app's long-running processes: the releases role runs each process type as a systemd template
# unit, instances @1 to @count, and each running instance keeps a mark in PROCESS_RUN_DIR (its unit's
# ExecStartPost/ExecStopPost), which the wsgi role's health check reads without asking systemd (its
# unprivileged daemon user cannot).
PROCESS_RUN_DIR = "/run/wsgi-hosting/processes"


def process_unit(app: str, process: str) -> str:
    """The template unit of a process type of a project app."""
    return f"wsgi-{app}-{process}@.service"


def process_instances(app: Any) -> list[str]:
    """The unit instances a normalized app runs for its processes, in order."""
    return [process_unit(app["name"], process).replace("@.", f"@{number}.")
            for process, spec in (app.get("processes") or {}).items()
            for number in range(1, int(spec["count"]) + 1)]


def command_words(command: Any) -> list[str] | None:
    """The words of a command line the roles run without a shell (an app's processes and jobs, run.yml's
    command), split like a shell's (quotes work); None for anything but one non-empty line."""
    if not isinstance(command, str) or set(command) & {"\0", "\n"}:
        return None
    try:
        return shlex.split(command) or None
    except ValueError:
        return None
