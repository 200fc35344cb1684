"""Filters of the backups role: the clients it serves, checked, and the files that let each in.

A client (the database host, and the web servers whose apps back up their state) logs in to the backups
host as one user with a key of its own, restricted by rrsync (Debian's rsync) to rsync in the client's own
directory: no shell, no forwarding, no terminal, and no other client's backups. The directory holds only
what the client encrypted itself (pgBackRest's repository, the apps' restic repositories, with a key the
backups host never sees). Also here: which apps of a web server back up their state, and the check of a
state restore's inputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible_collections.wsgi_hosting.debian.plugins.module_utils.file_entries import (
    directory_entry,
)
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.restore_times import (
    restore_time_problems,
)

# An inventory host name as a directory name: what Ansible takes without a warning, and dots and hyphens.
CLIENT_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")
PUBLIC_KEY_RE = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa) [A-Za-z0-9+/=]+( [^\n]*)?$")
RRSYNC = "/usr/bin/rrsync"


def backups_client_problems(clients: Any) -> str:
    """What is wrong with backups_clients, one line per problem; "" when nothing."""
    if not isinstance(clients, list):
        return f"backups_clients is {clients!r}; allowed: a list of {{name, public_key}} or {{name, keep: true}}"
    problems: list[str] = []
    seen: set[str] = set()
    for index, client in enumerate(clients):
        where = f"backups_clients[{index}]"
        if not isinstance(client, Mapping):
            problems.append(f"{where}: {client!r}; allowed: a mapping {{name, public_key}}")
            continue
        name, key = client.get("name"), client.get("public_key")
        if not (isinstance(name, str) and CLIENT_NAME_RE.match(name) and name not in (".", "..")):
            problems.append(f"{where}.name: {name!r}; allowed: an inventory host name (letters, digits, _ . -)")
        elif name in seen:
            problems.append(f"{where}.name: {name!r} twice; allowed: each client once")
        else:
            seen.add(name)
        if client.get("keep") is True and key is None:
            continue
        if not (isinstance(key, str) and PUBLIC_KEY_RE.match(key.strip())):
            problems.append(f"{where}.public_key: not an OpenSSH public key; allowed: 'ssh-ed25519 AAAA... comment' "
                            "(the client's published backups_client_public_key)")
    return "\n".join(problems)


def _authorized_line(client: Mapping[str, Any], root: str) -> str:
    """A client's line of authorized_keys: its key, allowed to run rrsync in its directory and nothing else."""
    key = " ".join(str(client["public_key"]).split()[:2])
    return f'restrict,command="{RRSYNC} {root}/{client["name"]}" {key} wsgi-backups:{client["name"]}'


def _kept_lines(current: str) -> dict[str, str]:
    """The lines of an authorized_keys this role wrote (current), by client name (their last field)."""
    lines = {}
    for line in (current or "").splitlines():
        comment = line.rsplit(" ", 1)[-1]
        if line.startswith("restrict,") and comment.startswith("wsgi-backups:"):
            lines[comment.removeprefix("wsgi-backups:")] = line
    return lines


def backups_files(clients: Iterable[Mapping[str, Any]], root: str, user: str, current: str = "") -> list[dict[str, Any]]:
    """The wsgi_files entries of the backups host: the user's home (root), its .ssh and authorized_keys
    (a line per client), and a directory per client, each only the user may enter, parents first. A
    client that leaves keeps its directory (its backups); its key no longer gets in. A client {name, keep:
    true} (outside this run: a --limit left it out) keeps its line of the current authorized_keys, if any."""
    clients = list(clients or ())
    own = {"owner": user, "group": user}
    kept = _kept_lines(current)
    lines = [_authorized_line(client, root) if client.get("public_key") else kept.get(client["name"])
             for client in clients]
    entries = [{**directory_entry(root, mode="0700"), **own}, {**directory_entry(f"{root}/.ssh", mode="0700"), **own},
               {"path": f"{root}/.ssh/authorized_keys", **own, "mode": "0600",
                "content": "".join(f"{line}\n" for line in lines if line)}]
    entries += [{**directory_entry(f"{root}/{client['name']}", mode="0700"), **own}
                for client, line in zip(clients, lines) if line]
    return entries


def backups_clients_of(hostvars: Mapping[str, Any], hosts: Iterable[str]) -> list[dict[str, Any]]:
    """The clients of the backups host, in the order of hosts: each host with the key its `client` step
    published in this run (backups_client_public_key); a host that did not take part in this run (no
    backups_client_in_run: a --limit left it out) as {name, keep: true}, so that it keeps the key it has.
    A host of this run without a key is left out: no longer a client, or a dry run that ended before it
    made its key."""
    clients: list[dict[str, Any]] = []
    for host in hosts or ():
        variables = hostvars[host] or {}
        if variables.get("backups_client_public_key"):
            clients.append({"name": str(host), "public_key": str(variables["backups_client_public_key"])})
        elif not variables.get("backups_client_in_run"):
            clients.append({"name": str(host), "keep": True})
    return clients


def backups_state_apps(model: Any) -> list[dict[str, str]]:
    """The apps whose state directory a host backs up, each {name, dir}, from its wsgi_model: a web server's
    project apps with backup_state ([] for a host without a model, or one that runs apps' processes only,
    whose state is the web servers' to keep)."""
    if not isinstance(model, Mapping) or not model.get("web_server"):
        return []
    return [{"name": app["name"], "dir": app["release"]["state_dir"]}
            for site in model.get("sites") or () for app in site.get("apps") or () if app.get("backup_state")]


def backups_restore_problems(app: Any, time: Any, models: Iterable[Any], retention_days: Any, now: Any) -> str:
    """What is wrong with a state restore's inputs (playbooks/restore_state.yml), "" when nothing: app is an
    app with backup_state on one of the web servers (models, their wsgi_model) and time empty (the newest
    snapshot) or within the retention (retention_days before now, a Unix time) and not after now."""
    known = sorted({entry["name"] for model in models or () for entry in backups_state_apps(model)})
    problems = []
    if not app:
        problems.append(f"wsgi_restore_app is missing; allowed: an app with backup_state ({', '.join(known) or 'none'}), "
                        "as in -e wsgi_restore_app=shop")
    elif app not in known:
        problems.append(f"wsgi_restore_app is {app!r}, which is no app with backup_state on the web servers; allowed: "
                        f"{', '.join(known) or 'none'}")
    problems += restore_time_problems("wsgi_restore_time", time, retention_days, now)
    return "\n".join(problems)


class FilterModule:
    """Ansible entry point: the filters of the backups role."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Map filter names to functions."""
        return {"backups_client_problems": backups_client_problems, "backups_files": backups_files,
                "backups_clients_of": backups_clients_of, "backups_state_apps": backups_state_apps,
                "backups_restore_problems": backups_restore_problems}
