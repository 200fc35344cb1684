#!/usr/bin/env python3
"""Whether the project's actions and delegate_to work under a strategy and connection (issue 22, Mitogen).

    <venv with mitogen>/bin/python bench/strategy_check.py               # every case
    <venv with mitogen>/bin/python bench/strategy_check.py --no-ssh      # without the SSH cases
    <venv with mitogen>/bin/python bench/strategy_check.py --connections ssh

fleet_scale.py measures how fast site.yml runs under --strategy and --connection; this script checks, in a
minute and without Molecule, the parts of the project a strategy like Mitogen's could break: the two
action plugins that run on the controller (wsgi_tls_files, wsgi_app_artifacts; site.yml runs the first
only for sites with `tls: {certificate: files}`), delegate_to localhost (the headrace build) and
delegate_to another inventory host (the balancer role's member tasks). And it shows which process ran a
module on a host and on localhost: a command line naming mitogen means Mitogen carried the task; a plain
python3 means the vanilla connection plugin did, whatever the strategy.

It starts two containers, scale-web1 (Debian 12) and scale-web2 (Debian 13), with fleet_scale.py's flags,
network and label, and runs bench/strategy_check.yml on them once per case: the strategy (linear,
mitogen_linear, mitogen_free) with the connection community.docker.docker, docker, or ssh (for which it
installs openssh-server in the containers, from the Debian mirrors, and a throw-away key). Then it prints a
line per case: the exit status, the processes seen, and for a failed case the end of its output. The
containers and the network are removed at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fleet_scale  # the containers, the preflight and the environment of a run

ROOT = fleet_scale.ROOT
PLAYBOOK = Path(__file__).resolve().parent / "strategy_check.yml"
CASES: tuple[tuple[str, str], ...] = (
    ("linear", "community.docker.docker"),
    ("mitogen_linear", "community.docker.docker"),
    ("linear", "docker"),
    ("mitogen_linear", "docker"),
    ("mitogen_free", "docker"),
    ("linear", "ssh"),
    ("mitogen_linear", "ssh"),
)
REPORT = re.compile(r'"msg": "CHECK (.*)"|msg: CHECK (.*)')


def setup_ssh(names: list[str], directory: Path) -> Path:
    """openssh-server in every container, root's authorized key a new one of this run; its private key."""
    key = directory / "id_ed25519"
    fleet_scale.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    public = (directory / "id_ed25519.pub").read_text()
    for name in names:
        fleet_scale.run("docker", "exec", name, "sh", "-c",
                        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                        "openssh-server >/dev/null && install -d -m 700 /root/.ssh && "
                        f"printf '%s' {shlex.quote(public)} > /root/.ssh/authorized_keys && "
                        "systemctl restart ssh")
    return key


def address(name: str) -> str:
    return fleet_scale.run("docker", "inspect", "--format",
                           f"{{{{(index .NetworkSettings.Networks \"{fleet_scale.NETWORK}\").IPAddress}}}}",
                           name).stdout.strip()


def write_inventory(directory: Path, names: list[str], connection: str, key: Path | None) -> Path:
    hosts: dict[str, dict[str, str | bool]] = {}
    for name in names:
        if connection == "ssh":
            assert key is not None
            # Not StrictHostKeyChecking=no in ansible_ssh_common_args: Mitogen puts its own
            # StrictHostKeyChecking (from host_key_checking) first, and ssh takes the first one.
            hosts[name] = {"ansible_host": address(name), "ansible_user": "root",
                           "ansible_ssh_private_key_file": str(key), "ansible_ssh_host_key_checking": False,
                           "ansible_ssh_common_args": "-o UserKnownHostsFile=/dev/null"}
        else:
            hosts[name] = {"ansible_host": name}
    inventory = directory / f"{connection}.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_connection": connection, "ansible_python_interpreter": "/usr/bin/python3"},
        "children": {"webservers": {"hosts": hosts}},
    }}, sort_keys=False))
    return inventory


def check(strategy: str, connection: str, inventory: Path, directory: Path, log_dir: Path | None) -> bool:
    """One case; prints its line (and the end of the output when it failed)."""
    case_dir = directory / f"{strategy}-{connection}"
    case_dir.mkdir()
    env = fleet_scale.playbook_env(strategy)
    env.update(STRATEGY_CHECK_DIR=str(case_dir),
               ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([str(ROOT / "collections"),
                                                         env.get("ANSIBLE_COLLECTIONS_PATH", "")]))
    command = ["ansible-playbook", "-i", str(inventory), str(PLAYBOOK)]
    result = subprocess.run(command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, check=False, timeout=900)
    if log_dir is not None:
        (log_dir / f"{strategy}-{connection}.log").write_text(result.stdout)
    reports = [first or second for first, second in REPORT.findall(result.stdout)]
    status = "ok" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
    print(f"\n## strategy {strategy}, ansible_connection {connection}: {status}")
    print(f"`ANSIBLE_STRATEGY={strategy} {shlex.join(command)}`")
    for report in reports:
        print(f"- {report}")
    if result.returncode != 0:
        print("```\n" + "\n".join(result.stdout.splitlines()[-40:]) + "\n```")
    return result.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-ssh", action="store_true", help="leave out the cases with the ssh connection")
    parser.add_argument("--connections", nargs="+", choices=sorted({c for _, c in CASES}),
                        help="only the cases with these connections")
    parser.add_argument("--log-dir", type=Path, help="keep the output of every case here")
    args = parser.parse_args()
    cases = [case for case in CASES if not (args.no_ssh and case[1] == "ssh")
             and (not args.connections or case[1] in args.connections)]
    fleet_scale.preflight(set(fleet_scale.IMAGES), "mitogen_linear")
    fleet_scale.ensure_nothing_foreign([2])
    fleet_scale.interrupt_on_sigterm()
    if args.log_dir is not None:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    try:
        with tempfile.TemporaryDirectory(prefix="strategy-check-") as tmp:
            directory = Path(tmp)
            names = fleet_scale.start_fleet(2, None)
            key = setup_ssh(names, directory) if any(c == "ssh" for _, c in cases) else None
            inventories = {connection: write_inventory(directory, names, connection, key)
                           for connection in {c for _, c in cases}}
            for strategy, connection in cases:
                failed += not check(strategy, connection, inventories[connection], directory, args.log_dir)
    except KeyboardInterrupt:
        return 130
    finally:
        fleet_scale.clean_up()
    print(f"\n{len(cases) - failed} of {len(cases)} cases ok")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
