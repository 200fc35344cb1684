"""The wsgi_credentials module: a service's passwords kept in root-only files, in process.

keep_directory and keep_password run on a temporary directory (as root, like the module on a host): a
password not given is generated once and then kept, a given one is written and kept, every file and the
directory are root's and readable by root only, and a dry run writes nothing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from plugin_loading import load

PROJECT_DIR = Path(__file__).resolve().parent.parent
MODULE = load(PROJECT_DIR / "plugins" / "modules" / "wsgi_credentials.py", "wsgi_credentials_module")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the module makes root's files")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_password_not_given_is_generated_once_and_kept(tmp_path: Path) -> None:
    directory = tmp_path / "redis"
    assert MODULE.keep_directory(str(directory), False) is True
    assert mode(directory) == 0o700 and directory.stat().st_uid == 0
    value, changed = MODULE.keep_password(str(directory), "shop", None, False)
    assert changed and len(value) >= 40
    assert (directory / "shop.password").read_text() == value and mode(directory / "shop.password") == 0o600
    assert MODULE.keep_password(str(directory), "shop", None, False) == (value, False)
    assert MODULE.keep_directory(str(directory), False) is False


def test_a_given_password_is_written_and_replaces_a_generated_one(tmp_path: Path) -> None:
    MODULE.keep_password(str(tmp_path), "shop", None, False)
    assert MODULE.keep_password(str(tmp_path), "shop", "vaulted", False) == ("vaulted", True)
    assert (tmp_path / "shop.password").read_text() == "vaulted"
    assert MODULE.keep_password(str(tmp_path), "shop", "vaulted", False) == ("vaulted", False)


def test_a_file_others_can_read_is_made_root_only(tmp_path: Path) -> None:
    (tmp_path / "shop.password").write_text("kept")
    (tmp_path / "shop.password").chmod(0o644)
    assert MODULE.keep_password(str(tmp_path), "shop", None, False) == ("kept", True)
    assert mode(tmp_path / "shop.password") == 0o600


def test_a_dry_run_writes_nothing_and_returns_no_password_it_would_generate(tmp_path: Path) -> None:
    directory = tmp_path / "redis"
    assert MODULE.keep_directory(str(directory), True) is True and not directory.exists()
    assert MODULE.keep_password(str(tmp_path), "shop", None, True) == (None, True)
    assert MODULE.keep_password(str(tmp_path), "blog", "given", True) == ("given", True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("given", "stored", "action"), [
    (None, None, "generate"), (None, "", "generate"), (None, "x", "keep"), ("x", "x", "keep"), ("y", "x", "write"),
    ("y", None, "write"),
])
def test_password_action(given: str | None, stored: str | None, action: str) -> None:
    assert MODULE.password_action(given, stored) == action
