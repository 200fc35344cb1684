"""What playbooks/status.yml shows of a web server, read in one module run (python3 -c, from
ansible.builtin.command): status.py SPEC, SPEC a JSON mapping with health_url and apps (each name, current
and units, its process instances).

Prints one JSON mapping: the health check's status and body (asked from the host itself, as the balancers
would; -1 when nothing answers), and per app its live release (the `current` link's target), when it went
live (the link's age), and per unit systemd's state, since when (unix seconds) and how often it restarted.
Read-only: it changes nothing on the host.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request


def health(url: str) -> dict:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return {"status": response.status, "body": response.read().decode("utf-8", "replace")}
    except urllib.error.HTTPError as error:
        return {"status": error.code, "body": error.read().decode("utf-8", "replace")}
    except Exception as error:  # noqa: BLE001 - any failure to ask is "no answer"
        return {"status": -1, "body": f"{type(error).__name__}: {error}"}


def unit_state(unit: str) -> dict:
    shown = subprocess.run(
        ["systemctl", "show", "--timestamp=unix", "--property=ActiveState,SubState,ActiveEnterTimestamp,NRestarts",
         unit], capture_output=True, text=True, check=False).stdout
    values = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    since = values.get("ActiveEnterTimestamp", "").lstrip("@")
    return {"unit": unit, "state": f"{values.get('ActiveState', 'unknown')} ({values.get('SubState', '?')})",
            "since": int(since) if since.isdigit() else None, "restarts": int(values.get("NRestarts") or 0)}


def app_state(app: dict) -> dict:
    try:
        release = os.path.basename(os.readlink(app["current"]))
        live_since = int(os.lstat(app["current"]).st_mtime)
    except OSError:
        release, live_since = "", None
    return {"name": app["name"], "release": release, "live_since": live_since,
            "units": [unit_state(unit) for unit in app["units"]]}


def main() -> None:
    spec = json.loads(sys.argv[1])
    print(json.dumps({"now": int(time.time()), "health": health(spec["health_url"]),
                      "apps": [app_state(app) for app in spec["apps"]]}))


if __name__ == "__main__":
    main()
