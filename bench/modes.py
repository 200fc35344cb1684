#!/usr/bin/env python3
"""The three ways of running WSGI behind Apache, side by side on one lab host, with wrk.

    .venv/bin/python bench/modes.py                  # 5 interleaved rounds of 10 s per mode
    .venv/bin/python bench/modes.py --rounds 3 --duration 5 --keep
    .venv/bin/python bench/modes.py --app django     # the test Django project's /notes view instead
    .venv/bin/python bench/modes.py --app django-postgresql   # its /notes/visit view on a PostgreSQL host
    .venv/bin/python bench/modes.py --app django-postgresql --conn-max-age 60   # with persistent connections

With --app django each mode serves the Django project of the Molecule scenarios as a project app (its own
release, venv built offline, SQLite database in its state directory, migrations run), and wrk asks its
/notes view, which renders a template with a database query. With --app django-postgresql each mode's
app has a database of its own on a second container (bench-modes-db, the postgresql role through site.yml,
on a Docker network with the first) and wrk asks its /notes/visit view: a row written and the ten newest
read and rendered, per request; the table adds the database container's CPU time per request.

One systemd container (Debian 13 by default, image from scripts/build-image.sh) is configured by the real
playbook (playbooks/webservers.yml) with four sites, each on its own port published on 127.0.0.1 and each
serving the role's hello-world script (roles/wsgi/files/hello.wsgi):

    embedded   mod_wsgi in Apache's children (WSGIScriptAlias)
    daemon     mod_wsgi daemon mode, processes=2 threads=15
    headrace   mode proxy: ProxyPass to headrace over its unix socket (the role's defaults)
    gunicorn   the same proxy-mode VirtualHost, with gunicorn (sync workers, as many as headrace has)
               listening on that app's socket instead of headrace, for reference

gunicorn is downloaded on the controller (`pip download`) and installed into the host's headrace venv with
no package index, like headrace itself. Every mode is checked to answer "Hello World!" before it is
measured; rounds are interleaved so that a noisy machine hurts every mode alike; the table shows the median
requests/s and the median p99 latency of the rounds, with the ratios the issue asks for. Only loopback
traffic, bounded by --rounds and --duration. Extra playbook variables (--extra-vars, JSON) let you try
other Apache or pool settings against the same modes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTAINER = "bench-modes"
DATABASE_CONTAINER = "bench-modes-db"
# The database's continuous archive needs a backups host of its own.
BACKUPS_CONTAINER = "bench-modes-backups"
NETWORK = "wsgi-bench"
MODES = {  # name -> (port in the container, port published on 127.0.0.1)
    "embedded": (8001, 18561),
    "daemon": (8002, 18562),
    "headrace": (8003, 18563),
    "gunicorn": (8004, 18564),
}
MODE_FIELDS = {
    "embedded": {"mode": "embedded"},
    "daemon": {"mode": "daemon", "processes": 2, "threads": 15},
    "headrace": {"mode": "proxy"},
    "gunicorn": {"mode": "proxy"},
}
# --app django: the test Django project of the Molecule scenarios, deployed as a project app in every mode
# (its own release, venv and SQLite database per mode); its /notes view renders a template with a query.
DJANGO_PROJECT = ROOT / "molecule" / "shared" / "files" / "apps" / "shop"
DJANGO_FIELDS = {
    "project": str(DJANGO_PROJECT),
    "entry": "shop.wsgi:application",
    "env": {"DJANGO_SETTINGS_MODULE": "shop.settings"},
    "secrets": {"SECRET_KEY": "bench-only-secret-key"},
    "static": [{"url": "/static/", "path": "staticfiles"}],
    "build": ["python manage.py collectstatic --noinput"],
    "migrate": ["python manage.py migrate --noinput"],
}
APPS = {  # --app -> (app name prefix, extra fields, path wrk asks, what the answer must contain)
    "hello": ("hello", {}, "/", b"Hello World!"),
    "django": ("shop", DJANGO_FIELDS, "/notes", b"<li>migrated on "),
    "django-postgresql": ("shop", DJANGO_FIELDS, "/notes/visit", b"<li>visit "),
}
# Apps with a database of their own (shop_<mode>) on DATABASE_CONTAINER.
WITH_DATABASE = {"django-postgresql"}


def sites(app: str, conn_max_age: int) -> list[dict]:
    """One site per mode, on its own port, each with the chosen app."""
    prefix, fields, _, _ = APPS[app]
    if app in WITH_DATABASE:
        fields = {**fields, "env": {**fields["env"], "DATABASE_CONN_MAX_AGE": str(conn_max_age)}}
    return [
        {"server_name": f"{mode}.bench", "port": inside,
         "apps": [{"name": f"{prefix}_{mode}", "mount": "/", **MODE_FIELDS[mode], **fields,
                   **({"database": {"name": f"{prefix}_{mode}"}} if app in WITH_DATABASE else {})}]}
        for mode, (inside, _) in MODES.items()
    ]


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run(*command: str, check: bool = True, capture: bool = False, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=check, text=True, capture_output=capture, **kwargs)


def in_container(*command: str, capture: bool = True) -> str:
    return run("docker", "exec", CONTAINER, *command, capture=capture).stdout or ""


def start_container(image: str, fresh: bool, name: str = CONTAINER, ports: bool = True) -> None:
    exists = run("docker", "container", "inspect", name, check=False, capture=True).returncode == 0
    if exists and not fresh:
        log(f"reusing container {name}")
        return
    if exists:
        run("docker", "rm", "-f", name, capture=True)
    if run("docker", "network", "inspect", NETWORK, check=False, capture=True).returncode != 0:
        run("docker", "network", "create", NETWORK, capture=True)
    # The same flags as the Molecule platforms: systemd as PID 1 in a container.
    published = [arg for inside, outside in MODES.values() for arg in ("-p", f"127.0.0.1:{outside}:{inside}")]
    run("docker", "run", "-d", "--name", name, "--hostname", name, "--network", NETWORK,
        "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
        "--stop-signal", "SIGRTMIN+3", *(published if ports else []), image, "/sbin/init", capture=True)
    for _ in range(60):
        state = run("docker", "exec", name, "systemctl", "is-system-running", check=False, capture=True)
        if state.stdout.strip() in ("running", "degraded"):
            return
        time.sleep(0.5)
    raise SystemExit("bench: the container's systemd did not come up")


def deploy(extra_vars: dict, app: str, conn_max_age: int) -> None:
    """The real playbook, against the bench container (and the database container) only."""
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / "inventory.json"
        groups = {
            "webservers": {
                "hosts": {CONTAINER: {"ansible_connection": "community.docker.docker"}},
                "vars": {"wsgi_sites": sites(app, conn_max_age)},
            }
        }
        if app in WITH_DATABASE:
            groups["databases"] = {"hosts": {DATABASE_CONTAINER: {"ansible_connection": "community.docker.docker"}}}
            groups["backups"] = {"hosts": {BACKUPS_CONTAINER: {"ansible_connection": "community.docker.docker"}}}
        inventory.write_text(json.dumps(groups))
        # The project's tooling: the venv this script runs from comes first on PATH.
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        # No site is on port 80, where the rollout asks the health check by default: ask the first mode's.
        extra_vars = {"rollout_health_port": next(iter(MODES.values()))[0], **extra_vars}
        # With a database: site.yml (validation, the database host, then the web server).
        playbook = ROOT / "site.yml" if app in WITH_DATABASE else ROOT / "playbooks" / "webservers.yml"
        command = ["ansible-playbook", "-i", str(inventory), str(playbook), "--extra-vars", json.dumps(extra_vars)]
        result = run(*command, check=False, capture=True, cwd=ROOT, env=env)
        if result.returncode != 0:
            sys.stderr.write(result.stdout[-6000:] + result.stderr[-3000:])
            raise SystemExit("bench: the playbook failed")


def install_gunicorn(app: str) -> None:
    """gunicorn from the controller's index into the host's headrace venv, then on the gunicorn app's socket.

    It loads the app's script like headrace does (for a project app, the loader that sets its environment
    and puts its release's venv first on sys.path), as the same user in the same sandbox."""
    name = f"{APPS[app][0]}_gunicorn"
    with tempfile.TemporaryDirectory() as tmp:
        run(sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--only-binary", ":all:", "--dest", tmp, "gunicorn", capture=True)
        # Not under /tmp: that is a tmpfs in the container, which docker cp does not see.
        in_container("rm", "-rf", "/opt/gunicorn-bench/wheels")
        in_container("mkdir", "-p", "/opt/gunicorn-bench")
        run("docker", "cp", tmp, f"{CONTAINER}:/opt/gunicorn-bench/wheels", capture=True)
    in_container("sh", "-c", "/opt/headrace/venv/bin/pip install --quiet --no-index --disable-pip-version-check "
                 "/opt/gunicorn-bench/wheels/*.whl")
    config = in_container("cat", f"/etc/headrace/{APPS[app][0]}_headrace.toml")
    workers = re.search(r"^workers = (\d+)$", config, re.MULTILINE).group(1)
    # gunicorn imports modules, not .wsgi files: a module that runs the very same script.
    in_container("sh", "-c", "printf '%s\\n' 'import runpy' \"application = runpy.run_path("
                 f"'/usr/local/www/wsgi-scripts/{name}.wsgi')['application']\" "
                 "> /opt/gunicorn-bench/gunicorn_app.py")
    # The same socket unit (root:www-data 0660, held by systemd) and the same sandboxed service, with
    # gunicorn (which takes systemd's socket from LISTEN_FDS) in place of headrace.
    dropin = f"/etc/systemd/system/headrace@{name}.service.d"
    in_container("mkdir", "-p", dropin)
    in_container("sh", "-c", f"printf '%s\\n' '[Service]' 'Type=simple' 'ExecStart=' "
                 f"'ExecStart=/opt/headrace/venv/bin/gunicorn --workers {workers} --log-level warning "
                 f"--pythonpath /opt/gunicorn-bench gunicorn_app:application' > {dropin}/gunicorn.conf")
    in_container("systemctl", "daemon-reload")
    in_container("systemctl", "restart", f"headrace@{name}.service")
    pid = in_container("systemctl", "show", "-p", "MainPID", "--value", f"headrace@{name}.service").strip()
    if "gunicorn" not in in_container("cat", f"/proc/{pid}/cmdline"):
        raise SystemExit("bench: gunicorn did not replace headrace for the reference mode")


def check_modes(app: str) -> None:
    _, _, path, expected = APPS[app]
    for mode, (_, port) in MODES.items():
        deadline = time.monotonic() + 30
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": f"{mode}.bench"})
                with urllib.request.urlopen(request, timeout=5) as response:
                    body = response.read()
                if expected in body:
                    break
                raise SystemExit(f"bench: {mode} answered {body[:80]!r}")
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise SystemExit(f"bench: {mode} does not answer: {exc}") from None
                time.sleep(0.5)


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(mode: str, duration: int, threads: int, connections: int, path: str = "/") -> dict:
    port = MODES[mode][1]
    out = run("wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency",
              "-H", f"Host: {mode}.bench", f"http://127.0.0.1:{port}{path}", capture=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    value, unit = re.search(r"^\s+99%\s+([0-9.]+)(us|ms|s)\s*$", out, re.MULTILINE).groups()
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p99_ms": float(value) * UNITS[unit],
        "errors": (errors.group(1) if errors else "") + (f" non-2xx {non2xx.group(1)}" if non2xx else ""),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="wsgi-lab/debian:13")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per mode and round")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--extra-vars", default="{}", help="JSON: playbook variables to try other settings")
    parser.add_argument("--modes", default=",".join(MODES), help="comma list of modes to measure")
    parser.add_argument("--app", choices=sorted(APPS), default="hello",
                        help="hello: the role's hello-world script; django: the test project's /notes view; "
                             "django-postgresql: its /notes/visit view (a write and a read) on a PostgreSQL host")
    parser.add_argument("--conn-max-age", type=int, default=0,
                        help="django-postgresql: seconds each app thread keeps its database connection "
                             "(Django's CONN_MAX_AGE; 0, Django's default, connects per request)")
    parser.add_argument("--fresh", action="store_true", help="recreate the container")
    parser.add_argument("--no-deploy", action="store_true", help="measure the container as it is")
    parser.add_argument("--keep", action="store_true", help="leave the container running afterwards")
    args = parser.parse_args()
    modes = args.modes.split(",")
    if args.duration > 60 or args.rounds > 20:
        parser.error("keep the load bounded: --duration <= 60, --rounds <= 20")

    start_container(args.image, args.fresh)
    database = args.app in WITH_DATABASE
    if database:
        start_container(args.image, args.fresh, DATABASE_CONTAINER, ports=False)
        start_container(args.image, args.fresh, BACKUPS_CONTAINER, ports=False)
    try:
        if not args.no_deploy:
            log("deploying the four modes" + (" and their databases with site.yml" if database else
                                              " with playbooks/webservers.yml"))
            # The image has no package lists; the roles' apt tasks only refresh them when they are old.
            in_container("apt-get", "update", "-qq")
            if database:
                for name in (DATABASE_CONTAINER, BACKUPS_CONTAINER):
                    run("docker", "exec", name, "apt-get", "update", "-qq", capture=True)
            deploy(json.loads(args.extra_vars), args.app, args.conn_max_age)
            log("installing gunicorn for the reference mode")
            install_gunicorn(args.app)
        check_modes(args.app)
        path = APPS[args.app][2]
        log("warming up")
        for mode in modes:
            wrk(mode, 2, args.threads, args.connections, path)
        results: dict[str, list[dict]] = {mode: [] for mode in modes}
        for round_number in range(1, args.rounds + 1):
            for mode in modes:
                cpu_before = container_cpu_seconds(DATABASE_CONTAINER) if database else 0.0
                result = wrk(mode, args.duration, args.threads, args.connections, path)
                if database:
                    result["db_cpu_s"] = container_cpu_seconds(DATABASE_CONTAINER) - cpu_before
                results[mode].append(result)
                log(f"round {round_number} {mode:9} {result['rps']:9.0f} req/s  p99 {result['p99_ms']:7.2f} ms"
                    f"  {result['errors']}")
        report(results, args)
        if database:
            # With CONN_MAX_AGE > 0 the apps' threads hold their connections: how many are open now.
            count = run("docker", "exec", DATABASE_CONTAINER, "psql", "-U", "postgres", "-Atc",
                        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                        " AND datname LIKE 'shop_%'", capture=True).stdout.strip()
            print(f"\napps' connections open on the database after the last round: {count}")
    finally:
        if not args.keep:
            run("docker", "rm", "-f", CONTAINER, DATABASE_CONTAINER, BACKUPS_CONTAINER, check=False, capture=True)
            run("docker", "network", "rm", NETWORK, check=False, capture=True)
    return 0


def container_cpu_seconds(name: str) -> float:
    """CPU time a container's processes used so far (its cgroup's counter; cgroup v1 or v2)."""
    container_id = run("docker", "inspect", "-f", "{{.Id}}", name, capture=True).stdout.strip()
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage")
    if v1.exists():
        return int(v1.read_text()) / 1e9
    for v2 in (Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat"),
               Path(f"/sys/fs/cgroup/docker/{container_id}/cpu.stat")):
        if v2.exists():
            usage = re.search(r"^usage_usec (\d+)$", v2.read_text(), re.MULTILINE)
            return int(usage.group(1)) / 1e6
    raise SystemExit(f"bench: no CPU counter found for container {name} ({container_id})")


def report(results: dict[str, list[dict]], args: argparse.Namespace) -> None:
    median = {mode: statistics.median(r["rps"] for r in runs) for mode, runs in results.items()}
    p99 = {mode: statistics.median(r["p99_ms"] for r in runs) for mode, runs in results.items()}
    cpus = os.cpu_count()
    print(f"\n{args.app} app ({APPS[args.app][2]}), "
          + (f"CONN_MAX_AGE={args.conn_max_age}, " if args.app in WITH_DATABASE else "")
          + f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.rounds} interleaved rounds, "
          f"{args.image} on {cpus} CPUs (wrk, Docker's port forwarding and the container share them)\n")
    database = args.app in WITH_DATABASE
    print("| mode | median req/s | median p99 (ms) | vs daemon | vs proxy → gunicorn | socket errors, non-2xx |"
          + (" database CPU per request (ms) | database CPU (% of one CPU) |" if database else ""))
    print("| --- | ---: | ---: | ---: | ---: | --- |" + (" ---: | ---: |" if database else ""))
    labels = {"embedded": "embedded (mod_wsgi)", "daemon": "daemon (mod_wsgi, processes=2 threads=15)",
              "headrace": "proxy → headrace", "gunicorn": "proxy → gunicorn (sync)"}
    for mode, runs in results.items():
        vs_daemon = f"{median[mode] / median['daemon']:.2f}x" if "daemon" in median else "-"
        vs_gunicorn = f"{median[mode] / median['gunicorn']:.2f}x" if "gunicorn" in median else "-"
        # wrk's socket errors (connect, read, write, timeout) and non-2xx answers, summed over the rounds.
        errors = sum(int(n) for r in runs for n in re.findall(r"\d+", r["errors"]))
        line = f"| {labels[mode]} | {median[mode]:.0f} | {p99[mode]:.2f} | {vs_daemon} | {vs_gunicorn} | {errors} |"
        if database:
            # Medians over the rounds of the database container's CPU per request and share of one CPU.
            per_request = statistics.median(r["db_cpu_s"] * 1e3 / (r["rps"] * args.duration) for r in runs)
            share = statistics.median(r["db_cpu_s"] * 100 / args.duration for r in runs)
            line += f" {per_request:.3f} | {share:.0f} % |"
        print(line)


if __name__ == "__main__":
    raise SystemExit(main())
