"""Put a set of files, directories and links in place in one module run.

Why one module for many paths: every module run costs a connection to the host, a Python started there and
a result sent back (about 0.3 CPU s on the host whatever the module does), so a role step that writes ten
directories and five files as fifteen loop items pays fifteen times for nothing but start-up. This module
takes the whole step's paths at once, in order, and changes only what differs, with the same checks and
modes as ansible.builtin.file and ansible.builtin.copy: idempotent, a dry run that changes nothing, a diff
per changed path, atomic file writes, and on request a backup of a file it replaces.

Why the check command: the apache role must never leave a configuration Apache rejects. Writing the files,
running `apachectl configtest` and putting everything back on a rejection took three or more module runs
and a rescue block; with check_command the module does all of it in the same run: every path it changes
is kept aside (a hard link to a replaced file, a removed path renamed, a link's old target, old owners and
modes) until the command has accepted the result, and put back exactly as it was if it does not.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import time
from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.file_attributes import (
    attributes_differ,
    set_attributes,
    write_atomically,
)

DOCUMENTATION = r"""
module: wsgi_files
author: wsgi-hosting maintainers
version_added: "1.0.0"
short_description: Put a set of files, directories and links in place in one module run
description:
  - Each entry of O(files) is a path and what it must be, applied in the given order, so a directory comes
    before what it holds. Only what differs is changed; the result says, per path, whether it changed.
  - One module run for a whole role step instead of one per loop item (each costs a Python start-up on the
    host).
  - Supports check mode (nothing is changed; the result says what would be) and diff mode (one diff per
    changed path; a file's diff shows its contents unless the entry sets C(diff=false)).
options:
  files:
    description:
      - The paths, in order. Each is a mapping with C(path) (absolute), C(state) (C(file), the default;
        C(directory); C(link); C(absent)), and by state C(content) (file, the text to write), C(src) (link,
        its target), C(owner), C(group) and C(mode) (file and directory; a mode such as C("0644")),
        C(backup) (file; keep the replaced file as C(<path>.<pid>.<time>~), returned as C(backup_file)) and
        C(diff) (file; false hides its contents from the diff).
      - A file's directory must exist (earlier in the list, or already). A link replaces only a link; an
        absent path is removed with everything under it.
    type: list
    elements: dict
    required: true
  check_command:
    description:
      - A command (argv, no shell) run after the entries when any of them changed, outside check mode; if it
        exits non-zero, every path this run changed is put back as it was (contents, owner, mode, link
        target; created paths removed, removed paths restored) and the module fails with
        O(check_failed_msg) followed by the command's output. Nothing is left aside after a run.
    type: list
    elements: str
  check_failed_msg:
    description: The start of the failure message when O(check_command) rejects the change.
    type: str
    default: The check command rejected the change; every path was put back as it was. It said
"""

RETURN = r"""
results:
  description: Per entry, in order, C(path), C(state), C(changed), C(created) (the path did not exist) and
    C(backup_file) where a backup was made.
  type: list
  elements: dict
  returned: always
"""

STATES = ("file", "directory", "link", "absent")


class EntryError(Exception):
    """An entry that cannot be applied: its message names the path."""


def _mode(value: Any, path: str) -> int | None:
    if value is None:
        return None
    try:
        return int(str(value), 8)
    except ValueError:
        raise EntryError(f"{path}: mode {value!r}; allowed: an octal mode such as '0644'") from None


# In a dry run, a user or group that an earlier task of the run would create does not exist yet: the path
# is reported as changing (as ansible.builtin.file does for a path it would create) instead of failing.
UNKNOWN = -2


def _ident(name: Any, path: str, check: bool, lookup: Any, what: str) -> int | None:
    """The number of a user (lookup pwd.getpwnam) or group (grp.getgrnam) by its name; None for no name."""
    if name is None:
        return None
    try:
        return lookup(str(name))[2]
    except KeyError:
        if check:
            return UNKNOWN
        raise EntryError(f"{path}: {what} {name!r} is not a {'user' if what == 'owner' else what} of this host") from None


def _uid(owner: Any, path: str, check: bool) -> int | None:
    return _ident(owner, path, check, pwd.getpwnam, "owner")


def _gid(group: Any, path: str, check: bool) -> int | None:
    return _ident(group, path, check, grp.getgrnam, "group")


def _describe(info: os.stat_result | None, target: str = "") -> str:
    """A path's kind and attributes, for a diff."""
    if info is None:
        return "absent\n"
    if stat.S_ISLNK(info.st_mode):
        return f"link -> {target}\n"
    # As it is: what _describe_wanted says of a path when nothing is asked of it.
    return _describe_wanted("directory" if stat.S_ISDIR(info.st_mode) else "file", None, None, None, info)


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _make_link(target: str, path: str) -> None:
    """A link made under a temporary name and renamed over the path: never a moment without one."""
    temporary = f"{path}.{os.getpid()}.new"
    os.symlink(target, temporary)
    os.rename(temporary, path)


class Journal:
    """What a run changed, kept so that a rejected change (check_command) can be put back as it was.

    Each change records how to undo it before it is made; replaced and removed paths are kept aside under
    a name of their own in the same directory (a rename, never a copy) until the run is accepted.
    """

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []
        self._aside: list[str] = []

    def _aside_name(self, path: str) -> str:
        return f"{path}.{os.getpid()}.{len(self._aside)}.aside~"

    def created(self, path: str) -> None:
        self._undo.append(lambda: _remove(path))

    def attributes(self, path: str, info: os.stat_result) -> None:
        self._undo.append(lambda: set_attributes(path, info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)))

    def replaced_file(self, path: str) -> None:
        """Before a file is written over: its old inode keeps a name (a hard link), contents and all."""
        aside = self._aside_name(path)
        os.link(path, aside)
        self._aside.append(aside)
        self._undo.append(lambda: os.rename(aside, path))

    def replaced_link(self, path: str, target: str) -> None:
        self._undo.append(lambda: _make_link(target, path))

    def remove(self, path: str) -> None:
        """Removes the path by renaming it aside, so that it can come back."""
        aside = self._aside_name(path)
        os.rename(path, aside)
        self._aside.append(aside)
        self._undo.append(lambda: os.rename(aside, path))

    def undo(self) -> None:
        for step in reversed(self._undo):
            step()
        self._undo.clear()
        self._aside.clear()

    def commit(self) -> None:
        for aside in self._aside:
            _remove(aside)
        self._undo.clear()
        self._aside.clear()


def _write_atomically(path: str, data: bytes, uid: int | None, gid: int | None, mode: int | None) -> None:
    """The new contents renamed over the path (write_atomically): a reader sees the old file or the new one,
    never half of it. Attributes not asked for stay as they were, as with ansible.builtin.copy."""

    def prepare(temporary: str) -> None:
        current = _lstat(path)
        if current is not None and not stat.S_ISLNK(current.st_mode):
            set_attributes(temporary, current.st_uid, current.st_gid, stat.S_IMODE(current.st_mode))
        else:
            os.chmod(temporary, 0o644 if mode is None else mode)
        set_attributes(temporary, uid, gid, mode)

    write_atomically(path, data, prepare)


def _file(entry: dict[str, Any], check: bool, result: dict[str, Any], diff: dict[str, Any],
          planned: set[str], journal: Journal | None) -> None:
    path = entry["path"]
    content = entry.get("content")
    if content is None:
        raise EntryError(f"{path}: state file needs content")
    data = str(content).encode("utf-8")
    uid, gid = _uid(entry.get("owner"), path, check), _gid(entry.get("group"), path, check)
    mode = _mode(entry.get("mode"), path)
    info = _lstat(path)
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise EntryError(f"{path}: is not a regular file; allowed: a file or no path")
    if not (os.path.isdir(os.path.dirname(path)) or os.path.dirname(path) in planned):
        raise EntryError(f"{path}: its directory does not exist")
    old = b""
    if info is not None:
        with open(path, "rb") as stream:
            old = stream.read()
    if info is not None and old == data:
        if attributes_differ(info, uid, gid, mode):
            result["changed"] = True
            diff.update(before=_describe(info), after=_describe_wanted("file", uid, gid, mode, info))
            if not check:
                if journal:
                    journal.attributes(path, info)
                set_attributes(path, uid, gid, mode)
        return
    result.update(changed=True, created=info is None)
    if entry.get("diff", True):
        diff.update(before=old.decode("utf-8", "replace"), after=data.decode("utf-8", "replace"))
    else:
        diff.update(before="(contents hidden)\n" if info else "absent\n", after="(contents hidden, changed)\n")
    if check:
        return
    if info is not None and entry.get("backup"):
        backup = f"{path}.{os.getpid()}.{time.strftime('%Y-%m-%d@%H:%M:%S')}~"
        shutil.copy2(path, backup)
        result["backup_file"] = backup
    if journal:
        if info is None:
            journal.created(path)
        else:
            journal.replaced_file(path)
    _write_atomically(path, data, uid, gid, mode)


def _name(ident: int | None, current: int | None, lookup: Any) -> str:
    """A user's or group's name for a diff: the wanted one, else the current one, else root."""
    wanted = ident if ident is not None else current
    if wanted is None:
        return "root"
    if wanted == UNKNOWN:
        return "(created in this run)"
    try:
        return lookup(wanted)[0]
    except KeyError:
        return str(wanted)


def _describe_wanted(kind: str, uid: int | None, gid: int | None, mode: int | None,
                     info: os.stat_result | None) -> str:
    owner = _name(uid, info.st_uid if info else None, pwd.getpwuid)
    group = _name(gid, info.st_gid if info else None, grp.getgrgid)
    shown = mode if mode is not None else (stat.S_IMODE(info.st_mode) if info else 0o755)
    return f"{kind} {owner}:{group} {shown:04o}\n"


def _directory(entry: dict[str, Any], check: bool, result: dict[str, Any], diff: dict[str, Any],
               planned: set[str], journal: Journal | None) -> None:
    path = entry["path"]
    uid, gid = _uid(entry.get("owner"), path, check), _gid(entry.get("group"), path, check)
    mode = _mode(entry.get("mode"), path)
    info = _lstat(path)
    if info is not None and not stat.S_ISDIR(info.st_mode):
        raise EntryError(f"{path}: is not a directory; allowed: a directory or no path")
    if info is not None and not attributes_differ(info, uid, gid, mode):
        return
    result.update(changed=True, created=info is None)
    diff.update(before=_describe(info), after=_describe_wanted("directory", uid, gid, mode, info))
    if check:
        planned.add(path)  # a dry run: the files of later entries go in it
        return
    if journal:
        if info is None:
            journal.created(_topmost_missing(path))
        else:
            journal.attributes(path, info)
    if info is None:
        os.makedirs(path, exist_ok=True)
    set_attributes(path, uid, gid, mode)


def _link(entry: dict[str, Any], check: bool, result: dict[str, Any], diff: dict[str, Any],
          planned: set[str], journal: Journal | None) -> None:
    path, target = entry["path"], entry.get("src")
    if not target:
        raise EntryError(f"{path}: state link needs src, the link's target")
    info = _lstat(path)
    current = os.readlink(path) if info is not None and stat.S_ISLNK(info.st_mode) else None
    if info is not None and current is None:
        raise EntryError(f"{path}: is not a link; allowed: a link or no path")
    if current == target:
        return
    result.update(changed=True, created=info is None)
    diff.update(before=_describe(info, current or ""), after=f"link -> {target}\n")
    if check:
        return
    if journal:
        if current is None:
            journal.created(path)
        else:
            journal.replaced_link(path, current)
    _make_link(target, path)


def _absent(entry: dict[str, Any], check: bool, result: dict[str, Any], diff: dict[str, Any],
            planned: set[str], journal: Journal | None) -> None:
    path = entry["path"]
    info = _lstat(path)
    if info is None:
        return
    result["changed"] = True
    diff.update(before=_describe(info, os.readlink(path) if stat.S_ISLNK(info.st_mode) else ""), after="absent\n")
    if check:
        return
    if journal:
        journal.remove(path)
    else:
        _remove(path)


APPLY = {"file": _file, "directory": _directory, "link": _link, "absent": _absent}


def _topmost_missing(path: str) -> str:
    """The highest missing directory of path: what os.makedirs creates, and so what undoing it removes."""
    while not os.path.lexists(os.path.dirname(path)):
        path = os.path.dirname(path)
    return path


def apply(files: list[dict[str, Any]], check: bool, results: list[dict[str, Any]],
          diffs: list[dict[str, Any]], journal: Journal | None = None) -> None:
    """Apply every entry in order, adding the result of each to results and the diff of each that changed
    to diffs: after a failed entry, results holds what was done before it. With a journal, every change
    is recorded in it so that it can be undone."""
    planned: set[str] = set()  # the directories a dry run would have made
    for entry in files:
        path, state = entry.get("path"), entry.get("state") or "file"
        if not isinstance(path, str) or not os.path.isabs(path):
            raise EntryError(f"path {path!r}; allowed: an absolute path")
        if state not in STATES:
            raise EntryError(f"{path}: state {state!r}; allowed: one of {', '.join(STATES)}")
        result: dict[str, Any] = {"path": path, "state": state, "changed": False, "created": False}
        diff: dict[str, Any] = {}
        APPLY[state](entry, check, result, diff, planned, journal)
        results.append(result)
        if result["changed"]:
            diffs.append({"before_header": path, "after_header": path, **diff})


def apply_checked(files: list[dict[str, Any]], check: bool, results: list[dict[str, Any]],
                  diffs: list[dict[str, Any]], check_command: Callable[[], tuple[bool, str]] | None) -> str | None:
    """apply(), then, when anything changed for real, check_command: None when the result stands, else the
    command's output, with every change put back. A failed entry puts back those before it too."""
    journal = Journal() if check_command and not check else None
    try:
        apply(files, check, results, diffs, journal)
    except BaseException:
        if journal:
            journal.undo()
        raise
    if journal is None or not any(result["changed"] for result in results):
        return None
    accepted, output = check_command()
    if accepted:
        journal.commit()
        return None
    journal.undo()
    return output


def main() -> None:
    module = AnsibleModule(argument_spec={
        "files": {"type": "list", "elements": "dict", "required": True},
        "check_command": {"type": "list", "elements": "str"},
        "check_failed_msg": {"type": "str",
                             "default": "The check command rejected the change; every path was put back as it "
                                        "was. It said"},
    }, supports_check_mode=True)

    def run_check() -> tuple[bool, str]:
        rc, out, err = module.run_command(module.params["check_command"])
        return rc == 0, "\n".join(part.strip() for part in (err, out) if part.strip())

    results: list[dict[str, Any]] = []
    diffs: list[dict[str, Any]] = []
    try:
        rejection = apply_checked(module.params["files"], module.check_mode, results, diffs,
                                  run_check if module.params["check_command"] else None)
    except (EntryError, OSError) as error:
        module.fail_json(msg=str(error), results=results)
    if rejection is not None:
        module.fail_json(msg=f"{module.params['check_failed_msg']}: {rejection}", results=results,
                         stderr=rejection)
    module.exit_json(changed=any(r["changed"] for r in results), results=results,
                     diff=diffs if module._diff else [])


if __name__ == "__main__":
    main()
