"""What every converged web server must show, whatever the mode of its apps."""

from __future__ import annotations

import pytest
from conftest import ONE_BATCH, apache_main_pid, names

SOURCE_MARKERS = ("start_response", "def application")


def test_apache_and_mod_wsgi_run(host):
    apache = host.service("apache2")
    assert apache.is_running
    assert apache.is_enabled
    modules = host.check_output("apache2ctl -M 2>/dev/null")
    assert "wsgi_module" in modules
    assert "autoindex_module" not in modules


def test_default_site_is_off(host, lab):
    assert not host.file("/etc/apache2/sites-enabled/000-default.conf").exists
    response = lab.request("/", "unknown.invalid")
    assert "Debian Default Page" not in response.text


def test_server_header_names_no_version(lab):
    response = lab.request("/robots.txt", lab.sites[0]["server_name"])
    assert response.headers["Server"] == "Apache"


def test_trace_is_refused(lab):
    assert lab.request("/", lab.sites[0]["server_name"], method="TRACE").status == 405


def test_directories_are_never_listed(lab):
    response = lab.request("/images/", lab.sites[0]["server_name"])
    assert response.status in (403, 404)
    assert "Index of" not in response.text
    assert "logo.txt" not in response.text


def test_layout_owners_and_modes(host, lab):
    base = lab.variables["wsgi_base_dir"]
    documents = host.file(f"{base}/documents")
    scripts = host.file(f"{base}/wsgi-scripts")
    assert (documents.user, documents.group, documents.mode) == ("root", "root", 0o755)
    assert (scripts.user, scripts.group, scripts.mode) == ("root", "wsgi", 0o750)
    assert not f"{base}/wsgi-scripts".startswith(f"{base}/documents/")
    for _, app in lab.apps():
        script = host.file(f"{base}/wsgi-scripts/{app['name']}.wsgi")
        assert (script.user, script.group, script.mode) == ("root", "wsgi", 0o640)


def runs_as(host, user: str, command: str) -> bool:
    return host.run(f"runuser -u {user} -- {command}").rc == 0


def test_scripts_readable_but_not_writable_by_the_users_that_run_them(host, lab):
    base = lab.variables["wsgi_base_dir"]
    runners = {"www-data"} | {app.get("user", "wsgi") for _, app in lab.apps("daemon")}
    for user in runners:
        assert not runs_as(host, user, f"test -w {base}/wsgi-scripts"), user
        for _, app in lab.apps():
            script = f"{base}/wsgi-scripts/{app['name']}.wsgi"
            assert runs_as(host, user, f"test -r {script}"), (user, script)
            assert not runs_as(host, user, f"test -w {script}"), (user, script)
    assert not runs_as(host, "nobody", f"test -r {base}/wsgi-scripts/{lab.apps()[0][1]['name']}.wsgi")


@pytest.mark.parametrize(
    "template",
    [
        "/wsgi-scripts/{name}.wsgi",
        "{base}/wsgi-scripts/{name}.wsgi",
        "/{name}.wsgi",
        "/images/../wsgi-scripts/{name}.wsgi",
        "/images/..%2f..%2fwsgi-scripts/{name}.wsgi",
        "/robots.txt/../../wsgi-scripts/{name}.wsgi",
        "/../wsgi-scripts/{name}.wsgi",
    ],
)
def test_python_source_is_never_served(lab, template):
    base = lab.variables["wsgi_base_dir"]
    for site, app in lab.apps():
        path = template.format(base=base, name=app["name"])
        response = lab.request(path, site["server_name"], port=site.get("port", 80))
        assert not any(marker in response.text for marker in SOURCE_MARKERS), (path, response.text)
        has_root_app = any(a["mount"] == "/" for a in site.get("apps", []))
        if not has_root_app:
            assert response.status in (400, 403, 404), (path, response.status)


def test_static_aliases_are_served_from_the_document_root(host, lab):
    for site in lab.sites:
        document_root = site.get("document_root", f"{lab.variables['wsgi_base_dir']}/documents")
        for alias in site.get("static_aliases", []):
            path = alias + "logo.txt" if alias.endswith("/") else alias
            response = lab.request(path, site["server_name"], port=site.get("port", 80))
            assert response.status == 200, path
            assert response.body == host.file(document_root + path).content, path


def test_hello_world_from_the_default_app(lab):
    hello = [(site, app) for site, app in lab.apps() if "source" not in app]
    assert hello, "the scenario must serve the default app somewhere"
    for site, app in hello:
        response = lab.request(app["mount"], site["server_name"], port=site.get("port", 80))
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain"
        assert response.headers["Content-Length"] == "12"
        assert response.body == b"Hello World!"


def test_log_level_per_site(host, lab):
    conf = host.file("/etc/apache2/sites-enabled/wsgi-sites.conf").content_string
    for site in lab.sites:
        block = conf.split(f"ServerName {site['server_name']}\n", 1)[1].split("</VirtualHost>", 1)[0]
        assert f"LogLevel {site.get('log_level', 'info')}\n" in block


def test_broken_configuration_never_goes_live(group):
    """A setting Apache rejects fails the play, leaves the files as they were and the server serving (one
    run over every host, each checked on its own)."""
    conf = "/etc/apache2/conf-enabled/zz-performance.conf"
    before = {member.lab.name: (member.host.file(conf).content, apache_main_pid(member.host)) for member in group}
    result = group[0].lab.playbook(
        limit=names(group), extra_vars={**ONE_BATCH, "apache_mpm_event": {"ThreadsPerChild": 25, "NoSuchDirective": 1}}
    )
    assert result.returncode != 0
    for member in group:
        host, lab = member.host, member.lab
        messages = result.messages(lab.name)
        assert any("Apache rejected the new configuration" in message for message in messages), result.summary()
        assert any("NoSuchDirective" in message for message in messages), result.summary()
        assert result.host_stats(lab.name)["failed"] > 0, result.summary()
        assert (host.file(conf).content, apache_main_pid(host)) == before[lab.name], lab.name
        assert host.run("apache2ctl configtest").rc == 0
        site = lab.sites[0]
        assert lab.request("/robots.txt", site["server_name"]).status == 200, lab.name


def test_check_mode_reports_no_change(group):
    result = group[0].lab.playbook("--check", "--diff", limit=names(group))
    assert result.returncode == 0, result.summary()
    assert set(result.stats()) >= set(names(group)), result.summary()
    for name in names(group):
        counters = result.host_stats(name)
        assert counters["changed"] == 0, (name, result.summary())
        assert counters["failed"] == 0, (name, result.summary())


def test_health_check_asks_every_app_of_the_host(lab):
    """/healthz answers in every site (even with an app at "/"), naming each app of the host as answering."""
    apps = sorted(app["name"] for site in lab.sites for app in site.get("apps", []))
    for site in lab.sites:
        response = lab.request("/healthz", site["server_name"], port=site.get("port", 80))
        assert response.status == 200, response.text
        assert response.headers["Cache-Control"] == "no-store"
        first, *lines = response.text.splitlines()
        assert first == "ok"
        assert sorted(lines) == sorted(f"{name}: ok" for name in apps)


def test_health_check_source_is_never_served(lab):
    for site in lab.sites:
        for path in ("/healthz/checks.json", "/health/healthz.wsgi", "/wsgi-scripts/health/checks.json"):
            response = lab.request(path, site["server_name"], port=site.get("port", 80))
            assert b'"server_name"' not in response.body and b"def application" not in response.body, path
