"""Embedded mode: the apps run inside Apache's own children."""

from __future__ import annotations

import json

from conftest import ONE_BATCH, PROJECT_DIR, names

# The hosts of this mode in the modes scenario (their group in molecule.yml), one per Debian version.
testinfra_hosts = ["embedded"]

ECHO_SOURCE = PROJECT_DIR / "molecule" / "shared" / "files" / "echo.wsgi"


def echo_apps(lab):
    return [(site, app) for site, app in lab.apps("embedded") if app.get("source") and "callable" not in app]


def test_apps_run_in_apache_children(host, lab):
    for site, app in echo_apps(lab):
        report = lab.request(app["mount"] + "/x/y", site["server_name"], port=site.get("port", 80)).json()
        assert report["process_group"] == ""
        assert report["user"] == "www-data"
        assert report["script_name"] == app["mount"]
        assert report["path_info"] == "/x/y"
    # No daemon process runs an app; the only one is the health check's (roles/wsgi, wsgi_health_path).
    daemons = {line.split()[0] for line in host.check_output("ps -eo args").splitlines() if "(wsgi:" in line}
    assert daemons == {"(wsgi:wsgi-health)"}


def test_embedded_mode_is_allowed(host):
    assert "WSGIRestrictEmbedded Off" in host.file("/etc/apache2/conf-enabled/wsgi-global.conf").content_string


def test_script_alias_at_virtualhost_level(host, lab):
    conf = host.file("/etc/apache2/sites-enabled/wsgi-sites.conf").content_string
    for _, app in lab.apps():
        assert f"\n    WSGIScriptAlias {app['mount']} " in conf


def test_callable_object(lab):
    for site, app in lab.apps():
        if "callable" in app:
            response = lab.request(app["mount"], site["server_name"], port=site.get("port", 80))
            assert response.body == f"callable: {app['callable']}".encode()


def test_a_changed_script_is_served_after_the_play(group, tmp_path):
    """One run over the mode's hosts (they share their wsgi_sites) with a changed script, then one back."""
    lab = group[0].lab
    site, app = echo_apps(lab)[0]
    changed = tmp_path / "echo.wsgi"
    changed.write_text(ECHO_SOURCE.read_text().replace('VERSION = "1"', 'VERSION = "2"'))
    sites = json.loads(json.dumps(lab.sites).replace(str(ECHO_SOURCE), str(changed)))
    try:
        result = lab.playbook(limit=names(group), extra_vars={**ONE_BATCH, "wsgi_sites": sites})
        assert result.returncode == 0, result.summary()
        for member in group:
            report = member.lab.request(app["mount"], site["server_name"], port=site.get("port", 80)).json()
            assert report["version"] == "2", member.lab.name
    finally:
        restored = lab.playbook(limit=names(group), extra_vars=ONE_BATCH)
        assert restored.returncode == 0, restored.summary()
    for member in group:
        report = member.lab.request(app["mount"], site["server_name"], port=site.get("port", 80)).json()
        assert report["version"] == "1", member.lab.name
