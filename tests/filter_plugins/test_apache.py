"""Tests for the apache filter plugin: where the config entry point writes each kind of file."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from apache import FilterModule, apache_config_entries, apache_config_targets

# As roles/apache/vars/Debian.yml spells it.
LAYOUT = {
    "conf": {"dir": "/etc/apache2/conf-available", "link_dir": "/etc/apache2/conf-enabled"},
    "site": {"dir": "/etc/apache2/sites-available", "link_dir": "/etc/apache2/sites-enabled"},
    "ports": {"path": "/etc/apache2/ports.conf"},
}
CALLER = ["/roles/mod_wsgi", "/roles/other"]


def test_conf_goes_to_conf_available_and_is_linked_from_conf_enabled() -> None:
    targets = apache_config_targets([{"template": "wsgi-global.conf.j2", "kind": "conf"}], LAYOUT, CALLER)
    assert targets == [{
        "template": "/roles/mod_wsgi/templates/wsgi-global.conf.j2",
        "dest": "/etc/apache2/conf-available/wsgi-global.conf",
        "link": "/etc/apache2/conf-enabled/wsgi-global.conf",
    }]


def test_site_goes_to_sites_available_and_is_linked_from_sites_enabled() -> None:
    targets = apache_config_targets([{"template": "balancer.conf.j2", "kind": "site"}], LAYOUT, ["/r/balancer"])
    assert targets == [{
        "template": "/r/balancer/templates/balancer.conf.j2",
        "dest": "/etc/apache2/sites-available/balancer.conf",
        "link": "/etc/apache2/sites-enabled/balancer.conf",
    }]


def test_ports_is_the_one_fixed_file_without_a_link() -> None:
    targets = apache_config_targets([{"template": "/roles/apache/templates/ports.conf.j2", "kind": "ports"}], LAYOUT)
    assert targets == [{"template": "/roles/apache/templates/ports.conf.j2", "dest": "/etc/apache2/ports.conf"}]


def test_name_overrides_the_template_name_and_order_is_kept() -> None:
    files = [
        {"template": "/a/templates/ports.conf.j2", "kind": "ports"},
        {"template": "/a/templates/hardening.conf.j2", "kind": "conf", "name": "zz-hardening.conf"},
        {"template": "/a/templates/performance.conf.j2", "kind": "conf", "name": "zz-performance.conf"},
    ]
    targets = apache_config_targets(files, LAYOUT, CALLER)
    assert [target["dest"] for target in targets] == [
        "/etc/apache2/ports.conf",
        "/etc/apache2/conf-available/zz-hardening.conf",
        "/etc/apache2/conf-available/zz-performance.conf",
    ]
    assert targets[1]["link"] == "/etc/apache2/conf-enabled/zz-hardening.conf"
    # Absolute template paths are kept whoever calls.
    assert targets[2]["template"] == "/a/templates/performance.conf.j2"


def test_template_name_without_j2_is_the_file_name() -> None:
    targets = apache_config_targets([{"template": "site.conf", "kind": "site"}], LAYOUT, CALLER)
    assert targets[0]["dest"] == "/etc/apache2/sites-available/site.conf"


def test_without_a_calling_role_the_name_is_left_to_the_lookup() -> None:
    for parents in (None, []):
        targets = apache_config_targets([{"template": "x.conf.j2", "kind": "conf"}], LAYOUT, parents)
        assert targets[0]["template"] == "x.conf.j2"


def error(files: Any) -> str:
    with pytest.raises(AnsibleFilterError) as caught:
        apache_config_targets(files, LAYOUT, CALLER)
    return str(caught.value)


@pytest.mark.parametrize(("files", "expected"), [
    ([], "apache_config_files: field 'apache_config_files' is []; allowed: a non-empty list"),
    ("x.conf.j2", "apache_config_files: field 'apache_config_files' is 'x.conf.j2'; allowed: a non-empty list"),
    (["x.conf.j2"], "apache_config_files[0]: field 'entry' is 'x.conf.j2'; allowed: a mapping"),
    ([{"kind": "conf"}], "apache_config_files[0]: field 'template' is None; allowed: a template file name"),
    ([{"template": " ", "kind": "conf"}], "apache_config_files[0]: field 'template' is ' '"),
    ([{"template": "x.j2", "kind": "sites"}], "apache_config_files[0]: field 'kind' is 'sites'; allowed: conf, ports, site"),
    ([{"template": "x.j2"}], "apache_config_files[0]: field 'kind' is None; allowed: conf, ports, site"),
    ([{"template": "x.j2", "kind": "conf", "dest": "/tmp/x"}],
     "apache_config_files[0]: field 'dest' is '/tmp/x'; allowed: only the fields template, kind and name"),
    ([{"template": "x.j2", "kind": "conf", "name": "../x.conf"}], "apache_config_files[0]: field 'name' is '../x.conf'"),
    ([{"template": "x.j2", "kind": "conf", "name": ""}], "apache_config_files[0]: field 'name' is ''"),
    ([{"template": "..", "kind": "conf"}], "apache_config_files[0]: field 'name' is '..'"),
    ([{"template": "p.j2", "kind": "ports", "name": "p.conf"}],
     "apache_config_files[0]: field 'name' is 'p.conf'; allowed: no name for kind 'ports': its file is /etc/apache2/ports.conf"),
    ([{"template": "a.conf.j2", "kind": "conf"}, {"template": "/b/a.conf.j2", "kind": "conf"}],
     "apache_config_files[1]: field 'name' is 'a.conf'; allowed: each file once in one call"),
])
def test_bad_input_names_the_entry_the_field_and_what_is_allowed(files: Any, expected: str) -> None:
    assert error(files).startswith(expected)


def test_filter_module_exports_the_filters() -> None:
    assert FilterModule().filters() == {"apache_config_targets": apache_config_targets,
                                        "apache_config_entries": apache_config_entries}


def test_one_call_is_one_module_run_files_first_then_their_links() -> None:
    targets = apache_config_targets([{"template": "/t/site.conf.j2", "kind": "site"},
                                     {"template": "/t/ports.conf.j2", "kind": "ports"}], LAYOUT, [])
    entries = apache_config_entries(targets, ["<VirtualHost *:80>\n", "Listen 80\n"])
    files = [{"path": t["dest"], "content": c, "owner": "root", "group": "root", "mode": "0644"}
             for t, c in zip(targets, ["<VirtualHost *:80>\n", "Listen 80\n"])]
    assert entries == [*files, {"path": targets[0]["link"], "state": "link", "src": targets[0]["dest"]}]
    assert "link" not in targets[1]
    with pytest.raises(AnsibleFilterError, match="2 targets but 1 contents"):
        apache_config_entries(targets, ["x"])


def test_removed_paths_come_last_and_must_be_absolute() -> None:
    targets = apache_config_targets([{"template": "/t/ports.conf.j2", "kind": "ports"}], LAYOUT, [])
    entries = apache_config_entries(targets, ["Listen 80\n"], ["/etc/apache2/sites-enabled/000-default.conf"])
    assert entries[-1] == {"path": "/etc/apache2/sites-enabled/000-default.conf", "state": "absent"}
    with pytest.raises(AnsibleFilterError, match="apache_config_remove: 'sites-enabled/x'; allowed: an absolute"):
        apache_config_entries(targets, ["Listen 80\n"], ["sites-enabled/x"])
