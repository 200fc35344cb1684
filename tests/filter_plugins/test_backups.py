"""The backups role's filters: its clients checked, and the files that let each in to its own directory."""

from __future__ import annotations

import pytest
from backups import (
    FilterModule,
    backups_client_problems,
    backups_clients_of,
    backups_files,
    backups_restore_problems,
    backups_state_apps,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKx0b3Q0ZXN0a2V5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw wsgi-backups fleet-db"


def test_each_client_gets_a_directory_and_a_key_restricted_to_rrsync_there() -> None:
    entries = backups_files([{"name": "fleet-db", "public_key": KEY}], "/var/lib/wsgi-backups", "wsgi-backup")
    assert [(e["path"], e.get("mode")) for e in entries] == [
        ("/var/lib/wsgi-backups", "0700"), ("/var/lib/wsgi-backups/.ssh", "0700"),
        ("/var/lib/wsgi-backups/.ssh/authorized_keys", "0600"), ("/var/lib/wsgi-backups/fleet-db", "0700")]
    assert {(e["owner"], e["group"]) for e in entries} == {("wsgi-backup", "wsgi-backup")}
    (line,) = entries[2]["content"].splitlines()
    assert line == ('restrict,command="/usr/bin/rrsync /var/lib/wsgi-backups/fleet-db" '
                    f"{' '.join(KEY.split()[:2])} wsgi-backups:fleet-db")


def test_no_client_no_key() -> None:
    assert backups_files([], "/b", "u")[2]["content"] == ""


def test_bad_clients_are_named() -> None:
    assert backups_client_problems([{"name": "fleet-db", "public_key": KEY}]) == ""
    problems = backups_client_problems([{"name": "../x", "public_key": KEY}, {"name": "a", "public_key": "nope"},
                                        {"name": "a", "public_key": KEY}, "b"]).splitlines()
    assert problems == [
        "backups_clients[0].name: '../x'; allowed: an inventory host name (letters, digits, _ . -)",
        ("backups_clients[1].public_key: not an OpenSSH public key; allowed: 'ssh-ed25519 AAAA... comment' (the "
         "client's published backups_client_public_key)"),
        "backups_clients[2].name: 'a' twice; allowed: each client once",
        "backups_clients[3]: 'b'; allowed: a mapping {name, public_key}"]
    assert "a list" in backups_client_problems("x")


def test_the_clients_are_the_hosts_with_their_published_keys() -> None:
    hostvars = {"db1": {"backups_client_public_key": KEY, "backups_client_in_run": True},
                "db2": {"backups_client_in_run": True}, "web1": {}}
    # db2 took part but has no key (no longer a client, or its dry run ended first); a --limit left web1 out.
    assert backups_clients_of(hostvars, ["db1", "db2", "web1"]) == [
        {"name": "db1", "public_key": KEY}, {"name": "web1", "keep": True}]


def test_a_client_outside_the_run_keeps_its_key_and_one_that_left_loses_it() -> None:
    root = "/var/lib/wsgi-backups"
    before = backups_files([{"name": "db1", "public_key": KEY}, {"name": "web1", "public_key": KEY}], root, "u")
    current = before[2]["content"]
    after = backups_files([{"name": "db1", "public_key": KEY}, {"name": "web1", "keep": True},
                           {"name": "web2", "keep": True}], root, "u", current)
    assert after[2]["content"] == current
    assert [entry["path"] for entry in after[3:]] == [f"{root}/db1", f"{root}/web1"]
    # Without web1 among the clients (it took part and is no longer one), its line goes.
    (line,) = backups_files([{"name": "db1", "public_key": KEY}], root, "u", current)[2]["content"].splitlines()
    assert line.endswith("wsgi-backups:db1")
    assert backups_client_problems([{"name": "web1", "keep": True}]) == ""


def test_filter_module_exports_the_filters() -> None:
    assert set(FilterModule().filters()) == {"backups_client_problems", "backups_files", "backups_clients_of",
                                             "backups_state_apps", "backups_restore_problems"}


def model(*apps: tuple[str, bool], web_server: bool = True) -> dict:
    """A host's wsgi_model with one site of the given (name, backup_state) project apps."""
    return {"web_server": web_server, "sites": [{"apps": [
        {"name": name, "backup_state": state, "release": {"state_dir": f"/var/lib/wsgi-apps/{name}"}}
        for name, state in apps]}]}


def test_a_web_server_backs_up_the_state_of_its_apps_with_backup_state() -> None:
    assert backups_state_apps(model(("shop", True), ("blog", False))) == [
        {"name": "shop", "dir": "/var/lib/wsgi-apps/shop"}]
    # A host that runs apps' processes only keeps no state of its own; a host without a model has none.
    assert backups_state_apps(model(("shop", True), web_server=False)) == []
    assert backups_state_apps({}) == backups_state_apps(None) == []


NOW = 1_796_000_000.0  # 2026-11-30


def test_a_state_restore_names_an_app_with_backup_state_and_a_time_within_the_retention() -> None:
    models = [model(("shop", True)), model(("shop", True), ("blog", False))]
    assert backups_restore_problems("shop", "", models, 14, NOW) == ""
    assert backups_restore_problems("shop", "2026-11-29 10:00:00+00:00", models, 14, NOW) == ""


@pytest.mark.parametrize(("app", "time", "fragment"), [
    ("", "", "wsgi_restore_app is missing; allowed: an app with backup_state (shop)"),
    ("blog", "", "wsgi_restore_app is 'blog', which is no app with backup_state on the web servers; allowed: shop"),
    ("shop", "2026-12-24 10:00:00+00:00", "is in the future"),
    ("shop", "2026-11-01 10:00:00+00:00", "is more than backup_retention_days (14) ago"),
    ("shop", "2026-11-29 10:00:00", "wsgi_restore_time is '2026-11-29 10:00:00'; allowed: a time with its zone"),
])
def test_bad_state_restores_are_named(app: str, time: str, fragment: str) -> None:
    assert fragment in backups_restore_problems(app, time, [model(("shop", True), ("blog", False))], 14, NOW)
