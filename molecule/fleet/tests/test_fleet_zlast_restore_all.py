"""Every database of the fleet back to the newest archived point (restore.yml -e postgresql_restore_database=
all): the cluster restored in place from the continuous archive, nothing written before lost, the apps
back on it with the settings they had, and the archive going on; then the same on a new, empty database
host in the place of one that was lost.

Named to run last (file order): the restore stops the database server for a moment, which the scheduled
job test's window (every minute since the timers started must have run) must not include; and the lost
host's test replaces fleet-db, which no test after it could use as it was.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import yaml
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


def replacement_container(name: str) -> list[str]:
    """`docker run` arguments for a new, empty container in the place of the scenario's platform `name`,
    as Molecule's create made it (molecule.yml: the fleet's network, systemd's needs)."""
    scenario = yaml.safe_load((Path(__file__).resolve().parent.parent / "molecule.yml").read_text())
    (platform,) = [entry for entry in scenario["platforms"] if entry["name"] == name]
    args = ["docker", "run", "--detach", "--name", name, "--hostname", name,
            "--stop-signal", platform["stop_signal"], "--cgroupns", platform["cgroupns_mode"]]
    args += [f"--cap-add={cap}" for cap in platform["capabilities"]]
    args += [f"--security-opt={option}" for option in platform["security_opts"]]
    args += [f"--volume={volume}" for volume in platform["volumes"]]
    args += [f"--tmpfs={path}" for path in platform["tmpfs"]]
    args += [f"--network={network['name']}" for network in platform["networks"]]
    return [*args, platform["image"], platform["command"]]


def test_a_lost_database_host_comes_back_from_the_backups_host(lab):
    """The disaster: rows written continuously, the database host's container removed (`docker rm -f`, as
    if its disk died), a new empty one in its place, site.yml, restore.yml -e postgresql_restore_database=
    all: every row committed more than 60 s before the loss is back, the apps work, the archive goes on.
    Prints the data lost (RPO: the loss to the newest row back) and the time to recover (RTO: the new
    container to the restore's end)."""
    db = inventory_host("fleet-db")
    sql(db, "board", "DROP TABLE IF EXISTS loss_probe; "
                     "CREATE TABLE loss_probe (id serial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())")
    # A writer on the host itself, one committed row every half second until the host is gone.
    db.check_output("setsid -f bash -c 'while :; do runuser -u postgres -- psql -X -q -d board "
                    "-c \"INSERT INTO loss_probe DEFAULT VALUES\"; sleep 0.5; done' > /dev/null 2>&1")
    time.sleep(65)  # rows older than 60 s at the loss, and the newer ones
    written = int(sql(db, "board", "SELECT max(id) FROM loss_probe"))
    lost_at = time.time()
    subprocess.run(["docker", "rm", "--force", "fleet-db"], check=True, capture_output=True)

    started = time.monotonic()
    subprocess.run(replacement_container("fleet-db"), check=True, capture_output=True)
    site = lab.playbook(limit=False)
    assert site.returncode == 0, site.summary()
    rebuilt = time.monotonic()
    restored = lab.playbook(playbook="playbooks/restore.yml", limit=False,
                            extra_vars={"postgresql_restore_database": "all"})
    assert restored.returncode == 0, restored.summary()
    recovered = time.monotonic()

    db = inventory_host("fleet-db")
    first, last, count, newest = sql(db, "board", "SELECT min(id), max(id), count(*), "
                                                  "extract(epoch FROM max(at)) FROM loss_probe").split("|")
    rpo = lost_at - float(newest)
    print(f"\nlost database host: {written} rows written, rows 1..{last} back ({count}); data lost (RPO) "
          f"{rpo:.0f} s; time to recover (RTO) {recovered - started:.0f} s (new host and site.yml "
          f"{rebuilt - started:.0f} s, restore.yml {recovered - rebuilt:.0f} s)")
    # Every row committed more than 60 s before the loss is there, and none is missing before the newest.
    assert rpo <= 60, f"rows of the last {rpo:.0f} s before the loss are missing"
    assert (int(first), int(count)) == (1, int(last))
    # The apps reach their databases (through the balancer) with the settings site.yml gave them.
    response = lab.request("/notes.json", BOARD)
    assert response.status == 200, response.text[:300]
    # The archive is this cluster's again and goes on to the backups host.
    status = json.loads(db.check_output(f"{ARCHIVE} status"))
    assert not [problem for problem in status["problems"] if "another cluster" in problem], status
    sql(db, "board", "INSERT INTO loss_probe DEFAULT VALUES")
    archived_through(db)
