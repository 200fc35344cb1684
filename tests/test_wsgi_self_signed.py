"""The wsgi_self_signed module: every self-signed site of a host kept in one module run, in process.

keep() runs on files in a temporary directory (as root, like the module on a host) with the real
cryptography package, and the tests check what a user of the roles relies on: a key of the profile's type
and size readable by root only, a certificate for exactly the site's names made with that key, nothing
made again on a second run, a new certificate when the names change or expiry is a month away, a new key
when the profile changes, and a dry run that writes nothing.
"""

from __future__ import annotations

import datetime
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from plugin_loading import load

PROJECT_DIR = Path(__file__).resolve().parent.parent
MODULE = load(PROJECT_DIR / "plugins" / "modules" / "wsgi_self_signed.py", "wsgi_self_signed_module")
NOW = datetime.datetime(2026, 12, 5, 10, 0, tzinfo=datetime.UTC)
ECC = {"type": "ECC", "size": 256, "curve": "secp256r1"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the module makes root's files")


@pytest.fixture()
def site(tmp_path: Path) -> dict[str, Any]:
    return {"key_path": str(tmp_path / "site.key"), "certificate_path": str(tmp_path / "site.pem"),
            "names": ["www.example.com", "example.com"], "key": ECC, "days": 90}


def keep(site: dict[str, Any], check: bool = False, now: datetime.datetime = NOW) -> dict[str, Any]:
    return MODULE.keep(site, 0, check, now, 30)


def certificate(site: dict[str, Any]) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(site["certificate_path"]).read_bytes())


def key(site: dict[str, Any]) -> Any:
    return serialization.load_pem_private_key(Path(site["key_path"]).read_bytes(), password=None)


def mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_fresh_site_gets_a_key_and_a_certificate_for_its_names_then_nothing_changes(site) -> None:
    made = keep(site)
    assert (made["key"], made["certificate"]) == ("made: there was none", "made: there was none")
    assert isinstance(key(site), ec.EllipticCurvePrivateKey) and key(site).curve.name == "secp256r1"
    assert (mode(site["key_path"]), mode(site["certificate_path"])) == (0o600, 0o644)
    cert = certificate(site)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["www.example.com", "example.com"]
    assert cert.subject.rfc4514_string() == "CN=www.example.com" and cert.issuer == cert.subject
    assert MODULE._not_after(cert) == NOW + datetime.timedelta(days=90)
    assert cert.public_key().public_numbers() == key(site).public_key().public_numbers()
    before = Path(site["certificate_path"]).read_bytes()
    assert (keep(site)["key"], keep(site)["certificate"]) == ("kept", "kept")
    assert Path(site["certificate_path"]).read_bytes() == before


def test_a_missing_directory_is_made_root_only(tmp_path: Path) -> None:
    site = {"key_path": str(tmp_path / "tls" / "a.key"), "certificate_path": str(tmp_path / "tls" / "a.pem"),
            "names": ["a.example"], "key": ECC, "days": 90}
    assert keep(site, check=True)["directory"] == "made" and not (tmp_path / "tls").exists()
    assert keep(site)["directory"] == "made"
    assert mode(str(tmp_path / "tls")) == 0o700 and (tmp_path / "tls" / "a.pem").exists()
    assert "directory" not in keep(site)


def test_new_names_or_a_near_expiry_make_a_new_certificate_with_the_same_key(site) -> None:
    keep(site)
    old_key = Path(site["key_path"]).read_bytes()
    site["names"] = ["www.example.com"]
    assert keep(site) == {"certificate_path": site["certificate_path"], "key": "kept",
                          "certificate": "made: it names www.example.com, example.com"}
    later = NOW + datetime.timedelta(days=61)
    assert keep(site, now=later)["certificate"] == "made: it expires on 2027-03-05"
    assert MODULE._not_after(certificate(site)) == later + datetime.timedelta(days=90)
    assert Path(site["key_path"]).read_bytes() == old_key


def test_another_profile_makes_a_new_key_and_certificate(site) -> None:
    keep(site)
    site["key"] = {"type": "RSA", "size": 2048, "curve": None}
    made = keep(site)
    assert made["key"] == "made: the profile asks another type or size"
    assert made["certificate"] == "made: it was made with another key"
    assert isinstance(key(site), rsa.RSAPrivateKey) and key(site).key_size == 2048


def test_a_dry_run_says_what_it_would_make_and_writes_nothing(site, tmp_path: Path) -> None:
    assert keep(site, check=True)["certificate"] == "made: there was none"
    assert list(tmp_path.iterdir()) == []
    keep(site)
    os.chmod(site["key_path"], 0o644)
    assert keep(site, check=True)["key"] == "owner or mode set" and mode(site["key_path"]) == 0o644
    assert keep(site)["key"] == "owner or mode set" and mode(site["key_path"]) == 0o600


@pytest.mark.parametrize(("change", "message"), [
    ({"key_path": "relative.key"}, "sites[0]: field 'key_path' is 'relative.key'; allowed: an absolute path"),
    ({"names": []}, "sites[0]: field 'names' is []; allowed: a non-empty list of host names"),
    ({"key": {"type": "DSA"}}, "sites[0]: field 'key' is {'type': 'DSA'}; allowed:"),
    ({"days": 0}, "sites[0]: field 'days' is 0; allowed: a number of days, at least 1"),
])
def test_bad_entries_are_refused_naming_the_field(site, change: dict, message: str) -> None:
    with pytest.raises(MODULE.SiteError, match=message.replace("[", r"\[").replace("]", r"\]")
                       .replace("{", r"\{").replace("}", r"\}")):
        keep({**site, **change})
