"""Tests for the fingerprint filter: the digest moves with what is deployed, and only with it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import fingerprint as fingerprint_module
import pytest
from ansible.errors import AnsibleFilterError
from fingerprint import FilterModule, fingerprint

SETTINGS: dict[str, Any] = {"wsgi_sites": [{"server_name": "www.example.com", "port": 80}],
                            "wsgi_base_dir": "/usr/local/www", "options": {"a": 1, "b": {"x": [1, 2], "y": None}}}


@pytest.fixture()
def tree(tmp_path: Path) -> dict[str, Path]:
    """A controller layout: a roles directory, an app source directory and a single app file."""
    roles = tmp_path / "roles"
    (roles / "wsgi" / "tasks").mkdir(parents=True)
    (roles / "wsgi" / "tasks" / "main.yml").write_text("- name: Deploy\n")
    (roles / "wsgi" / "files").mkdir()
    (roles / "wsgi" / "files" / "hello.wsgi").write_text("application = None\n")
    src = tmp_path / "headrace"
    (src / "headrace").mkdir(parents=True)
    (src / "headrace" / "__init__.py").write_text("VERSION = 1\n")
    app = tmp_path / "apps" / "myapp.wsgi"
    app.parent.mkdir()
    app.write_text("application = None\n")
    return {"root": tmp_path, "roles": roles, "src": src, "app": app}


@pytest.fixture()
def digest(tree: dict[str, Path]):
    """The digest of the whole tree with SETTINGS unless told otherwise."""

    def run(settings: Any = SETTINGS, paths: Any = None) -> str:
        if paths is None:
            paths = [str(tree["roles"]), str(tree["src"]), str(tree["app"])]
        return fingerprint(paths, settings)

    return run


def test_is_a_stable_sha256(digest) -> None:
    first = digest()
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert digest() == first


def test_content_change(digest, tree) -> None:
    before = digest()
    (tree["roles"] / "wsgi" / "tasks" / "main.yml").write_text("- name: Deploy it\n")
    assert digest() != before


def test_content_change_of_a_path_given_as_a_file(digest, tree) -> None:
    before = digest()
    tree["app"].write_text("application = object()\n")
    assert digest() != before


def test_content_change_back_restores_the_digest(digest, tree) -> None:
    before = digest()
    init = tree["src"] / "headrace" / "__init__.py"
    init.write_text("VERSION = 2\n")
    assert digest() != before
    init.write_text("VERSION = 1\n")
    assert digest() == before


@pytest.mark.parametrize("new", ["roles/wsgi/tasks/extra.yml", "roles/apache/tasks/main.yml",
                                 "headrace/headrace/py.typed", "roles/wsgi/.hidden"])
def test_added_file(digest, tree, new: str) -> None:
    before = digest()
    path = tree["root"] / new
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    assert digest() != before


def test_added_copy_of_a_file(digest, tree) -> None:
    before = digest()
    (tree["roles"] / "wsgi" / "files" / "hello2.wsgi").write_text("application = None\n")
    assert digest() != before


@pytest.mark.parametrize(("old", "new"), [
    ("roles/wsgi/tasks/main.yml", "roles/wsgi/tasks/other.yml"),
    ("roles/wsgi/files/hello.wsgi", "roles/wsgi/tasks/hello.wsgi"),  # moved to another directory
    ("headrace/headrace/__init__.py", "headrace/__init__.py"),
])
def test_renamed_file(digest, tree, old: str, new: str) -> None:
    before = digest()
    (tree["root"] / old).rename(tree["root"] / new)
    assert digest() != before


def test_removed_file(digest, tree) -> None:
    before = digest()
    (tree["roles"] / "wsgi" / "files" / "hello.wsgi").unlink()
    assert digest() != before


@pytest.mark.parametrize("settings", [
    {**SETTINGS, "wsgi_base_dir": "/srv/www"},
    {**SETTINGS, "wsgi_sites": [{"server_name": "www.example.com", "port": 8080}]},
    {**SETTINGS, "options": {"a": 1, "b": {"x": [2, 1], "y": None}}},
    {**SETTINGS, "options": {"a": "1", "b": {"x": [1, 2], "y": None}}},
    {**SETTINGS, "extra": None},
    None, {}, [],
])
def test_settings_change(digest, settings: Any) -> None:
    assert digest(settings) != digest()


def test_settings_key_order_does_not_matter(digest) -> None:
    reordered = {"options": {"b": {"y": None, "x": [1, 2]}, "a": 1}, "wsgi_base_dir": "/usr/local/www",
                 "wsgi_sites": [{"port": 80, "server_name": "www.example.com"}]}
    assert list(reordered) != list(SETTINGS)
    assert digest(reordered) == digest()


@pytest.mark.parametrize("ignored", [
    "roles/wsgi/__pycache__/x.cpython-311.pyc",
    "roles/wsgi/__pycache__/notes.txt",
    "roles/wsgi/files/hello.pyc",
    "roles/wsgi/README.md",
    "README.md",
    "headrace/headrace/__pycache__/__init__.cpython-311.pyc",
    "headrace/.pytest_cache/v/cache/lastfailed",
    "headrace/.pytest_cache/CACHEDIR.TAG",
    "headrace/.ruff_cache/0.1/123",
    "headrace/headrace.egg-info/PKG-INFO",
    "roles/wsgi/tasks/.main.yml.swp",
])
def test_generated_and_doc_files_are_ignored(digest, tree, ignored: str) -> None:
    before = digest()
    path = tree["root"] / ignored
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("one")
    assert digest() == before
    path.write_text("two")
    assert digest() == before


def test_order_and_repetition_of_paths_do_not_matter(digest, tree) -> None:
    paths = [str(tree["roles"]), str(tree["src"]), str(tree["app"])]
    before = digest(paths=paths)
    assert digest(paths=list(reversed(paths))) == before
    assert digest(paths=[paths[1], paths[2], paths[0], paths[1]]) == before
    assert digest(paths=tuple(Path(p) for p in paths)) == before
    assert digest(paths=[p + "/" for p in paths[:2]] + paths[2:]) == before


def test_relative_paths_resolve_against_the_working_directory(digest, tree, monkeypatch) -> None:
    before = digest()
    monkeypatch.chdir(tree["root"])
    assert digest(paths=["roles", "./headrace", "apps/myapp.wsgi"]) == before


def test_which_paths_are_hashed_matters(digest, tree) -> None:
    assert digest(paths=[str(tree["roles"]), str(tree["src"])]) != digest()


def test_no_paths_hashes_the_settings_only() -> None:
    assert fingerprint([], {"a": 1}) == fingerprint(None, {"a": 1})
    assert fingerprint([], {"a": 1}) != fingerprint([], {"a": 2})


def test_missing_path_is_named(digest, tree) -> None:
    missing = tree["root"] / "roles" / "nope"
    with pytest.raises(AnsibleFilterError) as info:
        digest(paths=[str(tree["roles"]), str(missing)])
    assert str(info.value.message) == f"fingerprint: {missing} does not exist on the controller"


def test_filter_module_exposes_the_filter() -> None:
    assert FilterModule().filters() == {"fingerprint": fingerprint_module.fingerprint}
