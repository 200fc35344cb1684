"""Filters of the rollout role: the command that reads a host's live state, and the group a host goes to.

A run over a fleet that is already up to date should only check it, and a run that changes it should
drain only the hosts in service. Which hosts are which is decided by comparing what each host recorded
after its last good deploy (its release and live state) with what this run would deploy; the rules and
the command whose output is compared are here, where unit tests pin them, rather than in Jinja.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

# The groups of the plan (playbooks/webservers.yml and rolling_update.yml run on them).
AT_ONCE = "rollout_at_once"
IN_BATCHES = "rollout_in_batches"
UP_TO_DATE = "rollout_up_to_date"


def rollout_state_command(paths: Iterable[Any], services: Iterable[str] = (),
                          unit_patterns: Iterable[str] = ()) -> str:
    """A bash command that prints one SHA-256 over a host's live state.

    The live state is what paths hold (each entry's name, mode, owner, group and link target, and the
    contents of every file; on one file system per path, missing paths ignored), whether each of services
    is active, and the units matching unit_patterns with their states. Everything is sorted, so the digest
    changes only when the host does. Needs bash (arrays, pipefail) and GNU find.
    """
    quoted = " ".join(shlex.quote(str(path)) for path in paths)
    lines = [
        "set -o pipefail",
        f"paths=({quoted})",
        "{",
        "  find \"${paths[@]}\" -xdev -printf '%p %m %u %g %l\\n' 2>/dev/null | LC_ALL=C sort",
        "  find \"${paths[@]}\" -xdev -type f -print0 2>/dev/null | LC_ALL=C sort -z | xargs -0r sha256sum",
        *(f"  systemctl is-active {shlex.quote(service)}" for service in services),
        *(f"  systemctl list-units --all --plain --no-legend {shlex.quote(pattern)}" for pattern in unit_patterns),
        "} | sha256sum | cut -d' ' -f1",
    ]
    return "\n".join(lines) + "\n"


def rollout_group(in_service: bool, recorded: Sequence[str], release: str, live_state: str,
                  force: bool = False, skip_unchanged: bool = True) -> str:
    """The plan's group of a host.

    recorded is what the host recorded after its last good deploy: its release, then its live state
    (missing lines count as empty). A host not in service has no traffic to protect: all at once. One in
    service with a new release (or every one in service, with force) is deployed in batches, each drained
    first. One in service at its recorded release and live state is only checked (with skip_unchanged);
    one at its release but changed by hand (or any, without skip_unchanged) is converged all at once.
    """
    recorded_release, recorded_state = (list(recorded) + ["", ""])[:2]
    if not in_service:
        return AT_ONCE
    if force or recorded_release != release:
        return IN_BATCHES
    if skip_unchanged and recorded_state == live_state:
        return UP_TO_DATE
    return AT_ONCE


def rollout_release_settings(host_variables: Mapping[str, Any], pattern: str) -> dict[str, Any]:
    """The variables of a host whose names match pattern, name to value: the settings part of its release.

    Given a host's hostvars (its inventory variables, facts and extra vars, without the play's vars or the
    roles' defaults, which are files of the release already), so that the plan's play, which loads other
    roles' defaults to read their published names, fingerprints the same variables as a play that does not.
    Only the matching values are read (each is templated on access), not every fact of the host.
    """
    matcher = re.compile(pattern)
    return {name: host_variables[name] for name in sorted(host_variables) if matcher.match(name)}


class FilterModule:
    """Ansible entry point: the rollout filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Map filter names to functions."""
        return {"rollout_state_command": rollout_state_command, "rollout_group": rollout_group,
                "rollout_release_settings": rollout_release_settings}
