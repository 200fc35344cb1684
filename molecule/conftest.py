"""Fixtures shared by the testinfra suites of every Molecule scenario.

Requests go over real HTTP to the ports the lab containers publish on 127.0.0.1, the way a user reaches
them; playbook runs use Molecule's own inventory so they hit the very hosts under test.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Lab:
    """One host under test: its variables and the way to reach its published ports."""

    name: str
    variables: dict

    def request(self, path: str, server_name: str, port: int = 80, method: str = "GET") -> Response:
        published = {int(key): value for key, value in self.variables["lab_published_ports"].items()}[port]
        conn = http.client.HTTPConnection("127.0.0.1", published, timeout=30)
        try:
            # skip_host: the Host header must be the site's name, not 127.0.0.1.
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", server_name)
            conn.endheaders()
            resp = conn.getresponse()
            return Response(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    @property
    def sites(self) -> list[dict]:
        return self.variables["wsgi_sites"]

    def apps(self, mode: str | None = None) -> list[tuple[dict, dict]]:
        """(site, app) pairs, optionally only those of one mode."""
        return [
            (site, app)
            for site in self.sites
            for app in site.get("apps", [])
            if mode is None or app["mode"] == mode
        ]

    def playbook(self, *args: str, extra_vars: dict | None = None, limit: bool = True) -> subprocess.CompletedProcess:
        """Run the real site.yml with Molecule's inventory: against this host only, or every host."""
        command = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(PROJECT_DIR / "site.yml"), *args]
        if limit:
            command += ["--limit", self.name]
        if extra_vars is not None:
            command += ["--extra-vars", json.dumps(extra_vars)]
        env = {key: value for key, value in os.environ.items() if key != "ANSIBLE_FORCE_COLOR"}
        env.update(ANSIBLE_CONFIG=str(PROJECT_DIR / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        return subprocess.run(
            command, check=False, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=600
        )


_VARIABLES: dict[str, dict] = {}


def lab_of(host) -> Lab:
    """The Lab of a testinfra host. Reading a host's variables runs ansible-inventory (about a second);
    they do not change during a run, so each host's are read once."""
    key = host.backend.get_pytest_id()
    if key not in _VARIABLES:
        _VARIABLES[key] = host.ansible.get_variables()
    variables = _VARIABLES[key]
    return Lab(name=variables["inventory_hostname"], variables=variables)


@pytest.fixture
def lab(host) -> Lab:
    return lab_of(host)


def recaps(result: subprocess.CompletedProcess) -> dict[str, dict[str, int]]:
    """The PLAY RECAP counters of every host, e.g. {'web1': {'ok': 30, 'changed': 0, ...}}."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    lines = re.findall(r"^(\S+)\s+:\s+(ok=.*)$", plain.split("PLAY RECAP", 1)[-1], re.MULTILINE)
    assert lines, f"no PLAY RECAP in the output:\n{result.stdout}\n{result.stderr}"
    return {
        host: {key: int(value) for key, value in (field.split("=") for field in counters.split())}
        for host, counters in lines
    }


def recap(result: subprocess.CompletedProcess) -> dict[str, int]:
    """The counters of the single host in a PLAY RECAP line, e.g. {'ok': 30, 'changed': 0, ...}."""
    (counters,) = recaps(result).values()
    return counters


def apache_main_pid(host) -> int:
    return int(host.file("/run/apache2/apache2.pid").content_string.strip())
