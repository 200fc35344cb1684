"""Project apps (a Django project and a Flask app with a compiled dependency) in every mode, through HTTP.

Each host of the modes scenario has a site apps.example.com with project apps: the Flask app in embedded
mode; the Django project and the Flask app in daemon and in proxy mode. Their releases, venvs (built from
wheels the controller shipped: the containers reach no package index), environment, secrets, static files,
migrations and state directories are checked as a user would see them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ONE_BATCH, Load, Member, wait_for

testinfra_hosts = ["webservers"]

PYTHON = {"12": "3.11", "13": "3.13"}
STATE_BASE = "/var/lib/wsgi-apps"
ENV_DIR = "/etc/wsgi-apps"


# --------------------------------------------------------------------------- helpers


def projects(lab, mode: str | None = None) -> list[tuple[dict, dict]]:
    apps = lab.projects(mode)
    assert apps or mode is not None, "the scenario must have project apps on every host"
    return apps


def url(app: dict, path: str) -> str:
    """A path inside the app's mount ("/" is the mount's own directory: /catalog/, as Flask wants it)."""
    return app["mount"].rstrip("/") + path


def get_json(lab, site: dict, app: dict, path: str) -> dict:
    response = lab.request(url(app, path), site["server_name"], port=site.get("port", 80))
    assert response.status == 200, (app["name"], path, response.status, response.text[:500])
    return response.json()


def app_dir(lab, app: dict) -> str:
    return f"{lab.variables['wsgi_base_dir']}/apps/{app['name']}"


def run_user(app: dict) -> str:
    """Who the app runs as: its own user, or Apache's in embedded mode."""
    return "www-data" if app["mode"] == "embedded" else f"wsgi-{app['name']}"


def debian(host) -> str:
    return host.check_output(". /etc/os-release && echo $VERSION_ID")


def live_release(host, lab, app: dict) -> str:
    return host.check_output(f"readlink {app_dir(lab, app)}/current")


def secret_values(lab) -> list[str]:
    return [value for _, app in lab.projects() for value in app.get("secrets", {}).values()]


def with_project(lab, name: str, project: Path, **fields) -> list[dict]:
    """The host's wsgi_sites with app `name` built from another project directory (and other fields)."""
    sites = json.loads(json.dumps(lab.sites))
    for site in sites:
        for app in site["apps"]:
            if app["name"] == name:
                app["project"] = str(project)
                app.update(fields)
    return sites


def copy_project(lab, name: str, destination: Path) -> Path:
    (_, app), = [(s, a) for s, a in lab.projects() if a["name"] == name]
    shutil.copytree(app["project"], destination, ignore=shutil.ignore_patterns("__pycache__", "staticfiles"))
    return destination


# --------------------------------------------------------------------------- every app answers


def test_every_project_app_answers_with_its_own_venv_environment_and_secrets(host, lab):
    python = PYTHON[debian(host)]
    uid = {user: int(host.check_output(f"id -u {user}")) for user in {run_user(a) for _, a in projects(lab)}}
    for site, app in projects(lab):
        report = get_json(lab, site, app, "/environment")
        venvs = f"{app_dir(lab, app)}/venvs/"
        assert report["python"] == python, app["name"]
        assert report["uid"] == uid[run_user(app)], app["name"]
        assert report["STATE_DIRECTORY"] == f"{STATE_BASE}/{app['name']}", app["name"]
        for name, value in app.get("env", {}).items():
            assert report[name] == value, (app["name"], name)
        (secret,) = app["secrets"].values()
        assert report["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest(), app["name"]
        live_venv = host.check_output(f"realpath {app_dir(lab, app)}/current/.venv")
        assert live_venv.startswith(venvs), live_venv
        if "migrate" in app:  # the Django project
            assert report["django"].startswith("5.2"), report
            assert host.check_output(f"realpath {report['django_file']}").startswith(live_venv + "/"), report
        else:
            # The compiled extension of the wheel shipped for this Python, imported from the release's venv.
            assert re.search(rf"_speedups\.cpython-{python.replace('.', '')}-x86_64-linux-gnu\.so$",
                             report["speedups"]), report
            assert host.check_output(f"realpath {report['speedups']}").startswith(live_venv + "/"), report
            assert report["escaped"] == "&lt;b&gt;"
        if app["mode"] == "daemon":
            # mod_wsgi's python-home: the interpreter itself starts in the venv.
            assert host.check_output(f"realpath {report['prefix']}") == live_venv, report


def test_each_app_runs_the_release_its_current_link_names(host, lab):
    for site, app in projects(lab):
        release = live_release(host, lab, app)
        assert re.fullmatch(r"releases/[0-9a-f]{16}", release), release
        assert get_json(lab, site, app, "/")["release"] == f"{app_dir(lab, app)}/{release}"


def test_daemon_project_apps_have_a_group_and_a_user_of_their_own(host, lab):
    conf = host.file("/etc/apache2/sites-enabled/wsgi-sites.conf").content_string
    for _, app in projects(lab, "daemon"):
        line = next(line for line in conf.splitlines() if line.startswith(f"    WSGIDaemonProcess {app['name']} "))
        current = f"{app_dir(lab, app)}/current"
        for option in (f"user=wsgi-{app['name']}", f"group=wsgi-{app['name']}", f"python-home={current}/.venv",
                       f"python-path={current}", f"home={current}"):
            assert f" {option}" in line, (option, line)
        block = conf.split(f'<Files "{app["name"]}.wsgi">', 1)[1].split("</Files>", 1)[0]
        assert f"WSGIProcessGroup {app['name']}\n" in block
        assert "WSGIApplicationGroup %{GLOBAL}\n" in block


def test_proxy_project_apps_run_sandboxed_as_their_own_user(host, lab):
    for _, app in projects(lab, "proxy"):
        unit = f"headrace@{app['name']}.service"
        shown = host.check_output(f"systemctl show {unit} -p User -p StateDirectory -p ProtectSystem -p ActiveState")
        values = dict(line.split("=", 1) for line in shown.splitlines())
        assert values == {"User": f"wsgi-{app['name']}", "StateDirectory": f"wsgi-apps/{app['name']}",
                          "ProtectSystem": "strict", "ActiveState": "active"}, values
        pid = host.check_output(f"systemctl show -p MainPID --value {unit}")
        users = set(host.check_output(f"ps -o user:32= --ppid {pid} -p {pid}").split())
        assert users == {f"wsgi-{app['name']}"}, users


# --------------------------------------------------------------------------- static files


def test_static_files_are_served_by_apache_from_the_live_release(host, lab):
    for site, app in projects(lab):
        for static in app["static"]:
            directory = f"{app_dir(lab, app)}/current/{static['path']}"
            files = host.check_output(f"cd {directory} && find . -type f -name '*.css' -o -type f -name '*.txt'")
            assert files, (app["name"], directory)
            for relative in files.split():
                path = static["url"] + relative.removeprefix("./")
                response = lab.request(path, site["server_name"])
                assert response.status == 200, (path, response.status)
                assert response.body == host.file(f"{directory}/{relative}").content, path
                assert response.headers["Cache-Control"] == "public, max-age=31536000", path
                # Apache itself, not the app: no app header, and a file's ETag.
                assert "ETag" in response.headers, path


SOURCE_MARKERS = (b"import os", b"SECRET_KEY", b"def ", b"from django", b"from flask")


@pytest.mark.parametrize("path", [
    "{static}example.py",
    "{static}../__init__.py",
    "{static}..%2f__init__.py",
    "{static}../../manage.py",
    "{static}%2e%2e/%2e%2e/shop/settings.py",
    "/manage.py",
    "/shop/settings.py",
    "/.venv/bin/activate",
    "/current/manage.py",
    "/apps/{name}/current/manage.py",
])
def test_python_files_of_a_release_are_never_served(lab, path):
    for site, app in projects(lab):
        for static in app["static"]:
            target = path.format(static=static["url"], name=app["name"])
            response = lab.request(target, site["server_name"])
            assert response.status != 200 or not any(m in response.body for m in SOURCE_MARKERS), (target, response.text)
            if "example.py" in target and app["name"] == "catalog":
                # A .py file inside a static directory is refused by Apache.
                assert response.status == 403, (target, response.status)


# --------------------------------------------------------------------------- migrations and state


def test_migrations_ran_once_as_the_app_user_and_the_app_reads_their_table(host, lab):
    for site, app in projects(lab):
        if not app.get("migrate"):
            continue
        response = lab.request(url(app, "/notes"), site["server_name"])
        assert response.status == 200, response.text[:500]
        notes = re.findall(r"<li>(.*?)</li>", response.text)
        uid = host.check_output(f"id -u {run_user(app)}")
        assert notes == [f"migrated on {host.check_output('hostname')} as uid {uid}"], notes
        # The record that they ran is on the host (root's), where any controller finds it next time.
        record = host.file(f"{app_dir(lab, app)}/migrated/{live_release(host, lab, app).removeprefix('releases/')}")
        assert record.is_file and (record.user, record.mode) == ("root", 0o644), record.path
        assert record.content_string == f"{lab.name}\n"


def test_state_directories_are_the_apps_own(host, lab):
    users = {run_user(app) for _, app in projects(lab)} | {"nobody"}
    for _, app in projects(lab):
        state = host.file(f"{STATE_BASE}/{app['name']}")
        assert (state.user, state.group, state.mode) == (run_user(app), run_user(app), 0o700), app["name"]
        for other in users - {run_user(app)}:
            probe = f"{STATE_BASE}/{app['name']}/probe"
            assert host.run(f"runuser -u {other} -- touch {probe}").rc != 0, (other, app["name"])


def test_releases_are_read_only_for_the_app(host, lab):
    for _, app in projects(lab):
        release = f"{app_dir(lab, app)}/{live_release(host, lab, app)}"
        assert host.file(release).user == "root"
        assert host.run(f"find {release} ! -user root | head -1").stdout == ""
        assert host.run(f"runuser -u {run_user(app)} -- touch {release}/probe").rc != 0
        assert host.file(f"{release}/.wsgi-release").exists
        assert host.file(f"{release}/.venv").is_symlink
        assert host.run(f"find {release} -name .git -o -name '*.pyc' -o -name pyvenv.cfg | head -1").stdout == ""


# --------------------------------------------------------------------------- secrets


def test_environment_files_are_readable_by_the_app_only(host, lab):
    users = {run_user(app) for _, app in projects(lab)} | {"nobody", "headrace", "wsgi"}
    for _, app in projects(lab):
        path = f"{ENV_DIR}/{app['name']}.json"
        env = host.file(path)
        assert (env.user, env.group, env.mode) == ("root", run_user(app), 0o640), path
        assert runs_as(host, run_user(app), f"test -r {path}")
        for other in users - {run_user(app)}:
            if host.run(f"id -u {other}").rc == 0:
                assert not runs_as(host, other, f"cat {path}"), (other, path)


def runs_as(host, user: str, command: str) -> bool:
    return host.run(f"runuser -u {user} -- {command}").rc == 0


def test_each_apps_log_records_and_stderr_reach_the_journal_under_its_name_at_their_level(host, lab):
    """`journalctl -t <app>` shows a warning the app logged at priority warning and a line it wrote to stderr
    at err, in every mode; Apache's error log has neither."""
    token = f"journal-{time.time_ns()}"
    for site, app in projects(lab):
        response = lab.request(url(app, "/log"), site["server_name"], port=site.get("port", 80), method="POST",
                               headers={"Content-Type": "application/x-www-form-urlencoded"},
                               body=f"token={token}".encode())
        assert response.status == 200, (app["name"], response.status, response.text[:300])
    for _site, app in projects(lab):
        def at(level: str, name: str = app["name"]) -> str:
            return host.check_output(f"journalctl -t {name} -p {level}..{level} --no-pager -o cat | grep -F {token} || true")
        wait_for(lambda: at("warning") and at("err"), 10, f"{app['name']}'s records in the journal")
        assert re.fullmatch(rf"a warning of the \w+ {token}", at("warning")), at("warning")
        assert re.fullmatch(rf"a line on stderr of the \w+ {token}", at("err")), at("err")
    assert host.run(f"grep -rF {token} /var/log/apache2/").rc == 1


def test_secrets_are_in_no_process_list_and_no_file_others_can_read(host, lab):
    processes = host.check_output("ps -eo args")
    apache = host.check_output("cat /etc/apache2/sites-enabled/*.conf /etc/apache2/conf-enabled/*.conf")
    for value in secret_values(lab):
        assert value not in processes
        assert value not in apache
        # Every file under these trees that nobody (any other user) can read: none holds a secret.
        found = host.run(
            "runuser -u nobody -- grep -rlF -D skip --no-messages -e " + shlex_quote(value)
            + f" /etc {lab.variables['wsgi_base_dir']} /var/lib /var/log /opt /run /tmp")
        assert found.stdout == "", (value[:6], found.stdout)


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


# --------------------------------------------------------------------------- releases through the playbook
# Each playbook run costs a minute or more of the suite's budget: these run on one host per mode and
# cover both Debian releases between them (the checks above run on every host).

RELEASE_HOSTS = {"daemon-debian12", "proxy-debian13"}
# The load outlasts a playbook run even on a busy machine (it stops earlier when the test ends).
LOAD_LIMIT = 900
BUILD_FAILURE_HOST = "embedded-debian12"


@dataclass
class Released:
    """A release host of the test below: its Django project, the release live before, the new one."""

    member: Member
    site: dict
    app: dict
    directory: str
    before: str
    variant: Path
    notes: list[str]
    new: str = ""

    @property
    def name(self) -> str:
        return self.member.lab.name


def assert_processes_on(host, app: dict, version: str, stopped_version: str) -> None:
    """Every instance of the app's processes beats on version, and the one before stopped gracefully on
    stopped_version (SIGTERM reached the program, which finished its beat: test_processes.py)."""
    for process, spec in app.get("processes", {}).items():
        for number in range(1, spec.get("count", 1) + 1):
            def beat(number: int = number) -> dict | None:
                seen = json.loads(host.file(f"{STATE_BASE}/{app['name']}/heartbeat-{number}.json").content_string)
                return seen if seen["version"] == version and time.time() - seen["time"] < 5 else None
            wait_for(beat, 30, f"{app['name']} {process} {number} beating on version {version}")
            stopped = json.loads(host.file(f"{STATE_BASE}/{app['name']}/stopped-{number}.json").content_string)
            assert (stopped["graceful"], stopped["version"]) == (True, stopped_version), (app["name"], number)


def notes(lab, site: dict, app: dict) -> list[str]:
    """What the Django project's /notes view lists: rows its migrations wrote into its state directory."""
    response = lab.request(url(app, "/notes"), site["server_name"])
    assert response.status == 200, (lab.name, response.text[:500])
    found = re.findall(r"<li>(.*?)</li>", response.text)
    assert found, (lab.name, response.text[:500])
    return found


def wait_for_all(loads: list[Load], version: str, seconds: float = 30) -> None:
    """Wait until every load sees version, while the loads still run."""
    for load in loads:
        assert load.wait_for_version(version, seconds=seconds), (load.lab.name, load.results)
        assert time.monotonic() < load.deadline, f"the load of {load.lab.name} stopped before {version} went live"


def test_a_new_release_and_a_rollback_under_load_fail_no_request_and_rebuild_nothing(group, tmp_path):
    """The Django project with a changed version goes live under load (daemon: new daemon processes;
    proxy: headrace's graceful reload); playbooks/rollback.yml switches back under load, rebuilding nothing;
    the next site.yml (the inventory's code, which is the release now live) changes no release and, with
    wsgi_keep_releases 1, removes every other release but never the live one; then there is nothing to
    roll back to, and the rollback says so and changes nothing. Each step is one run over the release
    hosts (their apps differ: each gets its variables through host_vars), each host under its own load."""
    released = []
    for member in group:
        if member.lab.name not in RELEASE_HOSTS:
            continue
        (site, app), = [(s, a) for s, a in projects(member.lab) if "migrate" in a]  # the Django project
        variant = copy_project(member.lab, app["name"], tmp_path / member.lab.name / "shop")
        (variant / "shop" / "version.py").write_text('"""A new release."""\n\nVERSION = "2"\n')
        released.append(Released(member, site, app, app_dir(member.lab, app),
                                 live_release(member.host, member.lab, app), variant, notes(member.lab, site, app)))
    assert {each.name for each in released} == RELEASE_HOSTS
    lab, hosts = released[0].member.lab, sorted(RELEASE_HOSTS)
    new_code = {each.name: {"wsgi_sites": with_project(each.member.lab, each.app["name"], each.variant)}
                for each in released}
    rollback_app = {each.name: {"wsgi_rollback_app": each.app["name"]} for each in released}

    loads = [Load(each.member.lab, each.site, each.app, threads=4, limit=LOAD_LIMIT, path="/") for each in released]
    with contextlib.ExitStack() as stack:
        for load in loads:
            stack.enter_context(load)
        wait_for_all(loads, "1")
        result = lab.playbook(limit=hosts, host_vars=new_code, extra_vars=ONE_BATCH)
        assert result.returncode == 0, result.summary()
        wait_for_all(loads, "2", seconds=60)
    for each, load in zip(released, loads, strict=True):
        host = each.member.host
        assert load.failures == {}, (each.name, load.results)
        assert load.results["retried"] <= 3, (each.name, load.results)
        assert set(load.versions[-20:]) == {"2"}, each.name
        each.new = live_release(host, each.member.lab, each.app)
        assert each.new != each.before
        assert host.file(f"{each.directory}/previous").linked_to == f"{each.directory}/{each.before}"
        # Code only: the new release uses the venv the old one uses; nothing was installed.
        assert (host.file(f"{each.directory}/{each.new}/.venv").linked_to
                == host.file(f"{each.directory}/{each.before}/.venv").linked_to), each.name
        # The state directory (its SQLite database) is the one of the release before.
        assert notes(each.member.lab, each.site, each.app) == each.notes, each.name
        # Its processes stopped gracefully on the old release and run on the new one.
        assert_processes_on(host, each.app, "2", stopped_version="1")
    assert ("releases : Create the venv and install the requirements from the shipped wheels"
            not in result.ran_tasks())
    assert_no_secret(lab, result)

    listing = {each.name: (sorted(each.member.host.file(f"{each.directory}/releases").listdir()),
                           sorted(each.member.host.file(f"{each.directory}/venvs").listdir())) for each in released}
    loads = [Load(each.member.lab, each.site, each.app, threads=4, limit=LOAD_LIMIT, path="/") for each in released]
    with contextlib.ExitStack() as stack:
        for load in loads:
            stack.enter_context(load)
        wait_for_all(loads, "2")
        rollback = lab.playbook("-v", playbook="playbooks/rollback.yml", limit=hosts, host_vars=rollback_app,
                                extra_vars=ONE_BATCH)
        assert rollback.returncode == 0, rollback.summary()
        wait_for_all(loads, "1", seconds=60)
    assert not any("pip" in name or "Build" in name for name in rollback.ran_tasks()), rollback.ran_tasks()
    assert_no_secret(lab, rollback)
    for each, load in zip(released, loads, strict=True):
        host = each.member.host
        assert load.failures == {}, (each.name, load.results)
        assert load.results["retried"] <= 3, (each.name, load.results)
        assert live_release(host, each.member.lab, each.app) == each.before
        assert notes(each.member.lab, each.site, each.app) == each.notes, each.name
        assert_processes_on(host, each.app, "1", stopped_version="2")  # the rollback took them back too
        assert (sorted(host.file(f"{each.directory}/releases").listdir()),
                sorted(host.file(f"{each.directory}/venvs").listdir())) == listing[each.name]
        listed = [m for m in rollback.messages(each.name) if m.startswith(f"{each.app['name']} on {each.name}")]
        assert listed, rollback.summary()
        assert each.new.removeprefix("releases/") in listed[0] and each.before.removeprefix("releases/") in listed[0]

    back = lab.playbook(limit=hosts, extra_vars={**ONE_BATCH, "wsgi_keep_releases": 1})
    assert back.returncode == 0, back.summary()
    ran = set(back.ran_tasks())
    assert not {"releases : Unpack the code",
                "releases : Create the venv and install the requirements from the shipped wheels",
                "releases : Run the build commands"} & ran, ran
    for each in released:
        host, directory = each.member.host, each.directory
        assert live_release(host, each.member.lab, each.app) == each.before
        assert get_json(each.member.lab, each.site, each.app, "/")["version"] == "1"
        assert host.file(f"{directory}/releases").listdir() == [each.before.removeprefix("releases/")]
        assert host.file(f"{directory}/venvs").listdir() == [
            host.file(f"{directory}/{each.before}/.venv").linked_to.rsplit("/", 1)[1]]

    nothing = lab.playbook(playbook="playbooks/rollback.yml", limit=hosts, host_vars=rollback_app, extra_vars=ONE_BATCH)
    assert nothing.returncode != 0
    for each in released:
        assert any("has nothing to roll back to" in m and "Nothing was changed" in m
                   for m in nothing.messages(each.name)), nothing.summary()
        assert live_release(each.member.host, each.member.lab, each.app) == each.before


def test_a_release_whose_build_fails_never_goes_live_and_is_removed(host, lab, tmp_path):
    if lab.name != BUILD_FAILURE_HOST:
        pytest.skip("runs on " + BUILD_FAILURE_HOST)
    site, app = projects(lab)[0]
    before = live_release(host, lab, app)
    releases = set(host.file(f"{app_dir(lab, app)}/releases").listdir())
    variant = copy_project(lab, app["name"], tmp_path / app["name"])
    (variant / "BROKEN").write_text("a new release whose build fails\n")
    failing = ["echo building", "python -c 'import sys; sys.exit(7)'"]
    result = lab.playbook(extra_vars={"wsgi_sites": with_project(lab, app["name"], variant, build=failing)})
    assert result.returncode != 0
    messages = "\n".join(result.messages())
    assert f"app {app['name']}: release " in messages and "failed to build and was removed" in messages, messages
    assert "exit 7" in messages and "sys.exit(7)" in messages, messages
    assert live_release(host, lab, app) == before
    assert set(host.file(f"{app_dir(lab, app)}/releases").listdir()) == releases
    assert lab.request(url(app, "/"), site["server_name"]).status == 200
    assert_no_secret(lab, result)


def assert_no_secret(lab, result) -> None:
    """No secret value in a run's output (the json callback's: every task result, more than -v shows)."""
    for value in secret_values(lab):
        assert value not in result.stdout and value not in result.stderr, value[:6]


# --------------------------------------------------------------------------- one-off commands


def test_run_yml_runs_a_command_in_the_live_release_and_fails_with_it(group):
    """playbooks/run.yml on the daemon hosts (their Django project is `shop`): the first runs the command as
    the app's user in its live release with its environment; the secret it prints is starred and in no
    output; a failing command fails the play with its output and exit status."""
    members = sorted((member for member in group if member.lab.name.startswith("daemon-")),
                     key=lambda member: member.lab.name)
    lab, hosts = members[0].lab, [member.lab.name for member in members]
    first = hosts[0]  # the first in the inventory's order, as the play picks it
    (app,) = [a for _, a in projects(lab) if a["name"] == "shop"]
    release = members[0].host.check_output(f"readlink -f {app_dir(lab, app)}/current")
    ran = lab.playbook(playbook="playbooks/run.yml", limit=hosts,
                       extra_vars={"wsgi_run_app": "shop", "wsgi_run_command": "python manage.py whoami"})
    assert ran.returncode == 0, ran.summary()
    said = "\n".join(ran.messages(first))
    assert f"user wsgi-shop\nrelease {release}\ngreeting {app['env']['SHOP_GREETING']}\nsecret ********" in said, said
    # One host ran it: the other changed nothing and printed no output.
    assert ran.host_stats(hosts[1])["changed"] == 0 and "user wsgi-shop" not in "\n".join(ran.messages(hosts[1]))
    assert_no_secret(lab, ran)

    failed = lab.playbook(playbook="playbooks/run.yml", limit=hosts,
                          extra_vars={"wsgi_run_app": "shop", "wsgi_run_command": "python manage.py whoami --fail"})
    assert failed.returncode != 0
    said = "\n".join(failed.messages(first))
    assert "failing on purpose" in said and "python manage.py whoami --fail exited with 3" in said, said
    assert_no_secret(lab, failed)
