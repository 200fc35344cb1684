"""The postgresql role's continuous archive: its timers, the settings that turn it on, and the check of a
restore's inputs, which stops bad input on the controller before the database host changes."""

from __future__ import annotations

import datetime

import pytest
from postgresql_archive import (
    FilterModule,
    postgresql_archive_settings,
    postgresql_archive_timers,
    postgresql_restore_problems,
)

NOW = datetime.datetime(2026, 12, 5, 12, 0, tzinfo=datetime.UTC).timestamp()


def test_a_timer_per_step_every_few_seconds_or_on_its_calendar() -> None:
    sync, drill = postgresql_archive_timers([{"name": "sync", "every": "10"},
                                             {"name": "drill", "calendar": "Sun *-*-* 04:00:00"}], "/etc/systemd/system")
    assert sync["path"] == "/etc/systemd/system/wsgi-postgresql-archive-sync.timer"
    assert "Unit=wsgi-postgresql-archive@sync.service\n" in sync["content"]
    assert "OnUnitInactiveSec=10s\n" in sync["content"] and "OnCalendar" not in sync["content"]
    assert "OnCalendar=Sun *-*-* 04:00:00\n" in drill["content"] and "Persistent=true\n" in drill["content"]
    assert (drill["owner"], drill["mode"]) == ("root", "0644")


def test_archiving_pushes_each_segment_and_finishes_one_within_the_timeout() -> None:
    assert postgresql_archive_settings(True, "main", 30) == {
        "archive_mode": "on", "archive_command": "pgbackrest --stanza=main archive-push %p", "archive_timeout": "30s"}
    assert postgresql_archive_settings(False, "main", 30) == {}


def problems(database="shop", time="", file="", retention=14) -> str:
    return postgresql_restore_problems(database, time, file, ["board", "shop"], retention, NOW)


def test_good_restores_pass() -> None:
    assert problems() == ""
    assert problems(time="2026-12-05 10:42:00+00:00") == ""
    assert problems(time="2026-12-05T11:59:00+01:00") == ""
    assert problems("all") == ""
    assert problems(file="/var/backups/postgresql/shop/shop-1.dump") == ""


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"time": "2026-12-06 10:00:00+00:00"}, "is in the future"),
    ({"time": "2026-11-01 10:00:00+00:00"}, "is more than backup_retention_days (14) ago"),
    ({"time": "2026-12-05 10:42:00"}, "allowed: a time with its zone"),
    ({"time": "yesterday"}, "postgresql_restore_time is 'yesterday'"),
    ({"database": "nope"}, ("postgresql_restore_database is 'nope', which is no app's database on the database "
                            "host; allowed: board, shop, or all")),
    ({"database": "Shop;"}, "postgresql_restore_database is 'Shop;'; allowed: a lower-case identifier"),
    ({"database": "all", "time": "2026-12-05 10:42:00+00:00"}, "no postgresql_restore_time"),
    ({"time": "2026-12-05 10:42:00+00:00", "file": "/x.dump"}, "one of them"),
    ({"file": "x.dump"}, "postgresql_restore_file is 'x.dump'; allowed: empty or the absolute path"),
])
def test_bad_restores_are_named(kwargs: dict, fragment: str) -> None:
    assert fragment in problems(**kwargs)


def test_filter_module_exports_the_filters() -> None:
    assert set(FilterModule().filters()) == {"postgresql_archive_timers", "postgresql_archive_settings",
                                            "postgresql_restore_problems"}
