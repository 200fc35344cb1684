#!/usr/bin/env python3
"""The continuous archive (pgBackRest) measured: how long a restore takes against the database's size, and
how far the archive and its copy on the backups host lag under a steady write load.

    .venv/bin/python bench/archive.py                                  # pgbench scales 10 and 50, 60 s of load
    .venv/bin/python bench/archive.py --scales 10 50 --load-seconds 120 --rate 300

Three fresh systemd containers (the flags and helpers of bench/fleet_scale.py): scale-web1 a web server with
the test Django project and a database (so the database host has an app's database), scale-web2 the database
host (group `databases`), scale-web3 the backups host. One run of the real site.yml. Then on the database
host, for each scale: `pgbench -i -s N` into the app's database (pgbench's tables beside the app's), a full
backup (`wsgi-postgresql-archive backup full`, which copies it out), and two timed restores through the
script restore.yml runs:

    one database to a time   restore-time DATABASE NOW: the cluster at that time in a scratch instance
                             (only that database), dumped, swapped in (what a point-in-time restore takes)
    the whole cluster        restore-all: the newest backup and every archived segment after it, into the
                             cluster's emptied data directory (what a lost host's recovery takes after
                             site.yml)

Then the lag: `pgbench -c 2 --rate R -T S` (a steady write load) while, every second, the current log
segment and pg_stat_archiver are read: a segment's lag is from the first second it was the one being written
to the first second it was archived (the age of its oldest write when it reached the archive), the copy's
age is how long ago the repository last reached the backups host (the script's status), and what the
archive keeps of each byte of log (its growth on the disk against the log written: how long a disk holds
the log while the backups host is away). Printed as a
table for the README. The containers and the network are removed at the end, also on Ctrl-C or an error.
Times are this machine's (2 CPUs, shared by the three hosts): compare runs made side by side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import yaml
from fleet_scale import (
    add_run_arguments,
    clean_up,
    log,
    playbook_command,
    refresh_package_lists,
    start_fleet,
    start_run,
    time_playbook,
)
from modes import DJANGO_FIELDS

ARCHIVE = "/usr/local/sbin/wsgi-postgresql-archive"
DATABASE = "shop"


def write_inventory(directory: Path, web: str, data: str, backups: str) -> Path:
    app = {"name": "shop", "mount": "/", "mode": "daemon", **DJANGO_FIELDS, "database": {"name": DATABASE}}
    inventory = directory / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_connection": "community.docker.docker", "ansible_python_interpreter": "/usr/bin/python3"},
        "children": {"webservers": {"hosts": {web: {"ansible_host": web}},
                                    "vars": {"wsgi_sites": [{"server_name": "shop.bench", "apps": [app]}]}},
                     "databases": {"hosts": {data: {"ansible_host": data}}},
                     "backups": {"hosts": {backups: {"ansible_host": backups}}}}}}))
    return inventory


def on(host: str, command: str, timeout: float = 3600) -> str:
    """A shell command on a host, its output; a failure stops the benchmark with its error."""
    done = subprocess.run(["docker", "exec", host, "bash", "-c", command], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench: on {host}: {command}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout.strip()


def sql(host: str, query: str, database: str = "postgres") -> str:
    return on(host, f"runuser -u postgres -- psql -X -AtqF'|' -d {database} -c \"{query}\"")


def timed(host: str, command: str) -> float:
    start = time.monotonic()
    on(host, command)
    return time.monotonic() - start


def restore_times(data: str, scale: int) -> dict[str, float]:
    """pgbench's tables at `scale`, a full backup, then each restore path timed."""
    on(data, f"runuser -u postgres -- /usr/lib/postgresql/*/bin/pgbench -i -q -s {scale} {DATABASE}")
    size = int(sql(data, f"SELECT pg_database_size('{DATABASE}')"))
    backup = timed(data, f"{ARCHIVE} backup full")
    now = sql(data, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00:00'")
    time.sleep(1)
    one = timed(data, f"{ARCHIVE} restore-time {DATABASE} '{now}'")
    # The database before the swap is kept (shop_before_<time>): dropped, so that the cluster restore and
    # the next scale measure the app's database alone.
    for name in sql(data, f"SELECT datname FROM pg_database WHERE datname LIKE '{DATABASE}_before_%'").split():
        sql(data, f"DROP DATABASE {name}")
    on(data, f"{ARCHIVE} backup full")
    # What a lost host's recovery copies: every file of the cluster (the server stopped, its files gone).
    on(data, "systemctl stop 'postgresql@*' && rm -rf /var/lib/postgresql/*/main/*")
    every = timed(data, f"{ARCHIVE} restore-all")
    return {"scale": scale, "megabytes": size / 2**20, "backup": backup, "one": one, "all": every}


def lag(data: str, seconds: int, rate: int) -> dict[str, float]:
    """Each segment's time from first written to archived, and the copy's age, under a steady pgbench load."""
    on(data, f"runuser -u postgres -- /usr/lib/postgresql/*/bin/pgbench -i -q -s 10 {DATABASE}")
    first_seen: dict[str, float] = {}
    lags: list[float] = []
    copy_ages: list[float] = []
    start_lsn = sql(data, "SELECT pg_current_wal_lsn()")
    archive_bytes = int(on(data, "du -sb /var/lib/pgbackrest/archive | cut -f1"))
    pgbench = f"runuser -u postgres -- /usr/lib/postgresql/*/bin/pgbench -n -c 2 -j 2 --rate {rate} -T {seconds}"
    load = threading.Thread(target=on, args=(data, f"{pgbench} {DATABASE}"))
    load.start()
    started = time.monotonic()

    def sample() -> str:
        """One second's reading; the segment being written."""
        now = time.monotonic()
        current, archived = sql(data, "SELECT pg_walfile_name(pg_current_wal_lsn()), "
                                      "coalesce(last_archived_wal, '') FROM pg_stat_archiver").split("|")
        first_seen.setdefault(current, now)
        for name in [name for name in first_seen if name <= archived]:
            lags.append(now - first_seen.pop(name))
        status = json.loads(on(data, f"{ARCHIVE} status"))
        if status.get("synced"):
            copy_ages.append(status["now"] - status["synced"])
        time.sleep(max(0.0, 1 - (time.monotonic() - now)))
        return current

    while load.is_alive():
        sample()
    # The segments written under the load, until archived (archive_timeout finishes the last one).
    deadline = time.monotonic() + 90
    while set(first_seen) - {sample()} and time.monotonic() < deadline:
        pass
    load.join()
    elapsed = time.monotonic() - started
    written = int(sql(data, f"SELECT pg_current_wal_lsn() - '{start_lsn}'::pg_lsn"))
    archived = int(on(data, "du -sb /var/lib/pgbackrest/archive | cut -f1")) - archive_bytes
    return {"seconds": elapsed, "rate": rate, "wal_mb_per_s": written / 2**20 / elapsed,
            "kept": archived / written if written else float("nan"),
            "segments": len(lags), "lag_mean": statistics.fmean(lags) if lags else float("nan"),
            "lag_max": max(lags, default=float("nan")), "copy_mean": statistics.fmean(copy_ages or [float("nan")]),
            "copy_max": max(copy_ages, default=float("nan"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.add_argument("--scales", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--load-seconds", type=int, default=60)
    parser.add_argument("--rate", type=int, default=200, help="pgbench transactions per second of the load")
    args = parser.parse_args()
    start_run(args)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-archive-") as scratch:
            tmp = Path(scratch)
            web, data, backups = names = start_fleet(3, args.image)
            refresh_package_lists(names)
            extra = json.dumps({"wsgi_artifact_cache": str(tmp / "artifacts"), "headrace_wheel_cache": str(tmp / "wheels")})
            deploy = time_playbook(playbook_command(write_inventory(tmp, web, data, backups), extra), "deploy", args,
                                   names)
            log(f"deploy: {deploy.seconds:.0f} s")
            restores = []
            for scale in args.scales:
                log(f"pgbench scale {scale}: backup and restores")
                restores.append(restore_times(data, scale))
                log(json.dumps(restores[-1]))
            log(f"archive lag under pgbench --rate {args.rate} for {args.load_seconds} s")
            lagged = lag(data, args.load_seconds, args.rate)
            log(json.dumps(lagged))
    finally:
        clean_up()
    report(restores, lagged)
    return 0


def report(restores: list[dict[str, float]], lagged: dict[str, float]) -> None:
    print("\n| pgbench scale | database | full backup | restore one database to a time | restore the cluster |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for row in restores:
        print(f"| {row['scale']} | {row['megabytes']:.0f} MB | {row['backup']:.0f} s | {row['one']:.0f} s "
              f"| {row['all']:.0f} s |")
    print(f"\nSteady load: pgbench --rate {lagged['rate']} for {lagged['seconds']:.0f} s, "
          f"{lagged['wal_mb_per_s']:.2f} MB/s of log, of which the archive keeps {lagged['kept']:.2f} (compressed); "
          f"{lagged['segments']} segments archived, each "
          f"{lagged['lag_mean']:.1f} s on average (at most {lagged['lag_max']:.1f} s) from its first write to the "
          f"archive; the copy on the backups host {lagged['copy_mean']:.1f} s old on average (at most "
          f"{lagged['copy_max']:.1f} s).")


if __name__ == "__main__":
    raise SystemExit(main())
