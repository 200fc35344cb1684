"""roles/postgresql/templates/wsgi-postgresql-archive.j2, rendered and run here with stand-ins for rsync and
pg_controldata: its copy to the backups host mirrors the repository (--delete), so it must never replace
another cluster's archive there — what a new database host would do if it made a repository of its own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import jinja2
import pytest

TEMPLATE = Path(__file__).resolve().parents[1] / "roles" / "postgresql" / "templates" / "wsgi-postgresql-archive.j2"
OURS = "7000000000000000001"

# rsync as the backups host's rrsync answers it: a listing of the client's directory (with wsgi-cluster-id
# when $REMOTE_ID is set; exit $PROBE_EXIT when set: out of reach), a pull of wsgi-cluster-id from
# $REMOTE_ID (exit 12 when there is none, as rrsync does); every call is logged.
FAKE_RSYNC = """#!/bin/sh
echo "$*" >> "$LOG"
for last; do :; done
case "$*" in
  *--list-only*)
    [ -n "${PROBE_EXIT:-}" ] && exit "$PROBE_EXIT"
    echo "drwx------          4,096 2026/12/05 16:33:37 ."
    [ -z "$REMOTE_ID" ] || echo "-rw-------             20 2026/12/05 16:33:37 wsgi-cluster-id" ;;
  *wsgi-backups:wsgi-cluster-id*)
    [ -n "$REMOTE_ID" ] || exit 12
    printf '%s\\n' "$REMOTE_ID" > "$last" ;;
esac
"""


@pytest.fixture()
def host(tmp_path: Path) -> dict:
    (tmp_path / "bin").mkdir()
    for name, text in (("rsync", FAKE_RSYNC),
                       ("pg_controldata", f"#!/bin/sh\necho 'Database system identifier:           {OURS}'\n")):
        (tmp_path / "bin" / name).write_text(text)
        (tmp_path / "bin" / name).chmod(0o755)
    repo = tmp_path / "repo"
    (repo / "backup" / "main").mkdir(parents=True)
    (repo / "backup" / "main" / "backup.info").write_text("encrypted")
    values = {"postgresql_archive_stanza": "main", "postgresql_archive_repo": str(repo),
              "postgresql_archive_state_dir": str(tmp_path / "state"), "postgresql_archive_ssh_config": "/dev/null",
              "postgresql_data_dir": str(tmp_path / "data"), "postgresql_bin_dir": str(tmp_path / "bin"),
              "postgresql_service": "postgresql@15-main.service", "postgresql_archive_scratch_port": 5439,
              "postgresql_archive_sync_stale": 120, "postgresql_archive_full_stale_days": 8,
              "postgresql_archive_latest_stale_hours": 26, "postgresql_archive_drill_stale_days": 8,
              "postgresql_user": "postgres", "postgresql_group": "postgres", "postgresql_max_connections": 100,
              "postgresql_archive_scratch_dir": str(tmp_path / "scratch"), "postgresql_sbin_dir": "/usr/local/sbin",
              "postgresql_credentials_dir": str(tmp_path / "credentials"),
              "ansible_managed": "test"}
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    environment.filters["int"] = int
    script = tmp_path / "wsgi-postgresql-archive"
    script.write_text(environment.from_string(TEMPLATE.read_text()).render(values))
    (tmp_path / "state").mkdir(mode=0o700)
    return {"script": script, "repo": repo, "log": tmp_path / "rsync.log", "state": tmp_path / "state",
            "path": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}


def sync(host: dict, remote_id: str = "", probe_exit: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": host["path"], "LOG": str(host["log"]), "REMOTE_ID": remote_id,
           "PROBE_EXIT": probe_exit}
    return subprocess.run(["bash", str(host["script"]), "sync"], capture_output=True, text=True, env=env, check=False)


def pushes(host: dict) -> list[str]:
    calls = host["log"].read_text().splitlines() if host["log"].exists() else []
    return [call for call in calls if "--delete" in call]


def test_a_backups_host_with_nothing_yet_gets_the_copy_and_the_clusters_identifier(host) -> None:
    done = sync(host)
    assert done.returncode == 0, done.stderr
    assert len(pushes(host)) == 1
    assert (host["repo"] / "wsgi-cluster-id").read_text().strip() == OURS
    # Verified once per cluster: the next copies do not ask again.
    assert sync(host).returncode == 0
    assert len(pushes(host)) == 2
    assert sum("--list-only" in call for call in host["log"].read_text().splitlines()) == 1


def test_another_clusters_archive_on_the_backups_host_is_never_replaced(host) -> None:
    done = sync(host, remote_id="7999999999999999999")
    assert done.returncode == 1
    assert "holds the archive of cluster 7999999999999999999, not of this one" in done.stderr
    assert pushes(host) == []
    assert not (host["state"] / "synced").exists()


def test_a_backups_host_that_cannot_be_asked_gets_nothing(host) -> None:
    done = sync(host, probe_exit="255")
    assert done.returncode == 1 and "could not be asked" in done.stderr
    assert pushes(host) == []


def test_the_same_clusters_archive_is_mirrored(host) -> None:
    assert sync(host, remote_id=OURS).returncode == 0
    assert len(pushes(host)) == 1 and (host["state"] / "synced").exists()


# A restore to a time starts from the newest backup that ended before it: pgBackRest's `info` (stand-in) has
# two backups, ended at STOPS; its `restore` logs its options and fails (the test needs no server).
STOPS = (1_796_000_000, 1_796_003_600)
STAND_INS = {
    "runuser": '#!/bin/bash\nshift 3\nexec "$@"\n',
    "pgbackrest": """#!/bin/bash
if [[ " $* " == *" info "* ]]; then
  printf '[{"db": [{"system-id": %s}], "backup": [%s]}]' "$OURS" "$INFO"; exit 0
fi
echo "$*" >> "$LOG"; exit 1
""",
    "systemctl": "#!/bin/sh\nexit 3\n",
    "install": "#!/bin/sh\nexit 0\n",
}


def restore_time(host: dict, tmp_path: Path, moment: str) -> subprocess.CompletedProcess:
    for name, text in STAND_INS.items():
        (tmp_path / "bin" / name).write_text(text)
        (tmp_path / "bin" / name).chmod(0o755)
    backups = ",".join(f'{{"label": "backup-{n}", "type": "full", "timestamp": {{"start": {stop - 60}, "stop": {stop}}}}}'
                       for n, stop in enumerate(STOPS, 1))
    env = {**os.environ, "PATH": host["path"], "LOG": str(host["log"]), "OURS": OURS, "INFO": backups}
    return subprocess.run(["bash", str(host["script"]), "restore-time", "shop", moment], capture_output=True,
                          text=True, env=env, check=False)


@pytest.mark.parametrize(("moment", "label"), [
    ("2026-11-30 00:53:21+00:00", "backup-1"),   # a second after the first backup's end
    ("2026-11-30 01:53:00+00:00", "backup-1"),   # during the second
    ("2026-11-30 00:53:20+00:00", ""),           # within the second the first ended: none before
    ("2026-11-30 01:53:21+00:00", "backup-2"),
])
def test_a_restore_to_a_time_starts_from_the_newest_backup_that_ended_before_it(host, tmp_path, moment, label):
    done = restore_time(host, tmp_path, moment)
    assert done.returncode == 1
    if label:
        (call,) = [line for line in host["log"].read_text().splitlines() if " restore" in line]
        assert f"--set={label}" in call.split() and f"--target={moment}" in call, call
    else:
        assert f"no backup ended before {moment}" in done.stderr
        assert not host["log"].exists()
