"""Proxy mode: Apache forwards through mod_proxy to headrace, one socket-activated systemd instance per app."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import shutil
import time
from pathlib import Path

import pytest
from conftest import ONE_BATCH, Load, names

# The hosts of this mode in the modes scenario (their group in molecule.yml), one per Debian version.
testinfra_hosts = ["proxy"]

SOCKET_DIR = "/run/headrace"
SPOOFED = "203.0.113.7"


# --------------------------------------------------------------------------- helpers


def get(lab, path: str, server_name: str, port: int = 80, headers: dict | None = None, timeout: float = 30):
    """GET through the published port with extra headers; (status, body, seconds taken)."""
    published = {int(key): value for key, value in lab.variables["lab_published_ports"].items()}[port]
    conn = http.client.HTTPConnection("127.0.0.1", published, timeout=timeout)
    started = time.monotonic()
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", server_name)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read(), time.monotonic() - started
    finally:
        conn.close()


def proxy_apps(lab) -> list[tuple[dict, dict]]:
    return lab.apps("proxy")


def echo_apps(lab) -> list[tuple[dict, dict]]:
    """Proxy apps that run the echo app (they have a source)."""
    return [(site, app) for site, app in proxy_apps(lab) if app.get("source")]


def unix_apps(lab) -> list[tuple[dict, dict]]:
    return [(site, app) for site, app in proxy_apps(lab) if not app.get("listen")]


def main_pid(host, app: dict) -> int:
    return int(host.check_output(f"systemctl show -p MainPID --value headrace@{app['name']}.service"))


def worker_pids(host, app: dict) -> set[int]:
    pid = main_pid(host, app)
    return {int(p) for p in host.run(f"pgrep -P {pid}").stdout.split()}


def script_path(lab, app: dict) -> str:
    return f"{lab.variables['wsgi_base_dir']}/wsgi-scripts/{app['name']}.wsgi"


# --------------------------------------------------------------------------- systemd units


def test_sockets_and_servers_are_active_and_enabled(host, lab):
    for _, app in proxy_apps(lab):
        for unit in (f"headrace@{app['name']}.socket", f"headrace@{app['name']}.service"):
            service = host.service(unit)
            assert service.is_running, unit
            assert service.is_enabled, unit


def test_unix_sockets_are_for_apache_only(host, lab):
    directory = host.file(SOCKET_DIR)
    assert (directory.user, directory.group, directory.mode) == ("root", "root", 0o755)
    for _, app in unix_apps(lab):
        path = f"{SOCKET_DIR}/{app['name']}.sock"
        sock = host.file(path)
        assert sock.is_socket, path
        assert (sock.user, sock.group, sock.mode) == ("root", "www-data", 0o660), path
        request = f"curl -sf -o /dev/null --unix-socket {path} -H 'Host: x' http://x{app['mount']}"
        assert host.run(f"runuser -u www-data -- {request}").rc == 0
        assert host.run(f"runuser -u nobody -- {request}").rc != 0
        assert host.run(f"runuser -u headrace -- {request}").rc != 0


def test_a_listen_address_replaces_the_unix_socket(host, lab):
    for _, app in proxy_apps(lab):
        if not app.get("listen"):
            continue
        listen = host.check_output(f"systemctl show -p Listen --value headrace@{app['name']}.socket")
        assert listen == f"{app['listen']} (Stream)"
        assert not host.file(f"{SOCKET_DIR}/{app['name']}.sock").exists
        trusted = host.file(f"/etc/headrace/{app['name']}.toml").content_string
        assert 'forwarded_allow_ips = "127.0.0.1,::1"' in trusted


def test_servers_run_unprivileged_with_the_configured_workers(host, lab):
    for _, app in proxy_apps(lab):
        config = host.file(f"/etc/headrace/{app['name']}.toml").content_string
        workers = int(re.search(r"^workers = (\d+)$", config, re.MULTILINE).group(1))
        threads = int(re.search(r"^threads = (\d+)$", config, re.MULTILINE).group(1))
        assert workers == app.get("workers", max(int(host.check_output("nproc")), 2)), app["name"]
        assert threads == app.get("threads", 1), app["name"]
        pids = [main_pid(host, app), *worker_pids(host, app)]
        assert len(pids) == 1 + workers, app["name"]
        users = {host.check_output(f"ps -o user= -p {pid}") for pid in pids}
        assert users == {"headrace"}, app["name"]


def test_configuration_files_are_readable_by_the_servers_only(host, lab):
    directory = host.file("/etc/headrace")
    assert (directory.user, directory.group, directory.mode) == ("root", "headrace", 0o750)
    for _, app in proxy_apps(lab):
        path = f"/etc/headrace/{app['name']}.toml"
        config = host.file(path)
        assert (config.user, config.group, config.mode) == ("root", "headrace", 0o640)
        check = f"/opt/headrace/venv/bin/headrace --config {path} --check-config"
        assert host.run(f"runuser -u headrace -- {check}").rc == 0, app["name"]


def test_the_servers_read_the_scripts_and_write_nothing(host, lab):
    scripts = f"{lab.variables['wsgi_base_dir']}/wsgi-scripts"
    assert host.run(f"runuser -u headrace -- test -w {scripts}").rc != 0
    for _, app in proxy_apps(lab):
        assert host.run(f"runuser -u headrace -- test -r {script_path(lab, app)}").rc == 0
        assert host.run(f"runuser -u headrace -- test -w {script_path(lab, app)}").rc != 0


HARDENING = {
    "User": "headrace",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "MemoryDenyWriteExecute": "yes",
    "CapabilityBoundingSet": "",
    "Restart": "on-failure",
    "Type": "notify",
}


def test_servers_are_sandboxed(host, lab):
    for _, app in proxy_apps(lab):
        unit = f"headrace@{app['name']}.service"
        shown = host.check_output(f"systemctl show {unit} -p {' -p '.join(HARDENING)}")
        values = dict(line.split("=", 1) for line in shown.splitlines())
        assert values == HARDENING, unit
        report = host.check_output(f"systemd-analyze security --no-pager {unit}")
        exposure = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", report).group(1))
        assert exposure <= 2.0, report


def test_logs_go_to_the_journal(host, lab):
    for _, app in proxy_apps(lab):
        journal = host.check_output(f"journalctl --no-pager -u headrace@{app['name']}.service")
        assert "listening on" in journal, app["name"]


def test_headrace_comes_from_one_wheel_in_its_own_venv(host):
    wheels = host.file("/opt/headrace/wheels").listdir()
    assert len(wheels) == 1 and wheels[0].startswith("headrace-") and wheels[0].endswith(".whl")
    # Installed from that wheel into the venv (its version is the wheel's), which has no pip of its own.
    installed = host.check_output("/opt/headrace/venv/bin/python -c 'import importlib.metadata as m, headrace; "
                                  "print(m.version(\"headrace\"), headrace.__file__)'")
    version, module = installed.split()
    assert wheels[0].startswith(f"headrace-{version}-"), (installed, wheels)
    assert module.startswith("/opt/headrace/venv/lib/"), installed
    assert host.run("/opt/headrace/venv/bin/python -c 'import pip'").rc != 0
    assert host.run("/usr/bin/python3 -c 'import headrace'").rc != 0


# --------------------------------------------------------------------------- through Apache


def test_apache_proxies_with_mod_proxy(host):
    modules = host.check_output("apache2ctl -M 2>/dev/null")
    assert "proxy_module" in modules
    assert "proxy_http_module" in modules


def test_the_app_sees_the_request_as_the_client_made_it(lab):
    for site, app in echo_apps(lab):
        port = site.get("port", 80)
        names = [site["server_name"], *site.get("server_aliases", [])]
        for name in names:
            spoof = {"X-Forwarded-For": SPOOFED, "X-Forwarded-Proto": "https"}
            status, body, _ = get(lab, app["mount"] + "/a%20b/c?q=1", name, port, spoof)
            assert status == 200, (app["name"], body)
            report = json.loads(body)
            assert report["script_name"] == app["mount"]
            assert report["path_info"] == "/a b/c"
            assert report["http_host"] == name
            assert report["url_scheme"] == "http"
            assert report["user"] == "headrace"
            assert report["remote_addr"] not in (SPOOFED, "", None, "unix")
            # mod_wsgi sees the client directly: headrace, behind the proxy, must name the same address.
            legacy = [a for s, a in lab.apps("daemon") if s is site]
            if legacy:
                status, direct, _ = get(lab, legacy[0]["mount"], name, port)
                assert json.loads(direct)["remote_addr"] == report["remote_addr"]
        status, body, _ = get(lab, app["mount"], site["server_name"], port)
        assert status == 200
        report = json.loads(body)
        assert (report["script_name"], report["path_info"]) == (app["mount"], "")


def test_a_client_inside_the_host_is_seen_as_loopback(host, lab):
    site, app = echo_apps(lab)[0]
    port = site.get("port", 80)
    out = host.check_output(
        f"curl -sf -H 'Host: {site['server_name']}' -H 'X-Forwarded-For: {SPOOFED}' http://127.0.0.1:{port}{app['mount']}/"
    )
    assert json.loads(out)["remote_addr"] == "127.0.0.1"


def test_mounts_match_whole_path_segments(lab):
    site, app = next((s, a) for s, a in echo_apps(lab) if a["mount"] != "/")
    root = [a for s, a in proxy_apps(lab) if s is site and a["mount"] == "/"]
    status, body, _ = get(lab, app["mount"] + "x", site["server_name"], site.get("port", 80))
    if root:
        assert (status, body) == (200, b"Hello World!")
    else:
        assert status == 404


def test_mod_wsgi_apps_inside_a_proxied_mount_stay_with_apache(lab):
    for site, app in lab.apps("daemon"):
        status, body, _ = get(lab, app["mount"] + "/x", site["server_name"], site.get("port", 80))
        assert status == 200
        report = json.loads(body)
        assert report["process_group"] == app.get("process_group", app["name"])
        assert report["path_info"] == "/x"


@pytest.mark.parametrize("kind", ["unix", "tcp"])
def test_a_stopped_backend_gives_503_at_once_and_comes_back(host, lab, kind):
    candidates = [(s, a) for s, a in proxy_apps(lab) if bool(a.get("listen")) == (kind == "tcp")]
    if not candidates:
        pytest.skip(f"no {kind} backend in this scenario")
    site, app = candidates[0]
    port = site.get("port", 80)
    units = f"headrace@{app['name']}.socket headrace@{app['name']}.service"
    try:
        host.check_output(f"systemctl stop {units}")
        status, _, seconds = get(lab, app["mount"] + "/", site["server_name"], port, timeout=10)
        assert status == 503
        assert seconds < 5
        host.check_output(f"systemctl start headrace@{app['name']}.socket")
        # No restart of Apache, no waiting for a retry period: the next request reaches the new server.
        status, _, _ = get(lab, app["mount"] + "/", site["server_name"], port)
        assert status == 200
    finally:
        host.run(f"systemctl start {units}")
    assert host.service(f"headrace@{app['name']}.service").is_running


# --------------------------------------------------------------------------- code changes


def test_reload_under_load_fails_no_request_and_serves_the_new_code(host, lab):
    site, app = next((s, a) for s, a in echo_apps(lab) if not a.get("listen"))
    script = script_path(lab, app)
    pid = main_pid(host, app)
    old_workers = worker_pids(host, app)
    try:
        with Load(lab, site, app) as load:
            assert load.wait_for_version("1")
            host.check_output(f"sed -i 's/^VERSION = \"1\"/VERSION = \"2\"/' {script}")
            host.check_output(f"systemctl reload headrace@{app['name']}.service")
            assert load.wait_for_version("2")
            time.sleep(1)
        assert load.failures == {}, load.results
        assert load.results["retried"] <= 3, load.results
        assert load.results[200] > 100
        # After the switch only the new code answers.
        assert set(load.versions[-20:]) == {"2"}
        assert main_pid(host, app) == pid
        assert not worker_pids(host, app) & old_workers
    finally:
        host.run(f"sed -i 's/^VERSION = \"2\"/VERSION = \"1\"/' {script}")
        host.run(f"systemctl reload headrace@{app['name']}.service")


def test_the_playbook_reloads_on_a_changed_script_and_a_new_build(group, tmp_path):
    """A script edited on the host and a rebuilt headrace: the play puts back the script, installs the new
    wheel and reloads (SIGHUP) under load without a failed request; a second play restores the build. One
    run over the mode's hosts, each under a load of its own."""
    lab = group[0].lab
    site, app = next((s, a) for s, a in echo_apps(lab) if not a.get("listen"))
    script = script_path(lab, app)
    source = Path(lab.variables["headrace_source_dir"])
    variant = tmp_path / "headrace-src"
    shutil.copytree(source, variant, ignore=shutil.ignore_patterns("__pycache__"))
    init = variant / "src" / "headrace" / "__init__.py"
    init.write_text(init.read_text() + "# proxy scenario: a new build\n")
    installed_init = {  # the venv's site-packages: its Python is the host's own (3.11 or 3.13)
        member.lab.name: member.host.check_output(
            "/opt/headrace/venv/bin/python -c 'import headrace, sys; sys.stdout.write(headrace.__file__)'"
        )
        for member in group
    }
    pids = {}
    for member in group:
        member.host.check_output(f"sed -i 's/^VERSION = \"1\"/VERSION = \"3\"/' {script}")
        member.host.check_output(f"systemctl reload headrace@{app['name']}.service")
        pids[member.lab.name] = main_pid(member.host, app)
    # The load outlasts a playbook run over the group on a busy machine (it stops when the test ends).
    loads = [Load(member.lab, site, app, threads=3, limit=900) for member in group]
    with contextlib.ExitStack() as stack:
        for load in loads:
            stack.enter_context(load)
        for load in loads:
            assert load.wait_for_version("3"), load.lab.name
        result = lab.playbook(limit=names(group), extra_vars={**ONE_BATCH, "headrace_source_dir": str(variant)})
        assert result.returncode == 0, result.summary()
        for load in loads:
            assert load.wait_for_version("1"), (load.lab.name, load.results)
            assert time.monotonic() < load.deadline, f"the load of {load.lab.name} stopped before the reload"
    for load, member in zip(loads, group, strict=True):
        assert load.failures == {}, (member.lab.name, load.results)
        assert load.results["retried"] <= 3, (member.lab.name, load.results)
        assert result.host_stats(member.lab.name)["changed"] > 0
        assert "a new build" in member.host.file(installed_init[member.lab.name]).content_string, member.lab.name
        assert main_pid(member.host, app) == pids[member.lab.name]
        assert len(member.host.file("/opt/headrace/wheels").listdir()) == 1

    result = lab.playbook(limit=names(group), extra_vars=ONE_BATCH)
    assert result.returncode == 0, result.summary()
    for member in group:
        assert "a new build" not in member.host.file(installed_init[member.lab.name]).content_string, member.lab.name
        assert main_pid(member.host, app) == pids[member.lab.name]
