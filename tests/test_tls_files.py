"""The wsgi_tls_files action: certificate files checked on the controller before any host changes."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from plugin_loading import load

PLUGIN = Path(__file__).resolve().parent.parent / "plugins" / "action" / "wsgi_tls_files.py"
NOW = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.UTC)



tls_files = load(PLUGIN, "wsgi_tls_files_under_test")
check = tls_files.certificate_problems


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _certificate(key, names: list[str], *, issuer_key=None, issuer_name: str = "", days: int = 60,
                 starts: datetime.datetime = NOW - datetime.timedelta(days=1)) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "no-names")])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]) if issuer_name else subject
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(starts)
               .not_valid_after(starts + datetime.timedelta(days=days)))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pem(*certificates: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


def test_a_matching_valid_certificate_for_every_name_passes():
    key = _key()
    cert = _certificate(key, ["www.example.com", "example.com"])
    assert check(_pem(cert), _pem_key(key), "", ["www.example.com", "example.com"],
                                         NOW) == []


def test_a_wildcard_covers_one_label_only():
    key = _key()
    cert = _pem(_certificate(key, ["*.example.com"]))
    assert check(cert, _pem_key(key), "", ["www.example.com", "shop.example.com"], NOW) == []
    found = check(cert, _pem_key(key), "", ["example.com", "a.b.example.com"], NOW)
    assert found == [("cert_file", "does not cover example.com, a.b.example.com (its names: *.example.com)")]


def test_a_wildcard_alias_needs_a_wildcard_certificate():
    key = _key()
    cert = _pem(_certificate(key, ["www.example.com"]))
    assert check(cert, _pem_key(key), "", ["*.example.com"], NOW) == [
        ("cert_file", "does not cover *.example.com (its names: www.example.com)")]
    wildcard = _pem(_certificate(key, ["*.example.com"]))
    assert check(wildcard, _pem_key(key), "", ["*.example.com"], NOW) == []


def test_the_key_of_another_certificate_is_refused_without_showing_either_key():
    key, other = _key(), _key()
    found = check(_pem(_certificate(key, ["www.example.com"])), _pem_key(other), "",
                                             ["www.example.com"], NOW)
    assert found == [("key_file", "is not the key of cert_file")]
    assert "PRIVATE KEY" not in "".join(text for _, text in found)


def test_an_expired_or_future_certificate_is_refused():
    key = _key()
    expired = _certificate(key, ["www.example.com"], starts=NOW - datetime.timedelta(days=100), days=90)
    assert check(_pem(expired), _pem_key(key), "", ["www.example.com"], NOW) == [
        ("cert_file", "expired on 2026-11-22")]
    future = _certificate(key, ["www.example.com"], starts=NOW + datetime.timedelta(days=2))
    assert check(_pem(future), _pem_key(key), "", ["www.example.com"], NOW) == [
        ("cert_file", "is not valid before 2026-12-04 12:00 UTC")]


def test_a_certificate_without_subject_alt_names_covers_nothing():
    key = _key()
    found = check(_pem(_certificate(key, [])), _pem_key(key), "", ["no-names"], NOW)
    assert found == [("cert_file", "does not cover no-names (its names: none, no subjectAltName)")]


def test_files_that_are_not_pem_say_which_file():
    key = _key()
    cert = _pem(_certificate(key, ["www.example.com"]))
    assert check("not a certificate", _pem_key(key), "", [], NOW) == [
        ("cert_file", "is not a PEM certificate")]
    assert check(cert, "garbage", "", [], NOW) == [
        ("key_file", "is not an unencrypted PEM private key (ansible-vault encryption is fine)")]
    assert check(cert, _pem_key(key), "garbage", [], NOW) == [
        ("chain_file", "is not a list of PEM certificates")]


def test_the_chain_must_start_with_the_issuer():
    ca_key, key = _key(), _key()
    ca = _certificate(ca_key, ["Example CA"])
    leaf = _certificate(key, ["www.example.com"], issuer_key=ca_key, issuer_name="Example CA")
    assert check(_pem(leaf), _pem_key(key), _pem(ca), ["www.example.com"], NOW) == []
    stranger = _certificate(_key(), ["Other CA"])
    assert check(_pem(leaf), _pem_key(key), _pem(stranger), ["www.example.com"], NOW) == [
        ("chain_file", "does not start with the issuer of cert_file")]


def test_only_a_certificate_that_names_an_ocsp_responder_is_stapled():
    key = _key()
    plain = _certificate(key, ["www.example.com"])
    with_responder = (x509.CertificateBuilder().subject_name(plain.subject).issuer_name(plain.issuer)
                      .public_key(key.public_key()).serial_number(x509.random_serial_number())
                      .not_valid_before(plain.not_valid_before_utc).not_valid_after(plain.not_valid_after_utc)
                      .add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                          x509.oid.AuthorityInformationAccessOID.OCSP,
                          x509.UniformResourceIdentifier("http://ocsp.example.com"))]), critical=False)
                      .sign(key, hashes.SHA256()))
    assert tls_files.has_ocsp_responder(_pem(with_responder)) is True
    assert tls_files.has_ocsp_responder(_pem(plain)) is False
    assert tls_files.has_ocsp_responder("not a certificate") is False
