"""roles/backups/templates/wsgi-state-backup.j2, rendered and run here with real restic and rsync, the backups
host a local directory (a stand-in rsync maps `wsgi-backups:` to it, as rrsync maps it to the client's
directory there): snapshots copied out, a new host copying its repository back, a restore to a time with the
directory before kept, and never a copy over another repository."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import jinja2
import pytest

TEMPLATE = Path(__file__).resolve().parents[1] / "roles" / "backups" / "templates" / "wsgi-state-backup.j2"
RSYNC = shutil.which("rsync")

# rsync over SSH as the script calls it (-e "ssh -F ..."), with `wsgi-backups:` the client's directory on the
# backups host: here $REMOTE, and out of reach (exit 255, as ssh) when $UNREACHABLE is set.
STAND_IN_RSYNC = f"""#!/bin/bash
[[ -n ${{UNREACHABLE:-}} ]] && exit 255
args=()
while (( $# )); do
  case $1 in
    -e) shift ;;
    wsgi-backups:*) args+=("$REMOTE/${{1#wsgi-backups:}}") ;;
    *) args+=("$1") ;;
  esac
  shift
done
exec {RSYNC} "${{args[@]}}"
"""


@pytest.fixture()
def host(tmp_path: Path) -> dict:
    """A web server with the app `shop` (its state directory) and an empty directory on the backups host."""
    if not (shutil.which("restic") and RSYNC):
        pytest.fail("restic and rsync are needed (apt-get install restic rsync; .ci/run installs them)")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "rsync").write_text(STAND_IN_RSYNC)
    (tmp_path / "bin" / "rsync").chmod(0o755)
    config = tmp_path / "etc"
    config.mkdir(mode=0o700)
    (config / "password").write_text("a-key-the-backups-host-never-sees-0123456789")
    state_dir = tmp_path / "apps" / "shop"
    state_dir.mkdir(parents=True, mode=0o750)
    (config / "apps").write_text(f"shop {state_dir}\n")
    remote = tmp_path / "remote"
    remote.mkdir(mode=0o700)
    values = {"backups_state_config_dir": str(config), "backups_state_dir": str(tmp_path / "state"),
              "backups_client_dir": str(tmp_path / "client"), "inventory_hostname": "web1",
              "backups_state_retention_days": 14, "backups_state_stale_minutes": 60, "ansible_managed": "test"}
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    environment.filters["int"] = int
    script = tmp_path / "wsgi-state-backup"
    script.write_text(environment.from_string(TEMPLATE.read_text()).render(values))
    return {"script": script, "remote": remote, "state": tmp_path / "state", "dir": state_dir,
            "env": {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "REMOTE": str(remote),
                    "RESTIC_CACHE_DIR": str(tmp_path / "cache")}}


def run(host: dict, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(host["script"]), *args], capture_output=True, text=True,
                          env={**host["env"], **env}, timeout=120, check=False)


def ok(host: dict, *args: str, **env: str) -> str:
    done = run(host, *args, **env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def test_snapshots_go_to_the_backups_host_and_a_restore_goes_back_to_a_time(host) -> None:
    assert ok(host, "setup") == "shop: made its repository\n"
    (host["dir"] / "upload").write_text("first")
    ok(host, "backup")
    copy = host["remote"] / "state" / "shop"
    assert (copy / "config").read_bytes() == (host["state"] / "repos" / "shop" / "config").read_bytes()
    assert not [path for path in copy.rglob("*") if path.is_file() and b"first" in path.read_bytes()]
    time.sleep(0.2)
    point = now()
    time.sleep(0.2)
    (host["dir"] / "upload").write_text("second")
    (host["dir"] / "later").write_text("after the point")
    ok(host, "backup")

    said = ok(host, "restore", "shop", point)
    assert said.startswith(f"restored {host['dir']} from the snapshot of ")
    assert (host["dir"] / "upload").read_text() == "first"
    assert not (host["dir"] / "later").exists()
    assert oct(host["dir"].stat().st_mode & 0o777) == "0o750"
    (before,) = (host["state"] / "before-restore").iterdir()
    assert (before / "later").read_text() == "after the point"
    # The newest, without a time.
    ok(host, "restore", "shop")
    assert (host["dir"] / "upload").read_text() == "second"


def test_a_time_before_the_first_snapshot_is_refused_naming_the_oldest(host) -> None:
    ok(host, "backup")
    done = run(host, "restore", "shop", "2000-01-01 00:00:00+00:00")
    assert done.returncode == 1
    assert "no snapshot of shop at or before 2000-01-01 00:00:00+00:00; the oldest is of " in done.stderr
    assert run(host, "restore", "blog").returncode == 2


def test_a_new_host_copies_its_repository_back_and_restores_from_it(host) -> None:
    (host["dir"] / "upload").write_text("kept on the backups host")
    ok(host, "backup")
    # The host is lost: its repository and its state with it.
    shutil.rmtree(host["state"])
    (host["dir"] / "upload").unlink()
    assert ok(host, "setup") == "shop: copied its repository back from the backups host\n"
    ok(host, "restore", "shop")
    assert (host["dir"] / "upload").read_text() == "kept on the backups host"


def test_the_copy_never_replaces_another_repository(host) -> None:
    # A new host that could not reach the backups host makes a repository of its own...
    (host["remote"] / "state" / "shop").mkdir(parents=True)
    (host["remote"] / "state" / "shop" / "config").write_bytes(b"another repository's config")
    assert "could not be asked" in run(host, "setup", UNREACHABLE="1").stderr
    # ...and its backups stay here: the copy there is not its own.
    done = run(host, "backup")
    assert done.returncode == 1
    assert "shop: not copied: the backups host holds another repository of this app" in done.stderr
    assert os.listdir(host["remote"] / "state" / "shop") == ["config"]
    # A backups host out of reach stops the first copy too.
    shutil.rmtree(host["remote"] / "state")
    done = run(host, "backup", UNREACHABLE="1")
    assert done.returncode == 1 and "could not be asked" in done.stderr


def test_the_status_names_an_app_not_backed_up_yet_and_not_one_just_backed_up(host) -> None:
    late = json.loads(ok(host, "status"))
    (app,) = late["apps"]
    assert (app["app"], app["snapshot"], app["copied"]) == ("shop", None, None)
    assert app["problems"] == ["no snapshot of shop within 60 minutes",
                               "shop not copied to the backups host within 60 minutes"]
    ok(host, "backup")
    (app,) = json.loads(ok(host, "status"))["apps"]
    assert app["problems"] == [] and late["now"] - 5 <= app["snapshot"] <= app["copied"] <= time.time()
