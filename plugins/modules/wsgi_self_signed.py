"""Keep the self-signed keys and certificates of a host's sites, all of them in one module run.

Why a module of our own: with community.crypto each site took four module runs on every converge (make the
key, describe the certificate, read it, make it), about 0.3 CPU s of start-up each on the host, for work
that is a few checks of two files. This module checks every self-signed site of the host at once, with the
same rules: the key of the type and size the TLS profile asks (made again when the profile changes), a
certificate for exactly the site's names, made with that key, renewed a month before it expires or when
the names or the key change; root's files, the key readable by root only.

The decisions are functions of the parsed files and the clock (key_fits, certificate_problem), so that the
unit tests pin them without a host.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.file_attributes import (
    attributes_differ,
    set_attributes,
    write_atomically,
)

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID
except ImportError:  # reported by main() as a missing package
    x509 = None  # type: ignore[assignment]

DOCUMENTATION = r"""
module: wsgi_self_signed
author: wsgi-hosting maintainers
version_added: "1.0.0"
short_description: Keep the self-signed keys and certificates of a host's sites in one module run
description:
  - For each entry of O(sites), makes the key when there is none or it is not of the type and size asked,
    and the certificate when there is none, or it is not for exactly the names given, not made with the key,
    or expires within O(renew_before_days). Key and certificate are root's; the key mode 0600, the
    certificate 0644; a missing directory of either is made, root's, 0700.
  - Needs the Python package cryptography on the host (Debian's python3-cryptography).
  - Supports check mode (the result says what would be made) and diff mode. A key is never shown.
options:
  sites:
    description:
      - Each a mapping with C(key_path), C(certificate_path), C(names) (the first is the subject's common
        name; all of them are the subjectAltNames), C(key) (C(type) C(RSA) with C(size), or C(ECC) with
        C(curve), such as C(secp256r1)) and C(days) (the certificate's lifetime).
    type: list
    elements: dict
    required: true
  renew_before_days:
    description: A certificate that expires within this many days is made again.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: Make the self-signed certificates
  wsgi_hosting.debian.wsgi_self_signed:
    sites:
      - key_path: /etc/ssl/wsgi/private/www.example.com.key
        certificate_path: /etc/ssl/wsgi/www.example.com.pem
        names: [www.example.com, example.com]
        key: {type: ECC, curve: secp256r1}
        days: 90
"""

RETURN = r"""
sites:
  description: Per entry, C(certificate_path), C(key) and C(certificate) (C(kept), or why it was made).
  type: list
  elements: dict
  returned: always
"""


class SiteError(Exception):
    """An entry that cannot be applied: the message names the entry and the field."""


def _utc(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _not_after(certificate: Any) -> datetime.datetime:
    """The end of validity, aware, with the attribute of the installed cryptography (38 on Debian 12)."""
    return _utc(getattr(certificate, "not_valid_after_utc", None) or certificate.not_valid_after)


def key_fits(key: Any, spec: Mapping[str, Any]) -> bool:
    """Whether a private key is of the type, size or curve the profile asks."""
    if spec.get("type") == "RSA":
        return isinstance(key, rsa.RSAPrivateKey) and key.key_size == int(spec.get("size") or 2048)
    return isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == spec.get("curve", "secp256r1")


def _public_bytes(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def certificate_problem(certificate: Any, key: Any, names: Sequence[str], now: datetime.datetime,
                        renew_before_days: int) -> str | None:
    """Why the certificate must be made again, or None when it is fine."""
    if _public_bytes(certificate.public_key()) != _public_bytes(key.public_key()):
        return "it was made with another key"
    try:
        alternative = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = alternative.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns = []
    common = [attribute.value for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if sorted(dns) != sorted(names) or common != [names[0]]:
        return f"it names {', '.join(common + [n for n in dns if n not in common]) or 'nothing'}"
    if _not_after(certificate) - now < datetime.timedelta(days=renew_before_days):
        return f"it expires on {_not_after(certificate).date().isoformat()}"
    return None


def new_key(spec: Mapping[str, Any]) -> Any:
    if spec.get("type") == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=int(spec.get("size") or 2048))
    curve = {"secp256r1": ec.SECP256R1, "secp384r1": ec.SECP384R1}.get(str(spec.get("curve", "secp256r1")))
    if curve is None:
        raise SiteError(f"key curve {spec.get('curve')!r}; allowed: secp256r1, secp384r1")
    return ec.generate_private_key(curve())


def new_certificate(key: Any, names: Sequence[str], days: int, now: datetime.datetime) -> Any:
    """Self-signed, for names (the first the common name), valid from now for days, SHA-256."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except FileNotFoundError:
        return None


def _write_root_file(path: str, data: bytes, mode: int) -> None:
    """Root's file with mode, owner and mode set before it takes the path's name (never a key readable by
    others for a moment)."""
    write_atomically(path, data, lambda temporary: set_attributes(temporary, 0, 0, mode))


def _site(entry: Mapping[str, Any], index: int) -> tuple[str, str, list[str], Mapping[str, Any], int]:
    where = f"sites[{index}]"
    key_path, certificate_path = entry.get("key_path"), entry.get("certificate_path")
    names = entry.get("names")
    for field, value in (("key_path", key_path), ("certificate_path", certificate_path)):
        if not isinstance(value, str) or not os.path.isabs(value):
            raise SiteError(f"{where}: field '{field}' is {value!r}; allowed: an absolute path")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise SiteError(f"{where}: field 'names' is {names!r}; allowed: a non-empty list of host names")
    spec = entry.get("key")
    if not isinstance(spec, Mapping) or spec.get("type") not in ("RSA", "ECC"):
        raise SiteError(f"{where}: field 'key' is {spec!r}; allowed: {{type: RSA, size}} or {{type: ECC, curve}}")
    days = entry.get("days")
    if not isinstance(days, int) or days < 1:
        raise SiteError(f"{where}: field 'days' is {days!r}; allowed: a number of days, at least 1")
    return key_path, certificate_path, names, spec, days


def _directories(paths: Sequence[str], check: bool) -> list[str]:
    """The directories of the key and the certificate, made where missing: root's, 0700 (the key's is the
    tls role's root-only directory; a host with only self-signed sites has no other step making it)."""
    made = []
    for directory in dict.fromkeys(os.path.dirname(path) for path in paths):
        if os.path.isdir(directory):
            continue
        made.append(directory)
        if not check:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            os.chown(directory, 0, 0)
            os.chmod(directory, 0o700)
    return made


def keep(entry: Mapping[str, Any], index: int, check: bool, now: datetime.datetime,
         renew_before_days: int) -> dict[str, Any]:
    """One site: what was kept and what was made (or would be, in check mode), and why."""
    key_path, certificate_path, names, spec, days = _site(entry, index)
    result: dict[str, Any] = {"certificate_path": certificate_path, "key": "kept", "certificate": "kept"}
    if _directories([key_path, certificate_path], check):
        result["directory"] = "made"
    key_data = _read(key_path)
    key = serialization.load_pem_private_key(key_data, password=None) if key_data else None
    if key is None or not key_fits(key, spec):
        result["key"] = "made: there was none" if key is None else "made: the profile asks another type or size"
        key = new_key(spec)
        if not check:
            _write_root_file(key_path, key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()), 0o600)
    elif attributes_differ(os.stat(key_path), 0, 0, 0o600):
        result["key"] = "owner or mode set"
        if not check:
            set_attributes(key_path, 0, 0, 0o600)
    certificate_data = _read(certificate_path)
    problem = "there was none"
    if certificate_data:
        problem = certificate_problem(x509.load_pem_x509_certificate(certificate_data), key, names, now,
                                      renew_before_days)
    if problem:
        result["certificate"] = f"made: {problem}"
        if not check:
            _write_root_file(certificate_path,
                             new_certificate(key, names, days, now).public_bytes(serialization.Encoding.PEM), 0o644)
    elif attributes_differ(os.stat(certificate_path), 0, 0, 0o644):
        result["certificate"] = "owner or mode set"
        if not check:
            set_attributes(certificate_path, 0, 0, 0o644)
    return result


def main() -> None:
    module = AnsibleModule(argument_spec={
        "sites": {"type": "list", "elements": "dict", "required": True},
        "renew_before_days": {"type": "int", "default": 30},
    }, supports_check_mode=True)
    if x509 is None:
        module.fail_json(msg="wsgi_self_signed needs the Python package cryptography on the host "
                             "(Debian: python3-cryptography)")
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    results: list[dict[str, Any]] = []
    try:
        for index, entry in enumerate(module.params["sites"]):
            results.append(keep(entry, index, module.check_mode, now, module.params["renew_before_days"]))
    except (SiteError, OSError, ValueError) as error:
        module.fail_json(msg=str(error), sites=results)
    changed = [r for r in results if (r["key"], r["certificate"]) != ("kept", "kept") or "directory" in r]
    diff = [{"before_header": r["certificate_path"], "after_header": r["certificate_path"], "before": "",
             "after": f"key: {r['key']}\ncertificate: {r['certificate']}\n"} for r in changed]
    module.exit_json(changed=bool(changed), sites=results, diff=diff if module._diff else [])


if __name__ == "__main__":
    main()
