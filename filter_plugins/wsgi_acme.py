"""ACME certificates through Apache's own mod_md, for the sites with ``tls: {certificate: acme}``.

mod_md runs the ACME protocol inside Apache: it answers the challenges itself (http-01 on the plain port,
tls-alpn-01 on the HTTPS port), keeps its store in /etc/apache2/md and renews before expiry. What it cannot
do is put a renewed certificate live (its watchdog runs as Apache's user): it says ``renewed`` to the
MDMessageCmd, and the roles' acme-message script hands that to a systemd path unit that reloads Apache.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

# Let's Encrypt's production directory: the default of wsgi_acme_directory.
LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"


def acme_sites(sites: Any) -> list[Mapping[str, Any]]:
    """The normalized sites whose certificate comes from ACME."""
    return [site for site in sites or [] if isinstance(site, Mapping) and isinstance(site.get("tls"), Mapping)
            and site["tls"].get("certificate") == "acme"]


def wsgi_acme_apache_settings(sites: Any, directory: Any, contact: Any, ca_file: Any = "", key: Any = None,
                              message_cmd: Any = "") -> list[str]:
    """The server-wide mod_md lines for the ACME sites (none when no site uses ACME).

    One MDomain per site with its aliases (one certificate covers them all). ca_file is the host path of the CA bundle mod_md
    trusts for the ACME server's own HTTPS (a private one such as Pebble). md-status shows every managed
    domain's state: it answers requests from the host itself only. key is the profile's key
    (wsgi_tls_key_spec): ECDSA P-256 unless the profile allows RSA only.
    """
    sites = acme_sites(sites)
    if not sites:
        return []
    if not isinstance(contact, str) or "@" not in contact:
        raise AnsibleFilterError(f"wsgi_acme_contact is {contact!r}; allowed: an e-mail address (sites use acme)")
    if not isinstance(directory, str) or not directory.startswith("https://"):
        raise AnsibleFilterError(f"wsgi_acme_directory is {directory!r}; allowed: an https:// URL")
    key = key if isinstance(key, Mapping) else {"type": "ECC"}
    lines = [
        f"MDCertificateAuthority {directory}",
        "MDCertificateAgreement accepted",
        f"MDContactEmail {contact}",
        "MDPrivateKeys " + ("secp256r1" if key["type"] == "ECC" else f"RSA {key['size']}"),
        "MDStapling on",
    ]
    if ca_file:
        lines.append(f"MDCACertificateFile {ca_file}")
    if message_cmd:
        lines.append(f"MDMessageCmd {message_cmd}")
    lines += ["MDomain " + " ".join([site["server_name"], *site.get("server_aliases", [])]) for site in sites]
    lines += ['<Location "/md-status">', "    SetHandler md-status", "    Require local", "</Location>"]
    return lines


class FilterModule:
    """Ansible entry point."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Map filter names to functions."""
        return {"wsgi_acme_apache_settings": wsgi_acme_apache_settings}
