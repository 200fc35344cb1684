"""Filters of the redis role: the check of its input and the files of each app's Redis instance.

Each app gets an instance of its own (Debian's redis-server@.service template, instance wsgi-<name>): its own
process, port, memory limit, data directory and password, so no app can read, write or evict another's keys,
and a restart or a full memory of one touches no other. Writing the files here rather than in templates
keeps the decisions (what is persisted, who may connect, where the key is) in one place the unit tests pin.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible_collections.wsgi_hosting.debian.plugins.module_utils.shared_rules import (
    REDIS_MEMORY_RE,
    REDIS_POLICIES,
    client_problems,
    is_password,
)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
KEYS = {"name", "port", "maxmemory", "policy", "password", "clients"}
ALLOWED = ("a list of {name: an app name (a-z, 0-9, '_', '-'), port: 1024-65535, maxmemory: a size such as 256mb, "
           f"policy: one of {', '.join(REDIS_POLICIES)}, password: a string or null (generated), clients: addresses "
           "with masks such as 10.0.0.11/32}")
# What an app may not do to its own server: reconfigure it (CONFIG SET dir/dbfilename writes files as the
# redis user), shut it down, replicate it away, or watch other connections.
DENIED_CATEGORIES = ("@admin",)
INSTANCE_PREFIX = "wsgi-"


def redis_instance_problems(instances: Any) -> str:
    """What is wrong with redis_instances, one line per problem, never showing a password; "" if nothing."""
    if not isinstance(instances, (list, tuple)):
        return f"redis_instances is a {type(instances).__name__}; allowed: {ALLOWED}"
    problems: list[str] = []
    names: set[str] = set()
    ports: set[int] = set()
    for index, entry in enumerate(instances):
        where = f"redis_instances[{index}]"
        if not isinstance(entry, Mapping) or not {"name", "port"} <= set(entry) or set(entry) - KEYS:
            keys = sorted(map(str, entry)) if isinstance(entry, Mapping) else type(entry).__name__
            problems.append(f"{where} has {keys}; allowed: {ALLOWED}")
            continue
        name, port = entry["name"], entry["port"]
        if not (isinstance(name, str) and NAME_RE.match(name)) or name in names:
            problems.append(f"{where}: name {name!r}; allowed: an app name (a-z, 0-9, '_', '-'), each once")
        names.add(str(name))
        if isinstance(port, bool) or not isinstance(port, int) or not 1024 <= port <= 65535 or port in ports:
            problems.append(f"{where}: port {port!r}; allowed: an integer from 1024 to 65535, each once")
        ports.add(port)
        if not REDIS_MEMORY_RE.match(str(entry.get("maxmemory", "128mb"))):
            problems.append(f"{where}: maxmemory {entry.get('maxmemory')!r}; allowed: a size such as 256mb")
        if entry.get("policy", "noeviction") not in REDIS_POLICIES:
            problems.append(f"{where}: policy {entry.get('policy')!r}; allowed: one of {', '.join(REDIS_POLICIES)}")
        if entry.get("password") is not None and not is_password(entry["password"]):
            problems.append(f"{where}: password (hidden) is not a non-empty string; allowed: {ALLOWED}")
        problems.extend(client_problems(where, entry.get("clients") or []))
    return "\n".join(problems)


def redis_unit(name: str) -> str:
    """The systemd unit of an app's instance (Debian's template, instance wsgi-<name>)."""
    return f"redis-server@{INSTANCE_PREFIX}{name}.service"


def _instance_paths(name: str, paths: Mapping[str, str]) -> dict[str, str]:
    """Where an instance's files are: its data directory, redis.conf (the name Debian's template unit reads),
    ACL file, and its unit's drop-in with the drop-in's directory."""
    instance = INSTANCE_PREFIX + name
    drop_in_dir = f"{paths['systemd_dir']}/{redis_unit(name)}.d"
    return {"data": f"{paths['data_dir']}/{instance}", "conf": f"{paths['conf_dir']}/redis-{instance}.conf",
            "acl": f"{paths['conf_dir']}/{instance}.acl", "drop_in_dir": drop_in_dir,
            "drop_in": f"{drop_in_dir}/wsgi-hosting.conf", "runtime": f"/run/redis-{instance}"}


def _conf(entry: Mapping[str, Any], own: Mapping[str, str]) -> str:
    """redis.conf of one instance (own: its _instance_paths): TLS only, persistent (append-only file and
    snapshots), the memory limit, logs to the journal, the password in an ACL file of its own."""
    runtime = own["runtime"]
    return "\n".join([
        f"# Managed by wsgi-hosting (role redis): the Redis of app {entry['name']}. Changes are overwritten.",
        "bind * -::*",
        "port 0",
        f"tls-port {entry['port']}",
        # The unit copies the root-only key and the certificate into its runtime directory at each start
        # (the drop-in's ExecStartPre), readable by the redis user alone.
        f"tls-cert-file {runtime}/tls.crt",
        f"tls-key-file {runtime}/tls.key",
        "tls-auth-clients no",
        'tls-protocols "TLSv1.2 TLSv1.3"',
        "daemonize no",
        "supervised systemd",
        f"pidfile {runtime}/redis-server.pid",
        'logfile ""',
        f"dir {own['data']}",
        "dbfilename dump.rdb",
        "appendonly yes",
        "appendfsync everysec",
        "save 3600 1 300 100 60 10000",
        f"maxmemory {entry.get('maxmemory', '128mb')}",
        f"maxmemory-policy {entry.get('policy', 'noeviction')}",
        f"aclfile {own['acl']}",
        "",
    ])


def _acl(password: str) -> str:
    """The ACL file: the default user, with the password as its SHA-256 (what Redis keeps; no file holds the
    password itself but the root-only one), may use every key and command but the denied ones."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    return f"user default on #{digest} ~* &* +@all {' '.join('-' + c for c in DENIED_CATEGORIES)}\n"


def _drop_in(entry: Mapping[str, Any], paths: Mapping[str, str], private_users: bool) -> str:
    """The unit's drop-in: the key and certificate for the redis user, and the addresses it may talk to."""
    install = f"ExecStartPre=+/usr/bin/install -o {paths['user']} -g {paths['group']}"
    lines = [
        "# Managed by wsgi-hosting (role redis). Changes are overwritten.",
        "[Service]",
        f"{install} -m 0600 {paths['tls_key']} /run/redis-%i/tls.key",
        f"{install} -m 0644 {paths['tls_certificate']} /run/redis-%i/tls.crt",
        # Only the app's hosts (and this host, for its own checks) reach it; systemd drops everything else.
        "IPAddressDeny=any",
        "IPAddressAllow=localhost " + " ".join(entry.get("clients") or []),
        "TimeoutStopSec=120",
    ]
    if not private_users:
        lines.append("PrivateUsers=false")
    return "\n".join(lines) + "\n"


def redis_files(instances: Iterable[Mapping[str, Any]], passwords: Mapping[str, str], paths: Mapping[str, str],
                private_users: bool = True) -> list[dict[str, Any]]:
    """The wsgi_files entries of every instance: its data directory, redis.conf, ACL file and unit drop-in.

    paths: conf_dir, data_dir, systemd_dir, tls_key, tls_certificate, user, group. An instance whose password
    is not in passwords (a dry run before it is generated) gets no ACL file. The ACL file's diff is hidden.
    """
    files: list[dict[str, Any]] = []
    for entry in instances:
        own = _instance_paths(entry["name"], paths)
        files += [
            {"path": own["data"], "state": "directory", "owner": paths["user"], "group": paths["group"],
             "mode": "0750"},
            {"path": own["conf"], "content": _conf(entry, own), "owner": "root", "group": paths["group"],
             "mode": "0640"},
            {"path": own["drop_in_dir"], "state": "directory", "owner": "root", "group": "root", "mode": "0755"},
            {"path": own["drop_in"], "content": _drop_in(entry, paths, private_users), "owner": "root",
             "group": "root", "mode": "0644"},
        ]
        if entry["name"] in (passwords or {}):
            files.append({"path": own["acl"], "content": _acl(passwords[entry["name"]]), "owner": "root",
                          "group": paths["group"], "mode": "0640", "diff": False})
    return files


def redis_changes(result: Mapping[str, Any], instances: Iterable[Mapping[str, Any]], paths: Mapping[str, str],
                  certificate_changed: bool = False) -> dict[str, Any]:
    """What a wsgi_files run of redis_files (its result) asks of systemd: `reload` (daemon-reload) when a
    drop-in changed, and `restart`, the units whose settings or ACL file changed (an instance reads them only
    at start), every unit when the certificate changed (each copies it at start).

    A changed drop-in restarts nothing: daemon-reload applies its addresses to the running unit at once, and
    a restart would cut every client's connection (a Celery worker's prefetched tasks then wait for the
    broker's visibility timeout before they are delivered again)."""
    changed = {item["path"] for item in (result or {}).get("results", []) if item.get("changed")}
    restart, reload = [], False
    for entry in instances:
        own = _instance_paths(entry["name"], paths)
        if certificate_changed or changed & {own["conf"], own["acl"]}:
            restart.append(redis_unit(entry["name"]))
        reload = reload or own["drop_in"] in changed
    return {"restart": restart, "reload": reload}


class FilterModule:
    """Ansible entry point: the redis role's filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Map filter names to functions."""
        return {
            "redis_instance_problems": redis_instance_problems,
            "redis_files": redis_files,
            "redis_changes": redis_changes,
            "redis_unit": redis_unit,
        }
