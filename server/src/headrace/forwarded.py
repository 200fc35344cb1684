"""Trust of ``X-Forwarded-For``/``X-Forwarded-Proto``: which peers may send them, what they change.

Only a peer on the ``--forwarded-allow-ips`` list (a proxy) may say who the client is and
whether it spoke HTTPS; from anyone else these headers are ignored, or a client could
spoof its address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow_list(spec: str) -> tuple[bool, bool, list[Network]]:
    """``(everyone, unix peers, networks)`` from a comma list; ValueError names a bad item."""
    items = [item.strip() for item in spec.split(",") if item.strip()]
    networks = []
    for item in items:
        if item in ("*", "unix"):
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"invalid address {item!r}") from None
    return "*" in items, "unix" in items, networks


def make_trust(spec: str) -> Callable[[str], bool]:
    """The check for one peer address (``"unix"`` for unix-socket peers), cached per address."""
    everyone, allow_unix, networks = parse_allow_list(spec)
    if everyone:
        return lambda addr: True
    cache: dict[str, bool] = {}

    def trusted(addr: str) -> bool:
        result = cache.get(addr)
        if result is None:
            if addr == "unix":
                result = allow_unix
            else:
                try:
                    ip = ipaddress.ip_address(addr.split("%", 1)[0])
                except ValueError:
                    result = False
                else:
                    if ip.version == 6 and ip.ipv4_mapped is not None:
                        ip = ip.ipv4_mapped
                    result = any(ip in net for net in networks)
            if len(cache) < 4096:
                cache[addr] = result
        return result

    return trusted


def apply_forwarded(environ: dict[str, Any], headers: dict[str, str]) -> None:
    """Let a trusted proxy's headers set ``REMOTE_ADDR`` and ``wsgi.url_scheme``.

    The rightmost entry is the one the nearest proxy (the trusted one) added.
    """
    forwarded_for = headers.get("HTTP_X_FORWARDED_FOR")
    if forwarded_for:
        environ["REMOTE_ADDR"] = forwarded_for.rsplit(",", 1)[-1].strip()
    proto = headers.get("HTTP_X_FORWARDED_PROTO")
    if proto:
        proto = proto.rsplit(",", 1)[-1].strip().lower()
        if proto in ("http", "https"):
            environ["wsgi.url_scheme"] = proto
