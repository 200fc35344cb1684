"""Ask a host's own HTTP endpoints, all of them in one module run.

Why one module: after a deploy the rollout asks the health check and then every app at its mount, and each
ansible.builtin.uri call (one per loop item) costs a Python started on the host and its imports, about
0.3 CPU s whatever it asks; a host with ten apps paid that eleven times. This module asks them all from one
Python, with what the rollout needs and uri's loop had: the Host header of the site, no redirect followed
(a redirect is an answer), the host's own certificate not verified (it asks itself, by address), and for
the checks marked `wait`, asking again once a second until they pass or the time is up (Apache and the
apps are still starting after their reload).
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: wsgi_http_checks
author: wsgi-hosting maintainers
version_added: "1.0.0"
short_description: Ask a host's own HTTP endpoints, all in one module run
description:
  - Asks each URL of O(checks) in order, from the host, and fails, naming every check that did not pass
    with the status and the start of the body it got, if any got a status it does not accept.
  - Redirects are not followed (a redirect is an answer), certificates are not verified (the host asks
    itself by address), proxies of the environment are not used.
  - A check with C(wait) is asked again once a second until it passes or O(wait_seconds) have passed since
    the module started; the others are asked once.
  - Changes nothing; supports check mode (it asks all the same).
options:
  checks:
    description:
      - Each a mapping with C(name) (what the message calls it), C(url), C(host) (optional, the Host
        header), C(status) (the accepted statuses, a list of integers; default C([200])) and C(wait)
        (a boolean, default false).
    type: list
    elements: dict
    required: true
  wait_seconds:
    description: How long the checks with C(wait) may take to pass, in seconds.
    type: int
    default: 60
  timeout:
    description: Seconds one request may take.
    type: int
    default: 10
"""

RETURN = r"""
results:
  description: Per check, in order, C(name), C(url), C(status) (-1 when nothing answered), C(passed),
    C(attempts) and C(body) (the start of the body, or the reason nothing answered).
  type: list
  elements: dict
  returned: always
"""

BODY_CHARS = 300


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand a redirect back as the answer (urllib then raises it as an HTTPError with its status)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect(),
                                       urllib.request.HTTPSHandler(context=context))


def ask(opener: urllib.request.OpenerDirector, url: str, host: str | None, timeout: float) -> tuple[int, str]:
    """The status and the start of the body of one request; -1 and the reason when nothing answered."""
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read(BODY_CHARS).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read(BODY_CHARS).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as error:
        return -1, str(getattr(error, "reason", error))


def run_checks(checks: list[dict[str, Any]], wait_seconds: float = 60, timeout: float = 10,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> list[dict[str, Any]]:
    """Ask every check in order; the result of each, with whether it passed."""
    opener = _opener()
    deadline = clock() + wait_seconds
    results = []
    for check in checks:
        accepted = set(check.get("status") or [200])
        attempts = 0
        while True:
            attempts += 1
            status, body = ask(opener, check["url"], check.get("host"), timeout)
            passed = status in accepted
            if passed or not check.get("wait") or clock() >= deadline:
                break
            sleep(1)
        results.append({"name": check.get("name") or check["url"], "url": check["url"], "status": status,
                        "passed": passed, "attempts": attempts, "body": body})
    return results


def failure_message(results: list[dict[str, Any]]) -> str:
    """One line per check that did not pass: its name, the status (or nothing) and the start of the body."""
    return "; ".join(
        f"{result['name']} answered {result['status'] if result['status'] >= 0 else 'nothing'} "
        f"{' '.join(result['body'].split())[:200]}".rstrip()
        for result in results if not result["passed"])


def main() -> None:
    module = AnsibleModule(
        argument_spec={"checks": {"type": "list", "elements": "dict", "required": True},
                       "wait_seconds": {"type": "int", "default": 60},
                       "timeout": {"type": "int", "default": 10}},
        supports_check_mode=True)
    for check in module.params["checks"]:
        if not isinstance(check.get("url"), str):
            module.fail_json(msg=f"checks: {check!r} has no url; each needs a url (a string)")
    results = run_checks(module.params["checks"], module.params["wait_seconds"], module.params["timeout"])
    if not all(result["passed"] for result in results):
        module.fail_json(msg=failure_message(results), results=results)
    module.exit_json(changed=False, results=results)


if __name__ == "__main__":
    main()
