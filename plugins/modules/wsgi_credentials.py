"""Keep a service's passwords in root-only files and return them, all of them in one module run.

Why a module of our own: a password the user gives (ansible-vault) must be written, one not given must be
generated once on the host and then kept, so that it stays the same across runs and no controller has to
keep it; and the other side (the web servers' REDIS_URL) needs the values. As tasks that was a directory,
a generator command and a copy per password, then a find and a slurp per file: a module run each, about
0.3 CPU s of start-up apiece on the host. Here it is one run, and no value is ever shown or left readable
by anyone but root.

The steps are plain functions (keep_directory, keep_password), so that the unit tests run them in process.
"""

from __future__ import annotations

import os
import re
import secrets

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.file_attributes import (
    attributes_differ,
    set_attributes,
    write_atomically,
)

DOCUMENTATION = r"""
module: wsgi_credentials
author: wsgi-hosting maintainers
version_added: "1.0.0"
short_description: Keep passwords in root-only files, generated once where not given, and return them
description:
  - For each of O(names), keeps C(<directory>/<name>.password), root's, mode 0600 - the password O(given) has
    for it, else the one already there, else a new random one (32 bytes, URL-safe) - and returns the values.
  - O(directory) is made when missing, root's, mode 0700.
  - Supports check mode (a password that would be generated is not returned) and diff mode (names only).
    Use it with C(no_log) - the result holds the passwords.
options:
  directory:
    description: Root-only directory of the password files.
    type: path
    required: true
  names:
    description: The passwords' names (letters, digits, C(_) and C(-)).
    type: list
    elements: str
    required: true
  given:
    description: Name to password for the names whose password the user gives (ansible-vault); the others are
      kept or generated.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Keep the passwords of the Redis instances
  wsgi_hosting.debian.wsgi_credentials:
    directory: /etc/wsgi-hosting/redis
    names: [shop, board]
    given: {board: "{{ vault_board_redis_password }}"}
  register: redis_credentials
  no_log: true
"""

RETURN = r"""
passwords:
  description:
    - Name to password, for every name not in O(given) (in check mode, not those that would be generated).
    - The given ones are not returned - Ansible would return them starred (they are a no_log option's values),
      and the caller has them already.
  type: dict
  returned: always
written:
  description: The names whose file was written (given and different, or generated).
  type: list
  elements: str
  returned: always
"""

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


def password_action(given: str | None, stored: str | None) -> str:
    """What to do with one password file: keep it, write the given password, or generate one."""
    if given is not None:
        return "keep" if stored == given else "write"
    return "keep" if stored else "generate"


def _read(path: str) -> str | None:
    """The password in a file, or None when there is none."""
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read()
    except FileNotFoundError:
        return None


def keep_directory(directory: str, check: bool) -> bool:
    """Make the directory root-only; whether anything changed."""
    if not os.path.isdir(directory):
        if not check:
            os.makedirs(directory, mode=DIRECTORY_MODE)
            set_attributes(directory, 0, 0, DIRECTORY_MODE)
        return True
    if attributes_differ(os.lstat(directory), 0, 0, DIRECTORY_MODE):
        if not check:
            set_attributes(directory, 0, 0, DIRECTORY_MODE)
        return True
    return False


def keep_password(directory: str, name: str, given: str | None, check: bool) -> tuple[str | None, bool]:
    """One password file kept as asked: its value (None in a dry run that would generate it) and whether
    the file changed."""
    path = os.path.join(directory, f"{name}.password")
    stored = _read(path)
    action = password_action(given, stored)
    value = {"keep": stored, "write": given, "generate": None}[action]
    if action == "generate" and not check:
        value = secrets.token_urlsafe(32)
    written = action != "keep"
    attributes_wrong = not written and attributes_differ(os.lstat(path), 0, 0, FILE_MODE)
    if not check:
        if written:
            write_atomically(path, str(value).encode(), lambda temporary: set_attributes(temporary, 0, 0, FILE_MODE))
        elif attributes_wrong:
            set_attributes(path, 0, 0, FILE_MODE)
    return value, written or attributes_wrong


def main() -> None:
    """Keep every entry's password file and return the passwords."""
    module = AnsibleModule(
        argument_spec={
            "directory": {"type": "path", "required": True},
            "names": {"type": "list", "elements": "str", "required": True},
            "given": {"type": "dict", "default": {}, "no_log": True},
        },
        supports_check_mode=True,
    )
    directory, names, given = module.params["directory"], module.params["names"], module.params["given"]
    bad = [name for name in names if not NAME_RE.match(name)] + sorted(set(given) - set(names))
    if bad:
        module.fail_json(msg=f"names {bad}: each of names must be 1-128 letters, digits, '_' or '-', and each "
                             "key of given one of names")
    changed = keep_directory(directory, module.check_mode)
    passwords: dict[str, str] = {}
    written: list[str] = []
    for name in names:
        given_password = None if given.get(name) is None else str(given[name])
        value, password_changed = keep_password(directory, name, given_password, module.check_mode)
        if value is not None and given_password is None:
            passwords[name] = value
        if password_changed:
            written.append(name)
    diff = {"before": "", "after": "".join(f"{name}.password\n" for name in written)} if written else None
    module.exit_json(changed=changed or bool(written), passwords=passwords, written=written,
                     **({"diff": diff} if module._diff and diff else {}))


if __name__ == "__main__":
    main()
