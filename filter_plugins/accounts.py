"""The users of a role step as entries of the wsgi_accounts module.

Three roles make system users of the same shape (the daemon processes' users, the project apps' users,
headrace's account): no login shell, no home, a primary group and the scripts group. The shape is written
here once, where a unit test pins it, instead of as a loop of ansible.builtin.user or a Jinja chain in
each role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ansible.errors import AnsibleFilterError

NO_HOME = "/nonexistent"


def wsgi_user_entries(names: Iterable[Any], shell: str, group: str = "", groups: Iterable[str] = ()) -> list[dict[str, Any]]:
    """One wsgi_accounts user per name (each once, in order): a login-less system user without a home,
    whose primary group is group, or a group of its own name when group is empty, and a member of groups."""
    if not shell:
        raise AnsibleFilterError("wsgi_user_entries: shell is empty; allowed: a path such as /usr/sbin/nologin")
    entries = []
    for name in dict.fromkeys(str(n) for n in names or [] if n):
        entry: dict[str, Any] = {"name": name, "group": group or name, "shell": shell, "home": NO_HOME}
        if groups:
            entry["groups"] = list(groups)
        entries.append(entry)
    return entries


class FilterModule:
    """Ansible entry point: the filters of the accounts the roles make."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"wsgi_user_entries": wsgi_user_entries}
