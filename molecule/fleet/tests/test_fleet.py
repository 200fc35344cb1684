"""The fleet: a balancer in front of three web hosts, rolling updates under load, a host that goes down.

Every request goes through the balancer's port published on 127.0.0.1, the way a user reaches the fleet;
rollouts run the real site.yml over the whole Molecule inventory. The tests run once, from the balancer.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Self

import pytest
from conftest import LOAD_PAUSE, PROJECT_DIR, Lab, PlaybookRun, inventory_host, lab_of
from fleet_tasks import TaskFeed, enqueue, wait_for_runs, worker_release, worker_stops

sys.path.insert(0, str(PROJECT_DIR / "filter_plugins"))
from balancer import balancer_manager_state  # the same reader the rollout uses

testinfra_hosts = ["fleet-balancer"]

ROLLING_PLAY = "Rolling update of the web servers in service"
PROCESS_HOSTS_PLAY = "The apps' processes on the hosts of their own, before the web servers switch"
PLAN_PLAY = "Plan the rollout of the web servers"
DRAIN_TASK = "Take this host out of the balancers"
VERSION_RE = re.compile(r'^VERSION = "(\d+)"$', re.MULTILINE)


# --------------------------------------------------------------------------- the fleet


def web_host_names(lab: Lab) -> list[str]:
    return list(lab.variables["groups"]["webservers"])


@pytest.fixture
def web(lab: Lab) -> dict[str, tuple[Lab, object]]:
    """Each web host as (Lab, testinfra host), for direct requests and commands."""
    hosts = {}
    for name in web_host_names(lab):
        node = inventory_host(name)
        hosts[name] = (lab_of(node), node)
    return hosts


@pytest.fixture
def app(web) -> tuple[str, Path]:
    """(server_name, source file on the controller) of the app the tests release."""
    first, _ = next(iter(web.values()))
    site = first.sites[0]
    return site["server_name"], Path(site["apps"][0]["source"])


def release(source: Path, broken: bool = False) -> str:
    """Write the next version of the app (or a broken one, which fails at import); return its version."""
    text = source.read_text()
    version = str(int(VERSION_RE.search(text).group(1)) + 1)
    text = VERSION_RE.sub(f'VERSION = "{version}"', text)
    text = text.replace('raise RuntimeError("a broken release")\n', "")
    if broken:
        text = text.replace("import json\n", 'import json\nraise RuntimeError("a broken release")\n', 1)
    source.write_text(text)
    return version


def served_version(lab: Lab, server_name: str) -> tuple[int, str | None]:
    """(status, version) of the app asked directly on a web host, not through the balancer."""
    response = lab.request("/", server_name)
    return response.status, response.json()["version"] if response.status == 200 else None


def manager_state(host, member: str) -> dict:
    """The balancer manager's view of one member (read on the balancer host: it answers local requests only)."""
    page = host.check_output(
        "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1/balancer-manager')"
        ".read().decode())\""
    )
    members = balancer_manager_state(page, "web")["members"]
    return members[f"http://{member}"]


def wait_for(predicate, seconds: float, step: float = 0.2) -> float | None:
    """Seconds until predicate() held, or None if it did not within the time."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if predicate():
            return time.monotonic() - started
        time.sleep(step)
    return None


class BalancerLoad:
    """Clients on keep-alive connections through the balancer, bounded in time and in requests."""

    # Bounded in time and requests; the time outlasts a rollout of the fleet on a busy 2-CPU machine (712 s
    # were measured at load 12 with the project app's batches), and the load stops when the run ends.
    def __init__(self, lab: Lab, server_name: str, threads: int = 4, seconds: float = 1200,
                 max_requests: int = 3_000_000, path: str = "/", pause: float = LOAD_PAUSE):
        self.lab, self.server_name, self.path, self.pause = lab, server_name, path, pause
        self.deadline = time.monotonic() + seconds
        self.max_requests = max_requests
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.results: Counter = Counter()
        self.members: Counter = Counter()
        self.versions: dict[str, Counter] = {}
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        port = {int(key): value for key, value in self.lab.variables["lab_published_ports"].items()}[80]
        conn = None
        while not self.stopped.is_set() and time.monotonic() < self.deadline:
            with self.lock:
                if sum(self.results.values()) >= self.max_requests:
                    return
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", self.path, headers={"Host": self.server_name})
                resp = conn.getresponse()
                body = resp.read()
                member = resp.getheader("X-Balancer-Member", "?")
                with self.lock:
                    self.results[resp.status] += 1
                    self.members[member] += 1
                    if resp.status == 200:
                        self.versions.setdefault(member, Counter())[json.loads(body)["version"]] += 1
                self.stopped.wait(self.pause)
            except (OSError, http.client.HTTPException) as exc:
                if conn is not None:
                    conn.close()
                conn = None
                with self.lock:
                    self.results[type(exc).__name__] += 1

    def __enter__(self) -> Self:
        for thread in self.threads:
            thread.start()
        time.sleep(1)  # the load is on before anything happens
        return self

    def __exit__(self, *exc) -> None:
        # The load must still have been running when the work under test ended, or it proved nothing.
        self.ran_throughout = time.monotonic() < self.deadline and self.total < self.max_requests
        self.stopped.set()
        for thread in self.threads:
            thread.join(60)

    @property
    def failures(self) -> dict:
        return {key: count for key, count in self.results.items() if key != 200}

    @property
    def total(self) -> int:
        return sum(self.results.values())


def report(what: str, load: BalancerLoad) -> None:
    """Printed with -s / in the verifier's log: the figures the issue asks to report."""
    print(f"\n{what}: {load.total} requests, results {dict(load.results)}, by member {dict(load.members)}")


def rollout_under_load(lab: Lab, server_name: str, what: str, path: str = "/", playbook: str = "site.yml",
                       extra_vars: dict | None = None) -> tuple[PlaybookRun, BalancerLoad]:
    """Run site.yml (or another playbook) over the whole fleet while clients ask path through the balancer;
    the load outlasts the run."""
    result, (load,) = rollout_under_loads(lab, what, ((server_name, path),), playbook, extra_vars)
    return result, load


def rollout_under_loads(lab: Lab, what: str, targets: tuple[tuple[str, str], ...], playbook: str = "site.yml",
                        extra_vars: dict | None = None) -> tuple[PlaybookRun, list[BalancerLoad]]:
    """The same with a load of its own on each of several (server_name, path) targets (one rollout
    releasing several apps)."""
    with contextlib.ExitStack() as stack:
        loads = [stack.enter_context(BalancerLoad(lab, server_name, path=path)) for server_name, path in targets]
        result = lab.playbook(limit=False, playbook=playbook, extra_vars=extra_vars)
    for target, load in zip(targets, loads, strict=True):
        report(f"{what} ({' '.join(target)})" if len(targets) > 1 else what, load)
        assert load.ran_throughout, (target, load.results)
    return result, loads


# --------------------------------------------------------------------------- tests


def test_management_interface_answers_the_balancer_host_only(host, lab):
    assert lab.request("/balancer-manager", "www.example.com").status == 403
    assert manager_state(host, "fleet-web1")["route"] == "fleet-web1"


def test_the_balancer_spreads_requests_over_every_web_host(lab, web, app):
    server_name, _ = app
    with BalancerLoad(lab, server_name, threads=4, seconds=4) as load:
        time.sleep(3)
    assert load.failures == {}, load.results
    assert set(load.members) == set(web), load.members


BOARD = "board.example.com"
# The Django project's second migration: a table with one row per run of it, and the host it ran on.
MIGRATION_RUN_MODEL = '''

class MigrationRun(models.Model):
    host = models.CharField(max_length=200)
    at = models.DateTimeField(auto_now_add=True)
'''
MIGRATION_0002 = '''"""Version 2: records each run of this migration, so that a test can count them."""

import socket

from django.db import migrations, models


def record(apps, schema_editor):
    apps.get_model("notes", "MigrationRun").objects.create(host=socket.gethostname())


class Migration(migrations.Migration):
    dependencies = [("notes", "0001_initial")]
    operations = [
        migrations.CreateModel(
            name="MigrationRun",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("host", models.CharField(max_length=200)),
                ("at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.RunPython(record, migrations.RunPython.noop),
    ]
'''


def release_board_with_migration(project: Path) -> None:
    """Version 2 of the Django project on the fleet's database: a new model and its migration."""
    version_file = project / "shop" / "version.py"
    version_file.write_text(version_file.read_text().replace('VERSION = "1"', 'VERSION = "2"'))
    models_file = project / "notes" / "models.py"
    models_file.write_text(models_file.read_text() + MIGRATION_RUN_MODEL)
    (project / "notes" / "migrations" / "0002_migrationrun.py").write_text(MIGRATION_0002)


def catalog_release(web_lab: Lab) -> tuple[str, str]:
    """(version, release directory) the project app answers with, asked directly on a web host."""
    response = web_lab.request("/catalog/", "www.example.com")
    assert response.status == 200, response.text[:300]
    return response.json()["version"], response.json()["release"]


LONG_TASK = 20  # seconds; the worker's stop_timeout is 60 (molecule.yml)
WORKER = "wsgi-board-worker@1.service"


def check_tasks_through_the_rollout(lab: Lab, web, short: TaskFeed, long: TaskFeed) -> None:
    """Every task enqueued during the rolling update ran exactly once; a long task that a worker was running
    when it was stopped for the switch finished there, on the old release, within the stop timeout; the
    workers run the new release."""
    print(f"\ntasks during the rollout: {short.enqueued} short, {long.enqueued} long, {short.failed + long.failed} "
          "requests to enqueue failed")
    assert short.enqueued >= 20 and long.enqueued >= 5, (short.enqueued, long.enqueued)
    for feed in (short, long):
        ran = [run["task"] for run in wait_for_runs(lab, feed.token, feed.enqueued, 90)]
        assert sorted(ran) == sorted(feed.tasks), f"missing {set(feed.tasks) - set(ran)}, twice {Counter(ran) - Counter(set(ran))}"
    long_runs = wait_for_runs(lab, long.token, long.enqueued, 0)
    finished_on_stop = []
    for name, (_, node) in web.items():
        current = node.check_output("readlink -f /usr/local/www/apps/board/current")
        assert worker_release(node, WORKER) == current, name
        for stop in worker_stops(node, WORKER):
            finished_on_stop += [run for run in long_runs if run["host"] == name
                                 and run["started"] < stop < run["finished"] <= stop + 60]
        assert "Killing" not in node.check_output(f"journalctl -u {WORKER} --no-pager -o cat"), name
    assert finished_on_stop and {run["version"] for run in finished_on_stop} == {"1"}, long_runs
    after = f"after-{time.time_ns()}"
    enqueue(lab, after, 6)
    assert {run["version"] for run in wait_for_runs(lab, after, 6, 60)} == {"2"}
    # The process with a group (the reports worker on the workers host) runs the new release too.
    worker_host = inventory_host("fleet-db")
    current = worker_host.check_output("readlink -f /usr/local/www/apps/board/current")
    assert worker_release(worker_host, "wsgi-board-reports@1.service") == current
    enqueue(lab, f"{after}-reports", 2, queue="reports")
    assert {(run["host"], run["version"]) for run in wait_for_runs(lab, f"{after}-reports", 2, 60)} == {
        ("fleet-db", "2")}


def test_a_rollout_and_a_project_rollback_under_load_fail_no_request(lab, web, app):
    """One rollout releases a new version of the script app and a new release of the project app, in batches
    through the balancer, each under a load of its own (one run for both: the scenario's time budget);
    then playbooks/rollback.yml takes every host's project app back to the release before, batch by batch,
    with no pip run and no new release."""
    server_name, source = app
    version = release(source)
    project = source.parent / "catalog"
    first = {name: catalog_release(web_lab) for name, (web_lab, _) in web.items()}
    assert {release_version for release_version, _ in first.values()} == {"1"}, first
    version_file = project / "catalog" / "version.py"
    version_file.write_text(version_file.read_text().replace('VERSION = "1"', 'VERSION = "2"'))
    # The Django app on the fleet's database gets a release with a new migration (test_fleet_database.py
    # checks that it ran once, before any host switched).
    release_board_with_migration(source.parent / "board")
    # Celery tasks all along, through the balancer: short ones every second, and one of 20 s every 5 s, so
    # that a worker stopped for the switch has one to finish on the old release.
    token = f"rollout-{time.time_ns()}"
    with TaskFeed(lab, f"{token}-short") as short, TaskFeed(lab, f"{token}-long", 5, LONG_TASK) as long:
        result, (load, project_load, board_load) = rollout_under_loads(
            lab, "rollout", ((server_name, "/"), (server_name, "/catalog/"), (BOARD, "/")))
    assert result.returncode == 0, result.summary()
    check_tasks_through_the_rollout(lab, web, short, long)
    assert load.failures == {}, load.results
    assert project_load.failures == {}, project_load.results
    assert board_load.failures == {}, board_load.results
    for name in web:
        assert set(board_load.versions.get(name, {})) <= {"1", "2"}, board_load.versions
    assert {web_lab.request("/", BOARD).json()["version"] for web_lab, _ in web.values()} == {"2"}
    # One host at a time (rollout_serial 1): a batch per web host, each drained first; the workers host
    # (processes with a group) before them.
    assert result.play_names().count(ROLLING_PLAY) == len(web), result.play_names()
    assert result.play_names().index(PROCESS_HOSTS_PLAY) < result.play_names().index(ROLLING_PLAY)
    assert sum(DRAIN_TASK in name for name in result.task_names()) >= len(web), result.task_names()
    for name, (web_lab, _) in web.items():
        assert served_version(web_lab, server_name) == (200, version), name
    # The balancer saw the old version and then the new one on every host, and nothing else.
    for name in web:
        assert set(load.versions.get(name, {})) <= {str(int(version) - 1), version}, load.versions
        assert set(project_load.versions.get(name, {})) <= {"1", "2"}, project_load.versions
    second = {name: catalog_release(web_lab) for name, (web_lab, _) in web.items()}
    assert {release_version for release_version, _ in second.values()} == {"2"}, second
    releases = {name: sorted(node.file("/usr/local/www/apps/catalog/releases").listdir())
                for name, (_, node) in web.items()}

    result, load = rollout_under_load(lab, server_name, "project rollback", path="/catalog/",
                                      playbook="playbooks/rollback.yml", extra_vars={"wsgi_rollback_app": "catalog"})
    assert result.returncode == 0, result.summary()
    assert load.failures == {}, load.results
    assert result.play_names().count("Roll the app back, batch by batch") == len(web), result.play_names()
    assert sum(DRAIN_TASK in name for name in result.task_names()) >= len(web), result.task_names()
    # Every host on the release before, as it was (same directory), and nothing built or installed.
    assert {name: catalog_release(web_lab) for name, (web_lab, _) in web.items()} == first
    for name, (_, node) in web.items():
        assert sorted(node.file("/usr/local/www/apps/catalog/releases").listdir()) == releases[name], name
    ran = result.ran_tasks()
    assert not any("pip" in task or "venv" in task or "Unpack" in task for task in ran), ran
    for name in web:
        assert set(load.versions.get(name, {})) <= {"1", "2"}, load.versions
    assert "fleet-token-0123456789" not in result.stdout

    # The controller still has version 2: the next run (in the tests below) deploys it again, switching
    # to the release the hosts kept, without building.


def test_a_broken_release_stops_after_the_first_batch_and_the_fleet_keeps_serving(host, lab, web, app):
    server_name, source = app
    first, *others = web_host_names(lab)
    previous = {name: served_version(web_lab, server_name) for name, (web_lab, _) in web.items()}
    release(source, broken=True)
    result, load = rollout_under_load(lab, server_name, "broken rollout")
    assert result.returncode != 0, result.summary()
    assert load.failures == {}, load.results
    assert result.play_names().count(ROLLING_PLAY) == 1, result.play_names()
    failed_check = f"{first} failed its check after the deploy and stays out of the balancers"
    assert any(failed_check in message for message in result.messages()), result.summary()
    counters = result.stats()
    assert counters[first]["failed"] == 1, counters
    assert all(counters[name]["failed"] == 0 for name in others), counters
    # The failed host is broken, drained and left out; the others still serve what they served.
    assert served_version(web[first][0], server_name)[0] == 500
    assert "drain" in manager_state(host, first)["flags"]
    for name in others:
        assert served_version(web[name][0], server_name) == previous[name], name

    # A fixed release repairs the failed host (it is not in service: deployed at once) and rolls the others.
    version = release(source)
    result, load = rollout_under_load(lab, server_name, "fixed rollout")
    assert result.returncode == 0, result.summary()
    assert load.failures == {}, load.results
    for name, (web_lab, _) in web.items():
        assert served_version(web_lab, server_name) == (200, version), name
    assert "drain" not in manager_state(host, first)["flags"]
    assert wait_for(lambda: manager_state(host, first)["flags"] == [], 30) is not None


def test_a_web_host_that_stops_is_left_out_within_the_health_check_interval(host, lab, web, app):
    server_name, _ = app
    name = web_host_names(lab)[-1]
    _, node = web[name]
    interval = int(lab.variables.get("balancer_health_interval", 2))
    fails = int(lab.variables.get("balancer_health_fails", 1))
    with BalancerLoad(lab, server_name) as load:
        time.sleep(2)
        node.check_output("systemctl stop apache2")
        left_out = wait_for(lambda: bool(manager_state(host, name)["flags"]), interval * (fails + 2))
        time.sleep(3)
    report(f"{name} stopped", load)
    assert load.ran_throughout, load.results
    try:
        assert left_out is not None, manager_state(host, name)
        assert left_out <= interval * fails + 2, left_out
        # What clients saw while the balancer found out: bounded, and reported above.
        assert sum(load.failures.values()) <= 20, load.results
    finally:
        node.check_output("systemctl start apache2")
    # Back in by itself once it passes its checks again.
    assert wait_for(lambda: manager_state(host, name)["flags"] == [], 30) is not None
    with BalancerLoad(lab, server_name, seconds=6) as load:
        time.sleep(4)
    assert load.failures == {}, load.results
    assert load.members[name] > 0, load.members


def database_state(db) -> dict[str, str]:
    """Each app database's password (its root-only file) and the role's stored SCRAM verifier."""
    state = {}
    for name in ("board", "catalog"):
        state[f"{name} password"] = db.check_output(f"cat /etc/wsgi-hosting/postgresql/{name}.password")
        state[f"{name} verifier"] = db.check_output(
            f"runuser -u postgres -- psql -XAtc \"SELECT rolpassword FROM pg_authid WHERE rolname = '{name}'\"")
    return state


def test_a_run_with_nothing_to_change_checks_the_hosts_without_converging_them(lab, web):
    db = inventory_host("fleet-db")
    before = database_state(db)
    # -v: task results are in the output, where no secret may be.
    result = lab.playbook("-v", limit=False, extra_vars={"rollout_skip_unchanged": True})
    assert result.returncode == 0, result.summary()
    counters = result.stats()
    assert all(counters[name]["changed"] == 0 for name in counters), counters
    assert "fleet-db" in counters, counters
    # The database passwords stay the same across runs, and are in no output.
    assert database_state(db) == before
    for name in ("board", "catalog"):
        assert len(before[f"{name} password"]) >= 32
        assert before[f"{name} password"] not in result.stdout + result.stderr, name
        assert before[f"{name} verifier"].startswith("SCRAM-SHA-256$"), name
    assert "apache : Install Apache" not in result.task_names(from_play=PLAN_PLAY)

    # A file changed by hand makes the next run converge that host, and only it.
    name = web_host_names(lab)[0]
    _, node = web[name]
    conf = "/etc/apache2/conf-available/zz-hardening.conf"
    before = node.file(conf).content_string
    node.check_output(f"echo '# changed by hand' >> {conf}")
    result = lab.playbook(limit=False, extra_vars={"rollout_skip_unchanged": True})
    assert result.returncode == 0, result.summary()
    counters = result.stats()
    assert counters[name]["changed"] > 0, counters
    assert all(counters[other]["changed"] == 0 for other in web if other != name), counters
    assert node.file(conf).content_string == before
