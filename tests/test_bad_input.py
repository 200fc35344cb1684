"""Bad input stops `ansible-playbook site.yml` before any host is touched, naming site, app and field.

The inventory's only web server is a container that does not exist: if validation let an input through,
the run would fail as UNREACHABLE instead, so each test also proves no host connection was attempted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
SECOND_PLAY = "PLAY [Apache with mod_wsgi"


def site(*apps: dict) -> dict:
    return {"server_name": "www.example.com", "apps": list(apps)}


def app(**fields) -> dict:
    return {"name": "myapp", "mount": "/myapp", "mode": "daemon", **fields}


def run_site(tmp_path: Path, sites: list[dict]) -> subprocess.CompletedProcess:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        json.dumps({
            "webservers": {
                "hosts": {
                    "ghost-web1": {
                        "ansible_connection": "community.docker.docker",
                        "ansible_host": f"no-such-container-{uuid.uuid4().hex}",
                    }
                }
            }
        })
    )
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"wsgi_sites": sites}))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), "site.yml", "--extra-vars", f"@{extra}"],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


BAD_INPUTS = {
    "trailing slash": (site(app(mount="/myapp/")), "mount"),
    "no leading slash": (site(app(mount="myapp")), "mount"),
    "unknown mode": (site(app(mode="deamon")), "mode"),
    "misspelled daemon option": (site(app(daemon_options={"maximum-request": 1000})), "maximum-request"),
    "processes below 1": (site(app(processes=0)), "processes"),
    "threads below 1": (site(app(threads=0)), "threads"),
    "missing source": (site(app(source="/nonexistent/app.wsgi")), "source"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_stops_before_any_host_changes(tmp_path, case):
    sites, field = BAD_INPUTS[case]
    result = run_site(tmp_path, [sites])
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "UNREACHABLE" not in output
    assert SECOND_PLAY not in output
    assert "www.example.com" in output
    assert "myapp" in output
    assert field in output


def test_two_apps_on_one_mount(tmp_path):
    result = run_site(tmp_path, [site(app(name="first", mount="/x"), app(name="second", mount="/x"))])
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert SECOND_PLAY not in output
    assert "www.example.com" in output
    assert "first" in output and "second" in output
    assert "mount" in output


def test_app_name_outside_the_allowed_characters(tmp_path):
    result = run_site(tmp_path, [site(app(name="My App"))])
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert SECOND_PLAY not in output
    assert "www.example.com" in output
    assert "My App" in output
    assert "name" in output
    assert "allowed: 1-64 characters of a-z, 0-9" in output


def test_every_problem_is_reported_in_one_run(tmp_path):
    result = run_site(tmp_path, [site(app(mount="/myapp/", processes=0))])
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "2 problem" in output
    assert "'mount'" in output and "'processes'" in output


def test_valid_input_reaches_the_hosts(tmp_path):
    """The control case: valid input passes validation and fails only because the host is unreachable."""
    result = run_site(tmp_path, [site(app())])
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert SECOND_PLAY in output
    assert "UNREACHABLE" in output
