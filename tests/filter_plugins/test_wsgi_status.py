"""Tests for the status filters: what a host's status command reads, and the fleet's table."""

from __future__ import annotations

import json
import re

import pytest
from ansible.errors import AnsibleFilterError
from wsgi_status import COLUMNS, FilterModule, wsgi_status_spec, wsgi_status_table

APPS = [{"name": "hello", "release": None},
        {"name": "shop", "release": {"current": "/srv/apps/shop/current"},
         "processes": {"beat": {"count": 2}}, "schedule": [{"name": "clean"}]}]


def test_the_spec_names_each_app_its_live_link_its_process_instances_and_its_jobs() -> None:
    assert wsgi_status_spec(APPS, "http://127.0.0.1:80/healthz", "/etc/wsgi-apps") == {
        "health_url": "http://127.0.0.1:80/healthz",
        "apps": [{"name": "hello", "current": "", "units": [], "jobs": [], "env_file": "/etc/wsgi-apps/hello.json"},
                 {"name": "shop", "current": "/srv/apps/shop/current",
                  "units": ["wsgi-shop-beat@1.service", "wsgi-shop-beat@2.service"], "jobs": ["clean"],
                  "env_file": "/etc/wsgi-apps/shop.json"}]}


def read(report: dict) -> dict:
    return {"wsgi_status_read": {"rc": 0, "stdout": json.dumps(report)}}


REPORT = {"now": 100_000, "health": {"status": 503, "body": "fail\nshop: process wsgi-shop-beat@2.service is down\n"},
          "apps": [{"name": "hello", "release": "", "live_since": None, "units": []},
                   {"name": "shop", "release": "5f0c3e1a", "live_since": 100_000 - 7_380, "units": [
                       {"unit": "wsgi-shop-beat@1.service", "state": "active (running)", "since": 100_000 - 65,
                        "restarts": 1},
                       {"unit": "wsgi-shop-beat@2.service", "state": "inactive (dead)", "since": None,
                        "restarts": 0}]}]}


def test_one_row_per_host_app_and_process_instance_with_what_went_wrong() -> None:
    hostvars = {"web1": read(REPORT), "web2": {"wsgi_status_read": {"unreachable": True, "msg": "Failed to\nconnect"}}}
    lines = wsgi_status_table(["web1", "web2"], hostvars).splitlines()
    assert lines[0].split("  ")[0] == "host" and all(column in lines[0] for column in COLUMNS)
    cells = [line.split() for line in lines[1:]]
    assert cells[0] == ["web1", "hello", "-", "-", "ok", "-", "-", "-", "-"]  # not named by the check: ok
    assert lines[2].split()[:6] == ["web1", "shop", "5f0c3e1a", "2h", "03m", "process"]
    assert "wsgi-shop-beat@1.service  active (running)  1m 05s" in lines[2] and lines[2].endswith("1")
    assert "inactive (dead)" in lines[3] and lines[3].split()[-2:] == ["-", "0"]
    assert lines[4].startswith("web2") and "unreadable: Failed to connect" in lines[4]


def test_a_job_row_says_its_last_run_across_the_fleet_and_its_next_time() -> None:
    report = {"now": 100_000, "health": {"status": 200, "body": "ok\nshop: ok\n"}, "apps": [
        {"name": "shop", "release": "r1", "live_since": 99_000, "units": [], "jobs": [
            {"job": "clean", "next": 86_400 + 3 * 3600, "last": {"scheduled": 86_400 + 2 * 3600, "host": "web2",
                                                                  "status": 3, "seconds": 1.25}},
            {"job": "report", "next": None, "last": None}]}]}
    lines = wsgi_status_table(["web1"], {"web1": read(report)}).splitlines()
    assert re.search(r"  job clean +failed \(exit 3\): 02:00:00 on web2, 1\.2 s +next 03:00:00 +-$", lines[1]), lines
    assert "job report" in lines[2] and "not run yet" in lines[2] and "next -" in lines[2], lines


def test_a_host_that_runs_processes_only_has_no_web_health() -> None:
    assert wsgi_status_spec(APPS[1:], "")["health_url"] == ""
    report = {"now": 100_000, "health": {}, "apps": [
        {"name": "shop", "release": "r1", "live_since": 99_000, "units": [
            {"unit": "wsgi-shop-beat@1.service", "state": "active (running)", "since": 99_500, "restarts": 0}]}]}
    (row,) = wsgi_status_table(["worker1"], {"worker1": read(report)}).splitlines()[1:]
    assert row.split()[:6] == ["worker1", "shop", "r1", "16m", "40s", "-"], row
    assert "wsgi-shop-beat@1.service  active (running)" in row


ARCHIVE = {"now": 100_000, "latest_backup": 100_000 - 3_600, "latest_full": 100_000 - 3_600, "backups": 1,
           "archived": 99_990, "synced": 99_996, "drill": {"result": "ok"}, "problems": []}


def test_the_database_hosts_archive_is_a_row_ok_or_failing_with_its_problems() -> None:
    hostvars = {"db": {"postgresql_archive_status": {"rc": 0, "stdout": json.dumps(ARCHIVE)}},
                "db2": {"postgresql_archive_status": {"rc": 0, "stdout": json.dumps(
                    {**ARCHIVE, "problems": ["the copy on the backups host lags", "the last restore drill failed: x"]})}},
                "db3": {"postgresql_archive_status": {"skipped": True}}}
    ok, failing = wsgi_status_table(["db", "db2", "db3"], hostvars).splitlines()[1:]
    assert ok.split()[:7] == ["db", "-", "-", "-", "-", "archive", "ok:"], ok
    assert "backup 1h 00m ago, copied 4s ago, drill ok" in ok
    assert "FAILING: the copy on the backups host lags; the last restore drill failed: x" in failing
    # A host that also runs apps' processes has its report's rows too.
    both = wsgi_status_table(["db"], {"db": {**hostvars["db"], **read(REPORT)}}).splitlines()[1:]
    assert [row.split()[1] for row in both] == ["-", "hello", "shop", "shop"], both


def test_a_web_servers_state_backups_are_a_row_per_app_ok_or_late() -> None:
    state = {"now": 100_000, "apps": [
        {"app": "shop", "snapshot": 100_000 - 300, "copied": 100_000 - 290, "problems": []},
        {"app": "blog", "snapshot": None, "copied": None, "problems": [
            "no snapshot of blog within 60 minutes", "blog not copied to the backups host within 60 minutes"]}]}
    hostvars = {"web1": {**read(REPORT), "backups_state_status": {"rc": 0, "stdout": json.dumps(state)}},
                "web2": {**read(REPORT), "backups_state_status": {"rc": 1, "stdout": "", "stderr": "flock: x"}}}
    rows = wsgi_status_table(["web1", "web2"], hostvars).splitlines()[1:]
    web1 = [row for row in rows if row.startswith("web1") and "state backup" in row]
    assert [row.split()[1] for row in web1] == ["shop", "blog"]
    assert web1[0].split()[5:] == ["state", "backup", "ok:", "snapshot", "5m", "00s", "ago,", "copied", "4m", "50s",
                                  "ago", "-", "-"]
    assert ("LATE: no snapshot of blog within 60 minutes; blog not copied to the backups host within 60 "
            "minutes") in web1[1]
    # After the host's own rows; a status that did not answer says so.
    assert rows.index(web1[0]) > max(i for i, row in enumerate(rows) if row.startswith("web1") and row not in web1)
    (unread,) = [row for row in rows if row.startswith("web2") and "state backup" in row]
    assert "LATE: state backups: flock: x" in unread


def test_a_host_without_any_report_is_an_error() -> None:
    with pytest.raises(AnsibleFilterError, match="no host reported"):
        wsgi_status_table([], {})


def test_filter_module_exports_the_filters() -> None:
    assert FilterModule().filters() == {"wsgi_status_spec": wsgi_status_spec, "wsgi_status_table": wsgi_status_table}
