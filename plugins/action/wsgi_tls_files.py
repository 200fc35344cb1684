"""Check the certificate files of the sites with `tls: {certificate: files}` on the controller.

A key that is not the certificate's, a certificate that has expired or that does not cover every name the
site answers to would go live as a browser error on every host at once; checked here, on the controller,
the run stops before any host changes. The key may be ansible-vault encrypted, which only an action can
read (through Ansible's loader); a filter sees file names only. Messages name the site and the field and
never contain a key.

The functions below take plain values, so tests call them without Ansible; ActionModule reads the files
and calls them.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from ansible.plugins.action import ActionBase
from cryptography import x509  # a dependency of ansible-core: always on the controller
from cryptography.hazmat.primitives import serialization


def _load_certificates(pem: str) -> list[Any]:
    return x509.load_pem_x509_certificates(pem.encode())


def _covers(pattern: str, name: str) -> bool:
    """RFC 6125 matching: a wildcard is a whole leftmost label and stands for exactly one label."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if name.startswith("*."):  # a wildcard alias: only the same wildcard covers all it stands for
        return pattern == name
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == name


def _certificate_names(certificate: Any) -> list[str]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []  # clients ignore the subject's CN: without SANs no name is covered
    names = extension.value.get_values_for_type(x509.DNSName)
    names += [str(address) for address in extension.value.get_values_for_type(x509.IPAddress)]
    return names


def _name_covered(name: str, patterns: Iterable[str]) -> bool:
    try:
        ipaddress.ip_address(name)
        return name in patterns
    except ValueError:
        return any(_covers(pattern, name) for pattern in patterns)


def certificate_problems(cert_pem: Any, key_pem: Any, chain_pem: Any = "", names: Any = (),
                         now: Any = None) -> list[tuple[str, str]]:
    """What is wrong with a certificate, its key and chain for a site's names, as (file, problem); [].

    Checked on the controller before any host changes: the files parse, the key is the certificate's,
    the certificate is valid now, and its subjectAltNames cover every name the site answers to (wildcard
    aliases need a wildcard certificate). Messages never contain the key.
    """
    problems: list[tuple[str, str]] = []
    try:
        certificates = _load_certificates(str(cert_pem))
    except ValueError:
        return [("cert_file", "is not a PEM certificate")]
    if not certificates:
        return [("cert_file", "is not a PEM certificate")]
    leaf = certificates[0]
    try:
        key = serialization.load_pem_private_key(str(key_pem).encode(), password=None)
    except (ValueError, TypeError):
        problems.append(("key_file", "is not an unencrypted PEM private key (ansible-vault encryption is fine)"))
    else:
        public = serialization.PublicFormat.SubjectPublicKeyInfo
        der = serialization.Encoding.DER
        if key.public_key().public_bytes(der, public) != leaf.public_key().public_bytes(der, public):
            problems.append(("key_file", "is not the key of cert_file"))
    moment = now if isinstance(now, datetime.datetime) else datetime.datetime.now(datetime.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    if leaf.not_valid_after_utc <= moment:
        problems.append(("cert_file", f"expired on {leaf.not_valid_after_utc:%Y-%m-%d}"))
    elif leaf.not_valid_before_utc > moment:
        problems.append(("cert_file", f"is not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"))
    covered = _certificate_names(leaf)
    missing = [name for name in names if not _name_covered(str(name), covered)]
    if missing:
        its_names = ", ".join(covered) if covered else "none, no subjectAltName"
        problems.append(("cert_file", f"does not cover {', '.join(missing)} (its names: {its_names})"))
    if chain_pem:
        try:
            chain = _load_certificates(str(chain_pem))
        except ValueError:
            chain = []
        if not chain:
            problems.append(("chain_file", "is not a list of PEM certificates"))
        elif chain[0].subject != leaf.issuer:
            problems.append(("chain_file", "does not start with the issuer of cert_file"))
    return problems


def has_ocsp_responder(cert_pem: str) -> bool:
    """Whether the certificate names an OCSP responder (Authority Information Access): only then can Apache
    staple an OCSP answer to the handshake (SSLUseStapling); without one, stapling would log errors."""
    try:
        leaf = _load_certificates(cert_pem)[0]
        access = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (ValueError, IndexError, x509.ExtensionNotFound):
        return False
    return any(item.access_method == x509.oid.AuthorityInformationAccessOID.OCSP for item in access)


def site_problems(index: int, site: Mapping[str, Any], texts: Mapping[str, str],
                  now: datetime.datetime | None = None) -> list[str]:
    """The problems of one normalized site's certificate files (texts: cert_file, key_file, chain_file, ""
    when absent), in the wsgi_sites message form."""
    where = f"wsgi_sites[{index}] (server_name {site['server_name']!r})"
    names = [site["server_name"], *site.get("server_aliases", [])]
    problems = certificate_problems(texts["cert_file"], texts["key_file"], texts["chain_file"], names, now)
    return [f"{where}: field 'tls.{field}': {field} {problem}" for field, problem in problems]


class ActionModule(ActionBase):
    """Ansible entry point: runs on the controller only and changes nothing."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        """Fail with every problem of every site's certificate files; else return each site's certificate
        text by the path it gets on the host (tls.certificate_path), and the paths of those that name an
        OCSP responder (stapled)."""
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec={"sites": {"type": "list", "elements": "dict",
                                                                       "required": True}})
        problems: list[str] = []
        certificates: dict[str, str] = {}
        stapled: list[str] = []
        for index, site in enumerate(args["sites"]):
            tls = site.get("tls") or {}
            if tls.get("certificate") != "files":
                continue
            # Each file is read (and decrypted) once, for the check and for what the host gets.
            texts = {key: self._read(tls[key]) if tls.get(key) else "" for key in ("cert_file", "key_file",
                                                                                   "chain_file")}
            # A front site (wsgi_model.front_sites) carries its place in wsgi_sites.
            problems += site_problems(site.get("index", index), site, texts)
            certificates[tls["certificate_path"]] = _joined(texts["cert_file"], texts["chain_file"])
            if has_ocsp_responder(texts["cert_file"]):
                stapled.append(tls["certificate_path"])
        if problems:
            result.update(failed=True, msg=f"wsgi_sites is invalid ({len(problems)} problem(s)):\n"
                          + "\n".join(problems))
        else:
            result["certificates"] = certificates
            result["stapled"] = stapled
        result["changed"] = False
        return result

    def _read(self, path: str) -> str:
        """A controller file's text, decrypted first when it is ansible-vault encrypted."""
        real = self._loader.get_real_file(path, decrypt=True)
        try:
            with open(real, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        finally:
            self._loader.cleanup_tmp_file(real)


def _joined(certificate: str, chain: str) -> str:
    """The certificate followed by its chain, one PEM file as Apache's SSLCertificateFile takes it."""
    parts = [part.strip() + "\n" for part in (certificate, chain) if part.strip()]
    return "".join(parts)
