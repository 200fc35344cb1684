"""Filters of the headrace role: which instances its handlers restart or reload, and the files of an app.

A handler runs once for everything notified in a play, so it must work out from the registered results
of the tasks which instances a change touched: a restart for a changed unit or configuration, a socket
restart for a changed listen address, a graceful reload for new code, and nothing for an instance that
was first started in this run (it already runs the new files). Those rules are easy to get wrong in a
Jinja expression and impossible to test there; here they are one function with unit tests. The names of
an app's files are built here too, so that writing and removing them cannot disagree.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, MutableMapping, MutableSequence
from typing import Any

# What the handlers do to each instance, by handler.
HANDLER_KEYS = ("restart_sockets", "restart_services", "reload_services")


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


def _changed_apps(*results: Any) -> list[str]:
    """Names of the apps (loop items) whose item changed in any of these registered loop results."""
    names = []
    for result in results:
        if isinstance(result, Mapping):
            names += [item["item"]["name"] for item in result.get("results") or [] if item.get("changed")]
    return _unique(names)


def headrace_changes(
    apps: Iterable[Mapping[str, Any]] | None,
    units: Any = None,
    configs: Any = None,
    listen_set: Any = None,
    listen_unset: Any = None,
    sockets_started: Any = None,
    started: Any = None,
    wheel_installed: Any = None,
    scripts: Iterable[str] | None = None,
    service_set: Any = None,
    service_unset: Any = None,
) -> dict[str, list[str]]:
    """The instances (app names) each handler acts on, from the registered results of the role's tasks.

    apps are the proxy-mode apps of the host; units, configs, listen_set, listen_unset, sockets_started,
    started and wheel_installed the results registered by the role's tasks (None when the task did not
    run); scripts the apps whose script changed (the wsgi role's wsgi_changed_proxy_apps); service_set and
    service_unset the results of writing and removing the service drop-ins of project apps (their own user
    and state directory), which count as configuration.

    - restart_services: every app when a unit file changed, else those whose configuration or listen
      address changed; minus the servers first started in this run, which already read the new files.
    - restart_sockets: the apps whose listen address changed, minus the sockets first started in this run.
    - reload_services (new code): every app after a new build was installed, else those whose script
      changed; minus those restarted or first started in this run, which already run the new code.

    Each list names an app once, in the order of the apps and tasks (Ansible's difference filter, which
    the handlers used before, returned them in the arbitrary order of a set).
    """
    names = [app["name"] for app in apps or []]
    fresh = _changed_apps(started)
    if _is_changed(units):
        restart = _minus(names, fresh)
    else:
        restart = _minus(_changed_apps(configs, listen_set, listen_unset, service_set, service_unset), fresh)
    new_code = names if _is_changed(wheel_installed) else list(scripts or [])
    return {
        "restart_sockets": _minus(_changed_apps(listen_set, listen_unset), _changed_apps(sockets_started)),
        "restart_services": restart,
        "reload_services": _minus(new_code, restart, fresh),
    }


def headrace_config_file(name: str) -> str:
    """The file name of an app's configuration in headrace_config_dir."""
    return f"{name}.toml"


def headrace_dropin_dir(name: str, systemd_dir: str) -> str:
    """The drop-in directory of an app's socket unit, where a `listen` of its own is set."""
    return f"{systemd_dir}/headrace@{name}.socket.d"


def headrace_service_dropin_dir(name: str, systemd_dir: str) -> str:
    """The drop-in directory of an app's service unit, where a project app's own user and state are set."""
    return f"{systemd_dir}/headrace@{name}.service.d"


def headrace_config_apps(paths: Iterable[str]) -> list[str]:
    """The app names of configuration files (paths of <app>.toml files).

    The inverse of headrace_config_file. (A regex_replace('\\\\.toml$', '') in the task did not strip the
    suffix, because Ansible keeps the doubled backslash, so gone apps were never cleaned up.)
    """
    return [os.path.basename(path).removesuffix(".toml") for path in paths]


def headrace_app_files(names: Iterable[str], config_dir: str, systemd_dir: str) -> list[str]:
    """Every file and directory the role writes for these apps: their configurations, then their drop-ins."""
    names = list(names)
    return ([f"{config_dir}/{headrace_config_file(name)}" for name in names]
            + [headrace_dropin_dir(name, systemd_dir) for name in names]
            + [headrace_service_dropin_dir(name, systemd_dir) for name in names])


class FilterModule:
    """Ansible entry point: the headrace filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Map filter names to functions."""
        return {
            "headrace_changes": headrace_changes,
            "headrace_config_file": headrace_config_file,
            "headrace_dropin_dir": headrace_dropin_dir,
            "headrace_service_dropin_dir": headrace_service_dropin_dir,
            "headrace_config_apps": headrace_config_apps,
            "headrace_app_files": headrace_app_files,
        }
