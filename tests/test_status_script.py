"""roles/wsgi/files/status.py, run here for real: the health check asked over HTTP (a server of this
process), a live release read from a real link, and units read through a stand-in systemctl."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "roles" / "wsgi" / "files" / "status.py"
FAKE_PSQL = """#!/bin/sh
[ "$PGDATABASE" = shop ] || exit 2
printf 'clean\\t1700000000\\tweb2\\t0\\t1.5\\n'
"""
FAKE_SYSTEMCTL = """#!/bin/sh
case $4 in
  wsgi-shop-job-clean.timer) printf 'NextElapseUSecRealtime=@1700003600\\n' ;;
  wsgi-shop-beat@1.service) printf 'ActiveState=active\\nSubState=running\\nActiveEnterTimestamp=@1700000000\\nNRestarts=2\\n' ;;
  *) printf 'ActiveState=inactive\\nSubState=dead\\nActiveEnterTimestamp=\\nNRestarts=0\\n' ;;
esac
"""


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"fail\\nshop: process wsgi-shop-beat@2.service is down\\n"
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_it_reads_the_health_check_the_live_release_and_the_units(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "systemctl").write_text(FAKE_SYSTEMCTL)
    (tmp_path / "bin" / "systemctl").chmod(0o755)
    (tmp_path / "bin" / "psql").write_text(FAKE_PSQL)
    (tmp_path / "bin" / "psql").chmod(0o755)
    (tmp_path / "shop.json").write_text(json.dumps({"PGDATABASE": "shop"}))
    (tmp_path / "releases" / "r1").mkdir(parents=True)
    (tmp_path / "current").symlink_to("releases/r1")
    spec = {"health_url": f"http://127.0.0.1:{server.server_address[1]}/healthz",
            "apps": [{"name": "hello", "current": "", "units": []},
                     {"name": "shop", "current": str(tmp_path / "current"),
                      "units": ["wsgi-shop-beat@1.service", "wsgi-shop-beat@2.service"], "jobs": ["clean"],
                      "env_file": str(tmp_path / "shop.json")}]}
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    try:
        done = subprocess.run([sys.executable, "-c", SCRIPT.read_text(), json.dumps(spec)], capture_output=True,
                              text=True, check=True, env=env)
    finally:
        server.shutdown()
        server.server_close()
    report = json.loads(done.stdout)
    assert report["health"] == {"status": 503, "body": "fail\\nshop: process wsgi-shop-beat@2.service is down\\n"}
    hello, shop = report["apps"]
    assert (hello["release"], hello["live_since"], hello["units"], hello["jobs"]) == ("", None, [], [])
    # The job's last run across the fleet comes from the app's database (its environment's settings).
    assert shop["jobs"] == [{"job": "clean", "next": 1700003600,
                             "last": {"scheduled": 1700000000, "host": "web2", "status": 0, "seconds": 1.5}}]
    assert shop["release"] == "r1" and shop["live_since"] == int(os.lstat(tmp_path / "current").st_mtime)
    assert shop["units"] == [
        {"unit": "wsgi-shop-beat@1.service", "state": "active (running)", "since": 1700000000, "restarts": 2},
        {"unit": "wsgi-shop-beat@2.service", "state": "inactive (dead)", "since": None, "restarts": 0}]


def test_a_host_that_runs_processes_only_asks_no_health_check(tmp_path: Path) -> None:
    spec = {"health_url": "", "apps": [{"name": "hello", "current": "", "units": []}]}
    done = subprocess.run([sys.executable, "-c", SCRIPT.read_text(), json.dumps(spec)], capture_output=True,
                          text=True, check=True)
    assert json.loads(done.stdout)["health"] == {}
