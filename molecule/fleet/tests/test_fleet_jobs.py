"""Scheduled jobs run once per fleet: the Django app `board` has a job every minute (`mark`) on all three web
servers, whose timers all fire; job-run lets one host run each scheduled time (the app's database decides).

Runs after test_fleet.py (file order), whose rolling update, rollback and stopped Apache fall inside the
window it checks: every scheduled minute since the timers started. What it reads is each web server's
journal (the start line job-run logs on the host that runs a time, and the job's own output), which no
later restore of the database can rewrite. One web server is also frozen (`docker pause`: no timer, no
process of it runs) for a scheduled minute, which the others must run.
"""

from __future__ import annotations

import datetime
import re
import subprocess
import time

from conftest import inventory_host

testinfra_hosts = ["fleet-balancer"]

WEBS = ("fleet-web1", "fleet-web2", "fleet-web3")
STARTED = re.compile(r"^job mark of board for (\S+): started on (\S+) in release (\S+)$")
MARKED = re.compile(r"^marked (\S+) on (\S+)$")


def journal(name: str) -> list[str]:
    return inventory_host(name).check_output("journalctl -t board-mark --no-pager -o cat").splitlines()


def runs() -> dict[str, list[str]]:
    """Each scheduled time a host started, with the hosts that started it (and the job confirms it ran)."""
    started: dict[str, list[str]] = {}
    marked: set[tuple[str, str]] = set()
    for name in WEBS:
        for line in journal(name):
            if match := STARTED.match(line):
                started.setdefault(match[1], []).append(match[2])
            elif match := MARKED.match(line):
                marked.add((match[1], match[2]))
    for when, hosts in started.items():
        for host in hosts:
            assert (when, host) in marked, f"{host} started {when} but the job did not record it"
    return started


def minutes(first: str, last: str) -> list[str]:
    start = datetime.datetime.strptime(first, "%Y-%m-%dT%H:%M:%SZ")
    end = datetime.datetime.strptime(last, "%Y-%m-%dT%H:%M:%SZ")
    return [(start + datetime.timedelta(minutes=step)).strftime("%Y-%m-%dT%H:%M:%SZ")
            for step in range(int((end - start).total_seconds() // 60) + 1)]


def test_each_scheduled_minute_ran_exactly_once_across_the_fleet_even_with_a_host_frozen():
    # Freeze a web server just after a minute's run, for the next scheduled minute.
    while time.gmtime().tm_sec > 30 or time.gmtime().tm_sec < 15:
        time.sleep(1)
    frozen = WEBS[-1]
    subprocess.run(["docker", "pause", frozen], check=True)
    try:
        time.sleep(70)
        # Frozen from second 15-30 of a minute to second 25-40 of the next: its scheduled time fell inside.
        while_frozen = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:00Z")
    finally:
        subprocess.run(["docker", "unpause", frozen], check=True)
    time.sleep(65)  # one more minute with every host back

    started = runs()
    times = sorted(started)
    assert len(times) >= 4, started
    # No scheduled minute missed since the first, none started twice.
    assert times == minutes(times[0], times[-1]), f"missed: {sorted(set(minutes(times[0], times[-1])) - set(times))}"
    assert {when: hosts for when, hosts in started.items() if len(hosts) != 1} == {}
    # The frozen host ran nothing while it was frozen, and the fleet still ran that minute.
    assert while_frozen in started and started[while_frozen] != [frozen], (while_frozen, started)
    # The fleet's hosts share the work: not one host alone (each fires every minute; who wins varies).
    assert len({hosts[0] for hosts in started.values()}) >= 2, started
