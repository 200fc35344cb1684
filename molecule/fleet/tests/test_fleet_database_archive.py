"""The continuous archive of the fleet's PostgreSQL (pgBackRest) and its copy on the backups host: a point
in time restored for one app's database while the others keep what came after, the archive catching up
after the backups host was away, a restore drill that passes and one that fails on a corrupted backup,
and nothing readable by others or shown.

Runs after test_fleet_database.py (file order). The point-in-time restore takes the catalog app's database
(the board app's, which the job and task tests use, keeps everything); a restore swaps in a new database
and keeps the one before, which the tests leave there.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from conftest import inventory_host

testinfra_hosts = ["fleet-balancer"]

ARCHIVE = "/usr/local/sbin/wsgi-postgresql-archive"
REPO = "/var/lib/pgbackrest"
STATE = "/var/lib/wsgi-postgresql-archive"
COPY = "/var/lib/wsgi-backups/fleet-db"


@pytest.fixture(scope="module")
def db():
    return inventory_host("fleet-db")


@pytest.fixture(scope="module")
def backups():
    return inventory_host("fleet-backups")


def sql(db, database: str, query: str) -> str:
    return db.check_output(f"runuser -u postgres -- psql -X -d {database} -AtXc \"{query}\"")


def archived_through(db, seconds: float = 90) -> str:
    """Finish the current log segment and wait until it is archived (at most seconds): its name."""
    segment = sql(db, "postgres", "SELECT pg_walfile_name(pg_switch_wal())")
    deadline = time.monotonic() + seconds
    while sql(db, "postgres", "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") < segment:
        assert time.monotonic() < deadline, f"segment {segment} not archived within {seconds} s"
        time.sleep(1)
    return segment


def copied(backups, segment: str) -> bool:
    """Whether the backups host has the archived segment (its name starts the file's)."""
    return backups.run(f"find {COPY}/archive -name '{segment}-*' | grep -q .").rc == 0


def wait_until(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def test_a_database_goes_back_to_a_point_in_time_and_the_others_keep_what_came_after(lab, db):
    sql(db, "catalog", "DROP TABLE IF EXISTS pitr_probe; CREATE TABLE pitr_probe (note text); "
                       "INSERT INTO pitr_probe SELECT 'kept ' || n FROM generate_series(1, 5) n")
    sql(db, "board", "DROP TABLE IF EXISTS pitr_probe; CREATE TABLE pitr_probe (note text)")
    time.sleep(1.5)
    point = sql(db, "postgres", "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00:00'")
    time.sleep(1.5)
    sql(db, "catalog", "DELETE FROM pitr_probe")
    sql(db, "board", "INSERT INTO pitr_probe VALUES ('after the point')")
    archived_through(db)
    restored = lab.playbook(playbook="playbooks/restore.yml", limit=False, extra_vars={
        "postgresql_restore_database": "catalog", "postgresql_restore_time": point})
    assert restored.returncode == 0, restored.summary()
    assert sql(db, "catalog", "SELECT count(*) FROM pitr_probe WHERE note LIKE 'kept %'") == "5"
    assert sql(db, "board", "SELECT note FROM pitr_probe") == "after the point"
    # The database before the restore is kept, with its deletion.
    kept = sql(db, "postgres", "SELECT max(datname) FROM pg_database WHERE datname LIKE 'catalog_before_%'")
    assert sql(db, kept, "SELECT count(*) FROM pitr_probe") == "0"
    assert f"as it was at {point}" in "\n".join(restored.messages("fleet-db"))


def test_a_database_goes_back_to_its_last_seconds_with_nothing_written_since(lab, db):
    """A time of the last seconds, after the database's last commit: the restore archives the segment being
    written first and ends it with a commit (recovery to a time stops at the first commit after it, and
    fails when it finds none), and starts from a backup that ended before the time."""
    sql(db, "catalog", "DROP TABLE IF EXISTS recent_probe; CREATE TABLE recent_probe AS SELECT 7 AS n")
    time.sleep(1.5)
    point = sql(db, "postgres", "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00:00'")
    restored = lab.playbook(playbook="playbooks/restore.yml", limit=False, extra_vars={
        "postgresql_restore_database": "catalog", "postgresql_restore_time": point})
    assert restored.returncode == 0, restored.summary()
    assert sql(db, "catalog", "SELECT n FROM recent_probe") == "7"


def test_a_restore_to_a_time_in_the_future_or_of_an_unknown_database_stops_before_the_host_changes(lab, db):
    before = sql(db, "postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database")
    for extra, said in (({"postgresql_restore_database": "catalog", "postgresql_restore_time": "2999-01-01 00:00:00+00:00"},
                         "is in the future"),
                        ({"postgresql_restore_database": "nope"}, "which is no app's database on the database host")):
        run = lab.playbook(playbook="playbooks/restore.yml", limit=False, extra_vars=extra)
        assert run.returncode != 0
        assert said in run.stdout, run.summary()
    assert sql(db, "postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database") == before


def test_the_archive_waits_for_an_absent_backups_host_and_catches_up(db, backups):
    subprocess.run(["docker", "pause", "fleet-backups"], check=True)
    try:
        sql(db, "board", "INSERT INTO pitr_probe VALUES ('while away')")
        segment = archived_through(db)  # the database host archives on, into its own repository
        time.sleep(15)
        assert db.service("postgresql@15-main").is_running
    finally:
        subprocess.run(["docker", "unpause", "fleet-backups"], check=True)
    assert wait_until(lambda: copied(backups, segment), 90), f"segment {segment} not on the backups host"


def test_the_copy_on_the_backups_host_is_encrypted_and_nothing_is_readable_by_others(lab, db, backups):
    header = backups.check_output(f"head -c 8 {COPY}/backup/main/backup.info")
    assert header == "Salted__", header  # OpenSSL's aes-256-cbc: pgBackRest's encryption, not JSON
    key = db.check_output("awk -F= '/^repo1-cipher-pass=/ {print $2}' /etc/pgbackrest.conf")
    assert len(key) >= 20
    assert backups.run(f"grep -rqF -- '{key}' /etc /var/lib /root /home /tmp").rc == 1
    conf = db.file("/etc/pgbackrest.conf")
    assert (conf.user, conf.group, conf.mode) == ("root", "postgres", 0o640)
    for host, paths in ((db, [REPO, STATE, "/etc/wsgi-backups", "/var/log/pgbackrest"]),
                        (backups, ["/var/lib/wsgi-backups"])):
        readable = host.run(f"find {' '.join(paths)} -perm -o=r -type f").stdout.strip()
        assert readable == "", readable
        assert host.file(paths[0]).mode & 0o007 == 0, paths[0]
    authorized = backups.file("/var/lib/wsgi-backups/.ssh/authorized_keys").content_string
    assert authorized.startswith('restrict,command="/usr/bin/rrsync /var/lib/wsgi-backups/fleet-db" ssh-ed25519 ')
    # The key that copies the archive may not open a shell on the backups host.
    shell = db.run("ssh -F /etc/wsgi-backups/ssh_config wsgi-backups id")
    assert shell.rc != 0 and "uid=" not in shell.stdout


def drill(db) -> dict:
    db.run("systemctl start wsgi-postgresql-archive@drill.service")
    return json.loads(db.check_output(f"cat {STATE}/drill.json"))


def test_the_restore_drill_passes_and_fails_visibly_on_a_corrupted_backup(db):
    # The scenario's only backup is the first full one, made before the apps migrated: a differential
    # backup now holds their tables.
    db.check_output(f"{ARCHIVE} backup diff")
    good = drill(db)
    assert good["result"] == "ok", good
    assert good["tables"]["board"]["public.django_migrations"] > 0 and "catalog" in good["tables"], good
    status = json.loads(db.check_output(f"{ARCHIVE} status"))
    assert status["problems"] == [], status
    # Corrupt a file of the newest backup: the drill restores it, pgBackRest finds the checksum wrong.
    label = good["backup"]
    victim = db.check_output(f"find {REPO}/backup/main/{label}/pg_data/base -type f -size +8k | head -n 1")
    db.check_output(f"printf 'corrupted' | dd of={victim} bs=1 seek=4096 conv=notrunc status=none")
    try:
        bad = drill(db)
        assert bad["result"] == "failed" and bad["error"], bad
        assert db.run("systemctl is-failed wsgi-postgresql-archive@drill.service").stdout.strip() == "failed"
        status = json.loads(db.check_output(f"{ARCHIVE} status"))
        assert any(problem.startswith("the last restore drill failed") for problem in status["problems"]), status
    finally:
        # A new full backup is the newest again, and the drill passes on it.
        db.check_output(f"{ARCHIVE} backup full")
    assert drill(db)["result"] == "ok"
