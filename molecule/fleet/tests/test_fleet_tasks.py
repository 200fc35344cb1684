"""The board app's background work: a Celery worker on every web server on the app's Redis, one on a host
of its own (a process with a group), a job that fails, a one-off command, the fleet's status, and a
rollback that takes the workers back.

Runs after test_fleet.py (file order), whose rolling update checked the tasks enqueued meanwhile (each ran
exactly once, a long one finished on the old release); the rollback here comes last, so that every test
before it sees the board app on its newest release.
"""

from __future__ import annotations

import re
import time

from conftest import inventory_host, lab_of
from fleet_tasks import BOARD, enqueue, wait_for_runs, worker_release

testinfra_hosts = ["fleet-balancer"]

WEBS = ("fleet-web1", "fleet-web2", "fleet-web3")
WORKER = "wsgi-board-worker@1.service"
BROKEN_JOB = "wsgi-board-job-broken.service"
# The board app's process with a group (molecule.yml): on the host of the group workers, the database host.
WORKERS_HOST = "fleet-db"
REPORTS = "wsgi-board-reports@1.service"


def sql(query: str) -> str:
    return inventory_host("fleet-db").check_output(f"runuser -u postgres -- psql -d board -AtXc \"{query}\"")


def test_a_task_enqueued_through_the_balancer_runs_on_a_worker_and_is_read_back_through_another_host(lab):
    token = f"hello-{time.time_ns()}"
    answer = enqueue(lab, token, 6)
    assert answer["enqueued"] == 6 and answer["member"] in WEBS, answer
    # Read through each web server directly: the rows are in the one database, whoever ran them.
    for name in WEBS:
        done = wait_for_runs(lab_of(inventory_host(name)), token, 6, 60)
        assert sorted(run["task"] for run in done) == [f"{token}-{n}" for n in range(1, 7)], (name, done)
        assert {run["host"] for run in done} <= set(WEBS)
    assert sql(f"SELECT count(*) FROM task_runs WHERE task LIKE '{token}-%'") == "6"


def test_a_process_with_a_group_runs_on_that_groups_host_only_with_the_apps_release_and_services(lab):
    token = f"reports-{time.time_ns()}"
    enqueue(lab, token, 3, queue="reports")
    done = wait_for_runs(lab, token, 3, 60)
    # Run by the reports worker on the workers host, which reached the app's database and Redis (each lets
    # in the app's hosts only) with the app's environment, on the release the web servers run.
    assert sorted(run["task"] for run in done) == [f"{token}-{n}" for n in (1, 2, 3)], done
    assert {run["host"] for run in done} == {WORKERS_HOST}, done
    assert {run["version"] for run in done} == {lab.request("/", BOARD).json()["version"]}, done
    worker_host = inventory_host(WORKERS_HOST)
    current = worker_host.check_output("readlink -f /usr/local/www/apps/board/current")
    assert worker_release(worker_host, REPORTS) == current
    assert worker_host.service(REPORTS).is_running
    env = worker_host.file("/etc/wsgi-apps/board.json")
    assert (env.user, env.group, env.mode) == ("root", "wsgi-board", 0o640)
    # Nothing of the web side there: no Apache, no loader, no scheduled job, no web server's worker.
    assert not worker_host.package("apache2").is_installed
    assert not worker_host.file("/usr/local/www/wsgi-scripts").exists
    assert worker_host.run("systemctl cat wsgi-board-job-mark.timer wsgi-board-worker@.service").rc != 0
    # ... and the process not on the web servers, nor the workers host in the balancer.
    for name in WEBS:
        assert inventory_host(name).run(f"systemctl cat {REPORTS}").rc != 0, name
    balancer = inventory_host("fleet-balancer")
    assert balancer.run("grep -rq fleet-web1 /etc/apache2/").rc == 0
    assert balancer.run(f"grep -rq {WORKERS_HOST} /etc/apache2/").rc == 1


def test_status_yml_shows_a_stopped_worker_and_a_failed_job(lab):
    # The job that fails, started by hand on one host: it runs this hour's time, unless the job's (hourly)
    # timers ran that already on some host. Either way a run of it failed, and the journal of the host
    # that ran it says why. The worker of another host is stopped.
    inventory_host("fleet-web1").run(f"systemctl start {BROKEN_JOB}")
    journals = [inventory_host(name).check_output(f"journalctl -u {BROKEN_JOB} --no-pager -o cat") for name in WEBS]
    assert any("Unknown command: 'no_such_command'" in journal for journal in journals), journals
    stopped = inventory_host("fleet-web2")
    stopped.run(f"systemctl stop {WORKER}")
    try:
        shown = lab.playbook(playbook="playbooks/status.yml", limit=[*WEBS, WORKERS_HOST])
    finally:
        stopped.run(f"systemctl start {WORKER}")
    assert shown.returncode == 0, shown.summary()
    (table,) = [message for message in shown.messages() if message.startswith("host ")]
    rows = table.splitlines()[1:]
    (down,) = [row for row in rows if row.startswith("fleet-web2 ") and re.search(rf" {re.escape(WORKER)} +inactive", row)]
    assert f"process {WORKER} is down" in down, table
    for name in WEBS:
        (job,) = [row for row in rows if row.startswith(name + " ") and " job broken " in row]
        # The fleet's last run of the job, the same on every host: where it ran, how it ended.
        assert re.search(r"failed \(exit 1\): \S+ on fleet-web[123]", job), table
        assert [row for row in rows if row.startswith(name + " ") and " job mark " in row and "ok: " in row], table
    assert len([row for row in rows if WORKER in row and "active (running)" in row]) == 2, table
    # The board app's state backups (test_fleet_state_backups.py took a snapshot on each web server): ok.
    for name in WEBS:
        (state,) = [row for row in rows if row.startswith(name + " ") and " state backup " in row]
        assert re.search(r" board .* state backup +ok: snapshot .* ago, copied .* ago", state), table
    # The workers host: its one app and process, no web health (it has no web server); and, as the database
    # host, its continuous archive (test_fleet_database_archive.py ran its drill and backups: all well).
    (reports,) = [row for row in rows if row.startswith(WORKERS_HOST + " ") and REPORTS in row]
    (archive,) = [row for row in rows if row.startswith(WORKERS_HOST + " ") and " archive " in row]
    assert re.search(r" archive +ok: backup .* ago, copied .* ago, drill ok", archive), table
    assert re.search(rf"^{WORKERS_HOST} +board +\S+ +.+ +- +{re.escape(REPORTS)} +active \(running\)", reports), table


def test_run_yml_creates_a_django_superuser(lab):
    ran = lab.playbook(playbook="playbooks/run.yml", limit=list(WEBS), extra_vars={
        "wsgi_run_app": "board",
        "wsgi_run_command": "python manage.py createsuperuser --noinput --username admin --email admin@example.com"})
    assert ran.returncode == 0, ran.summary()
    assert "Superuser created successfully." in "\n".join(ran.messages("fleet-web1"))
    assert sql("SELECT is_superuser FROM auth_user WHERE username = 'admin'") == "t"
    # The board app's secrets (its SECRET_KEY, DATABASE_URL, REDIS_URL) are in no output.
    assert "fleet-board-secret-key" not in ran.stdout and "rediss://" not in ran.stdout


def test_rollback_takes_the_workers_back_to_the_release_before(lab):
    releases = {name: inventory_host(name).check_output("readlink -f /usr/local/www/apps/board/current")
                for name in (*WEBS, WORKERS_HOST)}
    rolled = lab.playbook(playbook="playbooks/rollback.yml", limit=False, extra_vars={"wsgi_rollback_app": "board"})
    assert rolled.returncode == 0, rolled.summary()
    # The workers on the web servers and the one on the workers host, each on its host's release before.
    for name, unit in [*((web, WORKER) for web in WEBS), (WORKERS_HOST, REPORTS)]:
        node = inventory_host(name)
        current = node.check_output("readlink -f /usr/local/www/apps/board/current")
        assert current != releases[name]
        assert worker_release(node, unit) == current, name
    token = f"rolled-back-{time.time_ns()}"
    enqueue(lab, token, 6)
    assert {run["version"] for run in wait_for_runs(lab, token, 6, 60)} == {"1"}
    enqueue(lab, f"{token}-reports", 2, queue="reports")
    assert {run["version"] for run in wait_for_runs(lab, f"{token}-reports", 2, 60)} == {"1"}
    assert lab.request("/", BOARD).json()["version"] == "1"
