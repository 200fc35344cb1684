"""Render-ready values of the normalized sites: the apps to loop over and the Apache directives.

The wsgi role's VirtualHost template reads these instead of building mod_wsgi and mod_proxy lines in
Jinja: the options of WSGIDaemonProcess, the daemon groups and script aliases of a site in the order
Apache matches them, the ProxyPass lines of proxy-mode apps, the health check's list of apps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.file_entries import (
    directory_entry,
    nice_json,
)
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.shared_rules import (
    PROCESS_RUN_DIR,
    process_instances,
)
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.wsgi_fields import (
    MODES,
    show,
)


def wsgi_apps(sites: Any, mode: str | None = None) -> list[dict[str, Any]]:
    """Flatten normalized sites into apps (with their site's names) so roles can loop once."""
    if mode is not None and mode not in MODES:
        raise AnsibleFilterError(f"wsgi_apps: mode {show(mode)} is invalid; allowed: {', '.join(MODES)} or none")
    return [
        {**app, "server_name": site["server_name"], "config_name": site["config_name"]}
        for site in sites or []
        for app in site["apps"]
        if mode is None or app["mode"] == mode
    ]


def wsgi_health_checks(sites: Any, timeout: Any = 3, acme_live_dir: Any = "") -> list[dict[str, Any]]:
    """What the health check asks: each app once, at its mount, through the port of its site (its HTTPS port
    when it has TLS: the way its clients come, while the plain port may only redirect).

    An ACME site's certificate may not be live yet (mod_md answers 503 over HTTPS until it is): its check
    names the file acme-message leaves when it is (live_file, in acme_live_dir), and the plain port to
    ask until then, where the site is served meanwhile."""
    checks = []
    for site in sites or []:
        tls = site.get("tls")
        for app in site["apps"]:
            check = {"app": app["name"], "server_name": site["server_name"],
                     "port": tls["port"] if tls else site["port"], "tls": bool(tls),
                     "path": app["mount"], "timeout": float(timeout)}
            if tls and tls["certificate"] == "acme" and acme_live_dir:
                check |= {"plain_port": site["port"], "live_file": f"{acme_live_dir}/{site['server_name']}"}
            checks.append(check)
    return checks


def wsgi_host_packages(model: Any, base: Any, tls_tools: Any = (), venv: Any = (), jobs: Any = ()) -> list[str]:
    """Every package the web server roles install on a host with this model (wsgi_host_model's), for one apt
    transaction before the first role asks for its own: base (Apache's and mod_wsgi's) on a web server (not
    on a host that runs apps' processes only, whose apps are its model's process_apps); tls_tools
    (the tls role's) when a site whose TLS ends here has a self-signed certificate; venv (the releases and
    headrace roles') when an app is a project or runs in proxy mode; jobs (the releases role's, for its
    scheduled jobs) when an app has a schedule. Each name once, in that order.

    Why: each apt run of a fresh host costs its own dpkg run and triggers, about 1 CPU s; the roles still
    ask for their own packages (a host run without this gets them all the same), and find them installed.
    """
    model = model or {}
    apps = [app for site in model.get("sites") or [] for app in site["apps"]] + list(model.get("process_apps") or [])
    names = list(base or []) if model.get("web_server", True) else []
    if any((site.get("tls") or {}).get("certificate") == "self_signed" for site in model.get("tls_sites") or []):
        names += list(tls_tools or [])
    if any(app.get("project") or app.get("mode") == "proxy" for app in apps):
        names += list(venv or [])
    if any(app.get("schedule") for app in apps):
        names += list(jobs or [])
    return list(dict.fromkeys(str(name) for name in names))


def wsgi_script_files(apps: Any, contents: Any, scripts_group: str) -> list[dict[str, Any]]:
    """The scripts of single-file apps (their `source`) as wsgi_files entries, for one module run whatever
    their modes: contents is each app's source text, in the order of apps (query('ansible.builtin.file',
    ..., rstrip=False) reads them on the controller). Only root writes a script; the scripts group reads
    it."""
    apps, contents = list(apps or []), list(contents or [])
    if len(apps) != len(contents):
        raise AnsibleFilterError(f"wsgi_script_files: {len(apps)} apps but {len(contents)} contents; "
                                 "allowed: one content per app, in the same order")
    return [{"path": app["script"], "content": content, "owner": "root", "group": scripts_group, "mode": "0640"}
            for app, content in zip(apps, contents)]


def wsgi_layout_files(sites: Any, base_dir: str, scripts_group: str, health_dir: str = "",
                      health_script: str = "", health_checks: Any = ()) -> list[dict[str, Any]]:
    """The host's layout as wsgi_files entries, for one module run: the base directory, the document roots
    (static files, served by Apache), the script directory (Python source, never served: only root writes
    it, the scripts group reads it) and, with a health check (health_dir), its directory, its script (the
    text given), the list of apps it asks (health_checks, as JSON: the way to_nice_json writes it) and the
    processes it expects running (processes.json: each project app's process instances, and where their
    marks are). Parents come before what they hold."""
    roots = list(dict.fromkeys(site["document_root"] for site in sites or []))
    entries = [directory_entry(base_dir), *map(directory_entry, roots),
               directory_entry(f"{base_dir}/wsgi-scripts", scripts_group, "0750")]
    if health_dir:
        readable = {"owner": "root", "group": scripts_group, "mode": "0640"}
        processes = {"run_dir": PROCESS_RUN_DIR,
                     "units": [{"app": app["name"], "unit": unit}
                               for site in sites or [] for app in site["apps"] for unit in process_instances(app)]}
        entries += [directory_entry(health_dir, scripts_group, "0750"),
                    {"path": f"{health_dir}/healthz.wsgi", "content": health_script, **readable},
                    {"path": f"{health_dir}/checks.json", "content": nice_json(list(health_checks)), **readable},
                    {"path": f"{health_dir}/processes.json", "content": nice_json(processes), **readable}]
    return entries


def wsgi_daemon_directive_options(app: Mapping, group: str = "wsgi", home: str | None = None) -> str:
    """Render the WSGIDaemonProcess options of a normalized daemon app so templates stay trivial.

    group is the daemon's primary group; the roles pass their scripts group (default 'wsgi')
    because that group is what lets the daemon read its script. home, when given, is the daemon's
    working directory unless the app sets its own home option.
    """
    if not isinstance(app, Mapping) or app.get("mode") != "daemon":
        name = app.get("name") if isinstance(app, Mapping) else app
        raise AnsibleFilterError(f"wsgi_daemon_directive_options: app {show(name)} is not a daemon-mode app")
    release = app.get("release")
    parts = [
        f"processes={app['wsgi_processes']}",
        f"threads={app['threads']}",
        f"display-name={app['display_name']}",
        f"user={app['user']}",
        f"group={release['user'] if release else group}",
    ]
    options = dict(app["daemon_options"])
    if release:
        # The live release's venv and code, through the `current` link: a restarted daemon process (after a
        # switch) starts in the new release's venv. Its own group reads its environment file; it reads its
        # loader as a member of the scripts group.
        options.setdefault("python-home", f"{release['current']}/.venv")
        options.setdefault("python-path", release["current"])
        home = release["current"]
    parts += [f"{key}={value}" for key, value in sorted(options.items())]
    if home is not None and "home" not in options:
        parts.append(f"home={home}")
    return " ".join(parts)


def _apache_order(paths: Iterable[str]) -> list[str]:
    """Deepest URL paths first, so each comes before its prefixes: Apache takes the first match.

    The order is the one Jinja's sort(reverse=true) gave (case-insensitive), so the rendered files stay the
    same; a path and its prefix compare the same way either way.
    """
    return sorted(paths, key=str.lower, reverse=True)


def wsgi_daemon_groups(site: Mapping) -> list[dict[str, Any]]:
    """One entry per WSGIDaemonProcess of a site: its name and the first app that uses it.

    Apps sharing a group have identical settings (the normalizer checks it), so the first app's settings
    are the group's. Groups are distinct by exact name, listed in Jinja's groupby order.
    """
    first: dict[str, Mapping] = {}
    for app in site["apps"]:
        if app["mode"] == "daemon":
            first.setdefault(app["process_group"], app)
    return [{"name": name, "app": first[name]} for name in sorted(first, key=lambda n: (n.lower(), n))]


def wsgi_script_aliases(site: Mapping) -> list[dict[str, Any]]:
    """The WSGIScriptAlias lines of a site's mod_wsgi (embedded and daemon) apps, deepest mount first."""
    apps = {app["mount"]: app for app in site["apps"] if app["mode"] != "proxy"}
    return [{"mount": mount, "script": apps[mount]["script"]} for mount in _apache_order(apps)]


def wsgi_proxy_passes(site: Mapping, socket_dir: Any, health_path: Any = "", options: Any = None) -> list[dict[str, Any]]:
    """The ProxyPass lines of a site, in the order Apache needs, or [] when no app of it is proxied.

    ProxyPass is matched before Alias and WSGIScriptAlias and the first match wins, so every path Apache
    serves itself (static aliases, mod_wsgi mounts, the health check) is excluded (backend None, rendered
    as "!") and deeper paths come first. A proxied app's backend is its TCP address, or its unix socket
    (listen, else <socket_dir>/<name>.sock) with the app name as the URL's host; reverse is the URL
    ProxyPassReverse maps back. options (wsgi_proxy_options) become the key=value pairs of each ProxyPass.
    """
    proxied = {app["mount"]: app for app in site["apps"] if app["mode"] == "proxy"}
    if not proxied:
        return []
    served = (site["static_aliases"] + [app["mount"] for app in site["apps"] if app["mode"] != "proxy"]
              + [static["url"] for app in site["apps"] for static in app.get("static") or []])
    paths = dict.fromkeys(served + ([str(health_path)] if health_path else []) + list(proxied))
    pairs = [f"{key}={value}" for key, value in (options or {}).items()]
    entries = []
    for path in _apache_order(paths):
        app = proxied.get(path)
        if app is None:
            entries.append({"path": path, "backend": None, "reverse": None, "options": []})
            continue
        if app["listen_tcp"]:
            backend = reverse = f"http://{app['listen']}{app['mount']}"
        else:
            socket = app["listen_stream"] or f"{socket_dir}/{app['name']}.sock"
            reverse = f"http://{app['name']}{app['mount']}"
            backend = f"unix:{socket}|{reverse}"
        entries.append({"path": path, "backend": backend, "reverse": reverse, "options": pairs})
    return entries


def wsgi_forwarded_allow_ips(app: Mapping, trusted_proxies: Any = ()) -> str:
    """Whom a proxied app's headrace trusts for X-Forwarded-*: Apache alone.

    On a unix socket only Apache can connect ("unix"); on TCP, Apache comes from the loopback addresses,
    plus any proxies the caller trusts (headrace_trusted_proxies).
    """
    if not app["listen_tcp"]:
        return "unix"
    return ",".join(["127.0.0.1", "::1", *(str(proxy) for proxy in trusted_proxies or [])])
