#!/usr/bin/env python3
"""How the wall time of `ansible-playbook site.yml` grows with the number of web hosts.

    .venv/bin/python bench/fleet_scale.py                     # 1, 2, 4 and 8 hosts
    .venv/bin/python bench/fleet_scale.py --sizes 1 2 --log-dir /tmp/scale-logs
    <venv with mitogen>/bin/python bench/fleet_scale.py --sizes 1 --strategy mitogen_linear --connection docker

The issue asks that a fleet deploys about as fast as a single host: 8 hosts fresh in at most twice the
1-host time, and a run with nothing to change over 8 hosts in under 30 s. This script measures exactly
that, with the real site.yml, side by side in one run so that every size sees the same machine.

For each size N of --sizes it starts N fresh systemd containers scale-web1..N (odd hosts Debian 12, even
hosts Debian 13, or all --image; the flags of scripts/lab.sh) on a Docker network of its own, wsgi-scale,
writes a temporary inventory whose group `webservers` holds them, with the lab's demo sites
(inventories/lab/group_vars/webservers.yml: a daemon app at /, an embedded one at /embedded, a proxied one
at /proxied, and the Django project shop.example.com, a project app built by the wsgi_app_artifacts
action), and times three runs of site.yml from the repository root (so that ansible.cfg applies):

    fresh           the first deploy of bare hosts
    no change       the same again; every host must report changed=0, else it is reported loudly (and
                    the script exits 1 after the table)
    full converge   the same again with rollout_skip_unchanged=false: every role runs in full on hosts
                    that are already at their recorded release (by default the roles only check those)

Every run also records the CPU time the whole machine spent while it ran (from /proc/stat), and how much of
it was ansible-playbook's own (its workers included): the containers are processes of this machine, so on a
controller with few CPUs the hosts' work and Ansible's queue for the same CPUs. The CPU time divided by the
number of CPUs is the least wall time any run doing the same work could take here; the report prints it
for the largest size next to the ratio.

Every run also records the CPU time of the hosts' own containers, from their cgroups, beside
ansible-playbook's own: their sum is the deploy's CPU, which other jobs on the machine do not add to.
With --compare CHECKOUT (another checkout of the project, e.g. `git worktree add ../base d02ce80`), each
size is measured in that checkout first and then in this one, on fresh hosts each, with this checkout's
demo sites, and a table gives this checkout's CPU and wall times as a multiple of the other's.

The inventory has no `balancers` group: the measurement is about the web hosts, and the balancer plays
(which target no host then) would add a constant that is not what scales. Nor a `databases` group, for the
same reason: the demo sites are taken with every app's `database` dropped (the Django project then keeps
SQLite on each host), and a project path written from the lab inventory's directory ({{ inventory_dir }})
made absolute, as the temporary inventory lives elsewhere. Each size gets an empty headrace
wheel cache of its own (headrace_wheel_cache in the temporary directory, for all three runs), and an empty
cache of the project apps' artifacts (wsgi_artifact_cache): every fresh run then builds the wheel and
resolves and downloads the apps' requirements once, as on a new controller, whatever this machine built
before and whichever size ran first. The playbook's files (site.yml, playbooks/, roles/, filter_plugins/,
server/) are watched while a size is measured: an edit in the middle changes the release fingerprint, so the
host is deployed again; the script says so rather than blaming the roles. The containers are removed
before the next size, and the containers and the network are always removed at the end, also on Ctrl-C
or an error. A failed run prints the tail of its output and stops the script with a non-zero status.
Fresh runs install packages from the Debian mirrors inside the containers, so they need the network.

--strategy and --connection measure another way of running the same playbook (issue 22, Mitogen): the
strategy plugin for every play (ANSIBLE_STRATEGY; a mitogen_* name also sets ANSIBLE_STRATEGY_PLUGINS to
the ansible_mitogen package next to this Python, so run the script with the Python of a venv that has
mitogen installed) and the inventory's ansible_connection. Mitogen takes over connections by their short
names only (docker, ssh, local): with the default community.docker.docker a Mitogen strategy runs the
hosts' tasks through the vanilla connection plugin, so measure it with --connection docker.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
NETWORK = "wsgi-scale"
LABEL = "wsgi-scale=1"
PREFIX = "scale-web"
MAX_HOSTS = 8
CPUS = os.cpu_count() or 1  # the controller's, which the containers share
IMAGES = ("wsgi-lab/debian:12", "wsgi-lab/debian:13")  # odd hosts, even hosts
DEMO_SITES = ROOT / "inventories" / "lab" / "group_vars" / "webservers.yml"
# A full converge: the roles run in full even on hosts that already have the release (a JSON boolean, so
# that the roles see false whether or not they pass it through `| bool`).
FULL_CONVERGE = json.dumps({"rollout_skip_unchanged": False})
# The targets.
TARGET_SIZE = 8
TARGET_FRESH_RATIO = 2.0
TARGET_NO_CHANGE_S = 30.0
# The lab's connection; Mitogen takes over only the short name, docker (see --connection).
DEFAULT_CONNECTION = "community.docker.docker"

# What the playbook reads on the controller: an edit here during a measurement changes the release.
WATCHED = ("site.yml", "ansible.cfg", "playbooks", "roles", "filter_plugins", "server")
IGNORED_DIRS = {"__pycache__", "build", "dist"}  # and every hidden directory (.venv, caches)

RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)
TASK_HEADER = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(.+)\] \*+\s*$")
CHANGED_LINE = re.compile(r"^changed: \[([^\]]+)\]")


@dataclass
class Run:
    """One timed playbook run."""

    seconds: float
    output: str
    cpu_seconds: float  # CPU time the whole machine spent while it ran: controller and containers alike
    controller_cpu_seconds: float  # of which ansible-playbook and its workers (the rest: the hosts, Docker)
    hosts_cpu_seconds: float = 0.0  # CPU time the hosts' containers spent (their cgroups): whatever else runs
    module_runs: int = 0  # task results that ran a module on a host, all hosts (plugins/callback/module_runs.py)
    changed_tasks: list[tuple[str, str]] = field(default_factory=list)  # (task, host)


@dataclass
class Size:
    """The three runs of one fleet size, and what looked wrong in them."""

    hosts: int
    runs: dict[str, Run] = field(default_factory=dict)
    not_idempotent: list[str] = field(default_factory=list)  # the no-change run changed something
    edited: list[str] = field(default_factory=list)  # playbook files changed while this size ran
    notes: list[str] = field(default_factory=list)  # worth a look, not a failed assertion


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run(*command: str, check: bool = True, capture: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=check, text=True, capture_output=capture, **kwargs)


def host_names(count: int) -> list[str]:
    return [f"{PREFIX}{number}" for number in range(1, count + 1)]


def image_for(name: str, image: str | None) -> str:
    """--image for every host, else Debian 12 and 13 alternately, so that both releases are in every fleet."""
    return image or IMAGES[(int(name.removeprefix(PREFIX)) - 1) % len(IMAGES)]


# --- preflight -------------------------------------------------------------------------------------------


def preflight(images: set[str], strategy: str) -> None:
    """Stop before anything is started when a prerequisite is missing, with what to do about it."""
    if shutil.which("docker") is None:
        raise SystemExit("bench: docker is not installed; run scripts/ensure-docker.sh (make engine)")
    if run("docker", "info", check=False).returncode != 0:
        raise SystemExit("bench: the Docker engine does not answer; run scripts/ensure-docker.sh (make engine)")
    for image in sorted(images):
        if run("docker", "image", "inspect", image, check=False).returncode != 0:
            raise SystemExit(f"bench: image {image} is missing (never pulled); build it with "
                             f"scripts/build-image.sh {image.rsplit(':', 1)[-1]} (make images)")
    if not (Path(sys.executable).parent / "ansible-playbook").exists():
        raise SystemExit("bench: no ansible-playbook next to this Python; run it as .venv/bin/python (make venv)")
    if not DEMO_SITES.exists():
        raise SystemExit(f"bench: {DEMO_SITES.relative_to(ROOT)} is missing")
    if strategy.startswith("mitogen") and mitogen_strategy_plugins() is None:
        raise SystemExit(f"bench: --strategy {strategy} needs mitogen in this Python's environment "
                         f"({sys.executable}); install it into a venv of its own, not into .venv")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a benchmark that deploys the roles to fresh containers of one image (bench/deploy.py,
    bench/tasks.py, bench/archive.py): the image, where to keep each run's output, how long a run may take,
    Ansible's strategy."""
    parser.add_argument("--image", default="wsgi-lab/debian:12")
    parser.add_argument("--log-dir", type=Path, help="keep each run's output there")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a run may take")
    parser.add_argument("--strategy", default="linear")


def start_run(args: argparse.Namespace) -> None:
    """Before such a benchmark starts its containers: the checks of preflight, the log directory, and SIGTERM
    as an exit (so that its clean_up runs)."""
    preflight({args.image}, args.strategy)
    if args.log_dir:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def mitogen_strategy_plugins() -> Path | None:
    """The strategy plugins of the ansible_mitogen package importable by this Python, if any."""
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "plugins" / "strategy"


def ensure_ours(kind: str, name: str) -> None:
    """A container or network of that name that this script did not label is someone else's: leave it alone."""
    labels = run("docker", kind, "inspect", "--format", "{{json .Labels}}", name, check=False)
    if labels.returncode == 0 and (json.loads(labels.stdout) or {}).get("wsgi-scale") != "1":
        raise SystemExit(f"bench: a {kind} named {name} exists and is not labelled {LABEL}; not touching it")


def ensure_nothing_foreign(sizes: list[int]) -> None:
    ensure_ours("network", NETWORK)
    for name in host_names(max(sizes)):
        ensure_ours("container", name)


# --- containers ------------------------------------------------------------------------------------------


def ensure_network() -> None:
    """A user-defined network, so that the hosts resolve each other's names (as in the lab)."""
    if run("docker", "network", "inspect", NETWORK, check=False).returncode != 0:
        run("docker", "network", "create", "--label", LABEL, NETWORK)


def start_container(name: str, image: str) -> None:
    """The flags of scripts/lab.sh start_container: systemd as PID 1; no published ports."""
    run("docker", "run", "-d", "--pull", "never", "--name", name, "--hostname", name, "--label", LABEL,
        "--network", NETWORK,
        "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
        "--stop-signal", "SIGRTMIN+3", image)


def wait_for_systemd(name: str, timeout: float = 90) -> None:
    """Like lab.sh: the playbook needs systemd up (running, or degraded by a unit containers cannot run)."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = run("docker", "exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            return
        time.sleep(1)
    raise SystemExit(f"bench: systemd in {name} did not come up (state: {state or 'unknown'})")


def start_fleet(count: int, image: str | None) -> list[str]:
    names = host_names(count)
    remove_containers()
    ensure_network()
    for name in names:
        start_container(name, image_for(name, image))
    for name in names:
        wait_for_systemd(name)
    log(f"started {', '.join(f'{name} ({image_for(name, image)})' for name in names)}")
    return names


def refresh_package_lists(names: list[str]) -> None:
    """apt-get update on each host: the image has no package lists, and the roles' apt tasks only refresh
    them when they are old (the benchmarks that deploy one project to a few hosts, bench/deploy.py and
    bench/tasks.py, start their hosts with start_fleet and this)."""
    for name in names:
        run("docker", "exec", name, "apt-get", "update", "-qq")


def remove_containers() -> None:
    """Every container this script labelled, whatever size it was started for."""
    names = run("docker", "ps", "-a", "--filter", f"label={LABEL}", "--format", "{{.Names}}",
                check=False).stdout.split()
    if names:
        run("docker", "rm", "-f", *names, check=False)


def clean_up() -> None:
    remove_containers()
    if run("docker", "network", "inspect", NETWORK, check=False).returncode == 0:
        run("docker", "network", "rm", NETWORK, check=False)
    log(f"removed the {PREFIX}* containers and the {NETWORK} network")


# --- the playbook ----------------------------------------------------------------------------------------


def demo_sites() -> dict[str, Any]:
    """The lab's demo sites for an inventory elsewhere and without a database host (see the docstring)."""
    sites = yaml.safe_load(DEMO_SITES.read_text())
    for site in sites.get("wsgi_sites") or []:
        for app in site.get("apps") or []:
            app.pop("database", None)
            if isinstance(app.get("project"), str):
                app["project"] = app["project"].replace("{{ inventory_dir }}", str(DEMO_SITES.parent.parent))
    return sites


def write_inventory(directory: Path, names: list[str], connection: str) -> Path:
    """The fleet as group webservers, with the lab's demo sites as its group_vars."""
    inventory = directory / f"{len(names)}-hosts"
    (inventory / "group_vars").mkdir(parents=True)
    hosts = {name: {"ansible_host": name} for name in names}
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_connection": connection,
                 "ansible_python_interpreter": "/usr/bin/python3"},
        "children": {"webservers": {"hosts": hosts}},
    }}, sort_keys=False))
    (inventory / "group_vars" / "webservers.yml").write_text(yaml.safe_dump(demo_sites(), sort_keys=False))
    return inventory / "hosts.yml"


def playbook_command(inventory: Path, *extra_vars: str) -> list[str]:
    command = ["ansible-playbook", "-i", str(inventory), "site.yml"]
    for value in extra_vars:
        command += ["-e", value]
    return command


def wheel_cache_vars(directory: Path) -> str:
    """Empty controller caches for one size (headrace's wheel, the project apps' artifacts), so that its fresh
    run builds like a new controller."""
    return json.dumps({"headrace_wheel_cache": str(directory / "headrace-wheels"),
                       "wsgi_artifact_cache": str(directory / "app-artifacts")})


def tree_state(root: Path = ROOT) -> dict[str, tuple[int, int]]:
    """(mtime, size) of every file the playbook reads on the controller, to notice an edit mid-measurement."""
    state: dict[str, tuple[int, int]] = {}
    for top in WATCHED:
        path = root / top
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            parts = file.relative_to(root).parts
            if IGNORED_DIRS.isdisjoint(parts) and not any(part.startswith(".") for part in parts):
                stat = file.stat()
                state[str(file.relative_to(root))] = (stat.st_mtime_ns, stat.st_size)
    return state


def edited_files(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    return sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))


# The callback that counts module runs, from this checkout by its path: a --compare checkout may predate it.
MODULE_RUNS_CALLBACK = ROOT / "plugins" / "callback"


def playbook_env(strategy: str, root: Path = ROOT, module_runs_file: Path | None = None) -> dict[str, str]:
    """The project's tooling first on PATH and the measured checkout's ansible.cfg, whatever the caller's
    environment says, and --strategy (with Mitogen's strategy plugins for a mitogen_* one). With
    module_runs_file, the module_runs callback counts the module runs per host into it, beside the callbacks
    the caller's ANSIBLE_CALLBACKS_ENABLED names (e.g. ansible.posix.profile_tasks, to see where a run goes)."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(root / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STRATEGY=strategy,
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("ANSIBLE_STRATEGY_PLUGINS", None)
    if strategy.startswith("mitogen") and (plugins := mitogen_strategy_plugins()) is not None:
        env["ANSIBLE_STRATEGY_PLUGINS"] = str(plugins)
    if module_runs_file is not None:
        callbacks = ",".join(filter(None, ["module_runs", os.environ.get("ANSIBLE_CALLBACKS_ENABLED")]))
        env.update(ANSIBLE_CALLBACK_PLUGINS=str(MODULE_RUNS_CALLBACK), ANSIBLE_CALLBACKS_ENABLED=callbacks,
                   WSGI_MODULE_RUNS_FILE=str(module_runs_file))
    return env


def busy_cpu_seconds() -> float:
    """CPU time this machine has spent busy since boot, all CPUs together (user, nice, system, irq, steal).

    The containers are processes of this machine, so this counts the controller's Ansible and every host's
    work alike: divided by the number of CPUs it is the least wall time a run could have taken here.
    """
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def hosts_cpu_seconds(names: list[str]) -> float:
    """CPU time the containers of names have spent since they started, from their cgroups (v1 cpuacct or
    v2 cpu.stat): the hosts' own work, which other jobs on this machine do not add to, unlike /proc/stat."""
    ids = run("docker", "inspect", "-f", "{{.Id}}", *names).stdout.split()
    total = 0.0
    for container in ids:
        v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{container}/cpuacct.usage")
        v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{container}.scope/cpu.stat")
        if v1.is_file():
            total += int(v1.read_text()) / 1e9
        elif v2.is_file():
            usage = dict(line.split() for line in v2.read_text().splitlines())
            total += int(usage["usage_usec"]) / 1e6
        else:
            raise SystemExit(f"bench: no cgroup CPU account found for container {container}")
    return total


def children_cpu_seconds() -> float:
    """CPU time of this script's finished children: ansible-playbook and the workers it forks (and waits for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_playbook(command: list[str], label: str, args: argparse.Namespace, names: list[str],
                  root: Path = ROOT) -> Run:
    """One timed run from the checkout root; a failure shows the tail of the output and stops the benchmark."""
    start, cpu_start, controller_start = time.monotonic(), busy_cpu_seconds(), children_cpu_seconds()
    hosts_start = hosts_cpu_seconds(names)
    counts = Path(tempfile.mkstemp(prefix="fleet-scale-module-runs-", suffix=".json")[1])
    try:
        result = subprocess.run(command, cwd=root, env=playbook_env(args.strategy, root, counts), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=args.timeout,
                                check=False)
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        sys.stderr.write(output[-6000:])
        raise SystemExit(f"bench: {label} took longer than {args.timeout:.0f} s: {shlex.join(command)}") from None
    seconds, cpu_seconds = time.monotonic() - start, busy_cpu_seconds() - cpu_start
    controller_cpu_seconds = children_cpu_seconds() - controller_start
    host_seconds = hosts_cpu_seconds(names) - hosts_start
    module_runs = sum(host["ran"] for host in json.loads(counts.read_text() or '{"hosts": {}}')["hosts"].values())
    counts.unlink()
    if args.log_dir is not None:
        (args.log_dir / f"{label.replace(' ', '-').replace('/', '_')}.log").write_text(result.stdout)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-6000:])
        raise SystemExit(f"bench: {label} failed (exit {result.returncode}): {shlex.join(command)}")
    return Run(seconds, result.stdout, cpu_seconds, controller_cpu_seconds, host_seconds, module_runs,
               changed_tasks(result.stdout))


def changed_tasks(output: str) -> list[tuple[str, str]]:
    """(task, host) for every `changed:` line, so that an idempotence problem is named, not just counted."""
    task = "?"
    found: list[tuple[str, str]] = []
    for line in output.splitlines():
        header = TASK_HEADER.match(line)
        if header:
            task = header.group(1)
        elif changed := CHANGED_LINE.match(line):
            found.append((task, changed.group(1)))
    return found


def recap(output: str) -> dict[str, dict[str, int]]:
    return {host: {"ok": int(ok), "changed": int(changed), "unreachable": int(unreachable),
                   "failed": int(failed)}
            for host, ok, changed, unreachable, failed in RECAP.findall(output)}


def unchanged_problems(names: list[str], result: Run, label: str) -> list[str]:
    """Why a run that should change nothing did not: hosts missing from the recap or with changed > 0."""
    counts = recap(result.output)
    problems = [f"{label}: {name} is missing from the PLAY RECAP" for name in names if name not in counts]
    problems += [f"{label}: {host} changed={c['changed']}" for host, c in counts.items() if c["changed"]]
    problems += [f"{label}: changed task {task!r} on {host}" for task, host in result.changed_tasks]
    return problems


# --- one size, all sizes ---------------------------------------------------------------------------------


def measure_size(count: int, args: argparse.Namespace, tmp: Path, root: Path = ROOT) -> Size:
    names = start_fleet(count, args.image)
    where = tmp / ("baseline" if root != ROOT else "this")
    where.mkdir(exist_ok=True)
    inventory = write_inventory(where, names, args.connection)
    cache = wheel_cache_vars(inventory.parent)
    size = Size(count)
    phases = {"fresh": (cache,), "no change": (cache,), "full converge": (cache, FULL_CONVERGE)}
    for phase, extra_vars in phases.items():
        label = f"{count} hosts {phase}" + (f" ({root})" if root != ROOT else "")
        log(f"{label}: ansible-playbook site.yml ...")
        before = tree_state(root)
        result = time_playbook(playbook_command(inventory, *extra_vars), label, args, names, root)
        size.runs[phase] = result
        log(f"{label}: {result.seconds:.1f} s ({result.cpu_seconds:.0f} CPU s, "
            f"{result.controller_cpu_seconds:.0f} of them ansible-playbook's; the hosts' own "
            f"{result.hosts_cpu_seconds:.1f}), {result.module_runs} module runs, "
            f"{len(result.changed_tasks)} changed task results")
        if edited := edited_files(before, tree_state(root)):
            size.edited += edited
            log(f"!!! the playbook's files changed during {label}: {', '.join(edited[:10])}")
        if phase == "no change":
            size.not_idempotent = unchanged_problems(names, result, label)
            if size.not_idempotent and size.edited:
                size.not_idempotent.insert(0, f"{label}: the playbook's files were edited during this size's "
                                              "runs, so the release changed: this is not (only) the roles' fault")
            for problem in size.not_idempotent:
                log(f"!!! NOT IDEMPOTENT: {problem}")
        elif phase == "full converge" and result.changed_tasks:
            # Not one of the assertions, but an up-to-date host that changes under a full converge is news.
            tasks = sorted({task for task, _ in result.changed_tasks})
            size.notes.append(f"{label}: changed on up-to-date hosts: {', '.join(tasks)}")
            log(f"note: {size.notes[-1]}")
    remove_containers()
    return size


# --- report ----------------------------------------------------------------------------------------------


def ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}×" if base else "-"


def print_table(sizes: list[Size]) -> None:
    one = next((size for size in sizes if size.hosts == 1), None)
    print("| hosts | fresh s | ×1 host | CPU s (Ansible's) | CPUs busy | no change s | ×1 host | full converge s "
          "| ×1 host |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in sizes:
        cells = [str(size.hosts)]
        for phase in ("fresh", "no change", "full converge"):
            seconds = size.runs[phase].seconds
            base = one.runs[phase].seconds if one else None
            flag = " ⚠" if phase == "no change" and size.not_idempotent else ""
            cells += [f"{seconds:.1f}{flag}", ratio(seconds, base)]
            if phase == "fresh":
                cpu = size.runs[phase].cpu_seconds
                controller = size.runs[phase].controller_cpu_seconds
                cells += [f"{cpu:.0f} ({controller:.0f})", f"{cpu / seconds:.2f} of {CPUS}"]
        print(f"| {' | '.join(cells)} |")


def print_targets(sizes: list[Size]) -> None:
    by_hosts = {size.hosts: size for size in sizes}
    big, one = by_hosts.get(TARGET_SIZE), by_hosts.get(1)
    print("\nTargets of the issue:")
    if big and one:
        fresh = big.runs["fresh"].seconds / one.runs["fresh"].seconds
        print(f"- {TARGET_SIZE} hosts fresh ≤ {TARGET_FRESH_RATIO:g}× the 1-host time: {fresh:.2f}× — "
              f"{'met' if fresh <= TARGET_FRESH_RATIO else 'NOT met'}")
        floor = big.runs["fresh"].cpu_seconds / CPUS
        print(f"  The {TARGET_SIZE}-host fresh run kept the CPUs busy for {big.runs['fresh'].cpu_seconds:.0f} CPU s: "
              f"on {CPUS} CPUs no run doing that work could take less than {floor:.1f} s "
              f"({floor / one.runs['fresh'].seconds:.2f}× the 1-host time).")
    else:
        print(f"- {TARGET_SIZE} hosts fresh ≤ {TARGET_FRESH_RATIO:g}× the 1-host time: not measured "
              f"(needs 1 and {TARGET_SIZE} in --sizes)")
    if big:
        no_change = big.runs["no change"].seconds
        print(f"- no change over {TARGET_SIZE} hosts < {TARGET_NO_CHANGE_S:g} s: {no_change:.1f} s — "
              f"{'met' if no_change < TARGET_NO_CHANGE_S else 'NOT met'}")
    else:
        print(f"- no change over {TARGET_SIZE} hosts < {TARGET_NO_CHANGE_S:g} s: not measured "
              f"(needs {TARGET_SIZE} in --sizes)")


def print_comparison(baselines: list[Size], sizes: list[Size], baseline_root: Path) -> None:
    """This checkout against --compare's, phase by phase: the deploy's CPU (ansible-playbook's own and the
    hosts' containers', both unaffected by other jobs on the machine) and the wall time (which is)."""
    print(f"\nThis checkout ({ROOT}) against {baseline_root}, measured one after the other in this run:\n")
    print("| hosts | phase | CPU s before (Ansible's + hosts') | CPU s now | ×before | wall s before | wall s now "
          "| ×before | module runs before | now |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for before, now in zip(baselines, sizes):
        for phase in ("fresh", "no change", "full converge"):
            old, new = before.runs[phase], now.runs[phase]
            old_cpu = old.controller_cpu_seconds + old.hosts_cpu_seconds
            new_cpu = new.controller_cpu_seconds + new.hosts_cpu_seconds
            print(f"| {now.hosts} | {phase} | {old_cpu:.1f} ({old.controller_cpu_seconds:.1f} + "
                  f"{old.hosts_cpu_seconds:.1f}) | {new_cpu:.1f} ({new.controller_cpu_seconds:.1f} + "
                  f"{new.hosts_cpu_seconds:.1f}) | {ratio(new_cpu, old_cpu)} | {old.seconds:.1f} | "
                  f"{new.seconds:.1f} | {ratio(new.seconds, old.seconds)} | {old.module_runs} | {new.module_runs} |")


def report(sizes: list[Size], args: argparse.Namespace, load: tuple[float, float, float]) -> None:
    images = args.image or f"{IMAGES[0]} (odd hosts) and {IMAGES[1]} (even hosts)"
    print(f"\n`{shlex.join([sys.executable, *sys.argv])}`, from {ROOT}\n")
    cache = wheel_cache_vars(Path("<tmp>"))
    print(f"Each size: `{shlex.join(playbook_command(Path('<tmp>/hosts.yml'), cache))}` on fresh hosts, then "
          f"again (no change), then again with `-e '{FULL_CONVERGE}'` added (full converge).")
    print(f"Hosts: {images}, group webservers only, ansible_connection {args.connection}, strategy "
          f"{args.strategy}. Controller: {CPUS} CPUs, load average at start {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f} (the containers share the same CPUs).\n")
    print_table(sizes)
    print_targets(sizes)
    problems = [problem for size in sizes for problem in size.not_idempotent + size.notes]
    problems += [f"{size.hosts} hosts: edited while measured: {', '.join(sorted(set(size.edited)))}"
                 for size in sizes if size.edited]
    if problems:
        print("\nLooked wrong:")
        for problem in problems:
            print(f"- {problem}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8],
                        help=f"numbers of web hosts to measure, 1 to {MAX_HOSTS} (default: 1 2 4 8)")
    parser.add_argument("--image", help="one image for every host (default: Debian 12 and 13 alternately)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one playbook run may take")
    parser.add_argument("--log-dir", type=Path, help="keep the output of every playbook run here")
    parser.add_argument("--strategy", default="linear",
                        help="strategy plugin of every play, e.g. mitogen_linear (default: linear)")
    parser.add_argument("--connection", default=DEFAULT_CONNECTION,
                        help=f"the hosts' ansible_connection, e.g. docker (default: {DEFAULT_CONNECTION})")
    parser.add_argument("--compare", type=Path, metavar="CHECKOUT",
                        help="another checkout of the project (e.g. an earlier commit in another directory): each "
                             "size is measured there first, then here, on fresh hosts each, with the same sites, "
                             "and the CPU and wall times are compared")
    args = parser.parse_args()
    if args.compare is not None:
        args.compare = args.compare.resolve()
        if not (args.compare / "site.yml").is_file():
            parser.error(f"--compare {args.compare}: no site.yml there")
    if any(not 1 <= size <= MAX_HOSTS for size in args.sizes):
        parser.error(f"--sizes must be between 1 and {MAX_HOSTS}")
    args.sizes = sorted(set(args.sizes))
    if args.log_dir is not None:
        args.log_dir = args.log_dir.resolve()
        args.log_dir.mkdir(parents=True, exist_ok=True)
    return args


def interrupt_on_sigterm() -> None:
    """A `kill` cleans up like Ctrl-C does: the finally clause removes the containers and the network."""
    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)


def main() -> int:
    args = parse_args()
    load = os.getloadavg()
    preflight({args.image} if args.image else set(IMAGES), args.strategy)
    ensure_nothing_foreign(args.sizes)
    interrupt_on_sigterm()
    sizes: list[Size] = []
    baselines: list[Size] = []
    try:
        with tempfile.TemporaryDirectory(prefix="fleet-scale-") as tmp:
            for count in args.sizes:
                if args.compare is not None:
                    baselines.append(measure_size(count, args, Path(tmp), args.compare))
                sizes.append(measure_size(count, args, Path(tmp)))
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        clean_up()
    report(sizes, args, load)
    if baselines:
        print_comparison(baselines, sizes, args.compare)
    return 1 if any(size.not_idempotent for size in sizes + baselines) else 0


if __name__ == "__main__":
    raise SystemExit(main())
