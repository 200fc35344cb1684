#!/usr/bin/env python3
"""Celery tasks end to end on the roles' processes and Redis: tasks per second with 1 and 2 workers per
web host, and what the workers add to a release's deploy.

    .venv/bin/python bench/tasks.py                     # 400 tasks per measurement, 4 clients
    .venv/bin/python bench/tasks.py --tasks 1000 --log-dir /tmp/tasks-logs

Four fresh systemd containers (the flags and helpers of bench/fleet_scale.py): scale-web1 and scale-web2
are web servers with the test Django project (molecule/shared/files/apps/shop, copied to a temporary
directory) in daemon mode, on the database and Redis of scale-web3 (groups `databases` and `redis`), whose
continuous archive goes to scale-web4 (group `backups`). The
project's view POST /tasks/enqueue puts a Celery task on the app's Redis; a worker (the app's `worker`
process: `celery -A shop worker --concurrency 1`, `count` instances per web host) runs it and writes a row
to PostgreSQL; GET /tasks/done reads the rows back.

Timed runs of the real site.yml, one after the other on the same hosts:

    first deploy                     fresh hosts, no worker (not compared)
    release, no worker               a new version of the project, no process of the app besides the web one
    release, 1 worker per host       the same with processes.worker count 1 (set by a run before it)
    release, 2 workers per host      the same with count 2

and after each of the last two, the throughput: --clients threads enqueue --tasks tasks through both web
hosts (one task per request, keep-alive connections), and the clock stops when the database holds a row
for every one of them. Every run also records the CPU time of the whole machine (the containers are
processes of this machine: on 2 CPUs the web servers, the workers, PostgreSQL, Redis and the clients
share them). The containers and the network are removed at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import yaml
from fleet_scale import (
    CPUS,
    Run,
    add_run_arguments,
    clean_up,
    log,
    playbook_command,
    refresh_package_lists,
    start_fleet,
    start_run,
    time_playbook,
)
from modes import DJANGO_FIELDS, DJANGO_PROJECT

SERVER_NAME = "shop.bench"
WORKER = "celery -A shop worker --concurrency 1 --loglevel WARNING --without-mingle --without-gossip"


def sites(project: Path, workers: int) -> list[dict]:
    app = {"name": "shop", "mount": "/", "mode": "daemon", **DJANGO_FIELDS, "project": str(project),
           "database": {"name": "shop"}, "redis": {"maxmemory": "64mb"},
           "processes": {"worker": {"command": WORKER, "count": workers}} if workers else {}}
    return [{"server_name": SERVER_NAME, "apps": [app]}]


def write_inventory(directory: Path, webs: list[str], data: str, backups: str, project: Path, workers: int) -> Path:
    inventory = directory / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_connection": "community.docker.docker", "ansible_python_interpreter": "/usr/bin/python3"},
        "children": {"webservers": {"hosts": {name: {"ansible_host": name} for name in webs},
                                    "vars": {"wsgi_sites": sites(project, workers)}},
                     "databases": {"hosts": {data: {"ansible_host": data}}},
                     "redis": {"hosts": {data: {"ansible_host": data}}},
                     # An app's database needs a backups host of its own (its continuous archive).
                     "backups": {"hosts": {backups: {"ansible_host": backups}}}}}}))
    return inventory


def address(name: str) -> str:
    return subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                           name], check=True, text=True, capture_output=True).stdout.strip()


def throughput(addresses: list[str], tasks: int, clients: int) -> tuple[float, float]:
    """(tasks per second from the first request to the last row, requests per second of the enqueueing)."""
    token = f"bench-{time.time_ns()}"
    numbers = iter(range(1, tasks + 1))
    lock = threading.Lock()
    failures: list[str] = []

    def client(index: int) -> None:
        conn = http.client.HTTPConnection(addresses[index % len(addresses)], 80, timeout=30)
        while True:
            with lock:
                number = next(numbers, None)
            if number is None:
                conn.close()
                return
            body = urllib.parse.urlencode({"token": f"{token}-{number}", "count": 1})
            conn.request("POST", "/tasks/enqueue", body=body, headers={
                "Host": SERVER_NAME, "Content-Type": "application/x-www-form-urlencoded"})
            response = conn.getresponse()
            response.read()
            if response.status != 202:
                failures.append(str(response.status))

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    enqueued = time.monotonic() - start
    if failures:
        raise SystemExit(f"bench: {len(failures)} enqueue requests failed: {failures[:5]}")
    while True:
        conn = http.client.HTTPConnection(addresses[0], 80, timeout=30)
        conn.request("GET", f"/tasks/done?token={token}", headers={"Host": SERVER_NAME})
        done = len(json.loads(conn.getresponse().read())["runs"])
        conn.close()
        if done >= tasks:
            return tasks / (time.monotonic() - start), tasks / enqueued
        if time.monotonic() - start > 1800:
            raise SystemExit(f"bench: only {done} of {tasks} tasks done after 30 minutes")
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.add_argument("--tasks", type=int, default=400)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    start_run(args)
    runs: dict[str, Run] = {}
    rates: dict[int, tuple[float, float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-tasks-") as scratch:
            tmp = Path(scratch)
            project = tmp / "shop"
            shutil.copytree(DJANGO_PROJECT, project, ignore=shutil.ignore_patterns("__pycache__", "staticfiles"))
            extra = json.dumps({"wsgi_artifact_cache": str(tmp / "artifacts"),
                                "headrace_wheel_cache": str(tmp / "wheels")})
            *webs, data, backups = names = start_fleet(4, args.image)
            refresh_package_lists(names)

            def deploy(label: str, workers: int, version: int | None = None) -> None:
                if version is not None:
                    (project / "shop" / "version.py").write_text(f'"""A new release."""\n\nVERSION = "{version}"\n')
                inventory = write_inventory(tmp, webs, data, backups, project, workers)
                log(label)
                runs[label] = time_playbook(playbook_command(inventory, extra), label, args, names)
                log(f"{label}: {runs[label].seconds:.0f} s")

            deploy("first deploy", 0)
            deploy("release, no worker", 0, 2)
            addresses = [address(name) for name in webs]
            for workers in (1, 2):
                deploy(f"add worker instances ({workers} per host)", workers)
                deploy(f"release, {workers} worker{'s' if workers > 1 else ''} per host", workers, 2 + workers)
                log(f"{args.tasks} tasks with {workers} worker(s) per host")
                rates[workers] = throughput(addresses, args.tasks, args.clients)
                log(f"{rates[workers][0]:.1f} tasks/s")
    finally:
        clean_up()
    report(runs, rates, args)
    return 0


def report(runs: dict[str, Run], rates: dict[int, tuple[float, float]], args: argparse.Namespace) -> None:
    print(f"\nThe test Django project (daemon mode) on 2 web hosts, PostgreSQL and Redis on a third, {args.image}, "
          f"{CPUS} CPUs shared by all of them\n")
    base = runs["release, no worker"]
    print("| run | wall (s) | vs release, no worker | CPU (s), whole machine |")
    print("| --- | ---: | ---: | ---: |")
    for label, result in runs.items():
        print(f"| {label} | {result.seconds:.0f} | {result.seconds / base.seconds:.2f}x | {result.cpu_seconds:.0f} |")
    print(f"\n| workers per host | tasks/s end to end ({args.tasks} tasks, {args.clients} clients) | "
          "enqueue requests/s | vs 1 worker |")
    print("| ---: | ---: | ---: | ---: |")
    for workers, (tasks, requests) in rates.items():
        print(f"| {workers} | {tasks:.1f} | {requests:.1f} | {tasks / rates[1][0]:.2f}x |")


if __name__ == "__main__":
    raise SystemExit(main())
