"""The board app's state directory (backup_state) backed up to the backups host and restored: an upload the
app wrote, deleted, and brought back by restore_state.yml to a time before the deletion; the newest
snapshot restored after; the directory each restore replaced kept; the copy on the backups host encrypted
and nothing of it readable by other users or shown.

Each web server keeps its own state directory: the uploads go to fleet-web1 directly (its published port),
and every web server takes a snapshot before the point in time, as its timer would have.
"""

from __future__ import annotations

import time
import uuid

import pytest
from conftest import inventory_host, lab_of

testinfra_hosts = ["fleet-balancer"]

BOARD = "board.example.com"
STATE_DIR = "/var/lib/wsgi-apps/board"
BACKUPS = "/var/lib/wsgi-state-backups"
COPY = "/var/lib/wsgi-backups/fleet-web1/state/board"
WEB_SERVERS = ["fleet-web1", "fleet-web2", "fleet-web3"]


@pytest.fixture(scope="module")
def web1():
    return inventory_host("fleet-web1")


def snapshot_everywhere() -> None:
    """What the timer does on each web server (its service, started by hand: a oneshot, done when it returns)."""
    for name in WEB_SERVERS:
        inventory_host(name).check_output("systemctl start wsgi-state-backup.service")


def utc_now(web1) -> str:
    return web1.check_output("date -u '+%Y-%m-%d %H:%M:%S+00:00'")


def test_an_upload_deleted_comes_back_with_restore_state_and_the_newest_after(lab, web1):
    web = lab_of(web1)
    token = uuid.uuid4().hex[:12]
    kept, later = f"kept-{token}", f"later-{token}"
    content = f"an upload the backups host must not be able to read {token}\n".encode() * 50

    assert web1.service("wsgi-state-backup.timer").is_enabled
    assert web1.service("wsgi-state-backup.timer").is_running
    owner = web1.file(STATE_DIR).user, web1.file(STATE_DIR).group, web1.file(STATE_DIR).mode
    assert web.request(f"/uploads/{kept}", BOARD, method="PUT", body=content).status == 201
    snapshot_everywhere()
    # The repository is on the backups host, encrypted (no upload's text in it).
    backups = inventory_host("fleet-backups")
    assert backups.file(f"{COPY}/config").is_file
    assert backups.run(f"grep -rqF {token} /var/lib/wsgi-backups/fleet-web1").rc == 1

    time.sleep(1.5)
    point = utc_now(web1)
    time.sleep(1.5)
    assert web.request(f"/uploads/{kept}", BOARD, method="DELETE").status == 200
    assert web.request(f"/uploads/{later}", BOARD, method="PUT", body=b"after the point").status == 201
    snapshot_everywhere()

    restored = lab.playbook(playbook="playbooks/restore_state.yml", limit=False,
                            extra_vars={"wsgi_restore_app": "board", "wsgi_restore_time": point})
    assert restored.returncode == 0, restored.summary()
    assert web.request(f"/uploads/{kept}", BOARD).body == content
    assert web.request(f"/uploads/{later}", BOARD).status == 404
    assert (web1.file(STATE_DIR).user, web1.file(STATE_DIR).group, web1.file(STATE_DIR).mode) == owner
    # The directory the restore replaced is kept, with what came after the point.
    assert web1.run(f"ls {BACKUPS}/before-restore/board-*/uploads/{later}").rc == 0

    newest = lab.playbook(playbook="playbooks/restore_state.yml", limit=False,
                          extra_vars={"wsgi_restore_app": "board"})
    assert newest.returncode == 0, newest.summary()
    assert web.request(f"/uploads/{later}", BOARD).body == b"after the point"
    assert web.request(f"/uploads/{kept}", BOARD).status == 404

    # The key is root's only and in no output.
    key = web1.check_output("cat /etc/wsgi-state-backups/password")
    assert len(key) >= 20
    assert key not in restored.stdout + restored.stderr + newest.stdout + newest.stderr


def test_nothing_of_the_state_backups_is_readable_by_other_users(web1):
    for path, mode in (("/etc/wsgi-state-backups", 0o700), ("/etc/wsgi-state-backups/password", 0o600),
                       (f"{BACKUPS}/repos", 0o700), (f"{BACKUPS}/repos/board", 0o700)):
        node = web1.file(path)
        assert (node.user, node.mode) == ("root", mode), path
    # restic writes its repository files read-only for their owner; nothing for group or others.
    # (A replaced state directory, in the root-only before-restore, keeps the modes the app gave its files.)
    assert web1.check_output(f"find {BACKUPS} /etc/wsgi-state-backups -path {BACKUPS}/before-restore -prune "
                             "-o -perm /077 -print | head -n 3") == ""
    backups = inventory_host("fleet-backups")
    assert backups.check_output("find /var/lib/wsgi-backups/fleet-web1 -perm /077 | head -n 3") == ""


def test_a_run_limited_to_the_backups_host_cuts_no_client_off(lab, web1):
    """site.yml --limit fleet-backups: the clients outside the run keep their keys, and their copies go on."""
    backups = inventory_host("fleet-backups")
    before = backups.file("/var/lib/wsgi-backups/.ssh/authorized_keys").content_string
    limited = lab.playbook(limit=["fleet-backups"])
    assert limited.returncode == 0, limited.summary()
    assert limited.stats()["fleet-backups"]["changed"] == 0
    assert backups.file("/var/lib/wsgi-backups/.ssh/authorized_keys").content_string == before
    assert {line.rsplit(":", 1)[-1] for line in before.splitlines()} >= {"fleet-db", *WEB_SERVERS}
    web1.check_output("systemctl start wsgi-state-backup.service")
    inventory_host("fleet-db").check_output("/usr/local/sbin/wsgi-postgresql-archive sync")
