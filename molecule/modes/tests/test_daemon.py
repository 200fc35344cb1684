"""Daemon mode: each process group runs as its own unprivileged processes, reloaded by touching."""

from __future__ import annotations

import time
from collections import Counter

from conftest import apache_main_pid


def wsgi_processes(app: dict) -> int:
    """mod_wsgi's process count of a daemon app as the inventory gives it: wsgi_processes, or its older
    spelling, an integer processes (a mapping there is the app's other processes, not mod_wsgi's)."""
    older = app.get("processes")
    return app.get("wsgi_processes", older if isinstance(older, int) else 2)

# The hosts of this mode in the modes scenario (their group in molecule.yml), one per Debian version.
testinfra_hosts = ["daemon"]


def daemon_groups(lab) -> dict[str, dict]:
    """Every daemon group of the host (project apps' too), with the user its processes run as."""
    groups = {}
    for site, app in lab.apps("daemon", projects=True, redirected=True):
        user = app.get("user", f"wsgi-{app['name']}" if "project" in app else "wsgi")
        groups.setdefault(app.get("process_group", app["name"]), {"site": site, "app": app, "user": user})
    return groups


def daemon_processes(host) -> Counter:
    """(user, process name) of every mod_wsgi daemon process; the name is what ps shows as argv[0]."""
    lines = host.check_output("ps -eo user:32=,args=").splitlines()
    return Counter((line.split()[0], line.split()[1]) for line in lines if "(wsgi:" in line)


def test_exactly_the_configured_processes_per_group(host, lab):
    processes = daemon_processes(host)
    expected = Counter()
    for group, entry in daemon_groups(lab).items():
        expected[(entry["user"], f"(wsgi:{group})")] = wsgi_processes(entry["app"])
    # And the health check's own small group (roles/wsgi, wsgi_health_path), one process.
    expected[("wsgi", "(wsgi:wsgi-health)")] = 1
    assert {key: count for key, count in processes.items()} == dict(expected)


def test_directives(host, lab):
    conf = host.file("/etc/apache2/sites-enabled/wsgi-sites.conf").content_string
    for group, entry in daemon_groups(lab).items():
        app = entry["app"]
        line = next(line for line in conf.splitlines() if line.strip().startswith(f"WSGIDaemonProcess {group} "))
        assert f"processes={wsgi_processes(app)}" in line
        assert f"threads={app.get('threads', 15)}" in line
        assert f"display-name={app.get('display_name', '%{GROUP}')}" in line
        for option, value in app.get("daemon_options", {}).items():
            assert f"{option}={value}" in line
        assert f"WSGIProcessGroup {group}\n" in conf
    assert "WSGIRestrictEmbedded On" in host.file("/etc/apache2/conf-enabled/wsgi-global.conf").content_string


def test_apps_answer_from_their_daemon_group(lab):
    for site, app in lab.apps("daemon"):
        if not app.get("source"):
            continue
        report = lab.request(app["mount"] + "/x", site["server_name"], port=site.get("port", 80)).json()
        assert report["process_group"] == app.get("process_group", app["name"])
        assert report["user"] == app.get("user", "wsgi")
        assert report["script_name"] == app["mount"]
        assert report["path_info"] == "/x"


def wait_for_version(lab, site, app, version: str, seconds: float = 20) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        report = lab.request(app["mount"], site["server_name"], port=site.get("port", 80)).json()
        if report["version"] == version or time.monotonic() > deadline:
            return report
        time.sleep(0.2)


def test_a_changed_script_is_picked_up_without_restarting_apache(host, lab):
    site, app = next((s, a) for s, a in lab.apps("daemon") if a.get("source"))
    script = f"{lab.variables['wsgi_base_dir']}/wsgi-scripts/{app['name']}.wsgi"
    apache_pid = apache_main_pid(host)
    # Editing in place keeps owner and mode; the new modification time is what mod_wsgi notices.
    host.check_output(f"sed -i 's/^VERSION = \"1\"/VERSION = \"2\"/' {script}")
    try:
        assert wait_for_version(lab, site, app, "2")["version"] == "2"
        for _ in range(2 * wsgi_processes(app)):
            assert lab.request(app["mount"], site["server_name"], port=site.get("port", 80)).json()["version"] == "2"
        assert apache_main_pid(host) == apache_pid
    finally:
        host.check_output(f"sed -i 's/^VERSION = \"2\"/VERSION = \"1\"/' {script}")
    assert wait_for_version(lab, site, app, "1")["version"] == "1"
    assert apache_main_pid(host) == apache_pid


def group_pids(host, group: str) -> set[int]:
    return {int(pid) for pid in host.check_output(f"pgrep -f '^\\(wsgi:{group}\\)'").split()}


def test_touching_the_script_restarts_the_daemon_processes(host, lab):
    site, app = next((s, a) for s, a in lab.apps("daemon") if a.get("source"))
    script = f"{lab.variables['wsgi_base_dir']}/wsgi-scripts/{app['name']}.wsgi"
    group = app.get("process_group", app["name"])
    apache_pid = apache_main_pid(host)
    # This process has loaded the script: it must restart once it sees the new modification time.
    loaded = lab.request(app["mount"], site["server_name"], port=site.get("port", 80)).json()["pid"]
    assert loaded in group_pids(host, group)
    host.check_output(f"touch {script}")
    deadline = time.monotonic() + 20
    while loaded in group_pids(host, group) and time.monotonic() < deadline:
        lab.request(app["mount"], site["server_name"], port=site.get("port", 80))
        time.sleep(0.1)
    assert loaded not in group_pids(host, group)
    # Apache's parent replaces the process that exited; the group is whole again shortly.
    deadline = time.monotonic() + 20
    while len(group_pids(host, group)) != wsgi_processes(app) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(group_pids(host, group)) == wsgi_processes(app)
    assert apache_main_pid(host) == apache_pid
