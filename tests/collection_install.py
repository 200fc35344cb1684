"""Build this checkout into the collection wsgi_hosting.debian and install it where only it is seen.

Shared by the unit tests (tests/test_collection.py: the installed roles and filters on the controller) and
the acme scenario (molecule/acme/tests/test_collection_playbooks.py: the installed site playbook deploying
a host), so that both test the build a user gets: installed offline (its dependencies are the collections
the pinned ansible package ships) into a collections path of its own, and run from a work directory
outside the repository with an ansible.cfg of its own, without the checkout's ANSIBLE_* settings (roles
path, filter plugins, collections/).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GALAXY = yaml.safe_load((PROJECT_DIR / "galaxy.yml").read_text())
FQCN = f"{GALAXY['namespace']}.{GALAXY['name']}"


@dataclass(frozen=True)
class Installed:
    """A build of this checkout installed into a collections path of its own, and how to run Ansible there."""

    work_dir: Path
    collection_dir: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run an Ansible command from the work directory, outside the repository."""
        return subprocess.run(
            [str(BIN / args[0]), *args[1:]], cwd=self.work_dir, env=self.env,
            capture_output=True, text=True, timeout=timeout, check=False,
        )


def install_collection(work_dir: Path, config: str = "") -> Installed:
    """Build the collection, install it offline under work_dir, and configure Ansible to use only that.

    config adds lines to the [defaults] section of work_dir's ansible.cfg, or whole sections after it.
    """
    collections = work_dir / "collections"
    ansible_cfg = work_dir / "ansible.cfg"
    ansible_cfg.write_text(f"[defaults]\ncollections_path = {collections}\nretry_files_enabled = false\n{config}")
    # Inherited ANSIBLE_* settings (the checkout's config, roles or filter paths) would change what is tested.
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(ansible_cfg), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(work_dir / "tmp"),
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    installed = Installed(work_dir, collections / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"], env)

    build = installed.run("ansible-galaxy", "collection", "build", str(PROJECT_DIR),
                          "--output-path", str(work_dir / "dist"))
    assert build.returncode == 0, build.stdout + build.stderr
    tarball = work_dir / "dist" / f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
    assert tarball.is_file(), build.stdout
    install = installed.run("ansible-galaxy", "collection", "install", "--offline", "--no-deps",
                            "-p", str(collections), str(tarball))
    assert install.returncode == 0, install.stdout + install.stderr
    assert (installed.collection_dir / "MANIFEST.json").is_file(), install.stdout
    return installed
