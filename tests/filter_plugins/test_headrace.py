"""Tests for the headrace filter plugin: the files of the instances, and what the handlers restart or reload.

The registered results below have the shape Ansible gives the role's tasks: the wsgi_files run of the
entries headrace_files builds (one result per entry, in order, with its path, state and changed), the task
that starts the instances (its output names the units it enabled or started), and a plain task's (a
"changed" of its own).
"""

from __future__ import annotations

from typing import Any

import headrace
import pytest
from ansible.errors import AnsibleFilterError
from headrace import FilterModule, headrace_changes, headrace_files, headrace_gone

CONFIG_DIR = "/etc/headrace"
SYSTEMD_DIR = "/etc/systemd/system"
APPS = [{"name": "one", "listen": ""}, {"name": "two", "listen": "127.0.0.1:9001"}, {"name": "three", "listen": ""}]
NAMES = ["one", "two", "three"]
UNITS = {"headrace@.service": "[Service]\n", "headrace@.socket": "[Socket]\n"}


def contents(apps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rendered texts for each app, the way the role's render task gives them."""
    return {app["name"]: {"config": f"# {app['name']}\n",
                          "listen": f"# listen {app['name']}\n" if app.get("listen") else None,
                          "project": f"# project {app['name']}\n" if app.get("release") else None}
            for app in apps}


def files(apps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return headrace_files(apps, contents(apps), UNITS, CONFIG_DIR, SYSTEMD_DIR, "headrace")


# --------------------------------------------------------------------------- the paths of the results


def unit(name: str) -> str:
    return f"{SYSTEMD_DIR}/{name}"


def config(name: str) -> str:
    return f"{CONFIG_DIR}/{name}.toml"


def listen(name: str) -> str:
    """The listen address of an app that has one of its own."""
    return f"{SYSTEMD_DIR}/headrace@{name}.socket.d/listen.conf"


def socket_dropins(name: str) -> str:
    """The socket drop-in directory, removed for an app without a listen address of its own."""
    return f"{SYSTEMD_DIR}/headrace@{name}.socket.d"


def project(name: str) -> str:
    return f"{SYSTEMD_DIR}/headrace@{name}.service.d/project.conf"


def service_dropins(name: str) -> str:
    return f"{SYSTEMD_DIR}/headrace@{name}.service.d"


def written(*changed: str, apps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The registered result of the wsgi_files run over the entries of the apps (default APPS), in which
    the paths named changed (each must be one of the entries)."""
    entries = files(APPS if apps is None else apps)
    assert set(changed) <= {entry["path"] for entry in entries}, sorted(changed)
    results = [{"path": entry["path"], "state": entry["state"], "changed": entry["path"] in changed,
                "created": False} for entry in entries]
    return {"results": results, "changed": any(r["changed"] for r in results)}


def started(*units: str) -> dict[str, Any]:
    """The registered result of the task that enables and starts the instances, which started these units."""
    return {"changed": bool(units), "rc": 0, "stdout": "\n".join(units), "stdout_lines": list(units)}


SKIPPED = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}


def plan(**registered: Any) -> dict[str, list[str]]:
    """headrace_changes over APPS, every task having run with nothing changed unless told otherwise."""
    values: dict[str, Any] = {
        "files": written(),
        "started": started(),
        "wheel_installed": SKIPPED,
        "scripts": [],
        "config_dir": CONFIG_DIR,
        "systemd_dir": SYSTEMD_DIR,
    }
    values.update(registered)
    return headrace_changes(APPS, **values)


NOTHING = {"restart_sockets": [], "restart_services": [], "reload_services": []}


# --------------------------------------------------------------------------- what the handlers do


def test_nothing_changed_touches_no_instance() -> None:
    assert plan() == NOTHING


def test_a_changed_unit_file_restarts_every_server_but_no_socket() -> None:
    assert plan(files=written(unit("headrace@.service"))) == {**NOTHING, "restart_services": NAMES}


def test_a_changed_unit_file_is_seen_in_the_items_when_there_is_no_aggregate() -> None:
    files = written(unit("headrace@.socket"))
    del files["changed"]
    assert plan(files=files)["restart_services"] == NAMES


def test_a_changed_configuration_restarts_that_server_only() -> None:
    assert plan(files=written(config("three"))) == {**NOTHING, "restart_services": ["three"]}


def test_a_set_listen_address_restarts_the_socket_and_the_server() -> None:
    assert plan(files=written(listen("two"))) == {
        "restart_sockets": ["two"], "restart_services": ["two"], "reload_services": []}


def test_a_removed_listen_address_restarts_the_socket_and_the_server() -> None:
    assert plan(files=written(socket_dropins("one"))) == {
        "restart_sockets": ["one"], "restart_services": ["one"], "reload_services": []}


def test_an_app_changed_twice_is_restarted_once_in_the_order_of_the_tasks() -> None:
    changes = plan(files=written(config("three"), config("one"), listen("two"), socket_dropins("one")))
    assert changes["restart_services"] == ["one", "three", "two"]
    assert changes["restart_sockets"] == ["two", "one"]


def test_a_server_first_started_in_this_run_is_not_restarted() -> None:
    files = written(unit("headrace@.service"))
    assert plan(files=files, started=started("headrace@two.service")) == {
        **NOTHING, "restart_services": ["one", "three"]}
    assert plan(files=written(config("one"), config("two")),
                started=started("headrace@one.service"))["restart_services"] == ["two"]


def test_a_socket_first_started_in_this_run_is_not_restarted() -> None:
    changes = plan(files=written(listen("two")), started=started("headrace@two.socket"))
    assert changes["restart_sockets"] == []
    assert changes["restart_services"] == ["two"]


def test_a_changed_script_reloads_that_server() -> None:
    assert plan(scripts=["three"]) == {**NOTHING, "reload_services": ["three"]}


def test_a_new_build_reloads_every_server() -> None:
    assert plan(wheel_installed={"changed": True}) == {**NOTHING, "reload_services": NAMES}
    assert plan(wheel_installed={"changed": True}, scripts=["two"])["reload_services"] == NAMES


def test_a_reinstall_that_did_not_change_reloads_the_changed_scripts_only() -> None:
    assert plan(wheel_installed={"changed": False}, scripts=["two"])["reload_services"] == ["two"]


def test_a_server_restarted_or_first_started_is_not_reloaded_as_well() -> None:
    changes = plan(wheel_installed={"changed": True}, files=written(config("one")),
                   started=started("headrace@three.service"))
    assert changes == {"restart_sockets": [], "restart_services": ["one"], "reload_services": ["two"]}
    assert plan(scripts=["one", "two"], files=written(config("one")))["reload_services"] == ["two"]
    assert plan(scripts=["one", "two"], started=started("headrace@two.service"))["reload_services"] == ["one"]


def test_a_script_named_twice_is_reloaded_once() -> None:
    assert plan(scripts=["two", "one", "two"])["reload_services"] == ["two", "one"]


def test_tasks_that_did_not_run_count_as_unchanged() -> None:
    assert headrace_changes(APPS) == NOTHING
    assert headrace_changes(None) == NOTHING
    assert headrace_changes([], scripts=None) == NOTHING
    assert plan(files=None, started=None, wheel_installed=None) == NOTHING
    assert plan(files=SKIPPED, started=SKIPPED) == NOTHING


def test_a_host_whose_tasks_did_not_run_still_reloads_changed_scripts() -> None:
    # Without the role's own results (no proxy app restarted or started), a changed script still reloads.
    assert headrace_changes(APPS, scripts=["one"]) == {**NOTHING, "reload_services": ["one"]}


def test_a_changed_project_drop_in_restarts_its_server() -> None:
    apps = [{"name": "shop", "release": {"user": "wsgi-shop"}}, {"name": "hello"}]
    dirs = {"config_dir": CONFIG_DIR, "systemd_dir": SYSTEMD_DIR}
    plan = headrace_changes(apps, files=written(project("shop"), apps=apps), scripts=["shop", "hello"], **dirs)
    assert plan["restart_services"] == ["shop"]
    assert plan["reload_services"] == ["hello"]
    unset = headrace_changes(apps, files=written(service_dropins("hello"), apps=apps), **dirs)
    assert unset["restart_services"] == ["hello"]


def test_written_directories_and_the_files_of_other_apps_change_no_instance() -> None:
    """Only what the former tasks registered counts: not a (re)made drop-in or configuration directory, not
    the removal of an app that is gone, not a path elsewhere."""
    result = written(socket_dropins("two"), CONFIG_DIR)
    result["results"] += [{"path": config("gone"), "state": "absent", "changed": True},
                          {"path": "/elsewhere/one.toml", "state": "file", "changed": True}]
    assert plan(files=result) == NOTHING


def test_the_files_result_needs_the_directories() -> None:
    with pytest.raises(AnsibleFilterError, match="config_dir and systemd_dir"):
        headrace_changes(APPS, files=written(config("one")))
    assert headrace_changes(APPS, files=written()) == NOTHING


# --------------------------------------------------------------------------- the files of the instances


def test_the_files_of_the_instances_in_the_order_of_the_former_tasks() -> None:
    apps = [{"name": "one", "listen": ""}, {"name": "two", "listen": "127.0.0.1:9001", "release": {"user": "u"}},
            {"name": "three", "listen": "unix:/run/x.sock", "release": None}]
    root = {"owner": "root", "group": "root"}
    assert files(apps) == [
        {"path": unit("headrace@.service"), "state": "file", "content": "[Service]\n", **root, "mode": "0644"},
        {"path": unit("headrace@.socket"), "state": "file", "content": "[Socket]\n", **root, "mode": "0644"},
        {"path": CONFIG_DIR, "state": "directory", "owner": "root", "group": "headrace", "mode": "0750"},
        *({"path": config(name), "state": "file", "content": f"# {name}\n", "owner": "root", "group": "headrace",
           "mode": "0640"} for name in ("one", "two", "three")),
        {"path": socket_dropins("two"), "state": "directory", **root, "mode": "0755"},
        {"path": listen("two"), "state": "file", "content": "# listen two\n", **root, "mode": "0644"},
        {"path": socket_dropins("three"), "state": "directory", **root, "mode": "0755"},
        {"path": listen("three"), "state": "file", "content": "# listen three\n", **root, "mode": "0644"},
        {"path": socket_dropins("one"), "state": "absent"},
        {"path": service_dropins("two"), "state": "directory", **root, "mode": "0755"},
        {"path": project("two"), "state": "file", "content": "# project two\n", **root, "mode": "0644"},
        {"path": service_dropins("one"), "state": "absent"},
        {"path": service_dropins("three"), "state": "absent"},
    ]


def test_the_configuration_file_of_an_app() -> None:
    assert config("my-app_2") in [entry["path"] for entry in files([{"name": "my-app_2"}])]
    assert f"{CONFIG_DIR}/my-app_2.toml" == config("my-app_2")


def test_the_dropin_directory_of_an_app() -> None:
    entries = files([{"name": "api", "listen": "127.0.0.1:9001"}])
    assert {"path": "/etc/systemd/system/headrace@api.socket.d", "state": "directory", "owner": "root",
            "group": "root", "mode": "0755"} in entries


def test_no_apps_still_have_their_units_and_directory() -> None:
    assert [entry["path"] for entry in files([])] == [unit("headrace@.service"), unit("headrace@.socket"), CONFIG_DIR]
    assert headrace_files(None, {}, UNITS, CONFIG_DIR, SYSTEMD_DIR, "headrace") == files([])


@pytest.mark.parametrize(("apps", "rendered", "units", "message"), [
    ([{"name": "a"}], {}, UNITS, "no rendered config for app 'a'"),
    ([{"name": "a", "listen": "127.0.0.1:1"}], {"a": {"config": ""}}, UNITS, "no rendered listen for app 'a'"),
    ([{"name": "a", "release": {"user": "u"}}], {"a": {"config": "", "project": None}}, UNITS,
     "no rendered project for app 'a'"),
    ([], {}, {"headrace@.service": ""}, r"missing \['headrace@.socket'\]"),
    ([], {}, {**UNITS, "other.service": ""}, r"unknown \['other.service'\]"),
])
def test_what_was_not_rendered_is_an_error(apps, rendered, units, message) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        headrace_files(apps, rendered, units, CONFIG_DIR, SYSTEMD_DIR, "headrace")


# --------------------------------------------------------------------------- the apps that are gone


def gone(found: Any, apps: Any = (), config_dir: str = CONFIG_DIR, systemd_dir: str = SYSTEMD_DIR) -> dict:
    return headrace_gone(found, apps, config_dir, systemd_dir)


@pytest.mark.parametrize(("paths", "names"), [
    (["/etc/headrace/old.toml", "/etc/headrace/gone-app.toml"], ["old", "gone-app"]),
    (["/etc/headrace/a.toml.toml"], ["a.toml"]),  # only the suffix goes
    (["/etc/headrace/x_toml.toml"], ["x_toml"]),
    ([], []),
])
def test_the_apps_of_configuration_files(paths: list[str], names: list[str]) -> None:
    assert gone(paths)["apps"] == names


def test_config_apps_inverts_config_file() -> None:
    written_configs = [entry["path"] for entry in files(APPS) if entry["path"].endswith(".toml")]
    assert gone(written_configs)["apps"] == NAMES
    assert gone(written_configs, APPS) == {"apps": [], "files": []}


def test_only_the_apps_that_are_gone_go() -> None:
    assert gone([config("one"), config("old"), config("three"), config("old")], APPS)["apps"] == ["old"]
    assert gone(None, APPS) == gone([], None) == {"apps": [], "files": []}


def test_the_files_of_apps_configurations_first() -> None:
    assert [entry["path"] for entry in gone([config("old"), config("gone")])["files"]] == [
        "/etc/headrace/old.toml",
        "/etc/headrace/gone.toml",
        "/etc/systemd/system/headrace@old.socket.d",
        "/etc/systemd/system/headrace@gone.socket.d",
        "/etc/systemd/system/headrace@old.service.d",
        "/etc/systemd/system/headrace@gone.service.d",
    ]
    assert gone(iter(["/c/x.toml"]), config_dir="/c", systemd_dir="/s")["files"] == [
        {"path": "/c/x.toml", "state": "absent"}, {"path": "/s/headrace@x.socket.d", "state": "absent"},
        {"path": "/s/headrace@x.service.d", "state": "absent"}]
    assert gone([])["files"] == []


def test_directories_are_taken_literally() -> None:
    # regex_replace would have read backslashes and group references in the directory as a pattern.
    assert [entry["path"] for entry in gone([r"/srv/\1conf/a.toml"], (), r"/srv/\1conf", "/etc/sys&d")["files"]] == [
        r"/srv/\1conf/a.toml", "/etc/sys&d/headrace@a.socket.d", "/etc/sys&d/headrace@a.service.d"]
    entries = headrace_files([{"name": "a", "listen": "x"}], {"a": {"config": "", "listen": ""}}, UNITS,
                             r"/srv/\1conf", "/etc/sys&d", "h")
    assert [entry["path"] for entry in entries][2:6] == [
        r"/srv/\1conf", r"/srv/\1conf/a.toml", "/etc/sys&d/headrace@a.socket.d",
        "/etc/sys&d/headrace@a.socket.d/listen.conf"]


def test_what_is_written_is_read_back() -> None:
    """Every path headrace_changes reads is one that headrace_files writes or removes: a change of each
    configuration, listen address and drop-in of the apps is seen."""
    apps = [{"name": "p", "listen": "127.0.0.1:1", "release": {"user": "u"}}, {"name": "q"}]
    dirs = {"config_dir": CONFIG_DIR, "systemd_dir": SYSTEMD_DIR}
    every = written(*(entry["path"] for entry in files(apps) if entry["state"] != "directory"), apps=apps)
    assert headrace_changes(apps, files=every, **dirs) == {
        "restart_sockets": ["p", "q"], "restart_services": ["p", "q"], "reload_services": []}
    for path, socket in ((config("p"), False), (listen("p"), True), (project("p"), False),
                         (socket_dropins("q"), True), (service_dropins("q"), False)):
        changes = headrace_changes(apps, files=written(path, apps=apps), **dirs)
        app = path.split("@")[1].split(".")[0] if "@" in path else "p"
        assert changes["restart_services"] == [app], path
        assert changes["restart_sockets"] == ([app] if socket else []), path


def test_filter_module_exposes_the_filters() -> None:
    assert FilterModule().filters() == {
        "headrace_files": headrace.headrace_files,
        "headrace_gone": headrace.headrace_gone,
        "headrace_changes": headrace.headrace_changes,
    }
