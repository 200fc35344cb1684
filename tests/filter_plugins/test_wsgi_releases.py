"""Tests for the releases filters: build environment, redaction, migration plan, what cleanup removes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from wsgi_releases import (
    FilterModule,
    wsgi_build_environment,
    wsgi_job_units,
    wsgi_migration_plan,
    wsgi_migration_records,
    wsgi_process_args,
    wsgi_process_units,
    wsgi_redact,
    wsgi_release_directories,
    wsgi_release_env_files,
    wsgi_release_listing,
    wsgi_release_listing_command,
    wsgi_release_restarts,
    wsgi_release_switch_args,
    wsgi_releases_to_remove,
    wsgi_run_target,
    wsgi_unused_venvs,
    wsgi_unwatched_instances,
)

APP = {"name": "shop", "env": {"DJANGO_SETTINGS_MODULE": "shop.settings"}, "secrets": ["SECRET_KEY"],
       "release": {"state_dir": "/var/lib/wsgi-apps/shop"}}


def test_build_environment_is_the_apps_with_its_venv_active() -> None:
    env = wsgi_build_environment(APP, "/srv/apps/shop/releases/abc", {"SECRET_KEY": "k3y"})
    assert env == {
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "SECRET_KEY": "k3y",
        "STATE_DIRECTORY": "/var/lib/wsgi-apps/shop",
        "VIRTUAL_ENV": "/srv/apps/shop/releases/abc/.venv",
        "PATH": "/srv/apps/shop/releases/abc/.venv/bin:/usr/local/bin:/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def test_build_environment_needs_a_project_app() -> None:
    with pytest.raises(AnsibleFilterError, match="not a normalized project app"):
        wsgi_build_environment({"name": "x", "release": None}, "/r")


def test_redact_replaces_every_secret_longest_first() -> None:
    text = "key=abc123 and abc and abc123"
    assert wsgi_redact(text, {"A": "abc", "B": "abc123", "EMPTY": ""}) == "key=******** and ******** and ********"
    assert wsgi_redact(None, {}) == ""


def test_redact_keeps_the_database_names_but_not_the_password() -> None:
    secrets = {"PGDATABASE": "board", "PGUSER": "board", "PGPORT": "5432", "PGPASSWORD": "pw-0123456789",
               "DATABASE_URL": "postgresql://board:pw-0123456789@db:5432/board"}
    text = "/usr/local/www/apps/board: password pw-0123456789 url postgresql://board:pw-0123456789@db:5432/board"
    assert wsgi_redact(text, secrets) == "/usr/local/www/apps/board: password ******** url ********"


def built(release: str, migrate: bool = True, migrated: bool = False) -> dict:
    return {"release": release, "migrate": migrate, "migrated": migrated, "marker": f"/apps/x/migrated/{release}"}


def test_migration_plan_takes_the_first_host_per_release() -> None:
    hostvars = {
        "web1": {"releases_built": {"shop": built("r12"), "blog": built("b1", migrate=False)}},
        "web2": {"releases_built": {"shop": built("r12")}},
        "web3": {"releases_built": {"shop": built("r13")}},
        "web4": {},
    }
    plan = wsgi_migration_plan(["web1", "web2", "web3", "web4"], hostvars)
    assert [(p["host"], p["app"], p["release"]) for p in plan] == [("web1", "shop", "r12"), ("web3", "shop", "r13")]
    assert plan[0]["marker"] == "/apps/x/migrated/r12"
    later = wsgi_migration_plan(["web2", "web3"], hostvars)
    assert [(p["host"], p["release"]) for p in later] == [("web2", "r12"), ("web3", "r13")]


def test_a_release_any_host_records_as_migrated_is_not_migrated_again() -> None:
    """web1 ran them in an earlier run (or batch): a new host web2 with the same release does not."""
    hostvars = {
        "web1": {"releases_built": {"shop": built("r12", migrated=True)}},
        "web2": {"releases_built": {"shop": built("r12")}},
        "web3": {"releases_built": {"shop": built("r13")}},
    }
    plan = wsgi_migration_plan(["web2", "web1", "web3"], hostvars)
    assert [(p["host"], p["release"]) for p in plan] == [("web3", "r13")]


def test_every_host_records_the_migrations_that_ran_on_one_host_of_the_play() -> None:
    """So that a later run building on web2 alone (web1 up to date, not in its play) does not run them again."""
    hostvars = {
        "web1": {"releases_built": {"shop": built("r12"), "blog": built("b1", migrate=False)}},
        "web2": {"releases_built": {"shop": built("r12"), "news": built("n1")}},
        "web3": {"releases_built": {"news": built("n1", migrated=True)}},
    }
    hosts = ["web1", "web2", "web3"]
    assert wsgi_migration_records(hosts, hostvars, "web2") == [
        {"path": "/apps/x/migrated/n1", "content": "web3\n", "owner": "root", "group": "root", "mode": "0644"},
        {"path": "/apps/x/migrated/r12", "content": "web1\n", "owner": "root", "group": "root", "mode": "0644"}]
    # web1 ran shop's: its record is the one migrate.yml wrote there, the same content.
    assert [entry["content"] for entry in wsgi_migration_records(hosts, hostvars, "web1")] == ["web1\n"]
    assert wsgi_migration_records(hosts, hostvars, "web3") == []


def test_a_fresh_fleet_migrates_whatever_an_earlier_fleet_did() -> None:
    """Nothing on the controller decides: new hosts with no record get their migrations."""
    hostvars = {"web1": {"releases_built": {"shop": built("r12")}}}
    assert [p["host"] for p in wsgi_migration_plan(["web1"], hostvars)] == ["web1"]


def found(*entries: tuple[str, int]) -> list[dict]:
    """find's files list: path and mtime."""
    return [{"path": path, "mtime": mtime} for path, mtime in entries]


def test_releases_beyond_keep_go_but_never_the_live_one() -> None:
    releases = found(("/r/a", 1), ("/r/b", 2), ("/r/c", 3), ("/r/d", 4))
    assert wsgi_releases_to_remove(releases, 3, "/r/d") == ["/r/a"]
    assert wsgi_releases_to_remove(releases, 2, "/r/a") == ["/r/c", "/r/b"]
    assert wsgi_releases_to_remove(releases, 1, "/r/b") == ["/r/d", "/r/c", "/r/a"]
    assert wsgi_releases_to_remove(releases, "5", "") == []


@pytest.mark.parametrize("keep", [0, -1, "x", None, True])
def test_keep_must_be_at_least_one(keep) -> None:
    with pytest.raises(AnsibleFilterError, match="wsgi_keep_releases"):
        wsgi_releases_to_remove(found(("/r/a", 1)), keep, "/r/a")


def test_unused_venvs() -> None:
    venvs = found(("/v/one", 1), ("/v/two", 2), ("/v/two.wheels", 3))
    assert wsgi_unused_venvs(venvs, ["/v/two/", ""]) == ["/v/one", "/v/two.wheels"]


def project(name: str, user: str | None, migrate: bool) -> dict:
    return {"name": name, "migrate": ["python manage.py migrate"] if migrate else [],
            "release": {"app_dir": f"/srv/www/apps/{name}", "state_dir": f"/var/lib/wsgi-apps/{name}",
                        "user": user}}


def test_the_directories_of_the_apps_parents_first_state_directories_last() -> None:
    apps = [project("shop", "shop", True), project("blog", None, False)]
    entries = wsgi_release_directories(apps, "www-data")
    assert [(e["path"], e["owner"], e["group"], e["mode"]) for e in entries] == [
        ("/srv/www", "root", "root", "0755"),  # as the wsgi role's layout makes it, for a host without it
        ("/srv/www/apps", "root", "root", "0755"),
        ("/var/lib/wsgi-apps", "root", "root", "0755"),
        ("/srv/www/apps/shop", "root", "root", "0755"),
        ("/srv/www/apps/shop/releases", "root", "root", "0755"),
        ("/srv/www/apps/shop/venvs", "root", "root", "0755"),
        ("/srv/www/apps/shop/migrated", "root", "root", "0755"),  # only an app with migrations has a record
        ("/srv/www/apps/blog", "root", "root", "0755"),
        ("/srv/www/apps/blog/releases", "root", "root", "0755"),
        ("/srv/www/apps/blog/venvs", "root", "root", "0755"),
        ("/var/lib/wsgi-apps/shop", "shop", "shop", "0700"),
        ("/var/lib/wsgi-apps/blog", "www-data", "www-data", "0700"),  # embedded: Apache's user
    ]
    assert all(e["state"] == "directory" for e in entries)
    assert wsgi_release_directories([], "www-data") == []


def test_a_dry_run_leaves_out_the_state_directories_of_users_not_made_yet() -> None:
    apps = [project("shop", "shop", False), project("blog", None, False)]
    paths = [e["path"] for e in wsgi_release_directories(apps, "www-data", ["root", "www-data"])]
    assert "/var/lib/wsgi-apps/shop" not in paths and "/var/lib/wsgi-apps/blog" in paths
    assert "/srv/www/apps/shop/releases" in paths


def make_app(app: Path) -> None:
    """releases a (oldest), b, c (newest), each linking its venv as the releases role does; c is live; venvs
    one (used by a), two (used by b and c), three (used by none) and a wheelhouse left by a failed build."""
    for name in ("one", "two", "three", "two.wheels"):
        (app / "venvs" / name).mkdir(parents=True)
    for mtime, (name, venv) in enumerate([("a", "one"), ("b", "two"), ("c", "two")], start=1):
        release = app / "releases" / name
        release.mkdir(parents=True)
        (release / ".venv").symlink_to(f"../../venvs/{venv}")
        os.utime(release, (mtime * 1000, mtime * 1000))
    (app / "current").symlink_to("releases/c")


def listing(app: Path) -> dict:
    argv = wsgi_release_listing_command(app, app / "current")
    return wsgi_release_listing(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


@pytest.mark.skipif(not shutil.which("find") or not shutil.which("readlink"), reason="needs GNU find and readlink")
def test_the_listing_gives_the_cleanup_what_it_removes(tmp_path: Path) -> None:
    app = tmp_path / "my app"
    make_app(app)
    found = listing(app)
    assert found["live"] == str(app / "releases" / "c")
    assert sorted((r["path"], r["mtime"], r["venv"]) for r in found["releases"]) == [
        (str(app / "releases" / "a"), 1000.0, str(app / "venvs" / "one")),
        (str(app / "releases" / "b"), 2000.0, str(app / "venvs" / "two")),
        (str(app / "releases" / "c"), 3000.0, str(app / "venvs" / "two"))]
    # As cleanup_app.yml uses it, keeping two releases.
    old = wsgi_releases_to_remove(found["releases"], 2, found["live"])
    assert old == [str(app / "releases" / "a")]
    kept_venvs = [r["venv"] for r in found["releases"] if r["path"] not in old]
    assert sorted(wsgi_unused_venvs(found["venvs"], kept_venvs)) == sorted(
        str(app / "venvs" / name) for name in ("one", "three", "two.wheels"))


@pytest.mark.skipif(not shutil.which("find"), reason="needs GNU find")
def test_an_app_without_releases_lists_nothing(tmp_path: Path) -> None:
    assert listing(tmp_path / "new") == {"live": "", "releases": [], "venvs": []}
    (tmp_path / "new" / "releases" / "x").mkdir(parents=True)  # a release whose build failed before its link
    assert listing(tmp_path / "new")["releases"][0]["venv"] == ""


def test_the_paths_are_arguments_not_script() -> None:
    argv = wsgi_release_listing_command("/srv/$(reboot)", "/srv/$(reboot)/current")
    assert argv[-2:] == ["/srv/$(reboot)", "/srv/$(reboot)/current"]
    assert "reboot" not in argv[2]


def test_filters_are_registered() -> None:
    assert set(FilterModule().filters()) == {"wsgi_build_environment", "wsgi_redact", "wsgi_migration_plan",
                                             "wsgi_releases_to_remove", "wsgi_unused_venvs",
                                             "wsgi_release_listing_command", "wsgi_release_listing",
                                             "wsgi_release_directories", "wsgi_release_env_files",
                                             "wsgi_release_switch_args", "wsgi_release_restarts",
                                             "wsgi_process_units", "wsgi_process_args", "wsgi_run_target",
                                             "wsgi_job_units", "wsgi_unwatched_instances",
                                             "wsgi_migration_records"}


def test_the_instances_no_health_check_watches_are_those_of_apps_without_a_loader() -> None:
    watched = {"name": "shop", "script": "/srv/wsgi-scripts/shop.wsgi", "processes": {"worker": {"count": 2}}}
    alone = {"name": "blog", "script": None, "processes": {"reports": {"count": 2}, "clock": {"count": 1}}}
    assert wsgi_unwatched_instances([watched, alone]) == [
        "wsgi-blog-reports@1.service", "wsgi-blog-reports@2.service", "wsgi-blog-clock@1.service"]
    assert wsgi_unwatched_instances([watched]) == []


LIVE_APPS = [
    {"name": "shop", "env": {"DEBUG": "0", "ZONE": "é"}, "release": {"user": "shop", "app_dir": "/srv/apps/shop"},
     "script": "/srv/wsgi-scripts/shop.wsgi"},
    {"name": "blog", "env": {}, "release": {"user": None, "app_dir": "/srv/apps/blog"},
     "script": "/srv/wsgi-scripts/blog.wsgi"},
]


def test_env_files_hold_env_and_secrets_as_to_nice_json_readable_by_the_apps_group_only() -> None:
    from ansible.plugins.filter.core import to_nice_json

    entries = wsgi_release_env_files(LIVE_APPS, "/etc/env", {"shop": {"SECRET_KEY": "s3"}}, "www-data")
    values = {"DEBUG": "0", "ZONE": "é", "SECRET_KEY": "s3"}
    assert entries == [
        {"path": "/etc/env/shop.json", "content": to_nice_json(values) + "\n", "owner": "root", "group": "shop",
         "mode": "0640", "diff": False},
        {"path": "/etc/env/blog.json", "content": "{}\n", "owner": "root", "group": "www-data", "mode": "0640",
         "diff": False},
    ]


def test_the_switch_takes_the_apps_this_run_built() -> None:
    assert wsgi_release_switch_args(LIVE_APPS, {"shop": {"release": "abc123"}}) == ["shop", "/srv/apps/shop", "abc123"]
    assert wsgi_release_switch_args(LIVE_APPS, {}) == []


def test_the_apps_to_restart_are_those_whose_env_loader_or_release_changed() -> None:
    envs = {"results": [{"path": "/etc/env", "changed": True}, {"path": "/etc/env/blog.json", "changed": True},
                        {"path": "/etc/env/shop.json", "changed": False}]}
    loaders = {"results": [{"path": "/srv/wsgi-scripts/shop.wsgi", "changed": False}]}
    assert wsgi_release_restarts(LIVE_APPS, "/etc/env", envs, loaders, []) == ["blog"]
    assert wsgi_release_restarts(LIVE_APPS, "/etc/env", {}, loaders, ["shop"]) == ["shop"]
    loaders["results"][0]["changed"] = True
    assert wsgi_release_restarts(LIVE_APPS, "/etc/env", envs, loaders, ["shop"]) == ["shop", "blog"]


PROCESS_APPS = [
    {"name": "shop", "release": {"user": "wsgi-shop", "current": "/a/shop/current", "state_dir": "/var/lib/wsgi-apps/shop"},
     "processes": {"worker": {"argv": ["celery", "-A", "shop", "worker", "--queues=100%", 'say "hi" $HOME\\'],
                              "count": 2, "stop_timeout": 60}}},
    {"name": "blog", "release": {"user": None, "current": "/a/blog/current", "state_dir": "/var/lib/wsgi-apps/blog"},
     "processes": {}},
    {"name": "wiki", "release": {"user": None, "current": "/a/wiki/current", "state_dir": "/var/lib/wsgi-apps/wiki"},
     "processes": {"clock": {"argv": ["python", "-m", "wiki.clock"], "count": 1, "stop_timeout": 30}}},
]


def test_each_process_type_is_a_template_unit_run_through_app_exec() -> None:
    units = wsgi_process_units(PROCESS_APPS, "/etc/systemd/system", "/etc/wsgi-apps", "www-data", "www-data")
    assert [(u["unit"], u["path"], u["count"], u["stop_timeout"], u["user"], u["group"]) for u in units] == [
        ("wsgi-shop-worker@.service", "/etc/systemd/system/wsgi-shop-worker@.service", 2, 60, "wsgi-shop", "wsgi-shop"),
        ("wsgi-wiki-clock@.service", "/etc/systemd/system/wsgi-wiki-clock@.service", 1, 30, "www-data", "www-data"),
    ]
    # Each word quoted the way systemd reads ExecStart= back: quotes and backslashes escaped, % and $ doubled.
    assert units[0]["exec_args"] == (
        '"/etc/wsgi-apps/shop.json" "/a/shop/current" "/var/lib/wsgi-apps/shop" "celery" "-A" "shop" "worker" '
        '"--queues=100%%" "say \\"hi\\" $$HOME\\\\"')
    assert units[0]["run_dir"] == "/run/wsgi-hosting/processes"


def test_the_process_script_restarts_the_apps_restarted_and_the_units_changed() -> None:
    units = wsgi_process_units(PROCESS_APPS, "/etc/systemd/system", "/etc/wsgi-apps", "www-data", "www-data")
    nothing = {"results": [{"path": "/x", "changed": True}]}
    assert wsgi_process_args(units, [], nothing) == [
        "no-reload", "wsgi-shop-worker@.service", "2", "no", "wsgi-wiki-clock@.service", "1", "no", "--"]
    assert wsgi_process_args(units, ["shop"], nothing)[:4] == ["no-reload", "wsgi-shop-worker@.service", "2", "yes"]
    written = {"results": [{"path": "/etc/systemd/system/wsgi-wiki-clock@.service", "changed": True}]}
    assert wsgi_process_args(units, [], written) == [
        "reload", "wsgi-shop-worker@.service", "2", "no", "wsgi-wiki-clock@.service", "1", "yes", "--"]
    assert wsgi_process_args([], ["shop"], None) == ["no-reload", "--"]


JOB_APPS = [{"name": "shop", "release": {"user": "wsgi-shop", "current": "/a/shop/current",
                                         "state_dir": "/var/lib/wsgi-apps/shop"},
             "schedule": [{"name": "clean", "argv": ["python", "manage.py", "clean"], "on_calendar": "*-*-* 03:00:00",
                           "timeout": 600}]}]


def test_each_job_is_a_timer_and_a_service_run_through_job_run() -> None:
    (job,) = wsgi_job_units(JOB_APPS, "/etc/systemd/system", "/etc/wsgi-apps", "www-data", "www-data")
    assert {key: job[key] for key in ("timer", "service", "timer_path", "on_calendar", "timeout", "user")} == {
        "timer": "wsgi-shop-job-clean.timer", "service": "wsgi-shop-job-clean.service",
        "timer_path": "/etc/systemd/system/wsgi-shop-job-clean.timer", "on_calendar": "*-*-* 03:00:00",
        "timeout": 600, "user": "wsgi-shop"}
    assert job["exec_args"] == ('"shop" "clean" "*-*-* 03:00:00" "600" "/etc/wsgi-apps/shop.json" "/a/shop/current" '
                                '"/var/lib/wsgi-apps/shop" "python" "manage.py" "clean"')
    # Its timer follows the processes' arguments; a changed service file reloads systemd.
    written = {"results": [{"path": "/etc/systemd/system/wsgi-shop-job-clean.service", "changed": True}]}
    assert wsgi_process_args([], [], written, [job]) == ["reload", "--", "wsgi-shop-job-clean.timer"]


def model(*apps: dict) -> dict:
    return {"wsgi_model": {"sites": [{"apps": [{"name": "hello", "project": None}, *apps]}]}}


SHOP = {"name": "shop", "project": "/p/shop", "release": {"user": "wsgi-shop"}}
RUN_HOSTVARS = {"web1": model({"name": "blog", "project": "/p/blog"}), "web2": model(SHOP), "web3": model(SHOP)}


def test_the_command_runs_on_the_first_host_with_the_app_or_the_one_named() -> None:
    hosts = ["web1", "web2", "web3"]
    target = wsgi_run_target(hosts, RUN_HOSTVARS, "shop", "", 'python manage.py shell -c "print(1)"')
    assert target == {"host": "web2", "app": SHOP,
                      "argv": ["python", "manage.py", "shell", "-c", "print(1)"]}
    assert wsgi_run_target(hosts, RUN_HOSTVARS, "shop", "web3", "true")["host"] == "web3"


@pytest.mark.parametrize(("app", "host", "command", "message"), [
    ("wiki", "", "true", "wsgi_run_app is 'wiki'; allowed: the name of a project app of the web servers (blog, shop)"),
    ("", "", "true", "wsgi_run_app is ''"),
    ("shop", "web1", "true", "wsgi_run_host is 'web1'; allowed: a web server with the app shop (web2, web3)"),
    ("shop", "", "", "wsgi_run_command is ''; allowed: a command line on one line"),
    ("shop", "", "echo 'open", "wsgi_run_command is \"echo 'open\""),
    ("shop", "", "a\nb", "wsgi_run_command is 'a\\nb'"),
])
def test_a_bad_app_host_or_command_is_named(app: str, host: str, command: str, message: str) -> None:
    with pytest.raises(AnsibleFilterError) as info:
        wsgi_run_target(["web1", "web2", "web3"], RUN_HOSTVARS, app, host, command)
    assert message in str(info.value.message)
