"""Make a role step's system groups and users in one module run.

Why one module: the roles make several accounts each (the daemon processes' users, Apache's user in the
scripts group, each project app's group and user, headrace's), one ansible.builtin.group or
ansible.builtin.user run per account, each about 0.3 CPU s of start-up on the host whatever it does. This
module reads /etc/passwd and /etc/group once, works out what differs, and runs groupadd, useradd and
usermod only for that, with the same meaning as those modules' options used here: system accounts, a
primary group, supplementary groups appended (never removed), a shell and a home that is not created.

plan() holds the decisions and does no I/O; the commands take useradd's --prefix when `root` is not /,
which is how the tests run them for real on a directory of their own instead of the machine's accounts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: wsgi_accounts
author: wsgi-hosting maintainers
version_added: "1.0.0"
short_description: Make system groups and users in one module run
description:
  - Makes each group of O(groups) that does not exist, then each user of O(users) that does not exist, and
    brings an existing user to what its entry asks (primary group, shell, home; supplementary groups are
    added, never removed). Fields an entry leaves out are not changed.
  - One module run for a role's accounts instead of one per account.
  - Supports check mode (the result says what would be made or changed) and diff mode.
options:
  groups:
    description: System groups to make, by name.
    type: list
    elements: str
    default: []
  users:
    description:
      - Users to make or bring up to date, each a mapping with C(name), and optionally C(group) (the
        primary group; a new user without one gets a group of its own name), C(groups) (supplementary
        groups, appended), C(shell), C(home) (never created) and C(system) (default true; for a new user).
    type: list
    elements: dict
    default: []
  root:
    description: The directory whose etc/ holds the accounts (useradd's C(--prefix)); the host's own by
      default.
    type: path
    default: /
"""

EXAMPLES = r"""
- name: Create the project apps' groups and users
  wsgi_hosting.debian.wsgi_accounts:
    groups: [wsgi, shop]
    users:
      - {name: shop, group: shop, groups: [wsgi], shell: /usr/sbin/nologin, home: /nonexistent}
"""

RETURN = r"""
commands:
  description: The commands this run ran (would run, in check mode), without the prefix option.
  type: list
  elements: list
  returned: always
"""


@dataclass(frozen=True)
class User:
    """A user as /etc/passwd and /etc/group say it is."""

    gid: int
    home: str
    shell: str


@dataclass(frozen=True)
class Group:
    """A group as /etc/group says it is."""

    gid: int
    members: tuple[str, ...]


class AccountError(Exception):
    """An entry that cannot be applied: its message names the entry and the field."""


def read_accounts(root: str) -> tuple[dict[str, User], dict[str, Group]]:
    """The users and groups of the etc/ under root."""
    users: dict[str, User] = {}
    with open(os.path.join(root, "etc", "passwd"), encoding="utf-8") as stream:
        for line in stream:
            fields = line.rstrip("\n").split(":")
            if len(fields) >= 7:
                users[fields[0]] = User(gid=int(fields[3]), home=fields[5], shell=fields[6])
    groups: dict[str, Group] = {}
    with open(os.path.join(root, "etc", "group"), encoding="utf-8") as stream:
        for line in stream:
            fields = line.rstrip("\n").split(":")
            if len(fields) >= 4:
                groups[fields[0]] = Group(gid=int(fields[2]), members=tuple(m for m in fields[3].split(",") if m))
    return users, groups


def _field(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is not None and (not isinstance(value, str) or not value or ":" in value or "," in value):
        raise AccountError(f"{where}: field '{key}' is {value!r}; allowed: a non-empty name without ':' or ','")
    return value


def plan(groups_wanted: Sequence[str], users_wanted: Sequence[Mapping[str, Any]],
         users: Mapping[str, User], groups: Mapping[str, Group], check: bool = False) -> list[list[str]]:
    """The groupadd, useradd and usermod commands (argv, without a prefix) that bring the accounts to what
    is asked, groups first: a user's groups may be among them. In a dry run (check) a group that does not
    exist is taken as one an earlier task of the run would make, as the dry run did not make it."""
    commands: list[list[str]] = []
    made: set[str] = set()
    for index, wanted_group in enumerate(groups_wanted):
        name = _field({"name": wanted_group}, "name", f"groups[{index}]")
        if name is None:
            raise AccountError(f"groups[{index}]: field 'name' is missing; allowed: a group name")
        if name not in groups and name not in made:
            commands.append(["groupadd", "--system", name])
            made.add(name)
    for index, entry in enumerate(users_wanted):
        where = f"users[{index}]"
        name = _field(entry, "name", where)
        if name is None:
            raise AccountError(f"{where}: field 'name' is missing; allowed: a user name")
        group, shell, home = (_field(entry, key, where) for key in ("group", "shell", "home"))
        extra = [_field({"groups": g}, "groups", where) or "" for g in entry.get("groups") or []]
        for wanted in ([group] if group else []) + extra:
            if wanted not in groups and wanted not in made and not check:
                raise AccountError(f"{where}: group {wanted!r} of user {name!r} does not exist; allowed: a group "
                                   "of the host or of this step's groups")
        current = users.get(name)
        if current is None:
            commands.append([
                "useradd", *(["--system"] if entry.get("system", True) else []),
                *(["--gid", group] if group else []), *(["--groups", ",".join(extra)] if extra else []),
                *(["--shell", shell] if shell else []), *(["--home-dir", home] if home else []),
                "--no-create-home", name])
            continue
        changes: list[str] = []
        if group and (group not in groups or groups[group].gid != current.gid):
            changes += ["--gid", group]
        if shell and shell != current.shell:
            changes += ["--shell", shell]
        if home and home != current.home:
            changes += ["--home", home]
        missing = [g for g in extra if g not in groups or (name not in groups[g].members
                                                           and groups[g].gid != current.gid)]
        if missing:
            changes += ["--append", "--groups", ",".join(missing)]
        if changes:
            commands.append(["usermod", *changes, name])
    return commands


def main() -> None:
    module = AnsibleModule(argument_spec={
        "groups": {"type": "list", "elements": "str", "default": []},
        "users": {"type": "list", "elements": "dict", "default": []},
        "root": {"type": "path", "default": "/"},
    }, supports_check_mode=True)
    root = module.params["root"]
    try:
        users, groups = read_accounts(root)
        commands = plan(module.params["groups"], module.params["users"], users, groups, module.check_mode)
    except (AccountError, OSError, ValueError) as error:
        module.fail_json(msg=str(error))
    result: dict[str, Any] = {"changed": bool(commands), "commands": commands}
    if module._diff and commands:
        result["diff"] = {"before_header": "accounts", "after_header": "accounts", "before": "",
                          "after": "".join(" ".join(command) + "\n" for command in commands)}
    if not module.check_mode:
        prefix = [] if os.path.realpath(root) == "/" else ["--prefix", root]
        for command in commands:
            module.run_command([command[0], *prefix, *command[1:]], check_rc=True)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
