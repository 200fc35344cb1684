"""Switch Apache modules on and off, and select the MPM, in one module run.

Why a module: the apache role's modules step read what is enabled (one command), worked out the changes on
the controller and ran a command per kind of change (other MPMs off, the MPM on, modules off, modules on,
modules that take a restart on): up to six module runs on a fresh host, each about 0.3 CPU s of start-up
whatever it does. Here the host reads, plans and switches in one run, and says whether the change takes a
restart (a new MPM; a module such as mod_md that a graceful reload does not start) or a reload.

The commands come from the role's OS-specific values (vars/Debian.yml: a2query, a2enmod, a2dismod), so the
module holds only the plan, which plan() keeps free of I/O for the unit tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: apache_modules
author: wsgi-hosting maintainers
version_added: "1.0.0"
short_description: Enable and disable Apache modules and select the MPM in one module run
description:
  - Reads the enabled modules with O(query_command), then disables with one O(disable_command) the other
    MPMs and the modules of O(disable) that are enabled, and enables with one O(enable_command) the MPM and
    the modules of O(enable) that are not (a2enmod also enables what they depend on).
  - The result says whether the change takes a full restart (R(restart)) or a reload is enough.
  - Supports check mode (nothing runs but the query; the result says what would switch) and diff mode.
options:
  enable:
    description: Modules that must be enabled.
    type: list
    elements: str
    default: []
  disable:
    description: Modules that must be disabled.
    type: list
    elements: str
    default: []
  mpm:
    description: The MPM to run (C(event), C(worker), C(prefork)); the others are disabled first. Omit to
      leave the MPM alone.
    type: str
  mpms_available:
    description: The names of every MPM, without C(mpm_).
    type: list
    elements: str
    default: [event, worker, prefork]
  restarting:
    description: Modules that a graceful reload does not start (switching one on takes a restart).
    type: list
    elements: str
    default: []
  query_command:
    description: Lists the enabled modules, one per line, the name first.
    type: list
    elements: str
    required: true
  enable_command:
    description: Enables the modules named after it.
    type: list
    elements: str
    required: true
  disable_command:
    description: Disables the modules named after it.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Select the MPM and switch the modules
  wsgi_hosting.debian.apache_modules:
    mpm: event
    enable: [headers, wsgi]
    disable: [autoindex]
    restarting: [md]
    query_command: [/usr/sbin/a2query, -m]
    enable_command: [/usr/sbin/a2enmod, -q]
    disable_command: [/usr/sbin/a2dismod, -q, -f]
"""

RETURN = r"""
enabled:
  description: The modules this run enabled (would enable, in check mode).
  type: list
  elements: str
  returned: always
disabled:
  description: The modules this run disabled (would disable, in check mode).
  type: list
  elements: str
  returned: always
restart:
  description: Whether the change takes a full restart of Apache rather than a graceful reload.
  type: bool
  returned: always
"""


@dataclass(frozen=True)
class Plan:
    """What to switch: the modules to disable (other MPMs first), those to enable (the MPM first), and
    whether the result takes a restart."""

    disable: list[str]
    enable: list[str]
    restart: bool


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def plan(enabled_now: Sequence[str], enable: Sequence[str], disable: Sequence[str], mpm: str | None,
         mpms_available: Sequence[str], restarting: Sequence[str]) -> Plan:
    """The switches that take enabled_now to what is asked, in the order the commands need: exactly one MPM
    may be loaded and a2enmod refuses a second one, so the other MPMs are disabled before it is enabled."""
    now = set(enabled_now)
    new_mpm = [] if mpm is None or f"mpm_{mpm}" in now else [f"mpm_{mpm}"]
    other_mpms = [] if mpm is None else [f"mpm_{name}" for name in mpms_available
                                         if name != mpm and f"mpm_{name}" in now]
    to_disable = _unique([*other_mpms, *(name for name in disable if name in now)])
    to_enable = _unique([*new_mpm, *(name for name in enable if name not in now)])
    restart = bool(new_mpm or other_mpms or set(to_enable) & set(restarting))
    return Plan(disable=to_disable, enable=to_enable, restart=restart)


def _enabled_modules(output: str) -> list[str]:
    return [line.split()[0] for line in output.splitlines() if line.strip()]


def main() -> None:
    module = AnsibleModule(argument_spec={
        "enable": {"type": "list", "elements": "str", "default": []},
        "disable": {"type": "list", "elements": "str", "default": []},
        "mpm": {"type": "str"},
        "mpms_available": {"type": "list", "elements": "str", "default": ["event", "worker", "prefork"]},
        "restarting": {"type": "list", "elements": "str", "default": []},
        "query_command": {"type": "list", "elements": "str", "required": True},
        "enable_command": {"type": "list", "elements": "str", "required": True},
        "disable_command": {"type": "list", "elements": "str", "required": True},
    }, supports_check_mode=True)
    params = module.params
    both = set(params["enable"]) & set(params["disable"])
    if both:
        module.fail_json(msg=f"apache_modules: {', '.join(sorted(both))} both to enable and to disable; "
                             "allowed: each module in one of the two lists")
    _, out, _ = module.run_command(params["query_command"], check_rc=True)
    enabled_now = _enabled_modules(out)
    switches = plan(enabled_now, params["enable"], params["disable"], params["mpm"], params["mpms_available"],
                    params["restarting"])
    result: dict[str, Any] = {"changed": bool(switches.disable or switches.enable), "enabled": switches.enable,
                              "disabled": switches.disable, "restart": switches.restart}
    if module._diff and result["changed"]:
        after = sorted((set(enabled_now) - set(switches.disable)) | set(switches.enable))
        result["diff"] = {"before_header": "enabled Apache modules", "after_header": "enabled Apache modules",
                          "before": "\n".join(sorted(enabled_now)) + "\n", "after": "\n".join(after) + "\n"}
    if not module.check_mode:
        if switches.disable:
            module.run_command([*params["disable_command"], *switches.disable], check_rc=True)
        if switches.enable:
            module.run_command([*params["enable_command"], *switches.enable], check_rc=True)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
