"""roles/redis/files/redis-instances.sh: the apps' Redis instances started, restarted and stopped in one run,
with a stand-in systemctl that keeps each unit's state in files and logs its calls."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fake_systemctl import asked, install, run_script

SCRIPT = Path(__file__).resolve().parents[1] / "roles" / "redis" / "files" / "redis-instances.sh"
SHOP, BLOG, GONE = ("redis-server@wsgi-shop.service", "redis-server@wsgi-blog.service",
                    "redis-server@wsgi-gone.service")


@pytest.fixture()
def host(tmp_path: Path) -> Path:
    install(tmp_path)
    (tmp_path / "conf").mkdir()
    for name in ("redis-wsgi-shop.conf", "redis-wsgi-blog.conf", "redis-wsgi-gone.conf", "redis.conf"):
        (tmp_path / "conf" / name).write_text("")
    return tmp_path


def run(host: Path, reload: str, restart: str, *units: str) -> subprocess.CompletedProcess:
    done = run_script(SCRIPT, host, str(host / "conf"), reload, restart, *units)
    assert done.returncode == 0, done.stderr
    return done


def test_new_instances_start_once_and_a_second_run_changes_nothing(host: Path) -> None:
    first = run(host, "yes", SHOP, SHOP, BLOG)
    # Restart names shop (its files are new), but a unit that was not running is started, not restarted.
    assert first.stdout.splitlines() == [f"started {SHOP}", f"started {BLOG}"]
    assert asked(host) == ["daemon-reload", f"enable --now {SHOP}", f"enable --now {BLOG}"]
    assert run(host, "no", "", SHOP, BLOG).stdout == ""
    assert len(asked(host)) == 3


def test_changed_instances_restart_and_those_whose_app_left_stop_with_their_files_kept(host: Path) -> None:
    run(host, "no", "", SHOP, BLOG, GONE)
    done = run(host, "no", f"{BLOG},{SHOP}", SHOP, BLOG)
    assert done.stdout.splitlines() == [f"restarted {SHOP}", f"restarted {BLOG}",
                                        f"stopped {GONE} (its app has no redis any more; its data is kept)"]
    assert asked(host)[-1] == f"disable --now {GONE}"
    assert (host / "conf" / "redis-wsgi-gone.conf").exists()


def test_debians_own_instance_is_stopped(host: Path) -> None:
    (host / "enabled-redis-server.service").touch()
    done = run(host, "no", "")
    assert done.stdout.splitlines() == ["stopped redis-server.service (Debian's own instance, unused)"]
    assert run(host, "no", "").stdout == ""
