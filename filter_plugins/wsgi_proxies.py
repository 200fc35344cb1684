"""Behind the balancers: the client's address and scheme, trusted from the balancers' addresses alone.

A balancer ends TLS and speaks plain HTTP to the web servers; it says who the client was in
X-Forwarded-For and whether it came over HTTPS in X-Forwarded-Proto. Anyone can send those headers, so a
web server takes them only from a balancer's own address: mod_remoteip makes the client's address
Apache's (logs, REMOTE_ADDR in every mode), and the scheme becomes HTTPS=on for mod_wsgi (which makes
wsgi.url_scheme https) and stays in X-Forwarded-Proto for headrace. mod_wsgi's own WSGITrustedProxies
cannot be used with mod_remoteip: mod_wsgi 4.9 compares it with the address mod_remoteip has already
replaced by the client's, and then drops the header.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(value: Any) -> Network | None:
    try:
        return ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        return None


def wsgi_balancer_addresses(balancers: Any, hostvars: Any) -> list[str]:
    """How the web servers see each balancer: its balancer_address host variable, else its ansible_host,
    else its inventory name (names are resolved on each web server: wsgi_trusted_networks)."""
    addresses = []
    for host in balancers or []:
        variables = hostvars.get(host) or {}
        addresses.append(str(variables.get("balancer_address") or variables.get("ansible_host") or host))
    return addresses


def wsgi_unresolved_names(proxies: Any) -> list[str]:
    """The entries of wsgi_trusted_proxies that are host names (not addresses or networks): those to resolve."""
    return [str(proxy) for proxy in proxies or [] if _network(proxy) is None]


def wsgi_trusted_networks(proxies: Any, resolved: Any = None) -> list[str]:
    """Every trusted proxy as a network (an address is a /32 or /128), names replaced by their addresses.

    resolved maps a name to the addresses it resolved to on the web server (getent ahosts); a name that
    resolved to nothing is an error naming it: a proxy that cannot be recognized would make every client
    look like the balancer, or be trusted by nobody.
    """
    resolved = resolved if isinstance(resolved, Mapping) else {}
    networks: list[str] = []
    for proxy in proxies or []:
        network = _network(proxy)
        candidates = [network] if network is not None else [_network(a) for a in resolved.get(str(proxy)) or []]
        candidates = [c for c in candidates if c is not None]
        if not candidates:
            raise AnsibleFilterError(f"wsgi_trusted_proxies: {proxy!r} resolves to no address on this host; "
                                     "allowed: IP addresses, networks, or names the web server can resolve")
        networks += [str(c) for c in candidates if str(c) not in networks]
    return networks


def wsgi_trusted_proxy_lines(networks: Any) -> list[str]:
    """The server-wide lines that trust X-Forwarded-For and X-Forwarded-Proto from these networks only.

    The peer is CONN_REMOTE_ADDR (the connection's own address: mod_remoteip has replaced REMOTE_ADDR by
    then). A forwarded scheme from anyone else is removed before any app or headrace sees it.
    """
    if not networks:
        return []
    checked = [_network(network) for network in networks]
    if any(network is None for network in checked):
        raise AnsibleFilterError(f"wsgi_trusted_proxy_lines: {networks!r}; allowed: IP addresses or networks")
    peer = " || ".join(f"%{{CONN_REMOTE_ADDR}} -ipmatch '{network}'" for network in checked)
    return [
        "RemoteIPHeader X-Forwarded-For",
        "RemoteIPInternalProxy " + " ".join(str(network) for network in checked),
        f"SetEnvIfExpr \"({peer}) && req('X-Forwarded-Proto') == 'https'\" HTTPS=on",
        f'RequestHeader unset X-Forwarded-Proto "expr=!({peer})"',
    ]


class FilterModule:
    """Ansible entry point."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Map filter names to functions."""
        return {
            "wsgi_balancer_addresses": wsgi_balancer_addresses,
            "wsgi_unresolved_names": wsgi_unresolved_names,
            "wsgi_trusted_networks": wsgi_trusted_networks,
            "wsgi_trusted_proxy_lines": wsgi_trusted_proxy_lines,
        }
