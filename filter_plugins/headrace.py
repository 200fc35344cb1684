"""Filters of the headrace role: the files it writes and removes, and which instances its handlers act on.

The role writes every file of its instances in one module run (wsgi_files): headrace_files builds that
run's entries from the apps and their contents, rendered on the controller, and headrace_gone the entries
that remove what apps that are gone left behind. The names of an app's files are built once, by the
private helpers below, so that writing them, removing them and reading the module's result back cannot
disagree.

A handler runs once for everything notified in a play, so it must work out from the registered results
of the tasks which instances a change touched: a restart for a changed unit or configuration, a socket
restart for a changed listen address, a graceful reload for new code, and nothing for an instance that
was first started in this run (it already runs the new files). Those rules are easy to get wrong in a
Jinja expression and impossible to test there; here they are one function (headrace_changes) with unit
tests, which maps the paths the module run changed back to the apps.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, MutableMapping, MutableSequence
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.file_entries import (
    absent_entry,
    directory_entry,
)

# What the handlers do to each instance, by handler.
HANDLER_KEYS = ("restart_sockets", "restart_services", "reload_services")

# The template units every instance is made of, in headrace_systemd_dir.
UNIT_FILES = ("headrace@.service", "headrace@.socket")

# The files of the drop-in directories: an app's own listen address, a project app's own user.
LISTEN_FILE = "listen.conf"
PROJECT_FILE = "project.conf"


# --------------------------------------------------------------------------- the names of an app's files


def _config_file(name: str, config_dir: str) -> str:
    """An app's configuration: <config_dir>/<app>.toml."""
    return f"{config_dir}/{name}.toml"


def _socket_dropin_dir(name: str, systemd_dir: str) -> str:
    """The drop-in directory of an app's socket unit, where a `listen` of its own is set."""
    return f"{systemd_dir}/headrace@{name}.socket.d"


def _service_dropin_dir(name: str, systemd_dir: str) -> str:
    """The drop-in directory of an app's service unit, where a project app's own user and state are set."""
    return f"{systemd_dir}/headrace@{name}.service.d"


def _listen_file(name: str, systemd_dir: str) -> str:
    """An app's own listen address, in its socket drop-in directory."""
    return f"{_socket_dropin_dir(name, systemd_dir)}/{LISTEN_FILE}"


def _project_file(name: str, systemd_dir: str) -> str:
    """A project app's own user and state directory, in its service drop-in directory."""
    return f"{_service_dropin_dir(name, systemd_dir)}/{PROJECT_FILE}"


def _config_apps(paths: Iterable[str]) -> list[str]:
    """The app names of configuration files (paths of <app>.toml files), the inverse of _config_file.

    (A regex_replace('\\\\.toml$', '') in the task did not strip the suffix, because Ansible keeps the
    doubled backslash, so gone apps were never cleaned up.)
    """
    return [os.path.basename(path).removesuffix(".toml") for path in paths]


def _app_files(names: Iterable[str], config_dir: str, systemd_dir: str) -> list[str]:
    """Every file and directory the role writes for these apps: their configurations, then their drop-ins."""
    names = list(names)
    return ([_config_file(name, config_dir) for name in names]
            + [_socket_dropin_dir(name, systemd_dir) for name in names]
            + [_service_dropin_dir(name, systemd_dir) for name in names])


# --------------------------------------------------------------------------- the files of the instances


def _file(path: str, content: str, group: str = "root", mode: str = "0644") -> dict[str, Any]:
    return {"path": path, "state": "file", "content": content, "owner": "root", "group": group, "mode": mode}


def _text(contents: Mapping[str, Any], name: str, part: str) -> str:
    """The rendered text of one part (config, listen, project) of an app, which must be there."""
    app_contents = contents.get(name)
    text = app_contents.get(part) if isinstance(app_contents, Mapping) else None
    if not isinstance(text, str):
        raise AnsibleFilterError(f"headrace_files: no rendered {part} for app {name!r} in the contents")
    return text


def headrace_files(
    apps: Iterable[Mapping[str, Any]] | None,
    contents: Mapping[str, Any],
    units: Mapping[str, Any],
    config_dir: str,
    systemd_dir: str,
    user: str,
) -> list[dict[str, Any]]:
    """The wsgi_files entries of the instances of these apps, for one module run, in the order of the
    role's former tasks (a directory before what it holds):

    - the unit files headrace@.service and headrace@.socket in systemd_dir (root's, 0644), from units (unit
      file name -> text);
    - config_dir (root and user, 0750) and each app's <app>.toml in it (0640), from contents[app]['config'];
    - for each app with a `listen` of its own, the socket drop-in directory (root's, 0755) and its
      listen.conf (0644, contents[app]['listen']); for every other app, no socket drop-in directory;
    - for each project app (with a `release`), the service drop-in directory and its project.conf
      (contents[app]['project']); for every other app, no service drop-in directory.

    contents maps each app's name to its rendered texts: 'config', and 'listen' and 'project' where the app
    has them.
    """
    apps = list(apps or [])
    unknown = sorted(set(units) - set(UNIT_FILES))
    missing = [name for name in UNIT_FILES if not isinstance(units.get(name), str)]
    if unknown or missing:
        raise AnsibleFilterError(f"headrace_files: units needs the texts of {list(UNIT_FILES)} and nothing else;"
                                 f" missing {missing}, unknown {unknown}")
    entries = [_file(f"{systemd_dir}/{name}", units[name]) for name in UNIT_FILES]
    entries.append(directory_entry(config_dir, user, "0750"))
    entries += [_file(_config_file(app["name"], config_dir), _text(contents, app["name"], "config"), user, "0640")
                for app in apps]
    # The socket drop-in of each app with a listen address of its own, the service drop-in of each project
    # app (its own user and state directory); the drop-in directory of every other app removed.
    for field, dropin_dir, dropin_file, kind in (("listen", _socket_dropin_dir, _listen_file, "listen"),
                                                 ("release", _service_dropin_dir, _project_file, "project")):
        for app in apps:
            if app.get(field):
                entries += [directory_entry(dropin_dir(app["name"], systemd_dir)),
                            _file(dropin_file(app["name"], systemd_dir), _text(contents, app["name"], kind))]
        entries += [absent_entry(dropin_dir(app["name"], systemd_dir)) for app in apps if not app.get(field)]
    return entries


def headrace_gone(
    found: Iterable[str] | None,
    apps: Iterable[Mapping[str, Any]] | None,
    config_dir: str,
    systemd_dir: str,
) -> dict[str, list[Any]]:
    """The apps that are gone and what removes their files.

    found are the paths of the configuration files on the host (<app>.toml in config_dir); an app with a
    configuration there that is not one of apps is gone. Returns 'apps', their names (in the order found),
    whose instances are stopped and disabled first, and 'files', the wsgi_files entries that then remove
    their configurations and drop-in directories (the configurations first).
    """
    present = {app["name"] for app in apps or []}
    gone = [name for name in dict.fromkeys(_config_apps(found or [])) if name not in present]
    return {"apps": gone, "files": [absent_entry(path) for path in _app_files(gone, config_dir, systemd_dir)]}


# --------------------------------------------------------------------------- what the handlers do


def _is_changed(result: Any) -> bool:
    """Ansible's `changed` test, with no result (the task never ran on this host) counting as unchanged."""
    if not isinstance(result, MutableMapping):
        return False
    if "changed" in result:
        return bool(result["changed"])
    items = result.get("results")
    return (isinstance(items, MutableSequence) and bool(items) and isinstance(items[0], MutableMapping)
            and any(item.get("changed", False) for item in items))


def _unique(names: Iterable[str]) -> list[str]:
    """names without repetitions, in the order of their first appearance (Jinja's unique)."""
    return list(dict.fromkeys(names))


def _minus(names: Iterable[str], *others: Iterable[str]) -> list[str]:
    """names (once each, in order) that are in none of others (Ansible's difference)."""
    excluded = {name for other in others for name in other}
    return [name for name in _unique(names) if name not in excluded]


def _changed_paths(files: Any) -> set[tuple[str, str]]:
    """(path, state) of every entry that changed in a registered wsgi_files result."""
    if not isinstance(files, Mapping):
        return set()
    return {(item.get("path"), item.get("state") or "file") for item in files.get("results") or []
            if isinstance(item, Mapping) and item.get("changed")}


def _started_units(started: Any) -> set[str]:
    """The units the task that starts the instances enabled or started: its output, one a line."""
    if not isinstance(started, Mapping):
        return set()
    return {line.strip() for line in started.get("stdout_lines") or []}


def headrace_changes(
    apps: Iterable[Mapping[str, Any]] | None,
    files: Any = None,
    started: Any = None,
    wheel_installed: Any = None,
    scripts: Iterable[str] | None = None,
    config_dir: str | None = None,
    systemd_dir: str | None = None,
) -> dict[str, list[str]]:
    """The instances (app names) each handler acts on, from the registered results of the role's tasks.

    apps are the proxy-mode apps of the host; files the registered result of the wsgi_files run of
    headrace_files (its paths in config_dir and systemd_dir, which must be given with it); started the
    result of the task that enables and starts the instances (its output names each unit it enabled or
    started, headrace@<app>.socket or headrace@<app>.service); wheel_installed that of the task that
    installs the headrace build (each None when the task did not run); scripts the apps whose script
    changed (the wsgi role's wsgi_changed_proxy_apps).

    What changed of an app, read from the paths the module run changed: its configuration (<app>.toml);
    its listen address (the socket drop-in's listen.conf written, or the socket drop-in directory of an app
    without `listen` removed); its service drop-in (a project app's project.conf written, or the service
    drop-in directory of an app that is no project app removed), which counts as configuration. The
    directories written are not changes of their own (a file in a new one is written too).

    - restart_services: every app when a unit file changed, else those whose configuration or listen
      address changed; minus the servers first started in this run, which already read the new files.
    - restart_sockets: the apps whose listen address changed, minus the sockets first started in this run.
    - reload_services (new code): every app after a new build was installed, else those whose script
      changed; minus those restarted or first started in this run, which already run the new code.

    Each list names an app once, in the order of the role's former tasks (configurations, listen addresses
    set, removed, service drop-ins written, removed), each in the order of the apps (Ansible's difference
    filter, which the handlers used before, returned them in the arbitrary order of a set).
    """
    names = [app["name"] for app in apps or []]
    changed = _changed_paths(files)
    if changed and not (config_dir and systemd_dir):
        raise AnsibleFilterError("headrace_changes: config_dir and systemd_dir are needed to read the files' result")

    def apps_with(path_of: Callable[[str], str], state: str) -> list[str]:
        return [name for name in names if (path_of(name), state) in changed]

    units_changed = any((f"{systemd_dir}/{unit}", "file") in changed for unit in UNIT_FILES)
    configs = apps_with(lambda name: _config_file(name, config_dir), "file")
    listen_set = apps_with(lambda name: _listen_file(name, systemd_dir), "file")
    listen_unset = apps_with(lambda name: _socket_dropin_dir(name, systemd_dir), "absent")
    service_set = apps_with(lambda name: _project_file(name, systemd_dir), "file")
    service_unset = apps_with(lambda name: _service_dropin_dir(name, systemd_dir), "absent")

    units = _started_units(started)
    fresh = [name for name in names if f"headrace@{name}.service" in units]
    fresh_sockets = [name for name in names if f"headrace@{name}.socket" in units]
    if units_changed:
        restart = _minus(names, fresh)
    else:
        restart = _minus(configs + listen_set + listen_unset + service_set + service_unset, fresh)
    new_code = names if _is_changed(wheel_installed) else list(scripts or [])
    return {
        "restart_sockets": _minus(listen_set + listen_unset, fresh_sockets),
        "restart_services": restart,
        "reload_services": _minus(new_code, restart, fresh),
    }


class FilterModule:
    """Ansible entry point: the headrace filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Map filter names to functions."""
        return {
            "headrace_files": headrace_files,
            "headrace_gone": headrace_gone,
            "headrace_changes": headrace_changes,
        }
