"""The wsgi_accounts module: a role step's groups and users made in one module run.

plan() is tested in process; the module then runs as Ansible runs it on a host (its file with its
arguments) against an etc/ of its own in a temporary directory, with the real groupadd, useradd and usermod
and their --prefix, so that this machine's own accounts are never touched: the accounts a user of the roles
sees, what is reported, a dry run that changes nothing, a second run that changes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from plugin_loading import load

PROJECT_DIR = Path(__file__).resolve().parent.parent
MODULE_PATH = PROJECT_DIR / "plugins" / "modules" / "wsgi_accounts.py"
MODULE = load(MODULE_PATH, "wsgi_accounts_module")

NOLOGIN = "/usr/sbin/nologin"
GROUPS = ["wsgi", "shop"]
USERS = [{"name": "shop", "group": "shop", "groups": ["wsgi"], "shell": NOLOGIN, "home": "/nonexistent"},
         {"name": "www-data", "groups": ["wsgi"]}]


def test_a_fresh_host_gets_groups_first_then_users_and_existing_users_only_their_groups() -> None:
    users = {"www-data": MODULE.User(gid=33, home="/var/www", shell=NOLOGIN)}
    groups = {"www-data": MODULE.Group(gid=33, members=())}
    assert MODULE.plan(GROUPS, USERS, users, groups) == [
        ["groupadd", "--system", "wsgi"],
        ["groupadd", "--system", "shop"],
        ["useradd", "--system", "--gid", "shop", "--groups", "wsgi", "--shell", NOLOGIN, "--home-dir",
         "/nonexistent", "--no-create-home", "shop"],
        ["usermod", "--append", "--groups", "wsgi", "www-data"],
    ]


def test_up_to_date_accounts_need_no_command_and_a_changed_shell_one_usermod() -> None:
    users = {"shop": MODULE.User(gid=900, home="/nonexistent", shell=NOLOGIN),
             "www-data": MODULE.User(gid=33, home="/var/www", shell=NOLOGIN)}
    groups = {"wsgi": MODULE.Group(gid=901, members=("shop", "www-data")), "shop": MODULE.Group(gid=900, members=())}
    assert MODULE.plan(GROUPS, USERS, users, groups) == []
    users["shop"] = MODULE.User(gid=900, home="/nonexistent", shell="/bin/sh")
    assert MODULE.plan(GROUPS, USERS, users, groups) == [["usermod", "--shell", NOLOGIN, "shop"]]


@pytest.mark.parametrize(("groups", "users", "message"), [
    (["a:b"], [], "groups[0]: field 'name' is 'a:b'; allowed: a non-empty name without"),
    ([], [{"group": "x"}], "users[0]: field 'name' is missing"),
    ([], [{"name": "u", "groups": ["nosuch"]}], "users[0]: group 'nosuch' of user 'u' does not exist"),
])
def test_bad_entries_are_refused_naming_the_entry(groups: list, users: list, message: str) -> None:
    with pytest.raises(MODULE.AccountError, match=message.replace("[", r"\[").replace("]", r"\]")):
        MODULE.plan(groups, users, {}, {})


def test_a_dry_run_takes_a_missing_group_for_one_an_earlier_task_makes() -> None:
    assert MODULE.plan([], [{"name": "u", "groups": ["later"]}], {}, {}, check=True)[0][-1] == "u"


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    """An etc/ with root and www-data, as a fresh Debian host has."""
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("useradd --prefix needs root and the shadow tools")
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(f"root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:{NOLOGIN}\n")
    (etc / "group").write_text("root:x:0:\nwww-data:x:33:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\nwww-data:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\nwww-data:*::\n")
    for name in ("shadow", "gshadow"):
        (etc / name).chmod(0o600)
    return tmp_path


def run(root: Path, check: bool = False) -> dict[str, Any]:
    args_file = root / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "groups": GROUPS, "users": USERS, "root": str(root), "_ansible_check_mode": check, "_ansible_diff": True}}))
    done = subprocess.run([sys.executable, str(MODULE_PATH), str(args_file)], capture_output=True, text=True,
                          check=False)
    return json.loads(done.stdout)


def test_the_accounts_are_made_once_then_nothing_changes(root: Path) -> None:
    dry = run(root, check=True)
    assert dry["changed"] and len(dry["commands"]) == 4
    assert "shop" not in (root / "etc" / "passwd").read_text()
    made = run(root)
    assert made["changed"], made
    users, groups = MODULE.read_accounts(str(root))
    assert (users["shop"].home, users["shop"].shell, users["shop"].gid) == ("/nonexistent", NOLOGIN,
                                                                            groups["shop"].gid)
    assert users["shop"].gid < 1000 and groups["wsgi"].gid < 1000  # system accounts
    assert set(groups["wsgi"].members) == {"shop", "www-data"}
    assert users["www-data"] == MODULE.User(gid=33, home="/var/www", shell=NOLOGIN)
    again = run(root)
    assert (again["changed"], again["commands"]) == (False, [])
