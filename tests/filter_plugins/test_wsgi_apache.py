"""Tests for the wsgi_apache filter plugin: the ports, modes and modules the WSGI sites ask of Apache."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from wsgi_apache import (
    FilterModule,
    wsgi_apache_modules,
    wsgi_site_modes,
    wsgi_site_ports,
    wsgi_tls_apache_modules,
)


def site(port: Any = None, *modes: str) -> dict[str, Any]:
    """A site with one app per mode, and a port if given."""
    entry: dict[str, Any] = {"server_name": "www.example.com",
                             "apps": [{"name": f"app{i}", "mount": f"/{i}", "mode": m} for i, m in enumerate(modes)]}
    if port is not None:
        entry["port"] = port
    return entry


@pytest.mark.parametrize(("sites", "ports"), [
    ([], []),
    (None, []),
    ([site()], [80]),  # the normalizer's default port
    ([site(8080), site(), site("8080"), site(81)], [80, 81, 8080]),  # each once, ascending, as numbers
])
def test_site_ports(sites: Any, ports: list[int]) -> None:
    assert wsgi_site_ports(sites) == ports


@pytest.mark.parametrize(("sites", "modes", "modules"), [
    ([], [], []),
    ([site(None, "daemon"), site(8080, "embedded", "daemon")], ["daemon", "embedded"], []),
    ([site(None, "daemon"), site(8080, "proxy"), site(81, "proxy")], ["daemon", "proxy"], ["proxy", "proxy_http"]),
    ([{"server_name": "a.example.com"}, {"server_name": "b.example.com", "apps": [{"name": "x"}]}], [], []),
])
def test_modes_and_modules(sites: Any, modes: list[str], modules: list[str]) -> None:
    assert wsgi_site_modes(sites) == modes
    assert wsgi_apache_modules(sites) == modules


@pytest.mark.parametrize(("sites", "expected"), [
    ({"server_name": "x"}, "wsgi_sites is {'server_name': 'x'}; allowed: a list of site mappings"),
    ("www.example.com", "wsgi_sites is 'www.example.com'; allowed: a list of site mappings"),
    (["www.example.com"], "wsgi_sites[0] is 'www.example.com'; allowed: a site mapping"),
    ([site(), site("http")], "wsgi_sites[1]: field 'port' is 'http'; allowed: a port 1-65535"),
    ([site(0)], "wsgi_sites[0]: field 'port' is 0; allowed: a port 1-65535"),
    ([site(True)], "wsgi_sites[0]: field 'port' is True; allowed: a port 1-65535"),
    ([site(65536)], "wsgi_sites[0]: field 'port' is 65536; allowed: a port 1-65535"),
])
def test_bad_sites_name_the_variable(sites: Any, expected: str) -> None:
    with pytest.raises(AnsibleFilterError) as caught:
        wsgi_site_ports(sites)
    assert str(caught.value) == expected


def test_filter_module_exports_the_filters() -> None:
    assert FilterModule().filters() == {
        "wsgi_site_ports": wsgi_site_ports,
        "wsgi_site_modes": wsgi_site_modes,
        "wsgi_apache_modules": wsgi_apache_modules,
        "wsgi_tls_apache_modules": wsgi_tls_apache_modules,
    }


def test_a_site_with_tls_listens_on_its_https_port_too_and_needs_ssl_http2_and_rewrite() -> None:
    sites = [site(), {**site(8080), "tls": {"certificate": "self_signed"}},
             {**site(81), "tls": {"certificate": "self_signed", "port": "8443"}}]
    assert wsgi_site_ports(sites) == [80, 81, 443, 8080, 8443]
    assert wsgi_apache_modules(sites) == ["ssl", "http2", "rewrite", "headers"]
    assert wsgi_tls_apache_modules(sites) == ["ssl", "http2", "rewrite", "headers"]
    acme = [{**site(None, "proxy"), "tls": {"certificate": "acme"}}]
    assert wsgi_apache_modules(acme) == ["proxy", "proxy_http", "ssl", "http2", "rewrite", "headers", "md"]
    with pytest.raises(AnsibleFilterError, match=r"wsgi_sites\[0\]: field 'tls.port' is 0; allowed: a port 1-65535"):
        wsgi_site_ports([{**site(), "tls": {"port": 0}}])


def test_behind_balancers_a_web_server_keeps_its_plain_ports_and_takes_the_clients_address() -> None:
    """The balancers end TLS: no HTTPS port, no TLS module; mod_remoteip and headers for the forwarded
    address and scheme."""
    sites = [{**site(None, "proxy"), "tls": {"certificate": "acme"}}, {**site(8080), "tls": {"port": 8443}}]
    assert wsgi_site_ports(sites, False) == [80, 8080]
    assert wsgi_apache_modules(sites, False) == ["proxy", "proxy_http", "remoteip", "headers"]
    assert wsgi_tls_apache_modules([site()]) == []
