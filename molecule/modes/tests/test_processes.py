"""The project apps' long-running processes (`processes`): the Django project's `beat` process type, two
instances of `python manage.py heartbeat` on the daemon and proxy hosts, checked as a user would see them.

Each instance writes what it sees to its state directory every second (heartbeat-<n>.json: its pid, the
release it runs, a value of the app's environment, whether its secret is set) and notes a graceful stop on
SIGTERM (stopped-<n>.json): the files, systemd's view, the journal and the health check are what is read.
The release and rollback test in test_projects.py checks that they follow a new release and a rollback.
"""

from __future__ import annotations

import json
import re
import time

from conftest import wait_for

testinfra_hosts = ["webservers"]

STATE_BASE = "/var/lib/wsgi-apps"


def with_processes(lab) -> list[tuple[dict, dict]]:
    return [(site, app) for site, app in lab.projects() if app.get("processes")]


def instances(app: dict) -> list[tuple[str, str, str]]:
    """(process, instance number, unit) of every instance the app runs."""
    return [(process, str(number), f"wsgi-{app['name']}-{process}@{number}.service")
            for process, spec in app["processes"].items() for number in range(1, spec.get("count", 1) + 1)]


def heartbeat(host, app: dict, number: str) -> dict:
    return json.loads(host.file(f"{STATE_BASE}/{app['name']}/heartbeat-{number}.json").content_string)


def main_pid(host, unit: str) -> int:
    return int(host.check_output(f"systemctl show --property=MainPID --value {unit}"))


def fresh_beat(host, app: dict, number: str) -> dict:
    """The instance's heartbeat once it is at most 5 s old."""
    def beat():
        try:
            seen = heartbeat(host, app, number)
        except (ValueError, AssertionError):
            return None
        return seen if time.time() - seen["time"] < 5 else None
    return wait_for(beat, 30, f"a fresh heartbeat of {app['name']} {number}")


def test_each_instance_runs_in_the_live_release_as_the_apps_user_with_its_environment(host, lab):
    apps = with_processes(lab)
    if not apps:
        return  # the embedded host's apps have none (its Flask app runs inside Apache alone)
    for _, app in apps:
        release = host.check_output(f"readlink -f {lab.variables['wsgi_base_dir']}/apps/{app['name']}/current")
        for _, number, unit in instances(app):
            assert host.service(unit).is_running and host.service(unit).is_enabled, unit
            seen = fresh_beat(host, app, number)
            assert seen["release"] == release, unit
            assert seen["greeting"] == app["env"]["SHOP_GREETING"] and seen["secret_set"] is True, unit
            assert seen["pid"] == main_pid(host, unit), unit  # the program itself, not a shell around it
            owner = host.check_output(f"ps -o user= -p {seen['pid']}")
            assert owner == f"wsgi-{app['name']}", unit
            # Its output is in the journal under the app's and the process's name.
            logged = host.check_output(f"journalctl -t {app['name']}-beat --no-pager -o cat")
            assert f"heartbeat {number} of release {release}" in logged, unit


def test_the_processes_are_sandboxed(host, lab):
    for _, app in with_processes(lab):
        for _, _, unit in instances(app)[:1]:
            shown = host.check_output(
                f"systemctl show --property=ProtectSystem,NoNewPrivileges,User,TimeoutStopUSec,Restart {unit}")
            assert "ProtectSystem=strict" in shown and "NoNewPrivileges=yes" in shown, shown
            assert f"User=wsgi-{app['name']}" in shown and "Restart=always" in shown, shown
            assert "TimeoutStopUSec=10s" in shown, shown  # stop_timeout
            # The release is read-only for it, its state directory is not.
            denied = host.run(f"runuser -u wsgi-{app['name']} -- touch "
                              f"{lab.variables['wsgi_base_dir']}/apps/{app['name']}/current/x")
            assert denied.rc != 0


def test_a_process_that_dies_is_restarted_and_the_health_check_names_one_that_is_down(host, lab):
    apps = with_processes(lab)
    if not apps:
        return
    site, app = apps[0]
    _, _, first = instances(app)[0]
    _, _, second = instances(app)[1]
    killed = main_pid(host, first)
    host.run(f"kill -9 {killed}")
    wait_for(lambda: host.service(first).is_running and main_pid(host, first) not in (0, killed), 30,
             f"{first} restarted after SIGKILL")
    host.run(f"systemctl stop {second}")
    try:
        health = lab.request("/healthz", site["server_name"], port=site.get("port", 80))
        assert health.status == 503, health.text
        assert f"{app['name']}: process {second} is down" in health.text, health.text
        stopped = json.loads(host.file(f"{STATE_BASE}/{app['name']}/stopped-2.json").content_string)
        assert stopped["graceful"] is True  # SIGTERM reached the program, which finished its beat
    finally:
        host.run(f"systemctl start {second}")
    wait_for(lambda: lab.request("/healthz", site["server_name"], port=site.get("port", 80)).status == 200, 30,
             "the health check answering 200 again")


def test_status_yml_shows_every_host_app_and_process_and_a_stopped_one(group):
    """playbooks/status.yml over the daemon and proxy hosts: one table, a row per host, app and process
    instance; an instance stopped by hand shows inactive, and its app's web column names it as down."""
    members = sorted((m for m in group if m.lab.name.startswith(("daemon-", "proxy-"))), key=lambda m: m.lab.name)
    lab, hosts = members[0].lab, [m.lab.name for m in members]
    (_, app), = [(s, a) for s, a in with_processes(lab)]
    _, _, stopped = instances(app)[1]
    members[0].host.run(f"systemctl stop {stopped}")
    try:
        shown = lab.playbook(playbook="playbooks/status.yml", limit=hosts)
    finally:
        members[0].host.run(f"systemctl start {stopped}")
    assert shown.returncode == 0, shown.summary()
    assert shown.host_stats(hosts[0])["changed"] == 0
    (table,) = [m for m in shown.messages() if m.startswith("host ")]
    rows = table.splitlines()[1:]
    for member in members:
        for _, other in with_processes(member.lab):
            release = member.host.check_output(
                f"readlink {member.lab.variables['wsgi_base_dir']}/apps/{other['name']}/current").split("/")[-1]
            mine = [row for row in rows if row.startswith(member.lab.name + " ") and f" {other['name']} " in row]
            assert len(mine) == 2 and all(release in row for row in mine), (member.lab.name, table)
    (row,) = [row for row in rows if row.startswith(hosts[0] + " ") and re.search(rf" {re.escape(stopped)} +inactive", row)]
    assert f"process {stopped} is down" in row, table
    running = [row for row in rows if "active (running)" in row]
    assert len(running) == 2 * len(members) - 1, table
