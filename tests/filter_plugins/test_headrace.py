"""Tests for the headrace filter plugin: what the handlers restart or reload, and the names of an app's files.

The registered results below have the shape Ansible gives a loop task's register (one result per item,
the item under "item", an aggregated "changed"), and a plain task's (a "changed" of its own).
"""

from __future__ import annotations

from typing import Any

import headrace
import pytest
from headrace import (
    FilterModule,
    headrace_app_files,
    headrace_changes,
    headrace_config_apps,
    headrace_config_file,
    headrace_dropin_dir,
)

APPS = [{"name": "one", "listen": ""}, {"name": "two", "listen": "127.0.0.1:9001"}, {"name": "three", "listen": ""}]
NAMES = ["one", "two", "three"]


def loop(*changed: str, items: list[str] | None = None) -> dict[str, Any]:
    """A registered loop result over items (default every app) in which the named items changed."""
    results = [{"item": {"name": name}, "changed": name in changed} for name in (items or NAMES)]
    return {"results": results, "changed": any(r["changed"] for r in results), "msg": "All items completed"}


def task(changed: bool) -> dict[str, Any]:
    """A registered result of a task without a loop."""
    return {"changed": changed}


SKIPPED = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}
EMPTY_LOOP = {"results": [], "changed": False, "skipped": True, "skipped_reason": "No items in the list"}


def plan(**registered: Any) -> dict[str, list[str]]:
    """headrace_changes over APPS, every task having run with nothing changed unless told otherwise."""
    values: dict[str, Any] = {
        "units": loop(items=["headrace@.service", "headrace@.socket"]),
        "configs": loop(),
        "listen_set": loop(items=["two"]),
        "listen_unset": loop(items=["one", "three"]),
        "sockets_started": loop(),
        "started": loop(),
        "wheel_installed": SKIPPED,
        "scripts": [],
    }
    values.update(registered)
    return headrace_changes(APPS, **values)


NOTHING = {"restart_sockets": [], "restart_services": [], "reload_services": []}


def test_nothing_changed_touches_no_instance() -> None:
    assert plan() == NOTHING


def test_a_changed_unit_file_restarts_every_server_but_no_socket() -> None:
    units = {"results": [{"item": "headrace@.service", "changed": True},
                         {"item": "headrace@.socket", "changed": False}], "changed": True}
    assert plan(units=units) == {**NOTHING, "restart_services": NAMES}


def test_a_changed_unit_file_is_seen_in_the_items_when_there_is_no_aggregate() -> None:
    units = {"results": [{"item": "headrace@.service", "changed": False},
                         {"item": "headrace@.socket", "changed": True}]}
    assert plan(units=units)["restart_services"] == NAMES


def test_a_changed_configuration_restarts_that_server_only() -> None:
    assert plan(configs=loop("three")) == {**NOTHING, "restart_services": ["three"]}


def test_a_set_listen_address_restarts_the_socket_and_the_server() -> None:
    assert plan(listen_set=loop("two", items=["two"])) == {
        "restart_sockets": ["two"], "restart_services": ["two"], "reload_services": []}


def test_a_removed_listen_address_restarts_the_socket_and_the_server() -> None:
    assert plan(listen_unset=loop("one", items=["one", "three"])) == {
        "restart_sockets": ["one"], "restart_services": ["one"], "reload_services": []}


def test_an_app_changed_twice_is_restarted_once_in_the_order_of_the_tasks() -> None:
    changes = plan(configs=loop("three", "one"), listen_set=loop("two", items=["two"]),
                   listen_unset=loop("one", items=["one", "three"]))
    assert changes["restart_services"] == ["one", "three", "two"]
    assert changes["restart_sockets"] == ["two", "one"]


def test_a_server_first_started_in_this_run_is_not_restarted() -> None:
    units = loop("headrace@.service", items=["headrace@.service", "headrace@.socket"])
    assert plan(units=units, started=loop("two")) == {**NOTHING, "restart_services": ["one", "three"]}
    assert plan(configs=loop("one", "two"), started=loop("one"))["restart_services"] == ["two"]


def test_a_socket_first_started_in_this_run_is_not_restarted() -> None:
    changes = plan(listen_set=loop("two", items=["two"]), sockets_started=loop("two"))
    assert changes["restart_sockets"] == []
    assert changes["restart_services"] == ["two"]


def test_a_changed_script_reloads_that_server() -> None:
    assert plan(scripts=["three"]) == {**NOTHING, "reload_services": ["three"]}


def test_a_new_build_reloads_every_server() -> None:
    assert plan(wheel_installed=task(True)) == {**NOTHING, "reload_services": NAMES}
    assert plan(wheel_installed=task(True), scripts=["two"])["reload_services"] == NAMES


def test_a_reinstall_that_did_not_change_reloads_the_changed_scripts_only() -> None:
    assert plan(wheel_installed=task(False), scripts=["two"])["reload_services"] == ["two"]


def test_a_server_restarted_or_first_started_is_not_reloaded_as_well() -> None:
    changes = plan(wheel_installed=task(True), configs=loop("one"), started=loop("three"))
    assert changes == {"restart_sockets": [], "restart_services": ["one"], "reload_services": ["two"]}
    assert plan(scripts=["one", "two"], configs=loop("one"))["reload_services"] == ["two"]
    assert plan(scripts=["one", "two"], started=loop("two"))["reload_services"] == ["one"]


def test_a_script_named_twice_is_reloaded_once() -> None:
    assert plan(scripts=["two", "one", "two"])["reload_services"] == ["two", "one"]


def test_tasks_that_did_not_run_count_as_unchanged() -> None:
    assert headrace_changes(APPS) == NOTHING
    assert headrace_changes(None) == NOTHING
    assert headrace_changes([], scripts=None) == NOTHING
    assert plan(units=None, configs=None, listen_set=None, listen_unset=None, sockets_started=None,
                started=None, wheel_installed=None) == NOTHING
    assert plan(units=SKIPPED, configs=EMPTY_LOOP, listen_set=EMPTY_LOOP, listen_unset=EMPTY_LOOP,
                sockets_started=EMPTY_LOOP, started=EMPTY_LOOP) == NOTHING


def test_a_host_whose_tasks_did_not_run_still_reloads_changed_scripts() -> None:
    # Without the role's own results (no proxy app restarted or started), a changed script still reloads.
    assert headrace_changes(APPS, scripts=["one"]) == {**NOTHING, "reload_services": ["one"]}


# --------------------------------------------------------------------------- the files of an app


def test_the_configuration_file_of_an_app() -> None:
    assert headrace_config_file("my-app_2") == "my-app_2.toml"


def test_the_dropin_directory_of_an_app() -> None:
    assert headrace_dropin_dir("api", "/etc/systemd/system") == "/etc/systemd/system/headrace@api.socket.d"


@pytest.mark.parametrize(("paths", "names"), [
    (["/etc/headrace/old.toml", "/etc/headrace/gone-app.toml"], ["old", "gone-app"]),
    (["/etc/headrace/a.toml.toml"], ["a.toml"]),  # only the suffix goes
    (["/etc/headrace/x_toml.toml"], ["x_toml"]),
    ([], []),
])
def test_the_apps_of_configuration_files(paths: list[str], names: list[str]) -> None:
    assert headrace_config_apps(paths) == names


def test_config_apps_inverts_config_file() -> None:
    assert headrace_config_apps([f"/srv/conf/{headrace_config_file(n)}" for n in NAMES]) == NAMES


def test_the_files_of_apps_configurations_first() -> None:
    assert headrace_app_files(["old", "gone"], "/etc/headrace", "/etc/systemd/system") == [
        "/etc/headrace/old.toml",
        "/etc/headrace/gone.toml",
        "/etc/systemd/system/headrace@old.socket.d",
        "/etc/systemd/system/headrace@gone.socket.d",
        "/etc/systemd/system/headrace@old.service.d",
        "/etc/systemd/system/headrace@gone.service.d",
    ]
    assert headrace_app_files(iter(["x"]), "/c", "/s") == ["/c/x.toml", "/s/headrace@x.socket.d",
                                                          "/s/headrace@x.service.d"]
    assert headrace_app_files([], "/etc/headrace", "/etc/systemd/system") == []


def test_a_changed_project_drop_in_restarts_its_server() -> None:
    from headrace import headrace_changes

    apps = [{"name": "shop"}, {"name": "hello"}]
    changed = {"results": [{"item": {"name": "shop"}, "changed": True}]}
    plan = headrace_changes(apps, service_set=changed, scripts=["shop", "hello"])
    assert plan["restart_services"] == ["shop"]
    assert plan["reload_services"] == ["hello"]
    unset = headrace_changes(apps, service_unset={"results": [{"item": {"name": "hello"}, "changed": True}]})
    assert unset["restart_services"] == ["hello"]


def test_directories_are_taken_literally() -> None:
    # regex_replace would have read backslashes and group references in the directory as a pattern.
    assert headrace_app_files(["a"], r"/srv/\1conf", "/etc/sys&d") == [
        r"/srv/\1conf/a.toml", "/etc/sys&d/headrace@a.socket.d", "/etc/sys&d/headrace@a.service.d"]


def test_filter_module_exposes_the_filters() -> None:
    assert FilterModule().filters() == {
        "headrace_changes": headrace.headrace_changes,
        "headrace_config_file": headrace.headrace_config_file,
        "headrace_dropin_dir": headrace.headrace_dropin_dir,
        "headrace_service_dropin_dir": headrace.headrace_service_dropin_dir,
        "headrace_config_apps": headrace.headrace_config_apps,
        "headrace_app_files": headrace.headrace_app_files,
    }
