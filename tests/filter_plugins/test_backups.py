"""The backups role's filters: its clients checked, and the files that let each in to its own directory."""

from __future__ import annotations

from backups import (
    FilterModule,
    backups_client_problems,
    backups_clients_of,
    backups_files,
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
    hostvars = {"db1": {"backups_client_public_key": KEY}, "db2": {}}
    # db2's dry run ended before it made its key.
    assert backups_clients_of(hostvars, ["db1", "db2"]) == [{"name": "db1", "public_key": KEY}]


def test_filter_module_exports_the_filters() -> None:
    assert set(FilterModule().filters()) == {"backups_client_problems", "backups_files", "backups_clients_of"}
