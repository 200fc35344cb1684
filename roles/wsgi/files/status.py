"""What playbooks/status.yml shows of a web server, read in one module run (python3 -c, from
ansible.builtin.command): status.py SPEC, SPEC a JSON mapping with health_url and apps (each name, current,
units (its process instances), jobs (its scheduled jobs' names) and env_file).

Prints one JSON mapping: the health check's status and body (asked from the host itself, as the balancers
would; -1 when nothing answers), and per app its live release (the `current` link's target), when it went
live (the link's age), per unit systemd's state, since when (unix seconds) and how often it restarted, and
per job its next time (its timer) and its last run across the fleet (the app's database, where job-run
records every run: which host, when, the exit status, how long). Read-only: it changes nothing.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request


def health(url: str) -> dict:
    if not url:  # a host that runs apps' processes only has no health check
        return {}
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


LAST_RUNS = """
SELECT DISTINCT ON (job) job, extract(epoch FROM scheduled_for)::bigint, host, coalesce(status::text, ''),
       coalesce(extract(epoch FROM finished - started)::text, '')
  FROM wsgi_job_runs WHERE app = :'app' ORDER BY job, scheduled_for DESC;
"""


def last_runs(app: dict) -> dict:
    """Each job's last run across the fleet, from the app's database (none before its first run)."""
    try:
        with open(app["env_file"], encoding="utf-8") as stream:
            environment = dict(os.environ, **json.load(stream))
    except OSError:
        return {}
    done = subprocess.run(["psql", "--no-psqlrc", "-X", "-q", "-At", "-F", "\t", "-v", f"app={app['name']}"],
                          input=LAST_RUNS, capture_output=True, text=True, env=environment, check=False)
    runs = {}
    for line in done.stdout.splitlines() if done.returncode == 0 else []:
        job, scheduled, host, status, seconds = line.split("\t")
        runs[job] = {"scheduled": int(scheduled), "host": host, "status": int(status) if status else None,
                     "seconds": float(seconds) if seconds else None}
    return runs


def job_state(app: dict, job: str, runs: dict) -> dict:
    timer = f"wsgi-{app['name']}-job-{job}.timer"
    shown = subprocess.run(["systemctl", "show", "--timestamp=unix", "--property=NextElapseUSecRealtime", timer],
                           capture_output=True, text=True, check=False).stdout.strip()
    following = shown.partition("=")[2].lstrip("@")
    return {"job": job, "next": int(following) if following.isdigit() else None, "last": runs.get(job)}


def app_state(app: dict) -> dict:
    try:
        release = os.path.basename(os.readlink(app["current"]))
        live_since = int(os.lstat(app["current"]).st_mtime)
    except OSError:
        release, live_since = "", None
    runs = last_runs(app) if app.get("jobs") else {}
    return {"name": app["name"], "release": release, "live_since": live_since,
            "units": [unit_state(unit) for unit in app["units"]],
            "jobs": [job_state(app, job, runs) for job in app.get("jobs") or ()]}


def main() -> None:
    spec = json.loads(sys.argv[1])
    print(json.dumps({"now": int(time.time()), "health": health(spec["health_url"]),
                      "apps": [app_state(app) for app in spec["apps"]]}))


if __name__ == "__main__":
    main()
