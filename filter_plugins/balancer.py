"""Filters for the load balancer: how a balancer names its members, and what its manager page says.

The balancer role writes one BalancerMember per web host and the rollout role later drains and restores
that same member through Apache's balancer-manager. Both must agree on the member's URL, so it is built
in one place; and the manager has no machine-readable output in Apache 2.4, so its HTML table is read
here, where a unit test pins the format.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

# One member row of the manager's worker table: the first cells are URL, route, route redirect, factor,
# set, status, elected, busy (mod_proxy_balancer's balancer_display_page, Apache 2.4.x).
MEMBER_ROW_RE = re.compile(
    r"<tr>\s*<td><a href=\"[^\"]*\">(?P<url>[^<]+)</a></td>"
    r"<td>(?P<route>[^<]*)</td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td>"
    r"<td>(?P<status>[^<]*)</td><td>(?P<elected>\d+)</td><td>(?P<busy>\d+)</td>"
)
BALANCER_RE = re.compile(r"b=(?P<name>[^&\"]+)&amp;nonce=(?P<nonce>[0-9a-fA-F-]+)\">balancer://")
# Status flags as the manager prints them, for the states a rollout sets.
FLAGS = {"Drn": "drain", "Dis": "disabled", "Stop": "stopped", "HcFl": "health_check_failed", "Err": "error"}


def balancer_member_url(host: str, hostvars: Mapping[str, Any], port: Any = 80) -> str:
    """The URL a balancer uses for a web host: its balancer_member_address, else ansible_host, else its name.

    It is written exactly as mod_proxy names the worker, so that the balancer manager finds it by this URL.
    """
    if host not in hostvars:
        raise AnsibleFilterError(f"balancer_member_url: {host!r} is not a host of the inventory")
    variables = hostvars[host]
    address = variables.get("balancer_member_address") or variables.get("ansible_host") or host
    address = str(address).lower()  # mod_proxy keeps worker names in lower case
    if ":" in address and not address.startswith("["):
        address = f"[{address}]"  # an IPv6 literal
    # mod_proxy drops the scheme's default port from a worker's name, and the manager knows it that way.
    return f"http://{address}" if int(port) == 80 else f"http://{address}:{int(port)}"


def balancer_manager_state(page: str, balancer: str) -> dict[str, Any]:
    """Read one balancer's nonce and members from the balancer-manager page.

    Returns {"nonce": str, "members": {url: {"route", "status", "flags", "elected", "busy"}}}; raises if
    the balancer is not on the page, which means the balancer and the rollout disagree on its name.
    """
    sections = re.split(r"<h3>", page)
    for section in sections:
        found = BALANCER_RE.search(section)
        if not found or html.unescape(found["name"]) != balancer:
            continue
        members = {}
        for row in MEMBER_ROW_RE.finditer(section):
            status = row["status"].split()
            members[html.unescape(row["url"])] = {
                "route": html.unescape(row["route"]),
                "status": status,
                "flags": sorted(FLAGS[word] for word in status if word in FLAGS),
                "elected": int(row["elected"]),
                "busy": int(row["busy"]),
            }
        return {"nonce": found["nonce"], "members": members}
    raise AnsibleFilterError(f"balancer_manager_state: balancer {balancer!r} is not on the balancer-manager page")


def balancer_member_busy(page: str, balancer: str, member: str) -> int:
    """How many requests in flight ("Busy") the balancer-manager page counts for one member of a balancer.

    What a drain waits on, once per read of the page; raises, naming the member, if the balancer no longer
    lists it.
    """
    members = balancer_manager_state(page, balancer)["members"]
    if member not in members:
        raise AnsibleFilterError(f"balancer_member_busy: {member!r} is not a member of balancer {balancer!r}")
    return members[member]["busy"]


class FilterModule:
    """Ansible entry point: the balancer filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Map filter names to functions."""
        return {
            "balancer_member_url": balancer_member_url,
            "balancer_manager_state": balancer_manager_state,
            "balancer_member_busy": balancer_member_busy,
        }
