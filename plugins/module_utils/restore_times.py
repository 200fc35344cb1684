"""The time a restore goes back to, checked on the controller before any host changes.

Shared by the database restore (postgresql_restore_time) and the app state restore (wsgi_restore_time): a
time without its zone would be read in the host's zone, one in the future or before what the retention keeps
cannot be restored to, and each would otherwise fail halfway through on the host.
"""

from __future__ import annotations

import datetime
from typing import Any

TIME_ALLOWED = "a time with its zone, such as '2026-12-05 10:42:00+00:00', in the past and within the retention"


def parse_restore_time(value: str) -> datetime.datetime | None:
    """value as an aware datetime (ISO 8601, a blank or T between date and time); None without a zone."""
    try:
        moment = datetime.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def restore_time_problems(variable: str, time: Any, retention_days: Any, now: Any) -> list[str]:
    """What is wrong with the restore time in `variable` (empty: the newest point, nothing wrong): not a time
    with a zone, after now (a Unix time), or more than retention_days before now."""
    if not time:
        return []
    moment = parse_restore_time(str(time))
    if moment is None:
        return [f"{variable} is {time!r}; allowed: {TIME_ALLOWED}"]
    if moment.timestamp() > float(now):
        return [f"{variable} {time!r} is in the future; allowed: {TIME_ALLOWED}"]
    if moment.timestamp() < float(now) - int(retention_days) * 86400:
        return [(f"{variable} {time!r} is more than backup_retention_days ({int(retention_days)}) ago; "
                 f"allowed: {TIME_ALLOWED}")]
    return []
