"""Tests for the wsgi_apache filter plugin: the ports, modes and modules the WSGI sites ask of Apache.

The filters read the host's model (wsgi_model.sites), so each case builds it the way the validation does,
with wsgi_host_model: the defaults (port 80, tls.port 443) are the normalizer's, written once.
"""

from __future__ import annotations

from itertools import count
from pathlib import Path
from typing import Any

import pytest
from wsgi_apache import (
    FilterModule,
    wsgi_apache_modules,
    wsgi_site_modes,
    wsgi_site_ports,
    wsgi_tls_apache_modules,
)
from wsgi_sites import wsgi_host_model

NAMES = count()


def site(port: Any = None, *modes: str) -> dict[str, Any]:
    """A site of a name of its own with one app per mode, and a port if given."""
    number = next(NAMES)
    entry: dict[str, Any] = {"server_name": f"www{number}.example.com",
                             "apps": [{"name": f"app{number}-{i}", "mount": f"/{i}", "mode": m}
                                      for i, m in enumerate(modes)]}
    if port is not None:
        entry["port"] = port
    return entry


@pytest.fixture()
def model(tmp_path: Path):
    """The host model of raw sites, built as the validation builds it."""
    hello = tmp_path / "hello.wsgi"
    hello.write_text("application = None\n")

    def build(sites: Any, behind_balancers: bool = False) -> dict[str, Any]:
        return wsgi_host_model(sites, "/usr/local/www", str(tmp_path), str(hello), (), (), behind_balancers)

    return build


def served(model, sites: Any, behind_balancers: bool = False) -> list[dict[str, Any]]:
    built = model(sites, behind_balancers)
    assert built["problems"] == "", built["problems"]
    return built["sites"]


@pytest.mark.parametrize(("sites", "ports"), [
    ([], []),
    (None, []),
    ([site()], [80]),  # the normalizer's default port
    ([site(8080), site(), site("8080"), site(81)], [80, 81, 8080]),  # each once, ascending, as numbers
])
def test_site_ports(model, sites: Any, ports: list[int]) -> None:
    assert wsgi_site_ports(served(model, sites)) == ports


@pytest.mark.parametrize(("sites", "modes", "modules"), [
    ([], [], []),
    ([site(None, "daemon"), site(8080, "embedded", "daemon")], ["daemon", "embedded"], []),
    ([site(None, "daemon"), site(8080, "proxy"), site(81, "proxy")], ["daemon", "proxy"], ["proxy", "proxy_http"]),
    ([site(), site()], [], []),
])
def test_modes_and_modules(model, sites: Any, modes: list[str], modules: list[str]) -> None:
    normalized = served(model, sites)
    assert wsgi_site_modes(normalized) == modes
    assert wsgi_apache_modules(normalized) == modules


@pytest.mark.parametrize(("sites", "expected"), [
    ({"server_name": "x"}, "field 'wsgi_sites': invalid value {'server_name': 'x'}; allowed: a list of site mappings"),
    ("www.example.com", "field 'wsgi_sites': invalid value 'www.example.com'; allowed: a list of site mappings"),
    ([site("http")], "field 'port': invalid value 'http'; allowed: an integer from 1 to 65535"),
    ([site(0)], "field 'port': invalid value 0; allowed: an integer from 1 to 65535"),
    ([site(True)], "field 'port': invalid value True; allowed: an integer from 1 to 65535"),
    ([site(65536)], "field 'port': invalid value 65536; allowed: an integer from 1 to 65535"),
])
def test_bad_sites_are_problems_of_the_model_naming_the_field(model, sites: Any, expected: str) -> None:
    """A bad port is caught once, by the validation that builds the model (the filters never see it)."""
    built = model(sites)
    assert expected in built["problems"]
    assert built["sites"] == []


def test_filter_module_exports_the_filters() -> None:
    assert FilterModule().filters() == {
        "wsgi_site_ports": wsgi_site_ports,
        "wsgi_site_modes": wsgi_site_modes,
        "wsgi_apache_modules": wsgi_apache_modules,
        "wsgi_tls_apache_modules": wsgi_tls_apache_modules,
    }


def test_a_site_with_tls_listens_on_its_https_port_too_and_needs_ssl_http2_and_rewrite(model) -> None:
    sites = served(model, [site(), {**site(8080), "tls": {"certificate": "self_signed"}},
                           {**site(81), "tls": {"certificate": "self_signed", "port": "8443"}}])
    assert wsgi_site_ports(sites) == [80, 81, 443, 8080, 8443]
    assert wsgi_apache_modules(sites) == ["ssl", "http2", "rewrite", "headers"]
    assert wsgi_tls_apache_modules(sites) == ["ssl", "http2", "rewrite", "headers"]
    acme = served(model, [{**site(None, "proxy"), "tls": {"certificate": "acme"}}])
    assert wsgi_apache_modules(acme) == ["proxy", "proxy_http", "ssl", "http2", "rewrite", "headers", "md"]
    assert "field 'tls.port'" in model([{**site(), "tls": {"certificate": "self_signed", "port": 0}}])["problems"]


def test_behind_balancers_a_web_server_keeps_its_plain_ports_and_takes_the_clients_address(model) -> None:
    """The balancers end TLS: no HTTPS port, no TLS module; mod_remoteip and headers for the forwarded
    address and scheme."""
    raw = [{**site(None, "proxy"), "tls": {"certificate": "acme"}},
           {**site(8080), "tls": {"certificate": "self_signed", "port": 8443}}]
    sites = served(model, raw, behind_balancers=True)
    assert wsgi_site_ports(sites) == [80, 8080]
    assert wsgi_apache_modules(sites, True) == ["proxy", "proxy_http", "remoteip", "headers"]
    assert wsgi_tls_apache_modules(served(model, [site()])) == []
