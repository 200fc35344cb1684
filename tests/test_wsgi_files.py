"""The wsgi_files module: a role step's files, directories and links in one module run, in process.

The tests call the module's apply() on a temporary directory, as root (the tests and CI run as root, like
the module on a host), and check what a user of the roles sees: the paths, their contents, owners and
modes, what is reported changed, that a dry run changes nothing and that a second run changes nothing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from plugin_loading import load

PROJECT_DIR = Path(__file__).resolve().parent.parent
MODULE = load(PROJECT_DIR / "plugins" / "modules" / "wsgi_files.py", "wsgi_files_module")


def run(files: list[dict[str, Any]], check: bool = False) -> tuple[list[dict], list[dict]]:
    results: list[dict] = []
    diffs: list[dict] = []
    MODULE.apply(files, check, results, diffs)
    return results, diffs


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture()
def step(tmp_path: Path) -> list[dict[str, Any]]:
    """A role step: a directory, a file in it, a link to the file."""
    return [
        {"path": str(tmp_path / "d"), "state": "directory", "owner": "root", "group": "nogroup", "mode": "0750"},
        {"path": str(tmp_path / "d" / "f.conf"), "content": "one\n", "owner": "root", "group": "root",
         "mode": "0640"},
        {"path": str(tmp_path / "link.conf"), "state": "link", "src": str(tmp_path / "d" / "f.conf")},
    ]


def test_a_step_is_put_in_place_once_and_then_changes_nothing(tmp_path: Path, step) -> None:
    results, diffs = run(step)
    assert [(r["changed"], r["created"]) for r in results] == [(True, True)] * 3
    assert mode_of(tmp_path / "d") == 0o750 and (tmp_path / "d").stat().st_gid == 65534
    assert (tmp_path / "d" / "f.conf").read_text() == "one\n" and mode_of(tmp_path / "d" / "f.conf") == 0o640
    assert os.readlink(tmp_path / "link.conf") == str(tmp_path / "d" / "f.conf")
    assert [d["after_header"] for d in diffs] == [e["path"] for e in step]
    again, diffs = run(step)
    assert not any(r["changed"] for r in again) and diffs == []


def test_a_dry_run_reports_what_would_change_and_changes_nothing(tmp_path: Path, step) -> None:
    results, diffs = run(step, check=True)
    assert all(r["changed"] for r in results) and len(diffs) == 3
    assert list(tmp_path.iterdir()) == []


def test_only_what_differs_changes_and_a_replaced_file_is_backed_up(tmp_path: Path, step) -> None:
    run(step)
    step[1] |= {"content": "two\n", "backup": True}
    step[0]["mode"] = "0755"
    results, diffs = run(step)
    assert [r["changed"] for r in results] == [True, True, False]
    backup = Path(results[1]["backup_file"])
    assert backup.read_text() == "one\n" and (tmp_path / "d" / "f.conf").read_text() == "two\n"
    assert diffs[1]["before"] == "one\n" and diffs[1]["after"] == "two\n"
    assert mode_of(tmp_path / "d") == 0o755


def test_hidden_contents_stay_out_of_the_diff(tmp_path: Path) -> None:
    _, diffs = run([{"path": str(tmp_path / "secret.env"), "content": "TOKEN=s3cret\n", "mode": "0600",
                     "diff": False}])
    assert "s3cret" not in repr(diffs)
    assert mode_of(tmp_path / "secret.env") == 0o600


def test_absent_removes_files_links_and_directories(tmp_path: Path, step) -> None:
    run(step)
    results, _ = run([{"path": str(tmp_path / "link.conf"), "state": "absent"},
                      {"path": str(tmp_path / "d"), "state": "absent"},
                      {"path": str(tmp_path / "never"), "state": "absent"}])
    assert [r["changed"] for r in results] == [True, True, False]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("entry", "message"), [
    ({"path": "relative", "content": ""}, "path 'relative'; allowed: an absolute path"),
    ({"path": "/x", "state": "fifo"}, "/x: state 'fifo'; allowed: one of file, directory, link, absent"),
    ({"path": "/x", "state": "link"}, "/x: state link needs src"),
    ({"path": "/nonexistent-dir/x", "content": "a"}, "/nonexistent-dir/x: its directory does not exist"),
    ({"path": "/x", "state": "directory", "owner": "no-such-user-here"}, "owner 'no-such-user-here' is not a user"),
    ({"path": "/x", "state": "directory", "mode": "rw-r--r--"}, "mode 'rw-r--r--'; allowed: an octal mode"),
])
def test_bad_entries_are_refused_naming_the_path(entry: dict, message: str) -> None:
    with pytest.raises(MODULE.EntryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run([entry])


def test_a_failed_entry_leaves_the_results_of_those_before_it(tmp_path: Path) -> None:
    results: list[dict] = []
    with pytest.raises(MODULE.EntryError):
        MODULE.apply([{"path": str(tmp_path / "a"), "content": "a"},
                      {"path": str(tmp_path / "a"), "state": "directory"}], False, results, [])
    assert [r["path"] for r in results] == [str(tmp_path / "a")]


def test_a_link_replaces_only_a_link(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    with pytest.raises(MODULE.EntryError, match="is not a link"):
        run([{"path": str(tmp_path / "plain"), "state": "link", "src": "/etc"}])
    os.symlink("/etc", tmp_path / "l")
    results, _ = run([{"path": str(tmp_path / "l"), "state": "link", "src": "/usr"}])
    assert results[0]["changed"] and os.readlink(tmp_path / "l") == "/usr"


def test_a_dry_run_accepts_users_and_groups_an_earlier_task_would_create(tmp_path: Path) -> None:
    """In --check on a fresh host the scripts group does not exist yet: reported as a change, not a failure."""
    entries = [{"path": str(tmp_path / "s"), "state": "directory", "group": "no-such-group-here", "mode": "0750"},
               {"path": str(tmp_path / "s" / "f"), "content": "x", "owner": "no-such-user-here"}]
    results, diffs = run(entries, check=True)
    assert [r["changed"] for r in results] == [True, True] and "(created in this run)" in diffs[0]["after"]
    with pytest.raises(MODULE.EntryError, match="group 'no-such-group-here' is not a group"):
        run(entries)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root as a user sees it: kind, owner, group, mode, and contents or link target."""
    seen: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        info = os.lstat(path)
        if path.is_symlink():
            what: Any = ("link", os.readlink(path))
        elif path.is_dir():
            what = ("directory",)
        else:
            what = ("file", path.read_text())
        seen[str(path.relative_to(root))] = (*what, info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode))
    return seen


@pytest.fixture()
def live(tmp_path: Path, step) -> list[dict[str, Any]]:
    """A step already in place, and a change to it of every kind: new contents, new modes, a file in a new
    directory tree, a link pointed elsewhere, a file and a directory removed."""
    run(step)
    (tmp_path / "old.conf").write_text("old\n")
    (tmp_path / "olddir").mkdir()
    (tmp_path / "olddir" / "inside").write_text("kept\n")
    return [
        {**step[0], "mode": "0755"},
        {**step[1], "content": "two\n"},
        {"path": str(tmp_path / "new" / "deeper"), "state": "directory"},
        {"path": str(tmp_path / "new" / "deeper" / "n.conf"), "content": "new\n"},
        {"path": str(tmp_path / "link.conf"), "state": "link", "src": str(tmp_path / "new" / "deeper" / "n.conf")},
        {"path": str(tmp_path / "old.conf"), "state": "absent"},
        {"path": str(tmp_path / "olddir"), "state": "absent"},
    ]


def test_a_change_the_check_command_rejects_is_put_back_exactly(tmp_path: Path, live) -> None:
    before = snapshot(tmp_path)
    seen: list[dict] = []

    def reject() -> tuple[bool, str]:
        seen.append(snapshot(tmp_path))  # the command sees the whole change in place
        return False, "AH00526: Syntax error"

    results: list[dict] = []
    rejection = MODULE.apply_checked(live, False, results, [], reject)
    assert rejection == "AH00526: Syntax error"
    assert seen[0]["d/f.conf"][1] == "two\n" and "old.conf" not in seen[0] and "new/deeper/n.conf" in seen[0]
    assert snapshot(tmp_path) == before  # contents, owners, modes, links; nothing new, nothing left aside
    assert all(r["changed"] for r in results)


def test_an_accepted_change_stays_and_leaves_nothing_aside(tmp_path: Path, live) -> None:
    rejection = MODULE.apply_checked(live, False, [], [], lambda: (True, ""))
    assert rejection is None
    assert snapshot(tmp_path) == {
        "d": ("directory", 0, 65534, 0o755),
        "d/f.conf": ("file", "two\n", 0, 0, 0o640),
        "link.conf": ("link", str(tmp_path / "new" / "deeper" / "n.conf"), 0, 0, 0o777),
        "new": ("directory", 0, 0, 0o755),
        "new/deeper": ("directory", 0, 0, 0o755),
        "new/deeper/n.conf": ("file", "new\n", 0, 0, 0o644),
    }


def test_the_check_command_runs_only_for_a_real_change(tmp_path: Path, step) -> None:
    calls: list[int] = []

    def count() -> tuple[bool, str]:
        calls.append(1)
        return True, ""

    MODULE.apply_checked(step, True, [], [], count)  # a dry run
    assert calls == [] and list(tmp_path.iterdir()) == []
    MODULE.apply_checked(step, False, [], [], count)
    MODULE.apply_checked(step, False, [], [], count)  # nothing to change
    assert calls == [1]


def test_with_a_check_command_a_failed_entry_puts_back_those_before_it(tmp_path: Path, live) -> None:
    before = snapshot(tmp_path)
    with pytest.raises(MODULE.EntryError, match="is not a directory"):
        MODULE.apply_checked([*live, {"path": str(tmp_path / "link.conf"), "state": "directory"}], False, [], [],
                             lambda: (True, ""))
    assert snapshot(tmp_path) == before
