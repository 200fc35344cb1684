"""Tests for the wsgi_sites filter plugin: every rule rejects bad input by name, defaults are exact."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import wsgi_sites
from ansible.errors import AnsibleFilterError
from wsgi_sites import (
    FilterModule,
    wsgi_apps,
    wsgi_daemon_directive_options,
    wsgi_health_checks,
    wsgi_host_model,
    wsgi_host_packages,
    wsgi_layout_files,
    wsgi_normalize_sites,
    wsgi_script_files,
    wsgi_sites_without_tls,
    wsgi_tls_front_sites,
)

BASE = "/usr/local/www"
SITE0 = "wsgi_sites[0] (server_name 'www.example.com')"
APP0 = f"{SITE0}, apps[0] (name 'myapp')"


@pytest.fixture()
def paths(tmp_path: Path) -> dict[str, str]:
    """A controller layout: a playbook dir with an app script, and the role's bundled hello app."""
    playbook = tmp_path / "playbook"
    (playbook / "apps").mkdir(parents=True)
    (playbook / "apps" / "myapp.wsgi").write_text("application = None\n")
    hello = tmp_path / "role" / "files" / "hello.wsgi"
    hello.parent.mkdir(parents=True)
    hello.write_text("application = None\n")
    return {"playbook": str(playbook), "hello": str(hello), "myapp": str(playbook / "apps" / "myapp.wsgi")}


@pytest.fixture()
def normalize(paths: dict[str, str]):
    """Call the filter the way the role does, with this test's controller paths."""

    def run(sites: Any, base_dir: str = BASE) -> list[dict[str, Any]]:
        return wsgi_normalize_sites(sites, base_dir, paths["playbook"], paths["hello"])

    return run


@pytest.fixture()
def error(normalize):
    """Return the filter's error message for bad input (and fail if there is none)."""

    def run(sites: Any, base_dir: str = BASE) -> str:
        with pytest.raises(AnsibleFilterError) as info:
            normalize(sites, base_dir)
        return str(info.value.message)

    return run


def site(**fields: Any) -> dict[str, Any]:
    """A minimal valid site, overridden by fields."""
    return {"server_name": "www.example.com", **fields}


def app(**fields: Any) -> dict[str, Any]:
    """A minimal valid daemon app, overridden by fields (None removes a field)."""
    result = {"name": "myapp", "mount": "/myapp", "mode": "daemon", **fields}
    return {key: value for key, value in result.items() if value is not None}


def one_app(**fields: Any) -> list[dict[str, Any]]:
    """wsgi_sites with one site holding one app."""
    return [site(apps=[app(**fields)])]


# The project fields of an app without project: defaults that say "a single script".
NO_PROJECT = {"project": None, "entry": None, "requirements": None, "env": {}, "secrets": [], "database": None, "redis": None, "static": [],
              "build": [], "migrate": [], "processes": {}, "schedule": [], "backup_state": False,
              "release": None}


def assert_names(message: str, *fragments: str) -> None:
    """Every fragment (location, field, value, allowed) must appear in the message."""
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


# --------------------------------------------------------------------------- valid input


def test_minimal_site_gets_every_default(normalize) -> None:
    assert normalize([site()]) == [{
        "server_name": "www.example.com",
        "server_aliases": [],
        "port": 80,
        "tls": None,
        "log_level": "info",
        "document_root": "/usr/local/www/documents",
        "static_aliases": [],
        "apps": [],
        "config_name": "www.example.com-80",
    }]


def test_full_daemon_site_is_normalized_exactly(normalize, paths) -> None:
    sites = [{
        "server_name": "WWW.Example.com",
        "server_aliases": ["example.com", "*.example.org"],
        "port": "8080",
        "log_level": "debug",
        "document_root": "/srv/www/docs/",
        "static_aliases": ["/robots.txt", "/images/"],
        "apps": [{
            "name": "myapp",
            "mount": "/myapp",
            "mode": "daemon",
            "source": "apps/myapp.wsgi",
            "callable": "app",
            "process_group": "example.com",
            "processes": "4",
            "threads": 5,
            "display_name": "wsgi-myapp",
            "daemon_options": {"maximum-requests": 1000, "lang": "en_US.UTF-8"},
            "user": "myapp",
        }],
    }]
    assert normalize(sites) == [{
        "server_name": "WWW.Example.com",
        "server_aliases": ["example.com", "*.example.org"],
        "port": 8080,
        "tls": None,
        "log_level": "debug",
        "document_root": "/srv/www/docs",
        "static_aliases": ["/robots.txt", "/images/"],
        "apps": [{
            "name": "myapp",
            "mount": "/myapp",
            "mode": "daemon",
            "source": paths["myapp"],
            "callable": "app",
            "script": "/usr/local/www/wsgi-scripts/myapp.wsgi",
            **NO_PROJECT,
            "process_group": "example.com",
            "wsgi_processes": 4,
            "threads": 5,
            "display_name": "wsgi-myapp",
            "daemon_options": {"lang": "en_US.UTF-8", "maximum-requests": "1000"},
            "user": "myapp",
        }],
        "config_name": "www.example.com-8080",
    }]


def test_daemon_defaults(normalize, paths) -> None:
    result = normalize(one_app())[0]["apps"][0]
    assert result == {
        "name": "myapp", "mount": "/myapp", "mode": "daemon", "source": paths["hello"],
        "callable": "application", "script": "/usr/local/www/wsgi-scripts/myapp.wsgi", **NO_PROJECT,
        "process_group": "myapp", "wsgi_processes": 2, "threads": 15, "display_name": "%{GROUP}",
        "daemon_options": {}, "user": "wsgi",
    }


def test_embedded_app_has_no_daemon_or_proxy_keys(normalize, paths) -> None:
    result = normalize(one_app(mode="embedded", mount="/"))[0]["apps"][0]
    assert result == {
        "name": "myapp", "mount": "/", "mode": "embedded", "source": paths["hello"],
        "callable": "application", "script": "/usr/local/www/wsgi-scripts/myapp.wsgi", **NO_PROJECT,
    }


def test_proxy_defaults_leave_sizing_to_the_role(normalize, paths) -> None:
    result = normalize(one_app(mode="proxy"))[0]["apps"][0]
    assert result == {
        "name": "myapp", "mount": "/myapp", "mode": "proxy", "source": paths["hello"],
        "callable": "application", "script": "/usr/local/www/wsgi-scripts/myapp.wsgi", **NO_PROJECT,
        "workers": None, "threads": 1, "listen": None, "listen_stream": None, "listen_tcp": False,
    }


@pytest.mark.parametrize("listen", ["127.0.0.1:8000", "localhost:9000", "[::1]:8000", "unix:/run/myapp.sock"])
def test_proxy_listen_forms(normalize, listen: str) -> None:
    result = normalize(one_app(mode="proxy", listen=listen, workers="3", threads=4))[0]["apps"][0]
    assert (result["listen"], result["workers"], result["threads"]) == (listen, 3, 4)


def test_absolute_source_and_trailing_slash_base_dir(normalize, paths) -> None:
    result = normalize(one_app(source=paths["myapp"]), base_dir="/srv/www/")[0]
    assert result["apps"][0]["source"] == paths["myapp"]
    assert result["apps"][0]["script"] == "/srv/www/wsgi-scripts/myapp.wsgi"
    assert result["document_root"] == "/srv/www/documents"


def test_relative_source_resolves_against_source_base(normalize, paths) -> None:
    result = normalize(one_app(source="./apps/../apps/myapp.wsgi"))[0]["apps"][0]
    assert result["source"] == paths["myapp"]


def test_input_is_not_mutated_and_output_is_new(normalize) -> None:
    sites = [site(server_aliases=["example.com"], apps=[app(daemon_options={"umask": "0007"})])]
    before = copy.deepcopy(sites)
    result = normalize(sites)
    assert sites == before
    assert result[0] is not sites[0]
    assert result[0]["apps"][0] is not sites[0]["apps"][0]
    assert result[0]["server_aliases"] is not sites[0]["server_aliases"]
    assert result[0]["apps"][0]["daemon_options"] is not sites[0]["apps"][0]["daemon_options"]


def test_apps_may_share_a_process_group_with_identical_settings(normalize) -> None:
    sites = [site(apps=[app(process_group="shared"), app(name="other", mount="/other", process_group="shared")])]
    assert [a["process_group"] for a in normalize(sites)[0]["apps"]] == ["shared", "shared"]


def test_same_server_name_on_two_ports_and_alias_under_mount_are_fine(normalize) -> None:
    sites = [
        site(static_aliases=["/myapp/static/", "/robots.txt"], apps=[app(mount="/myapp")]),
        site(port=443),
    ]
    assert [s["config_name"] for s in normalize(sites)] == ["www.example.com-80", "www.example.com-443"]


def test_static_alias_on_a_root_mount_is_fine(normalize) -> None:
    assert normalize([site(static_aliases=["/images/"], apps=[app(mount="/")])])[0]["static_aliases"] == ["/images/"]


def test_no_sites(normalize) -> None:
    assert normalize([]) == []
    assert normalize(None) == []


# --------------------------------------------------------------------------- structure errors


def test_sites_must_be_a_list(error) -> None:
    assert_names(error({"server_name": "x"}), "wsgi_sites: field 'wsgi_sites'", "a list of site mappings")


def test_site_must_be_a_mapping(error) -> None:
    assert_names(error(["www.example.com"]), "wsgi_sites[0]", "site is not a mapping", "'www.example.com'")


def test_apps_must_be_a_list_of_mappings(error) -> None:
    assert_names(error([site(apps={"name": "x"})]), SITE0, "field 'apps'", "a list of app mappings")
    assert_names(error([site(apps=["myapp"])]), f"{SITE0}, apps[0]", "app is not a mapping", "'myapp'")


def test_unknown_site_key_lists_known_keys(error) -> None:
    message = error([site(server_alias=["x.com"])])
    assert_names(message, SITE0, "field 'server_alias'", "did you mean 'server_aliases'",
                 "allowed: one of server_name, server_aliases, port")


def test_misspelled_app_key_is_caught(error) -> None:
    message = error(one_app(proceses=4))
    assert_names(message, APP0, "field 'proceses': unknown app key 'proceses' (did you mean 'processes'?)",
                 "one of name, mount, mode")


# --------------------------------------------------------------------------- site field errors


@pytest.mark.parametrize("name", ["-bad.example.com", "bad-.example.com", "under_score.com", "a" * 64 + ".com",
                                  ("a" * 60 + ".") * 5 + "com", "", "two..dots", 42, None])
def test_server_name_must_be_a_hostname(error, name: Any) -> None:
    message = error([{"server_name": name}])
    assert_names(message, "wsgi_sites[0] (server_name", "field 'server_name'", "allowed: a host name")


def test_server_name_is_required(error) -> None:
    assert_names(error([{"port": 80}]), "wsgi_sites[0] (server_name None)", "field 'server_name'",
                 "required, got (missing)")


def test_server_aliases_are_hostnames_or_wildcards(error) -> None:
    assert_names(error([site(server_aliases=["ok.com", "bad alias"])]), SITE0, "field 'server_aliases'",
                 "'bad alias'", "optionally starting with '*.'")
    assert_names(error([site(server_aliases="example.com")]), SITE0, "field 'server_aliases'", "a list")
    assert_names(error([site(server_aliases=["a.*.com"])]), "'a.*.com'")


@pytest.mark.parametrize("port", [0, 65536, -1, True, "80a", 8.0, "", None])
def test_port_is_an_integer_in_range(error, port: Any) -> None:
    assert_names(error([site(port=port)]), SITE0, "field 'port'", "an integer from 1 to 65535")


def test_same_server_name_and_port_twice(error) -> None:
    message = error([site(), site(server_name="WWW.EXAMPLE.COM")])
    assert_names(message, "wsgi_sites[1] (server_name 'WWW.EXAMPLE.COM'): field 'server_name'",
                 f"same server_name and port 80 as {SITE0}")


def test_server_name_that_is_another_sites_alias(error) -> None:
    message = error([site(server_aliases=["example.com"]), site(server_name="example.com")])
    assert_names(message, "wsgi_sites[1] (server_name 'example.com'): field 'server_name'",
                 f"is a server_alias of {SITE0} on port 80")


def test_alias_in_two_sites_on_one_port(error) -> None:
    message = error([site(server_aliases=["example.com"]), site(server_name="b.example.com",
                                                                server_aliases=["EXAMPLE.com"])])
    assert_names(message, "wsgi_sites[1] (server_name 'b.example.com'): field 'server_aliases'", "'EXAMPLE.com'",
                 f"also a server_alias of {SITE0} on port 80")


def test_log_level_must_be_known(error) -> None:
    assert_names(error([site(log_level="verbose")]), SITE0, "field 'log_level'", "'verbose'",
                 "one of emerg, alert, crit, error, warn, notice, info, debug, trace1")


@pytest.mark.parametrize("root", ["documents", "/srv/../etc", "/usr/local/www/wsgi-scripts",
                                  "/usr/local/www/wsgi-scripts/static", "/usr/local/www", "/", 7])
def test_document_root_is_absolute_and_apart_from_the_scripts(error, root: Any) -> None:
    assert_names(error([site(document_root=root)]), SITE0, "field 'document_root'",
                 "neither is, lies under nor contains /usr/local/www/wsgi-scripts")


@pytest.mark.parametrize("alias", ["robots.txt", "/a/../b", "/a b", "/a\"b", "/it's", "/", "/a//b", 3])
def test_static_alias_shape(error, alias: Any) -> None:
    assert_names(error([site(static_aliases=[alias])]), SITE0, "field 'static_aliases'",
                 "starting with '/'")


def test_static_aliases_must_be_unique(error) -> None:
    assert_names(error([site(static_aliases=["/img/", "/img/"])]), SITE0, "field 'static_aliases'",
                 "duplicate '/img/'")


@pytest.mark.parametrize("alias", ["/myapp", "/myapp/"])
def test_static_alias_on_an_app_mount(error, alias: str) -> None:
    message = error([site(static_aliases=[alias], apps=[app()])])
    assert_names(message, SITE0, "field 'static_aliases'", f"'{alias}'", "hides app 'myapp'",
                 "a URL path other than an app mount")


def test_base_dir_must_be_absolute(error) -> None:
    assert_names(error([], base_dir="www"), "wsgi_sites: field 'wsgi_base_dir'", "'www'", "an absolute path")


# --------------------------------------------------------------------------- app field errors


@pytest.mark.parametrize("name", ["MyApp", "my app", "a" * 65, "", "my.app", 5])
def test_app_name_shape(error, name: Any) -> None:
    assert_names(error(one_app(name=name)), "apps[0] (name", "field 'name'", "1-64 characters of a-z, 0-9")


def test_app_name_is_required(error) -> None:
    assert_names(error([site(apps=[{"mount": "/", "mode": "embedded"}])]),
                 f"{SITE0}, apps[0] (name None): field 'name': required")


def test_app_names_are_unique_across_sites(error) -> None:
    message = error([site(apps=[app()]), site(server_name="other.example.com", apps=[app(mount="/")])])
    assert_names(message, "wsgi_sites[1] (server_name 'other.example.com'), apps[0] (name 'myapp'): field 'name'",
                 f"also used by {APP0}")


@pytest.mark.parametrize("mount", ["myapp", "/myapp/", "//", "/a//b", "/.", "/..", "/a/../b", "/a b", "", None])
def test_mount_shape(error, mount: Any) -> None:
    message = error(one_app(mount=mount) if mount is not None else [site(apps=[{"name": "myapp", "mode": "embedded"}])])
    assert_names(message, APP0, "field 'mount'", "without a trailing '/'")


def test_positions_in_messages_count_the_input_entries(error) -> None:
    """Identical apps and dropped (non-mapping) entries must not shift the reported index."""
    message = error([site(apps=["junk", app(), app()])])
    assert_names(message, f"{SITE0}, apps[0] (name None): field 'apps'",
                 f"{SITE0}, apps[2] (name 'myapp'): field 'mount': same mount as app 'myapp'")


def test_two_apps_on_one_mount(error) -> None:
    message = error([site(apps=[app(), app(name="other")])])
    assert_names(message, f"{SITE0}, apps[1] (name 'other'): field 'mount'", "same mount as app 'myapp'",
                 "'/myapp'")


@pytest.mark.parametrize("mode", ["wsgi", "Daemon", None, 1])
def test_mode_is_required_and_known(error, mode: Any) -> None:
    message = error(one_app(mode=mode) if mode is not None else [site(apps=[{"name": "myapp", "mount": "/"}])])
    assert_names(message, APP0, "field 'mode'", "one of embedded, daemon, proxy")


def test_source_must_exist_on_the_controller(error, paths) -> None:
    missing = os.path.join(paths["playbook"], "apps", "nope.wsgi")
    assert_names(error(one_app(source="apps/nope.wsgi")), APP0, "field 'source'", f"file {missing!r} not found",
                 "'apps/nope.wsgi'", "an existing file on the controller")
    assert_names(error(one_app(source=["x"])), APP0, "field 'source'", "a path to a file")


def test_default_source_must_exist_too(normalize, paths) -> None:
    with pytest.raises(AnsibleFilterError, match="field 'source': no source given and the default script is missing: '.*hello.wsgi.missing'"):
        wsgi_normalize_sites(one_app(), BASE, paths["playbook"], paths["hello"] + ".missing")


@pytest.mark.parametrize("value", ["1app", "my-app", "class", "", 3])
def test_callable_is_an_identifier(error, value: Any) -> None:
    assert_names(error(one_app(callable=value)), APP0, "field 'callable'", "a Python identifier")


def test_process_group_shape(error) -> None:
    assert_names(error(one_app(process_group="my group")), APP0, "field 'process_group'", "'my group'",
                 "letters, digits, '.', '_' and '-'")


def test_shared_process_group_needs_identical_settings(error) -> None:
    sites = [site(apps=[app(process_group="g"), app(name="other", mount="/o", process_group="g", threads=3)])]
    assert_names(error(sites), f"{SITE0}, apps[1] (name 'other'): field 'process_group'",
                 "shared with app 'myapp' but settings differ", "identical processes, threads")


def test_process_group_in_two_sites(error) -> None:
    sites = [site(apps=[app(process_group="g")]),
             site(server_name="b.example.com", apps=[app(name="b", process_group="g")])]
    assert_names(error(sites), "wsgi_sites[1] (server_name 'b.example.com'), apps[0] (name 'b'): "
                 "field 'process_group'", f"also used in {APP0}")


@pytest.mark.parametrize(("field", "value", "allowed"), [
    ("wsgi_processes", 0, "from 1 to 256"), ("wsgi_processes", -1, "from 1 to 256"),
    ("wsgi_processes", True, "from 1 to 256"), ("wsgi_processes", 257, "from 1 to 256"),
    ("wsgi_processes", "two", "from 1 to 256"), ("wsgi_processes", 2.5, "from 1 to 256"),
    ("processes", 0, "from 1 to 256"), ("processes", -1, "from 1 to 256"), ("processes", 257, "from 1 to 256"),
    ("threads", 0, "from 1 to 1000"), ("threads", 1001, "from 1 to 1000"), ("threads", False, "from 1 to 1000"),
])
def test_daemon_sizing(error, field: str, value: Any, allowed: str) -> None:
    assert_names(error(one_app(**{field: value})), APP0, f"field '{field}'", "an integer " + allowed)


def test_an_integer_processes_is_the_older_spelling_of_wsgi_processes(normalize) -> None:
    app = normalize(one_app(processes="3"))[0]["apps"][0]
    assert (app["processes"], app["wsgi_processes"]) == ({}, 3)


@pytest.mark.parametrize(("fields", "message"), [
    ({"processes": 3, "wsgi_processes": 3}, ("field 'wsgi_processes': also given as processes: 3; allowed: "
                                            "wsgi_processes or an integer processes, not both")),
    ({"processes": "two"}, "field 'processes'"),
    ({"mode": "embedded", "mount": "/", "processes": 2}, "an integer only in daemon mode"),
    ({"processes": {"worker": {"command": "celery worker"}}}, ("field 'processes': field does not apply without "
                                                              "project")),
])
def test_processes_that_are_neither_a_count_nor_process_types(error, fields: dict, message: str) -> None:
    assert_names(error(one_app(**fields)), APP0, message)


@pytest.mark.parametrize("value", [0, 257, "x", True])
def test_proxy_workers(error, value: Any) -> None:
    assert_names(error(one_app(mode="proxy", workers=value)), APP0, "field 'workers'", "from 1 to 256")


@pytest.mark.parametrize("value", ["my app", 'a"b', "", "a\nb", "a\tb", 5])
def test_display_name(error, value: Any) -> None:
    assert_names(error(one_app(display_name=value)), APP0, "field 'display_name'", "without whitespace")


@pytest.mark.parametrize("value", ["root", "Web", "1user", "a" * 33, "we b", 1000])
def test_user(error, value: Any) -> None:
    assert_names(error(one_app(user=value)), APP0, "field 'user'", "other than 'root'")


@pytest.mark.parametrize("listen", ["8000", "localhost", "host:0", "host:70000", "[nope]:80", "::1:80",
                                    "unix:run.sock", "unix:/", "unix:/a b", "bad_host:80", 8000])
def test_proxy_listen(error, listen: Any) -> None:
    assert_names(error(one_app(mode="proxy", listen=listen)), APP0, "field 'listen'", "'HOST:PORT'")


@pytest.mark.parametrize(("field", "value", "mode", "owner"), [
    ("wsgi_processes", 2, "embedded", "daemon"), ("threads", 2, "embedded", "daemon or proxy"),
    ("workers", 2, "daemon", "proxy"), ("listen", "127.0.0.1:80", "daemon", "proxy"),
    ("user", "web", "proxy", "daemon"), ("daemon_options", {}, "embedded", "daemon"),
    ("process_group", "g", "proxy", "daemon"),
])
def test_fields_of_another_mode(error, field: str, value: Any, mode: str, owner: str) -> None:
    message = error(one_app(mode=mode, **{field: value}))
    assert_names(message, APP0, f"field '{field}'", f"does not apply to mode '{mode}'", f"only in mode {owner}")


# --------------------------------------------------------------------------- daemon options


def test_daemon_options_must_be_a_mapping(error) -> None:
    assert_names(error(one_app(daemon_options=["maximum-requests=5"])), APP0, "field 'daemon_options'",
                 "a mapping of WSGIDaemonProcess option")


def test_misspelled_daemon_option_suggests_the_documented_one(error) -> None:
    message = error(one_app(daemon_options={"maximum_requests": 100}))
    assert_names(message, APP0, "field 'daemon_options.maximum_requests'",
                 "unknown WSGIDaemonProcess option 'maximum_requests' (did you mean 'maximum-requests'?)",
                 "one of chroot, connect-timeout")


@pytest.mark.parametrize(("option", "field"), [
    ("processes", "wsgi_processes"), ("threads", "threads"), ("display-name", "display_name"), ("user", "user"),
])
def test_daemon_options_with_their_own_field(error, option: str, field: str) -> None:
    assert_names(error(one_app(daemon_options={option: "x"})), APP0, f"field 'daemon_options.{option}'",
                 f"the app field '{field}' instead")


def test_group_option_is_managed_by_the_role(error) -> None:
    assert_names(error(one_app(daemon_options={"group": "www-data"})), APP0, "field 'daemon_options.group'",
                 "managed by the role")


@pytest.mark.parametrize("value", [True, None, [1], {"a": 1}, "two words", "it's", "a\nb", ""])
def test_daemon_option_values_render_on_one_line(error, value: Any) -> None:
    assert_names(error(one_app(daemon_options={"lang": value})), APP0, "field 'daemon_options.lang'",
                 "a string or integer without whitespace")


@pytest.mark.parametrize(("option", "value", "allowed"), [
    ("maximum-requests", "lots", "a non-negative integer"), ("socket-timeout", -5, "a non-negative integer"),
    ("cpu-priority", 21, "from -20 to 20"), ("cpu-priority", "high", "from -20 to 20"),
    ("umask", "999", "an octal umask"), ("server-metrics", "yes", "On or Off"),
    ("home", "relative/dir", "an absolute path"),
])
def test_daemon_option_values_mod_wsgi_checks(error, option: str, value: Any, allowed: str) -> None:
    assert_names(error(one_app(daemon_options={option: value})), APP0, f"field 'daemon_options.{option}'",
                 allowed)


def test_script_user_and_script_group_exclude_each_other(error) -> None:
    message = error(one_app(daemon_options={"script-user": "a", "script-group": "b"}))
    assert_names(message, APP0, "field 'daemon_options'", "only one of script-user and script-group")


def test_valid_daemon_options_are_strings(normalize) -> None:
    options = {"cpu-priority": -5, "umask": "0007", "server-metrics": "On", "python-home": "/srv/venv",
               "supplementary-groups": "a,b", "queue-timeout": 45}
    result = normalize(one_app(daemon_options=options))[0]["apps"][0]["daemon_options"]
    assert result == {key: str(value) for key, value in sorted(options.items())}


def test_daemon_option_list_matches_mod_wsgi() -> None:
    assert len(wsgi_sites.DAEMON_OPTIONS) == len(set(wsgi_sites.DAEMON_OPTIONS)) == 41
    assert "interrupt-timeout" not in wsgi_sites.DAEMON_OPTIONS


# --------------------------------------------------------------------------- collecting


def test_all_errors_are_reported_together(error) -> None:
    sites = [site(port=0, log_level="loud", apps=[app(processes=0, threads=0, mode="daemon", callable="1")]),
             {"server_name": "bad_name", "apps": [app(name="Bad", mode="embedded", mount="/")]}]
    message = error(sites)
    lines = message.splitlines()
    assert lines[0] == "wsgi_sites is invalid (7 problem(s)):"
    assert len(lines) == 8
    for fragment in ("'port'", "'log_level'", "'processes'", "'threads'", "'callable'", "'server_name'", "'name'"):
        assert sum(fragment in line for line in lines) == 1, fragment


# --------------------------------------------------------------------------- other filters


def test_wsgi_apps_flattens_and_filters_by_mode(normalize) -> None:
    sites = normalize([
        site(apps=[app(), app(name="emb", mode="embedded", mount="/")]),
        site(server_name="b.example.com", port=8080, apps=[app(name="px", mode="proxy")]),
    ])
    assert [(a["name"], a["server_name"], a["config_name"]) for a in wsgi_apps(sites)] == [
        ("myapp", "www.example.com", "www.example.com-80"),
        ("emb", "www.example.com", "www.example.com-80"),
        ("px", "b.example.com", "b.example.com-8080"),
    ]
    assert [a["name"] for a in wsgi_apps(sites, "daemon")] == ["myapp"]
    assert wsgi_apps(sites, "embedded")[0]["mode"] == "embedded"
    assert "server_name" not in sites[0]["apps"][0]
    with pytest.raises(AnsibleFilterError, match="mode 'demon' is invalid"):
        wsgi_apps(sites, "demon")


def test_daemon_directive_options(normalize) -> None:
    daemon = normalize(one_app(daemon_options={"umask": "0007", "maximum-requests": 1000}))[0]["apps"][0]
    assert wsgi_daemon_directive_options(daemon) == (
        "processes=2 threads=15 display-name=%{GROUP} user=wsgi group=wsgi maximum-requests=1000 umask=0007")
    assert wsgi_daemon_directive_options(daemon, "www-scripts").endswith("group=www-scripts maximum-requests=1000 "
                                                                         "umask=0007")
    embedded = normalize(one_app(mode="embedded"))[0]["apps"][0]
    with pytest.raises(AnsibleFilterError, match="'myapp' is not a daemon-mode app"):
        wsgi_daemon_directive_options(embedded)


def test_filter_module_exposes_the_filters() -> None:
    assert set(FilterModule().filters()) == {"wsgi_normalize_sites", "wsgi_apps", "wsgi_health_checks",
                                             "wsgi_daemon_directive_options", "wsgi_daemon_groups",
                                             "wsgi_script_aliases", "wsgi_proxy_passes", "wsgi_forwarded_allow_ips",
                                             "wsgi_host_model", "wsgi_secret_values", "wsgi_layout_files",
                                             "wsgi_database_password_values", "wsgi_redis_password_values",
                                             "wsgi_tls_front_sites", "wsgi_script_files", "wsgi_host_packages",
                                             "wsgi_settings_problems"}


# --------------------------------------------------------------------------- through Ansible itself


ANSIBLE = shutil.which("ansible", path=os.path.dirname(sys.executable))


@pytest.mark.skipif(ANSIBLE is None, reason="ansible not installed next to this Python")
def test_runs_inside_ansible_templating(paths, tmp_path: Path) -> None:
    """Ansible 2.19 hands filters tagged str/dict subclasses; the plugin must still work and fail cleanly."""
    env = {**os.environ, "ANSIBLE_FILTER_PLUGINS": str(Path(wsgi_sites.__file__).parent),
           "ANSIBLE_HOME": str(tmp_path), "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_STDOUT_CALLBACK": "json"}
    good = {"wsgi_sites": one_app(source="apps/myapp.wsgi")}
    expr = (f"{{{{ wsgi_sites | wsgi_normalize_sites('/usr/local/www', '{paths['playbook']}', '{paths['hello']}')"
            " | wsgi_apps('daemon') | map('wsgi_daemon_directive_options') | first }}")

    def run(variables: dict[str, Any]) -> subprocess.CompletedProcess:
        return subprocess.run([ANSIBLE, "localhost", "-c", "local", "-i", "localhost,", "-m", "debug",
                               "-a", f"msg={expr}", "-e", json.dumps(variables)],
                              check=False, env=env, capture_output=True, text=True, timeout=60)

    ok = run(good)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "processes=2 threads=15 display-name=%{GROUP} user=wsgi group=wsgi" in ok.stdout
    bad = run({"wsgi_sites": one_app(proceses=3)})
    assert bad.returncode != 0
    assert "field 'proceses'" in bad.stdout + bad.stderr


# --------------------------------------------------------------------------- reserved for the health check


HEALTH_PATH = "/healthz"
HEALTH_GROUP = "wsgi-health"


@pytest.fixture()
def reserved(paths: dict[str, str]):
    """Call the filter the way the role does when the health check is on."""

    def run(sites: Any, reserved_paths: Any = (HEALTH_PATH,), reserved_groups: Any = (HEALTH_GROUP,)) -> Any:
        return wsgi_normalize_sites(sites, BASE, paths["playbook"], paths["hello"], reserved_paths, reserved_groups)

    return run


@pytest.fixture()
def reserved_error(reserved):
    """Return the error message for input that takes what the health check uses."""

    def run(sites: Any, **kwargs: Any) -> str:
        with pytest.raises(AnsibleFilterError) as info:
            reserved(sites, **kwargs)
        return str(info.value.message)

    return run


@pytest.mark.parametrize("mount", ["/healthz", "/healthz/x", "/healthz/x/y"])
def test_app_on_the_health_path(reserved_error, mount: str) -> None:
    message = reserved_error(one_app(mount=mount))
    assert message.splitlines() == [
        "wsgi_sites is invalid (1 problem(s)):",
        (f"{APP0}: field 'mount': is the health check's path (wsgi_health_path): '{mount}'; "
         "allowed: a URL path outside /healthz"),
    ]


@pytest.mark.parametrize("mode", ["embedded", "proxy"])
def test_app_of_any_mode_on_the_health_path(reserved_error, mode: str) -> None:
    assert_names(reserved_error(one_app(mount="/healthz", mode=mode)), APP0, "field 'mount'", "'/healthz'",
                 "a URL path outside /healthz")


@pytest.mark.parametrize("mount", ["/healthzz", "/health", "/", "/myapp/healthz", "/healthz.json", "/x"])
def test_mounts_beside_the_health_path_are_fine(reserved, mount: str) -> None:
    assert reserved(one_app(mount=mount))[0]["apps"][0]["mount"] == mount


def test_health_path_is_free_without_a_health_check(reserved, normalize) -> None:
    sites = one_app(mount="/healthz", process_group="wsgi-health", name="wsgi-health")
    assert normalize(sites)[0]["apps"][0]["mount"] == "/healthz"
    assert reserved(sites, reserved_paths=[""], reserved_groups=[])[0]["apps"][0]["mount"] == "/healthz"
    assert reserved(sites, reserved_paths=None, reserved_groups=None)[0]["apps"][0]["mount"] == "/healthz"


def test_reserved_path_in_a_later_site_and_app_is_located(reserved_error) -> None:
    sites = [site(apps=[app()]),
             site(server_name="b.example.com", port=8080, apps=[app(name="b", mount="/b"),
                                                               app(name="c", mount="/healthz/c")])]
    assert_names(reserved_error(sites),
                 "wsgi_sites[1] (server_name 'b.example.com'), apps[1] (name 'c'): field 'mount': "
                 "is the health check's path (wsgi_health_path): '/healthz/c'")


def test_every_reserved_path_is_checked(reserved_error) -> None:
    sites = [site(apps=[app(mount="/status"), app(name="other", mount="/healthz")])]
    message = reserved_error(sites, reserved_paths=["/healthz", "/status"])
    assert message.splitlines()[0] == "wsgi_sites is invalid (2 problem(s)):"
    assert_names(message, f"{APP0}: field 'mount': is the health check's path (wsgi_health_path): '/status'; "
                 "allowed: a URL path outside /status",
                 f"{SITE0}, apps[1] (name 'other'): field 'mount'", "'/healthz'; allowed: a URL path outside /healthz")


@pytest.mark.parametrize("alias", ["/healthz", "/healthz/"])
def test_static_alias_on_the_health_path(reserved_error, alias: str) -> None:
    message = reserved_error([site(static_aliases=["/images/", alias])])
    assert message.splitlines() == [
        "wsgi_sites is invalid (1 problem(s)):",
        (f"{SITE0}: field 'static_aliases': hides the health check (wsgi_health_path): '{alias}'; "
         "allowed: a URL path other than the health check's"),
    ]


@pytest.mark.parametrize("alias", ["/healthzz", "/health/", "/static/healthz"])
def test_static_aliases_beside_the_health_path_are_fine(reserved, alias: str) -> None:
    assert reserved([site(static_aliases=[alias])])[0]["static_aliases"] == [alias]


def test_daemon_app_in_the_health_checks_process_group(reserved_error) -> None:
    message = reserved_error(one_app(process_group="wsgi-health"))
    assert message.splitlines() == [
        "wsgi_sites is invalid (1 problem(s)):",
        (f"{APP0}: field 'process_group': is used by the health check: 'wsgi-health'; "
         "allowed: a name other than wsgi-health"),
    ]


def test_daemon_app_named_like_the_health_group_gets_it_by_default(reserved_error) -> None:
    message = reserved_error(one_app(name="wsgi-health"))
    assert_names(message, f"{SITE0}, apps[0] (name 'wsgi-health'): field 'process_group'",
                 "is used by the health check: 'wsgi-health'")


def test_apps_without_a_process_group_may_use_the_health_groups_name(reserved) -> None:
    sites = [site(apps=[app(name="wsgi-health", mode="embedded", mount="/"),
                        app(name="px", mode="proxy", mount="/px"),
                        app(name="d", process_group="wsgi-health2")])]
    assert [a["name"] for a in reserved(sites)[0]["apps"]] == ["wsgi-health", "px", "d"]


def test_reserved_problems_are_reported_with_the_others(reserved_error) -> None:
    sites = [site(port=0, static_aliases=["/healthz/"],
                  apps=[app(mount="/healthz/x", process_group="wsgi-health")])]
    lines = reserved_error(sites).splitlines()
    assert lines[0] == "wsgi_sites is invalid (4 problem(s)):"
    for fragment in ("field 'port'", "field 'mount'", "field 'process_group'", "field 'static_aliases'"):
        assert sum(fragment in line for line in lines) == 1, fragment


# --------------------------------------------------------------------------- health checks


def test_health_checks_list_every_app_at_its_mount(reserved) -> None:
    sites = reserved([
        site(apps=[app(), app(name="emb", mode="embedded", mount="/")]),
        site(server_name="b.example.com", port="8080", apps=[app(name="px", mode="proxy", mount="/api/v1")]),
        site(server_name="empty.example.com", port=8081),
        site(server_name="www.example.com", port=443, apps=[app(name="on443", mount="/tls")]),
        site(server_name="secure.example.com", tls={"certificate": "self_signed", "port": 8443},
             apps=[app(name="secure", mount="/")]),
    ])
    assert wsgi_health_checks(sites, 5) == [
        {"app": "myapp", "server_name": "www.example.com", "port": 80, "tls": False, "path": "/myapp", "timeout": 5.0},
        {"app": "emb", "server_name": "www.example.com", "port": 80, "tls": False, "path": "/", "timeout": 5.0},
        {"app": "px", "server_name": "b.example.com", "port": 8080, "tls": False, "path": "/api/v1", "timeout": 5.0},
        {"app": "on443", "server_name": "www.example.com", "port": 443, "tls": False, "path": "/tls", "timeout": 5.0},
        # A site with HTTPS is asked there, the way its clients come (its plain port may only redirect).
        {"app": "secure", "server_name": "secure.example.com", "port": 8443, "tls": True, "path": "/",
         "timeout": 5.0},
    ]


@pytest.mark.parametrize(("timeout", "expected"), [(None, 3.0), (2, 2.0), ("7", 7.0), ("0.5", 0.5), (1.25, 1.25)])
def test_health_check_timeout_is_a_float(normalize, timeout: Any, expected: float) -> None:
    sites = normalize(one_app())
    checks = wsgi_health_checks(sites) if timeout is None else wsgi_health_checks(sites, timeout)
    assert [check["timeout"] for check in checks] == [expected]
    assert type(checks[0]["timeout"]) is float


def test_an_acme_sites_check_names_its_live_file_and_plain_port(normalize) -> None:
    sites = normalize([site(tls={"certificate": "acme"}, apps=[app(name="shop", mount="/")])])
    assert wsgi_health_checks(sites, 3, "/var/lib/wsgi-hosting/acme-live") == [
        {"app": "shop", "server_name": "www.example.com", "port": 443, "tls": True, "path": "/", "timeout": 3.0,
         "plain_port": 80, "live_file": "/var/lib/wsgi-hosting/acme-live/www.example.com"}]


def test_no_health_checks_without_apps(normalize) -> None:
    assert wsgi_health_checks(normalize([site()])) == []
    assert wsgi_health_checks([]) == []
    assert wsgi_health_checks(None) == []


# --------------------------------------------------------------------------- the table of fields


def test_known_keys_come_from_the_table() -> None:
    assert wsgi_sites.SITE_KEYS == ("server_name", "server_aliases", "port", "tls", "log_level", "document_root",
                                    "static_aliases", "apps")
    assert wsgi_sites.APP_KEYS == ("name", "mount", "mode", "project", "source", "callable", "entry", "requirements",
                                   "env", "secrets", "database", "redis", "static", "build", "migrate", "processes",
                                   "schedule", "backup_state", "process_group", "wsgi_processes", "threads", "display_name", "daemon_options",
                                   "user", "workers", "listen")
    assert wsgi_sites.MODE_KEYS == {
        "embedded": (),
        "daemon": ("process_group", "wsgi_processes", "threads", "display_name", "daemon_options", "user"),
        "proxy": ("workers", "threads", "listen"),
    }


def test_every_field_has_a_doc_type_and_a_default_or_says_why_not() -> None:
    for field in wsgi_sites.FIELDS:
        assert field.doc.endswith(".") and field.type in ("str", "raw", "list", "dict", "bool"), field
        has_default = field.default is not wsgi_sites.MISSING
        assert field.required + has_default + bool(field.default_doc) >= 1, field
        assert not (field.required and has_default), field


def test_threads_default_depends_on_the_mode(normalize) -> None:
    daemon, proxy = (normalize(one_app(mode=mode))[0]["apps"][0]["threads"] for mode in ("daemon", "proxy"))
    assert (daemon, proxy) == (15, 1)


@pytest.mark.parametrize(("listen", "stream", "tcp"), [
    (None, None, False),
    ("127.0.0.1:8000", "127.0.0.1:8000", True),
    ("[::1]:8000", "[::1]:8000", True),
    ("localhost:9000", "localhost:9000", True),
    ("unix:/run/myapp.sock", "/run/myapp.sock", False),
])
def test_listen_is_normalized_for_systemd_and_headrace(normalize, listen: Any, stream: Any, tcp: bool) -> None:
    result = normalize(one_app(mode="proxy", listen=listen))[0]["apps"][0]
    assert (result["listen"], result["listen_stream"], result["listen_tcp"]) == (listen, stream, tcp)


def test_invalid_listen_has_no_derived_address(error) -> None:
    assert_names(error(one_app(mode="proxy", listen="unix:relative")), APP0, "field 'listen'", "'unix:relative'")


# --------------------------------------------------------------------------- ready-to-render filters


SOCKETS = "/run/headrace"
OPTIONS = {"connectiontimeout": 2, "retry": 0}


def test_proxy_passes_exclude_what_apache_serves_deepest_first(normalize) -> None:
    [normalized] = normalize([site(static_aliases=["/api/static/", "/robots.txt"], apps=[
        app(name="root", mode="proxy", mount="/"),
        app(name="api", mode="proxy", mount="/api", listen="127.0.0.1:9001"),
        app(name="legacy", mount="/api/legacy"),
        app(name="emb", mode="embedded", mount="/emb"),
        app(name="sock", mode="proxy", mount="/sock", listen="unix:/run/own/sock.sock"),
    ])])
    pairs = ["connectiontimeout=2", "retry=0"]
    assert wsgi_sites.wsgi_proxy_passes(normalized, SOCKETS, "/healthz", OPTIONS) == [
        {"path": "/sock", "backend": "unix:/run/own/sock.sock|http://sock/sock", "reverse": "http://sock/sock",
         "options": pairs},
        {"path": "/robots.txt", "backend": None, "reverse": None, "options": []},
        {"path": "/healthz", "backend": None, "reverse": None, "options": []},
        {"path": "/emb", "backend": None, "reverse": None, "options": []},
        {"path": "/api/static/", "backend": None, "reverse": None, "options": []},
        {"path": "/api/legacy", "backend": None, "reverse": None, "options": []},
        {"path": "/api", "backend": "http://127.0.0.1:9001/api", "reverse": "http://127.0.0.1:9001/api",
         "options": pairs},
        {"path": "/", "backend": "unix:/run/headrace/root.sock|http://root/", "reverse": "http://root/",
         "options": pairs},
    ]


def test_proxy_passes_without_proxied_apps_health_path_or_options(normalize) -> None:
    [daemon_only] = normalize(one_app())
    assert wsgi_sites.wsgi_proxy_passes(daemon_only, SOCKETS, "/healthz", OPTIONS) == []
    [proxied] = normalize(one_app(mode="proxy", listen="[::1]:8000"))
    assert wsgi_sites.wsgi_proxy_passes(proxied, "/run/x", "", None) == [
        {"path": "/myapp", "backend": "http://[::1]:8000/myapp", "reverse": "http://[::1]:8000/myapp", "options": []},
    ]


def test_proxy_passes_keep_paths_that_differ_only_in_case(normalize) -> None:
    """Apache matches URL paths case-sensitively: '/API' must not swallow the proxied '/api'."""
    [normalized] = normalize([site(static_aliases=["/API"], apps=[app(mode="proxy", mount="/api")])])
    passes = wsgi_sites.wsgi_proxy_passes(normalized, SOCKETS)
    assert [(p["path"], p["backend"] is None) for p in passes] == [("/API", True), ("/api", False)]


def test_daemon_groups_one_per_name_with_the_first_app(normalize) -> None:
    [normalized] = normalize([site(apps=[
        app(name="b1", mount="/b1", process_group="b"), app(name="a", mount="/a"),
        app(name="b2", mount="/b2", process_group="b"), app(name="p", mode="proxy", mount="/p"),
        app(name="big", mount="/big", process_group="B"),
    ])])
    groups = wsgi_sites.wsgi_daemon_groups(normalized)
    assert [(g["name"], g["app"]["name"]) for g in groups] == [("a", "a"), ("B", "big"), ("b", "b1")]


def test_daemon_directive_options_home_unless_the_app_sets_it(normalize) -> None:
    plain, own = (normalize(one_app(**fields))[0]["apps"][0]
                  for fields in ({}, {"daemon_options": {"home": "/srv/app"}}))
    assert wsgi_daemon_directive_options(plain, "wsgi", "/x/wsgi-scripts").endswith(" group=wsgi home=/x/wsgi-scripts")
    assert wsgi_daemon_directive_options(own, "wsgi", "/x/wsgi-scripts").endswith(" group=wsgi home=/srv/app")


def test_script_aliases_are_the_mod_wsgi_apps_deepest_first(normalize) -> None:
    [normalized] = normalize([site(apps=[
        app(name="root", mount="/", mode="embedded"), app(name="a", mount="/a"),
        app(name="ab", mount="/a/b", mode="embedded"), app(name="p", mount="/p", mode="proxy"),
    ])])
    assert wsgi_sites.wsgi_script_aliases(normalized) == [
        {"mount": "/a/b", "script": "/usr/local/www/wsgi-scripts/ab.wsgi"},
        {"mount": "/a", "script": "/usr/local/www/wsgi-scripts/a.wsgi"},
        {"mount": "/", "script": "/usr/local/www/wsgi-scripts/root.wsgi"},
    ]


@pytest.mark.parametrize(("listen", "trusted", "expected"), [
    (None, ["10.0.0.5"], "unix"),
    ("unix:/run/x.sock", ["10.0.0.5"], "unix"),
    ("127.0.0.1:9001", [], "127.0.0.1,::1"),
    ("127.0.0.1:9001", None, "127.0.0.1,::1"),
    ("[::1]:9001", ["10.0.0.5", "10.0.0.6"], "127.0.0.1,::1,10.0.0.5,10.0.0.6"),
])
def test_forwarded_allow_ips(normalize, listen: Any, trusted: Any, expected: str) -> None:
    proxied = normalize(one_app(mode="proxy", listen=listen))[0]["apps"][0]
    assert wsgi_sites.wsgi_forwarded_allow_ips(proxied, trusted) == expected


# --------------------------------------------------------------------------- tls


def test_tls_gets_its_defaults_and_the_hosts_paths(normalize) -> None:
    [normalized] = normalize([site(tls={"certificate": "self_signed"})])
    assert normalized["tls"] == {
        "certificate": "self_signed", "cert_file": None, "key_file": None, "chain_file": None,
        "port": 443, "redirect": True, "hsts": 63072000,
        "certificate_path": "/etc/wsgi-hosting/tls/www.example.com-443.crt",
        "key_path": "/etc/wsgi-hosting/tls/www.example.com-443.key",
    }


def test_tls_files_are_controller_paths_from_the_source_directory(normalize, paths) -> None:
    playbook = Path(paths["playbook"])
    for name in ("www.pem", "www.key"):
        (playbook / "certs").mkdir(exist_ok=True)
        (playbook / "certs" / name).write_text("not checked here: wsgi_tls_files reads them\n")
    [normalized] = normalize([site(tls={"certificate": "files", "cert_file": "certs/www.pem",
                                        "key_file": str(playbook / "certs" / "www.key"), "port": "8443",
                                        "redirect": False, "hsts": 0})])
    assert normalized["tls"] | {"certificate_path": "", "key_path": ""} == {
        "certificate": "files", "cert_file": str(playbook / "certs" / "www.pem"),
        "key_file": str(playbook / "certs" / "www.key"), "chain_file": None, "port": 8443, "redirect": False,
        "hsts": 0, "certificate_path": "", "key_path": ""}


@pytest.mark.parametrize(("tls", "fragments"), [
    ("yes", ["field 'tls': invalid value 'yes'"]),
    ({}, ["field 'tls.certificate': required, got (missing); allowed: one of acme, files, self_signed"]),
    ({"certificate": "letsencrypt"}, ["field 'tls.certificate': invalid value 'letsencrypt'"]),
    ({"certificate": "acme", "key_file": "x.key"},
     ["field 'tls.key_file': given with certificate acme: 'x.key'; allowed: only with certificate: files"]),
    ({"certificate": "self_signed", "hst": 0}, ["field 'tls.hst': unknown tls key 'hst' (did you mean 'hsts'?)"]),
    ({"certificate": "self_signed", "cert_file": "x.pem"},
     ["field 'tls.cert_file': given with certificate self_signed: 'x.pem'; allowed: only with certificate: files"]),
    ({"certificate": "files"}, ["field 'tls.cert_file': required with certificate files, got (missing)",
                                "field 'tls.key_file': required with certificate files, got (missing)"]),
    ({"certificate": "self_signed", "port": 0}, ["field 'tls.port': invalid value 0; allowed: an integer from 1"]),
    ({"certificate": "self_signed", "redirect": "no"}, ["field 'tls.redirect': invalid value 'no'; allowed: true"]),
    ({"certificate": "self_signed", "hsts": -1}, ["field 'tls.hsts': invalid value -1"]),
    ({"certificate": "self_signed", "port": 80}, ["field 'tls.port': is the plain port of this site: 80"]),
])
def test_bad_tls_is_named_by_site_and_field(error, tls, fragments) -> None:
    message = error([site(tls=tls)])
    assert_names(message, "wsgi_sites[0] (server_name 'www.example.com')", *fragments)
    assert f"({len(fragments)} problem(s))" in message


def test_a_tls_port_cannot_be_another_sites_plain_port(error) -> None:
    message = error([site(server_name="plain.example.com", port=8443),
                     site(tls={"certificate": "self_signed", "port": 8443})])
    assert_names(message, "wsgi_sites[1] (server_name 'www.example.com'): field 'tls.port': is the plain port of "
                          "wsgi_sites[0] (server_name 'plain.example.com'): 8443")


def test_two_https_sites_share_a_port_by_name(normalize) -> None:
    sites = normalize([site(tls={"certificate": "self_signed"}),
                       site(server_name="shop.example.com", tls={"certificate": "self_signed"})])
    assert [s["tls"]["port"] for s in sites] == [443, 443]


def test_a_name_has_one_https_site_per_port(error) -> None:
    message = error([site(tls={"certificate": "self_signed"}),
                     site(port=8080, tls={"certificate": "self_signed"})])
    assert_names(message, "wsgi_sites[1] (server_name 'www.example.com'): field 'tls.port': same server_name and "
                          "HTTPS port as wsgi_sites[0] (server_name 'www.example.com'): 443")


# --------------------------------------------------------------------------- TLS at the balancers


def test_behind_balancers_every_site_is_served_plain(normalize) -> None:
    sites = normalize([site(tls={"certificate": "acme"}), site(server_name="plain.example.com")])
    plain = wsgi_sites_without_tls(sites)
    assert [s["tls"] for s in plain] == [None, None]
    assert [{k: v for k, v in s.items() if k != "tls"} for s in plain] == [
        {k: v for k, v in s.items() if k != "tls"} for s in sites]
    assert sites[0]["tls"]["certificate"] == "acme"  # the input is left as it was


def host_model(paths: dict[str, str], sites: Any, behind_balancers: bool = True) -> dict[str, Any]:
    """A web server's model as its validation builds it (behind balancers unless told otherwise)."""
    return wsgi_host_model(sites, BASE, paths["playbook"], paths["hello"], (), (), behind_balancers)


def test_the_model_is_built_once_with_every_site_served_where_tls_ends(paths) -> None:
    sites = [site(tls={"certificate": "acme"}), site(server_name="plain.example.com", apps=[app()])]
    alone = host_model(paths, sites, behind_balancers=False)
    assert alone["problems"] == "" and alone["behind_balancers"] is False
    assert alone["sites"] == [{**s, "apps": [{**a, "processes_elsewhere": {}} for a in s["apps"]]}
                              for s in wsgi_normalize_sites(sites, BASE, paths["playbook"], paths["hello"])]
    assert (alone["web_server"], alone["process_apps"]) == (True, [])
    assert [s["server_name"] for s in alone["tls_sites"]] == ["www.example.com"]
    assert alone["front_sites"] == []
    behind = host_model(paths, sites)
    assert behind["sites"] == wsgi_sites_without_tls(alone["sites"]) and behind["tls_sites"] == []
    assert behind["front_sites"] == [{"index": 0, "server_name": "www.example.com", "server_aliases": [],
                                      "config_name": "www.example.com-80", "tls": alone["sites"][0]["tls"]}]
    bad = host_model(paths, [site(tls={"certificate": "nope"})])
    assert "field 'tls.certificate'" in bad["problems"]
    assert (bad["sites"], bad["tls_sites"], bad["front_sites"]) == ([], [], [])


def test_a_balancer_serves_each_https_site_of_its_members_once(paths) -> None:
    acme = site(server_aliases=["shop.example.com"], tls={"certificate": "acme"})
    web1 = [acme, site(server_name="plain.example.com")]
    web2 = [acme, site(server_name="board.example.com", tls={"certificate": "self_signed", "redirect": False})]
    models = [host_model(paths, web1), host_model(paths, web2), host_model(paths, [])]
    front = wsgi_tls_front_sites(models, ["web1", "web2", "web3"])
    assert [(f["server_name"], f["server_aliases"], f["tls"]["certificate"], f["members"]) for f in front] == [
        ("www.example.com", ["shop.example.com"], "acme", ["web1", "web2"]),
        ("board.example.com", [], "self_signed", ["web2"]),
    ]
    assert front[1]["tls"]["redirect"] is False and front[1]["config_name"] == "board.example.com-80"


def test_members_that_disagree_on_a_site_are_named(paths) -> None:
    web1 = host_model(paths, [site(tls={"certificate": "acme"})])
    web2 = host_model(paths, [site(server_aliases=["shop.example.com"], tls={"certificate": "acme"})])
    with pytest.raises(AnsibleFilterError, match="wsgi_sites of web2: site 'www.example.com' has other "
                                                 "server_aliases or tls than on web1"):
        wsgi_tls_front_sites([web1, web2], ["web1", "web2"])
    with pytest.raises(AnsibleFilterError, match="balancer member web1 has no wsgi_model: a member must be a web "
                                                 "server"):
        wsgi_tls_front_sites([None], ["web1"])


# --------------------------------------------------------------------------- the layout, in one module run


# --------------------------------------------------------------------------- the packages, in one transaction


def host(*apps: dict, certificate: str | None = None) -> dict:
    """A host model with one site of these apps, its TLS ending here with this certificate (or none)."""
    site = {"server_name": "www.example.com", "apps": list(apps),
            "tls": {"certificate": certificate} if certificate else None}
    return {"sites": [site], "tls_sites": [site] if certificate else []}


BASE_PACKAGES = ["apache2", "libapache2-mod-wsgi-py3"]


@pytest.mark.parametrize(("model", "expected"), [
    (host({"name": "a", "mode": "daemon", "project": None}), BASE_PACKAGES),
    (host({"name": "a", "mode": "embedded", "project": None}, certificate="files"), BASE_PACKAGES),
    (host({"name": "a", "mode": "daemon", "project": None}, certificate="acme"), BASE_PACKAGES),
    (host({"name": "a", "mode": "daemon", "project": None}, certificate="self_signed"),
     [*BASE_PACKAGES, "python3-cryptography"]),
    (host({"name": "a", "mode": "proxy", "project": None}), [*BASE_PACKAGES, "python3-venv"]),
    (host({"name": "a", "mode": "daemon", "project": "/srv/shop"}), [*BASE_PACKAGES, "python3-venv"]),
    ({"sites": [], "tls_sites": []}, BASE_PACKAGES),
])
def test_a_host_gets_the_packages_its_roles_would_ask_for(model, expected) -> None:
    assert wsgi_host_packages(model, BASE_PACKAGES, ["python3-cryptography"], ["python3-venv"]) == expected


def test_a_host_with_a_scheduled_job_gets_what_jobs_need() -> None:
    model = host({"name": "a", "mode": "daemon", "project": "/p", "schedule": [{"name": "clean"}]})
    assert wsgi_host_packages(model, BASE_PACKAGES, [], ["python3-venv"], ["postgresql-client"]) == [
        *BASE_PACKAGES, "python3-venv", "postgresql-client"]
    without = host({"name": "a", "mode": "daemon", "project": "/p", "schedule": []})
    assert "postgresql-client" not in wsgi_host_packages(without, BASE_PACKAGES, [], [], ["postgresql-client"])


def test_each_package_once_in_the_order_given() -> None:
    model = host({"name": "a", "mode": "proxy", "project": "/p"}, certificate="self_signed")
    assert wsgi_host_packages(model, ["apache2", "openssl"], ["openssl", "python3-cryptography"],
                              ["python3-venv", "apache2"]) == ["apache2", "openssl", "python3-cryptography",
                                                               "python3-venv"]


def test_the_single_file_scripts_of_every_mode_are_one_list_root_writes_the_group_reads() -> None:
    apps = [{"name": "a", "mode": "embedded", "script": f"{BASE}/wsgi-scripts/a.wsgi"},
            {"name": "b", "mode": "proxy", "script": f"{BASE}/wsgi-scripts/b.wsgi"}]
    assert wsgi_script_files(apps, ["A\n", "B\n"], "wsgi") == [
        {"path": f"{BASE}/wsgi-scripts/a.wsgi", "content": "A\n", "owner": "root", "group": "wsgi", "mode": "0640"},
        {"path": f"{BASE}/wsgi-scripts/b.wsgi", "content": "B\n", "owner": "root", "group": "wsgi", "mode": "0640"},
    ]
    assert wsgi_script_files([], [], "wsgi") == []
    with pytest.raises(AnsibleFilterError, match="2 apps but 1 contents"):
        wsgi_script_files(apps, ["A\n"], "wsgi")


def test_the_layout_is_one_list_of_paths_parents_first(normalize) -> None:
    sites = normalize([site(), site(server_name="b.example.com", document_root="/srv/b"),
                       site(server_name="c.example.com")])
    checks = [{"app": "myapp", "port": 80}]
    entries = wsgi_layout_files(sites, BASE, "wsgi", f"{BASE}/wsgi-scripts/health", "script\n", checks)
    assert [(e["path"], e.get("state", "file"), e["group"], e["mode"]) for e in entries] == [
        (BASE, "directory", "root", "0755"),
        (f"{BASE}/documents", "directory", "root", "0755"),
        ("/srv/b", "directory", "root", "0755"),
        (f"{BASE}/wsgi-scripts", "directory", "wsgi", "0750"),
        (f"{BASE}/wsgi-scripts/health", "directory", "wsgi", "0750"),
        (f"{BASE}/wsgi-scripts/health/healthz.wsgi", "file", "wsgi", "0640"),
        (f"{BASE}/wsgi-scripts/health/checks.json", "file", "wsgi", "0640"),
        (f"{BASE}/wsgi-scripts/health/processes.json", "file", "wsgi", "0640"),
    ]
    # checks.json as to_nice_json writes it (sorted keys, four spaces), with a final newline.
    assert [e.get("content") for e in entries[-3:-1]] == [
        "script\n", '[\n    {\n        "app": "myapp",\n        "port": 80\n    }\n]\n']
    # No app has processes: none is expected running.
    assert json.loads(entries[-1]["content"]) == {"run_dir": "/run/wsgi-hosting/processes", "units": []}
    assert all(e["owner"] == "root" for e in entries)
    assert len(wsgi_layout_files(sites, BASE, "wsgi")) == 4  # no health check


def test_the_health_check_expects_each_instance_of_each_process_type() -> None:
    sites = [{"document_root": "/d", "apps": [
        {"name": "shop", "processes": {"worker": {"count": 2}, "clock": {"count": 1}}},
        {"name": "blog", "processes": {}}]}]
    entries = wsgi_layout_files(sites, BASE, "wsgi", f"{BASE}/wsgi-scripts/health", "script\n", [])
    assert json.loads(entries[-1]["content"])["units"] == [
        {"app": "shop", "unit": "wsgi-shop-worker@1.service"}, {"app": "shop", "unit": "wsgi-shop-worker@2.service"},
        {"app": "shop", "unit": "wsgi-shop-clock@1.service"}]
