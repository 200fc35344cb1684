"""Filters of the rollout role: the command that reads a host's live state, and the group a host goes to.

A run over a fleet that is already up to date should only check it, and a run that changes it should
drain only the hosts in service. Which hosts are which is decided by comparing what each host recorded
after its last good deploy (its release and live state) with what this run would deploy; the rules and
the command whose output is compared are here, where unit tests pin them, rather than in Jinja.
"""

from __future__ import annotations

import posixpath
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


# Asks a URL from the host itself, as the uri module did (no proxy, redirects followed), and prints the
# status: an HTTP error's code, -1 when nothing answered.
_HEALTH_SCRIPT = """import sys, urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    print(opener.open(sys.argv[1], timeout=10).status)
except urllib.error.HTTPError as error:
    print(error.code)
except Exception:
    print(-1)
"""


def rollout_read_command(record_path: str, release: str, state_command: str = "", health_url: str = "",
                         read_record: bool = True) -> str:
    """A bash command that prints what the plan needs from a host, in one module run.

    With health_url it first prints the status the host's own health check answers (asked from the host,
    -1 when nothing answers); only a host in service (200) goes on. Then three lines (unless read_record is
    false: a forced rollout needs no record): the release and the live state recorded at record_path after
    the host's last good deploy (empty when there is no record), then the live state now, from
    state_command (rollout_state_command's), run only when given and when the recorded release is
    release: the live state reads every file of the host's releases, which is worth doing only for a host
    that may be skipped. Asking the health check, reading the record and reading the state apart cost
    three module runs per host on every run.
    """
    lines = []
    if health_url:
        lines += [f"health=$(python3 -c {shlex.quote(_HEALTH_SCRIPT)} {shlex.quote(str(health_url))})",
                  'echo "$health"']
        if not read_record:
            return "\n".join(lines) + "\n"
        lines.append('[ "$health" = 200 ] || exit 0')
    lines += [
        f"record=$(cat {shlex.quote(str(record_path))} 2>/dev/null || true)",
        'recorded_release=$(sed -n 1p <<<"$record")',
        'printf \'%s\\n%s\\n\' "$recorded_release" "$(sed -n 2p <<<"$record")"',
    ]
    if state_command:
        lines += [f'if [ "$recorded_release" = {shlex.quote(release)} ]; then',
                  "(", state_command.rstrip("\n"), ")", "else", "  echo", "fi"]
    else:
        lines.append("echo")
    return "\n".join(lines) + "\n"


def rollout_record_command(record_path: str, release: str, state_command: str, dry_run: bool = False) -> str:
    """A bash command that records at record_path the release and the live state now (state_command's), in one
    module run, where reading the state and writing the record took two after every deploy.

    The record is the release, then the state, a line each (what rollout_read_command reads back), root's,
    0644, in a 0755 directory, written under a temporary name and renamed. It prints "recorded" when the
    record changes (with dry_run: would change, and writes nothing); a record already saying the same is
    left alone.
    """
    path = shlex.quote(str(record_path))
    directory = shlex.quote(posixpath.dirname(str(record_path)))
    lines = [
        f"state=$({state_command.rstrip(chr(10))}\n)",
        f"release={shlex.quote(release)}",
        f'if [ "$(cat {path} 2>/dev/null)" = "$(printf \'%s\\n%s\' "$release" "$state")" ]; then exit 0; fi',
        "echo recorded",
    ]
    if dry_run:
        lines.append("exit 0")
    lines += [f"install -d -m 0755 -o root -g root {directory}",
              f"printf '%s\\n%s\\n' \"$release\" \"$state\" > {path}.new",
              f"chmod 0644 {path}.new && mv {path}.new {path}"]
    return "\n".join(lines) + "\n"


def rollout_http_checks(app_checks: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The checks of the wsgi_http_checks module for the apps verify asks (wsgi_health_checks' list).

    Each app once, at its mount on 127.0.0.1 with its site's Host header: over HTTPS when its site has TLS
    (the host asking itself: the module does not verify the certificate), but an ACME site (one with a
    live_file) on its plain port, which serves it until its certificate is live and answers 308 after.
    Any status below 500 is an answer: a redirect (an app at /x redirecting to /x/), a 404 of an app with
    nothing at its mount; a 5xx or no answer is a failure.
    """
    answers = list(range(100, 500))
    checks = []
    for app in app_checks:
        acme = bool(app.get("live_file"))
        scheme = "https" if app.get("tls") and not acme else "http"
        port = app["plain_port"] if acme else app["port"]
        checks.append({"name": f"{app['app']} ({app['server_name']}:{app['port']}{app['path']})",
                       "url": f"{scheme}://127.0.0.1:{port}{app['path']}", "host": app["server_name"],
                       "status": answers})
    return checks


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
        return {"rollout_state_command": rollout_state_command, "rollout_read_command": rollout_read_command,
                "rollout_record_command": rollout_record_command, "rollout_http_checks": rollout_http_checks,
                "rollout_group": rollout_group, "rollout_release_settings": rollout_release_settings}
