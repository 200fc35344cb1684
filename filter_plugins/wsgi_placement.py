"""Filters that place the apps' processes on hosts of their own (processes.<name>.group in wsgi_sites).

The web servers know the apps; a host of the group a process names knows nothing of them (it has no
wsgi_sites). The validation (playbooks/validate.yml) joins the two here, once per run on the controller:
each such host gets a model of its own (wsgi_process_hosts), which the same roles read as they read a web
server's, and the secret values of its apps, taken from the web server that defines them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError


def _project_apps(hostvars: Mapping[str, Any], host: str) -> list[Mapping[str, Any]]:
    """A web server's project apps, from the model its validation built (wsgi_model)."""
    model = hostvars[host].get("wsgi_model")
    if not isinstance(model, Mapping) or model.get("sites") is None:
        raise AnsibleFilterError(f"web server {host} has no wsgi_model: run playbooks/validate.yml first (site.yml does)")
    return [app for site in model["sites"] for app in site["apps"] if app.get("project")]


def _definition(app: Mapping[str, Any]) -> dict[str, Any]:
    """An app as its wsgi_sites entry defines it, whichever host's model it comes from: every process in
    `processes` (a web server's model keeps only its own there)."""
    return {**app, "processes": {**app["processes"], **(app.get("processes_elsewhere") or {})},
            "processes_elsewhere": {}}


def _process_app(definition: Mapping[str, Any], host_groups: set[str]) -> dict[str, Any]:
    """The app as a process host runs it: the processes of its groups only, no scheduled jobs (the web
    servers run those, once per fleet) and no loader (no web process: script None)."""
    every = definition["processes"]
    here = {name: spec for name, spec in every.items() if spec["group"] in host_groups}
    return {**definition, "processes": here,
            "processes_elsewhere": {name: spec for name, spec in every.items() if name not in here},
            "schedule": [], "script": None}


def wsgi_process_hosts(hostvars: Mapping[str, Any], webservers: Iterable[str],
                       groups: Mapping[str, Any]) -> dict[str, Any]:
    """Where the processes with a group run, checked: problems ("" or one line each) and hosts, each host
    that is no web server but in a group a process names, to its model (wsgi_model's shape, web_server
    false, its apps in process_apps) and its apps' secret values (app name to name to value: hide them).

    A web server in such a group runs the process itself when it has the app (its own model placed it);
    one without the app is a problem, as is a group with no hosts. A process host takes each app from the
    first web server (in the order of webservers) that defines it, so every web server must define an app
    with grouped processes alike, secret values included.
    """
    webservers = list(webservers or ())
    problems: list[str] = []
    first: dict[str, tuple[str, dict[str, Any]]] = {}
    placed: dict[str, dict[str, None]] = {}
    served = {host: {app["name"] for app in _project_apps(hostvars, host)} for host in webservers}
    for web in webservers:
        secrets = hostvars[web].get("wsgi_secrets") or {}
        for app in _project_apps(hostvars, web):
            definition = _definition(app)
            grouped = {name: spec for name, spec in definition["processes"].items() if spec["group"]}
            if not grouped:
                continue
            where = f"web server {web}, app {app['name']!r}"
            known = first.setdefault(app["name"], (web, definition))
            differing = sorted(key for key in {*definition, *known[1]} if definition.get(key) != known[1].get(key))
            if secrets.get(app["name"]) != (hostvars[known[0]].get("wsgi_secrets") or {}).get(app["name"]):
                differing.append("secrets")
            if differing:
                problems.append(f"{where}: {', '.join(differing)} differ from {known[0]}'s; allowed: the same app "
                                "on every web server when a process of it runs on other hosts (processes.<name>."
                                "group), which take it from the first web server")
            for name, spec in grouped.items():
                members = list(groups.get(spec["group"]) or ())
                if not members:
                    problems.append(f"{where}: processes.{name}.group {spec['group']!r} is no inventory group with "
                                    "hosts; allowed: an inventory group with at least one host, or no group (the "
                                    "app's web servers)")
                for host in members:
                    if host not in served:
                        placed.setdefault(host, {})[app["name"]] = None
                    elif app["name"] not in served[host]:
                        problems.append(f"{where}: processes.{name}.group {spec['group']!r} holds web server {host}, "
                                        f"which has no app {app['name']!r}; allowed: hosts that are no web servers, "
                                        "or web servers with the app")
    hosts: dict[str, Any] = {}
    for host, names in placed.items():
        host_groups = {group for group, members in groups.items() if host in (members or ())}
        apps = [_process_app(first[name][1], host_groups) for name in names]
        hosts[host] = {
            "model": {"problems": "", "sites": [], "tls_sites": [], "front_sites": [], "behind_balancers": False,
                      "web_server": False, "process_apps": apps},
            "secrets": {name: (hostvars[first[name][0]].get("wsgi_secrets") or {})[name] for name in names
                        if name in (hostvars[first[name][0]].get("wsgi_secrets") or {})},
        }
    return {"problems": "\n".join(dict.fromkeys(problems)), "hosts": hosts}


class FilterModule:
    """Ansible entry point: the filter that places the apps' processes on hosts of their own."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Map filter names to functions."""
        return {"wsgi_process_hosts": wsgi_process_hosts}
