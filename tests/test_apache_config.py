"""The apache role's config entry point, called from another role the way mod_wsgi, wsgi and balancer call it.

A throwaway role `caller` includes `apache tasks_from: config` with templates of its own; the play runs on
the controller (connection local) with the apache role's configuration directory moved into a temporary
directory and `apachectl` replaced by a script, so the whole mechanism runs for real: the templates are
found in the caller's templates/ and see the caller's defaults, vars and facts, files and links land
where the kind says, a second run changes nothing, and a configuration that "Apache" rejects is rolled
back with Apache's message. The caller ends the play before handlers: there is no Apache to reload.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the entry point writes files owned by root")

CALLER_TASKS = """\
---
- name: Set a fact the templates use
  ansible.builtin.set_fact:
    caller_fact: from-set-fact

- name: Render the conf template in this role's own context, to compare
  ansible.builtin.copy:
    content: "{{ lookup('ansible.builtin.template', 'caller.conf.j2') }}"
    dest: "{{ caller_expected }}"
    mode: "0644"

- name: Write through the apache role
  ansible.builtin.include_role:
    name: apache
    tasks_from: config
  vars:
    apache_config_files: "{{ caller_files }}"

- name: End before the handlers (no Apache to reload here)
  ansible.builtin.meta: end_play
"""
CALLER_TEMPLATE = """\
# {{ ansible_managed }}
Default {{ caller_default }}
Var {{ caller_var }}
Fact {{ caller_fact }}
"""
FILES = [{"template": "caller.conf.j2", "kind": "conf"}, {"template": "site.conf.j2", "kind": "site"}]
# What the stand-in for apachectl prints when it rejects the configuration.
REJECTION = "AH00526: Syntax error on line 2 of caller.conf: Invalid command 'Default'"


@dataclass
class Lab:
    """The temporary tree: the caller role, Apache's directory and the two apachectl stand-ins."""

    root: Path

    @property
    def conf_dir(self) -> Path:
        return self.root / "apache2"

    def run(self, *args: str, **extra: Any) -> subprocess.CompletedProcess[str]:
        variables = {
            "ansible_python_interpreter": sys.executable,
            "apache_conf_dir": str(self.conf_dir),
            "apache_ctl": str(self.root / "apachectl-accepts"),
            "caller_expected": str(self.root / "expected.conf"),
            "caller_files": FILES,
            **extra,
        }
        env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
        env.update(
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_ROLES_PATH=f"{self.root / 'roles'}:{PROJECT_DIR / 'roles'}",
            ANSIBLE_FILTER_PLUGINS=str(PROJECT_DIR / "filter_plugins"),
            # The roles call the filters by their collection names; collections/ holds this checkout as it.
            ANSIBLE_COLLECTIONS_PATH=str(PROJECT_DIR / "collections"),
            ANSIBLE_LOCAL_TEMP=str(self.root / "ansible-local"),
        )
        return subprocess.run(
            [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "play.yml", "--diff", "--extra-vars", json.dumps(variables),
             *args],
            cwd=self.root, env=env, capture_output=True, text=True, timeout=300, check=False,
        )

    def files(self) -> dict[str, str]:
        """Every file and link below Apache's directory: its content, or where the link points."""
        found = {}
        for path in sorted(self.conf_dir.rglob("*")):
            name = str(path.relative_to(self.conf_dir))
            if path.is_symlink():
                found[name] = "-> " + os.readlink(path)
            elif path.is_file():
                found[name] = path.read_text()
        return found


def make_lab(tmp_path: Path) -> Lab:
    """A fresh tree: the caller role, an empty Apache directory, the apachectl stand-ins."""
    role = tmp_path / "roles" / "caller"
    for part, text in {
        "defaults/main.yml": "---\ncaller_default: from-defaults\n",
        "vars/main.yml": "---\ncaller_var: from-vars\n",
        "tasks/main.yml": CALLER_TASKS,
        "templates/caller.conf.j2": CALLER_TEMPLATE,
        "templates/site.conf.j2": "Site {{ caller_default }}\n",
        "templates/extra.conf.j2": "Extra\n",
    }.items():
        (role / part).parent.mkdir(parents=True, exist_ok=True)
        (role / part).write_text(text)
    (tmp_path / "play.yml").write_text(
        "---\n- name: Caller\n  hosts: localhost\n  connection: local\n  gather_facts: true\n"
        "  gather_subset: [min]\n  roles: [caller]\n"
    )
    for name, script in {"apachectl-accepts": "exit 0", "apachectl-rejects": f"echo \"{REJECTION}\" >&2; exit 1"}.items():
        (tmp_path / name).write_text(f"#!/bin/sh\n{script}\n")
        (tmp_path / name).chmod(0o755)
    lab = Lab(tmp_path)
    for directory in ("conf-available", "conf-enabled", "sites-available", "sites-enabled"):
        (lab.conf_dir / directory).mkdir(parents=True)
    return lab


@pytest.fixture
def fresh(tmp_path: Path) -> Lab:
    return make_lab(tmp_path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    """One tree for the tests that start from a converged caller; each leaves it as it found it."""
    lab = make_lab(tmp_path_factory.mktemp("converged"))
    result = lab.run()
    assert result.returncode == 0, result.stdout + result.stderr
    return lab


def test_templates_are_the_callers_and_see_its_variables(lab: Lab) -> None:
    conf = lab.conf_dir / "conf-available" / "caller.conf"
    site = lab.conf_dir / "sites-available" / "site.conf"
    assert lab.files() == {
        "conf-available/caller.conf": "# Ansible managed\nDefault from-defaults\nVar from-vars\nFact from-set-fact\n",
        "conf-enabled/caller.conf": f"-> {conf}",
        "sites-available/site.conf": "Site from-defaults\n",
        "sites-enabled/site.conf": f"-> {site}",
    }
    # Byte for byte what the caller renders in its own context (the way the roles rendered before).
    assert conf.read_bytes() == (lab.root / "expected.conf").read_bytes()
    assert (conf.stat().st_mode & 0o777, conf.stat().st_uid) == (0o644, 0)


def test_a_second_run_changes_nothing(lab: Lab) -> None:
    before = lab.files()
    again = lab.run()
    assert again.returncode == 0, again.stdout + again.stderr
    assert "changed=0 " in again.stdout, again.stdout
    assert lab.files() == before


def test_check_mode_shows_the_change_and_writes_nothing(lab: Lab) -> None:
    before = lab.files()
    checked = lab.run("--check", caller_default="changed")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "-Default from-defaults\n+Default changed\n" in checked.stdout
    assert lab.files() == before


def test_check_mode_on_a_host_without_the_files(fresh: Lab) -> None:
    checked = fresh.run("--check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "+Default from-defaults" in checked.stdout
    assert fresh.files() == {}


def test_a_rejected_configuration_is_rolled_back_with_apaches_message(lab: Lab) -> None:
    before = lab.files()
    rejected = lab.run(
        apache_ctl=str(lab.root / "apachectl-rejects"), caller_default="changed",
        caller_files=[*FILES, {"template": "extra.conf.j2", "kind": "conf"}],
    )
    assert rejected.returncode != 0
    assert "Apache rejected the new configuration" in rejected.stdout
    assert REJECTION in rejected.stdout
    # The changed files are as they were, the new file and its link are gone, no backup is left behind.
    assert lab.files() == before


def test_bad_kind_stops_before_any_file_is_written(lab: Lab) -> None:
    before = lab.files()
    result = lab.run(caller_default="changed", caller_files=[{"template": "caller.conf.j2", "kind": "sites"}])
    assert result.returncode != 0
    # The entry point's argument_specs refuse it (the filter refuses it too, for callers inside the role).
    assert "value of kind must be one of: conf, site, ports, got: sites found in apache_config_files" in result.stdout
    assert lab.files() == before
