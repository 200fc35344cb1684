"""Entries of the wsgi_files module, built one way by every filter that lays out a role step's paths.

A directory is root's (its group and mode may differ: the scripts' group, a service's own); a path to
remove is its path alone. Files differ more between callers (backups, hidden diffs) and stay theirs.
"""

from __future__ import annotations

import json
from typing import Any


def directory_entry(path: str, group: str = "root", mode: str = "0755") -> dict[str, Any]:
    """A directory owned by root, of this group and mode."""
    return {"path": path, "state": "directory", "owner": "root", "group": group, "mode": mode}


def absent_entry(path: str) -> dict[str, Any]:
    """A path removed with everything under it."""
    return {"path": path, "state": "absent"}


def nice_json(value: Any) -> str:
    """value as Ansible's to_nice_json writes it, with a final newline: a file the roles wrote before with
    to_nice_json keeps its bytes (and so does not count as changed) when a filter writes it instead."""
    return json.dumps(value, indent=4, sort_keys=True, separators=(",", ": ")) + "\n"
