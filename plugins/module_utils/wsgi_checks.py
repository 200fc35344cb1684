"""Validate and normalize ``wsgi_sites`` as a whole, and build the one model of a host's sites.

The per-field rules live in wsgi_fields.py; here an entry is checked against the others (mounts, names,
ports, process groups, project apps, databases, the paths the roles reserve), every problem of the input
is reported together so one run shows everything to fix, and the validation's result becomes the host's
model (wsgi_host_model), which every role renders from. Secret values are handed apart from the model.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.wsgi_fields import (
    APPS_SUBDIR,
    SITE_KEYS,
    AppEntry,
    Context,
    Errors,
    Where,
    derive,
    fields,
    has_dot_segment,
    is_list,
    normalize_fields,
    report_unknown_keys,
    show,
)

# --------------------------------------------------------------------------- per-site cross checks


@dataclass(frozen=True)
class SiteEntry:
    """A normalized site with the input positions of it and its apps, for cross-entry messages."""

    where: Where
    site: dict[str, Any]
    apps: list[AppEntry]


def _check_mounts(errors: Errors, entry: SiteEntry) -> None:
    """Two apps on one URL: Apache would only ever run the first."""
    seen: dict[str, Mapping] = {}
    for app_where, app in entry.apps:
        mount = app["mount"]
        if mount is None:
            continue
        if mount in seen:
            errors.add(app_where, "mount", mount,
                       "one app per mount in a site",
                       f"same mount as app {show(seen[mount]['name'])}:")
        else:
            seen[mount] = app


def _check_alias_vs_mounts(errors: Errors, entry: SiteEntry) -> None:
    """An Alias exactly on an app's mount would hide the whole app behind static files."""
    for _, app in entry.apps:
        mount = app["mount"]
        if mount in (None, "/"):
            continue
        for alias in entry.site["static_aliases"]:
            if alias.rstrip("/") == mount:
                errors.add(entry.where, "static_aliases", alias,
                           "a URL path other than an app mount (paths under a mount are fine)",
                           f"hides app {show(app['name'])} mounted at {mount!r}:")


def _check_static_urls(errors: Errors, entry: SiteEntry) -> None:
    """A static URL on an app's mount, on a static alias or twice in a site would hide one or the other."""
    owners: dict[str, Mapping] = {}
    mounts = {app["mount"]: app for _, app in entry.apps if app["mount"] is not None}
    aliases = {alias.rstrip("/") for alias in entry.site["static_aliases"]}
    for app_where, app in entry.apps:
        for static in app.get("static") or []:
            url = static["url"]
            stem = url.rstrip("/")
            if stem in mounts:
                errors.add(app_where, "static.url", url, "a URL path other than an app mount (below one is fine)",
                           f"clashes with the mount of app {show(mounts[stem]['name'])}:")
            elif stem in aliases:
                errors.add(app_where, "static.url", url, "a URL path other than the site's static_aliases",
                           "clashes with a static alias:")
            elif url in owners and owners[url] is not app:
                errors.add(app_where, "static.url", url, "each static url once in a site",
                           f"also a static url of app {show(owners[url]['name'])}:")
            owners.setdefault(url, app)


def _daemon_signature(app: Mapping) -> tuple:
    """What must agree for two apps to share one WSGIDaemonProcess definition."""
    return (app["wsgi_processes"], app["threads"], app["display_name"],
            tuple(sorted(app["daemon_options"].items())), app["user"])


def _check_shared_groups(errors: Errors, entry: SiteEntry) -> None:
    """Apps sharing a process group share one directive, so its settings must be identical."""
    first: dict[str, Mapping] = {}
    for app_where, app in entry.apps:
        if app["mode"] != "daemon" or app["process_group"] is None:
            continue
        group = app["process_group"]
        if group not in first:
            first[group] = app
        elif _daemon_signature(first[group]) != _daemon_signature(app):
            errors.add(app_where, "process_group", group,
                       "identical processes, threads, display_name, daemon_options and user "
                       "for apps sharing a process group",
                       f"shared with app {show(first[group]['name'])} but settings differ:")


# --------------------------------------------------------------------------- cross-site checks


def _check_site_keys(errors: Errors, entries: list[SiteEntry]) -> None:
    """Same name and port twice, or a name that is another site's alias: Apache picks one silently."""
    names: dict[tuple[str, int], Where] = {}
    aliases: dict[tuple[str, int], Where] = {}
    for where, site in ((e.where, e.site) for e in entries):
        if site["server_name"] is None or site["port"] is None:
            continue
        key = (site["server_name"].lower(), site["port"])
        if key in names:
            errors.add(where, "server_name", site["server_name"], "each server_name and port once",
                       f"same server_name and port {site['port']} as {names[key]}:")
        names.setdefault(key, where)
        for alias in site["server_aliases"]:
            owner = aliases.setdefault((alias.lower(), site["port"]), where)
            if owner != where:
                errors.add(where, "server_aliases", alias, "each server_alias in one site per port",
                           f"also a server_alias of {owner} on port {site['port']}:")
    for where, site in ((e.where, e.site) for e in entries):
        if site["server_name"] is None or site["port"] is None:
            continue
        owner = aliases.get((site["server_name"].lower(), site["port"]))
        if owner is not None and owner != where:
            errors.add(where, "server_name", site["server_name"],
                       "a name not used as a server_alias of another site on the same port",
                       f"is a server_alias of {owner} on port {site['port']}:")


def _check_tls_ports(errors: Errors, entries: list[SiteEntry]) -> None:
    """A port is either plain HTTP or HTTPS for every site on it (Apache has one protocol per address), and
    a name has one HTTPS site per port (Apache would serve the first; they would share a certificate)."""
    plain = {e.site["port"]: e.where for e in entries if e.site["port"] is not None}
    https: dict[tuple[str, int], Where] = {}
    for where, site in ((e.where, e.site) for e in entries):
        tls = site.get("tls")
        if not tls:
            continue
        if tls["port"] in plain:
            owner = plain[tls["port"]]
            errors.add(where, "tls.port", tls["port"], "a port that no site serves plain HTTP on",
                       "is the plain port of " + ("this site" if owner == where else str(owner)) + ":")
        if site["server_name"] is not None:
            first = https.setdefault((site["server_name"].lower(), tls["port"]), where)
            if first != where:
                errors.add(where, "tls.port", tls["port"], "each server_name once per HTTPS port",
                           f"same server_name and HTTPS port as {first}:")


def _check_unique_apps(errors: Errors, entries: list[SiteEntry]) -> None:
    """App names become script paths, and process groups are global: both must be unique."""
    app_names: dict[str, Where] = {}
    group_sites: dict[str, Where] = {}
    for entry in entries:
        site_groups: set[str] = set()
        for app_where, app in entry.apps:
            name = app["name"]
            if name is not None and name in app_names:
                errors.add(app_where, "name", name, "app names unique across all sites "
                           "(each is a script file)", f"also used by {app_names[name]}:")
            elif name is not None:
                app_names[name] = app_where
            group = app.get("process_group")
            if group is None or group in site_groups:
                continue
            site_groups.add(group)
            if group in group_sites:
                errors.add(app_where, "process_group", group, "a process group used by one site only",
                           f"also used in {group_sites[group]}:")
            else:
                group_sites[group] = app_where


def _check_project_apps(errors: Errors, entries: list[SiteEntry]) -> None:
    """What project apps may not share in one host's Apache: a user, a daemon group, the embedded Python.

    mod_wsgi has one Python home and one process environment per Apache for its embedded apps (they run in
    Apache's own processes), so two embedded projects would import each other's packages and see each
    other's environment: the second is refused, naming the first.
    """
    apps = [(where, app) for entry in entries for where, app in entry.apps]
    embedded: tuple[Where, Mapping] | None = None
    users: dict[str, Where] = {}
    groups: dict[str, Where] = {}
    for where, app in apps:
        if app["mode"] == "daemon" and app.get("user"):
            users.setdefault(app["user"], where)
        if app["mode"] == "daemon" and app.get("process_group"):
            groups.setdefault(app["process_group"], where)
    for where, app in apps:
        if app.get("project") is None or app["mode"] is None:
            continue
        if app["mode"] == "embedded":
            if embedded is not None:
                errors.add(where, "mode", "embedded", "one embedded project app per host (mod_wsgi embeds one "
                           "Python home and one process environment in Apache); run this one in daemon or "
                           "proxy mode", f"a second embedded project app besides {embedded[0]}:")
            else:
                embedded = (where, app)
        if app["mode"] == "daemon":
            if users.get(app["user"]) not in (None, where):
                errors.add(where, "user", app["user"], "a user of this project app's own",
                           f"also the user of {users[app['user']]}:")
            if groups.get(app["process_group"]) not in (None, where):
                errors.add(where, "process_group", app["process_group"],
                           "a process group of this project app's own",
                           f"also the process group of {groups[app['process_group']]}:")


def _check_databases(errors: Errors, entries: list[SiteEntry]) -> None:
    """A database belongs to one app: two apps of a host with one database would read each other's data."""
    owners: dict[str, Where] = {}
    for entry in entries:
        for where, app in entry.apps:
            database = app.get("database")
            if not database:
                continue
            if database["name"] in owners:
                errors.add(where, "database.name", database["name"], "a database of this app's own",
                           f"also the database of {owners[database['name']]}:")
            else:
                owners[database["name"]] = where


# --------------------------------------------------------------------------- entry points


def _site(errors: Errors, index: int, raw: Any, ctx: Context) -> SiteEntry | None:
    """Validate one site (its own fields, then its apps) and fill in the defaults."""
    if not isinstance(raw, Mapping):
        errors.add(Where(index), "wsgi_sites", raw, "a mapping with server_name, port, apps, ...",
                   "site is not a mapping:")
        return None
    where = Where(index, raw.get("server_name"))
    report_unknown_keys(errors, where, raw, SITE_KEYS, "site")
    site = normalize_fields(errors, where, raw, ctx, fields("site"), {})
    apps: list[AppEntry] = site["apps"]  # the apps checker keeps each app's position for the cross checks
    site["apps"] = [app for _, app in apps]
    entry = SiteEntry(where, derive(site, ctx, "site", None), apps)
    for check in SITE_CHECKS:
        check(errors, entry)
    return entry


SITE_CHECKS: tuple[Callable[[Errors, SiteEntry], None], ...] = (
    _check_mounts, _check_alias_vs_mounts, _check_shared_groups, _check_static_urls,
)


def _context(errors: Errors, base_dir: Any, source_base: Any, default_source: Any) -> Context:
    """Normalize the caller's paths once; a relative base_dir would put files who knows where."""
    if not isinstance(base_dir, str) or not base_dir.startswith("/") or has_dot_segment(base_dir):
        errors.add(Where(), "wsgi_base_dir", base_dir, "an absolute path without '.' or '..' segments")
        base = "/invalid"
    else:
        base = "/" + posixpath.normpath(base_dir).lstrip("/")
    return Context(
        base_dir=base,
        scripts_dir=posixpath.join(base, "wsgi-scripts"),
        source_base=os.path.abspath(str(source_base)),
        default_source=os.path.abspath(str(default_source)),
        apps_dir=posixpath.join(base, APPS_SUBDIR),
    )


def _check_reserved(errors: Errors, entries: list[SiteEntry], paths: list[str], groups: list[str]) -> None:
    """URL paths and process groups the roles use themselves (the health check) are not for apps."""
    for entry in entries:
        for app_where, app in entry.apps:
            mount = app["mount"]
            for path in paths:
                if mount is not None and (mount == path or mount.startswith(path + "/")):
                    errors.add(app_where, "mount", mount, f"a URL path outside {path}",
                               "is the health check's path (wsgi_health_path):")
            if app.get("process_group") in groups:
                errors.add(app_where, "process_group", app["process_group"],
                           f"a name other than {', '.join(groups)}", "is used by the health check:")
        for alias in entry.site["static_aliases"]:
            if alias.rstrip("/") in paths:
                errors.add(entry.where, "static_aliases", alias, "a URL path other than the health check's",
                           "hides the health check (wsgi_health_path):")


def wsgi_normalize_sites(sites: Any, base_dir: Any, source_base: Any, default_source: Any,
                         reserved_paths: Any = (), reserved_groups: Any = ()) -> list[dict[str, Any]]:
    """Return a new, fully defaulted copy of wsgi_sites, or raise listing every problem found.

    reserved_paths and reserved_groups are URL paths and process groups the roles use themselves.
    """
    errors = Errors()
    ctx = _context(errors, base_dir, source_base, default_source)
    if sites is None:
        sites = []
    if not is_list(sites):
        errors.add(Where(), "wsgi_sites", sites, "a list of site mappings")
        sites = []
    entries = [entry for index, raw in enumerate(sites) if (entry := _site(errors, index, raw, ctx))]
    _check_site_keys(errors, entries)
    _check_tls_ports(errors, entries)
    _check_unique_apps(errors, entries)
    _check_project_apps(errors, entries)
    _check_databases(errors, entries)
    _check_reserved(errors, entries, [p for p in reserved_paths or [] if p], list(reserved_groups or []))
    if errors:
        raise AnsibleFilterError(f"wsgi_sites is invalid ({len(errors)} problem(s)):\n" + "\n".join(errors))
    return [entry.site for entry in entries]


def wsgi_sites_without_tls(sites: Any) -> list[dict[str, Any]]:
    """The normalized sites as a web server behind balancers serves them: plain HTTP only (the balancers
    end TLS for the sites with tls, see wsgi_tls_front_sites)."""
    return [{**site, "tls": None} for site in sites or []]


def _front_site(index: int, site: Mapping[str, Any]) -> dict[str, Any]:
    """What a balancer needs of a member's HTTPS site: its names and tls, and its place in wsgi_sites (for
    the messages of the certificate check)."""
    return {"index": index, "server_name": site["server_name"], "server_aliases": site["server_aliases"],
            "config_name": site["config_name"], "tls": site["tls"]}


def wsgi_host_model(sites: Any, base_dir: Any, source_base: Any, default_source: Any,
                    reserved_paths: Any = (), reserved_groups: Any = (),
                    behind_balancers: Any = False, host_groups: Any = ()) -> dict[str, Any]:
    """The one model of a host's sites, built once per run by the validation (roles/wsgi/tasks/validate.yml).

    Every role and template reads this, never wsgi_sites again:
      problems          "" or the message wsgi_normalize_sites raises (the model is empty then); shown by
                        the validation, which stops the run before any host changes
      sites             the normalized sites as this host serves them (plain HTTP behind balancers, which
                        end TLS for them)
      tls_sites         those of sites with tls: where TLS ends on this host
      front_sites       behind balancers, each site with tls as the balancers serve it (wsgi_tls_front_sites
                        merges the members'); [] otherwise
      behind_balancers  whether balancers are in front of this host
      web_server        true: the model of a web server (wsgi_process_hosts makes those of hosts that run
                        apps' processes only)
      process_apps      [] here; on a process host, the apps whose processes it runs
    Each app's `processes` are those that run on this host: without a group, or of a group among
    host_groups (the host's group_names); the others are its `processes_elsewhere`, which their own hosts run.
    Secret values are not in the model: wsgi_secret_values and wsgi_database_password_values give them.
    """
    behind = bool(behind_balancers)
    model: dict[str, Any] = {"problems": "", "sites": [], "tls_sites": [], "front_sites": [],
                             "behind_balancers": behind, "web_server": True, "process_apps": []}
    try:
        normalized = wsgi_normalize_sites(sites, base_dir, source_base, default_source, reserved_paths,
                                          reserved_groups)
    except AnsibleFilterError as error:
        return {**model, "problems": str(error.message)}
    normalized = _placed_processes(normalized, set(host_groups or ()))
    if behind:
        model["front_sites"] = [_front_site(index, site) for index, site in enumerate(normalized) if site["tls"]]
        normalized = wsgi_sites_without_tls(normalized)
    model["sites"] = normalized
    model["tls_sites"] = [site for site in normalized if site["tls"]]
    return model


def _placed_processes(sites: list[dict[str, Any]], host_groups: set[str]) -> list[dict[str, Any]]:
    """The sites with each app's processes split into those of this host (`processes`: no group, or a group
    of host_groups) and the others (`processes_elsewhere`)."""
    def placed(app: dict[str, Any]) -> dict[str, Any]:
        every = app.get("processes") or {}
        here = {name: spec for name, spec in every.items() if spec["group"] in (None, *host_groups)}
        return {**app, "processes": here,
                "processes_elsewhere": {name: spec for name, spec in every.items() if name not in here}}
    return [{**site, "apps": [placed(app) for app in site["apps"]]} for site in sites]


def wsgi_tls_front_sites(members_models: Any, members: Any) -> list[dict[str, Any]]:
    """The HTTPS sites a balancer serves for its members: every front site of any member, once.

    members_models is each member's wsgi_model (in the order of members), built by the web servers'
    validation. A site is its server_name and HTTPS port; two members that give it different aliases or
    tls would make the balancer's certificate wrong for one of them: an error naming both. Each entry
    keeps what a balancer needs (names, tls) and the members that serve it.
    """
    front: dict[tuple[str, int], dict[str, Any]] = {}
    for host, model in zip(members or [], members_models or []):
        if not isinstance(model, Mapping) or "front_sites" not in model:
            raise AnsibleFilterError(
                f"balancer member {host} has no wsgi_model: a member must be a web server (group webservers) "
                "validated in this run (playbooks/validate.yml, which site.yml imports)")
        for site in model["front_sites"]:
            entry = {key: site[key] for key in ("server_name", "server_aliases", "config_name", "tls")}
            key = (site["server_name"].lower(), site["tls"]["port"])
            known = front.setdefault(key, {**entry, "members": []})
            if {k: known[k] for k in entry} != entry:
                raise AnsibleFilterError(
                    f"wsgi_sites of {host}: site {site['server_name']!r} has other server_aliases or tls than on "
                    f"{known['members'][0]}; allowed: the same on every web server (the balancers serve it "
                    "with one certificate)")
            known["members"].append(str(host))
    return list(front.values())


def wsgi_secret_values(sites: Any) -> dict[str, dict[str, str]]:
    """The secrets of every project app of wsgi_sites as given (validated first): app name to name to value.

    Kept apart from the normalized sites, which hold only the secrets' names, so that no loop item and no
    shown result carries a value; the roles read this only in tasks whose output is hidden.
    """
    values: dict[str, dict[str, str]] = {}
    for site in sites or []:
        for app in (site.get("apps") or []) if isinstance(site, Mapping) else []:
            if isinstance(app, Mapping) and app.get("project") and isinstance(app.get("secrets"), Mapping):
                values[str(app.get("name"))] = {str(k): str(v) for k, v in app["secrets"].items()}
    return values


def _given_passwords(sites: Any, field: str) -> dict[str, str]:
    """The passwords given in the apps' `field` (database, redis) of wsgi_sites: app name to password."""
    values: dict[str, str] = {}
    for site in sites or []:
        for app in (site.get("apps") or []) if isinstance(site, Mapping) else []:
            settings = app.get(field) if isinstance(app, Mapping) else None
            if isinstance(settings, Mapping) and settings.get("password") is not None:
                values[str(app.get("name"))] = str(settings["password"])
    return values


def wsgi_database_password_values(sites: Any) -> dict[str, str]:
    """The database passwords given in wsgi_sites (validated first): app name to password.

    Like wsgi_secret_values, apart from the model (which keeps only password_given), for the database
    host's play (wsgi_databases) to read in tasks whose output is hidden.
    """
    return _given_passwords(sites, "database")


def wsgi_redis_password_values(sites: Any) -> dict[str, str]:
    """The Redis passwords given in wsgi_sites (validated first): app name to password, for the redis
    host's play (wsgi_redis_instances), like wsgi_database_password_values."""
    return _given_passwords(sites, "redis")


_HEALTH_PATH = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HTTPS_URL = re.compile(r"^https://[^\s]+$")


def wsgi_settings_problems(health_path: Any, keep_releases: Any, acme_sites: Any = (), acme_contact: Any = "",
                           acme_directory: Any = "", acme_ca_file: Any = "", acme_ca_source: Any = "") -> str:
    """What is wrong with the settings other roles take from the wsgi role, each named with what is
    allowed, joined by newlines; empty when nothing is. The ACME account is checked where a site gets its
    certificate from ACME (acme_sites); acme_ca_source is acme_ca_file as a controller path.

    One filter for one assert: the settings are checked in every play that loads them (the validation, the
    plan, the build, the balancers'), and each assert of its own cost the controller a task per host.
    """
    problems = []
    if not (health_path == "" or (isinstance(health_path, str) and _HEALTH_PATH.match(health_path)
                                  and "/." not in health_path)):
        problems.append(f"wsgi_health_path is {json.dumps(health_path)}; allowed: an empty string (no health "
                        "check) or a URL path like /healthz (letters, digits, '.', '_', '~', '-', no trailing "
                        "slash).")
    # As Jinja's `string` writes it: a boolean is True or False, not a number.
    if not (re.match(r"^[0-9]+$", str(keep_releases)) and int(str(keep_releases)) >= 1):
        problems.append(f"wsgi_keep_releases is {json.dumps(keep_releases)}; allowed: an integer of at least 1 "
                        "(the releases kept per project app on each host, the live one included).")
    sites = list(acme_sites or [])
    if sites:
        names = ", ".join(str(site.get("server_name")) for site in sites)
        if not (isinstance(acme_contact, str) and _EMAIL.match(acme_contact)):
            problems.append(f"wsgi_acme_contact is {json.dumps(acme_contact)}; allowed: the e-mail address of the "
                            f"ACME account, required because {names} use certificate acme.")
        if not (isinstance(acme_directory, str) and _HTTPS_URL.match(acme_directory)):
            problems.append(f"wsgi_acme_directory is {json.dumps(acme_directory)}; allowed: the https:// URL of "
                            "an ACME directory (default Let's Encrypt's, "
                            "https://acme-v02.api.letsencrypt.org/directory).")
        if not (isinstance(acme_ca_file, str) and (acme_ca_file == "" or os.path.isfile(str(acme_ca_source)))):
            problems.append(f"wsgi_acme_ca_file is {json.dumps(acme_ca_file)}; allowed: an empty string (the "
                            "system's CAs) or the path of a PEM bundle on the controller (relative to "
                            "wsgi_source_dir).")
    return "\n".join(problems)
