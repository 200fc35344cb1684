"""Releases of project apps: their build environment, which migrations to run where, what to clean up.

The releases role builds each project app into releases/<id>/ on every host, switches the `current` link and
keeps wsgi_keep_releases of them. The decisions of those steps live here, with tests, instead of in
Jinja: the environment a build or migration runs with, the one host per new release that runs its
migrations (before any host switches), the releases and venvs that may go, and the redaction of secret
values from the output shown when a build fails.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.file_entries import (
    directory_entry,
    nice_json,
)
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.shared_rules import (
    PROCESS_RUN_DIR,
    command_words,
    process_instances,
    process_unit,
)

REDACTED = "********"
# The database settings an app gets with its secrets (wsgi_database_secrets) that are names, not secrets:
# starring them would hide the app's own name (its database and role) in every path of the output.
NOT_SECRET = frozenset({"PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGSSLMODE"})
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def wsgi_build_environment(app: Mapping[str, Any], release_dir: str,
                           secrets: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The environment of a project app's build and migrate commands: its own, with its venv active.

    The same variables the app sees at run time (env, its secrets' values from wsgi_secret_values,
    STATE_DIRECTORY), plus the venv first on PATH so `python manage.py ...` is the release's Python, and
    no bytecode written into the release.
    """
    if not isinstance(app, Mapping) or not app.get("release"):
        raise AnsibleFilterError(f"wsgi_build_environment: {app!r} is not a normalized project app")
    venv = f"{release_dir}/.venv"
    return {
        **{str(k): str(v) for k, v in app["env"].items()},
        **{str(k): str(v) for k, v in (secrets or {}).items()},
        "STATE_DIRECTORY": app["release"]["state_dir"],
        "VIRTUAL_ENV": venv,
        "PATH": f"{venv}/bin:{SYSTEM_PATH}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def wsgi_redact(text: Any, secrets: Any) -> str:
    """text with every secret value replaced, so a failed build's output can be shown safely."""
    result = str(text or "")
    values = sorted((str(v) for k, v in (secrets or {}).items() if str(v) and k not in NOT_SECRET),
                    key=len, reverse=True)
    for value in values:
        result = result.replace(value, REDACTED)
    return result


def wsgi_migration_plan(hosts: Iterable[str], hostvars: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Where each new release's migrations run: the first host (in play order) that built it.

    A release is keyed by (app, release id); the id includes the Python version, so hosts on another
    Debian release run their own. A release that some host of the play records as migrated (its
    releases_built entry says `migrated`: the file `marker` that migrate.yml writes there) is skipped,
    so migrations run once per release across runs and the batches of a rolling update. The record is on
    the hosts, not on the controller: another controller, or a fleet created anew, sees the truth.
    """
    plan: dict[tuple[str, str], dict[str, Any]] = {}
    done: set[tuple[str, str]] = set()
    for host in hosts:
        for name, built in sorted((hostvars[host].get("releases_built") or {}).items()):
            if not built.get("migrate"):
                continue
            key = (name, built["release"])
            if built.get("migrated"):
                done.add(key)
            elif key not in plan:
                plan[key] = {"host": host, "app": name, "release": built["release"], "marker": built["marker"]}
    return [entry for key, entry in plan.items() if key not in done]


def wsgi_migration_records(hosts: Iterable[str], hostvars: Mapping[str, Any], host: str) -> list[dict[str, Any]]:
    """The records of migrations that host writes once the plan's migrations ran (wsgi_files entries): for
    each new release it built whose migrations ran on a host of the play (the plan's host in this run, or
    one that recorded them earlier), its marker with that host's name, root's 0644, as migrate.yml writes
    it on the host that ran them.

    Why every host records them: a later run may build on one host alone (the others up to date, left out
    of its play), which would otherwise see no record and run them again.
    """
    hosts = list(hosts or ())
    ran_on = {(entry["app"], entry["release"]): entry["host"] for entry in wsgi_migration_plan(hosts, hostvars)}
    for other in hosts:
        for name, built in (hostvars[other].get("releases_built") or {}).items():
            if built.get("migrate") and built.get("migrated"):
                ran_on.setdefault((name, built["release"]), other)
    return [{"path": built["marker"], "content": f"{ran_on[(name, built['release'])]}\n", "owner": "root",
             "group": "root", "mode": "0644"}
            for name, built in sorted((hostvars[host].get("releases_built") or {}).items())
            if built.get("migrate") and not built.get("migrated") and (name, built["release"]) in ran_on]


def wsgi_releases_to_remove(found: Any, keep: Any, live: Any) -> list[str]:
    """Release directories beyond the newest `keep` (the live one counted among them), never the live one.

    found is the `files` list of an ansible.builtin.find over releases/ (directories, with mtime); live is
    the live release's directory (the resolved `current` link), or empty when there is none yet.
    """
    given = keep
    try:
        keep = 0 if isinstance(given, bool) else int(given)
    except (TypeError, ValueError):
        keep = 0
    if keep < 1:
        raise AnsibleFilterError(f"wsgi_keep_releases is {given!r}; allowed: an integer of at least 1")
    entries = sorted(found or [], key=lambda entry: (entry["mtime"], entry["path"]), reverse=True)
    live = str(live or "")
    kept = [e["path"] for e in entries if e["path"] == live]
    for entry in entries:
        if len(kept) >= keep:
            break
        if entry["path"] not in kept:
            kept.append(entry["path"])
    return [entry["path"] for entry in entries if entry["path"] not in kept]


def wsgi_unused_venvs(found: Any, used: Iterable[Any]) -> list[str]:
    """venvs/ directories no kept release links to (used: the resolved .venv links of the kept releases)."""
    used_paths = {os.path.normpath(str(path)) for path in used or [] if path}
    return [entry["path"] for entry in found or [] if os.path.normpath(entry["path"]) not in used_paths]


def wsgi_release_directories(apps: Any, apache_user: str,
                             existing_users: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The directories of the project apps as wsgi_files entries, parents first, for one module run:
    the base directory (wsgi_base_dir, which the wsgi role's layout makes the same) and its apps/, taken from
    the apps' own directories (a host that runs an app's processes only has them from the web servers'
    model), and the state directories' parents, each app's directory with releases/ and venvs/
    (and migrated/, the record of its migrations, for an app with migrate commands), root's 0755; then
    each app's state directory, kept across releases and rollbacks, which only the app's user may enter
    (Apache's for an embedded app), 0700. With existing_users (a dry run, before the apps' users exist),
    only the state directories of users that exist are listed: the others cannot be checked yet.
    """
    apps = list(apps or [])
    if not apps:
        return []
    parents = [os.path.dirname(app["release"]["app_dir"]) for app in apps]
    paths = [*(os.path.dirname(path) for path in parents), *parents,
             *(os.path.dirname(app["release"]["state_dir"]) for app in apps)]
    for app in apps:
        app_dir = app["release"]["app_dir"]
        paths += [app_dir, f"{app_dir}/releases", f"{app_dir}/venvs"]
        if app.get("migrate"):
            paths.append(f"{app_dir}/migrated")
    entries = [directory_entry(path) for path in dict.fromkeys(paths)]
    known = None if existing_users is None else set(existing_users)
    for app in apps:
        owner = app["release"].get("user") or apache_user
        if known is None or owner in known:
            entries.append({"path": app["release"]["state_dir"], "state": "directory", "owner": owner,
                            "group": owner, "mode": "0700"})
    return entries


# Prints, for one app (argument 1: its directory; 2: its `current` link), one tab-separated line per fact:
# the live release, each release (mtime, path) and the venv its .venv link resolves to, and each venv.
_LISTING_SCRIPT = r"""app=$1 current=$2
if [ -L "$current" ]; then printf 'live\t%s\n' "$(readlink -f -- "$current")"; fi
find "$app/releases" -mindepth 1 -maxdepth 1 -type d -printf 'release\t%T@\t%p\n' 2>/dev/null
find "$app/venvs" -mindepth 1 -maxdepth 1 -type d -printf 'venv\t%p\n' 2>/dev/null
for release in "$app"/releases/*; do
  if [ -L "$release/.venv" ]; then printf 'link\t%s\t%s\n' "$release" "$(readlink -f -- "$release/.venv")"; fi
done
true
"""


def wsgi_release_listing_command(app_dir: Any, current: Any) -> list[str]:
    """The argv of the one command that lists the releases and venvs of the app in app_dir, and the live
    one (current: its link): one module run where a stat, two finds and a stat per kept release were five
    or more, on every converge of every app. The paths are arguments, never part of the script."""
    return ["/bin/sh", "-c", _LISTING_SCRIPT, "sh", str(app_dir), str(current)]


def wsgi_release_listing(output: Any) -> dict[str, Any]:
    """What wsgi_release_listing_command printed, in the shapes the cleanup filters take: `live` (the live
    release's directory, or ""), `releases` (each `path`, `mtime` and `venv`, the venv its .venv link
    resolves to, or "") and `venvs` (each `path`)."""
    live, releases, venvs, links = "", [], [], {}
    for line in str(output or "").splitlines():
        kind, _, rest = line.partition("\t")
        if kind == "live":
            live = rest
        elif kind == "release":
            mtime, _, path = rest.partition("\t")
            releases.append({"path": path, "mtime": float(mtime)})
        elif kind == "venv":
            venvs.append({"path": rest})
        elif kind == "link":
            release, _, venv = rest.partition("\t")
            links[release] = venv
    for release in releases:
        release["venv"] = links.get(release["path"], "")
    return {"live": live, "releases": releases, "venvs": venvs}


def wsgi_release_env_files(apps: Any, env_dir: str, secrets: Mapping[str, Any] | None,
                           apache_group: str) -> list[dict[str, Any]]:
    """wsgi_files entries of the apps' environment files, <env_dir>/<app>.json: the app's env with its
    secrets over it, as to_nice_json writes it; root's, readable by the app's own group (Apache's for an
    embedded app, which runs inside Apache) and nobody else, never in a diff."""
    entries = []
    for app in apps or ():
        values = {**(app.get("env") or {}), **((secrets or {}).get(app["name"]) or {})}
        entries.append({"path": f"{env_dir}/{app['name']}.json", "content": nice_json(values), "owner": "root",
                        "group": (app.get("release") or {}).get("user") or apache_group, "mode": "0640",
                        "diff": False})
    return entries


def wsgi_release_switch_args(apps: Any, built: Mapping[str, Any]) -> list[str]:
    """The arguments of files/switch.sh after its mode: name, app directory and release, for each app this
    run built a release of (built: releases_built, by app name)."""
    args: list[str] = []
    for app in apps or ():
        if app["name"] in built:
            args += [app["name"], app["release"]["app_dir"], str(built[app["name"]]["release"])]
    return args


def _changed_paths(result: Any) -> set[str]:
    """The paths a wsgi_files run changed, from its registered result (none when it was skipped)."""
    return {entry["path"] for entry in (result or {}).get("results") or () if entry.get("changed")}


def wsgi_release_restarts(apps: Any, env_dir: str, envs: Any, loaders: Any, switched: Iterable[str]) -> list[str]:
    """The apps to restart (in the apps' order): those whose environment file (envs, the wsgi_files result)
    or loader (loaders, idem; the app's script) changed, or which switched to another release (switched, the
    names switch.sh printed)."""
    changed = _changed_paths(envs) | _changed_paths(loaders)
    names = set(switched or ())
    return [app["name"] for app in apps or ()
            if app["name"] in names or f"{env_dir}/{app['name']}.json" in changed or app.get("script") in changed]


def _systemd_quoted(word: str) -> str:
    """One word of an ExecStart= line, as systemd reads it back: double-quoted, with its own escapes."""
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def _runs_as(app: Mapping[str, Any], apache_user: str, apache_group: str) -> dict[str, str]:
    """Who an app's processes and jobs run as: its own user, or Apache's for an embedded app (its
    environment file is readable by Apache's group then)."""
    release = app.get("release") or {}
    return {"user": release.get("user") or apache_user, "group": release.get("user") or apache_group}


def _launch_words(app: Mapping[str, Any], env_dir: str) -> list[str]:
    """The arguments app-exec and job-run take before the command: the app's environment file, its
    `current` link and its state directory."""
    release = app["release"]
    return [f"{env_dir}/{app['name']}.json", release["current"], release["state_dir"]]


def wsgi_process_units(apps: Any, unit_dir: str, env_dir: str, apache_user: str,
                       apache_group: str) -> list[dict[str, Any]]:
    """The systemd template unit of each process type of each project app (processes), in the apps' order.

    Each names its unit (wsgi-<app>-<process>@.service) and its path in unit_dir, the app and the process,
    its instance count and stop timeout, the user and group it runs as (the app's own; Apache's for an
    embedded app, which runs as Apache), its state directory, where a running instance keeps its mark for
    the health check (run_dir), and the arguments of app-exec: the app's environment file, its `current`
    link, its state directory and the command's words, each quoted for ExecStart=.
    """
    units = []
    for app in apps or ():
        for process, spec in (app.get("processes") or {}).items():
            unit = process_unit(app["name"], process)
            words = [*_launch_words(app, env_dir), *spec["argv"]]
            units.append({
                "unit": unit, "path": f"{unit_dir}/{unit}", "app": app["name"], "process": process,
                "count": int(spec["count"]), "stop_timeout": int(spec["stop_timeout"]),
                **_runs_as(app, apache_user, apache_group), "state_dir": app["release"]["state_dir"],
                "run_dir": PROCESS_RUN_DIR, "exec_args": " ".join(map(_systemd_quoted, words)),
            })
    return units


def wsgi_job_units(apps: Any, unit_dir: str, env_dir: str, apache_user: str,
                   apache_group: str) -> list[dict[str, Any]]:
    """The timer and service of each scheduled job of each project app (schedule), in the apps' order.

    Each names its timer (wsgi-<app>-job-<name>.timer) and service, their paths in unit_dir, the app, the
    job, its calendar and timeout, the user and group it runs as (as the app's processes), its state
    directory and the arguments of job-run: app, job, calendar and timeout, then those of app-exec (the
    environment file, `current`, the state directory) and the command's words, each quoted for ExecStart=.
    """
    units = []
    for app in apps or ():
        for job in app.get("schedule") or ():
            base = f"wsgi-{app['name']}-job-{job['name']}"
            words = [app["name"], job["name"], job["on_calendar"], str(job["timeout"]),
                     *_launch_words(app, env_dir), *job["argv"]]
            units.append({
                "timer": f"{base}.timer", "service": f"{base}.service", "timer_path": f"{unit_dir}/{base}.timer",
                "service_path": f"{unit_dir}/{base}.service", "app": app["name"], "job": job["name"],
                "on_calendar": job["on_calendar"], "timeout": int(job["timeout"]),
                **_runs_as(app, apache_user, apache_group), "state_dir": app["release"]["state_dir"],
                "exec_args": " ".join(map(_systemd_quoted, words)),
            })
    return units


def wsgi_process_args(units: Any, restarted: Iterable[str], files: Any, jobs: Any = ()) -> list[str]:
    """The arguments of files/processes.sh after its unit directory: reload when a unit's file changed
    (files is the registered wsgi_files result that wrote them), then per process unit its template, count
    and whether to restart the running instances (yes when the app is among restarted, or its file
    changed), then, after "--", the timers of the jobs (wsgi_job_units)."""
    changed = _changed_paths(files)
    apps = set(restarted or ())
    paths = [unit["path"] for unit in units or ()]
    paths += [path for job in jobs or () for path in (job["timer_path"], job["service_path"])]
    args = ["reload" if any(path in changed for path in paths) else "no-reload"]
    for unit in units or ():
        again = unit["app"] in apps or unit["path"] in changed
        args += [unit["unit"], str(unit["count"]), "yes" if again else "no"]
    return [*args, "--", *(job["timer"] for job in jobs or ())]


def wsgi_unwatched_instances(apps: Any) -> list[str]:
    """The process instances of the apps no health check watches on this host: those without a loader
    (script none: a host that runs the app's processes only, processes.<name>.group), which the releases
    role checks itself after a switch (files/processes_up.sh)."""
    return [unit for app in apps or () if not app.get("script") for unit in process_instances(app)]


def _project_apps_of(hostvars: Mapping[str, Any], host: str) -> list[Mapping[str, Any]]:
    """The project apps of a host's model (wsgi_model, the validation's fact: play variables such as
    releases_apps are not in hostvars)."""
    model = hostvars[host].get("wsgi_model") or {}
    return [app for site in model.get("sites") or () for app in site.get("apps") or () if app.get("project")]


def wsgi_run_target(hosts: Iterable[str], hostvars: Mapping[str, Any], app_name: Any, host: Any = "",
                    command: Any = "") -> dict[str, Any]:
    """Where playbooks/run.yml runs command for app app_name, checked before any host changes: the host
    given, or the first of hosts (the play's, in inventory order) with a project app of that name.

    Returns the host, the app (as that host's model has it) and the command's words (split like a shell
    line: quotes work; no shell runs it). Raises an error naming the variable and what is allowed.
    """
    apps = {name: _project_apps_of(hostvars, name) for name in hosts or ()}
    having = [name for name, own in apps.items() if any(app["name"] == app_name for app in own)]
    known = sorted({app["name"] for own in apps.values() for app in own})
    if not isinstance(app_name, str) or not having:
        raise AnsibleFilterError(f"wsgi_run_app is {app_name!r}; allowed: the name of a project app of the web "
                                 f"servers ({', '.join(known) or 'they have none'}), e.g. -e wsgi_run_app=shop")
    if host and host not in having:
        raise AnsibleFilterError(f"wsgi_run_host is {host!r}; allowed: a web server with the app {app_name} "
                                 f"({', '.join(having)}), or none for the first of them")
    words = command_words(command)
    if not words:
        raise AnsibleFilterError(f"wsgi_run_command is {command!r}; allowed: a command line on one line, quotes "
                                 "balanced, e.g. -e 'wsgi_run_command=\"python manage.py migrate --plan\"'")
    target = host or having[0]
    app = next(app for app in apps[target] if app["name"] == app_name)
    return {"host": target, "app": app, "argv": words}


class FilterModule:
    """Ansible entry point: the filters of the releases role."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Map filter names to functions."""
        return {
            "wsgi_build_environment": wsgi_build_environment,
            "wsgi_redact": wsgi_redact,
            "wsgi_migration_plan": wsgi_migration_plan,
            "wsgi_migration_records": wsgi_migration_records,
            "wsgi_releases_to_remove": wsgi_releases_to_remove,
            "wsgi_unused_venvs": wsgi_unused_venvs,
            "wsgi_release_directories": wsgi_release_directories,
            "wsgi_release_listing_command": wsgi_release_listing_command,
            "wsgi_release_listing": wsgi_release_listing,
            "wsgi_release_env_files": wsgi_release_env_files,
            "wsgi_release_switch_args": wsgi_release_switch_args,
            "wsgi_release_restarts": wsgi_release_restarts,
            "wsgi_process_units": wsgi_process_units,
            "wsgi_process_args": wsgi_process_args,
            "wsgi_unwatched_instances": wsgi_unwatched_instances,
            "wsgi_job_units": wsgi_job_units,
            "wsgi_run_target": wsgi_run_target,
        }
