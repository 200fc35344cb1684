"""Tests for the rollout filter plugin: the live-state command, and the plan's group of a host."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import pytest
import rollout
import yaml
from rollout import (
    AT_ONCE,
    IN_BATCHES,
    UP_TO_DATE,
    FilterModule,
    rollout_group,
    rollout_http_checks,
    rollout_read_command,
    rollout_state_command,
)

ROLES = Path(__file__).resolve().parents[2] / "roles"

# The command as roles/rollout/vars/main.yml wrote it in Jinja before it became a filter.
JINJA_COMMAND = """set -o pipefail
paths=(/etc/apache2 /etc/systemd/system /etc/headrace /opt/headrace/wheels /usr/local/www/wsgi-scripts \
/var/lib/dpkg/status)
{
  find "${paths[@]}" -xdev -printf '%p %m %u %g %l\\n' 2>/dev/null | LC_ALL=C sort
  find "${paths[@]}" -xdev -type f -print0 2>/dev/null | LC_ALL=C sort -z | xargs -0r sha256sum
  systemctl is-active apache2.service
  systemctl list-units --all --plain --no-legend 'headrace@*.socket'
} | sha256sum | cut -d' ' -f1
"""
PATHS = ["/etc/apache2", "/etc/systemd/system", "/etc/headrace", "/opt/headrace/wheels",
         "/usr/local/www/wsgi-scripts", "/var/lib/dpkg/status"]


# --------------------------------------------------------------------------- rollout_state_command


def test_the_command_is_the_one_the_jinja_wrote() -> None:
    assert rollout_state_command(PATHS, ["apache2.service"], ["headrace@*.socket"]) == JINJA_COMMAND


def test_paths_and_unit_names_are_quoted_for_the_shell() -> None:
    command = rollout_state_command(["/srv/my www", "/srv/$(reboot)", Path("/p")], ["a b.service"], ["x@*"])
    assert "paths=('/srv/my www' '/srv/$(reboot)' /p)\n" in command
    assert "  systemctl is-active 'a b.service'\n" in command
    assert "  systemctl list-units --all --plain --no-legend 'x@*'\n" in command


def test_one_line_per_service_and_pattern_and_none_without() -> None:
    command = rollout_state_command(["/a"], ["one.service", "two.service"], [])
    assert command.count("systemctl is-active") == 2
    assert "list-units" not in rollout_state_command(["/a"])
    assert "is-active" not in rollout_state_command(["/a"])


needs_gnu_tools = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "find", "sha256sum", "xargs")), reason="needs bash and GNU find")


def run(command: str) -> str:
    """The digest the command prints. (Its status is that of its last line: find's, for a missing path.)"""
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)
    assert len(result.stdout.strip()) == 64
    return result.stdout.strip()


@needs_gnu_tools
def test_the_digest_follows_what_the_paths_hold(tmp_path: Path) -> None:
    conf, scripts = tmp_path / "conf", tmp_path / "scripts"
    conf.mkdir()
    scripts.mkdir()
    (conf / "site.conf").write_text("Listen 80\n")
    (scripts / "app.wsgi").write_text("application = None\n")
    command = rollout_state_command([conf, scripts, tmp_path / "missing"])
    before = run(command)
    assert run(command) == before
    assert run(rollout_state_command([scripts, tmp_path / "missing", conf])) == before  # order does not matter
    (conf / "site.conf").write_text("Listen 81\n")
    changed = run(command)
    assert changed != before
    (conf / "site.conf").chmod(0o600)
    assert run(command) != changed
    (conf / "site.conf").chmod(0o644)
    (conf / "site.conf").write_text("Listen 80\n")
    assert run(command) == before
    (scripts / "new").mkdir()
    assert run(command) != before


# --------------------------------------------------------------------------- rollout_record_command


def test_the_record_is_written_once_then_left_alone_and_read_back_by_the_plan(tmp_path: Path) -> None:
    record = tmp_path / "state" / "release"
    state = "echo digest-1\n"
    command = rollout.rollout_record_command(str(record), "R1", state)
    dry = subprocess.run(["bash", "-c", rollout.rollout_record_command(str(record), "R1", state, True)],
                         capture_output=True, text=True, check=True)
    assert dry.stdout == "recorded\n" and not record.parent.exists()  # a dry run writes nothing
    first = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
    assert first.stdout == "recorded\n" and record.read_text() == "R1\ndigest-1\n"
    assert oct(record.stat().st_mode & 0o777) == "0o644" and oct(record.parent.stat().st_mode & 0o777) == "0o755"
    again = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
    assert again.stdout == ""  # the same release and state: nothing written
    changed = subprocess.run(["bash", "-c", rollout.rollout_record_command(str(record), "R1", "echo digest-2\n")],
                             capture_output=True, text=True, check=True)
    assert changed.stdout == "recorded\n" and record.read_text() == "R1\ndigest-2\n"
    assert list(record.parent.iterdir()) == [record]  # no temporary file left
    # What the plan reads back: the release and the state it recorded.
    assert read(rollout_read_command(record, "R1")) == ["R1", "digest-2", ""]


# --------------------------------------------------------------------------- rollout_read_command


def read(command: str) -> list[str]:
    """The three lines the command prints: recorded release, recorded state, live state."""
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 3, result.stdout
    return result.stdout.split("\n")[:3]


@needs_gnu_tools
def test_the_read_prints_the_record_and_the_live_state_of_the_recorded_release(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "f").write_text("x")
    state = rollout_state_command([tmp_path / "app"])
    (tmp_path / "release").write_text("R\nS\n")
    assert read(rollout_read_command(tmp_path / "release", "R", state)) == ["R", "S", run(state)]


@needs_gnu_tools
def test_the_live_state_is_not_read_for_another_release_nor_without_its_command(tmp_path: Path) -> None:
    (tmp_path / "release").write_text("old\nS\n")
    marker = tmp_path / "state-was-read"
    state = f"touch {marker}\necho digest\n"
    assert read(rollout_read_command(tmp_path / "release", "R", state)) == ["old", "S", ""]
    assert read(rollout_read_command(tmp_path / "release", "old")) == ["old", "S", ""]
    assert not marker.exists()
    assert read(rollout_read_command(tmp_path / "release", "old", state)) == ["old", "S", "digest"]


@pytest.fixture()
def health_server():
    """A health check on 127.0.0.1 answering /ok 200, /down 503 and /moved 302 to /ok, like the host's own."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = {"/ok": 200, "/down": 503, "/moved": 302}.get(self.path, 404)
            self.send_response(status)
            if status == 302:
                self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def lines(command: str) -> list[str]:
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


@needs_gnu_tools
def test_a_host_in_service_prints_its_health_then_its_record(tmp_path: Path, health_server: str) -> None:
    (tmp_path / "release").write_text("R\nS\n")
    record = tmp_path / "release"
    assert lines(rollout_read_command(record, "R", "echo live\n", f"{health_server}/ok")) == ["200", "R", "S", "live"]
    # Redirects are followed, as the uri module did.
    assert lines(rollout_read_command(record, "R", "", f"{health_server}/moved")) == ["200", "R", "S", ""]
    # A forced rollout needs no record.
    assert lines(rollout_read_command(record, "R", "echo live\n", f"{health_server}/ok", read_record=False)) == ["200"]


@needs_gnu_tools
def test_a_host_out_of_service_prints_only_its_health(tmp_path: Path, health_server: str) -> None:
    marker = tmp_path / "state-was-read"
    (tmp_path / "release").write_text("R\nS\n")
    assert lines(rollout_read_command(tmp_path / "release", "R", f"touch {marker}\n", f"{health_server}/down")) == ["503"]
    nothing = "http://127.0.0.1:9/healthz"  # the discard port: nothing listens there
    assert lines(rollout_read_command(tmp_path / "release", "R", f"touch {marker}\n", nothing)) == ["-1"]
    assert not marker.exists()


@needs_gnu_tools
def test_a_host_without_a_record_reads_empty_lines(tmp_path: Path) -> None:
    state = "echo digest\n"
    assert read(rollout_read_command(tmp_path / "none", "R", state)) == ["", "", ""]
    (tmp_path / "short").write_text("R")  # a record cut short: no state line, no newline
    assert read(rollout_read_command(tmp_path / "short", "R", state)) == ["R", "", "digest"]


def test_the_paths_and_release_are_quoted_for_the_shell() -> None:
    command = rollout_read_command("/var/lib/my state/release", "$(reboot)", "echo x\n")
    assert "cat '/var/lib/my state/release'" in command
    assert "= '$(reboot)' ]" in command


# --------------------------------------------------------------------------- rollout_http_checks


def test_each_app_is_asked_at_its_mount_through_its_sites_port_with_its_host_header() -> None:
    plain = {"app": "hello", "server_name": "www.example.com", "port": 80, "tls": False, "path": "/", "timeout": 3}
    https = {"app": "api", "server_name": "api.example.com", "port": 8443, "tls": True, "path": "/v1", "timeout": 3}
    assert rollout_http_checks([plain, https]) == [
        {"name": "hello (www.example.com:80/)", "url": "http://127.0.0.1:80/", "host": "www.example.com",
         "status": list(range(100, 500))},
        {"name": "api (api.example.com:8443/v1)", "url": "https://127.0.0.1:8443/v1", "host": "api.example.com",
         "status": list(range(100, 500))},
    ]


def test_an_acme_site_is_asked_on_its_plain_port() -> None:
    acme = {"app": "shop", "server_name": "shop.example.com", "port": 443, "tls": True, "path": "/",
            "plain_port": 80, "live_file": "/var/lib/acme-live/shop.example.com"}
    [check] = rollout_http_checks([acme])
    assert check["url"] == "http://127.0.0.1:80/"
    assert check["name"] == "shop (shop.example.com:443/)"


def test_a_server_error_is_not_an_answer() -> None:
    [check] = rollout_http_checks([{"app": "a", "server_name": "s", "port": 80, "tls": False, "path": "/"}])
    assert 499 in check["status"] and 308 in check["status"] and 404 in check["status"]
    assert 500 not in check["status"] and 502 not in check["status"]


# --------------------------------------------------------------------------- rollout_group


def jinja_group(in_service: bool, recorded: list[str], release: str, live: str, force: bool, skip: bool) -> str:
    """The group_by key expression of roles/rollout/tasks/plan.yml before it became a filter, in Python."""
    return ("rollout_at_once" if not in_service
            else "rollout_in_batches" if force or recorded[0] != release
            else "rollout_up_to_date" if skip and recorded[1] == live
            else "rollout_at_once")


@pytest.mark.parametrize(("in_service", "recorded", "live", "force", "skip"), list(itertools.product(
    [True, False], [["R", "S"], ["old", "S"], ["R", "hand"], ["", ""]], ["S", ""], [False, True], [True, False])))
def test_the_group_is_the_one_the_jinja_chose(in_service, recorded, live, force, skip) -> None:
    expected = jinja_group(in_service, recorded + ["", ""], "R", live, force, skip)
    assert rollout_group(in_service, recorded + ["", ""], "R", live, force=force, skip_unchanged=skip) == expected


def test_a_host_not_in_service_is_deployed_at_once() -> None:
    assert rollout_group(False, ["R", "S"], "R", "S") == AT_ONCE
    assert rollout_group(False, ["old", "S"], "R", "S", force=True) == AT_ONCE


def test_a_host_in_service_with_a_new_release_goes_in_batches() -> None:
    assert rollout_group(True, ["old", "S"], "R", "S") == IN_BATCHES
    assert rollout_group(True, [], "R", "") == IN_BATCHES  # nothing recorded yet


def test_force_puts_every_host_in_service_in_batches() -> None:
    assert rollout_group(True, ["R", "S"], "R", "S", force=True) == IN_BATCHES


def test_a_host_at_its_release_and_live_state_is_only_checked() -> None:
    assert rollout_group(True, ["R", "S"], "R", "S") == UP_TO_DATE


def test_a_host_changed_by_hand_or_without_skipping_is_converged_at_once() -> None:
    assert rollout_group(True, ["R", "S"], "R", "changed") == AT_ONCE
    assert rollout_group(True, ["R", "S"], "R", "S", skip_unchanged=False) == AT_ONCE


def test_a_record_of_the_release_only_compares_an_empty_live_state() -> None:
    assert rollout_group(True, ["R"], "R", "") == UP_TO_DATE
    assert rollout_group(True, ["R"], "R", "S") == AT_ONCE


def test_the_groups_are_those_the_playbooks_run_on() -> None:
    playbooks = Path(__file__).resolve().parents[2] / "playbooks"
    hosts = {play["hosts"] for name in ("webservers.yml", "rolling_update.yml")
             for play in yaml.safe_load((playbooks / name).read_text())}
    assert "webservers:&" + AT_ONCE in hosts
    assert "webservers:&" + IN_BATCHES in hosts
    # Checked by the plan, converged by no play, and left out of the build of releases (nothing to build),
    # which the hosts that run apps' processes only join.
    assert [pattern for pattern in hosts if UP_TO_DATE in pattern] == ["webservers:wsgi_process_hosts:!" + UP_TO_DATE]


# --------------------------------------------------------------------------- the roles' contract


def test_the_release_settings_are_the_host_variables_of_the_roles() -> None:
    host_variables = {"wsgi_sites": [{"server_name": "a"}], "headrace_workers": 2, "ansible_host": "web1",
                      "inventory_hostname": "web1", "mywsgi_x": 1, "tls_profile": "modern"}
    assert rollout.rollout_release_settings(host_variables, "^(wsgi|headrace|tls)_") == {
        "headrace_workers": 2, "tls_profile": "modern", "wsgi_sites": [{"server_name": "a"}]}


def test_the_release_settings_read_only_the_matching_values() -> None:
    class Lazy(dict):
        """hostvars templates a value when it is read: reading any other would be work for nothing."""

        def __getitem__(self, name: str) -> object:
            assert name.startswith("wsgi_"), f"read {name}"
            return super().__getitem__(name)

    assert rollout.rollout_release_settings(Lazy(wsgi_a=1, ansible_facts={}), "^wsgi_") == {"wsgi_a": 1}


def test_the_live_state_covers_the_same_paths_as_before() -> None:
    # The system's paths here, the roles' from what they publish (their vars/main.yml), which the composition
    # point hands over: together the paths the live state has always covered.
    system = yaml.safe_load((ROLES / "rollout" / "vars" / "Debian.yml").read_text())
    composition = yaml.safe_load((ROLES.parent / "playbooks" / "vars" / "webservers.yml").read_text())
    assert "apache_conf_dir" in composition["rollout_state_paths"]
    assert "headrace_state_paths" in composition["rollout_state_paths"]
    assert "wsgi_state_paths" in composition["rollout_state_paths"]
    published = (yaml.safe_load((ROLES / "headrace" / "vars" / "main.yml").read_text())["headrace_state_paths"]
                 + yaml.safe_load((ROLES / "wsgi" / "vars" / "main.yml").read_text())["wsgi_state_paths"])
    rendered = [path.replace("{{ headrace_config_dir }}", "/etc/headrace")
                .replace("{{ headrace_prefix }}", "/opt/headrace").replace("{{ wsgi_base_dir }}", "/usr/local/www")
                for path in published]
    assert sorted(system["rollout_system_state_paths"] + ["/etc/apache2"] + rendered) == sorted(PATHS)


def test_filter_module_exposes_the_filters() -> None:
    assert FilterModule().filters() == {"rollout_state_command": rollout.rollout_state_command,
                                        "rollout_record_command": rollout.rollout_record_command,
                                        "rollout_read_command": rollout.rollout_read_command,
                                        "rollout_http_checks": rollout.rollout_http_checks,
                                        "rollout_group": rollout.rollout_group,
                                        "rollout_release_settings": rollout.rollout_release_settings}
