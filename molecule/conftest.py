"""Fixtures shared by the testinfra suites of every Molecule scenario.

Requests go over real HTTP to the ports the lab containers publish on 127.0.0.1, the way a user reaches
them; playbook runs use Molecule's own inventory so they hit the very hosts under test.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import pytest
import testinfra

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

    def published(self, port: int) -> int:
        """The port on 127.0.0.1 that this host's port is published on."""
        return {int(key): value for key, value in self.variables["lab_published_ports"].items()}[port]

    def request(self, path: str, server_name: str, port: int = 80, method: str = "GET",
                headers: dict[str, str] | None = None, body: bytes | None = None) -> Response:
        """A plain HTTP request to one of the host's ports, with the site's name as Host (and body, if any)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.published(port), timeout=30)
        try:
            # skip_host: the Host header must be the site's name, not 127.0.0.1.
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", server_name)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            return Response(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def tls_socket(self, server_name: str, tls: ssl.SSLContext, port: int = 443) -> ssl.SSLSocket:
        """A TLS connection to one of the host's ports, naming server_name in SNI (and checking it)."""
        sock = socket.create_connection(("127.0.0.1", self.published(port)), timeout=30)
        return tls.wrap_socket(sock, server_hostname=server_name)

    def https(self, path: str, server_name: str, tls: ssl.SSLContext, headers: dict[str, str] | None = None,
              port: int = 443) -> Response:
        """One HTTPS request, naming server_name in SNI and Host."""
        conn = http.client.HTTPConnection(server_name, timeout=30)
        conn.sock = self.tls_socket(server_name, tls, port)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return Response(response.status, response.headers, response.read())
        finally:
            conn.close()

    @property
    def sites(self) -> list[dict]:
        return self.variables["wsgi_sites"]

    def apps(self, mode: str | None = None, projects: bool = False,
             redirected: bool = False) -> list[tuple[dict, dict]]:
        """(site, app) pairs of the single-script apps (with projects=True, of every app), optionally only
        those of one mode. Project apps (a `project` directory) have tests of their own (test_projects.py),
        and so have the apps of a site whose plain port only redirects to HTTPS (test_tls.py): they are
        left out unless redirected=True, since most tests ask the apps on the plain port."""
        return [
            (site, app)
            for site in self.sites
            for app in site.get("apps", [])
            if (mode is None or app["mode"] == mode) and (projects or "project" not in app)
            and (redirected or not (site.get("tls") and site["tls"].get("redirect", True)))
        ]

    def projects(self, mode: str | None = None) -> list[tuple[dict, dict]]:
        """(site, app) pairs of the project apps, optionally only those of one mode."""
        return [(site, app) for site, app in self.apps(mode, projects=True) if "project" in app]

    def playbook(self, *args: str, extra_vars: dict | None = None, limit: bool | list[str] = True,
                 playbook: str = "site.yml", host_vars: dict[str, dict] | None = None) -> PlaybookRun:
        """Run the real site.yml (or another playbook of the repository) with Molecule's inventory: against
        this host only (limit=True), every host (False) or the named hosts.

        host_vars gives hosts variables of their own for this run (a second inventory source, whose host
        variables beat the scenario's group variables), where extra_vars would give every host the same:
        so that one run changes each host of a group in its own way. The run reports through the json
        callback, so that tests read its counters and messages as data rather than scraping the
        human-readable output."""
        with tempfile.TemporaryDirectory(prefix="lab-playbook-") as scratch:
            command = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"]]
            if host_vars:
                extra_inventory = Path(scratch) / "host_vars.yml"
                extra_inventory.write_text(json.dumps({"all": {"hosts": host_vars}}))
                command += ["-i", str(extra_inventory)]
            command.append(str(PROJECT_DIR / playbook))
            command += args
            if limit is True:
                command += ["--limit", self.name]
            elif limit:
                command += ["--limit", ",".join(limit)]
            if extra_vars is not None:
                command += ["--extra-vars", json.dumps(extra_vars)]
            env = {key: value for key, value in os.environ.items() if key != "ANSIBLE_FORCE_COLOR"}
            env.update(
                ANSIBLE_CONFIG=str(PROJECT_DIR / "ansible.cfg"),
                ANSIBLE_NOCOLOR="1",
                ANSIBLE_STDOUT_CALLBACK=JSON_CALLBACK,
                ANSIBLE_JSON_INDENT="0",
            )
            completed = subprocess.run(
                # A safety net only: a rollout of the whole fleet on a busy 2-CPU machine can take over ten
                # minutes.
                command, check=False, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=1500
            )
        return PlaybookRun(completed.returncode, completed.stdout, completed.stderr)


# The json stdout callback (collection ansible.posix, shipped with the ansible package): one JSON document
# with every play, task and host result and the per-host stats, printed when the run ends.
JSON_CALLBACK = "ansible.posix.json"
# The json stats name one counter differently from the PLAY RECAP line ("failures" there, "failed" here);
# the tests use the recap's names.
_STAT_NAMES = {"failures": "failed"}


@dataclass
class PlaybookRun:
    """One ansible-playbook run of site.yml and its json report."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict:
        """The callback's document: {'plays': [...], 'stats': {...}}. Anything Ansible printed before it
        (nothing, normally: warnings go to stderr) is skipped."""
        start = self.stdout.find("{")
        assert start >= 0, f"no json report in the output:\n{self.stdout}\n{self.stderr}"
        document, _ = json.JSONDecoder().raw_decode(self.stdout[start:])
        return document

    def stats(self) -> dict[str, dict[str, int]]:
        """The counters of every host, e.g. {'web1': {'ok': 30, 'changed': 0, 'failed': 0, ...}}."""
        stats = self.report["stats"]
        assert stats, f"no host in the stats:\n{self.stdout}\n{self.stderr}"
        return {
            host: {_STAT_NAMES.get(key, key): int(value) for key, value in counters.items()}
            for host, counters in stats.items()
        }

    def host_stats(self, host: str | None = None) -> dict[str, int]:
        """The counters of one host of the run (with host=None, of its single host)."""
        if host is not None:
            return self.stats()[host]
        (counters,) = self.stats().values()
        return counters

    def play_names(self) -> list[str]:
        """The name of every play as it started; a play with serial starts once per batch."""
        return [play["play"]["name"] for play in self.report["plays"]]

    def task_names(self, from_play: str | None = None) -> list[str]:
        """Every task started ('role : task' inside roles), from the first play named from_play on."""
        plays = self.report["plays"]
        if from_play is not None:
            names = [play["play"]["name"] for play in plays]
            assert from_play in names, (from_play, names)
            plays = plays[names.index(from_play):]
        return [task["task"]["name"] for play in plays for task in play["tasks"]]

    def ran_tasks(self) -> list[str]:
        """The tasks that ran on some host (not skipped everywhere), as task_names names them."""
        return [
            task["task"]["name"]
            for play in self.report["plays"]
            for task in play["tasks"]
            if any(not result.get("skipped") for result in task["hosts"].values())
        ]

    def messages(self, host: str | None = None) -> list[str]:
        """Every 'msg' of every host's (or one host's) task result and loop item, in order: what fail,
        assert and debug tasks said."""
        found = []
        for play in self.report["plays"]:
            for task in play["tasks"]:
                for name, result in task["hosts"].items():
                    if host is not None and name != host:
                        continue
                    for entry in [result, *result.get("results", [])]:
                        if isinstance(entry, dict) and isinstance(entry.get("msg"), str):
                            found.append(entry["msg"])
        return found

    def summary(self) -> str:
        """A readable digest for assertion messages: every failed result with its message, then the stats."""
        if self.stdout.find("{") < 0:
            return f"{self.stdout}\n{self.stderr}"
        lines = []
        for play in self.report["plays"]:
            for task in play["tasks"]:
                for host, result in task["hosts"].items():
                    if result.get("failed") or result.get("unreachable"):
                        lines.append(f"{host}: {task['task']['name']}: {result.get('msg', '')}")
        return "\n".join([*lines, json.dumps(self.report["stats"]), self.stderr[-3000:]])


def tls_context(*, cadata: str | None = None, cafile: Path | None = None) -> ssl.SSLContext:
    """A client context that verifies the server's certificate and name, as a browser would."""
    return ssl.create_default_context(cadata=cadata, cafile=str(cafile) if cafile else None)


def wait_for(predicate, seconds: float, what: str):
    """predicate's first true value, asked every second; fails naming what did not happen in time."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(1)


# ---- ACME: the scenario's Pebble (molecule/shared/acme_server.yml) on its host of group acme.

def pebble_root() -> str:
    """The root of Pebble's issuing chain, from its management port (Pebble makes a new one at each start)."""
    acme = inventory_host(f"{os.environ['MOLECULE_SCENARIO_NAME']}-acme")
    return acme.check_output(
        "python3 -c 'import ssl, urllib.request; print(urllib.request.urlopen("
        '"https://localhost:15000/roots/0", context=ssl._create_unverified_context()).read().decode())\'')


def served_certificate(lab: Lab, server_name: str, root: str) -> dict:
    """The certificate served for server_name (SNI), verified against root with the name checked."""
    with lab.tls_socket(server_name, tls_context(cadata=root)) as sock:
        return sock.getpeercert()


def issuer_name(certificate: dict) -> str:
    return dict(item for rdn in certificate["issuer"] for item in rdn)["commonName"]


def assert_a_renewal_goes_live_by_itself(host, lab: Lab, server_name: str, root: str) -> None:
    """A renew window longer than the certificates' lifetime (90 days) makes them due: mod_md renews at
    once and tells acme-message, and wsgi-acme-reload.path reloads Apache. The served certificate changes
    with no step of ours after the reload that brings the window."""
    before = served_certificate(lab, server_name, root)["serialNumber"]
    window = "/etc/apache2/conf-enabled/zz-test-renew-now.conf"
    host.check_output(f"echo 'MDRenewWindow 100d' > {window} && systemctl reload apache2")
    try:
        wait_for(lambda: served_certificate(lab, server_name, root)["serialNumber"] != before, 90,
                 f"a renewed certificate served for {server_name}")
    finally:
        host.check_output(f"rm -f {window} && systemctl reload apache2")
    reloads = host.check_output("journalctl -u wsgi-acme-reload.service --no-pager -o cat")
    assert "Finished wsgi-acme-reload.service" in reloads, reloads


# sslyze runs from its own venv (.venv-sslyze, made by `make venv`): it pins a cryptography older than
# ansible's.
SSLYZE = PROJECT_DIR / ".venv-sslyze" / "bin" / "sslyze"


def sslyze(server_name: str, port: int, ca_file: Path, profile: str = "intermediate") -> subprocess.CompletedProcess:
    """sslyze's check of Mozilla's profile against 127.0.0.1:port with server_name in SNI, trusting ca_file
    (a certificate a browser would not trust fails its path validation). It exits non-zero when the server
    is not compliant."""
    return subprocess.run(
        [str(SSLYZE), f"--mozilla_config={profile}", f"--certinfo_ca_file={ca_file}",
         f"{server_name}:{port}{{127.0.0.1}}"],
        capture_output=True, text=True, timeout=300, check=False,
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


def inventory_host(name: str) -> testinfra.host.Host:
    """The scenario's inventory host of that name, for a test that reaches hosts other than its own."""
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")


@dataclass
class Member:
    """One host of a group that a test drives as a whole: its testinfra host and its Lab."""

    host: testinfra.host.Host
    lab: Lab


@pytest.fixture(scope="module")
def group(request) -> list[Member]:
    """Every host of the test module (its testinfra_hosts), for tests that run once for all of them rather
    than once per host: one playbook run over the group costs a little more than a run over one host, and
    a scenario's time budget (README, Tests and CI) cannot pay for a run per host."""
    option = request.config.option
    hosts = testinfra.get_hosts(
        getattr(request.module, "testinfra_hosts", ["all"]),
        connection=option.connection,
        ansible_inventory=option.ansible_inventory,
    )
    return [Member(host, lab_of(host)) for host in sorted(hosts, key=lambda h: h.backend.get_pytest_id())]


# For a run over several independent hosts (no balancer): a new release goes to all of them in one batch,
# not one host at a time, so that each host shows what the run does to it (with batches of one, the first
# failure would stop the run before the other hosts are reached). A play's `serial` is read from extra
# variables, not from the inventory. Batches are the fleet scenario's subject.
ONE_BATCH = {"rollout_serial": "100%"}


def names(members: list[Member]) -> list[str]:
    """The inventory names of members, for Lab.playbook's limit."""
    return [member.lab.name for member in members]


def apache_main_pid(host) -> int:
    return int(host.file("/run/apache2/apache2.pid").content_string.strip())


# Each load thread waits this long after every answer: requests are in flight all the time (what "no request
# fails during a switch" needs), at a rate that leaves the 2 CPUs, which the hosts and Ansible share with the
# load, to the playbook under test. An unpaced load kept the machine at load 14 and made a run take 3x longer.
LOAD_PAUSE = 0.02


class Load:
    """A bounded, paced load: a few client threads over keep-alive connections until stopped or out of time.

    Each asks path (default <mount>/load) and records the status and the "version" of the JSON answer."""

    def __init__(self, lab, site: dict, app: dict, threads: int = 6, limit: float = 240, path: str | None = None,
                 pause: float = LOAD_PAUSE):
        self.lab, self.site, self.app = lab, site, app
        self.pause = pause
        self.path = path if path is not None else app["mount"] + "/load"
        self.deadline = time.monotonic() + limit
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.results: Counter = Counter()
        self.versions: list[str] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        published = {int(k): v for k, v in self.lab.variables["lab_published_ports"].items()}[self.site.get("port", 80)]
        conn, used = None, 0
        while not self.stopped.is_set() and time.monotonic() < self.deadline:
            try:
                if conn is None:
                    conn, used = http.client.HTTPConnection("127.0.0.1", published, timeout=30), 0
                conn.request("GET", self.path, headers={"Host": self.site["server_name"]})
                resp = conn.getresponse()
                body = resp.read()
                used += 1
                with self.lock:
                    self.results[resp.status] += 1
                    if resp.status == 200:
                        self.versions.append(re.search(rb'"version": "([^"]*)"', body).group(1).decode())
                self.stopped.wait(self.pause)
            except (OSError, http.client.HTTPException) as exc:
                if conn is not None:
                    conn.close()
                conn = None
                # A kept-alive connection closed before any byte of the answer: what Apache does when the
                # pooled backend connection it picked was closed under it (the keep-alive race), so that
                # the client sends the request again (RFC 9110 9.2.2, as browsers and urllib3 do). The
                # request is counted as failed only if it fails again on a new connection.
                retry = used > 0 and isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError))
                with self.lock:
                    self.results["retried" if retry else type(exc).__name__] += 1

    def __enter__(self) -> Self:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(60)

    def wait_for_version(self, version: str, seconds: float = 30) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                if self.versions and self.versions[-1] == version:
                    return True
            time.sleep(0.1)
        return False

    @property
    def failures(self) -> dict:
        return {key: count for key, count in self.results.items() if key not in (200, "retried")}
