"""roles/releases/files/processes.sh and app-exec: the project apps' processes, run here for real.

processes.sh runs with a stand-in systemctl that keeps each unit's enabled and running state in files and
logs what it is asked, on a unit directory of its own, so that what the role relies on is checked: the
instances started, restarted only when asked, those beyond the count and those of a template no longer
wanted stopped (the template's file removed only when it carries the role's mark), a dry run that asks
nothing. app-exec runs a program in a release directory with an environment file, as a unit would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fake_systemctl import asked, install, run_script
from live_release import make_live_release

FILES = Path(__file__).resolve().parents[1] / "roles" / "releases" / "files"
MARK = "# wsgi-hosting: a process of a project app\n"


@pytest.fixture()
def host(tmp_path: Path) -> Path:
    install(tmp_path)
    (tmp_path / "units").mkdir()
    (tmp_path / "units" / "wsgi-shop-worker@.service").write_text(MARK)
    return tmp_path


def run(host: Path, *args: str) -> subprocess.CompletedProcess:
    return run_script(FILES / "processes.sh", host, *args)


def test_instances_start_once_then_restart_only_when_asked(host: Path) -> None:
    units = str(host / "units")
    first = run(host, "apply", units, "reload", "wsgi-shop-worker@.service", "2", "yes")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["started wsgi-shop-worker@1.service", "started wsgi-shop-worker@2.service"]
    assert asked(host) == ["daemon-reload", "enable --now wsgi-shop-worker@1.service wsgi-shop-worker@2.service"]
    assert run(host, "apply", units, "no-reload", "wsgi-shop-worker@.service", "2", "no").stdout == ""
    again = run(host, "apply", units, "no-reload", "wsgi-shop-worker@.service", "2", "yes")
    assert again.stdout.splitlines() == ["restarted wsgi-shop-worker@1.service", "restarted wsgi-shop-worker@2.service"]
    assert asked(host)[-1] == "restart wsgi-shop-worker@1.service wsgi-shop-worker@2.service"


def test_fewer_instances_and_templates_no_longer_wanted_are_stopped(host: Path) -> None:
    units = host / "units"
    run(host, "apply", str(units), "reload", "wsgi-shop-worker@.service", "3", "no")
    fewer = run(host, "apply", str(units), "no-reload", "wsgi-shop-worker@.service", "1", "no")
    assert fewer.stdout.splitlines() == ["stopped wsgi-shop-worker@2.service", "stopped wsgi-shop-worker@3.service"]
    (units / "someone-elses@.service").write_text("[Service]\n")  # not the role's: left alone
    gone = run(host, "apply", str(units), "no-reload")
    assert gone.stdout.splitlines() == ["stopped wsgi-shop-worker@1.service",
                                        f"removed {units}/wsgi-shop-worker@.service"]
    assert sorted(path.name for path in units.iterdir()) == ["someone-elses@.service"]
    assert asked(host)[-2:] == ["disable --now wsgi-shop-worker@1.service", "daemon-reload"]


def test_a_dry_run_says_what_it_would_do_and_asks_nothing(host: Path) -> None:
    dry = run(host, "dry-run", str(host / "units"), "reload", "wsgi-shop-worker@.service", "1", "no")
    assert dry.stdout.splitlines() == ["started wsgi-shop-worker@1.service"]
    assert asked(host) == []


def test_bad_arguments_are_refused(host: Path) -> None:
    assert run(host, "apply", str(host / "units"), "maybe").returncode == 2
    assert "come in threes" in run(host, "apply", str(host / "units"), "reload", "x@.service").stderr


def test_app_exec_runs_the_program_in_the_live_release_with_the_apps_environment(tmp_path: Path) -> None:
    release = make_live_release(tmp_path, "show-env", 'echo "$PWD|$VIRTUAL_ENV|$SECRET_KEY|$STATE_DIRECTORY|$1"\n',
                                {"SECRET_KEY": "s3cret"})
    env_file = tmp_path / "shop.json"
    done = subprocess.run([sys.executable, str(FILES / "app-exec"), str(env_file), str(tmp_path / "current"),
                           "/var/lib/wsgi-apps/shop", "show-env", "two words"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{release}|{release}/.venv|s3cret|/var/lib/wsgi-apps/shop|two words\n"
    missing = subprocess.run([sys.executable, str(FILES / "app-exec"), str(env_file), str(tmp_path / "current"),
                              "/x", "no-such-program"], capture_output=True, text=True, check=False)
    assert missing.returncode == 127 and "no-such-program" in missing.stderr


def test_timers_after_the_dashes_start_once_and_a_timer_no_longer_wanted_goes_with_its_service(host: Path) -> None:
    units = host / "units"
    for name in ("wsgi-shop-job-clean.timer", "wsgi-shop-job-clean.service", "wsgi-shop-job-old.timer",
                 "wsgi-shop-job-old.service"):
        (units / name).write_text(MARK)
    first = run(host, "apply", str(units), "reload", "wsgi-shop-worker@.service", "1", "no", "--",
                "wsgi-shop-job-clean.timer")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["started wsgi-shop-worker@1.service", "started wsgi-shop-job-clean.timer",
                                         "stopped wsgi-shop-job-old.timer", f"removed {units}/wsgi-shop-job-old.timer"]
    assert sorted(path.name for path in units.iterdir()) == [
        "wsgi-shop-job-clean.service", "wsgi-shop-job-clean.timer", "wsgi-shop-worker@.service"]
    again = run(host, "apply", str(units), "no-reload", "wsgi-shop-worker@.service", "1", "no", "--",
                "wsgi-shop-job-clean.timer")
    assert (again.returncode, again.stdout) == (0, "")
