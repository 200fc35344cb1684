"""What the WSGI sites need from Apache: the ports they listen on, the modes their apps use, the modules.

The apache and mod_wsgi roles are generic and read no wsgi_* variable; the playbook that puts the roles
together (playbooks/vars/webservers.yml) hands them these values (apache_required_listen_ports,
apache_required_modules, mod_wsgi_required_modes), worked out from the host's model (wsgi_model.sites:
normalized once by the validation, every default filled in, tls only where TLS ends on the host). So
nothing here checks or defaults a field again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

# What a site with tls needs where TLS ends: mod_ssl, HTTP/2, mod_rewrite for the redirect of its plain
# port, mod_headers for HSTS; and mod_md for ACME certificates.
TLS_MODULES = ["ssl", "http2", "rewrite", "headers"]
ACME_MODULES = ["md"]
# Behind balancers: the client's address from X-Forwarded-For (wsgi_proxies.py).
BEHIND_BALANCER_MODULES = ["remoteip", "headers"]
# The modules a mode needs in Apache besides mod_wsgi (which the mod_wsgi role enables): proxy mode
# forwards to headrace over HTTP.
MODE_MODULES: dict[str, list[str]] = {"proxy": ["proxy", "proxy_http"]}


def _with_tls(sites: Sequence[Mapping[str, Any]] | None) -> list[Mapping[str, Any]]:
    return [site["tls"] for site in sites or [] if site.get("tls")]


def wsgi_site_ports(sites: Sequence[Mapping[str, Any]] | None) -> list[int]:
    """The ports the normalized sites listen on (each site's port, and its HTTPS port where it has tls),
    each once, in ascending order."""
    ports = {int(site["port"]) for site in sites or []}
    ports.update(int(tls["port"]) for tls in _with_tls(sites))
    return sorted(ports)


def wsgi_site_modes(sites: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """The modes (embedded, daemon, proxy) that at least one app of the normalized sites uses, sorted."""
    return sorted({app["mode"] for site in sites or [] for app in site.get("apps") or []})


def wsgi_tls_apache_modules(sites: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """The modules where TLS ends for these normalized sites (web servers without balancers, or the
    balancers' front sites): ssl, http2, rewrite and headers for any site with tls, md as well when one
    gets its certificate from ACME."""
    tls = _with_tls(sites)
    if not tls:
        return []
    return TLS_MODULES + (ACME_MODULES if any(t["certificate"] == "acme" for t in tls) else [])


def wsgi_apache_modules(sites: Sequence[Mapping[str, Any]] | None, behind_balancers: bool = False) -> list[str]:
    """The Apache modules the normalized sites need besides mod_wsgi: proxy and proxy_http for a
    proxy-mode app, the TLS modules for sites with tls (wsgi_tls_apache_modules), and remoteip and headers
    behind balancers, which pass the client's address and scheme."""
    modes = wsgi_site_modes(sites)
    modules = [module for mode, modules in MODE_MODULES.items() if mode in modes for module in modules]
    more = BEHIND_BALANCER_MODULES if behind_balancers else wsgi_tls_apache_modules(sites)
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
