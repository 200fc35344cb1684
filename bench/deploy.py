#!/usr/bin/env python3
"""How long it takes to deploy a Django project: to a fresh host, to a second fresh host once the
controller has its wheelhouse, and a code-only change (no requirement changed).

    .venv/bin/python bench/deploy.py                     # daemon mode on Debian 12
    .venv/bin/python bench/deploy.py --mode proxy --image wsgi-lab/debian:13 --log-dir /tmp/deploy-logs

Two fresh systemd containers (the flags and helpers of bench/fleet_scale.py: scale-web1 and scale-web2 on
its network) get one site with the test Django project of the Molecule scenarios
(molecule/shared/files/apps/shop, copied to a temporary directory so that the change below does not touch
the repository) as a project app, with the fields bench/modes.py --app django uses: its own release and
venv built from wheels the controller ships, secrets, collectstatic, migrations. Four timed runs of the real
site.yml, one after the other:

    fresh host, cold cache   scale-web1, with an empty artifact cache on the controller (wsgi_artifact_cache
                             and headrace_wheel_cache in the temporary directory): resolving with uv and
                             downloading the wheels from the package index is part of this time
    fresh host, warm cache   scale-web2, the same project: the controller's wheelhouse is a cache hit
                             (checked: the cache directory holds no new file afterwards)
    no change                scale-web1 again: must change nothing
    code-only change         scale-web1 with a new shop/version.py: a new release that reuses the venv (checked:
                             no wheel downloaded, no pip install, no venv created; the app answers version 2)

Every run also records the CPU time the whole machine spent (the containers are processes of this
machine, see fleet_scale.py). The first run needs the package index (PyPI, or --extra-vars with
wsgi_package_index); the containers install Debian packages from the mirrors. The containers and the
network are removed at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml
from fleet_scale import (
    CPUS,
    Run,
    add_run_arguments,
    clean_up,
    host_names,
    log,
    playbook_command,
    refresh_package_lists,
    start_fleet,
    start_run,
    time_playbook,
    unchanged_problems,
)
from modes import DJANGO_FIELDS, DJANGO_PROJECT

SERVER_NAME = "shop.bench"
# What a code-only release must not do (task names of roles/releases/tasks/release.yml).
INSTALL_TASKS = ("releases : Create the venv", "releases : Install the requirements from the shipped wheels")


def sites(project: Path, mode: str) -> list[dict]:
    return [{"server_name": SERVER_NAME,
             "apps": [{"name": "shop", "mount": "/", "mode": mode, **DJANGO_FIELDS, "project": str(project)}]}]


def write_inventory(directory: Path, names: list[str], project: Path, mode: str) -> Path:
    inventory = directory / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_connection": "community.docker.docker",
                 "ansible_python_interpreter": "/usr/bin/python3"},
        "children": {"webservers": {"hosts": {name: {"ansible_host": name} for name in names},
                                    "vars": {"wsgi_sites": sites(project, mode)}}},
    }}, sort_keys=False))
    return inventory


def cache_files(cache: Path) -> set[str]:
    return {str(path.relative_to(cache)) for path in cache.rglob("*") if path.is_file()}


def answered_version(host: str) -> str:
    """The version the Django project answers with, asked inside the host (its Apache, port 80)."""
    script = ("import json, urllib.request; request = urllib.request.Request('http://127.0.0.1/', "
              f"headers={{'Host': '{SERVER_NAME}'}}); "
              "print(json.load(urllib.request.urlopen(request, timeout=10))['version'])")
    result = subprocess.run(["docker", "exec", host, "python3", "-c", script], text=True, capture_output=True,
                            check=False)
    if result.returncode != 0:
        raise SystemExit(f"bench: the app on {host} does not answer: {result.stderr.strip()[-500:]}")
    return result.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.add_argument("--mode", choices=("embedded", "daemon", "proxy"), default="daemon")
    parser.add_argument("--extra-vars", default="{}", help="JSON: more playbook variables (e.g. wsgi_package_index)")
    args = parser.parse_args()
    start_run(args)
    first, second = names = host_names(2)
    runs: dict[str, Run] = {}
    problems: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-deploy-") as scratch:
            tmp = Path(scratch)
            project = tmp / "shop"
            shutil.copytree(DJANGO_PROJECT, project, ignore=shutil.ignore_patterns("__pycache__", "staticfiles"))
            inventory = write_inventory(tmp, names, project, args.mode)
            cache = tmp / "artifacts"
            extra = json.dumps({"wsgi_artifact_cache": str(cache), "headrace_wheel_cache": str(tmp / "wheels"),
                                **json.loads(args.extra_vars)})
            start_fleet(len(names), args.image)
            refresh_package_lists(names)

            def timed(label: str, host: str) -> Run:
                log(f"{label} ({host})")
                runs[label] = time_playbook([*playbook_command(inventory, extra), "--limit", host], label,
                                            args, names)
                log(f"{label}: {runs[label].seconds:.0f} s")
                return runs[label]

            timed("fresh host, cold cache", first)
            filled = cache_files(cache)
            timed("fresh host, warm cache", second)
            if new := cache_files(cache) - filled:
                problems.append(f"the second host's deploy added to the artifact cache: {sorted(new)[:5]}")
            problems += unchanged_problems([first], timed("no change", first), "no change")
            (project / "shop" / "version.py").write_text('"""A new release."""\n\nVERSION = "2"\n')
            code_only = timed("code-only change", first)
            # A new code archive (code/) is expected; a new wheelhouse is not.
            if wheels := sorted(name for name in cache_files(cache) - filled if not name.startswith("code/")):
                problems.append(f"the code-only change added more than its code to the cache: {wheels[:5]}")
            if installed := [task for task, _ in code_only.changed_tasks if task in INSTALL_TASKS]:
                problems.append(f"the code-only change ran {installed}")
            for host, version in ((first, "2"), (second, "1")):
                if (answered := answered_version(host)) != version:
                    problems.append(f"{host} answers version {answered}, not {version}")
    finally:
        clean_up()
    report(runs, args)
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


def report(runs: dict[str, Run], args: argparse.Namespace) -> None:
    fresh = runs["fresh host, cold cache"].seconds
    print(f"\nThe test Django project in {args.mode} mode, {args.image}, site.yml on {CPUS} CPUs "
          "(Ansible and the containers share them)\n")
    print("| run | wall (s) | vs fresh, cold cache | CPU (s), whole machine |")
    print("| --- | ---: | ---: | ---: |")
    for label, result in runs.items():
        print(f"| {label} | {result.seconds:.0f} | {result.seconds / fresh:.2f}x | {result.cpu_seconds:.0f} |")


if __name__ == "__main__":
    raise SystemExit(main())
