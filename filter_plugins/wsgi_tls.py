"""Mozilla's server-side TLS profiles in Apache's terms, for the wsgi and balancer roles.

Worth pinning in unit tests rather than in Jinja: a profile is a long list of exact values that a TLS
checker (sslyze --mozilla_config) compares against. The certificates themselves are checked by the
wsgi_tls_files action (plugins/action), which can read an ansible-vault encrypted key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.file_entries import (
    directory_entry,
)

# Mozilla's server-side TLS guidelines, version 5.7 (https://ssl-config.mozilla.org/guidelines/5.7.json,
# the version sslyze 6 checks against), in Apache's terms. TLS 1.3's cipher suites are OpenSSL's defaults,
# which are the three the guidelines list, so only the TLS 1.2 (and older) list is set.
GUIDELINES_VERSION = "5.7"
_INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
_OLD_CIPHERS = _INTERMEDIATE_CIPHERS + (
    ":ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"
    "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:"
    "DHE-RSA-AES128-SHA256:DHE-RSA-AES256-SHA256:AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:"
    "AES256-SHA256:AES128-SHA:AES256-SHA:DES-CBC3-SHA"
)
PROFILES: dict[str, dict[str, Any]] = {
    "modern": {
        "protocols": ("TLSv1.3",),
        "ciphers": "",
        "server_order": False,
        "certificate_key": "ecdsa",
        "certificate_days": 90,
    },
    "intermediate": {
        "protocols": ("TLSv1.2", "TLSv1.3"),
        "ciphers": _INTERMEDIATE_CIPHERS,
        "server_order": False,
        "certificate_key": "ecdsa",  # ECDSA or RSA; a key the host makes is ECDSA P-256
        "certificate_days": 366,
    },
    "old": {
        "protocols": ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"),
        "ciphers": _OLD_CIPHERS,
        "server_order": True,
        "certificate_key": "rsa",  # the old profile's clients know RSA only
        "certificate_days": 366,
    },
}
CURVES = "X25519:prime256v1:secp384r1"


def _profile(name: Any) -> dict[str, Any]:
    if name not in PROFILES:
        raise AnsibleFilterError(f"wsgi_tls_profile is {name!r}; allowed: one of {', '.join(PROFILES)}")
    return PROFILES[name]


def wsgi_tls_apache_settings(profile: Any, openssl_version: Any = "3.0") -> list[str]:
    """The mod_ssl directives of a profile, one line each, for the OpenSSL of the host.

    OpenSSL 3 refuses TLS 1.0 and 1.1 and their SHA-1 signatures at its default security level, so the old
    profile lowers it (@SECLEVEL=0), as Mozilla's generator does; the other profiles keep the default.
    Session tickets are off in every profile: their keys live as long as the Apache process and would
    undo forward secrecy.
    """
    settings = _profile(profile)
    try:
        openssl_major = int(str(openssl_version).split(".", 1)[0])
    except ValueError:
        raise AnsibleFilterError(f"wsgi_tls_apache_settings: OpenSSL version {openssl_version!r}; "
                                 "allowed: a version such as 3.0.15") from None
    lines = ["SSLProtocol -all " + " ".join("+" + protocol for protocol in settings["protocols"])]
    if settings["ciphers"]:
        seclevel = ":@SECLEVEL=0" if profile == "old" and openssl_major >= 3 else ""
        lines.append(f"SSLCipherSuite {settings['ciphers']}{seclevel}")
    lines += [
        f"SSLHonorCipherOrder {'on' if settings['server_order'] else 'off'}",
        f"SSLOpenSSLConfCmd Curves {CURVES}",
        "SSLSessionTickets off",
    ]
    return lines


def wsgi_tls_key_spec(profile: Any) -> dict[str, Any]:
    """The key and lifetime of a certificate the host makes itself (self_signed) for a profile.

    Mozilla's modern profile allows ECDSA certificates only and at most 90 days; the old one RSA only.
    """
    settings = _profile(profile)
    if settings["certificate_key"] == "rsa":
        return {"type": "RSA", "size": 2048, "curve": None, "days": settings["certificate_days"]}
    return {"type": "ECC", "size": 256, "curve": "secp256r1", "days": settings["certificate_days"]}


# The ACME server asks for http-01 challenges here on the plain port (mod_md answers them): never redirected.
ACME_CHALLENGE_PATH = "/.well-known/acme-challenge/"
# mod_md's status page (local requests only, wsgi_acme_apache_settings): kept on the plain port of an ACME
# site, so that the host can ask it without a certificate for its own name.
MD_STATUS_PATH = "/md-status"


def _site_tls(site: Any, caller: str) -> Mapping[str, Any]:
    """The normalized tls of a site (wsgi_normalize_sites or wsgi_tls_front_sites); an error otherwise."""
    tls = site.get("tls") if isinstance(site, Mapping) else None
    if not isinstance(tls, Mapping):
        raise AnsibleFilterError(f"{caller}: site {site.get('server_name') if isinstance(site, Mapping) else site!r} "
                                 "has no tls; allowed: a normalized site with tls")
    return tls


def wsgi_tls_vhost_lines(site: Any, stapled: Collection[str] = ()) -> list[str]:
    """The lines of a site's HTTPS VirtualHost that make it HTTPS, for the web servers and the balancers alike.

    An ACME site names no certificate: mod_md supplies it (a fallback until the first one arrives) and
    answers tls-alpn-01 challenges, which need acme-tls/1 among the protocols. stapled lists the certificate
    paths whose certificate names an OCSP responder (the wsgi_tls_files action finds them): mod_ssl staples
    its answer; mod_md staples for its own certificates (MDStapling).
    """
    tls = _site_tls(site, "wsgi_tls_vhost_lines")
    lines = ["SSLEngine on"]
    protocols = "h2 http/1.1"
    if tls["certificate"] == "acme":
        protocols += " acme-tls/1"
    else:
        lines += [f"SSLCertificateFile {tls['certificate_path']}", f"SSLCertificateKeyFile {tls['key_path']}"]
        if tls["certificate_path"] in set(stapled or ()):
            lines.append("SSLUseStapling on")
    lines.append(f"Protocols {protocols}")
    if tls["hsts"]:
        lines.append(f'Header always set Strict-Transport-Security "max-age={tls["hsts"]}"')
    return lines


def wsgi_tls_redirect_lines(site: Any, kept_paths: Sequence[str] = (), acme_live_dir: str = "") -> list[str]:
    """mod_rewrite lines that answer a plain request 308 with the same path and query on the site's HTTPS port.

    ACME challenges stay on the plain port, and so do kept_paths (the health check the balancers and the
    rollout ask) and, for an ACME site, md-status. An ACME site redirects only once its certificate is live: mod_md's `installed` message
    (acme-message) leaves a file named after the site in acme_live_dir, so plain HTTP clients are not sent
    to mod_md's stand-in certificate before the first real one is served.
    """
    tls = _site_tls(site, "wsgi_tls_redirect_lines")
    name = site["server_name"]
    acme = tls["certificate"] == "acme"
    if acme and not acme_live_dir:
        raise AnsibleFilterError("wsgi_tls_redirect_lines: an ACME site needs acme_live_dir; allowed: a directory")
    lines = ["RewriteEngine On", f"RewriteCond %{{REQUEST_URI}} !^{re.escape(ACME_CHALLENGE_PATH)}"]
    kept = [path for path in kept_paths if path] + ([MD_STATUS_PATH] if acme else [])
    lines += [f"RewriteCond %{{REQUEST_URI}} !^{re.escape(path)}$" for path in kept]
    if acme:
        lines.append(f"RewriteCond {acme_live_dir}/{name} -f")
    port = "" if tls["port"] == 443 else f":{tls['port']}"
    lines.append(f"RewriteRule ^ https://{name}{port}%{{REQUEST_URI}} [R=308,L]")
    return lines


def _files_sites(sites: Any, caller: str) -> list[Mapping[str, Any]]:
    """The sites whose certificate and key are given as files."""
    return [site for site in sites or () if _site_tls(site, caller)["certificate"] == "files"]


def wsgi_tls_file_entries(sites: Any, certificates: Mapping[str, str]) -> list[dict[str, Any]]:
    """wsgi_files entries for the certificates of the sites where TLS ends here: one module run, not one per site.

    First each directory that holds a key (0700 root: files and self-signed sites; mod_md keeps the ACME
    ones), then the certificate with its chain of each files site (0644), from certificates (certificate
    path to PEM text, as the wsgi_tls_files action read them on the controller). The keys go in an entry
    list of their own (wsgi_tls_key_entries), installed by a task whose output is never shown.
    """
    directories = sorted({str(_site_tls(site, "wsgi_tls_file_entries")["key_path"]).rsplit("/", 1)[0]
                          for site in sites or () if site["tls"]["certificate"] != "acme"})
    entries = [directory_entry(directory, mode="0700") for directory in directories]
    for site in _files_sites(sites, "wsgi_tls_file_entries"):
        path = site["tls"]["certificate_path"]
        if path not in certificates:
            raise AnsibleFilterError(f"wsgi_tls_file_entries: no certificate read for {site['server_name']} ({path})")
        entries.append({"path": path, "content": certificates[path], "owner": "root", "group": "root",
                        "mode": "0644"})
    return entries


def wsgi_tls_key_entries(sites: Any, keys: Sequence[str]) -> list[dict[str, Any]]:
    """wsgi_files entries for the keys of the files sites (0600 root, no diff), keys in the sites' order.

    keys are the key files' contents, read on the controller in the order of the files sites (the
    ansible.builtin.file lookup decrypts an ansible-vault encrypted key); a count that differs is an error
    rather than a key installed for the wrong site.
    """
    files_sites = _files_sites(sites, "wsgi_tls_key_entries")
    if len(files_sites) != len(keys or ()):
        raise AnsibleFilterError(f"wsgi_tls_key_entries: {len(keys or ())} keys for {len(files_sites)} sites "
                                 "with certificate files; allowed: one key per site, in the sites' order")
    return [{"path": site["tls"]["key_path"], "content": key, "owner": "root", "group": "root", "mode": "0600",
             "diff": False} for site, key in zip(files_sites, keys)]


def wsgi_tls_self_signed_entries(sites: Any, key_spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """wsgi_self_signed entries for the self-signed sites (other sites left out): their key and certificate
    paths, their names (the server name first, then the aliases) and the profile's key spec and lifetime
    (wsgi_tls_key_spec), for one module run on the host instead of several per site."""
    entries = []
    for site in sites or ():
        tls = _site_tls(site, "wsgi_tls_self_signed_entries")
        if tls["certificate"] != "self_signed":
            continue
        entries.append({
            "key_path": tls["key_path"], "certificate_path": tls["certificate_path"],
            "names": list(dict.fromkeys([site["server_name"], *site.get("server_aliases", [])])),
            "key": {k: key_spec[k] for k in ("type", "size", "curve")}, "days": key_spec["days"]})
    return entries


class FilterModule:
    """Ansible entry point."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Map filter names to functions."""
        return {
            "wsgi_tls_apache_settings": wsgi_tls_apache_settings,
            "wsgi_tls_key_spec": wsgi_tls_key_spec,
            "wsgi_tls_vhost_lines": wsgi_tls_vhost_lines,
            "wsgi_tls_redirect_lines": wsgi_tls_redirect_lines,
            "wsgi_tls_file_entries": wsgi_tls_file_entries,
            "wsgi_tls_key_entries": wsgi_tls_key_entries,
            "wsgi_tls_self_signed_entries": wsgi_tls_self_signed_entries,
        }

