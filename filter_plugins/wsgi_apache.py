"""What the WSGI sites need from Apache: the ports they listen on, the modes their apps use, the modules.

The apache role is generic and does not read wsgi_sites; the playbooks of the web servers hand it these
values (apache_required_listen_ports, apache_required_modules), so the contract between the roles is
written where the roles are put together. The apache role runs before the wsgi role normalizes the sites,
so these filters read wsgi_sites as the inventory gives it (playbooks/validate.yml has checked it by then),
with the normalizer's defaults (port 80).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

DEFAULT_PORT = 80
DEFAULT_TLS_PORT = 443
# What a site with tls needs where TLS ends: mod_ssl, HTTP/2, mod_rewrite for the redirect of its plain
# port, mod_headers for HSTS; and mod_md for ACME certificates.
TLS_MODULES = ["ssl", "http2", "rewrite", "headers"]
ACME_MODULES = ["md"]
# Behind balancers: the client's address from X-Forwarded-For (wsgi_proxies.py).
BEHIND_BALANCER_MODULES = ["remoteip", "headers"]
# The modules a mode needs in Apache besides mod_wsgi (which the mod_wsgi role enables): proxy mode
# forwards to headrace over HTTP.
MODE_MODULES: dict[str, list[str]] = {"proxy": ["proxy", "proxy_http"]}


def _sites(sites: Any) -> list[Mapping[str, Any]]:
    """The site mappings of wsgi_sites; anything else is an error naming the variable."""
    if sites is None:
        return []
    if not isinstance(sites, Sequence) or isinstance(sites, (str, bytes)):
        raise AnsibleFilterError(f"wsgi_sites is {sites!r}; allowed: a list of site mappings")
    for index, site in enumerate(sites):
        if not isinstance(site, Mapping):
            raise AnsibleFilterError(f"wsgi_sites[{index}] is {site!r}; allowed: a site mapping")
    return list(sites)


def _port(value: Any, index: int, field: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if isinstance(value, bool) or not 1 <= port <= 65535:
        raise AnsibleFilterError(f"wsgi_sites[{index}]: field '{field}' is {value!r}; allowed: a port 1-65535")
    return port


def _tls(site: Mapping[str, Any]) -> Mapping[str, Any] | None:
    tls = site.get("tls")
    return tls if isinstance(tls, Mapping) else None


def wsgi_site_ports(sites: Any, tls_here: bool = True) -> list[int]:
    """The ports the sites listen on (80 for a site without port, and 443 for HTTPS without tls.port), each
    once, in ascending order. tls_here is false on web servers behind balancers, which end TLS for them."""
    ports = set()
    for index, site in enumerate(_sites(sites)):
        ports.add(_port(site.get("port", DEFAULT_PORT), index, "port"))
        if tls_here and (tls := _tls(site)) is not None:
            ports.add(_port(tls.get("port", DEFAULT_TLS_PORT), index, "tls.port"))
    return sorted(ports)


def wsgi_site_modes(sites: Any) -> list[str]:
    """The modes (embedded, daemon, proxy) that at least one app of the sites uses, sorted."""
    modes = set()
    for site in _sites(sites):
        apps = site.get("apps") or []
        if isinstance(apps, Sequence) and not isinstance(apps, (str, bytes)):
            modes.update(app["mode"] for app in apps if isinstance(app, Mapping) and isinstance(app.get("mode"), str))
    return sorted(modes)


def wsgi_tls_apache_modules(sites: Any) -> list[str]:
    """The modules where TLS ends for these sites (web servers without balancers, or the balancers): ssl,
    http2, rewrite and headers for any site with tls, md as well when one gets its certificate from ACME."""
    tls = [tls for site in _sites(sites) if (tls := _tls(site)) is not None]
    if not tls:
        return []
    return TLS_MODULES + (ACME_MODULES if any(t.get("certificate") == "acme" for t in tls) else [])


def wsgi_apache_modules(sites: Any, tls_here: bool = True) -> list[str]:
    """The Apache modules the sites need besides mod_wsgi: proxy and proxy_http for a proxy-mode app, the
    TLS modules for sites with tls (wsgi_tls_apache_modules), and remoteip and headers behind balancers
    (tls_here false), which pass the client's address and scheme."""
    modes = wsgi_site_modes(sites)
    modules = [module for mode, modules in MODE_MODULES.items() if mode in modes for module in modules]
    more = wsgi_tls_apache_modules(sites) if tls_here else BEHIND_BALANCER_MODULES
    return modules + [module for module in more if module not in modules]


class FilterModule:
    """Ansible entry point: what the WSGI sites ask of the apache and mod_wsgi roles."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "wsgi_site_ports": wsgi_site_ports,
            "wsgi_site_modes": wsgi_site_modes,
            "wsgi_apache_modules": wsgi_apache_modules,
            "wsgi_tls_apache_modules": wsgi_tls_apache_modules,
        }
