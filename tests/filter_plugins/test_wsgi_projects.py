"""Tests for the project-app fields of wsgi_sites: what a project app normalizes to, and every bad input.

Each bad input must stop the play on the controller with one line naming the site, the app, the field,
the value and what is allowed (issue "real applications", validation).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.wsgi_fields import (
    redis_default_port,
)
from wsgi_sites import (
    project_user,
    wsgi_database_password_values,
    wsgi_normalize_sites,
    wsgi_proxy_passes,
    wsgi_redis_password_values,
    wsgi_secret_values,
)

BASE = "/usr/local/www"
SITE0 = "wsgi_sites[0] (server_name 'shop.example.com')"
APP0 = f"{SITE0}, apps[0] (name 'shop')"


@pytest.fixture()
def playbook(tmp_path: Path) -> Path:
    """A controller layout: a playbook dir with a Django-like project and the role's hello app."""
    project = tmp_path / "playbook" / "apps" / "shop"
    (project / "shop").mkdir(parents=True)
    (project / "shop" / "wsgi.py").write_text("application = None\n")
    (project / "requirements.txt").write_text("Django>=5.2,<5.3\n")
    (project / "deploy").mkdir()
    (project / "deploy" / "shop.wsgi").write_text("application = None\n")
    (tmp_path / "hello.wsgi").write_text("application = None\n")
    return tmp_path / "playbook"


def normalize(playbook: Path, apps: list[dict[str, Any]], **site: Any) -> list[dict[str, Any]]:
    """Normalize one site with these apps the way the role calls the filter."""
    sites = [{"server_name": "shop.example.com", "apps": apps, **site}]
    return wsgi_normalize_sites(sites, BASE, str(playbook), str(playbook.parent / "hello.wsgi"))


def project(**fields: Any) -> dict[str, Any]:
    """A valid daemon project app, overridden by fields (None removes a field)."""
    result = {"name": "shop", "mount": "/", "mode": "daemon", "project": "apps/shop", "entry": "shop.wsgi:application",
              **fields}
    return {key: value for key, value in result.items() if value is not None}


def error(playbook: Path, apps: list[dict[str, Any]], **site: Any) -> str:
    """The filter's message for bad input (the test fails if there is none)."""
    with pytest.raises(AnsibleFilterError) as info:
        normalize(playbook, apps, **site)
    return str(info.value.message)


def assert_names(message: str, *fragments: str) -> None:
    """Every fragment (location, field, value, allowed) must appear in the message."""
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


# --------------------------------------------------------------------------- valid input


def test_daemon_project_app_is_normalized_with_its_host_paths(playbook: Path) -> None:
    app = normalize(playbook, [project(
        env={"DJANGO_SETTINGS_MODULE": "shop.settings", "WORKERS": 3},
        secrets={"SECRET_KEY": "s3cr3t"},
        static=[{"url": "/static/", "path": "staticfiles/"}],
        build=["python manage.py collectstatic --noinput"],
        migrate=["python manage.py migrate --noinput"],
    )])[0]["apps"][0]
    assert app["project"] == str(playbook / "apps" / "shop")
    assert app["source"] is None
    assert app["entry"] == {"module": "shop.wsgi", "callable": "application", "file": ""}
    assert app["requirements"] == "requirements.txt"
    assert app["env"] == {"DJANGO_SETTINGS_MODULE": "shop.settings", "WORKERS": "3"}
    # Only the names: the values come apart (wsgi_secret_values), so no loop over apps shows them.
    assert app["secrets"] == ["SECRET_KEY"]
    assert "s3cr3t" not in repr(app)
    assert app["user"] == "wsgi-shop"
    assert app["script"] == "/usr/local/www/wsgi-scripts/shop.wsgi"
    assert app["release"] == {
        "app_dir": "/usr/local/www/apps/shop",
        "current": "/usr/local/www/apps/shop/current",
        "state_dir": "/var/lib/wsgi-apps/shop",
        "state_name": "wsgi-apps/shop",
        "user": "wsgi-shop",
        "static": [{"url": "/static/", "path": "staticfiles",
                    "dir": "/usr/local/www/apps/shop/current/staticfiles/"}],
    }


def test_file_entry_and_no_requirements_file(playbook: Path) -> None:
    (playbook / "apps" / "shop" / "requirements.txt").unlink()
    app = normalize(playbook, [project(entry="deploy/shop.wsgi", mode="proxy")])[0]["apps"][0]
    assert app["entry"] == {"module": "", "callable": "application", "file": "deploy/shop.wsgi"}
    assert app["requirements"] is None
    assert app["release"]["user"] == "wsgi-shop"


def test_embedded_project_app_runs_as_apache(playbook: Path) -> None:
    app = normalize(playbook, [project(mode="embedded")])[0]["apps"][0]
    assert app["release"]["user"] is None


def test_long_app_names_get_a_short_own_user() -> None:
    user = project_user("a" * 40)
    assert len(user) <= 32 and user.startswith("wsgi-aaaa")
    assert user != project_user("a" * 39 + "b")


def test_static_urls_are_not_proxied(playbook: Path) -> None:
    site = normalize(playbook, [project(mode="proxy", static=[{"url": "/static/", "path": "staticfiles"}])])[0]
    passes = wsgi_proxy_passes(site, "/run/headrace", "/healthz")
    assert [(p["path"], p["backend"] is None) for p in passes] == [("/static/", True), ("/healthz", True),
                                                                   ("/", False)]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("value, problem", [
    ("apps/nothere", "not found"),
    ("", "invalid value"),
    (["apps/shop"], "invalid value"),
])
def test_project_must_be_a_directory(playbook: Path, value: Any, problem: str) -> None:
    assert_names(error(playbook, [project(project=value)]), APP0, "field 'project'", problem, "a directory")


def test_project_that_is_a_file(playbook: Path) -> None:
    assert_names(error(playbook, [project(project="apps/shop/requirements.txt")]), APP0, "field 'project'",
                 "not found")


@pytest.mark.parametrize("entry", ["shop.wsgi", "shop wsgi:app", "shop.wsgi:", "shop.wsgi:class", ":app",
                                   "1shop:app", "../x.py", "/abs/shop.wsgi", "shop/nothere.py", "deploy/"])
def test_entry_must_be_module_callable_or_a_file(playbook: Path, entry: str) -> None:
    assert_names(error(playbook, [project(entry=entry)]), APP0, "field 'entry'", "module:callable")


def test_entry_is_required_with_project(playbook: Path) -> None:
    assert_names(error(playbook, [project(entry=None)]), APP0, "field 'entry'", "required with project")


def test_source_and_project_together(playbook: Path) -> None:
    (playbook / "app.wsgi").write_text("application = None\n")
    assert_names(error(playbook, [project(source="app.wsgi")]), APP0, "field 'source'",
                 "given together with project", "not both")


@pytest.mark.parametrize("field, value", [
    ("entry", "shop.wsgi:application"), ("requirements", "requirements.txt"), ("env", {"A": "1"}),
    ("secrets", {"A": "1"}), ("static", [{"url": "/s/", "path": "s"}]), ("build", ["true"]),
    ("migrate", ["true"]),
])
def test_project_fields_without_project(playbook: Path, field: str, value: Any) -> None:
    (playbook / "app.wsgi").write_text("application = None\n")
    app = {"name": "shop", "mount": "/", "mode": "daemon", "source": "app.wsgi", field: value}
    assert_names(error(playbook, [app]), APP0, f"field '{field}'", "does not apply without project")


def test_callable_with_project(playbook: Path) -> None:
    assert_names(error(playbook, [project(callable="app")]), APP0, "field 'callable'", "entry")


@pytest.mark.parametrize("value", ["nothere.txt", "../requirements.txt", "/etc/passwd", 3])
def test_requirements_must_be_a_file_in_the_project(playbook: Path, value: Any) -> None:
    assert_names(error(playbook, [project(requirements=value)]), APP0, "field 'requirements'",
                 "a file inside the project")


@pytest.mark.parametrize("static, field, allowed", [
    ([{"url": "/static", "path": "staticfiles"}], "static.url", "ending with '/'"),
    ([{"url": "static/", "path": "staticfiles"}], "static.url", "starting and ending"),
    ([{"url": "/a/../b/", "path": "staticfiles"}], "static.url", "'..'"),
    ([{"url": "/static/", "path": "../outside"}], "static.path", "inside the release"),
    ([{"url": "/static/", "path": "/var/www"}], "static.path", "inside the release"),
    ([{"url": "/static/", "path": "a/../../b"}], "static.path", "inside the release"),
    ([{"url": "/static/", "path": "s"}, {"url": "/static/", "path": "t"}], "static.url", "each url once"),
    ([{"url": "/static/"}], "static.path", "inside the release"),
    ([{"url": "/static/", "path": "s", "mode": "x"}], "static", "a list of {url, path}"),
    ("staticfiles", "static", "a list of {url, path}"),
])
def test_static_entries(playbook: Path, static: Any, field: str, allowed: str) -> None:
    assert_names(error(playbook, [project(static=static)]), APP0, f"field '{field}'", allowed)


def test_static_url_on_a_mount_or_an_alias(playbook: Path) -> None:
    apps = [project(static=[{"url": "/api/", "path": "s"}, {"url": "/images/", "path": "i"}]),
            {"name": "api", "mount": "/api", "mode": "embedded"}]
    message = error(playbook, apps, static_aliases=["/images/"])
    assert_names(message, APP0, "field 'static.url'", "'/api/'", "clashes with the mount of app 'api'")
    assert_names(message, "'/images/'", "clashes with a static alias")


@pytest.mark.parametrize("name", ["1X", "A-B", "", "A B"])
def test_env_names_must_be_variable_names(playbook: Path, name: str) -> None:
    assert_names(error(playbook, [project(env={name: "v"})]), APP0, f"field 'env.{name}'",
                 "invalid environment variable name")


def test_env_names_the_roles_set_are_refused(playbook: Path) -> None:
    assert_names(error(playbook, [project(env={"STATE_DIRECTORY": "/tmp"})]), APP0, "field 'env.STATE_DIRECTORY'",
                 "is set by the roles")


def test_env_values_must_be_plain(playbook: Path) -> None:
    assert_names(error(playbook, [project(env={"A": ["x"]})]), APP0, "field 'env.A'", "a string or number")


def test_name_in_env_and_secrets(playbook: Path) -> None:
    assert_names(error(playbook, [project(env={"KEY": "a"}, secrets={"KEY": "b"})]), APP0, "field 'secrets.KEY'",
                 "is also in env")


@pytest.mark.parametrize("value", [12345, True, None, ["a"]])
def test_secret_must_be_a_string_and_is_never_shown(playbook: Path, value: Any) -> None:
    message = error(playbook, [project(secrets={"SECRET_KEY": value})])
    assert_names(message, APP0, "field 'secrets.SECRET_KEY'", "(hidden)", "a string (never shown)")
    assert "12345" not in message


def test_secret_values_never_appear_in_messages(playbook: Path) -> None:
    message = error(playbook, [project(secrets={"1BAD": "hunter2-value"})])
    assert "hunter2-value" not in message


@pytest.mark.parametrize("value", ["python manage.py migrate", [""], [3], [["a"]]])
def test_commands_must_be_lists_of_strings(playbook: Path, value: Any) -> None:
    for field in ("build", "migrate"):
        assert_names(error(playbook, [project(**{field: value})]), APP0, f"field '{field}'",
                     "a list of non-empty command lines")


def test_two_embedded_projects_in_one_apache(playbook: Path) -> None:
    apps = [project(mode="embedded"), project(name="blog", mount="/blog", mode="embedded")]
    message = error(playbook, apps)
    assert_names(message, f"{SITE0}, apps[1] (name 'blog')", "field 'mode'",
                 "a second embedded project app besides", "apps[0] (name 'shop')", "one embedded project app per host")


def test_two_embedded_projects_in_two_sites(playbook: Path) -> None:
    sites = [{"server_name": "shop.example.com", "apps": [project(mode="embedded")]},
             {"server_name": "blog.example.com", "apps": [project(name="blog", mode="embedded")]}]
    with pytest.raises(AnsibleFilterError) as info:
        wsgi_normalize_sites(sites, BASE, str(playbook), str(playbook.parent / "hello.wsgi"))
    assert_names(str(info.value.message), "wsgi_sites[1] (server_name 'blog.example.com')", "besides", APP0)


def test_project_daemon_user_and_group_are_its_own(playbook: Path) -> None:
    apps = [{"name": "hello", "mount": "/hello", "mode": "daemon", "user": "shared", "process_group": "pg"},
            project(user="shared", process_group="pg")]
    message = error(playbook, apps)
    assert_names(message, f"{SITE0}, apps[1] (name 'shop')", "field 'user'", "of this project app's own")
    assert_names(message, "field 'process_group'", "also the process group of")


def test_daemon_directive_of_a_project_app_uses_its_release(playbook: Path) -> None:
    from wsgi_sites import wsgi_daemon_directive_options

    app = normalize(playbook, [project()])[0]["apps"][0]
    assert wsgi_daemon_directive_options(app, "wsgi", "/usr/local/www/wsgi-scripts") == (
        "processes=2 threads=15 display-name=%{GROUP} user=wsgi-shop group=wsgi-shop"
        " python-home=/usr/local/www/apps/shop/current/.venv python-path=/usr/local/www/apps/shop/current"
        " home=/usr/local/www/apps/shop/current")


def test_secret_values_are_handed_apart_by_app_name() -> None:
    sites = [{"server_name": "a", "apps": [
        {"name": "shop", "project": "p", "secrets": {"SECRET_KEY": "k", "N": 1}},
        {"name": "hello", "source": "x.wsgi"},
        {"name": "blog", "project": "q"},
    ]}]
    assert wsgi_secret_values(sites) == {"shop": {"SECRET_KEY": "k", "N": "1"}}
    assert wsgi_secret_values(None) == {}


def test_given_database_passwords_are_handed_apart_by_app_name() -> None:
    """The model keeps only whether a password was given; the database host's play gets the value apart."""
    sites = [{"server_name": "a", "apps": [
        {"name": "shop", "project": "p", "database": {"name": "shop", "password": "s3cret"}},
        {"name": "blog", "project": "q", "database": {"name": "blog"}},
        {"name": "hello", "source": "x.wsgi"},
    ]}]
    assert wsgi_database_password_values(sites) == {"shop": "s3cret"}
    assert wsgi_database_password_values(None) == {}


# --------------------------------------------------------------------------- redis


def test_redis_gets_its_defaults_and_a_port_from_the_apps_name(playbook: Path) -> None:
    app = normalize(playbook, [project(redis={})])[0]["apps"][0]
    assert app["redis"] == {"maxmemory": "128mb", "policy": "noeviction", "port": redis_default_port("shop"),
                            "password_given": False}
    # The same name gives the same port on every run; another name (almost always) another, in the range.
    assert redis_default_port("shop") == redis_default_port("shop")
    assert all(16380 <= redis_default_port(name) < 17380 for name in ("shop", "blog", "a", "x" * 64))
    given = normalize(playbook, [project(redis={"maxmemory": "1GB", "policy": "allkeys-lru", "port": 7000,
                                                "password": "s3cret"})])[0]["apps"][0]["redis"]
    assert given == {"maxmemory": "1gb", "policy": "allkeys-lru", "port": 7000, "password_given": True}
    assert "s3cret" not in str(normalize(playbook, [project(redis={"password": "s3cret"})]))


@pytest.mark.parametrize(("redis", "fragments"), [
    ({"maxmemory": "0"}, ("field 'redis.maxmemory'", "a size such as 256mb")),
    ({"maxmemory": "lots"}, ("field 'redis.maxmemory'", "'lots'")),
    ({"maxmemory": True}, ("field 'redis.maxmemory'",)),
    ({"policy": "lru"}, ("field 'redis.policy'", "'lru'", "noeviction, allkeys-lru")),
    ({"port": 80}, ("field 'redis.port'", "an integer from 1024 to 65535")),
    ({"password": ""}, ("field 'redis.password'", "(hidden)", "a non-empty string")),
    ({"memory": "1mb"}, ("redis.memory", "maxmemory")),
    ("yes", ("field 'redis'", "a mapping {maxmemory")),
])
def test_bad_redis_settings_are_named(playbook: Path, redis: Any, fragments: tuple[str, ...]) -> None:
    assert_names(error(playbook, [project(redis=redis)]), APP0, *fragments)


def test_redis_url_is_the_roles_own(playbook: Path) -> None:
    for field in ("env", "secrets"):
        message = error(playbook, [project(redis={}, **{field: {"REDIS_URL": "redis://elsewhere"}})])
        assert_names(message, APP0, f"field '{field}.REDIS_URL'", "is set by redis", "a name other than REDIS_URL")
    # Without redis the app may set it itself (a Redis the roles do not manage).
    assert normalize(playbook, [project(env={"REDIS_URL": "redis://cache:6379/0"})])[0]["apps"][0]["redis"] is None


def test_redis_needs_a_project(playbook: Path) -> None:
    message = error(playbook, [{"name": "hello", "mount": "/", "mode": "daemon", "redis": {}}])
    assert_names(message, "field 'redis'", "only for an app with project")


def test_given_redis_passwords_are_handed_apart_by_app_name() -> None:
    sites = [{"server_name": "a", "apps": [
        {"name": "shop", "project": "p", "redis": {"password": "s3cret"}},
        {"name": "blog", "project": "q", "redis": {}},
        {"name": "hello", "source": "x.wsgi"},
    ]}]
    assert wsgi_redis_password_values(sites) == {"shop": "s3cret"}
    assert wsgi_redis_password_values([{"apps": "bad"}]) == {}


# --------------------------------------------------------------------------- processes


def test_process_types_get_their_defaults_in_every_mode(playbook: Path) -> None:
    for mode in ("daemon", "embedded", "proxy"):
        processes = {"worker": {"command": "celery -A shop worker"},
                     "beat-2": {"command": "python -m shop.clock", "count": "2", "stop_timeout": 60}}
        app = normalize(playbook, [project(mode=mode, processes=processes)])[0]["apps"][0]
        assert app["processes"] == {
            "worker": {"command": "celery -A shop worker", "argv": ["celery", "-A", "shop", "worker"], "count": 1,
                       "stop_timeout": 30, "group": None},
            "beat-2": {"command": "python -m shop.clock", "argv": ["python", "-m", "shop.clock"], "count": 2,
                       "stop_timeout": 60, "group": None}}


@pytest.mark.parametrize(("processes", "fragments"), [
    ({"Worker": {"command": "x"}}, ("field 'processes': invalid process name 'Worker'", "[a-z][a-z0-9-]*")),
    ({"1st": {"command": "x"}}, ("invalid process name '1st'",)),
    ({"worker": {"command": ""}}, ("field 'processes.worker.command'", "a command line on one line")),
    ({"worker": {"command": "celery 'unbalanced"}}, ("field 'processes.worker.command'", "quotes balanced")),
    ({"worker": {"command": "a\nb"}}, ("field 'processes.worker.command'",)),
    ({"worker": {}}, ("field 'processes.worker.command'",)),
    ({"worker": {"command": "x", "count": 0}}, ("field 'processes.worker.count'", "an integer from 1 to 16")),
    ({"worker": {"command": "x", "count": 17}}, ("field 'processes.worker.count'",)),
    ({"worker": {"command": "x", "stop_timeout": 0}}, ("field 'processes.worker.stop_timeout'", "from 1 to 3600")),
    ({"worker": {"command": "x", "stop_timeout": True}}, ("field 'processes.worker.stop_timeout'",)),
    ({"worker": {"command": "x", "cmd": "y"}}, ("field 'processes.worker.cmd'", "unknown process key",
                                                "one of command, count, stop_timeout, group")),
    ({"worker": {"command": "x", "group": "work ers"}}, ("field 'processes.worker.group'", "an inventory group")),
    ({"worker": {"command": "x", "group": ["workers"]}}, ("field 'processes.worker.group'",)),
    ({"worker": "celery worker"}, ("field 'processes.worker'", "a mapping of process types")),
    (["worker"], ("field 'processes'", "a mapping of process types")),
])
def test_bad_process_types_are_named(playbook: Path, processes: Any, fragments: tuple[str, ...]) -> None:
    assert_names(error(playbook, [project(processes=processes)]), APP0, *fragments)


# --------------------------------------------------------------------------- schedule


def test_jobs_get_their_defaults(playbook: Path) -> None:
    schedule = [{"name": "clearsessions", "command": "python manage.py clearsessions", "on_calendar": "*-*-* 03:00:00"},
                {"name": "report", "command": "python manage.py report --all", "on_calendar": "hourly", "timeout": 60}]
    app = normalize(playbook, [project(database={"name": "shop"}, schedule=schedule)])[0]["apps"][0]
    assert app["schedule"] == [
        {"name": "clearsessions", "command": "python manage.py clearsessions",
         "argv": ["python", "manage.py", "clearsessions"], "on_calendar": "*-*-* 03:00:00", "timeout": 3600},
        {"name": "report", "command": "python manage.py report --all",
         "argv": ["python", "manage.py", "report", "--all"], "on_calendar": "hourly", "timeout": 60}]


JOB = {"name": "clean", "command": "python manage.py clean", "on_calendar": "daily"}


@pytest.mark.parametrize(("schedule", "fragments"), [
    ([{**JOB, "name": "Clean"}], ("field 'schedule[0].name'", "[a-z][a-z0-9-]*")),
    ([JOB, JOB], ("field 'schedule[1].name'", "duplicate", "each job name once")),
    ([{**JOB, "command": " "}], ("field 'schedule[0].command'", "a command line on one line")),
    ([{**JOB, "timeout": 0}], ("field 'schedule[0].timeout'", "from 1 to 86400")),
    ([{**JOB, "every": "day"}], ("field 'schedule[0].every'", "unknown job key", "one of name, command, on_calendar")),
    ([{**JOB, "on_calendar": ""}], ("field 'schedule[0].on_calendar'", "a systemd OnCalendar specification")),
    ({"clean": JOB}, ("field 'schedule'", "a list of jobs")),
])
def test_bad_jobs_are_named(playbook: Path, schedule: Any, fragments: tuple[str, ...]) -> None:
    assert_names(error(playbook, [project(database={"name": "shop"}, schedule=schedule)]), APP0, *fragments)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="the controller cannot ask systemd here")
def test_a_calendar_systemd_rejects_is_named_with_what_it_said(playbook: Path) -> None:
    message = error(playbook, [project(database={"name": "shop"}, schedule=[{**JOB, "on_calendar": "every tuesday"}])])
    assert_names(message, APP0, "field 'schedule[0].on_calendar'", "'every tuesday'",
                 "Failed to parse calendar specification")


def test_a_schedule_needs_the_apps_database_and_a_project(playbook: Path) -> None:
    assert_names(error(playbook, [project(schedule=[JOB])]), APP0, "field 'schedule'", "a schedule needs a database")
    assert_names(error(playbook, [{"name": "s", "mount": "/", "mode": "daemon", "schedule": [JOB]}]),
                 "field 'schedule'", "field does not apply without project")
