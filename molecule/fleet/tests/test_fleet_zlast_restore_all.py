"""Every database of the fleet back to the newest archived point (restore.yml -e postgresql_restore_database=
all): the cluster restored in place from the continuous archive, nothing written before lost, the apps
back on it with the settings they had, and the archive going on.

Named to run last (file order): the restore stops the database server for a moment, which the scheduled
job test's window (every minute since the timers started must have run) must not include.
"""

from __future__ import annotations

import json

from conftest import inventory_host
from test_fleet_database_archive import ARCHIVE, archived_through, sql

testinfra_hosts = ["fleet-balancer"]

BOARD = "board.example.com"


def test_every_database_comes_back_to_the_newest_point_and_the_apps_reconnect(lab):
    db = inventory_host("fleet-db")
    sql(db, "board", "DROP TABLE IF EXISTS all_probe; CREATE TABLE all_probe AS SELECT n FROM generate_series(1, 1000) n")
    sql(db, "catalog", "DROP TABLE IF EXISTS all_probe; CREATE TABLE all_probe AS SELECT n FROM generate_series(1, 7) n")
    timeline = sql(db, "postgres", "SELECT timeline_id FROM pg_control_checkpoint()")
    restored = lab.playbook(playbook="playbooks/restore.yml", limit=False,
                            extra_vars={"postgresql_restore_database": "all"})
    assert restored.returncode == 0, restored.summary()
    # Nothing written before the restore is lost; the cluster is on a new timeline of its history.
    assert sql(db, "board", "SELECT count(*) FROM all_probe") == "1000"
    assert sql(db, "catalog", "SELECT count(*) FROM all_probe") == "7"
    sql(db, "postgres", "CHECKPOINT")
    assert int(sql(db, "postgres", "SELECT timeline_id FROM pg_control_checkpoint()")) > int(timeline)
    # The apps reach their databases with the settings they had (the roles got this host's passwords).
    response = lab.request("/", BOARD)
    assert response.status == 200, response.text[:300]
    # And the archive goes on from the restored cluster.
    sql(db, "board", "INSERT INTO all_probe VALUES (1001)")
    archived_through(db)
    status = json.loads(db.check_output(f"{ARCHIVE} status"))
    assert not [problem for problem in status["problems"] if "archiving fails" in problem], status
