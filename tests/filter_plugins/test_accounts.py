"""Tests for the wsgi_user_entries filter: the one shape of the system users the roles make."""

from __future__ import annotations

import pytest
from accounts import FilterModule, wsgi_user_entries
from ansible.errors import AnsibleFilterError


def test_each_name_once_with_its_own_group_or_the_one_given() -> None:
    assert wsgi_user_entries(["shop", "", "blog", "shop"], "/usr/sbin/nologin", "", ["wsgi"]) == [
        {"name": "shop", "group": "shop", "shell": "/usr/sbin/nologin", "home": "/nonexistent", "groups": ["wsgi"]},
        {"name": "blog", "group": "blog", "shell": "/usr/sbin/nologin", "home": "/nonexistent", "groups": ["wsgi"]},
    ]
    assert wsgi_user_entries(["app"], "/bin/false", "wsgi") == [
        {"name": "app", "group": "wsgi", "shell": "/bin/false", "home": "/nonexistent"}]
    assert wsgi_user_entries(None, "/bin/false") == []


def test_an_empty_shell_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="wsgi_user_entries: shell is empty; allowed: a path"):
        wsgi_user_entries(["app"], "")


def test_filter_module_exports_the_filter() -> None:
    assert FilterModule().filters() == {"wsgi_user_entries": wsgi_user_entries}
