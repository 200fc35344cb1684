#!/usr/bin/env python3
"""What one task costs, on the controller and on the host: the unit that a converge's CPU is made of.

    .venv/bin/python bench/task_cost.py [--tasks 60] [--image wsgi-lab/debian:12]

A converge of an up-to-date host changes nothing, yet costs tens of CPU seconds (bench/fleet_scale.py):
most of it is not work but the fixed cost of each task. This script measures that cost on one fresh
container (name task-cost-web, removed at the end), with playbooks of N identical tasks of one kind each,
over the same connection and settings as the roles (the checkout's ansible.cfg: pipelining, the
community.docker.docker connection):

    module      ansible.builtin.command: true   a module run on the host that does nothing
    file        ansible.builtin.file: state=directory on an existing directory (a no-op module run)
    skipped     a command task whose `when` is false: decided on the controller, nothing on the host
    set_fact    a controller-only action

For each it prints ansible-playbook's own CPU time (with its workers) and the container's (its cgroup),
per task, after subtracting a run of the same playbook with no task (the start-up of ansible-playbook, its
inventory and facts). CPU time, not wall time: other jobs on the machine do not add to it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTAINER = "task-cost-web"
KINDS = {
    "module": {"name": "A module run", "ansible.builtin.command": "true", "changed_when": False},
    "file": {"name": "A no-op file task", "ansible.builtin.file": {"path": "/tmp", "state": "directory"}},
    "skipped": {"name": "A skipped task", "ansible.builtin.command": "true", "when": False},
    "set_fact": {"name": "A controller-only task", "ansible.builtin.set_fact": {"task_cost_x": 1}},
}


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


def start(image: str) -> None:
    subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True, check=False)
    docker("run", "-d", "--name", CONTAINER, "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
           "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined", "--cgroupns=host",
           "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
           image)
    for _ in range(60):
        state = subprocess.run(["docker", "exec", CONTAINER, "systemctl", "is-system-running"],
                               capture_output=True, text=True, check=False).stdout.strip()
        if state in ("running", "degraded"):
            return
        time.sleep(1)
    raise SystemExit(f"task_cost: {CONTAINER} did not boot")


def container_cpu_seconds() -> float:
    """The container's CPU time from its cgroup (v1 cpuacct or v2 cpu.stat)."""
    container = docker("inspect", "-f", "{{.Id}}", CONTAINER)
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{container}/cpuacct.usage")
    if v1.is_file():
        return int(v1.read_text()) / 1e9
    v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{container}.scope/cpu.stat")
    return int(dict(line.split() for line in v2.read_text().splitlines())["usage_usec"]) / 1e6


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_playbook(directory: Path, tasks: list[dict]) -> tuple[float, float]:
    """ansible-playbook's CPU and the container's CPU for one run of a play with these tasks."""
    playbook = directory / "play.yml"
    playbook.write_text(json.dumps([{"name": "Task cost", "hosts": CONTAINER, "gather_facts": False,
                                     "tasks": tasks}]))
    inventory = directory / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {CONTAINER: {
        "ansible_connection": "community.docker.docker", "ansible_python_interpreter": "/usr/bin/python3"}}}}))
    controller, host = children_cpu_seconds(), container_cpu_seconds()
    subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook)],
                   cwd=ROOT, check=True, capture_output=True, text=True,
                   env={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "PATH": "/usr/bin:/bin",
                        "HOME": str(Path.home())})
    return children_cpu_seconds() - controller, container_cpu_seconds() - host


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=60, help="tasks per playbook (default 60)")
    parser.add_argument("--image", default="wsgi-lab/debian:12")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each playbook; the least is kept")
    args = parser.parse_args()
    start(args.image)
    try:
        with tempfile.TemporaryDirectory(prefix="task-cost-") as tmp:
            directory = Path(tmp)
            run_playbook(directory, [KINDS["module"]])  # a first module run: caches, bytecode on the host
            empty = [run_playbook(directory, []) for _ in range(args.rounds)]
            base = (min(c for c, _ in empty), min(h for _, h in empty))
            print(f"`{' '.join([sys.executable, *sys.argv])}`: {args.tasks} tasks of each kind on {args.image}, "
                  f"least of {args.rounds} runs, minus a play with no task ({base[0]:.2f} s controller, "
                  f"{base[1]:.2f} s host)\n")
            print("| task | controller CPU s per task | host CPU s per task |")
            print("| --- | ---: | ---: |")
            for kind, task in KINDS.items():
                runs = [run_playbook(directory, [task] * args.tasks) for _ in range(args.rounds)]
                controller = (min(c for c, _ in runs) - base[0]) / args.tasks
                host = (min(h for _, h in runs) - base[1]) / args.tasks
                print(f"| {kind} | {controller:.3f} | {host:.3f} |")
    finally:
        subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True, check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
